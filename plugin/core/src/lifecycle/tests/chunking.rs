//! Any chunking of the same bytes gives the same exchange: what each tier got, what the client got,
//! the record and the logs. The request in every API format, and the small tier's answers the
//! checks were written against (the mock upstream's bodies and streams for each of its switches,
//! sound and weak of every kind the checks know, and failures), each cut in pieces of every size
//! up to 8 bytes and in random cuts, escalated or not, with the stream hold short and long.
//!
//! Host twins (host-tests/tests/module → here):
//! - chunking.rs one_byte_chunks_pause_until_the_end_then_match_one_piece,
//!   nothing_goes_upstream_while_the_body_is_incomplete
//!   → a_request_in_any_chunking_is_held_to_its_end_and_goes_on_as_one_piece
//! - chunking.rs random_chunkings_match_one_piece → the same test's random cuts
//! - observe.rs json_usage_of_each_api_is_priced_and_counted_in_any_chunking,
//!   sse_usage_of_each_api_is_read_with_events_split_at_every_byte,
//!   a_stream_without_usage_counts_unknown_never_zero
//!   → any_chunking_of_the_same_bytes_gives_the_same_exchange (the record, usage and costs
//!   included, is the same in every chunking; the usage is known wherever the answer states it,
//!   and null where it does not, as in the mock's chat stream)

use super::super::exchange::chunks;
use super::*;

/// A body the mock upstream (envoy/mock-llm) sent, as the answer checks' tests keep it
/// (`<format>-<switch>.json` or `.sse`), what the request asks so that its check applies, and the
/// cause when the answer is judged whole.
macro_rules! mock {
    (json $file:literal, $asks:ident, $cause:expr) => {
        Mock {
            file: $file,
            body: include_bytes!(concat!("../escalation/answer/fixtures/", $file)),
            asks: Asks::$asks,
            cause: $cause,
        }
    };
    (sse $file:literal, $asks:ident, $cause:expr) => {
        Mock {
            file: $file,
            body: include_bytes!(concat!("../escalation/stream_watch/fixtures/", $file)),
            asks: Asks::$asks,
            cause: $cause,
        }
    };
}

struct Mock {
    file: &'static str,
    body: &'static [u8],
    asks: Asks,
    cause: Option<&'static str>,
}

impl Mock {
    fn format(&self) -> ApiFormat {
        match self.file.split('-').next() {
            Some("chat") => CHAT,
            Some("responses") => RESPONSES,
            _ => MESSAGES,
        }
    }

    fn streamed(&self) -> bool {
        self.file.ends_with(".sse")
    }
}

/// What the client's request asks of the answer, so that a check applies.
#[derive(Clone, Copy, Debug)]
enum Asks {
    Nothing,
    Json,
    Tools,
}

/// The client's request in `format`, streamed or not, asking `asks`.
fn asking(format: ApiFormat, stream: bool, asks: Asks) -> Client {
    let mut body = simple_body(format, stream);
    let tool = |shape: Value| json!([shape]);
    let parameters = json!({"type": "object", "properties": {"query": {"type": "string"}}});
    match (asks, format) {
        (Asks::Nothing, _) => {}
        (Asks::Json, CHAT) => body["response_format"] = json!({"type": "json_object"}),
        (Asks::Json, RESPONSES) => body["text"] = json!({"format": {"type": "json_object"}}),
        (Asks::Json, MESSAGES) => {
            body["output_config"] = json!({"format": {"type": "json_schema", "schema": {}}})
        }
        (Asks::Tools, CHAT) => {
            body["tools"] = tool(json!({"type": "function",
                "function": {"name": "lookup", "parameters": parameters}}))
        }
        (Asks::Tools, RESPONSES) => {
            body["tools"] = tool(json!({"type": "function", "name": "lookup",
                "parameters": parameters}))
        }
        (Asks::Tools, MESSAGES) => {
            body["tools"] = tool(json!({"name": "lookup", "input_schema": parameters}))
        }
    }
    Client::new(format, body)
}

/// One small-tier answer: the request that gets it, the answer, and the escalation cause when the
/// whole answer is judged (None: it goes out).
struct Case {
    name: String,
    client: Client,
    reply: Reply,
    streamed: bool,
    cause: Option<&'static str>,
}

/// The mock's answers in each format, JSON and streamed, sound and weak of each kind.
fn mock_answers() -> [Mock; 40] {
    [
        mock!(json "chat-healthy.json", Nothing, None),
        mock!(json "chat-empty.json", Nothing, Some("empty")),
        mock!(json "chat-truncate.json", Nothing, Some("truncated")),
        mock!(json "chat-refusal.json", Nothing, Some("refusal")),
        mock!(json "chat-badjson.json", Json, Some("invalid_json")),
        mock!(json "chat-badtool.json", Tools, Some("invalid_tool_args")),
        mock!(json "chat-logprobs.json", Nothing, None),
        mock!(json "chat-logprobs-2.json", Nothing, Some("low_logprob")),
        mock!(json "responses-healthy.json", Nothing, None),
        mock!(json "responses-empty.json", Nothing, Some("empty")),
        mock!(json "responses-truncate.json", Nothing, Some("truncated")),
        mock!(json "responses-refusal.json", Nothing, Some("refusal")),
        mock!(json "responses-badjson.json", Json, Some("invalid_json")),
        mock!(json "responses-badtool.json", Tools, Some("invalid_tool_args")),
        mock!(json "responses-logprobs.json", Nothing, None),
        mock!(json "responses-logprobs-2.json", Nothing, Some("low_logprob")),
        mock!(json "anthropic-healthy.json", Nothing, None),
        mock!(json "anthropic-empty.json", Nothing, Some("empty")),
        mock!(json "anthropic-truncate.json", Nothing, Some("truncated")),
        mock!(json "anthropic-refusal.json", Nothing, Some("refusal")),
        mock!(json "anthropic-badjson.json", Json, Some("invalid_json")),
        mock!(json "anthropic-badtool.json", Tools, Some("invalid_tool_args")),
        mock!(sse "chat-healthy.sse", Nothing, None),
        mock!(sse "chat-empty.sse", Nothing, Some("empty")),
        mock!(sse "chat-truncate.sse", Nothing, Some("truncated")),
        mock!(sse "chat-refusal.sse", Nothing, Some("refusal")),
        mock!(sse "chat-badjson.sse", Json, Some("invalid_json")),
        mock!(sse "chat-badtool.sse", Tools, Some("invalid_tool_args")),
        mock!(sse "chat-logprobs-2.sse", Nothing, Some("low_logprob")),
        mock!(sse "responses-healthy.sse", Nothing, None),
        mock!(sse "responses-empty.sse", Nothing, Some("empty")),
        mock!(sse "responses-truncate.sse", Nothing, Some("truncated")),
        mock!(sse "responses-refusal.sse", Nothing, Some("refusal")),
        mock!(sse "responses-badtool.sse", Tools, Some("invalid_tool_args")),
        mock!(sse "responses-logprobs-2.sse", Nothing, Some("low_logprob")),
        mock!(sse "anthropic-healthy.sse", Nothing, None),
        mock!(sse "anthropic-empty.sse", Nothing, Some("empty")),
        mock!(sse "anthropic-truncate.sse", Nothing, Some("truncated")),
        mock!(sse "anthropic-refusal.sse", Nothing, Some("refusal")),
        mock!(sse "anthropic-badtool.sse", Tools, Some("invalid_tool_args")),
    ]
}

/// Every mock answer, and in each format a failure with a body and a reset.
fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = mock_answers()
        .into_iter()
        .map(|mock| {
            let content_type = if mock.streamed() { EVENT_STREAM } else { JSON };
            Case {
                name: format!("{} asking {:?}", mock.file, mock.asks),
                client: asking(mock.format(), mock.streamed(), mock.asks),
                reply: reply(200, content_type, mock.body),
                streamed: mock.streamed(),
                cause: mock.cause,
            }
        })
        .collect();
    for format in ApiFormat::ALL {
        let failures = [
            (
                reply(503, JSON, "{\"error\": {\"message\": \"overloaded\"}}"),
                "status_5xx",
            ),
            (Reply::Reset, "reset"),
        ];
        for (reply, cause) in failures {
            cases.push(Case {
                name: format!("{format:?} {cause}"),
                client: Client::simple(format),
                reply,
                streamed: false,
                cause: Some(cause),
            });
        }
    }
    cases
}

/// Every check on (logprobs at least -0.5), holding a stream `hold_bytes`.
fn checking(hold_bytes: usize) -> Rc<Config> {
    config(
        json!({"stream_hold_bytes": hold_bytes,
               "checks": {"truncated": true, "empty": true, "invalid_json": true,
                          "invalid_tool_args": true, "min_mean_logprob": -0.5,
                          "refusal_regex": "(?i)^\\W*(I'm sorry|I am sorry|I can(no|')t)\\b"}}),
        json!({}),
    )
}

/// Pieces of every size up to 8 bytes, and `random` random cuts of `len` bytes.
fn every_chunking(len: usize, rng: &mut Rng, random: usize) -> Vec<Vec<usize>> {
    let mut all: Vec<Vec<usize>> = (1..=8).map(|size| vec![size]).collect();
    all.extend((0..random).map(|_| rng.cuts(len, 6)));
    all
}

/// The same exchange: what each tier got, what the client got, the record and the logs.
fn assert_same(chunked: &Outcome, whole: &Outcome, what: &str) {
    assert_eq!(chunked.routed, whole.routed, "{what}: routed");
    assert_eq!(chunked.calls, whole.calls, "{what}: calls");
    assert_eq!(chunked.response, whole.response, "{what}: response");
    assert_eq!(
        chunked.record.as_ref().map(|record| record.to_json()),
        whole.record.as_ref().map(|record| record.to_json()),
        "{what}: record"
    );
    assert_eq!(chunked.logs, whole.logs, "{what}: logs");
}

#[test]
fn any_chunking_of_the_same_bytes_gives_the_same_exchange() {
    let mut rng = Rng(0xc4_0c_4e);
    // A long hold judges a stream whole; a short one releases it at its first content.
    for hold_bytes in [1 << 20, HOLD_BYTES] {
        let config = checking(hold_bytes);
        for case in cases() {
            if hold_bytes == HOLD_BYTES && !case.streamed {
                continue;
            }
            let format = case.client.format;
            let mid = if case.streamed {
                stream_response(format, MID)
            } else {
                good_response(format, MID)
            };
            let upstreams = || {
                by_tier([
                    case.reply.clone(),
                    Reply::Answer(mid.clone()),
                    Reply::Answer(good_response(format, FRONTIER)),
                ])
            };
            let whole = exchange(&config, &case.client, upstreams());
            let record = whole.record.as_ref().unwrap();
            let escalated = record.escalations.first();
            if hold_bytes != HOLD_BYTES {
                assert_eq!(
                    escalated.map(|step| step.cause.as_str()),
                    case.cause,
                    "{}: judged whole",
                    case.name
                );
            }
            let small_body = match &case.reply {
                Reply::Answer(answer) => &answer.body[..],
                _ => &[],
            };
            // The usage is read wherever the answer served states it (mid's always does).
            let states_usage = |body: &[u8]| body.windows(7).any(|bytes| bytes == b"\"usage\"");
            assert_eq!(
                record.usage.is_some(),
                escalated.is_some() || states_usage(small_body),
                "{}: usage",
                case.name
            );
            let len = small_body.len().max(case.client.body.len());
            for sizes in every_chunking(len, &mut rng, 8) {
                let what = format!("{} (hold {hold_bytes}) in {sizes:?}", case.name);
                let chunked = exchange_with(&config, &case.client, upstreams(), &chunked(&sizes));
                assert_same(&chunked, &whole, &what);
            }
        }
    }
}

/// Request bodies of each kind: simple and hard, long and not ASCII, and not JSON at all.
fn bodies() -> Vec<Client> {
    let unicode = "héllo wörld 你好 ".repeat(40);
    vec![
        Client::simple(CHAT),
        Client::chat(json!({"messages": [{"role": "user", "content": HARD}]})),
        Client::new(
            MESSAGES,
            json!({"model": "auto", "max_tokens": 99, "messages": [{"role": "user", "content": unicode}]}),
        ),
        Client::simple(RESPONSES),
        Client::raw(CHAT, "{truncated"),
    ]
}

/// Nothing goes upstream before the request's end: every callback before it holds, and what the
/// tier gets is what one piece gives.
#[test]
fn a_request_in_any_chunking_is_held_to_its_end_and_goes_on_as_one_piece() {
    let config = plain_config(json!({}));
    let mut rng = Rng(0x5eed);
    for client in bodies() {
        let whole = exchange(&config, &client, small_then(client.format, ok_json("{}")));
        let mut chunkings = vec![vec![1]];
        chunkings.extend((0..25).map(|_| rng.cuts(client.body.len() * 2 / 3, 8)));
        for sizes in chunkings {
            let what = format!("{} in {sizes:?}", String::from_utf8_lossy(&client.body));
            let chunked = exchange_with(
                &config,
                &client,
                small_then(client.format, ok_json("{}")),
                &chunked(&sizes),
            );
            assert_held_until_the_last(&chunked.request_next, "continue", &what);
            let fed = chunks(&client.body, &sizes).len();
            assert_eq!(chunked.request_next.len(), 1 + fed, "{what}");
            assert_same(&chunked, &whole, &what);
        }
    }
}
