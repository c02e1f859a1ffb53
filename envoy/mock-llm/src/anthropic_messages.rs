use bytes::Bytes;
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::sse::{self, typed_event};

pub(crate) fn message(answer: &Answer) -> Value {
    message_object(
        answer,
        json!([{"type": "text", "text": answer.text}]),
        json!("end_turn"),
        answer.output_tokens,
    )
}

/// The Messages streaming events: message_start (with input usage), one text block, message_delta
/// (with output usage), message_stop.
pub(crate) fn stream(answer: &Answer) -> Vec<Bytes> {
    let start = message_object(answer, json!([]), Value::Null, 1);
    let mut events = vec![
        typed_event("message_start", json!({"message": start})),
        typed_event(
            "content_block_start",
            json!({"index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        typed_event("ping", json!({})),
    ];
    for delta in sse::deltas(&answer.text) {
        events.push(typed_event(
            "content_block_delta",
            json!({"index": 0, "delta": {"type": "text_delta", "text": delta}}),
        ));
    }
    events.extend([
        typed_event("content_block_stop", json!({"index": 0})),
        typed_event(
            "message_delta",
            json!({
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": answer.output_tokens},
            }),
        ),
        typed_event("message_stop", json!({})),
    ]);
    events
}

fn message_object(
    answer: &Answer,
    content: Value,
    stop_reason: Value,
    output_tokens: u64,
) -> Value {
    json!({
        "id": answer.id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": {"input_tokens": answer.input_tokens, "output_tokens": output_tokens},
    })
}
