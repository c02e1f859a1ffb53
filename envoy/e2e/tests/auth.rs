//! The gateway's `jwt_authn` filter in front of triage (issue 17): a valid caller token in
//! `Authorization: Bearer` or `x-api-key` passes and never reaches a tier; no token passes
//! anonymously; a token that is present but forged, expired, from another issuer or no JWT at all (a
//! provider's api key) gets Envoy's 401, one for another audience its 403 (authentic, but not meant
//! for this gateway), before any tier.

use triage_e2e::auth;
use triage_e2e::bodies::{self, CHAT, TRIVIAL};
use triage_e2e::{plugin_config, Request, Response, Stack, StackOptions, TIERS};

/// The headers OpenAI SDKs (`Authorization: Bearer`) and Anthropic SDKs (`x-api-key`) send their key in.
const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "x-api-key"];

fn llm_request() -> Request {
    Request::post(CHAT, bodies::chat(Some("auto"), TRIVIAL))
}

fn with_bearer(token: &str) -> Request {
    llm_request().header("authorization", &format!("Bearer {token}"))
}

fn with_api_key(token: &str) -> Request {
    llm_request().header("x-api-key", token)
}

fn shipped_stack() -> Stack {
    Stack::start(&plugin_config::shipped())
}

/// A tier answered, and the upstream request carried no credential header.
fn assert_served_without_credentials(stack: &Stack, response: &Response) {
    assert_eq!(response.status, 200, "status (body: {})", response.text());
    let (tier, received) = stack.only_upstream_request();
    assert!(TIERS.contains(&tier.as_str()), "served by {tier}");
    assert_eq!(response.header("x-mock-tier"), Some(tier.as_str()));
    let credentials: Vec<&(String, String)> = received
        .headers
        .iter()
        .filter(|(name, _)| CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        .collect();
    assert!(
        credentials.is_empty(),
        "the gateway token reached the tier: {credentials:?}"
    );
}

/// Sent in either header to a triage stack with the shipped config, `token` gets `status` from
/// Envoy naming `reason`, and no tier receives anything.
fn assert_refused(token: &str, status: u16, reason: &str) {
    assert_refused_by(&shipped_stack(), token, status, reason);
}

fn assert_refused_by(stack: &Stack, token: &str, status: u16, reason: &str) {
    for request in [with_bearer(token), with_api_key(token)] {
        let response = stack.send(&request);
        assert_eq!(
            response.status,
            status,
            "status (body: {})",
            response.text()
        );
        assert_eq!(response.text(), reason, "Envoy's reason");
    }
    assert!(
        stack.received().is_empty(),
        "a refused request reached a tier"
    );
}

#[test]
fn a_valid_bearer_token_is_served_and_not_forwarded() {
    let stack = shipped_stack();
    let response = stack.send(&with_bearer(&auth::token("alice", Some("research"))));
    assert_served_without_credentials(&stack, &response);
}

#[test]
fn a_valid_token_in_x_api_key_is_served_and_not_forwarded() {
    let stack = shipped_stack();
    let response = stack.send(&with_api_key(&auth::token("alice", Some("research"))));
    assert_served_without_credentials(&stack, &response);
}

#[test]
fn a_request_without_a_token_is_served_anonymously() {
    let stack = shipped_stack();
    let response = stack.send(&llm_request());
    assert_served_without_credentials(&stack, &response);
}

#[test]
fn a_token_signed_with_a_forged_key_is_refused() {
    assert_refused(&auth::forged_token("alice"), 401, "Jwt verification fails");
}

#[test]
fn an_expired_token_is_refused() {
    assert_refused(&auth::expired_token("alice"), 401, "Jwt is expired");
}

#[test]
fn a_token_for_another_audience_is_refused() {
    assert_refused(
        &auth::token_for_audience("alice", "another-service"),
        403,
        "Audiences in Jwt are not allowed",
    );
}

#[test]
fn a_token_from_another_issuer_is_refused() {
    assert_refused(
        &auth::token_from_issuer("alice", "another-gateway"),
        401,
        "Jwt issuer is not configured",
    );
}

#[test]
fn a_provider_api_key_in_place_of_a_token_is_refused() {
    // A client configured with a model provider's own key sends it where the gateway token goes:
    // present and not a JWT, so refused rather than passed on anonymously with the key attached.
    assert_refused(
        "sk-ant-api03-not-a-gateway-token",
        401,
        "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
    );
}

#[test]
fn the_baseline_stack_authenticates_callers_too() {
    // The baseline is what triage's overhead is measured against: it carries the same auth cost.
    let stack = Stack::start_with(StackOptions::baseline());
    assert_refused_by(
        &stack,
        &auth::forged_token("alice"),
        401,
        "Jwt verification fails",
    );
    let response = stack.send(&with_bearer(&auth::token("alice", None)));
    assert_served_without_credentials(&stack, &response);
}
