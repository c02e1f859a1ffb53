use crate::lifecycle::escalation::answer::Expectations;

/// Why a request was sent to the default tier without being scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOpen {
    EmptyBody,
    InvalidJson,
    UnknownShape,
    BodyTooLarge,
    /// The host could not hand over the buffered body.
    BodyUnavailable,
}

impl FailOpen {
    pub fn as_str(&self) -> &'static str {
        match self {
            FailOpen::EmptyBody => "empty_body",
            FailOpen::InvalidJson => "invalid_json",
            FailOpen::UnknownShape => "unknown_shape",
            FailOpen::BodyTooLarge => "body_too_large",
            FailOpen::BodyUnavailable => "body_unavailable",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    Scored,
    /// The name of the rule that forced the tier.
    Rule(String),
    ExplicitModel,
    FailOpen(FailOpen),
    /// An allowed caller picked the tier; `from` is the tier triage chose itself.
    Override {
        from: String,
    },
}

impl Cause {
    /// The cause's kind, a bounded set (a metric label): rule names and fail-open reasons are not.
    pub fn kind(&self) -> &'static str {
        match self {
            Cause::Scored => "scored",
            Cause::Rule(_) => "rule",
            Cause::ExplicitModel => "explicit_model",
            Cause::FailOpen(_) => "fail_open",
            Cause::Override { .. } => "override",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub tier: String,
    pub score: Option<f64>,
    pub model: Option<String>,
    pub requested_model: Option<String>,
    pub cause: Cause,
    pub reasons: Vec<String>,
    /// The request asked for a streamed answer.
    pub stream: bool,
    /// What the request asks of the answer (JSON, tool calls, a token cap), for the checks of an
    /// escalation; nothing for a body the router could not read.
    pub expect: Expectations,
}

impl Decision {
    pub fn score_header(&self) -> Option<String> {
        self.score.map(|score| format!("{score:.4}"))
    }

    pub fn reason_header(&self) -> String {
        let text = match &self.cause {
            Cause::Scored if self.reasons.is_empty() => "scored: none".to_string(),
            Cause::Scored => format!("scored: {}", self.reasons.join(", ")),
            Cause::Rule(name) => format!("rule: {name}"),
            Cause::ExplicitModel => {
                format!(
                    "explicit_model: {}",
                    self.requested_model.as_deref().unwrap_or("")
                )
            }
            Cause::FailOpen(cause) => format!("fail_open: {}", cause.as_str()),
            Cause::Override { from } => format!("override: {from}->{}", self.tier),
        };
        header_safe(&text)
    }
}

/// Longest header value triage writes: a client's model name must not bloat every response.
const MAX_HEADER_VALUE_CHARS: usize = 256;

/// Model and rule names come from clients and configs: keep the header value visible ASCII (no
/// header injection through a model name) and short.
fn header_safe(text: &str) -> String {
    text.chars()
        .take(MAX_HEADER_VALUE_CHARS)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(cause: Cause, score: Option<f64>, reasons: &[&str]) -> Decision {
        Decision {
            tier: "mid".into(),
            score,
            model: None,
            requested_model: Some("gpt-4o\n".into()),
            cause,
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            stream: false,
            expect: Expectations::default(),
        }
    }

    #[test]
    fn headers() {
        let cases = [
            (
                decision(Cause::Scored, Some(0.42134), &["code+0.41", "math+0.22"]),
                Some("0.4213"),
                "scored: code+0.41, math+0.22",
            ),
            (
                decision(Cause::Scored, Some(1.0), &[]),
                Some("1.0000"),
                "scored: none",
            ),
            (
                decision(Cause::Rule("proofs".into()), None, &[]),
                None,
                "rule: proofs",
            ),
            (
                decision(Cause::ExplicitModel, None, &[]),
                None,
                "explicit_model: gpt-4o?",
            ),
            (
                decision(Cause::FailOpen(FailOpen::InvalidJson), None, &[]),
                None,
                "fail_open: invalid_json",
            ),
            (
                decision(Cause::FailOpen(FailOpen::BodyTooLarge), None, &[]),
                None,
                "fail_open: body_too_large",
            ),
            (
                decision(
                    Cause::Override {
                        from: "small".into(),
                    },
                    Some(0.1),
                    &["code+0.41"],
                ),
                Some("0.1000"),
                "override: small->mid",
            ),
        ];
        for (d, score, reason) in cases {
            assert_eq!(d.score_header().as_deref(), score);
            assert_eq!(d.reason_header(), reason);
        }
    }

    #[test]
    fn header_values_are_capped() {
        let mut long = decision(Cause::ExplicitModel, None, &[]);
        long.requested_model = Some("m".repeat(10_000));
        assert_eq!(long.reason_header().len(), MAX_HEADER_VALUE_CHARS);
    }

    #[test]
    fn fail_open_names() {
        assert_eq!(FailOpen::EmptyBody.as_str(), "empty_body");
        assert_eq!(FailOpen::UnknownShape.as_str(), "unknown_shape");
    }
}
