use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::StatusCode;
use serde_json::{json, Value};
use tokio::time::Sleep;

use crate::answer::Answer;
use crate::fail::{self, Failure, Injected, Outcome};
use crate::{anthropic_messages, openai_chat, openai_responses, provider_error};

/// How long a broken body waits after its last frame before failing, so the frames leave the socket.
const ABORT_PAUSE: Duration = Duration::from_millis(50);

/// What the mock sends back, before the per-server headers are added.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, &'static str)>,
    pub body: ReplyBody,
    /// The `model` of the request, for the log line; None off the LLM paths.
    pub model: Option<String>,
}

/// Frames sent in order: a whole JSON body (one frame, sent with content-length), or SSE events
/// (one frame each, chunked). A broken body fails after its frames, and hyper closes the connection.
pub(crate) struct ReplyBody {
    frames: VecDeque<Bytes>,
    /// The content-length still to send; None for chunked.
    length: Option<u64>,
    abort: Option<Abort>,
}

/// The pause before a broken body fails, started at its first poll (inside the runtime).
struct Abort {
    pause: Option<Pin<Box<Sleep>>>,
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
/// `failure` is applied here except `delay` and `reset`, which the server handles.
pub(crate) fn reply(
    tier: &str,
    method: &str,
    path: &str,
    body: &[u8],
    sequence: usize,
    failure: &Failure,
) -> Reply {
    let reply = answer(tier, method, path, body, sequence, failure);
    if failure.broken_stream {
        reply.broken()
    } else {
        reply
    }
}

fn answer(
    tier: &str,
    method: &str,
    path: &str,
    body: &[u8],
    sequence: usize,
    failure: &Failure,
) -> Reply {
    let api = LlmApi::detect(method, path);
    if let Outcome::Status(status) = failure.outcome {
        return provider_error(api, status, tier, sequence, failure);
    }
    let Some(api) = api else {
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
    let mut answer = Answer::new(tier, &request, sequence);
    if let Err(message) = shape(&mut answer, failure, api, &request) {
        return bad_request(&message);
    }
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
        headers: Vec::new(),
        body: ReplyBody::events(events),
        model,
    }
}

/// Applies the switches that change the answer itself, and the logprobs the request asked for.
fn shape(
    answer: &mut Answer,
    failure: &Failure,
    api: LlmApi,
    request: &Value,
) -> Result<(), String> {
    match failure.outcome {
        Outcome::Empty => answer.set_text(""),
        Outcome::Truncate => answer.truncate(max_tokens(request)),
        Outcome::Refusal => answer.set_text(fail::REFUSAL),
        Outcome::BadJson => answer.set_text(fail::BAD_JSON),
        Outcome::BadTool => {
            let name = first_tool_name(request).ok_or_else(|| {
                format!(
                    "{}: badtool needs a request with tools",
                    fail::SWITCH_HEADER
                )
            })?;
            answer.call_tool(&name, fail::BAD_TOOL_ARGUMENTS);
        }
        Outcome::Answer | Outcome::Reset | Outcome::Status(_) => {}
    }
    answer.report_usage = !failure.no_usage;
    if answer.tool_call.is_none() {
        if let Some(top) = requested_logprobs(api, request) {
            let mean = failure.logprobs_mean.unwrap_or(fail::DEFAULT_LOGPROB_MEAN);
            answer.add_logprobs(mean, top);
        }
    }
    Ok(())
}

/// The output token limit of any of the three APIs.
fn max_tokens(request: &Value) -> Option<u64> {
    ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .iter()
        .find_map(|field| request.get(field).and_then(Value::as_u64))
}

/// Chat `{"type": "function", "function": {"name"}}`, Responses `{"type": "function", "name"}`,
/// Anthropic `{"name", "input_schema"}`.
fn first_tool_name(request: &Value) -> Option<String> {
    let tool = request.get("tools")?.get(0)?;
    tool.pointer("/function/name")
        .or_else(|| tool.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `Some(top_logprobs)` when the request asks for logprobs: chat `logprobs: true`, Responses
/// `include: ["message.output_text.logprobs"]`. The Messages API has none.
fn requested_logprobs(api: LlmApi, request: &Value) -> Option<usize> {
    let asked = match api {
        LlmApi::OpenAiChat => request.get("logprobs").and_then(Value::as_bool) == Some(true),
        LlmApi::OpenAiResponses => request
            .get("include")
            .and_then(Value::as_array)
            .is_some_and(|include| {
                include
                    .iter()
                    .any(|item| item == "message.output_text.logprobs")
            }),
        LlmApi::AnthropicMessages => false,
    };
    asked.then(|| {
        request
            .get("top_logprobs")
            .and_then(Value::as_u64)
            .map_or(0, |top| usize::try_from(top).unwrap_or(usize::MAX))
    })
}

/// Anthropic's error shape on /v1/messages, OpenAI's everywhere else; 429 says when to retry.
fn provider_error(
    api: Option<LlmApi>,
    status: StatusCode,
    tier: &str,
    sequence: usize,
    failure: &Failure,
) -> Reply {
    let detail = format!("mock-llm tier {tier}: {} {failure}", fail::SWITCH_HEADER);
    let body = match api {
        Some(LlmApi::AnthropicMessages) => {
            provider_error::anthropic(status, &detail, &format!("req_mock_{tier}_{sequence}"))
        }
        _ => provider_error::openai(status, &detail),
    };
    let mut reply = json_reply(status, &body, None);
    if status == StatusCode::TOO_MANY_REQUESTS {
        reply.headers.push(("retry-after", "1"));
    }
    reply
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
        headers: Vec::new(),
        body: ReplyBody::whole(Bytes::from(value.to_string())),
        model,
    }
}

impl Reply {
    /// The same head, but the body stops halfway and the connection closes: a whole body sends
    /// half its bytes under the full content-length, a stream the first half of its events.
    fn broken(mut self) -> Reply {
        let ReplyBody { frames, length, .. } = self.body;
        let frames = match length {
            Some(_) => {
                let whole: Vec<u8> = frames.iter().flatten().copied().collect();
                VecDeque::from([Bytes::from(whole[..whole.len() / 2].to_vec())])
            }
            None => {
                let kept = frames.len().div_ceil(2);
                frames.into_iter().take(kept).collect()
            }
        };
        self.body = ReplyBody {
            frames,
            length,
            abort: Some(Abort { pause: None }),
        };
        self
    }
}

impl ReplyBody {
    fn whole(bytes: Bytes) -> ReplyBody {
        let length = Some(bytes.len() as u64);
        let mut frames = VecDeque::new();
        if !bytes.is_empty() {
            frames.push_back(bytes);
        }
        ReplyBody {
            frames,
            length,
            abort: None,
        }
    }

    fn events(events: Vec<Bytes>) -> ReplyBody {
        ReplyBody {
            frames: events.into(),
            length: None,
            abort: None,
        }
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Injected;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Injected>>> {
        let body = self.get_mut();
        if let Some(frame) = body.frames.pop_front() {
            if let Some(length) = &mut body.length {
                *length = length.saturating_sub(frame.len() as u64);
            }
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        let Some(abort) = &mut body.abort else {
            return Poll::Ready(None);
        };
        // Pending first lets hyper flush the frames before the error makes it drop the connection.
        let pause = abort
            .pause
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(ABORT_PAUSE)));
        ready!(pause.as_mut().poll(cx));
        Poll::Ready(Some(Err(Injected("broken-stream"))))
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && self.abort.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.length
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

#[cfg(test)]
mod tests;
