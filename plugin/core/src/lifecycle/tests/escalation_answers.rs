//! Whole (non-streamed) answers, natively: a weak one is held to its end, judged, and replaced by
//! the next tier's; a sound one goes out byte for byte and nothing is called.
//!
//! Host twins (host-tests/tests/module/escalation/answers.rs → here):
//! - weak_answers_in_any_chunking_are_held_to_their_end_and_replaced_by_mids → same name
//! - the_abandoned_answer_is_billed_to_its_tier_in_the_counters
//!   → the_abandoned_answer_is_billed_to_its_tier (the counters are the filter's sums of the
//!   record's bills, which are asserted here)
//! - a_sound_answer_in_any_chunking_goes_out_unchanged_and_nothing_is_called → same name
//! - an_answer_cut_at_the_client_s_tight_cap_goes_out → same name
//! - without_answer_checks_a_2xx_answer_is_never_held → same name
//! - an_error_body_or_an_unknown_shape_with_a_2xx_status_is_no_reason_to_move → same name
//! - a_weak_answer_of_mid_is_served_when_no_escalation_is_left → same name

use super::super::exchange::{chunks, Answer};
use super::*;

/// A weak answer the checks catch, with the request that makes it weak.
struct Weak {
    cause: &'static str,
    client: Client,
    answer: Vec<u8>,
}

/// Each weak answer the checks catch, in the formats that say it their own way.
fn weak_answers() -> Vec<Weak> {
    let tools = json!([{"type": "function", "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
    }}]);
    let usage = TIERS[SMALL].usage;
    let bad_tool_call = json!({
        "id": "chatcmpl-2", "object": "chat.completion", "model": TIERS[SMALL].model,
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"city\": "}}]}}],
        "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
    });
    let weak = |cause, client, answer| Weak {
        cause,
        client,
        answer,
    };
    vec![
        weak(
            "truncated",
            Client::simple(CHAT),
            answer(CHAT, SMALL, "The sentiment of this review is", "length"),
        ),
        weak(
            "empty",
            Client::simple(CHAT),
            answer(CHAT, SMALL, " \n ", "stop"),
        ),
        weak(
            "refusal",
            Client::simple(CHAT),
            answer(
                CHAT,
                SMALL,
                "I'm sorry, but I can't help with that.",
                "stop",
            ),
        ),
        weak(
            "invalid_json",
            Client::chat(json!({"response_format": {"type": "json_object"}})),
            answer(CHAT, SMALL, "{\"sentiment\": positive", "stop"),
        ),
        weak(
            "invalid_tool_args",
            Client::chat(json!({ "tools": tools })),
            bad_tool_call.to_string().into_bytes(),
        ),
        weak(
            "truncated",
            Client::simple(RESPONSES),
            answer(RESPONSES, SMALL, "The sentiment", "length"),
        ),
        weak(
            "empty",
            Client::simple(RESPONSES),
            answer(RESPONSES, SMALL, "", "stop"),
        ),
        weak(
            "truncated",
            Client::simple(MESSAGES),
            answer(MESSAGES, SMALL, "The sentiment", "length"),
        ),
        weak(
            "refusal",
            Client::simple(MESSAGES),
            answer(MESSAGES, SMALL, "I cannot assist with that.", "stop"),
        ),
    ]
}

#[test]
fn weak_answers_in_any_chunking_are_held_to_their_end_and_replaced_by_mids() {
    let config = default_config();
    let mut rng = Rng(0xe5ca_1a7e);
    for weak in weak_answers() {
        let client = &weak.client;
        let decision = client.goes_small(&config);
        for sizes in chunkings(weak.answer.len(), &mut rng, 6) {
            let what = format!("{} {:?} {sizes:?}", weak.cause, client.format);
            let outcome = exchange_with(
                &config,
                client,
                small_then(client.format, ok_json(weak.answer.clone())),
                &chunked(&sizes),
            );
            // Held, and judged only whole: the call came at the last chunk, every chunk fed.
            assert_held_until_the_last(&outcome.response_next, "dispatch tier_mid", &what);
            let fed = chunks(&weak.answer, &sizes).len();
            assert_eq!(outcome.response_next.len(), 1 + fed, "{what}");
            let routed = outcome.routed.as_ref().unwrap();
            assert_call_to(the_call(&outcome), client, routed, SMALL, MID);
            let mid = good_response(client.format, MID);
            assert_answered_with(&outcome, &decision, &mid, SMALL, MID, weak.cause);
            let record = outcome.record.as_ref().unwrap();
            let small_usage = TIERS[SMALL].usage;
            assert_eq!(
                record.escalations,
                [step(SMALL, MID, weak.cause, Some(200), Some(small_usage))],
                "{what}: the dropped answer's usage is kept"
            );
            assert_eq!(record.tier, "mid");
            assert_eq!(record.usage, Some(TIERS[MID].usage));
            assert_close(
                record.cost_micro_usd,
                cost(MID, TIERS[MID].usage) + cost(SMALL, small_usage),
                "cost: mid's answer plus the small answer dropped",
            );
            assert_close(
                record.decided_cost_micro_usd,
                cost(SMALL, TIERS[MID].usage),
                "decided cost",
            );
            assert_no_warnings(&outcome);
        }
    }
}

/// What the filter's counters add up: the served answer's tokens and cost to mid, the dropped
/// answer's to small, the top tier's and the decided tier's prices of mid's usage.
#[test]
fn the_abandoned_answer_is_billed_to_its_tier() {
    let config = default_config();
    let weak = answer(CHAT, SMALL, "The sentiment", "length");
    let outcome = exchange_with(
        &config,
        &Client::simple(CHAT),
        small_then(CHAT, ok_json(weak)),
        &chunked(&[7]),
    );
    let record = outcome.record.unwrap();
    let (small, mid) = (TIERS[SMALL].usage, TIERS[MID].usage);
    assert_eq!(dropped_bills(&record, &config), [(Some("small"), small)]);
    let dropped_cost = record
        .dropped_answers(&config)
        .next()
        .unwrap()
        .cost_micro_usd;
    assert_close(
        dropped_cost,
        cost(SMALL, small),
        "the dropped answer's cost",
    );
    assert_eq!(record.serving_tier(), Some("mid"));
    assert_eq!(record.usage, Some(mid));
    assert_close(
        record.served_answer_cost(&config),
        cost(MID, mid),
        "the served answer's cost",
    );
    assert_close(
        record.top_tier_cost_micro_usd,
        cost(FRONTIER, mid),
        "top-tier cost",
    );
    assert_close(
        record.decided_cost_micro_usd,
        cost(SMALL, mid),
        "decided cost",
    );
    assert_eq!(record.escalations[0].cause, "truncated");
}

#[test]
fn a_sound_answer_in_any_chunking_goes_out_unchanged_and_nothing_is_called() {
    let config = default_config();
    let mut rng = Rng(0x50_0d);
    for format in ApiFormat::ALL {
        let client = Client::simple(format);
        client.goes_small(&config);
        let body = good_answer(format, SMALL);
        for sizes in chunkings(body.len(), &mut rng, 8) {
            let what = format!("{format:?} {sizes:?}");
            let outcome = exchange_with(
                &config,
                &client,
                small_then(format, ok_json(body.clone())),
                &chunked(&sizes),
            );
            assert_held_until_the_last(&outcome.response_next, "continue", &what);
            assert_passed(&outcome, 200, &body);
            assert_eq!(outcome.response.header("x-triage-tier"), Some("small"));
            assert!(outcome.calls.is_empty(), "{what}: never a call");
            let record = outcome.record.as_ref().unwrap();
            assert!(record.escalations.is_empty(), "{what}");
            assert_eq!(record.tier, "small");
            assert_eq!(record.usage, Some(TIERS[SMALL].usage));
            assert_close(
                record.cost_micro_usd,
                cost(SMALL, TIERS[SMALL].usage),
                "cost",
            );
            assert_no_warnings(&outcome);
        }
    }
}

/// A label asked for with `max_tokens: 1` comes back cut at that cap by design: it goes out as the
/// small tier's answer and nothing is called. The same cut under a generous cap is weak.
#[test]
fn an_answer_cut_at_the_client_s_tight_cap_goes_out() {
    let config = default_config();
    let cut = answer(CHAT, SMALL, "Positive", "length");
    let tight = Client::chat(json!({"max_tokens": 1}));
    tight.goes_small(&config);
    let outcome = exchange(&config, &tight, small_then(CHAT, ok_json(cut.clone())));
    assert_eq!(outcome.response_next.last(), Some(&Next::Continue));
    assert_passed(&outcome, 200, &cut);
    assert!(outcome.record.unwrap().escalations.is_empty());
    assert!(outcome.calls.is_empty());

    let generous = Client::chat(json!({"max_tokens": 2048}));
    let outcome = exchange(&config, &generous, small_then(CHAT, ok_json(cut)));
    assert_eq!(the_call(&outcome).cluster, "tier_mid");
}

#[test]
fn without_answer_checks_a_2xx_answer_is_never_held() {
    let config = config(json!({"checks": {}}), json!({}));
    let weak = answer(CHAT, SMALL, "", "length");
    let outcome = exchange_with(
        &config,
        &Client::simple(CHAT),
        small_then(CHAT, ok_json(weak.clone())),
        &chunked(&[5]),
    );
    assert_left_alone(&outcome, 200, &weak, "no checks");
}

#[test]
fn an_error_body_or_an_unknown_shape_with_a_2xx_status_is_no_reason_to_move() {
    let config = default_config();
    for body in [
        &b"not json at all"[..],
        b"{\"error\": {\"message\": \"overloaded\"}}",
        b"{\"something\": \"else\"}",
        b"[1, 2, 3]",
    ] {
        let what = String::from_utf8_lossy(body);
        let outcome = exchange_with(
            &config,
            &Client::simple(CHAT),
            small_then(CHAT, ok_json(body)),
            &chunked(&[4]),
        );
        assert_eq!(
            outcome.response_next.last(),
            Some(&Next::Continue),
            "{what}"
        );
        assert_passed(&outcome, 200, body);
        assert!(outcome.calls.is_empty(), "{what}");
    }
}

#[test]
fn a_weak_answer_of_mid_is_served_when_no_escalation_is_left() {
    let config = default_config();
    let client = Client::simple(CHAT);
    let decision = client.goes_small(&config);
    let weak_mid = Answer::new(200, JSON, answer(CHAT, MID, "The sentiment", "length"));
    let outcome = exchange(
        &config,
        &client,
        by_tier([
            failing(503),
            Reply::Answer(weak_mid.clone()),
            Reply::Answer(good_response(CHAT, FRONTIER)),
        ]),
    );
    assert_answered_with(&outcome, &decision, &weak_mid, SMALL, MID, "status_5xx");
    assert_eq!(outcome.calls.len(), 1);
}
