//! triage's routing core for browsers and Node, through wasm-bindgen: the same `Config`, `decide`,
//! lifecycle machine and evaluation as the filter and the CLI, nothing re-implemented here. Each
//! export takes strings (the plugin config, a request body, JSON lines) and returns a JSON string
//! that the package's typed wrapper (`npm/typed.mjs`) parses, so the boundary needs no glue beyond
//! strings and the shapes are the ones `triage route` and `triage eval --json` print.
//!
//! A config string is the plugin config the filter gets; an empty one means the shipped defaults,
//! as for the filter and the CLI. A config the filter would refuse is an error whose message is the
//! one the filter logs.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Map, Value};
use triage_core::explain::{feature_values, infer_format, Routed};
use triage_core::lifecycle::exchange::answers::{run_shown, TierAnswers};
use triage_core::lifecycle::MemoryBreakers;
use triage_core::{decide as core_decide, ApiFormat, Config, Identity, RequestHead};
use triage_learn::dataset::Row;
use triage_learn::eval::{evaluate as learn_evaluate, judge, tier_shares};
use wasm_bindgen::prelude::*;

thread_local! {
    /// The config last parsed, with its text. The filter parses a config once, in `on_configure`;
    /// here every call names its config, and compiling the shipped one's rules (regexes) takes
    /// longer than a decision, so a page deciding at every keystroke or a loop over rows reuses
    /// it while the text stays the same.
    static LAST_CONFIG: RefCell<Option<(String, Rc<Config>)>> = const { RefCell::new(None) };
}

/// The plugin config as `on_configure` parses and checks it.
fn config_of(json: &str) -> Result<Rc<Config>, String> {
    LAST_CONFIG.with(|last| {
        if let Some((text, config)) = last.borrow().as_ref() {
            if text == json {
                return Ok(Rc::clone(config));
            }
        }
        let config = Rc::new(Config::from_json(json.as_bytes()).map_err(|error| error.refusal())?);
        *last.borrow_mut() = Some((json.to_string(), Rc::clone(&config)));
        Ok(config)
    })
}

/// The API format named (`openai_chat`, `openai_responses`, `anthropic_messages`), or when none is,
/// the one the body's shape says, as `triage route` infers it for a bare body.
fn format_of(name: Option<&str>, body: &str) -> Result<ApiFormat, String> {
    match name.filter(|name| !name.is_empty()) {
        Some(name) => ApiFormat::from_name(name).ok_or_else(|| {
            let names = ApiFormat::ALL.map(|format| format.as_str());
            format!("unknown format {name:?} ({})", names.join(", "))
        }),
        // A body that is no JSON object fails open whatever its format: OpenAI chat says so too.
        None => Ok(serde_json::from_str::<Map<String, Value>>(body)
            .map_or(ApiFormat::OpenAiChat, |object| infer_format(&object))),
    }
}

/// The decision the filter makes for `body` sent by an anonymous client to the format's endpoint.
fn decision_shown(config: &str, body: &str, format: Option<&str>) -> Result<Value, String> {
    let config = config_of(config)?;
    let format = format_of(format, body)?;
    let head = RequestHead {
        format,
        path: format.path(),
        headers: &[],
        identity: Identity::ANONYMOUS,
    };
    let routed = Routed::from(core_decide(&config, &head, body.as_bytes()));
    let mut shown = routed.to_json(&config, format);
    shown["contributions"] = routed.contributions();
    shown["features"] = feature_values(&config, format, body.as_bytes());
    Ok(shown)
}

/// Every dataset row of `jsonl` routed: tier shares and causes, and when every row has outcomes
/// the report `triage eval --json` gives for a dataset (quality and cost against always-top-tier,
/// the baselines, the score sweep) with the sweep's curves.
fn evaluation(config: &str, jsonl: &str) -> Result<Value, String> {
    let config = config_of(config)?;
    let mut rows = Vec::new();
    for (index, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row =
            Row::from_json_line(line).map_err(|error| format!("line {}: {error}", index + 1))?;
        rows.push(row);
    }
    if rows.is_empty() {
        return Err("no rows".into());
    }
    let judged = judge(&config, &rows).map_err(|error| error.to_string())?;
    let (shares, decisions) = tier_shares(&config, &judged);
    let without_outcomes = rows.iter().filter(|row| row.outcomes.is_empty()).count();
    let report = match without_outcomes {
        0 => Some(
            learn_evaluate("rows", &config, &rows, &judged).map_err(|error| error.to_string())?,
        ),
        _ => None,
    };
    Ok(json!({
        "rows": rows.len(),
        "shares": shares,
        "decisions": decisions,
        "rows_without_outcomes": without_outcomes,
        "curves": report.as_ref().map(|report| &report.curves),
        "report": report,
    }))
}

/// `body` through the filter's whole lifecycle with the tiers answering as `answers` says (the
/// document `triage route --answers` reads), shown as that command shows it. Each call starts
/// with closed breakers.
fn exchange_shown(
    config: &str,
    body: &str,
    format: Option<&str>,
    answers: &str,
) -> Result<Value, String> {
    let config = config_of(config)?;
    let format = format_of(format, body)?;
    let mut tiers = TierAnswers::from_json(answers.as_bytes(), &config)?;
    let breakers = Rc::new(MemoryBreakers::new(&config));
    let body = body.as_bytes().to_vec();
    // Milliseconds since the epoch, as a float: exact in nanoseconds for centuries.
    let start_nanos = (date_now() * 1e6) as u64;
    Ok(run_shown(
        &config,
        breakers,
        format,
        body,
        &mut tiers,
        start_nanos,
    ))
}

#[wasm_bindgen]
extern "C" {
    /// The JavaScript clock: the wasm32-unknown-unknown std has none.
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn date_now() -> f64;
}

fn to_js(result: Result<Value, String>) -> Result<String, JsError> {
    result
        .map(|value| value.to_string())
        .map_err(|error| JsError::new(&error))
}

/// The decision for a request body, as JSON: `{format, tier, score, model, reasons, margin,
/// contributions, features}`. `format` names the API format; absent or empty, the body's shape
/// says it. Throws on a refused config or an unknown format name.
#[wasm_bindgen]
pub fn decide(config: &str, body: &str, format: Option<String>) -> Result<String, JsError> {
    to_js(decision_shown(config, body, format.as_deref()))
}

/// Null when the filter accepts the config, else the message it logs when it refuses it:
/// `triage config refused: <field>: <why>`.
#[wasm_bindgen(js_name = validateConfig)]
pub fn validate_config(config: &str) -> Option<String> {
    config_of(config).err()
}

/// The API format a request path names as the filter reads paths (any spelling of the three
/// endpoints: `/V1/Chat/Completions/` too), or null for a path it passes through undecided.
#[wasm_bindgen(js_name = formatOfPath)]
pub fn format_of_path(path: &str) -> Option<String> {
    ApiFormat::detect("POST", path).map(|format| format.as_str().to_string())
}

/// The evaluation of JSON lines of routing-dataset rows, as JSON: `{rows, shares, decisions,
/// rows_without_outcomes, report, curves}` (`report` and `curves` null unless every row has
/// outcomes). Throws on a refused config, a bad line (named by its number), no rows, or a config
/// tier that is not a dataset tier.
#[wasm_bindgen]
pub fn evaluate(config: &str, jsonl: &str) -> Result<String, JsError> {
    to_js(evaluation(config, jsonl))
}

/// A whole exchange, as JSON: what `triage route --answers` prints under "exchange" (`{upstream,
/// calls, response, record}`). Throws on a refused config, an unknown format or answers that do not
/// name every tier.
#[wasm_bindgen]
pub fn exchange(
    config: &str,
    body: &str,
    format: Option<String>,
    answers: &str,
) -> Result<String, JsError> {
    to_js(exchange_shown(config, body, format.as_deref(), answers))
}
