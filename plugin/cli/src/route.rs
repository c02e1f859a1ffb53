//! `triage route`: routes request bodies or routing-dataset rows offline with the filter's core.

use std::io::{BufRead, BufReader, Read, Write};

use std::rc::Rc;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use triage_core::lifecycle::exchange::{self, ClientRequest, HostSettings};
use triage_core::lifecycle::MemoryBreakers;
use triage_core::{decide, parse_request, ApiFormat, Config, Features, RequestHead, FEATURE_NAMES};

use crate::answers::{self, TierAnswers};

/// Reads one JSON object per line: a request body; a routing-dataset row, whose `request` field is the
/// body; or an example line as in `examples/requests.jsonl`, `{"id", "path", "body"}`, whose path says
/// the API format. Prints one JSON object per line: {"id", "format", "tier", "score", "model",
/// "reasons", "margin"}, where `margin` is how far the score is from the boundaries of its tier (the
/// tier it would move to, and by how much). Exits 1 when a line could not be routed, or when every
/// line failed open (the router decided nothing).
#[derive(clap::Args, Debug)]
pub struct RouteArgs {
    /// Plugin config (JSON, as given to the filter); the shipped defaults when absent.
    #[arg(long)]
    config: Option<String>,
    /// Input file, or - for stdin (the default).
    #[arg(long)]
    input: Option<String>,
    /// Force the API format of every line (dataset rows are OpenAI chat; example lines take their
    /// `path`'s; bare bodies are inferred from their shape).
    #[arg(long, value_parser = parse_format)]
    format: Option<ApiFormat>,
    /// Add "features", the scorer's inputs, to every output line.
    #[arg(long)]
    features: bool,
    /// Who decides: the core compiled into this binary, or the shipped triage.wasm run by the
    /// wasmtime host exactly as Envoy drives it (needs the `wasm-engine` build feature; its score is
    /// x-triage-score's 4 decimals).
    #[arg(long, value_enum, default_value_t = EngineKind::Native)]
    engine: EngineKind,
    /// Run each request through the filter's whole lifecycle with these answers of the tiers (a
    /// JSON object keyed by tier name; see `answers.rs` or the README) and add "exchange": where
    /// each attempt went with which model, escalations, the client's status and triage headers, and
    /// the decision record. Native engine only.
    #[arg(long)]
    answers: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    Native,
    Wasm,
}

/// What `route` prints of a decision, whichever engine made it.
struct Routed {
    tier: String,
    score: Option<f64>,
    model: Option<String>,
    reasons: Vec<String>,
}

impl Routed {
    /// The core's and the module's reasons both start a fail-open with this.
    fn failed_open(&self) -> bool {
        self.reasons
            .first()
            .is_some_and(|reason| reason.starts_with("fail_open: "))
    }
}

enum Engine {
    Native,
    #[cfg(feature = "wasm-engine")]
    Wasm(Box<triage_host::ModuleRouter>),
}

impl Engine {
    fn new(kind: EngineKind, config_json: &[u8]) -> Result<Engine, String> {
        match kind {
            EngineKind::Native => Ok(Engine::Native),
            #[cfg(feature = "wasm-engine")]
            EngineKind::Wasm => {
                let config_json = String::from_utf8_lossy(config_json);
                triage_host::ModuleRouter::new(&config_json)
                    .map(|module| Engine::Wasm(Box::new(module)))
                    .map_err(|error| format!("wasm engine: {error}"))
            }
            #[cfg(not(feature = "wasm-engine"))]
            EngineKind::Wasm => {
                let _ = config_json;
                Err("--engine wasm needs a triage built with `--features wasm-engine`".into())
            }
        }
    }

    fn route(&mut self, config: &Config, format: ApiFormat, body: &str) -> Result<Routed, String> {
        match self {
            Engine::Native => {
                let head = RequestHead {
                    format,
                    path: format.path(),
                    headers: &[],
                    identity: triage_core::Identity::ANONYMOUS,
                };
                let decision = decide(config, &head, body.as_bytes());
                Ok(Routed {
                    tier: decision.tier,
                    score: decision.score,
                    model: decision.model.or(decision.requested_model),
                    reasons: decision.reasons,
                })
            }
            #[cfg(feature = "wasm-engine")]
            Engine::Wasm(module) => {
                let decision = module
                    .route(format, body.as_bytes())
                    .map_err(|error| error.to_string())?;
                Ok(Routed {
                    model: decision.model(),
                    reasons: decision.reasons(),
                    tier: decision.tier,
                    score: decision.score,
                })
            }
        }
    }
}

fn parse_format(name: &str) -> Result<ApiFormat, String> {
    ApiFormat::from_name(name).ok_or_else(|| {
        format!("unknown format {name:?} (openai_chat, openai_responses, anthropic_messages)")
    })
}

/// The API format of a bare body, from what only one format has: `input` is the Responses API's; a
/// top-level `system`, `stop_sequences` or `top_k`, content blocks the OpenAI formats lack, or tools
/// with an `input_schema` are Anthropic's. Anything else reads as OpenAI chat, which parses every body
/// that has none of those the same way Anthropic's would.
fn infer_format(body: &Map<String, Value>) -> ApiFormat {
    const ANTHROPIC_FIELDS: &[&str] = &["system", "stop_sequences", "top_k"];
    const ANTHROPIC_BLOCKS: &[&str] = &["tool_use", "tool_result", "image", "document", "thinking"];
    if body.contains_key("input") {
        return ApiFormat::OpenAiResponses;
    }
    let has_anthropic_block = body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|message| message.get("content").and_then(Value::as_array))
        .flatten()
        .any(|block| {
            block
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|kind| ANTHROPIC_BLOCKS.contains(&kind))
        });
    let has_anthropic_tool = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|tool| tool.get("input_schema").is_some());
    let has_anthropic_field = ANTHROPIC_FIELDS.iter().any(|key| body.contains_key(*key));
    if body.contains_key("messages")
        && (has_anthropic_field || has_anthropic_block || has_anthropic_tool)
    {
        ApiFormat::AnthropicMessages
    } else {
        ApiFormat::OpenAiChat
    }
}

/// The raw bytes of `field` of the JSON object `line`, exactly as the line holds them.
fn raw_field(line: &str, field: &str) -> Result<String, String> {
    let raw: std::collections::BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(line).map_err(|error| format!("not a JSON object: {error}"))?;
    Ok(raw
        .get(field)
        .map(|value| value.get().to_string())
        .unwrap_or_default())
}

/// An example line's format: forced, else its `path`'s as the filter reads it (an LLM endpoint: the filter
/// passes anything else through undecided), else the body's shape.
fn example_format(
    forced: Option<ApiFormat>,
    path: Option<&Value>,
    body: &Map<String, Value>,
) -> Result<ApiFormat, String> {
    if let Some(format) = forced {
        return Ok(format);
    }
    match path {
        None => Ok(infer_format(body)),
        Some(path) => {
            let path = path
                .as_str()
                .ok_or_else(|| format!("\"path\" is not a string: {path}"))?;
            ApiFormat::detect("POST", path).ok_or_else(|| {
                format!(
                    "path {path:?} is not an LLM endpoint ({}): the filter passes it through \
                     undecided",
                    ApiFormat::ALL.map(|format| format.path()).join(", ")
                )
            })
        }
    }
}

/// How far `score` is from the boundaries of the tier it falls in: for the tier below and the tier
/// above, their name and the distance (a score exactly on a boundary belongs to the tier below it).
/// Null when the decision was not scored against the thresholds.
fn margin(config: &Config, routed: &Routed) -> Value {
    let Some(score) = routed.score.filter(|_| !routed.failed_open()) else {
        return Value::Null;
    };
    let names = config.tier_names();
    let bounds = config.thresholds();
    let Some(index) = names.iter().position(|name| *name == routed.tier) else {
        return Value::Null;
    };
    let side = |neighbour: Option<usize>, boundary: Option<&f64>| match (neighbour, boundary) {
        (Some(tier), Some(boundary)) => {
            json!({"tier": names.get(tier), "by": round4((score - boundary).abs())})
        }
        _ => Value::Null,
    };
    json!({
        "down": side(index.checked_sub(1), index.checked_sub(1).and_then(|i| bounds.get(i))),
        "up": side(Some(index + 1).filter(|i| *i < names.len()), bounds.get(index)),
    })
}

fn round4(value: f64) -> f64 {
    (value * 1e4).round() / 1e4
}

/// What a line is routed with: the config, who decides, and the tiers' answers for an exchange.
struct Router {
    config: Rc<Config>,
    engine: Engine,
    /// With their breakers, kept across lines as the filter keeps them across requests.
    exchange: Option<(TierAnswers, Rc<MemoryBreakers>)>,
}

fn route_line(
    router: &mut Router,
    args: &RouteArgs,
    line: &str,
    number: usize,
) -> Result<(Value, bool), String> {
    let config = Rc::clone(&router.config);
    let config = &config;
    let forced = args.format;
    let object: Map<String, Value> =
        serde_json::from_str(line).map_err(|error| format!("not a JSON object: {error}"))?;
    let id = object.get("id").cloned().unwrap_or(json!(number));
    let (body, format, id) = if object.get("request").is_some_and(Value::is_object) {
        let format = forced.unwrap_or(ApiFormat::OpenAiChat);
        (raw_field(line, "request")?, format, id)
    } else if let Some(body) = object.get("body").and_then(Value::as_object) {
        let format = example_format(forced, object.get("path"), body)?;
        (raw_field(line, "body")?, format, id)
    } else {
        let format = forced.unwrap_or_else(|| infer_format(&object));
        (line.to_string(), format, json!(number))
    };
    let routed = router.engine.route(config, format, &body)?;
    let mut result = json!({
        "id": id,
        "format": format.as_str(),
        "tier": routed.tier,
        "score": routed.score,
        "model": routed.model,
        "reasons": routed.reasons,
        "margin": margin(config, &routed),
    });
    if args.features {
        result["features"] = features_of(config, format, body.as_bytes());
    }
    if let Some((answers, breakers)) = router.exchange.as_mut() {
        let request = client_request(format, body.into_bytes());
        let board = Rc::clone(breakers);
        let settings = HostSettings {
            start_nanos: now_nanos(),
            decision_id: triage_core::new_decision_id().ok(),
            ..HostSettings::default()
        };
        let outcome = exchange::run(config, board, &request, answers, &settings);
        result["exchange"] = answers::summary(config, &outcome);
    }
    Ok((result, routed.failed_open()))
}

/// The wall clock, as the filter's host gives it (0 before the epoch).
fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// A client's POST of `body` to the format's endpoint, as the gateway would pass it on.
fn client_request(format: ApiFormat, body: Vec<u8>) -> ClientRequest {
    let headers = [
        (":method", "POST".to_string()),
        (":path", format.path().to_string()),
        (":authority", "triage-cli".to_string()),
        ("content-type", "application/json".to_string()),
        ("content-length", body.len().to_string()),
    ];
    ClientRequest {
        headers: headers
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
        body,
        trailers: false,
    }
}

/// The feature values the scorer saw (null when the body does not parse), for training a model.
fn features_of(config: &Config, format: ApiFormat, body: &[u8]) -> Value {
    match parse_request(format, body) {
        Ok(request) => {
            let features = Features::extract(&request, config.max_scan_bytes());
            let pairs = FEATURE_NAMES.iter().zip(features.values());
            Value::Object(
                pairs
                    .map(|(name, value)| (name.to_string(), json!(value)))
                    .collect(),
            )
        }
        Err(_) => Value::Null,
    }
}

pub fn run(args: RouteArgs) -> Result<bool, String> {
    let config_json = match &args.config {
        Some(path) => std::fs::read(path).map_err(|error| format!("{path}: {error}"))?,
        None => Vec::new(),
    };
    let config = Config::from_json(&config_json).map_err(|error| match &args.config {
        Some(path) => format!("{path}: invalid config: {error}"),
        None => format!("invalid default config: {error}"),
    })?;
    let exchange = match &args.answers {
        Some(_) if args.engine != EngineKind::Native => {
            return Err("--answers runs the native engine's lifecycle: drop --engine wasm".into())
        }
        Some(path) => Some((
            TierAnswers::read(path, &config)?,
            Rc::new(MemoryBreakers::new(&config)),
        )),
        None => None,
    };
    let engine = Engine::new(args.engine, &config_json)?;
    let mut router = Router {
        config: Rc::new(config),
        engine,
        exchange,
    };
    let input: Box<dyn Read> = match args.input.as_deref() {
        None | Some("-") => Box::new(std::io::stdin()),
        Some(path) => {
            Box::new(std::fs::File::open(path).map_err(|error| format!("{path}: {error}"))?)
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut all_ok = true;
    let (mut routed, mut failed_open) = (0, 0);
    for (index, line) in BufReader::new(input).lines().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(error) => {
                eprintln!("line {number}: {error}");
                all_ok = false;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match route_line(&mut router, &args, &line, number) {
            Ok((result, fail_open)) => {
                routed += 1;
                failed_open += usize::from(fail_open);
                writeln!(out, "{result}").map_err(|error| format!("stdout: {error}"))?;
            }
            Err(error) => {
                eprintln!("line {number}: {error}");
                all_ok = false;
            }
        }
    }
    out.flush().map_err(|error| format!("stdout: {error}"))?;
    if routed > 0 && failed_open == routed {
        eprintln!(
            "every one of the {routed} routed lines failed open: the router decided nothing (see \
             each line's reasons; --format forces the API format)"
        );
        all_ok = false;
    }
    Ok(all_ok)
}
