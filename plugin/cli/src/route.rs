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

fn path_of(format: ApiFormat) -> &'static str {
    match format {
        ApiFormat::OpenAiChat => "/v1/chat/completions",
        ApiFormat::OpenAiResponses => "/v1/responses",
        ApiFormat::AnthropicMessages => "/v1/messages",
    }
}

fn route_line(
    config: &Config,
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
    let head = RequestHead {
        format,
        path: path_of(format),
        headers: &[],
    };
    let decision = decide(config, &head, body.as_bytes());
    let mut result = json!({
        "id": id,
        "tier": decision.tier,
        "score": decision.score,
        "model": decision.model.or(decision.requested_model),
        "reasons": decision.reasons,
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
    let config = match &args.config {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|error| format!("{path}: {error}"))?;
            Config::from_json(&bytes).map_err(|error| format!("{path}: invalid config: {error}"))?
        }
        None => Config::default(),
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
        match route_line(&config, &args, &line, number) {
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
