use std::io::Cursor;
use std::path::Path;

use super::feedback::Feedback;
use super::testing::record;
use super::*;

fn parse(text: &str) -> Result<DecisionLog, LogError> {
    parse_log(Cursor::new(text), Path::new("access.log"))
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
        r#"{"v": 1, "request_id": "cut sh"#,
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
    let newer = good.replacen(r#""v":1"#, r#""v":2"#, 1);
    assert_ne!(good, newer);
    let error = parse(&format!("-\n{good}\n{newer}\n")).unwrap_err();
    assert_eq!(error.line, 3);
    assert!(
        error
            .to_string()
            .starts_with("access.log:3: decision record version 2"),
        "{error}"
    );

    let not_a_number = good.replacen(r#""v":1"#, r#""v":"1""#, 1);
    assert_eq!(parse(&not_a_number).unwrap_err().line, 1);

    let broken = good.replacen(r#""tier":"small""#, r#""tier":7"#, 1);
    let error = parse(&format!("{good}\n{broken}")).unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.message.contains("bad decision record"), "{error}");
}

#[test]
fn feedback_joins_by_request_id_and_refuses_unknown_tiers() {
    let mut feedback = Feedback::default();
    let rows = [
        r#"{"request_id": "a", "correct_tier": "mid", "grader": "eval-7"}"#,
        "",
        r#"{"request_id": "b", "correct_tier": "small"}"#,
        r#"{"request_id": "a", "correct_tier": "frontier"}"#,
    ]
    .join("\n");
    feedback
        .parse(Cursor::new(rows), Path::new("fb.jsonl"), &TIERS)
        .unwrap();
    assert_eq!(feedback.rows, 3);
    assert_eq!(feedback.len(), 2);
    assert_eq!(
        feedback.correct_tier("a"),
        Some("frontier"),
        "a re-grade wins"
    );
    assert_eq!(feedback.correct_tier("c"), None);
    assert_eq!(feedback.unmatched(["a", "z"]), 1);

    let typo = r#"{"request_id": "c", "correct_tier": "medium"}"#;
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
        .parse(Cursor::new(r#"{"id": "c"}"#), Path::new("fb.jsonl"), &TIERS)
        .unwrap_err();
    assert!(error.message.contains("request_id"), "{error}");
}
