//! on_vm_start and on_configure: accepted and refused configs, as Envoy would see them.

use crate::common::*;
use triage_host::{Host, HostError, LogLevel};

#[test]
fn empty_and_default_configs_are_accepted() {
    for config in [
        "",
        "{}",
        r#"{"default_tier": "mid", "route_models": ["auto"]}"#,
    ] {
        let host = Host::start(config).unwrap();
        assert!(host.logged("triage config accepted"), "{config:?}");
        assert!(host.logged("starting"), "on_vm_start logs the build");
        assert_no_warnings(&host);
        assert!(host.stdout().is_empty() && host.stderr().is_empty());
    }
}

fn refusal(config: &str) -> String {
    match Host::start(config) {
        Err(HostError::ConfigRefused { logs }) => {
            let errors: Vec<_> = logs.iter().filter(|l| l.level == LogLevel::Error).collect();
            assert_eq!(errors.len(), 1, "{logs:?}");
            errors[0].message.clone()
        }
        Err(other) => panic!("{config}: expected a refusal, got {other}"),
        Ok(_) => panic!("{config}: accepted"),
    }
}

#[test]
fn refused_configs_name_the_field() {
    let cases = [
        (
            r#"{"tiers": [{"name": "a", "max_score": 0.5}, {"name": "b", "max_score": 0.4}, {"name": "c"}]}"#,
            "tiers[1].max_score",
        ),
        (r#"{"route_header": "X Bad"}"#, "route_header"),
        (r#"{"default_tier": "nope"}"#, "default_tier"),
        (r#"{"surprise": true}"#, "surprise"),
        (
            r#"{"limits": {"max_body_bytes": "big"}}"#,
            "limits.max_body_bytes",
        ),
        ("{not json", "triage config refused"),
    ];
    for (config, field) in cases {
        let message = refusal(config);
        assert!(message.starts_with("triage config refused: "), "{message}");
        assert!(message.contains(field), "{config}: {message}");
    }
}

#[test]
fn a_refused_update_keeps_the_running_config() {
    let mut host = Host::start(r#"{"default_tier": "small"}"#).unwrap();
    let refused = host.configure(r#"{"default_tier": "missing"}"#);
    assert!(matches!(refused, Err(HostError::ConfigRefused { .. })));
    let mut stream = host.request().unwrap();
    send(&mut stream, CHAT, b"not json");
    assert_routed(&stream, "small");
}

#[test]
fn an_accepted_update_applies_to_the_next_request() {
    let mut host = host();
    host.configure(r#"{"default_tier": "frontier"}"#).unwrap();
    let mut stream = host.request().unwrap();
    send(&mut stream, CHAT, b"not json");
    assert_routed(&stream, "frontier");
}
