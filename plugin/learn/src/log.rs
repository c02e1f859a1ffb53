//! Decision logs: the Envoy access log lines the filter's records become (one JSON object per routed
//! request, `triage_core::DecisionRecord`), and the explicit feedback rows joined to them. Read by
//! `triage report` and `triage train --from-log`.
//!
//! An access log also holds lines that are not records (`-` where the filter did not route, blank
//! lines, a line cut short while Envoy was still writing it): they are skipped and counted. A record of
//! another version is an error naming its line, since its fields may mean something else.
//!
//! Logs are streamed: [`Records`] reads one line at a time into one buffer, so reading a log takes the
//! memory of its longest line, whatever its length. What a reader keeps is the caller's business (a
//! report keeps a tally per window, `--from-log` the rows it learns from).

pub mod feedback;
pub mod rows;
pub mod survey;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Take};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
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

/// An access log that can be read from its start, once per pass over the logs: a file, or lines held
/// in memory (tests).
pub trait LogSource {
    /// Names the log in errors and reports.
    fn path(&self) -> &Path;

    fn open(&self) -> io::Result<Box<dyn BufRead + '_>>;

    /// The file's stem, which names the log as a training source (`log:<stem>`).
    fn stem(&self) -> String {
        let path = self.path();
        path.file_stem().map_or_else(
            || path.display().to_string(),
            |stem| stem.to_string_lossy().into_owned(),
        )
    }
}

impl LogSource for PathBuf {
    fn path(&self) -> &Path {
        self
    }

    fn open(&self) -> io::Result<Box<dyn BufRead + '_>> {
        Ok(Box::new(BufReader::new(File::open(self)?)))
    }
}

/// What a record line is read as: the whole record, or only the fields a first pass needs (which
/// spares it building the rest).
pub trait RecordLine: DeserializeOwned {
    fn version(&self) -> u32;
}

impl RecordLine for DecisionRecord {
    fn version(&self) -> u32 {
        self.v
    }
}

/// The records of one log, in file order, read a line at a time into one reused buffer. Iteration
/// stops being meaningful after the first error (the caller stops there, as the error names the
/// line); lines that are not records are counted in [`Records::skipped_lines`].
pub struct Records<R, T = DecisionRecord> {
    reader: R,
    path: PathBuf,
    line: String,
    number: usize,
    bytes: u64,
    skipped_lines: usize,
    record: PhantomData<T>,
}

impl<R: BufRead, T: RecordLine> Records<R, T> {
    /// Reads the lines of `reader`; `path` names it in errors.
    pub fn new(reader: R, path: &Path) -> Self {
        Records {
            reader,
            path: path.to_path_buf(),
            line: String::new(),
            number: 0,
            bytes: 0,
            skipped_lines: 0,
            record: PhantomData,
        }
    }

    /// Lines read so far that are not decision records.
    pub fn skipped_lines(&self) -> usize {
        self.skipped_lines
    }

    /// Bytes of the lines read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    fn error(&self, message: String) -> LogError {
        LogError {
            path: self.path.clone(),
            line: self.number,
            message,
        }
    }
}

impl<R: BufRead, T: RecordLine> Iterator for Records<R, T> {
    type Item = Result<T, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.line.clear();
            self.number += 1;
            match self.reader.read_line(&mut self.line) {
                Ok(0) => return None,
                Ok(read) => self.bytes += read as u64,
                Err(e) => return Some(Err(self.error(e.to_string()))),
            }
            match parse_line(&self.line) {
                Ok(Some(record)) => return Some(Ok(record)),
                Ok(None) => self.skipped_lines += 1,
                Err(message) => return Some(Err(self.error(message))),
            }
        }
    }
}

/// Opens `log` for one pass over the records of its first `bytes` bytes (`u64::MAX`: all of it). A
/// second pass reads no further than the first did, so both see the same records of a log Envoy is
/// still writing.
pub fn records<L: LogSource + ?Sized, T: RecordLine>(
    log: &L,
    bytes: u64,
) -> Result<Records<Take<Box<dyn BufRead + '_>>, T>, LogError> {
    let reader = log.open().map_err(|e| LogError {
        path: log.path().to_path_buf(),
        line: 0,
        message: e.to_string(),
    })?;
    Ok(Records::new(reader.take(bytes), log.path()))
}

/// Only the version, so a line that does not read as a record is told apart: not ours, another
/// version, or a broken record.
#[derive(Deserialize)]
struct VersionProbe {
    v: Option<Value>,
}

/// A record, None for a line that is not one, or why a record line is refused.
fn parse_line<T: RecordLine>(line: &str) -> Result<Option<T>, String> {
    let line = line.trim();
    if !line.starts_with('{') {
        return Ok(None);
    }
    // Almost every line is a record of this version: read it once, and probe only what fails.
    let error = match serde_json::from_str::<T>(line) {
        Ok(record) if record.version() == RECORD_VERSION => return Ok(Some(record)),
        Ok(_) => None,
        Err(error) => Some(error),
    };
    // Not JSON (a line cut short) or an object without `v` (another access log format): not ours.
    let Ok(VersionProbe { v: Some(version) }) = serde_json::from_str::<VersionProbe>(line) else {
        return Ok(None);
    };
    match error {
        Some(error) if version.as_u64() == Some(u64::from(RECORD_VERSION)) => {
            Err(format!("bad decision record: {error}"))
        }
        _ => Err(format!(
            "decision record version {version}, this triage reads version {RECORD_VERSION}"
        )),
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
