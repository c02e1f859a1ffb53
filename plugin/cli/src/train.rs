//! `triage train`: fits the router's model on routing-dataset rows and on rows made from decision
//! logs (`--from-log`), cross-validates it and writes the model file; or, with `--learning-curve`,
//! measures how fast it adapts to one of those files as an unseen family (no model is written).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use triage_core::Config;
use triage_learn::adapt::{self, CurveOptions};
use triage_learn::calibrate::Target;
use triage_learn::dataset::read_rows;
use triage_learn::log::rows::{rows_from_logs_by, LabelRule};
use triage_learn::train::{self, Source, TrainOptions};

use crate::report::{read_config, read_config_feedback};

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Routing-dataset files (JSON lines); each is reported as a source of its own.
    #[arg(long, num_args = 1.., required_unless_present = "from_log")]
    data: Vec<PathBuf>,
    /// Access logs of decision records to learn from, beside or instead of --data: each record
    /// becomes a row labelled by its feedback, override, escalation for a weak answer (an outage
    /// teaches nothing) or answer (needs --config for the tiers and prices; only records that carry
    /// the request body can be rows).
    #[arg(long, num_args = 1.., requires = "config")]
    from_log: Vec<PathBuf>,
    /// Feedback files for --from-log: JSON lines {"decision_id": ..., "correct_tier": ...} (a
    /// row keyed on a "request_id" labels only a record that id names alone).
    #[arg(long, num_args = 1.., requires = "from_log")]
    feedback: Vec<PathBuf>,
    /// Plugin config (JSON) the log was made with: its tiers, cheapest first, and their prices.
    #[arg(long, requires = "from_log")]
    config: Option<PathBuf>,
    /// The label rules --from-log learns from, comma-separated (feedback, override, escalation,
    /// served; all by default). `feedback,override` keeps only what the operator and verified
    /// callers said, never labels a client can provoke; a record whose rule is left out is skipped.
    #[arg(long, value_delimiter = ',', value_parser = label_rule, requires = "from_log")]
    label_rules: Vec<LabelRule>,
    /// Where to write the model file (JSON).
    #[arg(long, required_unless_present = "learning_curve")]
    out: Option<PathBuf>,
    /// Seed of the fold assignment.
    #[arg(long, default_value_t = train::DEFAULT_SEED)]
    seed: u64,
    /// Number of cross-validation folds.
    #[arg(long, default_value_t = train::DEFAULT_FOLDS)]
    folds: usize,
    /// Hashed n-gram bucket count(s), powers of two, comma-separated to search several.
    #[arg(long, value_delimiter = ',')]
    buckets: Vec<u32>,
    /// L2 strength(s), comma-separated to search several.
    #[arg(long, value_delimiter = ',')]
    l2: Vec<f64>,
    /// Strength(s) of the Gaussian prior pulling the hand-made features' weights toward triage's
    /// hand-set weights instead of toward 0 (0 = plain L2 toward 0, as before the prior existed),
    /// comma-separated to search several. The default is the strength cross-validation chose.
    #[arg(long, value_delimiter = ',', default_values_t = [train::DEFAULT_PRIOR_L2])]
    prior_l2: Vec<f64>,
    /// Search the built-in grid (buckets 2^14, 2^15, 2^16 × l2 1e-4, 3e-4, 1e-3, 3e-3) for whichever
    /// of --buckets and --l2 is not given.
    #[arg(long)]
    grid: bool,
    /// Target the thresholds are calibrated to, on the out-of-fold probabilities:
    /// max-top-share=X, max-cost=X or min-quality=X (relative to always-top-tier).
    #[arg(long, default_value = "min-quality=0.95")]
    target: Target,
    /// Tier names the thresholds are for, cheapest first (dataset tier names).
    #[arg(long, value_delimiter = ',', default_value = "small,mid,frontier")]
    tiers: Vec<String>,
    /// Calibrate the thresholds on the rows of these --data or --from-log files only (all of them by
    /// default).
    #[arg(long, num_args = 1..)]
    threshold_data: Vec<PathBuf>,
    /// Most text bytes read per request (the filter's limits.max_scan_bytes).
    #[arg(long, default_value_t = train::DEFAULT_MAX_SCAN_BYTES)]
    max_scan_bytes: usize,
    /// Most L-BFGS iterations per fit.
    #[arg(long, default_value_t = 400)]
    max_iters: u64,
    /// Fits run in parallel (the result does not depend on it); all cores by default.
    #[arg(long)]
    threads: Option<usize>,
    /// Skip leave-one-source-out (the chosen point fitted once per source on the other sources'
    /// rows and scored on that source's), for a quicker run.
    #[arg(long)]
    no_loso: bool,
    /// Leave the prompt's embedding out: a model of the features and n-grams only, as before the
    /// embeddings (to measure what the embedding adds).
    #[arg(long)]
    no_semantic: bool,
    /// Instead of training: the learning curve of adapting to this file (one of --data or
    /// --from-log) as a family never trained on. Its rows are split by --seed into an adaptation pool
    /// and a test part; the model of the other files, then models given the pool's first N rows
    /// (from scratch or warm-started from that model, with or without the other files), and the
    /// model of the other files and the whole pool are scored on the test part, at one point of
    /// --buckets, --l2 and --prior-l2.
    #[arg(long, value_name = "SOURCE_FILE", conflicts_with_all = ["out", "grid"])]
    learning_curve: Option<PathBuf>,
    /// The learning curve's numbers of labelled rows [default: 100,300,1000,3000].
    // No clap default here or below: clap would count a defaulted flag as given and never ask for
    // --learning-curve. And each conflicts with --out itself: clap drops the requirement of an
    // argument that conflicts with one given.
    #[arg(
        long,
        value_delimiter = ',',
        requires = "learning_curve",
        conflicts_with = "out"
    )]
    sizes: Vec<usize>,
    /// The share of the learning curve's file kept as its test part [default: 0.5].
    #[arg(long, requires = "learning_curve", conflicts_with = "out")]
    test_share: Option<f64>,
    /// How hard the warm start pulls every weight toward the model of the other files (the l2 of
    /// the fit by default).
    #[arg(long, requires = "learning_curve", conflicts_with = "out")]
    warm_l2: Option<f64>,
    /// Print the learning curve as one JSON object instead of a table.
    #[arg(long, requires = "learning_curve", conflicts_with = "out")]
    json: bool,
}

/// The command line as typed, quoted where a shell would need it, for the model's provenance.
pub fn command_line() -> String {
    let quote = |arg: String| {
        if !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@".contains(c))
        {
            arg
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    std::iter::once("triage".to_string())
        .chain(std::env::args().skip(1).map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>16} [{elapsed_precise}] {wide_bar} {pos}/{len} (eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>, String> {
    paths
        .iter()
        .map(|path| {
            let rows = read_rows(path).map_err(|e| e.to_string())?;
            Ok(Source {
                name: path.display().to_string(),
                rows,
            })
        })
        .collect()
}

/// `--label-rules`' values.
pub fn label_rule(name: &str) -> Result<LabelRule, String> {
    LabelRule::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = LabelRule::ALL.iter().map(|rule| rule.name()).collect();
        format!("{name:?} is not one of {}", names.join(", "))
    })
}

/// The rows of decision logs (made with `config`), one source per log file, labelled with the
/// feedback files too, by the label `rules` (all when empty); prints how many rows each label rule
/// gave, the records skipped and why, and the feedback rows matching no record or several (those
/// label nothing).
pub fn log_sources(
    logs: &[PathBuf],
    feedback: &[PathBuf],
    rules: &[LabelRule],
    config: &Config,
) -> Result<Vec<Source>, String> {
    let graded = read_config_feedback(feedback, config)?;
    let rules = if rules.is_empty() {
        &LabelRule::ALL[..]
    } else {
        rules
    };
    let from_log = rows_from_logs_by(logs, &graded, config, rules)?;
    print!("{}", from_log.summary());
    if !feedback.is_empty() {
        println!("feedback: {}", from_log.feedback.describe());
    }
    Ok(from_log.sources)
}

/// The options the flags set.
fn train_options(args: TrainArgs) -> TrainOptions {
    let defaults = TrainOptions::default();
    let buckets = match (args.buckets.is_empty(), args.grid) {
        (false, _) => args.buckets,
        (true, true) => train::GRID_BUCKETS.to_vec(),
        (true, false) => defaults.buckets.clone(),
    };
    let l2 = match (args.l2.is_empty(), args.grid) {
        (false, _) => args.l2,
        (true, true) => train::GRID_L2.to_vec(),
        (true, false) => defaults.l2.clone(),
    };
    TrainOptions {
        seed: args.seed,
        folds: args.folds,
        buckets,
        l2,
        prior_l2: args.prior_l2,
        prior: defaults.prior.clone(),
        max_scan_bytes: args.max_scan_bytes,
        max_iters: args.max_iters,
        threads: args.threads.unwrap_or(defaults.threads),
        target: args.target,
        tiers: args.tiers,
        threshold_sources: args
            .threshold_data
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        command: command_line(),
        bootstrap: defaults.bootstrap,
        leave_one_source_out: !args.no_loso,
        semantic: !args.no_semantic,
    }
}

pub fn run(args: TrainArgs) -> Result<bool, String> {
    let mut sources = read_sources(&args.data)?;
    if !args.from_log.is_empty() {
        let config = read_config(args.config.as_deref())?;
        sources.extend(log_sources(
            &args.from_log,
            &args.feedback,
            &args.label_rules,
            &config,
        )?);
    }
    let curve = args.learning_curve.as_ref().map(|source| {
        let defaults = CurveOptions::new(&source.display().to_string());
        CurveOptions {
            sizes: Some(args.sizes.clone())
                .filter(|sizes| !sizes.is_empty())
                .unwrap_or(defaults.sizes),
            test_share: args.test_share.unwrap_or(defaults.test_share),
            warm_l2: args.warm_l2,
            ..defaults
        }
    });
    let (out, json) = (args.out.clone(), args.json);
    let options = train_options(args);
    match (curve, out) {
        (Some(curve), _) => learning_curve(&sources, &options, &curve, json),
        (None, Some(out)) => train_and_write(&sources, &options, &out),
        (None, None) => Err("--out is needed to write the model".into()),
    }
}

fn learning_curve(
    sources: &[Source],
    options: &TrainOptions,
    curve: &CurveOptions,
    json: bool,
) -> Result<bool, String> {
    let progress = progress_bar();
    let measured =
        adapt::learning_curve(sources, options, curve, &progress).map_err(|e| e.to_string())?;
    progress.finish_and_clear();
    if json {
        let text = serde_json::to_string(&measured).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", measured.table());
    }
    Ok(true)
}

fn train_and_write(sources: &[Source], options: &TrainOptions, out: &Path) -> Result<bool, String> {
    let progress = progress_bar();
    let trained = train::train(sources, options, &progress).map_err(|e| e.to_string())?;
    progress.finish_and_clear();
    let json = trained.model.to_json();
    std::fs::write(out, &json).map_err(|e| format!("{}: {e}", out.display()))?;
    print!("{}", trained.report.table());
    println!(
        "thresholds for {} on the out-of-fold probabilities of {}:",
        options.target,
        if options.threshold_sources.is_empty() {
            "every row".to_string()
        } else {
            options.threshold_sources.join(", ")
        }
    );
    print!("{}", trained.report.operating_point.table());
    println!(
        "wrote {} ({} bytes, {} buckets)",
        out.display(),
        json.len(),
        trained.model.buckets
    );
    Ok(true)
}
