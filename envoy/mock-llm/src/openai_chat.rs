use bytes::Bytes;
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::sse;

pub(crate) fn completion(answer: &Answer) -> Value {
    json!({
        "id": answer.id("chatcmpl-"),
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer.text, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": usage(answer),
    })
}

/// Chunks as the API streams them: role first, then content deltas, then the finish reason, then
/// (with `stream_options.include_usage`) a usage chunk without choices, then `[DONE]`.
pub(crate) fn stream(answer: &Answer, include_usage: bool) -> Vec<Bytes> {
    let chunk = |choices: Value| {
        json!({
            "id": answer.id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": answer.created,
            "model": answer.model,
            "choices": choices,
        })
    };
    let choice = |delta: Value, finish_reason: Value| {
        sse::data(&chunk(json!([{
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish_reason,
        }])))
    };
    let mut events = vec![choice(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for delta in sse::deltas(&answer.text) {
        events.push(choice(json!({"content": delta}), Value::Null));
    }
    events.push(choice(json!({}), json!("stop")));
    if include_usage {
        let mut usage_chunk = chunk(json!([]));
        usage_chunk["usage"] = usage(answer);
        events.push(sse::data(&usage_chunk));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}

fn usage(answer: &Answer) -> Value {
    json!({
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    })
}
