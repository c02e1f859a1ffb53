//! `triage route`: routes request bodies or routing-dataset rows offline with the filter's core.

use std::io::{BufRead, BufReader, Read, Write};

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use triage_core::{decide, parse_request, ApiFormat, Config, Features, RequestHead, FEATURE_NAMES};

/// Reads one JSON object per line: a request body, or a routing-dataset row whose `request` field is
/// the body. Prints one JSON object per line: {"id", "tier", "score", "model", "reasons"}.
#[derive(clap::Args, Debug)]
pub struct RouteArgs {
    /// Plugin config (JSON, as given to the filter); the shipped defaults when absent.
    #[arg(long)]
    config: Option<String>,
    /// Input file, or - for stdin (the default).
    #[arg(long)]
    input: Option<String>,
    /// Force the API format of every line (dataset rows are OpenAI chat; bare bodies are inferred).
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

/// Anthropic-only markers: a top-level `system`, or content blocks the OpenAI formats do not have.
fn infer_format(body: &Map<String, Value>) -> ApiFormat {
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
    if body.contains_key("messages") && (body.contains_key("system") || has_anthropic_block) {
        ApiFormat::AnthropicMessages
    } else {
        ApiFormat::OpenAiChat
    }
}

fn route_line(
    config: &Config,
    engine: &mut Engine,
    args: &RouteArgs,
    line: &str,
    number: usize,
) -> Result<Value, String> {
    let forced = args.format;
    let object: Map<String, Value> =
        serde_json::from_str(line).map_err(|error| format!("not a JSON object: {error}"))?;
    let row_request = object.get("request").filter(|request| request.is_object());
    let (body, format, id) = match row_request {
        Some(_) => {
            // The row's raw request bytes, exactly as the dataset holds them.
            let raw: std::collections::BTreeMap<String, Box<RawValue>> = serde_json::from_str(line)
                .map_err(|error| format!("not a JSON object: {error}"))?;
            let body = raw
                .get("request")
                .map(|request| request.get().to_string())
                .unwrap_or_default();
            let id = object.get("id").cloned().unwrap_or(json!(number));
            (body, forced.unwrap_or(ApiFormat::OpenAiChat), id)
        }
        None => (
            line.to_string(),
            forced.unwrap_or_else(|| infer_format(&object)),
            json!(number),
        ),
    };
    let routed = engine.route(config, format, &body)?;
    let mut result = json!({
        "id": id,
        "tier": routed.tier,
        "score": routed.score,
        "model": routed.model,
        "reasons": routed.reasons,
    });
    if args.features {
        result["features"] = features_of(config, format, body.as_bytes());
    }
    Ok(result)
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
    let mut engine = Engine::new(args.engine, &config_json)?;
    let input: Box<dyn Read> = match args.input.as_deref() {
        None | Some("-") => Box::new(std::io::stdin()),
        Some(path) => {
            Box::new(std::fs::File::open(path).map_err(|error| format!("{path}: {error}"))?)
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut all_ok = true;
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
        match route_line(&config, &mut engine, &args, &line, number) {
            Ok(result) => writeln!(out, "{result}").map_err(|error| format!("stdout: {error}"))?,
            Err(error) => {
                eprintln!("line {number}: {error}");
                all_ok = false;
            }
        }
    }
    out.flush().map_err(|error| format!("stdout: {error}"))?;
    Ok(all_ok)
}
