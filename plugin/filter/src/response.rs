//! The response side of a decided request: read the status and the usage as the answer passes, let
//! the escalation watch hold a cheaper tier's answer while it needs to, and settle the decision
//! record once the response is over.

use proxy_wasm::types::{Action, BufferType, MapType};
use triage_core::UsageReader;

use crate::escalation::Hold;
use crate::host;
use crate::request::{Routed, Stage, TriageRequest, DECISION_ID_HEADER};

/// Envoy keeps it as filter state `wasm.triage_record`; the shipped access log prints it.
const RECORD_PROPERTY: &str = "triage_record";
/// The upstream cluster Envoy's router picked for the request (Envoy's `xds.cluster_name`
/// attribute): the truth about who served it, whatever the route table made of the routing header.
const SERVED_CLUSTER_PROPERTY: [&str; 2] = ["xds", "cluster_name"];

/// Media types are case-insensitive: `Text/Event-Stream` is a stream too.
pub(crate) fn is_event_stream(content_type: &str) -> bool {
    content_type
        .trim_start()
        .get(..17)
        .is_some_and(|kind| kind.eq_ignore_ascii_case("text/event-stream"))
}

impl TriageRequest {
    /// Takes the decided request out of the stage (put it back with [`Self::keep`]), so that host
    /// calls on `self` and changes to the request can be made together; any other stage stays.
    pub(crate) fn take_routed(&mut self) -> Option<Box<Routed>> {
        match std::mem::replace(&mut self.stage, Stage::PassThrough) {
            Stage::Decided(routed) => Some(routed),
            other => {
                self.stage = other;
                None
            }
        }
    }

    pub(crate) fn keep(&mut self, routed: Box<Routed>) {
        self.stage = Stage::Decided(routed);
    }

    pub(crate) fn response_header(&self, name: &str) -> Option<String> {
        match host::header(MapType::HttpResponseHeaders, name) {
            Ok(value) => value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            Err(status) => {
                self.warn(&format!("reading response header {name}"), status);
                None
            }
        }
    }

    /// The cluster Envoy's router served this request from; None when Envoy names none (no route,
    /// or a route without a cluster) or the read fails, which is logged: the record's
    /// `served_cluster` then says null rather than a name triage assumed.
    fn served_cluster(&self) -> Option<String> {
        match host::property(&SERVED_CLUSTER_PROPERTY) {
            Ok(value) => value
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .filter(|cluster| !cluster.is_empty()),
            Err(status) => {
                self.warn("reading the served cluster (xds.cluster_name)", status);
                None
            }
        }
    }

    pub(crate) fn response_headers(&mut self, end_of_stream: bool) -> Action {
        let status = self
            .response_header(":status")
            .and_then(|status| status.parse().ok());
        self.answered_before_decision(status);
        let Some(mut routed) = self.take_routed() else {
            return Action::Continue;
        };
        routed.status = status;
        routed.event_stream = self
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
                .routed_attempt_served_by(&self.config, cluster.as_deref());
            self.write_decision_headers(
                MapType::HttpResponseHeaders,
                &routed.decision,
                routed.record.mode,
            );
        }
        self.write_skips(&routed.record.escalations);
        self.write_decision_id(routed.record.decision_id.as_deref());
        routed.response_ended = end_of_stream;
        let action = self.watch_answer_start(&mut routed, end_of_stream);
        self.keep(routed);
        if end_of_stream && action == Action::Continue {
            self.settle();
        }
        action
    }

    /// The client learns the decision's id here; an upstream's header of that name never passes.
    fn write_decision_id(&self, decision_id: Option<&str>) {
        let map = MapType::HttpResponseHeaders;
        let written = match decision_id {
            Some(id) => host::set_header(map, DECISION_ID_HEADER, id),
            None => host::remove_header(map, DECISION_ID_HEADER),
        };
        if let Err(status) = written {
            self.warn(&format!("writing {DECISION_ID_HEADER}"), status);
        }
    }

    /// Each chunk is read for usage as it passes; while the escalation watch holds the answer,
    /// Envoy keeps buffering and hands back the whole buffer, of which only the new bytes are
    /// copied out (a long answer in small frames would otherwise be copied over and over), except
    /// at the end of an answer held whole, which is judged whole.
    pub(crate) fn response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(mut routed) = self.take_routed() else {
            return Action::Continue;
        };
        let judged_whole = end_of_stream && matches!(routed.hold, Hold::Whole);
        let start = if judged_whole {
            0
        } else {
            routed.seen.min(body_size)
        };
        let buffer = host::buffer(BufferType::HttpResponseBody, start, body_size - start)
            .unwrap_or_else(|status| {
                self.warn("reading the response body", status);
                Vec::new()
            });
        let fresh_from = (routed.seen.min(body_size) - start).min(buffer.len());
        if let Some(reader) = routed.usage.as_mut() {
            reader.feed(&buffer[fresh_from..]);
        }
        routed.response_ended |= end_of_stream;
        let action = self.watch_answer_body(&mut routed, &buffer, fresh_from, end_of_stream);
        routed.seen = if action == Action::Pause {
            body_size
        } else {
            0
        };
        self.keep(routed);
        if end_of_stream && action == Action::Continue {
            self.settle();
        }
        action
    }

    pub(crate) fn response_trailers(&mut self) -> Action {
        let Some(mut routed) = self.take_routed() else {
            return Action::Continue;
        };
        routed.response_ended = true;
        // Trailers end the answer while an escalation may be in flight; otherwise a held answer goes
        // out as it is (the body is not handed over again here to judge it).
        if matches!(routed.hold, Hold::Escalating) {
            self.keep(routed);
            return Action::Pause;
        }
        routed.hold = Hold::Off;
        self.keep(routed);
        self.settle();
        Action::Continue
    }

    /// Prices the usage, counts the request and hands the record to the access log. Runs once,
    /// at the end of the response, or when the stream ends without one.
    pub(crate) fn settle(&mut self) {
        let Some(mut routed) = self.take_routed() else {
            return;
        };
        self.stage = Stage::Settled;
        let usage = routed.usage.as_ref().and_then(UsageReader::usage);
        let status = routed.status;
        routed.record.settle(&self.config, status, usage);
        self.metrics.observe(&routed.record, &self.config);
        if let Err(status) = host::set_property(RECORD_PROPERTY, routed.record.to_json().as_bytes())
        {
            self.warn("storing the decision record", status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_event_stream;

    #[test]
    fn event_streams_are_recognised_in_any_case() {
        for kind in ["text/event-stream", " Text/Event-Stream; charset=utf-8"] {
            assert!(is_event_stream(kind), "{kind}");
        }
        for kind in ["application/json", "text/event", ""] {
            assert!(!is_event_stream(kind), "{kind}");
        }
    }
}
