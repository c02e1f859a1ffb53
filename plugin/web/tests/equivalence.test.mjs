// The wasm-bindgen build and the native core decide alike on every training row, as host-tests
// shows for triage.wasm: together, the three builds of the core agree. The rows are the routing
// datasets in ../shared/data/routing/train (outside the repository, never redistributed); without
// them the test is skipped.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { installPackage, jsonLines, repo, route, shippedConfig, shippedConfigPath } from "./harness.mjs";

const trainDir = join(repo, "..", "shared", "data", "routing", "train");
const files = existsSync(trainDir) ? readdirSync(trainDir).filter((name) => name.endsWith(".jsonl")).sort() : [];

/** host-tests' bound for the module's score against the native one. */
const SCORE_TOLERANCE = 1e-9;

for (const file of files.length > 0 ? files : ["(no training rows)"]) {
  const skip = files.length === 0 && `${trainDir} is absent`;
  test(`every row of ${file} gets the native core's tier, score, model and reasons`, { skip }, async (t) => {
    const triageWeb = await installPackage();
    // The same bytes both ways: each request as JSON.stringify writes it, one bare body a line.
    const bodies = jsonLines(join(trainDir, file)).map((row) => JSON.stringify(row.request));
    const native = route(["--config", shippedConfigPath, "--format", "openai_chat"], bodies.join("\n"));
    assert.equal(native.length, bodies.length);
    const differing = [];
    let largestScoreGap = 0;
    bodies.forEach((body, index) => {
      const web = triageWeb.decide(shippedConfig, body, "openai_chat");
      const cli = native[index];
      const gap = web.score === null || cli.score === null ? 0 : Math.abs(web.score - cli.score);
      largestScoreGap = Math.max(largestScoreGap, gap);
      const same =
        web.tier === cli.tier &&
        web.model === cli.model &&
        (web.score === null) === (cli.score === null) &&
        gap <= SCORE_TOLERANCE &&
        JSON.stringify(web.reasons) === JSON.stringify(cli.reasons);
      if (!same) {
        differing.push({ line: index + 1, web: [web.tier, web.score, web.reasons], native: [cli.tier, cli.score, cli.reasons] });
      }
    });
    t.diagnostic(`${bodies.length} rows, largest score difference ${largestScoreGap}`);
    assert.deepEqual(differing.slice(0, 5), [], `${differing.length} of ${bodies.length} rows differ`);
  });
}
