//! The Envoy config of a triage stack: `envoy/envoy.yaml.in` with the flavour's HTTP filters, and a
//! route and a cluster for every tier of the plugin config. The filter names a tier in the routing
//! header; the route for that value sends it to the tier's cluster, at the tier's `upstream`. So a
//! tier added or renamed in the plugin config has its route, and a decided tier without one cannot
//! happen.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use triage_core::{Config, UpstreamAddress};

use crate::template;
use crate::tiers::{self, GatewayTier};

const STACK: &str = include_str!("../../../envoy/envoy.yaml.in");
const TRIAGE_FILTERS: &str = include_str!("../../../envoy/filters/triage.yaml.in");
const TRIAGE_ECDS_FILTERS: &str = include_str!("../../../envoy/filters/triage-ecds.yaml.in");
/// The filter's own config (name, failure policy, plugin config, VM), shared by the filter written
/// into the Envoy config and the one a discovery resource carries.
const WASM_CONFIG: &str = include_str!("../../../envoy/filters/wasm-config.yaml.in");
const ECDS_RESOURCE: &str = include_str!("../../../envoy/ecds-resource.yaml.in");
/// The cluster Envoy fetches a discovered module from.
pub const MODULE_CLUSTER: &str = "triage_modules";
const BASELINE_FILTERS: &str = include_str!("../../../envoy/filters/baseline.yaml.in");

/// How long a tier may take to answer: LLM answers, streamed or not, run to minutes.
const ROUTE_TIMEOUT: &str = "300s";
/// The CA bundle a TLS upstream's certificate is checked against (Debian's and Ubuntu's path).
pub const SYSTEM_CA_FILE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The triage wasm filter.
    Triage,
    /// Envoy's native buffer filter in its place (the performance baseline; tiers are routed to,
    /// but nothing sets the routing header, so every request takes the default tier's route).
    Baseline,
}

/// Everything a stack's Envoy config is made of.
#[derive(Debug, Clone)]
pub struct EnvoyStack<'a> {
    pub flavour: Flavour,
    /// The plugin config as the filter gets it (JSON; empty means the defaults).
    pub plugin_config: &'a str,
    /// The plugin config whose tiers, route header, default tier and body limits shape the routes
    /// and clusters: `plugin_config` itself, except in a test that hands the filter a config it
    /// must refuse (Envoy's own check of it is what such a test is about).
    pub tiers_config: &'a str,
    pub listen_port: u16,
    pub admin_port: u16,
    /// The filter's module; the triage flavour needs it.
    pub wasm: Option<&'a Path>,
    /// Where Envoy writes the decision records.
    pub access_log: &'a Path,
    /// The keys the gateway's `jwt_authn` checks caller tokens with.
    pub jwks: &'a Path,
    /// Tier upstreams that replace the config's (a local stand-in for a provider), by tier name.
    pub upstreams: &'a [(String, UpstreamAddress)],
    /// The CA bundle for TLS upstreams.
    pub ca_file: &'a Path,
    /// The triage flavour with its filter delivered by extension config discovery instead of
    /// written in (`wasm` and `plugin_config` then come with each discovered version).
    pub ecds: Option<Ecds<'a>>,
}

/// Where a stack's Envoy discovers triage: the resource file it watches, and the server it fetches
/// modules from.
#[derive(Debug, Clone)]
pub struct Ecds<'a> {
    pub resource: &'a Path,
    pub module_server: UpstreamAddress,
}

/// One version of triage for extension config discovery.
#[derive(Debug, Clone)]
pub struct EcdsVersion<'a> {
    pub version: &'a str,
    /// The plugin config as the filter gets it (not checked here: Envoy refusing a bad one is what
    /// discovery is tested on).
    pub plugin_config: &'a str,
    /// Where Envoy fetches the module, through [`MODULE_CLUSTER`], and its sha256 (hex).
    pub module_url: &'a str,
    pub sha256: &'a str,
    /// Refuse the version while its module is not in Envoy's cache (and fetch it meanwhile): set
    /// for every version after the first (see [`ecds_resource`]).
    pub refuse_uncached_module: bool,
}

/// The rendered Envoy config, or what stops it (an invalid plugin config, a tier without an
/// upstream, an override for a tier the config lacks).
pub fn render(stack: &EnvoyStack) -> Result<String, String> {
    let config = Config::from_json(stack.tiers_config.as_bytes())
        .map_err(|error| format!("plugin config: {error}"))?;
    let tiers = tiers::resolve(&config, stack.upstreams)?;
    let mut blocks = HashMap::from([("TIER_ROUTES", routes(&config, &tiers))]);
    let filters = match (stack.flavour, &stack.ecds) {
        (Flavour::Triage, Some(_)) => TRIAGE_ECDS_FILTERS,
        (Flavour::Triage, None) => {
            let wasm = stack
                .wasm
                .ok_or("the triage flavour needs the filter's .wasm")?;
            let code = format!(
                "code: {{ local: {{ filename: {} }} }}",
                quoted(&wasm.display().to_string())
            );
            blocks.insert("WASM_CONFIG", wasm_config(stack.plugin_config, &code)?);
            TRIAGE_FILTERS
        }
        (Flavour::Baseline, _) => BASELINE_FILTERS,
    };
    let template = STACK.replace("${HTTP_FILTERS}\n", filters);
    let mut clusters = clusters(&tiers, config.envoy_buffer_limit_bytes(), stack.ca_file);
    if let Some(ecds) = &stack.ecds {
        clusters.push_str(&module_cluster(&ecds.module_server));
    }
    blocks.insert("TIER_CLUSTERS", clusters);
    let mut values = HashMap::from([
        ("LISTEN_PORT", stack.listen_port.to_string()),
        ("ADMIN_PORT", stack.admin_port.to_string()),
        ("ACCESS_LOG", stack.access_log.display().to_string()),
        ("JWKS_PATH", stack.jwks.display().to_string()),
        (
            "ENVOY_BUFFER_LIMIT_BYTES",
            config.envoy_buffer_limit_bytes().to_string(),
        ),
        ("MAX_BODY_BYTES", config.max_body_bytes().to_string()),
    ]);
    if let Some(ecds) = &stack.ecds {
        let dir = ecds.resource.parent().unwrap_or(Path::new("."));
        values.insert("ECDS_PATH", ecds.resource.display().to_string());
        values.insert("ECDS_DIR", dir.display().to_string());
    }
    template::fill(&template, &blocks, &values)
}

/// The file Envoy's extension config discovery reads for one version of triage.
///
/// A version whose module Envoy cannot fetch or verify (a wrong sha256, a server that is down) must
/// not replace a serving one: accepted, it leaves the listener with no triage filter at all, so
/// requests pass unrouted. `refuse_uncached_module` (Envoy's `nack_on_code_cache_miss`) makes Envoy
/// refuse a version whose module it has not cached yet and fetch it meanwhile; the version is
/// accepted when delivered again once the module is in (a control plane's retry). Envoy skips a
/// delivery whose content equals the last one it saw, refused or not, so a retry must differ:
/// the module URL's query is the usual place. The first version of a fresh Envoy is delivered
/// without it: Envoy then fetches the module while the listener warms, and serves nothing until it
/// has it.
pub fn ecds_resource(version: &EcdsVersion) -> Result<String, String> {
    let code = format!(
        "nack_on_code_cache_miss: {}\ncode:\n  remote:\n    http_uri: {{ uri: {}, cluster: {MODULE_CLUSTER}, timeout: 30s }}\n    sha256: {}",
        version.refuse_uncached_module,
        quoted(version.module_url),
        quoted(version.sha256)
    );
    let blocks = HashMap::from([("WASM_CONFIG", wasm_config(version.plugin_config, &code)?)]);
    let values = HashMap::from([("VERSION", version.version.to_owned())]);
    template::fill(ECDS_RESOURCE, &blocks, &values)
}

/// The filter's own config with this plugin config and this `code` (the VM's code lines), as a
/// block: inserted as it is, so nothing in the plugin config is read as a placeholder.
fn wasm_config(plugin_config: &str, code: &str) -> Result<String, String> {
    let values = HashMap::from([("PLUGIN_CONFIG", plugin_config.to_owned())]);
    let blocks = HashMap::from([("WASM_CODE", code.to_owned())]);
    template::fill(WASM_CONFIG, &blocks, &values)
}

/// The cluster a discovered module is fetched through.
fn module_cluster(server: &UpstreamAddress) -> String {
    format!(
        "- name: {MODULE_CLUSTER}\n  type: STATIC\n  connect_timeout: 5s\n  load_assignment:\n    cluster_name: {MODULE_CLUSTER}\n    endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }} }}] }}]\n",
        quoted(&server.host),
        server.port
    )
}

/// A JSON string is a YAML double-quoted scalar: names and hosts are quoted whatever they hold.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// One route per tier on the routing header's value, then the default tier's for everything else.
fn routes(config: &Config, tiers: &[GatewayTier]) -> String {
    let header = quoted(config.route_header());
    let mut out = String::new();
    let route = |out: &mut String, tier: &GatewayTier| {
        let host_rewrite = if tier.upstream.is_ip() {
            ""
        } else {
            // A provider serves its own host name, not the gateway's.
            ", auto_host_rewrite: true"
        };
        let _ = writeln!(
            out,
            "  route: {{ cluster: {}, timeout: {ROUTE_TIMEOUT}{host_rewrite} }}",
            quoted(tier.cluster)
        );
    };
    for tier in tiers {
        let _ = writeln!(
            out,
            "- match: {{ prefix: \"/\", headers: [{{ name: {header}, string_match: {{ exact: {} }} }}] }}",
            quoted(tier.name)
        );
        route(&mut out, tier);
    }
    if let Some(default) = tiers
        .iter()
        .find(|tier| tier.name == config.default_tier_name())
    {
        out.push_str("- match: { prefix: \"/\" }\n");
        route(&mut out, default);
    }
    out
}

/// One cluster per distinct tier cluster; the first tier naming a cluster gives its upstream.
fn clusters(tiers: &[GatewayTier], buffer_limit: usize, ca_file: &Path) -> String {
    let mut out = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for tier in tiers {
        if seen.contains(&tier.cluster) {
            continue;
        }
        seen.push(tier.cluster);
        let upstream = &tier.upstream;
        let name = quoted(tier.cluster);
        let kind = if upstream.is_ip() {
            "STATIC"
        } else {
            "LOGICAL_DNS"
        };
        let _ = writeln!(out, "- name: {name}");
        let _ = writeln!(out, "  type: {kind}");
        if !upstream.is_ip() {
            let _ = writeln!(out, "  dns_lookup_family: V4_PREFERRED");
        }
        let _ = writeln!(out, "  connect_timeout: 5s");
        // Envoy's per-request buffer limit: the filter's cap plus the room its rewrite needs.
        let _ = writeln!(out, "  per_connection_buffer_limit_bytes: {buffer_limit}");
        out.push_str(
            "  typed_extension_protocol_options:\n    \
             envoy.extensions.upstreams.http.v3.HttpProtocolOptions:\n      \
             \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\n      \
             explicit_http_config: { http_protocol_options: {} }\n",
        );
        let _ = writeln!(
            out,
            "  load_assignment:\n    cluster_name: {name}\n    endpoints: [{{ lb_endpoints: [{{ endpoint: \
             {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }} }}] }}]",
            quoted(&upstream.host),
            upstream.port
        );
        if upstream.tls {
            let host = quoted(&upstream.host);
            let _ = writeln!(
                out,
                "  transport_socket:\n    name: envoy.transport_sockets.tls\n    typed_config:\n      \
                 \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\n      \
                 sni: {host}\n      common_tls_context:\n        validation_context:\n          \
                 trusted_ca: {{ filename: {} }}\n          \
                 match_typed_subject_alt_names: [{{ san_type: DNS, matcher: {{ exact: {host} }} }}]",
                quoted(&ca_file.display().to_string())
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
