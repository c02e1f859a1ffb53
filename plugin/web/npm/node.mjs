// Node entry point: the module is instantiated synchronously from the package's own .wasm file at
// import, so every function can be called at once; `load()` is there for code shared with browsers.
import { webcrypto } from "node:crypto";
import { readFileSync } from "node:fs";

import * as raw from "./dist/triage_web.js";
import { typed } from "./typed.mjs";

// Node 18 (Debian bookworm's nodejs) has Web Crypto as node:crypto's `webcrypto` but not as the
// global that the module's random source (getrandom's wasm_js backend: decision ids) calls.
globalThis.crypto ??= webcrypto;

raw.initSync({ module: readFileSync(new URL("./dist/triage_web_bg.wasm", import.meta.url)) });

const triage = typed(raw);

export const { decide, validateConfig, formatOfPath, evaluate, exchange } = triage;

export async function load() {
  return triage;
}
