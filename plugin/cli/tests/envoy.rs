#![cfg(test)]
//! `triage envoy`: the Envoy config made from a plugin config's tiers, or a refusal naming the field.

use std::process::{Command, Output};

const OWN_TIERS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/tiers-of-your-own.json"
);

fn envoy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_triage"))
        .arg("envoy")
        .args([
            "--access-log",
            "/var/log/triage.log",
            "--jwks",
            "/etc/jwks.json",
        ])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_example_tiers_get_their_routes_and_an_upstream_can_be_replaced() {
    let output = envoy(&[
        "--config",
        OWN_TIERS,
        "--wasm",
        "/triage.wasm",
        "--upstream",
        "haiku=http://127.0.0.1:18002",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let yaml = String::from_utf8(output.stdout).unwrap();
    for tier in ["nano", "haiku", "sonnet", "opus"] {
        assert!(yaml.contains(&format!("exact: \"{tier}\"")), "{tier}");
        assert!(yaml.contains(&format!("- name: \"tier_{tier}\"")), "{tier}");
    }
    assert!(yaml.contains("address: \"127.0.0.1\", port_value: 18002"));
    assert!(yaml.contains("address: \"api.openai.com\", port_value: 443"));
}

#[test]
fn a_tier_without_an_upstream_or_a_bad_flag_is_refused() {
    let defaults = std::env::temp_dir().join(format!("triage-envoy-{}.json", std::process::id()));
    std::fs::write(&defaults, "{}").unwrap();
    let output = envoy(&["--config", defaults.to_str().unwrap(), "--baseline"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tiers[0].upstream: tier \"small\" has no upstream"),
        "{stderr}"
    );
    let output = envoy(&[
        "--config",
        OWN_TIERS,
        "--baseline",
        "--upstream",
        "haiku=127.0.0.1:1",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("has no http:// or https:// scheme"));
    let _ = std::fs::remove_file(defaults);
}
