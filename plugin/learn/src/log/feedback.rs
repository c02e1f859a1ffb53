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
//!
//! Feedback is read whole (one small row per graded request); the logs are streamed. Whether a row
//! names one record alone is known only once every log is read, so a first pass counts the records
//! carrying each id the rows name ([`KeyCounts`], [`super::survey`]) and the join then says which
//! record each row labels, before the pass that uses the labels.

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

    /// The ids the rows name, none counted yet: what a first pass over the logs counts
    /// ([`KeyCounts::count`]) before [`Feedback::join`] can tell which row names one record alone.
    pub fn keys(&self) -> KeyCounts {
        let mut keys = KeyCounts::default();
        for (key, _) in &self.grades {
            match key {
                FeedbackKey::DecisionId(id) => {
                    keys.decision_ids.insert(id.clone(), 0);
                }
                FeedbackKey::RequestId(id) => {
                    keys.request_ids.insert(id.clone(), Carriers::default());
                }
            }
        }
        keys
    }

    /// Joins the rows to the records `keys` counted (every record of the logs read): which record
    /// each row labels, and how many rows label nothing. When rows of one key disagree the later one
    /// wins (a re-grade); a record labelled by its decision id ignores rows naming its request id.
    pub fn join(&self, keys: &KeyCounts) -> Labels {
        let mut labels = Labels {
            rows: self.grades.len(),
            ..Labels::default()
        };
        let mut request_rows: Vec<(&String, &String)> = Vec::new();
        for (key, tier) in &self.grades {
            let (id, records) = match key {
                FeedbackKey::DecisionId(id) => (id, keys.decision_ids.get(id).copied()),
                FeedbackKey::RequestId(id) => (id, keys.request_ids.get(id).map(|c| c.records)),
            };
            match records.unwrap_or(0) {
                0 => labels.unmatched += 1,
                1 => {
                    labels.matched += 1;
                    match key {
                        FeedbackKey::DecisionId(_) => {
                            labels.by_decision.insert(id.clone(), tier.clone());
                        }
                        FeedbackKey::RequestId(_) => request_rows.push((id, tier)),
                    }
                }
                _ => labels.ambiguous += 1,
            }
        }
        for (id, tier) in request_rows {
            let carrier = keys
                .request_ids
                .get(id)
                .and_then(|carriers| carriers.decision_id.as_ref());
            if !carrier.is_some_and(|decision| labels.by_decision.contains_key(decision)) {
                labels.by_request.insert(id.clone(), tier.clone());
            }
        }
        labels
    }
}

/// For each id the feedback names, how many records of the logs carry it. Only those ids are
/// counted, so the counts take the feedback's memory, not the logs'.
#[derive(Debug, Default, Clone)]
pub struct KeyCounts {
    decision_ids: HashMap<String, usize>,
    request_ids: HashMap<String, Carriers>,
}

/// The records carrying one request id.
#[derive(Debug, Default, Clone)]
struct Carriers {
    records: usize,
    /// The last one's decision id: when it is the only one, a row naming that decision id labels it
    /// instead.
    decision_id: Option<String>,
}

impl KeyCounts {
    /// Counts one record by its keys (an empty id names nothing).
    pub fn count(&mut self, decision_id: Option<&str>, request_id: &str) {
        if let Some(count) = decision_id
            .filter(|id| !id.is_empty())
            .and_then(|id| self.decision_ids.get_mut(id))
        {
            *count += 1;
        }
        if let Some(carriers) = Some(request_id)
            .filter(|id| !id.is_empty())
            .and_then(|id| self.request_ids.get_mut(id))
        {
            carriers.records += 1;
            carriers.decision_id = decision_id.map(str::to_string);
        }
    }
}

/// The feedback joined to the records of the logs read.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Labels {
    /// Decision id of the one record carrying it -> the correct tier.
    by_decision: HashMap<String, String>,
    /// Request id of the one record carrying it, when no row names that record's decision id -> the
    /// correct tier.
    by_request: HashMap<String, String>,
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
    /// The correct tier of `record` (one of the records the join counted), if a row labels it.
    pub fn correct_tier(&self, record: &DecisionRecord) -> Option<&str> {
        let by_decision = || {
            record
                .decision_id
                .as_ref()
                .and_then(|id| self.by_decision.get(id))
        };
        by_decision()
            .or_else(|| self.by_request.get(&record.request_id))
            .map(String::as_str)
    }

    /// Records labelled.
    pub fn len(&self) -> usize {
        self.by_decision.len() + self.by_request.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
