//! The learning curve of adaptation: how many labelled requests of a task family the router never
//! trained on it takes to rank that family as well as a model trained on it (issue 11: with 1,000,
//! within 0.02 APGR of the in-domain model).
//!
//! One source plays the operator's unseen traffic. Its usable rows are shuffled with the seed and
//! split once: a test part (a fixed share, the same for every size) and an adaptation pool, whose
//! first N rows are "the labelled requests" the feedback loop would give. Every model is scored on
//! the test part only, all with one grid point's hyperparameters:
//!
//! - base: the other sources' rows only (the leave-one-source-out fit; N = 0);
//! - per N, four ways to use the labelled rows: from scratch (pulled toward 0 and the hand-set
//!   prior, as `triage train` would fit them) on the other sources plus the N rows, or on the N rows
//!   alone; and warm-started from the base model (every weight pulled toward the base model's,
//!   [`logistic::FitOptions::anchor`]) on the N rows alone, or on the other sources plus them;
//! - in-domain: from scratch on the other sources and the whole pool, the reference the target
//!   is measured against;
//! - prompt length, the baseline every router table carries.
//!
//! The APGRs get 95% bootstrap intervals from one joint resampling of the test rows, so each model's
//! gap to the in-domain model is paired (the same resampled rows for both). Deterministic for a seed:
//! fits are single-threaded and collected in job order ([`train::run_jobs`]).

use indicatif::ProgressBar;
use serde::Serialize;

use crate::bootstrap::{self, Bootstrap, Difference, Interval};
use crate::dataset::Row;
use crate::logistic::{self, DensePrior, Example, FitOptions, Weights};
use crate::metrics::{self, Scored};
use crate::rng::SplitMix;
use crate::train::{self, Source, TrainError, TrainOptions};

pub const DEFAULT_SIZES: [usize; 4] = [100, 300, 1000, 3000];
/// Half the source is test part: MMLU's 6,943 rows leave a pool of 3,471, enough for the largest
/// default size, and the test part is as large as the pool allows.
pub const DEFAULT_TEST_SHARE: f64 = 0.5;
/// Issue 11's target: this many labelled requests bring the router within [`TARGET_GAP`] APGR of
/// the in-domain model.
pub const TARGET_LABELLED: usize = 1000;
pub const TARGET_GAP: f64 = 0.02;

/// What to measure: which source is the unseen family and at which sizes.
#[derive(Clone, Debug, PartialEq)]
pub struct CurveOptions {
    /// The left-out source's `name`, as given (a `--data` or `--from-log` file).
    pub source: String,
    /// Labelled-row counts, each at most the pool's size.
    pub sizes: Vec<usize>,
    /// The share of the source's rows kept as the test part.
    pub test_share: f64,
    /// The warm start's pull toward the base model's weights (the dense ones also get the prior's
    /// strength); None is the grid point's own L2, so only the centre moves.
    pub warm_l2: Option<f64>,
}

impl CurveOptions {
    pub fn new(source: &str) -> CurveOptions {
        CurveOptions {
            source: source.to_string(),
            sizes: DEFAULT_SIZES.to_vec(),
            test_share: DEFAULT_TEST_SHARE,
            warm_l2: None,
        }
    }
}

/// A way to learn from the N labelled rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    /// The other sources' rows and the N rows, from scratch: the labelled rows as one more
    /// `--from-log` source beside the `--data` files.
    ScratchPooled,
    /// The N rows alone, from scratch: `--from-log` without `--data`.
    ScratchAlone,
    /// The N rows alone, pulled toward the base model.
    WarmAlone,
    /// The other sources' rows and the N rows, pulled toward the base model.
    WarmPooled,
}

impl Arm {
    pub const ALL: [Arm; 4] = [
        Arm::ScratchPooled,
        Arm::ScratchAlone,
        Arm::WarmAlone,
        Arm::WarmPooled,
    ];

    fn warm(self) -> bool {
        matches!(self, Arm::WarmAlone | Arm::WarmPooled)
    }

    fn with_other_sources(self) -> bool {
        matches!(self, Arm::ScratchPooled | Arm::WarmPooled)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Arm::ScratchPooled => "scratch, others + N",
            Arm::ScratchAlone => "scratch, N only",
            Arm::WarmAlone => "warm, N only",
            Arm::WarmPooled => "warm, others + N",
        }
    }
}

/// One model's numbers on the test part.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurvePoint {
    pub model: String,
    /// None for the base, the in-domain model and prompt length.
    pub arm: Option<Arm>,
    /// Rows of the left-out source it learnt from (None for prompt length).
    pub labelled: Option<usize>,
    /// All the rows it learnt from.
    pub training_rows: Option<usize>,
    pub auc: Option<f64>,
    pub apgr: Option<f64>,
    pub apgr_interval: Option<Interval>,
    /// Its APGR minus the in-domain model's, paired.
    pub minus_in_domain: Option<Difference>,
}

/// Whether the best way to use [`TARGET_LABELLED`] rows comes within [`TARGET_GAP`] of in-domain.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetCheck {
    pub labelled: usize,
    pub allowed_gap: f64,
    pub best: Arm,
    /// In-domain APGR minus the best arm's.
    pub gap: f64,
    pub met: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LearningCurve {
    pub source: String,
    /// The left-out source's usable rows, its pool and its test part.
    pub rows: usize,
    pub pool: usize,
    pub test: usize,
    pub test_positives: usize,
    /// Usable rows of the other sources.
    pub other_rows: usize,
    pub seed: u64,
    pub buckets: u32,
    pub l2: f64,
    pub prior_l2: f64,
    pub warm_l2: f64,
    pub bootstrap: Bootstrap,
    pub prompt_length: CurvePoint,
    pub base: CurvePoint,
    /// Per size, one point per [`Arm`], sizes ascending.
    pub points: Vec<CurvePoint>,
    pub in_domain: CurvePoint,
    /// None when [`TARGET_LABELLED`] is not among the sizes.
    pub target: Option<TargetCheck>,
}

/// The left-out source's rows (indices into the usable rows) and everyone else's.
struct Split {
    others: Vec<usize>,
    /// In the seeded order: the first N are the N labelled rows.
    pool: Vec<usize>,
    test: Vec<usize>,
}

impl Split {
    fn new(
        rows: &[(usize, &Row)],
        left_out: usize,
        test_share: f64,
        seed: u64,
    ) -> Result<Split, TrainError> {
        let (mut own, others): (Vec<usize>, Vec<usize>) =
            (0..rows.len()).partition(|&index| rows[index].0 == left_out);
        if !(test_share > 0.0 && test_share < 1.0) {
            return Err(TrainError(format!(
                "the test share must be between 0 and 1, got {test_share}"
            )));
        }
        let test_rows = (own.len() as f64 * test_share).round() as usize;
        if test_rows == 0 || test_rows == own.len() {
            return Err(TrainError(format!(
                "{} usable rows cannot be split into a pool and a test part of share {test_share}",
                own.len()
            )));
        }
        if others.is_empty() {
            return Err(TrainError(
                "the learning curve needs rows of another source to fit the base model on".into(),
            ));
        }
        SplitMix::new(seed).shuffle(&mut own);
        let test = own.split_off(own.len() - test_rows);
        Ok(Split {
            others,
            pool: own,
            test,
        })
    }
}

/// The rows one model learns from, and whether it is pulled toward the base model.
struct Plan {
    rows: Vec<usize>,
    warm: bool,
}

impl Plan {
    /// The base model: the other sources' rows only.
    fn base(split: &Split) -> Plan {
        Plan {
            rows: split.others.clone(),
            warm: false,
        }
    }

    /// `arm` given the first `labelled` rows of the pool.
    fn of(split: &Split, arm: Arm, labelled: usize) -> Plan {
        let own = split.pool.iter().take(labelled);
        let rows = if arm.with_other_sources() {
            split.others.iter().chain(own).copied().collect()
        } else {
            own.copied().collect()
        };
        Plan {
            rows,
            warm: arm.warm(),
        }
    }
}

/// Where the in-domain model's score is among the resampled ones: after prompt length and the base.
const IN_DOMAIN: usize = 2;

/// The one grid point the curve is fitted at.
fn single_point(options: &TrainOptions) -> Result<(u32, f64, f64), TrainError> {
    match (
        options.buckets.as_slice(),
        options.l2.as_slice(),
        options.prior_l2.as_slice(),
    ) {
        ([buckets], [l2], [prior_l2]) => Ok((*buckets, *l2, *prior_l2)),
        _ => Err(TrainError(
            "the learning curve is fitted at one point: give one --buckets, --l2 and --prior-l2 \
             (e.g. the point `triage train --grid` chose)"
                .into(),
        )),
    }
}

/// The sizes ascending, each once; every one must fit in the pool.
fn check_sizes(sizes: &[usize], pool: usize, source: &str) -> Result<Vec<usize>, TrainError> {
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    sizes.dedup();
    match (sizes.first(), sizes.last()) {
        (None, _) | (Some(0), _) => Err(TrainError(
            "the learning curve needs sizes of at least 1 labelled row".into(),
        )),
        (_, Some(&largest)) if largest > pool => Err(TrainError(format!(
            "size {largest} is more than the {pool} rows of {source}'s adaptation pool; \
             give smaller --sizes or a smaller --test-share"
        ))),
        _ => Ok(sizes),
    }
}

/// The warm start's fit: every weight pulled toward the base model's with `warm_l2`, the dense ones
/// also with the prior's strength (its centre moved from the hand-set weights to the base model's).
fn warm_options(fit: &FitOptions, base: &Weights, warm_l2: f64) -> FitOptions {
    FitOptions {
        l2: warm_l2,
        anchor: Some(base.clone()),
        prior: fit.prior.as_ref().map(|prior| DensePrior {
            centre: base.dense.clone(),
            strength: prior.strength,
        }),
        ..fit.clone()
    }
}

/// Fits every plan, the scratch ones first, the base (the first plan) among them: the warm ones
/// start from it.
fn fit_all(
    plans: &[Plan],
    examples: &[Example],
    (fit, warm_l2): (&FitOptions, f64),
    workers: (usize, &ProgressBar),
) -> Result<Vec<Weights>, TrainError> {
    let mut weights: Vec<Option<Weights>> = vec![None; plans.len()];
    fit_plans(plans, false, examples, fit, workers, &mut weights)?;
    let base = weights
        .first()
        .cloned()
        .flatten()
        .ok_or_else(|| TrainError("the base model was not fitted".into()))?;
    let warm_fit = warm_options(fit, &base, warm_l2);
    fit_plans(plans, true, examples, &warm_fit, workers, &mut weights)?;
    weights
        .into_iter()
        .collect::<Option<_>>()
        .ok_or_else(|| TrainError("a model of the learning curve was not fitted".into()))
}

/// Fits the plans that are `warm` (or not) with `fit`, each into its slot of `weights`.
fn fit_plans(
    plans: &[Plan],
    warm: bool,
    examples: &[Example],
    fit: &FitOptions,
    (threads, progress): (usize, &ProgressBar),
    weights: &mut [Option<Weights>],
) -> Result<(), TrainError> {
    let chosen: Vec<usize> = (0..plans.len())
        .filter(|&i| plans[i].warm == warm)
        .collect();
    let fitted = train::run_jobs(chosen.len(), threads, progress, |job| {
        let plan = chosen.get(job).and_then(|&index| plans.get(index));
        let rows = plan.map_or(&[][..], |plan| &plan.rows);
        let training: Vec<&Example> = rows.iter().filter_map(|&i| examples.get(i)).collect();
        logistic::fit(&training, fit)
            .map(|fitted| fitted.weights)
            .map_err(|e| TrainError(format!("learning curve, fit of {} rows: {e}", rows.len())))
    })?;
    for (index, fitted) in chosen.into_iter().zip(fitted) {
        if let Some(slot) = weights.get_mut(index) {
            *slot = Some(fitted);
        }
    }
    Ok(())
}

/// Measures the curve of `curve.source` among `sources` at the options' one grid point.
pub fn learning_curve(
    sources: &[Source],
    options: &TrainOptions,
    curve: &CurveOptions,
    progress: &ProgressBar,
) -> Result<LearningCurve, TrainError> {
    train::check_options(options)?;
    let (buckets, l2, prior_l2) = single_point(options)?;
    let warm_l2 = curve.warm_l2.unwrap_or(l2);
    if !(warm_l2.is_finite() && warm_l2 >= 0.0) {
        return Err(TrainError(format!(
            "the warm start's l2 must be a finite number >= 0, got {warm_l2}"
        )));
    }
    let left_out = sources
        .iter()
        .position(|source| source.name == curve.source)
        .ok_or_else(|| {
            let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
            TrainError(format!(
                "the learning curve's source `{}` is not one of the training files ({})",
                curve.source,
                names.join(", ")
            ))
        })?;
    let (rows, _) = train::usable_rows(sources, options);
    let split = Split::new(&rows, left_out, curve.test_share, options.seed)?;
    let name = train::display_name(&curve.source);
    let sizes = check_sizes(&curve.sizes, split.pool.len(), &name)?;

    progress.set_message("encoding");
    let examples = train::encode_rows(&rows, options, buckets)?;
    let fit = options.fit_options(buckets, l2, prior_l2);
    let arms: Vec<(usize, Arm)> = sizes
        .iter()
        .flat_map(|&size| Arm::ALL.map(|arm| (size, arm)))
        .collect();
    // In the order of the scores below: the base (plain leave-one-source-out), in-domain, `arms`.
    let in_domain = Plan::of(&split, Arm::ScratchPooled, split.pool.len());
    let plans: Vec<Plan> = [Plan::base(&split), in_domain]
        .into_iter()
        .chain(arms.iter().map(|&(size, arm)| Plan::of(&split, arm, size)))
        .collect();
    progress.set_length(plans.len() as u64);
    progress.set_message("learning curve");
    let workers = (options.threads, progress);
    let models = fit_all(&plans, &examples, (&fit, warm_l2), workers)?;
    let test_rows: Vec<(usize, &Row)> = split.test.iter().map(|&i| rows[i]).collect();
    let scores: Vec<Vec<Scored>> = models
        .iter()
        .map(|weights| {
            let logits: Vec<f64> = split
                .test
                .iter()
                .map(|&i| examples.get(i).map_or(0.0, |e| weights.logit(e)))
                .collect();
            train::model_and_length(&test_rows, &logits, None).0
        })
        .collect();
    let length = train::model_and_length(&test_rows, &vec![0.0; test_rows.len()], None).1;

    // One resampling of the test rows for every score: length, then the models.
    let all: Vec<&[Scored]> = std::iter::once(length.as_slice())
        .chain(scores.iter().map(Vec::as_slice))
        .collect();
    let resampled = bootstrap::resample(&all, options.bootstrap);
    let point = |index: usize, model: String, arm: Option<Arm>, labelled: Option<usize>| {
        let rows = all.get(index).copied().unwrap_or(&[]);
        let training_rows = labelled.map(|labelled| {
            let with_others = arm.is_none_or(Arm::with_other_sources);
            labelled + if with_others { split.others.len() } else { 0 }
        });
        CurvePoint {
            model,
            arm,
            labelled,
            training_rows,
            auc: metrics::auc(rows),
            apgr: metrics::apgr(rows),
            apgr_interval: resampled.as_ref().and_then(|r| r.interval(index)),
            minus_in_domain: resampled
                .as_ref()
                .and_then(|r| r.difference(index, IN_DOMAIN)),
        }
    };
    let points: Vec<CurvePoint> = arms
        .iter()
        .enumerate()
        .map(|(index, &(size, arm))| {
            point(
                IN_DOMAIN + 1 + index,
                arm.describe().into(),
                Some(arm),
                Some(size),
            )
        })
        .collect();
    let in_domain = point(
        IN_DOMAIN,
        "in-domain (others + whole pool)".into(),
        None,
        Some(split.pool.len()),
    );
    let target = target_check(&points, &in_domain);
    Ok(LearningCurve {
        source: name,
        rows: split.pool.len() + split.test.len(),
        pool: split.pool.len(),
        test: split.test.len(),
        test_positives: length.iter().filter(|s| s.label()).count(),
        other_rows: split.others.len(),
        seed: options.seed,
        buckets,
        l2,
        prior_l2,
        warm_l2,
        bootstrap: options.bootstrap,
        prompt_length: point(0, "prompt length".into(), None, None),
        base: point(1, "base (other sources only)".into(), None, Some(0)),
        points,
        in_domain,
        target,
    })
}

/// The best arm at [`TARGET_LABELLED`] rows against the in-domain model.
fn target_check(points: &[CurvePoint], in_domain: &CurvePoint) -> Option<TargetCheck> {
    let reference = in_domain.apgr?;
    let (best, apgr) = points
        .iter()
        .filter(|point| point.labelled == Some(TARGET_LABELLED))
        .filter_map(|point| Some((point.arm?, point.apgr?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let gap = reference - apgr;
    Some(TargetCheck {
        labelled: TARGET_LABELLED,
        allowed_gap: TARGET_GAP,
        best,
        gap,
        met: gap <= TARGET_GAP,
    })
}

impl LearningCurve {
    /// The curve for a terminal: one line per model, then the target's verdict.
    pub fn table(&self) -> String {
        let mut out = format!(
            "learning curve: {} left out ({} usable rows, split with seed {}: an adaptation pool of {}, \
             a test part of {} with {} needing the dearest tier; {} rows of the other sources)\n",
            self.source,
            self.rows,
            self.seed,
            self.pool,
            self.test,
            self.test_positives,
            self.other_rows
        );
        out += &format!(
            "fits: buckets {}, l2 {}, prior-l2 {}; warm start: every weight pulled toward the base \
             model's with l2 {} (dense weights also with prior-l2)\n",
            self.buckets, self.l2, self.prior_l2, self.warm_l2
        );
        out += &format!(
            "{:>8}  {:<32} {:>10} {:>6} {:>6} {:>14} {:>23}\n",
            "labelled",
            "model",
            "train rows",
            "AUC",
            "APGR",
            "APGR 95% CI",
            "vs in-domain [95% CI]"
        );
        let rows = std::iter::once(&self.prompt_length)
            .chain(std::iter::once(&self.base))
            .chain(&self.points)
            .chain(std::iter::once(&self.in_domain));
        let count = |v: Option<usize>| v.map_or("-".to_string(), |v| v.to_string());
        for point in rows {
            out += &format!(
                "{:>8}  {:<32} {:>10} {:>6} {:>6} {:>14} {:>23}\n",
                count(point.labelled),
                point.model,
                count(point.training_rows),
                train::metric_cell(point.auc),
                train::metric_cell(point.apgr),
                train::interval_cell(point.apgr_interval),
                train::difference_cell(point.minus_in_domain),
            );
        }
        out += &format!(
            "APGR on the test part only; 95% CI: {}; vs in-domain: paired (the same resampled rows)\n",
            self.bootstrap
        );
        out +=
            "the intervals are the test rows' noise only, not that of which rows were labelled: \
                other --seed values split and order the source anew\n";
        if let Some(target) = &self.target {
            let (gap, side) = if target.gap >= 0.0 {
                (target.gap, "below")
            } else {
                (-target.gap, "above")
            };
            out += &format!(
                "target (issue 11): with {} labelled rows, within {} APGR of in-domain: {} \
                 (best: {}, {gap:.3} {side} it)\n",
                target.labelled,
                target.allowed_gap,
                if target.met { "met" } else { "not met" },
                target.best.describe(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests;
