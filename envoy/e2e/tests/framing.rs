//! The rewritten body is framed correctly: chunked uploads, and several requests on one client
//! connection that share one upstream connection (a stale content-length would desync it).

use std::time::Duration;

use triage_e2e::bodies::{self, CHAT, MESSAGES, NEUTRAL};
use triage_e2e::check::{answered_model, assert_body, routed};
use triage_e2e::plugin_config::{self, FORCE_TIER_HEADER};
use triage_e2e::{Body, Request, Stack};

#[test]
fn a_chunked_body_sent_with_pauses_is_decided_and_rewritten() {
    let stack = Stack::start(&plugin_config::forcing());
    let body = bodies::chat(Some("auto"), NEUTRAL);
    // Cuts fall inside `"model"`, inside `"auto"` and in the middle of the text.
    let cuts = [3, 12, body.len() / 2, body.len()];
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(body.as_bytes()[start..cut].to_vec());
        start = cut;
    }
    let request = Request::new(
        "POST",
        CHAT,
        Body::Chunked {
            chunks,
            pause: Duration::from_millis(60),
        },
    )
    .header("content-type", "application/json")
    .header(FORCE_TIER_HEADER, "frontier");

    let response = stack.send(&request);
    routed(
        &stack,
        &response,
        "frontier",
        &bodies::chat(Some("o3"), NEUTRAL),
    );
    assert_eq!(answered_model(&response), "o3");
}

/// Sends `requests` on one client connection; every answer must be 200 from frontier, and the
/// frontier upstream must have received `expected` bodies, in order, on one connection.
fn one_connection(requests: &[(&str, String)], expected: &[String]) {
    let stack = Stack::start(&plugin_config::forcing());
    let mut connection = stack.connect();
    for (i, (path, body)) in requests.iter().enumerate() {
        let request = Request::post(path, body.clone()).header(FORCE_TIER_HEADER, "frontier");
        let response = stack.send_on(&mut connection, &request);
        assert_eq!(
            response.status,
            200,
            "request {i} on the shared connection: {}",
            response.text()
        );
        assert_eq!(
            response.header("x-mock-tier"),
            Some("frontier"),
            "request {i}"
        );
    }
    let received = stack.mock("frontier").received();
    assert_eq!(received.len(), expected.len(), "requests the upstream saw");
    let first_connection = received[0].conn_id;
    for (i, (received, expected)) in received.iter().zip(expected).enumerate() {
        assert_body(received, expected);
        assert!(
            serde_json::from_slice::<serde_json::Value>(&received.body).is_ok(),
            "upstream body {i} is JSON"
        );
        assert_eq!(
            received.conn_id, first_connection,
            "request {i} reused the upstream connection"
        );
    }
    assert_eq!(
        stack.received().len(),
        expected.len(),
        "nothing went elsewhere"
    );
}

#[test]
fn longer_and_shorter_rewrites_share_one_upstream_connection() {
    // "auto" becomes "claude-opus-4-1" (longer) for Messages and "o3" (shorter) for chat.
    one_connection(
        &[
            (MESSAGES, bodies::messages(Some("auto"), NEUTRAL)),
            (CHAT, bodies::chat(Some("auto"), NEUTRAL)),
            (MESSAGES, bodies::messages(Some("auto"), NEUTRAL)),
            (CHAT, bodies::chat(Some("auto"), NEUTRAL)),
        ],
        &[
            bodies::messages(Some("claude-opus-4-1"), NEUTRAL),
            bodies::chat(Some("o3"), NEUTRAL),
            bodies::messages(Some("claude-opus-4-1"), NEUTRAL),
            bodies::chat(Some("o3"), NEUTRAL),
        ],
    );
}

#[test]
fn a_rewritten_request_then_an_untouched_one_share_one_upstream_connection() {
    // An explicit model ("o3", listed by frontier) is never rewritten.
    one_connection(
        &[
            (MESSAGES, bodies::messages(Some("auto"), NEUTRAL)),
            (CHAT, bodies::chat(Some("o3"), NEUTRAL)),
            (CHAT, bodies::chat(Some("auto"), NEUTRAL)),
        ],
        &[
            bodies::messages(Some("claude-opus-4-1"), NEUTRAL),
            bodies::chat(Some("o3"), NEUTRAL),
            bodies::chat(Some("o3"), NEUTRAL),
        ],
    );
}
