//! `triage ecds`: one version of triage for Envoy's extension config discovery (the file a stack
//! made by `triage envoy --ecds-resource` watches), checked as the filter's `on_configure` checks
//! it, so a version Envoy would refuse is refused here first.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use triage_core::Config;
use triage_gateway::envoy::{ecds_resource, EcdsVersion};

/// Prints the discovery resource: the plugin config and the module by URL and sha256.
#[derive(clap::Args, Debug)]
pub struct EcdsArgs {
    /// Plugin config (JSON), as the filter gets it.
    #[arg(long)]
    config: PathBuf,
    /// Where Envoy fetches the module (through the stack's module cluster).
    #[arg(long)]
    module_url: String,
    /// The module whose sha256 the resource names (the file served at --module-url).
    #[arg(long, required_unless_present = "sha256")]
    wasm: Option<PathBuf>,
    /// The module's sha256 (hex), instead of --wasm.
    #[arg(long, conflicts_with = "wasm")]
    sha256: Option<String>,
    /// The version's name (Envoy reports the serving one as version_text).
    #[arg(long)]
    version: String,
    /// The first version of a fresh Envoy: fetched while the listener warms. Every later version
    /// is refused while its module is not cached yet, so a bad module never replaces a serving
    /// one (deliver it again once Envoy has fetched it; see README, "Envoy").
    #[arg(long)]
    first: bool,
}

pub fn run(args: EcdsArgs) -> Result<bool, String> {
    let plugin_config = std::fs::read_to_string(&args.config)
        .map_err(|error| format!("{}: {error}", args.config.display()))?;
    Config::from_json(plugin_config.as_bytes())
        .map_err(|error| format!("{}: {}", args.config.display(), error.refusal()))?;
    let sha256 = match (&args.sha256, &args.wasm) {
        (Some(sha256), _) => sha256.clone(),
        (None, Some(wasm)) => {
            let module =
                std::fs::read(wasm).map_err(|error| format!("{}: {error}", wasm.display()))?;
            Sha256::digest(&module)
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect()
        }
        (None, None) => return Err("--wasm or --sha256 names the module".into()),
    };
    let resource = ecds_resource(&EcdsVersion {
        version: &args.version,
        plugin_config: &plugin_config,
        module_url: &args.module_url,
        sha256: &sha256,
        refuse_uncached_module: !args.first,
    })?;
    print!("{resource}");
    Ok(true)
}
