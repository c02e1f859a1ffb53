//! `triage envoy`: the Envoy config of a triage stack, made from the plugin config, so the routes
//! and clusters of the tiers are declared once (the plugin config's `tiers`).

use std::path::PathBuf;

use triage_core::UpstreamAddress;
use triage_gateway::envoy::{render, Ecds, EnvoyStack, Flavour, SYSTEM_CA_FILE};

/// Prints the Envoy config: one listener with the gateway's jwt_authn and the triage filter (or,
/// with --baseline, Envoy's buffer filter in its place), one route and one cluster per tier.
#[derive(clap::Args, Debug)]
pub struct EnvoyArgs {
    /// Plugin config (JSON): its tiers, each with its `upstream`, become the routes and clusters;
    /// the triage flavour embeds it for the filter.
    #[arg(long)]
    config: PathBuf,
    /// The filter's module (triage.wasm); not needed with --baseline.
    #[arg(long, required_unless_present_any = ["baseline", "ecds_resource"])]
    wasm: Option<PathBuf>,
    /// Envoy's buffer filter in place of triage (the performance baseline).
    #[arg(long)]
    baseline: bool,
    #[arg(long, default_value_t = 10000)]
    listen_port: u16,
    #[arg(long, default_value_t = 9901)]
    admin_port: u16,
    /// Where Envoy writes one decision record per routed request.
    #[arg(long)]
    access_log: PathBuf,
    /// The JWKS the gateway's jwt_authn checks caller tokens with.
    #[arg(long)]
    jwks: PathBuf,
    /// TIER=URL: this tier's upstream instead of the config's (a local server standing in for a
    /// provider, say); repeatable.
    #[arg(long = "upstream", value_parser = tier_upstream)]
    upstreams: Vec<(String, UpstreamAddress)>,
    /// The CA bundle that TLS upstreams' certificates are checked against.
    #[arg(long, default_value = SYSTEM_CA_FILE)]
    ca_file: PathBuf,
    /// Deliver triage by extension config discovery instead: Envoy watches this file for triage's
    /// versions (write them with `triage ecds`), and --wasm is not needed.
    #[arg(long, requires = "module_server")]
    ecds_resource: Option<PathBuf>,
    /// With --ecds-resource: the HTTP server Envoy fetches triage's modules from (http://host:port).
    #[arg(long, value_parser = module_server)]
    module_server: Option<UpstreamAddress>,
}

/// `TIER=URL`, as `--upstream` takes it.
pub fn tier_upstream(text: &str) -> Result<(String, UpstreamAddress), String> {
    let (tier, url) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not TIER=URL"))?;
    let upstream = UpstreamAddress::parse("--upstream", url).map_err(|error| error.to_string())?;
    Ok((tier.to_string(), upstream))
}

fn module_server(url: &str) -> Result<UpstreamAddress, String> {
    UpstreamAddress::parse("--module-server", url).map_err(|error| error.to_string())
}

pub fn run(args: EnvoyArgs) -> Result<bool, String> {
    let plugin_config = std::fs::read_to_string(&args.config)
        .map_err(|error| format!("{}: {error}", args.config.display()))?;
    let yaml = render(&EnvoyStack {
        flavour: if args.baseline {
            Flavour::Baseline
        } else {
            Flavour::Triage
        },
        plugin_config: &plugin_config,
        tiers_config: &plugin_config,
        listen_port: args.listen_port,
        admin_port: args.admin_port,
        wasm: args.wasm.as_deref(),
        access_log: &args.access_log,
        jwks: &args.jwks,
        upstreams: &args.upstreams,
        ca_file: &args.ca_file,
        ecds: args
            .ecds_resource
            .as_deref()
            .zip(args.module_server.clone())
            .map(|(resource, module_server)| Ecds {
                resource,
                module_server,
            }),
    })
    .map_err(|error| format!("{}: {error}", args.config.display()))?;
    print!("{yaml}");
    Ok(true)
}
