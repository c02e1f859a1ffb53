use bytes::Bytes;
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::sse;

pub(crate) fn response(answer: &Answer) -> Value {
    response_object(
        answer,
        "completed",
        json!([message_item(answer, "completed")]),
    )
}

/// The Responses streaming events for one text message, `response.created` to `response.completed`.
pub(crate) fn stream(answer: &Answer) -> Vec<Bytes> {
    let item_id = answer.id("msg_");
    let in_progress = response_object(answer, "in_progress", json!([]));
    let mut empty_item = message_item(answer, "in_progress");
    empty_item["content"] = json!([]);
    let at_text = |fields: Value| {
        let mut event = json!({"item_id": item_id, "output_index": 0, "content_index": 0});
        merge(&mut event, fields);
        event
    };

    let mut events = NumberedEvents::default();
    events.push("response.created", json!({"response": in_progress}));
    events.push("response.in_progress", json!({"response": in_progress}));
    events.push(
        "response.output_item.added",
        json!({"output_index": 0, "item": empty_item}),
    );
    events.push(
        "response.content_part.added",
        at_text(json!({"part": output_text(""), })),
    );
    for delta in sse::deltas(&answer.text) {
        events.push(
            "response.output_text.delta",
            at_text(json!({"delta": delta})),
        );
    }
    events.push(
        "response.output_text.done",
        at_text(json!({"text": answer.text})),
    );
    events.push(
        "response.content_part.done",
        at_text(json!({"part": output_text(&answer.text)})),
    );
    events.push(
        "response.output_item.done",
        json!({"output_index": 0, "item": message_item(answer, "completed")}),
    );
    events.push("response.completed", json!({"response": response(answer)}));
    events.0
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

fn response_object(answer: &Answer, status: &str, output: Value) -> Value {
    let completed = status == "completed";
    json!({
        "id": answer.id("resp_"),
        "object": "response",
        "created_at": answer.created,
        "status": status,
        "model": answer.model,
        "output": output,
        "usage": if completed { usage(answer) } else { Value::Null },
    })
}

fn message_item(answer: &Answer, status: &str) -> Value {
    json!({
        "type": "message",
        "id": answer.id("msg_"),
        "status": status,
        "role": "assistant",
        "content": [output_text(&answer.text)],
    })
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": []})
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
