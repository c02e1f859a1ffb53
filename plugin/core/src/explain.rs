//! A decision as a person reads it: the JSON object `triage route` prints for a line and the web
//! package's `decide` returns (`plugin/web`), built here once so that the two cannot drift. The
//! filter never calls it: it writes headers, not JSON.

use serde_json::{json, Map, Value};

use crate::{parse_request, ApiFormat, Config, Decision, Features, FEATURE_NAMES};

/// What is shown of a decision, whichever engine made it (this core, or `triage.wasm` read back
/// from its headers by the CLI's wasm engine).
#[derive(Clone, Debug, PartialEq)]
pub struct Routed {
    pub tier: String,
    pub score: Option<f64>,
    /// What the upstream receives: the model triage writes, else the client's own.
    pub model: Option<String>,
    /// As `x-triage-reason` spells them: "simple_task-1.49" for a scored decision, else its one
    /// cause ("rule: proofs", "fail_open: invalid_json", "explicit_model: gpt-4o").
    pub reasons: Vec<String>,
}

impl From<Decision> for Routed {
    fn from(decision: Decision) -> Routed {
        Routed {
            tier: decision.tier,
            score: decision.score,
            model: decision.model.or(decision.requested_model),
            reasons: decision.reasons,
        }
    }
}

impl Routed {
    /// The core's and the module's reasons both start a fail-open with this.
    pub fn failed_open(&self) -> bool {
        self.reasons
            .first()
            .is_some_and(|reason| reason.starts_with("fail_open: "))
    }

    /// How far the score is from the boundaries of the tier it falls in: for the tier below and
    /// the tier above, their name and the distance (a score exactly on a boundary belongs to the
    /// tier below it). Null when the decision was not scored against the thresholds.
    pub fn margin(&self, config: &Config) -> Value {
        let Some(score) = self.score.filter(|_| !self.failed_open()) else {
            return Value::Null;
        };
        let names = config.tier_names();
        let bounds = config.thresholds();
        let Some(index) = names.iter().position(|name| *name == self.tier) else {
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

    /// Each reason of a scored decision as `{"feature", "contribution"}`, the contribution to the
    /// calibrated logit as the header spells it (two decimals), largest first as the reasons are;
    /// empty for a decision that was not scored (its one reason is a cause, whose text, a model
    /// name such as "gpt-4", could read as a signed number).
    pub fn contributions(&self) -> Value {
        if self.score.is_none() || self.failed_open() {
            return json!([]);
        }
        let parsed = self.reasons.iter().filter_map(|reason| {
            let sign = reason.rfind(['+', '-'])?;
            let contribution: f64 = reason.get(sign..)?.parse().ok()?;
            Some(json!({"feature": reason.get(..sign)?, "contribution": contribution}))
        });
        Value::Array(parsed.collect())
    }

    /// `{"format", "tier", "score", "model", "reasons", "margin"}`: one line of `triage route`
    /// without its id.
    pub fn to_json(&self, config: &Config, format: ApiFormat) -> Value {
        json!({
            "format": format.as_str(),
            "tier": self.tier,
            "score": self.score,
            "model": self.model,
            "reasons": self.reasons,
            "margin": self.margin(config),
        })
    }
}

fn round4(value: f64) -> f64 {
    (value * 1e4).round() / 1e4
}

/// The feature values the scorer saw, by name (null when the body does not parse).
pub fn feature_values(config: &Config, format: ApiFormat, body: &[u8]) -> Value {
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

/// The API format of a bare body, from what only one format has: `input` is the Responses API's; a
/// top-level `system`, `stop_sequences` or `top_k`, content blocks the OpenAI formats lack, or tools
/// with an `input_schema` are Anthropic's. Anything else reads as OpenAI chat, which parses every body
/// that has none of those the same way Anthropic's would.
pub fn infer_format(body: &Map<String, Value>) -> ApiFormat {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(score: Option<f64>, reasons: &[&str]) -> Routed {
        Routed {
            tier: "small".into(),
            score,
            model: None,
            reasons: reasons.iter().map(|reason| reason.to_string()).collect(),
        }
    }

    #[test]
    fn contributions_are_read_from_scored_reasons_only() {
        let scored = routed(
            Some(0.02),
            &["simple_task-1.49", "ngrams-0.40", "tokens+0.18"],
        );
        assert_eq!(
            scored.contributions(),
            json!([
                {"feature": "simple_task", "contribution": -1.49},
                {"feature": "ngrams", "contribution": -0.40},
                {"feature": "tokens", "contribution": 0.18},
            ])
        );
        for unscored in [
            routed(None, &["explicit_model: gpt-4"]),
            routed(None, &["rule: proofs"]),
            routed(Some(0.5), &["fail_open: invalid_json"]),
        ] {
            assert_eq!(unscored.contributions(), json!([]), "{unscored:?}");
        }
    }

    #[test]
    fn a_decision_shows_the_model_the_upstream_gets() {
        let config = Config::default();
        let head = crate::RequestHead {
            format: ApiFormat::OpenAiChat,
            path: ApiFormat::OpenAiChat.path(),
            headers: &[],
            identity: crate::Identity::ANONYMOUS,
        };
        let explicit = br#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}"#;
        let routed = Routed::from(crate::decide(&config, &head, explicit));
        assert_eq!(routed.model.as_deref(), Some("gpt-4o"));
        assert_eq!(routed.margin(&config), Value::Null, "not scored");
        let shown = routed.to_json(&config, ApiFormat::OpenAiChat);
        assert_eq!(shown["format"], "openai_chat");
        assert_eq!(shown["reasons"], json!(["explicit_model: gpt-4o"]));
    }
}
