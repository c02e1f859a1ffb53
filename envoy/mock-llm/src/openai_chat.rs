use bytes::Bytes;
use serde_json::{json, Value};

use crate::answer::{Answer, Stop, TokenLogprob};
use crate::sse;

pub(crate) fn completion(answer: &Answer) -> Value {
    let mut message = json!({"role": "assistant", "content": answer.text, "refusal": null});
    if let Some(call) = &answer.tool_call {
        message["content"] = Value::Null;
        message["tool_calls"] = json!([{
            "id": answer.id("call_"),
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }]);
    }
    let all_tokens = answer
        .logprobs
        .as_ref()
        .map_or(&[][..], |logprobs| &logprobs.tokens);
    let mut completion = json!({
        "id": answer.id("chatcmpl-"),
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": logprobs(answer, all_tokens),
            "finish_reason": finish_reason(answer.stop),
        }],
    });
    if answer.report_usage {
        completion["usage"] = usage(answer);
    }
    completion
}

/// Chunks as the API streams them: role first, then content (or tool call) deltas, then the finish
/// reason, then (with `stream_options.include_usage`) a usage chunk without choices, then `[DONE]`.
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
    let choice = |delta: Value, logprobs: Value, finish_reason: Value| {
        sse::data(&chunk(json!([{
            "index": 0,
            "delta": delta,
            "logprobs": logprobs,
            "finish_reason": finish_reason,
        }])))
    };
    let mut events = Vec::new();
    if let Some(call) = &answer.tool_call {
        events.push(choice(
            json!({"role": "assistant", "content": null, "tool_calls": [{
                "index": 0,
                "id": answer.id("call_"),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }]}),
            Value::Null,
            Value::Null,
        ));
        for piece in sse::argument_pieces(&call.arguments) {
            events.push(choice(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
                Value::Null,
                Value::Null,
            ));
        }
    } else {
        events.push(choice(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
            Value::Null,
        ));
        for (delta, tokens) in answer.text_deltas() {
            events.push(choice(
                json!({"content": delta}),
                logprobs(answer, tokens),
                Value::Null,
            ));
        }
    }
    events.push(choice(
        json!({}),
        Value::Null,
        json!(finish_reason(answer.stop)),
    ));
    if include_usage && answer.report_usage {
        let mut usage_chunk = chunk(json!([]));
        usage_chunk["usage"] = usage(answer);
        events.push(sse::data(&usage_chunk));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}

fn finish_reason(stop: Stop) -> &'static str {
    match stop {
        Stop::Finished => "stop",
        Stop::MaxTokens => "length",
        Stop::ToolCall => "tool_calls",
    }
}

/// The choice's `logprobs` for `tokens`: null when the request did not ask for logprobs.
fn logprobs(answer: &Answer, tokens: &[TokenLogprob]) -> Value {
    answer.logprobs.as_ref().map_or(
        Value::Null,
        |logprobs| json!({"content": logprobs.json(tokens), "refusal": null}),
    )
}

fn usage(answer: &Answer) -> Value {
    json!({
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    })
}
