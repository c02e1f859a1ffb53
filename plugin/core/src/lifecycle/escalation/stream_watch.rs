//! The first part of a streamed (server-sent events) answer, held back until it looks sound.
//!
//! The boundary: nothing reaches the client until at least `hold_bytes` of the stream have arrived
//! and the stream has shown content (text other than whitespace, a tool call, or a refusal the
//! provider marks as one). Before that, an error event switches tiers at once; a stream that ends
//! first is judged whole: an error, a stream cut off before the answer's end (chat: a finish reason
//! or `[DONE]`; Responses: `response.completed` or `response.incomplete`; Anthropic: a stop reason
//! or `message_stop`), an empty, truncated or refused
//! answer, invalid JSON (the text kept whole, at most 4 KiB), invalid tool arguments or low
//! logprobs switch tiers. Once released the stream is the client's: it is never switched, whatever
//! comes after.
//!
//! Work is bounded: while holding, each event is parsed once (a line or an event's data over
//! 64 KiB is skipped); after the verdict, `feed` returns at once.

use std::borrow::Cow;

use super::answer::shapes::{
    anthropic_truncated, incomplete_for_tokens, AnthropicBody, AnthropicPart, ChatBody,
    ChatToolCall, ResponsesEvent, ANTHROPIC_CONTEXT_WINDOW,
};
use super::answer::{
    is_json_object, prefix, AnswerChecks, Expectations, Findings, LogprobSum, Weakness,
    REFUSAL_SCAN_BYTES,
};
use crate::format::ApiFormat;

mod sse;

use sse::{Event, EventSplitter};

/// The most bytes of one tool call's arguments gathered from a stream; a longer call is not checked.
const ARGS_CAP: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamVerdict {
    /// Keep holding the stream back.
    Hold,
    /// Send what was held and everything after it.
    Release,
    /// Drop the held stream and re-send the request to the next tier.
    Escalate(Weakness),
}

/// Watches one streamed answer. Once it says Release or Escalate, it says the same forever.
#[derive(Debug)]
pub struct StreamWatch {
    format: ApiFormat,
    hold_bytes: usize,
    expect: Expectations,
    checks: AnswerChecks,
    verdict: Option<StreamVerdict>,
    fed: usize,
    events: EventSplitter,
    seen: Seen,
}

impl StreamWatch {
    /// hold_bytes: how many response bytes are held before release is considered.
    pub fn new(
        format: ApiFormat,
        hold_bytes: usize,
        expect: Expectations,
        checks: AnswerChecks,
    ) -> StreamWatch {
        StreamWatch {
            format,
            hold_bytes,
            expect,
            checks,
            verdict: None,
            fed: 0,
            events: EventSplitter::default(),
            seen: Seen::default(),
        }
    }

    /// Feeds the next chunk of the response body (split anywhere). Hold while holding; Release once
    /// at least `hold_bytes` were fed and content was seen; Escalate(StreamError) as soon as an
    /// error event arrives while holding. A chunk is judged whole: an error event anywhere in it
    /// escalates, even after the content that would have released it.
    pub fn feed(&mut self, chunk: &[u8]) -> StreamVerdict {
        self.feed_to_verdict(chunk).0
    }

    /// [`StreamWatch::feed`], and how many of the chunk's bytes were read to reach the verdict: up
    /// to the end of an error event that condemns the stream, else all of them. (What follows an
    /// error event in the same chunk is not part of the answer the watch judged: cut there, the
    /// bytes read are the same whatever the chunking.)
    pub fn feed_to_verdict(&mut self, chunk: &[u8]) -> (StreamVerdict, usize) {
        if let Some(verdict) = self.verdict {
            return (verdict, 0);
        }
        let (format, seen) = (self.format, &mut self.seen);
        let read = self.events.feed(chunk, |event| {
            seen.observe(format, event);
            seen.error
        });
        self.fed = self.fed.saturating_add(read);
        if self.seen.error {
            return (
                self.decide(StreamVerdict::Escalate(Weakness::StreamError)),
                read,
            );
        }
        if self.fed >= self.hold_bytes && self.seen.content() {
            return (self.decide(StreamVerdict::Release), read);
        }
        (StreamVerdict::Hold, read)
    }

    /// The stream ended. Still holding: the whole answer is judged (StreamError for an error or a
    /// stream cut off before its last event, then the checks in [`crate::check_answer`]'s order on
    /// what the events showed); Release when it passes. Already decided: the same verdict.
    pub fn finish(&mut self) -> StreamVerdict {
        if let Some(verdict) = self.verdict {
            return verdict;
        }
        self.seen.end_call();
        let verdict = if self.seen.error || !self.seen.done {
            StreamVerdict::Escalate(Weakness::StreamError)
        } else {
            match self.seen.findings().judge(&self.expect, &self.checks) {
                Some(weakness) => StreamVerdict::Escalate(weakness),
                None => StreamVerdict::Release,
            }
        };
        self.decide(verdict)
    }

    fn decide(&mut self, verdict: StreamVerdict) -> StreamVerdict {
        self.verdict = Some(verdict);
        // Nothing more is read: the buffers can go.
        self.events = EventSplitter::default();
        self.seen = Seen::default();
        verdict
    }
}

/// What the held events showed.
#[derive(Debug, Default)]
struct Seen {
    error: bool,
    /// The stream's last event arrived.
    done: bool,
    truncated: bool,
    context_window: bool,
    refused: bool,
    has_text: bool,
    /// The start of the answer text, at most REFUSAL_SCAN_BYTES.
    text: String,
    text_cut: bool,
    tool_calls: usize,
    /// The tool call whose argument pieces are being gathered in `args`.
    call: Option<Call>,
    args: String,
    bad_tool_args: bool,
    logprobs: LogprobSum,
}

#[derive(Clone, Copy, Debug)]
struct Call {
    index: u64,
    /// The arguments outgrew ARGS_CAP: not checked.
    cut: bool,
    /// No argument pieces at all means `{}` (Anthropic streams a tool without input so).
    empty_is_object: bool,
}

impl Seen {
    fn content(&self) -> bool {
        self.has_text || self.tool_calls > 0 || self.refused
    }

    fn findings(&self) -> Findings<'_> {
        Findings {
            truncated: self.truncated,
            context_window: self.context_window,
            has_text: self.has_text,
            text: Cow::Borrowed(&self.text),
            text_whole: !self.text_cut,
            tool_calls: self.tool_calls,
            bad_tool_args: self.bad_tool_args,
            refused: self.refused,
            logprobs: self.logprobs,
        }
    }

    fn text(&mut self, delta: &str) {
        self.has_text |= !delta.trim().is_empty();
        if self.text_cut {
            return;
        }
        let room = REFUSAL_SCAN_BYTES - self.text.len();
        let kept = prefix(delta, room);
        self.text.push_str(kept);
        self.text_cut = kept.len() < delta.len();
    }

    fn start_call(&mut self, index: u64, empty_is_object: bool) {
        self.end_call();
        self.tool_calls += 1;
        self.call = Some(Call {
            index,
            cut: false,
            empty_is_object,
        });
    }

    fn call_args(&mut self, index: u64, piece: &str) {
        let Some(call) = self.call.as_mut().filter(|call| call.index == index) else {
            return;
        };
        if call.cut || self.args.len() + piece.len() > ARGS_CAP {
            call.cut = true;
        } else {
            self.args.push_str(piece);
        }
    }

    fn end_call(&mut self) {
        if let Some(call) = self.call.take() {
            let args = self.args.trim();
            let object = (args.is_empty() && call.empty_is_object) || is_json_object(args);
            self.bad_tool_args |= !call.cut && !object;
            self.args.clear();
        }
    }

    fn observe(&mut self, format: ApiFormat, event: Event<'_>) {
        self.error |= event.name == b"error";
        match format {
            ApiFormat::OpenAiChat => self.chat_event(event),
            ApiFormat::OpenAiResponses => self.responses_event(event),
            ApiFormat::AnthropicMessages => self.anthropic_event(event),
        }
    }

    // ---- OpenAI chat completions -----------------------------------------------------------------

    fn chat_event(&mut self, event: Event<'_>) {
        let data = event.data.unwrap_or_default();
        if data.trim_ascii() == b"[DONE]" {
            self.done = true;
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<ChatBody>(data) else {
            return;
        };
        self.error |= chunk.error.is_some();
        // A stream of several choices is judged on its first, as a whole answer is.
        let Some(choice) = chunk
            .choices
            .and_then(|choices| choices.0)
            .filter(|choice| choice.index.unwrap_or(0) == 0)
        else {
            return;
        };
        if let Some(delta) = choice.delta {
            if let Some(text) = delta.content {
                self.text(&text);
            }
            self.refused |= delta.refusal.is_some_and(|refusal| !refusal.is_empty());
            let calls = delta.tool_calls.into_iter().flatten();
            let legacy = delta.function_call.map(|function| ChatToolCall {
                index: Some(0),
                function: Some(function),
            });
            for call in calls.chain(legacy) {
                let index = call.index.unwrap_or(0);
                if self.call.map(|call| call.index) != Some(index) {
                    self.start_call(index, false);
                }
                let arguments = call.function.and_then(|function| function.arguments);
                self.call_args(index, arguments.as_deref().unwrap_or_default());
            }
        }
        // The answer is whole once it has a finish reason; only usage and `[DONE]` may follow.
        self.done |= choice.finish_reason.is_some();
        self.truncated |= choice.finish_reason.as_deref() == Some("length");
        if let Some(sum) = choice.logprobs.and_then(|logprobs| logprobs.content) {
            self.logprobs.add(sum);
        }
    }

    // ---- OpenAI responses ------------------------------------------------------------------------

    fn responses_event(&mut self, event: Event<'_>) {
        let parsed = event
            .data
            .and_then(|data| serde_json::from_slice::<ResponsesEvent>(data).ok());
        let kind = kind(
            parsed.as_ref().and_then(|parsed| parsed.kind.as_deref()),
            &event,
        );
        match kind {
            b"error" | b"response.failed" => self.error = true,
            b"response.completed" => self.done = true,
            b"response.incomplete" => {
                self.done = true;
                let response = parsed.as_ref().and_then(|parsed| parsed.response.as_ref());
                self.truncated |= incomplete_for_tokens(response);
            }
            _ => {}
        }
        let Some(parsed) = parsed.as_ref() else {
            return;
        };
        match kind {
            b"response.output_text.delta" => {
                self.text(parsed.delta.as_deref().unwrap_or_default());
                self.logprobs.add(parsed.logprobs.unwrap_or_default());
            }
            b"response.refusal.delta" => self.refused = true,
            b"response.output_item.added"
                if parsed.item.as_ref().is_some_and(|item| item.is_tool_call()) =>
            {
                self.tool_calls += 1;
            }
            // The whole arguments come at the end; the deltas need not be gathered.
            b"response.function_call_arguments.done" => {
                let arguments = parsed.arguments.as_deref().unwrap_or_default();
                self.bad_tool_args |= !is_json_object(arguments);
            }
            _ => {}
        }
    }

    // ---- Anthropic messages ----------------------------------------------------------------------

    fn anthropic_event(&mut self, event: Event<'_>) {
        let parsed = event
            .data
            .and_then(|data| serde_json::from_slice::<AnthropicBody>(data).ok());
        let kind = kind(
            parsed.as_ref().and_then(|parsed| parsed.kind.as_deref()),
            &event,
        );
        match kind {
            b"error" => self.error = true,
            b"message_stop" => self.done = true,
            _ => {}
        }
        let Some(parsed) = parsed.as_ref() else {
            return;
        };
        let index = parsed.index.unwrap_or(0);
        let block = parsed.content_block.as_ref();
        let delta = parsed.delta.as_ref();
        match kind {
            b"content_block_start" => match block.and_then(AnthropicPart::kind) {
                Some("text") => self.text(block.and_then(AnthropicPart::text).unwrap_or_default()),
                Some("tool_use") => self.start_call(index, true),
                _ => {}
            },
            b"content_block_delta" => match delta.and_then(AnthropicPart::kind) {
                Some("text_delta") => {
                    self.text(delta.and_then(AnthropicPart::text).unwrap_or_default())
                }
                Some("input_json_delta") => {
                    let piece = delta.and_then(|delta| delta.partial_json.as_deref());
                    self.call_args(index, piece.unwrap_or_default());
                }
                _ => {}
            },
            b"message_delta" => {
                let stop_reason = delta.and_then(|delta| delta.stop_reason.as_deref());
                self.done |= stop_reason.is_some();
                let stop_reason = stop_reason.unwrap_or_default();
                self.truncated |= anthropic_truncated(stop_reason);
                self.context_window |= stop_reason == ANTHROPIC_CONTEXT_WINDOW;
                self.refused |= stop_reason == "refusal";
            }
            _ => {}
        }
    }
}

/// The data's `type`, or the event name when the data could not be read.
fn kind<'e>(data_type: Option<&'e str>, event: &Event<'e>) -> &'e [u8] {
    data_type.map_or(event.name, str::as_bytes)
}

#[cfg(test)]
mod tests;
