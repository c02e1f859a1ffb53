//! Router quality metrics for one weak (cheapest) and one strong (dearest) tier, as RouteLLM defines
//! them (Ong et al. 2024, `routellm/evals/evaluate.py`):
//!
//! - The sweep: rows sorted by score, highest first; the first `k` go to the strong tier, the rest to
//!   the weak one, for every `k` from 0 to n. Quality and cost are means over all rows.
//! - PGR (performance gap recovered) at a share of strong calls `s`:
//!   `(q(s) - q_weak_all) / (q_strong_all - q_weak_all)`, where `q_weak_all` and `q_strong_all` are the
//!   mean qualities of always-weak and always-strong. 0 at `s = 0`, 1 at `s = 1`.
//! - APGR: the mean PGR over the sweep, `∫₀¹ PGR(s) ds`.
//! - CPT(x) (call-performance threshold): the smallest share of strong calls at which PGR reaches x.
//!
//! Beside them, [`apgr_by_cost`] integrates PGR over the mean cost instead of the share of calls.
//!
//! Ties: rows with equal scores can't be ordered by the router, so within a tied group the curve is
//! the expectation over a random order of the group, which is linear between the group's ends. The
//! curve is therefore piecewise linear with one vertex per tied-group boundary and is exact at every
//! integer number of strong calls. APGR integrates that curve exactly (the trapezoid rule over its
//! vertices); CPT interpolates linearly on it. RouteLLM samples the curve at 11 score deciles and
//! applies the trapezoid rule to those, which approximates the same integral from below for a concave
//! curve; this module uses every row instead. A router with a constant score (or a random one) has
//! the straight line PGR(s) = s: APGR 0.5, CPT(x) = x.

use std::cmp::Ordering;

use serde::Serialize;

/// Quality gains at or below this count as no gain (qualities may be fractional).
pub const LABEL_EPSILON: f64 = 1e-9;

/// One row seen by a 2-tier router: its score (higher = send to the strong tier), and the qualities of
/// the cheapest (weak) and dearest (strong) tiers, and their costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    pub score: f64,
    pub q_weak: f64,
    pub q_strong: f64,
    pub c_weak: f64,
    pub c_strong: f64,
}

impl Scored {
    /// The training label: the weak tier fails where the strong one succeeds.
    pub fn label(&self) -> bool {
        needs_strong(self.q_weak, self.q_strong)
    }
}

/// 1 when the dearer tier's quality beats the cheaper one's: `q_strong - q_weak > 1e-9`.
pub fn needs_strong(q_weak: f64, q_strong: f64) -> bool {
    q_strong - q_weak > LABEL_EPSILON
}

/// One vertex of the sweep: share of strong calls, mean quality and mean cost per request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SweepPoint {
    pub share_strong: f64,
    pub quality: f64,
    pub cost: f64,
}

/// The sweep's vertices, from 0% to 100% strong calls: one at the start and one after each tied group
/// of scores (highest first). Between two vertices the curve is linear. Empty when `rows` is.
pub fn sweep(rows: &[Scored]) -> Vec<SweepPoint> {
    if rows.is_empty() {
        return Vec::new();
    }
    let mut sorted: Vec<&Scored> = rows.iter().collect();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    // Totals summed in the sorted order, so the last vertex equals always-strong exactly.
    let sum = |value: fn(&Scored) -> f64| sorted.iter().map(|row| value(row)).sum::<f64>();
    let (q_weak_total, c_weak_total) = (sum(|r| r.q_weak), sum(|r| r.c_weak));
    let n = sorted.len() as f64;
    let point = |strong: usize, prefix: &[f64; 4]| SweepPoint {
        share_strong: strong as f64 / n,
        quality: (q_weak_total - prefix[0] + prefix[1]) / n,
        cost: (c_weak_total - prefix[2] + prefix[3]) / n,
    };
    // prefix = [q_weak, q_strong, c_weak, c_strong] summed over the rows sent to the strong tier.
    let mut prefix = [0.0; 4];
    let mut points = vec![point(0, &prefix)];
    let mut index = 0;
    while index < sorted.len() {
        let score = sorted[index].score;
        while index < sorted.len() && same_score(sorted[index].score, score) {
            let row = sorted[index];
            prefix[0] += row.q_weak;
            prefix[1] += row.q_strong;
            prefix[2] += row.c_weak;
            prefix[3] += row.c_strong;
            index += 1;
        }
        points.push(point(index, &prefix));
    }
    points
}

pub(crate) fn same_score(a: f64, b: f64) -> bool {
    a == b || a.total_cmp(&b) == Ordering::Equal
}

/// Mean quality of always-weak and always-strong, or None when `rows` is empty.
fn extremes(points: &[SweepPoint]) -> Option<(f64, f64)> {
    Some((points.first()?.quality, points.last()?.quality))
}

/// PGR as the share of strong calls sweeps 0..=100% (rows sorted by score, highest to strong first,
/// ties broken by averaging over the tied group), RouteLLM's definition
/// PGR = (q - q_weak_all) / (q_strong_all - q_weak_all). The vertices of the piecewise-linear curve;
/// empty when there are no rows or always-strong and always-weak have the same quality.
pub fn pgr_curve(rows: &[Scored]) -> Vec<(f64, f64)> {
    let points = sweep(rows);
    let Some((q_weak, q_strong)) = extremes(&points) else {
        return Vec::new();
    };
    let gap = q_strong - q_weak;
    if gap.abs() <= LABEL_EPSILON {
        return Vec::new();
    }
    points
        .iter()
        .map(|point| (point.share_strong, (point.quality - q_weak) / gap))
        .collect()
}

/// Mean PGR over the sweep, `∫₀¹ PGR(s) ds` of the piecewise-linear curve (exact trapezoid rule over
/// its vertices); None when always-strong and always-weak have the same quality.
pub fn apgr(rows: &[Scored]) -> Option<f64> {
    let curve = pgr_curve(rows);
    if curve.is_empty() {
        return None;
    }
    Some(
        curve
            .windows(2)
            .map(|pair| (pair[1].0 - pair[0].0) * (pair[0].1 + pair[1].1) / 2.0)
            .sum(),
    )
}

/// APGR over cost instead of calls: `∫ PGR dx` along the same sweep, where x is the mean cost per
/// request scaled so that always-weak is 0 and always-strong is 1. Not RouteLLM's: when costs vary
/// per row (long prompts cost more), a score that sends the expensive rows to the strong tier first
/// recovers quality per call but not per dollar, and this tells them apart. Exact over the vertices
/// (within a tied group cost and quality are both linear); a random router scores 0.5. None when the
/// tiers' mean qualities or mean costs are equal.
pub fn apgr_by_cost(rows: &[Scored]) -> Option<f64> {
    let points = sweep(rows);
    let (first, last) = (points.first()?, points.last()?);
    let (quality_gap, cost_gap) = (last.quality - first.quality, last.cost - first.cost);
    if quality_gap.abs() <= LABEL_EPSILON || cost_gap.abs() <= f64::EPSILON * last.cost.abs() {
        return None;
    }
    let scaled = |point: &SweepPoint| {
        (
            (point.cost - first.cost) / cost_gap,
            (point.quality - first.quality) / quality_gap,
        )
    };
    Some(
        points
            .windows(2)
            .map(|pair| {
                let ((x0, y0), (x1, y1)) = (scaled(&pair[0]), scaled(&pair[1]));
                (x1 - x0) * (y0 + y1) / 2.0
            })
            .sum(),
    )
}

/// The smallest share of strong calls at which the PGR curve reaches `pgr_target` (0.5 = 50%),
/// interpolated linearly between vertices; None when the curve never reaches it or is undefined.
pub fn cpt(rows: &[Scored], pgr_target: f64) -> Option<f64> {
    let curve = pgr_curve(rows);
    let first = curve.first()?;
    if first.1 >= pgr_target {
        return Some(first.0);
    }
    curve.windows(2).find_map(|pair| {
        let ((s0, p0), (s1, p1)) = (pair[0], pair[1]);
        (p0 < pgr_target && p1 >= pgr_target)
            .then(|| s0 + (s1 - s0) * (pgr_target - p0) / (p1 - p0))
    })
}

/// ROC AUC of the score against the label (`needs_strong`): the probability that a random positive
/// row scores above a random negative one, ties counting one half. None without both classes.
pub fn auc(rows: &[Scored]) -> Option<f64> {
    let mut sorted: Vec<&Scored> = rows.iter().collect();
    sorted.sort_by(|a, b| a.score.total_cmp(&b.score));
    let positives = sorted.iter().filter(|row| row.label()).count();
    let negatives = sorted.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    // Mann-Whitney U from the positives' ranks, tied scores sharing their mean rank.
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < sorted.len() {
        let mut end = start;
        while end < sorted.len() && same_score(sorted[end].score, sorted[start].score) {
            end += 1;
        }
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = sorted[start..end].iter().filter(|row| row.label()).count();
        positive_rank_sum += mean_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four rows: A and B need the strong tier, C is answered by both, D by neither.
    /// Always-weak quality 0.25, always-strong 0.75.
    fn four(scores: [f64; 4]) -> Vec<Scored> {
        let outcomes = [(0.0, 1.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0)];
        scores
            .iter()
            .zip(outcomes)
            .map(|(&score, (q_weak, q_strong))| Scored {
                score,
                q_weak,
                q_strong,
                c_weak: 1.0,
                c_strong: 10.0,
            })
            .collect()
    }

    fn close(actual: Option<f64>, expected: Option<f64>) -> bool {
        match (actual, expected) {
            (Some(a), Some(e)) => (a - e).abs() < 1e-12,
            (None, None) => true,
            _ => false,
        }
    }

    #[test]
    fn apgr_cpt_and_auc_on_hand_computed_routers() {
        // (name, scores of A B C D, APGR, CPT(50%), CPT(80%), AUC)
        let cases = [
            // PGR at k = 0..4 strong calls: 0, .5, 1, 1, 1 -> .25 * (.25 + .75 + 1 + 1).
            ("perfect", [0.9, 0.8, 0.2, 0.1], 0.75, 0.25, 0.4, 1.0),
            // Order D C B A: 0, 0, 0, .5, 1 -> .25 * (0 + 0 + .25 + .75).
            ("reversed", [0.1, 0.2, 0.8, 0.9], 0.25, 0.75, 0.9, 0.0),
            // One tied group: the straight line.
            ("constant", [0.5; 4], 0.5, 0.5, 0.8, 0.5),
            // B and C tied: vertices (0,0) (.25,.5) (.75,1) (1,1); the mean of the two orders
            // (.75 and .625). AUC: pairs AC AD BD win, BC ties -> 3.5 / 4.
            ("ties", [0.9, 0.5, 0.5, 0.1], 0.6875, 0.25, 0.55, 0.875),
        ];
        for (name, scores, apgr_expected, cpt50, cpt80, auc_expected) in cases {
            let rows = four(scores);
            assert!(
                close(apgr(&rows), Some(apgr_expected)),
                "{name} apgr {:?}",
                apgr(&rows)
            );
            assert!(
                close(cpt(&rows, 0.5), Some(cpt50)),
                "{name} cpt50 {:?}",
                cpt(&rows, 0.5)
            );
            assert!(
                close(cpt(&rows, 0.8), Some(cpt80)),
                "{name} cpt80 {:?}",
                cpt(&rows, 0.8)
            );
            assert!(
                close(auc(&rows), Some(auc_expected)),
                "{name} auc {:?}",
                auc(&rows)
            );
            let curve = pgr_curve(&rows);
            assert_eq!(curve.first(), Some(&(0.0, 0.0)), "{name}");
            assert_eq!(curve.last(), Some(&(1.0, 1.0)), "{name}");
        }
    }

    #[test]
    fn ties_do_not_depend_on_input_order() {
        let mut rows = four([0.9, 0.5, 0.5, 0.1]);
        let forward = pgr_curve(&rows);
        rows.swap(1, 2);
        assert_eq!(pgr_curve(&rows), forward);
        assert_eq!(
            forward,
            vec![(0.0, 0.0), (0.25, 0.5), (0.75, 1.0), (1.0, 1.0)]
        );
    }

    #[test]
    fn a_random_score_is_the_diagonal_for_any_data() {
        // A constant score is what a random router gives in expectation: PGR(s) = s.
        let rows: Vec<Scored> = (0..37)
            .map(|i| Scored {
                score: 0.3,
                q_weak: f64::from(i % 3 == 0),
                q_strong: f64::from(i % 5 != 0),
                c_weak: 0.5,
                c_strong: 2.0,
            })
            .collect();
        assert!(close(apgr(&rows), Some(0.5)));
        assert!(close(cpt(&rows, 0.8), Some(0.8)));
        assert!(close(cpt(&rows, 0.0), Some(0.0)));
    }

    #[test]
    fn undefined_when_the_tiers_are_equally_good_or_there_are_no_rows() {
        let equal: Vec<Scored> = four([0.9, 0.8, 0.2, 0.1])
            .into_iter()
            .map(|row| Scored {
                q_strong: row.q_weak,
                ..row
            })
            .collect();
        assert!(pgr_curve(&equal).is_empty());
        assert_eq!(apgr(&equal), None);
        assert_eq!(cpt(&equal, 0.5), None);
        // Every row has the same label: no AUC.
        assert_eq!(auc(&equal), None);
        assert_eq!(apgr(&[]), None);
        assert!(sweep(&[]).is_empty());
        // Out of reach: the curve never goes above 1 here.
        assert_eq!(cpt(&four([0.9, 0.8, 0.2, 0.1]), 1.01), None);
    }

    #[test]
    fn the_sweep_carries_mean_quality_and_cost() {
        let rows = four([0.9, 0.8, 0.2, 0.1]);
        let points = sweep(&rows);
        assert_eq!(points.len(), 5);
        let expected = [
            (0.0, 0.25, 1.0),
            (0.25, 0.5, 3.25),
            (0.5, 0.75, 5.5),
            (0.75, 0.75, 7.75),
            (1.0, 0.75, 10.0),
        ];
        for (point, (share, quality, cost)) in points.iter().zip(expected) {
            assert!((point.share_strong - share).abs() < 1e-12);
            assert!((point.quality - quality).abs() < 1e-12);
            assert!((point.cost - cost).abs() < 1e-12);
        }
    }

    #[test]
    fn a_strong_tier_that_hurts_some_rows_bends_the_curve_above_one() {
        // Two rows gain with the strong tier, one loses with it: sending only the gainers recovers
        // twice the net gap.
        let rows = [
            Scored {
                score: 0.9,
                q_weak: 0.0,
                q_strong: 1.0,
                c_weak: 1.0,
                c_strong: 2.0,
            },
            Scored {
                score: 0.8,
                q_weak: 0.0,
                q_strong: 1.0,
                c_weak: 1.0,
                c_strong: 2.0,
            },
            Scored {
                score: 0.1,
                q_weak: 1.0,
                q_strong: 0.0,
                c_weak: 1.0,
                c_strong: 2.0,
            },
        ];
        // q_weak_all = 1/3, q_strong_all = 2/3; PGR at k = 0..3: 0, 1, 2, 1.
        let curve = pgr_curve(&rows);
        let pgrs: Vec<f64> = curve.iter().map(|(_, pgr)| *pgr).collect();
        for (actual, expected) in pgrs.iter().zip([0.0, 1.0, 2.0, 1.0]) {
            assert!((actual - expected).abs() < 1e-12, "{pgrs:?}");
        }
        assert!(close(cpt(&rows, 1.5), Some(0.5)));
        // Trapezoid over thirds: (0 + 1)/2 + (1 + 2)/2 + (2 + 1)/2 = 3.5, / 3.
        assert!(close(apgr(&rows), Some(3.5 / 3.0)));
    }

    #[test]
    fn apgr_by_cost_weighs_each_call_by_what_it_costs() {
        // X gains from the strong tier for +2; Y doesn't, for +8. Mean costs: weak 1, strong 6.
        let rows = |x_score, y_score| {
            [
                Scored {
                    score: x_score,
                    q_weak: 0.0,
                    q_strong: 1.0,
                    c_weak: 1.0,
                    c_strong: 3.0,
                },
                Scored {
                    score: y_score,
                    q_weak: 1.0,
                    q_strong: 1.0,
                    c_weak: 1.0,
                    c_strong: 9.0,
                },
            ]
        };
        // X first: PGR 1 at cost (2 - 1) / 5 = 0.2, then flat: 0.2 * 0.5 + 0.8 * 1.
        assert!(close(apgr_by_cost(&rows(0.9, 0.1)), Some(0.9)));
        assert!(close(apgr(&rows(0.9, 0.1)), Some(0.75)));
        // Y first: PGR 0 until cost 0.8, then up to 1: 0.2 * 0.5.
        assert!(close(apgr_by_cost(&rows(0.1, 0.9)), Some(0.1)));
        assert!(close(apgr_by_cost(&rows(0.5, 0.5)), Some(0.5)));
        // Equal costs: the cost axis is the share axis.
        assert!(close(
            apgr_by_cost(&four([0.9, 0.5, 0.5, 0.1])),
            Some(0.6875)
        ));
        let free: Vec<Scored> = rows(0.9, 0.1)
            .iter()
            .map(|r| Scored {
                c_strong: 1.0,
                ..*r
            })
            .collect();
        assert_eq!(apgr_by_cost(&free), None);
    }

    #[test]
    fn labels_use_the_epsilon() {
        assert!(needs_strong(0.0, 1.0));
        assert!(!needs_strong(1.0, 1.0));
        assert!(!needs_strong(0.5, 0.5 + 1e-12));
        assert!(!needs_strong(1.0, 0.0));
    }
}
