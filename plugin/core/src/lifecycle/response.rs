//! The response side of a decided request: read the status and the usage as the answer passes, let
//! the escalation watch hold a cheaper tier's answer while it needs to, and settle the decision
//! record once the response is over.

use super::escalation::{Hold, Retry};
use super::{
    decision_header_values, is_event_stream, Effect, HeaderMap, Next, State, Turn,
    DECISION_ID_HEADER, MODE_HEADER, REASON_HEADER, SCORE_HEADER, TIER_HEADER,
};
use crate::{ApiFormat, Decision, DecisionRecord, UsageReader};

/// The upstream cluster Envoy's router picked for the request (Envoy's `xds.cluster_name`
/// attribute): the truth about who served it, whatever the route table made of the routing header.
const SERVED_CLUSTER_PROPERTY: [&str; 2] = ["xds", "cluster_name"];

/// A decided request, from the decision to the end of its response.
pub(super) struct Routed {
    pub(super) decision: Decision,
    pub(super) record: DecisionRecord,
    pub(super) format: ApiFormat,
    pub(super) status: Option<u16>,
    pub(super) event_stream: bool,
    pub(super) usage: Option<UsageReader>,
    /// Set when a failure or a weak answer may move the request up a tier.
    pub(super) retry: Option<Retry>,
    pub(super) hold: Hold,
    /// Bytes of the response body buffer already read (Envoy hands back the whole buffer while the
    /// filter holds it).
    pub(super) seen: usize,
    pub(super) response_ended: bool,
    /// The tier whose circuit breaker learns from this answer (enforced automatic decisions only).
    pub(super) breaker_tier: Option<usize>,
    /// Answered before any tier saw it (a 413, another filter's reply): the client's response names
    /// no tier, only the reason.
    pub(super) unrouted: bool,
}

impl Routed {
    pub(super) fn new(
        decision: Decision,
        record: DecisionRecord,
        format: ApiFormat,
        retry: Option<Retry>,
        breaker_tier: Option<usize>,
    ) -> Routed {
        Routed {
            decision,
            record,
            format,
            status: None,
            event_stream: false,
            usage: None,
            retry,
            hold: Hold::Off,
            seen: 0,
            response_ended: false,
            breaker_tier,
            unrouted: false,
        }
    }
}

impl Turn<'_> {
    pub(super) fn response_headers(&mut self, state: &mut State, end_of_stream: bool) -> Next {
        let status = self
            .reads
            .response_header(":status")
            .and_then(|status| status.parse().ok());
        self.answered_before_decision(state, status);
        let Some(mut routed) = Turn::take_routed(state) else {
            return Next::Continue;
        };
        routed.status = status;
        routed.event_stream = self
            .reads
            .response_header("content-type")
            .is_some_and(|kind| is_event_stream(&kind));
        routed.usage = Some(UsageReader::new(routed.format, routed.event_stream));
        if routed.unrouted {
            self.write_unrouted_headers(&routed.decision);
        } else {
            // Read before any escalation: this is the attempt Envoy's route table placed.
            let cluster = self.served_cluster();
            routed
                .record
                .routed_attempt_served_by(self.config, cluster.as_deref());
            for (name, value) in decision_header_values(&routed.decision, routed.record.mode) {
                self.write_response_header(name, value);
            }
        }
        self.write_skips(&routed.record.escalations);
        self.write_response_header(DECISION_ID_HEADER, routed.record.decision_id.clone());
        routed.response_ended = end_of_stream;
        let next = self.watch_answer_start(&mut routed, end_of_stream);
        *state = State::Decided(routed);
        if end_of_stream && next == Next::Continue {
            self.settle(state);
        }
        next
    }

    /// Each chunk is read for usage as it passes; while the escalation watch holds the answer,
    /// Envoy keeps buffering and hands back the whole buffer, of which only the new bytes are
    /// copied out (a long answer in small frames would otherwise be copied over and over), except
    /// at the end of an answer held whole, which is judged whole.
    pub(super) fn response_body(
        &mut self,
        state: &mut State,
        size: usize,
        end_of_stream: bool,
    ) -> Next {
        let Some(mut routed) = Turn::take_routed(state) else {
            return Next::Continue;
        };
        let judged_whole = end_of_stream && matches!(routed.hold, Hold::Whole);
        let start = if judged_whole {
            0
        } else {
            routed.seen.min(size)
        };
        let buffer = self.reads.response_body(start, size - start);
        let fresh_from = (routed.seen.min(size) - start).min(buffer.len());
        routed.response_ended |= end_of_stream;
        let next = self.read_answer(&mut routed, &buffer, fresh_from, end_of_stream);
        // Held (or held while the call goes out): Envoy hands the whole buffer back next time.
        routed.seen = if next == Next::Continue { 0 } else { size };
        *state = State::Decided(routed);
        if end_of_stream && next == Next::Continue {
            self.settle(state);
        }
        next
    }

    pub(super) fn response_trailers(&mut self, state: &mut State) -> Next {
        let Some(mut routed) = Turn::take_routed(state) else {
            return Next::Continue;
        };
        routed.response_ended = true;
        // Trailers end the answer while an escalation may be in flight; otherwise a held answer goes
        // out as it is (the body is not handed over again here to judge it).
        if matches!(routed.hold, Hold::Escalating) {
            *state = State::Decided(routed);
            return Next::Pause;
        }
        routed.hold = Hold::Off;
        *state = State::Decided(routed);
        self.settle(state);
        Next::Continue
    }

    /// The cluster Envoy's router served this request from; None when Envoy names none (no route,
    /// or a route without a cluster) or the read fails: the record's `served_cluster` then says
    /// null rather than a name triage assumed.
    fn served_cluster(&self) -> Option<String> {
        self.reads
            .property(&SERVED_CLUSTER_PROPERTY)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .filter(|cluster| !cluster.is_empty())
    }

    /// Writes a response header, or removes it (None): an upstream's header of that name never
    /// passes.
    pub(super) fn write_response_header(&mut self, name: &str, value: Option<String>) {
        match value {
            Some(value) => self.set_header(HeaderMap::Response, name, value),
            None => self.remove_header(HeaderMap::Response, name),
        }
    }

    /// A response no tier gave (a 413, another filter's reply before the body was complete) says
    /// why triage did not route the request, and names no tier.
    fn write_unrouted_headers(&mut self, decision: &Decision) {
        for name in [TIER_HEADER, SCORE_HEADER, MODE_HEADER] {
            self.remove_header(HeaderMap::Response, name);
        }
        self.set_header(HeaderMap::Response, REASON_HEADER, decision.reason_header());
    }

    /// Prices the usage and hands the record over. Runs once, at the end of the response, or when
    /// the stream ends without one.
    pub(super) fn settle(&mut self, state: &mut State) {
        let Some(mut routed) = Turn::take_routed(state) else {
            return;
        };
        *state = State::Settled;
        let usage = routed.usage.as_ref().and_then(UsageReader::usage);
        routed.record.settle(self.config, routed.status, usage);
        self.effects.push(Effect::Settle(Box::new(routed.record)));
    }
}
