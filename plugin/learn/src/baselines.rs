//! What a router is compared with: always one tier, a random mix, routing by prompt length, and the
//! oracle. Every value is an exact expectation over the rows (no simulation, no seed).

use triage_core::{parse_request, ApiFormat};

use crate::dataset::{Outcome, Row};

/// An error that names the row or tier that made an evaluation impossible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvalError(pub String);

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EvalError {}

/// Mean quality and mean cost (USD) per request of a policy.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Mean {
    pub quality: f64,
    pub cost: f64,
}

impl Mean {
    fn of(outcomes: impl Iterator<Item = (f64, f64)>) -> Mean {
        let (mut count, mut quality, mut cost) = (0usize, 0.0, 0.0);
        for (q, c) in outcomes {
            count += 1;
            quality += q;
            cost += c;
        }
        if count == 0 {
            return Mean::default();
        }
        Mean {
            quality: quality / count as f64,
            cost: cost / count as f64,
        }
    }

    /// `weight` of `self` and `1 - weight` of `other`.
    pub fn mix(self, other: Mean, weight: f64) -> Mean {
        Mean {
            quality: weight * self.quality + (1.0 - weight) * other.quality,
            cost: weight * self.cost + (1.0 - weight) * other.cost,
        }
    }
}

/// The outcome a decision for `tier` gets on `row` (that tier's, or the next dearer one present).
pub fn outcome<'r>(row: &'r Row, tier: &str) -> Result<&'r Outcome, EvalError> {
    row.outcome_for(tier).ok_or_else(|| {
        EvalError(format!(
            "row {}: no outcome for tier {tier:?} or any dearer tier",
            row.id
        ))
    })
}

/// The row's cheapest and dearest outcomes: the two ends of the score sweep.
pub fn extremes(row: &Row) -> Result<(&Outcome, &Outcome), EvalError> {
    let (cheapest, dearest) = row
        .extreme_tiers()
        .ok_or_else(|| EvalError(format!("row {}: no outcomes", row.id)))?;
    Ok((outcome(row, cheapest)?, outcome(row, dearest)?))
}

fn pair(outcome: &Outcome) -> (f64, f64) {
    (outcome.quality, outcome.cost_usd)
}

/// Every request to `tier`.
pub fn always(rows: &[Row], tier: &str) -> Result<Mean, EvalError> {
    let outcomes: Vec<_> = rows
        .iter()
        .map(|row| outcome(row, tier).map(pair))
        .collect::<Result<_, _>>()?;
    Ok(Mean::of(outcomes.into_iter()))
}

/// Every request to its row's cheapest (`dearest = false`) or dearest tier.
pub fn always_extreme(rows: &[Row], dearest: bool) -> Result<Mean, EvalError> {
    let outcomes: Vec<_> = rows
        .iter()
        .map(|row| extremes(row).map(|(weak, strong)| pair(if dearest { strong } else { weak })))
        .collect::<Result<_, _>>()?;
    Ok(Mean::of(outcomes.into_iter()))
}

/// Each request to the cheapest tier with the row's best quality.
pub fn oracle(rows: &[Row]) -> Result<Mean, EvalError> {
    let outcomes: Vec<_> = rows
        .iter()
        .map(|row| {
            let tier = row
                .oracle_tier()
                .ok_or_else(|| EvalError(format!("row {}: no outcomes", row.id)))?;
            outcome(row, tier).map(pair)
        })
        .collect::<Result<_, _>>()?;
    Ok(Mean::of(outcomes.into_iter()))
}

/// A random router between always-weak and always-strong whose expected cost is `cost`: it sends a
/// share `p = (cost - weak.cost) / (strong.cost - weak.cost)` of requests, chosen at random, to the
/// strong tier, so its expected quality is the same mix of the two. `p` is clamped to [0, 1] (a cost
/// outside the two ends can't be matched). Returns `p` and the mix.
pub fn random_at_cost(weak: Mean, strong: Mean, cost: f64) -> (f64, Mean) {
    let span = strong.cost - weak.cost;
    let share = if span.abs() > f64::EPSILON * strong.cost.abs().max(1.0) {
        ((cost - weak.cost) / span).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (share, strong.mix(weak, share))
}

/// The best random router over the always-tier policies `always` whose expected cost is at most
/// `cost`: a tier alone, or a random mix of two tiers at exactly that cost (the upper envelope of the
/// always-tier points on the cost-quality plane). When every tier costs more than `cost`, the
/// cheapest tier.
pub fn best_mix_at_cost(always: &[Mean], cost: f64) -> Mean {
    let mut best: Option<Mean> = None;
    let mut consider = |candidate: Mean| {
        let better = best.is_none_or(|b| {
            candidate.quality > b.quality
                || (candidate.quality == b.quality && candidate.cost < b.cost)
        });
        if better {
            best = Some(candidate);
        }
    };
    for low in always {
        if low.cost > cost {
            continue;
        }
        consider(*low);
        for high in always.iter().filter(|high| high.cost > cost) {
            let weight = (cost - low.cost) / (high.cost - low.cost);
            consider(high.mix(*low, weight));
        }
    }
    best.unwrap_or_else(|| {
        always
            .iter()
            .copied()
            .min_by(|a, b| a.cost.total_cmp(&b.cost))
            .unwrap_or_default()
    })
}

/// A random router with the given share per tier: the shares' mix of the always-tier policies.
pub fn random_at_shares(rows: &[Row], tiers: &[&str], shares: &[f64]) -> Result<Mean, EvalError> {
    let mut total = Mean::default();
    for (tier, share) in tiers.iter().zip(shares) {
        let always = always(rows, tier)?;
        total.quality += share * always.quality;
        total.cost += share * always.cost;
    }
    Ok(total)
}

/// Rows ranked by `keys` (ascending) fill `tiers` (cheapest first) in order, each tier taking its
/// share of the rows. The cut between two tiers may fall inside a group of equal keys, or between
/// two rows when `share * n` is fractional; each row of such a group then goes to each tier in
/// proportion to the group's overlap with the tier's span, the expectation over a random order.
pub fn by_rank(
    rows: &[Row],
    keys: &[f64],
    tiers: &[&str],
    shares: &[f64],
) -> Result<Mean, EvalError> {
    if rows.len() != keys.len() || tiers.len() != shares.len() {
        return Err(EvalError("by_rank: mismatched lengths".into()));
    }
    if rows.is_empty() {
        return Ok(Mean::default());
    }
    let n = rows.len() as f64;
    let mut bounds = Vec::with_capacity(tiers.len());
    let mut cumulative = 0.0;
    for share in shares {
        cumulative += share;
        bounds.push((cumulative * n).min(n));
    }
    if let Some(last) = bounds.last_mut() {
        *last = n;
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    let (mut quality, mut cost) = (0.0, 0.0);
    let mut start = 0;
    while start < order.len() {
        let mut end = start;
        while end < order.len() && keys[order[end]] == keys[order[start]] {
            end += 1;
        }
        let (low, high) = (start as f64, end as f64);
        let mut tier_low = 0.0;
        for (tier, &tier_high) in tiers.iter().zip(&bounds) {
            let overlap = (high.min(tier_high) - low.max(tier_low)).max(0.0);
            tier_low = tier_high;
            if overlap <= 0.0 {
                continue;
            }
            let weight = overlap / (high - low);
            for &index in &order[start..end] {
                let outcome = outcome(&rows[index], tier)?;
                quality += weight * outcome.quality;
                cost += weight * outcome.cost_usd;
            }
        }
        start = end;
    }
    Ok(Mean {
        quality: quality / n,
        cost: cost / n,
    })
}

/// Fewest other models (beside the tiers' own) a row needs for the other-models reference.
pub const MIN_OTHER_MODELS: usize = 3;

/// The other-models reference score of a row: the share of the models in its `all_models` that
/// answer none of its tiers that fail it, `1 - their mean quality`. It knows how other LLMs fared
/// on this exact item, which no router reading the text can, so it is not a deployable router: it
/// shows how far routing on the item's difficulty could go. None with fewer than
/// [`MIN_OTHER_MODELS`] other models.
pub fn other_models_failing(row: &Row) -> Option<f64> {
    let (mut models, mut quality) = (0usize, 0.0);
    for outcome in row.other_models() {
        models += 1;
        quality += outcome.quality;
    }
    (models >= MIN_OTHER_MODELS).then(|| 1.0 - quality / models as f64)
}

/// Prompt length: the text bytes of every system and conversation message of the request (OpenAI
/// chat, as datasets hold it), or the body's length when it does not parse.
pub fn prompt_length(row: &Row) -> f64 {
    match parse_request(ApiFormat::OpenAiChat, row.request.as_bytes()) {
        Ok(request) => {
            let system: usize = request.system.iter().map(|text| text.len()).sum();
            let messages: usize = request.messages.iter().map(|m| m.text_bytes()).sum();
            (system + messages) as f64
        }
        Err(_) => row.request.len() as f64,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A row with (tier, quality, cost) outcomes and a user message of `prompt`.
    pub(crate) fn row(id: &str, prompt: &str, outcomes: &[(&str, f64, f64)]) -> Row {
        let request =
            serde_json::json!({"model": "auto", "messages": [{"role": "user", "content": prompt}]});
        Row {
            id: id.into(),
            source: "test".into(),
            request: request.to_string(),
            outcomes: outcomes
                .iter()
                .map(|&(tier, quality, cost_usd)| {
                    let outcome = Outcome {
                        model: format!("{tier}-model"),
                        quality,
                        cost_usd,
                        cost_estimated: false,
                    };
                    (tier.to_string(), outcome)
                })
                .collect::<BTreeMap<_, _>>(),
            all_models: BTreeMap::new(),
        }
    }

    fn near(actual: Mean, quality: f64, cost: f64) -> bool {
        (actual.quality - quality).abs() < 1e-12 && (actual.cost - cost).abs() < 1e-12
    }

    fn three() -> Vec<Row> {
        vec![
            row(
                "easy",
                "hi",
                &[
                    ("small", 1.0, 1.0),
                    ("mid", 1.0, 3.0),
                    ("frontier", 1.0, 10.0),
                ],
            ),
            row(
                "middling",
                "hello there",
                &[
                    ("small", 0.0, 1.0),
                    ("mid", 1.0, 3.0),
                    ("frontier", 1.0, 10.0),
                ],
            ),
            row(
                "hard",
                "a much longer prompt",
                &[("small", 0.0, 1.0), ("frontier", 1.0, 10.0)],
            ),
        ]
    }

    #[test]
    fn always_tiers_use_the_next_dearer_tier() {
        let rows = three();
        assert!(near(always(&rows, "small").unwrap(), 1.0 / 3.0, 1.0));
        // "hard" has no mid: its mid decision counts as frontier.
        assert!(near(always(&rows, "mid").unwrap(), 1.0, 16.0 / 3.0));
        assert!(near(always(&rows, "frontier").unwrap(), 1.0, 10.0));
        assert!(always(&rows, "ultra").unwrap_err().0.contains("ultra"));
        assert!(near(always_extreme(&rows, false).unwrap(), 1.0 / 3.0, 1.0));
        assert!(near(always_extreme(&rows, true).unwrap(), 1.0, 10.0));
    }

    #[test]
    fn the_oracle_takes_the_cheapest_best_tier() {
        // small for easy, mid for middling, frontier for hard.
        assert!(near(oracle(&three()).unwrap(), 1.0, 14.0 / 3.0));
    }

    #[test]
    fn random_matches_the_cost_exactly() {
        let weak = Mean {
            quality: 0.2,
            cost: 1.0,
        };
        let strong = Mean {
            quality: 0.8,
            cost: 11.0,
        };
        let (share, mix) = random_at_cost(weak, strong, 3.5);
        assert!((share - 0.25).abs() < 1e-12);
        assert!(near(mix, 0.35, 3.5));
        assert_eq!(random_at_cost(weak, strong, 20.0).0, 1.0);
        assert_eq!(random_at_cost(weak, strong, 0.0).0, 0.0);
        assert_eq!(random_at_cost(weak, weak, 3.0).0, 0.0);
    }

    #[test]
    fn the_best_mix_is_on_the_upper_envelope() {
        let small = Mean {
            quality: 0.5,
            cost: 1.0,
        };
        let mid = Mean {
            quality: 0.7,
            cost: 2.0,
        };
        let frontier = Mean {
            quality: 0.8,
            cost: 10.0,
        };
        let tiers = [small, mid, frontier];
        // Mid and frontier half and half beats small and frontier (0.667) at a cost of 6.
        assert!(near(best_mix_at_cost(&tiers, 6.0), 0.75, 6.0));
        assert!(near(best_mix_at_cost(&tiers, 1.5), 0.6, 1.5));
        assert!(near(best_mix_at_cost(&tiers, 2.0), 0.7, 2.0));
        assert!(near(best_mix_at_cost(&tiers, 50.0), 0.8, 10.0));
        // Nothing is that cheap: the cheapest tier.
        assert!(near(best_mix_at_cost(&tiers, 0.5), 0.5, 1.0));
        // A dearer but worse tier is never mixed in.
        let worse = Mean {
            quality: 0.6,
            cost: 3.0,
        };
        assert!(near(best_mix_at_cost(&[small, mid, worse], 3.0), 0.7, 2.0));
    }

    #[test]
    fn ranks_fill_the_tiers_in_order_with_ties_and_fractions_split() {
        let rows = three();
        let tiers = ["small", "mid", "frontier"];
        let keys: Vec<f64> = rows.iter().map(prompt_length).collect();
        assert_eq!(keys, vec![2.0, 11.0, 20.0]);
        // One row per tier, shortest to small: easy small, middling mid, hard frontier = the oracle.
        let third = 1.0 / 3.0;
        let ranked = by_rank(&rows, &keys, &tiers, &[third, third, third]).unwrap();
        assert!(near(ranked, 1.0, 14.0 / 3.0));
        // All keys tied: every row gets each tier by its share, the same as random at those shares.
        let shares = [0.5, 0.0, 0.5];
        let tied = by_rank(&rows, &[7.0; 3], &tiers, &shares).unwrap();
        let random = random_at_shares(&rows, &tiers, &shares).unwrap();
        assert!(
            near(tied, random.quality, random.cost),
            "{tied:?} {random:?}"
        );
        // Half a row: a share of 1/2 of three rows sends easy and half of middling to small.
        let half = by_rank(&rows, &keys, &["small", "frontier"], &[0.5, 0.5]).unwrap();
        assert!(near(
            half,
            (1.0 + 0.5 + 1.0) / 3.0,
            (1.0 + 5.5 + 10.0) / 3.0
        ));
    }

    #[test]
    fn the_reference_counts_only_models_that_answer_no_tier() {
        let mut with_others = row("x", "abc", &[("small", 0.0, 1.0), ("frontier", 1.0, 9.0)]);
        assert_eq!(other_models_failing(&with_others), None);
        let outcome = |quality| crate::dataset::ModelOutcome {
            quality,
            cost_usd: 1.0,
        };
        // The tier models are left out however they fared; two others are too few.
        with_others.all_models = [
            ("small-model", outcome(0.0)),
            ("frontier-model", outcome(1.0)),
            ("a", outcome(1.0)),
            ("b", outcome(0.0)),
        ]
        .into_iter()
        .map(|(model, outcome)| (model.to_string(), outcome))
        .collect();
        assert_eq!(other_models_failing(&with_others), None);
        with_others.all_models.insert("c".into(), outcome(0.5));
        with_others.all_models.insert("d".into(), outcome(0.0));
        assert_eq!(other_models_failing(&with_others), Some(1.0 - 1.5 / 4.0));
    }

    #[test]
    fn prompt_length_falls_back_to_the_body() {
        let mut broken = row("x", "abc", &[("small", 1.0, 1.0)]);
        assert_eq!(prompt_length(&broken), 3.0);
        broken.request = "not json".into();
        assert_eq!(prompt_length(&broken), 8.0);
    }
}
