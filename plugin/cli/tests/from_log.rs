#![cfg(test)]
//! `triage train --from-log` on the constructed access log of `common/decision_log.rs`. The model it
//! writes is loaded by `triage route --config`.

use std::process::Output;

use serde_json::Value;

mod common;
use common::decision_log::{
    dataset_rows, log_and_feedback, route_prompts, write_log, EASY, HARD, LOG_SUMMARY, PRICES,
};
use common::{assert_fails, text, triage_in, TempDir};

fn train(dir: &TempDir, extra: &[&str]) -> Output {
    write_log(dir);
    let mut args = vec![
        "train",
        "--from-log",
        "access.log",
        "--feedback",
        "feedback.jsonl",
        "--config",
        "config.json",
        "--out",
        "model.json",
        "--folds",
        "3",
        "--buckets",
        "1024",
        "--target",
        "max-top-share=0.5",
    ];
    args.extend(extra);
    triage_in(&dir.0, &args)
}

#[test]
fn train_from_log_counts_its_rows_and_writes_a_model_the_router_loads() {
    let dir = TempDir::new("train");
    let output = train(&dir, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(report.starts_with(LOG_SUMMARY), "{report}");
    assert!(
        report.contains("access.log") && report.contains("APGR"),
        "{report}"
    );

    let model =
        triage_core::Model::from_json(&std::fs::read(dir.0.join("model.json")).unwrap()).unwrap();
    assert_eq!(model.buckets, 1024);
    assert_eq!(model.meta["data"][0]["file"], "access.log");
    assert_eq!(model.meta["data"][0]["rows"], 28);
    let cv = &model.meta["cross_validation"][0];
    assert_eq!(cv["rows"], 28);
    assert_eq!(
        cv["positives"], 12,
        "the hard questions, and only they, need a dearer tier"
    );

    // The plugin config with the new model embedded routes requests.
    let mut config: Value = serde_json::from_str(PRICES).unwrap();
    config["model"] =
        serde_json::from_slice(&std::fs::read(dir.0.join("model.json")).unwrap()).unwrap();
    dir.write("routed-config.json", &config.to_string());
    let scores: Vec<f64> = route_prompts(&dir, "routed-config.json")
        .iter()
        .map(|decision| decision["score"].as_f64().unwrap())
        .collect();
    assert_eq!(scores.len(), HARD.len() + EASY.len());
    let mean = |scores: &[f64]| scores.iter().sum::<f64>() / scores.len() as f64;
    let (hard, easy) = scores.split_at(HARD.len());
    assert!(
        mean(hard) > mean(easy),
        "in-sample, hard {hard:?} vs easy {easy:?}"
    );
}

#[test]
fn log_rows_join_dataset_rows() {
    let dir = TempDir::new("both");
    dir.write("rows.jsonl", &dataset_rows());
    let output = train(&dir, &["--data", "rows.jsonl"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let model =
        triage_core::Model::from_json(&std::fs::read(dir.0.join("model.json")).unwrap()).unwrap();
    let files: Vec<(&str, u64)> = model.meta["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["file"].as_str().unwrap(), d["rows"].as_u64().unwrap()))
        .collect();
    assert_eq!(files, [("rows.jsonl", 28), ("access.log", 28)]);
}

#[test]
fn from_log_needs_a_config_and_train_needs_some_rows() {
    let dir = TempDir::new("args");
    let (log, _) = log_and_feedback();
    dir.write("access.log", &log);
    let output = triage_in(
        &dir.0,
        &["train", "--from-log", "access.log", "--out", "m.json"],
    );
    assert_fails(&output, 2, "--config");
    let output = triage_in(&dir.0, &["train", "--out", "m.json"]);
    assert_fails(&output, 2, "--data");

    dir.write(
        "custom.json",
        r#"{"tiers": [{"name": "cheap", "max_score": 0.5}, {"name": "dear"}]}"#,
    );
    let output = triage_in(
        &dir.0,
        &[
            "train",
            "--from-log",
            "access.log",
            "--config",
            "custom.json",
            "--out",
            "m.json",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("must be named among small, mid, frontier"));
    assert!(!dir.0.join("m.json").exists());
}

/// Too few labels to cross-validate: refused with the minimum, and no model written; a few more
/// rows are fitted with a warning.
#[test]
fn train_refuses_too_few_labels_and_warns_about_few() {
    let dir = TempDir::new("few");
    let rows = dataset_rows();
    let eleven: Vec<&str> = rows.lines().take(11).collect();
    dir.write("eleven.jsonl", &eleven.join("\n"));
    let output = triage_in(
        &dir.0,
        &[
            "train",
            "--data",
            "eleven.jsonl",
            "--out",
            "m.json",
            "--buckets",
            "1024",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert!(
        error.contains("each label needs at least 10 rows (2 per fold with 5 folds)"),
        "{error}"
    );
    assert!(!dir.0.join("m.json").exists());

    let output = train(&dir, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout)
            .contains("warning: few labels: 12 rows need the dearest tier and 16 do not"),
        "{}",
        text(&output.stdout)
    );
}
