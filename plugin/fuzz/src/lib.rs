//! What the fuzz targets share: how they read the fuzzer's bytes (a control prefix, then the input)
//! and the configuration they run with.

use std::sync::LazyLock;

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
