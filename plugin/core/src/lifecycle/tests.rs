//! The machine's native tests, on two levels: whole exchanges through [`super::exchange`] (what each
//! tier got, what the client got, the record, the logs), and event scripts straight on
//! [`super::Stream`] ([`script`]) for the interleavings that host does not produce. Each file is
//! named after the host suite (host-tests/tests/module) whose paths it drives, and lists at its top
//! which host test each native test stands for. Here: what they share (the tiers and their config,
//! the client's requests and the tiers' answers in each API format, the upstreams, the checks).

mod chunking;
mod escalation;
mod escalation_answers;
mod escalation_bounds;
mod escalation_breaker;
mod escalation_served;
mod escalation_stream;
mod interleavings;
mod request_side;
mod script;

use std::rc::Rc;

use serde_json::{json, Value};

use super::exchange::{run, Answer, ClientRequest, HostSettings, Outcome, Reply, Sent};
use super::{Call, Level, MemoryBreakers, Next};
use crate::{
    decide, rewrite_model, ApiFormat, Config, Decision, DecisionRecord, Escalation, Identity,
    IdentitySource, RequestHead, Usage,
};

const CHAT: ApiFormat = ApiFormat::OpenAiChat;
const RESPONSES: ApiFormat = ApiFormat::OpenAiResponses;
const MESSAGES: ApiFormat = ApiFormat::AnthropicMessages;

const SIMPLE: &str = "Classify the sentiment of this review as positive or negative: I loved it.";
const HARD: &str = "Prove step by step that the integral of $e^{-x^2}$ over the real line is $\\sqrt{\\pi}$ — derive it.";

struct Tier {
    name: &'static str,
    model: &'static str,
    anthropic_model: &'static str,
    input_per_mtok: f64,
    output_per_mtok: f64,
    /// What this tier's answers report using (each tier its own, so a bill shows whose it is).
    usage: Usage,
}

/// Cheapest first; `small` takes every score up to 0.98, so the simple requests go there.
const TIERS: [Tier; 3] = [
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
const SMALL: usize = 0;
const MID: usize = 1;
const FRONTIER: usize = 2;

const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream";
const REQUEST_ID: &str = "req-escalation-1";
const DECISION_ID: &str = "00000000-0000-4000-8000-000000000000";
const ATTEMPT_TIMEOUT_MS: u64 = 4000;
const HOLD_BYTES: usize = 64;
const MS: u64 = 1_000_000;

fn model_of(tier: usize, format: ApiFormat) -> &'static str {
    match format {
        MESSAGES => TIERS[tier].anthropic_model,
        _ => TIERS[tier].model,
    }
}

fn cluster_of(tier: usize) -> String {
    format!("tier_{}", TIERS[tier].name)
}

fn cost(tier: usize, usage: Usage) -> f64 {
    let tier = &TIERS[tier];
    usage.prompt_tokens as f64 * tier.input_per_mtok
        + usage.completion_tokens as f64 * tier.output_per_mtok
}

// ---- config -------------------------------------------------------------------------------------

/// The priced tiers and the top-level fields of `extra` (rules, mode, override, limits, ...).
fn plain_config(extra: Value) -> Rc<Config> {
    let tiers: Vec<Value> = TIERS
        .iter()
        .zip([Some(0.98), Some(0.99), None])
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
    let mut config = json!({ "tiers": tiers });
    merge(&mut config, extra);
    Rc::new(Config::from_json(config.to_string().as_bytes()).unwrap())
}

/// [`plain_config`] escalating one step on every failure and every weak answer the checks know
/// (a refusal by regex), with a short stream hold, a breaker a handful of requests can't open and
/// an opt-out header; `escalation`'s fields over that.
fn config(escalation: Value, extra: Value) -> Rc<Config> {
    let mut policy = json!({
        "max_escalations": 1,
        "deadline_ms": 10_000,
        "attempt_timeout_ms": ATTEMPT_TIMEOUT_MS,
        "checks": {
            "truncated": true, "empty": true, "invalid_json": true, "invalid_tool_args": true,
            "refusal_regex": "(?i)^\\W*(I'm sorry|I am sorry|I can(no|')t)\\b"
        },
        "stream_hold_bytes": HOLD_BYTES,
        "never_when": [{"name": "x-no-escalate", "value": "1"}],
        "circuit_breaker": {"window": 100, "min_requests": 100, "failure_rate": 1.0, "cooldown_ms": 1000}
    });
    merge(&mut policy, escalation);
    let mut extra = extra;
    extra["escalation"] = policy;
    plain_config(extra)
}

fn default_config() -> Rc<Config> {
    config(json!({}), json!({}))
}

/// `over`'s top-level fields put over `base`'s.
fn merge(base: &mut Value, over: Value) {
    for (key, value) in over.as_object().cloned().unwrap_or_default() {
        base[key] = value;
    }
}

// ---- the client's requests ----------------------------------------------------------------------

/// A client's request: `"model": "auto"` unless the body says otherwise.
#[derive(Clone, Debug)]
struct Client {
    format: ApiFormat,
    method: &'static str,
    /// As the client spells it.
    path: String,
    body: Vec<u8>,
    /// Beside the pseudo-headers, content-type, content-length and x-request-id.
    headers: Vec<(String, String)>,
    /// The body ends with (HTTP/2) trailers.
    trailers: bool,
    /// The body is framed by chunked transfer-encoding, without a content-length.
    chunked_encoding: bool,
}

impl Client {
    fn new(format: ApiFormat, body: Value) -> Client {
        Client::raw(format, body.to_string().into_bytes())
    }

    /// A body that need not be JSON.
    fn raw(format: ApiFormat, body: impl Into<Vec<u8>>) -> Client {
        Client {
            format,
            method: "POST",
            path: format.path().to_string(),
            body: body.into(),
            headers: Vec::new(),
            trailers: false,
            chunked_encoding: false,
        }
    }

    /// The simple request in `format`.
    fn simple(format: ApiFormat) -> Client {
        Client::new(format, simple_body(format, false))
    }

    /// The simple request in `format`, asking for a stream.
    fn streaming(format: ApiFormat) -> Client {
        Client::new(format, simple_body(format, true))
    }

    /// The simple chat request with `extra`'s fields over it.
    fn chat(extra: Value) -> Client {
        let mut body = simple_body(CHAT, false);
        merge(&mut body, extra);
        Client::new(CHAT, body)
    }

    fn header(mut self, name: &str, value: &str) -> Client {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn request(&self) -> ClientRequest {
        let framing = match self.chunked_encoding {
            true => ("transfer-encoding".into(), "chunked".into()),
            false => ("content-length".into(), self.body.len().to_string()),
        };
        let mut headers: Vec<(String, String)> = vec![
            (":method".into(), self.method.into()),
            (":path".into(), self.path.clone()),
            (":authority".into(), "llm.example".into()),
            ("content-type".into(), JSON.into()),
            framing,
            ("x-request-id".into(), REQUEST_ID.into()),
        ];
        headers.extend(self.headers.iter().cloned());
        ClientRequest {
            headers,
            body: self.body.clone(),
            trailers: self.trailers,
        }
    }

    /// What the core decides for this request with `config`: the tests expect the machine to
    /// agree, whatever the scoring model says. An identity the config reads from a header is taken
    /// from the request's headers, as the machine takes it.
    fn decision(&self, config: &Config) -> Decision {
        let headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        let from_header = |source: &Option<IdentitySource>| match source {
            Some(IdentitySource::Header(name)) => header(&headers, name),
            _ => None,
        };
        let sources = config.identity_sources();
        let head = RequestHead {
            format: self.format,
            path: self.format.path(),
            headers: &headers,
            identity: Identity {
                caller: from_header(&sources.caller),
                tenant: from_header(&sources.tenant),
            },
        };
        decide(config, &head, &self.body)
    }

    /// The request goes to small by score (the premise of most tests).
    fn goes_small(&self, config: &Config) -> Decision {
        let decision = self.decision(config);
        assert_eq!(
            decision.tier,
            "small",
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        decision
    }

    /// The body the tier `to` gets when the request moves there: the client's with that tier's
    /// model, every other byte kept (the test configs ask for no logprobs and no stream usage).
    fn body_for(&self, to: usize) -> Vec<u8> {
        rewrite_model(&self.body, model_of(to, self.format)).unwrap()
    }
}

fn simple_body(format: ApiFormat, stream: bool) -> Value {
    let mut body = match format {
        CHAT => json!({"model": "auto", "messages": [{"role": "user", "content": SIMPLE}]}),
        RESPONSES => json!({"model": "auto", "input": SIMPLE}),
        MESSAGES => json!({"model": "auto", "max_tokens": 256,
                           "messages": [{"role": "user", "content": SIMPLE}]}),
    };
    if stream {
        body["stream"] = json!(true);
    }
    body
}

// ---- the tiers' answers -------------------------------------------------------------------------

/// An answer in `format` with `text` and the usage of `tier`; `finish` is the chat finish reason
/// (`length` maps to the other formats' ways of saying the answer was cut).
fn answer(format: ApiFormat, tier: usize, text: &str, finish: &str) -> Vec<u8> {
    let usage = TIERS[tier].usage;
    let (prompt, completion) = (usage.prompt_tokens, usage.completion_tokens);
    let model = model_of(tier, format);
    let body = match format {
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
        MESSAGES => json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": if finish == "length" { "max_tokens" } else { "end_turn" },
            "usage": {"input_tokens": prompt, "output_tokens": completion}
        }),
    };
    body.to_string().into_bytes()
}

/// A sound answer of `tier`.
fn good_answer(format: ApiFormat, tier: usize) -> Vec<u8> {
    let text = format!("positive (answered by {})", TIERS[tier].name);
    answer(format, tier, &text, "stop")
}

/// `tier`'s sound answer as its upstream sends it, with a header of its own.
fn good_response(format: ApiFormat, tier: usize) -> Answer {
    let mut response = Answer::new(200, JSON, good_answer(format, tier));
    response
        .headers
        .push(("x-upstream".into(), TIERS[tier].name.into()));
    response
}

fn reply(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
    Reply::Answer(Answer::new(status, content_type, body))
}

/// A 2xx answer in JSON.
fn ok_json(body: impl Into<Vec<u8>>) -> Reply {
    reply(200, JSON, body)
}

// ---- event streams ------------------------------------------------------------------------------

/// Server-sent events: each an optional name and its data.
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

/// Text long enough that a stream of it passes the hold well before its end.
const LONG: [&str; 6] = [
    "The review ",
    "is clearly ",
    "positive: the ",
    "customer says ",
    "they loved it, ",
    "so: positive.",
];

fn sound_stream(format: ApiFormat, tier: usize) -> Vec<u8> {
    match format {
        CHAT => chat_stream(tier, &LONG, Some("stop")),
        RESPONSES => responses_stream(tier, &LONG),
        MESSAGES => messages_stream(tier, &LONG),
    }
}

/// `tier`'s sound stream as its upstream sends it.
fn stream_response(format: ApiFormat, tier: usize) -> Answer {
    Answer::new(200, EVENT_STREAM, sound_stream(format, tier))
}

/// The small tier's stream starts, then reports an error, before the hold ends.
fn erroring_stream(format: ApiFormat) -> Vec<u8> {
    let (mut start, error) = match format {
        CHAT => (
            chat_stream(SMALL, &[], None),
            sse(&[(
                None,
                json!({"error": {"message": "overloaded", "type": "server_error"}}),
            )]),
        ),
        RESPONSES => (
            sse(&[(
                Some("response.created"),
                json!({"type": "response.created", "response": {"id": "r", "status": "in_progress"}}),
            )]),
            sse(&[(
                Some("error"),
                json!({"type": "error", "code": "server_error", "message": "overloaded"}),
            )]),
        ),
        MESSAGES => (
            sse(&[(
                Some("message_start"),
                json!({"type": "message_start", "message": {"id": "m", "type": "message",
                       "role": "assistant", "content": []}}),
            )]),
            sse(&[(
                Some("error"),
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            )]),
        ),
    };
    start.extend(error);
    start
}

// ---- upstreams and exchanges --------------------------------------------------------------------

/// Each tier's cluster answers every request it gets with its reply.
fn by_tier(replies: [Reply; 3]) -> impl FnMut(&Sent) -> Reply {
    move |sent: &Sent| {
        let tier = (0..TIERS.len())
            .find(|tier| sent.cluster == cluster_of(*tier))
            .unwrap_or_else(|| panic!("no tier has the cluster {}", sent.cluster));
        replies[tier].clone()
    }
}

/// small replies `first`; the dearer tiers answer soundly in `format`.
fn small_then(format: ApiFormat, first: Reply) -> impl FnMut(&Sent) -> Reply {
    by_tier([
        first,
        Reply::Answer(good_response(format, MID)),
        Reply::Answer(good_response(format, FRONTIER)),
    ])
}

/// A provider's own failing answer.
fn failing(status: u16) -> Reply {
    reply(status, "text/plain", "")
}

fn exchange(
    config: &Rc<Config>,
    client: &Client,
    upstreams: impl FnMut(&Sent) -> Reply,
) -> Outcome {
    exchange_with(config, client, upstreams, &HostSettings::default())
}

fn exchange_with(
    config: &Rc<Config>,
    client: &Client,
    upstreams: impl FnMut(&Sent) -> Reply,
    settings: &HostSettings,
) -> Outcome {
    let breakers = Rc::new(MemoryBreakers::new(config));
    exchange_on(config, &breakers, client, upstreams, settings)
}

/// An exchange on `breakers`, which outlive it.
fn exchange_on(
    config: &Rc<Config>,
    breakers: &Rc<MemoryBreakers>,
    client: &Client,
    upstreams: impl FnMut(&Sent) -> Reply,
    settings: &HostSettings,
) -> Outcome {
    let mut upstreams = upstreams;
    let board = Rc::clone(breakers);
    let outcome = run(config, board, &client.request(), &mut upstreams, settings);
    assert!(outcome.refused.is_empty(), "{:?}", outcome.refused);
    outcome
}

/// Bodies cut in `sizes`, in turn.
fn chunked(sizes: &[usize]) -> HostSettings {
    HostSettings {
        chunk_bytes: sizes.to_vec(),
        ..HostSettings::default()
    }
}

/// xorshift64*: reproducible chunkings without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }

    /// Chunk sizes for a body of `len` bytes: `count` sizes from 1 to about half of it.
    fn cuts(&mut self, len: usize, count: usize) -> Vec<usize> {
        (0..count).map(|_| 1 + self.below(len / 2 + 1)).collect()
    }
}

/// One piece, 1-byte pieces, and `random` random cuts.
fn chunkings(len: usize, rng: &mut Rng, random: usize) -> Vec<Vec<usize>> {
    let mut all = vec![vec![], vec![1]];
    all.extend((0..random).map(|_| rng.cuts(len, 6)));
    all
}

// ---- checks -------------------------------------------------------------------------------------

fn step(
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

fn assert_close(value: Option<f64>, expected: f64, what: &str) {
    let value = value.unwrap_or_else(|| panic!("{what} is null"));
    assert!(
        (value - expected).abs() < 1e-6,
        "{what}: {value}, expected {expected}"
    );
}

fn header<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    values(pairs, name).first().copied()
}

fn values<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(have, _)| have.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
        .collect()
}

/// The one value of `name`.
fn single<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    let found = values(pairs, name);
    assert_eq!(found.len(), 1, "one {name}: {pairs:#?}");
    found[0]
}

fn model_sent(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body).unwrap()["model"].clone()
}

/// The machine warned about nothing (the tests' hosts apply every effect).
fn assert_no_warnings(outcome: &Outcome) {
    let warned: Vec<&String> = outcome
        .logs
        .iter()
        .filter(|(level, _)| *level == Level::Warn)
        .map(|(_, message)| message)
        .collect();
    assert!(warned.is_empty(), "warned: {warned:#?}");
}

/// The routed request went to `tier`'s cluster named by the routing header, with the tier's model.
fn assert_routed(outcome: &Outcome, client: &Client, tier: usize) -> Sent {
    let routed = outcome.routed.clone().expect("the request went upstream");
    let name = TIERS[tier].name;
    assert_eq!(routed.cluster, cluster_of(tier));
    assert_eq!(header(&routed.headers, "x-triage-route"), Some(name));
    assert_eq!(header(&routed.headers, "x-triage-tier"), Some(name));
    assert_eq!(
        model_sent(&routed.body),
        json!(model_of(tier, client.format))
    );
    assert_eq!(
        header(&routed.headers, "content-length"),
        Some(routed.body.len().to_string().as_str())
    );
    routed
}

/// The one call the machine sent.
fn the_call(outcome: &Outcome) -> &Call {
    assert_eq!(outcome.calls.len(), 1, "one call: {:#?}", outcome.calls);
    &outcome.calls[0]
}

/// The call re-sends the request to `to`: its cluster, the request headers as the first tier got
/// them (pseudo-headers included) with the route and tier moved, the escalation stated and the
/// length of the body, which is the client's with `to`'s model.
fn assert_call_to(call: &Call, client: &Client, first: &Sent, from: usize, to: usize) {
    let (from_name, to_name) = (TIERS[from].name, TIERS[to].name);
    assert_eq!(call.cluster, cluster_of(to));
    assert_eq!(
        String::from_utf8_lossy(&call.body),
        String::from_utf8_lossy(&client.body_for(to)),
        "the body is the client's with {to_name}'s model"
    );
    let headers = &call.headers;
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
    // Everything else (the pseudo-headers, x-request-id, the decision's headers) is what the
    // first tier got.
    let moved = [
        "content-length",
        "x-triage-route",
        "x-triage-tier",
        "x-triage-escalated",
    ];
    let rest = |pairs: &[(String, String)]| {
        let mut rest: Vec<(String, String)> = pairs
            .iter()
            .filter(|(name, _)| !moved.contains(&name.as_str()))
            .cloned()
            .collect();
        rest.sort();
        rest
    };
    assert_eq!(
        rest(headers),
        rest(&first.headers),
        "the other request headers are the first tier's"
    );
}

/// The client got `answer` (the answer of the tier `to`) in place of the held one, stating the
/// escalation from `from` and its `cause`, with the decision's headers.
fn assert_answered_with(
    outcome: &Outcome,
    decision: &Decision,
    answer: &Answer,
    from: usize,
    to: usize,
    cause: &str,
) {
    let response = &outcome.response;
    assert_eq!(response.status, answer.status);
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        String::from_utf8_lossy(&answer.body)
    );
    let headers = &response.headers;
    assert!(
        headers.iter().all(|(name, _)| !name.starts_with(':')),
        "no pseudo-header: the host sets :status from the status: {headers:?}"
    );
    assert!(
        values(headers, "content-length").is_empty(),
        "the host frames the local reply itself: {headers:?}"
    );
    for (name, value) in &answer.headers {
        assert_eq!(single(headers, name), value, "the answer's {name}");
    }
    let to_name = TIERS[to].name;
    assert_eq!(single(headers, "x-triage-tier"), to_name);
    assert_eq!(
        single(headers, "x-triage-escalated"),
        format!("{}->{to_name}", TIERS[from].name)
    );
    assert_eq!(single(headers, "x-triage-escalation-cause"), cause);
    assert_eq!(single(headers, "x-request-id"), REQUEST_ID);
    let record = outcome.record.as_ref().expect("a record");
    let decision_id = record.decision_id.as_deref().expect("a decision id");
    assert_eq!(
        single(headers, "x-triage-decision-id"),
        decision_id,
        "the escalated answer names the same decision as the record"
    );
    match decision.score_header() {
        Some(score) => assert_eq!(single(headers, "x-triage-score"), score),
        None => assert!(values(headers, "x-triage-score").is_empty()),
    }
    assert_eq!(single(headers, "x-triage-reason"), decision.reason_header());
}

/// Every callback let the stream go on at once.
fn assert_flowing(nexts: &[Next], what: &str) {
    assert!(
        nexts.iter().all(|next| *next == Next::Continue),
        "{what}: {nexts:?}"
    );
}

/// Every callback held the stream but the last, which said `last` ([`script::next_said`]).
fn assert_held_until_the_last(nexts: &[Next], last: &str, what: &str) {
    let (end, held) = nexts.split_last().expect("a callback");
    assert_eq!(script::next_said(end), last, "{what}: {nexts:?}");
    assert!(
        held.iter().all(|next| *next == Next::Pause),
        "{what}: {nexts:?}"
    );
}

/// The tier's answer went to the client as it came: never held, nothing called, no move recorded.
fn assert_left_alone(outcome: &Outcome, status: u16, body: &[u8], what: &str) {
    assert_flowing(&outcome.response_next, what);
    assert_passed(outcome, status, body);
    assert!(outcome.calls.is_empty(), "{what}: nothing called");
    let record = outcome.record.as_ref().expect("a record");
    assert!(record.escalations.is_empty(), "{what}");
}

/// The answers escalation dropped, as the filter bills them: to the tier that gave each.
fn dropped_bills<'r>(
    record: &'r DecisionRecord,
    config: &'r Config,
) -> Vec<(Option<&'r str>, Usage)> {
    record
        .dropped_answers(config)
        .map(|dropped| (dropped.tier, dropped.usage))
        .collect()
}

/// The client got the upstream's answer as it came: its status and body, no escalation stated.
fn assert_passed(outcome: &Outcome, status: u16, body: &[u8]) {
    let response = &outcome.response;
    assert_eq!(response.status, status);
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        String::from_utf8_lossy(body)
    );
    assert_eq!(response.header("x-triage-escalated"), None);
}
