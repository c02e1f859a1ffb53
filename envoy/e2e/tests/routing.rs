//! The filter decides the tier, Envoy routes on it (the route cache really is cleared), and the
//! upstream gets the tier's model in an otherwise unchanged body.

use serde_json::Value;
use triage_e2e::auth;
use triage_e2e::bodies::{self, CHAT, MESSAGES, NEUTRAL, RESPONSES, TRIVIAL};
use triage_e2e::check::{answered_model, routed, upstream_header};
use triage_e2e::plugin_config::{self, FORCE_TIER_HEADER};
use triage_e2e::{Request, Stack, TIERS};

fn forced(path: &str, body: &str, tier: &str) -> Request {
    Request::post(path, body).header(FORCE_TIER_HEADER, tier)
}

#[test]
fn trivial_classification_is_scored_to_the_small_tier() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&Request::post(CHAT, bodies::chat(Some("auto"), TRIVIAL)));

    let received = routed(
        &stack,
        &response,
        "small",
        &bodies::chat(Some("gpt-4o-mini"), TRIVIAL),
    );
    assert_eq!(answered_model(&response), "gpt-4o-mini");
    let score: f64 = response
        .header("x-triage-score")
        .expect("x-triage-score on a scored request")
        .parse()
        .expect("x-triage-score is a number");
    let config = plugin_config::forcing();
    let small_max = triage_core::Config::from_json(config.to_string().as_bytes())
        .expect("the shipped config is valid")
        .thresholds()[0];
    assert!(
        (0.0..=small_max).contains(&score),
        "score {score} not in small's range (up to {small_max})"
    );
    let reason = response.header("x-triage-reason").unwrap_or_default();
    assert!(reason.starts_with("scored"), "reason {reason:?}");
    assert_eq!(upstream_header(&received, "x-triage-route"), Some("small"));
}

#[test]
fn each_tier_is_reachable_and_gets_its_model() {
    let stack = Stack::start(&plugin_config::forcing());
    let mut served = 0;
    for (tier, model) in TIERS.iter().zip(["gpt-4o-mini", "gpt-4o", "o3"]) {
        let response = stack.send(&forced(CHAT, &bodies::chat(Some("auto"), NEUTRAL), tier));

        assert_eq!(response.status, 200, "{tier}: {}", response.text());
        assert_eq!(response.header("x-mock-tier"), Some(*tier));
        assert_eq!(response.header("x-triage-tier"), Some(*tier));
        assert_eq!(
            response.header("x-triage-reason"),
            Some(format!("rule: force-{tier}").as_str())
        );
        assert_eq!(
            response.header("x-triage-score"),
            None,
            "no score under a rule"
        );
        assert_eq!(answered_model(&response), model);
        let received = stack.mock(tier).received();
        assert_eq!(received.len(), 1, "{tier} received");
        assert_eq!(
            String::from_utf8_lossy(&received[0].body),
            bodies::chat(Some(model), NEUTRAL)
        );
        served += 1;
    }
    assert_eq!(stack.received().len(), served, "no request went elsewhere");
}

#[test]
fn chat_content_parts_are_routed() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&forced(
        CHAT,
        &bodies::chat_parts(Some("auto"), NEUTRAL),
        "frontier",
    ));
    routed(
        &stack,
        &response,
        "frontier",
        &bodies::chat_parts(Some("o3"), NEUTRAL),
    );
    assert_eq!(answered_model(&response), "o3");
}

#[test]
fn a_request_without_model_gets_the_tier_model_inserted() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&forced(CHAT, &bodies::chat(None, NEUTRAL), "mid"));
    let without_model = bodies::chat(None, NEUTRAL);
    let expected = format!("{{\"model\":\"gpt-4o\",{}", &without_model[1..]);
    routed(&stack, &response, "mid", &expected);
}

#[test]
fn responses_api_requests_are_routed() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&forced(
        RESPONSES,
        &bodies::responses(Some("auto"), NEUTRAL),
        "small",
    ));
    routed(
        &stack,
        &response,
        "small",
        &bodies::responses(Some("gpt-4o-mini"), NEUTRAL),
    );
    assert_eq!(answered_model(&response), "gpt-4o-mini");
}

#[test]
fn responses_api_input_items_are_routed() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&forced(
        RESPONSES,
        &bodies::responses_items(Some("auto"), NEUTRAL),
        "frontier",
    ));
    routed(
        &stack,
        &response,
        "frontier",
        &bodies::responses_items(Some("o3"), NEUTRAL),
    );
}

#[test]
fn anthropic_messages_get_the_tier_anthropic_model() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&forced(
        MESSAGES,
        &bodies::messages(Some("auto"), NEUTRAL),
        "frontier",
    ));
    routed(
        &stack,
        &response,
        "frontier",
        &bodies::messages(Some("claude-opus-4-1"), NEUTRAL),
    );
    assert_eq!(answered_model(&response), "claude-opus-4-1");
}

#[test]
fn anthropic_content_blocks_are_routed() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&forced(
        MESSAGES,
        &bodies::messages_parts(Some("auto"), NEUTRAL),
        "mid",
    ));
    routed(
        &stack,
        &response,
        "mid",
        &bodies::messages_parts(Some("claude-sonnet-4-5"), NEUTRAL),
    );
}

#[test]
fn shipped_proof_rule_sends_proofs_to_frontier() {
    let stack = Stack::start(&plugin_config::shipped());
    let proof = "Prove that the square root of 2 is irrational.";
    let response = stack.send(&Request::post(CHAT, bodies::chat(Some("auto"), proof)));
    routed(
        &stack,
        &response,
        "frontier",
        &bodies::chat(Some("o3"), proof),
    );
    assert_eq!(response.header("x-triage-reason"), Some("rule: proofs"));
}

#[test]
fn shipped_tenant_rule_sends_the_verified_legal_team_to_frontier() {
    let stack = Stack::start(&plugin_config::shipped());
    let token = auth::token("carol", Some("legal"));
    let request = Request::post(CHAT, bodies::chat(Some("auto"), TRIVIAL))
        .header("authorization", &format!("Bearer {token}"));
    let response = stack.send(&request);
    routed(
        &stack,
        &response,
        "frontier",
        &bodies::chat(Some("o3"), TRIVIAL),
    );
    assert_eq!(
        response.header("x-triage-reason"),
        Some("rule: legal-team-frontier")
    );
}

#[test]
fn an_explicit_model_passes_through_unchanged_to_the_tier_that_lists_it() {
    let stack = Stack::start(&plugin_config::forcing());
    let body = bodies::chat(Some("o3"), TRIVIAL);
    let response = stack.send(&Request::post(CHAT, body.clone()));
    routed(&stack, &response, "frontier", &body);
    assert_eq!(answered_model(&response), "o3");
    assert_eq!(
        response.header("x-triage-reason"),
        Some("explicit_model: o3")
    );
}

#[test]
fn an_unknown_explicit_model_passes_through_to_the_default_tier() {
    let stack = Stack::start(&plugin_config::forcing());
    let body = bodies::messages(Some("my-finetune-2025"), TRIVIAL);
    let response = stack.send(&Request::post(MESSAGES, body.clone()));
    routed(&stack, &response, "mid", &body);
    assert_eq!(answered_model(&response), "my-finetune-2025");
}

#[test]
fn an_empty_plugin_config_means_the_shipped_defaults() {
    let stack = Stack::start_with(triage_e2e::StackOptions::triage_raw(""));
    let response = stack.send(&Request::post(CHAT, bodies::chat(Some("auto"), TRIVIAL)));
    routed(
        &stack,
        &response,
        "small",
        &bodies::chat(Some("gpt-4o-mini"), TRIVIAL),
    );
}

#[test]
fn streaming_answers_reach_the_client() {
    let stack = Stack::start(&plugin_config::forcing());
    let body = bodies::chat(Some("auto"), NEUTRAL).replacen('{', "{\"stream\": true, ", 1);
    let response = stack.send(&forced(CHAT, &body, "small"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-triage-tier"), Some("small"));
    let events: Vec<Value> = response
        .text()
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).expect("SSE data is JSON"))
        .collect();
    assert!(!events.is_empty(), "no SSE events: {}", response.text());
    assert!(events.iter().all(|event| event["model"] == "gpt-4o-mini"));
}
