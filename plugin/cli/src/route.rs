//! `triage route`: routes request bodies or routing-dataset rows offline with the filter's core.

use std::io::{BufRead, BufReader, Read, Write};

use std::rc::Rc;

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use triage_core::explain::{feature_values, infer_format, Routed};
use triage_core::lifecycle::exchange::answers::{self, TierAnswers};
use triage_core::lifecycle::MemoryBreakers;
use triage_core::{decide, ApiFormat, Config, RequestHead};

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
    /// JSON object keyed by tier name; see `triage_core::lifecycle::exchange::answers` or the README) and add "exchange": where
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
                Ok(Routed::from(decide(config, &head, body.as_bytes())))
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
    let mut result = routed.to_json(config, format);
    result["id"] = id;
    if args.features {
        result["features"] = feature_values(config, format, body.as_bytes());
    }
    if let Some((tiers, breakers)) = router.exchange.as_mut() {
        let board = Rc::clone(breakers);
        let body = body.into_bytes();
        result["exchange"] = answers::run_shown(config, board, format, body, tiers, now_nanos());
    }
    Ok((result, routed.failed_open()))
}

/// The wall clock, as the filter's host gives it (0 before the epoch).
fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// The tiers' answers in FILE (see `triage_core::lifecycle::exchange::answers`).
fn read_answers(path: &str, config: &Config) -> Result<TierAnswers, String> {
    let json = std::fs::read(path).map_err(|error| format!("{path}: {error}"))?;
    TierAnswers::from_json(&json, config).map_err(|error| format!("{path}: {error}"))
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
            read_answers(path, &config)?,
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
