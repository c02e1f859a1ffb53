// The built npm package in Node, against the `triage` CLI run on the same inputs in the same run:
// decisions, config refusals, a whole exchange and the evaluation of dataset rows.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";

import {
  exampleDatasetRows,
  installPackage,
  jsonLines,
  repo,
  route,
  shippedConfig,
  shippedConfigPath,
  tempFile,
  triage,
} from "./harness.mjs";

const triageWeb = await installPackage();
const examples = jsonLines(join(repo, "examples", "requests.jsonl"));
const tierNames = JSON.parse(shippedConfig).tiers.map((tier) => tier.name);

/** The example line with this id (ids name requests, never their expected tiers). */
function example(id) {
  const found = examples.find((line) => line.id === id);
  assert.ok(found, `examples/requests.jsonl has no ${id}`);
  return found;
}

/**
 * Two numbers equal to 1e-9, as host-tests compares triage.wasm with the native core: the module's
 * libm and the platform's may round the last bits of a logistic differently.
 */
function assertClose(actual, expected, label) {
  if (typeof expected !== "number" || typeof actual !== "number") {
    assert.deepEqual(actual, expected, label);
    return;
  }
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${label}: ${actual} != ${expected}`);
}

/** Two JSON values equal, numbers to 1e-9. */
function assertDeepClose(actual, expected, label) {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${label}: not an array`);
    assert.equal(actual.length, expected.length, `${label}: length`);
    expected.forEach((item, index) => assertDeepClose(actual[index], item, `${label}[${index}]`));
  } else if (expected !== null && typeof expected === "object") {
    assert.deepEqual(Object.keys(actual ?? {}).sort(), Object.keys(expected).sort(), `${label}: keys`);
    for (const key of Object.keys(expected)) {
      assertDeepClose(actual[key], expected[key], `${label}.${key}`);
    }
  } else {
    assertClose(actual, expected, label);
  }
}

/** The package's decision against the line `triage route --features` printed for the same body. */
function assertSameDecision(web, cli) {
  for (const key of ["format", "tier", "model", "reasons", "margin"]) {
    assert.deepEqual(web[key], cli[key], `${cli.id}: ${key}`);
  }
  assertClose(web.score, cli.score, `${cli.id}: score`);
  assertDeepClose(web.features, cli.features, `${cli.id}: features`);
}

/**
 * Each example through the CLI (its path gives the format) and through the package with the
 * same body bytes: the CLI reads the body out of the line JSON.stringify wrote, the package gets
 * JSON.stringify of the body, which is the same text.
 */
function decideBoth(ids) {
  const lines = ids.map(example);
  const cli = route(["--config", shippedConfigPath, "--features"], lines.map((line) => JSON.stringify(line)).join("\n"));
  return lines.map((line, index) => ({
    cli: cli[index],
    web: triageWeb.decide(shippedConfig, JSON.stringify(line.body), cli[index].format),
  }));
}

test("a simple and a hard request get the tiers triage route gives them", () => {
  const [simple, hard] = decideBoth(["classify-sentiment", "hard-integral"]);
  assertSameDecision(simple.web, simple.cli);
  assertSameDecision(hard.web, hard.cli);
  assert.ok(
    tierNames.indexOf(simple.web.tier) < tierNames.indexOf(hard.web.tier),
    `the simple request (${simple.web.tier}) goes to a cheaper tier than the hard one (${hard.web.tier})`,
  );
});

test("every example request gets the decision triage route prints, and contributions spell its reasons", () => {
  for (const { web, cli } of decideBoth(examples.map((line) => line.id))) {
    assertSameDecision(web, cli);
    if (web.score === null) {
      assert.deepEqual(web.contributions, [], `${cli.id}: an unscored decision has no contributions`);
    } else {
      const spelt = web.contributions.map(
        ({ feature, contribution }) => `${feature}${contribution < 0 || Object.is(contribution, -0) ? "-" : "+"}${Math.abs(contribution).toFixed(2)}`,
      );
      assert.deepEqual(spelt, web.reasons, `${cli.id}: contributions`);
    }
  }
});

test("a bare body's format is told by its shape, as triage route tells it", () => {
  const bodies = examples.map((line) => JSON.stringify(line.body));
  const cli = route(["--config", shippedConfigPath], bodies.join("\n"));
  bodies.forEach((body, index) => {
    assert.equal(triageWeb.decide(shippedConfig, body).format, cli[index].format, `line ${index + 1}`);
  });
  assert.throws(() => triageWeb.decide(shippedConfig, bodies[0], "gemini"), /unknown format "gemini"/);
});

test("a request path names the format triage route reads from it", () => {
  const cli = route(["--config", shippedConfigPath], examples.map((line) => JSON.stringify(line)).join("\n"));
  examples.forEach((line, index) => {
    assert.equal(triageWeb.formatOfPath(line.path), cli[index].format, line.id);
    assert.equal(triageWeb.formatOfPath(line.path.toUpperCase() + "/"), cli[index].format, "any spelling");
  });
  assert.equal(triageWeb.formatOfPath("/v1/messages/count_tokens"), null);
});

test("an invalid config gives the message the filter logs, a valid one null", () => {
  const refused = [
    '{"tiers": 3}',
    "{not json",
    JSON.stringify({ ...JSON.parse(shippedConfig), default_tier: "nowhere" }),
    JSON.stringify({ ...JSON.parse(shippedConfig), mode: "sometimes" }),
  ];
  for (const config of refused) {
    const path = tempFile("config.json", config);
    // `triage validate` prints `<path>: ` and then the filter's own words (ConfigError::refusal).
    const cli = triage(["validate", path]);
    assert.equal(cli.status, 1, cli.stderr);
    const logged = cli.stderr.trim().slice(`${path}: `.length);
    assert.match(logged, /^triage config refused: \S+: /);
    assert.equal(triageWeb.validateConfig(config), logged);
    assert.throws(() => triageWeb.decide(config, "{}"), (error) => error.message === logged);
  }
  assert.equal(triage(["validate", shippedConfigPath]).status, 0);
  assert.equal(triageWeb.validateConfig(shippedConfig), null);
  assert.equal(triageWeb.validateConfig(""), null, "empty: the defaults");
});

/** What is drawn or read from the clock in an exchange, blanked so that two runs compare. */
function withoutDrawnValues(exchange) {
  const copy = structuredClone(exchange);
  if (copy.record) {
    copy.record.decision_id = "<drawn>";
    copy.record.start_ms = "<clock>";
    copy.record.decision_us = "<clock>";
  }
  copy.response.headers["x-triage-decision-id"] = "<drawn>";
  return copy;
}

test("an exchange with a 503 on small escalates, as triage route --answers runs it", () => {
  const [cheapest, next] = tierNames;
  const answers = Object.fromEntries(tierNames.map((tier) => [tier, "reset"]));
  answers[cheapest] = { status: 503, content_type: "text/plain", body: "overloaded" };
  answers[next] = { body: { choices: [{ message: { role: "assistant", content: "positive" } }] } };
  const line = example("classify-sentiment");
  const [cli] = route(
    ["--config", shippedConfigPath, "--answers", tempFile("answers.json", JSON.stringify(answers))],
    JSON.stringify(line),
  );
  assert.equal(cli.tier, cheapest, "the simple request is decided for the cheapest tier");
  const web = triageWeb.exchange(shippedConfig, JSON.stringify(line.body), cli.format, answers);
  assert.deepEqual(withoutDrawnValues(web), withoutDrawnValues(cli.exchange));
  assert.equal(web.upstream.tier, cheapest);
  assert.deepEqual(web.calls.map((call) => call.tier), [next]);
  assert.equal(web.response.status, 200);
  assert.equal(web.response.headers["x-triage-escalated"], `${cheapest}->${next}`);
  assert.deepEqual(web.record.escalations.map((step) => step.cause), ["status_5xx"]);
  // The decision id comes from the platform's random source (crypto.getRandomValues).
  assert.match(web.record.decision_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(web.response.headers["x-triage-decision-id"], web.record.decision_id);
  assert.throws(() => triageWeb.exchange(shippedConfig, "{}", null, { [cheapest]: "reset" }), /no answer for/);
});

test("the evaluation of dataset rows is triage eval's, and its tier shares triage route's", () => {
  const rows = exampleDatasetRows(examples, tierNames);
  const jsonl = rows.map((row) => JSON.stringify(row)).join("\n");
  const path = tempFile("rows.jsonl", jsonl);
  const cli = triage(["eval", "--json", "--config", shippedConfigPath, "--data", path]);
  assert.equal(cli.status, 0, cli.stderr);
  const [expected] = JSON.parse(cli.stdout).datasets;
  const web = triageWeb.evaluate(shippedConfig, jsonl);
  assert.equal(web.rows, rows.length);
  assert.equal(web.rows_without_outcomes, 0);
  const { dataset, ...report } = web.report;
  const { dataset: _, ...expectedReport } = expected;
  assert.equal(dataset, "rows");
  assertDeepClose(report, expectedReport, "report");
  const router = web.report.policies.find((policy) => policy.name === "router");
  assert.ok(router.quality_vs_top > 0 && router.cost_vs_top > 0, "quality and cost against always-top-tier");
  assert.ok(web.curves.router.length > 1, "the router's cost-quality curve");

  const routed = route(["--config", shippedConfigPath, "--input", path], "");
  const shares = tierNames.map((tier) => ({
    tier,
    share: routed.filter((line) => line.tier === tier).length / routed.length,
  }));
  assertDeepClose(web.shares, shares, "shares");

  // Without outcomes the rows still have tier shares, and nothing to measure quality with.
  const bare = rows.map(({ outcomes, ...row }) => JSON.stringify(row)).join("\n");
  const sharesOnly = triageWeb.evaluate(shippedConfig, bare);
  assert.equal(sharesOnly.report, null);
  assert.equal(sharesOnly.rows_without_outcomes, rows.length);
  assertDeepClose(sharesOnly.shares, shares, "shares without outcomes");
  const badLine = new RegExp(`^Error: line ${rows.length + 1}: `);
  assert.throws(() => triageWeb.evaluate(shippedConfig, `${bare}\n{"id": 3}`), badLine);
});

test("load() gives the same functions for code shared with browsers", async () => {
  const loaded = await triageWeb.load();
  const body = JSON.stringify(example("hard-integral").body);
  assert.deepEqual(loaded.decide(shippedConfig, body), triageWeb.decide(shippedConfig, body));
});
