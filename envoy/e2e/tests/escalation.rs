//! A cheap tier's failure or weak answer never reaches the client: each failure kind on the small
//! tier is answered by the mid tier, once, with the escalation stated in headers, counters and the
//! decision record; the bounds (one escalation, deadline, pinned models, opt-out, circuit breaker)
//! hold; a healthy request never escalates.
// The helpers below are test code too (clippy only exempts `#[test]` functions).
#![allow(clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::{json, Value};
use triage_e2e::bodies::{self, CHAT, MESSAGES, NEUTRAL, RESPONSES};
use triage_e2e::check::answered_model;
use triage_e2e::plugin_config::{self, FORCE_TIER_HEADER};
use triage_e2e::{Request, Response, Stack, StackOptions};

const FAIL: &str = "x-mock-fail";
const FAIL_TIER: &str = "x-mock-fail-tier";

/// A chat request forced to the small tier, whose mock misbehaves as `switch` says.
fn small_failing(body: String, switch: &str) -> Request {
    Request::post(CHAT, body)
        .header(FORCE_TIER_HEADER, "small")
        .header(FAIL, switch)
        .header(FAIL_TIER, "small")
}

fn chat() -> String {
    bodies::chat(Some("auto"), NEUTRAL)
}

fn with(body: &str, key: &str, value: Value) -> String {
    let mut parsed: Value = serde_json::from_str(body).expect("test body is JSON");
    parsed[key] = value;
    parsed.to_string()
}

fn records(stack: &Stack, expected: usize) -> Vec<Value> {
    let lines = stack.access_log(expected);
    assert_eq!(lines.len(), expected, "records:\n{}", lines.join("\n"));
    lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("record is JSON"))
        .collect()
}

fn escalations(stack: &Stack, cause: &str) -> f64 {
    stack.prometheus().sum(
        "triage_escalations",
        &[("from", "small"), ("to", "mid"), ("cause", cause)],
    )
}

/// The client got the mid tier's answer, exactly one, stating the escalation; each tier was asked
/// once and mid got its own model.
fn assert_escalated(stack: &Stack, response: &Response, cause: &str) {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("x-mock-tier"),
        Some("mid"),
        "{:?}",
        response.headers
    );
    assert_eq!(response.header("x-triage-tier"), Some("mid"));
    assert_eq!(response.header("x-triage-escalated"), Some("small->mid"));
    assert_eq!(response.header("x-triage-escalation-cause"), Some(cause));
    let received: Vec<String> = stack.received().into_iter().map(|(tier, _)| tier).collect();
    assert_eq!(received, ["small", "mid"], "one attempt per tier");
    let mid = &stack.mock("mid").received()[0];
    let sent: Value = serde_json::from_slice(&mid.body).expect("mid got JSON");
    assert_eq!(sent["model"], "gpt-4o", "mid got its own model");
    assert_eq!(
        mid.headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .map(|(_, v)| v.clone()),
        Some(mid.body.len().to_string()),
        "mid's framing matches its body"
    );
    assert_eq!(escalations(stack, cause), 1.0);
    let record = &records(stack, 1)[0];
    assert_eq!(record["tier"], "mid");
    assert_eq!(record["decided_tier"], "small");
    assert_eq!(record["escalations"][0]["from"], "small");
    assert_eq!(record["escalations"][0]["to"], "mid");
    assert_eq!(record["escalations"][0]["cause"], cause);
    assert_eq!(record["escalations"][0]["status"], 200);
    assert_eq!(record["status"], 200);
    assert_eq!(
        record["request_id"].as_str(),
        response.header("x-request-id"),
        "the escalated answer keeps the request id"
    );
    assert_eq!(
        record["decision_id"].as_str(),
        response.header("x-triage-decision-id"),
        "the escalated answer names the recorded decision"
    );
}

#[test]
fn failing_statuses_escalate_to_the_next_tier() {
    for (switch, cause) in [
        ("status=503", "status_5xx"),
        ("status=429", "status_429"),
        ("reset", "reset"),
    ] {
        let stack = Stack::start(&plugin_config::forcing());
        let response = stack.send(&small_failing(chat(), switch));
        assert_escalated(&stack, &response, cause);
        assert_eq!(answered_model(&response), "gpt-4o", "{switch}");
    }
}

#[test]
fn a_refused_connection_escalates() {
    // The small route points at a cluster whose only endpoint refuses connections.
    let options = StackOptions::triage(&plugin_config::forcing())
        .with_config_edit(
            "route: { cluster: \"tier_small\", timeout: 300s }",
            "route: { cluster: \"tier_dead\", timeout: 300s }",
        )
        .with_config_edit(
            "  clusters:\n",
            "  clusters:\n  - name: tier_dead\n    type: STATIC\n    connect_timeout: 1s\n    \
             load_assignment:\n      cluster_name: tier_dead\n      endpoints: [{ lb_endpoints: \
             [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9 } } } }] }]\n",
        );
    let stack = Stack::start_with(options);
    let response = stack.send(&Request::post(CHAT, chat()).header(FORCE_TIER_HEADER, "small"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-mock-tier"), Some("mid"));
    assert_eq!(
        response.header("x-triage-escalation-cause"),
        Some("connect_failure")
    );
    assert_eq!(escalations(&stack, "connect_failure"), 1.0);
}

#[test]
fn an_upstream_timeout_escalates() {
    let options = StackOptions::triage(&plugin_config::forcing()).with_config_edit(
        "route: { cluster: \"tier_small\", timeout: 300s }",
        "route: { cluster: \"tier_small\", timeout: 0.5s }",
    );
    let stack = Stack::start_with(options);
    let response = stack.send(&small_failing(chat(), "delay=2s"));
    assert_escalated(&stack, &response, "timeout");
}

#[test]
fn weak_answers_escalate() {
    let tools = json!([{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]);
    let cases = [
        ("empty", chat(), "empty"),
        ("truncate", chat(), "truncated"),
        ("refusal", chat(), "refusal"),
        (
            "badjson",
            with(&chat(), "response_format", json!({"type": "json_object"})),
            "invalid_json",
        ),
        (
            "badtool",
            with(&chat(), "tools", tools),
            "invalid_tool_args",
        ),
    ];
    for (switch, body, cause) in cases {
        let stack = Stack::start(&plugin_config::forcing());
        let response = stack.send(&small_failing(body, switch));
        assert_escalated(&stack, &response, cause);
        let record = &records(&stack, 1)[0];
        assert!(
            record["escalations"][0]["abandoned_usage"].is_object(),
            "the dropped answer's usage is kept: {record}"
        );
    }
}

/// A client capping the answer at a few tokens (a label) asked for a short answer: the cut goes
/// out from small, and mid is never asked.
#[test]
fn a_cut_at_the_client_s_tight_cap_is_served_as_it_is() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&small_failing(
        with(&chat(), "max_tokens", json!(4)),
        "truncate",
    ));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-mock-tier"), Some("small"));
    assert_eq!(response.header("x-triage-escalated"), None);
    assert!(stack.mock("mid").received().is_empty());
    assert_eq!(records(&stack, 1)[0]["escalations"], json!([]));
}

#[test]
fn weak_answers_escalate_on_every_api() {
    for (path, body) in [
        (RESPONSES, bodies::responses(Some("auto"), NEUTRAL)),
        (MESSAGES, bodies::messages(Some("auto"), NEUTRAL)),
    ] {
        let stack = Stack::start(&plugin_config::forcing());
        let request = Request::post(path, body)
            .header(FORCE_TIER_HEADER, "small")
            .header(FAIL, "truncate")
            .header(FAIL_TIER, "small");
        let response = stack.send(&request);
        assert_eq!(
            response.header("x-mock-tier"),
            Some("mid"),
            "{path}: {}",
            response.text()
        );
        assert_eq!(
            response.header("x-triage-escalation-cause"),
            Some("truncated"),
            "{path}"
        );
        let model = &stack.mock("mid").received()[0].body;
        let model: Value = serde_json::from_slice(model).expect("JSON");
        let expected = if path == MESSAGES {
            "claude-sonnet-4-5"
        } else {
            "gpt-4o"
        };
        assert_eq!(model["model"], expected, "{path}");
    }
}

#[test]
fn an_empty_stream_escalates_before_anything_reaches_the_client() {
    let stack = Stack::start(&plugin_config::forcing());
    let body = with(&chat(), "stream", json!(true));
    let response = stack.send(&small_failing(body, "empty"));
    assert_escalated(&stack, &response, "empty");
    assert!(response
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/event-stream")));
    let text = response.text();
    assert!(text.contains("[mock mid tier"), "mid's stream: {text}");
    assert!(
        !text.contains("[mock small tier"),
        "nothing of small's stream: {text}"
    );
}

#[test]
fn a_healthy_request_never_escalates() {
    let stack = Stack::start(&plugin_config::forcing());
    let plain = stack.send(&Request::post(CHAT, chat()).header(FORCE_TIER_HEADER, "small"));
    let streamed = stack.send(
        &Request::post(CHAT, with(&chat(), "stream", json!(true)))
            .header(FORCE_TIER_HEADER, "small"),
    );
    for response in [&plain, &streamed] {
        assert_eq!(response.status, 200);
        assert_eq!(response.header("x-mock-tier"), Some("small"));
        assert_eq!(response.header("x-triage-escalated"), None);
    }
    assert!(
        streamed.text().contains("data: [DONE]"),
        "the whole stream arrives"
    );
    assert_eq!(stack.received().len(), 2, "no second attempt");
    assert_eq!(stack.prometheus().sum("triage_escalations", &[]), 0.0);
    for record in records(&stack, 2) {
        assert_eq!(record["escalations"], json!([]));
    }
}

#[test]
fn at_most_one_escalation_then_the_first_answer_goes_out() {
    let stack = Stack::start(&plugin_config::forcing());
    let request = Request::post(CHAT, chat())
        .header(FORCE_TIER_HEADER, "small")
        .header(FAIL, "status=503")
        .header(FAIL_TIER, "small,mid");
    let response = stack.send(&request);
    assert_eq!(
        response.status,
        503,
        "small's own failure: {}",
        response.text()
    );
    assert_eq!(response.header("x-mock-tier"), Some("small"));
    assert_eq!(response.header("x-triage-escalated"), None);
    let tiers: Vec<String> = stack.received().into_iter().map(|(tier, _)| tier).collect();
    assert_eq!(tiers, ["small", "mid"], "frontier is never asked");
    let record = &records(&stack, 1)[0];
    assert_eq!(record["tier"], "small");
    assert_eq!(record["escalations"][0]["status"], 503);
}

#[test]
fn no_escalation_past_the_deadline_for_pinned_models_or_when_opted_out() {
    let mut config = plugin_config::forcing();
    config["escalation"]["deadline_ms"] = json!(300);
    let stack = Stack::start(&config);
    let late = stack.send(&small_failing(chat(), "status=503, delay=600ms"));
    assert_eq!(late.status, 503, "past the deadline: {}", late.text());
    assert_eq!(stack.received().len(), 1);

    let stack = Stack::start(&plugin_config::forcing());
    let pinned = Request::post(CHAT, bodies::chat(Some("gpt-4o-mini"), NEUTRAL))
        .header(FAIL, "status=503")
        .header(FAIL_TIER, "small");
    let response = stack.send(&pinned);
    assert_eq!(response.status, 503, "a pinned model stays where it is");
    assert_eq!(response.header("x-mock-tier"), Some("small"));
    let opted_out = small_failing(chat(), "status=503").header("x-triage-no-escalate", "1");
    assert_eq!(stack.send(&opted_out).status, 503);
    assert_eq!(stack.received().len(), 2, "no second attempt for either");
    assert_eq!(stack.prometheus().sum("triage_escalations", &[]), 0.0);
}

#[test]
fn the_circuit_breaker_opens_skips_the_tier_and_closes_after_the_cooldown() {
    let mut config = plugin_config::forcing();
    config["escalation"]["circuit_breaker"] =
        json!({"window": 4, "min_requests": 2, "failure_rate": 0.5, "cooldown_ms": 1500});
    let stack = Stack::start(&config);
    for _ in 0..2 {
        let response = stack.send(&small_failing(chat(), "status=503"));
        assert_eq!(response.header("x-mock-tier"), Some("mid"));
    }
    assert_eq!(stack.mock("small").received().len(), 2);

    // Open: a healthy request for small goes straight to mid, small is not asked.
    let healthy = || Request::post(CHAT, chat()).header(FORCE_TIER_HEADER, "small");
    let skipped = stack.send(&healthy());
    assert_eq!(skipped.status, 200);
    assert_eq!(skipped.header("x-mock-tier"), Some("mid"));
    assert_eq!(answered_model(&skipped), "gpt-4o");
    assert_eq!(
        stack.mock("small").received().len(),
        2,
        "small skipped while open"
    );
    assert_eq!(escalations(&stack, "circuit_open"), 1.0);
    let breaker_state = || {
        stack
            .prometheus()
            .sum("triage_breaker_state", &[("tier", "small")])
    };
    assert_eq!(breaker_state(), 2.0, "open");

    // After the cool-down small is tried again, succeeds, and the breaker closes.
    std::thread::sleep(Duration::from_millis(1700));
    for _ in 0..2 {
        let response = stack.send(&healthy());
        assert_eq!(response.header("x-mock-tier"), Some("small"));
    }
    assert_eq!(breaker_state(), 0.0, "closed");
    assert_eq!(stack.mock("small").received().len(), 4);
    let records = records(&stack, 5);
    let skipped_record = &records[2];
    assert_eq!(skipped_record["escalations"][0]["cause"], "circuit_open");
    assert_eq!(skipped_record["tier"], "mid");
    assert_eq!(
        skipped_record["decided_tier"], "small",
        "triage's own choice is kept"
    );
}

/// Envoy runs one VM per worker; the breaker lives in the data they share. With two workers, six
/// failures spread over both open small (a breaker per worker would have seen about three each,
/// under `min_requests`), and then every new connection, whichever worker takes it, skips small.
#[test]
fn the_workers_share_one_circuit_breaker() {
    let mut config = plugin_config::forcing();
    config["escalation"]["circuit_breaker"] =
        json!({"window": 10, "min_requests": 6, "failure_rate": 0.5, "cooldown_ms": 60000});
    let stack = Stack::start_with(StackOptions {
        concurrency: 2,
        ..StackOptions::triage(&config)
    });
    for _ in 0..6 {
        let response = stack.send(&small_failing(chat(), "status=503"));
        assert_eq!(response.header("x-mock-tier"), Some("mid"));
    }
    let healthy = || Request::post(CHAT, chat()).header(FORCE_TIER_HEADER, "small");
    for _ in 0..6 {
        let response = stack.send(&healthy());
        assert_eq!(
            response.header("x-mock-tier"),
            Some("mid"),
            "small is skipped"
        );
        assert_eq!(
            response.header("x-triage-escalation-cause"),
            Some("circuit_open")
        );
    }
    assert_eq!(stack.mock("small").received().len(), 6);
    // Each worker took some of the twelve connections, or the test proved nothing.
    let per_worker: Vec<u64> = (0..2)
        .map(|worker| worker_connections(&stack, worker))
        .collect();
    assert!(
        per_worker.iter().all(|&connections| connections > 0),
        "connections per worker: {per_worker:?}"
    );
}

/// Connections the listener handed to Envoy worker `worker` (admin `/stats`).
fn worker_connections(stack: &Stack, worker: u32) -> u64 {
    let suffix = format!(".worker_{worker}.downstream_cx_total");
    let stats = stack.admin_get("/stats").text();
    stats
        .lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(name, _)| name.starts_with("listener.") && name.ends_with(&suffix))
        .filter(|(name, _)| !name.contains("admin"))
        .filter_map(|(_, value)| value.trim().parse::<u64>().ok())
        .sum()
}

#[test]
fn a_low_mean_logprob_escalates_and_the_cheap_tier_is_asked_for_logprobs() {
    let mut config = plugin_config::forcing();
    config["escalation"]["request_logprobs"] = json!(true);
    config["escalation"]["checks"]["min_mean_logprob"] = json!(-1.0);
    let stack = Stack::start(&config);
    let confident = stack.send(&small_failing(chat(), "logprobs=-0.2"));
    assert_eq!(
        confident.header("x-mock-tier"),
        Some("small"),
        "{}",
        confident.text()
    );
    let small: Value =
        serde_json::from_slice(&stack.mock("small").received()[0].body).expect("JSON");
    assert_eq!(
        small["logprobs"], true,
        "the cheap tier was asked for logprobs"
    );

    let unsure = stack.send(&small_failing(chat(), "logprobs=-3"));
    assert_eq!(unsure.header("x-mock-tier"), Some("mid"));
    assert_eq!(
        unsure.header("x-triage-escalation-cause"),
        Some("low_logprob")
    );
    let mid: Value = serde_json::from_slice(&stack.mock("mid").received()[0].body).expect("JSON");
    // With one escalation allowed, mid's answer is final and not judged: no logprobs asked of it.
    assert!(mid.get("logprobs").is_none(), "{mid}");
}

/// The documented boundary: once the upstream's response has started, a transport reset can't be
/// rescued, because Envoy resets the client's stream itself.
#[test]
fn a_stream_broken_after_its_headers_is_not_rescued() {
    let stack = Stack::start(&plugin_config::forcing());
    let body = with(&chat(), "stream", json!(true));
    let mut connection = stack.connect();
    let outcome = connection.send(&small_failing(body, "broken-stream"));
    match outcome {
        Err(_) => {}
        Ok(response) => assert!(
            !response.text().contains("[mock mid tier"),
            "no switch to mid after small's response started: {}",
            response.text()
        ),
    }
    assert_eq!(stack.mock("mid").received().len(), 0, "mid never asked");
    let record = &records(&stack, 1)[0];
    assert_eq!(record["tier"], "small");
    assert_eq!(record["escalations"], json!([]));
}

#[test]
fn an_unknown_escalation_cluster_fails_open_without_crashing_the_vm() {
    // The filter's config names a cluster for mid that the gateway's config (made from the shipped
    // tiers) does not have.
    let mut config = plugin_config::forcing();
    config["tiers"][1]["cluster"] = json!("tier_missing");
    let stack = Stack::start_with(
        StackOptions::triage(&config).with_gateway_config(&plugin_config::forcing()),
    );
    let response = stack.send(&small_failing(chat(), "status=503"));
    assert_eq!(
        response.status,
        503,
        "small's own answer goes out: {}",
        response.text()
    );
    assert_eq!(response.header("x-mock-tier"), Some("small"));
    let next = stack.send(&Request::post(CHAT, chat()).header(FORCE_TIER_HEADER, "small"));
    assert_eq!(next.status, 200, "the VM still serves");
    assert_eq!(stack.stat("wasm.triage.vm_reload_success").unwrap_or(0), 0);
    assert!(
        stack
            .log()
            .contains("escalating to cluster tier_missing failed"),
        "the cause is logged"
    );
}
