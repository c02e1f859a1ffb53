//! A client never picks its tier: client-sent `x-triage-*` headers are removed before any filter.

use triage_e2e::bodies::{self, CHAT, TRIVIAL};
use triage_e2e::check::{routed, triage_headers, upstream_header};
use triage_e2e::plugin_config;
use triage_e2e::{Request, Stack};

fn spoofed(request: Request) -> Request {
    request
        .header("X-Triage-Route", "frontier")
        .header("x-triage-tier", "frontier")
        .header("x-triage-score", "0.99")
        .header("x-triage-reason", "rule: vip")
        .header("x-triage-mode", "shadow")
        .header("x-triage-escalated", "small->frontier")
        .header("x-triage-escalation-cause", "empty")
        .header(
            "x-triage-decision-id",
            "00000000-0000-4000-8000-000000000000",
        )
}

#[test]
fn spoofed_triage_headers_do_not_change_the_routing_decision() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&spoofed(Request::post(
        CHAT,
        bodies::chat(Some("auto"), TRIVIAL),
    )));

    let received = routed(
        &stack,
        &response,
        "small",
        &bodies::chat(Some("gpt-4o-mini"), TRIVIAL),
    );
    let upstream = triage_headers(&received.headers);
    for name in ["x-triage-route", "x-triage-tier", "x-triage-reason"] {
        let values: Vec<&str> = upstream
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            values.len(),
            1,
            "one {name} upstream, the filter's: {upstream:?}"
        );
    }
    assert_eq!(upstream_header(&received, "x-triage-route"), Some("small"));
    assert_ne!(
        upstream_header(&received, "x-triage-reason"),
        Some("rule: vip")
    );
    assert_ne!(upstream_header(&received, "x-triage-score"), Some("0.99"));
    assert_ne!(response.header("x-triage-score"), Some("0.99"));
}

#[test]
fn spoofed_route_header_is_removed_where_the_filter_does_not_act() {
    let stack = Stack::start(&plugin_config::forcing());
    let response = stack.send(&spoofed(Request::get("/healthz")));

    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-mock-tier"), Some("mid"), "default route");
    let (tier, received) = stack.only_upstream_request();
    assert_eq!(tier, "mid");
    assert_eq!(triage_headers(&received.headers), vec![], "upstream");
}

#[test]
fn spoofed_route_header_is_removed_in_front_of_the_baseline_too() {
    let stack = Stack::start_with(triage_e2e::StackOptions::baseline());
    let response = stack.send(&spoofed(Request::post(
        CHAT,
        bodies::chat(Some("auto"), TRIVIAL),
    )));

    assert_eq!(response.header("x-mock-tier"), Some("mid"));
    let (_, received) = stack.only_upstream_request();
    assert_eq!(triage_headers(&received.headers), vec![]);
}
