#![cfg(test)]
//! `triage validate` against the core's own config validation.

use std::process::{Command, Output};

fn validate(path: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(["validate", path])
        .output()
        .unwrap()
}

fn temp_config(name: &str, json: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("triage-validate-{}-{name}", std::process::id()));
    std::fs::write(&path, json).unwrap();
    path
}

#[test]
fn the_shipped_config_is_accepted_and_its_tiers_listed() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../envoy/plugin-config.json"
    );
    let output = validate(path);
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let config = triage_core::Config::from_json(&std::fs::read(path).unwrap()).unwrap();
    assert!(stdout.starts_with("triage config accepted"), "{stdout}");
    for (index, name) in config.tier_names().iter().enumerate() {
        let line = stdout
            .lines()
            .find(|line| line.trim_start().starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"));
        assert!(line.contains(config.tier_cluster(index).unwrap()), "{line}");
        let upstream = config
            .tier_upstream(index)
            .expect("the shipped tiers name upstreams");
        assert!(line.contains(&format!(" at {upstream}")), "{line}");
        match config.thresholds().get(index) {
            Some(max) => assert!(line.contains(&format!("score <= {max:.4}")), "{line}"),
            None => assert!(line.contains("above every bound"), "{line}"),
        }
    }
}

#[test]
fn a_refused_config_fails_with_the_filters_message() {
    for (name, json) in [
        (
            "order",
            r#"{"tiers":[{"name":"a","max_score":0.5},{"name":"b","max_score":0.4},{"name":"c"}]}"#,
        ),
        ("unknown", r#"{"tierz":[]}"#),
        ("not-json", "{"),
    ] {
        let path = temp_config(name, json);
        let output = validate(path.to_str().unwrap());
        let _ = std::fs::remove_file(&path);
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert!(output.stdout.is_empty(), "{name}");
        let error = triage_core::Config::from_json(json.as_bytes()).unwrap_err();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains(&format!("triage config refused: {error}")),
            "{name}: {stderr}"
        );
    }
}
