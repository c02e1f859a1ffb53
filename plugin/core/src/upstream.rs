//! The body a tier's upstream gets: the tier's model written in, plus what the filter asks of the
//! answer (token logprobs from a cheaper tier whose answers are checked, a usage chunk at the end of
//! an OpenAI stream). Every change is byte-preserving; None means the body goes as the client sent it.

use crate::config::Config;
use crate::format::ApiFormat;
use crate::rewrite::{insert_member, rewrite_model, RewriteError};

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
    let checked_by_logprobs = config
        .escalation()
        .is_some_and(|policy| policy.request_logprobs && policy.checks.min_mean_logprob.is_some());
    let additions = [
        (checked_by_logprobs && judged, "logprobs", "true"),
        (
            stream && config.request_stream_usage(),
            "stream_options",
            r#"{"include_usage":true}"#,
        ),
    ];
    for (wanted, key, value) in additions {
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
