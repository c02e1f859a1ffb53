//! Explicit feedback: JSON lines `{"decision_id": "...", "correct_tier": "mid"}` that an operator or an
//! evaluation job writes, naming the cheapest tier that would have answered the request well. The
//! decision id is the one the client got in `x-triage-decision-id` and the record holds: random per
//! decision, so no client can make a row meant for one request label another. Other fields on a
//! row are allowed (and ignored), so a grader can keep its notes beside the verdict.
//!
//! A row may instead name a `request_id` (the request's `x-request-id`, which a client can choose).
//! Such a row labels a record only when exactly one record of the logs read has that request id; a
//! row with both keys joins on its `decision_id` alone. A row whose key matches no record, or more
//! than one, labels nothing: it is counted ([`Labels::unmatched`], [`Labels::ambiguous`]) and
//! skipped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use triage_core::DecisionRecord;

use super::LogError;

#[derive(Deserialize)]
struct FeedbackRow {
    decision_id: Option<String>,
    request_id: Option<String>,
    correct_tier: String,
}

/// What a feedback row names its request by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedbackKey {
    /// The decision's random id: the key.
    DecisionId(String),
    /// The request's `x-request-id`, client-influenced: used only when it names exactly one record.
    RequestId(String),
}

/// The feedback rows read, in order.
#[derive(Debug, Default)]
pub struct Feedback {
    grades: Vec<(FeedbackKey, String)>,
}

impl Feedback {
    /// Rows read, re-grades included.
    pub fn rows(&self) -> usize {
        self.grades.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grades.is_empty()
    }

    /// Adds the rows of one file; a tier not in `tiers` is an error naming the line, since a
    /// misspelt tier would silently count as wrong, and so is a row with neither key.
    pub fn parse(
        &mut self,
        reader: impl BufRead,
        path: &Path,
        tiers: &[&str],
    ) -> Result<(), LogError> {
        for (index, line) in reader.lines().enumerate() {
            let error = |message: String| LogError {
                path: path.to_path_buf(),
                line: index + 1,
                message,
            };
            let line = line.map_err(|e| error(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let row: FeedbackRow =
                serde_json::from_str(&line).map_err(|e| error(format!("bad feedback row: {e}")))?;
            if !tiers.contains(&row.correct_tier.as_str()) {
                return Err(error(format!(
                    "correct_tier {:?} is not a tier of the config ({})",
                    row.correct_tier,
                    tiers.join(", ")
                )));
            }
            let key = match (row.decision_id, row.request_id) {
                (Some(id), _) => FeedbackKey::DecisionId(id),
                (None, Some(id)) => FeedbackKey::RequestId(id),
                (None, None) => {
                    return Err(error(
                        "bad feedback row: needs a decision_id (or a request_id)".to_string(),
                    ))
                }
            };
            self.grades.push((key, row.correct_tier));
        }
        Ok(())
    }

    /// Joins the rows to `records` (every record of the logs read, in one order): which record each
    /// row labels, and how many rows label nothing. When rows of one key disagree the later one
    /// wins (a re-grade); a record labelled by its decision id ignores rows naming its request id.
    pub fn join<'a>(&self, records: impl IntoIterator<Item = &'a DecisionRecord>) -> Labels {
        let mut by_decision: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut by_request: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, record) in records.into_iter().enumerate() {
            if let Some(id) = record.decision_id.as_deref().filter(|id| !id.is_empty()) {
                by_decision.entry(id).or_default().push(index);
            }
            if !record.request_id.is_empty() {
                by_request
                    .entry(record.request_id.as_str())
                    .or_default()
                    .push(index);
            }
        }
        let mut labels = Labels {
            rows: self.grades.len(),
            ..Labels::default()
        };
        let mut from_request_ids: HashMap<usize, &str> = HashMap::new();
        for (key, tier) in &self.grades {
            let (matches, labelled) = match key {
                FeedbackKey::DecisionId(id) => (by_decision.get(id.as_str()), true),
                FeedbackKey::RequestId(id) => (by_request.get(id.as_str()), false),
            };
            match matches.map(Vec::as_slice) {
                Some([index]) => {
                    labels.matched += 1;
                    if labelled {
                        labels.correct_tier.insert(*index, tier.clone());
                    } else {
                        from_request_ids.insert(*index, tier);
                    }
                }
                Some([_, _, ..]) => labels.ambiguous += 1,
                _ => labels.unmatched += 1,
            }
        }
        for (index, tier) in from_request_ids {
            labels
                .correct_tier
                .entry(index)
                .or_insert_with(|| tier.to_string());
        }
        labels
    }
}

/// The feedback joined to one sequence of records.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Labels {
    /// Record position (in the order given to [`Feedback::join`]) -> the correct tier.
    correct_tier: HashMap<usize, String>,
    /// Rows read, re-grades included.
    pub rows: usize,
    /// Rows whose key named exactly one record.
    pub matched: usize,
    /// Rows whose key named no record (feedback for another log, a typo, an empty key): skipped.
    pub unmatched: usize,
    /// Rows whose key named more than one record (a request id two requests carried, or a log read
    /// twice): skipped, since the row cannot say which request it grades.
    pub ambiguous: usize,
}

impl Labels {
    /// The correct tier of the record at `index`, if a row labels it.
    pub fn correct_tier(&self, index: usize) -> Option<&str> {
        self.correct_tier.get(&index).map(String::as_str)
    }

    /// Records labelled.
    pub fn len(&self) -> usize {
        self.correct_tier.len()
    }

    pub fn is_empty(&self) -> bool {
        self.correct_tier.is_empty()
    }

    /// `N rows, N matching no record, N matching several records` (for a terminal).
    pub fn describe(&self) -> String {
        describe_feedback(self.rows, self.unmatched, self.ambiguous)
    }
}

/// How feedback rows joined, as `triage report` and `--from-log` print it.
pub fn describe_feedback(rows: usize, unmatched: usize, ambiguous: usize) -> String {
    format!("{rows} rows, {unmatched} matching no record, {ambiguous} matching several records")
}

/// Reads every feedback file, in order (a later file's grade of a request wins).
pub fn read_feedback(paths: &[PathBuf], tiers: &[&str]) -> Result<Feedback, LogError> {
    let mut feedback = Feedback::default();
    for path in paths {
        let file = File::open(path).map_err(|e| LogError {
            path: path.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        feedback.parse(BufReader::new(file), path, tiers)?;
    }
    Ok(feedback)
}
