//! The body a tier's upstream gets: the tier's model written in, plus what the filter asks of the
//! answer (token logprobs from a cheaper tier whose answers are checked, a usage chunk at the end of
//! an OpenAI stream). Every change is byte-preserving; None means the body goes as the client sent it.

use crate::config::Config;
use crate::format::ApiFormat;
use crate::rewrite::{insert_member, json_string, rewrite_model, RewriteError};

/// Asked of a judged cheaper tier's chat answer when the checks read logprobs: (key, value JSON).
const LOGPROBS: (&str, &str) = ("logprobs", "true");
/// Asked of an OpenAI chat stream so its last chunk carries the usage: (key, value JSON).
const STREAM_USAGE: (&str, &str) = ("stream_options", r#"{"include_usage":true}"#);

/// `judged`: this tier's answer will be checked (a cheaper tier with an escalation left after it);
/// only then are logprobs asked for.
pub fn upstream_body(
    config: &Config,
    format: ApiFormat,
    body: &[u8],
    judged: bool,
    model: Option<&str>,
    stream: bool,
) -> Result<Option<Vec<u8>>, RewriteError> {
    let mut changed = match model {
        Some(model) => Some(rewrite_model(body, model)?),
        None => None,
    };
    if format != ApiFormat::OpenAiChat {
        return Ok(changed);
    }
    let additions = [
        (asks_logprobs(config) && judged, LOGPROBS),
        (stream && config.request_stream_usage(), STREAM_USAGE),
    ];
    for (wanted, (key, value)) in additions {
        if !wanted {
            continue;
        }
        // A client's own setting (the key already present) stands.
        if let Some(added) = insert_member(changed.as_deref().unwrap_or(body), key, value) {
            changed = Some(added);
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests;

fn asks_logprobs(config: &Config) -> bool {
    config
        .escalation()
        .is_some_and(|policy| policy.request_logprobs && policy.checks.min_mean_logprob.is_some())
}

/// The most bytes [`upstream_body`] can add to a body this config routes: the longest model a tier
/// writes for the format, inserted as a new first member (`"model":"<name>",`, longer than replacing
/// any requested model, which is a non-empty string or `null`), plus the members the filter may add
/// to a chat body. A routable body has at most one top-level `model` (a duplicate key fails the
/// parse, and the filter then writes no model), so the model is written once.
///
/// Envoy holds the body the filter replaces in the same buffer, with the same limit, as the body the
/// client sent: the config's Envoy limit must leave this much room above `limits.max_body_bytes`.
pub fn max_growth(config: &Config) -> usize {
    let member = |key: &str, value_bytes: usize| json_string(key).len() + 1 + value_bytes + 1;
    ApiFormat::ALL
        .into_iter()
        .map(|format| {
            let model = (0..config.tier_names().len())
                .filter_map(|tier| config.tier_model(tier, format))
                .map(|model| member("model", json_string(model).len()))
                .max()
                .unwrap_or(0);
            if format != ApiFormat::OpenAiChat {
                return model;
            }
            let logprobs = if asks_logprobs(config) {
                member(LOGPROBS.0, LOGPROBS.1.len())
            } else {
                0
            };
            let stream_usage = if config.request_stream_usage() {
                member(STREAM_USAGE.0, STREAM_USAGE.1.len())
            } else {
                0
            };
            model + logprobs + stream_usage
        })
        .max()
        .unwrap_or(0)
}
