//! Client routing headers never survive; requests that are not LLM calls are left alone.

use crate::common::*;
use triage_host::{Action, Host};

const SPOOFED: [(&str, &str); 4] = [
    ("x-triage-route", "frontier"),
    ("X-Triage-Tier", "frontier"),
    ("x-triage-score", "0.9999"),
    ("x-triage-anything", "1"),
];

#[test]
fn spoofed_routing_headers_are_replaced_on_llm_calls() {
    let mut host = host();
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    let mut headers = post_headers(CHAT, body.len());
    headers.extend(SPOOFED.map(|(k, v)| (k.to_string(), v.to_string())));
    stream.send_request_headers(&headers, false).unwrap();
    stream.send_request_body(body.as_bytes(), true).unwrap();
    assert_routed(&stream, &native(CHAT, body.as_bytes()).tier);
    let upstream = stream.upstream_headers().unwrap();
    assert_eq!(upstream.get("x-triage-anything"), None);
    let own = upstream
        .pairs()
        .iter()
        .filter(|(k, _)| k.starts_with("x-triage-"))
        .count();
    assert_eq!(
        own, 4,
        "route, tier, score, reason, once each: {upstream:?}"
    );
}

#[test]
fn spoofed_headers_are_dropped_where_the_filter_does_not_route() {
    let mut host = host();
    let mut stream = host.request().unwrap();
    let mut headers = vec![(":method", "GET"), (":path", "/v1/models")];
    headers.extend(SPOOFED);
    assert_eq!(
        stream.send_request_headers(&headers, true).unwrap(),
        Action::Continue
    );
    let upstream = stream.upstream_headers().unwrap();
    assert!(
        upstream
            .pairs()
            .iter()
            .all(|(k, _)| !k.starts_with("x-triage-")),
        "{upstream:?}"
    );
}

#[test]
fn a_custom_route_header_is_stripped_and_set() {
    let mut host = Host::start(r#"{"route_header": "x-llm-pool"}"#).unwrap();
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    let mut headers = post_headers(CHAT, body.len());
    headers.push(("x-llm-pool".into(), "frontier".into()));
    stream.send_request_headers(&headers, false).unwrap();
    stream.send_request_body(body.as_bytes(), true).unwrap();
    let tier = native(CHAT, body.as_bytes()).tier;
    assert_eq!(stream.upstream_header("x-llm-pool"), Some(&*tier));
    assert_eq!(stream.routing_headers().get("x-llm-pool"), Some(&*tier));
    assert_eq!(stream.upstream_header("x-triage-route"), None);
}

#[test]
fn other_paths_and_methods_pass_untouched_without_buffering() {
    let body = chat_body("auto", SIMPLE);
    for (method, path) in [
        ("POST", "/v1/embeddings"),
        ("GET", CHAT),
        ("POST", "/v1/chat/completions/extra"),
        ("PUT", MESSAGES),
    ] {
        let mut host = host();
        let mut stream = host.request().unwrap();
        let headers = [
            (":method", method),
            (":path", path),
            ("content-length", "10"),
        ];
        assert_eq!(
            stream.send_request_headers(&headers, false).unwrap(),
            Action::Continue
        );
        let (head, tail) = body.as_bytes().split_at(10);
        assert_eq!(
            stream.send_request_body(head, false).unwrap(),
            Action::Continue
        );
        assert_eq!(
            stream.upstream_body(),
            head,
            "{method} {path}: passed on at once"
        );
        assert_eq!(
            stream.send_request_body(tail, true).unwrap(),
            Action::Continue
        );
        assert_eq!(stream.upstream_body(), body.as_bytes());
        assert_eq!(stream.upstream_headers().unwrap().pairs().len(), 3);
        assert_eq!(stream.route_cache_clears(), 0);
        stream
            .send_response_headers(&[(":status", "200")], true)
            .unwrap();
        assert_eq!(stream.downstream_headers().unwrap().pairs().len(), 1);
        drop(stream);
        assert_no_warnings(&host);
    }
}
