//! Tier thresholds on the router's probability that meet a target stated in business terms, measured
//! on dataset rows whose quality and cost per tier are known.
//!
//! A row with probability `p` goes to the first tier whose threshold is `>= p` (the filter's
//! `max_score` rule), the last tier taking the rest. Candidate thresholds sit between the scores at
//! `quantiles` evenly spaced quantiles (plus 0 and 1); every strictly increasing choice of `tiers - 1`
//! of them is tried, each evaluated in O(tiers) from prefix sums over the rows sorted by score. Of the
//! choices that meet the target, the best by the other measure wins: the highest quality under a share
//! or cost cap, the lowest cost under a quality floor.

use std::fmt;
use std::str::FromStr;

use crate::dataset::Row;

/// Candidate quantiles per threshold by default (every percentile).
pub const THRESHOLD_QUANTILES_DEFAULT: usize = 101;

/// What an operator asks of the thresholds, relative to sending every call to the top (last) tier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Share of calls sent to the top tier `<= x`.
    MaxTopShare(f64),
    /// Mean cost `<= x ×` the always-top-tier cost.
    MaxCost(f64),
    /// Mean quality `>= x ×` the always-top-tier quality.
    MinQuality(f64),
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Target, String> {
        let usage = "expected max-top-share=X, max-cost=X or min-quality=X";
        let (kind, value) = text
            .split_once('=')
            .ok_or_else(|| format!("target `{text}`: {usage}"))?;
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| format!("target `{text}`: `{value}` is not a number"))?;
        if !(value.is_finite() && value >= 0.0) {
            return Err(format!("target `{text}`: the value must be a number >= 0"));
        }
        match kind.trim() {
            "max-top-share" if value <= 1.0 => Ok(Target::MaxTopShare(value)),
            "max-top-share" => Err(format!("target `{text}`: a share is at most 1")),
            "max-cost" => Ok(Target::MaxCost(value)),
            "min-quality" => Ok(Target::MinQuality(value)),
            _ => Err(format!("target `{text}`: {usage}")),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::MaxTopShare(x) => write!(f, "max-top-share={x}"),
            Target::MaxCost(x) => write!(f, "max-cost={x}"),
            Target::MinQuality(x) => write!(f, "min-quality={x}"),
        }
    }
}

/// One row as the thresholds see it: the router's probability and, per configured tier (cheapest
/// first), the quality and cost a decision for that tier gets.
#[derive(Clone, Debug, PartialEq)]
pub struct Routed {
    pub score: f64,
    pub quality: Vec<f64>,
    pub cost: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateError(pub String);

impl fmt::Display for CalibrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CalibrateError {}

/// Pairs rows with their scores and the outcome of each tier, by the next-dearer-tier rule
/// ([`Row::outcome_for`]); a row with no outcome for a tier is an error naming both.
pub fn routed_rows(
    rows: &[Row],
    scores: &[f64],
    tiers: &[String],
) -> Result<Vec<Routed>, CalibrateError> {
    if rows.len() != scores.len() {
        return Err(CalibrateError(format!(
            "{} rows but {} scores",
            rows.len(),
            scores.len()
        )));
    }
    rows.iter()
        .zip(scores)
        .map(|(row, &score)| {
            let mut routed = Routed {
                score,
                quality: Vec::with_capacity(tiers.len()),
                cost: Vec::with_capacity(tiers.len()),
            };
            for tier in tiers {
                let outcome = row.outcome_for(tier).ok_or_else(|| {
                    CalibrateError(format!(
                        "row {}: no outcome for tier `{tier}` nor a dearer one (dataset tiers: {})",
                        row.id,
                        row.outcomes.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })?;
                routed.quality.push(outcome.quality);
                routed.cost.push(outcome.cost_usd);
            }
            Ok(routed)
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
pub struct TierStats {
    pub name: String,
    /// Share of all calls sent to this tier.
    pub share: f64,
    /// Mean quality of the calls sent here (0 when none are).
    pub quality: f64,
    /// Mean cost per call of the calls sent here, in USD (0 when none are).
    pub cost: f64,
}

/// What a set of thresholds does on the rows.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatingPoint {
    pub thresholds: Vec<f64>,
    pub tiers: Vec<TierStats>,
    /// Mean quality and cost per call of the router.
    pub quality: f64,
    pub cost: f64,
    /// Mean quality and cost per call when every call goes to the top tier.
    pub top_quality: f64,
    pub top_cost: f64,
}

impl OperatingPoint {
    pub fn relative_quality(&self) -> f64 {
        ratio(self.quality, self.top_quality)
    }

    pub fn relative_cost(&self) -> f64 {
        ratio(self.cost, self.top_cost)
    }

    pub fn top_share(&self) -> f64 {
        self.tiers.last().map_or(0.0, |tier| tier.share)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "thresholds": self.thresholds,
            "quality": self.quality,
            "cost_usd": self.cost,
            "quality_vs_top": self.relative_quality(),
            "cost_vs_top": self.relative_cost(),
            "tiers": self.tiers.iter().map(|tier| serde_json::json!({
                "name": tier.name, "share": tier.share, "quality": tier.quality, "cost_usd": tier.cost,
            })).collect::<Vec<_>>(),
        })
    }

    /// The per-tier table and the totals relative to always-top-tier, for a terminal.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<12} {:>9} {:>7} {:>9} {:>12}\n",
            "tier", "max_score", "share", "quality", "cost/call"
        );
        for (index, tier) in self.tiers.iter().enumerate() {
            let threshold = self
                .thresholds
                .get(index)
                .map_or("-".to_string(), |t| format!("{t:.4}"));
            out += &format!(
                "{:<12} {:>9} {:>6.1}% {:>9.4} {:>12.3e}\n",
                tier.name,
                threshold,
                100.0 * tier.share,
                tier.quality,
                tier.cost
            );
        }
        let top = self.tiers.last().map_or("top", |tier| tier.name.as_str());
        out += &format!(
            "router: quality {:.4} ({:.1}% of always-{top} {:.4}), cost/call {:.3e} ({:.1}% of always-{top} {:.3e})\n",
            self.quality,
            100.0 * self.relative_quality(),
            self.top_quality,
            self.cost,
            100.0 * self.relative_cost(),
            self.top_cost
        );
        out
    }
}

fn ratio(value: f64, reference: f64) -> f64 {
    if reference == 0.0 {
        if value == 0.0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else {
        value / reference
    }
}

/// The tier a score goes to: the first whose threshold is `>= score`, else the last.
pub fn tier_of(score: f64, thresholds: &[f64]) -> usize {
    thresholds
        .iter()
        .position(|&max| score <= max)
        .unwrap_or(thresholds.len())
}

/// The operating point of given thresholds (one fewer than `names`).
pub fn evaluate(rows: &[Routed], names: &[String], thresholds: &[f64]) -> OperatingPoint {
    let tiers = names.len();
    let mut count = vec![0usize; tiers];
    let mut quality = vec![0.0; tiers];
    let mut cost = vec![0.0; tiers];
    for row in rows {
        let tier = tier_of(row.score, thresholds).min(tiers.saturating_sub(1));
        count[tier] += 1;
        quality[tier] += row.quality.get(tier).copied().unwrap_or(0.0);
        cost[tier] += row.cost.get(tier).copied().unwrap_or(0.0);
    }
    let n = rows.len().max(1) as f64;
    let top = tiers.saturating_sub(1);
    let mean_top = |values: fn(&Routed) -> &Vec<f64>| {
        rows.iter()
            .map(|row| values(row).get(top).copied().unwrap_or(0.0))
            .sum::<f64>()
            / n
    };
    OperatingPoint {
        thresholds: thresholds.to_vec(),
        tiers: names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let calls = count[index].max(1) as f64;
                TierStats {
                    name: name.clone(),
                    share: count[index] as f64 / n,
                    quality: quality[index] / calls,
                    cost: cost[index] / calls,
                }
            })
            .collect(),
        quality: quality.iter().sum::<f64>() / n,
        cost: cost.iter().sum::<f64>() / n,
        top_quality: mean_top(|row| &row.quality),
        top_cost: mean_top(|row| &row.cost),
    }
}

/// A place to cut the rows sorted by score: `position` rows go to tiers at or below it, and any
/// threshold strictly between `low` and `high` (the scores either side; 0 and 1 at the ends) makes
/// that cut. Only cuts between distinct scores are kept: a threshold can't split a tie.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Cut {
    position: usize,
    low: f64,
    high: f64,
}

fn candidate_cuts(sorted: &[f64], quantiles: usize) -> Vec<Cut> {
    let n = sorted.len();
    let steps = quantiles.max(2) - 1;
    let mut cuts: Vec<Cut> = Vec::new();
    for step in 0..=steps {
        let mut position = (step * n + steps / 2) / steps;
        while position > 0 && position < n && sorted[position] <= sorted[position - 1] {
            position += 1;
        }
        let low = if position == 0 {
            0.0
        } else {
            sorted[position - 1]
        };
        let high = sorted.get(position).copied().unwrap_or(1.0);
        let new = cuts.last().is_none_or(|last| position > last.position);
        if new && low.max(0.0) < high.min(1.0) {
            cuts.push(Cut {
                position,
                low: low.max(0.0),
                high: high.min(1.0),
            });
        }
    }
    cuts
}

/// The thresholds for chosen cuts (indices into `cuts`, non-decreasing): spread evenly inside each
/// cut's open interval, so thresholds sharing a cut (an empty tier between them) still increase.
fn thresholds_for(cuts: &[Cut], chosen: &[usize]) -> Vec<f64> {
    let mut thresholds = Vec::with_capacity(chosen.len());
    let mut start = 0;
    while start < chosen.len() {
        let end = start
            + chosen[start..]
                .iter()
                .take_while(|&&i| i == chosen[start])
                .count();
        let cut = cuts[chosen[start]];
        let shared = (end - start) as f64;
        for j in 0..end - start {
            thresholds.push(cut.low + (cut.high - cut.low) * (j as f64 + 1.0) / (shared + 1.0));
        }
        start = end;
    }
    thresholds
}

/// Thresholds meeting `target` with the best other measure; an error names the best value reachable
/// when none meet it.
pub fn calibrate(
    rows: &[Routed],
    names: &[String],
    target: Target,
    quantiles: usize,
) -> Result<OperatingPoint, CalibrateError> {
    let tiers = names.len();
    if tiers == 0 {
        return Err(CalibrateError("no tiers to calibrate".into()));
    }
    if rows.is_empty() {
        return Err(CalibrateError("no rows to calibrate on".into()));
    }
    if let Some(row) = rows
        .iter()
        .find(|row| row.quality.len() != tiers || row.cost.len() != tiers)
    {
        return Err(CalibrateError(format!(
            "a row has {} outcomes for {tiers} tiers",
            row.quality.len()
        )));
    }
    if rows.iter().any(|row| !row.score.is_finite()) {
        return Err(CalibrateError("a score is not finite".into()));
    }
    let mut sorted: Vec<&Routed> = rows.iter().collect();
    sorted.sort_by(|a, b| a.score.total_cmp(&b.score));
    let scores: Vec<f64> = sorted.iter().map(|row| row.score).collect();
    let n = sorted.len();
    // prefix[t][i]: sum over the i lowest-scored rows of tier t's quality (and cost).
    let prefix = |pick: fn(&Routed, usize) -> f64| -> Vec<Vec<f64>> {
        (0..tiers)
            .map(|tier| {
                let mut sums = Vec::with_capacity(n + 1);
                sums.push(0.0);
                let mut total = 0.0;
                for row in &sorted {
                    total += pick(row, tier);
                    sums.push(total);
                }
                sums
            })
            .collect()
    };
    let quality = prefix(|row, tier| row.quality[tier]);
    let cost = prefix(|row, tier| row.cost[tier]);
    let top_quality = quality[tiers - 1][n];
    let top_cost = cost[tiers - 1][n];
    let cuts = candidate_cuts(&scores, quantiles);

    // (quality, cost, top calls) summed over rows for the cut positions `chosen`.
    let measure = |chosen: &[usize]| -> (f64, f64, usize) {
        let (mut q, mut c, mut start) = (0.0, 0.0, 0);
        for tier in 0..tiers {
            let end = chosen.get(tier).map_or(n, |&i| cuts[i].position);
            q += quality[tier][end] - quality[tier][start];
            c += cost[tier][end] - cost[tier][start];
            if tier + 1 < tiers {
                start = end;
            }
        }
        (q, c, n - start)
    };
    let tolerance = 1e-9 * (1.0 + top_quality.abs() + top_cost.abs());
    let meets = |(q, c, top): (f64, f64, usize)| match target {
        Target::MaxTopShare(x) => top as f64 <= x * n as f64 + 1e-9,
        Target::MaxCost(x) => c <= x * top_cost + tolerance,
        Target::MinQuality(x) => q >= x * top_quality - tolerance,
    };
    let better = |(q, c, _): (f64, f64, usize), (bq, bc, _): (f64, f64, usize)| match target {
        Target::MinQuality(_) => c < bc - tolerance || (c <= bc + tolerance && q > bq + tolerance),
        _ => q > bq + tolerance || (q >= bq - tolerance && c < bc - tolerance),
    };

    let mut best: Option<(Vec<usize>, (f64, f64, usize))> = None;
    let mut closest: Option<(f64, f64, usize)> = None;
    let mut chosen = Vec::with_capacity(tiers - 1);
    let mut visit = |chosen: &[usize]| {
        let m = measure(chosen);
        let gap = match target {
            Target::MaxTopShare(_) => m.2 as f64,
            Target::MaxCost(_) => m.1,
            Target::MinQuality(_) => -m.0,
        };
        if closest.is_none_or(|c| {
            gap < match target {
                Target::MaxTopShare(_) => c.2 as f64,
                Target::MaxCost(_) => c.1,
                Target::MinQuality(_) => -c.0,
            }
        }) {
            closest = Some(m);
        }
        if meets(m) && best.as_ref().is_none_or(|(_, b)| better(m, *b)) {
            best = Some((chosen.to_vec(), m));
        }
    };
    combinations(cuts.len(), tiers - 1, 0, &mut chosen, &mut visit);

    match best {
        Some((chosen, _)) => Ok(evaluate(rows, names, &thresholds_for(&cuts, &chosen))),
        None => {
            let (q, c, top) = closest.unwrap_or((0.0, 0.0, n));
            let top_name = &names[tiers - 1];
            let best_reachable = match target {
                Target::MaxTopShare(_) => format!("{:.4} of calls", top as f64 / n as f64),
                Target::MaxCost(_) => format!("{:.4} of the cost", ratio(c, top_cost)),
                Target::MinQuality(_) => format!("{:.4} of the quality", ratio(q, top_quality)),
            };
            Err(CalibrateError(format!(
                "no thresholds meet {target} on {n} rows: the best reachable is {best_reachable} of always-{top_name}"
            )))
        }
    }
}

/// Calls `visit` with every non-decreasing choice of `k` indices below `m`.
fn combinations(
    m: usize,
    k: usize,
    from: usize,
    chosen: &mut Vec<usize>,
    visit: &mut dyn FnMut(&[usize]),
) {
    if chosen.len() == k {
        visit(chosen);
        return;
    }
    for index in from..m {
        chosen.push(index);
        combinations(m, k, index, chosen, visit);
        chosen.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["small", "mid", "frontier"].map(String::from).to_vec()
    }

    /// 1000 rows whose difficulty is the score: small answers the easiest 40%, mid the easiest 80%,
    /// frontier all but the hardest 5%; costs 1, 3 and 10.
    fn synthetic() -> Vec<Routed> {
        (0..1000)
            .map(|i| {
                let score = (i as f64 + 0.5) / 1000.0;
                let q = |limit: f64| if score < limit { 1.0 } else { 0.0 };
                Routed {
                    score,
                    quality: vec![q(0.4), q(0.8), q(0.95)],
                    cost: vec![1.0, 3.0, 10.0],
                }
            })
            .collect()
    }

    #[test]
    fn parses_targets_and_refuses_bad_ones() {
        assert_eq!("max-top-share=0.3".parse(), Ok(Target::MaxTopShare(0.3)));
        assert_eq!("max-cost=0.25".parse(), Ok(Target::MaxCost(0.25)));
        assert_eq!("min-quality=0.95".parse(), Ok(Target::MinQuality(0.95)));
        for bad in [
            "min-quality",
            "max-share=0.3",
            "max-cost=x",
            "max-top-share=1.5",
            "min-quality=-1",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
        assert_eq!(Target::MinQuality(0.95).to_string(), "min-quality=0.95");
    }

    #[test]
    fn a_quality_floor_gets_the_cheapest_thresholds_that_hold_it() {
        let rows = synthetic();
        let point = calibrate(&rows, &names(), Target::MinQuality(1.0), 101).unwrap();
        // The ideal cut: scores below 0.4 to small, below 0.8 to mid, the rest to frontier.
        assert!(
            (point.thresholds[0] - 0.4).abs() < 0.006,
            "{:?}",
            point.thresholds
        );
        assert!(
            (point.thresholds[1] - 0.8).abs() < 0.006,
            "{:?}",
            point.thresholds
        );
        assert!(point.relative_quality() >= 1.0);
        assert!((point.tiers[0].share - 0.4).abs() < 0.006);
        assert!((point.top_share() - 0.2).abs() < 0.006);
        // Cost: 0.4·1 + 0.4·3 + 0.2·10 = 3.6 of 10.
        assert!((point.relative_cost() - 0.36).abs() < 0.01);
        // A lower floor is cheaper still and still met.
        let lower = calibrate(&rows, &names(), Target::MinQuality(0.9), 101).unwrap();
        assert!(lower.relative_quality() >= 0.9 - 1e-12);
        assert!(lower.cost < point.cost);
    }

    #[test]
    fn share_and_cost_caps_are_met_with_the_most_quality() {
        let rows = synthetic();
        let share = calibrate(&rows, &names(), Target::MaxTopShare(0.1), 101).unwrap();
        assert!(share.top_share() <= 0.1 + 1e-12);
        // The best use of 10% frontier calls is the hardest rows mid can't answer.
        assert!(
            (share.thresholds[1] - 0.9).abs() < 0.006,
            "{:?}",
            share.thresholds
        );
        let cost = calibrate(&rows, &names(), Target::MaxCost(0.3), 101).unwrap();
        assert!(cost.relative_cost() <= 0.3 + 1e-12);
        let looser = calibrate(&rows, &names(), Target::MaxCost(0.5), 101).unwrap();
        assert!(looser.quality > cost.quality);
        // Evaluating the chosen thresholds again gives the same point.
        assert_eq!(evaluate(&rows, &names(), &cost.thresholds), cost);
        let table = cost.table();
        assert!(
            table.contains("frontier") && table.contains("% of always-frontier"),
            "{table}"
        );
    }

    #[test]
    fn an_impossible_target_is_an_error_naming_the_best_reachable() {
        let rows = synthetic();
        let error = calibrate(&rows, &names(), Target::MaxCost(0.05), 101).unwrap_err();
        assert!(error.0.contains("max-cost=0.05"), "{error}");
        assert!(error.0.contains("0.1000 of the cost"), "{error}");
        // Every call to the cheapest tier is reachable: both thresholds above every score.
        let cheapest = calibrate(&rows, &names(), Target::MaxCost(0.1), 101).unwrap();
        assert_eq!(cheapest.tiers[0].share, 1.0);
        assert!(cheapest.thresholds[0] < cheapest.thresholds[1] && cheapest.thresholds[1] < 1.0);
        let error = calibrate(&rows, &names(), Target::MinQuality(1.2), 101).unwrap_err();
        assert!(
            error.0.contains("of the quality of always-frontier"),
            "{error}"
        );
    }

    #[test]
    fn thresholds_route_by_the_filters_rule() {
        assert_eq!(tier_of(0.35, &[0.35, 0.65]), 0);
        assert_eq!(tier_of(0.36, &[0.35, 0.65]), 1);
        assert_eq!(tier_of(0.9, &[0.35, 0.65]), 2);
        // Ties are never split, and thresholds stay strictly increasing in [0, 1].
        let rows: Vec<Routed> = (0..100)
            .map(|i| Routed {
                score: if i < 60 { 0.5 } else { 0.7 },
                quality: vec![0.0, 1.0],
                cost: vec![1.0, 2.0],
            })
            .collect();
        let two = ["small", "frontier"].map(String::from).to_vec();
        let point = calibrate(&rows, &two, Target::MaxTopShare(0.5), 101).unwrap();
        assert!(point.top_share() <= 0.4 + 1e-12);
        assert!((point.top_share() - 0.4).abs() < 1e-12);
        assert!(point.thresholds[0] > 0.5 && point.thresholds[0] < 0.7);
    }

    #[test]
    fn outcomes_follow_the_next_dearer_tier_rule() {
        let line = r#"{"id":"a","source":"s","request":{},"outcomes":{"small":{"model":"s","quality":0.0,"cost_usd":1.0},"frontier":{"model":"f","quality":1.0,"cost_usd":9.0}}}"#;
        let dir = std::env::temp_dir().join(format!("triage-calibrate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.jsonl");
        std::fs::write(&path, line).unwrap();
        let rows = crate::dataset::read_rows(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let routed = routed_rows(&rows, &[0.5], &names()).unwrap();
        assert_eq!(routed[0].quality, vec![0.0, 1.0, 1.0]);
        assert_eq!(routed[0].cost, vec![1.0, 9.0, 9.0]);
        let error = routed_rows(&rows, &[0.5], &["ultra".to_string()]).unwrap_err();
        assert!(error.0.contains("tier `ultra`"), "{error}");
    }
}
