use super::*;

const CHAT: &str = "/v1/chat/completions";
const RESPONSES: &str = "/v1/responses";
const MESSAGES: &str = "/v1/messages";
const APIS: [&str; 3] = [CHAT, RESPONSES, MESSAGES];

fn run(path: &str, request: &Value, switches: &str) -> Reply {
    let failure = Failure::parse(switches).unwrap();
    reply(
        "mid",
        "POST",
        path,
        request.to_string().as_bytes(),
        7,
        &failure,
    )
}

/// A request of the API at `path` with 400 characters of user text, `extra` merged in.
fn request(path: &str, stream: bool, extra: Value) -> Value {
    let mut request = match path {
        RESPONSES => json!({"model": "m", "input": "abcd".repeat(100)}),
        _ => json!({"model": "m", "max_tokens": 1000, "messages": [
            {"role": "user", "content": "abcd".repeat(100)}
        ]}),
    };
    request["stream"] = json!(stream);
    if path == CHAT && stream {
        request["stream_options"] = json!({"include_usage": true});
    }
    if let (Some(request), Value::Object(extra)) = (request.as_object_mut(), extra) {
        request.extend(extra);
    }
    request
}

fn body_text(reply: &Reply) -> String {
    let bytes: Vec<u8> = reply.body.frames.iter().flatten().copied().collect();
    String::from_utf8(bytes).unwrap()
}

/// The data of every SSE event but `[DONE]`, with the event name when there is one.
fn events(reply: &Reply) -> Vec<(Option<String>, Value)> {
    body_text(reply)
        .split("\n\n")
        .filter(|block| !block.is_empty() && *block != "data: [DONE]")
        .map(|block| {
            let mut name = None;
            let mut data = Value::Null;
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event: ") {
                    name = Some(value.to_owned());
                } else if let Some(value) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(value).unwrap();
                }
            }
            (name, data)
        })
        .collect()
}

/// What a client sees in an answer, whatever the API and framing.
#[derive(Debug, Default)]
struct Seen {
    text: String,
    stop: String,
    output_tokens: Option<u64>,
    tool: Option<(String, String)>,
    logprobs: Vec<f64>,
}

fn seen(path: &str, reply: &Reply) -> Seen {
    assert_eq!(reply.status, StatusCode::OK, "{}", body_text(reply));
    let mut seen = Seen::default();
    let logprob_values = |entries: &Value| -> Vec<f64> {
        entries
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e["logprob"].as_f64())
                    .collect()
            })
            .unwrap_or_default()
    };
    if reply.content_type == "application/json" {
        let body: Value = serde_json::from_str(&body_text(reply)).unwrap();
        match path {
            CHAT => {
                let choice = &body["choices"][0];
                seen.text = choice["message"]["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                seen.stop = choice["finish_reason"].as_str().unwrap().to_owned();
                seen.output_tokens = body["usage"]["completion_tokens"].as_u64();
                let call = &choice["message"]["tool_calls"][0]["function"];
                seen.tool = call["name"].as_str().map(|name| {
                    (
                        name.to_owned(),
                        call["arguments"].as_str().unwrap().to_owned(),
                    )
                });
                seen.logprobs = logprob_values(&choice["logprobs"]["content"]);
            }
            RESPONSES => {
                let item = &body["output"][0];
                seen.text = item["content"][0]["text"].as_str().unwrap_or("").to_owned();
                seen.stop = body["status"].as_str().unwrap().to_owned();
                seen.output_tokens = body["usage"]["output_tokens"].as_u64();
                if item["type"] == "function_call" {
                    seen.tool = Some((
                        item["name"].as_str().unwrap().to_owned(),
                        item["arguments"].as_str().unwrap().to_owned(),
                    ));
                }
                seen.logprobs = logprob_values(&item["content"][0]["logprobs"]);
            }
            _ => {
                seen.text = body["content"][0]["text"].as_str().unwrap_or("").to_owned();
                seen.stop = body["stop_reason"].as_str().unwrap().to_owned();
                seen.output_tokens = body["usage"]["output_tokens"].as_u64();
                let block = &body["content"][0];
                if block["type"] == "tool_use" {
                    seen.tool = Some((
                        block["name"].as_str().unwrap().to_owned(),
                        block["input"].as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
        return seen;
    }
    let mut arguments: Option<(String, String)> = None;
    for (name, data) in events(reply) {
        match path {
            CHAT => {
                let choice = &data["choices"][0];
                seen.text += choice["delta"]["content"].as_str().unwrap_or("");
                if let Some(stop) = choice["finish_reason"].as_str() {
                    seen.stop = stop.to_owned();
                }
                if let Some(tokens) = data["usage"]["completion_tokens"].as_u64() {
                    seen.output_tokens = Some(tokens);
                }
                let call = &choice["delta"]["tool_calls"][0]["function"];
                if let Some(name) = call["name"].as_str() {
                    arguments = Some((name.to_owned(), String::new()));
                }
                if let (Some((_, so_far)), Some(piece)) =
                    (&mut arguments, call["arguments"].as_str())
                {
                    so_far.push_str(piece);
                }
                seen.logprobs
                    .extend(logprob_values(&choice["logprobs"]["content"]));
            }
            RESPONSES => match name.as_deref().unwrap() {
                "response.output_text.delta" => {
                    seen.text += data["delta"].as_str().unwrap();
                    seen.logprobs.extend(logprob_values(&data["logprobs"]));
                }
                "response.output_item.added" if data["item"]["type"] == "function_call" => {
                    arguments = Some((
                        data["item"]["name"].as_str().unwrap().to_owned(),
                        String::new(),
                    ));
                }
                "response.function_call_arguments.delta" => {
                    if let Some((_, so_far)) = &mut arguments {
                        so_far.push_str(data["delta"].as_str().unwrap());
                    }
                }
                "response.completed" | "response.incomplete" => {
                    let response = &data["response"];
                    seen.stop = response["status"].as_str().unwrap().to_owned();
                    assert_eq!(
                        name.as_deref(),
                        Some(format!("response.{}", seen.stop).as_str())
                    );
                    seen.output_tokens = response["usage"]["output_tokens"].as_u64();
                }
                _ => {}
            },
            _ => match name.as_deref().unwrap() {
                "content_block_start" if data["content_block"]["type"] == "tool_use" => {
                    let block = &data["content_block"];
                    arguments = Some((block["name"].as_str().unwrap().to_owned(), String::new()));
                }
                "content_block_delta" => {
                    seen.text += data["delta"]["text"].as_str().unwrap_or("");
                    if let (Some((_, so_far)), Some(piece)) =
                        (&mut arguments, data["delta"]["partial_json"].as_str())
                    {
                        so_far.push_str(piece);
                    }
                }
                "message_delta" => {
                    seen.stop = data["delta"]["stop_reason"].as_str().unwrap().to_owned();
                    seen.output_tokens = data["usage"]["output_tokens"].as_u64();
                }
                _ => {}
            },
        }
    }
    seen.tool = arguments;
    seen
}

fn stop_words(path: &str) -> [&'static str; 3] {
    match path {
        CHAT => ["stop", "length", "tool_calls"],
        RESPONSES => ["completed", "incomplete", "completed"],
        _ => ["end_turn", "max_tokens", "tool_use"],
    }
}

#[test]
fn no_switch_answers_the_tier_text_with_usage_in_every_api() {
    for path in APIS {
        for stream in [false, true] {
            let seen = seen(path, &run(path, &request(path, stream, json!({})), ""));
            assert!(seen.text.starts_with("[mock mid tier, model m] "), "{path}");
            assert_eq!(seen.stop, stop_words(path)[0], "{path} {stream}");
            assert_eq!(
                seen.output_tokens,
                Some(seen.text.chars().count() as u64 / 4)
            );
            assert!(seen.tool.is_none() && seen.logprobs.is_empty());
        }
    }
}

#[test]
fn text_switches_change_the_text_and_the_stop_reason_in_every_api() {
    let full = Answer::new("mid", &request(CHAT, false, json!({})), 7).text;
    for path in APIS {
        for stream in [false, true] {
            let case = format!("{path} stream={stream}");
            let answer = |switches: &str| {
                seen(
                    path,
                    &run(path, &request(path, stream, json!({})), switches),
                )
            };

            let empty = answer("empty");
            assert_eq!(empty.text, "", "{case}");
            assert_eq!(empty.stop, stop_words(path)[0], "{case}");
            assert_eq!(empty.output_tokens, Some(1), "{case}");

            let truncated = answer("truncate");
            assert_eq!(truncated.stop, stop_words(path)[1], "{case}");
            let tokens = truncated.output_tokens.unwrap();
            assert_eq!(
                tokens,
                full.chars().count() as u64 / 8,
                "{case}: half the tokens"
            );
            assert!(full.starts_with(&truncated.text), "{case}");
            assert_eq!(truncated.text.chars().count() as u64, tokens * 4, "{case}");

            let refusal = answer("refusal");
            assert_eq!(
                (refusal.text.as_str(), refusal.stop.as_str()),
                (fail::REFUSAL, stop_words(path)[0]),
                "{case}"
            );

            let bad_json = answer("badjson");
            assert_eq!(bad_json.text, fail::BAD_JSON, "{case}");
            assert!(serde_json::from_str::<Value>(&bad_json.text).is_err());
        }
    }
}

#[test]
fn truncate_stops_at_the_requested_max_tokens() {
    for (path, field) in [
        (CHAT, "max_completion_tokens"),
        (CHAT, "max_tokens"),
        (RESPONSES, "max_output_tokens"),
        (MESSAGES, "max_tokens"),
    ] {
        for stream in [false, true] {
            let request = request(path, stream, json!({ field: 5 }));
            let seen = seen(path, &run(path, &request, "truncate"));
            assert_eq!(seen.output_tokens, Some(5), "{path} {field}");
            assert_eq!(seen.text.chars().count(), 20);
        }
    }
}

#[test]
fn responses_cut_off_are_incomplete_for_max_output_tokens() {
    let reply = run(RESPONSES, &request(RESPONSES, false, json!({})), "truncate");
    let body: Value = serde_json::from_str(&body_text(&reply)).unwrap();
    assert_eq!(body["status"], "incomplete");
    assert_eq!(
        body["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(body["output"][0]["status"], "incomplete");
    let normal = run(RESPONSES, &request(RESPONSES, false, json!({})), "");
    let body: Value = serde_json::from_str(&body_text(&normal)).unwrap();
    assert_eq!(body["incomplete_details"], Value::Null);
}

#[test]
fn badtool_calls_the_first_tool_with_arguments_that_are_not_json() {
    let tools = [
        (
            CHAT,
            json!([{"type": "function", "function": {"name": "lookup", "parameters": {}}}]),
        ),
        (
            RESPONSES,
            json!([{"type": "function", "name": "lookup", "parameters": {}}]),
        ),
        (
            MESSAGES,
            json!([{"name": "lookup", "input_schema": {"type": "object"}}]),
        ),
    ];
    for (path, tools) in tools {
        for stream in [false, true] {
            let request = request(path, stream, json!({ "tools": tools }));
            let seen = seen(path, &run(path, &request, "badtool"));
            let (name, arguments) = seen.tool.expect("a tool call");
            assert_eq!(
                (name.as_str(), arguments.as_str()),
                ("lookup", fail::BAD_TOOL_ARGUMENTS),
                "{path} {stream}"
            );
            assert!(serde_json::from_str::<Value>(&arguments).is_err());
            assert_eq!(seen.stop, stop_words(path)[2], "{path} {stream}");
            assert_eq!(seen.text, "");
            assert_eq!(seen.output_tokens, Some(5), "23 characters of arguments");
        }
    }
}

#[test]
fn badtool_without_tools_is_a_400_that_says_so() {
    for path in APIS {
        let reply = run(path, &request(path, false, json!({})), "badtool");
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(body_text(&reply).contains("badtool needs a request with tools"));
    }
}

#[test]
fn no_usage_leaves_usage_out_of_every_object_and_event() {
    for path in APIS {
        for stream in [false, true] {
            let with_usage = body_text(&run(path, &request(path, stream, json!({})), ""));
            assert!(with_usage.contains("\"usage\""), "{path} {stream}");
            let reply = run(path, &request(path, stream, json!({})), "no-usage");
            let text = body_text(&reply);
            assert!(!text.contains("usage"), "{path} {stream}: {text}");
            assert!(seen(path, &reply).text.starts_with("[mock mid tier"));
        }
    }
}

#[test]
fn logprobs_come_when_asked_with_the_switched_mean_or_minus_a_tenth() {
    let asks = [
        (CHAT, json!({"logprobs": true, "top_logprobs": 2})),
        (
            RESPONSES,
            json!({"include": ["message.output_text.logprobs"], "top_logprobs": 2}),
        ),
    ];
    for (path, asks) in asks {
        for stream in [false, true] {
            for (switches, mean) in [("", -0.1), ("logprobs=-2.5", -2.5)] {
                let request = request(path, stream, asks.clone());
                let seen = seen(path, &run(path, &request, switches));
                assert_eq!(seen.logprobs.len() as u64, seen.output_tokens.unwrap());
                let average = seen.logprobs.iter().sum::<f64>() / seen.logprobs.len() as f64;
                assert!(
                    (average - mean).abs() < 1e-9,
                    "{path} {stream} {switches}: {average}"
                );
            }
            let unasked = seen(
                path,
                &run(path, &request(path, stream, json!({})), "logprobs=-1"),
            );
            assert!(unasked.logprobs.is_empty(), "{path}: not asked, none sent");
        }
    }
    let chat = run(
        CHAT,
        &request(CHAT, false, json!({"logprobs": true, "top_logprobs": 2})),
        "",
    );
    let body: Value = serde_json::from_str(&body_text(&chat)).unwrap();
    let first = &body["choices"][0]["logprobs"]["content"][0];
    assert_eq!(first["top_logprobs"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["top_logprobs"][0]["token"], first["token"]);
}

#[test]
fn status_answers_the_provider_error_of_the_api() {
    for (path, openai_style) in [
        (CHAT, true),
        (RESPONSES, true),
        (MESSAGES, false),
        ("/other", true),
    ] {
        let reply = run(path, &request(path, true, json!({})), "status=429");
        assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.content_type, "application/json");
        assert_eq!(reply.headers, [("retry-after", "1")]);
        let body: Value = serde_json::from_str(&body_text(&reply)).unwrap();
        let message = if openai_style {
            assert_eq!(body["error"]["code"], "rate_limit_exceeded");
            &body["error"]["message"]
        } else {
            assert_eq!(body["type"], "error");
            assert_eq!(body["error"]["type"], "rate_limit_error");
            assert_eq!(body["request_id"], "req_mock_mid_7");
            &body["error"]["message"]
        };
        assert!(message.as_str().is_some_and(
            |message| message.ends_with("(mock-llm tier mid: x-mock-fail status=429)")
        ));
    }
    let reply = run(MESSAGES, &json!({}), "status=529");
    assert_eq!(reply.status.as_u16(), 529);
    assert!(reply.headers.is_empty());
    let reply = super::reply(
        "mid",
        "POST",
        CHAT,
        b"not json",
        1,
        &Failure::parse("status=500").unwrap(),
    );
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "the status wins over a bad body"
    );
}

#[test]
fn broken_bodies_keep_the_head_and_send_half() {
    let whole = run(CHAT, &request(CHAT, false, json!({})), "");
    let full = body_text(&whole);
    let broken = run(CHAT, &request(CHAT, false, json!({})), "broken-stream");
    assert_eq!(broken.status, StatusCode::OK);
    assert_eq!(broken.body.size_hint().exact(), Some(full.len() as u64));
    assert_eq!(body_text(&broken), full[..full.len() / 2]);
    assert!(broken.body.abort.is_some() && !broken.body.is_end_stream());

    let stream = run(CHAT, &request(CHAT, true, json!({})), "");
    let broken = run(CHAT, &request(CHAT, true, json!({})), "broken-stream");
    assert_eq!(broken.body.size_hint().exact(), None);
    let all = stream.body.frames.len();
    assert!(all > 4);
    assert_eq!(broken.body.frames.len(), all.div_ceil(2));
    assert!(body_text(&stream).starts_with(&body_text(&broken)));
    assert!(!body_text(&broken).contains("[DONE]"));

    assert!(stream.body.abort.is_none());
    assert!(!stream.body.is_end_stream());
}
