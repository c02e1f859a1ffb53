//! The body cap: a body up to `limits.max_body_bytes` with `"model": "auto"` is decided, rewritten
//! and answered by its tier, although the rewrite makes it longer than the cap; one byte more gets
//! 413 and reaches no tier. Envoy's buffer limit sits above the cap by the room the longest rewrite
//! needs, because Envoy answers 413 to a buffered body the filter grows past that limit.
// The helpers below are test code too (clippy only exempts `#[test]` functions).
#![allow(clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::Value;
use triage_core::{ApiFormat, Config};
use triage_e2e::bodies::{self, CHAT, MESSAGES, NEUTRAL, TRIVIAL};
use triage_e2e::check::{answered_model, assert_body, record_of, records, upstream_header};
use triage_e2e::plugin_config::{self, shipped_limit, FORCE_TIER_HEADER};
use triage_e2e::{Body, Request, Response, Stack, StackOptions};

/// The shipped cap: the largest body triage decides for.
fn cap() -> usize {
    shipped_limit("max_body_bytes")
}

fn config(json: &Value) -> Config {
    Config::from_json(json.to_string().as_bytes()).expect("a valid plugin config")
}

/// A text that makes `body(model, text)` exactly `size` bytes long.
fn text_for(size: usize, body: impl Fn(&str) -> String) -> String {
    let overhead = body("").len();
    let prefix = format!("{NEUTRAL} ");
    assert!(size > overhead + prefix.len(), "{size} is too small");
    let text = format!("{prefix}{}", "a".repeat(size - overhead - prefix.len()));
    assert_eq!(body(&text).len(), size);
    text
}

/// The longest rewrite the shipped tiers make: "auto" becomes mid's Anthropic model.
fn messages_at(size: usize) -> (String, String, String) {
    let text = text_for(size, |text| bodies::messages(Some("auto"), text));
    let model = config(&plugin_config::shipped())
        .tier_model(1, ApiFormat::AnthropicMessages)
        .expect("mid's Anthropic model")
        .to_owned();
    (
        bodies::messages(Some("auto"), &text),
        bodies::messages(Some(&model), &text),
        model,
    )
}

/// Served by `tier` with `expected` upstream, byte for byte and framed to its length.
fn answered_by(stack: &Stack, response: &Response, tier: &str, expected: &str) {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-mock-tier"), Some(tier));
    assert_eq!(response.header("x-triage-tier"), Some(tier));
    let (served_by, received) = stack.only_upstream_request();
    assert_eq!(served_by, tier);
    assert_body(&received, expected);
}

#[test]
fn bodies_at_the_cap_and_one_byte_under_are_rewritten_and_answered() {
    for size in [cap(), cap() - 1] {
        let stack = Stack::start(&plugin_config::forcing());
        let (sent, expected, model) = messages_at(size);
        assert!(
            expected.len() > cap(),
            "the rewrite takes the body past the cap ({} bytes)",
            expected.len()
        );
        let response = stack.send(&Request::post(MESSAGES, sent).header(FORCE_TIER_HEADER, "mid"));
        answered_by(&stack, &response, "mid", &expected);
        assert_eq!(answered_model(&response), model);
        let records = records(&stack, 1);
        let record = record_of(&records, &response);
        assert_eq!(record["status"], 200);
        assert_eq!(record["model"], model.as_str());
        assert_eq!(record["cause"], "rule");
    }
}

#[test]
fn a_scored_body_at_the_cap_gets_its_tier_and_model() {
    let stack = Stack::start(&plugin_config::shipped());
    let text = text_for(cap(), |text| bodies::chat(Some("auto"), text));
    let response = stack.send(&Request::post(CHAT, bodies::chat(Some("auto"), &text)));
    let tier = response
        .header("x-triage-tier")
        .unwrap_or_else(|| panic!("decided: {}", response.text()))
        .to_owned();
    let shipped = config(&plugin_config::shipped());
    let model = shipped
        .tier_model(
            shipped.tier_index(&tier).expect("a shipped tier"),
            ApiFormat::OpenAiChat,
        )
        .expect("the tier's model");
    answered_by(&stack, &response, &tier, &bodies::chat(Some(model), &text));
    let reason = response.header("x-triage-reason").unwrap_or_default();
    assert!(reason.starts_with("scored"), "reason {reason:?}");
}

#[test]
fn a_chunked_body_at_the_cap_is_rewritten_and_answered() {
    let stack = Stack::start(&plugin_config::forcing());
    let (sent, expected, _) = messages_at(cap());
    let (head, tail) = sent.as_bytes().split_at(sent.len() / 2);
    let request = Request::new(
        "POST",
        MESSAGES,
        Body::Chunked {
            chunks: vec![head.to_vec(), tail.to_vec()],
            pause: Duration::from_millis(100),
        },
    )
    .header("content-type", "application/json")
    .header(FORCE_TIER_HEADER, "mid");
    let response = stack.send(&request);
    answered_by(&stack, &response, "mid", &expected);
}

#[test]
fn one_byte_over_the_cap_gets_413_and_reaches_no_tier() {
    let stack = Stack::start(&plugin_config::forcing());
    let (sent, _, _) = messages_at(cap() + 1);
    let response = stack.send(&Request::post(MESSAGES, sent).header(FORCE_TIER_HEADER, "mid"));
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.text(), "Payload Too Large");
    assert_eq!(response.header("x-triage-tier"), None, "no tier named");
    assert_eq!(response.header("x-triage-score"), None);
    assert_eq!(
        response.header("x-triage-reason"),
        Some("fail_open: body_too_large")
    );
    assert!(stack.received().is_empty(), "no tier saw it");

    let records = records(&stack, 1);
    let record = record_of(&records, &response);
    assert_eq!(record["status"], 413);
    assert_eq!(record["cause"], "fail_open");
    assert_eq!(record["fail_open"], "body_too_large");
    // No upstream served it: no served cluster, though Envoy had matched the default route.
    let unserved = ["served_cluster", "mismatch"];
    for field in ["model", "score", "usage", "cost_micro_usd", "request"]
        .into_iter()
        .chain(unserved)
    {
        assert!(record[field].is_null(), "{field}: {record}");
    }
    // The record's schema has a tier on every line: the default tier it would have gone to.
    assert_eq!(record["tier"], "mid");

    let after = stack.send(&Request::post(CHAT, bodies::chat(Some("auto"), TRIVIAL)));
    assert_eq!(after.status, 200, "Envoy still serves after the 413");
}

#[test]
fn a_shadowed_body_over_the_cap_streams_through_as_without_triage() {
    let mut shadow = plugin_config::forcing();
    shadow["mode"] = Value::from("shadow");
    let stack = Stack::start(&shadow);
    let (sent, _, _) = messages_at(cap() + 1);
    let response = stack.send(&Request::post(MESSAGES, sent.clone()));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-triage-mode"), Some("shadow"));
    assert_eq!(
        response.header("x-triage-reason"),
        Some("fail_open: body_too_large")
    );
    let (tier, received) = stack.only_upstream_request();
    assert_eq!(tier, "mid", "the default route");
    assert_body(&received, &sent);
}

#[test]
fn without_the_headroom_envoy_answers_413_to_the_rewritten_body() {
    // Envoy's limit lowered to the cap (the plugin config still states the shipped one): the
    // filter's rewrite of a body at the cap is what Envoy refuses, after the decision.
    let limit = format!(
        "per_connection_buffer_limit_bytes: {}",
        shipped_limit("envoy_buffer_limit_bytes")
    );
    let lowered = format!("per_connection_buffer_limit_bytes: {}", cap());
    let stack = Stack::start_with(
        StackOptions::triage(&plugin_config::forcing()).with_config_edit(&limit, &lowered),
    );
    let (sent, _, _) = messages_at(cap());
    let response = stack.send(&Request::post(MESSAGES, sent).header(FORCE_TIER_HEADER, "mid"));
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(stack.received().is_empty(), "no tier saw it");

    // A body the rewrite keeps within the limit still goes through.
    let small = bodies::messages(Some("auto"), NEUTRAL);
    let response = stack.send(&Request::post(MESSAGES, small).header(FORCE_TIER_HEADER, "mid"));
    assert_eq!(response.status, 200, "{}", response.text());
    let (_, received) = stack.only_upstream_request();
    assert_eq!(upstream_header(&received, "x-triage-tier"), Some("mid"));
}

#[test]
fn envoys_limit_passes_a_buffered_body_of_its_size_and_refuses_one_byte_more() {
    // The filter buffers up to 16 MiB and is told nothing of Envoy's limit, and the body names a
    // model the filter does not rewrite: what Envoy holds is exactly what the client sent.
    let stack = Stack::start_with(
        StackOptions::triage(&plugin_config::buffering_past_envoys_limit())
            .with_gateway_config(&plugin_config::forcing()),
    );
    let limit = shipped_limit("envoy_buffer_limit_bytes");
    let at_limit = |size: usize| {
        let text = text_for(size, |text| bodies::chat(Some("gpt-4o"), text));
        bodies::chat(Some("gpt-4o"), &text)
    };

    let body = at_limit(limit);
    let response = stack.send(&Request::post(CHAT, body.clone()));
    answered_by(&stack, &response, "mid", &body);
    assert_eq!(
        response.header("x-triage-reason"),
        Some("explicit_model: gpt-4o")
    );

    let response = stack.send(&Request::post(CHAT, at_limit(limit + 1)));
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.header("x-triage-tier"), None, "no tier named");
    assert_eq!(stack.received().len(), 1, "the 413 reached no tier");
}
