//! Every fail-open cause: the default tier, the body untouched, the request never held back.

use crate::common::*;
use triage_host::{Action, Host};

fn fails_open(body: &[u8], cause: &str) {
    fails_open_sending(body, cause, body);
}

fn fails_open_sending(body: &[u8], cause: &str, upstream_body: &[u8]) {
    let mut host = host();
    let mut stream = host.request().unwrap();
    send(&mut stream, CHAT, body);
    assert_routed(&stream, "mid");
    assert_eq!(
        stream.upstream_header("x-triage-reason"),
        Some(&*format!("fail_open: {cause}"))
    );
    assert_eq!(stream.upstream_header("x-triage-score"), None);
    assert_eq!(stream.upstream_body(), upstream_body);
    assert_framed(&stream);
    drop(stream);
    assert_no_warnings(&host);
}

#[test]
fn invalid_json() {
    fails_open(
        br#"{"model": "auto", "messages": [{"role": "user", "#,
        "invalid_json",
    );
}

#[test]
fn unknown_shape() {
    fails_open(br#"[{"role": "user", "content": "hi"}]"#, "unknown_shape");
}

#[test]
fn unknown_shape_still_gets_the_default_tier_model_for_auto() {
    fails_open_sending(
        br#"{"model": "auto", "prompt": "hello"}"#,
        "unknown_shape",
        br#"{"model": "gpt-4o", "prompt": "hello"}"#,
    );
}

#[test]
fn empty_body_ending_in_a_data_frame() {
    fails_open(b"", "empty_body");
}

#[test]
fn empty_body_ending_with_the_headers() {
    let mut host = host();
    let mut stream = host.request().unwrap();
    let action = stream
        .send_request_headers(&post_headers(CHAT, 0), true)
        .unwrap();
    assert_eq!(action, Action::Continue);
    assert_routed(&stream, "mid");
    assert_eq!(
        stream.upstream_header("x-triage-reason"),
        Some("fail_open: empty_body")
    );
    assert_framed(&stream);
    drop(stream);
    assert_no_warnings(&host);
}

#[test]
fn a_body_over_the_cap_streams_through_from_the_chunk_that_crossed_it() {
    let mut host = Host::start(r#"{"limits": {"max_body_bytes": 1024}}"#).unwrap();
    let body = chat_body("auto", &"word ".repeat(800));
    assert!(body.len() > 3000);
    let mut stream = host.request().unwrap();
    let actions = send_chunked(&mut stream, CHAT, body.as_bytes(), &[512; 16]);
    // 512 and 1024 bytes are within the cap; at 1536 the filter gives up and continues.
    assert_eq!(
        &actions[..4],
        [
            Action::Pause,
            Action::Pause,
            Action::Pause,
            Action::Continue
        ]
    );
    assert!(actions[4..].iter().all(|a| *a == Action::Continue));
    let sizes = stream.request_body_callbacks();
    assert_eq!(&sizes[..3], [512, 1024, 1536]);
    assert!(
        sizes[3..].iter().all(|size| *size <= 512),
        "nothing is buffered after the cap: {sizes:?}"
    );
    assert_routed(&stream, "mid");
    assert_eq!(
        stream.upstream_header("x-triage-reason"),
        Some("fail_open: body_too_large")
    );
    assert_eq!(stream.upstream_body(), body.as_bytes());
    assert_framed(&stream);
    drop(stream);
    assert_no_warnings(&host);
}

#[test]
fn a_body_exactly_at_the_cap_is_still_decided() {
    let body = chat_body("auto", SIMPLE);
    let config = format!(r#"{{"limits": {{"max_body_bytes": {}}}}}"#, body.len());
    let mut host = Host::start(&config).unwrap();
    let mut stream = host.request().unwrap();
    send_chunked(&mut stream, CHAT, body.as_bytes(), &[7; 64]);
    assert_routed(&stream, &native(CHAT, body.as_bytes()).tier);
    assert_ne!(
        stream.upstream_header("x-triage-reason"),
        Some("fail_open: body_too_large")
    );
}
