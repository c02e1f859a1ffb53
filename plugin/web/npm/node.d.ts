// The Node entry point: everything the browser one has, and the functions ready at import.
import type { Triage } from "./index.js";

export * from "./index.js";

export declare const decide: Triage["decide"];
export declare const validateConfig: Triage["validateConfig"];
export declare const formatOfPath: Triage["formatOfPath"];
export declare const evaluate: Triage["evaluate"];
export declare const exchange: Triage["exchange"];
