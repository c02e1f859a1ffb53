//! Escalation (issue #6) on the shipped module: a cheaper tier's failing status or weak answer is
//! held back, the request goes again to the next tier with `dispatch_http_call`, and the client gets
//! that tier's answer as one local reply stating the escalation; when the call fails, the held
//! answer goes out as it came. Calls to the tier clusters stay in flight until a test answers them,
//! as a real upstream takes its time, so every interleaving of the held answer and the call is
//! driven explicitly.
//!
//! Here: the fixtures, each failing status and the causes Envoy's response code details name.
//! `answers`: weak JSON answers and healthy ones; `stream`: held event streams; `bounds`: failed
//! calls, further escalations, the deadline and the requests never moved; `breaker`: the per-tier
//! circuit breaker; `served`: which cluster served each answer, and its bill.

mod answers;
mod bounds;
mod breaker;
mod served;
mod stream;

use crate::common::*;
use serde_json::{json, Value};
use triage_core::{ApiFormat, Cause, Config, DecisionRecord, Escalation, Usage};
use triage_host::{
    Action, HeaderMap, Host, HostOptions, HttpCall, HttpResponse, LocalReply, SharedData, Stream,
};

pub struct Tier {
    pub name: &'static str,
    pub model: &'static str,
    pub anthropic_model: &'static str,
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    /// What this tier's answers report using.
    pub usage: Usage,
}

/// Cheapest first; `small` takes every score up to 0.5, so the simple requests below go there.
pub const TIERS: [Tier; 3] = [
    Tier {
        name: "small",
        model: "gpt-4o-mini",
        anthropic_model: "claude-haiku-4-5",
        input_per_mtok: 0.15,
        output_per_mtok: 0.6,
        usage: Usage {
            prompt_tokens: 1237,
            completion_tokens: 59,
        },
    },
    Tier {
        name: "mid",
        model: "gpt-4o",
        anthropic_model: "claude-sonnet-4-5",
        input_per_mtok: 2.5,
        output_per_mtok: 10.0,
        usage: Usage {
            prompt_tokens: 1240,
            completion_tokens: 310,
        },
    },
    Tier {
        name: "frontier",
        model: "o3",
        anthropic_model: "claude-opus-4-1",
        input_per_mtok: 10.0,
        output_per_mtok: 40.0,
        usage: Usage {
            prompt_tokens: 1250,
            completion_tokens: 520,
        },
    },
];
pub const SMALL: usize = 0;
pub const MID: usize = 1;
pub const FRONTIER: usize = 2;

pub const JSON: &str = "application/json";
pub const EVENT_STREAM: &str = "text/event-stream";
pub const REQUEST_ID: &str = "req-escalation-1";
pub const ATTEMPT_TIMEOUT_MS: u32 = 4000;
pub const DEADLINE_MS: u64 = 10_000;
pub const HOLD_BYTES: usize = 64;

pub fn model_of(tier: usize, path: &str) -> &'static str {
    match path {
        MESSAGES => TIERS[tier].anthropic_model,
        _ => TIERS[tier].model,
    }
}

pub fn cost(tier: usize, usage: Usage) -> f64 {
    let tier = &TIERS[tier];
    usage.prompt_tokens as f64 * tier.input_per_mtok
        + usage.completion_tokens as f64 * tier.output_per_mtok
}

/// The escalation section every test starts from: every answer check, a short hold, a breaker that
/// a handful of requests can't open, and an opt-out header.
pub fn default_escalation() -> Value {
    json!({
        "max_escalations": 1,
        "deadline_ms": DEADLINE_MS,
        "attempt_timeout_ms": ATTEMPT_TIMEOUT_MS,
        "checks": {
            "truncated": true, "empty": true, "invalid_json": true, "invalid_tool_args": true,
            "refusal_regex": "(?i)^\\W*(I'm sorry|I am sorry|I can(no|')t)\\b"
        },
        "stream_hold_bytes": HOLD_BYTES,
        "never_when": [{"name": "x-no-escalate", "value": "1"}],
        "circuit_breaker": {"window": 100, "min_requests": 100, "failure_rate": 1.0, "cooldown_ms": 1000}
    })
}

/// The priced tiers, [`default_escalation`] with the fields of `escalation` put over it, and the
/// top-level fields of `extra` (rules, mode, override, ...).
pub fn config(escalation: Value, extra: Value) -> String {
    let tiers: Vec<Value> = TIERS
        .iter()
        .zip([Some(0.5), Some(0.9), None])
        .map(|(tier, max_score)| {
            let mut tier = json!({
                "name": tier.name,
                "model": tier.model,
                "models": {"anthropic_messages": tier.anthropic_model},
                "price": {"input_per_mtok": tier.input_per_mtok, "output_per_mtok": tier.output_per_mtok},
            });
            if let Some(max_score) = max_score {
                tier["max_score"] = json!(max_score);
            }
            tier
        })
        .collect();
    let mut policy = default_escalation();
    for (key, value) in escalation.as_object().unwrap() {
        policy[key] = value.clone();
    }
    let mut config = json!({"tiers": tiers, "escalation": policy});
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config.to_string()
}

pub fn default_config() -> String {
    config(json!({}), json!({}))
}

/// A VM whose three tier clusters Envoy knows; their calls wait for the test.
pub fn start(config: &str) -> Host {
    start_on(config, SharedData::default())
}

/// A VM on `shared`: VMs started on one store act as the workers of one Envoy.
pub fn start_on(config: &str, shared: SharedData) -> Host {
    let mut options = HostOptions::default().shared_data(shared);
    for tier in &TIERS {
        options = options.cluster(&format!("tier_{}", tier.name));
    }
    options.start(config).expect("the config is accepted")
}

/// A client's request: `"model": "auto"` unless the body says otherwise.
#[derive(Clone)]
pub struct Client {
    pub path: &'static str,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Client {
    pub fn new(path: &'static str, body: Value) -> Client {
        let body = body.to_string();
        let mut headers = post_headers(path, body.len());
        headers.push(("x-request-id".into(), REQUEST_ID.into()));
        Client {
            path,
            body,
            headers,
        }
    }

    /// The simple request in the format `path` serves.
    pub fn simple(path: &'static str) -> Client {
        Client::new(path, simple_body(path, false))
    }

    pub fn chat(extra: Value) -> Client {
        let mut body = simple_body(CHAT, false);
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        Client::new(CHAT, body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Client {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn format(&self) -> ApiFormat {
        ApiFormat::detect("POST", self.path).unwrap()
    }

    /// What the native core decides for this request with `config`.
    pub fn decision(&self, config: &str) -> triage_core::Decision {
        let headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(name, _)| !name.starts_with(':'))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        native_with(config, self.path, &headers, self.body.as_bytes())
    }

    /// Sends the request whole and checks it went upstream.
    pub fn send(&self, stream: &mut Stream) {
        send_request(stream, &self.headers, self.body.as_bytes(), &[]);
        assert_framed(stream);
    }

    /// The body the tier `to` gets when the request moves there: the client's with that tier's
    /// model, every other byte kept (the test configs ask for no logprobs and no stream usage).
    pub fn body_for(&self, to: usize) -> Vec<u8> {
        triage_core::rewrite_model(self.body.as_bytes(), model_of(to, self.path)).unwrap()
    }
}

pub fn simple_body(path: &str, stream: bool) -> Value {
    let mut body = match path {
        CHAT => json!({"model": "auto", "messages": [{"role": "user", "content": SIMPLE}]}),
        RESPONSES => json!({"model": "auto", "input": SIMPLE}),
        _ => json!({"model": "auto", "max_tokens": 256,
                    "messages": [{"role": "user", "content": SIMPLE}]}),
    };
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// An answer of the format `path` serves with `text` and the usage of `tier`; `finish` is the
/// chat finish reason (mapped to the other formats' ways of saying it).
pub fn answer(path: &str, tier: usize, text: &str, finish: &str) -> Vec<u8> {
    let usage = TIERS[tier].usage;
    let (prompt, completion) = (usage.prompt_tokens, usage.completion_tokens);
    let model = model_of(tier, path);
    let body = match path {
        CHAT => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion}
        }),
        RESPONSES => {
            let mut body = json!({
                "id": "resp_1", "object": "response", "model": model, "status": "completed",
                "output": [{"type": "message", "role": "assistant",
                            "content": [{"type": "output_text", "text": text, "annotations": []}]}],
                "usage": {"input_tokens": prompt, "output_tokens": completion,
                          "total_tokens": prompt + completion}
            });
            if finish == "length" {
                body["status"] = json!("incomplete");
                body["incomplete_details"] = json!({"reason": "max_output_tokens"});
            }
            body
        }
        _ => json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": if finish == "length" { "max_tokens" } else { "end_turn" },
            "usage": {"input_tokens": prompt, "output_tokens": completion}
        }),
    };
    body.to_string().into_bytes()
}

/// A sound answer of `tier`.
pub fn good_answer(path: &str, tier: usize) -> Vec<u8> {
    answer(
        path,
        tier,
        &format!("positive (answered by {})", TIERS[tier].name),
        "stop",
    )
}

/// `tier`'s sound answer as its upstream sends it back to a call.
pub fn good_response(path: &str, tier: usize) -> HttpResponse {
    HttpResponse::new(
        200,
        &[("content-type", JSON), ("x-upstream", TIERS[tier].name)],
        &good_answer(path, tier),
    )
}

/// The upstream's response: headers (ending the stream when `body` is empty), then `body` cut at
/// `chunk_sizes`. Returns each callback's action.
pub fn respond(
    stream: &mut Stream,
    status: u16,
    content_type: &str,
    body: &[u8],
    chunk_sizes: &[usize],
) -> Vec<Action> {
    let status = status.to_string();
    let headers = [(":status", status.as_str()), ("content-type", content_type)];
    let mut actions = vec![stream
        .send_response_headers(&headers, body.is_empty())
        .unwrap()];
    if body.is_empty() {
        return actions;
    }
    let chunks = split(body, chunk_sizes);
    let last = chunks.len() - 1;
    for (index, chunk) in chunks.into_iter().enumerate() {
        actions.push(stream.send_response_body(chunk, index == last).unwrap());
    }
    actions
}

/// The one call in flight on `stream`.
pub fn the_call(stream: &Stream) -> HttpCall {
    let calls = stream.pending_http_calls();
    assert_eq!(calls.len(), 1, "one call in flight: {calls:#?}");
    calls[0].clone()
}

pub fn values<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
        .collect()
}

/// The one value of `name`.
pub fn single<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    let found = values(pairs, name);
    assert_eq!(found.len(), 1, "one {name}: {pairs:#?}");
    found[0]
}

/// The call re-sends the request to `to`: its cluster, the request headers as the first tier got
/// them (pseudo-headers included) with the route and tier moved, the escalation stated and the
/// length of the body, which is the client's with `to`'s model.
pub fn assert_call_to(
    call: &HttpCall,
    client: &Client,
    first_upstream: &HeaderMap,
    from: usize,
    to: usize,
) {
    let (from_name, to_name) = (TIERS[from].name, TIERS[to].name);
    assert_eq!(call.cluster, format!("tier_{to_name}"));
    let expected_body = client.body_for(to);
    assert_eq!(
        String::from_utf8_lossy(&call.body),
        String::from_utf8_lossy(&expected_body),
        "the body is the client's with {to_name}'s model"
    );
    let sent: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(sent["model"], json!(model_of(to, client.path)));
    let headers = &call.headers;
    for pseudo in [":method", ":path", ":authority"] {
        assert_eq!(
            single(headers, pseudo),
            first_upstream.get(pseudo).unwrap(),
            "{pseudo}"
        );
    }
    assert_eq!(
        single(headers, "content-length"),
        call.body.len().to_string()
    );
    assert_eq!(single(headers, "x-triage-route"), to_name);
    assert_eq!(single(headers, "x-triage-tier"), to_name);
    assert_eq!(
        single(headers, "x-triage-escalated"),
        format!("{from_name}->{to_name}")
    );
    // Everything else is what the first tier got.
    let moved = [
        "content-length",
        "x-triage-route",
        "x-triage-tier",
        "x-triage-escalated",
    ];
    let mut rest: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| !moved.contains(&name.as_str()))
        .cloned()
        .collect();
    let mut first: Vec<(String, String)> = first_upstream
        .pairs()
        .iter()
        .filter(|(name, _)| !moved.contains(&name.as_str()))
        .cloned()
        .collect();
    rest.sort();
    first.sort();
    assert_eq!(
        rest, first,
        "the other request headers are the first tier's"
    );
    assert!(call.trailers.is_empty());
}

/// The client got `answer` (the answer of the tier `to`) as a local reply stating the escalation
/// from `from` and its `cause`, and nothing of the held answer.
pub fn assert_answered_with(
    stream: &Stream,
    decision: &triage_core::Decision,
    answer: &HttpResponse,
    from: usize,
    to: usize,
    cause: &str,
) {
    let reply: &LocalReply = stream.local_reply().expect("a local reply");
    let status: u32 = answer.headers.get(":status").unwrap().parse().unwrap();
    assert_eq!(reply.status, status);
    assert_eq!(reply.details, "triage_escalated");
    assert_eq!(reply.grpc_status, None);
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        String::from_utf8_lossy(&answer.body)
    );
    let headers = &reply.headers;
    assert!(
        headers.iter().all(|(name, _)| !name.starts_with(':')),
        "no pseudo-header: Envoy sets :status from the status: {headers:?}"
    );
    assert!(
        values(headers, "content-length").is_empty(),
        "Envoy frames the local reply itself: {headers:?}"
    );
    for (name, value) in answer.headers.pairs() {
        if !name.starts_with(':') && name != "content-length" {
            assert_eq!(single(headers, name), value, "the answer's {name}");
        }
    }
    let to_name = TIERS[to].name;
    assert_eq!(single(headers, "x-triage-tier"), to_name);
    assert_eq!(
        single(headers, "x-triage-escalated"),
        format!("{}->{to_name}", TIERS[from].name)
    );
    assert_eq!(single(headers, "x-triage-escalation-cause"), cause);
    assert_eq!(single(headers, "x-request-id"), REQUEST_ID);
    let decision_id = record(stream.host())
        .decision_id
        .expect("the record has a decision id");
    assert_eq!(
        single(headers, "x-triage-decision-id"),
        decision_id,
        "the escalated answer names the same decision as the record"
    );
    match decision.score_header() {
        Some(score) => assert_eq!(single(headers, "x-triage-score"), score),
        None => assert!(values(headers, "x-triage-score").is_empty()),
    }
    // An override's reason names the tier it picked; see
    // `an_overrides_reason_still_names_the_tier_the_caller_picked`.
    if !matches!(decision.cause, Cause::Override { .. }) {
        assert_eq!(single(headers, "x-triage-reason"), decision.reason_header());
    }
    assert_eq!(
        stream.downstream_headers(),
        None,
        "the held answer never reached the client"
    );
    assert!(stream.downstream_body().is_empty());
}

/// The record the filter stored last.
pub fn record(host: &Host) -> DecisionRecord {
    let bytes = host
        .property(&["triage_record"])
        .expect("a decision record was stored");
    serde_json::from_slice(bytes).unwrap()
}

pub fn step(
    from: usize,
    to: usize,
    cause: &str,
    status: Option<u16>,
    abandoned: Option<Usage>,
) -> Escalation {
    Escalation {
        from: TIERS[from].name.into(),
        to: TIERS[to].name.into(),
        cause: cause.into(),
        status,
        abandoned_usage: abandoned,
    }
}

pub fn assert_close(value: Option<f64>, expected: f64, what: &str) {
    let value = value.unwrap_or_else(|| panic!("{what} is null"));
    assert!(
        (value - expected).abs() < 1e-6,
        "{what}: {value}, expected {expected}"
    );
}

/// Each escalation counter is 0 but those listed, which have their value.
pub fn assert_escalation_counters(host: &Host, expected: &[(usize, usize, &str, i64)]) {
    let names: Vec<String> = host
        .metric_names()
        .into_iter()
        .filter(|name| name.starts_with("triage.escalations."))
        .map(str::to_string)
        .collect();
    assert!(!names.is_empty(), "escalation counters are defined");
    for name in names {
        let want = expected
            .iter()
            .find(|(from, to, cause, _)| {
                name == format!(
                    "triage.escalations.from.{}.to.{}.cause.{cause}",
                    TIERS[*from].name, TIERS[*to].name
                )
            })
            .map_or(0, |(_, _, _, n)| *n);
        assert_eq!(host.metric(&name), Some(want), "{name}");
    }
}

/// The request goes to small by score with the default config (the premise of most tests).
pub fn assert_goes_small(client: &Client, config: &str) -> triage_core::Decision {
    let decision = client.decision(config);
    assert_eq!(decision.tier, "small", "{}", client.body);
    decision
}

struct StatusCase {
    status: u16,
    details: Option<&'static str>,
    cause: &'static str,
}

const STATUS_CASES: [StatusCase; 6] = [
    StatusCase {
        status: 503,
        details: Some("via_upstream"),
        cause: "status_5xx",
    },
    StatusCase {
        status: 500,
        details: None,
        cause: "status_5xx",
    },
    StatusCase {
        status: 429,
        details: Some("via_upstream"),
        cause: "status_429",
    },
    StatusCase {
        status: 504,
        details: Some("response_timeout"),
        cause: "timeout",
    },
    StatusCase {
        status: 503,
        details: Some("upstream_reset_before_response_started{remote_connection_failure}"),
        cause: "connect_failure",
    },
    StatusCase {
        status: 503,
        details: Some("upstream_reset_before_response_started{connection_termination}"),
        cause: "reset",
    },
];

/// How the failing answer arrives around the call.
#[derive(Clone, Copy, Debug)]
enum Arrival {
    /// Headers ending the stream.
    HeadersOnly,
    /// Headers, then the body in pieces while the call is in flight.
    BodyWhileCalling,
    /// Headers; the call is answered before any body comes (Envoy then ends the stream).
    AnsweredFirst,
}

#[test]
fn each_failing_status_moves_the_request_to_mid_once_and_answers_with_mid() {
    let config = default_config();
    let arrivals = [
        Arrival::HeadersOnly,
        Arrival::BodyWhileCalling,
        Arrival::AnsweredFirst,
    ];
    for (index, case) in STATUS_CASES.iter().enumerate() {
        for (path_index, path) in [CHAT, RESPONSES, MESSAGES].into_iter().enumerate() {
            let arrival = arrivals[(index + path_index) % arrivals.len()];
            let what = format!("{} {:?} {path} {arrival:?}", case.status, case.details);
            let client = Client::simple(path);
            let decision = assert_goes_small(&client, &config);
            assert_eq!(decision.cause, Cause::Scored);
            let mut host = start(&config);
            let mut stream = host.request().unwrap();
            client.send(&mut stream);
            assert_routed(&stream, "small");
            let first_upstream = stream.upstream_headers().unwrap().clone();
            assert_eq!(
                upstream_json(&stream)["model"],
                json!(model_of(SMALL, path))
            );
            if let Some(details) = case.details {
                stream.set_property(&["response", "code_details"], details.as_bytes());
            }
            let status = case.status.to_string();
            let headers = [(":status", status.as_str()), ("content-type", "text/plain")];
            let ends = matches!(arrival, Arrival::HeadersOnly);
            let action = stream.send_response_headers(&headers, ends).unwrap();
            assert_eq!(action, Action::Pause, "{what}: the failure is held back");
            let call = the_call(&stream);
            assert_call_to(&call, &client, &first_upstream, SMALL, MID);
            assert_eq!(call.timeout_ms, ATTEMPT_TIMEOUT_MS, "{what}");
            if let Arrival::BodyWhileCalling = arrival {
                for (chunk, end) in [(&b"upstream "[..], false), (b"unavailable", true)] {
                    let action = stream.send_response_body(chunk, end).unwrap();
                    assert_eq!(action, Action::Pause, "{what}: held while calling");
                }
                assert_eq!(
                    stream.pending_http_calls().len(),
                    1,
                    "{what}: no second call"
                );
            }
            assert_eq!(stream.downstream_headers(), None, "{what}");
            let mid = good_response(path, MID);
            stream.answer_http_call(call.token, mid.clone()).unwrap();
            assert_answered_with(&stream, &decision, &mid, SMALL, MID, case.cause);
            assert!(
                stream.send_response_body(b"late", true).is_err(),
                "Envoy ended the stream with the local reply"
            );
            let record = record(stream.host());
            assert_eq!(record.tier, "mid", "{what}");
            assert_eq!(record.decided_tier, "small");
            assert_eq!(record.cause, "scored");
            assert_eq!(
                record.escalations,
                [step(SMALL, MID, case.cause, Some(200), None)],
                "{what}"
            );
            assert_eq!(record.status, Some(200));
            assert_eq!(record.usage, Some(TIERS[MID].usage));
            assert_close(record.cost_micro_usd, cost(MID, TIERS[MID].usage), "cost");
            stream.finish().unwrap();
            assert_eq!(host.http_calls().len(), 1, "{what}: exactly one call");
            assert_escalation_counters(&host, &[(SMALL, MID, case.cause, 1)]);
            assert_eq!(
                host.metric("triage.requests.mode.enforce.tier.small.cause.scored"),
                Some(1)
            );
            assert_no_warnings(&host);
        }
    }
}

fn rules_and_override() -> String {
    let rules = json!({
        "rules": [{"name": "to-mid", "when": {"header": {"name": "x-mid", "value": "1"}}, "tier": "mid"},
                  {"name": "cheap", "when": {"header": {"name": "x-cheap", "value": "1"}}, "tier": "small"}],
        "identity": {"caller": {"header": "x-caller"}},
        "override": {"header": "x-triage-override", "callers": ["ops"]}
    });
    config(json!({}), rules)
}

/// An operator's caller puts a request that a rule sends to mid on small.
fn overridden() -> Client {
    Client::simple(CHAT)
        .header("x-mid", "1")
        .header("x-triage-override", "small")
        .header("x-caller", "ops")
}

#[test]
fn a_rule_or_an_allowed_override_is_moved_up_like_a_score() {
    let config = rules_and_override();
    let by_rule = Client::chat(json!({"messages": [{"role": "user", "content": HARD}]}))
        .header("x-cheap", "1");
    for (client, cause) in [(by_rule, "rule"), (overridden(), "override")] {
        let decision = client.decision(&config);
        assert_eq!(
            (decision.tier.as_str(), decision.cause.kind()),
            ("small", cause)
        );
        let mut host = start(&config);
        let mut stream = host.request().unwrap();
        client.send(&mut stream);
        let first_upstream = stream.upstream_headers().unwrap().clone();
        respond(&mut stream, 503, "text/plain", b"", &[]);
        let call = the_call(&stream);
        assert_call_to(&call, &client, &first_upstream, SMALL, MID);
        let mid = good_response(CHAT, MID);
        stream.answer_http_call(call.token, mid.clone()).unwrap();
        assert_answered_with(&stream, &decision, &mid, SMALL, MID, "status_5xx");
        let record = record(stream.host());
        assert_eq!(record.cause, cause);
        assert_eq!(record.tier, "mid");
        drop(stream);
        assert_no_warnings(&host);
    }
}

/// The escalated reply states the move in `x-triage-escalated`; its `x-triage-reason` should
/// still be the decision's (`override: mid->small`), not a made-up `override: mid->mid`.
#[test]
fn an_overrides_reason_still_names_the_tier_the_caller_picked() {
    let config = rules_and_override();
    let client = overridden();
    let decision = client.decision(&config);
    assert_eq!(decision.reason_header(), "override: mid->small");
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    assert_eq!(
        stream.upstream_header("x-triage-reason"),
        Some("override: mid->small")
    );
    respond(&mut stream, 503, "text/plain", b"", &[]);
    let call = the_call(&stream);
    stream
        .answer_http_call(call.token, good_response(CHAT, MID))
        .unwrap();
    let reply = stream.local_reply().unwrap();
    assert_eq!(
        single(&reply.headers, "x-triage-reason"),
        "override: mid->small"
    );
}

#[test]
fn statuses_outside_on_status_pass_untouched() {
    let config = config(json!({"on_status": [503]}), json!({}));
    for status in [429, 400, 404, 500, 302] {
        let mut host = start(&config);
        let mut stream = host.request().unwrap();
        Client::simple(CHAT).send(&mut stream);
        let actions = respond(&mut stream, status, JSON, b"{\"error\": {}}", &[3]);
        assert!(
            actions.iter().all(|action| *action == Action::Continue),
            "{status}: {actions:?}"
        );
        assert_eq!(stream.downstream_body(), b"{\"error\": {}}");
        assert!(host_calls_empty(&stream), "{status}");
        let record = record(stream.host());
        assert!(record.escalations.is_empty());
        assert_eq!(record.status, Some(status));
    }
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    assert_eq!(respond(&mut stream, 503, JSON, b"", &[]), [Action::Pause]);
    assert_eq!(the_call(&stream).cluster, "tier_mid");
}

fn host_calls_empty(stream: &Stream) -> bool {
    stream.host().http_calls().is_empty()
}

#[test]
fn a_call_envoy_can_not_start_lets_the_failure_through() {
    // Envoy's async client failed the request inline (no healthy host in tier_mid): the module
    // gets InternalFailure from dispatch_http_call and must neither panic nor hold the answer.
    let config = default_config();
    let mut host = HostOptions::default()
        .cluster("tier_small")
        .unavailable_cluster("tier_mid")
        .cluster("tier_frontier")
        .start(&config)
        .unwrap();
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    let actions = respond(&mut stream, 503, "text/plain", b"no upstream", &[]);
    assert_eq!(actions, [Action::Continue, Action::Continue]);
    assert_eq!(stream.downstream_header(":status"), Some("503"));
    assert_eq!(stream.downstream_body(), b"no upstream");
    assert!(stream.downstream_complete());
    assert!(stream.pending_http_calls().is_empty());
    assert_eq!(record(stream.host()).status, Some(503));
    drop(stream);
    assert!(
        host.logged("tier_mid"),
        "the failed call is logged: {:#?}",
        host.logs()
    );
    assert!(host.failure().is_none());
}

/// The shipped `envoy/plugin-config.json` escalates: a failing small tier is answered by mid
/// through the default cluster name.
#[test]
fn the_shipped_plugin_config_moves_a_failing_small_tier_to_mid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../envoy/plugin-config.json");
    let config = std::fs::read_to_string(&path).unwrap();
    let parsed = Config::from_json(config.as_bytes()).unwrap();
    let policy = parsed.escalation().expect("the shipped config escalates");
    assert!(policy.escalates_status(503));
    let client = Client::simple(CHAT);
    let decision = client.decision(&config);
    if decision.tier != "small" {
        eprintln!(
            "skipped: the shipped config sends the simple request to {}",
            decision.tier
        );
        return;
    }
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    let first_upstream = stream.upstream_headers().unwrap().clone();
    respond(&mut stream, 503, "text/plain", b"", &[]);
    let call = the_call(&stream);
    assert_call_to(&call, &client, &first_upstream, SMALL, MID);
    assert_eq!(u64::from(call.timeout_ms), policy.attempt_timeout_ms);
    let mid = good_response(CHAT, MID);
    stream.answer_http_call(call.token, mid.clone()).unwrap();
    assert_answered_with(&stream, &decision, &mid, SMALL, MID, "status_5xx");
    drop(stream);
    assert_no_warnings(&host);
}

/// The record's `model` is the model written into the body that was served: after a move it
/// should be the new tier's, as it is when an open breaker moves the request before sending.
#[test]
fn the_record_names_the_model_that_served() {
    let config = default_config();
    let mut host = start(&config);
    let mut stream = host.request().unwrap();
    Client::simple(CHAT).send(&mut stream);
    respond(&mut stream, 503, "text/plain", b"", &[]);
    let call = the_call(&stream);
    stream
        .answer_http_call(call.token, good_response(CHAT, MID))
        .unwrap();
    let record = record(stream.host());
    assert_eq!(record.tier, "mid");
    assert_eq!(record.model.as_deref(), Some(TIERS[MID].model));
}
