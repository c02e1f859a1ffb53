//! Kubernetes manifests that deliver triage through a control plane, made from the plugin config
//! like the Envoy config is: one route and one backend per tier, and the plugin config inside them
//! checked by the filter's own validation. Two control planes: Istio ([`istio`]) and Envoy Gateway
//! ([`envoy_gateway`]).
//!
//! The plugin config the control plane hands the filter is the one given, with only what the
//! control plane names its own way changed, and validated again: each tier's `cluster` becomes the
//! name the control plane gives that tier's Envoy cluster (escalated attempts are sent to it, and a
//! served answer is billed by it), each tier's `upstream` the one the manifests route to, and under
//! Istio the identity sources read the JWT payload where Istio's `jwt_authn` writes it.

mod envoy_gateway;
mod istio;
pub mod yaml;

use serde_json::Value;
use triage_core::{Config, UpstreamAddress};

use crate::tiers::{self, GatewayTier};

/// The control plane the manifests are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Istio,
    EnvoyGateway,
}

/// Everything the manifests are made of.
#[derive(Debug, Clone)]
pub struct K8sStack<'a> {
    pub flavour: Flavour,
    /// The plugin config (JSON), as `triage envoy` takes it.
    pub plugin_config: &'a str,
    /// Where the control plane fetches `triage.wasm` (http or https), and the module's SHA-256
    /// (64 lowercase hex digits): a module with another digest is refused.
    pub module_url: &'a str,
    pub module_sha256: &'a str,
    /// Tier upstreams that replace the config's, by tier name (the shipped config's are local
    /// mocks).
    pub upstreams: &'a [(String, UpstreamAddress)],
    /// The identity provider whose JWTs the gateway verifies.
    pub jwt: JwtIssuer<'a>,
}

/// An identity provider: its `iss`, the audience tokens must name, and its keys' URL.
#[derive(Debug, Clone, Copy)]
pub struct JwtIssuer<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub jwks_uri: &'a str,
}

/// One file of manifests: its name in the example folder, and its YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    pub name: &'static str,
    pub yaml: String,
}

/// The manifests, file by file, or what stops them (a plugin config the filter would refuse, a
/// tier without an upstream or at a loopback address, a bad module URL or digest).
pub fn render(stack: &K8sStack) -> Result<Vec<ManifestFile>, String> {
    let config = Config::from_json(stack.plugin_config.as_bytes())
        .map_err(|error| format!("plugin config: {error}"))?;
    check_module(stack.module_url, stack.module_sha256)?;
    let tiers = tiers::resolve(&config, stack.upstreams)?;
    for tier in &tiers {
        if is_local(&tier.upstream) {
            return Err(format!(
                "tier {:?}: its upstream {} is an address on the gateway's own host, not a \
                 model server the cluster can reach (give one with --upstream {}=URL)",
                tier.name, tier.upstream, tier.name
            ));
        }
    }
    match stack.flavour {
        Flavour::Istio => istio::render(stack, &config, &tiers),
        Flavour::EnvoyGateway => envoy_gateway::render(stack, &config, &tiers),
    }
}

/// `x-triage-route|tier|...`: every header triage routes by or writes, as the regex the shipped
/// Envoy config's `early_header_mutation` removes from client requests before any filter runs.
pub const CLIENT_HEADERS_REMOVED: &str =
    "x-triage-(route|tier|score|reason|mode|escalated|escalation-cause|decision-id)";

/// The headers a caller's token comes in (OpenAI SDKs send `Authorization: Bearer`, Anthropic SDKs
/// `x-api-key`); neither may reach a tier, which has its own credentials.
const TOKEN_HEADERS: [&str; 2] = ["authorization", "x-api-key"];

/// How long a tier may take to answer: LLM answers, streamed or not, run to minutes.
const ROUTE_TIMEOUT: &str = "300s";

/// The namespace of the routes, backends and (for Envoy Gateway) the gateway itself.
const NAMESPACE: &str = "triage";
/// The name of every triage-owned object that there is one of.
const NAME: &str = "triage";

fn check_module(url: &str, sha256: &str) -> Result<(), String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!(
            "--module-url {url:?}: the control plane fetches the module over http or https"
        ));
    }
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "--sha256 {sha256:?}: the module's SHA-256 is 64 lowercase hex digits (sha256sum \
             triage.wasm)"
        ));
    }
    Ok(())
}

/// A loopback or unspecified address: the gateway pod itself, never a model server.
fn is_local(upstream: &UpstreamAddress) -> bool {
    upstream
        .host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
        || upstream.host == "localhost"
}

/// A Kubernetes Service's name inside the cluster (`<service>.<namespace>.svc.cluster.local`): no
/// external-service registration, no TLS origination of the mesh's own.
fn in_cluster(upstream: &UpstreamAddress) -> bool {
    upstream.host.ends_with(".svc.cluster.local") || upstream.host.ends_with(".svc")
}

/// A tier's name as a DNS-1123 label (route rule and subset names must be one): `tier-` and the
/// name with `_` as `-`.
fn tier_label(name: &str) -> Result<String, String> {
    let label = format!("tier-{}", name.replace('_', "-"));
    if label.len() > 63 || label.ends_with('-') {
        return Err(format!(
            "tier {name:?}: {label:?} is not a DNS-1123 label, which the manifests name the \
             tier's route by (at most 57 characters, ending in a letter or digit)"
        ));
    }
    Ok(label)
}

/// The labels of the tiers, refusing two tiers whose labels are the same (`a_b` and `a-b`).
fn tier_labels(tiers: &[GatewayTier]) -> Result<Vec<String>, String> {
    let labels = tiers
        .iter()
        .map(|tier| tier_label(tier.name))
        .collect::<Result<Vec<String>, String>>()?;
    for (index, label) in labels.iter().enumerate() {
        if let Some(earlier) = labels[..index].iter().position(|known| known == label) {
            return Err(format!(
                "tiers {:?} and {:?} share the route name {label:?}",
                tiers[earlier].name, tiers[index].name
            ));
        }
    }
    Ok(labels)
}

/// The plugin config as the control plane hands it to the filter: `plugin_config` with each tier's
/// `cluster` set to the control plane's name for the tier's cluster and its `upstream` to where the
/// manifests send it, and each identity source that reads the JWT payload under
/// `shipped_payload_key` reading it under `payload_key` instead. It is checked as `on_configure`
/// checks it, so a manifest never carries a config the filter refuses.
fn control_plane_plugin_config(
    plugin_config: &str,
    tiers: &[GatewayTier],
    clusters: &[String],
    payload_key: &str,
) -> Result<Value, String> {
    let mut value: Value =
        serde_json::from_str(plugin_config).map_err(|error| format!("plugin config: {error}"))?;
    let object = value
        .as_object_mut()
        .ok_or("plugin config: not a JSON object")?;
    // Without `tiers` the defaults apply, which name no upstream to route to.
    let raw_tiers = object
        .get_mut("tiers")
        .and_then(Value::as_array_mut)
        .ok_or("plugin config: write its tiers out; each needs the upstream its route goes to")?;
    for ((raw, tier), cluster) in raw_tiers.iter_mut().zip(tiers).zip(clusters) {
        if let Some(raw) = raw.as_object_mut() {
            raw.insert("cluster".into(), Value::from(cluster.as_str()));
            raw.insert("upstream".into(), Value::from(tier.upstream.to_string()));
        }
    }
    if let Some(identity) = object.get_mut("identity").and_then(Value::as_object_mut) {
        for source in identity.values_mut() {
            let Some(metadata) = source.get_mut("metadata") else {
                continue;
            };
            let reads_jwt_payload = metadata.get("namespace").and_then(Value::as_str)
                == Some(JWT_AUTHN_NAMESPACE)
                && metadata.pointer("/path/0").and_then(Value::as_str)
                    == Some(SHIPPED_JWT_PAYLOAD_KEY);
            if reads_jwt_payload {
                if let Some(head) = metadata.pointer_mut("/path/0") {
                    *head = Value::from(payload_key);
                }
            }
        }
    }
    let text = serde_json::to_string(&value).map_err(|error| error.to_string())?;
    Config::from_json(text.as_bytes())
        .map_err(|error| format!("the plugin config made for the control plane: {error}"))?;
    Ok(value)
}

/// The dynamic metadata namespace Envoy's `jwt_authn` writes a verified token's payload under.
pub const JWT_AUTHN_NAMESPACE: &str = "envoy.filters.http.jwt_authn";
/// The key the shipped Envoy config's `jwt_authn` puts the payload under (`payload_in_metadata`
/// in `envoy/envoy.yaml.in`), which the shipped plugin config's `identity` reads.
pub const SHIPPED_JWT_PAYLOAD_KEY: &str = "jwt_payload";

/// The plugin config as pretty JSON text, for a control plane that takes it as a string.
fn pretty(value: &Value) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|error| error.to_string())
}

/// An object's `metadata`.
fn metadata(name: &str, namespace: &str) -> Value {
    serde_json::json!({ "name": name, "namespace": namespace })
}

/// A Kubernetes object name made of an upstream's host (a DNS name is one; an IP's dots and
/// colons are made dashes).
fn object_name(upstream: &UpstreamAddress) -> String {
    upstream.host.replace(':', "-")
}

#[cfg(test)]
mod tests;
