#![cfg(test)]
//! `triage train --learning-curve` end to end on two small generated sources, and on a decision log.

use std::process::Output;

use serde_json::{json, Value};

mod common;
use common::decision_log::{body, write_log};
use common::{assert_fails, text, triage_in, TempDir};

/// `rows` rows of a family whose label follows its own made-up words: a row with one of `hard` is
/// answered by the frontier tier only, one with `easy` by both.
fn family(name: &str, hard: &[&str], easy: &[&str], rows: usize) -> String {
    (0..rows)
        .map(|i| {
            let needs_frontier = i % 2 == 0;
            let words = if needs_frontier { hard } else { easy };
            let prompt = format!("tell me about the {}, item {}", words[(i / 2) % words.len()], i / 2);
            let small = if needs_frontier { 0.0 } else { 1.0 };
            json!({"id": format!("{name}/{i}"), "source": name, "request": body(&prompt), "outcomes": {
                "small": {"model": "s", "quality": small, "cost_usd": 0.0001},
                "frontier": {"model": "f", "quality": 1.0, "cost_usd": 0.002}}})
            .to_string()
                + "\n"
        })
        .collect()
}

fn write_families(dir: &TempDir) {
    dir.write(
        "known.jsonl",
        &family("known", &["vexillary"], &["mundane"], 80),
    );
    let hard = [
        "zorblax", "quintrel", "frumious", "snarkle", "grobnet", "plinth",
    ];
    let easy = ["mupple", "dorrin", "wabe", "tove", "borogove", "jubjub"];
    dir.write("unseen.jsonl", &family("unseen", &hard, &easy, 240));
}

fn curve_in(dir: &TempDir, extra: &[&str]) -> Output {
    write_families(dir);
    let mut args = vec![
        "train",
        "--data",
        "known.jsonl",
        "unseen.jsonl",
        "--buckets",
        "4096",
        "--l2",
        "0.01",
        "--learning-curve",
        "unseen.jsonl",
        "--sizes",
        "100,6,24",
    ];
    args.extend(extra);
    triage_in(&dir.0, &args)
}

#[test]
fn the_learning_curve_is_a_table_or_json_and_writes_no_model() {
    let dir = TempDir::new("curve");
    let output = curve_in(&dir, &[]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    assert!(
        table.starts_with("learning curve: unseen.jsonl left out (240 usable rows, split with seed 1: an adaptation pool of 120, a test part of 120"),
        "{table}"
    );
    for line in [
        "       6  scratch, others + N",
        "      24  warm, N only",
        "     100  warm, others + N",
        "     120  in-domain",
    ] {
        assert!(table.contains(line), "{line:?} in {table}");
    }
    assert!(
        !table.contains("target (issue 11)"),
        "no 1,000 among the sizes: {table}"
    );
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        2,
        "no model file"
    );
    let again = curve_in(&dir, &[]);
    assert_eq!(text(&again.stdout), table, "same seed, same curve");

    let output = curve_in(&dir, &["--json", "--warm-l2", "0.1"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let curve: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(curve["warm_l2"], 0.1);
    assert_eq!(curve["pool"], 120);
    let apgr = |point: &Value| point["apgr"].as_f64().unwrap();
    let points = curve["points"].as_array().unwrap();
    assert_eq!(points.len(), 12, "3 sizes x 4 arms");
    let largest: Vec<&Value> = points.iter().filter(|p| p["labelled"] == 100).collect();
    for point in &largest {
        assert!(
            apgr(point) > apgr(&curve["base"]) + 0.1,
            "{point} vs {}",
            curve["base"]
        );
        assert!(
            (apgr(point) - apgr(&curve["in_domain"])).abs() < 0.05,
            "{point}"
        );
        assert!(
            point["apgr_interval"]["low"].is_f64() && point["minus_in_domain"]["high"].is_f64()
        );
    }
}

#[test]
fn a_decision_log_can_be_the_unseen_family() {
    let dir = TempDir::new("curve");
    write_families(&dir);
    write_log(&dir);
    let output = triage_in(
        &dir.0,
        &[
            "train",
            "--data",
            "known.jsonl",
            "--from-log",
            "access.log",
            "--feedback",
            "feedback.jsonl",
            "--config",
            "config.json",
            "--buckets",
            "4096",
            "--learning-curve",
            "access.log",
            "--sizes",
            "4,12",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report = text(&output.stdout);
    assert!(
        report.contains("learning curve: access.log left out (28 usable rows, split with seed 1: an adaptation pool of 14"),
        "{report}"
    );
}

#[test]
fn impossible_curves_fail_with_the_reason() {
    let dir = TempDir::new("curve");
    assert_fails(
        &curve_in(&dir, &["--sizes", "200"]),
        1,
        "more than the 120 rows of unseen.jsonl's adaptation pool",
    );
    assert_fails(&curve_in(&dir, &["--l2", "0.01,0.1"]), 1, "one point");
    write_families(&dir);
    let elsewhere = triage_in(
        &dir.0,
        &[
            "train",
            "--data",
            "known.jsonl",
            "--learning-curve",
            "unseen.jsonl",
        ],
    );
    assert_fails(&elsewhere, 1, "not one of the training files");
    assert_fails(
        &curve_in(&dir, &["--out", "model.json"]),
        2,
        "cannot be used with",
    );
    // The curve's own flags without it: asked for, or refused beside --out.
    let sizes_alone = triage_in(&dir.0, &["train", "--data", "known.jsonl", "--sizes", "10"]);
    assert_fails(&sizes_alone, 2, "--learning-curve");
    let beside_out = [
        "train",
        "--data",
        "known.jsonl",
        "--out",
        "m.json",
        "--json",
    ];
    assert_fails(&triage_in(&dir.0, &beside_out), 2, "cannot be used with");
    assert!(!dir.path("m.json").exists());
}
