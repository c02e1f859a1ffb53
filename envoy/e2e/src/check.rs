//! Assertions shared by the tests: what the client got and what the upstream received.

use mock_llm::Received;
use serde_json::Value;

use crate::http::Response;
use crate::stack::Stack;

/// The request was served by `tier`'s mock (answer and upstream agree), the triage headers on the
/// client's response name it, and the upstream got exactly `upstream_body`. Returns what the upstream
/// received.
pub fn routed(stack: &Stack, response: &Response, tier: &str, upstream_body: &str) -> Received {
    assert_eq!(
        response.status,
        200,
        "status (body: {})\n{}",
        response.text(),
        headers_of(response)
    );
    assert_eq!(response.header("x-mock-tier"), Some(tier), "x-mock-tier");
    assert_eq!(
        response.header("x-triage-tier"),
        Some(tier),
        "x-triage-tier"
    );
    assert!(
        response.header("x-triage-reason").is_some(),
        "x-triage-reason missing\n{}",
        headers_of(response)
    );
    let (served_by, received) = stack.only_upstream_request();
    assert_eq!(served_by, tier, "tier whose mock received the request");
    assert_body(&received, upstream_body);
    assert_eq!(
        upstream_header(&received, "x-triage-tier"),
        Some(tier),
        "x-triage-tier on the upstream request"
    );
    received
}

/// The wasm VM never failed during the stack's life: no panic or uncaught error in Envoy's log, and
/// no reload counted (`wasm.triage.vm_reload` itself never moves in Envoy 1.40, tests/vm_failure.rs;
/// these do).
pub fn assert_vm_never_failed(stack: &Stack) {
    let failures = vm_failures(stack);
    assert!(
        failures.is_empty(),
        "the VM failed: {}",
        failures.join("; ")
    );
}

/// What says the wasm VM failed during the stack's life (see [`assert_vm_never_failed`]), for
/// callers that report rather than panic.
pub fn vm_failures(stack: &Stack) -> Vec<String> {
    let mut failures = Vec::new();
    let log = stack.log();
    if let Some(line) = log
        .lines()
        .find(|line| line.contains("panicked") || line.contains("Uncaught"))
    {
        failures.push(format!("Envoy's log: {line}"));
    }
    for stat in [
        "vm_reload_backoff",
        "vm_reload_success",
        "vm_reload_failure",
    ] {
        let value = stack.stat(&format!("wasm.triage.{stat}"));
        if value != Some(0) {
            failures.push(format!("wasm.triage.{stat} is {value:?}, not 0"));
        }
    }
    failures
}

/// The upstream body is exactly `expected`, and its framing says so.
pub fn assert_body(received: &Received, expected: &str) {
    assert_eq!(
        String::from_utf8_lossy(&received.body),
        expected,
        "body the upstream received"
    );
    if let Some(length) = upstream_header(received, "content-length") {
        assert_eq!(
            length,
            received.body.len().to_string(),
            "upstream content-length vs the body it framed"
        );
    }
}

/// The model in the upstream's JSON answer, which echoes the model it received.
pub fn answered_model(response: &Response) -> String {
    response.json()["model"]
        .as_str()
        .unwrap_or_else(|| panic!("answer without a model: {}", response.text()))
        .to_owned()
}

pub fn upstream_header<'a>(received: &'a Received, name: &str) -> Option<&'a str> {
    received
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Every header whose name starts with `x-triage-`.
pub fn triage_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| name.starts_with("x-triage-"))
        .cloned()
        .collect()
}

fn headers_of(response: &Response) -> String {
    response
        .headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\n"))
        .collect()
}

/// The decision records in the access log, once there are `expected` of them (fails if there are
/// more or, after the wait, fewer).
pub fn records(stack: &Stack, expected: usize) -> Vec<Value> {
    let lines = stack.access_log(expected);
    assert_eq!(
        lines.len(),
        expected,
        "access log lines:\n{}",
        lines.join("\n")
    );
    lines
        .iter()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON record ({e}): {line}"))
        })
        .collect()
}

/// The record of the request the client's `response` answered (by its `x-request-id`).
pub fn record_of<'a>(records: &'a [Value], response: &Response) -> &'a Value {
    let id = response
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id on the response\n{}", headers_of(response)));
    records
        .iter()
        .find(|record| record["request_id"] == id)
        .unwrap_or_else(|| panic!("no record for request {id}: {records:?}"))
}
