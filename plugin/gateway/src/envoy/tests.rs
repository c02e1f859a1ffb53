use std::path::Path;

use super::*;

const FOUR_TIERS: &str = r#"{
  "default_tier": "sonnet",
  "tiers": [
    {"name": "nano", "model": "gpt-5-nano", "max_score": 0.1, "upstream": "http://127.0.0.1:18001"},
    {"name": "haiku", "model": "claude-haiku-4-5", "max_score": 0.2, "upstream": "http://10.0.0.7:8000"},
    {"name": "sonnet", "model": "claude-sonnet-4-5", "max_score": 0.5, "upstream": "https://api.anthropic.com"},
    {"name": "opus", "model": "claude-opus-4-1", "cluster": "anthropic_big", "upstream": "https://api.anthropic.com"}
  ]
}"#;

fn stack<'a>(plugin_config: &'a str, upstreams: &'a [(String, UpstreamAddress)]) -> EnvoyStack<'a> {
    EnvoyStack {
        flavour: Flavour::Triage,
        plugin_config,
        tiers_config: plugin_config,
        listen_port: 10000,
        admin_port: 9901,
        wasm: Some(Path::new("/opt/triage.wasm")),
        access_log: Path::new("/var/log/triage.log"),
        jwks: Path::new("/etc/triage/jwks.json"),
        upstreams,
        ca_file: Path::new(SYSTEM_CA_FILE),
        ecds: None,
    }
}

fn address(text: &str) -> UpstreamAddress {
    UpstreamAddress::parse("test", text).unwrap()
}

#[test]
fn every_tier_gets_a_route_on_its_name_and_the_default_tier_takes_the_rest() {
    let yaml = render(&stack(FOUR_TIERS, &[])).unwrap();
    for (tier, cluster) in [
        ("nano", "tier_nano"),
        ("haiku", "tier_haiku"),
        ("sonnet", "tier_sonnet"),
        ("opus", "anthropic_big"),
    ] {
        let route = format!(
            "              - match: {{ prefix: \"/\", headers: [{{ name: \"x-triage-route\", \
             string_match: {{ exact: \"{tier}\" }} }}] }}\n                \
             route: {{ cluster: \"{cluster}\", timeout: 300s"
        );
        assert!(yaml.contains(&route), "no route for {tier}:\n{yaml}");
    }
    let default_route = "              - match: { prefix: \"/\" }\n                \
                         route: { cluster: \"tier_sonnet\", timeout: 300s, auto_host_rewrite: true }\n";
    assert!(yaml.contains(default_route), "{yaml}");
    let routes_end = yaml.find(default_route).unwrap() + default_route.len();
    assert!(
        yaml[routes_end..].trim_start().starts_with("http_filters:"),
        "the catch-all route is last"
    );
    assert!(!yaml.contains("${"), "every placeholder is filled");
}

#[test]
fn clusters_follow_the_upstreams() {
    let yaml = render(&stack(FOUR_TIERS, &[])).unwrap();
    let cluster = |name: &str| {
        let start = yaml
            .find(&format!("  - name: \"{name}\"\n"))
            .unwrap_or_else(|| panic!("no cluster {name}:\n{yaml}"));
        let rest = &yaml[start + 4..];
        let end = rest.find("\n  - name: ").unwrap_or(rest.len());
        rest[..end].to_string()
    };
    let nano = cluster("tier_nano");
    assert!(nano.contains("type: STATIC"), "{nano}");
    assert!(
        nano.contains("address: \"127.0.0.1\", port_value: 18001"),
        "{nano}"
    );
    assert!(!nano.contains("transport_socket"), "plain http: {nano}");
    assert!(
        nano.contains("per_connection_buffer_limit_bytes: 8388636"),
        "{nano}"
    );
    let sonnet = cluster("tier_sonnet");
    assert!(sonnet.contains("type: LOGICAL_DNS"), "{sonnet}");
    assert!(
        sonnet.contains("address: \"api.anthropic.com\", port_value: 443"),
        "{sonnet}"
    );
    assert!(sonnet.contains("sni: \"api.anthropic.com\""), "{sonnet}");
    assert!(sonnet.contains(&format!("trusted_ca: {{ filename: \"{SYSTEM_CA_FILE}\" }}")));
    assert!(
        sonnet.contains("matcher: { exact: \"api.anthropic.com\" }"),
        "{sonnet}"
    );
    assert_eq!(
        yaml.matches("  - name: \"").count(),
        4,
        "one cluster per distinct tier cluster"
    );
}

#[test]
fn an_upstream_given_for_a_tier_replaces_the_configs() {
    let local = [("sonnet".to_string(), address("http://127.0.0.1:18003"))];
    let yaml = render(&stack(FOUR_TIERS, &local)).unwrap();
    assert!(yaml.contains("address: \"127.0.0.1\", port_value: 18003"));
    assert!(
        yaml.contains("route: { cluster: \"tier_sonnet\", timeout: 300s }\n"),
        "an IP upstream keeps the client's host: {yaml}"
    );
    let unknown = [("gold".to_string(), address("http://127.0.0.1:1"))];
    let error = render(&stack(FOUR_TIERS, &unknown)).unwrap_err();
    assert!(
        error.contains("tier \"gold\", which the plugin config does not have (its tiers: nano, haiku, sonnet, opus)"),
        "{error}"
    );
}

#[test]
fn a_tier_without_an_upstream_or_an_invalid_config_is_refused_by_name() {
    let error = render(&stack("{}", &[])).unwrap_err();
    assert!(
        error.starts_with("tiers[0].upstream: tier \"small\" has no upstream"),
        "{error}"
    );
    assert!(error.contains("--upstream small=URL"), "{error}");
    let error = render(&stack(r#"{"tiers": []}"#, &[])).unwrap_err();
    assert_eq!(error, "plugin config: tiers: must list at least one tier");
    let mut no_wasm = stack(FOUR_TIERS, &[]);
    no_wasm.wasm = None;
    assert!(render(&no_wasm).is_err());
    no_wasm.flavour = Flavour::Baseline;
    let baseline = render(&no_wasm).unwrap();
    assert!(baseline.contains("envoy.filters.http.buffer"));
    assert!(!baseline.contains("envoy.filters.http.wasm"));
}

#[test]
fn the_plugin_config_is_embedded_for_the_filter() {
    let yaml = render(&stack(FOUR_TIERS, &[])).unwrap();
    assert!(yaml.contains("filename: \"/opt/triage.wasm\""), "{yaml}");
    assert!(
        yaml.contains("\"name\": \"nano\""),
        "the config, on one line"
    );
}

#[test]
fn a_discovered_filter_is_read_from_the_watched_file_and_its_modules_have_a_cluster() {
    let ecds = Ecds {
        resource: Path::new("/var/run/triage/ecds/triage.yaml"),
        module_server: address("http://127.0.0.1:8080"),
    };
    let yaml = render(&EnvoyStack {
        ecds: Some(ecds),
        wasm: None,
        ..stack(FOUR_TIERS, &[])
    })
    .unwrap();
    assert!(
        yaml.contains("path: '/var/run/triage/ecds/triage.yaml'"),
        "{yaml}"
    );
    assert!(yaml.contains("watched_directory: { path: '/var/run/triage/ecds' }"));
    assert!(yaml.contains("node: { id: triage-gateway, cluster: triage }"));
    assert!(yaml.contains(&format!("- name: {MODULE_CLUSTER}")));
    // The filter's config comes with each discovered version, not from this file.
    assert!(!yaml.contains("vm_config"), "{yaml}");
    assert!(!yaml.contains("claude-opus"), "{yaml}");
}

#[test]
fn a_discovery_resource_carries_the_config_verbatim_and_the_module_by_url_and_sha256() {
    // A quote and a `${` in the plugin config must come through as they are.
    let plugin_config =
        r#"{"rules": [{"name": "it's ${odd}", "when": {"path_prefix": "/v1"}, "tier": "mid"}]}"#;
    let resource = ecds_resource(&EcdsVersion {
        version: "7",
        plugin_config,
        module_url: "http://127.0.0.1:8080/triage.wasm",
        sha256: "ab12",
        refuse_uncached_module: true,
    })
    .unwrap();
    assert!(resource.contains("version_info: '7'"), "{resource}");
    assert!(resource.contains("nack_on_code_cache_miss: true"));
    assert!(resource.contains(&format!(
        "http_uri: {{ uri: \"http://127.0.0.1:8080/triage.wasm\", cluster: {MODULE_CLUSTER}, timeout: 30s }}"
    )));
    assert!(resource.contains("sha256: \"ab12\""));
    assert!(resource.contains("allow_on_headers_stop_iteration: true"));
    let escaped = plugin_config.replace('\'', "''");
    assert!(
        resource.contains(&format!("value: '{escaped}'")),
        "{resource}"
    );
}
