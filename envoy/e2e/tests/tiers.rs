//! Tiers are declared once, in the plugin config (issue 19): `examples/tiers-of-your-own.json` has
//! four tiers named after their models, and the Envoy config `triage envoy` makes from it routes
//! each to its own upstream (here a mock per tier, which says who it is), where it is billed at its
//! own price and recorded with the cluster Envoy used. With the config's real provider upstreams (TLS, DNS names) the same config passes
//! `envoy --mode validate`.
// The helpers below are test code too (clippy only exempts `#[test]` functions).
#![allow(clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use triage_e2e::bodies::{self, CHAT, MESSAGES, NEUTRAL};
use triage_e2e::check::{record_of, records};
use triage_e2e::paths::envoy_binary;
use triage_e2e::plugin_config::{tiers_of_your_own, with_forcing_rules, FORCE_TIER_HEADER};
use triage_e2e::{Request, Stack};
use triage_gateway::envoy::{render, EnvoyStack, Flavour, SYSTEM_CA_FILE};

fn tier_names(config: &Value) -> Vec<String> {
    config["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .map(|tier| tier["name"].as_str().expect("name").to_owned())
        .collect()
}

/// (model, input $/Mtok, output $/Mtok) of a tier in `config`.
fn tier_terms(config: &Value, name: &str) -> (String, f64, f64) {
    let tier = config["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .find(|tier| tier["name"] == name)
        .expect("the tier");
    let price = |key: &str| tier["price"][key].as_f64().expect("price");
    (
        tier["model"].as_str().expect("model").to_owned(),
        price("input_per_mtok"),
        price("output_per_mtok"),
    )
}

#[test]
fn four_tiers_named_after_their_models_are_each_served_and_billed_by_their_own_upstream() {
    let own = tiers_of_your_own();
    let names = tier_names(&own);
    assert_eq!(names, ["nano", "haiku", "sonnet", "opus"]);
    let stack = Stack::start(&with_forcing_rules(own.clone()));

    let mut responses = Vec::new();
    for name in &names {
        let request = Request::post(CHAT, bodies::chat(Some("auto"), NEUTRAL))
            .header(FORCE_TIER_HEADER, name);
        let response = stack.send(&request);
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("x-triage-tier"), Some(name.as_str()));
        assert_eq!(
            response.header("x-mock-tier"),
            Some(name.as_str()),
            "served by the tier's own upstream"
        );
        let (model, _, _) = tier_terms(&own, name);
        assert_eq!(response.json()["model"], model.as_str(), "the tier's model");
        responses.push((name.clone(), response));
    }
    // Decided by the score and by the config's own rule, no forcing: served where decided.
    for request in [
        Request::post(MESSAGES, bodies::messages(Some("auto"), NEUTRAL)),
        Request::post(
            CHAT,
            bodies::chat(
                Some("auto"),
                "Prove that the square root of 2 is irrational.",
            ),
        ),
    ] {
        let response = stack.send(&request);
        let decided = response
            .header("x-triage-tier")
            .expect("decided")
            .to_owned();
        assert!(names.contains(&decided), "{decided}");
        assert_eq!(response.header("x-mock-tier"), Some(decided.as_str()));
        responses.push((decided, response));
    }
    assert_eq!(responses[5].0, "opus", "the proofs rule names its own tier");

    let logged = records(&stack, responses.len());
    for (tier, response) in &responses {
        let record = record_of(&logged, response);
        assert_eq!(record["tier"], tier.as_str(), "{record}");
        assert_eq!(
            record["served_cluster"],
            format!("tier_{tier}").as_str(),
            "the cluster Envoy used, read from Envoy"
        );
        assert!(record["mismatch"].is_null(), "{record}");
        let (_, input, output) = tier_terms(&own, tier);
        let usage = &record["usage"];
        let tokens = |key: &str| usage[key].as_f64().expect("usage from the mock");
        let expected = tokens("prompt_tokens") * input + tokens("completion_tokens") * output;
        let cost = record["cost_micro_usd"].as_f64().expect("priced");
        assert!(
            (cost - expected).abs() < 1e-6,
            "{tier}: {cost} != {expected}"
        );
    }
    let scrape = stack.prometheus();
    for name in &names {
        assert!(
            scrape.sum("triage_requests", &[("tier", name.as_str())]) >= 1.0,
            "{name} counted"
        );
    }
}

#[test]
fn the_generated_config_with_provider_upstreams_passes_envoy_validate() {
    let own = tiers_of_your_own().to_string();
    let dir = std::env::temp_dir().join(format!("triage-e2e-tiers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let jwks = dir.join("jwks.json");
    std::fs::write(
        &jwks,
        std::fs::read(triage_e2e::auth::jwks_path()).expect("the test JWKS"),
    )
    .expect("write the JWKS");
    let yaml = render(&EnvoyStack {
        flavour: Flavour::Triage,
        plugin_config: &own,
        tiers_config: &own,
        listen_port: 10000,
        admin_port: 9901,
        wasm: Some(&triage_e2e::paths::filter_wasm()),
        access_log: &dir.join("access.log"),
        jwks: &jwks,
        upstreams: &[],
        ca_file: Path::new(SYSTEM_CA_FILE),
        ecds: None,
    })
    .expect("the example config renders");
    assert!(yaml.contains("sni: \"api.anthropic.com\""));
    assert!(yaml.contains("type: LOGICAL_DNS"));
    let config = dir.join("envoy.yaml");
    std::fs::write(&config, yaml).expect("write the config");
    let output = Command::new(envoy_binary())
        .args(["--mode", "validate", "-c"])
        .arg(&config)
        .output()
        .expect("run Envoy");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("triage config accepted"),
        "the filter loaded it: {text}"
    );
}
