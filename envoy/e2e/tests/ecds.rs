//! triage delivered as a control plane delivers wasm: Envoy discovers the filter through extension
//! config discovery (a watched file), fetches each version's module by URL from an HTTP server and
//! checks its sha256. A new version replaces the filter under load without failing a request; a
//! version Envoy refuses (a wrong sha256, a config the filter refuses) leaves the previous one
//! serving.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use triage_e2e::bodies;
use triage_e2e::ecds::{sha256_hex, stat, version_text, Delivery, Discovery, ModuleServer};
use triage_e2e::paths::{fault_injection_wasm, filter_wasm};
use triage_e2e::plugin_config::{self, FORCE_TIER_HEADER};
use triage_e2e::{Request, Stack, StackOptions};

const CHAT: &str = "/v1/chat/completions";

/// A stack whose triage comes by discovery, serving version "1" of `config` with the shipped module.
struct Discovered {
    modules: ModuleServer,
    discovery: Discovery,
    stack: Stack,
    module_url: String,
    sha256: String,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn discovered(config: &Value, concurrency: u32) -> Discovered {
    let dir = std::env::temp_dir().join(format!(
        "triage-ecds-{}-{concurrency}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let modules = ModuleServer::start();
    let module = std::fs::read(filter_wasm()).expect("the built triage.wasm");
    let sha256 = sha256_hex(&module);
    let module_url = modules.publish("triage.wasm", module);
    let discovery = Discovery::in_dir(&dir);
    let plugin_config = config.to_string();
    // A fresh Envoy fetches the first version's module while its listener warms.
    discovery.write("1", &plugin_config, &module_url, &sha256, true);
    let mut options = StackOptions::discovered(discovery.resource(), modules.addr(), config);
    options.concurrency = concurrency;
    let stack = Stack::start_with(options);
    assert_eq!(version_text(&stack), "1", "{}", stack.log());
    Discovered {
        modules,
        discovery,
        stack,
        module_url,
        sha256,
        _dir: TempDir(dir),
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos())
}

fn forced(tier: &str) -> Request {
    Request::post(CHAT, bodies::chat(Some("auto"), "Say yes or no."))
        .header(FORCE_TIER_HEADER, tier)
}

/// The forcing config with a last rule sending every other chat request to `tier`.
fn everything_to(tier: &str) -> Value {
    let mut config = plugin_config::forcing();
    let rules = config["rules"].as_array_mut().expect("the forcing rules");
    rules.push(json!({"name": format!("all-{tier}"), "when": {"path_prefix": CHAT}, "tier": tier}));
    config
}

#[test]
fn triage_discovered_by_ecds_routes_and_its_module_is_fetched_once_by_url() {
    let discovered = discovered(&plugin_config::forcing(), 1);
    let response = discovered.stack.send(&forced("mid"));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-triage-tier"), Some("mid"));
    let (tier, received) = discovered.stack.only_upstream_request();
    assert_eq!(tier, "mid");
    let sent: Value = serde_json::from_slice(&received.body).expect("JSON upstream");
    assert_eq!(
        sent["model"],
        json!(plugin_config::shipped_tier_model(
            "mid",
            triage_core::ApiFormat::OpenAiChat
        ))
    );
    assert_eq!(discovered.modules.fetches(), ["triage.wasm"]);
    assert_eq!(version_text(&discovered.stack), "1");
}

/// A response's status and the tier it names.
type Answered = (u16, Option<String>);

#[test]
fn a_new_version_replaces_the_filter_under_load_without_failing_a_request() {
    let discovered = discovered(&everything_to("small"), 2);
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<Answered>>> = Arc::default();
    std::thread::scope(|scope| {
        for _ in 0..2 {
            let (stop, seen, stack) = (Arc::clone(&stop), Arc::clone(&seen), &discovered.stack);
            scope.spawn(move || {
                let mut connection = stack.connect();
                let request = Request::post(CHAT, bodies::chat(Some("auto"), "Say yes or no."));
                while !stop.load(Ordering::Relaxed) {
                    let response = stack.send_on(&mut connection, &request);
                    let tier = response.header("x-triage-tier").map(str::to_owned);
                    seen.lock()
                        .expect("the results")
                        .push((response.status, tier));
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500));
        let delivered = discovered.discovery.deliver(
            &discovered.stack,
            "2",
            &everything_to("frontier").to_string(),
            &discovered.module_url,
            &discovered.sha256,
        );
        assert_eq!(delivered, Delivery::Accepted);
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
    });
    let seen = seen.lock().expect("the results");
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        seen.len()
    );
    let tiers: Vec<Option<&str>> = seen.iter().map(|(_, tier)| tier.as_deref()).collect();
    assert!(
        tiers
            .iter()
            .all(|tier| matches!(tier, Some("small" | "frontier"))),
        "every request was routed by one version or the other: {tiers:?}"
    );
    assert_eq!(tiers.first(), Some(&Some("small")));
    assert_eq!(
        tiers.last(),
        Some(&Some("frontier")),
        "{} requests",
        tiers.len()
    );
    // Once a worker serves the new version it never goes back to the old one.
    let switched = tiers
        .iter()
        .position(|tier| *tier == Some("frontier"))
        .unwrap_or(0);
    let back = tiers[switched..]
        .iter()
        .filter(|tier| **tier == Some("small"))
        .count();
    assert!(
        back <= 2,
        "at most one in-flight request per connection after the switch: {back}"
    );
}

#[test]
fn a_module_with_a_wrong_sha256_is_refused_and_the_previous_version_keeps_serving() {
    let discovered = discovered(&plugin_config::forcing(), 1);
    let wrong = "0".repeat(64);
    let delivered = discovered.discovery.deliver(
        &discovered.stack,
        "2",
        &everything_to("frontier").to_string(),
        &discovered.module_url,
        &wrong,
    );
    assert_eq!(delivered, Delivery::Refused);
    assert_eq!(version_text(&discovered.stack), "1");
    let response = discovered.stack.send(&forced("mid"));
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("x-triage-tier"),
        Some("mid"),
        "version 1 still routes"
    );
    assert!(stat(&discovered.stack, "update_rejected") >= 2);
}

#[test]
fn a_config_the_filter_refuses_is_refused_and_the_previous_version_keeps_serving() {
    let discovered = discovered(&plugin_config::forcing(), 1);
    let delivered = discovered.discovery.deliver(
        &discovered.stack,
        "2",
        r#"{"tierz": []}"#,
        &discovered.module_url,
        &discovered.sha256,
    );
    assert_eq!(delivered, Delivery::Refused);
    assert_eq!(version_text(&discovered.stack), "1");
    assert!(discovered
        .stack
        .log()
        .contains("triage config refused: tierz"));
    let response = discovered.stack.send(&forced("frontier"));
    assert_eq!(response.header("x-triage-tier"), Some("frontier"));
}

#[test]
fn a_new_module_is_fetched_by_its_url_and_serves() {
    let discovered = discovered(&plugin_config::forcing(), 1);
    // Another build (the test-only fault-injection one) is another module: another sha256.
    let other = std::fs::read(fault_injection_wasm()).expect("the fault-injection build");
    let sha256 = sha256_hex(&other);
    assert_ne!(sha256, discovered.sha256);
    let url = discovered.modules.publish("triage-v2.wasm", other);
    let delivered = discovered.discovery.deliver(
        &discovered.stack,
        "2",
        &plugin_config::forcing().to_string(),
        &url,
        &sha256,
    );
    assert_eq!(delivered, Delivery::Accepted);
    assert_eq!(
        discovered.modules.fetches(),
        ["triage.wasm", "triage-v2.wasm"]
    );
    // Only that build panics on x-e2e-panic: the new module is the one running.
    let panicked = discovered
        .stack
        .send(&forced("small").header("x-e2e-panic", "1"));
    assert_eq!(panicked.status, 503, "{}", panicked.text());
    assert!(discovered
        .stack
        .log()
        .contains("fault injected by x-e2e-panic"));
}
