//! The two passes over several logs: feedback joined across files, request ids unique across files,
//! the second pass reading what the first read, and errors reported by the second as one pass would.

use std::cell::Cell;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use triage_core::DecisionRecord;

use crate::log::feedback::Feedback;
use crate::log::rows::{rows_from_logs, LabelRule};
use crate::log::testing::{memory_log, priced_config, record, MemoryLog};
use crate::log::LogSource;
use crate::report::build;

const TIERS: [&str; 3] = ["small", "mid", "frontier"];

fn feedback(rows: &str) -> Feedback {
    let mut feedback = Feedback::default();
    feedback
        .parse(rows.as_bytes(), Path::new("fb"), &TIERS)
        .unwrap();
    feedback
}

/// Feedback on a record of the second log labels it, read after the first log's records.
#[test]
fn feedback_labels_a_record_in_any_log() {
    let logs = [
        memory_log("first.log", &[record("a", 1, "frontier")], 0),
        memory_log("second.log", &[record("b", 2, "frontier")], 0),
    ];
    let grades = feedback(r#"{"decision_id": "d-b", "correct_tier": "mid"}"#);
    let from_log = rows_from_logs(&logs, &grades, &priced_config()).unwrap();
    assert_eq!(from_log.feedback.matched, 1);
    assert_eq!(from_log.by_rule.get(&LabelRule::Feedback), Some(&1));
    assert_eq!(from_log.sources.len(), 1);
    assert_eq!(from_log.sources[0].name, "second.log");
    assert_eq!(from_log.sources[0].rows[0].id, "d-b");
}

/// A request id is unique only if no other log carries it: the first pass counts every log before
/// the second labels anything, so the record in the first log is not labelled either.
#[test]
fn a_request_id_in_two_logs_labels_neither() {
    let [first, second] = ["a", "b"].map(|id| DecisionRecord {
        request_id: "chosen-by-client".into(),
        ..record(id, 1, "frontier")
    });
    let logs = [
        memory_log("first.log", &[first], 0),
        memory_log("second.log", &[second], 0),
    ];
    let grades = feedback(r#"{"request_id": "chosen-by-client", "correct_tier": "mid"}"#);
    let from_log = rows_from_logs(&logs, &grades, &priced_config()).unwrap();
    assert_eq!(
        (from_log.feedback.matched, from_log.feedback.ambiguous),
        (0, 1)
    );
    assert_eq!(from_log.rows(), 0, "a quiet frontier answer is no row");
    let report = build(&logs, &grades, &TIERS, None).unwrap();
    assert_eq!(report.inputs.feedback_ambiguous, 1);
    assert_eq!(report.totals.labelled, 0);

    // The same log read twice holds every decision id twice.
    let log = memory_log("access.log", &[record("a", 1, "frontier")], 0);
    let grades = feedback(r#"{"decision_id": "d-a", "correct_tier": "mid"}"#);
    let twice = build(&[log.clone(), log], &grades, &TIERS, None).unwrap();
    assert_eq!(twice.inputs.feedback_ambiguous, 1);
    assert_eq!(twice.totals.labelled, 0);
}

/// A log Envoy appends to while it is read: every open finds one more copy of its first record.
struct GrowingLog {
    log: MemoryLog,
    opened: Cell<usize>,
}

impl LogSource for GrowingLog {
    fn path(&self) -> &Path {
        self.log.path()
    }

    fn open(&self) -> io::Result<Box<dyn BufRead + '_>> {
        let opened = self.opened.get() + 1;
        self.opened.set(opened);
        let first = self.log.text.lines().next().unwrap_or_default();
        let appended = format!("{first}\n").repeat(opened);
        Ok(Box::new(io::Cursor::new(self.log.text.clone() + &appended)))
    }
}

/// The second pass reads no further than the first: records written in between are neither
/// reported nor counted twice, and the feedback labels the one record the first pass counted.
#[test]
fn the_second_pass_reads_only_what_the_first_read() {
    let growing = GrowingLog {
        log: memory_log("access.log", &[record("a", 1, "small")], 0),
        opened: Cell::new(0),
    };
    let grades = feedback(r#"{"decision_id": "d-a", "correct_tier": "mid"}"#);
    let report = build(&[growing], &grades, &TIERS, None).unwrap();
    assert_eq!(report.inputs.records, 2, "the record and the first copy");
    assert_eq!(report.inputs.feedback_ambiguous, 1);
    assert_eq!(report.totals.labelled, 0);
}

/// A broken line stops the first pass in its log without a word; the second reports it, so the
/// error is the one a single pass gives, naming the log and the line.
#[test]
fn an_error_names_the_log_and_line_whatever_the_passes() {
    let good = record("a", 1, "small").to_json();
    let newer = good.replacen(r#""v":3"#, r#""v":4"#, 1);
    let logs = [
        memory_log("first.log", &[record("b", 2, "small")], 1),
        MemoryLog {
            path: PathBuf::from("second.log"),
            text: format!("-\n{{\"v\": 3, \"cut sh\n{good}\n{newer}\n"),
        },
    ];
    let expected = "second.log:4: decision record version 4, this triage reads version 3";
    let grades = feedback(r#"{"decision_id": "d-a", "correct_tier": "mid"}"#);
    for (feedback, window_ms) in [(Feedback::default(), Some(3_600_000)), (grades, None)] {
        let error = build(&logs, &feedback, &TIERS, window_ms).unwrap_err();
        assert_eq!(error.to_string(), expected);
        let error = rows_from_logs(&logs, &feedback, &priced_config()).unwrap_err();
        assert_eq!(error, expected);
    }
    let missing = [PathBuf::from("/nonexistent/access.log")];
    let error = build(&missing, &Feedback::default(), &TIERS, None).unwrap_err();
    assert_eq!(
        (error.line, error.path.as_path()),
        (0, missing[0].as_path())
    );
}
