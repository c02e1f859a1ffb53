//! Writes the seeds of the `lifecycle` and `exchange` targets (`corpus/lifecycle/`,
//! `corpus/exchange/`): their inputs are scripts in a binary format, so the seeds are written from
//! readable scripts here, each checked to read back as written.
//!
//!     cargo run --manifest-path plugin/fuzz/Cargo.toml --example seeds

use std::fmt::Debug;
use std::path::Path;

use serde_json::json;
use triage_fuzz::input::{InputReader, InputWriter, Script, Text};
use triage_fuzz::stream::{
    DispatchReply, Event, ExchangeScript, RequestStart, Size, StreamScript, Token, UpstreamAnswer,
    CLUSTERS, CODE_DETAILS, CONTENT_TYPES, DECISION_IDS, HEADER_NAMES, HEADER_VALUES, METHODS,
    PATHS, ROUTE_TABLE, SETUPS, STATUSES,
};

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    write_seeds(&corpus.join("lifecycle"), stream_seeds());
    write_seeds(&corpus.join("exchange"), exchange_seeds());
}

fn write_seeds<S: Script + PartialEq + Debug>(dir: &Path, seeds: Vec<(&str, S)>) {
    std::fs::create_dir_all(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    for (name, script) in seeds {
        let mut out = InputWriter::default();
        script.write(&mut out);
        let bytes = out.into_bytes();
        assert_eq!(S::read(&mut InputReader::new(&bytes)), script, "{name}");
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        println!("{} ({} bytes)", path.display(), bytes.len());
    }
}

fn setup(name: &str) -> usize {
    SETUPS
        .iter()
        .position(|have| *have == name)
        .unwrap_or_else(|| panic!("no setup {name}"))
}

fn chat(text: &str, stream: bool) -> Vec<u8> {
    let mut body = json!({"model": "auto", "messages": [{"role": "user", "content": text}]});
    if stream {
        body["stream"] = json!(true);
    }
    body.to_string().into_bytes()
}

fn responses(text: &str) -> Vec<u8> {
    json!({"model": "auto", "input": text})
        .to_string()
        .into_bytes()
}

fn anthropic(text: &str) -> Vec<u8> {
    json!({"model": "auto", "max_tokens": 256, "stream": true,
           "messages": [{"role": "user", "content": text}]})
    .to_string()
    .into_bytes()
}

fn chat_answer(text: &str) -> Vec<u8> {
    json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    })
    .to_string()
    .into_bytes()
}

fn responses_answer(text: &str) -> Vec<u8> {
    json!({
        "status": "completed",
        "output": [{"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": text}]}],
        "usage": {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}
    })
    .to_string()
    .into_bytes()
}

fn chat_stream(words: &[&str]) -> Vec<u8> {
    let mut body = String::new();
    for word in words {
        let event = json!({"choices": [{"index": 0, "delta": {"content": word}}]});
        body.push_str(&format!("data: {event}\n\n"));
    }
    let last = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}});
    body.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
    body.into_bytes()
}

fn anthropic_stream(text: &str) -> Vec<u8> {
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect::<String>()
        .into_bytes()
}

fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    end_of_stream: bool,
) -> RequestStart {
    RequestStart {
        method: Text::of(&METHODS, method),
        path: Text::of(&PATHS, path),
        headers: headers
            .iter()
            .map(|(name, value)| {
                let name = HEADER_NAMES
                    .iter()
                    .position(|have| have == name)
                    .unwrap_or_else(|| panic!("no header {name} on the menu"));
                (name, Text::of(&HEADER_VALUES, value))
            })
            .collect(),
        end_of_stream,
    }
}

fn post(path: &str, headers: &[(&str, &str)]) -> Option<RequestStart> {
    Some(request("POST", path, headers, false))
}

const JSON_HEADERS: [(&str, &str); 3] = [
    ("content-type", "application/json"),
    ("content-length", "123"),
    ("x-request-id", "req-1"),
];

fn body(chunk: Vec<u8>, end_of_stream: bool) -> Event {
    Event::RequestBody {
        chunk,
        size: Size::Buffered,
        end_of_stream,
        read_fails: false,
    }
}

fn response(status: &str, content_type: &str, cluster: &str, dispatch: DispatchReply) -> Event {
    Event::ResponseHeaders {
        status: Text::of(&STATUSES, status),
        content_type: Text::of(&CONTENT_TYPES, content_type),
        cluster: Text::of(&CLUSTERS, cluster),
        code_details: Text::of(&CODE_DETAILS, "via_upstream"),
        end_of_stream: false,
        dispatch,
    }
}

fn answer_chunk(chunk: Vec<u8>, end_of_stream: bool) -> Event {
    Event::ResponseBody {
        chunk,
        size: Size::Buffered,
        end_of_stream,
        dispatch: DispatchReply::Sent,
    }
}

fn answer(status: &str, content_type: &str, body: Vec<u8>) -> UpstreamAnswer {
    UpstreamAnswer {
        status: Text::of(&STATUSES, status),
        content_type: Text::of(&CONTENT_TYPES, content_type),
        body,
    }
}

fn call_answered(answer: Option<UpstreamAnswer>) -> Event {
    Event::CallAnswered {
        token: Token::Latest,
        answer,
        num_headers: Size::Buffered,
        body_size: Size::Buffered,
        dispatch: DispatchReply::Sent,
    }
}

fn script(setup_name: &str, request: Option<RequestStart>, events: Vec<Event>) -> StreamScript {
    StreamScript {
        setup: setup(setup_name),
        open_breakers: 0,
        refuse_rewrite: false,
        decision_id: Text::of(&DECISION_IDS, DECISION_IDS[0]),
        request,
        events,
    }
}

fn halves(bytes: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let mut first = bytes;
    let second = first.split_off(first.len() / 2);
    (first, second)
}

fn stream_seeds() -> Vec<(&'static str, StreamScript)> {
    let water = "Say yes or no: is water wet?";
    let (answer_start, answer_end) = halves(chat_answer("yes"));
    let (long_start, long_end) = halves(chat(&"Summarise this log line. ".repeat(14), false));
    let stream = chat_stream(&["Hello", " there", ", friend"]);
    let (stream_start, stream_end) = halves(stream);
    vec![
        (
            "routed-answer",
            script(
                "checked",
                post("/v1/chat/completions", &JSON_HEADERS),
                vec![
                    body(chat(water, false), true),
                    response("200", "application/json", ROUTE_TABLE, DispatchReply::Sent),
                    answer_chunk(answer_start, false),
                    answer_chunk(answer_end, true),
                    Event::Log,
                ],
            ),
        ),
        (
            "escalated-on-503",
            script(
                "checked",
                post("/v1/chat/completions", &JSON_HEADERS),
                vec![
                    body(chat(water, false), true),
                    response("503", "text/plain", ROUTE_TABLE, DispatchReply::Sent),
                    call_answered(Some(answer("200", "application/json", chat_answer("yes")))),
                    Event::Log,
                ],
            ),
        ),
        (
            "weak-answer-escalates-twice",
            script(
                "checked",
                post("/v1/responses", &JSON_HEADERS),
                vec![
                    body(responses(water), true),
                    response("200", "application/json", ROUTE_TABLE, DispatchReply::Sent),
                    answer_chunk(responses_answer(""), true),
                    call_answered(None),
                    call_answered(Some(answer(
                        "200",
                        "application/json",
                        responses_answer("yes"),
                    ))),
                    Event::Log,
                ],
            ),
        ),
        (
            "stream-released",
            script(
                "checked",
                post("/v1/chat/completions", &JSON_HEADERS),
                vec![
                    body(chat("Say hello.", true), true),
                    response("200", "text/event-stream", ROUTE_TABLE, DispatchReply::Sent),
                    answer_chunk(stream_start, false),
                    answer_chunk(stream_end, true),
                    Event::Log,
                ],
            ),
        ),
        (
            "over-max-rejected",
            script(
                "reject_over_max",
                post("/v1/chat/completions", &JSON_HEADERS),
                vec![
                    body(long_start.clone(), false),
                    body(long_end.clone(), true),
                    Event::ResponseHeaders {
                        status: Text::of(&STATUSES, "413"),
                        content_type: Text::of(&CONTENT_TYPES, "text/plain"),
                        cluster: Text::Absent,
                        code_details: Text::of(&CODE_DETAILS, "local_reply"),
                        end_of_stream: false,
                        dispatch: DispatchReply::Sent,
                    },
                    answer_chunk(b"Payload Too Large".to_vec(), true),
                    Event::Log,
                ],
            ),
        ),
        (
            "over-max-to-default-tier",
            script(
                "default_tier_over_max",
                post("/v1/chat/completions", &JSON_HEADERS),
                vec![
                    body(long_start, false),
                    Event::RequestBody {
                        chunk: long_end,
                        size: Size::Raw(40),
                        end_of_stream: true,
                        read_fails: false,
                    },
                    response("200", "application/json", "tier_mid", DispatchReply::Sent),
                    Event::ResponseBody {
                        chunk: chat_answer("done"),
                        size: Size::Raw(7),
                        end_of_stream: true,
                        dispatch: DispatchReply::Sent,
                    },
                    Event::Log,
                ],
            ),
        ),
        (
            "shadow-spoofed-headers",
            script(
                "shadow",
                post(
                    "/v1/chat/completions",
                    &[
                        ("x-triage-route", "frontier"),
                        ("x-triage-decision-id", "client-spoof"),
                        ("x-triage-override", "frontier"),
                        ("x-caller", "someone"),
                        ("content-length", "123"),
                    ],
                ),
                vec![
                    body(chat(water, false), true),
                    response("200", "application/json", "tier_small", DispatchReply::Sent),
                    answer_chunk(chat_answer("yes"), true),
                    Event::Log,
                ],
            ),
        ),
        (
            "canary-anthropic-trailers",
            StreamScript {
                decision_id: Text::of(&DECISION_IDS, DECISION_IDS[1]),
                ..script(
                    "canary",
                    post("/v1/messages", &JSON_HEADERS),
                    vec![
                        body(anthropic("Name a colour."), false),
                        Event::RequestTrailers,
                        response("200", "text/event-stream", ROUTE_TABLE, DispatchReply::Sent),
                        answer_chunk(anthropic_stream("Blue."), true),
                        Event::Log,
                    ],
                )
            },
        ),
        (
            "not-an-llm-call",
            script(
                "plain",
                Some(request(
                    "GET",
                    "/healthz",
                    &[("x-triage-route", "small")],
                    true,
                )),
                vec![
                    response("200", "text/plain", "elsewhere", DispatchReply::Sent),
                    answer_chunk(b"ok".to_vec(), true),
                    Event::Log,
                ],
            ),
        ),
        (
            "ends-while-buffering",
            script(
                "escalating",
                post("/V1/Chat/Completions/", &JSON_HEADERS),
                vec![
                    body(b"{\"model\": \"auto\", \"mess".to_vec(), false),
                    Event::Log,
                    body(b"ages\": []}".to_vec(), true),
                    Event::Log,
                ],
            ),
        ),
        (
            "breakers-open-call-fails",
            StreamScript {
                open_breakers: 0b001,
                ..script(
                    "escalating",
                    post(
                        "/v1/chat/completions",
                        &[("x-caller", "ops"), ("x-triage-override", "small")],
                    ),
                    vec![
                        body(chat(water, false), true),
                        Event::Wait { ms: 1500 },
                        response(
                            "500",
                            "application/json",
                            "tier_frontier",
                            DispatchReply::Failed,
                        ),
                        answer_chunk(b"{\"error\": \"down\"}".to_vec(), true),
                        Event::Log,
                    ],
                )
            },
        ),
        (
            "stray-reports-and-tokens",
            StreamScript {
                refuse_rewrite: true,
                ..script(
                    "escalating",
                    post(
                        "/v1/chat/completions",
                        &[("x-team", "legal"), ("x-no-escalate", "1")],
                    ),
                    vec![
                        body(chat(water, false), true),
                        Event::Dispatched { token: Some(77) },
                        response(
                            "429",
                            "application/json",
                            ROUTE_TABLE,
                            DispatchReply::Unreported,
                        ),
                        Event::CallAnswered {
                            token: Token::Raw(99),
                            answer: Some(answer("200", "application/json", chat_answer("no"))),
                            num_headers: Size::Raw(0),
                            body_size: Size::Raw(3),
                            dispatch: DispatchReply::Sent,
                        },
                        Event::RewriteFailed,
                        Event::ClockJump { nanos: 0 },
                        Event::ResponseTrailers,
                        Event::Log,
                        Event::Log,
                    ],
                )
            },
        ),
    ]
}

fn exchange(setup_name: &str, path: &str, body: Vec<u8>) -> ExchangeScript {
    ExchangeScript {
        setup: setup(setup_name),
        chunk_bytes: 7,
        path: Text::of(&PATHS, path),
        content_length: true,
        trailers: false,
        body,
        replies: [(); 3].map(|()| Some(answer("200", "application/json", chat_answer("yes")))),
    }
}

fn exchange_seeds() -> Vec<(&'static str, ExchangeScript)> {
    let water = "Say yes or no: is water wet?";
    let stream_answer = answer("200", "text/event-stream", chat_stream(&["Hi", " there"]));
    vec![
        (
            "routed-answer",
            exchange("checked", "/v1/chat/completions", chat(water, false)),
        ),
        (
            "escalated-on-503",
            ExchangeScript {
                replies: [
                    Some(answer("503", "text/plain", b"down".to_vec())),
                    Some(answer("200", "application/json", chat_answer("yes"))),
                    None,
                ],
                ..exchange("escalating", "/v1/chat/completions", chat(water, false))
            },
        ),
        (
            "reset-then-weak-then-answer",
            ExchangeScript {
                replies: [
                    None,
                    Some(answer("200", "application/json", responses_answer(""))),
                    Some(answer("200", "application/json", responses_answer("yes"))),
                ],
                chunk_bytes: 3,
                ..exchange("checked", "/v1/responses", responses(water))
            },
        ),
        (
            "stream",
            ExchangeScript {
                replies: [(); 3].map(|()| Some(stream_answer.clone())),
                chunk_bytes: 1,
                ..exchange("checked", "/v1/chat/completions", chat("Say hi.", true))
            },
        ),
        (
            "anthropic-trailers-canary",
            ExchangeScript {
                trailers: true,
                content_length: false,
                replies: [(); 3].map(|()| {
                    Some(answer(
                        "200",
                        "text/event-stream",
                        anthropic_stream("Blue."),
                    ))
                }),
                ..exchange("canary", "/v1/messages", anthropic("Name a colour."))
            },
        ),
        (
            "over-max-rejected",
            exchange(
                "reject_over_max",
                "/v1/chat/completions",
                chat(&"Summarise this log line. ".repeat(14), false),
            ),
        ),
        (
            "invalid-json-shadowed",
            exchange(
                "shadow",
                "/V1/Chat/Completions/",
                b"{\"model\": \"auto\", ".to_vec(),
            ),
        ),
    ]
}
