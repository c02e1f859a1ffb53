//! The mock over real loopback sockets, spoken to by a tiny HTTP/1.1 client (and one raw h2c exchange).

// clippy.toml allows these in #[test] fns only; the client helpers in common/ fail the test the same way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mock_llm::MockServer;
use serde_json::{json, Value};

mod common;

use common::Connection;

/// `(event name, data)` per SSE event.
fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    assert!(
        body.ends_with("\n\n"),
        "SSE body must end with a blank line"
    );
    body.trim_end_matches("\n\n")
        .split("\n\n")
        .map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = Some(value.to_owned());
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            (name, data.expect("every event has data"))
        })
        .collect()
}

fn parse(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|error| panic!("{error}: {data}"))
}

/// 400 characters of user text: 100 prompt tokens.
fn user_text() -> String {
    "abcd".repeat(100)
}

fn quarter_of_chars(text: &str) -> u64 {
    text.chars().count() as u64 / 4
}

fn assert_answer_names(text: &str, tier: &str, model: &str) {
    let prefix = format!("[mock {tier} tier, model {model}] ");
    assert!(text.starts_with(&prefix), "{text:?} lacks {prefix:?}");
    assert!(text.matches(". ").count() >= 2, "a few sentences: {text:?}");
}

#[test]
fn openai_chat_json_echoes_model_and_counts_usage() {
    let server = MockServer::start("small", "127.0.0.1:0").expect("start");
    assert_ne!(server.addr().port(), 0);
    assert_eq!(server.tier(), "small");
    let request = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "x".repeat(40)},
        {"role": "user", "content": [{"type": "text", "text": user_text()}]},
    ]});
    let response = Connection::open(server.addr())
        .post("/v1/chat/completions", request.to_string().as_bytes());

    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("x-mock-tier"), Some("small"));
    assert_eq!(response.header("x-mock-conn"), Some("1"));
    let body = response.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert!(body["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("chatcmpl-")));
    assert!(body["created"]
        .as_u64()
        .is_some_and(|created| created > 1_700_000_000));
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    let text = choice["message"]["content"].as_str().expect("content");
    assert_answer_names(text, "small", "gpt-4o-mini");
    assert_eq!(
        body["usage"],
        json!({
            "prompt_tokens": 110,
            "completion_tokens": quarter_of_chars(text),
            "total_tokens": 110 + quarter_of_chars(text),
        })
    );
}

#[test]
fn openai_chat_stream_sends_chunks_usage_and_done() {
    let server = MockServer::start("mid", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());
    let request = json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
                         "messages": [{"role": "user", "content": user_text()}]});
    let response = connection.post("/v1/chat/completions", request.to_string().as_bytes());

    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("x-mock-tier"), Some("mid"));
    assert!(response.chunked, "SSE is streamed, not sent with a length");
    let events = sse_events(response.text());
    assert!(
        events.iter().all(|(name, _)| name.is_none()),
        "chat chunks are data-only"
    );
    assert_eq!(events.last().map(|(_, data)| data.as_str()), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, data)| parse(data))
        .collect();
    assert!(chunks
        .iter()
        .all(|chunk| chunk["object"] == "chat.completion.chunk" && chunk["model"] == "gpt-4o"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_answer_names(&text, "mid", "gpt-4o");
    assert!(chunks.len() > 5, "text arrives in several deltas");
    let usage_chunk = &chunks[chunks.len() - 1];
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 100);
    assert_eq!(
        usage_chunk["usage"]["completion_tokens"],
        quarter_of_chars(&text)
    );
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );

    let without_usage = json!({"model": "gpt-4o", "stream": true, "messages": []});
    let response = connection.post("/v1/chat/completions", without_usage.to_string().as_bytes());
    let events = sse_events(response.text());
    assert!(events.iter().all(|(_, data)| !data.contains("\"usage\"")));
    assert_eq!(events.last().map(|(_, data)| data.as_str()), Some("[DONE]"));
}

#[test]
fn openai_responses_json_and_stream() {
    let server = MockServer::start("frontier", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());
    let request = json!({"model": "o3", "instructions": "x".repeat(20), "input": user_text()});
    let body = connection
        .post("/v1/responses", request.to_string().as_bytes())
        .json();
    assert_eq!(body["object"], "response");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "o3");
    let message = &body["output"][0];
    assert_eq!(
        (&message["type"], &message["role"]),
        (&json!("message"), &json!("assistant"))
    );
    assert_eq!(message["content"][0]["type"], "output_text");
    let text = message["content"][0]["text"]
        .as_str()
        .expect("text")
        .to_owned();
    assert_answer_names(&text, "frontier", "o3");
    let output_tokens = quarter_of_chars(&text);
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 105, "output_tokens": output_tokens, "total_tokens": 105 + output_tokens})
    );

    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    let response = connection.post("/v1/responses?trace=1", streaming.to_string().as_bytes());
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    let events: Vec<(String, Value)> = sse_events(response.text())
        .into_iter()
        .map(|(name, data)| (name.expect("Responses events are named"), parse(&data)))
        .collect();
    for (index, (name, data)) in events.iter().enumerate() {
        assert_eq!(&data["type"], name.as_str());
        assert_eq!(data["sequence_number"], index);
    }
    assert_eq!(events[0].0, "response.created");
    assert_eq!(events[0].1["response"]["status"], "in_progress");
    let deltas: String = events
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, data)| data["delta"].as_str().expect("delta"))
        .collect();
    assert_eq!(deltas, text);
    let (last_name, completed) = events.last().expect("events");
    assert_eq!(last_name, "response.completed");
    assert_eq!(completed["response"]["model"], "o3");
    assert_eq!(completed["response"]["usage"]["input_tokens"], 105);
    assert_eq!(
        completed["response"]["usage"]["output_tokens"],
        output_tokens
    );
    assert_eq!(
        completed["response"]["output"][0]["content"][0]["text"],
        text.as_str()
    );
}

#[test]
fn anthropic_messages_json_and_stream() {
    let server = MockServer::start("small", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());
    let request = json!({"model": "claude-haiku-4-5", "max_tokens": 256, "system": "x".repeat(8),
                         "messages": [{"role": "user", "content": user_text()}]});
    let response = connection.post("/v1/messages", request.to_string().as_bytes());
    assert_eq!(response.header("x-mock-tier"), Some("small"));
    let body = response.json();
    assert_eq!(
        (&body["type"], &body["role"]),
        (&json!("message"), &json!("assistant"))
    );
    assert_eq!(body["model"], "claude-haiku-4-5");
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["content"][0]["type"], "text");
    let text = body["content"][0]["text"]
        .as_str()
        .expect("text")
        .to_owned();
    assert_answer_names(&text, "small", "claude-haiku-4-5");
    assert_eq!(
        body["usage"],
        json!({"input_tokens": 102, "output_tokens": quarter_of_chars(&text)})
    );

    let mut streaming = request.clone();
    streaming["stream"] = json!(true);
    let response = connection.post("/v1/messages", streaming.to_string().as_bytes());
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    let events: Vec<(String, Value)> = sse_events(response.text())
        .into_iter()
        .map(|(name, data)| (name.expect("Anthropic events are named"), parse(&data)))
        .collect();
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    let delta_count = names
        .iter()
        .filter(|name| **name == "content_block_delta")
        .count();
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", delta_count));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    assert!(delta_count > 1);
    assert!(events
        .iter()
        .all(|(name, data)| data["type"] == name.as_str()));
    let start = &events[0].1["message"];
    assert_eq!(start["model"], "claude-haiku-4-5");
    assert_eq!(start["usage"]["input_tokens"], 102);
    let streamed: String = events
        .iter()
        .filter_map(|(_, data)| data["delta"]["text"].as_str())
        .collect();
    assert_eq!(streamed, text);
    let message_delta = &events[events.len() - 2].1;
    assert_eq!(message_delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(
        message_delta["usage"]["output_tokens"],
        quarter_of_chars(&text)
    );
}

#[test]
fn missing_model_is_answered_as_unknown() {
    let server = MockServer::start("mid", "127.0.0.1:0").expect("start");
    let response = Connection::open(server.addr()).post("/v1/messages", br#"{"messages":[]}"#);
    let body = response.json();
    assert_eq!(body["model"], "unknown");
    assert_answer_names(
        body["content"][0]["text"].as_str().expect("text"),
        "mid",
        "unknown",
    );
    assert_eq!(body["usage"]["input_tokens"], 1);
}

#[test]
fn keep_alive_requests_share_a_connection_id_and_keep_their_exact_bodies() {
    let server = MockServer::start("small", "127.0.0.1:0").expect("start");
    let first_body =
        br#"{"model":"auto","stream":true,"messages":[{"role":"user","content":"one"}]}"#;
    let second_body =
        br#"{ "model" : "auto",  "messages":[{"role":"user","content":"two \u00e9"}] }"#;
    let mut connection = Connection::open(server.addr());
    let first = connection.post("/v1/chat/completions", first_body);
    let second = connection.post("/v1/chat/completions", second_body);
    let other = Connection::open(server.addr()).post("/v1/chat/completions", b"{}");

    assert_eq!((first.status, second.status), (200, 200));
    assert_eq!(first.header("x-mock-conn"), Some("1"));
    assert_eq!(second.header("x-mock-conn"), Some("1"));
    assert_eq!(other.header("x-mock-conn"), Some("2"));
    let received = server.received();
    let seen: Vec<(u64, &[u8])> = received
        .iter()
        .map(|request| (request.conn_id, request.body.as_slice()))
        .collect();
    assert_eq!(
        seen,
        vec![(1, &first_body[..]), (1, &second_body[..]), (2, &b"{}"[..])]
    );
}

#[test]
fn received_keeps_method_path_query_headers_and_bytes() {
    let server = MockServer::start("mid", "127.0.0.1:0").expect("start");
    let body: &[u8] = b"\x00\xff not json \r\n\r\n";
    let response = Connection::open(server.addr()).send(
        "PUT",
        "/admin/thing?x=1&y=two",
        &[
            ("X-Team", "Legal"),
            ("X-Triage-Route", "mid"),
            ("X-Team", "second"),
        ],
        body,
    );
    assert_eq!(response.status, 200);

    let received = server.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "PUT");
    assert_eq!(request.path, "/admin/thing?x=1&y=two");
    assert_eq!(request.body, body);
    let names: Vec<&str> = request
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "host",
            "x-team",
            "x-team",
            "x-triage-route",
            "content-length"
        ]
    );
    assert_eq!(
        request.headers[1],
        ("x-team".to_owned(), "Legal".to_owned())
    );
    assert_eq!(
        request.headers[2],
        ("x-team".to_owned(), "second".to_owned())
    );
}

#[test]
fn invalid_json_on_an_llm_path_is_a_400_openai_error() {
    let server = MockServer::start("frontier", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());
    for path in ["/v1/chat/completions", "/v1/responses", "/v1/messages"] {
        let response = connection.post(path, b"{\"model\": ");
        assert_eq!(response.status, 400, "{path}");
        assert_eq!(response.header("x-mock-tier"), Some("frontier"));
        let body = response.json();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("JSON")));
    }
    assert_eq!(connection.post("/v1/messages", b"").status, 400);
    assert_eq!(
        server.received().len(),
        4,
        "refused requests are recorded too"
    );
}

#[test]
fn other_paths_and_methods_echo_what_arrived() {
    let server = MockServer::start("small", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());
    let response = connection.post("/healthz?deep=1", b"not json at all");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-mock-tier"), Some("small"));
    assert_eq!(
        response.json(),
        json!({"tier": "small", "method": "POST", "path": "/healthz?deep=1", "body_bytes": 15})
    );
    let response = connection.send("GET", "/v1/chat/completions", &[], b"");
    assert_eq!(
        response.json(),
        json!({"tier": "small", "method": "GET", "path": "/v1/chat/completions", "body_bytes": 0})
    );
}

#[test]
fn drop_stops_listening_and_closes_connections() {
    let server = MockServer::start("small", "127.0.0.1:0").expect("start");
    let addr = server.addr();
    assert!(
        MockServer::start("again", &addr.to_string()).is_err(),
        "port is taken"
    );
    let mut connection = Connection::open(addr);
    assert_eq!(connection.post("/anything", b"").status, 200);
    drop(server);
    assert!(connection.is_closed());
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn tier_that_cannot_be_a_header_value_is_refused() {
    assert!(MockServer::start("bad\ntier", "127.0.0.1:0").is_err());
}

/// HTTP/2 with prior knowledge (h2c), as Envoy speaks it to an upstream with http2_protocol_options.
#[test]
fn serves_h2c_with_prior_knowledge() {
    use std::io::{Read, Write};

    const DATA: u8 = 0x0;
    const HEADERS: u8 = 0x1;
    const SETTINGS: u8 = 0x4;
    const END_STREAM: u8 = 0x1;
    const END_HEADERS: u8 = 0x4;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let length = (payload.len() as u32).to_be_bytes();
        let mut frame = vec![length[1], length[2], length[3], kind, flags];
        frame.extend_from_slice(&stream.to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }
    /// HPACK "literal header field without indexing, new name", no Huffman coding.
    fn literal(name: &str, value: &str) -> Vec<u8> {
        let mut field = vec![0x00, name.len() as u8];
        field.extend_from_slice(name.as_bytes());
        field.push(value.len() as u8);
        field.extend_from_slice(value.as_bytes());
        field
    }

    let server = MockServer::start("mid", "127.0.0.1:0").expect("start");
    let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    let header_block: Vec<u8> = [
        literal(":method", "POST"),
        literal(":scheme", "http"),
        literal(":path", "/v1/chat/completions"),
        literal(":authority", "mock"),
        literal("content-type", "application/json"),
    ]
    .concat();
    let mut stream = std::net::TcpStream::connect(server.addr()).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out.extend(frame(HEADERS, END_HEADERS, 1, &header_block));
    out.extend(frame(DATA, END_STREAM, 1, body));
    stream.write_all(&out).expect("write");

    let mut response_body = Vec::new();
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).expect("frame header");
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).expect("frame payload");
        if kind == DATA && stream_id == 1 {
            response_body.extend_from_slice(&payload);
            if flags & END_STREAM != 0 {
                break;
            }
        }
    }
    let response: Value = serde_json::from_slice(&response_body).expect("JSON");
    assert_eq!(response["model"], "gpt-4o");
    assert_answer_names(
        response["choices"][0]["message"]["content"]
            .as_str()
            .expect("content"),
        "mid",
        "gpt-4o",
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, body);
    assert_eq!(received[0].path, "/v1/chat/completions");
    assert!(received[0]
        .headers
        .contains(&("content-type".to_owned(), "application/json".to_owned())));
}

#[test]
fn a_counting_server_counts_requests_and_keeps_none() {
    let server = MockServer::start_counting("small", "127.0.0.1:0").expect("start");
    let mut connection = Connection::open(server.addr());
    let request = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..3 {
        let response = connection.post("/v1/chat/completions", request.to_string().as_bytes());
        assert_eq!(response.status, 200);
    }
    assert_eq!(server.received_count(), 3);
    assert!(server.received().is_empty(), "no bodies kept");
}
