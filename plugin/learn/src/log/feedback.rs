//! Explicit feedback: JSON lines `{"request_id": "...", "correct_tier": "mid"}` that an operator or an
//! evaluation job writes, naming the cheapest tier that would have answered the request well. Other
//! fields on a row are allowed (and ignored), so a grader can keep its notes beside the verdict.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::LogError;

#[derive(Deserialize)]
struct FeedbackRow {
    request_id: String,
    correct_tier: String,
}

/// The correct tier per request id; when a request is graded twice, the later row wins (a re-grade).
#[derive(Debug, Default)]
pub struct Feedback {
    correct_tier: HashMap<String, String>,
    /// Rows read, re-grades included.
    pub rows: usize,
}

impl Feedback {
    pub fn correct_tier(&self, request_id: &str) -> Option<&str> {
        self.correct_tier.get(request_id).map(String::as_str)
    }

    /// Distinct request ids graded.
    pub fn len(&self) -> usize {
        self.correct_tier.len()
    }

    pub fn is_empty(&self) -> bool {
        self.correct_tier.is_empty()
    }

    /// How many graded request ids are not among `request_ids` (feedback for another log, or a typo).
    pub fn unmatched<'a>(&self, request_ids: impl IntoIterator<Item = &'a str>) -> usize {
        let seen: HashSet<&str> = request_ids.into_iter().collect();
        self.correct_tier
            .keys()
            .filter(|id| !seen.contains(id.as_str()))
            .count()
    }

    /// Adds the rows of one file; a tier not in `tiers` is an error naming the line, since a
    /// misspelt tier would silently count as wrong.
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
            self.rows += 1;
            self.correct_tier.insert(row.request_id, row.correct_tier);
        }
        Ok(())
    }
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
