//! `triage validate`: the filter's `on_configure` check of a plugin config, without Envoy.

use std::path::PathBuf;

use triage_core::{ApiFormat, Config};

/// Parses and validates a plugin config exactly as the filter's `on_configure` does (the same code
/// and the same messages) and prints what the filter would run with; exits 1 when it refuses it.
#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// Plugin config (JSON, as given to the filter).
    config: PathBuf,
}

/// One line per tier, cheapest first: its score bound, cluster and models.
fn summary(config: &Config) -> String {
    let thresholds = config.thresholds();
    let mut out = format!(
        "triage config accepted: {} tiers, default {}, mode {}\n",
        config.tier_names().len(),
        config.default_tier_name(),
        config.mode().name()
    );
    for (index, name) in config.tier_names().iter().enumerate() {
        let bound = match thresholds.get(index) {
            Some(max) => format!("score <= {max:.4}"),
            None => "above every bound".to_string(),
        };
        let models: Vec<String> = ApiFormat::ALL
            .iter()
            .filter_map(|format| {
                let model = config.tier_model(index, *format)?;
                Some(format!("{}={model}", format.as_str()))
            })
            .collect();
        let upstream = config
            .tier_upstream(index)
            .map_or_else(String::new, |upstream| format!(" at {upstream}"));
        out += &format!(
            "  {name}: {bound}, cluster {}{upstream}, {}\n",
            config.tier_cluster(index).unwrap_or("-"),
            if models.is_empty() {
                "model kept".to_string()
            } else {
                models.join(" ")
            }
        );
    }
    out
}

pub fn run(args: ValidateArgs) -> Result<bool, String> {
    let path = args.config.display();
    let bytes = std::fs::read(&args.config).map_err(|error| format!("{path}: {error}"))?;
    match Config::from_json(&bytes) {
        Ok(config) => {
            print!("{}", summary(&config));
            Ok(true)
        }
        Err(error) => {
            // The filter's own words (plugin/filter/src/root.rs), so a log line and this agree.
            eprintln!("{path}: {}", error.refusal());
            Ok(false)
        }
    }
}
