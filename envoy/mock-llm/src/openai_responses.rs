use bytes::Bytes;
use serde_json::{json, Value};

use crate::answer::{Answer, Stop, TokenLogprob};
use crate::sse;

pub(crate) fn response(answer: &Answer) -> Value {
    response_object(
        answer,
        final_status(answer),
        json!([output_item(answer, final_status(answer))]),
    )
}

/// The Responses streaming events for one text message or function call, `response.created` to
/// `response.completed` (or `response.incomplete` when the answer was cut off).
pub(crate) fn stream(answer: &Answer) -> Vec<Bytes> {
    let in_progress = response_object(answer, "in_progress", json!([]));
    let mut events = NumberedEvents::default();
    events.push("response.created", json!({"response": in_progress}));
    events.push("response.in_progress", json!({"response": in_progress}));
    match &answer.tool_call {
        Some(call) => {
            let mut started = output_item(answer, "in_progress");
            started["arguments"] = json!("");
            events.push(
                "response.output_item.added",
                json!({"output_index": 0, "item": started}),
            );
            let at_call = |fields: Value| {
                let mut event = json!({"item_id": answer.id("fc_"), "output_index": 0});
                merge(&mut event, fields);
                event
            };
            for piece in sse::argument_pieces(&call.arguments) {
                events.push(
                    "response.function_call_arguments.delta",
                    at_call(json!({"delta": piece})),
                );
            }
            events.push(
                "response.function_call_arguments.done",
                at_call(json!({"arguments": call.arguments})),
            );
        }
        None => text_events(answer, &mut events),
    }
    events.push(
        "response.output_item.done",
        json!({"output_index": 0, "item": output_item(answer, final_status(answer))}),
    );
    let done = match final_status(answer) {
        "incomplete" => "response.incomplete",
        _ => "response.completed",
    };
    events.push(done, json!({"response": response(answer)}));
    events.0
}

fn text_events(answer: &Answer, events: &mut NumberedEvents) {
    let item_id = answer.id("msg_");
    let mut empty_item = output_item(answer, "in_progress");
    empty_item["content"] = json!([]);
    let at_text = |fields: Value| {
        let mut event = json!({"item_id": item_id, "output_index": 0, "content_index": 0});
        merge(&mut event, fields);
        event
    };
    events.push(
        "response.output_item.added",
        json!({"output_index": 0, "item": empty_item}),
    );
    events.push(
        "response.content_part.added",
        at_text(json!({"part": output_text(answer, "", &[])})),
    );
    for (delta, tokens) in answer.text_deltas() {
        let mut event = at_text(json!({"delta": delta}));
        if let Some(logprobs) = &answer.logprobs {
            event["logprobs"] = logprobs.json(tokens);
        }
        events.push("response.output_text.delta", event);
    }
    let mut text_done = at_text(json!({"text": answer.text}));
    if let Some(logprobs) = &answer.logprobs {
        text_done["logprobs"] = logprobs.json(&logprobs.tokens);
    }
    events.push("response.output_text.done", text_done);
    events.push(
        "response.content_part.done",
        at_text(json!({"part": full_output_text(answer)})),
    );
}

/// Responses events carry an increasing `sequence_number`.
#[derive(Default)]
struct NumberedEvents(Vec<Bytes>);

impl NumberedEvents {
    fn push(&mut self, name: &str, mut event: Value) {
        merge(&mut event, json!({"sequence_number": self.0.len()}));
        self.0.push(sse::typed_event(name, event));
    }
}

fn final_status(answer: &Answer) -> &'static str {
    match answer.stop {
        Stop::MaxTokens => "incomplete",
        Stop::Finished | Stop::ToolCall => "completed",
    }
}

/// Usage is null until the response is done, and left out entirely with `no-usage`.
fn response_object(answer: &Answer, status: &str, output: Value) -> Value {
    let incomplete_details = match status {
        "incomplete" => json!({"reason": "max_output_tokens"}),
        _ => Value::Null,
    };
    let mut object = json!({
        "id": answer.id("resp_"),
        "object": "response",
        "created_at": answer.created,
        "status": status,
        "incomplete_details": incomplete_details,
        "model": answer.model,
        "output": output,
    });
    if answer.report_usage {
        object["usage"] = match status {
            "in_progress" => Value::Null,
            _ => usage(answer),
        };
    }
    object
}

fn output_item(answer: &Answer, status: &str) -> Value {
    match &answer.tool_call {
        Some(call) => json!({
            "type": "function_call",
            "id": answer.id("fc_"),
            "call_id": answer.id("call_"),
            "name": call.name,
            "arguments": call.arguments,
            "status": status,
        }),
        None => json!({
            "type": "message",
            "id": answer.id("msg_"),
            "status": status,
            "role": "assistant",
            "content": [full_output_text(answer)],
        }),
    }
}

fn full_output_text(answer: &Answer) -> Value {
    let tokens = answer
        .logprobs
        .as_ref()
        .map_or(&[][..], |logprobs| &logprobs.tokens);
    output_text(answer, &answer.text, tokens)
}

/// With logprobs requested (`include: ["message.output_text.logprobs"]`) the part lists them.
fn output_text(answer: &Answer, text: &str, tokens: &[TokenLogprob]) -> Value {
    let mut part = json!({"type": "output_text", "text": text, "annotations": []});
    if let Some(logprobs) = &answer.logprobs {
        part["logprobs"] = logprobs.json(tokens);
    }
    part
}

fn usage(answer: &Answer) -> Value {
    json!({
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    })
}

fn merge(target: &mut Value, fields: Value) {
    if let (Some(target), Value::Object(fields)) = (target.as_object_mut(), fields) {
        target.extend(fields);
    }
}
