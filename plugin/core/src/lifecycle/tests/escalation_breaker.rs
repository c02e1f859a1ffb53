//! The per-tier circuit breakers as the machine asks and teaches them, natively: failures open a
//! tier, an open tier is skipped when routing (a `circuit_open` step, nothing called) and when
//! escalating; after the cool-down one trial goes, and its outcome closes or reopens the tier.
//! Requests follow one another on one [`MemoryBreakers`] and a clock the test moves; streams that
//! overlap are scripts on the same breakers.
//!
//! Host twins (host-tests/tests/module/escalation/breaker.rs → here):
//! - failures_open_the_breaker_then_a_trial_after_the_cooldown_closes_it → same name
//! - the_breaker_state_gauge_follows_the_breaker → the_breaker_state_follows_the_breaker (the
//!   state the filter publishes as its gauge; that a config update republishes it is the filter's)
//! - a_failed_trial_opens_the_breaker_for_another_cooldown → same name
//! - a_weak_answer_counts_as_a_failure_and_a_sound_one_as_a_success → same name
//! - a_trial_whose_outcome_is_lost_holds_the_tier_closed_to_others_for_a_cooldown → same (script)
//! - an_open_mid_is_passed_over_when_escalating → same name
//! - a_routed_request_passes_every_open_tier_below_the_top → same name
//! - workers_open_a_tier_together → streams_in_flight_together_open_a_tier_together (script: the
//!   machine's side of it, streams sharing one board; sharing it across VMs is the filter's)
//! - one_trial_for_all_workers_and_its_success_closes_the_tier_for_all
//!   → one_trial_at_a_time_and_its_success_closes_the_tier_for_all (script)
//! - a_trial_taken_by_a_request_that_may_not_move_still_closes_the_breaker → same name
//! - a_new_config_keeps_the_breaker_of_a_tier_it_keeps, unreadable_breaker_bytes_start_afresh:
//!   none here. The breakers' life across config updates and their bytes in Envoy's shared data
//!   belong to the filter (plugin/filter/src/breakers.rs); the bytes' checks are the Breaker's own
//!   tests (escalation/breaker/tests.rs, bytes_of_another_window_or_layout_start_afresh).

use std::cell::Cell;

use super::super::exchange::{HostSettings, Reply};
use super::super::{HeaderMap, Step};
use super::script::{assert_writes, routed, sent_to_mid, settled, small_fails, Event, Row, Script};
use super::*;
use crate::BreakerState;

const COOLDOWN_MS: u64 = 1000;

/// Opens after 2 outcomes of which half failed.
fn breaker_config(extra: Value) -> Rc<Config> {
    config(
        json!({"circuit_breaker": {"window": 4, "min_requests": 2, "failure_rate": 0.5,
                                   "cooldown_ms": COOLDOWN_MS}}),
        extra,
    )
}

/// Requests one after another on one set of breakers, on a clock the test moves.
struct Traffic {
    config: Rc<Config>,
    breakers: Rc<MemoryBreakers>,
    now_nanos: u64,
}

impl Traffic {
    fn new(config: Rc<Config>) -> Traffic {
        Traffic {
            breakers: Rc::new(MemoryBreakers::new(&config)),
            config,
            now_nanos: HostSettings::default().start_nanos,
        }
    }

    fn wait(&mut self, ms: u64) {
        self.now_nanos += ms * MS;
    }

    fn send(&self, client: &Client, upstreams: impl FnMut(&Sent) -> Reply) -> Outcome {
        let settings = HostSettings {
            start_nanos: self.now_nanos,
            ..HostSettings::default()
        };
        exchange_on(&self.config, &self.breakers, client, upstreams, &settings)
    }

    /// A stream of `client`'s request on these breakers, now.
    fn script(&self, client: &Client) -> Script {
        let mut script = Script::on(&self.config, &self.breakers, client);
        script.held.now_nanos = self.now_nanos;
        script
    }

    fn state(&self, tier: usize) -> Option<BreakerState> {
        self.breakers.state(tier)
    }

    /// small fails with 503 and mid answers the call.
    fn small_fails_mid_answers(&self) {
        let outcome = self.send(&Client::simple(CHAT), small_then(CHAT, failing(503)));
        assert_eq!(outcome.routed.as_ref().unwrap().cluster, "tier_small");
        assert_eq!(the_call(&outcome).cluster, "tier_mid");
        assert_eq!(
            outcome.record.unwrap().escalations,
            [step(SMALL, MID, "status_5xx", Some(200), None)]
        );
    }

    /// A request goes straight to mid past an open small tier, answered well by mid.
    fn skips_small(&self) {
        let client = Client::simple(CHAT);
        let body = good_answer(CHAT, MID);
        let outcome = self.send(&client, small_then(CHAT, ok_json(body.clone())));
        let routed = assert_routed(&outcome, &client, MID);
        assert_eq!(header(&routed.headers, "x-triage-escalated"), None);
        assert_eq!(outcome.response_next.last(), Some(&Next::Continue));
        assert_passed_with_skip(&outcome, &body);
        assert!(outcome.calls.is_empty(), "nothing called");
        let record = outcome.record.unwrap();
        assert_eq!(
            record.escalations,
            [step(SMALL, MID, "circuit_open", None, None)]
        );
        assert_eq!(record.tier, "mid");
        assert_eq!(record.model.as_deref(), Some(TIERS[MID].model));
        assert_eq!(record.usage, Some(TIERS[MID].usage));
    }

    /// A request small answers well.
    fn small_answers(&self) {
        let body = good_answer(CHAT, SMALL);
        let outcome = self.send(&Client::simple(CHAT), small_then(CHAT, ok_json(body)));
        assert_eq!(outcome.routed.as_ref().unwrap().cluster, "tier_small");
        assert_eq!(outcome.response_next.last(), Some(&Next::Continue));
        assert!(outcome.record.unwrap().escalations.is_empty());
    }

    /// Opens small: two failures of two.
    fn open_small(&self) {
        self.small_fails_mid_answers();
        self.small_fails_mid_answers();
        assert_eq!(self.state(SMALL), Some(BreakerState::Open));
    }
}

/// The client got the tier's answer as it came, with the skip stated as an escalation.
fn assert_passed_with_skip(outcome: &Outcome, body: &[u8]) {
    let response = &outcome.response;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, body);
    assert_eq!(response.header("x-triage-tier"), Some("mid"));
    assert_eq!(response.header("x-triage-escalated"), Some("small->mid"));
    assert_eq!(
        response.header("x-triage-escalation-cause"),
        Some("circuit_open")
    );
}

#[test]
fn failures_open_the_breaker_then_a_trial_after_the_cooldown_closes_it() {
    let mut traffic = Traffic::new(breaker_config(json!({})));
    Client::simple(CHAT).goes_small(&traffic.config);
    traffic.open_small();
    // Open: small is skipped, for the whole cool-down.
    traffic.skips_small();
    traffic.wait(COOLDOWN_MS - 1);
    traffic.skips_small();
    // Half-open: one trial goes to small; its success closes the breaker.
    traffic.wait(1);
    traffic.small_answers();
    assert_eq!(traffic.state(SMALL), Some(BreakerState::Closed));
    // Closed with a fresh window (the trial is not in it): one failure in three stays under the
    // rate.
    traffic.small_answers();
    traffic.small_answers();
    traffic.small_fails_mid_answers();
    traffic.small_answers();
    assert_eq!(traffic.state(SMALL), Some(BreakerState::Closed));
}

/// Closed, then open after the second failure, half-open while the trial is in flight (seen by the
/// upstream answering it), and closed by its success. Without escalation there is no breaker.
#[test]
fn the_breaker_state_follows_the_breaker() {
    let mut traffic = Traffic::new(breaker_config(json!({})));
    assert_eq!(traffic.state(SMALL), Some(BreakerState::Closed));
    assert_eq!(traffic.state(MID), Some(BreakerState::Closed));
    traffic.small_fails_mid_answers();
    assert_eq!(
        traffic.state(SMALL),
        Some(BreakerState::Closed),
        "one failure of two needed"
    );
    traffic.small_fails_mid_answers();
    assert_eq!(traffic.state(SMALL), Some(BreakerState::Open));
    traffic.wait(COOLDOWN_MS);
    let during_the_trial = Cell::new(None);
    let breakers = Rc::clone(&traffic.breakers);
    traffic.send(&Client::simple(CHAT), |sent: &Sent| {
        assert_eq!(sent.cluster, "tier_small");
        during_the_trial.set(breakers.state(SMALL));
        ok_json(good_answer(CHAT, SMALL))
    });
    assert_eq!(during_the_trial.get(), Some(BreakerState::HalfOpen));
    assert_eq!(traffic.state(SMALL), Some(BreakerState::Closed));
    let without_escalation = MemoryBreakers::new(&plain_config(json!({})));
    assert_eq!(without_escalation.state(SMALL), None, "no breakers");
}

#[test]
fn a_failed_trial_opens_the_breaker_for_another_cooldown() {
    let mut traffic = Traffic::new(breaker_config(json!({})));
    traffic.open_small();
    traffic.skips_small();
    traffic.wait(COOLDOWN_MS);
    // The trial fails, and is itself moved to mid.
    traffic.small_fails_mid_answers();
    traffic.skips_small();
    traffic.wait(COOLDOWN_MS - 1);
    traffic.skips_small();
    traffic.wait(1);
    traffic.small_answers();
    traffic.small_answers();
}

#[test]
fn a_weak_answer_counts_as_a_failure_and_a_sound_one_as_a_success() {
    let traffic = Traffic::new(breaker_config(json!({})));
    for _ in 0..2 {
        let empty = ok_json(answer(CHAT, SMALL, "", "stop"));
        let outcome = traffic.send(&Client::simple(CHAT), small_then(CHAT, empty));
        assert_eq!(the_call(&outcome).cluster, "tier_mid");
    }
    traffic.skips_small();
    // Sound answers keep a closed breaker closed: 1 failure in 3 is under the rate.
    let traffic = Traffic::new(breaker_config(json!({})));
    traffic.small_answers();
    traffic.small_answers();
    traffic.small_fails_mid_answers();
    traffic.small_answers();
}

/// The trial's client leaves before any answer: nothing reports to the breaker, which holds small
/// closed to everyone else until another cool-down has passed (then a new trial goes).
#[test]
fn a_trial_whose_outcome_is_lost_holds_the_tier_closed_to_others_for_a_cooldown() {
    let mut traffic = Traffic::new(breaker_config(json!({})));
    traffic.open_small();
    traffic.wait(COOLDOWN_MS);
    let mut trial = traffic.script(&Client::simple(CHAT));
    let rows: Vec<Row> = vec![routed(), (Event::Log, "continue", &["settle"])];
    let steps = trial.play_rows(&rows, "the lost trial");
    assert_routed_by(&steps[0], "small");
    assert_eq!(settled(&steps).status, None);
    traffic.skips_small();
    traffic.wait(COOLDOWN_MS);
    traffic.small_answers();
}

/// The routing header a request step wrote.
fn assert_routed_by(step: &Step, tier: &str) {
    let route = [("x-triage-route", Some(tier))];
    assert_writes(step, HeaderMap::Request, &route, "routed");
}

#[test]
fn an_open_mid_is_passed_over_when_escalating() {
    let rules = json!({"rules": [
        {"name": "to-mid", "when": {"header": {"name": "x-mid", "value": "1"}}, "tier": "mid"}
    ]});
    let traffic = Traffic::new(breaker_config(rules));
    // Two requests routed to mid fail there and are answered by frontier: mid opens.
    for _ in 0..2 {
        let client = Client::simple(CHAT).header("x-mid", "1");
        let outcome = traffic.send(&client, by_tier_failing_at(MID));
        assert_routed(&outcome, &client, MID);
        assert_eq!(the_call(&outcome).cluster, "tier_frontier");
    }
    // small is closed; its failure moves straight to frontier.
    let client = Client::simple(CHAT);
    let decision = client.goes_small(&traffic.config);
    let outcome = traffic.send(&client, small_then(CHAT, failing(503)));
    let routed = assert_routed(&outcome, &client, SMALL);
    assert_call_to(the_call(&outcome), &client, &routed, SMALL, FRONTIER);
    let frontier = good_response(CHAT, FRONTIER);
    assert_answered_with(
        &outcome,
        &decision,
        &frontier,
        SMALL,
        FRONTIER,
        "status_5xx",
    );
    assert_eq!(
        outcome.record.unwrap().escalations,
        [step(SMALL, FRONTIER, "status_5xx", Some(200), None)]
    );
}

/// `tier` fails with 503; the others answer soundly.
fn by_tier_failing_at(tier: usize) -> impl FnMut(&Sent) -> Reply {
    let mut replies = [SMALL, MID, FRONTIER].map(|tier| Reply::Answer(good_response(CHAT, tier)));
    replies[tier] = failing(503);
    by_tier(replies)
}

#[test]
fn a_routed_request_passes_every_open_tier_below_the_top() {
    let traffic = Traffic::new(breaker_config(json!({})));
    // small fails and mid's call fails too, twice: both open.
    for _ in 0..2 {
        let outcome = traffic.send(
            &Client::simple(CHAT),
            by_tier([failing(503), Reply::Reset, failing(503)]),
        );
        assert_eq!(the_call(&outcome).cluster, "tier_mid");
    }
    let client = Client::simple(CHAT);
    let outcome = traffic.send(&client, small_then(CHAT, failing(503)));
    assert_routed(&outcome, &client, FRONTIER);
    assert!(outcome.calls.is_empty());
    assert_eq!(
        outcome.record.unwrap().escalations,
        [
            step(SMALL, MID, "circuit_open", None, None),
            step(MID, FRONTIER, "circuit_open", None, None),
        ]
    );
}

/// Two streams decided before either answers, both failing: together they are the two outcomes at
/// a 50% failure rate that open small, and the next request skips it.
#[test]
fn streams_in_flight_together_open_a_tier_together() {
    let traffic = Traffic::new(breaker_config(json!({})));
    let client = Client::simple(CHAT);
    let mut streams = [traffic.script(&client), traffic.script(&client)];
    for stream in &mut streams {
        let decided = stream.play(&Event::Request);
        assert_routed_by(&decided, "small");
    }
    let failed: Vec<Row> = vec![
        small_fails(true),
        sent_to_mid(),
        (
            Event::Answered(1, Some(good_response(CHAT, MID))),
            "continue",
            &["reply 200 triage_escalated", "settle"],
        ),
    ];
    for (index, stream) in streams.iter_mut().enumerate() {
        stream.play_rows(&failed, &format!("stream {index}"));
    }
    assert_eq!(traffic.state(SMALL), Some(BreakerState::Open));
    traffic.skips_small();
}

/// After the cool-down one trial goes; while it is in flight the other requests keep skipping
/// small, and its success closes small for all.
#[test]
fn one_trial_at_a_time_and_its_success_closes_the_tier_for_all() {
    let mut traffic = Traffic::new(breaker_config(json!({})));
    traffic.open_small();
    traffic.wait(COOLDOWN_MS);
    let mut trial = traffic.script(&Client::simple(CHAT));
    let decided = trial.play(&Event::Request);
    assert_routed_by(&decided, "small");
    traffic.skips_small();
    let answered: Vec<Row> = vec![
        (Event::ResponseHeaders(200, JSON, false), "pause", &[]),
        (
            Event::ResponseBody(good_answer(CHAT, SMALL), true),
            "continue",
            &["settle"],
        ),
    ];
    trial.play_rows(&answered, "the trial");
    traffic.small_answers();
    traffic.small_answers();
}

/// After the cool-down the next request to small is the trial; a request that may not move (it
/// carries the opt-out header) still reports its answer to the breaker, which closes. (It once did
/// not, leaving small closed to everyone for another cool-down.)
#[test]
fn a_trial_taken_by_a_request_that_may_not_move_still_closes_the_breaker() {
    let mut traffic = Traffic::new(breaker_config(json!({})));
    traffic.open_small();
    traffic.wait(COOLDOWN_MS);
    let client = Client::simple(CHAT).header("x-no-escalate", "1");
    let body = good_answer(CHAT, SMALL);
    let outcome = traffic.send(&client, small_then(CHAT, ok_json(body)));
    assert_routed(&outcome, &client, SMALL);
    assert_eq!(outcome.response_next, [Next::Continue, Next::Continue]);
    assert_eq!(traffic.state(SMALL), Some(BreakerState::Closed));
    traffic.small_answers();
}
