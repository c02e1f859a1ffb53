//! How many labels a fit needs. A label here is the training one: the cheapest tier fails where the
//! dearest succeeds ([`crate::train::label`]).
//!
//! Below [`refuse_below`] rows of either label a fit cannot be cross-validated (a fold would lack
//! that label in its held-out part or its training part), so `train` refuses instead of writing a
//! degenerate model. Below [`FEW`] of either it warns: in the learning curve of the README, about a
//! hundred labelled rows of a family are what it took to undo an inversion, and with fewer the
//! bootstrap intervals of the report are wider than the differences they are meant to show.

/// Rows of each label per cross-validation fold that `train` needs.
pub const PER_FOLD: usize = 2;
/// Rows of either label under which `train` and `calibrate` warn.
pub const FEW: usize = 100;

/// The rows of each label `train` needs with `folds` folds.
pub fn refuse_below(folds: usize) -> usize {
    PER_FOLD * folds.max(1)
}

/// How many rows need the dearest tier, and how many do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabelCounts {
    pub positives: usize,
    pub negatives: usize,
}

impl LabelCounts {
    pub fn of(labels: impl IntoIterator<Item = bool>) -> LabelCounts {
        let mut counts = LabelCounts {
            positives: 0,
            negatives: 0,
        };
        for label in labels {
            if label {
                counts.positives += 1;
            } else {
                counts.negatives += 1;
            }
        }
        counts
    }

    fn fewest(&self) -> usize {
        self.positives.min(self.negatives)
    }

    fn describe(&self) -> String {
        format!(
            "{} rows need the dearest tier and {} do not",
            self.positives, self.negatives
        )
    }

    /// Err (why, with the minimum) when a fit with `folds` folds cannot be cross-validated.
    pub fn check_fit(&self, folds: usize) -> Result<(), String> {
        let minimum = refuse_below(folds);
        if self.fewest() < minimum {
            return Err(format!(
                "{}: each label needs at least {minimum} rows ({PER_FOLD} per fold with {folds} \
                 folds) to fit and cross-validate a model; label more rows",
                self.describe()
            ));
        }
        Ok(())
    }

    /// A warning when either label has fewer than [`FEW`] rows.
    pub fn warning(&self) -> Option<String> {
        (self.fewest() < FEW).then(|| {
            format!(
                "few labels: {}; below {FEW} of either, expect wide intervals and a fit that \
                 follows the few rows it has",
                self.describe()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_label() {
        let counts = LabelCounts::of([true, false, false, true, false]);
        assert_eq!(
            counts,
            LabelCounts {
                positives: 2,
                negatives: 3
            }
        );
    }

    #[test]
    fn a_fit_needs_two_rows_of_each_label_per_fold() {
        let counts = |positives, negatives| LabelCounts {
            positives,
            negatives,
        };
        assert_eq!(counts(10, 10).check_fit(5), Ok(()));
        let error = counts(9, 200).check_fit(5).unwrap_err();
        assert!(
            error.starts_with("9 rows need the dearest tier and 200 do not: each label needs at least 10 rows (2 per fold with 5 folds)"),
            "{error}"
        );
        assert!(counts(200, 5).check_fit(3).is_err());
        assert_eq!(counts(6, 6).check_fit(3), Ok(()));
    }

    #[test]
    fn warns_below_a_hundred_of_either_label() {
        let counts = |positives, negatives| LabelCounts {
            positives,
            negatives,
        };
        assert_eq!(counts(100, 100).warning(), None);
        let warning = counts(99, 5000).warning().unwrap();
        assert!(
            warning.starts_with("few labels: 99 rows need the dearest tier and 5000 do not"),
            "{warning}"
        );
        assert!(counts(5000, 12).warning().is_some());
    }
}
