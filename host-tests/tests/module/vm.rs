//! A panic in the module: the test fails with the panic message, and the VM stays down.

use crate::common::*;
use std::path::PathBuf;
use triage_host::{HostError, HostOptions};

/// The test-only build that panics on `x-e2e-panic` (envoy/setup.sh builds it).
fn fault_injection_wasm() -> Option<PathBuf> {
    let path = std::env::var_os("TRIAGE_FAULT_WASM").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/fault-injection/wasm32-wasip1/release/triage.wasm")
        },
        PathBuf::from,
    );
    path.is_file().then_some(path)
}

#[test]
fn a_panic_becomes_an_error_carrying_its_message_and_the_vm_stays_failed() {
    let Some(wasm) = fault_injection_wasm() else {
        eprintln!("SKIPPED: no fault-injection build (bash envoy/setup.sh builds it)");
        return;
    };
    let mut host = HostOptions::default().wasm(wasm).start("").unwrap();
    let mut stream = host.request().unwrap();
    let headers = [(":method", "POST"), (":path", CHAT), ("x-e2e-panic", "1")];
    let error = stream.send_request_headers(&headers, false).unwrap_err();
    let HostError::Trap {
        callback,
        panic,
        trap,
    } = &error
    else {
        panic!("expected a trap, got {error}");
    };
    assert_eq!(callback, "proxy_on_request_headers");
    let panic = panic.as_deref().unwrap_or_default();
    assert!(
        panic.contains("fault injected by x-e2e-panic"),
        "{panic} / {trap}"
    );
    assert!(error.to_string().contains("fault injected"), "{error}");
    drop(stream);
    assert!(host.failure().is_some());
    let next = host
        .request()
        .err()
        .expect("a failed VM takes no new streams");
    assert!(matches!(next, HostError::VmFailed { .. }), "{next}");
}

#[test]
fn the_shipped_module_writes_nothing_to_stdout_or_stderr() {
    let mut host = host();
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    send(&mut stream, CHAT, body.as_bytes());
    stream.finish().unwrap();
    assert!(host.stdout().is_empty() && host.stderr().is_empty());
    assert_eq!(host.open_streams(), 0);
    let mut expected = defined_counters(&["small", "mid", "frontier"]);
    let escalation_steps = 3; // small->mid, small->frontier, mid->frontier
    assert_eq!(
        expected.len(),
        2 * 3 * 5
            + 5
            + 3 * 3
            + escalation_steps * triage_core::ESCALATION_CAUSES.len()
            + 3 * (2 + 1)
            + 3 * (2 + 4)
    );
    expected.extend(HISTOGRAMS.map(String::from));
    expected.push(VM_MEMORY_GAUGE.to_string());
    let mut defined: Vec<&str> = host.metric_names();
    defined.sort_unstable();
    expected.sort_unstable();
    assert_eq!(defined, expected, "the series defined at configure");
    for name in HISTOGRAMS {
        assert_eq!(
            host.histogram(name).map(<[u64]>::len),
            Some(1),
            "{name}: one value recorded for the one request"
        );
    }
    assert!(host.http_calls().is_empty());
    assert_eq!(host.foreign_calls().len(), 1);
    assert_eq!(host.foreign_calls()[0].1, "clear_route_cache");
}

/// The VM reports its linear memory when its config is accepted and again on every tick of the
/// timer it sets, so the gauge follows the memory a large body made it grow to.
#[test]
fn the_vm_memory_gauge_follows_the_linear_memory_on_each_tick() {
    let mut host = host();
    let at_start = host.memory_bytes();
    assert_eq!(host.metric(VM_MEMORY_GAUGE), Some(at_start as i64));
    assert_eq!(at_start % 65_536, 0, "whole wasm pages");

    let large = chat_body("auto", &SIMPLE.repeat(16_384)); // 1.2 MB
    let mut stream = host.request().unwrap();
    send(&mut stream, CHAT, large.as_bytes());
    stream.finish().unwrap();
    let grown = host.memory_bytes();
    assert!(grown > at_start, "a large body grows the memory");
    assert_eq!(
        host.metric(VM_MEMORY_GAUGE),
        Some(at_start as i64),
        "not before the tick"
    );
    assert!(host.tick().unwrap(), "the module set a tick period");
    assert_eq!(host.metric(VM_MEMORY_GAUGE), Some(grown as i64));
}
