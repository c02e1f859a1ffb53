// Node entry point: the module is instantiated synchronously from the package's own .wasm file at
// import, so every function can be called at once; `load()` is there for code shared with browsers.
import { readFileSync } from "node:fs";

import * as raw from "./dist/triage_web.js";
import { typed } from "./typed.mjs";

raw.initSync({ module: readFileSync(new URL("./dist/triage_web_bg.wasm", import.meta.url)) });

const triage = typed(raw);

export const { decide, validateConfig, evaluate, exchange } = triage;

export async function load() {
  return triage;
}
