//! How much of an APGR is noise: a percentile bootstrap over rows (Efron and Tibshirani 1993, ch. 13).
//!
//! Each resample draws n rows with replacement; the APGR of a score on it is [`crate::metrics::apgr`]'s,
//! with each row counted as often as it was drawn. The 95% interval is the 2.5% and 97.5% percentiles
//! of the resampled APGRs. Two scores of the same rows (the router and prompt length) are resampled
//! together, so their difference is a paired bootstrap: row difficulty, which moves both, cancels.
//!
//! Rows are sorted by each score once; a resample is a count per row, and its APGR a walk over that
//! order, O(n) without a sort. The walk repeats [`crate::metrics::sweep`]'s arithmetic step for step, so a
//! resample that draws every row once gives `metrics::apgr` bit for bit.

use serde::Serialize;

use crate::metrics::{same_score, Scored, LABEL_EPSILON};
use crate::rng::SplitMix;

pub const DEFAULT_RESAMPLES: usize = 1000;
pub const DEFAULT_SEED: u64 = 1;
/// Two-sided coverage of every interval.
pub const LEVEL: f64 = 0.95;

/// How many resamples, from which seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Bootstrap {
    pub resamples: usize,
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Bootstrap {
        Bootstrap {
            resamples: DEFAULT_RESAMPLES,
            seed: DEFAULT_SEED,
        }
    }
}

impl std::fmt::Display for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "percentile bootstrap over rows, {} resamples, seed {}",
            self.resamples, self.seed
        )
    }
}

/// A 95% interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn width(&self) -> f64 {
        self.high - self.low
    }

    pub fn contains(&self, value: f64) -> bool {
        self.low <= value && value <= self.high
    }
}

/// One score's APGR minus another's on the same rows, and the paired interval of that difference.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Difference {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// The rows of one score in sweep order (highest score first, ties in input order as
/// [`crate::metrics::sweep`] has them), and where each tied group ends.
pub struct SweepOrder {
    rows: Vec<Scored>,
    /// The input index of each sorted row: counts are given per input row.
    input: Vec<usize>,
    group_ends: Vec<usize>,
}

impl SweepOrder {
    pub fn new(rows: &[Scored]) -> SweepOrder {
        let mut input: Vec<usize> = (0..rows.len()).collect();
        input.sort_by(|&a, &b| rows[b].score.total_cmp(&rows[a].score));
        let sorted: Vec<Scored> = input.iter().map(|&i| rows[i]).collect();
        let mut group_ends = Vec::new();
        for index in 1..=sorted.len() {
            if index == sorted.len() || !same_score(sorted[index].score, sorted[index - 1].score) {
                group_ends.push(index);
            }
        }
        SweepOrder {
            rows: sorted,
            input,
            group_ends,
        }
    }

    /// APGR with input row `i` counted `counts[i]` times; None when the resample is empty or its
    /// always-weak and always-strong qualities are equal.
    pub fn apgr(&self, counts: &[u32]) -> Option<f64> {
        // Counts in sweep order, as floats: integers, so every sum of them below is exact.
        let drawn: Vec<f64> = self
            .input
            .iter()
            .map(|&i| f64::from(counts.get(i).copied().unwrap_or(0)))
            .collect();
        let (mut n, mut all_weak, mut all_strong) = (0.0, 0.0, 0.0);
        for (row, &count) in self.rows.iter().zip(&drawn) {
            n += count;
            all_weak += count * row.q_weak;
            all_strong += count * row.q_strong;
        }
        if n == 0.0 {
            return None;
        }
        let quality = |weak: f64, strong: f64| (all_weak - weak + strong) / n;
        let q_weak = quality(0.0, 0.0);
        let gap = quality(all_weak, all_strong) - q_weak;
        if gap.abs() <= LABEL_EPSILON {
            return None;
        }
        let (mut weak, mut strong, mut strong_calls) = (0.0, 0.0, 0.0);
        let (mut share, mut pgr) = (0.0, 0.0);
        let mut area = 0.0;
        let mut start = 0;
        for &end in &self.group_ends {
            let before = strong_calls;
            for (row, &count) in self.rows[start..end].iter().zip(&drawn[start..end]) {
                weak += count * row.q_weak;
                strong += count * row.q_strong;
                strong_calls += count;
            }
            start = end;
            // A group none of whose rows was drawn is a step of zero width: nothing to add.
            if strong_calls == before {
                continue;
            }
            let next_share = strong_calls / n;
            let next_pgr = (quality(weak, strong) - q_weak) / gap;
            area += (next_share - share) * (pgr + next_pgr) / 2.0;
            (share, pgr) = (next_share, next_pgr);
        }
        Some(area)
    }
}

/// The APGR of several scores of the same rows on each of the same resamples.
pub struct Resampled {
    /// Per score, the APGR of the full rows.
    estimates: Vec<Option<f64>>,
    /// Per score, per resample.
    apgrs: Vec<Vec<Option<f64>>>,
}

/// Resamples the rows `options.resamples` times and scores each resample with every score.
/// `scores` are the same rows in the same order, scored differently; None when they are not the
/// same length or there are no rows.
pub fn resample(scores: &[&[Scored]], options: Bootstrap) -> Option<Resampled> {
    let n = scores.first()?.len();
    if n == 0 || scores.iter().any(|rows| rows.len() != n) {
        return None;
    }
    let orders: Vec<SweepOrder> = scores.iter().map(|rows| SweepOrder::new(rows)).collect();
    let estimates = orders.iter().map(|order| order.apgr(&vec![1; n])).collect();
    let mut apgrs = vec![Vec::with_capacity(options.resamples); orders.len()];
    let mut rng = SplitMix::new(options.seed);
    let mut counts = vec![0u32; n];
    for _ in 0..options.resamples {
        counts.fill(0);
        for _ in 0..n {
            counts[rng.below(n as u64) as usize] += 1;
        }
        for (order, values) in orders.iter().zip(&mut apgrs) {
            values.push(order.apgr(&counts));
        }
    }
    Some(Resampled { estimates, apgrs })
}

impl Resampled {
    /// The 95% percentile interval of score `score`'s APGR.
    pub fn interval(&self, score: usize) -> Option<Interval> {
        percentile_interval(self.apgrs.get(score)?.iter().copied())
    }

    /// APGR of score `a` minus score `b`, with its paired 95% interval.
    pub fn difference(&self, a: usize, b: usize) -> Option<Difference> {
        let estimate =
            self.estimates.get(a).copied().flatten()? - self.estimates.get(b).copied().flatten()?;
        let (a, b) = (self.apgrs.get(a)?, self.apgrs.get(b)?);
        let differences = a.iter().zip(b).map(|(a, b)| Some((*a)? - (*b)?));
        let interval = percentile_interval(differences)?;
        Some(Difference {
            estimate,
            low: interval.low,
            high: interval.high,
        })
    }
}

/// The 95% percentile bootstrap interval of `rows`' APGR.
pub fn apgr_interval(rows: &[Scored], options: Bootstrap) -> Option<Interval> {
    resample(&[rows], options)?.interval(0)
}

/// APGR of `a` minus APGR of `b` (the same rows scored two ways), with its paired 95% interval.
pub fn paired_difference(a: &[Scored], b: &[Scored], options: Bootstrap) -> Option<Difference> {
    resample(&[a, b], options)?.difference(0, 1)
}

/// The percentiles at (1 - LEVEL) / 2 and (1 + LEVEL) / 2 of the defined values, interpolated
/// linearly between order statistics; None when fewer than half the resamples are defined (an
/// interval from the few resamples that happen to be would mislead).
fn percentile_interval(values: impl Iterator<Item = Option<f64>>) -> Option<Interval> {
    let (mut defined, mut total) = (Vec::new(), 0usize);
    for value in values {
        total += 1;
        defined.extend(value);
    }
    if defined.is_empty() || 2 * defined.len() < total {
        return None;
    }
    defined.sort_by(f64::total_cmp);
    let at = |p: f64| {
        let position = p * (defined.len() - 1) as f64;
        let (low, high) = (position.floor() as usize, position.ceil() as usize);
        defined[low] + (position - low as f64) * (defined[high] - defined[low])
    };
    Some(Interval {
        low: at((1.0 - LEVEL) / 2.0),
        high: at((1.0 + LEVEL) / 2.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics;

    fn uniform(rng: &mut SplitMix) -> f64 {
        (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` rows like a benchmark's: a fifth need the strong tier, a few lose with it, and the score
    /// separates them only weakly, so the APGR is near 0.6; scores are rounded to 0.05 so many tie.
    fn realistic(n: usize, seed: u64) -> Vec<Scored> {
        let mut rng = SplitMix::new(seed);
        (0..n)
            .map(|_| {
                let draw = uniform(&mut rng);
                let (q_weak, q_strong) = match draw {
                    d if d < 0.2 => (0.0, 1.0),
                    d if d < 0.25 => (1.0, 0.0),
                    d if d < 0.85 => (1.0, 1.0),
                    _ => (0.0, 0.0),
                };
                let signal = if q_strong > q_weak { 0.25 } else { 0.0 };
                let score = ((signal + uniform(&mut rng)) * 20.0).round() / 20.0;
                Scored {
                    score,
                    q_weak,
                    q_strong,
                    c_weak: 1.0,
                    c_strong: 10.0,
                }
            })
            .collect()
    }

    #[test]
    fn drawing_every_row_once_is_metrics_apgr_bit_for_bit() {
        for (n, seed) in [(1, 3), (7, 4), (500, 5), (6943, 6)] {
            let rows = realistic(n, seed);
            let identity = vec![1; n];
            assert_eq!(
                SweepOrder::new(&rows).apgr(&identity),
                metrics::apgr(&rows),
                "{n}"
            );
        }
        // Ties across the whole set, and fractional qualities, whose sums round: the walk must
        // add in the sweep's order to match it to the bit.
        let mut rng = SplitMix::new(8);
        let fractional: Vec<Scored> = realistic(3000, 8)
            .into_iter()
            .enumerate()
            .map(|(i, row)| Scored {
                score: (i % 7) as f64,
                q_weak: uniform(&mut rng),
                q_strong: uniform(&mut rng).sqrt(),
                ..row
            })
            .collect();
        assert_eq!(
            SweepOrder::new(&fractional).apgr(&vec![1; 3000]),
            metrics::apgr(&fractional)
        );
    }

    #[test]
    fn counts_are_rows_repeated() {
        let rows = realistic(40, 9);
        let counts: Vec<u32> = (0..40).map(|i| (i % 4) as u32).collect();
        let repeated: Vec<Scored> = rows
            .iter()
            .zip(&counts)
            .flat_map(|(row, &count)| std::iter::repeat_n(*row, count as usize))
            .collect();
        let (by_counts, by_rows) = (
            SweepOrder::new(&rows).apgr(&counts).unwrap(),
            metrics::apgr(&repeated).unwrap(),
        );
        assert!((by_counts - by_rows).abs() < 1e-12, "{by_counts} {by_rows}");
        assert_eq!(SweepOrder::new(&rows).apgr(&[0; 40]), None);
    }

    #[test]
    fn the_interval_holds_the_estimate_and_halves_with_four_times_the_rows() {
        let options = Bootstrap::default();
        let small = realistic(500, 11);
        let large = realistic(2000, 12);
        let mut widths = Vec::new();
        for rows in [&small, &large] {
            let estimate = metrics::apgr(rows).unwrap();
            let interval = apgr_interval(rows, options).unwrap();
            assert!(interval.contains(estimate), "{estimate} {interval:?}");
            assert!(interval.width() > 0.0);
            widths.push(interval.width());
        }
        let ratio = widths[1] / widths[0];
        assert!((0.35..0.7).contains(&ratio), "{widths:?}");
    }

    #[test]
    fn the_same_score_twice_differs_by_exactly_nothing() {
        let rows = realistic(800, 13);
        let difference = paired_difference(&rows, &rows, Bootstrap::default()).unwrap();
        assert_eq!(
            (difference.estimate, difference.low, difference.high),
            (0.0, 0.0, 0.0)
        );
        // A different score of the same rows: a real difference, inside its interval.
        let reversed: Vec<Scored> = rows
            .iter()
            .map(|r| Scored {
                score: -r.score,
                ..*r
            })
            .collect();
        let difference = paired_difference(&rows, &reversed, Bootstrap::default()).unwrap();
        assert!(difference.low > 0.0 && difference.low <= difference.estimate);
        assert!(difference.estimate <= difference.high);
    }

    #[test]
    fn a_seed_gives_the_same_intervals_and_another_seed_others() {
        let rows = realistic(600, 14);
        let lengths: Vec<Scored> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| Scored {
                score: (i % 17) as f64,
                ..*r
            })
            .collect();
        let options = Bootstrap {
            resamples: 200,
            seed: 5,
        };
        let first = resample(&[&rows, &lengths], options).unwrap();
        let again = resample(&[&rows, &lengths], options).unwrap();
        assert_eq!(first.interval(0), again.interval(0));
        assert_eq!(first.difference(0, 1), again.difference(0, 1));
        // One score alone draws the same resamples as the pair.
        assert_eq!(apgr_interval(&rows, options), first.interval(0));
        let other = apgr_interval(&rows, Bootstrap { seed: 6, ..options });
        assert_ne!(other, first.interval(0));
    }

    #[test]
    fn undefined_without_rows_or_a_quality_gap() {
        assert!(resample(&[], Bootstrap::default()).is_none());
        assert!(apgr_interval(&[], Bootstrap::default()).is_none());
        let rows = realistic(10, 15);
        assert!(paired_difference(&rows, &rows[..9], Bootstrap::default()).is_none());
        let equal: Vec<Scored> = rows
            .iter()
            .map(|r| Scored {
                q_strong: r.q_weak,
                ..*r
            })
            .collect();
        assert_eq!(apgr_interval(&equal, Bootstrap::default()), None);
    }

    #[test]
    fn percentiles_interpolate_between_order_statistics() {
        let values = (0..=100).map(|v| Some(f64::from(v)));
        let interval = percentile_interval(values).unwrap();
        assert!((interval.low - 2.5).abs() < 1e-12 && (interval.high - 97.5).abs() < 1e-12);
        let mostly_undefined = (0..10).map(|v| (v < 4).then_some(1.0));
        assert_eq!(percentile_interval(mostly_undefined), None);
    }
}
