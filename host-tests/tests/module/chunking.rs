//! The body in any chunking, and the end of stream in trailers: the same decision and bytes.

use crate::common::*;
use triage_host::Action;

fn bodies() -> Vec<(&'static str, String)> {
    vec![
        (CHAT, chat_body("auto", SIMPLE)),
        (CHAT, chat_body("auto", HARD)),
        (MESSAGES, serde_json::json!({"model": "auto", "max_tokens": 99, "messages": [{"role": "user", "content": "héllo wörld 你好 ".repeat(40)}]}).to_string()),
        (CHAT, "{truncated".to_string()),
    ]
}

/// (upstream headers, upstream body) for the body sent in one piece.
fn reference(path: &str, body: &str) -> (triage_host::HeaderMap, Vec<u8>) {
    let mut host = host();
    let mut stream = host.request().unwrap();
    send(&mut stream, path, body.as_bytes());
    (
        stream.upstream_headers().unwrap().clone(),
        stream.upstream_body().to_vec(),
    )
}

#[test]
fn one_byte_chunks_pause_until_the_end_then_match_one_piece() {
    for (path, body) in bodies() {
        let expected = reference(path, &body);
        let mut host = host();
        let mut stream = host.request().unwrap();
        let actions = send_chunked(&mut stream, path, body.as_bytes(), &vec![1; body.len()]);
        let (last, paused) = actions.split_last().unwrap();
        assert_eq!(*last, Action::Continue);
        assert!(
            paused.iter().all(|a| *a == Action::Pause),
            "{path}: {actions:?}"
        );
        assert_eq!(
            stream.request_body_callbacks(),
            (1..=body.len()).collect::<Vec<_>>(),
            "each callback is told the whole buffered size"
        );
        assert_eq!(stream.upstream_headers(), Some(&expected.0), "{body}");
        assert_eq!(stream.upstream_body(), expected.1, "{body}");
        assert_framed(&stream);
        drop(stream);
        assert_no_warnings(&host);
    }
}

#[test]
fn random_chunkings_match_one_piece() {
    let mut rng = Rng(0x5eed);
    for (path, body) in bodies() {
        let expected = reference(path, &body);
        let mut host = host();
        for _ in 0..25 {
            let chunks: Vec<usize> = (0..8).map(|_| rng.below(body.len() / 3 + 2)).collect();
            let mut stream = host.request().unwrap();
            send_chunked(&mut stream, path, body.as_bytes(), &chunks);
            assert_eq!(stream.upstream_headers(), Some(&expected.0), "{chunks:?}");
            assert_eq!(stream.upstream_body(), expected.1, "{chunks:?}");
        }
        assert_no_warnings(&host);
    }
}

#[test]
fn nothing_goes_upstream_while_the_body_is_incomplete() {
    let mut host = host();
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    stream
        .send_request_headers(&post_headers(CHAT, body.len()), false)
        .unwrap();
    stream
        .send_request_body(&body.as_bytes()[..20], false)
        .unwrap();
    assert!(stream.request_paused());
    assert_eq!(stream.upstream_headers(), None);
    assert!(stream.upstream_body().is_empty());
    assert_eq!(stream.buffered_request_body(), 20);
}

#[test]
fn end_of_stream_in_trailers_decides_there() {
    let mut host = host();
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    stream
        .send_request_headers(&post_headers(CHAT, body.len()), false)
        .unwrap();
    let (head, tail) = body.as_bytes().split_at(30);
    assert_eq!(
        stream.send_request_body(head, false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        stream.send_request_body(tail, false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        stream.upstream_headers(),
        None,
        "not decided before the trailers"
    );
    let action = stream
        .send_request_trailers(&[("x-checksum", "abc")])
        .unwrap();
    assert_eq!(action, Action::Continue);
    assert_routed(&stream, &native(CHAT, body.as_bytes()).tier);
    assert_eq!(
        upstream_json(&stream)["model"],
        native_model(CHAT, body.as_bytes())
    );
    assert_eq!(
        stream.upstream_trailers().and_then(|t| t.get("x-checksum")),
        Some("abc")
    );
    assert_framed(&stream);
    drop(stream);
    assert_no_warnings(&host);
}

#[test]
fn a_body_without_content_length_gets_none() {
    let mut host = host();
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    let headers = [
        (":method", "POST"),
        (":path", CHAT),
        ("transfer-encoding", "chunked"),
    ];
    stream.send_request_headers(&headers, false).unwrap();
    stream.send_request_body(body.as_bytes(), true).unwrap();
    assert_routed(&stream, &native(CHAT, body.as_bytes()).tier);
    assert_eq!(stream.upstream_header("content-length"), None);
    assert_eq!(
        upstream_json(&stream)["model"],
        native_model(CHAT, body.as_bytes())
    );
}

/// A body over the plugin's cap is routed at once; trailers arriving after that must not undo the
/// decision (the response still gets its headers and the request its record).
#[test]
fn trailers_after_the_body_cap_keep_the_fail_open_decision() {
    let mut host = triage_host::Host::start(r#"{"limits": {"max_body_bytes": 64}}"#).unwrap();
    let body = chat_body("auto", SIMPLE);
    assert!(body.len() > 64);
    let mut stream = host.request().unwrap();
    stream
        .send_request_headers(&post_headers(CHAT, body.len()), false)
        .unwrap();
    let action = stream.send_request_body(body.as_bytes(), false).unwrap();
    assert_eq!(action, Action::Continue, "streamed past the cap");
    stream
        .send_request_trailers(&[("x-checksum", "abc")])
        .unwrap();
    assert_routed(&stream, "mid");
    stream
        .send_response_headers(
            &[(":status", "200"), ("content-type", "application/json")],
            true,
        )
        .unwrap();
    assert_eq!(
        stream.downstream_header("x-triage-reason"),
        Some("fail_open: body_too_large")
    );
    drop(stream);
    let record: serde_json::Value =
        serde_json::from_slice(host.property(&["triage_record"]).expect("a record")).unwrap();
    assert_eq!(record["fail_open"], "body_too_large");
    assert_eq!(record["status"], 200);
}
