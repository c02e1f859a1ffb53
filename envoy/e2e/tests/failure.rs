//! Bodies the router cannot read go to the default tier untouched; bodies over Envoy's buffer limit
//! get 413 without hanging.

use std::time::{Duration, Instant};

use triage_e2e::bodies::{self, CHAT, MESSAGES, NEUTRAL, RESPONSES, TRIVIAL};
use triage_e2e::check::{assert_body, assert_vm_never_failed};
use triage_e2e::plugin_config::{self, FORCE_TIER_HEADER};
use triage_e2e::{Body, Request, Response, Stack, StackOptions};

/// Served by the default tier (mid) with the body untouched and `fail_open: <cause>` as the reason.
fn failed_open(stack: &Stack, response: &Response, body: &str, cause: &str) {
    assert_eq!(response.header("x-mock-tier"), Some("mid"), "served by");
    assert_eq!(response.header("x-triage-tier"), Some("mid"));
    assert_eq!(
        response.header("x-triage-reason"),
        Some(format!("fail_open: {cause}").as_str())
    );
    assert_eq!(
        response.header("x-triage-score"),
        None,
        "no score when failing open"
    );
    let (tier, received) = stack.only_upstream_request();
    assert_eq!(tier, "mid");
    assert_body(&received, body);
}

#[test]
fn invalid_json_fails_open_to_the_default_tier_untouched() {
    let stack = Stack::start(&plugin_config::forcing());
    let body = r#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}"#;
    let response = stack.send(&Request::post(CHAT, body));
    failed_open(&stack, &response, body, "invalid_json");
    assert_eq!(
        response.status, 400,
        "the mock rejects the broken JSON itself"
    );
}

#[test]
fn an_empty_body_fails_open_to_the_default_tier() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&Request::post(CHAT, ""));
    failed_open(&stack, &response, "", "empty_body");
}

#[test]
fn a_json_body_of_unknown_shape_fails_open_untouched() {
    let stack = Stack::start(&plugin_config::forcing());
    let body = r#"[{"role": "user", "content": "hi"}]"#;
    let response = stack.send(&Request::post(CHAT, body));
    failed_open(&stack, &response, body, "unknown_shape");
}

/// The README's fail-open contract: an object of unknown shape that asks triage to pick
/// (`"model": "auto"`) gets the default tier's model, and not one other byte changes, so the provider
/// sees a model it serves and judges the shape itself; with an explicit model, or none, it is untouched.
#[test]
fn an_unknown_shape_naming_auto_gets_only_the_default_tiers_model() {
    let stack = Stack::start(&plugin_config::forcing());
    let deep = format!(
        r#"{{"model": "auto", "messages": {}1{}}}"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    let cases = [
        r#"{"model": "auto", "messages": {"role": "user", "content": "hi"}}"#.to_owned(),
        deep,
    ];
    for (index, body) in cases.iter().enumerate() {
        let response = stack.send(&Request::post(CHAT, body.as_str()));
        assert_eq!(response.header("x-mock-tier"), Some("mid"), "served by");
        assert_eq!(
            response.header("x-triage-reason"),
            Some("fail_open: unknown_shape")
        );
        let expected = body.replacen(r#""model": "auto""#, r#""model": "gpt-4o""#, 1);
        assert_body(&stack.mock("mid").received()[index], &expected);
    }
    let untouched = r#"{"model": "gpt-4o-mini", "messages": "hi"}"#;
    let response = stack.send(&Request::post(CHAT, untouched));
    assert_eq!(response.header("x-mock-tier"), Some("small"), "served by");
    assert_body(&stack.mock("small").received()[0], untouched);
    assert_eq!(
        response.header("x-triage-reason"),
        Some("explicit_model: gpt-4o-mini"),
        "an explicit model is never rewritten, whatever the shape"
    );
}

#[test]
fn a_body_over_the_plugin_cap_streams_through_untouched() {
    let stack = Stack::start(&plugin_config::forcing_with_max_body(65_536));
    let long_document = "The quarterly report says revenue grew. ".repeat(5_000);
    let body = bodies::chat(Some("auto"), &format!("{TRIVIAL}\n{long_document}"));
    assert!(body.len() > 190_000);
    let response = stack.send(&Request::post(CHAT, body.clone()));
    assert_eq!(response.status, 200, "{}", response.text());
    failed_open(&stack, &response, &body, "body_too_large");
}

#[test]
fn past_the_plugin_cap_envoys_buffer_limit_no_longer_applies() {
    // The filter stops buffering at 1 MiB, so Envoy streams the 9 MiB body instead of answering 413.
    // The first 2 MiB go first: on a loaded machine one socket read could otherwise carry the body
    // past Envoy's 8 MiB limit while the filter is still buffering, before it could let go.
    let stack = Stack::start(&plugin_config::forcing_with_max_body(1024 * 1024));
    let body = bodies::chat(Some("auto"), &"a".repeat(9 * 1024 * 1024));
    let (head, rest) = body.as_bytes().split_at(2 * 1024 * 1024);
    let request = Request::new(
        "POST",
        CHAT,
        Body::Chunked {
            chunks: vec![head.to_vec(), rest.to_vec()],
            pause: Duration::from_millis(300),
        },
    )
    .header("content-type", "application/json");
    let response = stack.send(&request);
    assert_eq!(response.status, 200, "{}", response.text());
    failed_open(&stack, &response, &body, "body_too_large");
}

#[test]
fn a_body_just_under_the_plugin_cap_is_routed() {
    let stack = Stack::start(&plugin_config::forcing_with_max_body(65_536));
    let filler = "x".repeat(60_000);
    let body = bodies::chat(Some("auto"), &format!("{NEUTRAL} {filler}"));
    assert!(body.len() < 65_536);
    let response =
        stack.send(&Request::post(CHAT, body.clone()).header(FORCE_TIER_HEADER, "frontier"));
    assert_eq!(response.header("x-mock-tier"), Some("frontier"));
    assert_eq!(
        response.header("x-triage-reason"),
        Some("rule: force-frontier")
    );
}

/// A 9 MiB body gets 413 promptly, reaches no upstream, and Envoy serves the next request; the 413
/// is returned.
fn over_envoys_buffer_limit_gets_413(stack: &Stack) -> Response {
    let body = bodies::chat(Some("auto"), &"a".repeat(9 * 1024 * 1024));
    let started = Instant::now();
    let response = stack.send(&Request::post(CHAT, body));
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(
        response.header("x-triage-tier"),
        None,
        "no tier served the 413"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "413 took {:?}",
        started.elapsed()
    );
    assert!(stack.received().is_empty(), "nothing reaches the upstream");

    let after = stack.send(&Request::post(CHAT, bodies::chat(Some("auto"), TRIVIAL)));
    assert_eq!(after.status, 200, "Envoy still serves after the 413");
    response
}

#[test]
fn a_body_over_envoys_buffer_limit_gets_413_without_hanging() {
    // The plugin would buffer 16 MiB and is told nothing of Envoy's limit (it would refuse a stated
    // one this low): Envoy's connection buffer limit, 1 KiB over 8 MiB, is what trips.
    let stack = Stack::start_with(
        StackOptions::triage(&plugin_config::buffering_past_envoys_limit())
            .with_gateway_config(&plugin_config::forcing()),
    );
    let response = over_envoys_buffer_limit_gets_413(&stack);
    assert_eq!(
        response.header("x-triage-reason"),
        Some("fail_open: body_too_large")
    );
}

#[test]
fn the_baseline_answers_413_over_its_buffer_limit_too() {
    over_envoys_buffer_limit_gets_413(&Stack::start_with(StackOptions::baseline()));
}

#[test]
fn hostile_bodies_never_crash_the_filter() {
    let stack = Stack::start(&plugin_config::forcing());
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        (
            CHAT,
            b"{\"model\": \"auto\", \"messages\": [{\"role\": \"user\", \"content\": \"\xff\xfe\"}]}"
                .to_vec(),
        ),
        (CHAT, "[".repeat(100_000).into_bytes()),
        (MESSAGES, br#"{"model": 42, "messages": []}"#.to_vec()),
        (
            CHAT,
            br#"{"model": "auto", "messages": [{"role": "user", "content": null}]}"#.to_vec(),
        ),
        (RESPONSES, b"{\"model\": \"auto\", \"input\": \"\0\0\0\"}".to_vec()),
        (RESPONSES, br#"{"model": "auto", "input": 1e999999}"#.to_vec()),
        (
            CHAT,
            br#"{"model": "\u0061uto", "messages": [{"role": "user", "content": "\ud800"}]}"#
                .to_vec(),
        ),
    ];
    for (path, body) in &hostile {
        let response = stack.send(&Request::post(path, body.clone()));
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        assert!(response.status < 500, "{path} {shown}: {}", response.status);
        assert!(
            response.header("x-triage-tier").is_some(),
            "{path} {shown}: decided"
        );
    }
    assert_eq!(stack.received().len(), hostile.len(), "all reached a tier");
    assert_vm_never_failed(&stack);
}
