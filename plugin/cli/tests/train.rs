#![cfg(test)]
//! `triage train` and `triage calibrate` end to end on a tiny synthetic dataset in a temp dir.

use std::process::Output;

use serde_json::Value;

mod common;
use common::{assert_fails, text, triage_in, TempDir};

/// 120 rows: proofs that only the frontier tier answers, and one-line lookups every tier answers;
/// a few of each flipped so the classes overlap.
fn dataset() -> String {
    let mut lines = String::new();
    for i in 0..120 {
        let hard = i % 2 == 0;
        let content = if hard {
            format!("Prove step by step that the sum of the first {i} odd numbers is a square, derive the bound and justify each lemma.")
        } else {
            format!("What is the capital of country number {i}? Answer in one word.")
        };
        let small_fails = hard != (i % 20 == 0 || i % 20 == 1);
        let outcome = |quality: f64, cost: f64, model: &str| {
            format!(
                r#"{{"model":"{model}","quality":{quality},"cost_usd":{cost},"cost_estimated":false}}"#
            )
        };
        let small = outcome(if small_fails { 0.0 } else { 1.0 }, 0.001, "s");
        let mid = outcome(if hard && i % 3 == 0 { 0.0 } else { 1.0 }, 0.003, "m");
        let frontier = outcome(1.0, 0.01, "f");
        lines += &format!(
            r#"{{"id":"syn/{i}","source":"syn","request":{{"model":"auto","messages":[{{"role":"user","content":"{content}"}}]}},"outcomes":{{"small":{small},"mid":{mid},"frontier":{frontier}}}}}"#
        );
        lines.push('\n');
    }
    lines
}

fn train_in(dir: &TempDir) -> Output {
    std::fs::write(dir.path("rows.jsonl"), dataset()).unwrap();
    triage_in(
        &dir.0,
        &[
            "train",
            "--data",
            "rows.jsonl",
            "--out",
            "model.json",
            "--folds",
            "3",
            "--buckets",
            "1024",
            "--l2",
            "0.001,0.01",
            "--seed",
            "7",
            "--target",
            "max-top-share=0.6",
        ],
    )
}

#[test]
fn train_writes_a_deterministic_model_with_its_provenance() {
    let (first, second) = (TempDir::new("train"), TempDir::new("train"));
    let output = train_in(&first);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(
        report.contains("rows.jsonl") && report.contains("APGR"),
        "{report}"
    );
    assert!(
        report.contains("buckets    1024"),
        "the grid is reported: {report}"
    );
    assert!(
        report.contains("APGR 95% CI") && report.contains("1000 resamples, seed 1"),
        "the chosen point's intervals are reported: {report}"
    );

    let bytes = std::fs::read(first.path("model.json")).unwrap();
    assert!(train_in(&second).status.success());
    assert_eq!(
        bytes,
        std::fs::read(second.path("model.json")).unwrap(),
        "same seed, same bytes"
    );

    let model = triage_core::Model::from_json(&bytes).unwrap();
    assert_eq!(model.buckets, 1024);
    assert_eq!(model.tiers, ["small", "mid", "frontier"]);
    assert_eq!(model.thresholds.len(), 2);
    let meta = &model.meta;
    assert_eq!(
        meta["command"],
        "triage train --data rows.jsonl --out model.json --folds 3 --buckets 1024 --l2 0.001,0.01 --seed 7 --target max-top-share=0.6"
    );
    assert_eq!(meta["data"][0]["file"], "rows.jsonl");
    assert_eq!(meta["data"][0]["rows"], 120);
    assert_eq!(meta["seed"], 7);
    assert_eq!(meta["folds"], 3);
    assert_eq!(meta["grid"].as_array().unwrap().len(), 2);
    let cv = &meta["cross_validation"][0];
    assert_eq!(cv["rows"], 120);
    // The proofs are separable from the lookups: the out-of-fold AUC is high.
    assert!(cv["model"]["auc"].as_f64().unwrap() > 0.8, "{cv}");
    let apgr = cv["model"]["apgr"].as_f64().unwrap();
    let interval = &cv["model_apgr_interval"];
    assert!(
        interval["low"].as_f64().unwrap() <= apgr && apgr <= interval["high"].as_f64().unwrap(),
        "{cv}"
    );
    assert!(cv["model_minus_length_apgr"]["estimate"].is_f64(), "{cv}");
    assert_eq!(meta["intervals"]["resamples"], 1000);
    assert_eq!(meta["intervals"]["level"], 0.95);
    let share = meta["thresholds"]["operating_point"]["tiers"][2]["share"]
        .as_f64()
        .unwrap();
    assert!(share <= 0.6, "the target holds out of fold: {share}");

    // Another seed deals other folds.
    std::fs::write(second.path("rows.jsonl"), dataset()).unwrap();
    let other = triage_in(
        &second.0,
        &[
            "train",
            "--data",
            "rows.jsonl",
            "--out",
            "other.json",
            "--folds",
            "3",
            "--buckets",
            "1024",
            "--seed",
            "8",
        ],
    );
    assert!(other.status.success(), "{}", text(&other.stderr));
    assert_ne!(bytes, std::fs::read(second.path("other.json")).unwrap());
}

/// `triage train` on the synthetic rows split into two sources, `first.jsonl` and `second.jsonl`,
/// with `extra` arguments.
fn train_two_sources_in(dir: &TempDir, extra: &[&str]) -> Output {
    let rows = dataset();
    let lines: Vec<&str> = rows.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    dir.write("first.jsonl", &(first.join("\n") + "\n"));
    dir.write("second.jsonl", &(second.join("\n") + "\n"));
    let mut args = vec![
        "train",
        "--data",
        "first.jsonl",
        "second.jsonl",
        "--out",
        "model.json",
        "--folds",
        "3",
        "--buckets",
        "1024",
        "--target",
        "max-top-share=0.6",
    ];
    args.extend(extra);
    triage_in(&dir.0, &args)
}

fn meta_in(dir: &TempDir) -> Value {
    let bytes = std::fs::read(dir.path("model.json")).unwrap();
    triage_core::Model::from_json(&bytes).unwrap().meta
}

#[test]
fn train_on_two_sources_reports_leave_one_source_out_unless_told_not_to() {
    let dir = TempDir::new("train");
    let output = train_two_sources_in(&dir, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    let (k_fold, rest) = report
        .split_once("leave-one-source-out (fit on the other sources")
        .unwrap_or_else(|| panic!("no leave-one-source-out table: {report}"));
    assert!(k_fold.contains("cross-validated, out-of-fold"), "{report}");
    let (loso, _) = rest.split_once("platt:").unwrap();
    let source_lines: Vec<&str> = loso
        .lines()
        .filter(|line| line.starts_with("first.jsonl") || line.starts_with("second.jsonl"))
        .collect();
    assert_eq!(source_lines.len(), 2, "{loso}");
    assert!(
        source_lines.iter().all(|line| line.contains('[')),
        "each source has its APGR interval: {loso}"
    );
    assert!(
        loso.contains("leave-one-source-out: the model's APGR is"),
        "the verdict: {loso}"
    );

    let meta = meta_in(&dir);
    let entries = meta["leave_one_source_out"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["first.jsonl", "second.jsonl"]);
    for (entry, cv) in entries
        .iter()
        .zip(meta["cross_validation"].as_array().unwrap())
    {
        assert_eq!(entry["rows"], 60);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(entry), keys(cv), "the same shape as cross_validation");
        assert!(entry["model"]["apgr"].is_f64() && entry["model_apgr_interval"]["low"].is_f64());
    }

    let quick = train_two_sources_in(&dir, &["--no-loso"]);
    assert!(quick.status.success(), "{}", text(&quick.stderr));
    let report = text(&quick.stdout);
    assert!(!report.contains("leave-one-source-out"), "{report}");
    assert!(report.contains("cross-validated, out-of-fold"), "{report}");
    let meta = meta_in(&dir);
    assert!(meta.get("leave_one_source_out").is_none(), "{meta}");
    assert_eq!(meta["cross_validation"].as_array().unwrap().len(), 3);
}

#[test]
fn calibrate_meets_the_target_and_writes_a_config_the_router_loads() {
    let dir = TempDir::new("train");
    assert!(train_in(&dir).status.success());
    let base = r#"{"default_tier": "mid", "tiers": [
        {"name": "small", "model": "tiny", "max_score": 0.1},
        {"name": "mid", "model": "medium", "max_score": 0.2},
        {"name": "frontier", "model": "huge"}]}"#;
    std::fs::write(dir.path("base.json"), base).unwrap();
    let output = triage_in(
        &dir.0,
        &[
            "calibrate",
            "--model",
            "model.json",
            "--data",
            "rows.jsonl",
            "--target",
            "min-quality=0.95",
            "--base-config",
            "base.json",
            "--out",
            "config.json",
            "--model-out",
            "calibrated.json",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    assert!(table.contains("% of always-frontier"), "{table}");

    let config: Value =
        serde_json::from_slice(&std::fs::read(dir.path("config.json")).unwrap()).unwrap();
    let calibrated =
        triage_core::Model::from_json(&std::fs::read(dir.path("calibrated.json")).unwrap())
            .unwrap();
    let thresholds = &calibrated.thresholds;
    assert_eq!(
        config["tiers"][0]["max_score"].as_f64(),
        Some(thresholds[0])
    );
    assert_eq!(
        config["tiers"][1]["max_score"].as_f64(),
        Some(thresholds[1])
    );
    assert_eq!(config["tiers"][2].get("max_score"), None);
    assert_eq!(
        config["tiers"][0]["model"], "tiny",
        "the base config is kept"
    );
    assert_eq!(
        config["model"]["thresholds"][0].as_f64(),
        Some(thresholds[0])
    );
    assert_eq!(calibrated.meta["calibrated"]["target"], "min-quality=0.95");

    // The router with the written config routes the proofs away from the cheapest tier.
    let routed = triage_in(
        &dir.0,
        &["route", "--config", "config.json", "--input", "rows.jsonl"],
    );
    assert!(routed.status.success(), "{}", text(&routed.stderr));
    let decisions: Vec<Value> = text(&routed.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(decisions.len(), 120);
    let (mut quality, mut top_quality) = (0.0, 0.0);
    let rows: Vec<Value> = dataset()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    for (row, decision) in rows.iter().zip(&decisions) {
        let tier = decision["tier"].as_str().unwrap();
        quality += row["outcomes"][tier]["quality"].as_f64().unwrap();
        top_quality += row["outcomes"]["frontier"]["quality"].as_f64().unwrap();
    }
    assert!(quality >= 0.95 * top_quality, "{quality} of {top_quality}");
}

#[test]
fn impossible_targets_and_bad_options_fail_with_a_clear_message() {
    let dir = TempDir::new("train");
    assert!(train_in(&dir).status.success());
    let output = triage_in(
        &dir.0,
        &[
            "calibrate",
            "--model",
            "model.json",
            "--data",
            "rows.jsonl",
            "--target",
            "max-cost=0.01",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = text(&output.stderr);
    assert!(
        error.contains("no thresholds meet max-cost=0.01") && error.contains("of the cost"),
        "{error}"
    );
    let bad = triage_in(
        &dir.0,
        &[
            "train",
            "--data",
            "rows.jsonl",
            "--out",
            "x.json",
            "--buckets",
            "1000",
        ],
    );
    assert_fails(&bad, 1, "power of two");
    assert!(!dir.path("x.json").exists());
}
