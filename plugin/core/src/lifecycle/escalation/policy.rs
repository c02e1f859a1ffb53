//! The `escalation` section: when a cheaper tier fails or answers badly, which checks run, how far
//! and how long a request may move up, and when a tier is skipped for a while.

use regex::RegexBuilder;
use serde::Deserialize;

use super::answer::AnswerChecks;
use super::breaker::BreakerSettings;
use crate::config::{header_name, ConfigError, RawHeader};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "Escalation")
)]
pub(crate) struct RawEscalation {
    max_escalations: Option<u32>,
    deadline_ms: Option<u64>,
    attempt_timeout_ms: Option<u64>,
    on_status: Option<Vec<u16>>,
    checks: Option<RawChecks>,
    request_logprobs: Option<bool>,
    stream_hold_bytes: Option<u64>,
    never_when: Option<Vec<RawHeader>>,
    circuit_breaker: Option<RawBreaker>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "AnswerChecks")
)]
struct RawChecks {
    truncated: Option<bool>,
    tight_limit_tokens: Option<u64>,
    empty: Option<bool>,
    refusal_regex: Option<String>,
    invalid_json: Option<bool>,
    invalid_tool_args: Option<bool>,
    min_mean_logprob: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "CircuitBreaker")
)]
struct RawBreaker {
    window: Option<usize>,
    min_requests: Option<usize>,
    failure_rate: Option<f64>,
    cooldown_ms: Option<u64>,
}

/// The validated escalation policy.
#[derive(Clone, Debug)]
pub struct EscalationPolicy {
    /// Most tiers a request moves up (1: one retry on the next tier).
    pub max_escalations: u32,
    /// No escalation starts later than this after the request arrived.
    pub deadline_ms: u64,
    /// Timeout of one escalated attempt (also capped by what is left of the deadline).
    pub attempt_timeout_ms: u64,
    /// Upstream statuses that count as the tier failing.
    pub on_status: Vec<u16>,
    pub checks: AnswerChecks,
    /// Ask OpenAI chat requests sent to a cheaper tier for token logprobs.
    pub request_logprobs: bool,
    /// How many bytes of a cheaper tier's stream are held back before it is released to the client.
    pub stream_hold_bytes: usize,
    /// Requests carrying one of these (lowercase name, value) are never escalated.
    pub never_when: Vec<(String, String)>,
    pub breaker: BreakerSettings,
}

impl EscalationPolicy {
    pub fn escalates_status(&self, status: u16) -> bool {
        self.on_status.contains(&status)
    }

    /// Whether any check reads a 2xx answer (else the filter never holds one back).
    pub fn checks_answers(&self) -> bool {
        let checks = &self.checks;
        checks.truncated
            || checks.empty
            || checks.refusal.is_some()
            || checks.invalid_json
            || checks.invalid_tool_args
            || checks.min_mean_logprob.is_some()
    }

    pub fn never_for(&self, headers: &[(String, String)]) -> bool {
        self.never_when.iter().any(|(name, value)| {
            headers
                .iter()
                .any(|(have, have_value)| have.eq_ignore_ascii_case(name) && have_value == value)
        })
    }
}

/// Rate limits and every 5xx: the statuses a provider answers when the model could not.
fn default_on_status() -> Vec<u16> {
    let mut statuses = vec![429];
    statuses.extend(500..=599);
    statuses
}

const DEFAULT_DEADLINE_MS: u64 = 120_000;
const DEFAULT_ATTEMPT_TIMEOUT_MS: u64 = 60_000;
const DEFAULT_STREAM_HOLD_BYTES: u64 = 1024;
/// Bounds the memory a refusal regex may take inside the VM.
const REFUSAL_REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(crate) fn policy(raw: Option<RawEscalation>) -> Result<Option<EscalationPolicy>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let max_escalations = raw.max_escalations.unwrap_or(1);
    if max_escalations == 0 {
        return Err(ConfigError::new(
            "escalation.max_escalations",
            "must be at least 1 (leave out `escalation` to turn it off)",
        ));
    }
    let deadline_ms = positive(
        "escalation.deadline_ms",
        raw.deadline_ms,
        DEFAULT_DEADLINE_MS,
    )?;
    let attempt_timeout_ms = positive(
        "escalation.attempt_timeout_ms",
        raw.attempt_timeout_ms,
        DEFAULT_ATTEMPT_TIMEOUT_MS,
    )?;
    let on_status = raw.on_status.unwrap_or_else(default_on_status);
    if let Some(index) = on_status
        .iter()
        .position(|s| !(100..=599).contains(s) || *s < 400)
    {
        return Err(ConfigError::new(
            format!("escalation.on_status[{index}]"),
            format!("{} is not an HTTP error status (400-599)", on_status[index]),
        ));
    }
    let stream_hold_bytes = positive(
        "escalation.stream_hold_bytes",
        raw.stream_hold_bytes,
        DEFAULT_STREAM_HOLD_BYTES,
    )?;
    let never_when = raw
        .never_when
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(index, header)| {
            let name = header_name(
                &format!("escalation.never_when[{index}].name"),
                &header.name,
            )?;
            Ok((name, header.value))
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    Ok(Some(EscalationPolicy {
        max_escalations,
        deadline_ms,
        attempt_timeout_ms,
        on_status,
        checks: checks(raw.checks)?,
        request_logprobs: raw.request_logprobs.unwrap_or(false),
        stream_hold_bytes: usize::try_from(stream_hold_bytes).unwrap_or(usize::MAX),
        never_when,
        breaker: breaker(raw.circuit_breaker)?,
    }))
}

fn positive(path: &str, value: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    match value.unwrap_or(default) {
        0 => Err(ConfigError::new(path, "must be at least 1")),
        value => Ok(value),
    }
}

/// Client token caps under this are taken as intended (labels, one-word answers); see
/// [`AnswerChecks::tight_limit_tokens`].
pub const DEFAULT_TIGHT_LIMIT_TOKENS: u64 = 128;

/// Without a `checks` object only failures escalate; each check is opt-in.
fn checks(raw: Option<RawChecks>) -> Result<AnswerChecks, ConfigError> {
    let Some(raw) = raw else {
        return Ok(AnswerChecks::default());
    };
    let refusal = match raw.refusal_regex {
        Some(pattern) => Some(
            RegexBuilder::new(&pattern)
                .size_limit(REFUSAL_REGEX_SIZE_LIMIT)
                .build()
                .map_err(|error| {
                    ConfigError::new(
                        "escalation.checks.refusal_regex",
                        format!("invalid regex: {error}"),
                    )
                })?,
        ),
        None => None,
    };
    if let Some(logprob) = raw.min_mean_logprob {
        if !logprob.is_finite() || logprob > 0.0 {
            return Err(ConfigError::new(
                "escalation.checks.min_mean_logprob",
                format!("must be a log-probability (<= 0), got {logprob}"),
            ));
        }
    }
    Ok(AnswerChecks {
        truncated: raw.truncated.unwrap_or(false),
        tight_limit_tokens: raw.tight_limit_tokens.unwrap_or(DEFAULT_TIGHT_LIMIT_TOKENS),
        empty: raw.empty.unwrap_or(false),
        refusal,
        invalid_json: raw.invalid_json.unwrap_or(false),
        invalid_tool_args: raw.invalid_tool_args.unwrap_or(false),
        min_mean_logprob: raw.min_mean_logprob,
    })
}

fn breaker(raw: Option<RawBreaker>) -> Result<BreakerSettings, ConfigError> {
    let defaults = BreakerSettings::default();
    let Some(raw) = raw else { return Ok(defaults) };
    let settings = BreakerSettings {
        window: raw.window.unwrap_or(defaults.window),
        min_requests: raw.min_requests.unwrap_or(defaults.min_requests),
        failure_rate: raw.failure_rate.unwrap_or(defaults.failure_rate),
        cooldown_ms: raw.cooldown_ms.unwrap_or(defaults.cooldown_ms),
    };
    let path = "escalation.circuit_breaker";
    if settings.window == 0 || settings.window > 10_000 {
        return Err(ConfigError::new(
            format!("{path}.window"),
            "must be within [1, 10000]",
        ));
    }
    if settings.min_requests == 0 || settings.min_requests > settings.window {
        return Err(ConfigError::new(
            format!("{path}.min_requests"),
            format!("must be within [1, window ({})]", settings.window),
        ));
    }
    if !(settings.failure_rate > 0.0 && settings.failure_rate <= 1.0) {
        return Err(ConfigError::new(
            format!("{path}.failure_rate"),
            format!("must be within (0, 1], got {}", settings.failure_rate),
        ));
    }
    if settings.cooldown_ms == 0 {
        return Err(ConfigError::new(
            format!("{path}.cooldown_ms"),
            "must be at least 1",
        ));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests;
