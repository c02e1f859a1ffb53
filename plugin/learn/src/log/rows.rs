//! Routing-dataset rows from decision records: what the traffic says about which tiers could answer
//! each logged request, so `triage train --from-log` learns from live traffic as from a dataset.
//!
//! Tiers are ordered cheapest first, and a tier that answers well is assumed to have dearer tiers that
//! would too. The first rule that applies labels a record, strongest first:
//! 1. feedback names the correct tier C: tiers cheaper than C quality 0, C and dearer 1;
//! 2. an override {from, to} with from != to: a caller corrected triage, `to` is taken as C. Only
//!    a caller the gateway verified (the record's `caller`) teaches the router; a record with an
//!    override and no verified caller is skipped whole, since whoever forged the override also
//!    chose the tier that served it;
//! 3. escalations for a weak answer that ended in a 2xx answer: every tier up to the dearest one
//!    whose answer was dropped failed (0), the final `to` and dearer tiers answer (1), tiers skipped
//!    in between are unknown. A step for a tier that was down (refused, reset, timed out, 429, 5xx)
//!    or skipped by its open circuit breaker says nothing about the request: it is ignored;
//! 4. served by tier T with a 2xx answer and no complaint: T and dearer 1, cheaper tiers unknown.
//!
//! Rules 3 and 4 read who answered from the record's serving tier (the cluster Envoy says served
//! it), not from where triage routed: when the route table sent a request elsewhere, the answer
//! judged is that tier's. An answer from a cluster no tier names says nothing about any tier.
//!
//! The trainer's label is "the row's cheapest tier fails where its dearest succeeds", read from the
//! cheapest and dearest tiers the row has ([`crate::train::label`]); so a row is kept only when both
//! the config's cheapest and dearest tiers have a known outcome. Otherwise rule 4 on a `mid` request
//! would say "the cheapest tier present (mid) suffices" and teach that the request is easy, when the
//! log says nothing about `small`.

use std::collections::BTreeMap;

use triage_core::{cause_judges_the_answer, Config, DecisionRecord};

use super::feedback::{Feedback, Labels};
use super::survey::{survey, Survey};
use super::{records, LogSource};
use crate::dataset::{Outcome, Row, DATASET_TIERS};
use crate::train::Source;

/// The only body format the trainer reads ([`crate::train::encode`]); a body of another API would
/// be read with the wrong parser and give features the filter never computes for it.
const TRAINED_API: &str = "openai_chat";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LabelRule {
    Feedback,
    Override,
    Escalation,
    Served,
}

impl LabelRule {
    pub const ALL: [LabelRule; 4] = [
        LabelRule::Feedback,
        LabelRule::Override,
        LabelRule::Escalation,
        LabelRule::Served,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LabelRule::Feedback => "feedback",
            LabelRule::Override => "override",
            LabelRule::Escalation => "escalation",
            LabelRule::Served => "served",
        }
    }

    pub fn from_name(name: &str) -> Option<LabelRule> {
        LabelRule::ALL.into_iter().find(|rule| rule.name() == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    NoRequestBody,
    OtherApi,
    UnknownTier,
    NoSuccess,
    NoLabelInformation,
    Unpriced,
    UnverifiedOverride,
    RuleNotUsed,
    UnknownServer,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::NoRequestBody => "without a request body",
            SkipReason::OtherApi => "of an API other than openai_chat",
            SkipReason::UnknownTier => "naming a tier the config lacks",
            SkipReason::NoSuccess => "without a 2xx answer or a correction",
            SkipReason::NoLabelInformation => {
                "without label information (cheapest or dearest tier unknown)"
            }
            SkipReason::Unpriced => "with a tier neither the config nor the record prices",
            SkipReason::UnverifiedOverride => "with an override from no verified caller",
            SkipReason::RuleNotUsed => "labelled only by a rule left out (--label-rules)",
            SkipReason::UnknownServer => "answered by a cluster no tier names",
        }
    }
}

/// What a record says of each tier (cheapest first): quality 0 or 1, None when unknown.
#[derive(Clone, Debug, PartialEq)]
pub struct Labelled {
    pub rule: LabelRule,
    pub quality: Vec<Option<f64>>,
}

fn rank(tiers: &[&str], tier: &str) -> Result<usize, SkipReason> {
    tiers
        .iter()
        .position(|known| *known == tier)
        .ok_or(SkipReason::UnknownTier)
}

/// Tiers cheaper than `first_good` fail, it and dearer ones answer.
fn good_from(first_good: usize, tiers: usize) -> Vec<Option<f64>> {
    (0..tiers)
        .map(|tier| Some(if tier < first_good { 0.0 } else { 1.0 }))
        .collect()
}

fn answered(record: &DecisionRecord) -> bool {
    record
        .status
        .is_some_and(|status| (200..300).contains(&status))
}

/// Applies the label rules to one record; `correct_tier` is its feedback, if any.
pub fn label(
    record: &DecisionRecord,
    correct_tier: Option<&str>,
    tiers: &[&str],
) -> Result<Labelled, SkipReason> {
    let labelled = if let Some(correct) = correct_tier {
        Labelled {
            rule: LabelRule::Feedback,
            quality: good_from(rank(tiers, correct)?, tiers.len()),
        }
    } else if record.override_.is_some() && record.caller.is_none() {
        return Err(SkipReason::UnverifiedOverride);
    } else if let Some(corrected) = record
        .override_
        .as_ref()
        .filter(|corrected| corrected.from != corrected.to)
    {
        Labelled {
            rule: LabelRule::Override,
            quality: good_from(rank(tiers, &corrected.to)?, tiers.len()),
        }
    } else if !answered(record) {
        return Err(SkipReason::NoSuccess);
    } else if let Some(last) = tried(record).last() {
        let mut dearest_failed = 0;
        for escalation in tried(record) {
            let failed = record
                .dropped_by(escalation)
                .ok_or(SkipReason::UnknownServer)?;
            dearest_failed = dearest_failed.max(rank(tiers, failed)?);
        }
        let answered_by = rank(tiers, &last.to)?;
        if answered_by <= dearest_failed {
            // A fall back to a cheaper tier says nothing about what a cheaper tier can answer.
            return Err(SkipReason::NoLabelInformation);
        }
        let quality = (0..tiers.len())
            .map(|tier| match tier {
                t if t <= dearest_failed => Some(0.0),
                t if t >= answered_by => Some(1.0),
                _ => None,
            })
            .collect();
        Labelled {
            rule: LabelRule::Escalation,
            quality,
        }
    } else {
        let serving = record.serving_tier().ok_or(SkipReason::UnknownServer)?;
        let served = rank(tiers, serving)?;
        let quality = (0..tiers.len())
            .map(|tier| (tier >= served).then_some(1.0))
            .collect();
        Labelled {
            rule: LabelRule::Served,
            quality,
        }
    };
    let extremes_known = tiers.len() >= 2
        && labelled.quality.first().is_some_and(Option::is_some)
        && labelled.quality.last().is_some_and(Option::is_some);
    if extremes_known {
        Ok(labelled)
    } else {
        Err(SkipReason::NoLabelInformation)
    }
}

/// What `tier` would have charged for the record's request, in USD: the config's price of the
/// record's tokens, else the cost the filter logged for that tier (served, top or decided).
pub fn tier_cost_usd(record: &DecisionRecord, tier: &str, config: &Config) -> Option<f64> {
    let priced = record
        .usage
        .as_ref()
        .zip(config.price(tier))
        .map(|(usage, price)| price.cost_micro_usd(usage));
    let logged = || {
        [
            (record.tier.as_str(), record.cost_micro_usd),
            (config.top_tier_name(), record.top_tier_cost_micro_usd),
            (record.decided_tier.as_str(), record.decided_cost_micro_usd),
        ]
        .into_iter()
        .find_map(|(name, cost)| cost.filter(|_| name == tier))
    };
    priced.or_else(logged).map(|micro_usd| micro_usd / 1e6)
}

/// One record as a training row, or why it cannot be one; `correct_tier` is its feedback, if any.
pub fn row(
    record: &DecisionRecord,
    source: &str,
    correct_tier: Option<&str>,
    config: &Config,
) -> Result<(Row, LabelRule), SkipReason> {
    let request = record.request.as_ref().ok_or(SkipReason::NoRequestBody)?;
    if record.api != TRAINED_API {
        return Err(SkipReason::OtherApi);
    }
    let tiers = config.tier_names();
    let labelled = label(record, correct_tier, &tiers)?;
    let mut outcomes = BTreeMap::new();
    for (tier, quality) in tiers.iter().zip(&labelled.quality) {
        let Some(quality) = *quality else { continue };
        let cost_usd = tier_cost_usd(record, tier, config).ok_or(SkipReason::Unpriced)?;
        let outcome = Outcome {
            // The log names only the served model; a tier's name says which one it would be.
            model: (*tier).to_string(),
            quality,
            cost_usd,
            // Another tier's cost is priced on the served answer's tokens, not its own answer's.
            cost_estimated: *tier != record.tier,
        };
        outcomes.insert((*tier).to_string(), outcome);
    }
    let row = Row {
        // The decision id is unique; a record without one (the filter's random source failed)
        // falls back to its request id.
        id: record
            .decision_id
            .clone()
            .unwrap_or_else(|| record.request_id.clone()),
        source: source.to_string(),
        request: request.get().to_string(),
        outcomes,
        all_models: BTreeMap::new(),
    };
    Ok((row, labelled.rule))
}

/// The rows of every log, one training source per log file, and what became of each record.
#[derive(Debug, Default)]
pub struct FromLog {
    pub sources: Vec<Source>,
    pub records: usize,
    pub lines_not_records: usize,
    pub by_rule: BTreeMap<LabelRule, usize>,
    pub skipped: BTreeMap<SkipReason, usize>,
    /// The feedback joined to the records: which rows labelled one, which matched none or several.
    pub feedback: Labels,
}

impl FromLog {
    pub fn rows(&self) -> usize {
        self.sources.iter().map(|source| source.rows.len()).sum()
    }

    /// Where the rows came from and what was left out, for a terminal.
    pub fn summary(&self) -> String {
        let rules: Vec<String> = LabelRule::ALL
            .iter()
            .map(|rule| {
                let count = self.by_rule.get(rule).copied().unwrap_or(0);
                format!("{} {count}", rule.name())
            })
            .collect();
        let mut out = format!(
            "from the log: {} rows of {} records ({} lines not records); by label rule: {}\n",
            self.rows(),
            self.records,
            self.lines_not_records,
            rules.join(", ")
        );
        let skipped: usize = self.skipped.values().sum();
        if skipped > 0 {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(reason, count)| format!("{count} {}", reason.describe()))
                .collect();
            out += &format!("skipped {skipped} records: {}\n", reasons.join(", "));
        }
        out
    }
}

/// The trainer reads outcomes only under its own tier names, cheapest first.
fn check_tier_names(tiers: &[&str]) -> Result<(), String> {
    let positions: Option<Vec<usize>> = tiers
        .iter()
        .map(|tier| DATASET_TIERS.iter().position(|known| known == tier))
        .collect();
    match positions {
        Some(positions) if positions.windows(2).all(|pair| pair[0] < pair[1]) => Ok(()),
        _ => Err(format!(
            "the config's tiers ({}) must be named among {}, in that order, to train on the log",
            tiers.join(", "),
            DATASET_TIERS.join(", ")
        )),
    }
}

/// Turns every record of every log into a training row where the rules allow.
pub fn rows_from_logs<L: LogSource>(
    logs: &[L],
    feedback: &Feedback,
    config: &Config,
) -> Result<FromLog, String> {
    rows_from_logs_by(logs, feedback, config, &LabelRule::ALL)
}

/// [`rows_from_logs`] with only the label rules in `rules`: an operator who does not trust labels
/// a client can provoke (escalations and quiet answers) keeps feedback and verified overrides alone.
/// A record whose strongest rule is left out is skipped, not labelled by a weaker one.
///
/// The logs are streamed: only the rows are kept. With feedback, a first pass counts the records its
/// rows name ([`survey`]), so a row naming records in two logs labels neither.
pub fn rows_from_logs_by<L: LogSource>(
    logs: &[L],
    feedback: &Feedback,
    config: &Config,
    rules: &[LabelRule],
) -> Result<FromLog, String> {
    check_tier_names(&config.tier_names())?;
    let survey = if feedback.is_empty() {
        Survey::default()
    } else {
        survey(logs, feedback)
    };
    let labels = feedback.join(&survey.keys);
    let mut from_log = FromLog::default();
    for (index, log) in logs.iter().enumerate() {
        let source = format!("log:{}", log.stem());
        let mut rows = Vec::new();
        let mut records =
            records::<L, DecisionRecord>(log, survey.extent(index)).map_err(|e| e.to_string())?;
        for record in &mut records {
            let record = record.map_err(|e| e.to_string())?;
            from_log.records += 1;
            match row(&record, &source, labels.correct_tier(&record), config) {
                Ok((_, rule)) if !rules.contains(&rule) => {
                    *from_log.skipped.entry(SkipReason::RuleNotUsed).or_default() += 1
                }
                Ok((row, rule)) => {
                    rows.push(row);
                    *from_log.by_rule.entry(rule).or_default() += 1;
                }
                Err(reason) => *from_log.skipped.entry(reason).or_default() += 1,
            }
        }
        from_log.lines_not_records += records.skipped_lines();
        if !rows.is_empty() {
            from_log.sources.push(Source {
                name: log.path().display().to_string(),
                rows,
            });
        }
    }
    from_log.feedback = labels;
    Ok(from_log)
}

/// The escalations where the cheaper tier answered this request, badly. A tier that was down
/// (refused, reset, timed out, rate-limited, a 5xx) or skipped by its open breaker says nothing
/// about what it can answer: an outage must not be learned as difficulty.
fn tried(record: &DecisionRecord) -> Vec<&triage_core::Escalation> {
    record
        .escalations
        .iter()
        .filter(|step| cause_judges_the_answer(&step.cause))
        .collect()
}

#[cfg(test)]
mod tests;
