//! The shipped `failure_policy: FAIL_RELOAD` after a panic in the VM: Envoy refuses requests with 503
//! for about a second, then reloads the VM and the filter routes again. A client never picks its
//! tier meanwhile. Uses the filter's `fault-injection` build, where `x-e2e-panic` panics.

use std::time::{Duration, Instant};

use triage_e2e::bodies::{self, CHAT, NEUTRAL, TRIVIAL};
use triage_e2e::check::{routed, upstream_header};
use triage_e2e::plugin_config::{self, FORCE_TIER_HEADER};
use triage_e2e::{FilterBuild, Request, Stack, StackOptions};

/// The facts file measured ~1 s of 503 before the reload; this bounds the wait.
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);

/// A trivial request (the filter scores it to small) that asks for frontier itself.
fn spoofing_frontier() -> Request {
    Request::post(CHAT, bodies::chat(Some("auto"), TRIVIAL)).header("x-triage-route", "frontier")
}

#[test]
fn after_a_vm_panic_fail_reload_refuses_then_reloads_and_never_honors_a_client_tier() {
    let stack = Stack::start_with(
        StackOptions::triage(&plugin_config::forcing())
            .with_filter_build(FilterBuild::FaultInjection),
    );

    let panicked = stack.send(&spoofing_frontier().header("x-e2e-panic", "1"));
    assert_eq!(panicked.status, 503, "the panicking request");
    assert!(stack.received().is_empty(), "no upstream got it");
    let log = stack.log();
    assert!(
        log.contains("fault injected by x-e2e-panic")
            && log.contains("proxy_on_request_headers failed"),
        "Envoy logs the panic and the failed callback:\n{log}"
    );

    let started = Instant::now();
    let mut refused = 0;
    let recovered = loop {
        let response = stack.send(&spoofing_frontier());
        if response.status != 503 {
            break response;
        }
        refused += 1;
        assert!(
            stack.mock("frontier").received().is_empty(),
            "the client's tier was honored"
        );
        assert!(
            started.elapsed() < RELOAD_DEADLINE,
            "the VM did not reload within {RELOAD_DEADLINE:?} ({refused} requests got 503)"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let received = routed(
        &stack,
        &recovered,
        "small",
        &bodies::chat(Some("gpt-4o-mini"), TRIVIAL),
    );
    assert_eq!(upstream_header(&received, "x-triage-route"), Some("small"));

    let forced = stack.send(
        &Request::post(CHAT, bodies::chat(Some("auto"), NEUTRAL))
            .header(FORCE_TIER_HEADER, "frontier"),
    );
    assert_eq!(forced.header("x-mock-tier"), Some("frontier"));
    assert_eq!(
        forced.header("x-triage-reason"),
        Some("rule: force-frontier")
    );

    // `wasm.triage.vm_reload` exists but stays 0 in Envoy 1.40; these are the counters that move.
    assert_eq!(stack.stat("wasm.triage.vm_reload_success"), Some(1));
    assert_eq!(stack.stat("wasm.triage.vm_reload_failure"), Some(0));
    let backoff = stack.stat("wasm.triage.vm_reload_backoff").unwrap_or(0);
    assert!(
        backoff >= 1 && refused >= 1,
        "requests were refused during the reload backoff ({refused} got 503, vm_reload_backoff \
         {backoff})"
    );
}
