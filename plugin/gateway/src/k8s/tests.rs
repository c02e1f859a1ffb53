use super::*;

const SHIPPED: &str = include_str!("../../../../envoy/plugin-config.json");
const SHA256: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn address(text: &str) -> UpstreamAddress {
    UpstreamAddress::parse("test", text).unwrap()
}

fn upstreams() -> Vec<(String, UpstreamAddress)> {
    vec![
        (
            "small".into(),
            address("http://llm-small.models.svc.cluster.local:8000"),
        ),
        ("mid".into(), address("https://api.openai.com")),
        ("frontier".into(), address("https://api.anthropic.com")),
    ]
}

fn stack<'a>(flavour: Flavour, upstreams: &'a [(String, UpstreamAddress)]) -> K8sStack<'a> {
    K8sStack {
        flavour,
        plugin_config: SHIPPED,
        module_url: "https://modules.example.com/triage.wasm",
        module_sha256: SHA256,
        upstreams,
        jwt: JwtIssuer {
            issuer: "https://issuer.example.com",
            audience: "triage",
            jwks_uri: "https://issuer.example.com/jwks.json",
        },
    }
}

fn file<'f>(files: &'f [ManifestFile], name: &str) -> &'f str {
    &files.iter().find(|file| file.name == name).unwrap().yaml
}

#[test]
fn istio_names_each_tier_cluster_as_istio_does_and_reads_the_payload_where_istio_writes_it() {
    let upstreams = upstreams();
    let files = render(&stack(Flavour::Istio, &upstreams)).unwrap();
    let filter = file(&files, "triage-filter.yaml");
    for cluster in [
        "outbound|8000|tier-small|llm-small.models.svc.cluster.local",
        "outbound|80|tier-mid|api.openai.com",
        "outbound|80|tier-frontier|api.anthropic.com",
    ] {
        assert!(
            filter.contains(&format!("\"cluster\": \"{cluster}\"")),
            "{cluster}"
        );
    }
    assert!(filter.contains("\"path\": [\n"), "{filter}");
    assert!(filter.contains("\"payload\",\n"));
    assert!(!filter.contains("jwt_payload"));
    assert!(filter.contains(&format!("sha256: \"{SHA256}\"")));
    let routes = file(&files, "routes.yaml");
    // An in-cluster model server needs no ServiceEntry; each provider has one, on port 80 sent
    // on as TLS to 443.
    assert!(!routes
        .contains("name: llm-small.models.svc.cluster.local\n  namespace: triage\nspec:\n  hosts"));
    assert_eq!(routes.matches("kind: ServiceEntry").count(), 2);
    assert_eq!(routes.matches("targetPort: 443").count(), 2);
    assert!(file(&files, "sidecar.yaml").contains("- api.openai.com\n"));
}

#[test]
fn envoy_gateway_names_each_tier_cluster_by_its_rule_and_keeps_the_shipped_identity() {
    let upstreams = upstreams();
    let files = render(&stack(Flavour::EnvoyGateway, &upstreams)).unwrap();
    let extension = file(&files, "triage-extension.yaml");
    for (index, tier) in ["small", "mid", "frontier"].iter().enumerate() {
        assert!(extension.contains(&format!("cluster: httproute/triage/triage/rule/{index}")));
        let routes = file(&files, "routes.yaml");
        assert!(routes.contains(&format!("value: {tier}\n")), "{tier}");
    }
    assert!(extension.contains("- jwt_payload\n"), "{extension}");
    assert!(file(&files, "authentication.yaml").contains("name: jwt_payload\n"));
}

#[test]
fn a_loopback_upstream_a_bad_digest_or_a_refused_config_stops_the_manifests() {
    let none = [];
    let error = render(&stack(Flavour::Istio, &none)).unwrap_err();
    assert!(
        error.contains("tier \"small\": its upstream http://127.0.0.1:18001"),
        "{error}"
    );
    let upstreams = upstreams();
    let mut bad_digest = stack(Flavour::EnvoyGateway, &upstreams);
    bad_digest.module_sha256 = "ABC";
    assert!(render(&bad_digest).unwrap_err().starts_with("--sha256"));
    let mut refused = stack(Flavour::Istio, &upstreams);
    refused.plugin_config = r#"{"tiers": [{"name": "a", "max_score": 2}, {"name": "b"}]}"#;
    let error = render(&refused).unwrap_err();
    assert!(
        error.starts_with("plugin config: tiers[0].max_score"),
        "{error}"
    );
}

#[test]
fn two_tiers_reaching_one_host_two_ways_are_refused() {
    let upstreams = vec![
        ("small".into(), address("https://api.openai.com")),
        ("mid".into(), address("http://api.openai.com:8080")),
        ("frontier".into(), address("https://api.anthropic.com")),
    ];
    for flavour in [Flavour::Istio, Flavour::EnvoyGateway] {
        let error = render(&stack(flavour, &upstreams)).unwrap_err();
        assert!(error.contains("api.openai.com"), "{error}");
    }
}
