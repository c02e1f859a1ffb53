#![cfg(test)]
//! Runs the built `triage eval` on temp dataset files.

use serde_json::Value;

mod common;
use common::{triage, TempDir};

fn row(id: &str, prompt: &str, small: f64, frontier: f64) -> String {
    row_value(id, prompt, small, frontier).to_string()
}

fn row_value(id: &str, prompt: &str, small: f64, frontier: f64) -> Value {
    serde_json::json!({
        "id": id,
        "source": "test",
        "request": {"model": "auto", "messages": [{"role": "user", "content": prompt}]},
        "outcomes": {
            "small": {"model": "s", "quality": small, "cost_usd": 0.001},
            "frontier": {"model": "f", "quality": frontier, "cost_usd": 0.01}
        }
    })
}

/// A RouterBench-like row: `all_models` holds the tier models "s" and "f" and `others` more, each of
/// which answers like the small tier.
fn row_with_models(id: &str, prompt: &str, small: f64, others: usize) -> String {
    let mut value = row_value(id, prompt, small, 1.0);
    let mut models = serde_json::Map::new();
    for model in ["s".to_string(), "f".to_string()]
        .into_iter()
        .chain((0..others).map(|k| format!("other-{k}")))
    {
        models.insert(
            model,
            serde_json::json!({"quality": small, "cost_usd": 0.002}),
        );
    }
    value["all_models"] = Value::Object(models);
    value.to_string()
}

fn dataset() -> String {
    [
        row("a", "Classify the sentiment: great movie", 1.0, 1.0),
        row(
            "b",
            "Prove that there are infinitely many primes, step by step.",
            0.0,
            1.0,
        ),
        row("c", "What is 2+2?", 1.0, 1.0),
        row(
            "d",
            "Derive the closed form of the integral of x^2 e^x dx",
            0.0,
            0.0,
        ),
    ]
    .join("\n")
}

#[test]
fn json_report_with_baselines_and_plots() {
    let dir = TempDir::new("json");
    let data = dir.write("tiny.jsonl", &dataset());
    let other = dir.write("other.jsonl", &row("e", "hello", 0.0, 1.0));
    let plots = dir.0.join("plots");
    let output = triage(&[
        "eval",
        "--data",
        &data,
        &other,
        "--json",
        "--plot",
        plots.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.trim_end().lines().count(), 1, "one object: {stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["config"], "default");
    let datasets = report["datasets"].as_array().unwrap();
    let names: Vec<&str> = datasets
        .iter()
        .map(|d| d["dataset"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["tiny", "other", "all"]);
    let tiny = &datasets[0];
    assert_eq!(tiny["rows"], 4);
    assert_eq!(tiny["decisions"]["scored"], 4);
    let shares: f64 = tiny["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["share"].as_f64().unwrap())
        .sum();
    assert!((shares - 1.0).abs() < 1e-12);
    let policy = |name: &str| {
        tiny["policies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .clone()
    };
    // Always-small gets a and c right; always-frontier a, b and c; the oracle the same at less cost.
    assert_eq!(policy("always-small")["quality"], 0.5);
    assert_eq!(policy("always-frontier")["quality"], 0.75);
    assert_eq!(policy("always-frontier")["cost_vs_top"], 1.0);
    assert_eq!(policy("oracle")["quality"], 0.75);
    // Two-tier rows: always-mid is always-frontier by the next-dearer-tier rule; it's not listed
    // because no row has a mid outcome.
    assert!(tiny["policies"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["name"] != "always-mid"));
    assert_eq!(tiny["top_tier"], "frontier");
    assert_eq!(tiny["sweep"]["rows"], 4);
    assert_eq!(tiny["sweep"]["random"]["apgr"], 0.5);
    assert!(tiny["sweep"]["router"]["apgr"].is_f64());
    assert!(tiny["sweep"]["prompt_length"]["cpt80"].is_f64());
    // "other" has one row: the tiers' qualities differ, so APGR is defined.
    assert!(datasets[1]["sweep"]["router"]["apgr"].is_f64());
    for name in ["tiny", "other", "all"] {
        let svg = std::fs::read_to_string(plots.join(format!("{name}.svg"))).unwrap();
        assert!(
            svg.contains("router score sweep") && svg.ends_with("</svg>\n"),
            "{name}"
        );
    }
}

#[test]
fn tables_by_default_and_errors_name_the_problem() {
    let dir = TempDir::new("text");
    let data = dir.write("tiny.jsonl", &dataset());
    let output = triage(&["eval", "--data", &data]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("== tiny (4 rows) =="), "{text}");
    assert!(
        text.contains("length-same-shares") && text.contains("APGR"),
        "{text}"
    );

    let config = dir.write("bad.json", r#"{"tiers": []}"#);
    let output = triage(&["eval", "--data", &data, "--config", &config]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid config"));

    let broken = dir.write("broken.jsonl", "{\"id\": 1}\n");
    let output = triage(&["eval", "--data", &broken]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("broken.jsonl:1"));
}

#[test]
fn intervals_and_the_other_models_reference_where_rows_have_every_model() {
    let dir = TempDir::new("reference");
    let bench: Vec<String> = (0..24)
        .map(|i| {
            let prompt = format!("question {i}: {}", "more words ".repeat(i % 5));
            row_with_models(
                &format!("b{i}"),
                &prompt,
                f64::from(u8::from(i % 3 != 0)),
                8,
            )
        })
        .collect();
    let bench = dir.write("bench.jsonl", &bench.join("\n"));
    let plain = dir.write("plain.jsonl", &dataset());
    let output = triage(&["eval", "--data", &bench, &plain, "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let datasets = report["datasets"].as_array().unwrap();
    let reference = &datasets[0]["other_models_reference"];
    // The other models fail exactly where small does: the reference ranks like the oracle.
    assert_eq!(reference["models_per_row"], serde_json::json!([8, 8]));
    assert_eq!(reference["sweep"]["auc"], 1.0);
    assert!(reference["same_shares"]["quality"].is_f64(), "{reference}");
    // Rows without all_models, and "all" with some of them: no reference.
    assert!(datasets[1]["other_models_reference"].is_null());
    assert!(datasets[2]["other_models_reference"].is_null());
    let sweep = &datasets[0]["sweep"];
    let (low, high) = (
        sweep["router"]["apgr_interval"]["low"].as_f64().unwrap(),
        sweep["router"]["apgr_interval"]["high"].as_f64().unwrap(),
    );
    let apgr = sweep["router"]["apgr"].as_f64().unwrap();
    assert!(low <= apgr && apgr <= high, "{sweep}");
    assert!(sweep["router_minus_length"]["estimate"].is_f64(), "{sweep}");
    assert_eq!(
        sweep["bootstrap"],
        serde_json::json!({"resamples": 1000, "seed": 1})
    );
    // Each score's best quality within 30% of always-frontier's cost; the plain rows have no
    // reference figure.
    let budget = &datasets[0]["within_budget"];
    assert_eq!(budget["max_cost"], 0.3);
    for score in ["router", "prompt_length", "other_models_reference"] {
        assert!(budget[score].as_f64().is_some_and(|q| q > 0.0), "{budget}");
    }
    assert!(datasets[1]["within_budget"]["other_models_reference"].is_null());

    let output = triage(&["eval", "--data", &bench]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for needle in [
        "other-models-same-shares*",
        "* other-models reference (knows 8 other models' results per item; not a deployable router)",
        "router - prompt length APGR:",
        "best quality within 30.0% of always-frontier's cost",
        "95% CI: percentile bootstrap over rows, 1000 resamples, seed 1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}
