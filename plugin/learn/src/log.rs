//! Decision logs: the Envoy access log lines the filter's records become (one JSON object per routed
//! request, `triage_core::DecisionRecord`), and the explicit feedback rows joined to them. Read by
//! `triage report` and `triage train --from-log`.
//!
//! An access log also holds lines that are not records (`-` where the filter did not route, blank
//! lines, a line cut short while Envoy was still writing it): they are skipped and counted. A record of
//! another version is an error naming its line, since its fields may mean something else.

pub mod feedback;
pub mod rows;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use triage_core::{DecisionRecord, RECORD_VERSION};

/// A problem in one line of a log or feedback file (line 0: the file itself).
#[derive(Debug, Clone, PartialEq)]
pub struct LogError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

impl std::error::Error for LogError {}

/// The records of one access log file, in file order.
#[derive(Debug)]
pub struct DecisionLog {
    pub path: PathBuf,
    pub records: Vec<DecisionRecord>,
    /// Lines that are not decision records.
    pub skipped_lines: usize,
}

impl DecisionLog {
    /// The file's stem, which names the log as a training source (`log:<stem>`).
    pub fn stem(&self) -> String {
        self.path.file_stem().map_or_else(
            || self.path.display().to_string(),
            |stem| stem.to_string_lossy().into_owned(),
        )
    }
}

/// Only the version, so a line is classified before it is read as a record.
#[derive(Deserialize)]
struct VersionProbe {
    v: Option<Value>,
}

/// Reads one access log file.
pub fn read_log(path: &Path) -> Result<DecisionLog, LogError> {
    let file = File::open(path).map_err(|e| LogError {
        path: path.to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    parse_log(BufReader::new(file), path)
}

/// Reads every file, in order.
pub fn read_logs(paths: &[PathBuf]) -> Result<Vec<DecisionLog>, LogError> {
    paths.iter().map(|path| read_log(path)).collect()
}

/// Reads the lines of a log; `path` names it in errors.
pub fn parse_log(reader: impl BufRead, path: &Path) -> Result<DecisionLog, LogError> {
    let mut log = DecisionLog {
        path: path.to_path_buf(),
        records: Vec::new(),
        skipped_lines: 0,
    };
    for (index, line) in reader.lines().enumerate() {
        let error = |message: String| LogError {
            path: path.to_path_buf(),
            line: index + 1,
            message,
        };
        let line = line.map_err(|e| error(e.to_string()))?;
        match parse_line(&line).map_err(error)? {
            Some(record) => log.records.push(record),
            None => log.skipped_lines += 1,
        }
    }
    Ok(log)
}

/// A record, None for a line that is not one, or why a record line is refused.
fn parse_line(line: &str) -> Result<Option<DecisionRecord>, String> {
    let line = line.trim();
    if !line.starts_with('{') {
        return Ok(None);
    }
    // Not JSON (a line cut short) or an object without `v` (another access log format): not ours.
    let Ok(VersionProbe { v: Some(version) }) = serde_json::from_str::<VersionProbe>(line) else {
        return Ok(None);
    };
    if version.as_u64() != Some(u64::from(RECORD_VERSION)) {
        return Err(format!(
            "decision record version {version}, this triage reads version {RECORD_VERSION}"
        ));
    }
    serde_json::from_str(line)
        .map(Some)
        .map_err(|e| format!("bad decision record: {e}"))
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
