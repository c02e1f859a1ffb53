//! One HTTP stream's life through triage, as a machine that makes no host calls: the host feeds it
//! events (request headers, body, trailers; response headers, body, trailers; the answer to a call
//! it sent; the end of the stream) and applies the [`Effect`]s it returns. It reads what it needs
//! through [`Reads`] and asks the shared circuit breakers through [`BreakerBoard`]. The Envoy
//! filter is glue around it; the CLI and tests drive the same machine with plain values.
//!
//! The stream goes through [`State`]s in one direction: passing through (not an LLM call), or
//! buffering the request body, then decided (the record is built and the answer is read, held or
//! escalated), then settled (the record handed over, exactly once).
//!
//! Envoy lets a filter write request headers only while it holds them, so the headers are paused
//! until the decision is made at the end of the body (which needs `allow_on_headers_stop_iteration`
//! in the plugin config).

mod board;
mod effect;
pub(crate) mod escalation;
pub mod exchange;
mod headers;
mod reads;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::rc::Rc;

pub use board::MemoryBreakers;
pub use effect::{Call, Effect, HeaderMap, Level, Next, Step};
pub use reads::{BreakerBoard, Reads};

use crate::{Applied, Config, Decision};
use request::Pending;
use response::Routed;

/// The routing header's value on the client's response: the tier that answered.
pub const TIER_HEADER: &str = "x-triage-tier";
pub const SCORE_HEADER: &str = "x-triage-score";
pub const REASON_HEADER: &str = "x-triage-reason";
pub const MODE_HEADER: &str = "x-triage-mode";
/// The decision's random id, on the client's response only (the key its feedback names).
pub const DECISION_ID_HEADER: &str = "x-triage-decision-id";
pub const ESCALATED_HEADER: &str = "x-triage-escalated";
pub const ESCALATION_CAUSE_HEADER: &str = "x-triage-escalation-cause";
/// Envoy keeps it as filter state `wasm.triage_record`; the shipped access log prints it.
pub const RECORD_PROPERTY: &str = "triage_record";

enum State {
    /// Not an LLM API call (or not yet seen): nothing to do.
    PassThrough,
    /// An LLM API call whose body is being buffered.
    Buffering(Box<Pending>),
    /// Decided; the response gets the decision's headers and settles the record.
    Decided(Box<Routed>),
    /// The record is handed over.
    Settled,
}

/// One HTTP stream.
pub struct Stream {
    config: Rc<Config>,
    breakers: Rc<dyn BreakerBoard>,
    state: State,
}

impl Stream {
    pub fn new(config: Rc<Config>, breakers: Rc<dyn BreakerBoard>) -> Stream {
        Stream {
            config,
            breakers,
            state: State::PassThrough,
        }
    }

    pub fn request_headers(&mut self, reads: &dyn Reads, end_of_stream: bool) -> Step {
        self.turn(reads, |turn, state| {
            turn.request_headers(state, end_of_stream)
        })
    }

    pub fn request_body(&mut self, reads: &dyn Reads, size: usize, end_of_stream: bool) -> Step {
        self.turn(reads, |turn, state| {
            turn.request_body(state, size, end_of_stream)
        })
    }

    /// With HTTP/2 trailers the end of the request arrives here instead of with the body.
    pub fn request_trailers(&mut self, reads: &dyn Reads) -> Step {
        self.turn(reads, |turn, state| turn.request_trailers(state))
    }

    /// The host refused the rewritten body of [`Effect::ReplaceRequestBody`]: the upstream gets the
    /// client's body, with its model, and the record says no model was written.
    pub fn rewrite_failed(&mut self) {
        if let State::Decided(routed) = &mut self.state {
            routed.decision.model = None;
            routed.record.model = None;
        }
    }

    pub fn response_headers(&mut self, reads: &dyn Reads, end_of_stream: bool) -> Step {
        self.turn(reads, |turn, state| {
            turn.response_headers(state, end_of_stream)
        })
    }

    pub fn response_body(&mut self, reads: &dyn Reads, size: usize, end_of_stream: bool) -> Step {
        self.turn(reads, |turn, state| {
            turn.response_body(state, size, end_of_stream)
        })
    }

    pub fn response_trailers(&mut self, reads: &dyn Reads) -> Step {
        self.turn(reads, |turn, state| turn.response_trailers(state))
    }

    /// After [`Next::Dispatch`]: the host's token for the call, or None when it could not send it.
    pub fn dispatched(&mut self, reads: &dyn Reads, token: Option<u32>) -> Step {
        self.turn(reads, |turn, state| turn.dispatched(state, token))
    }

    /// The answer to a call the stream sent (no headers: it failed or timed out).
    pub fn call_answered(
        &mut self,
        reads: &dyn Reads,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) -> Step {
        self.turn(reads, |turn, state| {
            turn.call_answered(state, token, num_headers, body_size)
        })
    }

    /// The stream is over, complete or not (reset, client gone): the record still counts.
    pub fn log(&mut self, reads: &dyn Reads) -> Step {
        self.turn(reads, |turn, state| {
            turn.answered_before_decision(state, None);
            turn.settle(state);
            Next::Continue
        })
    }

    fn turn(
        &mut self,
        reads: &dyn Reads,
        event: impl FnOnce(&mut Turn, &mut State) -> Next,
    ) -> Step {
        let mut turn = Turn {
            config: &self.config,
            breakers: self.breakers.as_ref(),
            reads,
            effects: Vec::new(),
        };
        let next = event(&mut turn, &mut self.state);
        Step {
            effects: turn.effects,
            next,
        }
    }
}

/// One event being handled: what it may read and the effects it has produced so far.
struct Turn<'a> {
    config: &'a Config,
    breakers: &'a dyn BreakerBoard,
    reads: &'a dyn Reads,
    effects: Vec<Effect>,
}

impl Turn<'_> {
    fn now_nanos(&self) -> u64 {
        self.reads.now_nanos()
    }

    fn now_ms(&self) -> u64 {
        self.now_nanos() / 1_000_000
    }

    fn log(&mut self, level: Level, message: String) {
        self.effects.push(Effect::Log { level, message });
    }

    fn set_header(&mut self, map: HeaderMap, name: &str, value: String) {
        self.effects.push(Effect::SetHeader {
            map,
            name: name.to_string(),
            value,
        });
    }

    fn remove_header(&mut self, map: HeaderMap, name: &str) {
        self.effects.push(Effect::RemoveHeader {
            map,
            name: name.to_string(),
        });
    }

    /// Takes the decided request out of the state (the caller puts it back); any other state stays.
    fn take_routed(state: &mut State) -> Option<Box<Routed>> {
        match std::mem::replace(state, State::PassThrough) {
            State::Decided(routed) => Some(routed),
            other => {
                *state = other;
                None
            }
        }
    }

    fn take_pending(state: &mut State) -> Option<Box<Pending>> {
        match std::mem::replace(state, State::PassThrough) {
            State::Buffering(pending) => Some(pending),
            other => {
                *state = other;
                None
            }
        }
    }
}

/// The decision's headers, on the request upstream and on the client's response: tier, score,
/// reason, and the mode when shadowed (None: the header is removed).
fn decision_header_values(
    decision: &Decision,
    applied: Applied,
) -> [(&'static str, Option<String>); 4] {
    let mode = (applied == Applied::Shadow).then(|| applied.as_str().to_string());
    [
        (TIER_HEADER, Some(decision.tier.clone())),
        (SCORE_HEADER, decision.score_header()),
        (REASON_HEADER, Some(decision.reason_header())),
        (MODE_HEADER, mode),
    ]
}

/// Media types are case-insensitive: `Text/Event-Stream` is a stream too.
pub fn is_event_stream(content_type: &str) -> bool {
    content_type
        .trim_start()
        .get(..17)
        .is_some_and(|kind| kind.eq_ignore_ascii_case("text/event-stream"))
}
