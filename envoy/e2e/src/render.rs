//! Renders a stack's Envoy config through `triage_gateway::envoy`, the code behind `triage envoy`
//! and `envoy/stack.sh`: every test runs the config an operator would, with the tiers' upstreams
//! pointed at the in-process mocks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use triage_gateway::envoy::Flavour;
use triage_gateway::envoy::{render as render_envoy, Ecds, EnvoyStack, SYSTEM_CA_FILE};

/// A local server's address as a tier's or the module server's upstream.
fn mock_address(url: &str) -> triage_core::UpstreamAddress {
    triage_core::UpstreamAddress::parse("mock", url)
        .unwrap_or_else(|e| panic!("address {url}: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub listen: u16,
    pub admin: u16,
}

/// The config the gateway's tiers come from: `gateway_config`, or the defaults ("") when it is one
/// the filter must refuse (a test of that refusal still needs routes).
fn routing_config(gateway_config: &str) -> &str {
    match triage_core::Config::from_json(gateway_config.as_bytes()) {
        Ok(_) => gateway_config,
        Err(_) => "",
    }
}

/// The tier names the gateway routes to for `gateway_config`, cheapest first (the defaults' when
/// [`routing_config`] replaces it).
pub fn tier_names(gateway_config: &str) -> Vec<String> {
    triage_core::Config::from_json(gateway_config.as_bytes())
        .unwrap_or_default()
        .tier_names()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// `wasm` is needed by the triage flavour only; `mocks` are the tiers' upstreams, by tier name;
/// `gateway_config` is the plugin config the routes, clusters and limits are made from (usually
/// `plugin_config` itself); `access_log` is where Envoy writes decision records; `jwks` holds the
/// keys the gateway's `jwt_authn` filter verifies caller tokens with; `ecds`, when set, is the
/// resource file Envoy discovers triage from and the server it fetches modules from.
#[allow(clippy::too_many_arguments)]
pub fn render(
    flavour: Flavour,
    ports: Ports,
    mocks: &[(String, SocketAddr)],
    wasm: Option<&Path>,
    plugin_config: &str,
    gateway_config: &str,
    access_log: &Path,
    jwks: &Path,
    ecds: Option<&(PathBuf, SocketAddr)>,
) -> String {
    let upstreams: Vec<_> = mocks
        .iter()
        .map(|(tier, addr)| (tier.clone(), mock_address(&format!("http://{addr}"))))
        .collect();
    render_envoy(&EnvoyStack {
        flavour,
        plugin_config,
        tiers_config: routing_config(gateway_config),
        listen_port: ports.listen,
        admin_port: ports.admin,
        wasm,
        access_log,
        jwks,
        upstreams: &upstreams,
        ca_file: Path::new(SYSTEM_CA_FILE),
        ecds: ecds.map(|(resource, server)| Ecds {
            resource,
            module_server: mock_address(&format!("http://{server}")),
        }),
    })
    .unwrap_or_else(|e| panic!("triage envoy refused the stack: {e}"))
}
