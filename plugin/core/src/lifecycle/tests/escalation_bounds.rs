//! The bounds of escalation, natively: when the call fails the held answer goes out as it came;
//! with escalations left the request moves on up; past the deadline nothing is called; the requests
//! triage may not move never are; and the answer's end arriving (trailers, the client leaving)
//! while a call is in flight.
//!
//! Host twins (host-tests/tests/module/escalation/bounds.rs → here):
//! - when_the_call_fails_the_held_failure_goes_out_as_it_came → same name
//! - when_the_call_fails_a_held_weak_answer_goes_out_whole → same name
//! - a_weak_answer_served_after_a_failed_call_is_billed_once → same name
//! - a_stream_released_after_a_failed_call_still_has_its_usage_read → same name
//! - with_two_escalations_a_failing_mid_moves_on_to_frontier → same name
//! - with_two_escalations_a_weak_mid_answer_moves_on_and_every_dropped_answer_is_billed → same
//! - with_two_escalations_and_every_call_failing_the_first_answer_goes_out → same name
//! - past_the_deadline_nothing_is_called_and_a_call_gets_only_what_is_left → same name
//! - the_deadline_also_bounds_a_second_escalation → same name
//! - requests_triage_may_not_move_are_never_called_for → same name
//! - a_failure_ending_in_trailers_is_held_with_them_and_released_whole
//!   → the_answers_end_in_trailers_waits_for_the_call_in_flight (script; also with the call
//!   answering)
//! - a_held_answer_ending_in_trailers_goes_out_as_it_is → same name (script; a held whole answer
//!   and a held stream)
//! - a_client_gone_while_calling_cancels_the_call_and_still_records → same name (script)

use super::super::exchange::{HostSettings, Reply};
use super::script::{routed, sent_to_mid, settled, small_fails, Event, Row, Script};
use super::*;

/// How the call to the next tier ends without a usable answer.
#[derive(Clone, Copy, Debug)]
enum CallFailure {
    /// A reset: no response at all.
    NoResponse,
    /// The tier answered 503 itself.
    Status503,
    /// Envoy's own reply when the call's timeout fired.
    Timeout504,
}

impl CallFailure {
    const ALL: [CallFailure; 3] = [
        CallFailure::NoResponse,
        CallFailure::Status503,
        CallFailure::Timeout504,
    ];

    fn reply(self) -> Reply {
        match self {
            CallFailure::NoResponse => Reply::Reset,
            CallFailure::Status503 => reply(503, JSON, "{\"error\": {}}"),
            CallFailure::Timeout504 => reply(504, "text/plain", "upstream request timeout"),
        }
    }

    /// The status the escalation step records.
    fn status(self) -> Option<u16> {
        match self {
            CallFailure::NoResponse => None,
            CallFailure::Status503 => Some(503),
            CallFailure::Timeout504 => Some(504),
        }
    }

    /// The cause of the move after this failed call.
    fn cause(self) -> &'static str {
        match self {
            CallFailure::NoResponse => "reset",
            _ => "status_5xx",
        }
    }
}

/// small replies `first`, mid fails as `failure`, frontier answers soundly.
fn mid_fails(format: ApiFormat, first: Reply, failure: CallFailure) -> impl FnMut(&Sent) -> Reply {
    by_tier([
        first,
        failure.reply(),
        Reply::Answer(good_response(format, FRONTIER)),
    ])
}

fn two_escalations() -> Rc<Config> {
    config(json!({"max_escalations": 2}), json!({}))
}

#[test]
fn when_the_call_fails_the_held_failure_goes_out_as_it_came() {
    let config = default_config();
    for failure in CallFailure::ALL {
        for body_first in [false, true] {
            let what = format!("{failure:?} body first: {body_first}");
            let settings = HostSettings {
                calls_wait_for_response: body_first,
                ..HostSettings::default()
            };
            let first = reply(503, "text/plain", "overloaded");
            let outcome = exchange_with(
                &config,
                &Client::simple(CHAT),
                mid_fails(CHAT, first, failure),
                &settings,
            );
            // Body first: held with the call in flight, let go by the failed call. Otherwise the
            // failed call let the answer go before its body came, which then passes.
            let body = if body_first {
                Next::Pause
            } else {
                Next::Continue
            };
            assert!(
                matches!(&outcome.response_next[..], [Next::Dispatch(_), next] if *next == body),
                "{what}: {:?}",
                outcome.response_next
            );
            assert_passed(&outcome, 503, b"overloaded");
            assert_eq!(outcome.response.header("x-triage-tier"), Some("small"));
            let record = outcome.record.as_ref().unwrap();
            assert_eq!(record.tier, "small", "{what}");
            assert_eq!(record.status, Some(503));
            assert_eq!(
                record.escalations,
                [step(SMALL, MID, "status_5xx", failure.status(), None)],
                "{what}"
            );
            assert_eq!(outcome.calls.len(), 1, "{what}: no second call");
            assert_no_warnings(&outcome);
        }
    }
}

#[test]
fn when_the_call_fails_a_held_weak_answer_goes_out_whole() {
    let config = default_config();
    let weak = answer(CHAT, SMALL, "The sentiment", "length");
    for failure in CallFailure::ALL {
        let outcome = exchange_with(
            &config,
            &Client::simple(CHAT),
            mid_fails(CHAT, ok_json(weak.clone()), failure),
            &chunked(&[9]),
        );
        assert_passed(&outcome, 200, &weak);
        let record = outcome.record.unwrap();
        assert_eq!(record.tier, "small");
        assert_eq!(record.escalations.len(), 1);
        assert_eq!(record.escalations[0].cause, "truncated");
        assert_eq!(
            record.escalations[0].status,
            failure.status(),
            "{failure:?}"
        );
        assert_eq!(record.usage, Some(TIERS[SMALL].usage));
    }
}

/// The small answer the client got is billed once, though its tokens were first the escalation's
/// `abandoned_usage`.
#[test]
fn a_weak_answer_served_after_a_failed_call_is_billed_once() {
    let config = default_config();
    let weak = answer(CHAT, SMALL, "The sentiment", "length");
    let outcome = exchange(
        &config,
        &Client::simple(CHAT),
        mid_fails(CHAT, ok_json(weak), CallFailure::Status503),
    );
    let record = outcome.record.unwrap();
    assert_close(
        record.cost_micro_usd,
        cost(SMALL, TIERS[SMALL].usage),
        "cost of the one small answer",
    );
    assert_eq!(record.dropped_answers(&config).count(), 0);
    assert_eq!(record.usage, Some(TIERS[SMALL].usage));
}

/// A stream moved on an error event, whose call then fails, is released and keeps flowing: its
/// usage (at its end) is still read.
#[test]
fn a_stream_released_after_a_failed_call_still_has_its_usage_read() {
    let config = default_config();
    let error = b"data: {\"error\": {\"message\": \"overloaded\"}}\n\n".to_vec();
    let usage = TIERS[SMALL].usage;
    let rest = format!(
        "data: {{\"choices\": [], \"usage\": {{\"prompt_tokens\": {}, \"completion_tokens\": {}}}}}\n\ndata: [DONE]\n\n",
        usage.prompt_tokens, usage.completion_tokens
    );
    let mut stream = error.clone();
    stream.extend(rest.as_bytes());
    let outcome = exchange_with(
        &config,
        &Client::streaming(CHAT),
        mid_fails(
            CHAT,
            reply(200, EVENT_STREAM, stream.clone()),
            CallFailure::NoResponse,
        ),
        &chunked(&[error.len(), rest.len()]),
    );
    assert!(matches!(
        outcome.response_next[..],
        [Next::Pause, Next::Dispatch(_), Next::Continue]
    ));
    assert_passed(&outcome, 200, &stream);
    let record = outcome.record.unwrap();
    assert_eq!(
        record.usage,
        Some(usage),
        "the usage chunk after the release"
    );
    assert_eq!(record.escalations[0].cause, "stream_error");
}

#[test]
fn with_two_escalations_a_failing_mid_moves_on_to_frontier() {
    let config = two_escalations();
    for format in [CHAT, MESSAGES] {
        for failure in CallFailure::ALL {
            let what = format!("{format:?} {failure:?}");
            let client = Client::simple(format);
            let decision = client.goes_small(&config);
            let outcome = exchange(&config, &client, mid_fails(format, failing(503), failure));
            let routed = outcome.routed.as_ref().unwrap();
            let [to_mid, to_frontier] = &outcome.calls[..] else {
                panic!("{what}: two calls: {:#?}", outcome.calls);
            };
            assert_call_to(to_mid, &client, routed, SMALL, MID);
            assert_call_to(to_frontier, &client, routed, MID, FRONTIER);
            let frontier = good_response(format, FRONTIER);
            let cause = failure.cause();
            assert_answered_with(&outcome, &decision, &frontier, SMALL, FRONTIER, cause);
            let record = outcome.record.as_ref().unwrap();
            assert_eq!(
                record.escalations,
                [
                    step(SMALL, MID, "status_5xx", failure.status(), None),
                    step(MID, FRONTIER, cause, Some(200), None),
                ],
                "{what}"
            );
            assert_eq!(record.tier, "frontier");
            assert_eq!(record.usage, Some(TIERS[FRONTIER].usage));
            assert_no_warnings(&outcome);
        }
    }
}

#[test]
fn with_two_escalations_a_weak_mid_answer_moves_on_and_every_dropped_answer_is_billed() {
    let config = two_escalations();
    let client = Client::simple(CHAT);
    let decision = client.goes_small(&config);
    let frontier = good_response(CHAT, FRONTIER);
    let outcome = exchange(
        &config,
        &client,
        by_tier([
            ok_json(answer(CHAT, SMALL, "I'm sorry, I can't.", "stop")),
            ok_json(answer(CHAT, MID, "The sentiment", "length")),
            Reply::Answer(frontier.clone()),
        ]),
    );
    assert_eq!(outcome.calls[1].cluster, "tier_frontier");
    assert_answered_with(&outcome, &decision, &frontier, SMALL, FRONTIER, "truncated");
    let record = outcome.record.unwrap();
    let (small, mid, top) = (TIERS[SMALL].usage, TIERS[MID].usage, TIERS[FRONTIER].usage);
    assert_eq!(
        record.escalations,
        [
            step(SMALL, MID, "refusal", Some(200), Some(small)),
            step(MID, FRONTIER, "truncated", Some(200), Some(mid)),
        ]
    );
    assert_close(
        record.cost_micro_usd,
        cost(FRONTIER, top) + cost(MID, mid) + cost(SMALL, small),
        "cost: the answer served and both dropped",
    );
}

#[test]
fn with_two_escalations_and_every_call_failing_the_first_answer_goes_out() {
    let config = two_escalations();
    let outcome = exchange(
        &config,
        &Client::simple(CHAT),
        by_tier([
            reply(429, JSON, "{\"error\": \"rate\"}"),
            Reply::Reset,
            CallFailure::Status503.reply(),
        ]),
    );
    assert_passed(&outcome, 429, b"{\"error\": \"rate\"}");
    let record = outcome.record.unwrap();
    assert_eq!(
        record.escalations,
        [
            step(SMALL, MID, "status_429", None, None),
            step(MID, FRONTIER, "reset", Some(503), None),
        ]
    );
    assert_eq!((record.tier.as_str(), record.status), ("small", Some(429)));
    assert_eq!(outcome.calls.len(), 2);
}

#[test]
fn past_the_deadline_nothing_is_called_and_a_call_gets_only_what_is_left() {
    let config = config(
        json!({"deadline_ms": 1000, "attempt_timeout_ms": 800}),
        json!({}),
    );
    // (time between the request and the failing answer, the call's timeout if any)
    for (waited_ms, timeout_ms) in [
        (0, Some(800u64)),
        (150, Some(800)),
        (700, Some(300)),
        (999, Some(1)),
        (1000, None),
        (5000, None),
    ] {
        let what = format!("{waited_ms} ms");
        let settings = HostSettings {
            latency_nanos: waited_ms * MS,
            ..HostSettings::default()
        };
        let outcome = exchange_with(
            &config,
            &Client::simple(CHAT),
            small_then(CHAT, failing(503)),
            &settings,
        );
        match timeout_ms {
            Some(timeout_ms) => {
                assert!(
                    matches!(outcome.response_next[..], [Next::Dispatch(_)]),
                    "{what}"
                );
                let timeout = the_call(&outcome).timeout;
                assert_eq!(timeout.as_millis(), u128::from(timeout_ms), "{what}");
            }
            None => {
                assert_eq!(outcome.response_next, [Next::Continue], "{what}");
                assert!(outcome.calls.is_empty(), "{what}");
                assert_passed(&outcome, 503, b"");
                assert!(outcome.record.as_ref().unwrap().escalations.is_empty());
                assert!(outcome
                    .logs
                    .iter()
                    .any(|(_, message)| message.contains("past the deadline")));
            }
        }
        assert_no_warnings(&outcome);
    }
}

#[test]
fn the_deadline_also_bounds_a_second_escalation() {
    let config = config(
        json!({"max_escalations": 2, "deadline_ms": 1000}),
        json!({}),
    );
    // small fails at 500 ms, mid's call fails at 1000 ms: no time left for frontier.
    let settings = HostSettings {
        latency_nanos: 500 * MS,
        ..HostSettings::default()
    };
    let outcome = exchange_with(
        &config,
        &Client::simple(CHAT),
        mid_fails(CHAT, failing(503), CallFailure::Status503),
        &settings,
    );
    assert_eq!(outcome.calls.len(), 1, "past the deadline");
    assert_passed(&outcome, 503, b"");
}

#[test]
fn requests_triage_may_not_move_are_never_called_for() {
    let rules = json!({"rules": [
        {"name": "top", "when": {"header": {"name": "x-top", "value": "1"}}, "tier": "frontier"}
    ]});
    let enforced = config(json!({}), rules.clone());
    let mut shadow_extra = rules;
    shadow_extra["mode"] = json!("shadow");
    let shadowed = config(json!({}), shadow_extra);
    let cases = [
        (
            "pinned to a model",
            &enforced,
            Client::chat(json!({"model": "gpt-4o-mini"})),
        ),
        (
            "opted out",
            &enforced,
            Client::simple(CHAT).header("x-no-escalate", "1"),
        ),
        ("shadowed", &shadowed, Client::simple(CHAT)),
        (
            "on the top tier",
            &enforced,
            Client::simple(CHAT).header("x-top", "1"),
        ),
        (
            "failed open",
            &enforced,
            Client::new(CHAT, json!({"model": "auto", "messages": "not a list"})),
        ),
    ];
    let weak = answer(CHAT, SMALL, "", "length");
    for (what, config, client) in cases {
        for (status, body) in [(503, &b"down"[..]), (200, &weak[..])] {
            // Wherever the request went, its tier answers so.
            let answered = reply(status, JSON, body);
            let outcome = exchange_with(
                config,
                &client,
                by_tier([answered.clone(), answered.clone(), answered]),
                &chunked(&[2]),
            );
            assert_left_alone(&outcome, status, body, &format!("{what} {status}"));
            assert_no_warnings(&outcome);
        }
    }
}

/// The failing answer: held while its call is in flight, its body and trailers arriving before the
/// call answers.
fn failure_ending_in_trailers(answered: Event, released: &'static [&'static str]) -> Vec<Row> {
    vec![
        routed(),
        small_fails(false),
        sent_to_mid(),
        (Event::ResponseBody(b"down".to_vec(), false), "pause", &[]),
        (Event::ResponseTrailers, "pause", &[]),
        (answered, "continue", released),
    ]
}

/// Trailers end the answer while the call is in flight: nothing goes out, and whatever the call
/// brings settles the record at once (the answer is over).
#[test]
fn the_answers_end_in_trailers_waits_for_the_call_in_flight() {
    let config = default_config();
    let good = Some(good_response(CHAT, MID));
    let cases = [
        (
            "the call fails: the failure goes out whole, trailers and all",
            Event::Answered(1, None),
            &[
                "Info: not escalating (reset): no escalations left",
                "continue response",
                "settle",
            ][..],
            "small",
            None,
        ),
        (
            "the call answers: its answer replaces the failure",
            Event::Answered(1, good),
            &["reply 200 triage_escalated", "settle"][..],
            "mid",
            Some(200),
        ),
    ];
    for (what, answered, released, tier, status) in cases {
        let mut script = Script::new(&config, &Client::simple(CHAT));
        let steps = script.play_rows(&failure_ending_in_trailers(answered, released), what);
        // The held body goes on with the failure; a local reply drops it.
        let handed_on = script.held.response_body.is_empty();
        assert_eq!(handed_on, tier == "small", "{what}");
        let record = settled(&steps);
        assert_eq!(record.tier, tier, "{what}");
        assert_eq!(
            record.escalations,
            [step(SMALL, MID, "status_5xx", status, None)],
            "{what}"
        );
    }
}

/// Trailers end the answer without handing the body over again: a held answer is not judged, but
/// it is never stuck either.
#[test]
fn a_held_answer_ending_in_trailers_goes_out_as_it_is() {
    let config = default_config();
    let cases = [
        (
            "a whole answer",
            Client::simple(CHAT),
            JSON,
            answer(CHAT, SMALL, "", "length"),
        ),
        (
            "a stream before its hold",
            Client::streaming(CHAT),
            EVENT_STREAM,
            chat_stream(SMALL, &[], None),
        ),
    ];
    for (what, client, content_type, body) in cases {
        let mut script = Script::new(&config, &client);
        let rows: Vec<Row> = vec![
            routed(),
            (
                Event::ResponseHeaders(200, content_type, false),
                "pause",
                &[],
            ),
            (Event::ResponseBody(body, false), "pause", &[]),
            (Event::ResponseTrailers, "continue", &["settle"]),
        ];
        let steps = script.play_rows(&rows, what);
        let record = settled(&steps);
        assert!(record.escalations.is_empty(), "{what}");
        assert_eq!(record.status, Some(200));
    }
}

/// The client leaves while the call is in flight: the record settles with what was known (the
/// routed tier's failure, the step taken), and the call's late answer changes nothing.
#[test]
fn a_client_gone_while_calling_cancels_the_call_and_still_records() {
    let config = default_config();
    let mut script = Script::new(&config, &Client::simple(CHAT));
    let late = Some(good_response(CHAT, MID));
    let rows: Vec<Row> = vec![
        routed(),
        small_fails(true),
        sent_to_mid(),
        (Event::Log, "continue", &["settle"]),
        (Event::Answered(1, late), "continue", &[]),
    ];
    let steps = script.play_rows(&rows, "gone while calling");
    let record = settled(&steps);
    assert_eq!((record.tier.as_str(), record.status), ("small", Some(503)));
    assert_eq!(
        record.escalations,
        [step(SMALL, MID, "status_5xx", None, None)]
    );
}
