use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::answer::Answer;
use crate::{anthropic_messages, openai_chat, openai_responses};

/// What the mock sends back, before the per-server headers are added.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: ReplyBody,
    /// The `model` of the request, for the log line; None off the LLM paths.
    pub model: Option<String>,
}

/// A whole JSON body (sent with content-length), or SSE events sent one frame each (chunked).
pub(crate) enum ReplyBody {
    Whole(Bytes),
    Events(VecDeque<Bytes>),
}

#[derive(Clone, Copy)]
enum LlmApi {
    OpenAiChat,
    OpenAiResponses,
    AnthropicMessages,
}

impl LlmApi {
    fn detect(method: &str, path: &str) -> Option<LlmApi> {
        if method != "POST" {
            return None;
        }
        match path.split('?').next() {
            Some("/v1/chat/completions") => Some(LlmApi::OpenAiChat),
            Some("/v1/responses") => Some(LlmApi::OpenAiResponses),
            Some("/v1/messages") => Some(LlmApi::AnthropicMessages),
            _ => None,
        }
    }
}

/// `sequence` is the request's 1-based position on this server, which keeps response ids unique.
pub(crate) fn reply(tier: &str, method: &str, path: &str, body: &[u8], sequence: usize) -> Reply {
    let Some(api) = LlmApi::detect(method, path) else {
        let echo = json!({"tier": tier, "method": method, "path": path, "body_bytes": body.len()});
        return json_reply(StatusCode::OK, &echo, None);
    };
    let request: Value = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(error) => {
            return bad_request(&format!(
                "mock-llm: request body is not valid JSON: {error}"
            ))
        }
    };
    let answer = Answer::new(tier, &request, sequence);
    let model = Some(answer.model.clone());
    if request.get("stream").and_then(Value::as_bool) != Some(true) {
        let object = match api {
            LlmApi::OpenAiChat => openai_chat::completion(&answer),
            LlmApi::OpenAiResponses => openai_responses::response(&answer),
            LlmApi::AnthropicMessages => anthropic_messages::message(&answer),
        };
        return json_reply(StatusCode::OK, &object, model);
    }
    let events = match api {
        LlmApi::OpenAiChat => {
            let include_usage = request
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                == Some(true);
            openai_chat::stream(&answer, include_usage)
        }
        LlmApi::OpenAiResponses => openai_responses::stream(&answer),
        LlmApi::AnthropicMessages => anthropic_messages::stream(&answer),
    };
    Reply {
        status: StatusCode::OK,
        content_type: "text/event-stream",
        body: ReplyBody::Events(events.into()),
        model,
    }
}

pub(crate) fn bad_request(message: &str) -> Reply {
    let error = json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": null,
        "code": null,
    }});
    json_reply(StatusCode::BAD_REQUEST, &error, None)
}

fn json_reply(status: StatusCode, value: &Value, model: Option<String>) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body: ReplyBody::Whole(Bytes::from(value.to_string())),
        model,
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = match self.get_mut() {
            ReplyBody::Whole(bytes) if bytes.is_empty() => None,
            ReplyBody::Whole(bytes) => Some(std::mem::take(bytes)),
            ReplyBody::Events(events) => events.pop_front(),
        };
        Poll::Ready(next.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReplyBody::Whole(bytes) => bytes.is_empty(),
            ReplyBody::Events(events) => events.is_empty(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReplyBody::Whole(bytes) => SizeHint::with_exact(bytes.len() as u64),
            ReplyBody::Events(_) => SizeHint::default(),
        }
    }
}
