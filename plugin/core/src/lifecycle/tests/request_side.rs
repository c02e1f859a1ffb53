//! The request side, natively: routing and the rewrite, every way of failing open, the body cap
//! (the default tier, or a 413), HTTP/2 trailers, requests answered before the decision, paths that
//! are no LLM call, the client's own `x-triage-*` headers, respelled paths, shadow and canary
//! modes, overrides and identities, decision ids, and when the record settles.
//!
//! Host twins (host-tests/tests/module → here):
//! - fail_open.rs invalid_json, unknown_shape, unknown_shape_still_gets_the_default_tier_model_for_auto,
//!   empty_body_ending_with_the_headers → each_fail_open_cause_goes_to_the_default_tier_untouched;
//!   empty_body_ending_in_a_data_frame → an_empty_body_ending_in_a_data_frame_fails_open (script)
//! - fail_open.rs a_body_over_the_cap_streams_through_from_the_chunk_that_crossed_it,
//!   a_body_exactly_at_the_cap_is_still_decided → same names
//! - chunking.rs end_of_stream_in_trailers_decides_there,
//!   trailers_after_the_body_cap_keep_the_fail_open_decision, a_body_without_content_length_gets_none
//!   → same names (the other chunking.rs tests: chunking.rs here)
//! - passthrough.rs spoofed_routing_headers_are_replaced_on_llm_calls,
//!   spoofed_headers_are_dropped_where_the_filter_does_not_route,
//!   a_custom_route_header_is_stripped_and_set → same names
//! - passthrough.rs other_paths_and_methods_pass_untouched_without_buffering, observe.rs
//!   requests_triage_does_not_route_leave_no_record_and_count_nothing
//!   → other_paths_and_methods_pass_untouched_and_leave_no_record
//! - observe.rs shadow_mode_decides_and_records_but_changes_nothing_upstream,
//!   a_canary_enforces_the_requests_its_ids_pick_and_shadows_the_rest,
//!   an_allowed_caller_overrides_the_tier, an_override_from_a_caller_not_allowed_is_ignored_and_stripped,
//!   a_caller_and_tenant_from_dynamic_metadata_override_and_are_recorded,
//!   the_record_carries_the_request_as_the_client_sent_it_up_to_the_cap,
//!   each_decision_gets_a_fresh_random_id_whatever_the_client_sends,
//!   without_random_bytes_a_request_goes_on_without_a_decision_id → same names
//! - observe.rs an_enforced_response_carries_no_mode_header
//!   → a_routed_request_reaches_its_tier_rewritten_and_the_record_settles
//! - observe.rs histograms_hold_each_decision_time_and_each_score
//!   → the_decision_takes_clock_time_and_its_score_goes_on_the_headers (the histograms are the
//!   filter's)
//! - observe.rs a_stream_that_ends_without_a_response_still_records_and_counts,
//!   a_response_cut_off_before_its_usage_records_the_status_and_unknown_usage,
//!   the_response_ends_in_headers_or_trailers_and_settles_there
//!   → the_record_settles_once_where_the_stream_ends (script)
//!
//! - observe/served.rs a_request_served_from_its_tiers_cluster_names_it_and_is_no_mismatch,
//!   a_request_served_from_another_tiers_cluster_is_billed_there_and_counted,
//!   a_request_served_from_a_cluster_no_tier_names_bills_no_tier,
//!   a_shadowed_request_is_compared_with_the_default_tiers_cluster
//!   → the_cluster_envoy_served_from_is_billed (the counters are the filter's sums of the record)
//!
//! Without a host twin: a_body_over_the_cap_gets_413_when_the_config_rejects_it,
//! answered_before_the_decision_the_request_is_still_recorded (script),
//! a_body_the_host_can_not_hand_over_fails_open (script), respelled_paths_go_on_as_the_endpoints.

use super::super::exchange::{HostSettings, Reply};
use super::super::HeaderMap;
use super::script::{assert_writes, routed, said, settled, Effects, Event, Row, Script};
use super::*;
use crate::{Applied, Mode};

/// small, mid and frontier each answer soundly in chat.
fn every_tier_answers() -> impl FnMut(&Sent) -> Reply {
    by_tier([SMALL, MID, FRONTIER].map(|tier| Reply::Answer(good_response(CHAT, tier))))
}

/// The request's own headers (those triage writes left out) as the upstream got them.
fn untouched(outcome: &Outcome, client: &Client) {
    let routed = outcome.routed.as_ref().unwrap();
    assert_eq!(
        routed.headers,
        client.request().headers,
        "the upstream gets the request headers exactly as sent"
    );
    assert_eq!(routed.body, client.body, "the body exactly as sent");
}

/// The machine neither rewrites the request nor has the route picked again (only header writes,
/// which the exchange shows, could remain), with the random source giving `decision_id`.
fn asks_nothing_of_the_request(config: &Rc<Config>, client: &Client, decision_id: Option<&str>) {
    let mut script = Script::new(config, client);
    script.held.decision_id = decision_id.map(str::to_string);
    let step = script.play(&Event::Request);
    assert_eq!(said(&step), ("continue".to_string(), vec![]));
}

#[test]
fn a_routed_request_reaches_its_tier_rewritten_and_the_record_settles() {
    let config = plain_config(json!({}));
    let client = Client::simple(CHAT);
    let decision = client.goes_small(&config);
    let outcome = exchange(&config, &client, every_tier_answers());
    assert_eq!(outcome.request_next, [Next::Pause, Next::Continue]);
    let routed = assert_routed(&outcome, &client, SMALL);
    assert_eq!(
        header(&routed.headers, "x-triage-reason"),
        Some(decision.reason_header().as_str())
    );
    assert_eq!(header(&routed.headers, "x-request-id"), Some(REQUEST_ID));
    assert_eq!(
        header(&routed.headers, "x-triage-decision-id"),
        None,
        "the decision id is not sent upstream"
    );
    assert!(outcome.calls.is_empty());
    let response = &outcome.response;
    assert_passed(&outcome, 200, &good_answer(CHAT, SMALL));
    assert_eq!(response.header("x-triage-tier"), Some("small"));
    assert_eq!(response.header("x-triage-mode"), None, "enforced: no mode");
    assert_eq!(response.header("x-triage-decision-id"), Some(DECISION_ID));
    let record = outcome.record.as_ref().unwrap();
    assert_eq!(record.tier, "small");
    assert_eq!(record.mode, Applied::Enforce);
    assert_eq!(record.request_id, REQUEST_ID);
    assert_eq!(record.decision_id.as_deref(), Some(DECISION_ID));
    assert_eq!(record.model.as_deref(), Some(TIERS[SMALL].model));
    assert_eq!(record.status, Some(200));
    assert_eq!(record.usage, Some(TIERS[SMALL].usage));
    assert_eq!(record.served_cluster.as_deref(), Some("tier_small"));
    assert_close(
        record.cost_micro_usd,
        cost(SMALL, TIERS[SMALL].usage),
        "cost",
    );
    assert_no_warnings(&outcome);
}

/// The request went to the default tier (mid) failing open for `cause`, with `body` upstream.
fn assert_failed_open(outcome: &Outcome, cause: &str, body: &[u8]) {
    let routed = outcome.routed.as_ref().unwrap();
    assert_eq!(routed.cluster, "tier_mid");
    assert_eq!(header(&routed.headers, "x-triage-route"), Some("mid"));
    let reason = format!("fail_open: {cause}");
    assert_eq!(
        header(&routed.headers, "x-triage-reason"),
        Some(reason.as_str())
    );
    assert_eq!(header(&routed.headers, "x-triage-score"), None);
    assert_eq!(
        String::from_utf8_lossy(&routed.body),
        String::from_utf8_lossy(body)
    );
    if let Some(length) = header(&routed.headers, "content-length") {
        assert_eq!(length, routed.body.len().to_string(), "framed");
    }
    let record = outcome.record.as_ref().unwrap();
    assert_eq!(record.fail_open.as_deref(), Some(cause));
    assert_no_warnings(outcome);
}

#[test]
fn each_fail_open_cause_goes_to_the_default_tier_untouched() {
    let config = plain_config(json!({}));
    let cases: [(&[u8], &str, &[u8]); 4] = [
        (
            br#"{"model": "auto", "messages": [{"role": "user", "#,
            "invalid_json",
            br#"{"model": "auto", "messages": [{"role": "user", "#,
        ),
        (
            br#"[{"role": "user", "content": "hi"}]"#,
            "unknown_shape",
            br#"[{"role": "user", "content": "hi"}]"#,
        ),
        // The default tier's model still replaces "auto".
        (
            br#"{"model": "auto", "prompt": "hello"}"#,
            "unknown_shape",
            br#"{"model": "gpt-4o", "prompt": "hello"}"#,
        ),
        // The headers end the stream: decided at once, nothing held.
        (b"", "empty_body", b""),
    ];
    for (body, cause, upstream) in cases {
        let client = Client::raw(CHAT, body);
        let outcome = exchange(&config, &client, every_tier_answers());
        if body.is_empty() {
            assert_eq!(outcome.request_next, [Next::Continue], "{cause}");
        }
        assert_failed_open(&outcome, cause, upstream);
    }
}

#[test]
fn an_empty_body_ending_in_a_data_frame_fails_open() {
    let config = plain_config(json!({}));
    let mut script = Script::new(&config, &Client::raw(CHAT, ""));
    let rows: Vec<Row> = vec![
        (Event::RequestHeaders { end: false }, "pause", &[]),
        (
            Event::RequestBody(Vec::new(), true),
            "continue",
            &["clear route cache"],
        ),
    ];
    let steps = script.play_rows(&rows, "an empty data frame");
    let writes = [
        ("x-triage-route", Some("mid")),
        ("x-triage-reason", Some("fail_open: empty_body")),
    ];
    assert_writes(
        &steps[1],
        HeaderMap::Request,
        &writes,
        "an empty data frame",
    );
}

fn long_chat() -> Client {
    Client::chat(json!({"messages": [{"role": "user", "content": "word ".repeat(800)}]}))
}

#[test]
fn a_body_over_the_cap_streams_through_from_the_chunk_that_crossed_it() {
    let config = plain_config(json!({"limits": {"max_body_bytes": 1024}}));
    let client = long_chat();
    assert!(client.body.len() > 3000);
    let outcome = exchange_with(&config, &client, every_tier_answers(), &chunked(&[512]));
    // The headers, 512 and 1024 bytes are held; at 1536 the machine gives up and lets it go.
    let (held, flowing) = outcome.request_next.split_at(3);
    assert_eq!(held, [Next::Pause, Next::Pause, Next::Pause]);
    assert_flowing(flowing, "past the cap");
    assert_failed_open(&outcome, "body_too_large", &client.body);
}

#[test]
fn a_body_exactly_at_the_cap_is_still_decided() {
    let client = Client::simple(CHAT);
    let cap = client.body.len();
    let config = plain_config(json!({"limits": {"max_body_bytes": cap}}));
    let decision = client.goes_small(&config);
    let outcome = exchange_with(&config, &client, every_tier_answers(), &chunked(&[7]));
    assert_routed(&outcome, &client, SMALL);
    let routed = outcome.routed.unwrap();
    assert_eq!(
        header(&routed.headers, "x-triage-reason"),
        Some(decision.reason_header().as_str())
    );
}

/// With `over_max_body: reject` an enforced request past the cap gets 413 and no tier sees it; a
/// shadowed one streams through as it would without triage.
#[test]
fn a_body_over_the_cap_gets_413_when_the_config_rejects_it() {
    let limits = json!({"max_body_bytes": 1024, "over_max_body": "reject"});
    let enforced = plain_config(json!({ "limits": limits }));
    let client = long_chat();
    let outcome = exchange_with(&enforced, &client, every_tier_answers(), &chunked(&[512]));
    assert_eq!(outcome.request_next, vec![Next::Pause; 4]);
    assert_eq!(outcome.routed, None, "no tier sees it");
    assert_eq!(outcome.response.status, 413);
    assert_eq!(outcome.response.body, b"Payload Too Large");
    assert_eq!(outcome.response.header("content-type"), Some("text/plain"));
    let record = outcome.record.unwrap();
    assert_eq!(record.fail_open.as_deref(), Some("body_too_large"));
    assert_eq!(record.mode, Applied::Enforce);

    let shadowed = plain_config(json!({"limits": limits, "mode": "shadow"}));
    let outcome = exchange_with(&shadowed, &client, every_tier_answers(), &chunked(&[512]));
    untouched(&outcome, &client);
    assert_eq!(outcome.routed.as_ref().unwrap().cluster, "tier_mid");
    assert_eq!(outcome.response.status, 200);
    let record = outcome.record.unwrap();
    assert_eq!(record.fail_open.as_deref(), Some("body_too_large"));
    assert_eq!(record.mode, Applied::Shadow);
}

#[test]
fn end_of_stream_in_trailers_decides_there() {
    let config = plain_config(json!({}));
    let client = Client {
        trailers: true,
        ..Client::simple(CHAT)
    };
    let decision = client.goes_small(&config);
    let outcome = exchange_with(&config, &client, every_tier_answers(), &chunked(&[30]));
    assert_held_until_the_last(&outcome.request_next, "continue", "decided at the trailers");
    assert_routed(&outcome, &client, SMALL);
    assert_eq!(
        model_sent(&outcome.routed.unwrap().body),
        json!(decision.model.unwrap())
    );
}

/// A body over the cap is routed at once; trailers arriving after that must not undo the decision
/// (the response still gets its headers and the request its record).
#[test]
fn trailers_after_the_body_cap_keep_the_fail_open_decision() {
    let config = plain_config(json!({"limits": {"max_body_bytes": 64}}));
    let client = Client {
        trailers: true,
        ..Client::simple(CHAT)
    };
    assert!(client.body.len() > 64);
    let outcome = exchange(&config, &client, every_tier_answers());
    assert_eq!(
        outcome.request_next,
        [Next::Pause, Next::Continue, Next::Continue],
        "streamed past the cap"
    );
    assert_failed_open(&outcome, "body_too_large", &client.body);
    assert_eq!(
        outcome.response.header("x-triage-reason"),
        Some("fail_open: body_too_large")
    );
    assert_eq!(outcome.record.unwrap().status, Some(200));
}

#[test]
fn a_body_without_content_length_gets_none() {
    let config = plain_config(json!({}));
    let client = Client {
        chunked_encoding: true,
        ..Client::simple(CHAT)
    };
    let decision = client.goes_small(&config);
    let outcome = exchange(&config, &client, every_tier_answers());
    let routed = outcome.routed.unwrap();
    assert_eq!(header(&routed.headers, "content-length"), None);
    assert_eq!(model_sent(&routed.body), json!(decision.model.unwrap()));
}

const SPOOFED: [(&str, &str); 4] = [
    ("x-triage-route", "frontier"),
    ("X-Triage-Tier", "frontier"),
    ("x-triage-score", "0.9999"),
    ("x-triage-anything", "1"),
];

fn spoofing(client: Client) -> Client {
    SPOOFED
        .iter()
        .fold(client, |client, (name, value)| client.header(name, value))
}

#[test]
fn spoofed_routing_headers_are_replaced_on_llm_calls() {
    let config = plain_config(json!({}));
    let client = spoofing(Client::simple(CHAT));
    let decision = client.goes_small(&config);
    let outcome = exchange(&config, &client, every_tier_answers());
    let routed = assert_routed(&outcome, &client, SMALL);
    assert_eq!(header(&routed.headers, "x-triage-anything"), None);
    let own: Vec<&(String, String)> = routed
        .headers
        .iter()
        .filter(|(name, _)| name.starts_with("x-triage-"))
        .collect();
    assert_eq!(
        own.len(),
        4,
        "route, tier, score, reason, once each: {own:?}"
    );
    assert_eq!(
        header(&routed.headers, "x-triage-score"),
        decision.score_header().as_deref()
    );
}

#[test]
fn spoofed_headers_are_dropped_where_the_filter_does_not_route() {
    let config = plain_config(json!({}));
    let client = Client {
        method: "GET",
        path: "/v1/models".into(),
        ..spoofing(Client::raw(CHAT, ""))
    };
    let outcome = exchange(&config, &client, every_tier_answers());
    assert_eq!(outcome.request_next, [Next::Continue]);
    let routed = outcome.routed.unwrap();
    assert!(
        routed
            .headers
            .iter()
            .all(|(name, _)| !name.starts_with("x-triage-")),
        "{:?}",
        routed.headers
    );
    assert!(outcome.record.is_none());
}

#[test]
fn a_custom_route_header_is_stripped_and_set() {
    let config = plain_config(json!({"route_header": "x-llm-pool"}));
    let client = Client::simple(CHAT).header("x-llm-pool", "frontier");
    client.goes_small(&config);
    let outcome = exchange(&config, &client, every_tier_answers());
    let routed = outcome.routed.unwrap();
    assert_eq!(
        routed.cluster, "tier_small",
        "the route table read the header"
    );
    assert_eq!(single(&routed.headers, "x-llm-pool"), "small");
    assert_eq!(header(&routed.headers, "x-triage-route"), None);
}

#[test]
fn other_paths_and_methods_pass_untouched_and_leave_no_record() {
    let config = config(json!({}), json!({}));
    for (method, path) in [
        ("POST", "/v1/embeddings"),
        ("GET", CHAT.path()),
        ("POST", "/v1/chat/completions/extra"),
        ("PUT", MESSAGES.path()),
    ] {
        let what = format!("{method} {path}");
        let client = Client {
            method,
            path: path.into(),
            ..Client::simple(CHAT)
        };
        // Even a weak answer: nothing is held, judged or called for a request not routed.
        let weak = answer(CHAT, MID, "", "length");
        let outcome = exchange_with(
            &config,
            &client,
            by_tier([ok_json(""), ok_json(weak.clone()), ok_json("")]),
            &chunked(&[10]),
        );
        assert_flowing(&outcome.request_next, &what);
        assert_flowing(&outcome.response_next, &what);
        untouched(&outcome, &client);
        asks_nothing_of_the_request(&config, &client, Some(DECISION_ID));
        assert_eq!(
            outcome.response.headers,
            [("content-type".to_string(), JSON.to_string())],
            "{what}: the response as the upstream sent it"
        );
        assert_eq!(outcome.response.body, weak);
        assert!(outcome.record.is_none(), "{what}");
        assert!(outcome.logs.is_empty(), "{what}");
    }
}

/// However the client spells an endpoint, an enforced request goes on to the endpoint's own path
/// (its query kept), and so does its escalated call.
#[test]
fn respelled_paths_go_on_as_the_endpoints() {
    let config = default_config();
    for (spelled, sent) in [
        ("/V1/Chat/Completions/", "/v1/chat/completions"),
        (
            "/v1//chat/./completions?trace=1",
            "/v1/chat/completions?trace=1",
        ),
        ("/v1/chat/completions;v=2", "/v1/chat/completions"),
    ] {
        let client = Client {
            path: spelled.into(),
            ..Client::simple(CHAT)
        };
        let outcome = exchange(&config, &client, small_then(CHAT, failing(503)));
        let routed = assert_routed(&outcome, &client, SMALL);
        assert_eq!(single(&routed.headers, ":path"), sent, "{spelled}");
        assert_eq!(
            single(&the_call(&outcome).headers, ":path"),
            sent,
            "{spelled}"
        );
        assert_eq!(outcome.record.unwrap().api, "openai_chat");
    }
}

#[test]
fn shadow_mode_decides_and_records_but_changes_nothing_upstream() {
    let config = plain_config(json!({"mode": "shadow"}));
    let client = Client::simple(CHAT);
    let decision = client.goes_small(&config);
    let outcome = exchange(&config, &client, every_tier_answers());
    untouched(&outcome, &client);
    asks_nothing_of_the_request(&config, &client, Some(DECISION_ID));
    assert_eq!(outcome.routed.as_ref().unwrap().cluster, "tier_mid");
    let response = &outcome.response;
    assert_eq!(response.header("x-triage-mode"), Some("shadow"));
    assert_eq!(response.header("x-triage-tier"), Some("small"));
    assert_eq!(
        response.header("x-triage-score"),
        decision.score_header().as_deref()
    );
    assert_eq!(
        response.header("x-triage-reason"),
        Some(decision.reason_header().as_str())
    );
    let record = outcome.record.unwrap();
    let usage = TIERS[MID].usage;
    assert_eq!(record.mode, Applied::Shadow);
    assert_eq!(record.tier, "mid", "served by the default route");
    assert_eq!(record.decided_tier, "small");
    assert_eq!(record.cause, "scored");
    assert_eq!(record.model, None, "nothing was written into the body");
    assert_eq!(record.usage, Some(usage));
    assert_close(record.cost_micro_usd, cost(MID, usage), "cost");
    assert_close(
        record.decided_cost_micro_usd,
        cost(SMALL, usage),
        "decided cost",
    );
    assert_close(
        record.top_tier_cost_micro_usd,
        cost(FRONTIER, usage),
        "top-tier cost",
    );
}

#[test]
fn a_canary_enforces_the_requests_its_ids_pick_and_shadows_the_rest() {
    let config = plain_config(json!({"mode": "canary", "canary_percent": 50.0}));
    let client = Client::simple(CHAT);
    client.goes_small(&config);
    let mut enforced = 0;
    let total = 40;
    for n in 0..total {
        let id = format!("00000000-0000-4000-8000-{n:012}");
        let settings = HostSettings {
            decision_id: Some(id.clone()),
            ..HostSettings::default()
        };
        let outcome = exchange_with(&config, &client, every_tier_answers(), &settings);
        let record = outcome.record.as_ref().unwrap();
        let applied = Mode::Canary(50.0).applied(Some(&id));
        assert_eq!(record.mode, applied, "{id}");
        assert_eq!(record.decided_tier, "small");
        match applied {
            Applied::Enforce => {
                enforced += 1;
                assert_routed(&outcome, &client, SMALL);
                assert_eq!(record.tier, "small");
                assert_eq!(outcome.response.header("x-triage-mode"), None);
            }
            Applied::Shadow => {
                untouched(&outcome, &client);
                asks_nothing_of_the_request(&config, &client, Some(&id));
                assert_eq!(record.tier, "mid");
                assert_eq!(outcome.response.header("x-triage-mode"), Some("shadow"));
            }
        }
        assert_eq!(
            outcome.response.header("x-triage-decision-id"),
            Some(id.as_str())
        );
    }
    let shadowed = total - enforced;
    assert!(
        enforced > 0 && shadowed > 0,
        "{enforced} of {total} enforced: the decision id draws the mode"
    );
}

fn override_config() -> Rc<Config> {
    plain_config(json!({"identity": {"caller": {"header": "x-caller"}},
                        "override": {"callers": ["ops"]}}))
}

#[test]
fn an_allowed_caller_overrides_the_tier() {
    let config = override_config();
    let client = Client::simple(CHAT)
        .header("X-Caller", "ops")
        .header("x-triage-override", "frontier");
    let outcome = exchange(&config, &client, every_tier_answers());
    let routed = assert_routed(&outcome, &client, FRONTIER);
    assert_eq!(
        header(&routed.headers, "x-triage-override"),
        None,
        "the override header is triage's own: it never reaches the upstream"
    );
    assert_eq!(header(&routed.headers, "x-caller"), Some("ops"));
    let reason = "override: small->frontier";
    assert_eq!(header(&routed.headers, "x-triage-reason"), Some(reason));
    assert_eq!(outcome.response.header("x-triage-reason"), Some(reason));
    let record = outcome.record.unwrap();
    assert_eq!(record.cause, "override");
    assert_eq!(
        record.caller.as_deref(),
        Some("ops"),
        "who overrode, as verified"
    );
    assert_eq!(
        (&*record.tier, &*record.decided_tier),
        ("frontier", "frontier")
    );
    let change = record.override_.unwrap();
    assert_eq!((&*change.from, &*change.to), ("small", "frontier"));
    assert_eq!(record.model.as_deref(), Some(TIERS[FRONTIER].model));
}

#[test]
fn an_override_from_a_caller_not_allowed_is_ignored_and_stripped() {
    let config = override_config();
    let cases = [
        ("x-caller", "someone-else", "frontier"),
        ("x-other", "ops", "frontier"),
        ("x-caller", "OPS", "frontier"),
        // An allowed caller, but no such tier.
        ("x-caller", "ops", "gold"),
    ];
    for (name, value, wanted) in cases {
        let what = format!("{name}: {value} -> {wanted}");
        let client = Client::simple(CHAT)
            .header(name, value)
            .header("x-triage-override", wanted);
        let outcome = exchange(&config, &client, every_tier_answers());
        let routed = assert_routed(&outcome, &client, SMALL);
        assert_eq!(header(&routed.headers, "x-triage-override"), None, "{what}");
        let record = outcome.record.unwrap();
        assert_eq!(record.cause, "scored", "{what}");
        assert_eq!(record.override_, None, "{what}");
        let caller = (name == "x-caller").then_some(value);
        assert_eq!(record.caller.as_deref(), caller, "{what}");
    }
}

/// Where jwt_authn's `payload_in_metadata: jwt_payload` puts a claim, as the host property path.
fn jwt_claim(claim: &str) -> Vec<String> {
    [
        "metadata",
        "filter_metadata",
        "envoy.filters.http.jwt_authn",
        "jwt_payload",
        claim,
    ]
    .map(str::to_string)
    .to_vec()
}

#[test]
fn a_caller_and_tenant_from_dynamic_metadata_override_and_are_recorded() {
    let config = plain_config(json!({
        "identity": {
            "caller": {"metadata": {"namespace": "envoy.filters.http.jwt_authn", "path": ["jwt_payload", "sub"]}},
            "tenant": {"metadata": {"namespace": "envoy.filters.http.jwt_authn", "path": ["jwt_payload", "team"]}}
        },
        "override": {"callers": ["ops"]}
    }));
    let client = Client::simple(CHAT).header("x-triage-override", "frontier");
    let with_claims = |claims: &[(&str, &[u8])]| HostSettings {
        properties: claims
            .iter()
            .map(|(claim, value)| (jwt_claim(claim), value.to_vec()))
            .collect(),
        ..HostSettings::default()
    };
    let cases = [
        (
            "verified",
            &client,
            with_claims(&[("sub", b"ops"), ("team", b"legal")]),
            FRONTIER,
            Some("ops"),
            Some("legal"),
        ),
        // A claim that is no caller's name (serialized bytes of another type) is no identity.
        (
            "not a name",
            &client,
            with_claims(&[("sub", b"\x08\x01")]),
            SMALL,
            None,
            None,
        ),
        // Without the metadata (an anonymous request), nothing the client sends stands in for it.
        (
            "forged",
            &client.clone().header("x-jwt-payload-sub", "ops"),
            HostSettings::default(),
            SMALL,
            None,
            None,
        ),
    ];
    for (what, client, settings, tier, caller, tenant) in cases {
        let outcome = exchange_with(&config, client, every_tier_answers(), &settings);
        assert_routed(&outcome, client, tier);
        let record = outcome.record.unwrap();
        assert_eq!(record.caller.as_deref(), caller, "{what}");
        assert_eq!(record.tenant.as_deref(), tenant, "{what}");
    }
}

#[test]
fn the_record_carries_the_request_as_the_client_sent_it_up_to_the_cap() {
    let client = Client::simple(CHAT);
    let cap = client.body.len();
    let config = plain_config(json!({"record": {"request_body_bytes": cap}}));
    let outcome = exchange(&config, &client, every_tier_answers());
    assert_ne!(
        outcome.routed.unwrap().body,
        client.body,
        "the model was rewritten"
    );
    let kept = outcome
        .record
        .unwrap()
        .request
        .expect("the body fits the cap");
    assert_eq!(kept.get().as_bytes(), client.body, "the body as received");

    let longer = Client::chat(
        json!({"messages": [{"role": "user", "content": format!("{SIMPLE} Thanks!")}]}),
    );
    let outcome = exchange(&config, &longer, every_tier_answers());
    assert!(outcome.record.unwrap().request.is_none());
}

/// The decision id comes from the host's random source: a client's own `x-triage-decision-id` is
/// dropped, never echoed, and an upstream's is replaced.
#[test]
fn each_decision_gets_a_fresh_random_id_whatever_the_client_sends() {
    let config = plain_config(json!({}));
    let forged = "11111111-1111-4111-8111-111111111111";
    let client = Client::simple(CHAT).header("x-triage-decision-id", forged);
    let mut from_upstream = good_response(CHAT, SMALL);
    from_upstream
        .headers
        .push(("x-triage-decision-id".into(), forged.into()));
    let outcome = exchange(
        &config,
        &client,
        small_then(CHAT, Reply::Answer(from_upstream)),
    );
    let routed = outcome.routed.as_ref().unwrap();
    assert_eq!(header(&routed.headers, "x-triage-decision-id"), None);
    assert_eq!(
        single(&outcome.response.headers, "x-triage-decision-id"),
        DECISION_ID
    );
    let record = outcome.record.unwrap();
    assert_eq!(record.decision_id.as_deref(), Some(DECISION_ID));
    assert_eq!(record.request_id, REQUEST_ID);
}

/// When the host's random source fails the request still goes through, decided: no id in the
/// response (an upstream's is removed), a null `decision_id` in the record, and a canary shadows
/// the request (there is nothing unpredictable to draw on).
#[test]
fn without_random_bytes_a_request_goes_on_without_a_decision_id() {
    let config = plain_config(json!({"mode": "canary", "canary_percent": 100.0}));
    let client = Client::simple(CHAT);
    let mut from_upstream = good_response(CHAT, MID);
    from_upstream.headers.push((
        "x-triage-decision-id".into(),
        "forged-by-the-upstream".into(),
    ));
    let settings = HostSettings {
        decision_id: None,
        ..HostSettings::default()
    };
    let upstreams = by_tier([failing(500), Reply::Answer(from_upstream), failing(500)]);
    let outcome = exchange_with(&config, &client, upstreams, &settings);
    untouched(&outcome, &client);
    asks_nothing_of_the_request(&config, &client, None);
    let response = &outcome.response;
    assert_eq!(response.header("x-triage-decision-id"), None);
    assert_eq!(response.header("x-triage-mode"), Some("shadow"));
    assert!(response.header("x-triage-tier").is_some(), "still decided");
    let record = outcome.record.unwrap();
    assert_eq!(record.decision_id, None);
    assert_eq!(record.mode, Applied::Shadow);
    assert_eq!(record.status, Some(200));
    // With an id, a 100% canary enforces.
    let outcome = exchange(&config, &client, every_tier_answers());
    assert_eq!(outcome.record.unwrap().mode, Applied::Enforce);
}

/// The record bills the tier whose cluster Envoy's route table served the routed request from,
/// whatever triage routed it to (shadowed: the default tier's route), and states a mismatch; a
/// cluster no tier names is no tier's, and its costs are unknown.
#[test]
fn the_cluster_envoy_served_from_is_billed() {
    use crate::MismatchCause::{RouteTable, UnknownCluster};
    let client = Client::simple(CHAT);
    // (mode, the cluster served, the tier billed, the mismatch: the routed tier, the served one)
    let cases = [
        ("enforce", "tier_small", Some(SMALL), None),
        (
            "enforce",
            "tier_frontier",
            Some(FRONTIER),
            Some(("small", Some("frontier"), RouteTable)),
        ),
        (
            "enforce",
            "catch_all",
            None,
            Some(("small", None, UnknownCluster)),
        ),
        ("shadow", "tier_mid", Some(MID), None),
        (
            "shadow",
            "tier_frontier",
            Some(FRONTIER),
            Some(("mid", Some("frontier"), RouteTable)),
        ),
    ];
    let usage = TIERS[SMALL].usage;
    for (mode, cluster, billed, mismatch) in cases {
        let what = format!("{mode} served by {cluster}");
        let config = plain_config(json!({ "mode": mode }));
        client.goes_small(&config);
        let settings = HostSettings {
            route_to: Some(cluster.to_string()),
            ..HostSettings::default()
        };
        let answers = |_: &Sent| Reply::Answer(good_response(CHAT, SMALL));
        let outcome = exchange_with(&config, &client, answers, &settings);
        let record = outcome.record.unwrap();
        assert_eq!(record.served_cluster.as_deref(), Some(cluster), "{what}");
        assert_eq!(record.decided_tier, "small", "{what}");
        let routed = if mode == "shadow" { "mid" } else { "small" };
        assert_eq!(
            record.tier,
            billed.map_or(routed, |tier| TIERS[tier].name),
            "{what}"
        );
        let stated = record.mismatch.as_ref().map(|mismatch| {
            (
                mismatch.routed.as_str(),
                mismatch.served.as_deref(),
                mismatch.cause,
            )
        });
        assert_eq!(stated, mismatch, "{what}");
        match billed {
            Some(tier) => assert_close(record.cost_micro_usd, cost(tier, usage), &what),
            None => assert_eq!(record.cost_micro_usd, None, "{what}: never a guess"),
        }
    }
}

/// A clock that moves on 1 µs per read: the decision takes measurable time. The score on the
/// upstream's headers is the record's (the filter's histograms read the record).
#[test]
fn the_decision_takes_clock_time_and_its_score_goes_on_the_headers() {
    let config = plain_config(json!({}));
    let settings = HostSettings {
        nanos_per_read: 1_000,
        ..HostSettings::default()
    };
    let clients = [
        Client::simple(CHAT),
        Client::chat(json!({"model": "gpt-4o"})),
        Client::raw(CHAT, "{broken"),
        Client::chat(json!({"messages": [{"role": "user", "content": HARD}]})),
    ];
    let mut scored = 0;
    for client in &clients {
        let outcome = exchange_with(&config, client, every_tier_answers(), &settings);
        let record = outcome.record.unwrap();
        assert!(record.decision_us > 0, "the decision took clock time");
        let routed = outcome.routed.unwrap();
        let score = header(&routed.headers, "x-triage-score");
        assert_eq!(score.is_some(), record.score.is_some());
        if let (Some(score), Some(recorded)) = (score, record.score) {
            assert_eq!(score, format!("{recorded:.4}"));
            scored += 1;
        }
    }
    assert_eq!(
        scored, 2,
        "the explicit model and the fail-open are not scored"
    );
}

/// How a stream ends: the script from the routed request on, then the status and usage recorded.
type Ending = (&'static str, Vec<Row>, Option<u16>, Option<Usage>);

/// The response ends in its headers, its last body chunk, its trailers, or not at all (the stream
/// ends first): the record settles there, exactly once, with what was known by then.
#[test]
fn the_record_settles_once_where_the_stream_ends() {
    let config = plain_config(json!({}));
    let answer = good_answer(CHAT, SMALL);
    let usage_at = String::from_utf8_lossy(&answer).rfind("\"usage\"").unwrap();
    let cases: [Ending; 4] = [
        (
            "the headers end it",
            vec![
                (
                    Event::ResponseHeaders(503, "text/plain", true),
                    "continue",
                    &["settle"],
                ),
                (Event::Log, "continue", &[]),
            ],
            Some(503),
            None,
        ),
        (
            "trailers end it",
            vec![
                (Event::ResponseHeaders(200, JSON, false), "continue", &[]),
                (Event::ResponseBody(answer.clone(), false), "continue", &[]),
                (Event::ResponseTrailers, "continue", &["settle"]),
                (Event::Log, "continue", &[]),
            ],
            Some(200),
            Some(TIERS[SMALL].usage),
        ),
        (
            "cut off before its usage",
            vec![
                (Event::ResponseHeaders(200, JSON, false), "continue", &[]),
                (
                    Event::ResponseBody(answer[..usage_at].to_vec(), false),
                    "continue",
                    &[],
                ),
                (Event::Log, "continue", &["settle"]),
            ],
            Some(200),
            None,
        ),
        (
            "no response at all",
            vec![(Event::Log, "continue", &["settle"])],
            None,
            None,
        ),
    ];
    for (what, rows, status, usage) in cases {
        let mut script = Script::new(&config, &Client::simple(CHAT));
        let mut steps = script.play_rows(&[routed()], what);
        steps.extend(script.play_rows(&rows, what));
        let record = settled(&steps);
        assert_eq!(record.request_id, REQUEST_ID, "{what}");
        assert_eq!((record.status, record.usage), (status, usage), "{what}");
        assert_eq!(record.cost_micro_usd.is_some(), usage.is_some(), "{what}");
        assert_eq!(record.tier, "small", "{what}");
    }
}

/// Envoy answered before the body was complete (a 413 past its buffer limit, another filter's
/// reply), or the client left: nothing was routed, but the request is recorded with the cause, and
/// a response names no tier.
#[test]
fn answered_before_the_decision_the_request_is_still_recorded() {
    let config = plain_config(json!({}));
    let cases: [(&str, Event, Effects, &str, Option<u16>); 3] = [
        (
            "Envoy's 413",
            Event::ResponseHeaders(413, "text/plain", true),
            &["settle"],
            "body_too_large",
            Some(413),
        ),
        (
            "another filter's reply",
            Event::ResponseHeaders(403, "text/plain", true),
            &["settle"],
            "body_unavailable",
            Some(403),
        ),
        (
            "the client left",
            Event::Log,
            &["settle"],
            "body_unavailable",
            None,
        ),
    ];
    for (what, answered, effects, cause, status) in cases {
        let mut script = Script::new(&config, &Client::simple(CHAT));
        let rows: Vec<Row> = vec![
            (Event::RequestHeaders { end: false }, "pause", &[]),
            (
                Event::RequestBody(b"{\"model\": ".to_vec(), false),
                "pause",
                &[],
            ),
            (answered.clone(), "continue", effects),
        ];
        let steps = script.play_rows(&rows, what);
        let record = settled(&steps);
        assert_eq!(record.fail_open.as_deref(), Some(cause), "{what}");
        assert_eq!(record.status, status, "{what}");
        if status.is_some() {
            let reason = format!("fail_open: {cause}");
            let writes = [
                ("x-triage-tier", None),
                ("x-triage-score", None),
                ("x-triage-mode", None),
                ("x-triage-reason", Some(reason.as_str())),
                ("x-triage-decision-id", Some(DECISION_ID)),
            ];
            assert_writes(&steps[2], HeaderMap::Response, &writes, what);
        }
    }
}

/// The host could not hand the buffered body over: the request goes to the default tier as it
/// came.
#[test]
fn a_body_the_host_can_not_hand_over_fails_open() {
    let config = plain_config(json!({}));
    let client = Client::simple(CHAT);
    let mut script = Script::new(&config, &client);
    script.held.request_body = None;
    let rows: Vec<Row> = vec![
        (Event::RequestHeaders { end: false }, "pause", &[]),
        (
            Event::RequestBody(client.body.clone(), true),
            "continue",
            &["clear route cache"],
        ),
        (Event::Log, "continue", &["settle"]),
    ];
    let steps = script.play_rows(&rows, "no body");
    let route = [("x-triage-route", Some("mid"))];
    assert_writes(&steps[1], HeaderMap::Request, &route, "no body");
    assert_eq!(
        settled(&steps).fail_open.as_deref(),
        Some("body_unavailable")
    );
}
