//! The shipped configs are valid, Envoy refuses a bad plugin config with the field's name, and the
//! shipped filter config needs `allow_on_headers_stop_iteration`.

use std::io::ErrorKind;
use std::time::Duration;

use serde_json::json;
use triage_e2e::bodies::{self, CHAT, TRIVIAL};
use triage_e2e::{plugin_config, validate, Connection, Request, Stack, StackOptions};

fn max_score_out_of_order() -> serde_json::Value {
    let mut config = plugin_config::shipped();
    config["tiers"][0]["max_score"] = json!(0.35);
    config["tiers"][1]["max_score"] = json!(0.2);
    config
}

#[test]
fn the_shipped_config_passes_envoy_validate() {
    let (ok, output) = validate(&StackOptions::triage(&plugin_config::shipped()));
    assert!(ok, "envoy --mode validate failed:\n{output}");
}

#[test]
fn the_baseline_config_passes_envoy_validate() {
    let (ok, output) = validate(&StackOptions::baseline());
    assert!(ok, "envoy --mode validate failed:\n{output}");
}

#[test]
fn envoy_validate_runs_the_plugin_config_check() {
    let (ok, output) = validate(&StackOptions::triage(&max_score_out_of_order()));
    assert!(!ok, "validate accepted a bad plugin config:\n{output}");
    assert!(output.contains("tiers[1].max_score"), "output:\n{output}");
}

#[test]
fn envoy_refuses_to_start_with_a_bad_plugin_config() {
    let Err(error) = Stack::try_start(StackOptions::triage(&max_score_out_of_order())) else {
        panic!("Envoy started with tiers[1].max_score below tiers[0].max_score");
    };
    assert!(error.exit.is_some(), "Envoy exited: {}", error.reason);
    assert!(
        error.log.contains("tiers[1].max_score"),
        "the log names the field:\n{}",
        error.log
    );
}

#[test]
fn envoy_refuses_unknown_plugin_config_fields() {
    let mut config = plugin_config::shipped();
    config["tierz"] = json!([]);
    let Err(error) = Stack::try_start(StackOptions::triage(&config)) else {
        panic!("Envoy started with an unknown plugin config field");
    };
    assert!(
        error.log.contains("tierz"),
        "the log names the field:\n{}",
        error.log
    );
}

#[test]
fn envoy_refuses_a_plugin_config_that_is_not_json() {
    let Err(error) = Stack::try_start(StackOptions::triage_raw("route_header: x-triage-route"))
    else {
        panic!("Envoy started with a YAML plugin config");
    };
    assert!(error.exit.is_some(), "Envoy exited: {}", error.reason);
}

#[test]
fn the_baseline_stack_serves_with_the_body_untouched() {
    let stack = Stack::start_with(StackOptions::baseline());
    let body = triage_e2e::bodies::chat(Some("auto"), triage_e2e::bodies::TRIVIAL);
    let response = stack.send(&triage_e2e::Request::post(
        triage_e2e::bodies::CHAT,
        body.clone(),
    ));
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-mock-tier"), Some("mid"));
    let (_, received) = stack.only_upstream_request();
    triage_e2e::check::assert_body(&received, &body);
}

#[test]
fn without_allow_on_headers_stop_iteration_an_llm_request_hangs() {
    let stack = Stack::start_with(
        StackOptions::triage(&plugin_config::forcing()).with_config_edit(
            "allow_on_headers_stop_iteration: true",
            "allow_on_headers_stop_iteration: false",
        ),
    );
    // The filter pauses on the headers to wait for the body; Envoy turns that pause into
    // StopAllIteration, so the body callbacks never run and nothing ever continues the request.
    let mut client = Connection::open_with_timeout(stack.listener(), Duration::from_secs(3))
        .expect("connects to Envoy");
    let outcome = client.send(&Request::post(CHAT, bodies::chat(Some("auto"), TRIVIAL)));
    match outcome {
        Err(e) if e.kind() == ErrorKind::TimedOut => {}
        other => panic!("expected no response within 3 s, got {other:?}"),
    }
    assert!(stack.received().is_empty(), "nothing reached an upstream");
    assert_eq!(
        stack.stat("http.triage.downstream_rq_active"),
        Some(1),
        "Envoy still holds the request"
    );

    let untouched = stack.send(&Request::get("/healthz"));
    assert_eq!(
        untouched.status, 200,
        "requests the filter does not pause pass"
    );
}

#[test]
fn envoys_buffer_limit_is_the_one_the_plugin_config_states_and_leaves_room_to_rewrite() {
    let shipped = plugin_config::shipped().to_string();
    let mocks: Vec<(String, std::net::SocketAddr)> = triage_e2e::render::tier_names(&shipped)
        .into_iter()
        .map(|tier| (tier, ([127, 0, 0, 1], 18001).into()))
        .collect();
    let rendered = triage_e2e::render::render(
        triage_e2e::Flavour::Triage,
        triage_e2e::Ports {
            listen: 10000,
            admin: 9901,
        },
        &mocks,
        Some(std::path::Path::new("/triage.wasm")),
        &shipped,
        &shipped,
        std::path::Path::new("/access.log"),
        std::path::Path::new("/jwks.json"),
        None,
    );
    let limits: Vec<usize> = rendered
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("per_connection_buffer_limit_bytes:")
        })
        .map(|value| value.trim().parse().expect("a number of bytes"))
        .collect();
    assert_eq!(limits.len(), 4, "the listener and the three tier clusters");
    let stated = plugin_config::shipped_limit("envoy_buffer_limit_bytes");
    assert!(
        limits.iter().all(|limit| *limit == stated),
        "template {limits:?}, plugin config {stated}"
    );
    let config = triage_core::Config::from_json(plugin_config::shipped().to_string().as_bytes())
        .expect("the shipped config is valid");
    assert_eq!(config.envoy_buffer_limit_bytes(), stated);
    assert!(stated >= config.max_body_bytes() + triage_core::max_growth(&config));
    assert_eq!(config.over_max_body(), triage_core::OverMaxBody::Reject);
}

#[test]
fn envoy_validate_refuses_an_envoy_limit_without_room_for_the_rewrite() {
    let mut config = plugin_config::shipped();
    config["limits"]["envoy_buffer_limit_bytes"] = config["limits"]["max_body_bytes"].clone();
    let (ok, output) = validate(&StackOptions::triage(&config));
    assert!(!ok, "validate accepted a limit equal to the cap:\n{output}");
    assert!(
        output.contains("limits.envoy_buffer_limit_bytes: must be at least"),
        "output:\n{output}"
    );
}
