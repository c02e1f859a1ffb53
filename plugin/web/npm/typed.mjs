// The typed face of the raw bindings (dist/triage_web.js): the Rust exports take and return JSON
// strings, so this layer only turns objects into strings on the way in and parses on the way out.
// Shared by the Node and the browser entry points, which differ only in how they load the module.

/** A config or body given as an object is sent as its JSON text; null or undefined: none. */
function text(value) {
  if (value === undefined || value === null) {
    return "";
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** The API of the loaded module, over its raw bindings. */
export function typed(raw) {
  return {
    decide(config, body, format) {
      return JSON.parse(raw.decide(text(config), text(body), format ?? null));
    },
    validateConfig(config) {
      return raw.validateConfig(text(config)) ?? null;
    },
    formatOfPath(path) {
      return raw.formatOfPath(path) ?? null;
    },
    evaluate(config, jsonl) {
      return JSON.parse(raw.evaluate(text(config), jsonl));
    },
    exchange(config, body, format, answers) {
      return JSON.parse(raw.exchange(text(config), text(body), format ?? null, text(answers)));
    },
  };
}
