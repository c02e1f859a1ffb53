#![cfg(test)]
//! The Istio and Envoy Gateway examples: what `triage k8s` renders today, byte for byte; valid
//! against the real CRD schemas; and carrying the shipped plugin config, accepted as
//! `on_configure` accepts it and changed only where the control plane names things its own way.

mod crd;

use std::path::{Path, PathBuf};

use serde_json::Value;
use triage_core::{Config, UpstreamAddress};
use triage_gateway::k8s::{render, Flavour, JwtIssuer, K8sStack, ManifestFile};

use crd::{shared_crds, yaml_documents, Crds};

const SHIPPED_CONFIG: &str = include_str!("../../../envoy/plugin-config.json");

/// The examples' render: the shipped plugin config, a placeholder module URL and digest (the
/// READMEs say to render with your own), an in-cluster model server and two providers as tiers.
const MODULE_URL: &str = "https://modules.example.com/triage.wasm";
const MODULE_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const UPSTREAMS: [(&str, &str); 3] = [
    ("small", "http://llm-small.models.svc.cluster.local:8000"),
    ("mid", "https://api.openai.com"),
    ("frontier", "https://api.anthropic.com"),
];
const JWT_ISSUER: &str = "https://issuer.example.com";
const JWKS_URI: &str = "https://issuer.example.com/.well-known/jwks.json";

const FLAVOURS: [(Flavour, &str, &str); 2] = [
    (Flavour::Istio, "istio", "examples/istio"),
    (
        Flavour::EnvoyGateway,
        "envoy-gateway",
        "examples/envoy-gateway",
    ),
];

/// Kinds whose CRD ../shared/crds does not hold yet: their manifests are checked when
/// `TRIAGE_EXTRA_CRDS` names folders holding them (the CRDs at the commits ../shared/crds/README.md
/// names), and reported as unchecked otherwise.
const AWAITING_SHARED_CRDS: [&str; 4] = [
    "GatewayClass",
    "ClientTrafficPolicy",
    "SecurityPolicy",
    "EnvoyPatchPolicy",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rendered(flavour: Flavour) -> Vec<ManifestFile> {
    let upstreams: Vec<(String, UpstreamAddress)> = UPSTREAMS
        .iter()
        .map(|(tier, url)| {
            (
                tier.to_string(),
                UpstreamAddress::parse("test", url).unwrap(),
            )
        })
        .collect();
    render(&K8sStack {
        flavour,
        plugin_config: SHIPPED_CONFIG,
        module_url: MODULE_URL,
        module_sha256: MODULE_SHA256,
        upstreams: &upstreams,
        jwt: JwtIssuer {
            issuer: JWT_ISSUER,
            audience: "triage",
            jwks_uri: JWKS_URI,
        },
    })
    .unwrap()
}

/// The command the examples' READMEs give, with the same arguments as [`rendered`].
fn render_command(flavour_name: &str, dir: &str) -> String {
    let upstreams: String = UPSTREAMS
        .iter()
        .map(|(tier, url)| format!(" \\\n    --upstream {tier}={url}"))
        .collect();
    format!(
        "triage k8s --flavour {flavour_name} --config envoy/plugin-config.json \\\n    \
         --module-url {MODULE_URL} \\\n    --sha256 {MODULE_SHA256}{upstreams} \\\n    \
         --jwt-issuer {JWT_ISSUER} --jwks-uri {JWKS_URI} \\\n    --out {dir}"
    )
}

fn checked_in(dir: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_checked_in_examples_are_what_the_renderer_gives_today() {
    for (flavour, flavour_name, dir) in FLAVOURS {
        let mut expected: Vec<(String, String)> = rendered(flavour)
            .into_iter()
            .map(|file| (file.name.to_string(), file.yaml))
            .collect();
        expected.sort();
        let names = |files: &[(String, String)]| -> Vec<String> {
            files.iter().map(|(name, _)| name.clone()).collect()
        };
        let found = checked_in(dir);
        assert_eq!(names(&found), names(&expected), "{dir}: the files");
        for ((name, text), (_, want)) in found.iter().zip(&expected) {
            assert!(
                text == want,
                "{dir}/{name} is not what the renderer gives; run `{}` from the repo root",
                render_command(flavour_name, dir)
            );
        }
        let readme = std::fs::read_to_string(repo().join(dir).join("README.md")).unwrap();
        assert!(
            readme.contains(&render_command(flavour_name, dir)),
            "{dir}/README.md gives the command the examples are rendered with:\n{}",
            render_command(flavour_name, dir)
        );
    }
}

#[test]
fn every_manifest_is_valid_against_its_crd_schema() {
    let mut dirs = vec![shared_crds()];
    if let Some(extra) = std::env::var_os("TRIAGE_EXTRA_CRDS") {
        dirs.extend(std::env::split_paths(&extra));
    }
    let crds = Crds::load(&dirs);
    let mut checked = 0;
    let mut unchecked: Vec<String> = Vec::new();
    for (_, _, dir) in FLAVOURS {
        for (name, text) in checked_in(dir) {
            for object in yaml_documents(&text) {
                let kind = object["kind"].as_str().unwrap().to_string();
                if !crds.knows(&object) && AWAITING_SHARED_CRDS.contains(&kind.as_str()) {
                    unchecked.push(format!("{dir}/{name}: {kind}"));
                    continue;
                }
                let errors = crds.errors(&object);
                assert!(errors.is_empty(), "{dir}/{name}:\n{}", errors.join("\n"));
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "only {checked} manifests checked");
    if !unchecked.is_empty() {
        eprintln!(
            "not checked, no CRD in ../shared/crds (set TRIAGE_EXTRA_CRDS): {}",
            unchecked.join(", ")
        );
    }
}

#[test]
fn the_crd_check_refuses_an_unknown_field_a_wrong_enum_and_a_wrong_type() {
    let crds = Crds::load(&[shared_crds()]);
    let text = std::fs::read_to_string(repo().join("examples/istio/routes.yaml")).unwrap();
    let route = yaml_documents(&text)
        .into_iter()
        .find(|object| object["kind"] == "VirtualService")
        .unwrap();
    assert!(crds.errors(&route).is_empty());
    let mut unknown = route.clone();
    unknown["spec"]["http"][0]["timeoutt"] = Value::from("300s");
    let mut wrong_type = route.clone();
    wrong_type["spec"]["http"][0]["route"][0]["destination"]["port"]["number"] = Value::from("80");
    let mut bad_metadata = route.clone();
    bad_metadata["metadata"]["lables"] = serde_json::json!({});
    for (object, error) in [
        (unknown, "timeoutt"),
        (wrong_type, "\"80\" is not of type \"integer\""),
        (bad_metadata, "lables"),
    ] {
        let errors = crds.errors(&object).join("\n");
        assert!(errors.contains(error), "{error}: {errors}");
    }
    let text = std::fs::read_to_string(repo().join("examples/envoy-gateway/triage-extension.yaml"))
        .unwrap();
    let mut extension = yaml_documents(&text)
        .into_iter()
        .find(|object| object["kind"] == "EnvoyExtensionPolicy")
        .unwrap();
    assert!(crds.errors(&extension).is_empty());
    extension["spec"]["wasm"][0]["code"]["type"] = Value::from("Http");
    let errors = crds.errors(&extension).join("\n");
    assert!(errors.contains("\"Http\" is not one of"), "{errors}");
}

/// The plugin config each manifest hands the filter: Istio's as the Wasm filter's configuration
/// string, Envoy Gateway's as the Wasm extension's `config` object.
fn plugin_configs(dir: &str) -> Vec<Value> {
    let mut configs = Vec::new();
    for (_, text) in checked_in(dir) {
        for object in yaml_documents(&text) {
            match object["kind"].as_str() {
                Some("EnvoyFilter") => {
                    for patch in object["spec"]["configPatches"].as_array().unwrap() {
                        if patch["applyTo"] == "EXTENSION_CONFIG" {
                            let text = patch["patch"]["value"]["typed_config"]["config"]
                                ["configuration"]["value"]
                                .as_str()
                                .unwrap();
                            configs.push(serde_json::from_str(text).unwrap());
                        }
                    }
                }
                Some("EnvoyExtensionPolicy") => {
                    configs.push(object["spec"]["wasm"][0]["config"].clone());
                }
                _ => {}
            }
        }
    }
    configs
}

/// What a plugin config says besides what the control plane names its own way: each tier's
/// cluster and upstream, and the key its JWT payload is under.
fn without_control_plane_names(mut config: Value) -> Value {
    for tier in config["tiers"].as_array_mut().unwrap() {
        let tier = tier.as_object_mut().unwrap();
        tier.remove("cluster");
        tier.remove("upstream");
    }
    for source in config["identity"].as_object_mut().unwrap().values_mut() {
        let head = source.pointer_mut("/metadata/path/0").unwrap();
        assert!(head == "jwt_payload" || head == "payload", "{head}");
        *head = Value::from("jwt_payload");
    }
    config
}

#[test]
fn every_manifest_carries_the_shipped_plugin_config_as_on_configure_accepts_it() {
    let shipped: Value = serde_json::from_str(SHIPPED_CONFIG).unwrap();
    for (flavour, _, dir) in FLAVOURS {
        let configs = plugin_configs(dir);
        let expected = if flavour == Flavour::Istio { 2 } else { 1 };
        assert_eq!(configs.len(), expected, "{dir}: one per Wasm filter");
        for config in configs {
            Config::from_json(config.to_string().as_bytes())
                .unwrap_or_else(|error| panic!("{dir}: triage config refused: {error}"));
            assert_eq!(
                without_control_plane_names(config),
                without_control_plane_names(shipped.clone()),
                "{dir}"
            );
        }
    }
}

#[test]
fn istio_reads_the_jwt_payload_where_its_jwt_authn_writes_it() {
    for config in plugin_configs("examples/istio") {
        let path = &config["identity"]["caller"]["metadata"]["path"];
        assert_eq!(path, &serde_json::json!(["payload", "sub"]));
    }
    // The shipped Envoy config's key, which Envoy Gateway's provider is named after.
    let template = std::fs::read_to_string(repo().join("envoy/envoy.yaml.in")).unwrap();
    assert!(template.contains(&format!(
        "payload_in_metadata: {}",
        triage_gateway::k8s::SHIPPED_JWT_PAYLOAD_KEY
    )));
}
