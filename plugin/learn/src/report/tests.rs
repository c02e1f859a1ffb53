//! A hand-computed log of 9 requests in two windows three hours apart (the two windows between them
//! are empty). Costs (µ$) come from the priced test config: small 210, mid 3,500, frontier 21,000.
//!
//! 22:00  a1 small, feedback small (right)       01:00  b1 small escalated to mid
//!        a2 mid, feedback frontier (wrong)              b2 shadow: served mid, decided small
//!        a3 override mid -> frontier, feedback          b3 explicit model on frontier, feedback mid
//!           frontier (triage chose mid: wrong)          b4 small, feedback small (right)
//!        a4 fail-open on mid, usage unknown             b5 rule -> frontier

use std::io::Cursor;
use std::path::Path;

use triage_core::{Applied, Escalation, OverrideRecord};

use super::*;
use crate::log::testing::{memory_log, micro_usd, misrouted, record, MemoryLog, NO_LOGS};

const HOUR: u64 = 3_600_000;
/// 2023-11-14 22:00 UTC.
const T0: u64 = 1_699_999_200_000;
const TIERS: [&str; 3] = ["small", "mid", "frontier"];

fn records() -> Vec<DecisionRecord> {
    let a1 = record("a1", T0 + 60_000, "small");
    let a2 = record("a2", T0 + 120_000, "mid");
    let mut a3 = record("a3", T0 + 180_000, "frontier");
    a3.cause = "override".into();
    a3.override_ = Some(OverrideRecord {
        from: "mid".into(),
        to: "frontier".into(),
    });
    let mut a4 = record("a4", T0 + HOUR - 1, "mid");
    a4.cause = "fail_open".into();
    a4.fail_open = Some("invalid_json".into());
    a4.usage = None;
    a4.cost_micro_usd = None;
    a4.top_tier_cost_micro_usd = None;
    a4.decided_cost_micro_usd = None;

    let b = T0 + 3 * HOUR;
    let mut b1 = record("b1", b, "mid");
    b1.decided_tier = "small".into();
    b1.escalations = vec![Escalation {
        from: "small".into(),
        to: "mid".into(),
        cause: "empty".into(),
        status: Some(200),
        abandoned_usage: None,
    }];
    let mut b2 = record("b2", b + 1, "mid");
    b2.mode = Applied::Shadow;
    b2.decided_tier = "small".into();
    b2.decided_cost_micro_usd = Some(micro_usd("small"));
    let mut b3 = record("b3", b + 2, "frontier");
    b3.cause = "explicit_model".into();
    let b4 = record("b4", b + 3, "small");
    let mut b5 = record("b5", b + 4, "frontier");
    b5.cause = "rule".into();
    b5.rule = Some("proofs".into());
    vec![a1, a2, a3, a4, b1, b2, b3, b4, b5]
}

/// The log of `records`, with two lines that are not records.
fn log_of(records: &[DecisionRecord]) -> MemoryLog {
    memory_log("access.log", records, 2)
}

fn log() -> MemoryLog {
    log_of(&records())
}

fn feedback() -> Feedback {
    let rows = r#"{"decision_id": "d-a1", "correct_tier": "small"}
{"decision_id": "d-a2", "correct_tier": "frontier"}
{"decision_id": "d-a3", "correct_tier": "frontier"}
{"decision_id": "d-b3", "correct_tier": "mid"}
{"request_id": "b4", "correct_tier": "small"}
{"decision_id": "ghost", "correct_tier": "mid"}"#;
    let mut feedback = Feedback::default();
    feedback
        .parse(Cursor::new(rows), Path::new("fb"), &TIERS)
        .unwrap();
    feedback
}

fn report(window_ms: Option<u64>) -> Report {
    build(&[log()], &feedback(), &TIERS, window_ms).unwrap()
}

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|actual| (actual - expected).abs() < 1e-12)
}

fn shares(summary: &Summary) -> Vec<(String, usize)> {
    summary
        .tiers
        .iter()
        .map(|tier| (tier.tier.clone(), tier.requests))
        .collect()
}

#[test]
fn records_fall_into_aligned_windows_and_empty_windows_are_skipped() {
    let report = report(None);
    assert_eq!(report.window, "1h", "4 hours of log: 1h windows");
    let starts: Vec<(u64, &str, usize)> = report
        .windows
        .iter()
        .map(|w| (w.start_ms, w.start.as_str(), w.cumulative_requests))
        .collect();
    assert_eq!(
        starts,
        [
            (T0, "2023-11-14 22:00", 4),
            (T0 + 3 * HOUR, "2023-11-15 01:00", 9)
        ]
    );
    assert_eq!(report.windows[0].end_ms, T0 + HOUR);
    let daily = self::report(Some(24 * HOUR));
    assert_eq!(daily.window, "1d");
    let counts: Vec<usize> = daily.windows.iter().map(|w| w.summary.requests).collect();
    assert_eq!(counts, [4, 5], "the log straddles midnight UTC");
    // Windows start at multiples of their width since the epoch: 4h ones split at midnight, the
    // 7h one from 20:00 to 03:00 holds the whole log.
    assert_eq!(self::report(Some(4 * HOUR)).windows.len(), 2);
    let seven = self::report(Some(7 * HOUR));
    assert_eq!(seven.windows.len(), 1);
    assert_eq!(seven.windows[0].start, "2023-11-14 20:00");
}

#[test]
fn the_first_window_by_hand() {
    let window = &report(None).windows[0].summary;
    assert_eq!(window.requests, 4);
    assert_eq!(
        shares(window),
        [
            ("small".into(), 1),
            ("mid".into(), 2),
            ("frontier".into(), 1)
        ]
    );
    assert_eq!(window.tiers[1].share, 0.5);
    assert_eq!(window.cost_known, 3);
    assert!(close(window.cost_usd, 0.024_71));
    assert!(close(window.cost_per_task_usd, 0.024_71 / 3.0));
    assert_eq!(window.priced_both, 3);
    assert!(close(window.top_tier_cost_usd, 0.063));
    assert!(close(window.savings, 1.0 - 24_710.0 / 63_000.0));
    assert_eq!((window.labelled, window.correct), (3, 1));
    assert!(close(window.accuracy, 1.0 / 3.0));
    assert_eq!((window.automatic, window.overridden), (3, 1));
    assert!(close(window.override_rate, 1.0 / 3.0));
    assert_eq!(window.escalation_rate, Some(0.0));
    assert_eq!(window.fail_open_share, Some(0.25));
    assert_eq!(window.unknown_usage, 1);
    assert_eq!(window.shadow_share, Some(0.0));
    assert_eq!(window.shadow_effect, None);
}

#[test]
fn the_second_window_by_hand() {
    let window = &report(None).windows[1].summary;
    assert_eq!(window.requests, 5);
    assert_eq!(
        shares(window),
        [
            ("small".into(), 1),
            ("mid".into(), 2),
            ("frontier".into(), 2)
        ]
    );
    assert!(close(window.cost_usd, 0.049_21));
    assert!(close(window.cost_per_task_usd, 0.049_21 / 5.0));
    assert!(close(window.savings, 1.0 - 49_210.0 / 105_000.0));
    // b3's feedback does not count: an explicit model is not a routing decision.
    assert_eq!((window.labelled, window.correct), (1, 1));
    assert_eq!(window.accuracy, Some(1.0));
    assert_eq!((window.automatic, window.overridden), (4, 0));
    assert_eq!(window.override_rate, Some(0.0));
    assert_eq!(window.escalation_rate, Some(0.2));
    assert_eq!(window.fail_open_share, Some(0.0));
    assert_eq!(window.unknown_usage, 0);
    assert_eq!(window.shadow_share, Some(0.2));
    let effect = window.shadow_effect.as_ref().unwrap();
    assert_eq!(effect.requests, 1);
    assert!(close(Some(effect.served_cost_usd), 0.0035));
    assert!(close(Some(effect.decided_cost_usd), 0.000_21));
    assert!(close(effect.change, 210.0 / 3_500.0 - 1.0));
}

#[test]
fn totals_trend_and_verdicts_by_hand() {
    let report = report(None);
    let totals = &report.totals;
    assert_eq!(totals.requests, 9);
    assert!(close(totals.cost_per_task_usd, 0.073_92 / 8.0));
    assert!(close(totals.savings, 1.0 - 73_920.0 / 168_000.0));
    assert!(close(totals.accuracy, 0.5));
    assert!(close(totals.override_rate, 1.0 / 7.0));
    assert!(close(totals.escalation_rate, 1.0 / 9.0));
    assert!(close(totals.fail_open_share, 1.0 / 9.0));
    assert_eq!(report.inputs.records, 9);
    assert_eq!(report.inputs.lines_not_records, 2);
    assert_eq!(report.inputs.feedback_rows, 6);
    assert_eq!(report.inputs.feedback_unmatched, 1);
    assert_eq!(report.inputs.feedback_ambiguous, 0);

    let trend = &report.trend;
    assert!(close(trend.first_cost_per_task_usd, 0.024_71 / 3.0));
    assert!(close(trend.last_cost_per_task_usd, 0.049_21 / 5.0));
    assert!(close(
        trend.change,
        (0.049_21 / 5.0) / (0.024_71 / 3.0) - 1.0
    ));
    assert_eq!(trend.last_start.as_deref(), Some("2023-11-15 01:00"));

    let statuses: Vec<(&str, Status)> = report
        .verdicts
        .iter()
        .map(|v| (v.target.as_str(), v.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("routing accuracy > 92.0%", Status::NotMet),
            ("override rate < 8.0%", Status::NotMet),
            ("cost per task falling", Status::NotMet),
        ]
    );
    assert_eq!(report.verdicts[0].detail, "50.0% of 4 labelled requests");
}

#[test]
fn one_window_or_no_labels_leaves_a_target_unknown() {
    let report = build(&[log()], &Feedback::default(), &TIERS, Some(30 * 24 * HOUR)).unwrap();
    assert_eq!(report.windows.len(), 1);
    let statuses: Vec<Status> = report.verdicts.iter().map(|v| v.status).collect();
    assert_eq!(statuses, [Status::Unknown, Status::NotMet, Status::Unknown]);
    assert_eq!(report.trend.change, None);
    let text = render_text(&report);
    assert!(
        text.contains("  -  "),
        "accuracy prints '-' without labels:\n{text}"
    );

    let empty = build(&NO_LOGS, &Feedback::default(), &TIERS, None).unwrap();
    assert!(empty.windows.is_empty());
    assert!(render_text(&empty).ends_with("no decision records\n"));
}

#[test]
fn a_tier_the_config_lacks_gets_a_column_after_the_configured_ones() {
    let mut records = records();
    records[0].tier = "ultra".into();
    let report = build(&[log_of(&records)], &Feedback::default(), &TIERS, None).unwrap();
    assert_eq!(report.tiers, ["small", "mid", "frontier", "ultra"]);
    assert_eq!(report.windows[0].summary.tiers[3].requests, 1);
}

#[test]
fn the_text_shows_every_number_of_the_table() {
    let text = render_text(&report(None));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "9 decision records from access.log (2 lines not records); feedback: 6 rows, 1 matching no record, 0 matching several records"
    );
    let row = |label: &str| {
        lines
            .iter()
            .find(|line| line.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} row in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("2023-11-14 22:00")[2..],
        [
            "4",
            "25/50/25",
            "$0.0247",
            "$0.008237",
            "$0.0630",
            "60.8%",
            "33.3%",
            "(3)",
            "33.3%",
            "0.0%",
            "25.0%",
            "1",
            "0.0%"
        ]
    );
    assert_eq!(
        row("totals")[1..],
        [
            "9",
            "22/44/33",
            "$0.0739",
            "$0.009240",
            "$0.1680",
            "56.0%",
            "50.0%",
            "(4)",
            "14.3%",
            "11.1%",
            "11.1%",
            "1",
            "11.1%"
        ]
    );
    assert!(text.contains("small/mid/frontier %"), "{text}");
    assert!(
        text.contains(
            "1 shadowed, 1 priced: decided tiers $0.000210 against $0.003500 served (-94.0%)"
        ),
        "{text}"
    );
    assert!(
        text.contains("first -> last window: $0.008237 -> $0.009842 (+19.5%)"),
        "{text}"
    );
    assert!(
        text.contains(
            "  override rate < 8.0%      NOT MET  14.3% of 7 automatically routed requests\n"
        ),
        "{text}"
    );
}

#[test]
fn the_plots_are_well_formed_svg() {
    let report = report(None);
    for (svg, legend) in [
        (plot::cost_per_task(&report), "cost per task"),
        (plot::rates(&report), "override target 8%"),
    ] {
        crate::plot::well_formed(&svg).unwrap_or_else(|error| panic!("{error}\n{svg}"));
        assert!(svg.contains(legend), "{legend}");
        assert!(svg.contains(">2023-11-15 01:00</text>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
    let rates = plot::rates(&report);
    // Accuracy, override and escalation are defined in both windows: one line each.
    assert_eq!(rates.matches("<polyline").count(), 3);
    assert_eq!(rates.matches("<circle").count(), 6);
    let empty = build(&NO_LOGS, &Feedback::default(), &TIERS, None).unwrap();
    crate::plot::well_formed(&plot::cost_per_task(&empty)).unwrap();
    crate::plot::well_formed(&plot::rates(&empty)).unwrap();
}

#[test]
fn the_json_carries_the_same_numbers() {
    let json = serde_json::to_value(report(None)).unwrap();
    assert_eq!(json["window"], "1h");
    assert_eq!(json["windows"][0]["requests"], 4);
    assert_eq!(json["windows"][0]["start"], "2023-11-14 22:00");
    assert_eq!(json["windows"][1]["cumulative_requests"], 9);
    assert_eq!(json["windows"][1]["escalation_rate"], 0.2);
    assert_eq!(json["windows"][0]["tiers"][1]["tier"], "mid");
    assert_eq!(json["totals"]["labelled"], 4);
    assert_eq!(json["verdicts"][2]["status"], "not_met");
    assert_eq!(json["windows"][0]["shadow_effect"], serde_json::Value::Null);
}

/// The graded automatic requests are a1 (small, right), a2 (mid, wrong: frontier), a3 (triage chose
/// mid, overridden; wrong: frontier) and b4 (small, right); b3's explicit model is not a routing
/// decision. The log's requests all have the same prompt length, so by length each gets small or
/// mid with even odds: a1 and b4 are right half the time, a2 and a3 never.
#[test]
fn the_accuracy_comes_with_prompt_length_at_the_same_tier_shares() {
    let report = report(None);
    let baseline = report.length_baseline.as_ref().unwrap();
    assert_eq!(baseline.requests, 4);
    assert_eq!(baseline.router_accuracy, 0.5);
    assert_eq!(baseline.length_accuracy, 0.25);
    let text = render_text(&report);
    assert!(
        text.contains("triage 50.0%, routing by prompt length at the same tier shares 25.0%"),
        "{text}"
    );

    // Distinct lengths: a1 and b4 shortest, so they take the two small slots, both right. Without
    // usage, b4 leaves both accuracies' base.
    let mut records = records();
    for (id, tokens) in [("a1", 100), ("b4", 200), ("a2", 300), ("a3", 400)] {
        let record = records.iter_mut().find(|r| r.request_id == id).unwrap();
        record.usage.as_mut().unwrap().prompt_tokens = tokens;
    }
    let by_length = build(&[log_of(&records)], &feedback(), &TIERS, None).unwrap();
    let baseline = by_length.length_baseline.unwrap();
    assert_eq!(
        (baseline.router_accuracy, baseline.length_accuracy),
        (0.5, 0.5)
    );
    // b4 without usage: a1, a2 and a3 tie on length over one small and two mid slots, so a1 is
    // right a third of the time.
    let baseline = build(&[log_without_usage("b4")], &feedback(), &TIERS, None)
        .unwrap()
        .length_baseline
        .unwrap();
    assert_eq!(baseline.requests, 3);
    assert_eq!(baseline.router_accuracy, 1.0 / 3.0);
    assert!((baseline.length_accuracy - 1.0 / 9.0).abs() < 1e-12);

    let unlabelled = build(&[self::log()], &Feedback::default(), &TIERS, None).unwrap();
    assert_eq!(unlabelled.length_baseline, None);
    assert!(!render_text(&unlabelled).contains("baseline"));
}

fn log_without_usage(id: &str) -> MemoryLog {
    let mut records = records();
    for record in &mut records {
        if record.request_id == id {
            record.usage = None;
        }
    }
    log_of(&records)
}

/// Feedback keyed on a request id two requests carried labels neither: the report counts the row as
/// matching several records and grades nothing with it.
#[test]
fn feedback_on_a_shared_request_id_grades_nothing() {
    let mut records = records();
    records[0].request_id = "client-chosen".into();
    records[1].request_id = "client-chosen".into();
    let rows = r#"{"request_id": "client-chosen", "correct_tier": "frontier"}
{"decision_id": "d-b4", "correct_tier": "small"}"#;
    let mut feedback = Feedback::default();
    feedback
        .parse(Cursor::new(rows), Path::new("fb"), &TIERS)
        .unwrap();
    let report = build(&[log_of(&records)], &feedback, &TIERS, None).unwrap();
    assert_eq!(report.inputs.feedback_rows, 2);
    assert_eq!(report.inputs.feedback_ambiguous, 1);
    assert_eq!(report.inputs.feedback_unmatched, 0);
    assert_eq!(
        report.totals.labelled, 1,
        "only b4, through its decision id"
    );
    assert!(close(report.totals.accuracy, 1.0));
    assert!(render_text(&report)
        .lines()
        .next()
        .unwrap()
        .ends_with("feedback: 2 rows, 0 matching no record, 1 matching several records"));
}

#[test]
fn requests_the_route_table_sent_elsewhere_are_counted_under_the_serving_tier() {
    let mut unknown = misrouted("u", T0, "mid", "catch_all", None);
    unknown.cost_micro_usd = None;
    let log = memory_log(
        "access.log",
        &[
            record("ok", T0, "mid"),
            misrouted("s", T0, "mid", "tier_small", Some("small")),
            unknown,
        ],
        0,
    );
    let mixed = build(&[log], &Feedback::default(), &TIERS, None).unwrap();
    let totals = &mixed.totals;
    assert_eq!((totals.tier_mismatches, totals.unknown_cluster), (2, 1));
    assert_eq!(
        shares(totals),
        [
            ("small".into(), 1),
            ("mid".into(), 2),
            ("frontier".into(), 0)
        ]
    );
    assert_eq!(
        totals.cost_known, 2,
        "the unknown cluster's cost is not guessed"
    );
    let text = render_text(&mixed);
    assert!(
        text.contains(
            "tier mismatches: 2 of 3 requests served from another cluster than the routed \
             tier's (1 from a cluster no tier names, cost unknown)"
        ),
        "{text}"
    );
    let json = serde_json::to_value(&mixed).unwrap();
    assert_eq!(json["totals"]["tier_mismatches"], 2);
    assert_eq!(json["totals"]["unknown_cluster"], 1);
    assert!(
        !render_text(&report(None)).contains("tier mismatches"),
        "no line without a mismatch"
    );
}

/// The logs are read one after the other, a record at a time: cut into files, the same records
/// report the same, the default window spanning every file and feedback labelling records in any.
#[test]
fn a_report_over_several_logs_equals_the_report_over_their_concatenation() {
    let records = records();
    let parts = [
        memory_log("one.log", &records[..3], 1),
        memory_log("two.log", &records[3..7], 0),
        memory_log("three.log", &records[7..], 1),
    ];
    for (feedback, window_ms) in [
        (feedback(), None),
        (Feedback::default(), Some(HOUR)),
        (Feedback::default(), None),
    ] {
        let whole = build(&[log()], &feedback, &TIERS, window_ms).unwrap();
        let mut cut = build(&parts, &feedback, &TIERS, window_ms).unwrap();
        assert_eq!(cut.inputs.logs, ["one.log", "two.log", "three.log"]);
        cut.inputs.logs = whole.inputs.logs.clone();
        assert_eq!(cut, whole, "feedback {} rows", feedback.rows());
    }
}
