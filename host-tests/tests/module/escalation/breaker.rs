//! The per-tier circuit breaker: failures open it, an open tier is skipped when routing (recorded
//! as a `circuit_open` escalation, nothing called) and when escalating; after the cool-down one
//! trial request goes, and its outcome closes or reopens it. It lives in the data every VM (every
//! Envoy worker) shares, so the workers open, skip and close a tier together.

use super::*;
use std::time::Duration;

const COOLDOWN_MS: u64 = 1000;

/// Opens after 2 outcomes of which half failed.
fn breaker_config(extra: Value) -> String {
    config(
        json!({"circuit_breaker": {"window": 4, "min_requests": 2, "failure_rate": 0.5,
                                   "cooldown_ms": COOLDOWN_MS}}),
        extra,
    )
}

/// small fails with 503 and mid answers the call.
fn small_fails_mid_answers(host: &mut Host) {
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    assert_routed(&stream, "small");
    respond(&mut stream, 503, "text/plain", b"", &[]);
    let call = the_call(&stream);
    assert_eq!(call.cluster, "tier_mid");
    stream
        .answer_http_call(call.token, good_response(CHAT, MID))
        .unwrap();
    assert!(stream.local_reply().is_some());
}

/// A request that goes straight to mid past an open small tier, answered well by mid.
fn skips_small(host: &mut Host) {
    let config_client = Client::simple(CHAT);
    let mut stream = host.request().unwrap();
    config_client.send(&mut stream);
    assert_routed(&stream, "mid");
    assert_eq!(upstream_json(&stream)["model"], json!(TIERS[MID].model));
    assert_eq!(stream.upstream_header("x-triage-escalated"), None);
    let body = good_answer(CHAT, MID);
    let actions = respond(&mut stream, 200, JSON, &body, &[]);
    assert_eq!(actions.last(), Some(&Action::Continue));
    assert_eq!(stream.downstream_body(), body);
    assert_eq!(stream.downstream_header("x-triage-tier"), Some("mid"));
    assert!(stream.pending_http_calls().is_empty(), "nothing called");
    let record = record(stream.host());
    assert_eq!(
        record.escalations,
        [step(SMALL, MID, "circuit_open", None, None)]
    );
    assert_eq!(record.tier, "mid");
    assert_eq!(record.model.as_deref(), Some(TIERS[MID].model));
    assert_eq!(record.usage, Some(TIERS[MID].usage));
}

/// A request small answers well.
fn small_answers(host: &mut Host) {
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    assert_routed(&stream, "small");
    let body = good_answer(CHAT, SMALL);
    let actions = respond(&mut stream, 200, JSON, &body, &[]);
    assert_eq!(actions.last(), Some(&Action::Continue));
    assert!(record(stream.host()).escalations.is_empty());
}

#[test]
fn failures_open_the_breaker_then_a_trial_after_the_cooldown_closes_it() {
    let config = breaker_config(json!({}));
    assert_goes_small(&Client::simple(CHAT), &config);
    let mut host = start(&config);
    small_fails_mid_answers(&mut host);
    small_fails_mid_answers(&mut host);
    // Open: small is skipped, for the whole cool-down.
    skips_small(&mut host);
    host.advance_clock(Duration::from_millis(COOLDOWN_MS - 1));
    skips_small(&mut host);
    assert_eq!(host.http_calls().len(), 2, "no call for a skipped tier");
    // Half-open: one trial goes to small; its success closes the breaker.
    host.advance_clock(Duration::from_millis(1));
    small_answers(&mut host);
    // Closed with a fresh window (the trial is not in it): one failure in three stays under
    // the rate.
    small_answers(&mut host);
    small_answers(&mut host);
    small_fails_mid_answers(&mut host);
    small_answers(&mut host);
    assert_escalation_counters(
        &host,
        &[
            (SMALL, MID, "status_5xx", 3),
            (SMALL, MID, "circuit_open", 2),
        ],
    );
    assert_eq!(host.http_calls().len(), 3, "no call for a skipped tier");
    assert_no_warnings(&host);
}

/// The `triage.breaker_state` gauge of a tier follows its breaker: 0 closed, 2 open, 1 while the
/// half-open trial is in flight; a config update republishes the state the breaker kept.
#[test]
fn the_breaker_state_gauge_follows_the_breaker() {
    const GAUGE: &str = "triage.breaker_state.tier.small";
    let config = breaker_config(json!({}));
    let mut host = start(&config);
    assert_eq!(host.metric(GAUGE), Some(0));
    assert_eq!(host.metric("triage.breaker_state.tier.mid"), Some(0));
    small_fails_mid_answers(&mut host);
    assert_eq!(host.metric(GAUGE), Some(0), "one failure of two needed");
    small_fails_mid_answers(&mut host);
    assert_eq!(host.metric(GAUGE), Some(2));
    host.configure(&config).unwrap();
    assert_eq!(host.metric(GAUGE), Some(2), "kept across a config update");
    host.advance_clock(Duration::from_millis(COOLDOWN_MS));
    let mut trial = host.request().unwrap();
    Client::simple(CHAT).send(&mut trial);
    assert_routed(&trial, "small");
    assert_eq!(trial.host().metric(GAUGE), Some(1));
    respond(&mut trial, 200, JSON, &good_answer(CHAT, SMALL), &[]);
    drop(trial);
    assert_eq!(host.metric(GAUGE), Some(0));
    let without_escalation = Host::start("").unwrap();
    assert_eq!(
        without_escalation.metric(GAUGE),
        None,
        "no breakers, no gauge"
    );
}

#[test]
fn a_failed_trial_opens_the_breaker_for_another_cooldown() {
    let config = breaker_config(json!({}));
    let mut host = start(&config);
    small_fails_mid_answers(&mut host);
    small_fails_mid_answers(&mut host);
    skips_small(&mut host);
    host.advance_clock(Duration::from_millis(COOLDOWN_MS));
    // The trial fails, and is itself moved to mid.
    small_fails_mid_answers(&mut host);
    skips_small(&mut host);
    host.advance_clock(Duration::from_millis(COOLDOWN_MS - 1));
    skips_small(&mut host);
    host.advance_clock(Duration::from_millis(1));
    small_answers(&mut host);
    small_answers(&mut host);
    assert_no_warnings(&host);
}

#[test]
fn a_weak_answer_counts_as_a_failure_and_a_sound_one_as_a_success() {
    let config = breaker_config(json!({}));
    let mut host = start(&config);
    for _ in 0..2 {
        let mut stream = host.request().unwrap();
        Client::simple(CHAT).send(&mut stream);
        respond(
            &mut stream,
            200,
            JSON,
            &answer(CHAT, SMALL, "", "stop"),
            &[],
        );
        let call = the_call(&stream);
        stream
            .answer_http_call(call.token, good_response(CHAT, MID))
            .unwrap();
    }
    skips_small(&mut host);
    // Sound answers keep a closed breaker closed: 1 failure in 3 is under the rate.
    let mut host = start(&config);
    small_answers(&mut host);
    small_answers(&mut host);
    small_fails_mid_answers(&mut host);
    small_answers(&mut host);
}

#[test]
fn a_trial_whose_outcome_is_lost_holds_the_tier_closed_to_others_for_a_cooldown() {
    let config = breaker_config(json!({}));
    let mut host = start(&config);
    small_fails_mid_answers(&mut host);
    small_fails_mid_answers(&mut host);
    host.advance_clock(Duration::from_millis(COOLDOWN_MS));
    // The trial goes to small, and the client leaves before any answer.
    let mut trial = host.request().unwrap();
    Client::simple(CHAT).send(&mut trial);
    assert_routed(&trial, "small");
    trial.finish().unwrap();
    skips_small(&mut host);
    host.advance_clock(Duration::from_millis(COOLDOWN_MS));
    small_answers(&mut host);
}

#[test]
fn an_open_mid_is_passed_over_when_escalating() {
    let rules = json!({"rules": [
        {"name": "to-mid", "when": {"header": {"name": "x-mid", "value": "1"}}, "tier": "mid"}
    ]});
    let config = breaker_config(rules);
    let mut host = start(&config);
    // Two requests routed to mid fail there and are answered by frontier: mid opens.
    for _ in 0..2 {
        let mut stream = host.request().unwrap();
        Client::simple(CHAT).header("x-mid", "1").send(&mut stream);
        assert_routed(&stream, "mid");
        respond(&mut stream, 503, "text/plain", b"", &[]);
        let call = the_call(&stream);
        assert_eq!(call.cluster, "tier_frontier");
        stream
            .answer_http_call(call.token, good_response(CHAT, FRONTIER))
            .unwrap();
    }
    // small is closed; its failure moves straight to frontier.
    let client = Client::simple(CHAT);
    let decision = assert_goes_small(&client, &config);
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    let first_upstream = stream.upstream_headers().unwrap().clone();
    respond(&mut stream, 503, "text/plain", b"", &[]);
    let call = the_call(&stream);
    assert_call_to(&call, &client, &first_upstream, SMALL, FRONTIER);
    let frontier = good_response(CHAT, FRONTIER);
    stream
        .answer_http_call(call.token, frontier.clone())
        .unwrap();
    assert_answered_with(&stream, &decision, &frontier, SMALL, FRONTIER, "status_5xx");
    assert_eq!(
        record(stream.host()).escalations,
        [step(SMALL, FRONTIER, "status_5xx", Some(200), None)]
    );
    drop(stream);
    assert_no_warnings(&host);
}

#[test]
fn a_routed_request_passes_every_open_tier_below_the_top() {
    let config = breaker_config(json!({}));
    let mut host = start(&config);
    // small fails and mid's call fails too, twice: both open.
    for _ in 0..2 {
        let mut stream = host.request().unwrap();
        Client::simple(CHAT).send(&mut stream);
        respond(&mut stream, 503, "text/plain", b"", &[]);
        let call = the_call(&stream);
        stream.fail_http_call(call.token).unwrap();
    }
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    assert_routed(&stream, "frontier");
    assert_eq!(
        upstream_json(&stream)["model"],
        json!(TIERS[FRONTIER].model)
    );
    respond(&mut stream, 200, JSON, &good_answer(CHAT, FRONTIER), &[]);
    assert_eq!(
        record(stream.host()).escalations,
        [
            step(SMALL, MID, "circuit_open", None, None),
            step(MID, FRONTIER, "circuit_open", None, None),
        ]
    );
    drop(stream);
    assert_eq!(host.http_calls().len(), 2);
}

/// A config update that keeps a tier (same name, same cluster) keeps its breaker: the upstream is
/// no healthier for it. A tier sent to another cluster, or a breaker of another window, starts
/// closed.
#[test]
fn a_new_config_keeps_the_breaker_of_a_tier_it_keeps() {
    let config = breaker_config(json!({}));
    let open_small = || {
        let mut host = start(&config);
        small_fails_mid_answers(&mut host);
        small_fails_mid_answers(&mut host);
        skips_small(&mut host);
        host
    };
    let mut host = open_small();
    host.configure(&config).unwrap();
    skips_small(&mut host);

    let mut moved: Value = serde_json::from_str(&config).unwrap();
    moved["tiers"][SMALL]["cluster"] = json!("tier_small_eu");
    let mut host = open_small();
    host.configure(&moved.to_string()).unwrap();
    small_answers(&mut host);

    let mut resized: Value = serde_json::from_str(&config).unwrap();
    resized["escalation"]["circuit_breaker"]["window"] = json!(5);
    let mut host = open_small();
    host.configure(&resized.to_string()).unwrap();
    small_answers(&mut host);
    assert_no_warnings(&host);
}

/// Two VMs on one shared-data store, as two Envoy workers, with the breaker config.
fn two_workers() -> (Host, Host) {
    let config = breaker_config(json!({}));
    let first = start(&config);
    let second = start_on(&config, first.shared_store());
    (first, second)
}

/// Two workers each see one failure of small: together that is the two outcomes at a 50% failure
/// rate that open it (a breaker per worker would have seen one outcome each and stayed closed),
/// and both then skip small.
#[test]
fn workers_open_a_tier_together() {
    let (mut first, mut second) = two_workers();
    small_fails_mid_answers(&mut first);
    small_fails_mid_answers(&mut second);
    skips_small(&mut first);
    skips_small(&mut second);
    assert_no_warnings(&first);
    assert_no_warnings(&second);
}

/// After the cool-down one trial goes, whichever worker takes it; the other worker keeps skipping
/// small until the trial answers, and its success closes small for both.
#[test]
fn one_trial_for_all_workers_and_its_success_closes_the_tier_for_all() {
    let (mut first, mut second) = two_workers();
    small_fails_mid_answers(&mut first);
    small_fails_mid_answers(&mut first);
    for host in [&mut first, &mut second] {
        host.advance_clock(Duration::from_millis(COOLDOWN_MS));
    }
    let mut trial = first.request().unwrap();
    Client::simple(CHAT).send(&mut trial);
    assert_routed(&trial, "small");
    skips_small(&mut second);
    respond(&mut trial, 200, JSON, &good_answer(CHAT, SMALL), &[]);
    drop(trial);
    small_answers(&mut second);
    small_answers(&mut first);
}

/// Shared data this VM cannot read as a breaker (another writer, damage) is replaced by a fresh
/// closed breaker, not an error.
#[test]
fn unreadable_breaker_bytes_start_afresh() {
    let config = breaker_config(json!({}));
    let mut host = start(&config);
    small_fails_mid_answers(&mut host);
    small_fails_mid_answers(&mut host);
    let key = "triage.breaker.small@tier_small";
    assert!(host.shared_data(key).is_some_and(|bytes| !bytes.is_empty()));
    host.shared_store()
        .borrow_mut()
        .insert(key.as_bytes().to_vec(), (b"garbage".to_vec(), 7));
    small_answers(&mut host);
    assert_ne!(host.shared_data(key).as_deref(), Some(&b"garbage"[..]));
}

/// After the cool-down the next request to small is the trial; a request that may not move (here:
/// it carries the opt-out header) still reports its answer to the breaker, which closes. (It once
/// did not, leaving small closed to everyone for another cool-down.)
#[test]
fn a_trial_taken_by_a_request_that_may_not_move_still_closes_the_breaker() {
    let config = breaker_config(json!({}));
    let mut host = start(&config);
    small_fails_mid_answers(&mut host);
    small_fails_mid_answers(&mut host);
    host.advance_clock(Duration::from_millis(COOLDOWN_MS));
    let mut trial = host.request().unwrap();
    Client::simple(CHAT)
        .header("x-no-escalate", "1")
        .send(&mut trial);
    assert_routed(&trial, "small");
    let body = good_answer(CHAT, SMALL);
    assert_eq!(
        respond(&mut trial, 200, JSON, &body, &[]),
        [Action::Continue, Action::Continue]
    );
    drop(trial);
    small_answers(&mut host);
}
