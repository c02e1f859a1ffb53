//! Streamed answers, natively: the start of a cheaper tier's event stream is held until
//! `stream_hold_bytes` arrived and it showed content; before that, an error event moves the request
//! at once and a stream that ends is judged whole. Once released, a stream is the client's,
//! unchanged.
//!
//! Host twins (host-tests/tests/module/escalation/stream.rs → here):
//! - a_sound_stream_is_held_until_the_hold_bytes_then_passes_in_order_unchanged → same name
//! - a_stream_shorter_than_the_hold_is_judged_at_its_end_and_passes_when_sound → same name
//! - an_empty_stream_moves_at_its_end_and_mids_stream_is_the_answer → same name
//! - an_error_event_in_the_held_start_moves_at_once → same name
//! - a_stream_cut_off_before_its_end_moves_at_its_end → same name
//! - once_released_a_stream_is_never_switched → same name
//! - an_event_stream_ending_with_its_headers_is_an_empty_stream → same name

use super::super::exchange::{chunks, Answer, HostSettings};
use super::*;
use crate::{StreamVerdict, StreamWatch};

/// Where the core's stream watch releases the stream fed in `chunks` (None: it never does).
fn native_release(config: &Config, client: &Client, chunks: &[&[u8]]) -> Option<usize> {
    let policy = config.escalation().unwrap();
    let expect = client.decision(config).expect;
    let mut watch = StreamWatch::new(
        client.format,
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

/// The small tier streams `body` in `sizes`; mid and frontier answer soundly in streams.
fn small_streams(client: &Client, body: &[u8], settings: &HostSettings) -> Outcome {
    let config = default_config();
    client.goes_small(&config);
    let format = client.format;
    let upstreams = by_tier([
        reply(200, EVENT_STREAM, body),
        Reply::Answer(stream_response(format, MID)),
        Reply::Answer(stream_response(format, FRONTIER)),
    ]);
    exchange_with(&config, client, upstreams, settings)
}

#[test]
fn a_sound_stream_is_held_until_the_hold_bytes_then_passes_in_order_unchanged() {
    let config = default_config();
    let mut rng = Rng(0x57_4ea);
    for format in ApiFormat::ALL {
        let client = Client::streaming(format);
        let body = sound_stream(format, SMALL);
        assert!(body.len() > 3 * HOLD_BYTES);
        let mut chunkings = vec![vec![], vec![1], vec![HOLD_BYTES]];
        chunkings.extend((0..12).map(|_| rng.cuts(body.len() / 2, 10)));
        for sizes in chunkings {
            let what = format!("{format:?} {sizes:?}");
            let pieces = chunks(&body, &sizes);
            let release = native_release(&config, &client, &pieces).expect("released");
            let outcome = small_streams(&client, &body, &chunked(&sizes));
            let expected: Vec<Next> = std::iter::once(Next::Pause)
                .chain((0..pieces.len()).map(|index| match index < release {
                    true => Next::Pause,
                    false => Next::Continue,
                }))
                .collect();
            assert_eq!(
                outcome.response_next, expected,
                "{what}: released at {release}"
            );
            let fed: usize = pieces[..=release].iter().map(|piece| piece.len()).sum();
            assert!(
                fed >= HOLD_BYTES || release == pieces.len() - 1,
                "{what}: released at {release} after {fed} bytes"
            );
            assert_passed(&outcome, 200, &body);
            assert_eq!(outcome.response.header("content-type"), Some(EVENT_STREAM));
            assert!(outcome.calls.is_empty(), "{what}");
            let record = outcome.record.as_ref().unwrap();
            assert!(record.escalations.is_empty(), "{what}");
            assert_eq!(record.usage, Some(TIERS[SMALL].usage), "{what}");
            assert_no_warnings(&outcome);
        }
    }
}

#[test]
fn a_stream_shorter_than_the_hold_is_judged_at_its_end_and_passes_when_sound() {
    let body = chat_stream(SMALL, &["ok"], Some("stop"));
    let outcome = small_streams(
        &Client::streaming(CHAT),
        &body,
        &chunked(&[10, 10, body.len()]),
    );
    assert_held_until_the_last(&outcome.response_next, "continue", "short");
    assert_passed(&outcome, 200, &body);
    assert!(outcome.calls.is_empty());
}

#[test]
fn an_empty_stream_moves_at_its_end_and_mids_stream_is_the_answer() {
    let config = default_config();
    let client = Client::streaming(CHAT);
    let decision = client.goes_small(&config);
    let empty = chat_stream(SMALL, &[], Some("stop"));
    assert!(
        empty.len() > HOLD_BYTES,
        "past the hold, still nothing said"
    );
    let mut mid = Answer::new(200, EVENT_STREAM, chat_stream(MID, &LONG, Some("stop")));
    mid.headers
        .push(("cache-control".into(), "no-cache".into()));
    let mut rng = Rng(0xe3_97);
    for _ in 0..8 {
        let sizes = rng.cuts(empty.len() * 2 / 3, 5);
        let upstreams = by_tier([
            reply(200, EVENT_STREAM, empty.clone()),
            Reply::Answer(mid.clone()),
            Reply::Answer(stream_response(CHAT, FRONTIER)),
        ]);
        let outcome = exchange_with(&config, &client, upstreams, &chunked(&sizes));
        assert_held_until_the_last(
            &outcome.response_next,
            "dispatch tier_mid",
            "moved at its end",
        );
        let routed = outcome.routed.as_ref().unwrap();
        let call = the_call(&outcome);
        assert_call_to(call, &client, routed, SMALL, MID);
        assert_eq!(model_sent(&call.body), json!(TIERS[MID].model));
        assert_eq!(
            serde_json::from_slice::<Value>(&call.body).unwrap()["stream"],
            json!(true)
        );
        assert_answered_with(&outcome, &decision, &mid, SMALL, MID, "empty");
        let record = outcome.record.as_ref().unwrap();
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
        assert_no_warnings(&outcome);
    }
}

#[test]
fn an_error_event_in_the_held_start_moves_at_once() {
    let config = default_config();
    for format in ApiFormat::ALL {
        let client = Client::streaming(format);
        let decision = client.goes_small(&config);
        let mut body = erroring_stream(format);
        // The error's event is cut in two: the call starts with the piece that completes it; the
        // rest of the small stream keeps coming while the call is in flight, held.
        let cut = body.len() - 5;
        let rest = b"data: {\"late\": true}\n\n".repeat(3);
        body.extend(&rest);
        let settings = HostSettings {
            calls_wait_for_response: true,
            ..chunked(&[cut, 5, rest.len()])
        };
        let outcome = small_streams(&client, &body, &settings);
        assert!(
            matches!(
                outcome.response_next[..],
                [Next::Pause, Next::Pause, Next::Dispatch(_), Next::Pause]
            ),
            "{format:?}: {:?}",
            outcome.response_next
        );
        let routed = outcome.routed.as_ref().unwrap();
        assert_call_to(the_call(&outcome), &client, routed, SMALL, MID);
        let mid = stream_response(format, MID);
        assert_answered_with(&outcome, &decision, &mid, SMALL, MID, "stream_error");
        let record = outcome.record.as_ref().unwrap();
        assert_eq!(record.escalations.len(), 1, "{format:?}");
        assert_eq!(record.escalations[0].cause, "stream_error");
        assert_eq!(record.usage, Some(TIERS[MID].usage), "{format:?}");
        assert_no_warnings(&outcome);
    }
}

#[test]
fn a_stream_cut_off_before_its_end_moves_at_its_end() {
    let config = config(json!({"stream_hold_bytes": 4096}), json!({}));
    let cut_off = chat_stream(SMALL, &LONG, None);
    assert!(cut_off.len() > 20 && cut_off.len() < 4096);
    let outcome = exchange_with(
        &config,
        &Client::streaming(CHAT),
        small_then(CHAT, reply(200, EVENT_STREAM, cut_off)),
        &chunked(&[20]),
    );
    assert_held_until_the_last(
        &outcome.response_next,
        "dispatch tier_mid",
        "moved at its end",
    );
    assert_eq!(outcome.record.unwrap().escalations[0].cause, "stream_error");
}

#[test]
fn once_released_a_stream_is_never_switched() {
    let mut body = chat_stream(SMALL, &LONG, None);
    let released = body.len();
    assert!(released > HOLD_BYTES);
    body.extend(sse(&[(None, json!({"error": {"message": "overloaded"}}))]));
    body.extend(b"data: [DONE]\n\n");
    let sizes = [released, body.len() - released - 3, 3];
    let outcome = small_streams(&Client::streaming(CHAT), &body, &chunked(&sizes));
    assert_eq!(
        outcome.response_next,
        [Next::Pause, Next::Continue, Next::Continue, Next::Continue],
        "released with the content, and never held again"
    );
    assert_passed(&outcome, 200, &body);
    assert!(outcome.calls.is_empty(), "the error came after the release");
}

/// A 200 event stream with no body at all (content-length: 0) said nothing, and moves like a
/// stream of events without content (see above). Its cause is not `empty` but `stream_error`: it
/// ended before the event that ends an answer, as a stream cut off does.
#[test]
fn an_event_stream_ending_with_its_headers_is_an_empty_stream() {
    let outcome = small_streams(&Client::streaming(CHAT), b"", &HostSettings::default());
    assert!(matches!(outcome.response_next[..], [Next::Dispatch(_)]));
    assert_eq!(the_call(&outcome).cluster, "tier_mid");
    assert_eq!(outcome.record.unwrap().escalations[0].cause, "stream_error");
}
