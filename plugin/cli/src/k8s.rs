//! `triage k8s`: the Kubernetes manifests that deliver triage through Istio or Envoy Gateway, made
//! from the plugin config, so the routes and backends of the tiers are declared once (the plugin
//! config's `tiers`) as they are for `triage envoy`.

use std::path::PathBuf;

use triage_core::UpstreamAddress;
use triage_gateway::k8s::{render, Flavour, JwtIssuer, K8sStack};

use crate::envoy::tier_upstream;

/// Prints (or writes into --out) the manifests of a triage gateway: the filter with the plugin
/// config, a route and a backend per tier, the header stripping and the caller authentication.
#[derive(clap::Args, Debug)]
pub struct K8sArgs {
    /// The control plane.
    #[arg(long, value_enum)]
    flavour: FlavourArg,
    /// Plugin config (JSON): its tiers become the routes and backends, and the filter gets it.
    #[arg(long)]
    config: PathBuf,
    /// Where the control plane fetches triage.wasm (http or https).
    #[arg(long)]
    module_url: String,
    /// The module's SHA-256 (`sha256sum triage.wasm`): a module with another digest is refused.
    #[arg(long)]
    sha256: String,
    /// TIER=URL: this tier's upstream instead of the config's; repeatable.
    #[arg(long = "upstream", value_parser = tier_upstream)]
    upstreams: Vec<(String, UpstreamAddress)>,
    /// The `iss` of the caller tokens the gateway accepts.
    #[arg(long)]
    jwt_issuer: String,
    /// The audience those tokens must name.
    #[arg(long, default_value = "triage")]
    jwt_audience: String,
    /// Where the issuer publishes its keys (JWKS).
    #[arg(long)]
    jwks_uri: String,
    /// A folder to write one file per manifest group into (created if missing); without it the
    /// manifests are printed as one stream.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum FlavourArg {
    Istio,
    EnvoyGateway,
}

pub fn run(args: K8sArgs) -> Result<bool, String> {
    let plugin_config = std::fs::read_to_string(&args.config)
        .map_err(|error| format!("{}: {error}", args.config.display()))?;
    let files = render(&K8sStack {
        flavour: match args.flavour {
            FlavourArg::Istio => Flavour::Istio,
            FlavourArg::EnvoyGateway => Flavour::EnvoyGateway,
        },
        plugin_config: &plugin_config,
        module_url: &args.module_url,
        module_sha256: &args.sha256,
        upstreams: &args.upstreams,
        jwt: JwtIssuer {
            issuer: &args.jwt_issuer,
            audience: &args.jwt_audience,
            jwks_uri: &args.jwks_uri,
        },
    })
    .map_err(|error| format!("{}: {error}", args.config.display()))?;
    match args.out {
        Some(dir) => {
            std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
            for file in files {
                let path = dir.join(file.name);
                std::fs::write(&path, file.yaml)
                    .map_err(|error| format!("{}: {error}", path.display()))?;
            }
        }
        None => {
            for file in files {
                print!("{}", file.yaml);
            }
        }
    }
    Ok(true)
}
