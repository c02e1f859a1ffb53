use bytes::Bytes;
use serde_json::{json, Value};

use crate::answer::{Answer, Stop};
use crate::sse::{self, typed_event};

/// A tool call's `input` is an object in this API, so broken arguments can't be a string of bad
/// JSON inside it: the JSON answer puts the arguments string itself in `input`, which is no object.
pub(crate) fn message(answer: &Answer) -> Value {
    let content = match &answer.tool_call {
        Some(call) => json!([{
            "type": "tool_use",
            "id": answer.id("toolu_"),
            "name": call.name,
            "input": call.arguments,
        }]),
        None if answer.text.is_empty() => json!([]),
        None => json!([{"type": "text", "text": answer.text}]),
    };
    message_object(
        answer,
        content,
        json!(stop_reason(answer.stop)),
        answer.output_tokens,
    )
}

/// The Messages streaming events: message_start (with input usage), one text or tool_use block
/// (none for an empty answer), message_delta (with output usage), message_stop.
pub(crate) fn stream(answer: &Answer) -> Vec<Bytes> {
    let start = message_object(answer, json!([]), Value::Null, 1);
    let mut events = vec![typed_event("message_start", json!({"message": start}))];
    let block_start = |content_block: Value| {
        typed_event(
            "content_block_start",
            json!({"index": 0, "content_block": content_block}),
        )
    };
    let block_delta =
        |delta: Value| typed_event("content_block_delta", json!({"index": 0, "delta": delta}));
    let ping = typed_event("ping", json!({}));
    match &answer.tool_call {
        Some(call) => {
            events.push(block_start(json!({
                "type": "tool_use",
                "id": answer.id("toolu_"),
                "name": call.name,
                "input": {},
            })));
            events.push(ping);
            for piece in sse::argument_pieces(&call.arguments) {
                events.push(block_delta(
                    json!({"type": "input_json_delta", "partial_json": piece}),
                ));
            }
        }
        None if answer.text.is_empty() => events.push(ping),
        None => {
            events.push(block_start(json!({"type": "text", "text": ""})));
            events.push(ping);
            for (delta, _) in answer.text_deltas() {
                events.push(block_delta(json!({"type": "text_delta", "text": delta})));
            }
        }
    }
    if answer.tool_call.is_some() || !answer.text.is_empty() {
        events.push(typed_event("content_block_stop", json!({"index": 0})));
    }
    let mut message_delta = json!({
        "delta": {"stop_reason": stop_reason(answer.stop), "stop_sequence": null},
    });
    if answer.report_usage {
        message_delta["usage"] = json!({"output_tokens": answer.output_tokens});
    }
    events.push(typed_event("message_delta", message_delta));
    events.push(typed_event("message_stop", json!({})));
    events
}

fn stop_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::Finished => "end_turn",
        Stop::MaxTokens => "max_tokens",
        Stop::ToolCall => "tool_use",
    }
}

fn message_object(
    answer: &Answer,
    content: Value,
    stop_reason: Value,
    output_tokens: u64,
) -> Value {
    let mut message = json!({
        "id": answer.id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
    });
    if answer.report_usage {
        message["usage"] =
            json!({"input_tokens": answer.input_tokens, "output_tokens": output_tokens});
    }
    message
}
