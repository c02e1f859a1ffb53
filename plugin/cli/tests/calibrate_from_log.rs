#![cfg(test)]
//! `triage calibrate --from-log`: the shipped model's thresholds set for a target on the rows of the
//! constructed access log of `common/decision_log.rs`, without retraining; the config it writes is
//! loaded by `triage route --config` and meets the target on the logged requests.

use std::process::Output;

use serde_json::Value;

mod common;
use common::decision_log::{dataset_rows, log_and_feedback, route_prompts, write_log, LOG_SUMMARY};
use common::{assert_fails, text, triage_in, TempDir};

const SHIPPED_MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/models/default.json");

/// `triage calibrate` on the log (with its feedback and config), writing `out`.
fn calibrate(dir: &TempDir, target: &str, out: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "calibrate",
        "--model",
        SHIPPED_MODEL,
        "--from-log",
        "access.log",
        "--feedback",
        "feedback.jsonl",
        "--base-config",
        "config.json",
        "--target",
        target,
        "--out",
        out,
    ];
    args.extend(extra);
    triage_in(&dir.0, &args)
}

fn read_json(dir: &TempDir, name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.path(name)).unwrap()).unwrap()
}

/// The tiers `triage route --config config` gives the log's 28 usable prompts.
fn routed_tiers(dir: &TempDir, config: &str) -> Vec<String> {
    route_prompts(dir, config)
        .iter()
        .map(|decision| decision["tier"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn calibrate_from_log_writes_a_config_the_router_loads_that_meets_the_target() {
    let dir = TempDir::new("calibrate-log");
    write_log(&dir);
    let output = calibrate(&dir, "max-top-share=0.25", "tight.json", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(
        report.starts_with(&format!("{LOG_SUMMARY}max-top-share=0.25 on 28 rows:\n")),
        "{report}"
    );
    assert!(report.contains("wrote config tight.json"), "{report}");
    assert!(
        text(&output.stderr).contains("warning: few labels: 12 rows need the dearest tier"),
        "28 labelled rows are calibrated on, with a warning: {}",
        text(&output.stderr)
    );

    let tight = read_json(&dir, "tight.json");
    let calibrated = &tight["model"]["meta"]["calibrated"];
    assert_eq!(calibrated["from_log"], serde_json::json!(["access.log"]));
    assert_eq!(
        calibrated["feedback"],
        serde_json::json!(["feedback.jsonl"])
    );
    assert_eq!(calibrated["data"], serde_json::json!([]));
    assert_eq!(calibrated["rows"], 28);
    let point = &calibrated["operating_point"];
    assert_eq!(point["tiers"][2]["name"], "frontier");
    let top_share = point["tiers"][2]["share"].as_f64().unwrap();
    assert!(top_share <= 0.25, "{point}");
    assert_eq!(
        tight["tiers"][1]["max_score"], point["thresholds"][1],
        "the config's thresholds are the operating point's"
    );
    assert_eq!(tight["tiers"][0]["model"], "s", "the base config is kept");

    // The router loads the written config, and its decisions on the logged prompts meet the target.
    let tiers = routed_tiers(&dir, "tight.json");
    assert_eq!(tiers.len(), 28);
    let top_calls = tiers.iter().filter(|tier| *tier == "frontier").count();
    assert!(
        top_calls <= 7,
        "{top_calls} of 28 calls to frontier: {tiers:?}"
    );
    assert_eq!(top_calls as f64 / 28.0, top_share);

    // A looser cap buys quality with a different threshold.
    let output = calibrate(&dir, "max-top-share=0.75", "loose.json", &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let loose = read_json(&dir, "loose.json");
    let loose_point = &loose["model"]["meta"]["calibrated"]["operating_point"];
    assert_ne!(loose_point["thresholds"], point["thresholds"]);
    assert!(
        loose_point["quality"].as_f64().unwrap() > point["quality"].as_f64().unwrap(),
        "{loose_point} vs {point}"
    );
    let loose_top_calls = routed_tiers(&dir, "loose.json")
        .iter()
        .filter(|tier| *tier == "frontier")
        .count();
    assert!(loose_top_calls <= 21, "{loose_top_calls}");
}

#[test]
fn calibrate_pools_dataset_rows_and_log_rows() {
    let dir = TempDir::new("calibrate-pool");
    write_log(&dir);
    dir.write("rows.jsonl", &dataset_rows());
    let output = calibrate(
        &dir,
        "max-cost=0.5",
        "pooled.json",
        &["--data", "rows.jsonl"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(
        report.contains("from the log: 28 rows of 35 records"),
        "{report}"
    );
    assert!(report.contains("max-cost=0.5 on 56 rows:\n"), "{report}");
    let calibrated = &read_json(&dir, "pooled.json")["model"]["meta"]["calibrated"];
    assert_eq!(calibrated["rows"], 56);
    assert_eq!(calibrated["data"], serde_json::json!(["rows.jsonl"]));
    assert_eq!(calibrated["from_log"], serde_json::json!(["access.log"]));
    let cost = calibrated["operating_point"]["cost_vs_top"]
        .as_f64()
        .unwrap();
    assert!(cost <= 0.5, "{cost}");
}

#[test]
fn calibrate_from_log_needs_a_base_config_and_calibrate_needs_some_rows() {
    let dir = TempDir::new("calibrate-args");
    let (log, feedback) = log_and_feedback();
    dir.write("access.log", &log);
    dir.write("feedback.jsonl", &feedback);
    let args = [
        "calibrate",
        "--model",
        SHIPPED_MODEL,
        "--target",
        "max-top-share=0.25",
        "--out",
        "c.json",
    ];
    let run = |extra: &[&str]| triage_in(&dir.0, &[&args[..], extra].concat());

    let output = run(&["--from-log", "access.log"]);
    assert_eq!(output.status.code(), Some(2));
    let error = text(&output.stderr);
    assert!(
        error.contains("required arguments were not provided") && error.contains("--base-config"),
        "{error}"
    );

    let output = run(&[]);
    assert_eq!(output.status.code(), Some(2));
    let error = text(&output.stderr);
    assert!(
        error.contains("required arguments were not provided")
            && error.contains("--data")
            && error.contains("--from-log"),
        "{error}"
    );

    let output = run(&["--data", "rows.jsonl", "--feedback", "feedback.jsonl"]);
    assert_fails(&output, 2, "--from-log");

    dir.write(
        "custom.json",
        r#"{"tiers": [{"name": "cheap", "max_score": 0.5}, {"name": "dear"}]}"#,
    );
    let output = run(&["--from-log", "access.log", "--base-config", "custom.json"]);
    assert_fails(&output, 1, "must be named among small, mid, frontier");
    assert!(!dir.path("c.json").exists());
}

/// A feedback row whose key names no record, or a request id two records carry (a client may pick
/// its own), labels nothing; `--from-log` prints how many there were.
#[test]
fn feedback_matching_no_record_or_several_is_counted_and_labels_nothing() {
    let dir = TempDir::new("calibrate-log-unmatched");
    write_log(&dir);
    let (log, feedback) = log_and_feedback();
    // A second log holding another request that carried easy-5's request id.
    let easy = log
        .lines()
        .find(|line| line.contains(r#""request_id":"easy-5""#))
        .unwrap();
    let twin = easy.replace(r#""decision_id":"d-easy-5""#, r#""decision_id":"d-twin""#);
    assert_ne!(twin, easy);
    dir.write("twin.log", &format!("{twin}\n"));
    let extra = [
        serde_json::json!({"request_id": "easy-5", "correct_tier": "frontier"}),
        serde_json::json!({"decision_id": "d-nobody", "correct_tier": "mid"}),
    ];
    dir.write(
        "feedback.jsonl",
        &format!("{feedback}{}\n{}\n", extra[0], extra[1]),
    );
    let output = calibrate(
        &dir,
        "max-top-share=0.25",
        "out.json",
        &["--from-log", "twin.log"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(
        report.contains("by label rule: feedback 8, "),
        "the two extra rows label nothing: {report}"
    );
    assert!(
        report.contains("feedback: 10 rows, 1 matching no record, 1 matching several records\n"),
        "{report}"
    );
}

#[test]
fn label_rules_keep_only_the_trusted_labels_and_refuse_unknown_names() {
    let dir = TempDir::new("calibrate-log-rules");
    write_log(&dir);
    let trusted = ["--label-rules", "feedback,override"];
    let output = calibrate(&dir, "max-top-share=0.5", "trusted.json", &trusted);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(
        report.starts_with(
            "from the log: 12 rows of 35 records (2 lines not records); by label rule: \
             feedback 8, override 4, escalation 0, served 0\n"
        ),
        "{report}"
    );
    assert!(
        report.contains("16 labelled only by a rule left out (--label-rules)"),
        "{report}"
    );
    let output = calibrate(
        &dir,
        "max-top-share=0.5",
        "never.json",
        &["--label-rules", "feedback,verified"],
    );
    assert_fails(
        &output,
        2,
        "\"verified\" is not one of feedback, override, escalation, served",
    );
}
