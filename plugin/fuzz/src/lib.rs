//! What the fuzz targets share: how they read the fuzzer's bytes (a control prefix, then the input),
//! the configuration they run with, and what a body sent upstream may differ in from the client's.

pub mod input;
pub mod stream;

use std::sync::LazyLock;

use serde_json::Value;
use triage_core::{AnswerChecks, ApiFormat, Config};

/// The shipped plugin config, as Envoy gives it to the filter.
pub static SHIPPED_CONFIG: LazyLock<Config> = LazyLock::new(|| {
    Config::from_json(include_bytes!("../../../envoy/plugin-config.json"))
        .unwrap_or_else(|error| panic!("the shipped plugin config is refused: {error}"))
});

/// Every answer check switched on, with a refusal pattern (compiled once, as the filter does).
pub static ALL_CHECKS: LazyLock<AnswerChecks> = LazyLock::new(|| AnswerChecks {
    truncated: true,
    tight_limit_tokens: 16,
    empty: true,
    refusal: regex::Regex::new(r"(?i)\bI (?:can't|cannot) help\b").ok(),
    invalid_json: true,
    invalid_tool_args: true,
    min_mean_logprob: Some(-1.0),
});

/// The API format a control byte selects.
pub fn format(control: u8) -> ApiFormat {
    ApiFormat::ALL[usize::from(control) % ApiFormat::ALL.len()]
}

/// `input` cut into chunks at points drawn from `seed` (1 to 64 bytes each): how a body arrives
/// from Envoy, split anywhere.
pub fn chunks(input: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let take = ((state >> 16) as usize % 64 + 1).min(rest.len());
        let (chunk, tail) = rest.split_at(take);
        out.push(chunk);
        rest = tail;
    }
    out
}

/// The body triage sends upstream, against the client's: when the client's body is JSON, the sent
/// one is JSON too and equal to it but for `model` and the members triage may add (`added`: key
/// and value as JSON text, each added only where the client's body has no such key: a client's own
/// setting stands). Returns the sent body's `model`, for the caller to check against the model it
/// expects; None when the client's body is not JSON (then nothing is promised about the result).
pub fn assert_only_model_changed(
    client: &[u8],
    sent: &[u8],
    added: &[(&str, &str)],
) -> Option<Value> {
    let mut client: Value = serde_json::from_slice(client).ok()?;
    let mut sent: Value = serde_json::from_slice(sent)
        .unwrap_or_else(|error| panic!("valid JSON rewritten into invalid JSON: {error}"));
    let model = sent["model"].clone();
    if let (Some(sent), Some(client)) = (sent.as_object_mut(), client.as_object_mut()) {
        for (key, value) in added {
            if client.contains_key(*key) {
                continue;
            }
            if let Some(have) = sent.remove(*key) {
                let want: Value = serde_json::from_str(value)
                    .unwrap_or_else(|error| panic!("the added {key} is not JSON: {error}"));
                assert_eq!(have, want, "{key} added with another value");
            }
        }
        sent.remove("model");
        client.remove("model");
    }
    assert_eq!(sent, client, "the rewrite changed more than the model");
    Some(model)
}
