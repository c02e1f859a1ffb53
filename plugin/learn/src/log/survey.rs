//! The first of two passes over the logs, for what must be known of every record before the first
//! one is used: which feedback rows name one record alone (a row naming two labels neither, and the
//! second may be in the last log), and the span of start times the report's default window is
//! picked from. It reads only the keys and the start time of each record, and keeps counts for the
//! ids the feedback names, so it takes the feedback's memory, not the logs'.
//!
//! It also notes how far it read each log, and the second pass reads no further: a log Envoy is
//! still appending to gives both passes the same records, as one read of the whole file did.

use serde::Deserialize;

use super::feedback::{Feedback, KeyCounts};
use super::{records, LogSource, RecordLine};

/// The fields of a record the survey reads (typed as in `DecisionRecord`, so a line the second pass
/// reads as a record reads as this too).
#[derive(Deserialize)]
struct RecordKeys {
    v: u32,
    decision_id: Option<String>,
    request_id: String,
    start_ms: u64,
}

impl RecordLine for RecordKeys {
    fn version(&self) -> u32 {
        self.v
    }
}

/// What the first pass learnt. The default is no first pass: nothing counted, every log read whole.
#[derive(Debug, Default)]
pub struct Survey {
    /// The records carrying each id the feedback names.
    pub keys: KeyCounts,
    /// The earliest and latest start time, None without records.
    pub span: Option<(u64, u64)>,
    /// Bytes read of each log, in order.
    extents: Vec<u64>,
}

impl Survey {
    /// How many bytes of the `index`th log the second pass reads.
    pub fn extent(&self, index: usize) -> u64 {
        self.extents.get(index).copied().unwrap_or(u64::MAX)
    }
}

/// Reads every log once for the keys the feedback names and the span of start times. It does not
/// stop at a broken line or an unreadable file, it just reads no further in that file and leaves the
/// second pass to read it all: that pass meets the same problem at the same line and reports it.
pub fn survey<L: LogSource>(logs: &[L], feedback: &Feedback) -> Survey {
    let mut survey = Survey {
        keys: feedback.keys(),
        ..Survey::default()
    };
    for log in logs {
        let extent = survey_one(log, &mut survey).unwrap_or(u64::MAX);
        survey.extents.push(extent);
    }
    survey
}

/// Adds one log's records to `survey`: the bytes read, None if a problem stopped it.
fn survey_one<L: LogSource>(log: &L, survey: &mut Survey) -> Option<u64> {
    let mut records = records::<L, RecordKeys>(log, u64::MAX).ok()?;
    for record in &mut records {
        let record = record.ok()?;
        survey
            .keys
            .count(record.decision_id.as_deref(), &record.request_id);
        survey.span = Some(
            survey
                .span
                .map_or((record.start_ms, record.start_ms), |(first, last)| {
                    (first.min(record.start_ms), last.max(record.start_ms))
                }),
        );
    }
    Some(records.bytes_read())
}

#[cfg(test)]
mod tests;
