//! Each API format: routed, model rewritten, framing fixed, decision on the response.

use crate::common::*;
use serde_json::json;

fn route(path: &str, body: &serde_json::Value) -> (triage_host::Host, String, serde_json::Value) {
    let mut host = host();
    let body = body.to_string();
    let mut stream = host.request().unwrap();
    let actions = send(&mut stream, path, body.as_bytes());
    assert_eq!(
        actions,
        [triage_host::Action::Pause, triage_host::Action::Continue],
        "headers held until the body ends"
    );
    assert_framed(&stream);
    let tier = stream.upstream_header("x-triage-tier").unwrap().to_string();
    assert_routed(&stream, &tier);
    assert_eq!(stream.route_cache_clears(), 1);
    let upstream = upstream_json(&stream);
    drop(stream);
    assert_no_warnings(&host);
    (host, tier, upstream)
}

#[test]
fn openai_chat_is_routed_with_its_tier_model() {
    let body = json!({"model": "auto", "messages": [{"role": "user", "content": SIMPLE}]});
    let (_, tier, upstream) = route(CHAT, &body);
    let bytes = body.to_string().into_bytes();
    assert_eq!(tier, native(CHAT, &bytes).tier);
    assert_eq!(upstream["model"], native_model(CHAT, &bytes));
    assert_eq!(upstream["messages"], body["messages"]);
}

#[test]
fn openai_responses_is_routed_and_rewritten() {
    let body = json!({"model": "auto", "input": SIMPLE});
    let (_, tier, upstream) = route(RESPONSES, &body);
    let bytes = body.to_string().into_bytes();
    assert_eq!(tier, native(RESPONSES, &bytes).tier);
    assert_eq!(upstream["model"], native_model(RESPONSES, &bytes));
    assert_eq!(upstream["input"], SIMPLE);
}

#[test]
fn anthropic_messages_get_the_anthropic_model_of_the_tier() {
    let body = json!({
        "model": "auto", "max_tokens": 256, "system": "You are terse.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": SIMPLE}]}]
    });
    let (_, tier, upstream) = route(MESSAGES, &body);
    let bytes = body.to_string().into_bytes();
    assert_eq!(tier, native(MESSAGES, &bytes).tier);
    assert_eq!(upstream["model"], native_model(MESSAGES, &bytes));
    assert!(upstream["model"].as_str().unwrap().starts_with("claude-"));
}

#[test]
fn a_longer_model_name_grows_the_body_and_its_length() {
    let mut host = host();
    // "auto" is shorter than every tier's model: the rewrite makes the body longer.
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    send(&mut stream, CHAT, body.as_bytes());
    assert!(stream.upstream_body().len() > body.len());
    assert_framed(&stream);
    // Every byte but the model value is kept.
    let upstream = String::from_utf8(stream.upstream_body().to_vec()).unwrap();
    let model = native_model(CHAT, body.as_bytes());
    assert_eq!(upstream.replace(model.as_str().unwrap(), "auto"), body);
}

#[test]
fn an_explicit_model_is_left_byte_for_byte() {
    let mut host = host();
    let body = chat_body("gpt-4o", SIMPLE);
    let mut stream = host.request().unwrap();
    send(&mut stream, CHAT, body.as_bytes());
    assert_eq!(stream.upstream_body(), body.as_bytes());
    assert_eq!(
        stream.upstream_header("content-length"),
        Some(&*body.len().to_string())
    );
    assert_routed(&stream, "mid");
    assert_eq!(
        stream.upstream_header("x-triage-reason"),
        Some("explicit_model: gpt-4o")
    );
    assert_eq!(stream.upstream_header("x-triage-score"), None);
}

#[test]
fn the_query_string_does_not_hide_an_llm_call() {
    let mut host = host();
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    send(
        &mut stream,
        "/v1/chat/completions?api-version=2024-06-01",
        body.as_bytes(),
    );
    assert_routed(&stream, &native(CHAT, body.as_bytes()).tier);
}

#[test]
fn a_header_rule_forces_its_tier() {
    let config = r#"{"rules": [{"name": "legal", "when": {"header": {"name": "X-Team", "value": "legal"}}, "tier": "frontier"}]}"#;
    let mut host = triage_host::Host::start(config).unwrap();
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    let mut headers = post_headers(CHAT, body.len());
    headers.push(("x-team".into(), "legal".into()));
    stream.send_request_headers(&headers, false).unwrap();
    stream.send_request_body(body.as_bytes(), true).unwrap();
    assert_routed(&stream, "frontier");
    assert_eq!(
        stream.upstream_header("x-triage-reason"),
        Some("rule: legal")
    );
    assert_eq!(upstream_json(&stream)["model"], "o3");
    assert_framed(&stream);
}

#[test]
fn the_response_carries_the_decision_and_passes_untouched() {
    let mut host = host();
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    send(&mut stream, CHAT, body.as_bytes());
    let sent: Vec<_> = ["x-triage-tier", "x-triage-score", "x-triage-reason"]
        .map(|name| stream.upstream_header(name).map(str::to_string))
        .into();
    let action = stream
        .send_response_headers(
            &[(":status", "200"), ("content-type", "application/json")],
            false,
        )
        .unwrap();
    assert_eq!(action, triage_host::Action::Continue);
    for (name, value) in ["x-triage-tier", "x-triage-score", "x-triage-reason"]
        .iter()
        .zip(&sent)
    {
        assert!(value.is_some());
        assert_eq!(stream.downstream_header(name), value.as_deref(), "{name}");
    }
    let answer = br#"{"choices": [{"message": {"content": "positive"}}]}"#;
    stream.send_response_body(&answer[..10], false).unwrap();
    stream.send_response_body(&answer[10..], true).unwrap();
    assert_eq!(stream.downstream_body(), answer);
    assert!(stream.downstream_complete());
    drop(stream);
    assert_no_warnings(&host);
}

#[test]
fn a_fail_open_response_drops_an_upstream_score() {
    let mut host = host();
    let mut stream = host.request().unwrap();
    send(&mut stream, CHAT, b"{broken");
    stream
        .send_response_headers(&[(":status", "200"), ("x-triage-score", "0.99")], true)
        .unwrap();
    assert_eq!(stream.downstream_header("x-triage-score"), None);
    assert_eq!(
        stream.downstream_header("x-triage-reason"),
        Some("fail_open: invalid_json")
    );
}
