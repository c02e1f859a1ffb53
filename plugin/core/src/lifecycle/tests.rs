//! The machine driven through whole exchanges in memory ([`super::exchange`]).

use std::rc::Rc;

use serde_json::{json, Value};

use super::exchange::{run, Answer, ClientRequest, HostSettings, Outcome, Reply, Sent};
use super::{Level, MemoryBreakers};
use crate::Config;

/// Three priced tiers where every scored request goes to `small`, escalating one step on every
/// failure and weak answer, and `extra`'s top-level fields over it.
fn config(escalation: Value, extra: Value) -> Rc<Config> {
    let mut policy = json!({
        "max_escalations": 1,
        "deadline_ms": 10_000,
        "attempt_timeout_ms": 4000,
        "checks": {"truncated": true, "empty": true, "invalid_json": true, "invalid_tool_args": true},
        "stream_hold_bytes": 64,
        "circuit_breaker": {"window": 100, "min_requests": 100, "failure_rate": 1.0, "cooldown_ms": 1000}
    });
    for (key, value) in escalation.as_object().unwrap() {
        policy[key] = value.clone();
    }
    let mut config = json!({
        "tiers": [
            {"name": "small", "model": "gpt-4o-mini", "max_score": 0.98,
             "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
            {"name": "mid", "model": "gpt-4.1", "max_score": 0.99,
             "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0}},
            {"name": "frontier", "model": "gpt-5",
             "price": {"input_per_mtok": 5.0, "output_per_mtok": 20.0}}
        ],
        "escalation": policy
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    Rc::new(Config::from_json(config.to_string().as_bytes()).unwrap())
}

fn chat(body: Value) -> ClientRequest {
    let body = body.to_string().into_bytes();
    ClientRequest {
        headers: vec![
            (":method".into(), "POST".into()),
            (":path".into(), "/v1/chat/completions".into()),
            (":authority".into(), "gateway".into()),
            ("content-type".into(), "application/json".into()),
            ("content-length".into(), body.len().to_string()),
            ("x-request-id".into(), "req-1".into()),
        ],
        body,
        trailers: false,
    }
}

fn simple_chat() -> ClientRequest {
    chat(
        json!({"model": "auto", "messages": [{"role": "user", "content": "Say yes or no: is water wet?"}]}),
    )
}

fn chat_answer(cluster: &str, text: &str) -> Answer {
    let body = json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "model": cluster,
    });
    Answer::new(200, "application/json", body.to_string())
}

/// A script of upstream replies by what each cluster got.
type Upstream = dyn Fn(&Sent) -> Reply;

fn exchange(
    config: &Rc<Config>,
    request: &ClientRequest,
    reply: impl FnMut(&Sent) -> Reply,
    settings: &HostSettings,
) -> Outcome {
    let breakers = Rc::new(MemoryBreakers::new(config));
    let mut upstreams = reply;
    let outcome = run(config, breakers, request, &mut upstreams, settings);
    assert!(outcome.refused.is_empty(), "{:?}", outcome.refused);
    outcome
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(have, _)| have == name)
        .map(|(_, value)| value.as_str())
}

fn model_sent(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body).unwrap()["model"].clone()
}

#[test]
fn a_routed_request_reaches_its_tier_rewritten_and_the_record_settles() {
    let config = config(json!({}), json!({}));
    let outcome = exchange(
        &config,
        &simple_chat(),
        |sent: &Sent| Reply::Answer(chat_answer(&sent.cluster, "yes")),
        &HostSettings::default(),
    );
    let routed = outcome.routed.unwrap();
    assert_eq!(routed.cluster, "tier_small");
    assert_eq!(model_sent(&routed.body), json!("gpt-4o-mini"));
    assert_eq!(header(&routed.headers, "x-triage-route"), Some("small"));
    assert_eq!(
        header(&routed.headers, "content-length"),
        Some(routed.body.len().to_string().as_str())
    );
    assert!(outcome.calls.is_empty());
    let response = outcome.response;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-triage-tier"), Some("small"));
    assert_eq!(
        response.header("x-triage-decision-id"),
        HostSettings::default().decision_id.as_deref()
    );
    let record = outcome.record.unwrap();
    assert_eq!(record.tier, "small");
    assert_eq!(record.status, Some(200));
    assert_eq!(record.usage.map(|usage| usage.completion_tokens), Some(5));
    assert_eq!(record.served_cluster.as_deref(), Some("tier_small"));
}

#[test]
fn a_failing_tier_is_answered_by_the_next_one() {
    let config = config(json!({}), json!({}));
    let outcome = exchange(
        &config,
        &simple_chat(),
        |sent: &Sent| match sent.cluster.as_str() {
            "tier_small" => Reply::Answer(Answer::new(503, "text/plain", "down")),
            cluster => Reply::Answer(chat_answer(cluster, "yes")),
        },
        &HostSettings::default(),
    );
    assert_eq!(outcome.calls.len(), 1);
    let call = &outcome.calls[0];
    assert_eq!(call.cluster, "tier_mid");
    assert_eq!(model_sent(&call.body), json!("gpt-4.1"));
    assert_eq!(
        header(&call.headers, "x-triage-escalated"),
        Some("small->mid")
    );
    assert_eq!(header(&call.headers, "x-request-id"), Some("req-1"));
    let response = &outcome.response;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-triage-tier"), Some("mid"));
    assert_eq!(
        response.header("x-triage-escalation-cause"),
        Some("status_5xx")
    );
    let record = outcome.record.as_ref().unwrap();
    assert_eq!(record.tier, "mid");
    assert_eq!(record.escalations.len(), 1);
    assert_eq!(record.escalations[0].status, Some(200));
    assert!(outcome
        .logs
        .iter()
        .any(|(level, message)| *level == Level::Info && message.contains("small->mid")));
}

#[test]
fn an_upstream_reset_before_answering_escalates_as_a_reset() {
    let config = config(json!({}), json!({}));
    let outcome = exchange(
        &config,
        &simple_chat(),
        |sent: &Sent| match sent.cluster.as_str() {
            "tier_small" => Reply::Reset,
            cluster => Reply::Answer(chat_answer(cluster, "yes")),
        },
        &HostSettings::default(),
    );
    assert_eq!(
        outcome.response.header("x-triage-escalation-cause"),
        Some("reset")
    );
}

/// The same bytes in any chunking give the same exchange: what each tier got, what the client got,
/// and the record.
#[test]
fn any_chunking_of_the_same_bytes_gives_the_same_exchange() {
    let config = config(json!({}), json!({}));
    let stream_answer = {
        let mut body = String::new();
        for word in ["Hello", " there", ", friend"] {
            let event = json!({"choices": [{"index": 0, "delta": {"content": word}}]});
            body.push_str(&format!("data: {event}\n\n"));
        }
        body.push_str("data: [DONE]\n\n");
        Answer::new(200, "text/event-stream", body)
    };
    let cases: Vec<(ClientRequest, Box<Upstream>)> = vec![
        (
            simple_chat(),
            Box::new(|sent: &Sent| Reply::Answer(chat_answer(&sent.cluster, "yes"))),
        ),
        (
            simple_chat(),
            Box::new(|sent: &Sent| match sent.cluster.as_str() {
                "tier_small" => Reply::Answer(chat_answer(&sent.cluster, "")),
                cluster => Reply::Answer(chat_answer(cluster, "yes")),
            }),
        ),
        (
            chat(
                json!({"model": "auto", "stream": true, "messages": [{"role": "user", "content": "Say hello."}]}),
            ),
            Box::new(move |_: &Sent| Reply::Answer(stream_answer.clone())),
        ),
    ];
    for (n, (request, reply)) in cases.iter().enumerate() {
        let whole = exchange(&config, request, reply, &HostSettings::default());
        for chunk_bytes in [1, 3, 17, 64] {
            let settings = HostSettings {
                chunk_bytes: vec![chunk_bytes],
                ..HostSettings::default()
            };
            let chunked = exchange(&config, request, reply, &settings);
            let what = format!("case {n} in chunks of {chunk_bytes}");
            assert_eq!(chunked.routed, whole.routed, "{what}");
            assert_eq!(chunked.calls, whole.calls, "{what}");
            assert_eq!(chunked.response, whole.response, "{what}");
            assert_eq!(
                chunked.record.map(|record| record.to_json()),
                whole.record.as_ref().map(|record| record.to_json()),
                "{what}"
            );
        }
    }
}
