//! Training the router's model from routing-dataset rows.
//!
//! 1. Each row's request is encoded by the core's own [`model_inputs`] (the filter's features and
//!    hashed n-grams) and labelled 1 when its cheapest tier's quality is below its dearest tier's.
//! 2. The rows are dealt into `folds` folds by a seeded shuffle within each (source, label) stratum.
//! 3. For every (bucket count, L2, prior strength) point of the grid, k-fold cross-validation gives
//!    an out-of-fold logit for every row; AUC, APGR, CPT(50%) and CPT(80%) of those logits are
//!    reported per source beside routing by prompt length on the same rows. The point with the best
//!    mean per-source APGR wins, preferring fewer buckets, then a stronger prior, then more L2 among
//!    points within [`SELECTION_TOLERANCE`] of the best (a small grid and a tolerance keep the
//!    selection from overfitting the folds; the winner's numbers are still slightly optimistic).
//!    The prior ([`logistic::DensePrior`]) pulls the dense weights toward the hand-set weights
//!    ([`Model::hand_set`]) instead of toward 0: benchmark rows never exercise many features (tools,
//!    images, simple-task cues...), and without it those get arbitrary weights; a tie goes to the
//!    stronger prior because the benchmarks cannot measure what it protects.
//! 4. Platt scaling `(a, b)` is fitted on the winner's out-of-fold logits, so the probabilities are
//!    those of a model that had not seen the row; the tier thresholds are calibrated to a target on
//!    the same out-of-fold probabilities.
//! 5. The final model is the winner refitted on every row.
//!
//! With several sources the winner is also fitted once per source on the other sources' rows only
//! ([`crate::loso`]): k-fold numbers say how the router does on task families it was trained on,
//! those say how it does on one it never saw.
//!
//! The winner's out-of-fold APGR gets a 95% bootstrap interval per source, and so does its lead over
//! prompt length (paired: the same resampled rows for both), since differences of 0.01 between grid
//! points or fold seeds are within the noise; only the winner, so the grid search pays nothing.
//!
//! Deterministic for a seed: fits are single-threaded and their results are collected in job order
//! whichever thread ran them.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::ProgressBar;
use serde_json::{json, Value};
use triage_core::{
    embed::DIMS as EMBED_DIMS, model_inputs, ApiFormat, Calibration, Model, FEATURE_COUNT,
    FEATURE_NAMES, FEATURE_SET,
};

use crate::baselines;
use crate::bootstrap::{self, Bootstrap, Difference, Interval};
use crate::calibrate::{self, OperatingPoint, Target};
use crate::dataset::Row;
use crate::enough::LabelCounts;
use crate::logistic::{self, DensePrior, Example, FitOptions};
use crate::loso;
use crate::metrics::{self, Scored};
use crate::rng::SplitMix;

pub const DEFAULT_MAX_SCAN_BYTES: usize = 64 * 1024;
pub const DEFAULT_FOLDS: usize = 5;
pub const DEFAULT_SEED: u64 = 1;
pub const DEFAULT_BUCKETS: u32 = 1 << 16;
pub const DEFAULT_L2: f64 = 1e-3;
/// Strength of the prior pulling the dense weights toward the hand-set ones (0 = plain L2 toward 0).
/// Chosen by 5-fold cross-validation on the training rows: every strength from 0.003 to 1 costs
/// about 0.01 of row-weighted mean APGR against none (the benchmarks cannot see what the prior
/// buys), and from 0.01 up they are within 0.002 of each other, so the tie goes to the strongest
/// tried; above 0.1 nothing changes.
pub const DEFAULT_PRIOR_L2: f64 = 0.1;
/// The grid `--grid` searches: 3 bucket counts × 4 L2 strengths, 12 points (the prior strength is
/// searched only when several are given).
pub const GRID_BUCKETS: [u32; 3] = [1 << 14, 1 << 15, 1 << 16];
pub const GRID_L2: [f64; 4] = [1e-4, 3e-4, 1e-3, 3e-3];
/// Grid points whose mean per-source APGR is within this of the best count as ties.
pub const SELECTION_TOLERANCE: f64 = 0.005;

/// The rows of one data file.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file name as given (reported and recorded in the model's meta).
    pub name: String,
    pub rows: Vec<Row>,
}

#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub seed: u64,
    pub folds: usize,
    /// Bucket counts to try (powers of two); one value means no search.
    pub buckets: Vec<u32>,
    /// L2 strengths to try.
    pub l2: Vec<f64>,
    /// Strengths of the dense prior to try (0 = none).
    pub prior_l2: Vec<f64>,
    /// The centre of the dense prior, one value per feature ([`Model::hand_set`]'s by default).
    pub prior: Vec<f64>,
    pub max_scan_bytes: usize,
    pub max_iters: u64,
    pub threads: usize,
    /// The target the thresholds are calibrated to, and the tier names, cheapest first.
    pub target: Target,
    pub tiers: Vec<String>,
    /// The sources (their `name`s) whose rows the thresholds are calibrated on; empty means all.
    pub threshold_sources: Vec<String>,
    /// The command line, recorded in the model's meta.
    pub command: String,
    /// The resamples of the chosen point's APGR intervals; their own seed, so changing the fold seed
    /// shows the folds' noise apart from the resamples'.
    pub bootstrap: Bootstrap,
    /// Also fit the chosen point once per source without that source's rows ([`crate::loso`]).
    pub leave_one_source_out: bool,
    /// Weigh the prompt's embedding beside the features and n-grams (off: a model without
    /// `semantic`, as before the embeddings; for comparisons and for builds that skip the cost).
    pub semantic: bool,
}

impl TrainOptions {
    /// Width of the examples' `dense`: the features, then the embedding unless it is left out.
    pub(crate) fn dense_len(&self) -> usize {
        if self.semantic {
            DENSE_LEN
        } else {
            FEATURE_COUNT
        }
    }

    /// The fit of one grid point.
    pub(crate) fn fit_options(&self, buckets: u32, l2: f64, prior_l2: f64) -> FitOptions {
        FitOptions {
            max_iters: self.max_iters,
            prior: (prior_l2 != 0.0).then(|| DensePrior {
                centre: prior_centre(&self.prior, self.dense_len()),
                strength: prior_l2,
            }),
            ..FitOptions::new(self.dense_len(), buckets as usize, l2)
        }
    }
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        TrainOptions {
            seed: DEFAULT_SEED,
            folds: DEFAULT_FOLDS,
            buckets: vec![DEFAULT_BUCKETS],
            l2: vec![DEFAULT_L2],
            prior_l2: vec![DEFAULT_PRIOR_L2],
            prior: Model::hand_set(1).dense,
            max_scan_bytes: DEFAULT_MAX_SCAN_BYTES,
            max_iters: 400,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            target: Target::MinQuality(0.95),
            tiers: ["small", "mid", "frontier"].map(String::from).to_vec(),
            threshold_sources: Vec::new(),
            command: String::new(),
            bootstrap: Bootstrap::default(),
            leave_one_source_out: true,
            semantic: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainError(pub String);

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TrainError {}

/// The label: the cheapest tier fails where the dearest succeeds. None when the row has no tier.
pub fn label(row: &Row) -> Option<bool> {
    scored(row, 0.0).map(|s| s.label())
}

/// The row as the 2-tier metrics see it: its cheapest and dearest tiers' quality and cost.
pub fn scored(row: &Row, score: f64) -> Option<Scored> {
    let (weak, strong) = row.extreme_tiers()?;
    let (weak, strong) = (row.outcomes.get(weak)?, row.outcomes.get(strong)?);
    Some(Scored {
        score,
        q_weak: weak.quality,
        q_strong: strong.quality,
        c_weak: weak.cost_usd,
        c_strong: strong.cost_usd,
    })
}

/// Encodes one row's request for a model of `buckets` buckets.
pub fn encode(row: &Row, max_scan_bytes: usize, buckets: u32) -> Result<Example, String> {
    let label = label(row).ok_or_else(|| "no outcomes".to_string())?;
    let inputs = model_inputs(
        ApiFormat::OpenAiChat,
        row.request.as_bytes(),
        max_scan_bytes,
        buckets,
    )
    .map_err(|cause| format!("request does not parse ({cause:?})"))?;
    let mut dense = inputs.dense.to_vec();
    dense.extend(inputs.semantic);
    Ok(Example {
        dense,
        sparse: inputs.sparse,
        label,
    })
}

/// Width of an encoded example's `dense`: the hand-made features, then the prompt's embedding.
pub const DENSE_LEN: usize = FEATURE_COUNT + EMBED_DIMS;

/// The prior's centre over `dense_len` weights: the given one for the features, 0 for the
/// embedding (no direction of it is favoured before the data speaks).
fn prior_centre(features: &[f64], dense_len: usize) -> Vec<f64> {
    let mut centre = features.to_vec();
    centre.resize(dense_len, 0.0);
    centre
}

/// The fold of each row: the rows of each stratum (e.g. source and label) are shuffled with `seed`
/// and dealt round-robin, continuing from stratum to stratum, so every fold gets a near-equal share
/// of every stratum.
pub fn assign_folds(strata: &[usize], folds: usize, seed: u64) -> Vec<usize> {
    let folds = folds.max(1);
    let mut rng = SplitMix::new(seed);
    let mut fold = vec![0; strata.len()];
    let mut keys: Vec<usize> = strata.to_vec();
    keys.sort_unstable();
    keys.dedup();
    let mut dealt = 0;
    for key in keys {
        let mut members: Vec<usize> = (0..strata.len()).filter(|&i| strata[i] == key).collect();
        rng.shuffle(&mut members);
        for row in members {
            fold[row] = dealt % folds;
            dealt += 1;
        }
    }
    fold
}

/// AUC, APGR, CPT(50%) and CPT(80%) of one score over some rows.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Metrics {
    pub auc: Option<f64>,
    pub apgr: Option<f64>,
    pub cpt50: Option<f64>,
    pub cpt80: Option<f64>,
}

impl Metrics {
    pub fn of(rows: &[Scored]) -> Metrics {
        Metrics {
            auc: metrics::auc(rows),
            apgr: metrics::apgr(rows),
            cpt50: metrics::cpt(rows, 0.5),
            cpt80: metrics::cpt(rows, 0.8),
        }
    }

    fn to_json(self) -> Value {
        json!({"auc": round(self.auc), "apgr": round(self.apgr), "cpt50": round(self.cpt50), "cpt80": round(self.cpt80)})
    }
}

fn round(value: Option<f64>) -> Option<f64> {
    value.map(|v| (v * 1e4).round() / 1e4)
}

/// Cross-validated numbers of one source (or "all", every row pooled).
#[derive(Clone, Debug, PartialEq)]
pub struct SourceReport {
    pub source: String,
    pub rows: usize,
    pub positives: usize,
    pub model: Metrics,
    pub length: Metrics,
    /// The model's APGR interval and its APGR minus length's; the chosen grid point's only.
    pub model_apgr_interval: Option<Interval>,
    pub model_minus_length: Option<Difference>,
}

impl SourceReport {
    /// One entry of the meta's `cross_validation` and `leave_one_source_out`.
    fn to_json(&self) -> Value {
        json!({
            "source": self.source, "rows": self.rows, "positives": self.positives,
            "model": self.model.to_json(), "prompt_length": self.length.to_json(),
            "model_apgr_interval": self.model_apgr_interval.map(|i| json!({"low": round(Some(i.low)), "high": round(Some(i.high))})),
            "model_minus_length_apgr": self.model_minus_length.map(|d| json!({
                "estimate": round(Some(d.estimate)), "low": round(Some(d.low)), "high": round(Some(d.high)),
            })),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GridPoint {
    pub buckets: u32,
    pub l2: f64,
    pub prior_l2: f64,
    /// One report per source, then "all".
    pub sources: Vec<SourceReport>,
    /// The selection criterion: the model's out-of-fold APGR per source, averaged weighting each
    /// source by its rows.
    pub mean_apgr: f64,
}

#[derive(Clone, Debug)]
pub struct TrainReport {
    pub rows: usize,
    /// Rows left out, as "file: id: why".
    pub skipped: Vec<String>,
    pub grid: Vec<GridPoint>,
    pub chosen: usize,
    pub calibration: Calibration,
    /// The thresholds' operating point on the out-of-fold probabilities.
    pub operating_point: OperatingPoint,
    /// The same thresholds on each source's rows alone.
    pub source_points: Vec<(String, OperatingPoint)>,
    pub final_iterations: u64,
    pub final_gradient_norm: f64,
    /// How the chosen point's intervals were drawn.
    pub bootstrap: Bootstrap,
    /// The chosen point's numbers per source when fitted on the other sources only; None when
    /// switched off or with fewer than two sources.
    pub leave_one_source_out: Option<Vec<SourceReport>>,
    /// [`LabelCounts::warning`] of the rows used.
    pub few_labels: Option<String>,
}

impl TrainReport {
    pub fn chosen(&self) -> Option<&GridPoint> {
        self.grid.get(self.chosen)
    }

    /// The grid and the chosen point's cross-validation table, for a terminal.
    pub fn table(&self) -> String {
        let mut out = String::new();
        if let Some(warning) = &self.few_labels {
            out += &format!("warning: {warning}\n");
        }
        if self.grid.len() > 1 {
            out += "grid (out-of-fold APGR per source, row-weighted mean; * = chosen):\n";
            for (index, point) in self.grid.iter().enumerate() {
                let mark = if index == self.chosen { "*" } else { " " };
                out += &format!(
                    "{mark} buckets {:>7}  l2 {:<8}  prior-l2 {:<6}  mean APGR {:.4}\n",
                    point.buckets, point.l2, point.prior_l2, point.mean_apgr
                );
            }
        }
        if let Some(point) = self.chosen() {
            out += &format!(
                "cross-validated, out-of-fold (buckets {}, l2 {}, prior-l2 {}):\n",
                point.buckets, point.l2, point.prior_l2
            );
            out += &source_table(&point.sources);
            out += &format!(
                "APGR 95% CI: {}; vs length: model APGR - length APGR, paired (the same resampled rows)\n",
                self.bootstrap
            );
        }
        if let Some(reports) = &self.leave_one_source_out {
            out += &loso::table(reports);
        }
        out += &format!(
            "platt: a {:.4}, b {:.4}; final fit: {} iterations, gradient norm {:.2e}\n",
            self.calibration.a, self.calibration.b, self.final_iterations, self.final_gradient_norm
        );
        out += "the thresholds on each source, out of fold (quality and cost relative to the top tier; shares cheapest first):\n";
        for (source, point) in &self.source_points {
            let shares: Vec<String> = point
                .tiers
                .iter()
                .map(|tier| format!("{:.1}%", 100.0 * tier.share))
                .collect();
            out += &format!(
                "  {source:<28} quality {:>6.1}%  cost {:>6.1}%  shares {}\n",
                100.0 * point.relative_quality(),
                100.0 * point.relative_cost(),
                shares.join(" / ")
            );
        }
        if !self.skipped.is_empty() {
            out += &format!(
                "skipped {} rows, e.g. {}\n",
                self.skipped.len(),
                self.skipped[0]
            );
        }
        out
    }
}

/// Per source: rows, positives, the model's and prompt length's AUC, APGR, CPT(50%) and CPT(80%), the
/// model's APGR interval and its lead over length; the k-fold and leave-one-source-out tables alike.
pub(crate) fn source_table(sources: &[SourceReport]) -> String {
    let mut out = String::new();
    out += &format!(
        "{:<28} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>13} {:>22}\n",
        "source",
        "rows",
        "pos",
        "AUC",
        "APGR",
        "CPT50",
        "CPT80",
        "AUC",
        "APGR",
        "CPT50",
        "CPT80",
        "APGR 95% CI",
        "vs length [95% CI]"
    );
    out += &format!("{:<42}   model{:<25}   length{:<24}   model\n", "", "", "");
    let cell = metric_cell;
    for source in sources {
        let (m, l) = (source.model, source.length);
        let interval = interval_cell(source.model_apgr_interval);
        let lead = difference_cell(source.model_minus_length);
        out += &format!(
            "{:<28} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>6} {:>6} {:>6} {:>6} | {:>13} {:>22}\n",
            source.source,
            source.rows,
            source.positives,
            cell(m.auc),
            cell(m.apgr),
            cell(m.cpt50),
            cell(m.cpt80),
            cell(l.auc),
            cell(l.apgr),
            cell(l.cpt50),
            cell(l.cpt80),
            interval,
            lead
        );
    }
    out
}

/// A metric in a table, "-" when undefined.
pub(crate) fn metric_cell(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.3}"))
}

/// An APGR interval in a table.
pub(crate) fn interval_cell(interval: Option<Interval>) -> String {
    interval.map_or("-".to_string(), |i| format!("[{:.3},{:.3}]", i.low, i.high))
}

/// A paired difference and its interval in a table.
pub(crate) fn difference_cell(difference: Option<Difference>) -> String {
    difference.map_or("-".to_string(), |d| {
        format!("{:+.3} [{:+.3},{:+.3}]", d.estimate, d.low, d.high)
    })
}

pub struct Trained {
    pub model: Model,
    pub report: TrainReport,
}

/// Runs `count` jobs on `threads` threads; results come back in job order.
pub(crate) fn run_jobs<T: Send>(
    count: usize,
    threads: usize,
    progress: &ProgressBar,
    job: impl Fn(usize) -> Result<T, TrainError> + Sync,
) -> Result<Vec<T>, TrainError> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T, TrainError>>>> =
        Mutex::new((0..count).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, count.max(1)) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= count {
                    break;
                }
                let result = job(index);
                progress.inc(1);
                if let Ok(mut results) = results.lock() {
                    results[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .map_err(|_| TrainError("a training thread failed".into()))?
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(TrainError("a fit did not run".into()))))
        .collect()
}

pub(crate) fn check_options(options: &TrainOptions) -> Result<(), TrainError> {
    if options.folds < 2 {
        return Err(TrainError(format!(
            "folds must be at least 2, got {}",
            options.folds
        )));
    }
    if options.buckets.is_empty() || options.l2.is_empty() || options.prior_l2.is_empty() {
        return Err(TrainError(
            "the grid has no bucket count, no l2 or no prior-l2".into(),
        ));
    }
    if let Some(bad) = options
        .buckets
        .iter()
        .find(|b| !b.is_power_of_two() || **b < 2)
    {
        return Err(TrainError(format!(
            "buckets must be a power of two >= 2, got {bad}"
        )));
    }
    if let Some(bad) = options.l2.iter().find(|l| !(l.is_finite() && **l >= 0.0)) {
        return Err(TrainError(format!(
            "l2 must be a finite number >= 0, got {bad}"
        )));
    }
    if let Some(bad) = options
        .prior_l2
        .iter()
        .find(|l| !(l.is_finite() && **l >= 0.0))
    {
        return Err(TrainError(format!(
            "prior-l2 must be a finite number >= 0, got {bad}"
        )));
    }
    if options.prior.len() != FEATURE_COUNT || options.prior.iter().any(|w| !w.is_finite()) {
        return Err(TrainError(format!(
            "the prior needs {FEATURE_COUNT} finite dense weights, got {}",
            options.prior.len()
        )));
    }
    if options.tiers.is_empty() {
        return Err(TrainError("no tiers to calibrate thresholds for".into()));
    }
    Ok(())
}

/// The rows kept, those with outcomes whose request parses, each with its source's index; and the
/// rows left out, as "file: id: why".
pub(crate) fn usable_rows<'a>(
    sources: &'a [Source],
    options: &TrainOptions,
) -> (Vec<(usize, &'a Row)>, Vec<String>) {
    let mut skipped = Vec::new();
    let mut rows: Vec<(usize, &Row)> = Vec::new();
    let probe = options.buckets.iter().copied().min().unwrap_or(2);
    for (source_index, source) in sources.iter().enumerate() {
        for row in &source.rows {
            match encode(row, options.max_scan_bytes, probe) {
                Ok(_) => rows.push((source_index, row)),
                Err(why) => skipped.push(format!("{}: {}: {why}", source.name, row.id)),
            }
        }
    }
    (rows, skipped)
}

/// `rows` encoded for a model of `buckets` buckets, their `dense` cut to the options' width.
pub(crate) fn encode_rows(
    rows: &[(usize, &Row)],
    options: &TrainOptions,
    buckets: u32,
) -> Result<Vec<Example>, TrainError> {
    rows.iter()
        .map(|(_, row)| {
            let mut example = encode(row, options.max_scan_bytes, buckets)?;
            example.dense.truncate(options.dense_len());
            Ok(example)
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(TrainError)
}

/// Cross-validates the grid, picks a point, calibrates and fits the final model.
pub fn train(
    sources: &[Source],
    options: &TrainOptions,
    progress: &ProgressBar,
) -> Result<Trained, TrainError> {
    check_options(options)?;
    let (rows, skipped) = usable_rows(sources, options);
    let folds = options.folds;
    if rows.len() < folds {
        return Err(TrainError(format!(
            "{} usable rows, fewer than {folds} folds",
            rows.len()
        )));
    }
    let labels: Vec<bool> = rows
        .iter()
        .map(|(_, row)| label(row).unwrap_or(false))
        .collect();
    let counts = LabelCounts::of(labels.iter().copied());
    counts.check_fit(folds).map_err(TrainError)?;
    let strata: Vec<usize> = rows
        .iter()
        .zip(&labels)
        .map(|((source, _), &label)| 2 * source + usize::from(label))
        .collect();
    let fold = assign_folds(&strata, folds, options.seed);

    let points: Vec<(u32, f64, f64)> = options
        .buckets
        .iter()
        .flat_map(|&b| options.l2.iter().map(move |&l| (b, l)))
        .flat_map(|(b, l)| options.prior_l2.iter().map(move |&p| (b, l, p)))
        .collect();
    progress.set_length((points.len() * folds + 1) as u64);
    progress.set_message("encoding");
    let encodings: Vec<(u32, Vec<Example>)> = options
        .buckets
        .iter()
        .map(|&buckets| Ok((buckets, encode_rows(&rows, options, buckets)?)))
        .collect::<Result<_, TrainError>>()?;
    let examples_for = |buckets: u32| -> Result<&Vec<Example>, TrainError> {
        encodings
            .iter()
            .find(|(b, _)| *b == buckets)
            .map(|(_, examples)| examples)
            .ok_or_else(|| TrainError(format!("no encoding for {buckets} buckets")))
    };
    let fit_options = |buckets, l2, prior_l2| options.fit_options(buckets, l2, prior_l2);

    progress.set_message("cross-validating");
    let fold_logits = run_jobs(points.len() * folds, options.threads, progress, |job| {
        let (buckets, l2, prior_l2) = points[job / folds];
        let held_out = job % folds;
        let examples = examples_for(buckets)?;
        let train: Vec<&Example> = examples
            .iter()
            .zip(&fold)
            .filter(|(_, f)| **f != held_out)
            .map(|(e, _)| e)
            .collect();
        let fit = logistic::fit(&train, &fit_options(buckets, l2, prior_l2))
            .map_err(|e| TrainError(format!("fold {held_out}: {e}")))?;
        Ok(examples
            .iter()
            .zip(&fold)
            .enumerate()
            .filter(|(_, (_, f))| **f == held_out)
            .map(|(index, (e, _))| (index, fit.weights.logit(e)))
            .collect::<Vec<_>>())
    })?;
    let mut out_of_fold = vec![vec![0.0; rows.len()]; points.len()];
    for (job, logits) in fold_logits.into_iter().enumerate() {
        for (index, logit) in logits {
            out_of_fold[job / folds][index] = logit;
        }
    }

    let mut grid: Vec<GridPoint> = points
        .iter()
        .zip(&out_of_fold)
        .map(|(&point, logits)| grid_point(sources, &rows, logits, point))
        .collect();
    let chosen = choose(&grid);
    let (buckets, l2, prior_l2) = points[chosen];

    let logits = &out_of_fold[chosen];
    if let Some(point) = grid.get_mut(chosen) {
        add_intervals(point, sources.len(), &rows, logits, options.bootstrap);
    }
    let leave_one_source_out = if options.leave_one_source_out {
        let fit = fit_options(buckets, l2, prior_l2);
        loso::reports(
            sources,
            &rows,
            examples_for(buckets)?,
            &fit,
            options,
            progress,
        )?
    } else {
        None
    };
    let (a, b) =
        logistic::platt(logits, &labels).map_err(|e| TrainError(format!("calibration: {e}")))?;
    let calibration = Calibration { a, b };
    let probabilities: Vec<f64> = logits
        .iter()
        .map(|z| logistic::sigmoid(a * z + b))
        .collect();
    let kept_rows: Vec<Row> = rows.iter().map(|(_, row)| (*row).clone()).collect();
    let routed = calibrate::routed_rows(&kept_rows, &probabilities, &options.tiers)
        .map_err(|e| TrainError(format!("thresholds: {e}")))?;
    let calibration_indices: Vec<usize> = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            options.threshold_sources.is_empty() || options.threshold_sources.contains(&s.name)
        })
        .map(|(index, _)| index)
        .collect();
    if let Some(unknown) = options
        .threshold_sources
        .iter()
        .find(|name| !sources.iter().any(|s| &s.name == *name))
    {
        return Err(TrainError(format!(
            "threshold data `{unknown}` is not one of the training files"
        )));
    }
    let calibration_rows: Vec<calibrate::Routed> = routed
        .iter()
        .zip(&rows)
        .filter(|(_, (s, _))| calibration_indices.contains(s))
        .map(|(r, _)| r.clone())
        .collect();
    let operating_point = calibrate::calibrate(
        &calibration_rows,
        &options.tiers,
        options.target,
        calibrate::THRESHOLD_QUANTILES_DEFAULT,
    )
    .map_err(|e| TrainError(format!("thresholds: {e}")))?;
    let source_points = sources
        .iter()
        .enumerate()
        .map(|(index, source)| {
            let subset: Vec<calibrate::Routed> = routed
                .iter()
                .zip(&rows)
                .filter(|(_, (s, _))| *s == index)
                .map(|(r, _)| r.clone())
                .collect();
            let point = calibrate::evaluate(&subset, &options.tiers, &operating_point.thresholds);
            (display_name(&source.name), point)
        })
        .collect();

    progress.set_message("final fit");
    let all: Vec<&Example> = examples_for(buckets)?.iter().collect();
    let fit = logistic::fit(&all, &fit_options(buckets, l2, prior_l2))
        .map_err(|e| TrainError(format!("final fit: {e}")))?;
    progress.inc(1);

    let report = TrainReport {
        few_labels: counts.warning(),
        rows: rows.len(),
        skipped,
        grid,
        chosen,
        calibration: Calibration { a, b },
        operating_point,
        source_points,
        final_iterations: fit.iterations,
        final_gradient_norm: fit.gradient_norm,
        bootstrap: options.bootstrap,
        leave_one_source_out,
    };
    let mut dense = fit.weights.dense;
    let semantic = dense.split_off(FEATURE_COUNT.min(dense.len()));
    let model = Model {
        buckets,
        bias: fit.weights.bias,
        dense,
        semantic: options.semantic.then_some(semantic),
        sparse: fit.weights.sparse.iter().map(|&w| w as f32).collect(),
        calibration,
        thresholds: report.operating_point.thresholds.clone(),
        tiers: options.tiers.clone(),
        meta: meta(sources, options, &report),
    };
    model
        .validate()
        .map_err(|e| TrainError(format!("the trained model is invalid: {e}")))?;
    Ok(Trained { model, report })
}

fn grid_point(
    sources: &[Source],
    rows: &[(usize, &Row)],
    logits: &[f64],
    (buckets, l2, prior_l2): (u32, f64, f64),
) -> GridPoint {
    let report = |name: String, source: Option<usize>| source_report(name, rows, logits, source);
    let mut reports: Vec<SourceReport> = sources
        .iter()
        .enumerate()
        .map(|(index, source)| report(display_name(&source.name), Some(index)))
        .collect();
    let weighted: Vec<(f64, f64)> = reports
        .iter()
        .filter_map(|r| r.model.apgr.map(|apgr| (apgr, r.rows as f64)))
        .collect();
    let weight: f64 = weighted.iter().map(|(_, w)| w).sum();
    let mean_apgr = if weight > 0.0 {
        weighted.iter().map(|(apgr, w)| apgr * w).sum::<f64>() / weight
    } else {
        0.0
    };
    if sources.len() > 1 {
        reports.push(report("all".into(), None));
    }
    GridPoint {
        buckets,
        l2,
        prior_l2,
        sources: reports,
        mean_apgr,
    }
}

/// The numbers of the rows of `source` (every row when None) scored by `logits`, beside prompt
/// length's; no intervals.
pub(crate) fn source_report(
    name: String,
    rows: &[(usize, &Row)],
    logits: &[f64],
    source: Option<usize>,
) -> SourceReport {
    let (model, length) = model_and_length(rows, logits, source);
    SourceReport {
        source: name,
        rows: rows_of(rows, source).count(),
        positives: model.iter().filter(|s| s.label()).count(),
        model: Metrics::of(&model),
        length: Metrics::of(&length),
        model_apgr_interval: None,
        model_minus_length: None,
    }
}

/// The indices of the rows of source `source`, or of every row when None.
fn rows_of<'a>(
    rows: &'a [(usize, &Row)],
    source: Option<usize>,
) -> impl Iterator<Item = usize> + 'a {
    (0..rows.len()).filter(move |&i| source.is_none_or(|s| rows[i].0 == s))
}

/// The rows of `source` (every row when None) scored by `logits` and by prompt length.
pub(crate) fn model_and_length(
    rows: &[(usize, &Row)],
    logits: &[f64],
    source: Option<usize>,
) -> (Vec<Scored>, Vec<Scored>) {
    rows_of(rows, source)
        .filter_map(|i| {
            let model = scored(rows[i].1, logits[i])?;
            let length = Scored {
                score: baselines::prompt_length(rows[i].1),
                ..model
            };
            Some((model, length))
        })
        .unzip()
}

/// Fills the chosen point's intervals: one per source, then one for every row when there are
/// several sources (the order of [`grid_point`]'s reports).
fn add_intervals(
    point: &mut GridPoint,
    sources: usize,
    rows: &[(usize, &Row)],
    logits: &[f64],
    options: Bootstrap,
) {
    let picks = (0..sources).map(Some).chain((sources > 1).then_some(None));
    for (report, source) in point.sources.iter_mut().zip(picks) {
        add_interval(report, rows, logits, source, options);
    }
}

/// Fills `report`'s APGR interval and its paired lead over prompt length, on the rows of `source`
/// (every row when None) scored by `logits`.
pub(crate) fn add_interval(
    report: &mut SourceReport,
    rows: &[(usize, &Row)],
    logits: &[f64],
    source: Option<usize>,
    options: Bootstrap,
) {
    let (model, length) = model_and_length(rows, logits, source);
    if let Some(resampled) = bootstrap::resample(&[&model, &length], options) {
        report.model_apgr_interval = resampled.interval(0);
        report.model_minus_length = resampled.difference(0, 1);
    }
}

/// The file name of a path, for tables.
pub(crate) fn display_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map_or(path.to_string(), |name| name.to_string_lossy().into_owned())
}

/// The best mean APGR, preferring fewer buckets, then a stronger prior, then a larger L2, among
/// points within the tolerance.
fn choose(grid: &[GridPoint]) -> usize {
    let best = grid
        .iter()
        .map(|p| p.mean_apgr)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut candidates: Vec<usize> = (0..grid.len())
        .filter(|&i| grid[i].mean_apgr >= best - SELECTION_TOLERANCE)
        .collect();
    candidates.sort_by(|&i, &j| {
        grid[i]
            .buckets
            .cmp(&grid[j].buckets)
            .then(grid[j].prior_l2.total_cmp(&grid[i].prior_l2))
            .then(grid[j].l2.total_cmp(&grid[i].l2))
    });
    candidates.first().copied().unwrap_or(0)
}

fn meta(sources: &[Source], options: &TrainOptions, report: &TrainReport) -> Value {
    let point = report.chosen();
    let mut meta = json!({
        "trained_by": "triage train",
        "command": options.command,
        "data": sources.iter().map(|s| json!({"file": s.name, "rows": s.rows.len()})).collect::<Vec<_>>(),
        "rows_used": report.rows,
        "rows_skipped": report.skipped.len(),
        "label": "1 when the cheapest tier's quality < the dearest tier's quality (q_dear - q_cheap > 1e-9)",
        "feature_set": FEATURE_SET,
        "max_scan_bytes": options.max_scan_bytes,
        "seed": options.seed,
        "folds": options.folds,
        "fit": {
            "loss": "class-weighted mean log-loss (each class half the weight) + l2/2·|w|² (bias unpenalised) + prior_l2/2·|w_dense - prior|²",
            "optimiser": "argmin 0.11 L-BFGS (m = 10) with More-Thuente line search",
            "final_iterations": report.final_iterations,
        },
        "hyper_parameters": {
            "buckets": point.map(|p| p.buckets),
            "l2": point.map(|p| p.l2),
            "prior_l2": point.map(|p| p.prior_l2),
            "selection": format!("best row-weighted mean of per-source out-of-fold APGR over the grid; within {SELECTION_TOLERANCE} the fewest buckets, then the largest prior_l2, then the largest l2"),
        },
        "prior": {
            "what": "Gaussian prior on the dense weights: prior_l2/2·|w_dense - prior|² (bias and n-gram weights: plain l2 toward 0)",
            "weights": FEATURE_NAMES.iter().zip(&options.prior).map(|(name, w)| (name.to_string(), json!(w))).collect::<serde_json::Map<_, _>>(),
        },
        "grid": report.grid.iter().map(|p| json!({
            "buckets": p.buckets, "l2": p.l2, "prior_l2": p.prior_l2, "mean_apgr": round(Some(p.mean_apgr)),
        })).collect::<Vec<_>>(),
        "cross_validation": point.map(|p| p.sources.iter().map(SourceReport::to_json).collect::<Vec<_>>()),
        "intervals": {
            "method": format!("{}; model_minus_length_apgr is paired (the same resampled rows for both scores)", report.bootstrap),
            "level": bootstrap::LEVEL,
            "resamples": report.bootstrap.resamples,
            "seed": report.bootstrap.seed,
        },
        "calibration": "Platt scaling fitted on the out-of-fold logits",
        "thresholds": {
            "target": options.target.to_string(),
            "fitted_on": "out-of-fold calibrated probabilities of the training rows",
            "data": if options.threshold_sources.is_empty() {
                sources.iter().map(|s| s.name.clone()).collect()
            } else {
                options.threshold_sources.clone()
            },
            "operating_point": report.operating_point.to_json(),
            "per_source": report.source_points.iter().map(|(source, point)| json!({
                "source": source,
                "quality_vs_top": round(Some(point.relative_quality())),
                "cost_vs_top": round(Some(point.relative_cost())),
                "shares": point.tiers.iter().map(|t| round(Some(t.share))).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        },
    });
    if let Some(reports) = &report.leave_one_source_out {
        meta["leave_one_source_out"] = reports.iter().map(SourceReport::to_json).collect();
    }
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_partition_the_rows_evenly_within_each_stratum() {
        let strata: Vec<usize> = (0..103)
            .map(|i| usize::from(i % 10 == 0) + 2 * (i % 3))
            .collect();
        let fold = assign_folds(&strata, 5, 42);
        assert_eq!(fold.len(), strata.len());
        assert!(fold.iter().all(|&f| f < 5));
        for key in 0..6 {
            let mut sizes = [0usize; 5];
            for (i, &s) in strata.iter().enumerate() {
                if s == key {
                    sizes[fold[i]] += 1;
                }
            }
            let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(max - min <= 1, "stratum {key}: {sizes:?}");
        }
        // Seeded: the same seed deals the same folds, another seed others.
        assert_eq!(assign_folds(&strata, 5, 42), fold);
        assert_ne!(assign_folds(&strata, 5, 43), fold);
    }

    /// Rows whose label follows a word in the request ("hard") and partly a feature ("prove").
    fn synthetic_sources() -> Vec<Source> {
        let outcome = |quality: f64, cost_usd: f64| crate::dataset::Outcome {
            model: "m".into(),
            quality,
            cost_usd,
            cost_estimated: false,
        };
        let rows = (0..120)
            .map(|i| {
                let hard = i % 3 == 0;
                let text = match (hard, i % 2 == 0) {
                    (true, true) => format!("prove this hard claim {i} step by step"),
                    (true, false) => format!("a hard question number {i}"),
                    (false, true) => format!("translate item {i} to French"),
                    (false, false) => format!("an easy question number {i}"),
                };
                let request =
                    json!({"model": "auto", "messages": [{"role": "user", "content": text}]});
                Row {
                    id: format!("r/{i}"),
                    source: "synthetic".into(),
                    request: request.to_string(),
                    outcomes: [
                        (
                            "small".to_string(),
                            outcome(f64::from(u8::from(!hard)), 0.001),
                        ),
                        ("frontier".to_string(), outcome(1.0, 0.01)),
                    ]
                    .into_iter()
                    .collect(),
                    all_models: Default::default(),
                }
            })
            .collect();
        vec![Source {
            name: "synthetic.jsonl".into(),
            rows,
        }]
    }

    fn small_options(prior_l2: f64, prior: Vec<f64>) -> TrainOptions {
        TrainOptions {
            folds: 3,
            buckets: vec![1 << 8],
            l2: vec![1e-2],
            prior_l2: vec![prior_l2],
            prior,
            threads: 1,
            target: Target::MaxTopShare(0.5),
            tiers: vec!["small".into(), "frontier".into()],
            ..TrainOptions::default()
        }
    }

    #[test]
    fn prior_l2_zero_ignores_the_prior_and_a_strong_one_keeps_its_weights() {
        let sources = synthetic_sources();
        let progress = ProgressBar::hidden();
        let hand_set = Model::hand_set(1).dense;
        let zero = train(&sources, &small_options(0.0, hand_set.clone()), &progress).unwrap();
        let other = train(
            &sources,
            &small_options(0.0, vec![5.0; FEATURE_COUNT]),
            &progress,
        )
        .unwrap();
        // Strength 0: the centre plays no part, bit for bit (the plain-L2 fit of before).
        assert_eq!(zero.model.dense, other.model.dense);
        assert_eq!(zero.model.sparse, other.model.sparse);
        assert_eq!(zero.model.calibration, other.model.calibration);
        assert_eq!(zero.report.grid, other.report.grid);
        // Plain L2 leaves features the rows never exercise at 0 ...
        let index = |name: &str| FEATURE_NAMES.iter().position(|n| *n == name).unwrap();
        assert_eq!(zero.model.dense[index("tools")], 0.0);
        // ... a strong prior holds every dense weight at the hand-set value, exercised or not.
        let strong = train(&sources, &small_options(1e4, hand_set.clone()), &progress).unwrap();
        for (name, (w, prior)) in FEATURE_NAMES
            .iter()
            .zip(strong.model.dense.iter().zip(&hand_set))
        {
            assert!((w - prior).abs() < 1e-3, "{name}: {w} vs {prior}");
        }
        assert_eq!(strong.model.meta["hyper_parameters"]["prior_l2"], 1e4);
        assert_eq!(strong.model.meta["prior"]["weights"]["simple_task"], -2.4);
        // The n-grams still learn the word the label follows.
        assert!(
            strong.report.chosen().unwrap().sources[0]
                .model
                .auc
                .unwrap()
                > 0.9
        );
        let refused = |options: &TrainOptions| match train(&sources, options, &progress) {
            Ok(_) => String::new(),
            Err(error) => error.0,
        };
        let mut bad = small_options(-1.0, hand_set);
        assert!(refused(&bad).contains("prior-l2"), "{}", refused(&bad));
        bad.prior_l2 = vec![0.1];
        bad.prior = vec![0.0; 3];
        assert!(refused(&bad).contains("prior"), "{}", refused(&bad));
    }

    #[test]
    fn only_the_chosen_point_gets_intervals_and_the_meta_records_them() {
        let sources = synthetic_sources();
        let options = TrainOptions {
            l2: vec![1e-2, 1e-1],
            ..small_options(0.1, Model::hand_set(1).dense)
        };
        let trained = train(&sources, &options, &ProgressBar::hidden()).unwrap();
        let report = &trained.report;
        for (index, point) in report.grid.iter().enumerate() {
            let source = &point.sources[0];
            if index != report.chosen {
                assert_eq!(source.model_apgr_interval, None);
                assert_eq!(source.model_minus_length, None);
                continue;
            }
            let apgr = source.model.apgr.unwrap();
            let interval = source.model_apgr_interval.unwrap();
            assert!(interval.contains(apgr), "{apgr} {interval:?}");
            let lead = source.model_minus_length.unwrap();
            assert!((lead.estimate - (apgr - source.length.apgr.unwrap())).abs() < 1e-12);
        }
        let meta = &trained.model.meta;
        let cv = &meta["cross_validation"][0];
        assert!(
            cv["model_apgr_interval"]["low"].as_f64().unwrap()
                <= cv["model"]["apgr"].as_f64().unwrap()
        );
        assert!(cv["model_minus_length_apgr"]["high"].is_f64(), "{cv}");
        assert_eq!(meta["intervals"]["resamples"], 1000);
        assert_eq!(meta["intervals"]["seed"], 1);
        let table = report.table();
        assert!(
            table.contains("APGR 95% CI") && table.contains("1000 resamples, seed 1"),
            "{table}"
        );
    }

    #[test]
    fn the_choice_prefers_small_and_regularised_models_among_near_ties() {
        let point = |buckets, l2, prior_l2, mean_apgr| GridPoint {
            buckets,
            l2,
            prior_l2,
            sources: Vec::new(),
            mean_apgr,
        };
        let mut grid = vec![
            point(1 << 14, 1e-4, 0.0, 0.600),
            point(1 << 16, 1e-4, 0.0, 0.640),
            point(1 << 16, 1e-3, 0.0, 0.637),
            point(1 << 18, 1e-4, 0.0, 0.642),
        ];
        assert_eq!(choose(&grid), 2);
        // Among near ties a stronger prior beats more L2; outside the tolerance it does not count.
        grid.push(point(1 << 16, 1e-4, 0.1, 0.638));
        grid.push(point(1 << 16, 1e-4, 1.0, 0.630));
        assert_eq!(choose(&grid), 4);
    }
}
