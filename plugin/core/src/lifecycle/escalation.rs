//! Escalation: when a cheaper tier fails (an error status, including Envoy's own replies for a
//! reset, a refused connection or a timeout) or answers badly, the request is sent again to the
//! next dearer tier as a call of its own, and the client is answered with that tier's response
//! instead, so the client sees one coherent answer.
//!
//! Why not Envoy's retry policy: a retry re-sends the same body to the same cluster, but the next
//! tier needs its own model written into the body (and a weak 200 answer is no retry condition).
//!
//! A streamed answer is held for its first `stream_hold_bytes`; an error event or an empty stream
//! before that point escalates, after it the stream is released and never switched. A transport
//! reset *after* the upstream's response headers cannot be rescued here: Envoy resets the client's
//! stream itself once the upstream response has started.
//!
//! Beside this step of the machine sit what it uses: `policy` (the config's `escalation` section),
//! `answer` (the checks of a whole answer), `stream_watch` (holding a stream's start), `breaker` (a
//! tier's circuit breaker) and `causes` (the names of why a request moved).

pub(crate) mod answer;
pub(crate) mod breaker;
pub(crate) mod causes;
pub(crate) mod policy;
pub(crate) mod stream_watch;

use std::time::Duration;

use super::headers::HeaderList;
use super::request::Pending;
use super::response::Routed;
use super::{
    is_event_stream, Call, Effect, HeaderMap, Level, Next, State, Turn, DECISION_ID_HEADER,
    ESCALATED_HEADER, ESCALATION_CAUSE_HEADER, REASON_HEADER, SCORE_HEADER, TIER_HEADER,
};
use crate::{
    check_answer, failure_cause, retarget, upstream_body, ApiFormat, Applied, Cause, Decision,
    Escalation, Expectations, StreamVerdict, StreamWatch, Usage, UsageReader, Weakness,
};

/// What the response path is doing with the answer.
pub(super) enum Hold {
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
pub(super) struct Retry {
    body: Vec<u8>,
    /// Request headers as sent upstream, pseudo-headers included: an escalated call carries the
    /// first attempt's `x-request-id` (Envoy's id for the stream), so upstream logs see one id per
    /// client request. The decision id is not sent upstream.
    headers: HeaderList,
    /// The tier answering now.
    tier: usize,
    left: u32,
    deadline_nanos: u64,
    expect: Expectations,
    stream: bool,
    attempt: Option<Attempt>,
}

/// An escalated call: built, then sent (its token known and its step in the record, status null
/// until it answers).
struct Attempt {
    token: Option<u32>,
    from: usize,
    to: usize,
    cause: String,
    /// The answer the call replaces, when it had usage (a weak answer, not a failure).
    abandoned_usage: Option<Usage>,
    /// The model written into the escalated body.
    model: Option<String>,
    /// The cluster the call went to: the one that serves its answer.
    cluster: String,
    /// Whether the client's answer was already held in an earlier callback, so that letting it go
    /// takes an explicit continue (otherwise the current callback's action lets it go).
    held_before: bool,
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

impl Turn<'_> {
    /// Routes past tiers whose breaker is open, before anything is sent (the top tier is always
    /// allowed: there is nowhere else to go). Each skip is recorded as an escalation.
    pub(super) fn skip_open_tiers(
        &self,
        decision: &mut Decision,
        format: ApiFormat,
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
            retarget(self.config, decision, tier, format);
        }
        skipped
    }

    /// Tiers skipped by their breaker before sending are stated like an escalation.
    pub(super) fn write_skips(&mut self, skipped: &[Escalation]) {
        let (Some(first), Some(last)) = (skipped.first(), skipped.last()) else {
            return;
        };
        let escalated = format!("{}->{}", first.from, last.to);
        let cause = last.cause.clone();
        self.set_header(HeaderMap::Response, ESCALATED_HEADER, escalated);
        self.set_header(HeaderMap::Response, ESCALATION_CAUSE_HEADER, cause);
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
    pub(super) fn breaker_tier(&self, decision: &Decision, applied: Applied) -> Option<usize> {
        self.config.escalation()?;
        if applied != Applied::Enforce || !automatic(&decision.cause) {
            return None;
        }
        self.config.tier_index(&decision.tier)
    }

    /// Whether this request may move up at all: enforced, routed by triage (not pinned to a model,
    /// not a fail-open), not opted out by config, and not already on the top tier.
    pub(super) fn retry_for(
        &self,
        pending: Pending,
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
        Some(Retry {
            expect: decision.expect,
            body,
            headers: pending.headers,
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
    pub(super) fn watch_answer_start(&mut self, routed: &mut Routed, end_of_stream: bool) -> Next {
        let Some(policy) = self.config.escalation() else {
            return Next::Continue;
        };
        let status = routed.status.unwrap_or(0);
        let failing = policy.escalates_status(status);
        let Some(retry) = routed.retry.as_ref() else {
            if let Some(tier) = routed.breaker_tier {
                self.breakers.record(tier, !failing, self.now_ms());
            }
            return Next::Continue;
        };
        let tier = retry.tier;
        if failing {
            self.breakers.record(tier, false, self.now_ms());
            let details = self
                .reads
                .property(&["response", "code_details"])
                .map(|details| String::from_utf8_lossy(&details).into_owned())
                .unwrap_or_default();
            return self.escalate_or_pass(routed, failure_cause(status, &details), None);
        }
        // Any other non-2xx answer is the request's problem, not the tier's.
        if !(200..300).contains(&status) {
            self.breakers.record(tier, true, self.now_ms());
            return Next::Continue;
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
            return Next::Continue;
        }
        if end_of_stream {
            // No body at all: judged now (an empty stream is a weak answer).
            return self.read_answer(routed, &[], 0, true);
        }
        Next::Pause
    }

    /// A chunk of the answer: its usage is read, and the watch holding it judges it. An answer a
    /// stream's error event condemns is dropped with the usage read up to that event, whatever the
    /// chunking (the bytes after it in the same chunk are read once the escalation is under way,
    /// as later chunks are).
    pub(super) fn read_answer(
        &mut self,
        routed: &mut Routed,
        buffer: &[u8],
        fresh_from: usize,
        end_of_stream: bool,
    ) -> Next {
        let fresh = buffer.get(fresh_from..).unwrap_or_default();
        let (stream_verdict, judged) = match &mut routed.hold {
            Hold::Stream(watch) => {
                let (verdict, judged) = watch.feed_to_verdict(fresh);
                let verdict = match verdict {
                    StreamVerdict::Hold if end_of_stream => watch.finish(),
                    other => other,
                };
                (Some(verdict), judged)
            }
            _ => (None, fresh.len()),
        };
        let (before, after) = fresh.split_at(judged.min(fresh.len()));
        if let Some(reader) = routed.usage.as_mut() {
            reader.feed(before);
        }
        let next = self.watch_answer_body(routed, buffer, stream_verdict, end_of_stream);
        if let Some(reader) = routed.usage.as_mut() {
            reader.feed(after);
        }
        next
    }

    /// A body chunk of a held answer; `buffer` is everything Envoy holds, and a held stream's
    /// watch has judged the new bytes (`stream_verdict`).
    fn watch_answer_body(
        &mut self,
        routed: &mut Routed,
        buffer: &[u8],
        stream_verdict: Option<StreamVerdict>,
        end_of_stream: bool,
    ) -> Next {
        let verdict = match &mut routed.hold {
            Hold::Off => return Next::Continue,
            Hold::Escalating => return Next::Pause,
            Hold::Whole if !end_of_stream => return Next::Pause,
            Hold::Whole => {
                let (Some(policy), Some(retry)) = (self.config.escalation(), routed.retry.as_ref())
                else {
                    return Next::Continue;
                };
                match check_answer(routed.format, buffer, &retry.expect, &policy.checks) {
                    Some(weakness) => StreamVerdict::Escalate(weakness),
                    None => StreamVerdict::Release,
                }
            }
            Hold::Stream(_) => stream_verdict.unwrap_or(StreamVerdict::Hold),
        };
        match verdict {
            StreamVerdict::Hold => Next::Pause,
            StreamVerdict::Release => {
                if let Some(retry) = routed.retry.as_ref() {
                    self.breakers.record(retry.tier, true, self.now_ms());
                }
                routed.hold = Hold::Off;
                Next::Continue
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

    /// Escalates (holding the answer back) when the bounds allow, else lets the answer go.
    fn escalate_or_pass(
        &mut self,
        routed: &mut Routed,
        cause: &str,
        abandoned_usage: Option<Usage>,
    ) -> Next {
        match self.escalation_call(routed, cause, abandoned_usage, false) {
            Some(call) => {
                routed.hold = Hold::Escalating;
                Next::Dispatch(call)
            }
            None => {
                routed.hold = Hold::Off;
                Next::Continue
            }
        }
    }

    /// The next dearer tier whose breaker allows a request (the top tier always does).
    fn next_tier(&self, from: usize) -> Option<usize> {
        let last = self.config.tier_names().len().checked_sub(1)?;
        let now_ms = self.now_ms();
        (from + 1..=last).find(|tier| *tier == last || self.breakers.allows(*tier, now_ms))
    }

    /// The call that sends the request to the next tier; None when the bounds say no. The attempt
    /// waits in the retry for the host to say whether the call went out.
    fn escalation_call(
        &mut self,
        routed: &mut Routed,
        cause: &str,
        abandoned_usage: Option<Usage>,
        held_before: bool,
    ) -> Option<Call> {
        let format = routed.format;
        let policy = self.config.escalation()?;
        let now = self.now_nanos();
        let retry = routed.retry.as_mut()?;
        if retry.left == 0 || now >= retry.deadline_nanos {
            let why = if retry.left == 0 {
                "no escalations left"
            } else {
                "past the deadline"
            };
            self.log(Level::Info, format!("not escalating ({cause}): {why}"));
            return None;
        }
        let from = retry.tier;
        let to = self.next_tier(from)?;
        let cluster = self.config.tier_cluster(to)?;
        let model = self.config.tier_model(to, format);
        let judged = retry.left > 1 && to + 1 < self.config.tier_names().len();
        let body = match upstream_body(
            self.config,
            format,
            &retry.body,
            judged,
            model,
            retry.stream,
        ) {
            Ok(Some(body)) => body,
            Ok(None) => retry.body.clone(),
            Err(err) => {
                self.log(
                    Level::Warn,
                    format!("not escalating: body not rewritten: {err}"),
                );
                return None;
            }
        };
        let from_name = self.config.tier_name(from).unwrap_or_default();
        let to_name = self.config.tier_name(to).unwrap_or_default();
        let route_header = self.config.route_header();
        let mut headers: Vec<(String, String)> = retry
            .headers
            .pairs()
            .iter()
            .filter(|(name, _)| {
                !HOP_HEADERS.contains(&name.as_str()) && name != route_header && name != TIER_HEADER
            })
            .cloned()
            .collect();
        headers.push((route_header.to_string(), to_name.to_string()));
        headers.push((TIER_HEADER.to_string(), to_name.to_string()));
        headers.push((
            ESCALATED_HEADER.to_string(),
            format!("{from_name}->{to_name}"),
        ));
        headers.push(("content-length".to_string(), body.len().to_string()));
        let left_ms = (retry.deadline_nanos - now) / 1_000_000;
        let timeout = Duration::from_millis(policy.attempt_timeout_ms.min(left_ms).max(1));
        retry.attempt = Some(Attempt {
            token: None,
            from,
            to,
            cause: cause.to_string(),
            abandoned_usage,
            model: model.map(str::to_string),
            cluster: cluster.to_string(),
            held_before,
        });
        Some(Call {
            cluster: cluster.to_string(),
            headers,
            body,
            timeout,
        })
    }

    /// The host sent the escalated call (its token) or could not: then the answer the client was
    /// going to get goes out after all.
    pub(super) fn dispatched(&mut self, state: &mut State, token: Option<u32>) -> Next {
        let Some(mut routed) = Turn::take_routed(state) else {
            return Next::Continue;
        };
        let attempt = routed.retry.as_mut().and_then(|retry| {
            retry
                .attempt
                .as_mut()
                .filter(|attempt| attempt.token.is_none())
        });
        let Some(attempt) = attempt else {
            *state = State::Decided(routed);
            return Next::Continue;
        };
        let Some(token) = token else {
            let held_before = attempt.held_before;
            if let Some(retry) = routed.retry.as_mut() {
                retry.attempt = None;
            }
            return self.release_held_answer(state, routed, held_before);
        };
        attempt.token = Some(token);
        let (from, to, cause) = (attempt.from, attempt.to, attempt.cause.clone());
        let abandoned_usage = attempt.abandoned_usage;
        if let Some(retry) = routed.retry.as_mut() {
            retry.left -= 1;
        }
        let step = self.step(from, to, &cause, None, abandoned_usage);
        self.log(
            Level::Info,
            format!("escalating {}->{} ({cause})", step.from, step.to),
        );
        routed.record.escalations.push(step);
        routed.hold = Hold::Escalating;
        *state = State::Decided(routed);
        Next::Pause
    }

    /// The next tier answered (or its call failed): answer the client with it, escalate again, or
    /// give up and let the held answer go.
    pub(super) fn call_answered(
        &mut self,
        state: &mut State,
        token: u32,
        num_headers: usize,
        body_size: usize,
    ) -> Next {
        let Some(mut routed) = Turn::take_routed(state) else {
            return Next::Continue;
        };
        let attempt = routed.retry.as_mut().and_then(|retry| {
            retry
                .attempt
                .take_if(|attempt| attempt.token == Some(token))
        });
        let Some(attempt) = attempt else {
            *state = State::Decided(routed);
            return Next::Continue;
        };
        let (headers, body) = self.reads.call_answer(num_headers, body_size);
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
            let abandoned = usage.usage().filter(|_| weak.is_some());
            if let Some(call) = self.escalation_call(&mut routed, cause, abandoned, true) {
                *state = State::Decided(routed);
                return Next::Dispatch(call);
            }
            return self.release_held_answer(state, routed, true);
        }
        let answer = Answer {
            status: status.unwrap_or(200),
            headers,
            body,
            usage,
        };
        self.answer_with(state, routed, &attempt, answer);
        Next::Continue
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

    /// No (further) escalation: the answer held so far goes to the client. Held in an earlier
    /// callback, it takes an explicit continue; otherwise the current callback lets it go.
    fn release_held_answer(
        &mut self,
        state: &mut State,
        mut routed: Box<Routed>,
        held_before: bool,
    ) -> Next {
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
        *state = State::Decided(routed);
        if held_before {
            self.effects.push(Effect::ContinueResponse);
        }
        if ended {
            self.settle(state);
        }
        Next::Continue
    }

    /// Replaces the held answer with the escalated tier's, stating the escalation.
    fn answer_with(
        &mut self,
        state: &mut State,
        mut routed: Box<Routed>,
        attempt: &Attempt,
        answer: Answer,
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
        let mut headers: Vec<(String, String)> = answer
            .headers
            .into_iter()
            .filter(|(name, _)| !name.starts_with(':') && !HOP_HEADERS.contains(&name.as_str()))
            .collect();
        let decided = &routed.decision;
        for (name, value) in [
            (TIER_HEADER, Some(to_name.clone())),
            (SCORE_HEADER, decided.score_header()),
            (REASON_HEADER, Some(decided.reason_header())),
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
        routed.status = Some(answer.status);
        routed.usage = Some(answer.usage);
        routed.hold = Hold::Off;
        self.effects.push(Effect::LocalReply {
            status: answer.status,
            details: "triage_escalated",
            body: answer.body,
            headers,
        });
        *state = State::Decided(routed);
        self.settle(state);
    }
}

/// An escalated tier's answer, read in full.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    usage: UsageReader,
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
