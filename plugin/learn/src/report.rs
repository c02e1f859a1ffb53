//! `triage report`: what the decision log says per time window: volume, tier shares, cost, cost per
//! task and savings against sending everything to the top tier, routing accuracy where feedback grades
//! requests, the override, escalation and fail-open rates, unknown usage and shadow mode's priced
//! effect; then totals, the cost-per-task trend as volume grows, and a verdict on each target
//! operators watch.
//!
//! Definitions (each rate's denominator is counted beside it):
//! - cost per task: mean `cost_micro_usd` over the requests whose cost is known;
//! - savings: 1 - cost / top-tier cost, over the requests where both are known;
//! - routing accuracy: over automatically routed requests (cause scored, rule or override) that have
//!   feedback, the share where triage's own choice equals the correct tier. Triage's choice is the
//!   override's `from` when a caller overrode it (the corrected tier would flatter the router), else
//!   the decided tier; explicit models and fail-opens are not routing decisions;
//! - beside the accuracy, over the graded requests whose prompt length is known: what routing by
//!   prompt length at the router's own tier shares would have scored (see [`baseline`]);
//! - override rate: automatically routed requests with an override whose `from` != `to`;
//! - escalation, fail-open and shadow shares: over every request;
//! - shadow's priced effect: what the decided tiers would have cost against what the serving tier
//!   charged, over shadowed requests with both known;
//! - tier mismatches: requests Envoy's route table served from another cluster than the routed
//!   tier's (the record's `mismatch`), and how many of those from a cluster no tier names.

pub mod baseline;
pub mod plot;
mod text;
pub mod window;

use std::collections::BTreeMap;

use serde::Serialize;
use triage_core::{Applied, DecisionRecord, MismatchCause};

use crate::log::feedback::Feedback;
use crate::log::survey::{survey, Survey};
use crate::log::{records, LogError, LogSource};
use baseline::{length_baseline, Graded, LengthBaseline};

pub use text::render_text;

/// Routing accuracy operators want above this.
pub const ACCURACY_TARGET: f64 = 0.92;
/// Override rate operators want below this.
pub const OVERRIDE_TARGET: f64 = 0.08;

const AUTOMATIC_CAUSES: [&str; 3] = ["scored", "rule", "override"];
const FAIL_OPEN_CAUSE: &str = "fail_open";

fn ratio(part: f64, whole: f64) -> Option<f64> {
    (whole > 0.0).then(|| part / whole)
}

fn share(part: usize, whole: usize) -> Option<f64> {
    ratio(part as f64, whole as f64)
}

const MICRO: f64 = 1e6;

/// Triage's own tier for an automatically routed request: an override's `from` when a caller
/// overrode it (the corrected tier would flatter the router), else the decided tier. None for
/// explicit models and fail-opens, which are not routing decisions. The flag says a caller's
/// override changed the tier.
fn own_choice(record: &DecisionRecord) -> Option<(&str, bool)> {
    if !AUTOMATIC_CAUSES.contains(&record.cause.as_str()) {
        return None;
    }
    let overridden = record
        .override_
        .as_ref()
        .filter(|corrected| corrected.from != corrected.to);
    let chosen = overridden.map_or(&record.decided_tier, |corrected| &corrected.from);
    Some((chosen, overridden.is_some()))
}

/// Running counts over some records.
#[derive(Clone, Debug, Default)]
struct Tally {
    requests: usize,
    by_tier: BTreeMap<String, usize>,
    cost_known: usize,
    cost_micro_usd: f64,
    priced_both: usize,
    paired_cost_micro_usd: f64,
    paired_top_micro_usd: f64,
    labelled: usize,
    correct: usize,
    automatic: usize,
    overridden: usize,
    escalated: usize,
    fail_open: usize,
    unknown_usage: usize,
    shadow: usize,
    shadow_priced: usize,
    shadow_served_micro_usd: f64,
    shadow_decided_micro_usd: f64,
    tier_mismatches: usize,
    unknown_cluster: usize,
}

impl Tally {
    fn add(&mut self, record: &DecisionRecord, correct_tier: Option<&str>) {
        self.requests += 1;
        *self.by_tier.entry(record.tier.clone()).or_default() += 1;
        if let Some(cost) = record.cost_micro_usd {
            self.cost_known += 1;
            self.cost_micro_usd += cost;
        }
        if let (Some(cost), Some(top)) = (record.cost_micro_usd, record.top_tier_cost_micro_usd) {
            self.priced_both += 1;
            self.paired_cost_micro_usd += cost;
            self.paired_top_micro_usd += top;
        }
        if let Some((chosen, overridden)) = own_choice(record) {
            self.automatic += 1;
            self.overridden += usize::from(overridden);
            if let Some(correct) = correct_tier {
                self.labelled += 1;
                self.correct += usize::from(chosen == correct);
            }
        }
        self.escalated += usize::from(!record.escalations.is_empty());
        self.fail_open += usize::from(record.cause == FAIL_OPEN_CAUSE);
        self.unknown_usage += usize::from(record.usage.is_none());
        if let Some(mismatch) = &record.mismatch {
            self.tier_mismatches += 1;
            self.unknown_cluster += usize::from(mismatch.cause == MismatchCause::UnknownCluster);
        }
        if record.mode == Applied::Shadow {
            self.shadow += 1;
            if let (Some(served), Some(decided)) =
                (record.cost_micro_usd, record.decided_cost_micro_usd)
            {
                self.shadow_priced += 1;
                self.shadow_served_micro_usd += served;
                self.shadow_decided_micro_usd += decided;
            }
        }
    }

    fn summary(&self, tiers: &[String]) -> Summary {
        let tiers = tiers
            .iter()
            .map(|tier| {
                let requests = self.by_tier.get(tier).copied().unwrap_or(0);
                TierShare {
                    tier: tier.clone(),
                    requests,
                    share: share(requests, self.requests).unwrap_or(0.0),
                }
            })
            .collect();
        Summary {
            requests: self.requests,
            tiers,
            cost_usd: (self.cost_known > 0).then_some(self.cost_micro_usd / MICRO),
            cost_known: self.cost_known,
            cost_per_task_usd: ratio(self.cost_micro_usd / MICRO, self.cost_known as f64),
            priced_both: self.priced_both,
            top_tier_cost_usd: (self.priced_both > 0).then_some(self.paired_top_micro_usd / MICRO),
            savings: ratio(self.paired_cost_micro_usd, self.paired_top_micro_usd)
                .map(|fraction| 1.0 - fraction),
            labelled: self.labelled,
            correct: self.correct,
            accuracy: share(self.correct, self.labelled),
            automatic: self.automatic,
            overridden: self.overridden,
            override_rate: share(self.overridden, self.automatic),
            escalated: self.escalated,
            escalation_rate: share(self.escalated, self.requests),
            fail_open: self.fail_open,
            fail_open_share: share(self.fail_open, self.requests),
            unknown_usage: self.unknown_usage,
            tier_mismatches: self.tier_mismatches,
            unknown_cluster: self.unknown_cluster,
            shadow: self.shadow,
            shadow_share: share(self.shadow, self.requests),
            shadow_effect: (self.shadow_priced > 0).then(|| ShadowEffect {
                requests: self.shadow_priced,
                served_cost_usd: self.shadow_served_micro_usd / MICRO,
                decided_cost_usd: self.shadow_decided_micro_usd / MICRO,
                change: ratio(self.shadow_decided_micro_usd, self.shadow_served_micro_usd)
                    .map(|fraction| fraction - 1.0),
            }),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TierShare {
    pub tier: String,
    /// Requests the tier served.
    pub requests: usize,
    pub share: f64,
}

/// Shadowed requests priced two ways.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShadowEffect {
    pub requests: usize,
    /// What the serving (default) tier charged.
    pub served_cost_usd: f64,
    /// What the decided tiers would have charged for the same tokens.
    pub decided_cost_usd: f64,
    /// decided / served - 1: negative when enforcing would have saved.
    pub change: Option<f64>,
}

/// The numbers of one window, or of all of them. A rate is None when its denominator is 0.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub requests: usize,
    pub tiers: Vec<TierShare>,
    /// Sum of the known costs (None when none is known).
    pub cost_usd: Option<f64>,
    /// Requests whose cost is known.
    pub cost_known: usize,
    pub cost_per_task_usd: Option<f64>,
    /// Requests whose cost and top-tier cost are both known: the base of the savings.
    pub priced_both: usize,
    /// What those requests would have cost on the top tier.
    pub top_tier_cost_usd: Option<f64>,
    pub savings: Option<f64>,
    pub labelled: usize,
    pub correct: usize,
    pub accuracy: Option<f64>,
    /// Automatically routed requests: the base of the override rate.
    pub automatic: usize,
    pub overridden: usize,
    pub override_rate: Option<f64>,
    pub escalated: usize,
    pub escalation_rate: Option<f64>,
    pub fail_open: usize,
    pub fail_open_share: Option<f64>,
    pub unknown_usage: usize,
    /// Requests Envoy's route table served from another cluster than the routed tier's.
    pub tier_mismatches: usize,
    /// Of those, served from a cluster no tier names (their cost is unknown).
    pub unknown_cluster: usize,
    pub shadow: usize,
    pub shadow_share: Option<f64>,
    pub shadow_effect: Option<ShadowEffect>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowReport {
    pub start_ms: u64,
    pub end_ms: u64,
    /// The start in UTC, e.g. `2023-11-14 22:00`.
    pub start: String,
    /// Requests in this and every earlier window: the volume the cost per task is read against.
    pub cumulative_requests: usize,
    #[serde(flatten)]
    pub summary: Summary,
}

/// Cost per task from the first to the last window that has one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trend {
    pub first_start: Option<String>,
    pub last_start: Option<String>,
    pub first_cost_per_task_usd: Option<f64>,
    pub last_cost_per_task_usd: Option<f64>,
    /// last / first - 1.
    pub change: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Met,
    NotMet,
    /// Not enough data to say.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub target: String,
    pub status: Status,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Inputs {
    pub logs: Vec<String>,
    pub records: usize,
    pub lines_not_records: usize,
    pub feedback_rows: usize,
    /// Feedback rows whose key names no record of the logs: skipped.
    pub feedback_unmatched: usize,
    /// Feedback rows whose key names more than one record (a request id two requests carried):
    /// skipped.
    pub feedback_ambiguous: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub inputs: Inputs,
    /// The window width, e.g. `1h`.
    pub window: String,
    pub window_ms: u64,
    /// Tier names, cheapest first: the config's, then any other the log names.
    pub tiers: Vec<String>,
    /// Windows with records, oldest first.
    pub windows: Vec<WindowReport>,
    pub totals: Summary,
    /// Over every graded, automatically routed request with a known prompt length: the router's
    /// accuracy beside routing by prompt length at the same tier shares.
    pub length_baseline: Option<LengthBaseline>,
    pub trend: Trend,
    pub verdicts: Vec<Verdict>,
}

fn percent(value: f64) -> String {
    format!("{:.1}%", 100.0 * value)
}

fn trend(windows: &[WindowReport]) -> Trend {
    let priced: Vec<(&str, f64)> = windows
        .iter()
        .filter_map(|window| Some((window.start.as_str(), window.summary.cost_per_task_usd?)))
        .collect();
    let first = priced.first().copied();
    let last = priced.last().copied().filter(|_| priced.len() >= 2);
    Trend {
        first_start: first.map(|(start, _)| start.to_string()),
        last_start: last.map(|(start, _)| start.to_string()),
        first_cost_per_task_usd: first.map(|(_, cost)| cost),
        last_cost_per_task_usd: last.map(|(_, cost)| cost),
        change: first
            .zip(last)
            .and_then(|((_, first), (_, last))| ratio(last, first))
            .map(|fraction| fraction - 1.0),
    }
}

fn verdicts(totals: &Summary, trend: &Trend) -> Vec<Verdict> {
    let status = |met: bool| if met { Status::Met } else { Status::NotMet };
    let accuracy = match totals.accuracy {
        Some(accuracy) => Verdict {
            target: format!("routing accuracy > {}", percent(ACCURACY_TARGET)),
            status: status(accuracy > ACCURACY_TARGET),
            detail: format!(
                "{} of {} labelled requests",
                percent(accuracy),
                totals.labelled
            ),
        },
        None => Verdict {
            target: format!("routing accuracy > {}", percent(ACCURACY_TARGET)),
            status: Status::Unknown,
            detail: "no feedback on automatically routed requests".into(),
        },
    };
    let overrides = match totals.override_rate {
        Some(rate) => Verdict {
            target: format!("override rate < {}", percent(OVERRIDE_TARGET)),
            status: status(rate < OVERRIDE_TARGET),
            detail: format!(
                "{} of {} automatically routed requests",
                percent(rate),
                totals.automatic
            ),
        },
        None => Verdict {
            target: format!("override rate < {}", percent(OVERRIDE_TARGET)),
            status: Status::Unknown,
            detail: "no automatically routed requests".into(),
        },
    };
    let cost = match (
        trend.first_cost_per_task_usd,
        trend.last_cost_per_task_usd,
        trend.change,
    ) {
        (Some(first), Some(last), Some(change)) => Verdict {
            target: "cost per task falling".into(),
            status: status(last < first),
            detail: format!(
                "${first:.6} -> ${last:.6} ({:+.1}%) from the first to the last window",
                100.0 * change
            ),
        },
        _ => Verdict {
            target: "cost per task falling".into(),
            status: Status::Unknown,
            detail: "fewer than two windows with a known cost".into(),
        },
    };
    vec![accuracy, overrides, cost]
}

/// The report over every record of `logs`, in windows of `window_ms` (a handful by default).
/// `config_tiers` orders the tier columns, cheapest first.
///
/// The logs are streamed: the report keeps a tally per window and the graded requests. A first pass
/// ([`survey`]) runs when something must be known of every record before the first is tallied: the
/// span of start times for the default window, and which feedback rows name one record alone.
pub fn build<L: LogSource>(
    logs: &[L],
    feedback: &Feedback,
    config_tiers: &[&str],
    window_ms: Option<u64>,
) -> Result<Report, LogError> {
    let survey = if feedback.is_empty() && window_ms.is_some() {
        Survey::default()
    } else {
        survey(logs, feedback)
    };
    let labels = feedback.join(&survey.keys);
    let window_ms = window_ms.unwrap_or_else(|| {
        let (first, last) = survey.span.unwrap_or((0, 0));
        window::default_window(first, last)
    });

    let mut by_window: BTreeMap<u64, Tally> = BTreeMap::new();
    let mut totals = Tally::default();
    // Graded requests by tier name: a tier's rank is known once every record has been read.
    let mut graded_names: Vec<(u64, String, &str)> = Vec::new();
    let mut lines_not_records = 0;
    for (index, log) in logs.iter().enumerate() {
        let mut records = records::<L, DecisionRecord>(log, survey.extent(index))?;
        for record in &mut records {
            let record = record?;
            let correct_tier = labels.correct_tier(&record);
            let start = window::window_start(record.start_ms, window_ms);
            by_window
                .entry(start)
                .or_default()
                .add(&record, correct_tier);
            totals.add(&record, correct_tier);
            if let (Some(correct), Some(usage), Some((chosen, _))) =
                (correct_tier, record.usage, own_choice(&record))
            {
                graded_names.push((usage.prompt_tokens, chosen.to_string(), correct));
            }
        }
        lines_not_records += records.skipped_lines();
    }

    let mut tiers: Vec<String> = config_tiers.iter().map(|tier| tier.to_string()).collect();
    for tier in totals.by_tier.keys() {
        if !tiers.contains(tier) {
            tiers.push(tier.clone());
        }
    }
    let rank = |name: &str| tiers.iter().position(|tier| tier == name);
    let graded: Vec<Graded> = graded_names
        .iter()
        .filter_map(|(prompt_tokens, chosen, correct)| {
            Some(Graded {
                prompt_tokens: *prompt_tokens,
                chosen: rank(chosen)?,
                correct: rank(correct)?,
            })
        })
        .collect();
    let length_baseline = length_baseline(&graded, tiers.len());

    let mut cumulative_requests = 0;
    let windows: Vec<WindowReport> = by_window
        .iter()
        .map(|(&start_ms, tally)| {
            cumulative_requests += tally.requests;
            WindowReport {
                start_ms,
                end_ms: start_ms.saturating_add(window_ms),
                start: window::utc_label(start_ms, window_ms),
                cumulative_requests,
                summary: tally.summary(&tiers),
            }
        })
        .collect();
    let totals = totals.summary(&tiers);
    let trend = trend(&windows);
    Ok(Report {
        inputs: Inputs {
            logs: logs
                .iter()
                .map(|log| log.path().display().to_string())
                .collect(),
            records: totals.requests,
            lines_not_records,
            feedback_rows: labels.rows,
            feedback_unmatched: labels.unmatched,
            feedback_ambiguous: labels.ambiguous,
        },
        window: window::format_window(window_ms),
        window_ms,
        verdicts: verdicts(&totals, &trend),
        tiers,
        windows,
        totals,
        length_baseline,
        trend,
    })
}

#[cfg(test)]
mod tests;
