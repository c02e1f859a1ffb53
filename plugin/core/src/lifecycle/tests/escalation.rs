//! Escalation on a failing status, natively: each failing status and the cause Envoy's response code
//! details name, on each API format and with the failing answer's body arriving in each order
//! around the call; rules and overrides moved like scores; statuses left alone; a call the host can
//! not send; the shipped config.
//!
//! Host twins (host-tests/tests/module/escalation.rs → here):
//! - each_failing_status_moves_the_request_to_mid_once_and_answers_with_mid
//!   → each_failing_status_moves_the_request_to_mid_once_and_answers_with_mid (every status on
//!   every format in every arrival, where the host test takes one arrival per pair)
//! - a_rule_or_an_allowed_override_is_moved_up_like_a_score → same name
//! - an_overrides_reason_still_names_the_tier_the_caller_picked → same name
//! - statuses_outside_on_status_pass_untouched → same name
//! - a_call_envoy_can_not_start_lets_the_failure_through
//!   → a_call_the_host_can_not_send_lets_the_failure_through
//! - the_shipped_plugin_config_moves_a_failing_small_tier_to_mid → same name
//! - the_record_names_the_model_that_served → same name

use super::super::exchange::{Answer, HostSettings, Reply};
use super::super::Level;
use super::*;
use crate::Cause;

/// A failing answer of the small tier and the cause it names.
struct StatusCase {
    status: u16,
    /// Envoy's response code details; `via_upstream` is the provider's own answer, None: none.
    details: Option<&'static str>,
    cause: &'static str,
}

const STATUS_CASES: [StatusCase; 6] = [
    StatusCase {
        status: 503,
        details: Some("via_upstream"),
        cause: "status_5xx",
    },
    StatusCase {
        status: 500,
        details: None,
        cause: "status_5xx",
    },
    StatusCase {
        status: 429,
        details: Some("via_upstream"),
        cause: "status_429",
    },
    StatusCase {
        status: 504,
        details: Some("response_timeout"),
        cause: "timeout",
    },
    StatusCase {
        status: 503,
        details: Some("upstream_reset_before_response_started{remote_connection_failure}"),
        cause: "connect_failure",
    },
    StatusCase {
        status: 503,
        details: Some("upstream_reset_before_response_started{connection_termination}"),
        cause: "reset",
    },
];

impl StatusCase {
    fn reply(&self, body: &[u8]) -> Reply {
        let answer = Answer::new(self.status, "text/plain", body);
        match self.details {
            Some("via_upstream") => Reply::Answer(answer),
            details => Reply::Envoy(answer, details.unwrap_or_default().to_string()),
        }
    }
}

/// How the failing answer arrives around the call.
#[derive(Clone, Copy, Debug)]
enum Arrival {
    /// Headers ending the stream.
    HeadersOnly,
    /// Headers, then the body in pieces while the call is in flight.
    BodyWhileCalling,
    /// Headers; the call is answered before any body comes (the local reply then ends the stream).
    AnsweredFirst,
}

#[test]
fn each_failing_status_moves_the_request_to_mid_once_and_answers_with_mid() {
    let config = default_config();
    let arrivals = [
        Arrival::HeadersOnly,
        Arrival::BodyWhileCalling,
        Arrival::AnsweredFirst,
    ];
    for case in &STATUS_CASES {
        for format in ApiFormat::ALL {
            for arrival in arrivals {
                let what = format!("{} {:?} {format:?} {arrival:?}", case.status, case.details);
                let client = Client::simple(format);
                let decision = client.goes_small(&config);
                assert_eq!(decision.cause, Cause::Scored);
                let (body, settings) = match arrival {
                    Arrival::HeadersOnly => (&b""[..], HostSettings::default()),
                    Arrival::BodyWhileCalling => (
                        &b"upstream unavailable"[..],
                        HostSettings {
                            calls_wait_for_response: true,
                            ..chunked(&[9])
                        },
                    ),
                    Arrival::AnsweredFirst => {
                        (&b"upstream unavailable"[..], HostSettings::default())
                    }
                };
                let outcome = exchange_with(
                    &config,
                    &client,
                    small_then(format, case.reply(body)),
                    &settings,
                );
                let routed = assert_routed(&outcome, &client, SMALL);
                let call = the_call(&outcome);
                assert_call_to(call, &client, &routed, SMALL, MID);
                assert_eq!(call.timeout.as_millis(), u128::from(ATTEMPT_TIMEOUT_MS));
                let held: &[Next] = match arrival {
                    Arrival::BodyWhileCalling => &[Next::Pause, Next::Pause, Next::Pause],
                    _ => &[],
                };
                assert!(
                    matches!(outcome.response_next[0], Next::Dispatch(_)),
                    "{what}: the failure is held back as the call goes"
                );
                assert_eq!(
                    outcome.response_next[1..],
                    *held,
                    "{what}: held while calling"
                );
                assert_answered_with(
                    &outcome,
                    &decision,
                    &good_response(format, MID),
                    SMALL,
                    MID,
                    case.cause,
                );
                let record = outcome.record.as_ref().unwrap();
                assert_eq!(record.tier, "mid", "{what}");
                assert_eq!(record.decided_tier, "small");
                assert_eq!(record.cause, "scored");
                assert_eq!(
                    record.escalations,
                    [step(SMALL, MID, case.cause, Some(200), None)],
                    "{what}"
                );
                assert_eq!(record.status, Some(200));
                assert_eq!(record.usage, Some(TIERS[MID].usage));
                assert_close(record.cost_micro_usd, cost(MID, TIERS[MID].usage), "cost");
                assert_no_warnings(&outcome);
            }
        }
    }
}

fn rules_and_override() -> Rc<Config> {
    let rules = json!({
        "rules": [{"name": "to-mid", "when": {"header": {"name": "x-mid", "value": "1"}}, "tier": "mid"},
                  {"name": "cheap", "when": {"header": {"name": "x-cheap", "value": "1"}}, "tier": "small"}],
        "identity": {"caller": {"header": "x-caller"}},
        "override": {"header": "x-triage-override", "callers": ["ops"]}
    });
    config(json!({}), rules)
}

/// An operator's caller puts a request that a rule sends to mid on small.
fn overridden() -> Client {
    Client::simple(CHAT)
        .header("x-mid", "1")
        .header("x-triage-override", "small")
        .header("x-caller", "ops")
}

#[test]
fn a_rule_or_an_allowed_override_is_moved_up_like_a_score() {
    let config = rules_and_override();
    let by_rule = Client::chat(json!({"messages": [{"role": "user", "content": HARD}]}))
        .header("x-cheap", "1");
    for (client, cause) in [(by_rule, "rule"), (overridden(), "override")] {
        let decision = client.decision(&config);
        assert_eq!(
            (decision.tier.as_str(), decision.cause.kind()),
            ("small", cause)
        );
        let outcome = exchange(&config, &client, small_then(CHAT, failing(503)));
        let routed = assert_routed(&outcome, &client, SMALL);
        assert_call_to(the_call(&outcome), &client, &routed, SMALL, MID);
        let mid = good_response(CHAT, MID);
        assert_answered_with(&outcome, &decision, &mid, SMALL, MID, "status_5xx");
        let record = outcome.record.as_ref().unwrap();
        assert_eq!(record.cause, cause);
        assert_eq!(record.tier, "mid");
        assert_no_warnings(&outcome);
    }
}

/// The escalated reply states the move in `x-triage-escalated`; its `x-triage-reason` is still the
/// decision's (`override: mid->small`), not a made-up `override: mid->mid`.
#[test]
fn an_overrides_reason_still_names_the_tier_the_caller_picked() {
    let config = rules_and_override();
    let client = overridden();
    assert_eq!(
        client.decision(&config).reason_header(),
        "override: mid->small"
    );
    let outcome = exchange(&config, &client, small_then(CHAT, failing(503)));
    let routed = outcome.routed.as_ref().unwrap();
    assert_eq!(
        header(&routed.headers, "x-triage-reason"),
        Some("override: mid->small")
    );
    assert_eq!(
        single(&outcome.response.headers, "x-triage-reason"),
        "override: mid->small"
    );
    assert_eq!(single(&outcome.response.headers, "x-triage-tier"), "mid");
}

#[test]
fn statuses_outside_on_status_pass_untouched() {
    let config = config(json!({"on_status": [503]}), json!({}));
    let body = b"{\"error\": {}}";
    for status in [429, 400, 404, 500, 302] {
        let outcome = exchange_with(
            &config,
            &Client::simple(CHAT),
            small_then(CHAT, reply(status, JSON, &body[..])),
            &chunked(&[3]),
        );
        assert_left_alone(&outcome, status, body, &status.to_string());
        assert_eq!(outcome.record.unwrap().status, Some(status));
    }
    let outcome = exchange(
        &config,
        &Client::simple(CHAT),
        small_then(CHAT, reply(503, JSON, "")),
    );
    assert!(matches!(outcome.response_next[..], [Next::Dispatch(_)]));
    assert_eq!(the_call(&outcome).cluster, "tier_mid");
}

/// Envoy's async client failed the call inline (no healthy host in tier_mid): the machine must
/// neither hold the answer nor record a move that never happened; the host logs the failed call.
#[test]
fn a_call_the_host_can_not_send_lets_the_failure_through() {
    let config = default_config();
    let settings = HostSettings {
        unavailable_clusters: vec!["tier_mid".into()],
        ..HostSettings::default()
    };
    let outcome = exchange_with(
        &config,
        &Client::simple(CHAT),
        small_then(CHAT, reply(503, "text/plain", "no upstream")),
        &settings,
    );
    assert!(matches!(
        outcome.response_next[..],
        [Next::Dispatch(_), Next::Continue]
    ));
    assert_passed(&outcome, 503, b"no upstream");
    assert!(outcome.calls.is_empty());
    let record = outcome.record.as_ref().unwrap();
    assert_eq!(record.status, Some(503));
    assert_eq!(record.tier, "small");
    assert!(record.escalations.is_empty());
    assert!(
        outcome
            .logs
            .iter()
            .any(|(level, message)| *level == Level::Warn && message.contains("tier_mid")),
        "the failed call is logged: {:#?}",
        outcome.logs
    );
}

/// The shipped `envoy/plugin-config.json` escalates: a failing small tier is answered by mid
/// through the default cluster name.
#[test]
fn the_shipped_plugin_config_moves_a_failing_small_tier_to_mid() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../envoy/plugin-config.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = Rc::new(Config::from_json(text.as_bytes()).unwrap());
    let policy = config.escalation().expect("the shipped config escalates");
    assert!(policy.escalates_status(503));
    let client = Client::simple(CHAT);
    let decision = client.decision(&config);
    if decision.tier != "small" {
        eprintln!(
            "skipped: the shipped config sends the simple request to {}",
            decision.tier
        );
        return;
    }
    let outcome = exchange(&config, &client, small_then(CHAT, failing(503)));
    let routed = assert_routed(&outcome, &client, SMALL);
    let call = the_call(&outcome);
    assert_call_to(call, &client, &routed, SMALL, MID);
    assert_eq!(
        call.timeout.as_millis(),
        u128::from(policy.attempt_timeout_ms)
    );
    let mid = good_response(CHAT, MID);
    assert_answered_with(&outcome, &decision, &mid, SMALL, MID, "status_5xx");
    assert_no_warnings(&outcome);
}

/// The record's `model` is the model written into the body that was served: after a move, the new
/// tier's, as it is when an open breaker moves the request before sending.
#[test]
fn the_record_names_the_model_that_served() {
    let outcome = exchange(
        &default_config(),
        &Client::simple(CHAT),
        small_then(CHAT, failing(503)),
    );
    let record = outcome.record.unwrap();
    assert_eq!(record.tier, "mid");
    assert_eq!(record.model.as_deref(), Some(TIERS[MID].model));
}
