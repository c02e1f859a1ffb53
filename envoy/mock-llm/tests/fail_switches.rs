//! The `x-mock-fail` switches over real loopback sockets: what a client (or Envoy) sees on the wire.

// clippy.toml allows these in #[test] fns only; the client helpers in common/ fail the test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use mock_llm::MockServer;
use serde_json::{json, Value};

mod common;

use common::Connection;

const CHAT: &str = "/v1/chat/completions";

fn chat(stream: bool) -> Vec<u8> {
    json!({"model": "gpt-4o", "stream": stream, "stream_options": {"include_usage": stream},
           "messages": [{"role": "user", "content": "abcd".repeat(100)}]})
    .to_string()
    .into_bytes()
}

fn post(connection: &mut Connection, path: &str, fail: &str, body: &[u8]) -> common::Response {
    connection.send("POST", path, &[("x-mock-fail", fail)], body)
}

fn header_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[test]
fn status_sends_a_provider_error_and_the_connection_serves_on() {
    let server = MockServer::start("small", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());

    let limited = post(&mut connection, CHAT, "status=429", &chat(true));
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.header("x-mock-tier"), Some("small"));
    assert_eq!(limited.header("content-type"), Some("application/json"));
    let error = limited.json();
    assert_eq!(error["error"]["type"], "requests");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");

    let overloaded = post(&mut connection, "/v1/messages", "status=529", b"{}");
    assert_eq!(overloaded.status, 529);
    assert_eq!(overloaded.header("retry-after"), None);
    let error = overloaded.json();
    assert_eq!(
        (&error["type"], &error["error"]["type"]),
        (&json!("error"), &json!("overloaded_error"))
    );

    let fine = connection.post(CHAT, &chat(false));
    assert_eq!(fine.status, 200);
    assert_eq!(fine.header("x-mock-conn"), Some("1"), "same connection");
    assert_eq!(server.received().len(), 3, "failed requests are recorded");
    assert!(server.received()[0]
        .headers
        .contains(&("x-mock-fail".to_owned(), "status=429".to_owned())));
}

#[test]
fn delay_holds_the_response_after_recording_the_request() {
    let server = MockServer::start("mid", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());
    let started = Instant::now();
    connection.write_request(
        "POST",
        CHAT,
        &[("x-mock-fail", "delay=600ms")],
        &chat(false),
    );
    while server.received().is_empty() {
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "recorded before the delay ends"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let response = connection.read_response();
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-mock-tier"), Some("mid"));
    assert_eq!(response.json()["choices"][0]["finish_reason"], "stop");
}

#[test]
fn reset_closes_the_connection_without_a_byte() {
    let server = MockServer::start("frontier", "127.0.0.1:0").expect("start");
    for (fail, at_least) in [
        ("reset", Duration::ZERO),
        ("delay=200ms, reset", Duration::from_millis(200)),
    ] {
        let mut connection = Connection::open(server.addr());
        let started = Instant::now();
        connection.write_request("POST", CHAT, &[("x-mock-fail", fail)], &chat(false));
        let bytes = connection.read_until_closed();
        assert!(
            bytes.is_empty(),
            "{fail}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        assert!(started.elapsed() >= at_least, "{fail}");
    }
    assert_eq!(server.received().len(), 2, "reset requests are recorded");
    assert_eq!(
        Connection::open(server.addr())
            .post(CHAT, &chat(false))
            .status,
        200,
        "the server still answers new connections"
    );
}

#[test]
fn broken_stream_sends_the_first_events_then_closes_without_the_last_chunk() {
    let server = MockServer::start("small", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());
    connection.write_request(
        "POST",
        CHAT,
        &[("x-mock-fail", "broken-stream")],
        &chat(true),
    );
    let bytes = String::from_utf8(connection.read_until_closed()).expect("UTF-8");
    let (head, body) = bytes.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(header_value(head, "transfer-encoding"), Some("chunked"));
    assert_eq!(header_value(head, "x-mock-tier"), Some("small"));
    assert!(
        body.contains(r#""role":"assistant""#),
        "the first event arrived: {body}"
    );
    assert!(
        body.contains(r#""content":"[mock "#),
        "a content delta arrived: {body}"
    );
    assert!(
        !body.contains("[DONE]") && !body.contains("usage"),
        "{body}"
    );
    assert!(
        !body.ends_with("0\r\n\r\n"),
        "no terminating chunk: {body:?}"
    );
}

#[test]
fn broken_stream_on_a_json_answer_closes_short_of_its_content_length() {
    let server = MockServer::start("small", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());
    connection.write_request(
        "POST",
        CHAT,
        &[("x-mock-fail", "broken-stream")],
        &chat(false),
    );
    let bytes = connection.read_until_closed();
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let length: usize = header_value(head, "content-length")
        .expect("content-length")
        .parse()
        .expect("a number");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert_eq!(body.len(), length / 2, "half the body, then the close");
    assert!(serde_json::from_str::<Value>(body).is_err());
}

#[test]
fn switches_apply_only_on_the_tiers_named_in_x_mock_fail_tier() {
    let servers: Vec<MockServer> = ["small", "mid", "frontier"]
        .iter()
        .map(|tier| MockServer::start(tier, "127.0.0.1:0").expect("start"))
        .collect();
    let statuses = |headers: &[(&str, &str)]| -> Vec<u16> {
        servers
            .iter()
            .map(|server| {
                Connection::open(server.addr())
                    .send("POST", CHAT, headers, &chat(false))
                    .status
            })
            .collect()
    };
    let fail = ("x-mock-fail", "status=503");
    assert_eq!(
        statuses(&[fail]),
        [503, 503, 503],
        "no tier header: every tier"
    );
    assert_eq!(
        statuses(&[fail, ("x-mock-fail-tier", "mid, frontier")]),
        [200, 503, 503]
    );
    assert_eq!(
        statuses(&[
            ("x-mock-fail-tier", "small"),
            fail,
            ("x-mock-fail-tier", "frontier")
        ]),
        [503, 200, 503],
        "repeated headers add up"
    );
    assert_eq!(
        statuses(&[fail, ("x-mock-fail-tier", "huge")]),
        [200, 200, 200]
    );
    assert!(servers.iter().all(|server| server.received().len() == 4));
}

#[test]
fn an_unknown_switch_is_a_400_naming_it_on_every_tier() {
    for tier in ["small", "mid"] {
        let server = MockServer::start(tier, "127.0.0.1:0").expect("start");
        let response = Connection::open(server.addr()).send(
            "POST",
            CHAT,
            &[
                ("x-mock-fail", "delay=1s, stauts=503"),
                ("x-mock-fail-tier", "mid"),
            ],
            &chat(false),
        );
        assert_eq!(response.status, 400, "{tier}");
        assert_eq!(response.header("x-mock-tier"), Some(tier));
        let message = response.json()["error"]["message"].clone();
        assert!(
            message
                .as_str()
                .is_some_and(|message| message.contains("unknown switch \"stauts=503\"")),
            "{message}"
        );
        assert_eq!(server.received().len(), 1);
    }
}

#[test]
fn answer_switches_reach_the_client_intact() {
    let server = MockServer::start("mid", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());
    let request = json!({"model": "claude-haiku-4-5", "max_tokens": 8, "stream": true,
                         "messages": [{"role": "user", "content": "hi"}]});
    let response = post(
        &mut connection,
        "/v1/messages",
        "truncate, no-usage",
        request.to_string().as_bytes(),
    );
    assert_eq!(response.status, 200);
    let body = response.text();
    assert!(body.contains(r#""stop_reason":"max_tokens""#), "{body}");
    assert!(!body.contains("usage"), "{body}");

    let request = json!({"model": "gpt-4o", "logprobs": true, "response_format": {"type": "json_object"},
                         "messages": [{"role": "user", "content": "hi"}]});
    let response = post(
        &mut connection,
        CHAT,
        "badjson, logprobs=-1.5",
        request.to_string().as_bytes(),
    );
    let choice = &response.json()["choices"][0];
    assert_eq!(choice["message"]["content"], r#"{"answer": "unterminated"#);
    let logprobs: Vec<f64> = choice["logprobs"]["content"]
        .as_array()
        .expect("logprobs")
        .iter()
        .map(|token| token["logprob"].as_f64().expect("logprob"))
        .collect();
    assert_eq!(logprobs.iter().sum::<f64>() / logprobs.len() as f64, -1.5);
}
