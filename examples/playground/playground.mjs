// The playground page: the web package (served at ./triage-web/) decides the request in the editor
// with the config in the editor at every keystroke, and evaluates a dropped dataset file. The page
// keeps no routing logic of its own: what it shows is what the package returns.
//
// URL parameters preset the editors, so a state can be linked to (and the browser test drives the
// page with them): `example` (an id of examples/requests.jsonl), `body`, `format`, `config`.
import { load } from "./triage-web/browser.mjs";

const $ = (id) => document.getElementById(id);
const REFUSED = "triage config refused: ";

/** Says on the page that it cannot work, and why. */
function failed(error) {
  document.body.dataset.ready = "failed";
  document.querySelector("header").append(element("p", { role: "alert", id: "load-error" }, `not loaded: ${error.message}`));
  throw error;
}

async function fetchText(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`${url}: ${response.status}`);
  }
  return response.text();
}

const triage = await load().catch(failed);
const [shippedConfig, examplesText] = await Promise.all(["data/plugin-config.json", "data/requests.jsonl"].map(fetchText)).catch(failed);
const examples = examplesText
  .split("\n")
  .filter((line) => line.trim() !== "")
  .map((line) => JSON.parse(line));

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  Object.entries(attributes).forEach(([name, value]) => node.setAttribute(name, value));
  node.append(...children);
  return node;
}

function svgElement(tag, attributes = {}, text = "") {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  Object.entries(attributes).forEach(([name, value]) => node.setAttribute(name, value));
  node.textContent = text;
  return node;
}

function percent(value) {
  return value === null || value === undefined || Number.isNaN(value) ? "-" : `${(value * 100).toFixed(1)}%`;
}

// ---- request and config editors ----

for (const line of examples) {
  $("example").append(element("option", { value: line.id }, `${line.id} (${line.path})`));
}

function pickExample(id) {
  const line = examples.find((candidate) => candidate.id === id);
  if (!line) {
    return;
  }
  $("example").value = id;
  $("body").value = JSON.stringify(line.body, null, 2);
  $("format").value = triage.formatOfPath(line.path) ?? "";
}

/**
 * The line of the config text where a JSON path (`tiers[1].max_score`, as the refusal names its
 * field) starts: the member's key, or the nearest enclosing value the text has. A small walker of
 * the JSON text, used only to point at the field; the config itself is read by the package.
 */
function lineOfField(text, field) {
  const lines = new Map();
  let at = 0;
  let line = 1;
  const skipSpace = () => {
    while (at < text.length && /\s/.test(text[at])) {
      line += text[at] === "\n" ? 1 : 0;
      at += 1;
    }
  };
  const string = () => {
    let value = "";
    at += 1;
    while (at < text.length && text[at] !== '"') {
      value += text[at] === "\\" ? text[at + 1] : text[at];
      line += text[at] === "\n" ? 1 : 0;
      at += text[at] === "\\" ? 2 : 1;
    }
    at += 1;
    return value;
  };
  const value = (path) => {
    skipSpace();
    if (!lines.has(path)) {
      lines.set(path, line);
    }
    const open = text[at];
    if (open === "{" || open === "[") {
      at += 1;
      for (let index = 0; at < text.length; index += 1) {
        skipSpace();
        if (text[at] === "}" || text[at] === "]") {
          at += 1;
          return;
        }
        if (open === "{") {
          if (text[at] !== '"') {
            return;
          }
          const keyLine = line;
          const key = string();
          const member = path === "" ? key : `${path}.${key}`;
          lines.set(member, keyLine);
          skipSpace();
          at += 1; // the colon
          value(member);
        } else {
          value(`${path}[${index}]`);
        }
        skipSpace();
        if (text[at] === ",") {
          at += 1;
        } else if (text[at] !== "}" && text[at] !== "]") {
          return;
        }
      }
    } else if (open === '"') {
      string();
    } else {
      while (at < text.length && !/[\s,\]}]/.test(text[at])) {
        at += 1;
      }
    }
  };
  value("");
  // The field, else the nearest enclosing path the text has (a missing member: its object).
  for (let path = field; ; path = path.replace(/(\.[^.[\]]*|\[\d+\])$/, "")) {
    if (lines.has(path)) {
      return lines.get(path);
    }
    if (!/(\.[^.[\]]*|\[\d+\])$/.test(path)) {
      return 1;
    }
  }
}

/** A refusal's field, why, and the line it points at (serde's own line when it names one). */
function whereRefused(text, message) {
  const rest = message.slice(REFUSED.length);
  const split = rest.indexOf(": ");
  const field = split < 0 ? "(root)" : rest.slice(0, split);
  const why = split < 0 ? rest : rest.slice(split + 2);
  const stated = / at line (\d+) column \d+$/.exec(why);
  const line = stated ? Number(stated[1]) : field === "(root)" ? 1 : lineOfField(text, field);
  return { field, why, line };
}

function renderGutter(badLine) {
  const count = $("config").value.split("\n").length;
  const gutter = $("config-lines");
  gutter.replaceChildren(
    ...Array.from({ length: count }, (_, index) =>
      element("div", index + 1 === badLine ? { class: "bad" } : {}, String(index + 1)),
    ),
  );
  gutter.scrollTop = $("config").scrollTop;
}

/** Validates the config as the filter would; shows a refusal at its field. True when accepted. */
function checkConfig() {
  const text = $("config").value;
  const message = triage.validateConfig(text);
  const error = $("config-error");
  $("config-editor").classList.toggle("refused", message !== null);
  if (message === null) {
    error.hidden = true;
    error.replaceChildren();
    delete error.dataset.field;
    renderGutter(0);
    return true;
  }
  const { field, why, line } = whereRefused(text, message);
  error.hidden = false;
  error.dataset.field = field;
  error.dataset.line = String(line);
  error.replaceChildren(element("span", { class: "where" }, `line ${line}, ${field}: `), why, element("br"), element("small", {}, message));
  renderGutter(line);
  return false;
}

// ---- the decision ----

function renderContributions(contributions) {
  const largest = Math.max(1e-9, ...contributions.map(({ contribution }) => Math.abs(contribution)));
  $("contributions").replaceChildren(
    ...contributions.map(({ feature, contribution }) => {
      const width = `${(50 * Math.abs(contribution)) / largest}%`;
      const side = contribution > 0 ? "harder" : "simpler";
      return element(
        "div",
        { class: "bar-row", "data-feature": feature },
        element("span", {}, feature),
        element("div", { class: "bar-track" }, element("div", { class: `bar ${side}`, style: `width: ${width}` })),
        element("span", { class: "bar-value" }, `${contribution > 0 ? "+" : ""}${contribution.toFixed(2)}`),
      );
    }),
  );
}

function renderDecision() {
  const panel = $("decision");
  if (!checkConfig()) {
    panel.classList.add("refused");
    $("tier").textContent = "config refused";
    delete panel.dataset.tier;
    return;
  }
  let decision;
  try {
    decision = triage.decide($("config").value, $("body").value, $("format").value || null);
  } catch (error) {
    panel.classList.add("refused");
    $("tier").textContent = error.message;
    delete panel.dataset.tier;
    return;
  }
  panel.classList.remove("refused");
  panel.dataset.tier = decision.tier;
  panel.dataset.score = decision.score === null ? "" : String(decision.score);
  panel.dataset.format = decision.format;
  $("tier").textContent = decision.tier;
  $("model").textContent = decision.model ?? "(kept)";
  $("score").textContent = decision.score === null ? "not scored" : decision.score.toFixed(4);
  const sides = ["down", "up"]
    .map((side) => decision.margin?.[side])
    .filter(Boolean)
    .map(({ tier, by }) => `${by.toFixed(4)} from ${tier}`);
  $("margin").textContent = sides.length > 0 ? `(${sides.join(", ")})` : "";
  $("cause").textContent = decision.score === null ? decision.reasons.join(", ") : `format ${decision.format}`;
  renderContributions(decision.contributions);
  $("features").replaceChildren(
    ...Object.entries(decision.features ?? {}).flatMap(([name, value]) => [
      element("span", { class: "feature" }, name),
      element("span", { class: "number" }, String(Number(value.toFixed(4)))),
    ]),
  );
}

// ---- a dataset ----

/**
 * The router's cost-quality curve (its score swept from every row on its cheapest tier to every row
 * on its dearest), prompt length's, the random mix between the two ends, and the policies' points;
 * both axes relative to always-top-tier, the quality axis cut to the range the points span.
 */
function renderCurve(evaluation) {
  const svg = $("curve");
  svg.replaceChildren();
  const { report, curves } = evaluation;
  const top = report.policies.find((policy) => policy.name === `always-${report.top_tier}`);
  const shownPolicies = report.policies
    .filter((policy) => policy.name === "router" || policy.name.startsWith("always-"))
    .map((policy) => ({ name: policy.name, cost: policy.cost_usd, quality: policy.quality }));
  const everyPoint = [...curves.router, ...curves.prompt_length, ...curves.random, ...shownPolicies];
  const relativeCost = (point) => point.cost / (top.cost_usd || 1);
  const relativeQuality = (point) => point.quality / (top.quality || 1);
  const qualities = everyPoint.map(relativeQuality);
  const [low, high] = [Math.max(0, Math.min(...qualities) - 0.05), Math.max(...qualities) + 0.02];
  const widest = Math.max(1, ...everyPoint.map(relativeCost));
  const [left, bottom, width, height] = [48, 255, 350, 225];
  const x = (point) => left + (width * relativeCost(point)) / widest;
  const y = (point) => bottom - (height * (relativeQuality(point) - low)) / (high - low);
  const line = (points) => points.map((point, index) => `${index ? "L" : "M"}${x(point)},${y(point)}`).join(" ");
  svg.append(
    svgElement("line", { class: "axis", x1: left, y1: bottom, x2: left + width, y2: bottom }),
    svgElement("line", { class: "axis", x1: left, y1: bottom, x2: left, y2: bottom - height }),
    svgElement("text", { x: left + width / 2, y: bottom + 32, "text-anchor": "middle" }, `cost, always-${report.top_tier} = 100%`),
    svgElement("text", { x: 4, y: bottom - height - 10 }, `quality, always-${report.top_tier} = 100%`),
    svgElement("line", { class: "random", x1: x(curves.random[0]), y1: y(curves.random[0]), x2: x(curves.random[1]), y2: y(curves.random[1]) }),
    svgElement("path", { class: "length", d: line(curves.prompt_length) }),
    svgElement("path", { class: "router", d: line(curves.router) }),
  );
  for (const quality of [low, high]) {
    const at = y({ cost: 0, quality: quality * (top.quality || 1) });
    svg.append(svgElement("text", { x: left - 4, y: at + 4, "text-anchor": "end" }, percent(quality)));
  }
  for (const cost of [0, 0.5, 1]) {
    svg.append(svgElement("text", { x: x({ cost: cost * (top.cost_usd || 1) }), y: bottom + 14, "text-anchor": "middle" }, percent(cost)));
  }
  for (const point of shownPolicies) {
    const onTheRight = x(point) > left + 0.7 * width;
    svg.append(
      svgElement("circle", { class: "point", cx: x(point), cy: y(point), r: 3.5 }),
      svgElement("text", { x: x(point) + (onTheRight ? -6 : 6), y: y(point) - 6, "text-anchor": onTheRight ? "end" : "start" }, point.name),
    );
  }
  svg.append(svgElement("text", { x: left + width, y: bottom - height - 10, "text-anchor": "end" }, "solid: router, dashed: prompt length"));
}

function renderDataset(evaluation) {
  $("dataset").hidden = false;
  $("dataset").dataset.rows = String(evaluation.rows);
  const causes = evaluation.decisions;
  $("dataset-summary").textContent =
    `${evaluation.rows} rows: ${causes.scored} scored, ${causes.rule} by rule, ${causes.explicit_model} explicit model, ` +
    `${causes.fail_open} failed open` +
    (evaluation.report ? "" : ` (${evaluation.rows_without_outcomes} rows without outcomes: no quality or cost)`);
  $("shares").replaceChildren(
    ...evaluation.shares.map(({ tier, share }) =>
      element(
        "div",
        { class: "share", "data-tier": tier, "data-share": String(share) },
        element("span", {}, tier),
        element("div", {}, element("div", { class: "fill", style: `width: ${share * 100}%` })),
        element("span", { class: "number" }, percent(share)),
      ),
    ),
  );
  $("curve").hidden = !evaluation.report;
  $("policies").hidden = !evaluation.report;
  if (evaluation.report) {
    renderCurve(evaluation);
    $("policies").tBodies[0].replaceChildren(
      ...evaluation.report.policies.map((policy) =>
        element("tr", {}, element("td", {}, policy.name), element("td", { class: "number" }, percent(policy.quality_vs_top)),
          element("td", { class: "number" }, percent(policy.cost_vs_top))),
      ),
    );
  }
}

/** Evaluates JSON lines of dataset rows with the config in the editor. */
function evaluateDataset(text) {
  const error = $("dataset-error");
  try {
    renderDataset(triage.evaluate($("config").value, text));
    error.hidden = true;
  } catch (failure) {
    $("dataset").hidden = true;
    error.hidden = false;
    error.textContent = failure.message;
  }
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const [file] = event.dataTransfer.files;
  if (file) {
    evaluateDataset(await file.text());
  }
});
$("dataset-file").addEventListener("change", async (event) => {
  const [file] = event.target.files;
  if (file) {
    evaluateDataset(await file.text());
  }
});

// ---- wiring ----

$("example").addEventListener("change", (event) => {
  pickExample(event.target.value);
  renderDecision();
});
$("format").addEventListener("change", renderDecision);
$("body").addEventListener("input", () => {
  $("example").value = "";
  renderDecision();
});
$("config").addEventListener("input", renderDecision);
$("config").addEventListener("scroll", () => {
  $("config-lines").scrollTop = $("config").scrollTop;
});
$("reset-config").addEventListener("click", () => {
  $("config").value = shippedConfig;
  renderDecision();
});

const params = new URLSearchParams(location.search);
$("config").value = params.get("config") ?? shippedConfig;
pickExample(params.get("example") ?? examples[0].id);
if (params.has("body")) {
  $("example").value = "";
  $("body").value = params.get("body");
}
if (params.has("format")) {
  $("format").value = params.get("format");
}
renderDecision();
// For the browser test (and anyone scripting the page): what the page can be driven with.
window.playground = { evaluateDataset, pickExample, renderDecision };
document.body.dataset.ready = "yes";
