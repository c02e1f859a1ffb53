//! `triage report`: what the decision log says about routing, per time window.

use std::path::{Path, PathBuf};

use triage_core::Config;
use triage_learn::log::feedback::{read_feedback, Feedback};
use triage_learn::report::{self, plot, window};

/// Reads Envoy access logs of decision records (other lines are skipped and counted) and prints,
/// per time window: requests, tier shares, cost, cost per task, all-top-tier cost and savings,
/// routing accuracy where feedback grades requests, override, escalation and fail-open rates,
/// requests with unknown usage and shadow mode's priced effect; then totals, the cost-per-task trend
/// and a verdict on each target (accuracy > 92%, overrides < 8%, cost per task falling).
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Access log files holding one decision record (JSON) per line.
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    /// Feedback file: JSON lines {"decision_id": ..., "correct_tier": ...} (a row keyed on a
    /// "request_id" labels only a record that id names alone); repeat for several (one file per
    /// flag, so the log files after it stay logs).
    #[arg(long)]
    feedback: Vec<PathBuf>,
    /// Window width: 15m, 1h, 1d, ... (units s, m, h, d, w); a handful of windows by default.
    #[arg(long, value_parser = window::parse_window)]
    window: Option<u64>,
    /// Plugin config (JSON, as given to the filter): its tiers order the columns; the shipped
    /// defaults when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Write cost-per-task.svg and rates.svg into this directory.
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// The plugin config at `path`, or the shipped defaults.
pub fn read_config(path: Option<&Path>) -> Result<Config, String> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Config::from_json(&bytes).map_err(|e| format!("{}: invalid config: {e}", path.display()))
}

/// The feedback files, whose tiers must be the config's.
pub fn read_config_feedback(feedback: &[PathBuf], config: &Config) -> Result<Feedback, String> {
    read_feedback(feedback, &config.tier_names()).map_err(|e| e.to_string())
}

pub fn run(args: ReportArgs) -> Result<bool, String> {
    let config = read_config(args.config.as_deref())?;
    let feedback = read_config_feedback(&args.feedback, &config)?;
    let report = report::build(&args.logs, &feedback, &config.tier_names(), args.window)
        .map_err(|e| e.to_string())?;
    if let Some(dir) = &args.plot {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (name, svg) in [
            ("cost-per-task.svg", plot::cost_per_task(&report)),
            ("rates.svg", plot::rates(&report)),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    if args.json {
        let json = serde_json::to_string(&report).map_err(|e| e.to_string())?;
        println!("{json}");
    } else {
        print!("{}", report::render_text(&report));
    }
    Ok(true)
}
