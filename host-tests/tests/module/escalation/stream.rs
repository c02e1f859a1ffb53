//! Streamed answers: the start of a cheaper tier's event stream is held until `stream_hold_bytes`
//! arrived and it showed content; before that, an error event moves the request at once and a
//! stream that ends is judged whole. Once released, a stream is the client's, unchanged.

use super::*;
use triage_core::{StreamVerdict, StreamWatch};

fn sse(events: &[(Option<&str>, Value)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, data) in events {
        if let Some(name) = name {
            out.push_str(&format!("event: {name}\n"));
        }
        out.push_str(&format!("data: {data}\n\n"));
    }
    out.into_bytes()
}

/// A chat stream of `tier`: the role, `pieces` of text, then (when `finish` is given) the finish
/// reason, the usage chunk and `[DONE]`.
fn chat_stream(tier: usize, pieces: &[&str], finish: Option<&str>) -> Vec<u8> {
    let chunk = |delta: Value, finish: Option<&str>| {
        (
            None,
            json!({"id": "c1", "object": "chat.completion.chunk", "model": TIERS[tier].model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
        )
    };
    let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for piece in pieces {
        events.push(chunk(json!({"content": piece}), None));
    }
    let Some(finish) = finish else {
        return sse(&events);
    };
    events.push(chunk(json!({}), Some(finish)));
    let usage = TIERS[tier].usage;
    events.push((
        None,
        json!({"id": "c1", "object": "chat.completion.chunk", "choices": [],
               "usage": {"prompt_tokens": usage.prompt_tokens,
                         "completion_tokens": usage.completion_tokens}}),
    ));
    let mut out = sse(&events);
    out.extend(b"data: [DONE]\n\n");
    out
}

/// An Anthropic stream of `tier` saying `pieces`.
fn messages_stream(tier: usize, pieces: &[&str]) -> Vec<u8> {
    let usage = TIERS[tier].usage;
    let mut events = vec![
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                   "role": "assistant", "content": [], "model": TIERS[tier].anthropic_model,
                   "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": 1}}}),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for piece in pieces {
        events.push((
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "text_delta", "text": piece}}),
        ));
    }
    events.extend([
        (
            Some("content_block_stop"),
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            Some("message_delta"),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                   "usage": {"output_tokens": usage.completion_tokens}}),
        ),
        (Some("message_stop"), json!({"type": "message_stop"})),
    ]);
    sse(&events)
}

/// A Responses stream of `tier` saying `pieces`.
fn responses_stream(tier: usize, pieces: &[&str]) -> Vec<u8> {
    let usage = TIERS[tier].usage;
    let mut events = vec![(
        Some("response.created"),
        json!({"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}}),
    )];
    for piece in pieces {
        events.push((
            Some("response.output_text.delta"),
            json!({"type": "response.output_text.delta", "output_index": 0, "content_index": 0,
                   "delta": piece}),
        ));
    }
    events.push((
        Some("response.completed"),
        json!({"type": "response.completed", "response": {"id": "resp_1", "status": "completed",
               "usage": {"input_tokens": usage.prompt_tokens,
                         "output_tokens": usage.completion_tokens}}}),
    ));
    sse(&events)
}

const LONG: [&str; 6] = [
    "The review ",
    "is clearly ",
    "positive: the ",
    "customer says ",
    "they loved it, ",
    "so: positive.",
];

fn sound_stream(path: &str, tier: usize) -> Vec<u8> {
    match path {
        CHAT => chat_stream(tier, &LONG, Some("stop")),
        RESPONSES => responses_stream(tier, &LONG),
        _ => messages_stream(tier, &LONG),
    }
}

fn streaming(path: &'static str) -> Client {
    Client::new(path, simple_body(path, true))
}

/// Where the native watch releases the stream fed in `chunks` (None: it never does before the end).
fn native_release(config: &str, client: &Client, chunks: &[&[u8]]) -> Option<usize> {
    let config = Config::from_json(config.as_bytes()).unwrap();
    let policy = config.escalation().unwrap();
    let head = triage_core::RequestHead {
        format: client.format(),
        path: client.path,
        headers: &[],
        identity: triage_core::Identity::ANONYMOUS,
    };
    let expect = triage_core::decide(&config, &head, client.body.as_bytes()).expect;
    let mut watch = StreamWatch::new(
        client.format(),
        policy.stream_hold_bytes,
        expect,
        policy.checks.clone(),
    );
    let last = chunks.len() - 1;
    chunks.iter().enumerate().position(|(index, chunk)| {
        let verdict = match watch.feed(chunk) {
            StreamVerdict::Hold if index == last => watch.finish(),
            verdict => verdict,
        };
        verdict == StreamVerdict::Release
    })
}

#[test]
fn a_sound_stream_is_held_until_the_hold_bytes_then_passes_in_order_unchanged() {
    let config = default_config();
    let mut rng = Rng(0x57_4ea);
    for path in [CHAT, RESPONSES, MESSAGES] {
        let client = streaming(path);
        assert_goes_small(&client, &config);
        let body = sound_stream(path, SMALL);
        assert!(body.len() > 3 * HOLD_BYTES);
        let mut host = start(&config);
        let mut chunkings = vec![vec![], vec![1; body.len()], vec![HOLD_BYTES; 50]];
        for _ in 0..12 {
            chunkings.push((0..10).map(|_| rng.below(body.len() / 4 + 2)).collect());
        }
        for chunk_sizes in chunkings {
            let what = format!("{path} {chunk_sizes:?}");
            let chunks = split(&body, &chunk_sizes);
            let release = native_release(&config, &client, &chunks).expect("released");
            let mut stream = host.request().unwrap();
            client.send(&mut stream);
            let headers = [(":status", "200"), ("content-type", EVENT_STREAM)];
            let action = stream.send_response_headers(&headers, false).unwrap();
            assert_eq!(action, Action::Pause, "{what}");
            let last = chunks.len() - 1;
            let mut sent = 0;
            for (index, chunk) in chunks.iter().enumerate() {
                let action = stream.send_response_body(chunk, index == last).unwrap();
                sent += chunk.len();
                if index < release {
                    assert_eq!(action, Action::Pause, "{what}: chunk {index} held");
                    assert_eq!(stream.downstream_headers(), None, "{what}");
                } else {
                    assert_eq!(action, Action::Continue, "{what}: chunk {index} passes");
                    assert_eq!(
                        stream.downstream_body(),
                        &body[..sent],
                        "{what}: everything so far, in order"
                    );
                }
            }
            assert!(
                chunks[..=release].iter().map(|c| c.len()).sum::<usize>() >= HOLD_BYTES
                    || release == last,
                "{what}: released at {release}"
            );
            assert_eq!(stream.downstream_body(), body, "{what}");
            assert!(stream.downstream_complete());
            assert_eq!(stream.downstream_header("content-type"), Some(EVENT_STREAM));
            let record = record(stream.host());
            assert!(record.escalations.is_empty(), "{what}");
            assert_eq!(record.usage, Some(TIERS[SMALL].usage), "{what}");
        }
        assert!(host.http_calls().is_empty(), "{path}");
        assert_no_warnings(&host);
    }
}

#[test]
fn a_stream_shorter_than_the_hold_is_judged_at_its_end_and_passes_when_sound() {
    let config = default_config();
    let client = streaming(CHAT);
    let body = chat_stream(SMALL, &["ok"], Some("stop"));
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    let actions = respond(&mut stream, 200, EVENT_STREAM, &body, &[10, 10]);
    let (last, held) = actions.split_last().unwrap();
    assert_eq!(*last, Action::Continue);
    assert!(held.iter().all(|a| *a == Action::Pause), "{actions:?}");
    assert_eq!(stream.downstream_body(), body);
    drop(stream);
    assert!(host.http_calls().is_empty());
}

/// Sends the small tier's stream in `chunk_sizes` and expects the call to start exactly at chunk
/// `moves_at` (then the rest keeps being held).
fn stream_until_moved(
    stream: &mut Stream,
    body: &[u8],
    chunk_sizes: &[usize],
    moves_at: Option<usize>,
) {
    let headers = [(":status", "200"), ("content-type", EVENT_STREAM)];
    assert_eq!(
        stream.send_response_headers(&headers, false).unwrap(),
        Action::Pause
    );
    let chunks = split(body, chunk_sizes);
    let last = chunks.len() - 1;
    let moves_at = moves_at.unwrap_or(last);
    for (index, chunk) in chunks.into_iter().enumerate() {
        let action = stream.send_response_body(chunk, index == last).unwrap();
        assert_eq!(action, Action::Pause, "chunk {index}");
        let calls = stream.pending_http_calls().len();
        assert_eq!(calls, usize::from(index >= moves_at), "chunk {index}");
    }
    assert_eq!(stream.downstream_headers(), None);
}

#[test]
fn an_empty_stream_moves_at_its_end_and_mids_stream_is_the_answer() {
    let config = default_config();
    let client = streaming(CHAT);
    let decision = assert_goes_small(&client, &config);
    let empty = chat_stream(SMALL, &[], Some("stop"));
    assert!(
        empty.len() > HOLD_BYTES,
        "past the hold, still nothing said"
    );
    let mut rng = Rng(0xe3_97);
    for _ in 0..8 {
        let chunk_sizes: Vec<usize> = (0..5).map(|_| rng.below(empty.len() / 3 + 2)).collect();
        let mut host = start(&config);
        let mut stream = host.request().unwrap();
        client.send(&mut stream);
        let first_upstream = stream.upstream_headers().unwrap().clone();
        stream_until_moved(&mut stream, &empty, &chunk_sizes, None);
        let call = the_call(&stream);
        assert_call_to(&call, &client, &first_upstream, SMALL, MID);
        assert_eq!(
            serde_json::from_slice::<Value>(&call.body).unwrap()["stream"],
            json!(true)
        );
        let mid = HttpResponse::new(
            200,
            &[
                ("content-type", EVENT_STREAM),
                ("cache-control", "no-cache"),
            ],
            &chat_stream(MID, &LONG, Some("stop")),
        );
        stream.answer_http_call(call.token, mid.clone()).unwrap();
        assert_answered_with(&stream, &decision, &mid, SMALL, MID, "empty");
        let record = record(stream.host());
        assert_eq!(
            record.escalations,
            [step(
                SMALL,
                MID,
                "empty",
                Some(200),
                Some(TIERS[SMALL].usage)
            )]
        );
        assert_eq!(
            record.usage,
            Some(TIERS[MID].usage),
            "read from mid's events"
        );
        drop(stream);
        assert_escalation_counters(&host, &[(SMALL, MID, "empty", 1)]);
        assert_no_warnings(&host);
    }
}

/// The small tier's stream starts, then reports an error, before the hold ends.
fn erroring_stream(path: &str) -> Vec<u8> {
    let mut body = match path {
        CHAT => chat_stream(SMALL, &[], None),
        RESPONSES => sse(&[(
            Some("response.created"),
            json!({"type": "response.created", "response": {"id": "r", "status": "in_progress"}}),
        )]),
        _ => sse(&[(
            Some("message_start"),
            json!({"type": "message_start", "message": {"id": "m", "type": "message",
                   "role": "assistant", "content": []}}),
        )]),
    };
    body.extend(match path {
        CHAT => sse(&[(None, json!({"error": {"message": "overloaded", "type": "server_error"}}))]),
        RESPONSES => sse(&[(
            Some("error"),
            json!({"type": "error", "code": "server_error", "message": "overloaded"}),
        )]),
        _ => sse(&[(
            Some("error"),
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        )]),
    });
    body
}

#[test]
fn an_error_event_in_the_held_start_moves_at_once() {
    let config = default_config();
    for path in [CHAT, RESPONSES, MESSAGES] {
        let client = streaming(path);
        let decision = assert_goes_small(&client, &config);
        let start_of_stream = erroring_stream(path);
        let rest = b"data: {\"late\": true}\n\n".repeat(3);
        let mut host = start(&config);
        let mut stream = host.request().unwrap();
        client.send(&mut stream);
        let first_upstream = stream.upstream_headers().unwrap().clone();
        let headers = [(":status", "200"), ("content-type", EVENT_STREAM)];
        assert_eq!(
            stream.send_response_headers(&headers, false).unwrap(),
            Action::Pause
        );
        // The error's event is cut in two: the call starts with the piece that completes it.
        let cut = start_of_stream.len() - 5;
        assert_eq!(
            stream
                .send_response_body(&start_of_stream[..cut], false)
                .unwrap(),
            Action::Pause
        );
        assert!(stream.pending_http_calls().is_empty(), "{path}");
        assert_eq!(
            stream
                .send_response_body(&start_of_stream[cut..], false)
                .unwrap(),
            Action::Pause
        );
        let call = the_call(&stream);
        assert_call_to(&call, &client, &first_upstream, SMALL, MID);
        // The rest of the small stream keeps coming while the call is in flight: held.
        assert_eq!(
            stream.send_response_body(&rest, false).unwrap(),
            Action::Pause
        );
        let mid = HttpResponse::new(
            200,
            &[("content-type", EVENT_STREAM)],
            &sound_stream(path, MID),
        );
        stream.answer_http_call(call.token, mid.clone()).unwrap();
        assert_answered_with(&stream, &decision, &mid, SMALL, MID, "stream_error");
        assert!(stream.send_response_body(b"", true).is_err());
        let record = record(stream.host());
        assert_eq!(record.escalations.len(), 1, "{path}");
        assert_eq!(record.escalations[0].cause, "stream_error");
        assert_eq!(record.usage, Some(TIERS[MID].usage), "{path}");
        drop(stream);
        assert_no_warnings(&host);
    }
}

#[test]
fn a_stream_cut_off_before_its_end_moves_at_its_end() {
    let config = config(json!({"stream_hold_bytes": 4096}), json!({}));
    let client = streaming(CHAT);
    let cut_off = chat_stream(SMALL, &LONG, None);
    assert!(cut_off.len() > 20 && cut_off.len() < 4096);
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    stream_until_moved(&mut stream, &cut_off, &[20], None);
    let call = the_call(&stream);
    stream
        .answer_http_call(call.token, good_response(CHAT, MID))
        .unwrap();
    assert_eq!(record(stream.host()).escalations[0].cause, "stream_error");
}

#[test]
fn once_released_a_stream_is_never_switched() {
    let config = default_config();
    let client = streaming(CHAT);
    let mut body = chat_stream(SMALL, &LONG, None);
    let released = body.len();
    assert!(released > HOLD_BYTES);
    body.extend(sse(&[(None, json!({"error": {"message": "overloaded"}}))]));
    body.extend(b"data: [DONE]\n\n");
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    let actions = respond(
        &mut stream,
        200,
        EVENT_STREAM,
        &body,
        &[released, body.len() - released - 3],
    );
    assert_eq!(actions[1], Action::Continue, "released with the content");
    assert_eq!(&actions[2..], [Action::Continue, Action::Continue]);
    assert_eq!(stream.downstream_body(), body);
    assert!(stream.downstream_complete());
    drop(stream);
    assert!(
        host.http_calls().is_empty(),
        "the error came after the release"
    );
}

#[test]
fn an_event_stream_ending_with_its_headers_is_an_empty_stream() {
    // A 200 event stream with no body at all (content-length: 0) said nothing: the same case as
    // a stream of events without content, which moves (see above).
    let config = default_config();
    let client = streaming(CHAT);
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    let action = stream
        .send_response_headers(&[(":status", "200"), ("content-type", EVENT_STREAM)], true)
        .unwrap();
    assert_eq!(
        (action, stream.pending_http_calls().len()),
        (Action::Pause, 1),
        "a stream that ends before saying anything moves up"
    );
}
