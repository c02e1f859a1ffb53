//! Observability (issue #5): the decision record the filter stores as `triage_record`, the usage it
//! reads from responses of each API in any chunking, the costs, counters and histograms, shadow and
//! canary modes, and overrides.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use triage_core::{Applied, DecisionRecord, Mode, Usage};
use triage_host::{Action, HeaderMap, Host, HostOptions};

mod served;

struct PricedTier {
    name: &'static str,
    model: &'static str,
    anthropic_model: &'static str,
    input_per_mtok: f64,
    output_per_mtok: f64,
}

/// The default tiers with list prices; cheapest first, so `frontier` is the top tier.
const TIERS: [PricedTier; 3] = [
    PricedTier {
        name: "small",
        model: "gpt-4o-mini",
        anthropic_model: "claude-haiku-4-5",
        input_per_mtok: 0.15,
        output_per_mtok: 0.6,
    },
    PricedTier {
        name: "mid",
        model: "gpt-4o",
        anthropic_model: "claude-sonnet-4-5",
        input_per_mtok: 2.5,
        output_per_mtok: 10.0,
    },
    PricedTier {
        name: "frontier",
        model: "o3",
        anthropic_model: "claude-opus-4-1",
        input_per_mtok: 10.0,
        output_per_mtok: 40.0,
    },
];
const TOP_TIER: &str = "frontier";
const DEFAULT_TIER: &str = "mid";

/// What every scripted response below reports (Anthropic's prompt counts its cache tokens too).
const USAGE: Usage = Usage {
    prompt_tokens: 1237,
    completion_tokens: 59,
};

/// Milliseconds since the epoch of the host's clock.
const HOST_CLOCK_MS: u64 = 1_700_000_000_000;

const JSON: &str = "application/json";
const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

/// The priced tiers plus the top-level fields of `extra` (mode, override, record, ...).
fn priced_config(extra: Value) -> String {
    let tiers: Vec<Value> = TIERS
        .iter()
        .map(|tier| {
            json!({
                "name": tier.name,
                "model": tier.model,
                "models": {"anthropic_messages": tier.anthropic_model},
                "price": {"input_per_mtok": tier.input_per_mtok, "output_per_mtok": tier.output_per_mtok},
            })
        })
        .collect();
    let mut config = json!({ "tiers": tiers });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config.to_string()
}

fn cost(tier: &str, usage: Usage) -> f64 {
    let tier = TIERS.iter().find(|known| known.name == tier).unwrap();
    usage.prompt_tokens as f64 * tier.input_per_mtok
        + usage.completion_tokens as f64 * tier.output_per_mtok
}

/// Envoy counters are integers: each request adds its cost rounded to the micro-dollar.
fn counted_cost(tier: &str, usage: Usage) -> i64 {
    cost(tier, usage).round() as i64
}

#[test]
fn the_test_prices_round_per_request() {
    assert_eq!(cost("mid", USAGE), 3682.5);
    assert_eq!(counted_cost("mid", USAGE), 3683);
    assert_eq!(counted_cost("small", USAGE), 221);
    assert_eq!(counted_cost("frontier", USAGE), 14_730);
}

fn api_name(path: &str) -> &'static str {
    match path {
        CHAT => "openai_chat",
        RESPONSES => "openai_responses",
        _ => "anthropic_messages",
    }
}

/// A simple request of the format `path` serves, asking for `"model": "auto"`.
fn request_body(path: &str) -> String {
    match path {
        CHAT => chat_body("auto", SIMPLE),
        RESPONSES => json!({"model": "auto", "input": SIMPLE}).to_string(),
        _ => json!({
            "model": "auto", "max_tokens": 256,
            "messages": [{"role": "user", "content": SIMPLE}]
        })
        .to_string(),
    }
}

/// A JSON response reporting [`USAGE`]; decoys named `usage` sit where no format puts usage.
fn json_response(path: &str) -> Vec<u8> {
    let body = match path {
        CHAT => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "positive \"usage\": {\"prompt_tokens\": 9}"}}],
            "usage": {"prompt_tokens": 1237, "completion_tokens": 59, "total_tokens": 1296,
                      "prompt_tokens_details": {"cached_tokens": 1024}}
        }),
        RESPONSES => json!({
            "id": "resp_1", "object": "response", "status": "completed",
            "output": [{"type": "message", "role": "assistant", "usage": {"input_tokens": 9},
                        "content": [{"type": "output_text", "text": "positive", "annotations": []}]}],
            "usage": {"input_tokens": 1237, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": 59, "output_tokens_details": {"reasoning_tokens": 11},
                      "total_tokens": 1296}
        }),
        _ => json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": "positive"}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 1000, "cache_creation_input_tokens": 200,
                      "cache_read_input_tokens": 37, "output_tokens": 59}
        }),
    };
    body.to_string().into_bytes()
}

fn events(events: &[(Option<&str>, Value)]) -> Vec<u8> {
    let mut stream = String::new();
    for (name, data) in events {
        if let Some(name) = name {
            stream.push_str(&format!("event: {name}\n"));
        }
        stream.push_str(&format!("data: {data}\n\n"));
    }
    stream.into_bytes()
}

/// An OpenAI chat stream; with `include_usage` every chunk has a `usage` field, null but in the
/// last one, which carries [`USAGE`] (OpenAI's `stream_options.include_usage`).
fn chat_stream(include_usage: bool) -> Vec<u8> {
    let chunk = |choices: Value, usage: Value| {
        let mut chunk = json!({"id": "c1", "object": "chat.completion.chunk", "choices": choices});
        if include_usage {
            chunk["usage"] = usage;
        }
        (None, chunk)
    };
    let mut chunks = vec![
        chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": ""}}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {"content": "posi\"usage\": {\"prompt_tokens\": 9}"}}]),
            Value::Null,
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            Value::Null,
        ),
    ];
    if include_usage {
        chunks.push(chunk(
            json!([]),
            json!({"prompt_tokens": 1237, "completion_tokens": 59, "total_tokens": 1296}),
        ));
    }
    let mut stream = events(&chunks);
    stream.extend(b"data: [DONE]\n\n");
    stream
}

/// An event stream of the format `path` serves, reporting [`USAGE`] the way that API does.
fn sse_response(path: &str) -> Vec<u8> {
    match path {
        CHAT => chat_stream(true),
        RESPONSES => events(&[
            (
                Some("response.created"),
                json!({"type": "response.created", "sequence_number": 0,
                       "response": {"id": "resp_1", "status": "in_progress", "output": [], "usage": null}}),
            ),
            (
                Some("response.output_text.delta"),
                json!({"type": "response.output_text.delta", "sequence_number": 1,
                       "delta": "positive \"usage\": {\"input_tokens\": 9}"}),
            ),
            (
                Some("response.completed"),
                json!({"type": "response.completed", "sequence_number": 2, "response": {
                    "id": "resp_1", "status": "completed",
                    "output": [{"type": "message", "content": [{"type": "output_text", "text": "positive"}]}],
                    "usage": {"input_tokens": 1237, "output_tokens": 59, "total_tokens": 1296}}}),
            ),
        ]),
        _ => events(&[
            (
                Some("message_start"),
                json!({"type": "message_start", "message": {
                    "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                    "model": "claude-haiku-4-5",
                    "usage": {"input_tokens": 1000, "cache_creation_input_tokens": 200,
                              "cache_read_input_tokens": 37, "output_tokens": 1}}}),
            ),
            (
                Some("content_block_start"),
                json!({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": ""}}),
            ),
            (Some("ping"), json!({"type": "ping"})),
            (
                Some("content_block_delta"),
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": "positive"}}),
            ),
            (
                Some("content_block_stop"),
                json!({"type": "content_block_stop", "index": 0}),
            ),
            (
                Some("message_delta"),
                json!({"type": "message_delta",
                       "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                       "usage": {"output_tokens": 59}}),
            ),
            (Some("message_stop"), json!({"type": "message_stop"})),
        ]),
    }
}

#[derive(Clone)]
struct Request {
    path: &'static str,
    id: String,
    body: String,
    headers: Vec<(String, String)>,
}

impl Request {
    /// A POST of `body` to `path` carrying `x-request-id: id`.
    fn new(path: &'static str, body: String, id: &str) -> Request {
        let mut headers = post_headers(path, body.len());
        headers.push(("x-request-id".into(), id.into()));
        Request {
            path,
            id: id.into(),
            body,
            headers,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The request headers the decision reads, lowercase, as the native core takes them.
    fn native_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(name, _)| !name.starts_with(':'))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect()
    }
}

struct Response<'a> {
    status: &'a str,
    content_type: &'a str,
    body: &'a [u8],
    chunk_sizes: &'a [usize],
}

impl Response<'_> {
    fn ok<'a>(content_type: &'a str, body: &'a [u8], chunk_sizes: &'a [usize]) -> Response<'a> {
        Response {
            status: "200",
            content_type,
            body,
            chunk_sizes,
        }
    }
}

const DECISION_ID_HEADER: &str = "x-triage-decision-id";

/// 8-4-4-4-12 lowercase hex with version nibble 4 and the RFC 4122 variant.
fn assert_uuid_v4(id: &str) {
    let groups: Vec<&str> = id.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|group| group.len()).collect();
    assert_eq!(lengths, [8, 4, 4, 4, 12], "{id}");
    assert!(
        id.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{id}"
    );
    assert!(groups[2].starts_with('4'), "version 4: {id}");
    assert!(
        groups[3].starts_with(['8', '9', 'a', 'b']),
        "RFC 4122 variant: {id}"
    );
}

/// What one request (and its response, if any) through the filter left behind.
struct Exchange {
    upstream_headers: HeaderMap,
    upstream_body: Vec<u8>,
    /// The routing header as the router matched on it.
    routed: Option<String>,
    route_cache_clears: usize,
    downstream_headers: Option<HeaderMap>,
    record: DecisionRecord,
    record_json: Value,
}

impl Exchange {
    fn downstream_header(&self, name: &str) -> Option<&str> {
        self.downstream_headers.as_ref()?.get(name)
    }

    fn upstream_model(&self) -> Value {
        serde_json::from_slice::<Value>(&self.upstream_body).unwrap()["model"].clone()
    }
}

/// Sends `request` whole, then `response` (headers, then the body cut at its chunk sizes), ends the
/// stream and reads the decision record the filter stored for it.
fn exchange(host: &mut Host, request: &Request, response: Option<Response>) -> Exchange {
    let mut stream = host.request().unwrap();
    send_request(&mut stream, &request.headers, request.body.as_bytes(), &[]);
    assert!(
        stream.upstream_complete(),
        "the request went upstream whole"
    );
    let upstream_headers = stream.upstream_headers().unwrap().clone();
    if let Some(response) = &response {
        let headers = [
            (":status", response.status),
            ("content-type", response.content_type),
            // An upstream's header of that name never reaches the client.
            (DECISION_ID_HEADER, "forged-by-the-upstream"),
        ];
        let mut actions = vec![stream.send_response_headers(&headers, false).unwrap()];
        let chunks = split(response.body, response.chunk_sizes);
        let last = chunks.len() - 1;
        for (index, chunk) in chunks.into_iter().enumerate() {
            actions.push(stream.send_response_body(chunk, index == last).unwrap());
        }
        assert!(
            actions.iter().all(|action| *action == Action::Continue),
            "nothing of the response is held back: {actions:?}"
        );
        assert_eq!(stream.downstream_body(), response.body);
        assert!(stream.downstream_complete());
        assert!(
            stream.host().property(&["triage_record"]).is_some(),
            "settled at the end of the response, before the stream ends"
        );
    }
    let upstream_body = stream.upstream_body().to_vec();
    let routed = stream
        .routing_headers()
        .get("x-triage-route")
        .map(str::to_string);
    let route_cache_clears = stream.route_cache_clears();
    let downstream_headers = stream.downstream_headers().cloned();
    stream.finish().unwrap();
    let (record, record_json) = stored_record(host);
    assert_eq!(record.request_id, request.id);
    let decision_id = record
        .decision_id
        .as_deref()
        .expect("the host's random_get gives every decision an id");
    assert_uuid_v4(decision_id);
    assert_eq!(record_json["decision_id"], decision_id);
    if let Some(headers) = &downstream_headers {
        assert_eq!(
            headers.get(DECISION_ID_HEADER),
            Some(decision_id),
            "the client gets the record's decision id"
        );
    }
    assert_eq!(
        upstream_headers.get(DECISION_ID_HEADER),
        None,
        "the decision id is the client's, not the upstream's"
    );
    Exchange {
        upstream_headers,
        upstream_body,
        routed,
        route_cache_clears,
        downstream_headers,
        record,
        record_json,
    }
}

/// The record the filter stored last, typed and as the JSON line the access log writes.
fn stored_record(host: &Host) -> (DecisionRecord, Value) {
    let bytes = host
        .property(&["triage_record"])
        .expect("a decision record was stored");
    let line = std::str::from_utf8(bytes).unwrap();
    assert!(!line.contains('\n'), "one line: {line}");
    (
        serde_json::from_str(line).unwrap(),
        serde_json::from_str(line).unwrap(),
    )
}

/// Counter values by name; a name never added is expected at 0.
#[derive(Default)]
struct Counters(BTreeMap<String, i64>);

impl Counters {
    fn add(&mut self, name: String, by: i64) -> &mut Counters {
        *self.0.entry(name).or_default() += by;
        self
    }

    fn requests(&mut self, mode: &str, tier: &str, cause: &str, n: i64) -> &mut Counters {
        self.add(
            format!("triage.requests.mode.{mode}.tier.{tier}.cause.{cause}"),
            n,
        )
    }

    /// `n` requests served by `tier` (decided: `decided`) that used `usage`, priced.
    fn priced(&mut self, tier: &str, decided: &str, usage: Usage, n: i64) -> &mut Counters {
        self.add(
            format!("triage.tokens.tier.{tier}.kind.prompt"),
            n * usage.prompt_tokens as i64,
        )
        .add(
            format!("triage.tokens.tier.{tier}.kind.completion"),
            n * usage.completion_tokens as i64,
        )
        .add(
            format!("triage.cost_micro_usd.tier.{tier}"),
            n * counted_cost(tier, usage),
        )
        .add(
            format!("triage.top_tier_cost_micro_usd.tier.{tier}"),
            n * counted_cost(TOP_TIER, usage),
        )
        .add(
            format!("triage.decided_cost_micro_usd.tier.{decided}"),
            n * counted_cost(decided, usage),
        )
    }

    fn usage_unknown(&mut self, tier: &str, n: i64) -> &mut Counters {
        self.add(format!("triage.usage_unknown.tier.{tier}"), n)
    }

    /// Each listed counter has its value and every other counter the filter defined is 0.
    fn assert_on(&self, host: &Host) {
        let defined = host.metric_names();
        for name in self.0.keys() {
            assert!(defined.contains(&name.as_str()), "{name} is not defined");
        }
        let wrong: Vec<String> = defined
            .iter()
            .filter(|name| !HISTOGRAMS.contains(name) && **name != VM_MEMORY_GAUGE)
            .filter_map(|name| {
                let expected = self.0.get(*name).copied().unwrap_or(0);
                let value = host.metric(name).unwrap();
                (value != expected).then(|| format!("{name} = {value}, expected {expected}"))
            })
            .collect();
        assert!(wrong.is_empty(), "counters: {wrong:#?}");
    }
}

fn assert_close(value: Option<f64>, expected: f64, what: &str) {
    let value = value.unwrap_or_else(|| panic!("{what} is null"));
    assert!(
        (value - expected).abs() < 1e-6,
        "{what}: {value}, expected {expected}"
    );
}

/// The record of an enforced, scored request served and priced with `usage`.
fn assert_scored_and_priced(exchange: &Exchange, request: &Request, config: &str, usage: Usage) {
    let decision = native_with(
        config,
        request.path,
        &request.native_headers(),
        request.body.as_bytes(),
    );
    let record = &exchange.record;
    assert_eq!(record.v, triage_core::RECORD_VERSION);
    assert_eq!(record.start_ms, HOST_CLOCK_MS);
    assert_eq!(record.api, api_name(request.path));
    assert_eq!(record.mode, Applied::Enforce);
    assert_eq!(record.tier, decision.tier);
    assert_eq!(record.decided_tier, decision.tier);
    assert_eq!(record.cause, "scored");
    assert_eq!(record.score, decision.score);
    assert_eq!(record.reasons, decision.reasons);
    assert_eq!(record.requested_model.as_deref(), Some("auto"));
    assert_eq!(record.model, decision.model);
    assert_eq!(exchange.upstream_model(), json!(decision.model));
    assert_eq!(exchange.routed.as_deref(), Some(&*decision.tier));
    assert_eq!(record.status, Some(200));
    assert_eq!(record.usage, Some(usage));
    assert_close(record.cost_micro_usd, cost(&decision.tier, usage), "cost");
    assert_close(
        record.top_tier_cost_micro_usd,
        cost(TOP_TIER, usage),
        "top-tier cost",
    );
    assert_close(
        record.decided_cost_micro_usd,
        cost(&decision.tier, usage),
        "decided cost",
    );
    assert!(record.override_.is_none() && record.fail_open.is_none() && record.rule.is_none());
    assert!(
        record.request.is_none(),
        "no body without record.request_body_bytes"
    );
}

/// Sends the simple request of `path` once per chunking of `response` through one VM and checks
/// every record and, at the end, the counters: each request adds its own rounded cost.
fn usage_in_every_chunking(
    path: &'static str,
    content_type: &str,
    response: &[u8],
    chunkings: &[Vec<usize>],
) {
    let config = priced_config(json!({}));
    let mut host = Host::start(&config).unwrap();
    let mut tier = String::new();
    for (index, chunk_sizes) in chunkings.iter().enumerate() {
        let request = Request::new(path, request_body(path), &format!("{path}-{index}"));
        let outcome = exchange(
            &mut host,
            &request,
            Some(Response::ok(content_type, response, chunk_sizes)),
        );
        assert_scored_and_priced(&outcome, &request, &config, USAGE);
        tier.clone_from(&outcome.record.tier);
    }
    let n = chunkings.len() as i64;
    Counters::default()
        .requests("enforce", &tier, "scored", n)
        .priced(&tier, &tier, USAGE, n)
        .assert_on(&host);
    assert_eq!(
        host.histogram("triage.decision_us").unwrap().len(),
        chunkings.len()
    );
    assert_no_warnings(&host);
}

/// Whole, one byte at a time, and `random` random chunkings of a body of `len` bytes.
fn chunkings(len: usize, random: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = Rng(seed);
    let mut all = vec![Vec::new(), vec![1; len]];
    all.extend((0..random).map(|_| (0..12).map(|_| rng.below(len / 4 + 2)).collect()));
    all
}

#[test]
fn json_usage_of_each_api_is_priced_and_counted_in_any_chunking() {
    for (seed, path) in [CHAT, RESPONSES, MESSAGES].into_iter().enumerate() {
        let response = json_response(path);
        let chunkings = chunkings(response.len(), 8, 0x0b5e + seed as u64);
        usage_in_every_chunking(path, JSON, &response, &chunkings);
    }
}

#[test]
fn sse_usage_of_each_api_is_read_with_events_split_at_every_byte() {
    for (seed, path) in [CHAT, RESPONSES, MESSAGES].into_iter().enumerate() {
        let response = sse_response(path);
        let mut chunkings = chunkings(response.len(), 8, 0x55e + seed as u64);
        chunkings.extend((1..response.len()).map(|at| vec![at]));
        usage_in_every_chunking(path, EVENT_STREAM, &response, &chunkings);
    }
}

#[test]
fn a_stream_without_usage_counts_unknown_never_zero() {
    let config = priced_config(json!({}));
    let mut host = Host::start(&config).unwrap();
    let body = chat_stream(false);
    let request = Request::new(CHAT, request_body(CHAT), "no-usage");
    let outcome = exchange(
        &mut host,
        &request,
        Some(Response::ok(EVENT_STREAM, &body, &[40, 40, 40])),
    );
    let record = &outcome.record;
    assert_eq!(record.status, Some(200));
    for field in [
        "usage",
        "cost_micro_usd",
        "top_tier_cost_micro_usd",
        "decided_cost_micro_usd",
    ] {
        assert_eq!(
            outcome.record_json.get(field),
            Some(&Value::Null),
            "{field} is written, as null"
        );
    }
    let error = br#"{"error": {"type": "server_error", "message": "try again"}}"#;
    let failed = Request::new(CHAT, request_body(CHAT), "upstream-error");
    let response = Response {
        status: "500",
        content_type: JSON,
        body: error,
        chunk_sizes: &[],
    };
    let outcome = exchange(&mut host, &failed, Some(response));
    assert_eq!(outcome.record.status, Some(500));
    assert_eq!(outcome.record.usage, None);
    assert_eq!(outcome.record.cost_micro_usd, None);
    let tier = &record.tier;
    Counters::default()
        .requests("enforce", tier, "scored", 2)
        .usage_unknown(tier, 2)
        .assert_on(&host);
    assert_no_warnings(&host);
}

/// A simple request body whose native tier is not the default one, so that shadowing shows.
fn body_not_for_the_default_tier(config: &str) -> (String, triage_core::Decision) {
    let candidates = [chat_body("auto", SIMPLE), chat_body("auto", HARD)];
    candidates
        .into_iter()
        .map(|body| {
            let decision = native_with(config, CHAT, &[], body.as_bytes());
            (body, decision)
        })
        .find(|(_, decision)| decision.tier != DEFAULT_TIER)
        .expect("one of the bodies is scored away from the default tier")
}

#[test]
fn shadow_mode_decides_and_records_but_changes_nothing_upstream() {
    let config = priced_config(json!({"mode": "shadow"}));
    let (body, decision) = body_not_for_the_default_tier(&config);
    let mut host = Host::start(&config).unwrap();
    let request = Request::new(CHAT, body, "shadowed");
    let response = json_response(CHAT);
    let outcome = exchange(
        &mut host,
        &request,
        Some(Response::ok(JSON, &response, &[])),
    );
    assert_eq!(
        outcome.upstream_headers,
        HeaderMap::from_pairs(&request.headers),
        "the upstream gets the request headers exactly as sent"
    );
    assert_eq!(outcome.upstream_body, request.body.as_bytes());
    assert_eq!(outcome.routed, None);
    assert_eq!(outcome.route_cache_clears, 0);
    assert_eq!(outcome.downstream_header("x-triage-mode"), Some("shadow"));
    assert_eq!(
        outcome.downstream_header("x-triage-tier"),
        Some(&*decision.tier)
    );
    assert_eq!(
        outcome.downstream_header("x-triage-score"),
        decision.score_header().as_deref()
    );
    assert_eq!(
        outcome.downstream_header("x-triage-reason"),
        Some(&*decision.reason_header())
    );
    let record = &outcome.record;
    assert_eq!(record.mode, Applied::Shadow);
    assert_eq!(record.tier, DEFAULT_TIER, "served by the default route");
    assert_eq!(record.decided_tier, decision.tier);
    assert_eq!(record.cause, "scored");
    assert_eq!(record.model, None, "nothing was written into the body");
    assert_eq!(record.usage, Some(USAGE));
    assert_close(record.cost_micro_usd, cost(DEFAULT_TIER, USAGE), "cost");
    assert_close(
        record.decided_cost_micro_usd,
        cost(&decision.tier, USAGE),
        "decided cost",
    );
    assert_close(
        record.top_tier_cost_micro_usd,
        cost(TOP_TIER, USAGE),
        "top-tier cost",
    );
    Counters::default()
        .requests("shadow", &decision.tier, "scored", 1)
        .priced(DEFAULT_TIER, &decision.tier, USAGE, 1)
        .assert_on(&host);
    assert_no_warnings(&host);
}

#[test]
fn an_enforced_response_carries_no_mode_header() {
    let mut host = Host::start(&priced_config(json!({}))).unwrap();
    let request = Request::new(CHAT, request_body(CHAT), "enforced");
    let response = json_response(CHAT);
    let outcome = exchange(
        &mut host,
        &request,
        Some(Response::ok(JSON, &response, &[])),
    );
    assert_eq!(outcome.downstream_header("x-triage-mode"), None);
    assert_eq!(
        outcome.downstream_header("x-triage-tier"),
        Some(&*outcome.record.tier)
    );
}

fn override_config() -> String {
    priced_config(json!({"identity": {"caller": {"header": "x-caller"}},
                         "override": {"callers": ["ops"]}}))
}

/// The tier triage picks for the simple chat request, and another one to ask for.
fn override_target(config: &str) -> (String, &'static str) {
    let chosen = native_with(config, CHAT, &[], request_body(CHAT).as_bytes()).tier;
    let wanted = if chosen == TOP_TIER {
        "small"
    } else {
        TOP_TIER
    };
    (chosen, wanted)
}

#[test]
fn an_allowed_caller_overrides_the_tier() {
    let config = override_config();
    let (chosen, wanted) = override_target(&config);
    let mut host = Host::start(&config).unwrap();
    let request = Request::new(CHAT, request_body(CHAT), "overridden")
        .header("X-Caller", "ops")
        .header("x-triage-override", wanted);
    let response = json_response(CHAT);
    let outcome = exchange(
        &mut host,
        &request,
        Some(Response::ok(JSON, &response, &[])),
    );
    assert_eq!(outcome.routed.as_deref(), Some(wanted));
    assert_eq!(
        outcome.upstream_headers.get("x-triage-override"),
        None,
        "the override header is triage's own: it never reaches the upstream"
    );
    assert_eq!(outcome.upstream_headers.get("x-caller"), Some("ops"));
    let model = TIERS.iter().find(|tier| tier.name == wanted).unwrap().model;
    assert_eq!(outcome.upstream_model(), model);
    let reason = format!("override: {chosen}->{wanted}");
    assert_eq!(
        outcome.upstream_headers.get("x-triage-reason"),
        Some(&*reason)
    );
    assert_eq!(outcome.downstream_header("x-triage-reason"), Some(&*reason));
    let record = &outcome.record;
    assert_eq!(record.cause, "override");
    assert_eq!(
        record.caller.as_deref(),
        Some("ops"),
        "who overrode, as verified"
    );
    assert_eq!((&*record.tier, &*record.decided_tier), (wanted, wanted));
    let change = record.override_.as_ref().unwrap();
    assert_eq!((&*change.from, &*change.to), (&*chosen, wanted));
    assert_eq!(record.model.as_deref(), Some(model));
    assert_close(record.cost_micro_usd, cost(wanted, USAGE), "cost");
    Counters::default()
        .requests("enforce", wanted, "override", 1)
        .add(format!("triage.overrides.from.{chosen}.to.{wanted}"), 1)
        .priced(wanted, wanted, USAGE, 1)
        .assert_on(&host);
    assert_no_warnings(&host);
}

#[test]
fn an_override_from_a_caller_not_allowed_is_ignored_and_stripped() {
    let config = override_config();
    let (chosen, wanted) = override_target(&config);
    let mut host = Host::start(&config).unwrap();
    let callers = [
        ("x-caller", "someone-else"),
        ("x-other", "ops"),
        ("x-caller", "OPS"),
    ];
    for (index, (name, value)) in callers.into_iter().enumerate() {
        let request = Request::new(CHAT, request_body(CHAT), &format!("not-allowed-{index}"))
            .header(name, value)
            .header("x-triage-override", wanted);
        let outcome = exchange(&mut host, &request, None);
        assert_eq!(outcome.routed.as_deref(), Some(&*chosen), "{name}: {value}");
        assert_eq!(outcome.upstream_headers.get("x-triage-override"), None);
        assert_eq!(outcome.record.cause, "scored");
        assert_eq!(outcome.record.override_, None);
        assert_eq!(outcome.record_json["override"], Value::Null);
        let caller = (name == "x-caller").then_some(value);
        assert_eq!(outcome.record.caller.as_deref(), caller);
    }
    let unknown_tier = Request::new(CHAT, request_body(CHAT), "unknown-tier")
        .header("x-caller", "ops")
        .header("x-triage-override", "gold");
    let outcome = exchange(&mut host, &unknown_tier, None);
    assert_eq!(outcome.routed.as_deref(), Some(&*chosen));
    assert_eq!(outcome.record.cause, "scored");
    Counters::default()
        .requests("enforce", &chosen, "scored", 4)
        .usage_unknown(&chosen, 4)
        .assert_on(&host);
}

/// Where jwt_authn's `payload_in_metadata: jwt_payload` puts a claim, as the host property path.
fn jwt_claim(claim: &str) -> [&str; 5] {
    [
        "metadata",
        "filter_metadata",
        "envoy.filters.http.jwt_authn",
        "jwt_payload",
        claim,
    ]
}

#[test]
fn a_caller_and_tenant_from_dynamic_metadata_override_and_are_recorded() {
    let config = priced_config(json!({
        "identity": {
            "caller": {"metadata": {"namespace": "envoy.filters.http.jwt_authn", "path": ["jwt_payload", "sub"]}},
            "tenant": {"metadata": {"namespace": "envoy.filters.http.jwt_authn", "path": ["jwt_payload", "team"]}}
        },
        "override": {"callers": ["ops"]}
    }));
    let (chosen, wanted) = override_target(&config);
    let request =
        Request::new(CHAT, request_body(CHAT), "from-metadata").header("x-triage-override", wanted);

    let mut host = HostOptions::default()
        .property(&jwt_claim("sub"), b"ops")
        .property(&jwt_claim("team"), b"legal")
        .start(&config)
        .unwrap();
    let outcome = exchange(&mut host, &request, None);
    assert_eq!(outcome.routed.as_deref(), Some(wanted));
    assert_eq!(outcome.record.caller.as_deref(), Some("ops"));
    assert_eq!(outcome.record.tenant.as_deref(), Some("legal"));
    assert_no_warnings(&host);

    // A claim that is no caller's name (here serialized bytes of another type) is no identity.
    let mut host = HostOptions::default()
        .property(&jwt_claim("sub"), b"\x08\x01")
        .start(&config)
        .unwrap();
    let outcome = exchange(&mut host, &request, None);
    assert_eq!(outcome.routed.as_deref(), Some(&*chosen));
    assert_eq!(outcome.record.caller, None);

    // Without the metadata (an anonymous request), nothing the client sends stands in for it.
    let mut host = Host::start(&config).unwrap();
    let forged = request.clone().header("x-jwt-payload-sub", "ops");
    let outcome = exchange(&mut host, &forged, None);
    assert_eq!(outcome.routed.as_deref(), Some(&*chosen));
    assert_eq!((outcome.record.caller, outcome.record.tenant), (None, None));
    assert_no_warnings(&host);
}

#[test]
fn a_stream_that_ends_without_a_response_still_records_and_counts() {
    let config = priced_config(json!({}));
    let mut host = Host::start(&config).unwrap();
    let request = Request::new(CHAT, request_body(CHAT), "no-response");
    let mut stream = host.request().unwrap();
    send_request(&mut stream, &request.headers, request.body.as_bytes(), &[]);
    assert_eq!(
        stream.host().property(&["triage_record"]),
        None,
        "settled only when the stream ends"
    );
    stream.finish().unwrap();
    let (record, json) = stored_record(&host);
    assert_eq!(record.request_id, "no-response");
    assert_eq!(record.status, None);
    assert_eq!(json["status"], Value::Null);
    assert_eq!(record.usage, None);
    assert_eq!(record.cost_micro_usd, None);
    let tier = native_with(&config, CHAT, &[], request.body.as_bytes()).tier;
    assert_eq!(record.tier, tier);
    Counters::default()
        .requests("enforce", &tier, "scored", 1)
        .usage_unknown(&tier, 1)
        .assert_on(&host);
    assert_eq!(host.histogram("triage.decision_us").unwrap().len(), 1);
    assert_no_warnings(&host);
}

#[test]
fn a_response_cut_off_before_its_usage_records_the_status_and_unknown_usage() {
    let config = priced_config(json!({}));
    let mut host = Host::start(&config).unwrap();
    let response = json_response(CHAT);
    let usage_at = std::str::from_utf8(&response)
        .unwrap()
        .rfind("\"usage\"")
        .unwrap();
    let request = Request::new(CHAT, request_body(CHAT), "cut-off");
    let mut stream = host.request().unwrap();
    send_request(&mut stream, &request.headers, request.body.as_bytes(), &[]);
    stream
        .send_response_headers(&[(":status", "200"), ("content-type", JSON)], false)
        .unwrap();
    stream
        .send_response_body(&response[..usage_at], false)
        .unwrap();
    assert_eq!(stream.host().property(&["triage_record"]), None);
    stream.finish().unwrap();
    let (record, _) = stored_record(&host);
    assert_eq!(record.status, Some(200));
    assert_eq!(record.usage, None);
    let tier = record.tier.clone();
    Counters::default()
        .requests("enforce", &tier, "scored", 1)
        .usage_unknown(&tier, 1)
        .assert_on(&host);
}

#[test]
fn the_response_ends_in_headers_or_trailers_and_settles_there() {
    let config = priced_config(json!({}));
    let mut host = Host::start(&config).unwrap();
    let request = Request::new(CHAT, request_body(CHAT), "headers-only");
    let mut stream = host.request().unwrap();
    send_request(&mut stream, &request.headers, request.body.as_bytes(), &[]);
    stream
        .send_response_headers(&[(":status", "503")], true)
        .unwrap();
    let (record, _) = stored_record(stream.host());
    assert_eq!(
        (record.request_id.as_str(), record.status, record.usage),
        ("headers-only", Some(503), None)
    );
    stream.finish().unwrap();

    let request = Request::new(CHAT, request_body(CHAT), "trailers");
    let response = json_response(CHAT);
    let mut stream = host.request().unwrap();
    send_request(&mut stream, &request.headers, request.body.as_bytes(), &[]);
    stream
        .send_response_headers(&[(":status", "200"), ("content-type", JSON)], false)
        .unwrap();
    stream.send_response_body(&response, false).unwrap();
    stream
        .send_response_trailers(&[("grpc-status", "0")])
        .unwrap();
    let (record, _) = stored_record(stream.host());
    assert_eq!(
        (record.request_id.as_str(), record.status, record.usage),
        ("trailers", Some(200), Some(USAGE))
    );
    stream.finish().unwrap();
    let (after_end, _) = stored_record(&host);
    assert_eq!(after_end.request_id, "trailers");
    let tier = record.tier;
    Counters::default()
        .requests("enforce", &tier, "scored", 2)
        .usage_unknown(&tier, 1)
        .priced(&tier, &tier, USAGE, 1)
        .assert_on(&host);
    assert_no_warnings(&host);
}

#[test]
fn requests_triage_does_not_route_leave_no_record_and_count_nothing() {
    let mut host = Host::start(&priced_config(json!({}))).unwrap();
    let mut stream = host.request().unwrap();
    stream
        .send_request_headers(
            &[
                (":method", "GET"),
                (":path", "/v1/models"),
                ("x-request-id", "get"),
            ],
            true,
        )
        .unwrap();
    stream
        .send_response_headers(&[(":status", "200"), ("content-type", JSON)], false)
        .unwrap();
    stream
        .send_response_body(&json_response(CHAT), true)
        .unwrap();
    stream.finish().unwrap();
    assert_eq!(host.property(&["triage_record"]), None);
    Counters::default().assert_on(&host);
    for name in HISTOGRAMS {
        assert_eq!(host.histogram(name), Some(&[][..]), "{name}");
    }
}

#[test]
fn histograms_hold_each_decision_time_and_each_score() {
    let config = priced_config(json!({}));
    // A clock that moves on 1 µs per read, so a decision takes measurable time.
    let mut host = HostOptions::default()
        .clock_step(1_000)
        .start(&config)
        .unwrap();
    let bodies = [
        chat_body("auto", SIMPLE),
        chat_body("gpt-4o", SIMPLE),
        "{broken".to_string(),
        chat_body("auto", HARD),
        chat_body("auto", &"Summarise this trade-off in one line. ".repeat(30)),
    ];
    let mut decision_us = Vec::new();
    let mut permille = Vec::new();
    for (index, body) in bodies.into_iter().enumerate() {
        let request = Request::new(CHAT, body, &format!("timed-{index}"));
        let outcome = exchange(&mut host, &request, None);
        let record = outcome.record;
        assert!(record.decision_us > 0, "the decision took clock time");
        decision_us.push(record.decision_us);
        let header = outcome.upstream_headers.get("x-triage-score");
        assert_eq!(header.is_some(), record.score.is_some());
        if let (Some(score), Some(header)) = (record.score, header) {
            let value = (score * 1000.0).round() as u64;
            let from_header: f64 = header.parse::<f64>().unwrap() * 1000.0;
            assert!(
                (value as f64 - from_header).abs() <= 1.0,
                "{value} ‰ against the header {header}"
            );
            permille.push(value);
        }
    }
    assert_eq!(
        permille.len(),
        3,
        "the explicit model and the fail-open are not scored"
    );
    assert_eq!(host.histogram("triage.decision_us").unwrap(), decision_us);
    assert_eq!(host.histogram("triage.score_permille").unwrap(), permille);
    assert_no_warnings(&host);
}

#[test]
fn a_canary_enforces_the_requests_its_ids_pick_and_shadows_the_rest() {
    let config = priced_config(json!({"mode": "canary", "canary_percent": 50.0}));
    let canary = Mode::Canary(50.0);
    let mut host = Host::start(&config).unwrap();
    let body = request_body(CHAT);
    let decision = native_with(&config, CHAT, &[], body.as_bytes());
    let mut enforced = 0;
    let total = 40;
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..total {
        // One client request id for all: the canary draws on the decision id, which it can't pick.
        let request = Request::new(CHAT, body.clone(), "7f3c-chosen-by-the-client");
        let response = json_response(CHAT);
        let outcome = exchange(
            &mut host,
            &request,
            Some(Response::ok(JSON, &response, &[])),
        );
        let id = outcome.record.decision_id.clone().unwrap();
        assert!(ids.insert(id.clone()), "a fresh decision id per request");
        let applied = canary.applied(Some(&id));
        assert_eq!(outcome.record.mode, applied, "{id}");
        assert_eq!(outcome.record.decided_tier, decision.tier);
        match applied {
            Applied::Enforce => {
                enforced += 1;
                assert_eq!(outcome.routed.as_deref(), Some(&*decision.tier), "{id}");
                assert_eq!(outcome.route_cache_clears, 1);
                assert_eq!(outcome.upstream_model(), json!(decision.model));
                assert_eq!(outcome.record.tier, decision.tier);
                assert_eq!(outcome.downstream_header("x-triage-mode"), None);
            }
            Applied::Shadow => {
                assert_eq!(outcome.routed, None, "{id}");
                assert_eq!(outcome.route_cache_clears, 0);
                assert_eq!(outcome.upstream_body, body.as_bytes());
                assert_eq!(
                    outcome.upstream_headers,
                    HeaderMap::from_pairs(&request.headers)
                );
                assert_eq!(outcome.record.tier, DEFAULT_TIER);
                assert_eq!(outcome.downstream_header("x-triage-mode"), Some("shadow"));
            }
        }
    }
    let shadowed = total - enforced;
    assert!(
        enforced > 0 && shadowed > 0,
        "{enforced} of {total} enforced under one client request id: a client can't pick its mode"
    );
    Counters::default()
        .requests("enforce", &decision.tier, "scored", enforced)
        .requests("shadow", &decision.tier, "scored", shadowed)
        .priced(&decision.tier, &decision.tier, USAGE, enforced)
        .priced(DEFAULT_TIER, &decision.tier, USAGE, shadowed)
        .assert_on(&host);
    assert_no_warnings(&host);
}

#[test]
fn the_record_carries_the_request_as_the_client_sent_it_up_to_the_cap() {
    let body = request_body(CHAT);
    let config = priced_config(json!({"record": {"request_body_bytes": body.len()}}));
    let mut host = Host::start(&config).unwrap();
    let outcome = exchange(&mut host, &Request::new(CHAT, body.clone(), "kept"), None);
    assert_ne!(
        outcome.upstream_body,
        body.as_bytes(),
        "the model was rewritten"
    );
    let kept = outcome
        .record
        .request
        .as_ref()
        .expect("the body fits the cap");
    assert_eq!(kept.get(), body, "the body as received, byte for byte");
    assert_eq!(outcome.record_json["request"]["model"], "auto");

    let longer = chat_body("auto", &format!("{SIMPLE} Thanks!"));
    let outcome = exchange(&mut host, &Request::new(CHAT, longer, "over-cap"), None);
    assert!(outcome.record.request.is_none());
    assert_eq!(outcome.record_json["request"], Value::Null);
}

/// A client's `x-request-id` is recorded as given but keys nothing: two requests sharing one get two
/// fresh decision ids, and a client's own `x-triage-decision-id` is dropped, never echoed.
#[test]
fn each_decision_gets_a_fresh_random_id_whatever_the_client_sends() {
    let config = priced_config(json!({}));
    let mut host = Host::start(&config).unwrap();
    let body = request_body(CHAT);
    let response = json_response(CHAT);
    let forged = "00000000-0000-4000-8000-000000000000";
    let requests = [
        Request::new(CHAT, body.clone(), "one-id-for-both"),
        Request::new(CHAT, body, "one-id-for-both").header(DECISION_ID_HEADER, forged),
    ];
    let outcomes: Vec<Exchange> = requests
        .iter()
        .map(|request| exchange(&mut host, request, Some(Response::ok(JSON, &response, &[]))))
        .collect();
    let ids: Vec<&str> = outcomes
        .iter()
        .map(|outcome| outcome.record.decision_id.as_deref().unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert!(!ids.contains(&forged), "{ids:?}");
    for outcome in &outcomes {
        assert_eq!(outcome.record.request_id, "one-id-for-both");
        assert_eq!(outcome.record_json["v"], triage_core::RECORD_VERSION);
    }
    assert_no_warnings(&host);
}

/// When the host's random source fails the request still goes through, decided: no id in the
/// response, a null `decision_id` in the record, a warning naming the cause, and a canary shadows
/// the request (there is nothing unpredictable to draw on). The next request with random bytes is
/// keyed and drawn again.
#[test]
fn without_random_bytes_a_request_goes_on_without_a_decision_id() {
    let config = priced_config(json!({"mode": "canary", "canary_percent": 100.0}));
    let mut host = Host::start(&config).unwrap();
    host.fail_random_get(Some(52));
    let body = request_body(CHAT);
    let response = json_response(CHAT);
    let request = Request::new(CHAT, body.clone(), "no-randomness");
    let mut stream = host.request().unwrap();
    send_request(&mut stream, &request.headers, body.as_bytes(), &[]);
    assert!(stream.upstream_complete(), "the request went on");
    assert_eq!(
        stream.upstream_body(),
        body.as_bytes(),
        "shadowed: untouched"
    );
    assert_eq!(stream.routing_headers().get("x-triage-route"), None);
    let headers = [
        (":status", "200"),
        ("content-type", JSON),
        (DECISION_ID_HEADER, "forged-by-the-upstream"),
    ];
    stream.send_response_headers(&headers, false).unwrap();
    stream.send_response_body(&response, true).unwrap();
    let downstream = stream.downstream_headers().unwrap().clone();
    stream.finish().unwrap();
    assert_eq!(downstream.get(DECISION_ID_HEADER), None);
    assert_eq!(downstream.get("x-triage-mode"), Some("shadow"));
    assert!(downstream.get("x-triage-tier").is_some(), "still decided");
    let (record, record_json) = stored_record(&host);
    assert_eq!(record.decision_id, None);
    assert!(record_json["decision_id"].is_null(), "{record_json}");
    assert_eq!(record.mode, Applied::Shadow);
    assert_eq!(record.status, Some(200));
    assert_eq!(record.request_id, "no-randomness");
    assert!(
        host.logged("no random bytes for a decision id"),
        "the cause is logged: {:#?}",
        host.logs()
    );

    host.fail_random_get(None);
    let outcome = exchange(
        &mut host,
        &Request::new(CHAT, request_body(CHAT), "random-again"),
        Some(Response::ok(JSON, &response, &[])),
    );
    assert_eq!(
        outcome.record.mode,
        Applied::Enforce,
        "a 100% canary with an id"
    );
    assert!(outcome.routed.is_some());
}
