// What the package tests share: the package installed as npm would install it (only the files its
// package.json lists, imported by name through its `exports`), and the `triage` CLI they compare it
// with, run on the same inputs in the same test run.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const shippedConfigPath = join(repo, "envoy", "plugin-config.json");
export const shippedConfig = readFileSync(shippedConfigPath, "utf8");

const scratchDirs = [];
process.on("exit", () => scratchDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** A fresh temporary directory, removed when the test process exits. */
export function scratch() {
  const dir = mkdtempSync(join(tmpdir(), "triage-web-test-"));
  scratchDirs.push(dir);
  return dir;
}

/**
 * The built package (plugin/web/npm after plugin/web/build.sh, or TRIAGE_WEB_PACKAGE) copied into
 * a scratch node_modules with only its `files`, and imported by its name: a file the package
 * needs but does not list, or an `exports` entry that points nowhere, fails here as it would for a
 * user.
 */
export async function installPackage() {
  const built = process.env.TRIAGE_WEB_PACKAGE ?? join(repo, "plugin", "web", "npm");
  const manifest = JSON.parse(readFileSync(join(built, "package.json"), "utf8"));
  const root = scratch();
  const installed = join(root, "node_modules", manifest.name);
  mkdirSync(installed, { recursive: true });
  for (const file of ["package.json", ...manifest.files]) {
    if (!existsSync(join(built, file))) {
      throw new Error(`${built}: ${file} is missing: build the package with plugin/web/build.sh`);
    }
    mkdirSync(dirname(join(installed, file)), { recursive: true });
    cpSync(join(built, file), join(installed, file), { recursive: true });
  }
  const entry = join(root, "entry.mjs");
  writeFileSync(entry, `export * from ${JSON.stringify(manifest.name)};\n`);
  return import(pathToFileURL(entry).href);
}

/** The release `triage` binary envoy/setup.sh builds (TRIAGE_BIN overrides). */
function triageBinary() {
  if (process.env.TRIAGE_BIN) {
    return process.env.TRIAGE_BIN;
  }
  const targetDir = process.env.CARGO_TARGET_DIR ?? join(repo, "target");
  const binary = join(targetDir, "release", "triage");
  if (!existsSync(binary)) {
    throw new Error(`${binary} is missing: cargo build --release -p triage-cli (envoy/setup.sh does)`);
  }
  return binary;
}

/** Runs the CLI; returns its exit status, stdout and stderr. */
export function triage(args, input = "") {
  const run = spawnSync(triageBinary(), args, { input, encoding: "utf8", maxBuffer: 1 << 30 });
  if (run.error) {
    throw run.error;
  }
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** `triage route ARGS` on `input`, each output line parsed; fails the test on a non-zero exit. */
export function route(args, input) {
  const run = triage(["route", ...args], input);
  if (run.status !== 0) {
    throw new Error(`triage route ${args.join(" ")} exited ${run.status}: ${run.stderr}`);
  }
  return run.stdout.trim().split("\n").map((line) => JSON.parse(line));
}

/** The lines of a JSON-lines file, parsed. */
export function jsonLines(path) {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}

/** Writes `text` to a file in a scratch directory and returns its path. */
export function tempFile(name, text) {
  const path = join(scratch(), name);
  writeFileSync(path, text);
  return path;
}

/** Example requests as routing-dataset rows with made-up, varied outcomes for every tier named. */
export function exampleDatasetRows(examples, tierNames) {
  return examples.map((line, index) => ({
    id: line.id,
    source: "examples",
    request: line.body,
    outcomes: Object.fromEntries(
      tierNames.map((tier, rank) => [
        tier,
        {
          model: `${tier}-model`,
          // Dearer tiers succeed more often; the cheapest fails on every third row.
          quality: rank === tierNames.length - 1 || (index + rank) % 3 !== 0 ? 1 : 0,
          cost_usd: 10 ** (rank - 5) * (1 + index / 10),
        },
      ]),
    ),
  }));
}
