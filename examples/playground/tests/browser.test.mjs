// The playground in real headless Chromium, served as `node examples/playground/serve.mjs` serves
// it, against the `triage` CLI on the same inputs in the same run: the module loads, requests get
// the CLI's tiers, a refused config shows the filter's message at its field, a dataset file picked
// in the page shows the CLI's tier shares and a cost-quality curve. A screenshot is kept.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  exampleDatasetRows,
  jsonLines,
  repo,
  route,
  shippedConfig,
  shippedConfigPath,
  tempFile,
  triage,
} from "../../../plugin/web/tests/harness.mjs";
import { serve } from "../serve.mjs";
import { launchChromium } from "./chromium.mjs";

const examples = jsonLines(join(repo, "examples", "requests.jsonl"));
const tierNames = JSON.parse(shippedConfig).tiers.map((tier) => tier.name);
const artifacts = process.env.TRIAGE_ARTIFACTS ?? join(process.env.CARGO_TARGET_DIR ?? join(repo, "target"), "playground");

let server;
let browser;
let page;

before(async () => {
  server = await serve(0);
  browser = await launchChromium();
  page = await browser.open();
  await page.navigate(`http://127.0.0.1:${server.address().port}/`);
  await page.waitFor("['yes', 'failed'].includes(document.body?.dataset.ready)");
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** Sets an editor's text as typing would (an input event), and lets the page render. */
async function type(id, text) {
  await page.evaluate(`{
    const editor = document.getElementById(${JSON.stringify(id)});
    editor.value = ${JSON.stringify(text)};
    editor.dispatchEvent(new Event("input"));
  }`);
}

test("the page loads the module and accepts the shipped config", async () => {
  assert.equal(await page.evaluate("document.body.dataset.ready"), "yes", await page.evaluate("document.body.innerText"));
  assert.equal(await page.evaluate("document.getElementById('config-error').hidden"), true);
  assert.deepEqual(page.errors, []);
  assert.match(browser.product, /Chrome/);
});

test("a simple and a hard request get the tiers triage route gives them", async () => {
  const ids = ["classify-sentiment", "hard-integral"];
  const lines = ids.map((id) => examples.find((line) => line.id === id));
  const cli = route(["--config", shippedConfigPath, "--features"], lines.map((line) => JSON.stringify(line)).join("\n"));
  const shown = [];
  for (const id of ids) {
    await page.evaluate(`{
      const select = document.getElementById("example");
      select.value = ${JSON.stringify(id)};
      select.dispatchEvent(new Event("change"));
    }`);
    shown.push(await page.evaluate("({...document.getElementById('decision').dataset, tierText: document.getElementById('tier').textContent})"));
  }
  shown.forEach((decision, index) => {
    assert.equal(decision.tier, cli[index].tier, ids[index]);
    assert.equal(decision.tierText, cli[index].tier);
    assert.equal(decision.format, cli[index].format, `${ids[index]}: the format its path names`);
    assert.ok(Math.abs(Number(decision.score) - cli[index].score) <= 1e-9, `${ids[index]}: ${decision.score} != ${cli[index].score}`);
  });
  assert.ok(tierNames.indexOf(shown[0].tier) < tierNames.indexOf(shown[1].tier), "simple below hard");
  const bars = await page.evaluate("[...document.querySelectorAll('#contributions .bar-row')].map((row) => row.dataset.feature)");
  assert.deepEqual(bars, cli[1].reasons.map((reason) => reason.replace(/[+-][0-9.]+$/, "")), "one bar per reason");
  const features = await page.evaluate(
    "Object.fromEntries([...document.querySelectorAll('#features .feature')].map((cell) => [cell.textContent, Number(cell.nextElementSibling.textContent)]))",
  );
  const expected = Object.entries(cli[1].features).map(([name, value]) => [name, Number(value.toFixed(4))]);
  assert.deepEqual(features, Object.fromEntries(expected), "the features, as shown (4 decimals)");
});

/** The 1-based line of the first occurrence of `needle` in `text`. */
function lineOf(text, needle) {
  return text.slice(0, text.indexOf(needle)).split("\n").length;
}

test("an invalid config shows its message at its field as it is typed", async () => {
  const refused = [
    // A value checked after parsing: the page finds the field in the text.
    { config: shippedConfig.replace('"default_tier": "mid"', '"default_tier": "nowhere"'), field: '"default_tier"' },
    // A type error, whose line serde states.
    { config: shippedConfig.replace('"mode": "enforce"', '"mode": 3'), field: '"mode"' },
  ];
  for (const { config, field } of refused) {
    assert.notEqual(config, shippedConfig);
    const path = tempFile("config.json", config);
    const cli = triage(["validate", path]);
    assert.equal(cli.status, 1);
    const message = cli.stderr.trim().slice(`${path}: `.length);
    await type("config", config);
    const shown = await page.evaluate(`({
      hidden: document.getElementById("config-error").hidden,
      message: document.querySelector("#config-error small").textContent,
      line: document.getElementById("config-error").dataset.line,
      marked: document.querySelector("#config-lines .bad")?.textContent,
      tier: document.getElementById("tier").textContent,
    })`);
    assert.equal(shown.hidden, false);
    assert.equal(shown.message, message);
    assert.equal(Number(shown.line), lineOf(config, field), `${message}: the line of ${field}`);
    assert.equal(shown.marked, shown.line, "the gutter marks the line");
    assert.equal(shown.tier, "config refused");
  }
  await type("config", shippedConfig);
  assert.equal(await page.evaluate("document.getElementById('config-error').hidden"), true);
});

test("a dataset file picked in the page shows the tier shares triage route gives and the cost-quality curve", async () => {
  const rows = exampleDatasetRows(examples, tierNames);
  const path = tempFile("rows.jsonl", rows.map((row) => JSON.stringify(row)).join("\n"));
  await page.setFiles("#dataset-file", [path]);
  await page.waitFor("!document.getElementById('dataset').hidden");
  const shares = await page.evaluate("[...document.querySelectorAll('#shares .share')].map((row) => [row.dataset.tier, Number(row.dataset.share)])");
  const routed = route(["--config", shippedConfigPath, "--input", path], "");
  assert.deepEqual(
    shares,
    tierNames.map((tier) => [tier, routed.filter((line) => line.tier === tier).length / routed.length]),
  );
  assert.ok((await page.evaluate("document.querySelector('#curve path.router').getAttribute('d')")).split("L").length > 2, "a curve");
  const policies = await page.evaluate("[...document.querySelectorAll('#policies tbody tr td:first-child')].map((cell) => cell.textContent)");
  assert.ok(policies.includes("router") && policies.includes(`always-${tierNames.at(-1)}`), policies.join(", "));
});

test("a screenshot of the page is kept", async (t) => {
  await page.evaluate(`{
    const select = document.getElementById("example");
    select.value = "hard-integral";
    select.dispatchEvent(new Event("change"));
  }`);
  const png = await page.screenshot();
  assert.equal(png.subarray(1, 4).toString(), "PNG");
  mkdirSync(artifacts, { recursive: true });
  const file = join(artifacts, "playground.png");
  writeFileSync(file, png);
  t.diagnostic(`${file} (${png.length} bytes)`);
  assert.deepEqual(page.errors, [], "no error in the page");
});
