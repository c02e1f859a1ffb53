//! Whether a cheaper tier answered badly enough that the request should go to the next dearer tier.
//!
//! [`check_answer`] judges a whole (non-streamed) answer; [`crate::StreamWatch`] judges the held start
//! of a streamed one with the same rules. Both only ever say "weak" about an answer they could read:
//! a body that is not JSON, an error body, or a shape we don't know is never a reason to escalate.

use std::borrow::Cow;

use crate::format::{ApiFormat, ParsedRequest};

mod json;
pub(crate) mod shapes;

pub(crate) use json::{is_json, is_json_object, First, LogprobSum};

/// The refusal regex reads at most this much of the answer text: refusals come first.
pub(crate) const REFUSAL_SCAN_BYTES: usize = 4 * 1024;

/// Which checks run on a cheaper tier's answer; all off by default.
#[derive(Clone, Debug, Default)]
pub struct AnswerChecks {
    /// The answer was cut off by the token limit: chat `finish_reason: "length"`, Responses
    /// `status: "incomplete"` for `max_output_tokens`, Anthropic `stop_reason: "max_tokens"` (or
    /// `"model_context_window_exceeded"`). Not when the client's own limit was under
    /// [`AnswerChecks::tight_limit_tokens`]: see there.
    pub truncated: bool,
    /// A client that caps the answer under this many tokens (`max_tokens: 1` for a label) asked for
    /// a short answer: one cut at that limit is what it wanted, and the next tier would be cut at
    /// the same limit, so it is not `truncated`. A cut by the model's context window always is.
    pub tight_limit_tokens: u64,
    /// No text (whitespace counts as none) and no tool call.
    pub empty: bool,
    /// Matched against the first 4 KiB of the answer text. A refusal the provider marks as such
    /// also counts: chat's non-null `refusal`, a Responses `refusal` part, Anthropic
    /// `stop_reason: "refusal"`.
    pub refusal: Option<regex::Regex>,
    /// Only when the request asked for JSON output and the answer calls no tool: the answer text
    /// must parse as JSON.
    pub invalid_json: bool,
    /// Only when the request offered tools: every tool call's arguments must be a JSON object (chat
    /// `function.arguments` and Responses `function_call.arguments` strings must parse as one;
    /// Anthropic `tool_use.input` must be one).
    pub invalid_tool_args: bool,
    /// When the answer carries token logprobs (chat `logprobs.content[].logprob`, Responses
    /// `output_text.logprobs[].logprob`), their mean must be at least this.
    pub min_mean_logprob: Option<f64>,
}

/// What the client's request asked of the answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    /// JSON output: chat `response_format`, Responses `text.format`, Anthropic `output_config.format`
    /// (or the beta `output_format`) of type `json_object` or `json_schema`.
    pub json_output: bool,
    /// A non-empty `tools` array (or chat's legacy `functions`).
    pub tools: bool,
    /// The client's cap on the answer's tokens: chat `max_completion_tokens` (or the older
    /// `max_tokens`), Responses `max_output_tokens`, Anthropic `max_tokens`.
    pub output_limit: Option<u64>,
}

/// Why an answer was judged weak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weakness {
    Truncated,
    Empty,
    Refusal,
    InvalidJson,
    InvalidToolArgs,
    LowLogprob,
    /// A streamed answer reported an error before it was released to the client.
    StreamError,
}

impl Weakness {
    pub const ALL: [Weakness; 7] = [
        Weakness::Truncated,
        Weakness::Empty,
        Weakness::Refusal,
        Weakness::InvalidJson,
        Weakness::InvalidToolArgs,
        Weakness::LowLogprob,
        Weakness::StreamError,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Weakness::Truncated => "truncated",
            Weakness::Empty => "empty",
            Weakness::Refusal => "refusal",
            Weakness::InvalidJson => "invalid_json",
            Weakness::InvalidToolArgs => "invalid_tool_args",
            Weakness::LowLogprob => "low_logprob",
            Weakness::StreamError => "stream_error",
        }
    }
}

impl Expectations {
    /// What the request asks of the answer, read from the parse the routing decision made (so the
    /// body is parsed once, and a body the router could not read is never escalated anyway).
    pub fn of(request: &ParsedRequest) -> Expectations {
        Expectations {
            json_output: request.json_output,
            tools: request.tools_defined > 0,
            output_limit: request
                .max_output_tokens
                .filter(|tokens| tokens.is_finite() && *tokens >= 0.0)
                .map(|tokens| tokens as u64),
        }
    }
}

/// Judges a whole answer body (status 2xx) of `format`: the first failing enabled check, in this
/// order: Truncated, Empty, Refusal, InvalidJson, InvalidToolArgs, LowLogprob. None when every
/// enabled check passes, and when the body is not an answer we can read (not JSON, an error body,
/// an unknown shape). A chat answer with several choices is judged on its first.
pub fn check_answer(
    format: ApiFormat,
    body: &[u8],
    expect: &Expectations,
    checks: &AnswerChecks,
) -> Option<Weakness> {
    if !starts_an_object(body) {
        return None;
    }
    let findings = shapes::read(format, body)?;
    findings.judge(expect, checks)
}

fn starts_an_object(body: &[u8]) -> bool {
    body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'{')
}

/// What an answer showed, whatever its format and whether it was streamed.
#[derive(Debug, Default)]
pub(crate) struct Findings<'a> {
    pub truncated: bool,
    /// Cut by the model's context window, not by a token cap (only Anthropic says so).
    pub context_window: bool,
    /// Text other than whitespace was seen.
    pub has_text: bool,
    /// The answer text, whole when `text_whole`, else its start.
    pub text: Cow<'a, str>,
    pub text_whole: bool,
    pub tool_calls: usize,
    /// Some tool call's arguments are not a JSON object.
    pub bad_tool_args: bool,
    /// The provider marked the answer as a refusal.
    pub refused: bool,
    pub logprobs: LogprobSum,
}

impl<'a> Findings<'a> {
    /// Appends a piece of answer text (a non-streamed answer may have several).
    pub fn add_text(&mut self, piece: Cow<'a, str>) {
        self.has_text |= !piece.trim().is_empty();
        if self.text.is_empty() {
            self.text = piece;
        } else {
            self.text.to_mut().push_str(&piece);
        }
    }

    /// The first failing enabled check, in the documented order.
    pub fn judge(&self, expect: &Expectations, checks: &AnswerChecks) -> Option<Weakness> {
        let calls_tools = self.tool_calls > 0;
        let at_tight_limit = !self.context_window
            && expect
                .output_limit
                .is_some_and(|limit| limit < checks.tight_limit_tokens);
        if checks.truncated && self.truncated && !at_tight_limit {
            return Some(Weakness::Truncated);
        }
        if checks.empty && !self.has_text && !calls_tools && !self.refused {
            return Some(Weakness::Empty);
        }
        if let Some(refusal) = &checks.refusal {
            if self.refused || refusal.is_match(prefix(&self.text, REFUSAL_SCAN_BYTES)) {
                return Some(Weakness::Refusal);
            }
        }
        // A refusal or a tool call is not the JSON answer, and a cut text can't be parsed.
        if checks.invalid_json
            && expect.json_output
            && !calls_tools
            && !self.refused
            && self.text_whole
            && !is_json(&self.text)
        {
            return Some(Weakness::InvalidJson);
        }
        if checks.invalid_tool_args && expect.tools && self.bad_tool_args {
            return Some(Weakness::InvalidToolArgs);
        }
        if let (Some(min), Some(mean)) = (checks.min_mean_logprob, self.logprobs.mean()) {
            if mean < min {
                return Some(Weakness::LowLogprob);
            }
        }
        None
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn prefix(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests;
