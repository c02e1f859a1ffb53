// Browser (and bundler) entry point: the .wasm is fetched and compiled asynchronously, from beside
// this file unless `load` is given another URL, bytes or a compiled module.
import init, * as raw from "./dist/triage_web.js";
import { typed } from "./typed.mjs";

let loaded;

export function load(wasm) {
  loaded ??= init(wasm === undefined ? undefined : { module_or_path: wasm }).then(() => typed(raw));
  return loaded;
}
