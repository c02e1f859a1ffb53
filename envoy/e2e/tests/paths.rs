//! Every spelling of the three LLM endpoints is either routed as an LLM call (decided, recorded,
//! priced, sent to the endpoint's own path) or refused before any tier sees it; none reaches a tier
//! undecided. Envoy normalizes the path (dot segments, `//`, encoded unreserved characters, `\`) and
//! refuses an encoded slash or backslash; the filter takes upper case, a trailing slash and
//! `;parameters` as the endpoint.
// The helpers below are test code too (clippy only exempts `#[test]` functions).
#![allow(clippy::expect_used, clippy::panic)]

use serde_json::Value;
use triage_core::ApiFormat;
use triage_e2e::bodies::{self, NEUTRAL, TRIVIAL};
use triage_e2e::check::{answered_model, assert_body, record_of, records, triage_headers};
use triage_e2e::plugin_config::{self, shipped_tier_model, FORCE_TIER_HEADER};
use triage_e2e::{Body, Request, Response, Stack, StackOptions, TIERS};

/// The lines of the rendered config that make Envoy normalize paths.
const ENVOY_NORMALIZATION: &str =
    "          normalize_path: true\n          merge_slashes: true\n          \
     path_with_escaped_slashes_action: REJECT_REQUEST\n";

/// A client body of `format` asking for `model`, and the body its tier should get with `shipped_tier_model`.
fn body(format: ApiFormat, model: &str, text: &str) -> String {
    match format {
        ApiFormat::OpenAiChat => bodies::chat(Some(model), text),
        ApiFormat::OpenAiResponses => bodies::responses(Some(model), text),
        ApiFormat::AnthropicMessages => bodies::messages(Some(model), text),
    }
}

/// `/v1/chat/completions` -> `/V1/Chat/Completions`.
fn capitalized(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let mut chars = segment.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Spellings some server resolves to `path`, each with what it tries.
fn routed_variants(path: &str) -> Vec<(&'static str, String)> {
    let rest = &path[1..];
    vec![
        ("trailing slash", format!("{path}/")),
        ("two trailing slashes", format!("{path}//")),
        ("merged slashes", format!("/v1//{}", &path[4..])),
        ("leading double slash", format!("/{path}")),
        ("dot segment", format!("/v1/./{}", &path[4..])),
        ("dot-dot segment", format!("/v1/x/../{}", &path[4..])),
        ("encoded dot-dot", format!("/v1/x/%2e%2E/{}", &path[4..])),
        ("dot-dot above the root", format!("/..{path}")),
        ("trailing dot", format!("{path}/.")),
        ("encoded unreserved", format!("/%761/{}", &path[4..])),
        ("backslashes", format!("/{}", rest.replace('/', "\\"))),
        ("upper case", path.to_uppercase()),
        ("capitalized", capitalized(path)),
        (
            "upper case, trailing slash",
            format!("{}/", path.to_uppercase()),
        ),
        ("path parameter", format!("{path};jsessionid=1")),
    ]
}

/// Sends `request`; it must be served by `tier`'s mock as an LLM call of `format` on the
/// endpoint's own path plus `query`, with the tier's model written into an otherwise unchanged body.
fn assert_routed(
    stack: &Stack,
    request: &Request,
    format: ApiFormat,
    tier: &str,
    query: &str,
    text: &str,
) -> Response {
    let before = stack.received().len();
    let tier_before = stack.mock(tier).received().len();
    let response = stack.send(request);
    let what = format!("POST {}", request.path);
    assert_eq!(response.status, 200, "{what}: {}", response.text());
    assert_eq!(response.header("x-mock-tier"), Some(tier), "{what}");
    assert_eq!(response.header("x-triage-tier"), Some(tier), "{what}");
    let model = shipped_tier_model(tier, format);
    // The mock answers in an API's shape only on that API's exact path.
    assert_eq!(answered_model(&response), model, "{what}");
    assert_eq!(
        stack.received().len(),
        before + 1,
        "{what}: one upstream request"
    );
    let received = stack.mock(tier).received();
    assert_eq!(received.len(), tier_before + 1, "{what}: served by {tier}");
    let upstream = &received[tier_before];
    assert_eq!(
        upstream.path,
        format!("{}{query}", format.path()),
        "{what}: upstream path"
    );
    assert_body(upstream, &body(format, &model, text));
    response
}

/// Sends `request`; Envoy must refuse it with 400 before the filter or any tier sees it.
fn assert_refused(stack: &Stack, request: &Request) {
    let before = stack.received().len();
    let response = stack.send(request);
    assert_eq!(
        response.status,
        400,
        "POST {}: {}",
        request.path,
        response.text()
    );
    assert_eq!(
        triage_headers(&response.headers),
        vec![],
        "POST {}: no decision",
        request.path
    );
    assert_eq!(
        stack.received().len(),
        before,
        "POST {}: no tier saw it",
        request.path
    );
}

#[test]
fn every_spelling_of_the_three_endpoints_is_routed_recorded_and_priced() {
    let stack = Stack::start(&plugin_config::forcing());
    let mut answered = Vec::new();
    for format in ApiFormat::ALL {
        for (i, (what, path)) in routed_variants(format.path()).into_iter().enumerate() {
            let tier = TIERS[i % TIERS.len()];
            let request =
                Request::post(&path, body(format, "auto", NEUTRAL)).header(FORCE_TIER_HEADER, tier);
            let response = assert_routed(&stack, &request, format, tier, "", NEUTRAL);
            assert_eq!(
                response.header("x-triage-reason"),
                Some(format!("rule: force-{tier}").as_str()),
                "{what}: {path}"
            );
            answered.push((format, tier, path, response));
        }
    }
    let records = records(&stack, answered.len());
    for (format, tier, path, response) in &answered {
        let record = record_of(&records, response);
        assert_eq!(record["api"], format.as_str(), "{path}");
        assert_eq!(record["tier"], *tier, "{path}");
        assert_eq!(record["model"], shipped_tier_model(tier, *format), "{path}");
        assert_eq!(record["status"], 200, "{path}");
        assert!(record["usage"].is_object(), "{path}: usage read: {record}");
        assert!(
            record["cost_micro_usd"]
                .as_f64()
                .is_some_and(|cost| cost > 0.0),
            "{path}: priced: {record}"
        );
    }
}

#[test]
fn a_respelled_endpoint_is_scored_like_the_endpoint() {
    let stack = Stack::start(&plugin_config::forcing());
    let request = Request::post(
        "/V1/./Chat//Completions/",
        bodies::chat(Some("auto"), TRIVIAL),
    );
    let response = assert_routed(
        &stack,
        &request,
        ApiFormat::OpenAiChat,
        "small",
        "",
        TRIVIAL,
    );
    let reason = response.header("x-triage-reason").unwrap_or_default();
    assert!(reason.starts_with("scored"), "reason {reason:?}");
    assert!(response.header("x-triage-score").is_some());
}

#[test]
fn the_query_string_goes_on_unchanged_and_a_fragment_is_refused() {
    let stack = Stack::start(&plugin_config::forcing());
    // Envoy normalizes the path only; the query's `%2F` and `../` are not path syntax.
    let query = "?api-version=2024-10-21&x=a%2Fb&y=../z";
    for path in [
        format!("/v1/chat/completions{query}"),
        format!("/V1/Chat/Completions/{query}"),
        format!("/v1/x/..//chat/./completions{query}"),
    ] {
        let request = Request::post(&path, bodies::chat(Some("auto"), NEUTRAL))
            .header(FORCE_TIER_HEADER, "frontier");
        assert_routed(
            &stack,
            &request,
            ApiFormat::OpenAiChat,
            "frontier",
            query,
            NEUTRAL,
        );
    }
    // A fragment is never part of a request target: Envoy's codec refuses it.
    for path in ["/v1/chat/completions#x", "/v1/messages?beta=1#x"] {
        assert_refused(
            &stack,
            &Request::post(path, bodies::chat(Some("auto"), NEUTRAL)),
        );
    }
}

#[test]
fn an_encoded_slash_or_backslash_is_refused_before_any_tier() {
    let stack = Stack::start(&plugin_config::forcing());
    for format in ApiFormat::ALL {
        let path = format.path();
        let rest = &path[1..];
        for encoded in [
            format!("/{}", rest.replace('/', "%2F")),
            format!("/{}", rest.replace('/', "%2f")),
            format!("/{}", rest.replace('/', "%5C")),
            format!("/v1/x%2F..{}", &path[3..]),
        ] {
            let request = Request::post(&encoded, body(format, "auto", NEUTRAL))
                .header(FORCE_TIER_HEADER, "frontier");
            assert_refused(&stack, &request);
        }
    }
    // No record for the refused ones: the next request's is the only one.
    let response = stack.send(&Request::post(
        bodies::CHAT,
        bodies::chat(Some("auto"), TRIVIAL),
    ));
    assert_eq!(response.status, 200);
    let records = records(&stack, 1);
    assert_eq!(
        records[0]["request_id"],
        response.header("x-request-id").unwrap_or_default()
    );
}

#[test]
fn paths_that_name_other_resources_pass_through_untouched() {
    let stack = Stack::start(&plugin_config::forcing());
    for (path, upstream_path) in [
        (
            "/v1/chat/completions/chatcmpl-123",
            "/v1/chat/completions/chatcmpl-123",
        ),
        ("/v1/messages/count_tokens", "/v1/messages/count_tokens"),
        ("/v1/responses/resp_1/cancel", "/v1/responses/resp_1/cancel"),
        ("/v1/chat/completions/..", "/v1/chat/"),
        ("/v1/chat/completions%20", "/v1/chat/completions%20"),
    ] {
        let before = stack.received().len();
        let mid_before = stack.mock("mid").received().len();
        let body = bodies::chat(Some("auto"), NEUTRAL);
        let response =
            stack.send(&Request::post(path, body.clone()).header(FORCE_TIER_HEADER, "frontier"));
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        assert_eq!(response.header("x-mock-tier"), Some("mid"), "{path}");
        assert_eq!(triage_headers(&response.headers), vec![], "{path}");
        assert_eq!(stack.received().len(), before + 1, "{path}");
        let received = stack.mock("mid").received();
        let upstream = &received[mid_before];
        assert_eq!(upstream.path, upstream_path, "{path}");
        assert_eq!(triage_headers(&upstream.headers), vec![], "{path}");
        assert_body(upstream, &body);
    }
}

#[test]
fn without_envoys_normalization_the_filter_still_routes_every_spelling() {
    // A gateway configured otherwise: Envoy forwards every spelling as it came, and the filter's
    // own matching routes them all to the endpoint's path.
    let baseline =
        Stack::start_with(StackOptions::baseline().with_config_edit(ENVOY_NORMALIZATION, ""));
    // Without the filter, Envoy so configured forwards each as it came.
    assert_forwarded_as(
        &baseline,
        &[
            ("/v1//messages", "/v1//messages"),
            ("/v1/./messages", "/v1/./messages"),
            ("/v1%2Fmessages", "/v1%2Fmessages"),
        ],
    );
    let stack = Stack::start_with(
        StackOptions::triage(&plugin_config::forcing()).with_config_edit(ENVOY_NORMALIZATION, ""),
    );
    let path = ApiFormat::AnthropicMessages.path();
    let mut variants = routed_variants(path);
    variants.push(("encoded slashes", "/v1%2Fmessages".to_owned()));
    variants.push(("encoded backslash", "/v1%5cmessages".to_owned()));
    for (what, variant) in variants {
        let request = Request::post(
            &variant,
            body(ApiFormat::AnthropicMessages, "auto", NEUTRAL),
        )
        .header(FORCE_TIER_HEADER, "mid");
        let response = assert_routed(
            &stack,
            &request,
            ApiFormat::AnthropicMessages,
            "mid",
            "",
            NEUTRAL,
        );
        assert_eq!(
            response.header("x-triage-reason"),
            Some("rule: force-mid"),
            "{what}: {variant}"
        );
    }
}

#[test]
fn a_shadowed_respelled_call_is_decided_and_recorded_but_sent_as_it_came() {
    let mut config = plugin_config::forcing();
    config["mode"] = Value::from("shadow");
    let stack = Stack::start(&config);
    let path = "/V1/Chat/Completions/";
    let body = bodies::chat(Some("auto"), NEUTRAL);
    let response =
        stack.send(&Request::post(path, body.clone()).header(FORCE_TIER_HEADER, "frontier"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-mock-tier"), Some("mid"), "default route");
    assert_eq!(response.header("x-triage-mode"), Some("shadow"));
    assert_eq!(response.header("x-triage-tier"), Some("frontier"));
    let (tier, upstream) = stack.only_upstream_request();
    assert_eq!(tier, "mid");
    assert_eq!(upstream.path, path, "shadow changes nothing upstream");
    assert_body(&upstream, &body);
    let records = records(&stack, 1);
    assert_eq!(records[0]["mode"], "shadow");
    assert_eq!(records[0]["decided_tier"], "frontier");
}

/// Sends each `(path, upstream path)` to a stack without the filter: the default tier gets the path
/// as Envoy leaves it.
fn assert_forwarded_as(stack: &Stack, cases: &[(&str, &str)]) {
    for (path, expected) in cases {
        let before = stack.mock("mid").received().len();
        let response = stack.send(&Request::post(path, bodies::chat(Some("auto"), NEUTRAL)));
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        let received = stack.mock("mid").received();
        assert_eq!(received.len(), before + 1, "{path}");
        assert_eq!(received[before].path, *expected, "{path}");
    }
}

#[test]
fn the_baseline_normalizes_and_refuses_the_same_paths() {
    let stack = Stack::start_with(StackOptions::baseline());
    let body = bodies::chat(Some("auto"), NEUTRAL);
    assert_forwarded_as(
        &stack,
        &[
            ("/v1/x/..//chat/./completions", "/v1/chat/completions"),
            ("/%761/chat/completions", "/v1/chat/completions"),
            ("/v1\\chat\\completions", "/v1/chat/completions"),
            ("/v1/chat/completions/..", "/v1/chat/"),
            ("/v1/chat/completions/", "/v1/chat/completions/"),
            ("/V1/Chat/Completions", "/V1/Chat/Completions"),
            (
                "/v1/chat/completions?x=a%2Fb",
                "/v1/chat/completions?x=a%2Fb",
            ),
        ],
    );
    assert_refused(
        &stack,
        &Request::post("/v1%2Fchat%2Fcompletions", body.clone()),
    );
    assert_refused(
        &stack,
        &Request::new(
            "POST",
            "/v1/chat/completions#x",
            Body::Fixed(body.into_bytes()),
        ),
    );
}

#[test]
fn a_path_prefix_rule_sees_the_endpoints_own_path() {
    let mut config = plugin_config::shipped();
    config["rules"] = serde_json::json!([
        {"name": "messages-frontier", "when": {"path_prefix": "/v1/messages"}, "tier": "frontier"}
    ]);
    let stack = Stack::start(&config);
    for (i, path) in ["/v1/messages", "/V1/MESSAGES/", "/v1//Messages;x=1"]
        .into_iter()
        .enumerate()
    {
        let request = Request::post(path, body(ApiFormat::AnthropicMessages, "auto", TRIVIAL));
        let response = assert_routed(
            &stack,
            &request,
            ApiFormat::AnthropicMessages,
            "frontier",
            "",
            TRIVIAL,
        );
        assert_eq!(
            response.header("x-triage-reason"),
            Some("rule: messages-frontier"),
            "{path}"
        );
        assert_eq!(stack.mock("frontier").received().len(), i + 1);
    }
}
