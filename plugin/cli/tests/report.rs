#![cfg(test)]
//! `triage report` on a constructed access log: three hourly windows of four requests, with lines
//! that are not records, feedback, an override, an escalation, a fail-open, a shadowed request and an
//! explicit model. Costs in µ$ per request: small 210, mid 3,500, frontier 21,000 (the top tier).
//!
//! 10:00  frontier (feedback frontier), frontier (feedback frontier), mid, fail-open on mid (usage
//!        unknown)                                      cost/task 45,500 / 3 = 15,166.7 µ$
//! 11:00  small (feedback small), mid after escalating from small, shadow: served mid, decided small
//!        (feedback small), small                       cost/task  7,420 / 4 =  1,855.0 µ$
//! 12:00  small (feedback small), small, override small -> mid, explicit model on frontier
//!                                                      cost/task 24,920 / 4 =  6,230.0 µ$

use serde_json::{json, Value};

mod common;
use common::{triage, TempDir};

/// 2024-05-01 10:00 UTC.
const T: u64 = 1_714_557_600_000;

fn cost(tier: &str) -> f64 {
    match tier {
        "small" => 210.0,
        "mid" => 3_500.0,
        _ => 21_000.0,
    }
}

/// An enforced, scored, answered request served by `tier`, `minute` minutes after 10:00.
fn record(id: &str, minute: u64, tier: &str) -> Value {
    json!({
        "v": 3, "decision_id": format!("d-{id}"), "request_id": id, "start_ms": T + minute * 60_000, "api": "openai_chat",
        "mode": "enforce", "tier": tier, "decided_tier": tier, "cause": "scored", "rule": null,
        "fail_open": null, "score": 0.2, "reasons": ["tokens+0.10"], "requested_model": "auto",
        "model": format!("{tier}-model"), "override": null, "escalations": [], "status": 200,
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100},
        "cost_micro_usd": cost(tier), "top_tier_cost_micro_usd": cost("frontier"),
        "decided_cost_micro_usd": cost(tier), "decision_us": 25, "request": null
    })
}

fn with(mut record: Value, changes: Value) -> Value {
    for (key, value) in changes.as_object().unwrap() {
        record[key] = value.clone();
    }
    record
}

fn access_log() -> String {
    let lines = [
        record("w1a", 5, "frontier"),
        record("w1b", 10, "frontier"),
        record("w1c", 20, "mid"),
        with(
            record("w1d", 59, "mid"),
            json!({"cause": "fail_open", "fail_open": "invalid_json", "score": null, "usage": null,
                   "cost_micro_usd": null, "top_tier_cost_micro_usd": null,
                   "decided_cost_micro_usd": null}),
        ),
        with(record("w2a", 60, "small"), json!({"status": 201})),
        with(
            record("w2b", 70, "mid"),
            json!({"decided_tier": "small",
                   "escalations": [{"from": "small", "to": "mid", "cause": "empty"}]}),
        ),
        with(
            record("w2c", 80, "mid"),
            json!({"mode": "shadow", "decided_tier": "small", "model": null,
                   "decided_cost_micro_usd": cost("small")}),
        ),
        record("w2d", 119, "small"),
        record("w3a", 120, "small"),
        record("w3b", 130, "small"),
        with(
            record("w3c", 140, "mid"),
            json!({"cause": "override", "override": {"from": "small", "to": "mid"}}),
        ),
        with(
            record("w3d", 150, "frontier"),
            json!({"cause": "explicit_model", "score": null, "requested_model": "o3"}),
        ),
    ];
    let mut log = String::from("-\n");
    for (index, line) in lines.iter().enumerate() {
        log += &line.to_string();
        log.push('\n');
        if index == 5 {
            log += "\n-\n";
        }
    }
    log
}

const FEEDBACK: &str = r#"{"decision_id": "d-w1a", "correct_tier": "frontier"}
{"decision_id": "d-w1b", "correct_tier": "frontier"}
{"decision_id": "d-w2a", "correct_tier": "small"}
{"decision_id": "d-w2c", "correct_tier": "small"}
{"decision_id": "d-w3a", "correct_tier": "small"}
{"decision_id": "nobody", "correct_tier": "mid"}
"#;

fn close(value: &Value, expected: f64) -> bool {
    value
        .as_f64()
        .is_some_and(|value| (value - expected).abs() < 1e-9)
}

#[test]
fn the_report_prints_each_window_the_trend_and_the_verdicts() {
    let dir = TempDir::new("text");
    let log = dir.write("access.log", &access_log());
    let feedback = dir.write("feedback.jsonl", FEEDBACK);
    let output = triage(&["report", &log, "--feedback", &feedback, "--window", "1h"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("12 decision records from {log} (3 lines not records); feedback: 6 rows, 1 matching no record, 0 matching several records")
    );
    assert_eq!(
        lines[1],
        "windows of 1h (UTC start); costs in USD; top-tier cost and savings over requests priced both ways"
    );
    let cells = |label: &str| -> Vec<String> {
        let line = lines
            .iter()
            .find(|line| line.starts_with(label))
            .unwrap_or_else(|| panic!("no {label:?} row in\n{text}"));
        line.split_whitespace().map(String::from).collect()
    };
    assert_eq!(
        cells("2024-05-01 10:00")[2..],
        [
            "4",
            "0/50/50",
            "$0.0455",
            "$0.015167",
            "$0.0630",
            "27.8%",
            "100.0%",
            "(2)",
            "0.0%",
            "0.0%",
            "25.0%",
            "1",
            "0.0%"
        ]
    );
    assert_eq!(
        cells("2024-05-01 11:00")[2..],
        [
            "4",
            "50/50/0",
            "$0.0074",
            "$0.001855",
            "$0.0840",
            "91.2%",
            "100.0%",
            "(2)",
            "0.0%",
            "25.0%",
            "0.0%",
            "0",
            "25.0%"
        ]
    );
    assert_eq!(
        cells("2024-05-01 12:00")[2..],
        [
            "4",
            "50/25/25",
            "$0.0249",
            "$0.006230",
            "$0.0840",
            "70.3%",
            "100.0%",
            "(1)",
            "33.3%",
            "0.0%",
            "0.0%",
            "0",
            "0.0%"
        ]
    );
    assert_eq!(
        cells("totals")[1..],
        [
            "12",
            "33/42/25",
            "$0.0778",
            "$0.007076",
            "$0.2310",
            "66.3%",
            "100.0%",
            "(5)",
            "10.0%",
            "8.3%",
            "8.3%",
            "1",
            "8.3%"
        ]
    );
    assert!(
        text.contains("first -> last window: $0.015167 -> $0.006230 (-58.9%)"),
        "{text}"
    );
    assert!(
        text.contains("decided tiers $0.000210 against $0.003500 served (-94.0%)"),
        "{text}"
    );
    for verdict in [
        "routing accuracy > 92.0%  met      100.0% of 5 labelled requests",
        "override rate < 8.0%      NOT MET  10.0% of 10 automatically routed requests",
        "cost per task falling     met      $0.015167 -> $0.006230 (-58.9%) from the first to the last window",
    ] {
        assert!(text.contains(verdict), "{verdict:?} missing in\n{text}");
    }

    // By default a handful of windows: 10:05 to 12:30 gives six of 30 minutes.
    let output = triage(&["report", &log]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("windows of 30m"), "{text}");
    assert!(text.contains("\n2024-05-01 12:30  "), "{text}");
    // 10:30 holds only the fail-open request, whose usage is unknown: nothing is priced.
    let fail_open_only: Vec<&str> = text
        .lines()
        .find(|line| line.starts_with("2024-05-01 10:30"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        fail_open_only[2..],
        ["1", "0/100/0", "-", "-", "-", "-", "-", "-", "0.0%", "100.0%", "1", "0.0%"]
    );

    // Without feedback there is no accuracy: "-" and an unknown verdict.
    let output = triage(&["report", &log, "--window", "1d"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("windows of 1d"), "{text}");
    assert!(
        text.contains("routing accuracy > 92.0%  unknown  no feedback"),
        "{text}"
    );
    assert!(text.contains("cost per task falling     unknown"), "{text}");
}

#[test]
fn the_json_holds_the_same_numbers() {
    let dir = TempDir::new("json");
    let log = dir.write("access.log", &access_log());
    let feedback = dir.write("feedback.jsonl", FEEDBACK);
    // --feedback takes one file, so a log after it is still a log.
    let output = triage(&[
        "report",
        "--feedback",
        &feedback,
        "--json",
        "--window",
        "60m",
        &log,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["window"], "1h");
    assert_eq!(report["inputs"]["records"], 12);
    assert_eq!(report["inputs"]["lines_not_records"], 3);
    assert_eq!(report["inputs"]["feedback_unmatched"], 1);
    assert_eq!(report["inputs"]["feedback_ambiguous"], 0);
    let windows = report["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    assert_eq!(windows[0]["start_ms"], T);
    assert!(close(&windows[0]["cost_per_task_usd"], 0.0455 / 3.0));
    assert_eq!(windows[0]["cost_known"], 3);
    assert!(close(&windows[0]["savings"], 1.0 - 45_500.0 / 63_000.0));
    assert_eq!(windows[1]["escalated"], 1);
    assert!(close(
        &windows[1]["shadow_effect"]["change"],
        210.0 / 3_500.0 - 1.0
    ));
    assert_eq!(windows[2]["cumulative_requests"], 12);
    assert!(close(&windows[2]["override_rate"], 1.0 / 3.0));
    let totals = &report["totals"];
    assert_eq!(totals["requests"], 12);
    assert_eq!(totals["labelled"], 5);
    assert!(close(&totals["accuracy"], 1.0));
    assert!(close(&totals["override_rate"], 0.1));
    assert!(close(&totals["escalation_rate"], 1.0 / 12.0));
    assert!(close(&totals["fail_open_share"], 1.0 / 12.0));
    assert_eq!(totals["unknown_usage"], 1);
    assert!(close(&totals["cost_per_task_usd"], 0.077_84 / 11.0));
    assert!(close(&totals["savings"], 1.0 - 77_840.0 / 231_000.0));
    assert_eq!(
        totals["tiers"][0],
        json!({"tier": "small", "requests": 4, "share": 4.0 / 12.0})
    );
    assert!(close(
        &report["trend"]["change"],
        6_230.0 / (45_500.0 / 3.0) - 1.0
    ));
    let statuses: Vec<&str> = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["met", "not_met", "met"]);
}

#[test]
fn plots_are_valid_svg() {
    let dir = TempDir::new("plot");
    let log = dir.write("access.log", &access_log());
    let feedback = dir.write("feedback.jsonl", FEEDBACK);
    let plots = dir.0.join("plots");
    let output = triage(&[
        "report",
        &log,
        "--feedback",
        &feedback,
        "--plot",
        plots.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (name, legend) in [
        ("cost-per-task.svg", "cost per task"),
        ("rates.svg", "routing accuracy"),
    ] {
        let svg = std::fs::read_to_string(plots.join(name)).unwrap();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{name}"
        );
        let elements = triage_learn::plot::well_formed(&svg)
            .unwrap_or_else(|error| panic!("{name}: {error}\n{svg}"));
        assert!(elements > 20, "{name}: {elements} elements");
        assert!(
            svg.contains(legend) && svg.contains(">2024-05-01 12:00</text>"),
            "{name}"
        );
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{name}");
    }
}

#[test]
fn bad_input_is_refused_with_its_line() {
    let dir = TempDir::new("bad");
    let newer = access_log().replacen(r#""v":3"#, r#""v":4"#, 1);
    let log = dir.write("newer.log", &newer);
    let output = triage(&["report", &log]);
    assert_eq!(output.status.code(), Some(1));
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("newer.log:2: decision record version 4"),
        "{error}"
    );

    let log = dir.write("access.log", &access_log());
    let feedback = dir.write(
        "fb.jsonl",
        r#"{"decision_id": "d-w1a", "correct_tier": "large"}"#,
    );
    let output = triage(&["report", &log, "--feedback", &feedback]);
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("fb.jsonl:1: correct_tier \"large\""),
        "{error}"
    );
    let output = triage(&["report", &log, "--window", "1y"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a window"));
}

/// Log files are streamed one after the other: the access log cut into three files (the lines that
/// are not records spread over them) reports as the whole, feedback and default window included.
#[test]
fn a_log_cut_into_files_reports_as_the_whole() {
    let dir = TempDir::new("cut");
    let whole = access_log();
    let lines: Vec<&str> = whole.lines().collect();
    let part = |name: &str, range: std::ops::Range<usize>| {
        dir.write(name, &(lines[range].join("\n") + "\n"))
    };
    let parts = [
        part("one.log", 0..5),
        part("two.log", 5..9),
        part("three.log", 9..lines.len()),
    ];
    let log = dir.write("access.log", &whole);
    let feedback = dir.write("feedback.jsonl", FEEDBACK);
    let report = |logs: &[&str]| -> Value {
        let mut args = vec!["report", "--json", "--feedback", &feedback];
        args.extend(logs);
        let output = triage(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut report: Value = serde_json::from_slice(&output.stdout).unwrap();
        report["inputs"]["logs"] = Value::Null;
        report
    };
    let cut = report(&parts.each_ref().map(String::as_str));
    assert_eq!(cut["inputs"]["records"], 12);
    assert_eq!(cut["inputs"]["lines_not_records"], 3);
    assert_eq!(cut, report(&[&log]));
}
