//! `triage eval`: the router's quality and cost on routing-dataset rows, beside its baselines.

use std::path::{Path, PathBuf};

use serde_json::json;
use triage_core::Config;
use triage_learn::dataset::read_rows;
use triage_learn::eval::{evaluate_all, render_text};
use triage_learn::plot;

/// Runs the filter's decision on every row of each dataset file and prints, per file and for all of
/// them: tier shares; quality and cost of the router, each always-one-tier policy, a random mix at the
/// same cost, prompt length at the same tier shares and the oracle; APGR (with its 95% bootstrap
/// interval, and the router's paired lead over prompt length) and CPT(50%/80%) of the score between
/// the cheapest and the dearest tier; and, for rows that keep every model's outcome (RouterBench), the
/// other-models reference, which is no router but a bound on what routing by difficulty could do.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Routing-dataset files (JSON lines).
    #[arg(long, num_args = 1.., required = true)]
    data: Vec<PathBuf>,
    /// Plugin config (JSON, as given to the filter); the shipped defaults when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Write one cost-quality SVG per dataset into this directory.
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// A dataset's name: its file stem, or its whole path when two files share a stem.
fn names(paths: &[PathBuf]) -> Vec<String> {
    let stem = |path: &Path| {
        path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        )
    };
    paths
        .iter()
        .map(|path| {
            let shared = paths
                .iter()
                .filter(|other| stem(other) == stem(path))
                .count()
                > 1;
            if shared || stem(path) == "all" {
                path.display().to_string()
            } else {
                stem(path)
            }
        })
        .collect()
}

pub fn run(args: EvalArgs) -> Result<bool, String> {
    let config = match &args.config {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Config::from_json(&bytes)
                .map_err(|e| format!("{}: invalid config: {e}", path.display()))?
        }
        None => Config::default(),
    };
    let mut datasets = Vec::new();
    for (path, name) in args.data.iter().zip(names(&args.data)) {
        let rows = read_rows(path).map_err(|e| e.to_string())?;
        datasets.push((name, rows));
    }
    let reports = evaluate_all(&config, &datasets).map_err(|e| e.to_string())?;
    if let Some(dir) = &args.plot {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for report in &reports {
            let file_name: String = report
                .dataset
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let path = dir.join(format!("{file_name}.svg"));
            std::fs::write(&path, plot::render(report))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    if args.json {
        let config = args
            .config
            .as_ref()
            .map_or_else(|| "default".to_string(), |path| path.display().to_string());
        let object = json!({"config": config, "datasets": reports});
        println!("{object}");
    } else {
        print!("{}", render_text(&reports));
    }
    Ok(true)
}
