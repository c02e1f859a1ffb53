//! Escalation: when a cheaper tier fails (an error status, including Envoy's own replies for a
//! reset, a refused connection or a timeout) or answers badly, the filter re-sends the request to
//! the next dearer tier with `dispatch_http_call` and answers the client with that tier's response
//! instead, so the client sees one coherent answer.
//!
//! Why not Envoy's retry policy: a retry re-sends the same body to the same cluster, but the next
//! tier needs its own model written into the body (and a weak 200 answer is no retry condition).
//!
//! A streamed answer is held for its first `stream_hold_bytes`; an error event or an empty stream
//! before that point escalates, after it the stream is released and never switched. A transport
//! reset *after* the upstream's response headers cannot be rescued here: Envoy resets the client's
//! stream itself once the upstream response has started.

use std::time::Duration;

use proxy_wasm::types::{Action, BufferType, MapType};
use triage_core::{
    check_answer, failure_cause, Applied, Cause, Decision, Escalation, Expectations, StreamVerdict,
    StreamWatch, Usage, UsageReader, Weakness,
};

use crate::host;
use crate::request::{PendingRequest, Routed, TriageRequest, DECISION_ID_HEADER, TIER_HEADER};
use crate::response::is_event_stream;

/// What the response path is doing with the answer.
pub(crate) enum Hold {
    /// Passing it through.
    Off,
    /// Buffering a whole JSON answer to check it at its end.
    Whole,
    /// Holding the start of a stream.
    Stream(Box<StreamWatch>),
    /// Keeping the answer back while the next tier is asked.
    Escalating,
}

/// What an escalated attempt needs: the request as the client sent it and as the upstream got it.
pub(crate) struct Retry {
    body: Vec<u8>,
    /// Request headers as sent upstream, pseudo-headers included: an escalated call carries the
    /// first attempt's `x-request-id` (Envoy's id for the stream), so upstream logs see one id per
    /// client request. The decision id is not sent upstream.
    headers: Vec<(String, String)>,
    /// The tier answering now.
    tier: usize,
    left: u32,
    deadline_nanos: u64,
    expect: Expectations,
    stream: bool,
    attempt: Option<Attempt>,
}

/// An escalated call in flight; its step is already in the record (status null until it answers).
struct Attempt {
    token: u32,
    to: usize,
    cause: String,
    /// The model written into the escalated body.
    model: Option<String>,
    /// The cluster the call went to: the one that serves its answer.
    cluster: String,
}

/// Headers that describe one hop's framing or connection, never copied to another message.
const HOP_HEADERS: [&str; 8] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "expect",
];
const ESCALATED_HEADER: &str = "x-triage-escalated";
const ESCALATION_CAUSE_HEADER: &str = "x-triage-escalation-cause";

impl TriageRequest {
    fn now_ms(&self) -> u64 {
        self.now_nanos() / 1_000_000
    }

    /// Routes past tiers whose breaker is open, before anything is sent (the top tier is always
    /// allowed: there is nowhere else to go). Each skip is recorded as an escalation.
    pub(crate) fn skip_open_tiers(
        &self,
        decision: &mut Decision,
        format: triage_core::ApiFormat,
    ) -> Vec<Escalation> {
        if self.config.escalation().is_none() || !automatic(&decision.cause) {
            return Vec::new();
        }
        let Some(mut tier) = self.config.tier_index(&decision.tier) else {
            return Vec::new();
        };
        let last = self.config.tier_names().len().saturating_sub(1);
        let now_ms = self.now_ms();
        let mut skipped = Vec::new();
        while tier < last && !self.breakers.allows(tier, now_ms) {
            skipped.push(self.step(tier, tier + 1, "circuit_open", None, None));
            tier += 1;
        }
        if !skipped.is_empty() {
            triage_core::retarget(&self.config, decision, tier, format);
        }
        skipped
    }

    /// Tiers skipped by their breaker before sending are stated like an escalation.
    pub(crate) fn write_skips(&self, skipped: &[Escalation]) {
        let (Some(first), Some(last)) = (skipped.first(), skipped.last()) else {
            return;
        };
        let values = [
            (ESCALATED_HEADER, format!("{}->{}", first.from, last.to)),
            (ESCALATION_CAUSE_HEADER, last.cause.clone()),
        ];
        for (name, value) in values {
            if let Err(status) = host::set_header(MapType::HttpResponseHeaders, name, &value) {
                self.warn(&format!("writing {name}"), status);
            }
        }
    }

    fn step(
        &self,
        from: usize,
        to: usize,
        cause: &str,
        status: Option<u16>,
        abandoned_usage: Option<Usage>,
    ) -> Escalation {
        let name = |tier: usize| self.config.tier_name(tier).unwrap_or_default().to_string();
        Escalation {
            from: name(from),
            to: name(to),
            cause: cause.to_string(),
            status,
            abandoned_usage,
        }
    }

    /// The tier whose breaker this request's answer teaches: enforced automatic decisions only.
    pub(crate) fn breaker_tier(&self, decision: &Decision, applied: Applied) -> Option<usize> {
        self.config.escalation()?;
        if applied != Applied::Enforce || !automatic(&decision.cause) {
            return None;
        }
        self.config.tier_index(&decision.tier)
    }

    /// Whether this request may move up at all: enforced, routed by triage (not pinned to a model,
    /// not a fail-open), not opted out by config, and not already on the top tier.
    pub(crate) fn retry_for(
        &self,
        pending: &PendingRequest,
        decision: &Decision,
        applied: Applied,
        body: Vec<u8>,
    ) -> Option<Retry> {
        let policy = self.config.escalation()?;
        let tier = self.config.tier_index(&decision.tier)?;
        let movable = applied == Applied::Enforce
            && automatic(&decision.cause)
            && tier + 1 < self.config.tier_names().len()
            && !policy.never_for(&pending.decision_headers);
        if !movable {
            return None;
        }
        let headers = match host::header_pairs(MapType::HttpRequestHeaders) {
            Ok(headers) => headers,
            Err(status) => {
                self.warn("reading the request headers for escalation", status);
                return None;
            }
        };
        Some(Retry {
            expect: decision.expect,
            body,
            headers,
            tier,
            left: policy.max_escalations,
            deadline_nanos: pending
                .start_nanos
                .saturating_add(policy.deadline_ms.saturating_mul(1_000_000)),
            stream: decision.stream,
            attempt: None,
        })
    }

    /// At the upstream's response headers: escalate on a failing status, hold a 2xx answer the
    /// checks must read, or let it pass. The tier's breaker learns from every enforced automatic
    /// request, escalatable or not (a half-open breaker's trial must report back).
    pub(crate) fn watch_answer_start(&self, routed: &mut Routed, end_of_stream: bool) -> Action {
        let Some(policy) = self.config.escalation() else {
            return Action::Continue;
        };
        let status = routed.status.unwrap_or(0);
        let failing = policy.escalates_status(status);
        let Some(retry) = routed.retry.as_ref() else {
            if let Some(tier) = routed.breaker_tier {
                self.breakers.record(tier, !failing, self.now_ms());
            }
            return Action::Continue;
        };
        let tier = retry.tier;
        if failing {
            self.breakers.record(tier, false, self.now_ms());
            let details = host::property(&["response", "code_details"])
                .ok()
                .flatten()
                .map(|details| String::from_utf8_lossy(&details).into_owned())
                .unwrap_or_default();
            log::debug!("#{} status {status} ({details})", self.context_id);
            return self.escalate_or_pass(routed, failure_cause(status, &details), None);
        }
        // Any other non-2xx answer is the request's problem, not the tier's.
        if !(200..300).contains(&status) {
            self.breakers.record(tier, true, self.now_ms());
            return Action::Continue;
        }
        if routed.event_stream {
            let watch = StreamWatch::new(
                routed.format,
                policy.stream_hold_bytes,
                retry.expect,
                policy.checks.clone(),
            );
            routed.hold = Hold::Stream(Box::new(watch));
        } else if policy.checks_answers() {
            routed.hold = Hold::Whole;
        } else {
            self.breakers.record(tier, true, self.now_ms());
            return Action::Continue;
        }
        if end_of_stream {
            // No body at all: judged now (an empty stream is a weak answer).
            return self.watch_answer_body(routed, &[], 0, true);
        }
        Action::Pause
    }

    /// A body chunk of a held answer; `buffer` is everything Envoy holds, new bytes from `fresh_from`.
    pub(crate) fn watch_answer_body(
        &self,
        routed: &mut Routed,
        buffer: &[u8],
        fresh_from: usize,
        end_of_stream: bool,
    ) -> Action {
        let verdict = match &mut routed.hold {
            Hold::Off => return Action::Continue,
            Hold::Escalating => return Action::Pause,
            Hold::Whole if !end_of_stream => return Action::Pause,
            Hold::Whole => {
                let (Some(policy), Some(retry)) = (self.config.escalation(), routed.retry.as_ref())
                else {
                    return Action::Continue;
                };
                match check_answer(routed.format, buffer, &retry.expect, &policy.checks) {
                    Some(weakness) => StreamVerdict::Escalate(weakness),
                    None => StreamVerdict::Release,
                }
            }
            Hold::Stream(watch) => {
                let verdict = watch.feed(buffer.get(fresh_from..).unwrap_or_default());
                match verdict {
                    StreamVerdict::Hold if end_of_stream => watch.finish(),
                    other => other,
                }
            }
        };
        match verdict {
            StreamVerdict::Hold => Action::Pause,
            StreamVerdict::Release => {
                if let Some(retry) = routed.retry.as_ref() {
                    self.breakers.record(retry.tier, true, self.now_ms());
                }
                routed.hold = Hold::Off;
                Action::Continue
            }
            StreamVerdict::Escalate(weakness) => {
                if let Some(retry) = routed.retry.as_ref() {
                    self.breakers.record(retry.tier, false, self.now_ms());
                }
                let used = routed.usage.as_ref().and_then(UsageReader::usage);
                self.escalate_or_pass(routed, weakness.as_str(), used)
            }
        }
    }

    /// Escalates (and holds the answer back) when the bounds allow, else lets the answer go.
    fn escalate_or_pass(
        &self,
        routed: &mut Routed,
        cause: &str,
        abandoned_usage: Option<Usage>,
    ) -> Action {
        if self.escalate(routed, cause, abandoned_usage) {
            routed.hold = Hold::Escalating;
            Action::Pause
        } else {
            routed.hold = Hold::Off;
            Action::Continue
        }
    }

    /// The next dearer tier whose breaker allows a request (the top tier always does).
    fn next_tier(&self, from: usize) -> Option<usize> {
        let last = self.config.tier_names().len().checked_sub(1)?;
        let now_ms = self.now_ms();
        (from + 1..=last).find(|tier| *tier == last || self.breakers.allows(*tier, now_ms))
    }

    /// Sends the request to the next tier; false when the bounds say no or the call can't start.
    fn escalate(&self, routed: &mut Routed, cause: &str, abandoned_usage: Option<Usage>) -> bool {
        let format = routed.format;
        let (Some(policy), Some(retry)) = (self.config.escalation(), routed.retry.as_mut()) else {
            return false;
        };
        let now = self.now_nanos();
        if retry.left == 0 || now >= retry.deadline_nanos {
            log::info!(
                "#{} not escalating ({cause}): {}",
                self.context_id,
                if retry.left == 0 {
                    "no escalations left"
                } else {
                    "past the deadline"
                }
            );
            return false;
        }
        let from = retry.tier;
        let Some(to) = self.next_tier(from) else {
            return false;
        };
        let Some(cluster) = self.config.tier_cluster(to) else {
            return false;
        };
        let model = self.config.tier_model(to, format);
        let judged = retry.left > 1 && to + 1 < self.config.tier_names().len();
        let body = match triage_core::upstream_body(
            &self.config,
            format,
            &retry.body,
            judged,
            model,
            retry.stream,
        ) {
            Ok(Some(body)) => body,
            Ok(None) => retry.body.clone(),
            Err(err) => {
                log::warn!(
                    "#{} not escalating: body not rewritten: {err}",
                    self.context_id
                );
                return false;
            }
        };
        let from_name = self.config.tier_name(from).unwrap_or_default();
        let to_name = self.config.tier_name(to).unwrap_or_default();
        let mut headers: Vec<(String, String)> = retry
            .headers
            .iter()
            .filter(|(name, _)| {
                !HOP_HEADERS.contains(&name.as_str())
                    && name != self.config.route_header()
                    && name != TIER_HEADER
            })
            .cloned()
            .collect();
        headers.push((self.config.route_header().to_string(), to_name.to_string()));
        headers.push((TIER_HEADER.to_string(), to_name.to_string()));
        headers.push((
            ESCALATED_HEADER.to_string(),
            format!("{from_name}->{to_name}"),
        ));
        headers.push(("content-length".to_string(), body.len().to_string()));
        let left_ms = (retry.deadline_nanos - now) / 1_000_000;
        let timeout = Duration::from_millis(policy.attempt_timeout_ms.min(left_ms).max(1));
        match host::dispatch(cluster, &headers, &body, timeout) {
            Ok(token) => {
                log::info!(
                    "#{} escalating {from_name}->{to_name} ({cause})",
                    self.context_id
                );
                retry.left -= 1;
                retry.attempt = Some(Attempt {
                    token,
                    to,
                    cause: cause.to_string(),
                    model: model.map(str::to_string),
                    cluster: cluster.to_string(),
                });
                let step = self.step(from, to, cause, None, abandoned_usage);
                routed.record.escalations.push(step);
                true
            }
            Err(status) => {
                self.warn(&format!("escalating to cluster {cluster}"), status);
                false
            }
        }
    }

    /// The next tier answered (or its call failed): answer the client with it, escalate again, or
    /// give up and let the held answer go.
    pub(crate) fn escalation_answered(&mut self, token: u32, num_headers: usize, body_size: usize) {
        let Some(mut routed) = self.take_routed() else {
            return;
        };
        let attempt = routed
            .retry
            .as_mut()
            .and_then(|retry| retry.attempt.take_if(|attempt| attempt.token == token));
        let Some(attempt) = attempt else {
            return self.keep(routed);
        };
        let headers = if num_headers > 0 {
            host::header_pairs(MapType::HttpCallResponseHeaders).unwrap_or_default()
        } else {
            Vec::new()
        };
        let body = host::buffer(BufferType::HttpCallResponseBody, 0, body_size).unwrap_or_default();
        let status: Option<u16> = header(&headers, ":status").and_then(|s| s.parse().ok());
        let event_stream = header(&headers, "content-type").is_some_and(is_event_stream);
        let mut usage = UsageReader::new(routed.format, event_stream);
        usage.feed(&body);

        let failed = match (status, self.config.escalation()) {
            (Some(status), Some(policy)) => policy.escalates_status(status),
            _ => true,
        };
        let weak = if failed {
            None
        } else {
            self.judge_escalated(&routed, attempt.to, &body, event_stream)
        };
        self.breakers
            .record(attempt.to, !failed && weak.is_none(), self.now_ms());
        if let Some(step) = routed.record.escalations.last_mut() {
            step.status = status;
        }
        if failed || weak.is_some() {
            let cause = match (weak, status) {
                (Some(weakness), _) => weakness.as_str(),
                (None, Some(status)) => failure_cause(status, "via_upstream"),
                // No answer at all: the call was reset or timed out.
                (None, None) => "reset",
            };
            if let Some(retry) = routed.retry.as_mut() {
                retry.tier = attempt.to;
            }
            if self.escalate(&mut routed, cause, usage.usage().filter(|_| weak.is_some())) {
                return self.keep(routed);
            }
            return self.release_held_answer(routed);
        }
        self.answer_with(
            routed,
            &attempt,
            status.unwrap_or(200),
            headers,
            &body,
            usage,
        );
    }

    /// A further escalation is possible only with escalations left and a dearer tier: then the
    /// escalated answer is judged like the first one.
    fn judge_escalated(
        &self,
        routed: &Routed,
        tier: usize,
        body: &[u8],
        event_stream: bool,
    ) -> Option<Weakness> {
        let policy = self.config.escalation()?;
        let retry = routed.retry.as_ref()?;
        if retry.left == 0 || tier + 1 >= self.config.tier_names().len() {
            return None;
        }
        if event_stream {
            let mut watch = StreamWatch::new(
                routed.format,
                usize::MAX,
                retry.expect,
                policy.checks.clone(),
            );
            watch.feed(body);
            match watch.finish() {
                StreamVerdict::Escalate(weakness) => Some(weakness),
                _ => None,
            }
        } else {
            check_answer(routed.format, body, &retry.expect, &policy.checks)
        }
    }

    /// Every escalation failed: the first tier's answer, held so far, goes to the client.
    fn release_held_answer(&mut self, mut routed: Box<Routed>) {
        routed.hold = Hold::Off;
        // Envoy hands over only new bytes once the answer flows again.
        routed.seen = 0;
        // The answer that goes out is not a dropped one: it is billed once, as served. The record's
        // tier still names the routed tier here (settling moves it to the serving one).
        let served = routed.record.tier.clone();
        for step in &mut routed.record.escalations {
            if step.from == served {
                step.abandoned_usage = None;
            }
        }
        let ended = routed.response_ended;
        self.keep(routed);
        if let Err(status) = host::continue_response() {
            self.warn("releasing the held answer", status);
        }
        if ended {
            self.settle();
        }
    }

    /// Replaces the held answer with the escalated tier's, stating the escalation.
    fn answer_with(
        &mut self,
        mut routed: Box<Routed>,
        attempt: &Attempt,
        status: u16,
        upstream_headers: Vec<(String, String)>,
        body: &[u8],
        usage: UsageReader,
    ) {
        let to_name = self
            .config
            .tier_name(attempt.to)
            .unwrap_or_default()
            .to_string();
        let first = routed
            .record
            .escalations
            .first()
            .map_or_else(String::new, |step| step.from.clone());
        let mut headers: Vec<(String, String)> = upstream_headers
            .into_iter()
            .filter(|(name, _)| !name.starts_with(':') && !HOP_HEADERS.contains(&name.as_str()))
            .collect();
        let decided = &routed.decision;
        for (name, value) in [
            (TIER_HEADER, Some(to_name.clone())),
            ("x-triage-score", decided.score_header()),
            ("x-triage-reason", Some(decided.reason_header())),
            (ESCALATED_HEADER, Some(format!("{first}->{to_name}"))),
            (ESCALATION_CAUSE_HEADER, Some(attempt.cause.clone())),
            (
                "x-request-id",
                Some(routed.record.request_id.clone()).filter(|id| !id.is_empty()),
            ),
        ] {
            if let Some(value) = value {
                headers.retain(|(have, _)| have != name);
                headers.push((name.to_string(), value));
            }
        }
        // The decision's id, never the upstream's header of that name.
        headers.retain(|(have, _)| have != DECISION_ID_HEADER);
        if let Some(id) = &routed.record.decision_id {
            headers.push((DECISION_ID_HEADER.to_string(), id.clone()));
        }
        routed
            .record
            .answered_by_escalation(&to_name, &attempt.cluster, attempt.model.clone());
        routed.status = Some(status);
        routed.usage = Some(usage);
        routed.hold = Hold::Off;
        if let Err(status) =
            host::send_local_response(u32::from(status), "triage_escalated", body, &headers)
        {
            self.warn("answering with the escalated response", status);
        }
        self.keep(routed);
        self.settle();
    }
}

/// Decisions triage made itself: the only ones it may move.
fn automatic(cause: &Cause) -> bool {
    matches!(
        cause,
        Cause::Scored | Cause::Rule(_) | Cause::Override { .. }
    )
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(have, _)| have.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}
