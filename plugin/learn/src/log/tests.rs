use std::io::Cursor;
use std::path::{Path, PathBuf};

use super::feedback::{Feedback, Labels};
use super::testing::record;
use super::*;
use triage_core::DecisionRecord;

/// The records of one log and its lines that are not records, as one pass reads them.
#[derive(Debug)]
struct ParsedLog {
    path: PathBuf,
    records: Vec<DecisionRecord>,
    skipped_lines: usize,
}

impl ParsedLog {
    fn stem(&self) -> String {
        LogSource::stem(&self.path)
    }
}

/// `text` read as the log `access.log`.
fn parse(text: &str) -> Result<ParsedLog, LogError> {
    let path = PathBuf::from("access.log");
    let mut lines = Records::new(Cursor::new(text), &path);
    let records = lines.by_ref().collect::<Result<_, _>>()?;
    let skipped_lines = lines.skipped_lines();
    Ok(ParsedLog {
        path,
        records,
        skipped_lines,
    })
}

const TIERS: [&str; 3] = ["small", "mid", "frontier"];

#[test]
fn lines_that_are_not_records_are_skipped_and_counted() {
    let first = record("a", 1_000, "small").to_json();
    let second = record("b", 2_000, "mid").to_json();
    let text = [
        "-",
        first.as_str(),
        "",
        "   ",
        r#"{"upstream": "10.0.0.1", "status": 200}"#,
        r#"{"v": 2, "decision_id": "cut sh"#,
        "[1, 2]",
        second.as_str(),
    ]
    .join("\n");
    let log = parse(&text).unwrap();
    assert_eq!(log.skipped_lines, 6);
    let ids: Vec<&str> = log.records.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(log.records[1].tier, "mid");
    assert_eq!(log.records[1].usage, Some(testing::USAGE));
    assert_eq!(log.stem(), "access");
}

#[test]
fn a_record_of_another_version_is_an_error_naming_its_line() {
    let good = record("a", 1_000, "small").to_json();
    let newer = good.replacen(r#""v":3"#, r#""v":4"#, 1);
    assert_ne!(good, newer);
    let error = parse(&format!("-\n{good}\n{newer}\n")).unwrap_err();
    assert_eq!(error.line, 3);
    assert!(
        error
            .to_string()
            .starts_with("access.log:3: decision record version 4, this triage reads version 3"),
        "{error}"
    );

    let not_a_number = good.replacen(r#""v":3"#, r#""v":"3""#, 1);
    assert_eq!(parse(&not_a_number).unwrap_err().line, 1);

    for (older, why) in [
        (1, "keyed on client request ids"),
        (2, "overrides honoured for a header any client could send"),
    ] {
        let line = good.replacen(r#""v":3"#, &format!(r#""v":{older}"#), 1);
        let error = parse(&line).unwrap_err();
        assert!(
            error.to_string().starts_with(&format!(
                "access.log:1: decision record version {older}, this triage reads version 3"
            )),
            "a version-{older} log ({why}) is refused: {error}"
        );
    }

    let broken = good.replacen(r#""tier":"small""#, r#""tier":7"#, 1);
    let error = parse(&format!("{good}\n{broken}")).unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.message.contains("bad decision record"), "{error}");
}

/// The feedback joined to `records`, counted as the first pass over a log of them counts.
fn join(feedback: &Feedback, records: &[DecisionRecord]) -> Labels {
    let mut keys = feedback.keys();
    for record in records {
        keys.count(record.decision_id.as_deref(), &record.request_id);
    }
    feedback.join(&keys)
}

fn labels(feedback: &Feedback, records: &[DecisionRecord]) -> Vec<Option<String>> {
    let labels = join(feedback, records);
    records
        .iter()
        .map(|record| labels.correct_tier(record).map(str::to_string))
        .collect()
}

/// Feedback read from `rows`, one JSON line each, as the file `fb.jsonl`.
fn feedback_of(rows: &[&str]) -> Feedback {
    let mut feedback = Feedback::default();
    feedback
        .parse(Cursor::new(rows.join("\n")), Path::new("fb.jsonl"), &TIERS)
        .unwrap();
    feedback
}

#[test]
fn feedback_joins_by_decision_id_and_refuses_unknown_tiers() {
    let mut feedback = feedback_of(&[
        r#"{"decision_id": "d-a", "correct_tier": "mid", "grader": "eval-7"}"#,
        "",
        r#"{"decision_id": "d-b", "correct_tier": "small"}"#,
        r#"{"decision_id": "d-a", "correct_tier": "frontier"}"#,
        r#"{"decision_id": "d-z", "correct_tier": "frontier"}"#,
    ]);
    assert_eq!(feedback.rows(), 4);
    let records = [
        record("a", 1, "small"),
        record("b", 2, "small"),
        record("c", 3, "mid"),
    ];
    assert_eq!(
        labels(&feedback, &records),
        [Some("frontier".into()), Some("small".into()), None],
        "a re-grade wins; d-z names no record"
    );
    let joined = join(&feedback, &records);
    assert_eq!(
        (joined.matched, joined.unmatched, joined.ambiguous),
        (3, 1, 0)
    );
    assert_eq!(joined.len(), 2);
    assert_eq!(
        joined.describe(),
        "4 rows, 1 matching no record, 0 matching several records"
    );

    let typo = r#"{"decision_id": "d-c", "correct_tier": "medium"}"#;
    let error = feedback
        .parse(
            Cursor::new(format!("\n{typo}")),
            Path::new("fb.jsonl"),
            &TIERS,
        )
        .unwrap_err();
    assert_eq!(error.line, 2);
    assert!(
        error.message.contains(r#""medium" is not a tier"#),
        "{error}"
    );
    let error = feedback
        .parse(
            Cursor::new(r#"{"id": "c", "correct_tier": "mid"}"#),
            Path::new("fb.jsonl"),
            &TIERS,
        )
        .unwrap_err();
    assert!(error.message.contains("needs a decision_id"), "{error}");
}

/// A request id is the client's to choose: a row keyed on one labels a record only when exactly one
/// record carries it; the decision id always wins over it.
#[test]
fn a_request_id_row_labels_only_a_record_it_names_alone() {
    let mut first = record("a", 1, "small");
    first.request_id = "client-chosen".into();
    let mut second = record("b", 2, "small");
    second.request_id = "client-chosen".into();
    let third = record("c", 3, "small");
    let mut without_id = record("e", 4, "small");
    without_id.decision_id = None;
    without_id.request_id = "e-only".into();
    let mut no_keys = record("f", 5, "small");
    no_keys.decision_id = None;
    no_keys.request_id = String::new();
    let records = [first, second, third, without_id, no_keys];

    let feedback = feedback_of(&[
        r#"{"request_id": "client-chosen", "correct_tier": "frontier"}"#,
        r#"{"request_id": "c", "correct_tier": "mid"}"#,
        r#"{"request_id": "e-only", "correct_tier": "small"}"#,
        r#"{"request_id": "", "correct_tier": "mid"}"#,
        r#"{"decision_id": "", "correct_tier": "mid"}"#,
    ]);
    assert_eq!(
        labels(&feedback, &records),
        [None, None, Some("mid".into()), Some("small".into()), None],
        "a record without a decision id labels through a request id only it has; empty keys name nothing"
    );
    let joined = join(&feedback, &records);
    assert_eq!(
        (joined.matched, joined.unmatched, joined.ambiguous),
        (2, 2, 1)
    );

    // Both keys on one row: the decision id decides; a decision-id row beats a request-id row.
    let feedback = feedback_of(&[
        r#"{"decision_id": "d-c", "request_id": "client-chosen", "correct_tier": "small"}"#,
        r#"{"request_id": "c", "correct_tier": "frontier"}"#,
    ]);
    assert_eq!(
        labels(&feedback, &records),
        [None, None, Some("small".into()), None, None]
    );
}

/// The same log read twice holds every decision id twice: a row cannot say which copy it grades.
#[test]
fn a_decision_id_in_two_records_labels_neither() {
    let records = [record("a", 1, "small"), record("a", 1, "small")];
    let feedback = feedback_of(&[r#"{"decision_id": "d-a", "correct_tier": "mid"}"#]);
    assert_eq!(labels(&feedback, &records), [None, None]);
    assert_eq!(join(&feedback, &records).ambiguous, 1);
}
