//! Routing-dataset rows (`../shared/data/routing/README.md`): a request body and, per tier, the
//! quality and cost of the answer that tier's model gave.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The tier names datasets use, cheapest first.
pub const DATASET_TIERS: [&str; 3] = ["small", "mid", "frontier"];

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Outcome {
    pub model: String,
    pub quality: f64,
    pub cost_usd: f64,
    #[serde(default)]
    pub cost_estimated: bool,
}

/// One model's outcome on a row, beside the tiers' (RouterBench rows keep all 11 models').
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ModelOutcome {
    pub quality: f64,
    pub cost_usd: f64,
}

#[derive(Clone, Debug)]
pub struct Row {
    pub id: String,
    pub source: String,
    /// The request body exactly as the dataset holds it (OpenAI chat form).
    pub request: String,
    /// Outcome per tier name; a dataset may lack a tier (two-model sets have no `mid`).
    pub outcomes: BTreeMap<String, Outcome>,
    /// Every model's outcome on this prompt, by model name, tier models included; empty when the
    /// dataset has none.
    pub all_models: BTreeMap<String, ModelOutcome>,
}

#[derive(Deserialize)]
struct RawRow<'a> {
    id: String,
    #[serde(default)]
    source: String,
    #[serde(borrow)]
    request: &'a RawValue,
    // A row without outcomes reads as one with `"outcomes": {}`: routable (tier shares), and
    // refused by what needs an outcome (training: "no outcomes", evaluation: "no outcome for").
    #[serde(default)]
    outcomes: BTreeMap<String, Outcome>,
    #[serde(default)]
    all_models: BTreeMap<String, ModelOutcome>,
}

impl Row {
    /// One line of a dataset file.
    pub fn from_json_line(line: &str) -> Result<Row, String> {
        let raw: RawRow = serde_json::from_str(line).map_err(|e| e.to_string())?;
        Ok(Row {
            id: raw.id,
            source: raw.source,
            request: raw.request.get().to_string(),
            outcomes: raw.outcomes,
            all_models: raw.all_models,
        })
    }

    /// The outcome a decision for `tier` gets: that tier's, or the next dearer tier present (a
    /// router's `mid` on a two-model set counts as `frontier`), or None when the row has neither.
    pub fn outcome_for(&self, tier: &str) -> Option<&Outcome> {
        let start = DATASET_TIERS.iter().position(|name| *name == tier)?;
        DATASET_TIERS[start..]
            .iter()
            .find_map(|name| self.outcomes.get(*name))
    }

    /// The cheapest tier present whose quality equals the best quality of any tier.
    pub fn oracle_tier(&self) -> Option<&'static str> {
        let best = self
            .outcomes
            .values()
            .map(|outcome| outcome.quality)
            .fold(f64::NEG_INFINITY, f64::max);
        DATASET_TIERS.into_iter().find(|tier| {
            self.outcomes
                .get(*tier)
                .is_some_and(|outcome| outcome.quality >= best)
        })
    }

    /// The cheapest and the dearest tier the row has.
    pub fn extreme_tiers(&self) -> Option<(&'static str, &'static str)> {
        let mut present = DATASET_TIERS
            .into_iter()
            .filter(|tier| self.outcomes.contains_key(*tier));
        let cheapest = present.next()?;
        Some((cheapest, present.next_back().unwrap_or(cheapest)))
    }

    /// The outcomes in `all_models` of the models that answer none of the row's tiers.
    pub fn other_models(&self) -> impl Iterator<Item = &ModelOutcome> {
        self.all_models
            .iter()
            .filter(|(model, _)| !self.outcomes.values().any(|tier| tier.model == **model))
            .map(|(_, outcome)| outcome)
    }
}

#[derive(Debug)]
pub struct DatasetError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for DatasetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

impl std::error::Error for DatasetError {}

/// Reads every row of one JSON-lines file; blank lines are skipped, a bad line is an error.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, DatasetError> {
    let error = |line: usize, message: String| DatasetError {
        path: path.to_path_buf(),
        line,
        message,
    };
    let file = File::open(path).map_err(|e| error(0, e.to_string()))?;
    let mut rows = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| error(index + 1, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        rows.push(Row::from_json_line(&line).map_err(|message| error(index + 1, message))?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(outcomes: &[(&str, f64, f64)]) -> Row {
        Row {
            id: "r".into(),
            source: "s".into(),
            request: "{}".into(),
            outcomes: outcomes
                .iter()
                .map(|(tier, quality, cost)| {
                    let outcome = Outcome {
                        model: format!("{tier}-model"),
                        quality: *quality,
                        cost_usd: *cost,
                        cost_estimated: false,
                    };
                    (tier.to_string(), outcome)
                })
                .collect(),
            all_models: BTreeMap::new(),
        }
    }

    #[test]
    fn a_missing_tier_counts_as_the_next_dearer_one() {
        let two = row(&[("small", 0.0, 1.0), ("frontier", 1.0, 10.0)]);
        assert_eq!(two.outcome_for("mid").map(|o| o.cost_usd), Some(10.0));
        assert_eq!(two.outcome_for("small").map(|o| o.cost_usd), Some(1.0));
        assert!(two.outcome_for("ultra").is_none());
        assert_eq!(two.extreme_tiers(), Some(("small", "frontier")));
    }

    #[test]
    fn the_oracle_is_the_cheapest_tier_with_the_best_quality() {
        let mid_suffices = row(&[
            ("small", 0.0, 1.0),
            ("mid", 1.0, 3.0),
            ("frontier", 1.0, 9.0),
        ]);
        assert_eq!(mid_suffices.oracle_tier(), Some("mid"));
        let all_fail = row(&[("small", 0.0, 1.0), ("frontier", 0.0, 9.0)]);
        assert_eq!(all_fail.oracle_tier(), Some("small"));
    }

    #[test]
    fn a_row_without_outcomes_reads_with_none_and_cannot_be_labelled() {
        let row = Row::from_json_line(r#"{"id":"a","request":{"messages":[]}}"#).unwrap();
        assert!(row.outcomes.is_empty());
        assert_eq!(row.extreme_tiers(), None);
        assert!(
            Row::from_json_line(r#"{"request":{}}"#).is_err(),
            "an id is needed"
        );
    }

    #[test]
    fn reads_rows_and_names_the_bad_line() {
        let dir = std::env::temp_dir().join(format!("triage-learn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rows.jsonl");
        let good = r#"{"id":"a","source":"s","request":{"model":"auto","messages":[]},"outcomes":{"small":{"model":"m","quality":1.0,"cost_usd":0.1}}}"#;
        std::fs::write(&path, format!("{good}\n\n{{\"id\": 3}}\n")).unwrap();
        let error = read_rows(&path).unwrap_err();
        assert_eq!(error.line, 3);
        std::fs::write(&path, format!("{good}\n")).unwrap();
        let rows = read_rows(&path).unwrap();
        assert_eq!(rows[0].request, r#"{"model":"auto","messages":[]}"#);
        assert_eq!(rows[0].outcomes["small"].quality, 1.0);
        assert!(rows[0].all_models.is_empty(), "all_models is optional");
        let with_models = r#"{"id":"b","request":{},"outcomes":{"small":{"model":"m","quality":0.0,"cost_usd":0.1}},"all_models":{"m":{"quality":0.0,"cost_usd":0.1},"other":{"quality":1.0,"cost_usd":0.5}}}"#;
        std::fs::write(&path, format!("{with_models}\n")).unwrap();
        let rows = read_rows(&path).unwrap();
        let other = ModelOutcome {
            quality: 1.0,
            cost_usd: 0.5,
        };
        assert_eq!(rows[0].all_models.len(), 2);
        assert_eq!(rows[0].all_models["other"], other);
        // "m" answers the small tier: not another model.
        assert_eq!(rows[0].other_models().collect::<Vec<_>>(), vec![&other]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
