//! What the machine hands back to its host after each event: effects to apply, in order, and what
//! the stream does next.

use std::time::Duration;

use crate::DecisionRecord;

/// Which header map an effect writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderMap {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warn,
}

/// One change the host makes for the machine. The host applies them in the order given; one that
/// fails is logged and the rest still apply (a request the client did not break is never failed).
#[derive(Debug, Clone)]
pub enum Effect {
    SetHeader {
        map: HeaderMap,
        name: String,
        value: String,
    },
    RemoveHeader {
        map: HeaderMap,
        name: String,
    },
    /// Replaces the whole request body (`replaced` bytes) and, when the client framed it with a
    /// `content-length`, sets that header to the new length: a stale length makes the upstream
    /// read leftover bytes as the next request on a pooled connection. When the host refuses the
    /// body, it tells the machine ([`super::Stream::rewrite_failed`]).
    ReplaceRequestBody {
        replaced: usize,
        body: Vec<u8>,
        content_length: bool,
    },
    /// Makes Envoy pick the route again: it picked one before the body, and the routing header.
    ClearRouteCache,
    /// Answers the client now (a 413, an escalated tier's answer).
    LocalReply {
        status: u16,
        details: &'static str,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    },
    /// Lets a response held in an earlier callback go on.
    ContinueResponse,
    /// The finished decision record: the access log's filter state and the metrics.
    Settle(Box<DecisionRecord>),
    Log {
        level: Level,
        message: String,
    },
}

/// A request to another tier's cluster, outside the client's stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Duration,
}

/// What the stream does once the effects are applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Continue,
    /// Hold the stream (its headers, or the answer) in the host.
    Pause,
    /// Send the call, then report how that went with [`super::Stream::dispatched`], whose step
    /// says what the stream does next.
    Dispatch(Call),
}

/// The machine's answer to one event.
#[derive(Debug, Clone)]
pub struct Step {
    pub effects: Vec<Effect>,
    pub next: Next,
}
