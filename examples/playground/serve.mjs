// Serves the playground on 127.0.0.1: the page, the built web package and the two files it starts
// from (the shipped plugin config and the example requests). Nothing else of the repository is
// reachable. `node examples/playground/serve.mjs [--port N]` (default 8080; 0: any free port), after
// `bash plugin/web/build.sh` (set-up runs it).
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..", "..");

/** URL prefixes and the directory or file each one serves. */
const routes = [
  ["/triage-web/", join(repo, "plugin", "web", "npm")],
  ["/data/plugin-config.json", join(repo, "envoy", "plugin-config.json")],
  ["/data/requests.jsonl", join(repo, "examples", "requests.jsonl")],
  ["/", here],
];

// A module script and a streamed wasm compile both need their exact type.
const types = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".jsonl": "application/jsonl",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".ts": "text/plain; charset=utf-8",
};

/** The file a URL path names, or null: only below a route's directory, never above it. */
function fileFor(urlPath) {
  for (const [prefix, target] of routes) {
    if (!urlPath.startsWith(prefix)) {
      continue;
    }
    if (!prefix.endsWith("/")) {
      return urlPath === prefix ? target : null;
    }
    const file = normalize(join(target, urlPath.slice(prefix.length) || "index.html"));
    if (file !== target && !file.startsWith(target + sep)) {
      return null;
    }
    return existsSync(file) && statSync(file).isFile() ? file : null;
  }
  return null;
}

/** Starts the server; resolves to it once it listens (`server.address().port`). */
export function serve(port = 8080) {
  const server = createServer((request, response) => {
    let path;
    try {
      path = decodeURIComponent(new URL(request.url, "http://localhost").pathname);
    } catch {
      path = "";
    }
    const file = request.method === "GET" ? fileFor(path) : null;
    if (!file) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    response.writeHead(200, {
      "content-type": types[extname(file)] ?? "application/octet-stream",
      "cache-control": "no-store",
    });
    createReadStream(file).pipe(response);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf("--port");
  const port = at > 0 ? Number(process.argv[at + 1]) : 8080;
  if (!existsSync(join(repo, "plugin", "web", "npm", "dist", "triage_web_bg.wasm"))) {
    console.error("the web package is not built: bash plugin/web/build.sh (envoy/setup.sh does)");
    process.exit(1);
  }
  const server = await serve(port);
  console.log(`triage playground: http://127.0.0.1:${server.address().port}/`);
}
