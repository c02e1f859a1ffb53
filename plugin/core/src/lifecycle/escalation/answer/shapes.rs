//! The answer bodies and stream events of the three formats, read with borrowed serde types. A
//! whole answer and the events of a streamed one share their types (each derived type is code in
//! the wasm module); the fields of both are optional, so each reader checks what it needs.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{is_json_object, Findings, First, LogprobSum};
use crate::format::ApiFormat;

/// None when the body is not an answer of `format` we can read.
pub(super) fn read(format: ApiFormat, body: &[u8]) -> Option<Findings<'_>> {
    match format {
        ApiFormat::OpenAiChat => serde_json::from_slice::<ChatBody>(body).ok()?.findings(),
        ApiFormat::OpenAiResponses => serde_json::from_slice::<ResponseObject>(body)
            .ok()?
            .findings(),
        ApiFormat::AnthropicMessages => serde_json::from_slice::<AnthropicBody>(body)
            .ok()?
            .findings(),
    }
}

pub(crate) type Text<'a> = Option<Cow<'a, str>>;

// ---- OpenAI chat completions ---------------------------------------------------------------------

/// A chat completion, or one chunk of a streamed one.
#[derive(Deserialize)]
pub(crate) struct ChatBody<'a> {
    #[serde(borrow, default)]
    pub choices: Option<First<ChatChoice<'a>>>,
    /// A stream reports an error in a chunk of its own.
    #[serde(default)]
    pub error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
pub(crate) struct ChatChoice<'a> {
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(borrow, default)]
    pub message: Option<ChatMessage<'a>>,
    /// A chunk's piece of the message.
    #[serde(borrow, default)]
    pub delta: Option<ChatMessage<'a>>,
    #[serde(borrow, default)]
    pub finish_reason: Text<'a>,
    #[serde(default)]
    pub logprobs: Option<ChatLogprobs>,
}

#[derive(Deserialize)]
pub(crate) struct ChatMessage<'a> {
    #[serde(borrow, default)]
    pub content: Text<'a>,
    #[serde(borrow, default)]
    pub refusal: Text<'a>,
    #[serde(borrow, default)]
    pub tool_calls: Option<Vec<ChatToolCall<'a>>>,
    /// The legacy single function call.
    #[serde(borrow, default)]
    pub function_call: Option<ChatFunction<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct ChatToolCall<'a> {
    /// Which call a streamed piece belongs to.
    #[serde(default)]
    pub index: Option<u64>,
    /// None for a `custom` tool, whose input is free text.
    #[serde(borrow, default)]
    pub function: Option<ChatFunction<'a>>,
}

#[derive(Deserialize)]
pub(crate) struct ChatFunction<'a> {
    #[serde(borrow, default)]
    pub arguments: Text<'a>,
}

#[derive(Deserialize)]
pub(crate) struct ChatLogprobs {
    #[serde(default)]
    pub content: Option<LogprobSum>,
}

impl<'a> ChatBody<'a> {
    fn findings(self) -> Option<Findings<'a>> {
        let choice = self.choices?.0?;
        let mut findings = Findings {
            truncated: choice.finish_reason.as_deref() == Some("length"),
            text_whole: true,
            ..Findings::default()
        };
        if let Some(message) = choice.message {
            findings.add_text(message.content.unwrap_or_default());
            findings.refused = message.refusal.is_some_and(|refusal| !refusal.is_empty());
            let functions = message
                .tool_calls
                .into_iter()
                .flatten()
                .map(|call| call.function);
            for function in functions.chain(message.function_call.map(Some)) {
                findings.tool_calls += 1;
                let arguments = function.and_then(|function| function.arguments);
                findings.bad_tool_args |= arguments.is_some_and(|args| !is_json_object(&args));
            }
        }
        if let Some(sum) = choice.logprobs.and_then(|logprobs| logprobs.content) {
            findings.logprobs = sum;
        }
        Some(findings)
    }
}

// ---- OpenAI responses ----------------------------------------------------------------------------

/// A response object: the whole answer, or the `response` of a stream event.
#[derive(Deserialize)]
pub(crate) struct ResponseObject<'a> {
    #[serde(borrow, default)]
    pub status: Text<'a>,
    #[serde(borrow, default)]
    pub incomplete_details: Option<IncompleteDetails<'a>>,
    #[serde(borrow, default)]
    pub output: Option<Vec<OutputItem<'a>>>,
}

#[derive(Deserialize)]
pub(crate) struct IncompleteDetails<'a> {
    #[serde(borrow, default)]
    pub reason: Text<'a>,
}

/// The fields of the Responses stream events we read; `delta` is a string in every event that has
/// one.
#[derive(Deserialize)]
pub(crate) struct ResponsesEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Text<'a>,
    #[serde(borrow, default)]
    pub delta: Text<'a>,
    #[serde(default)]
    pub logprobs: Option<LogprobSum>,
    #[serde(borrow, default)]
    pub item: Option<OutputItem<'a>>,
    #[serde(borrow, default)]
    pub arguments: Text<'a>,
    #[serde(borrow, default)]
    pub response: Option<ResponseObject<'a>>,
}

/// An output item, or a content part of a message item: whichever fields it has.
#[derive(Deserialize)]
pub(crate) struct OutputItem<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Text<'a>,
    #[serde(borrow, default)]
    pub content: Option<Vec<OutputItem<'a>>>,
    #[serde(borrow, default)]
    pub arguments: Text<'a>,
    #[serde(borrow, default)]
    pub text: Text<'a>,
    #[serde(default)]
    pub logprobs: Option<LogprobSum>,
}

impl OutputItem<'_> {
    /// A call of a tool the client defined (the provider's own tools, web search and the like, are
    /// not the answer).
    pub fn is_tool_call(&self) -> bool {
        matches!(
            self.kind.as_deref(),
            Some("function_call" | "custom_tool_call")
        )
    }
}

/// Cut off by the token limit; an incomplete response without a reason is taken as cut off too.
pub(crate) fn incomplete_for_tokens(response: Option<&ResponseObject>) -> bool {
    let details = response.and_then(|response| response.incomplete_details.as_ref());
    matches!(
        details.and_then(|details| details.reason.as_deref()),
        None | Some("max_output_tokens")
    )
}

impl<'a> ResponseObject<'a> {
    fn findings(self) -> Option<Findings<'a>> {
        // A failed (or still running) response is no answer to judge.
        if !matches!(
            self.status.as_deref(),
            None | Some("completed" | "incomplete")
        ) {
            return None;
        }
        let mut findings = Findings {
            truncated: self.status.as_deref() == Some("incomplete")
                && incomplete_for_tokens(Some(&self)),
            text_whole: true,
            ..Findings::default()
        };
        for item in self.output? {
            if item.is_tool_call() {
                findings.tool_calls += 1;
                // A custom tool's input is free text; a function's arguments are JSON.
                if item.kind.as_deref() == Some("function_call") {
                    findings.bad_tool_args |=
                        item.arguments.is_some_and(|args| !is_json_object(&args));
                }
            }
            if item.kind.as_deref() != Some("message") {
                continue;
            }
            for part in item.content.into_iter().flatten() {
                match part.kind.as_deref() {
                    Some("output_text") => {
                        findings.add_text(part.text.unwrap_or_default());
                        findings.logprobs.add(part.logprobs.unwrap_or_default());
                    }
                    Some("refusal") => findings.refused = true,
                    _ => {}
                }
            }
        }
        Some(findings)
    }
}

// ---- Anthropic messages --------------------------------------------------------------------------

/// A message, or one stream event.
#[derive(Deserialize)]
pub(crate) struct AnthropicBody<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Text<'a>,
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(borrow, default)]
    pub stop_reason: Text<'a>,
    #[serde(borrow, default)]
    pub content: Option<Vec<AnthropicPart<'a>>>,
    #[serde(borrow, default)]
    pub content_block: Option<AnthropicPart<'a>>,
    #[serde(borrow, default)]
    pub delta: Option<AnthropicPart<'a>>,
}

/// A content block, a block delta or a message delta: whichever fields it has.
#[derive(Deserialize)]
pub(crate) struct AnthropicPart<'a> {
    #[serde(rename = "type", borrow, default)]
    pub kind: Text<'a>,
    #[serde(borrow, default)]
    pub text: Text<'a>,
    #[serde(borrow, default)]
    pub input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pub partial_json: Text<'a>,
    #[serde(borrow, default)]
    pub stop_reason: Text<'a>,
}

impl AnthropicPart<'_> {
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }

    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
}

/// Anthropic's stop reason for an answer cut off by the model's context window.
pub(crate) const ANTHROPIC_CONTEXT_WINDOW: &str = "model_context_window_exceeded";

/// Anthropic's stop reasons for an answer cut off by a token limit.
pub(crate) fn anthropic_truncated(stop_reason: &str) -> bool {
    stop_reason == "max_tokens" || stop_reason == ANTHROPIC_CONTEXT_WINDOW
}

impl<'a> AnthropicBody<'a> {
    fn findings(self) -> Option<Findings<'a>> {
        let stop_reason = self.stop_reason.as_deref().unwrap_or_default();
        let mut findings = Findings {
            truncated: anthropic_truncated(stop_reason),
            context_window: stop_reason == ANTHROPIC_CONTEXT_WINDOW,
            refused: stop_reason == "refusal",
            text_whole: true,
            ..Findings::default()
        };
        for block in self.content? {
            match block.kind.as_deref() {
                Some("text") => findings.add_text(block.text.unwrap_or_default()),
                Some("tool_use") => {
                    findings.tool_calls += 1;
                    // `input` is the arguments object itself; RawValue is valid JSON already.
                    findings.bad_tool_args |= !block
                        .input
                        .is_some_and(|input| input.get().starts_with('{'));
                }
                _ => {}
            }
        }
        Some(findings)
    }
}
