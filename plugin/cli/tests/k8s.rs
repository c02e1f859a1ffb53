#![cfg(test)]
//! `triage k8s` and `triage schema`: the manifests written into a folder or printed, a refusal
//! naming what is wrong, and the plugin config's schema as checked in.

use std::process::{Command, Output};

const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../envoy/plugin-config.json"
);
const SHA256: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn triage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .output()
        .unwrap()
}

fn k8s(flavour: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "k8s",
        "--flavour",
        flavour,
        "--config",
        SHIPPED,
        "--module-url",
        "https://modules.example.com/triage.wasm",
        "--sha256",
        SHA256,
        "--jwt-issuer",
        "https://issuer.example.com",
        "--jwks-uri",
        "https://issuer.example.com/jwks.json",
    ];
    args.extend_from_slice(extra);
    triage(&args)
}

const UPSTREAMS: [&str; 6] = [
    "--upstream",
    "small=http://llm.models.svc.cluster.local:8000",
    "--upstream",
    "mid=https://api.openai.com",
    "--upstream",
    "frontier=https://api.anthropic.com",
];

#[test]
fn the_manifests_are_written_into_a_folder_or_printed() {
    let dir = std::env::temp_dir().join(format!("triage-k8s-{}", std::process::id()));
    let out = dir.to_str().unwrap();
    let mut args = UPSTREAMS.to_vec();
    args.extend(["--out", out]);
    let output = k8s("envoy-gateway", &args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "authentication.yaml",
            "gateway.yaml",
            "routes.yaml",
            "triage-extension.yaml"
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
    let printed = k8s("istio", &UPSTREAMS);
    assert!(printed.status.success());
    let text = String::from_utf8(printed.stdout).unwrap();
    for kind in [
        "Gateway",
        "RequestAuthentication",
        "EnvoyFilter",
        "VirtualService",
        "ServiceEntry",
    ] {
        assert!(text.contains(&format!("kind: {kind}\n")), "{kind}");
    }
}

#[test]
fn a_loopback_upstream_or_a_bad_digest_is_refused_by_name() {
    let output = k8s("istio", &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tier \"small\": its upstream http://127.0.0.1:18001"),
        "{stderr}"
    );
    let mut args = UPSTREAMS.to_vec();
    args.extend(["--sha256", "not-hex"]);
    let output = k8s("envoy-gateway", &args);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--sha256"));
}

#[test]
fn schema_prints_the_checked_in_schema() {
    let output = triage(&["schema"]);
    assert!(output.status.success());
    let checked_in = include_str!("../../core/schema/plugin-config.schema.json");
    assert_eq!(String::from_utf8(output.stdout).unwrap(), checked_in);
}
