//! Whole (non-streamed) answers: a weak one is held to its end, judged, and replaced by the next
//! tier's; a sound one goes out byte for byte and nothing is called.

use super::*;

struct Weak {
    cause: &'static str,
    client: Client,
    answer: Vec<u8>,
}

/// Each weak answer the checks catch, with the request that makes it weak.
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
    vec![
        Weak {
            cause: "truncated",
            client: Client::simple(CHAT),
            answer: answer(CHAT, SMALL, "The sentiment of this review is", "length"),
        },
        Weak {
            cause: "empty",
            client: Client::simple(CHAT),
            answer: answer(CHAT, SMALL, " \n ", "stop"),
        },
        Weak {
            cause: "refusal",
            client: Client::simple(CHAT),
            answer: answer(
                CHAT,
                SMALL,
                "I'm sorry, but I can't help with that.",
                "stop",
            ),
        },
        Weak {
            cause: "invalid_json",
            client: Client::chat(json!({"response_format": {"type": "json_object"}})),
            answer: answer(CHAT, SMALL, "{\"sentiment\": positive", "stop"),
        },
        Weak {
            cause: "invalid_tool_args",
            client: Client::chat(json!({"tools": tools})),
            answer: bad_tool_call.to_string().into_bytes(),
        },
        Weak {
            cause: "truncated",
            client: Client::simple(RESPONSES),
            answer: answer(RESPONSES, SMALL, "The sentiment", "length"),
        },
        Weak {
            cause: "empty",
            client: Client::simple(RESPONSES),
            answer: answer(RESPONSES, SMALL, "", "stop"),
        },
        Weak {
            cause: "truncated",
            client: Client::simple(MESSAGES),
            answer: answer(MESSAGES, SMALL, "The sentiment", "length"),
        },
        Weak {
            cause: "refusal",
            client: Client::simple(MESSAGES),
            answer: answer(MESSAGES, SMALL, "I cannot assist with that.", "stop"),
        },
    ]
}

/// One piece, 1-byte pieces, and random cuts.
fn chunkings(len: usize, rng: &mut Rng, random: usize) -> Vec<Vec<usize>> {
    let mut all = vec![vec![], vec![1; len]];
    for _ in 0..random {
        all.push((0..6).map(|_| rng.below(len / 2 + 2)).collect());
    }
    all
}

#[test]
fn weak_answers_in_any_chunking_are_held_to_their_end_and_replaced_by_mids() {
    let config = default_config();
    let mut rng = Rng(0xe5ca_1a7e);
    for weak in weak_answers() {
        let client = &weak.client;
        let decision = assert_goes_small(client, &config);
        for chunk_sizes in chunkings(weak.answer.len(), &mut rng, 6) {
            let what = format!("{} {} {chunk_sizes:?}", weak.cause, client.path);
            let mut host = start(&config);
            let mut stream = host.request().unwrap();
            client.send(&mut stream);
            let first_upstream = stream.upstream_headers().unwrap().clone();
            let status = [(":status", "200"), ("content-type", JSON)];
            let action = stream.send_response_headers(&status, false).unwrap();
            assert_eq!(
                action,
                Action::Pause,
                "{what}: the answer is held to be read"
            );
            let chunks = split(&weak.answer, &chunk_sizes);
            let last = chunks.len() - 1;
            for (index, chunk) in chunks.into_iter().enumerate() {
                let action = stream.send_response_body(chunk, index == last).unwrap();
                assert_eq!(action, Action::Pause, "{what}: chunk {index}");
                if index < last {
                    assert!(
                        stream.pending_http_calls().is_empty(),
                        "{what}: judged only whole"
                    );
                }
            }
            assert_eq!(stream.downstream_headers(), None);
            let call = the_call(&stream);
            assert_call_to(&call, client, &first_upstream, SMALL, MID);
            let mid = good_response(client.path, MID);
            stream.answer_http_call(call.token, mid.clone()).unwrap();
            assert_answered_with(&stream, &decision, &mid, SMALL, MID, weak.cause);
            let record = record(stream.host());
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
            drop(stream);
            assert_escalation_counters(&host, &[(SMALL, MID, weak.cause, 1)]);
            assert_no_warnings(&host);
        }
    }
}

#[test]
fn the_abandoned_answer_is_billed_to_its_tier_in_the_counters() {
    let config = default_config();
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    let weak = answer(CHAT, SMALL, "The sentiment", "length");
    respond(&mut stream, 200, JSON, &weak, &[7]);
    let call = the_call(&stream);
    stream
        .answer_http_call(call.token, good_response(CHAT, MID))
        .unwrap();
    drop(stream);
    let (small, mid) = (TIERS[SMALL].usage, TIERS[MID].usage);
    let rounded = |tier, usage| cost(tier, usage).round() as i64;
    for (name, value) in [
        (
            "triage.tokens.tier.small.kind.prompt",
            small.prompt_tokens as i64,
        ),
        (
            "triage.tokens.tier.small.kind.completion",
            small.completion_tokens as i64,
        ),
        (
            "triage.tokens.tier.mid.kind.prompt",
            mid.prompt_tokens as i64,
        ),
        (
            "triage.tokens.tier.mid.kind.completion",
            mid.completion_tokens as i64,
        ),
        ("triage.cost_micro_usd.tier.small", rounded(SMALL, small)),
        ("triage.cost_micro_usd.tier.mid", rounded(MID, mid)),
        (
            "triage.top_tier_cost_micro_usd.tier.mid",
            rounded(FRONTIER, mid),
        ),
        (
            "triage.decided_cost_micro_usd.tier.small",
            rounded(SMALL, mid),
        ),
        ("triage.usage_unknown.tier.mid", 0),
    ] {
        assert_eq!(host.metric(name), Some(value), "{name}");
    }
    assert_escalation_counters(&host, &[(SMALL, MID, "truncated", 1)]);
}

#[test]
fn a_sound_answer_in_any_chunking_goes_out_unchanged_and_nothing_is_called() {
    let config = default_config();
    let mut rng = Rng(0x50_0d);
    for path in [CHAT, RESPONSES, MESSAGES] {
        let client = Client::simple(path);
        assert_goes_small(&client, &config);
        let body = good_answer(path, SMALL);
        let mut host = start(&config);
        for chunk_sizes in chunkings(body.len(), &mut rng, 8) {
            let what = format!("{path} {chunk_sizes:?}");
            let mut stream = host.request().unwrap();
            client.send(&mut stream);
            let actions = respond(&mut stream, 200, JSON, &body, &chunk_sizes);
            let (last, held) = actions.split_last().unwrap();
            assert_eq!(*last, Action::Continue, "{what}");
            assert!(
                held.iter().all(|a| *a == Action::Pause),
                "{what}: {actions:?}"
            );
            assert_eq!(stream.downstream_header(":status"), Some("200"));
            assert_eq!(stream.downstream_header("x-triage-tier"), Some("small"));
            assert_eq!(stream.downstream_header("x-triage-escalated"), None);
            assert_eq!(stream.downstream_body(), body, "{what}: byte for byte");
            assert!(stream.downstream_complete());
            assert!(stream.local_reply().is_none());
            let record = record(stream.host());
            assert!(record.escalations.is_empty(), "{what}");
            assert_eq!(record.tier, "small");
            assert_eq!(record.usage, Some(TIERS[SMALL].usage));
            assert_close(
                record.cost_micro_usd,
                cost(SMALL, TIERS[SMALL].usage),
                "cost",
            );
        }
        assert!(host.http_calls().is_empty(), "{path}: never a call");
        assert_escalation_counters(&host, &[]);
        assert_no_warnings(&host);
    }
}

/// A label asked for with `max_tokens: 1` comes back cut at that cap by design: it goes out as
/// the small tier's answer, nothing is called, and the breaker counts it as a success. The same cut
/// under a generous cap is weak.
#[test]
fn an_answer_cut_at_the_client_s_tight_cap_goes_out() {
    let config = default_config();
    let mut host = start(&config);
    let mut body = simple_body(CHAT, false);
    body["max_tokens"] = json!(1);
    let client = Client::new(CHAT, body);
    assert_goes_small(&client, &config);
    let cut = answer(CHAT, SMALL, "Positive", "length");
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    let actions = respond(&mut stream, 200, JSON, &cut, &[]);
    assert_eq!(actions.last(), Some(&Action::Continue));
    assert_eq!(stream.downstream_body(), cut);
    assert_eq!(stream.downstream_header("x-triage-escalated"), None);
    assert!(record(stream.host()).escalations.is_empty());
    drop(stream);
    assert!(host.http_calls().is_empty());

    let mut body = simple_body(CHAT, false);
    body["max_tokens"] = json!(2048);
    let generous = Client::new(CHAT, body);
    let mut stream = host.request().unwrap();
    generous.send(&mut stream);
    respond(&mut stream, 200, JSON, &cut, &[]);
    assert_eq!(the_call(&stream).cluster, "tier_mid");
    drop(stream);
    assert_no_warnings(&host);
}

#[test]
fn without_answer_checks_a_2xx_answer_is_never_held() {
    let config = config(json!({"checks": {}}), json!({}));
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    let weak = answer(CHAT, SMALL, "", "length");
    let actions = respond(&mut stream, 200, JSON, &weak, &[5, 5]);
    assert!(
        actions.iter().all(|a| *a == Action::Continue),
        "{actions:?}"
    );
    assert_eq!(stream.downstream_body(), weak);
    drop(stream);
    assert!(host.http_calls().is_empty());
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
        let mut host = start(&config);
        let mut stream = host.request().unwrap();
        Client::simple(CHAT).send(&mut stream);
        let actions = respond(&mut stream, 200, JSON, body, &[4]);
        assert_eq!(actions.last(), Some(&Action::Continue));
        assert_eq!(stream.downstream_body(), body);
        drop(stream);
        assert!(
            host.http_calls().is_empty(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn a_weak_answer_of_mid_is_served_when_no_escalation_is_left() {
    let config = default_config();
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    let client = Client::simple(CHAT);
    let decision = assert_goes_small(&client, &config);
    client.send(&mut stream);
    respond(&mut stream, 503, "text/plain", b"", &[]);
    let call = the_call(&stream);
    let weak_mid = HttpResponse::new(
        200,
        &[("content-type", JSON)],
        &answer(CHAT, MID, "The sentiment", "length"),
    );
    stream
        .answer_http_call(call.token, weak_mid.clone())
        .unwrap();
    assert_answered_with(&stream, &decision, &weak_mid, SMALL, MID, "status_5xx");
    drop(stream);
    assert_eq!(host.http_calls().len(), 1);
}
