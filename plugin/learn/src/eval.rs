//! `triage eval`: how well the router routes routing-dataset rows, beside its baselines.
//!
//! Each row's request goes through the filter's own `triage_core::decide` (OpenAI chat, path
//! `/v1/chat/completions`, no headers); the decided tier's outcome (next-dearer-tier rule) gives the
//! router's quality and cost. The baselines are exact expectations over the same rows (see
//! [`crate::baselines`]): each always-one-tier policy, a random mix of the cheapest and dearest tiers
//! at the router's mean cost (RouteLLM's random router), the best random mix of any two always-tier
//! policies at no more than the router's cost, a random mix at the router's tier shares, prompt
//! length at the router's tier shares (shortest rows to the cheapest tier), and the oracle.
//!
//! The score sweep ([`crate::metrics`]) ranks rows by the router's score between each row's cheapest
//! and dearest tier. Rows whose decision has no score (a config rule, an explicit model, fail-open)
//! are left out of the sweep, and of the prompt-length sweep beside it, and counted in
//! `unscored_excluded`; they still count at their decided tier in the router's quality, cost and
//! shares. Beside RouteLLM's APGR (PGR averaged over the share of strong calls) the sweep reports
//! APGR by cost (PGR averaged over the mean cost), since dataset costs vary per row.
//!
//! Each APGR carries a 95% bootstrap interval over the swept rows, and the router's lead over prompt
//! length a paired one ([`crate::bootstrap`]): differences of 0.01 are within the noise of a few
//! thousand rows.
//!
//! Rows that keep every model's outcome (RouterBench's `all_models`) get the other-models reference
//! ([`baselines::other_models_failing`]): a score that knows how the other LLMs fared on each exact
//! item. It is not a router anyone could deploy; it shows how much of the gap routing on an item's
//! difficulty could close at all, which bounds what to expect of a router reading the text.

use serde::Serialize;
use triage_core::{decide, ApiFormat, Cause, Config, RequestHead};

use crate::baselines::{self, EvalError, Mean};
use crate::bootstrap::{self, Bootstrap, Difference, Interval};
use crate::columns::columns;
use crate::dataset::{Row, DATASET_TIERS};
use crate::metrics::{self, Scored, SweepPoint};

/// The router's decision on one row, as the filter would make it.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    /// Index into the config's tiers.
    pub tier: usize,
    pub score: Option<f64>,
    pub cause: CauseKind,
    /// Prompt length, the key of the length baseline.
    pub length: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CauseKind {
    Scored,
    Rule,
    ExplicitModel,
    FailOpen,
}

/// Runs the filter's decision on every row. Every config tier must be a dataset tier name, so that
/// the decided tier has an outcome.
pub fn judge(config: &Config, rows: &[Row]) -> Result<Vec<Judged>, EvalError> {
    let tiers = config.tier_names();
    if let Some(unknown) = tiers.iter().find(|tier| !DATASET_TIERS.contains(tier)) {
        return Err(EvalError(format!(
            "config tier {unknown:?} is not a dataset tier ({})",
            DATASET_TIERS.join(", ")
        )));
    }
    let head = RequestHead {
        format: ApiFormat::OpenAiChat,
        path: "/v1/chat/completions",
        headers: &[],
        identity: triage_core::Identity::ANONYMOUS,
    };
    rows.iter()
        .map(|row| {
            let decision = decide(config, &head, row.request.as_bytes());
            let tier = tiers
                .iter()
                .position(|name| *name == decision.tier)
                .ok_or_else(|| {
                    EvalError(format!(
                        "row {}: decided unknown tier {:?}",
                        row.id, decision.tier
                    ))
                })?;
            let cause = match decision.cause {
                Cause::Scored => CauseKind::Scored,
                Cause::Rule(_) => CauseKind::Rule,
                Cause::ExplicitModel => CauseKind::ExplicitModel,
                Cause::FailOpen(_) => CauseKind::FailOpen,
                // Rows carry no headers, so no caller overrides; were one to, it forces a tier
                // like a rule does.
                Cause::Override { .. } => CauseKind::Rule,
            };
            Ok(Judged {
                tier,
                score: decision.score,
                cause,
                length: baselines::prompt_length(row),
            })
        })
        .collect()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Causes {
    pub scored: usize,
    pub rule: usize,
    pub explicit_model: usize,
    pub fail_open: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TierShare {
    pub tier: String,
    pub share: f64,
}

/// Mean quality and cost per request of one policy, and both relative to always-top-tier.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Policy {
    pub name: String,
    pub quality: f64,
    pub cost_usd: f64,
    pub quality_vs_top: f64,
    pub cost_vs_top: f64,
}

/// APGR with its 95% bootstrap interval, CPT(50%), CPT(80%) and AUC of one score between the
/// cheapest and the dearest tier, and APGR over cost ([`metrics::apgr_by_cost`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweepMetrics {
    pub apgr: Option<f64>,
    pub apgr_interval: Option<Interval>,
    pub apgr_by_cost: Option<f64>,
    pub cpt50: Option<f64>,
    pub cpt80: Option<f64>,
    pub auc: Option<f64>,
}

impl SweepMetrics {
    fn of(rows: &[Scored], apgr_interval: Option<Interval>) -> SweepMetrics {
        SweepMetrics {
            apgr: metrics::apgr(rows),
            apgr_interval,
            apgr_by_cost: metrics::apgr_by_cost(rows),
            cpt50: metrics::cpt(rows, 0.5),
            cpt80: metrics::cpt(rows, 0.8),
            auc: metrics::auc(rows),
        }
    }

    /// A random router: PGR(s) = s, by construction (no simulation).
    pub fn random() -> SweepMetrics {
        SweepMetrics {
            apgr: Some(0.5),
            apgr_interval: None,
            apgr_by_cost: Some(0.5),
            cpt50: Some(0.5),
            cpt80: Some(0.8),
            auc: Some(0.5),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sweep {
    /// Rows in the sweep: those with a score.
    pub rows: usize,
    pub unscored_excluded: usize,
    pub router: SweepMetrics,
    pub prompt_length: SweepMetrics,
    pub random: SweepMetrics,
    /// The router's APGR minus prompt length's on the same rows, with its paired interval.
    pub router_minus_length: Option<Difference>,
    /// How the intervals were drawn.
    pub bootstrap: Bootstrap,
}

/// The other-models reference ([`baselines::other_models_failing`]) of rows that keep every model's
/// outcome: its score sweep, and the rows ranked by it into the router's tier shares.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OtherModels {
    /// Fewest and most other models a row has.
    pub models_per_row: [usize; 2],
    pub sweep: SweepMetrics,
    pub same_shares: Policy,
}

impl OtherModels {
    /// What the reference is, for a reader who might take it for a router.
    pub fn label(&self) -> String {
        let [fewest, most] = self.models_per_row;
        let models = if fewest == most {
            fewest.to_string()
        } else {
            format!("{fewest}-{most}")
        };
        format!("other-models reference (knows {models} other models' results per item; not a deployable router)")
    }
}

/// The sweeps' vertices (share of strong calls, mean quality, mean cost), for plotting.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Curves {
    pub router: Vec<SweepPoint>,
    pub prompt_length: Vec<SweepPoint>,
    /// Always-cheapest and always-dearest over the swept rows: the random router's line.
    pub random: [SweepPoint; 2],
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub dataset: String,
    pub rows: usize,
    pub shares: Vec<TierShare>,
    pub decisions: Causes,
    /// The dearest dataset tier of these rows: the "always-top" reference of the `_vs_top` columns.
    pub top_tier: String,
    pub policies: Vec<Policy>,
    /// Share of strong calls of `random-same-cost`.
    pub random_share_strong: f64,
    pub sweep: Sweep,
    /// None unless every row has at least [`baselines::MIN_OTHER_MODELS`] other models.
    pub other_models_reference: Option<OtherModels>,
    /// The best quality each score's thresholds reach within [`budget::MAX_COST`], over the
    /// scored rows.
    pub within_budget: budget::WithinBudget,
    #[serde(skip)]
    pub curves: Curves,
}

impl Policy {
    /// `mean` with its quality and cost relative to always-top-tier's `top`.
    fn relative(name: String, mean: Mean, top: Mean) -> Policy {
        let ratio = |value: f64, reference: f64| {
            if reference.abs() > 0.0 {
                value / reference
            } else {
                f64::NAN
            }
        };
        Policy {
            name,
            quality: mean.quality,
            cost_usd: mean.cost,
            quality_vs_top: ratio(mean.quality, top.quality),
            cost_vs_top: ratio(mean.cost, top.cost),
        }
    }
}

impl Report {
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|policy| policy.name == name)
    }
}

/// The policies of a report, in the order they are printed.
pub const ROUTER: &str = "router";
pub const RANDOM_SAME_COST: &str = "random-same-cost";
pub const RANDOM_BEST_MIX: &str = "random-best-mix";
pub const RANDOM_SAME_SHARES: &str = "random-same-shares";
pub const LENGTH_SAME_SHARES: &str = "length-same-shares";
pub const ORACLE: &str = "oracle";
/// The other-models reference at the router's tier shares: not among `policies`, since it is no
/// policy a deployment could run.
pub const OTHER_MODELS_SAME_SHARES: &str = "other-models-same-shares";

/// The share of `judged` decisions each config tier got, cheapest first, and how many were
/// decided by each cause. Needs no outcomes: what rows without them can still tell.
pub fn tier_shares(config: &Config, judged: &[Judged]) -> (Vec<TierShare>, Causes) {
    let tiers = config.tier_names();
    let mut counts = vec![0usize; tiers.len()];
    let mut decisions = Causes::default();
    for decision in judged {
        if let Some(count) = counts.get_mut(decision.tier) {
            *count += 1;
        }
        match decision.cause {
            CauseKind::Scored => decisions.scored += 1,
            CauseKind::Rule => decisions.rule += 1,
            CauseKind::ExplicitModel => decisions.explicit_model += 1,
            CauseKind::FailOpen => decisions.fail_open += 1,
        }
    }
    let n = judged.len().max(1) as f64;
    let shares = tiers
        .iter()
        .zip(counts)
        .map(|(tier, count)| TierShare {
            tier: tier.to_string(),
            share: count as f64 / n,
        })
        .collect();
    (shares, decisions)
}

/// Evaluates the router's decisions `judged` (from [`judge`], one per row) on `rows`.
pub fn evaluate(
    dataset: &str,
    config: &Config,
    rows: &[Row],
    judged: &[Judged],
) -> Result<Report, EvalError> {
    if rows.len() != judged.len() {
        return Err(EvalError("one decision per row is needed".into()));
    }
    if rows.is_empty() {
        return Err(EvalError(format!("{dataset}: no rows")));
    }
    let tiers = config.tier_names();
    let n = rows.len() as f64;
    let (tier_shares, decisions) = tier_shares(config, judged);
    let shares: Vec<f64> = tier_shares.iter().map(|share| share.share).collect();

    let mut router = Mean::default();
    for (row, decision) in rows.iter().zip(judged) {
        let tier = tiers.get(decision.tier).copied().unwrap_or_default();
        let outcome = baselines::outcome(row, tier)?;
        router.quality += outcome.quality / n;
        router.cost += outcome.cost_usd / n;
    }

    let present: Vec<&str> = DATASET_TIERS
        .into_iter()
        .filter(|tier| rows.iter().any(|row| row.outcomes.contains_key(*tier)))
        .collect();
    let top_tier = present.last().copied().unwrap_or("frontier");
    let mut policies = vec![(ROUTER.to_string(), router)];
    let mut always_tiers = Vec::new();
    for tier in &present {
        let always = baselines::always(rows, tier)?;
        always_tiers.push(always);
        policies.push((format!("always-{tier}"), always));
    }
    let weak = baselines::always_extreme(rows, false)?;
    let strong = baselines::always_extreme(rows, true)?;
    let (random_share_strong, random) = baselines::random_at_cost(weak, strong, router.cost);
    policies.push((RANDOM_SAME_COST.into(), random));
    policies.push((
        RANDOM_BEST_MIX.into(),
        baselines::best_mix_at_cost(&always_tiers, router.cost),
    ));
    policies.push((
        RANDOM_SAME_SHARES.into(),
        baselines::random_at_shares(rows, &tiers, &shares)?,
    ));
    let lengths: Vec<f64> = judged.iter().map(|decision| decision.length).collect();
    policies.push((
        LENGTH_SAME_SHARES.into(),
        baselines::by_rank(rows, &lengths, &tiers, &shares)?,
    ));
    policies.push((ORACLE.into(), baselines::oracle(rows)?));

    let top = baselines::always(rows, top_tier)?;
    let policies = policies
        .into_iter()
        .map(|(name, mean)| Policy::relative(name, mean, top))
        .collect();
    let reference_keys: Option<Vec<f64>> =
        rows.iter().map(baselines::other_models_failing).collect();

    let mut by_score = Vec::new();
    let mut by_length = Vec::new();
    let mut by_reference = Vec::new();
    let mut scored_rows: Vec<&Row> = Vec::new();
    for (index, (row, decision)) in rows.iter().zip(judged).enumerate() {
        let Some(score) = decision.score else {
            continue;
        };
        scored_rows.push(row);
        let (weak, strong) = baselines::extremes(row)?;
        let scored = Scored {
            score,
            q_weak: weak.quality,
            q_strong: strong.quality,
            c_weak: weak.cost_usd,
            c_strong: strong.cost_usd,
        };
        by_score.push(scored);
        by_length.push(Scored {
            score: decision.length,
            ..scored
        });
        if let Some(keys) = &reference_keys {
            by_reference.push(Scored {
                score: keys[index],
                ..scored
            });
        }
    }
    let router_curve = metrics::sweep(&by_score);
    let random_line = match (router_curve.first(), router_curve.last()) {
        (Some(first), Some(last)) => [*first, *last],
        _ => {
            [SweepPoint {
                share_strong: 0.0,
                quality: 0.0,
                cost: 0.0,
            }; 2]
        }
    };
    let random_metrics = if by_score.is_empty() {
        SweepMetrics {
            apgr: None,
            apgr_interval: None,
            apgr_by_cost: None,
            cpt50: None,
            cpt80: None,
            auc: None,
        }
    } else {
        SweepMetrics::random()
    };
    // One set of resamples for every score, so the router's lead over length is paired.
    let options = Bootstrap::default();
    let mut scores: Vec<&[Scored]> = vec![&by_score, &by_length];
    if reference_keys.is_some() {
        scores.push(&by_reference);
    }
    let resampled = bootstrap::resample(&scores, options);
    let interval = |score: usize| resampled.as_ref().and_then(|r| r.interval(score));
    let sweep = Sweep {
        rows: by_score.len(),
        unscored_excluded: rows.len() - by_score.len(),
        router: SweepMetrics::of(&by_score, interval(0)),
        prompt_length: SweepMetrics::of(&by_length, interval(1)),
        random: random_metrics,
        router_minus_length: resampled.as_ref().and_then(|r| r.difference(0, 1)),
        bootstrap: options,
    };
    let other_models_reference = match &reference_keys {
        Some(keys) => {
            let models = rows.iter().map(|row| row.other_models().count());
            let fewest = models.clone().min().unwrap_or(0);
            let most = models.max().unwrap_or(0);
            let same_shares = baselines::by_rank(rows, keys, &tiers, &shares)?;
            Some(OtherModels {
                models_per_row: [fewest, most],
                sweep: SweepMetrics::of(&by_reference, interval(2)),
                same_shares: Policy::relative(OTHER_MODELS_SAME_SHARES.into(), same_shares, top),
            })
        }
        None => None,
    };
    let tier_names: Vec<String> = tiers.iter().map(|tier| tier.to_string()).collect();
    let best = |scores: &[Scored]| {
        let keys: Vec<f64> = scores.iter().map(|scored| scored.score).collect();
        budget::best_quality(&scored_rows, &keys, &tier_names, budget::MAX_COST)
    };
    let within_budget = budget::WithinBudget {
        max_cost: budget::MAX_COST,
        router: best(&by_score),
        prompt_length: best(&by_length),
        other_models_reference: reference_keys.as_ref().and_then(|_| best(&by_reference)),
    };
    Ok(Report {
        dataset: dataset.to_string(),
        rows: rows.len(),
        shares: tier_shares,
        decisions,
        top_tier: top_tier.to_string(),
        policies,
        random_share_strong,
        sweep,
        other_models_reference,
        within_budget,
        curves: Curves {
            router: router_curve,
            prompt_length: metrics::sweep(&by_length),
            random: random_line,
        },
    })
}

/// One report per named dataset, then one for all their rows together when there are several.
pub fn evaluate_all(
    config: &Config,
    datasets: &[(String, Vec<Row>)],
) -> Result<Vec<Report>, EvalError> {
    let mut reports = Vec::new();
    let mut all_rows = Vec::new();
    let mut all_judged = Vec::new();
    for (name, rows) in datasets {
        let judged = judge(config, rows)?;
        reports.push(evaluate(name, config, rows, &judged)?);
        all_rows.extend(rows.iter().cloned());
        all_judged.extend(judged);
    }
    if datasets.len() > 1 {
        reports.push(evaluate("all", config, &all_rows, &all_judged)?);
    }
    Ok(reports)
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0))
}

fn fixed(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

/// The reports as aligned plain-text tables.
pub fn render_text(reports: &[Report]) -> String {
    let mut out = String::new();
    for report in reports {
        let shares: Vec<String> = report
            .shares
            .iter()
            .map(|share| format!("{} {}", share.tier, percent(Some(share.share))))
            .collect();
        let d = &report.decisions;
        out.push_str(&format!(
            "== {} ({} rows) ==\nrouter tier shares: {}   (scored {}, rule {}, explicit model {}, fail-open {})\n\n",
            report.dataset,
            report.rows,
            shares.join(", "),
            d.scored,
            d.rule,
            d.explicit_model,
            d.fail_open
        ));
        let top = &report.top_tier;
        let header = [
            "policy".to_string(),
            "quality".into(),
            format!("vs always-{top}"),
            "$ / 1k req".into(),
            format!("cost vs always-{top}"),
        ];
        let mut lines = vec![header];
        let reference = report.other_models_reference.as_ref();
        let reference_policy = reference.map(|r| (&r.same_shares, REFERENCE_MARK));
        for (policy, mark) in report
            .policies
            .iter()
            .map(|policy| (policy, ""))
            .chain(reference_policy)
        {
            let name = if policy.name == RANDOM_SAME_COST {
                format!(
                    "{} ({} strong)",
                    policy.name,
                    percent(Some(report.random_share_strong))
                )
            } else {
                format!("{}{mark}", policy.name)
            };
            lines.push([
                name,
                format!("{:.4}", policy.quality),
                percent(Some(policy.quality_vs_top)),
                format!("{:.4}", policy.cost_usd * 1000.0),
                percent(Some(policy.cost_vs_top)),
            ]);
        }
        out.push_str(&columns(&lines, ""));
        let sweep = &report.sweep;
        out.push_str(&format!(
            "\nscore sweep, cheapest -> dearest tier of each row, {} scored rows ({} unscored left out):\n",
            sweep.rows, sweep.unscored_excluded
        ));
        let mut lines = vec![[
            "score".to_string(),
            "APGR".into(),
            "95% CI".into(),
            "APGR by cost".into(),
            "CPT(50%)".into(),
            "CPT(80%)".into(),
            "AUC".into(),
        ]];
        let reference_sweep = reference.map(|r| (REFERENCE_SCORE, &r.sweep));
        let scores = [
            ("router", &sweep.router),
            ("prompt length", &sweep.prompt_length),
        ]
        .into_iter()
        .chain(reference_sweep)
        .chain([("random", &sweep.random)]);
        for (name, metrics) in scores {
            lines.push([
                name.to_string(),
                fixed(metrics.apgr),
                metrics
                    .apgr_interval
                    .map_or_else(String::new, |i| format!("[{:.3}, {:.3}]", i.low, i.high)),
                fixed(metrics.apgr_by_cost),
                percent(metrics.cpt50),
                percent(metrics.cpt80),
                fixed(metrics.auc),
            ]);
        }
        out.push_str(&columns(&lines, ""));
        if let Some(d) = &sweep.router_minus_length {
            out.push_str(&format!(
                "router - prompt length APGR: {:+.3} [{:+.3}, {:+.3}] (paired)\n",
                d.estimate, d.low, d.high
            ));
        }
        let budget = &report.within_budget;
        let reference_best = budget
            .other_models_reference
            .map(|quality| format!(", {REFERENCE_SCORE} {}", percent(Some(quality))))
            .unwrap_or_default();
        out.push_str(&format!(
            "best quality within {} of always-{top}'s cost, thresholds fitted on these rows: router {}, prompt length {}{reference_best}\n",
            percent(Some(budget.max_cost)),
            percent(budget.router),
            percent(budget.prompt_length),
        ));
        out.push_str(&format!("95% CI: {}\n", sweep.bootstrap));
        if let Some(reference) = reference {
            out.push_str(&format!("{REFERENCE_MARK} {}\n", reference.label()));
        }
        out.push('\n');
    }
    out
}

/// Marks the other-models reference's lines, which the label under the tables explains.
const REFERENCE_MARK: &str = "*";
const REFERENCE_SCORE: &str = "other-models reference*";

pub mod budget;

#[cfg(test)]
mod tests;
