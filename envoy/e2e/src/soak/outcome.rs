//! What a client saw for one request: a whole answer, or one of the errors a client notices.

use std::io;

use triage_core::ApiFormat;

use super::mix::{Route, Shape};
use crate::http::{Exchange, Response};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx with a whole body: JSON that parses, or a stream that reached its last event.
    Answered,
    /// Any other status.
    Status(u16),
    /// A 2xx whose body broke off or ended early.
    Truncated(String),
    /// No response head at all (a reset connection).
    NoResponse(String),
    /// Nothing more within the client's timeout.
    TimedOut,
}

impl Outcome {
    pub fn is_error(&self) -> bool {
        *self != Outcome::Answered
    }

    /// A short name for the report's tallies.
    pub fn kind(&self) -> String {
        match self {
            Outcome::Answered => "answered".to_owned(),
            Outcome::Status(code) => format!("status {code}"),
            Outcome::Truncated(_) => "truncated body".to_owned(),
            Outcome::NoResponse(_) => "no response (reset)".to_owned(),
            Outcome::TimedOut => "timed out".to_owned(),
        }
    }

    /// What went wrong, for a failure message.
    pub fn detail(&self) -> String {
        match self {
            Outcome::Truncated(why) | Outcome::NoResponse(why) => format!("{}: {why}", self.kind()),
            _ => self.kind(),
        }
    }
}

/// The outcome of `exchange`, and the response head when one arrived.
pub fn classify<'e>(exchange: &'e Exchange, shape: &Shape) -> (Outcome, Option<&'e Response>) {
    match exchange {
        Exchange::Complete(response) => (judge(response, shape), Some(response)),
        Exchange::BrokenBody { partial, error } => {
            let outcome = match error.kind() {
                io::ErrorKind::TimedOut => Outcome::TimedOut,
                _ if !(200..300).contains(&partial.status) => Outcome::Status(partial.status),
                _ => Outcome::Truncated(error.to_string()),
            };
            (outcome, Some(partial))
        }
        Exchange::NoResponse(error) => match error.kind() {
            io::ErrorKind::TimedOut => (Outcome::TimedOut, None),
            _ => (Outcome::NoResponse(error.to_string()), None),
        },
    }
}

fn judge(response: &Response, shape: &Shape) -> Outcome {
    if !(200..300).contains(&response.status) {
        return Outcome::Status(response.status);
    }
    let streamed = response
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("text/event-stream"));
    if shape.stream && shape.route != Route::Passthrough {
        return match (streamed, last_event_reached(&response.text(), shape.format)) {
            (true, true) => Outcome::Answered,
            (false, _) => Outcome::Truncated("a stream was asked for, JSON came".to_owned()),
            (true, false) => {
                Outcome::Truncated("the stream ended before its last event".to_owned())
            }
        };
    }
    match serde_json::from_slice::<serde_json::Value>(&response.body) {
        Ok(_) => Outcome::Answered,
        Err(error) => Outcome::Truncated(format!("the JSON answer does not parse: {error}")),
    }
}

/// Whether an SSE body ends with its API's final event.
fn last_event_reached(body: &str, format: ApiFormat) -> bool {
    let last = match format {
        ApiFormat::OpenAiChat => "data: [DONE]",
        ApiFormat::OpenAiResponses => "event: response.completed",
        ApiFormat::AnthropicMessages => "event: message_stop",
    };
    body.trim_end()
        .rsplit("\n\n")
        .next()
        .is_some_and(|event| event.contains(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_whole_only_when_its_last_event_came() {
        let chat = "data: {\"x\":1}\n\ndata: [DONE]\n\n";
        assert!(last_event_reached(chat, ApiFormat::OpenAiChat));
        assert!(!last_event_reached(
            "data: {\"x\":1}\n\n",
            ApiFormat::OpenAiChat
        ));
        let messages = "event: message_delta\ndata: {}\n\nevent: message_stop\ndata: {}\n\n";
        assert!(last_event_reached(messages, ApiFormat::AnthropicMessages));
        assert!(!last_event_reached(messages, ApiFormat::OpenAiResponses));
    }
}
