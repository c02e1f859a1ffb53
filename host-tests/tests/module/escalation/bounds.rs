//! When the call fails the held answer goes out as it came; with escalations left the request
//! moves on up; past the deadline nothing is called; and the requests triage may not move never are.

use super::*;
use std::time::Duration;

/// How the call to the next tier ends without a usable answer.
#[derive(Clone, Copy, Debug)]
enum CallFailure {
    /// Envoy's onFailure: a reset, no response at all.
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

    fn fail(self, stream: &mut Stream, token: u32) {
        match self {
            CallFailure::NoResponse => stream.fail_http_call(token).unwrap(),
            CallFailure::Status503 => stream
                .answer_http_call(
                    token,
                    HttpResponse::new(503, &[("content-type", JSON)], b"{\"error\": {}}"),
                )
                .unwrap(),
            CallFailure::Timeout504 => stream
                .answer_http_call(
                    token,
                    HttpResponse::new(
                        504,
                        &[("content-type", "text/plain")],
                        b"upstream request timeout",
                    ),
                )
                .unwrap(),
        }
    }
}

#[test]
fn when_the_call_fails_the_held_failure_goes_out_as_it_came() {
    let config = default_config();
    for failure in CallFailure::ALL {
        for body_first in [false, true] {
            let what = format!("{failure:?} body first: {body_first}");
            let mut host = start(&config);
            let mut stream = host.request().unwrap();
            Client::simple(CHAT).send(&mut stream);
            let headers = [(":status", "503"), ("content-type", "text/plain")];
            assert_eq!(
                stream.send_response_headers(&headers, false).unwrap(),
                Action::Pause
            );
            if body_first {
                assert_eq!(
                    stream.send_response_body(b"overloaded", true).unwrap(),
                    Action::Pause
                );
            }
            let call = the_call(&stream);
            failure.fail(&mut stream, call.token);
            assert!(stream.local_reply().is_none(), "{what}");
            assert_eq!(stream.downstream_header(":status"), Some("503"), "{what}");
            assert_eq!(stream.downstream_header("x-triage-tier"), Some("small"));
            if !body_first {
                assert!(!stream.downstream_complete());
                let action = stream.send_response_body(b"overloaded", true).unwrap();
                assert_eq!(action, Action::Continue, "{what}: the rest passes");
            }
            assert_eq!(stream.downstream_body(), b"overloaded", "{what}");
            assert!(stream.downstream_complete(), "{what}");
            let record = record(stream.host());
            assert_eq!(record.tier, "small", "{what}");
            assert_eq!(record.status, Some(503));
            assert_eq!(
                record.escalations,
                [step(SMALL, MID, "status_5xx", failure.status(), None)],
                "{what}"
            );
            drop(stream);
            assert_eq!(host.http_calls().len(), 1, "{what}: no second call");
            assert_escalation_counters(&host, &[(SMALL, MID, "status_5xx", 1)]);
            assert_no_warnings(&host);
        }
    }
}

#[test]
fn when_the_call_fails_a_held_weak_answer_goes_out_whole() {
    let config = default_config();
    let weak = answer(CHAT, SMALL, "The sentiment", "length");
    for failure in CallFailure::ALL {
        let mut host = start(&config);
        let mut stream = host.request().unwrap();
        Client::simple(CHAT).send(&mut stream);
        respond(&mut stream, 200, JSON, &weak, &[9, 9]);
        let call = the_call(&stream);
        failure.fail(&mut stream, call.token);
        assert_eq!(stream.downstream_header(":status"), Some("200"));
        assert_eq!(stream.downstream_body(), weak, "{failure:?}");
        assert!(stream.downstream_complete());
        let record = record(stream.host());
        assert_eq!(record.tier, "small");
        assert_eq!(record.escalations.len(), 1);
        assert_eq!(record.escalations[0].cause, "truncated");
        assert_eq!(record.escalations[0].status, failure.status());
        assert_eq!(record.usage, Some(TIERS[SMALL].usage));
    }
}

/// The small answer the client got is billed once: the same tokens are both the served answer
/// and the escalation's `abandoned_usage` when the weak answer had to be served after all.
#[test]
fn a_weak_answer_served_after_a_failed_call_is_billed_once() {
    let config = default_config();
    let weak = answer(CHAT, SMALL, "The sentiment", "length");
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    respond(&mut stream, 200, JSON, &weak, &[]);
    let call = the_call(&stream);
    CallFailure::Status503.fail(&mut stream, call.token);
    let record = record(stream.host());
    assert_close(
        record.cost_micro_usd,
        cost(SMALL, TIERS[SMALL].usage),
        "cost of the one small answer",
    );
    drop(stream);
    assert_eq!(
        host.metric("triage.tokens.tier.small.kind.completion"),
        Some(TIERS[SMALL].usage.completion_tokens as i64)
    );
}

/// A stream moved on an error event, whose call then fails, is released and keeps flowing: its
/// usage (at its end) is still read.
#[test]
fn a_stream_released_after_a_failed_call_still_has_its_usage_read() {
    let config = default_config();
    let client = Client::new(CHAT, simple_body(CHAT, true));
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    let error = b"data: {\"error\": {\"message\": \"overloaded\"}}\n\n".to_vec();
    let usage = TIERS[SMALL].usage;
    let rest = format!(
        "data: {{\"choices\": [], \"usage\": {{\"prompt_tokens\": {}, \"completion_tokens\": {}}}}}\n\ndata: [DONE]\n\n",
        usage.prompt_tokens, usage.completion_tokens
    );
    let headers = [(":status", "200"), ("content-type", EVENT_STREAM)];
    assert_eq!(
        stream.send_response_headers(&headers, false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        stream.send_response_body(&error, false).unwrap(),
        Action::Pause
    );
    let call = the_call(&stream);
    stream.fail_http_call(call.token).unwrap();
    assert_eq!(stream.downstream_body(), error, "released");
    let action = stream.send_response_body(rest.as_bytes(), true).unwrap();
    assert_eq!(action, Action::Continue);
    let record = record(stream.host());
    assert_eq!(
        record.usage,
        Some(usage),
        "the usage chunk after the release"
    );
}

#[test]
fn with_two_escalations_a_failing_mid_moves_on_to_frontier() {
    let config = config(json!({"max_escalations": 2}), json!({}));
    for path in [CHAT, MESSAGES] {
        for failure in CallFailure::ALL {
            let what = format!("{path} {failure:?}");
            let client = Client::simple(path);
            let decision = assert_goes_small(&client, &config);
            let mut host = start(&config);
            let mut stream = host.request().unwrap();
            client.send(&mut stream);
            let first_upstream = stream.upstream_headers().unwrap().clone();
            respond(&mut stream, 503, "text/plain", b"", &[]);
            let to_mid = the_call(&stream);
            assert_call_to(&to_mid, &client, &first_upstream, SMALL, MID);
            failure.fail(&mut stream, to_mid.token);
            let to_frontier = the_call(&stream);
            assert_call_to(&to_frontier, &client, &first_upstream, MID, FRONTIER);
            assert!(stream.local_reply().is_none() && stream.downstream_headers().is_none());
            let frontier = good_response(path, FRONTIER);
            stream
                .answer_http_call(to_frontier.token, frontier.clone())
                .unwrap();
            assert_answered_with(
                &stream,
                &decision,
                &frontier,
                SMALL,
                FRONTIER,
                failure.cause(),
            );
            let record = record(stream.host());
            assert_eq!(
                record.escalations,
                [
                    step(SMALL, MID, "status_5xx", failure.status(), None),
                    step(MID, FRONTIER, failure.cause(), Some(200), None),
                ],
                "{what}"
            );
            assert_eq!(record.tier, "frontier");
            assert_eq!(record.usage, Some(TIERS[FRONTIER].usage));
            drop(stream);
            assert_eq!(host.http_calls().len(), 2, "{what}");
            assert_escalation_counters(
                &host,
                &[
                    (SMALL, MID, "status_5xx", 1),
                    (MID, FRONTIER, failure.cause(), 1),
                ],
            );
            assert_no_warnings(&host);
        }
    }
}

#[test]
fn with_two_escalations_a_weak_mid_answer_moves_on_and_every_dropped_answer_is_billed() {
    let config = config(json!({"max_escalations": 2}), json!({}));
    let client = Client::simple(CHAT);
    let decision = assert_goes_small(&client, &config);
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    respond(
        &mut stream,
        200,
        JSON,
        &answer(CHAT, SMALL, "I'm sorry, I can't.", "stop"),
        &[],
    );
    let to_mid = the_call(&stream);
    let weak_mid = HttpResponse::new(
        200,
        &[("content-type", JSON)],
        &answer(CHAT, MID, "The sentiment", "length"),
    );
    stream.answer_http_call(to_mid.token, weak_mid).unwrap();
    let to_frontier = the_call(&stream);
    assert_eq!(to_frontier.cluster, "tier_frontier");
    let frontier = good_response(CHAT, FRONTIER);
    stream
        .answer_http_call(to_frontier.token, frontier.clone())
        .unwrap();
    assert_answered_with(&stream, &decision, &frontier, SMALL, FRONTIER, "truncated");
    let record = record(stream.host());
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
    drop(stream);
    assert_no_warnings(&host);
}

#[test]
fn with_two_escalations_and_every_call_failing_the_first_answer_goes_out() {
    let config = config(json!({"max_escalations": 2}), json!({}));
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    respond(&mut stream, 429, JSON, b"{\"error\": \"rate\"}", &[]);
    let to_mid = the_call(&stream);
    stream.fail_http_call(to_mid.token).unwrap();
    let to_frontier = the_call(&stream);
    CallFailure::Status503.fail(&mut stream, to_frontier.token);
    assert_eq!(stream.downstream_header(":status"), Some("429"));
    assert_eq!(stream.downstream_body(), b"{\"error\": \"rate\"}");
    let record = record(stream.host());
    assert_eq!(
        record.escalations,
        [
            step(SMALL, MID, "status_429", None, None),
            step(MID, FRONTIER, "reset", Some(503), None),
        ]
    );
    assert_eq!((record.tier.as_str(), record.status), ("small", Some(429)));
    drop(stream);
    assert_eq!(host.http_calls().len(), 2);
}

#[test]
fn past_the_deadline_nothing_is_called_and_a_call_gets_only_what_is_left() {
    let config = config(
        json!({"deadline_ms": 1000, "attempt_timeout_ms": 800}),
        json!({}),
    );
    // (time between the request and the failing answer, the call's timeout if any)
    for (waited_ms, timeout) in [
        (0, Some(800)),
        (150, Some(800)),
        (700, Some(300)),
        (999, Some(1)),
        (1000, None),
        (5000, None),
    ] {
        let mut host = start(&config);
        let mut stream = host.request().unwrap();
        Client::simple(CHAT).send(&mut stream);
        stream.advance_clock(Duration::from_millis(waited_ms));
        let actions = respond(&mut stream, 503, "text/plain", b"", &[]);
        match timeout {
            Some(timeout) => {
                assert_eq!(actions, [Action::Pause], "{waited_ms} ms");
                assert_eq!(the_call(&stream).timeout_ms, timeout, "{waited_ms} ms");
            }
            None => {
                assert_eq!(actions, [Action::Continue], "{waited_ms} ms");
                assert!(stream.pending_http_calls().is_empty(), "{waited_ms} ms");
                assert_eq!(stream.downstream_header(":status"), Some("503"));
                assert!(stream.downstream_complete());
                assert!(record(stream.host()).escalations.is_empty());
            }
        }
        drop(stream);
        assert_no_warnings(&host);
    }
}

#[test]
fn the_deadline_also_bounds_a_second_escalation() {
    let config = config(
        json!({"max_escalations": 2, "deadline_ms": 1000}),
        json!({}),
    );
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    respond(&mut stream, 503, "text/plain", b"", &[]);
    let to_mid = the_call(&stream);
    stream.advance_clock(Duration::from_millis(1000));
    CallFailure::Status503.fail(&mut stream, to_mid.token);
    assert!(stream.pending_http_calls().is_empty(), "past the deadline");
    assert_eq!(stream.downstream_header(":status"), Some("503"));
    drop(stream);
    assert_eq!(host.http_calls().len(), 1);
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
    for (what, config, client) in cases {
        let mut host = start(config);
        let mut stream = host.request().unwrap();
        client.send(&mut stream);
        let weak = answer(CHAT, SMALL, "", "length");
        for (status, body) in [(503, &b"down"[..]), (200, &weak[..])] {
            if status == 200 {
                drop(stream);
                stream = host.request().unwrap();
                client.send(&mut stream);
            }
            let actions = respond(&mut stream, status, JSON, body, &[2]);
            assert!(
                actions.iter().all(|a| *a == Action::Continue),
                "{what} {status}: {actions:?}"
            );
            assert_eq!(stream.downstream_body(), body, "{what}");
            assert!(stream.pending_http_calls().is_empty(), "{what}");
            assert!(record(stream.host()).escalations.is_empty(), "{what}");
        }
        drop(stream);
        assert!(host.http_calls().is_empty(), "{what}");
        assert_escalation_counters(&host, &[]);
        assert_no_warnings(&host);
    }
}

#[test]
fn a_failure_ending_in_trailers_is_held_with_them_and_released_whole() {
    let config = default_config();
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    let headers = [(":status", "503"), ("content-type", "text/plain")];
    assert_eq!(
        stream.send_response_headers(&headers, false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        stream.send_response_body(b"down", false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        stream
            .send_response_trailers(&[("grpc-status", "14")])
            .unwrap(),
        Action::Pause,
        "the end arrives while the call is in flight"
    );
    let call = the_call(&stream);
    stream.fail_http_call(call.token).unwrap();
    assert_eq!(stream.downstream_body(), b"down");
    assert_eq!(
        stream
            .downstream_trailers()
            .and_then(|t| t.get("grpc-status")),
        Some("14")
    );
    assert!(stream.downstream_complete());
    assert!(
        stream.host().property(&["triage_record"]).is_some(),
        "settled when released"
    );
    assert_eq!(record(stream.host()).escalations.len(), 1);
}

#[test]
fn a_held_answer_ending_in_trailers_goes_out_as_it_is() {
    // Trailers end the answer without handing the body over again: it is not judged, but it is
    // never stuck either.
    let config = default_config();
    let weak = answer(CHAT, SMALL, "", "length");
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    let headers = [(":status", "200"), ("content-type", JSON)];
    assert_eq!(
        stream.send_response_headers(&headers, false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        stream.send_response_body(&weak, false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        stream.send_response_trailers(&[("x-end", "1")]).unwrap(),
        Action::Continue
    );
    assert_eq!(stream.downstream_body(), weak);
    assert!(stream.downstream_complete());
    drop(stream);
    assert!(host.http_calls().is_empty());
}

#[test]
fn a_client_gone_while_calling_cancels_the_call_and_still_records() {
    let config = default_config();
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    respond(&mut stream, 503, "text/plain", b"", &[]);
    let token = the_call(&stream).token;
    stream.finish().unwrap();
    assert!(host.pending_http_calls().is_empty(), "Envoy cancels it");
    assert!(
        host.complete_http_call(token, None).is_err(),
        "a cancelled call never answers"
    );
    let record = record(&host);
    assert_eq!((record.tier.as_str(), record.status), ("small", Some(503)));
    assert!(host.failure().is_none());
    assert_no_warnings(&host);
}
