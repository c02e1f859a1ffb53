//! The linear model: `sigmoid(bias + Σ w_i x_i)`, higher = needs a stronger model.

use crate::features::{Features, FEATURE_COUNT, FEATURE_NAMES};

#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    pub bias: f64,
    /// One weight per feature, in [`FEATURE_NAMES`] order.
    pub features: [f64; FEATURE_COUNT],
}

/// Hand-set until a learned model replaces them: simple tasks pull down, reasoning, math, code,
/// constraints and tool use push up, length pushes up gently.
const DEFAULT_BIAS: f64 = -0.6;
const DEFAULT_FEATURE_WEIGHTS: &[(&str, f64)] = &[
    ("tokens", 0.8),
    ("turns", 0.4),
    ("system_prompt", 0.2),
    ("last_user", 0.2),
    ("code_fences", 0.6),
    ("code_lines", 0.8),
    ("latex", 1.0),
    ("math_terms", 0.6),
    ("operators", 0.4),
    ("digits", 0.2),
    ("reasoning_cues", 1.8),
    ("simple_task", -2.4),
    ("questions", 0.3),
    ("constraints", 0.9),
    ("tools", 0.3),
    ("tool_depth", 0.8),
    ("images", 0.3),
    ("max_tokens", 0.3),
    ("reasoning_effort", 1.2),
    ("json_output", -0.4),
    ("non_latin", 0.2),
];

pub(crate) fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|known| *known == name)
}

impl Weights {
    /// Weights from a bias and (feature name, weight) pairs; names not given weigh 0.
    /// Err names the first unknown feature.
    pub fn from_pairs<'n>(
        bias: f64,
        pairs: impl IntoIterator<Item = (&'n str, f64)>,
    ) -> Result<Weights, &'n str> {
        let mut features = [0.0; FEATURE_COUNT];
        for (name, weight) in pairs {
            let slot = feature_index(name)
                .and_then(|index| features.get_mut(index))
                .ok_or(name)?;
            *slot = weight;
        }
        Ok(Weights { bias, features })
    }

    pub fn weight(&self, name: &str) -> Option<f64> {
        feature_index(name).and_then(|index| self.features.get(index).copied())
    }
}

impl Default for Weights {
    fn default() -> Self {
        let pairs = DEFAULT_FEATURE_WEIGHTS
            .iter()
            .map(|(name, weight)| (*name, *weight));
        Weights::from_pairs(DEFAULT_BIAS, pairs).unwrap_or(Weights {
            bias: DEFAULT_BIAS,
            features: [0.0; FEATURE_COUNT],
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Score {
    /// In [0, 1].
    pub value: f64,
    /// The 3 contributions `w_i * x_i` that moved the score most, either way, largest first, as
    /// "simple_task-2.40" or "latex+1.00": a cheap tier is explained by what pulled it down.
    pub reasons: Vec<String>,
}

const TOP_REASONS: usize = 3;

pub fn score(weights: &Weights, features: &Features) -> Score {
    let mut contributions: Vec<(&str, f64)> = FEATURE_NAMES
        .iter()
        .zip(weights.features.iter().zip(features.values()))
        .map(|(name, (weight, value))| (*name, weight * value))
        .collect();
    let logit = weights.bias + contributions.iter().map(|(_, c)| c).sum::<f64>();
    let value = 1.0 / (1.0 + (-logit).exp());
    contributions.retain(|(_, contribution)| *contribution != 0.0);
    contributions.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let reasons = contributions
        .iter()
        .take(TOP_REASONS)
        .map(|(name, contribution)| format!("{name}{contribution:+.2}"))
        .collect();
    Score {
        value: if value.is_nan() { 0.5 } else { value },
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_weights_name_every_feature_once() {
        assert_eq!(DEFAULT_FEATURE_WEIGHTS.len(), FEATURE_COUNT);
        for name in FEATURE_NAMES {
            assert!(
                DEFAULT_FEATURE_WEIGHTS.iter().any(|(n, _)| n == name),
                "{name}"
            );
        }
        assert_eq!(Weights::default().weight("simple_task"), Some(-2.4));
    }

    #[test]
    fn unknown_feature_refused() {
        assert_eq!(
            Weights::from_pairs(0.0, [("tokens", 1.0), ("nope", 1.0)]),
            Err("nope")
        );
    }

    #[test]
    fn sigmoid_and_top_reasons() {
        let weights = Weights::from_pairs(
            -1.0,
            [
                ("code_lines", 2.0),
                ("latex", 1.0),
                ("tokens", 0.5),
                ("questions", 0.1),
                ("simple_task", -3.0),
            ],
        )
        .unwrap();
        let features = Features {
            code_lines: 0.5,
            latex: 0.3,
            tokens: 1.0,
            questions: 1.0,
            simple_task: 0.2,
            ..Features::default()
        };
        let scored = score(&weights, &features);
        let logit: f64 = -1.0 + 1.0 + 0.3 + 0.5 + 0.1 - 0.6;
        assert!((scored.value - 1.0 / (1.0 + (-logit).exp())).abs() < 1e-12);
        assert_eq!(
            scored.reasons,
            vec!["code_lines+1.00", "simple_task-0.60", "tokens+0.50"]
        );
    }

    #[test]
    fn a_negative_contribution_is_a_reason_and_zero_is_none() {
        let weights = Weights::from_pairs(0.0, [("simple_task", -1.0), ("latex", 1.0)]).unwrap();
        let scored = score(
            &weights,
            &Features {
                simple_task: 1.0,
                ..Features::default()
            },
        );
        assert_eq!(scored.reasons, vec!["simple_task-1.00"]);
        assert!(scored.value < 0.5);
    }

    #[test]
    fn extreme_weights_stay_in_range() {
        let weights = Weights::from_pairs(1e308, [("tokens", 1e308)]).unwrap();
        let scored = score(
            &weights,
            &Features {
                tokens: 1.0,
                ..Features::default()
            },
        );
        assert!((0.0..=1.0).contains(&scored.value));
    }
}
