//! The best quality thresholds on a score can reach within a cost budget, per score: the issue's
//! RouterBench target reads "95% of always-top-tier quality at no more than 30% of its cost", and
//! this puts the router, prompt length and the other-models reference side by side against it. The
//! thresholds are searched on the same rows they are scored on ([`calibrate::calibrate`], every
//! percentile), so each number is the best that score allows here, not an out-of-sample one.

use serde::Serialize;

use crate::calibrate::{self, Routed, Target, THRESHOLD_QUANTILES_DEFAULT};
use crate::dataset::Row;

/// The budget reported, relative to always-top-tier cost.
pub const MAX_COST: f64 = 0.3;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WithinBudget {
    /// Relative to always-top-tier cost.
    pub max_cost: f64,
    /// Quality relative to always-top-tier, at the best thresholds on each score; None when no
    /// thresholds keep within the budget.
    pub router: Option<f64>,
    pub prompt_length: Option<f64>,
    pub other_models_reference: Option<f64>,
}

/// The best relative quality any thresholds on `scores` (one per row) reach within `max_cost` over
/// the config's tiers (`tiers`, cheapest first; a tier a row lacks counts as the next dearer one).
pub fn best_quality(rows: &[&Row], scores: &[f64], tiers: &[String], max_cost: f64) -> Option<f64> {
    let unit = ranks_in_unit_interval(scores);
    let routed: Vec<Routed> = rows
        .iter()
        .zip(unit)
        .map(|(row, score)| {
            let outcomes: Option<Vec<(f64, f64)>> = tiers
                .iter()
                .map(|tier| {
                    let outcome = row.outcome_for(tier)?;
                    Some((outcome.quality, outcome.cost_usd))
                })
                .collect();
            let (quality, cost) = outcomes?.into_iter().unzip();
            Some(Routed {
                score,
                quality,
                cost,
            })
        })
        .collect::<Option<_>>()?;
    let point = calibrate::calibrate(
        &routed,
        tiers,
        Target::MaxCost(max_cost),
        THRESHOLD_QUANTILES_DEFAULT,
    )
    .ok()?;
    Some(point.relative_quality())
}

/// Each score's place among the distinct scores, spread over (0, 1): the thresholds search works on
/// probabilities, and only the order (ties included) of a score like a prompt length matters.
fn ranks_in_unit_interval(scores: &[f64]) -> Vec<f64> {
    let mut distinct: Vec<f64> = scores.iter().copied().filter(|s| s.is_finite()).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    let steps = (distinct.len() + 1) as f64;
    scores
        .iter()
        .map(|score| {
            let rank = distinct.partition_point(|value| value < score);
            (rank + 1) as f64 / steps
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baselines::tests::row;

    /// Two rows only frontier answers, two small answers too; small costs 1, frontier 10.
    fn rows() -> Vec<Row> {
        let needs = [true, false, true, false];
        needs
            .iter()
            .enumerate()
            .map(|(i, &needs)| {
                let small = if needs { 0.0 } else { 1.0 };
                row(
                    &format!("r{i}"),
                    "text",
                    &[("small", small, 1.0), ("frontier", 1.0, 10.0)],
                )
            })
            .collect()
    }

    #[test]
    fn the_best_thresholds_within_the_budget_follow_the_score() {
        let rows = rows();
        let rows: Vec<&Row> = rows.iter().collect();
        let tiers = ["small".to_string(), "frontier".to_string()];
        // 60% of always-frontier's 40 buys the two rows that need frontier: full quality.
        let right = [0.9, 0.1, 0.8, 0.2];
        assert_eq!(best_quality(&rows, &right, &tiers, 0.6), Some(1.0));
        // The same order as prompt lengths in tokens: the same answer.
        let lengths = [900.0, 12.0, 850.0, 40.0];
        assert_eq!(best_quality(&rows, &lengths, &tiers, 0.6), Some(1.0));
        // The reverse order spends the budget on rows small answers: half the quality.
        let wrong = [0.1, 0.9, 0.2, 0.8];
        assert_eq!(best_quality(&rows, &wrong, &tiers, 0.6), Some(0.5));
        // Below always-small's cost nothing fits.
        assert_eq!(best_quality(&rows, &right, &tiers, 0.05), None);
    }

    #[test]
    fn ranks_keep_order_and_ties_inside_the_unit_interval() {
        let ranks = ranks_in_unit_interval(&[120.0, 7.0, 120.0, 3000.0]);
        assert_eq!(ranks, [0.5, 0.25, 0.5, 0.75]);
    }
}
