#![cfg(test)]
//! Runs the built `triage` binary on temp files and stdin.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// A file in the system temp dir, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn temp_file(contents: &str) -> TempFile {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "triage-cli-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let path = std::env::temp_dir().join(name);
    std::fs::write(&path, contents).unwrap();
    TempFile(path)
}

fn triage(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The binary may exit before reading stdin (a refused config): a broken pipe is not an error.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A config embedding triage's hand-set model (thresholds 0.35 / 0.65) with the default tiers, so the
/// tests of the CLI's mechanics do not hang on what the shipped model happens to have learned.
fn hand_set_config() -> TempFile {
    let model: Value = serde_json::from_str(&triage_core::Model::hand_set(1).to_json()).unwrap();
    temp_file(&serde_json::json!({ "model": model }).to_string())
}

const ROW: &str = r#"{"id":"set/1","source":"x","request":{"model":"auto","messages":[{"role":"user","content":"Translate 'hi' to French."}]},"outcomes":{}}"#;
const HARD: &str = r#"{"model":"auto","messages":[{"role":"user","content":"Prove step by step that the algorithm is optimal, analyze the trade-offs and derive its complexity: $$\\sum_i \\frac{1}{i}$$"}]}"#;

#[test]
fn routes_dataset_rows_and_bare_bodies_from_a_file() {
    let anthropic = r#"{"model":"auto","system":"s","max_tokens":5,"messages":[{"role":"user","content":"Translate 'hi' to French."}]}"#;
    let responses = r#"{"input":"Classify the sentiment: I love it"}"#;
    let explicit = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#;
    let input = temp_file(&format!(
        "{ROW}\n\n{HARD}\n{anthropic}\n{responses}\n{explicit}\n"
    ));
    let config = hand_set_config();
    let output = triage(
        &["route", "--config", config.path(), "--input", input.path()],
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let results = lines(&output);
    assert_eq!(results.len(), 5);

    assert_eq!(results[0]["id"], "set/1");
    assert_eq!(results[0]["tier"], "small");
    assert_eq!(results[0]["model"], "gpt-4o-mini");
    assert!(results[0]["score"]
        .as_f64()
        .is_some_and(|score| score <= 0.35));
    assert!(results[0]["reasons"].is_array());

    assert_eq!(
        results[1]["id"], 3,
        "bare bodies are numbered by line, blank lines included"
    );
    assert_eq!(results[1]["tier"], "frontier");
    assert_eq!(results[1]["model"], "o3");

    assert_eq!(
        results[2]["model"], "claude-haiku-4-5",
        "inferred Anthropic format"
    );
    assert_eq!(
        results[3]["model"], "gpt-4o-mini",
        "inferred Responses format, no model requested"
    );

    assert_eq!(results[4]["tier"], "mid");
    assert_eq!(
        results[4]["model"], "gpt-4o",
        "explicit model kept as requested"
    );
    assert_eq!(results[4]["score"], Value::Null);
    assert_eq!(results[4]["reasons"][0], "explicit_model: gpt-4o");

    // Without a config the shipped model decides: the same lines, the hard task scored above the
    // trivial one and sent to a tier at least as dear.
    let shipped = lines(&triage(&["route", "--input", input.path()], ""));
    assert_eq!(shipped.len(), 5);
    assert_eq!(shipped[0]["id"], "set/1");
    let score = |result: &Value| result["score"].as_f64().unwrap();
    assert!(score(&shipped[1]) > score(&shipped[0]), "{shipped:?}");
    let rank = |result: &Value| {
        ["small", "mid", "frontier"]
            .iter()
            .position(|tier| result["tier"] == *tier)
            .unwrap()
    };
    assert!(rank(&shipped[1]) >= rank(&shipped[0]), "{shipped:?}");
    assert_eq!(shipped[4]["model"], "gpt-4o", "explicit model kept");
}

#[test]
fn reads_stdin_and_forces_a_format() {
    let body =
        r#"{"model":"auto","messages":[{"role":"user","content":"Translate 'hi' to French."}]}"#;
    let config = hand_set_config();
    let output = triage(
        &[
            "route",
            "--config",
            config.path(),
            "--format",
            "anthropic_messages",
            "--input",
            "-",
        ],
        &format!("{body}\n"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(lines(&output)[0]["model"], "claude-haiku-4-5");
    let default = triage(&["route", "--config", config.path()], &format!("{body}\n"));
    assert_eq!(lines(&default)[0]["model"], "gpt-4o-mini");
}

#[test]
fn bad_lines_are_reported_and_skipped() {
    let output = triage(&["route"], &format!("not json\n{ROW}\n[1,2]\n"));
    assert_eq!(output.status.code(), Some(1));
    let results = lines(&output);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["id"], "set/1");
    let errors = stderr(&output);
    assert!(
        errors.contains("line 1:") && errors.contains("line 3:"),
        "{errors}"
    );
    assert!(!errors.contains("line 2:"), "{errors}");
}

#[test]
fn a_config_rule_forces_the_tier() {
    let config = temp_file(
        r#"{"rules":[{"name":"french","when":{"last_user_regex":"French"},"tier":"frontier"}],
            "tiers":[{"name":"small","model":"tiny","max_score":0.35},{"name":"mid","max_score":0.65},{"name":"frontier","model":"huge"}]}"#,
    );
    let output = triage(&["route", "--config", config.path()], &format!("{ROW}\n"));
    assert!(output.status.success(), "{}", stderr(&output));
    let result = &lines(&output)[0];
    assert_eq!(result["tier"], "frontier");
    assert_eq!(result["model"], "huge");
    assert_eq!(
        result["reasons"][0], "rule: french",
        "the reason reads as x-triage-reason does"
    );
    assert_eq!(result["score"], Value::Null);
}

#[test]
fn a_bad_config_is_refused_with_the_field() {
    let config = temp_file(
        r#"{"tiers":[{"name":"a","max_score":0.5},{"name":"b","max_score":0.4},{"name":"c"}]}"#,
    );
    let output = triage(&["route", "--config", config.path()], &format!("{ROW}\n"));
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(
        stderr(&output)
            .contains("tiers[1].max_score: must be greater than tiers[0].max_score (0.5)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn features_flag_and_usage_errors() {
    let output = triage(&["route", "--features"], &format!("{ROW}\n"));
    let result = &lines(&output)[0];
    assert!(result["features"]["simple_task"]
        .as_f64()
        .is_some_and(|value| value > 0.0));
    let unknown = triage(&["route", "--format", "gemini"], "");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("unknown format"));
    let no_command = triage(&[], "");
    assert_eq!(no_command.status.code(), Some(2));
    assert!(stderr(&no_command).contains("Usage: triage <COMMAND>"));
}

/// The project's own example file: each line's path gives its format, and nothing fails open.
#[test]
fn routes_the_example_lines_by_their_path() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/requests.jsonl");
    let output = triage(&["route", "--input", examples], "");
    assert!(output.status.success(), "{}", stderr(&output));
    let results = lines(&output);
    let text = std::fs::read_to_string(examples).unwrap();
    let inputs: Vec<Value> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(results.len(), inputs.len());
    for (result, input) in results.iter().zip(&inputs) {
        assert_eq!(result["id"], input["id"]);
        let path = input["path"].as_str().unwrap();
        let expected = match path {
            "/v1/messages" => "anthropic_messages",
            "/v1/responses" => "openai_responses",
            _ => "openai_chat",
        };
        assert_eq!(result["format"], expected, "{result}");
        let reason = result["reasons"][0].as_str().unwrap();
        assert!(!reason.starts_with("fail_open"), "{result}");
    }
    assert!(
        results.iter().any(|r| r["format"] == "anthropic_messages"),
        "the examples cover the Anthropic API"
    );
}

#[test]
fn example_lines_off_the_llm_endpoints_are_refused() {
    let line = r#"{"id":"models","path":"/v1/models","body":{"model":"auto"}}"#;
    let output = triage(&["route"], &format!("{line}\n{ROW}\n"));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(lines(&output).len(), 1, "the other line is still routed");
    let errors = stderr(&output);
    assert!(
        errors.contains("line 1: path \"/v1/models\" is not an LLM endpoint"),
        "{errors}"
    );
}

#[test]
fn bare_anthropic_bodies_are_told_by_their_shape() {
    let config = hand_set_config();
    let bodies = [
        r#"{"model":"auto","max_tokens":9,"stop_sequences":["."],"messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"auto","max_tokens":9,"tools":[{"name":"f","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"auto","max_tokens":9,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AA=="}}]}]}"#,
        r#"{"model":"auto","max_tokens":9,"messages":[{"role":"user","content":"hi"}]}"#,
    ];
    let output = triage(
        &["route", "--config", config.path()],
        &(bodies.join("\n") + "\n"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let formats: Vec<Value> = lines(&output)
        .iter()
        .map(|result| result["format"].clone())
        .collect();
    assert_eq!(
        formats,
        [
            "anthropic_messages",
            "anthropic_messages",
            "anthropic_messages",
            "openai_chat"
        ]
    );
}

#[test]
fn every_line_failing_open_is_an_error() {
    let unreadable = r#"{"model":"auto","messages":"not a list"}"#;
    let output = triage(&["route"], &format!("{unreadable}\n{unreadable}\n"));
    assert_eq!(output.status.code(), Some(1));
    let results = lines(&output);
    assert_eq!(results.len(), 2, "the decisions are still printed");
    assert_eq!(results[0]["reasons"][0], "fail_open: unknown_shape");
    assert_eq!(results[0]["margin"], Value::Null);
    assert!(
        stderr(&output).contains("every one of the 2 routed lines failed open"),
        "{}",
        stderr(&output)
    );
    // One line the router decides is enough for a clean exit.
    let mixed = triage(&["route"], &format!("{unreadable}\n{ROW}\n"));
    assert!(mixed.status.success(), "{}", stderr(&mixed));
}

/// The margin names the neighbouring tiers and its distances add up to the tier's bounds.
#[test]
fn the_margin_is_the_distance_to_each_neighbouring_tier() {
    let config = hand_set_config();
    let output = triage(
        &["route", "--config", config.path()],
        &format!("{ROW}\n{HARD}\n"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let bounds = [0.35, 0.65];
    let names = ["small", "mid", "frontier"];
    for result in lines(&output) {
        let score = result["score"].as_f64().unwrap();
        let tier = names.iter().position(|n| *n == result["tier"]).unwrap();
        let margin = &result["margin"];
        match tier.checked_sub(1) {
            Some(below) => {
                assert_eq!(margin["down"]["tier"], names[below], "{result}");
                let by = margin["down"]["by"].as_f64().unwrap();
                assert!((score - by - bounds[below]).abs() < 1e-4, "{result}");
            }
            None => assert_eq!(margin["down"], Value::Null),
        }
        match names.get(tier + 1) {
            Some(above) => {
                assert_eq!(margin["up"]["tier"], *above, "{result}");
                let by = margin["up"]["by"].as_f64().unwrap();
                assert!((score + by - bounds[tier]).abs() < 1e-4, "{result}");
            }
            None => assert_eq!(margin["up"], Value::Null),
        }
    }
}

/// A config where the hand-set model sends the translation row to `small`, which escalates.
fn escalating_config() -> TempFile {
    let model: Value = serde_json::from_str(&triage_core::Model::hand_set(1).to_json()).unwrap();
    temp_file(
        &serde_json::json!({
            "model": model,
            "escalation": {"max_escalations": 2, "checks": {"empty": true}}
        })
        .to_string(),
    )
}

fn chat_answer(text: &str) -> Value {
    serde_json::json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3}
    })
}

#[test]
fn answers_run_the_whole_lifecycle_escalations_included() {
    let config = escalating_config();
    let answers = temp_file(
        &serde_json::json!({
            "small": {"status": 503, "content_type": "text/plain", "body": "overloaded"},
            "mid": {"body": chat_answer("")},
            "frontier": {"body": chat_answer("Bonjour"), "headers": {"X-Provider": "p"}}
        })
        .to_string(),
    );
    let output = triage(
        &[
            "route",
            "--config",
            config.path(),
            "--answers",
            answers.path(),
        ],
        &format!("{ROW}\n"),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let line = &lines(&output)[0];
    assert_eq!(line["tier"], "small", "{line}");
    let exchange = &line["exchange"];
    assert_eq!(exchange["upstream"]["tier"], "small");
    // 503 on small, an empty answer on mid, then frontier answers.
    let calls: Vec<&Value> = exchange["calls"].as_array().unwrap().iter().collect();
    assert_eq!(calls.len(), 2, "{exchange}");
    assert_eq!(calls[0]["tier"], "mid");
    assert_eq!(calls[1]["tier"], "frontier");
    let frontier_model = triage_core::Config::default()
        .tier_model(2, triage_core::ApiFormat::OpenAiChat)
        .map(str::to_string);
    assert_eq!(calls[1]["model"], serde_json::json!(frontier_model));
    let response = &exchange["response"];
    assert_eq!(response["status"], 200);
    assert_eq!(response["headers"]["x-triage-tier"], "frontier");
    assert_eq!(response["headers"]["x-triage-escalated"], "small->frontier");
    assert_eq!(response["headers"]["x-triage-escalation-cause"], "empty");
    let record = &exchange["record"];
    assert_eq!(record["tier"], "frontier");
    assert_eq!(record["decided_tier"], "small");
    let causes: Vec<&Value> = record["escalations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|step| &step["cause"])
        .collect();
    assert_eq!(causes, ["status_5xx", "empty"]);
    assert_eq!(record["usage"]["completion_tokens"], 3);
}

#[test]
fn answers_must_name_every_tier_and_only_tiers() {
    let config = escalating_config();
    let cases = [
        (
            serde_json::json!({"small": "reset", "mid": "reset"}),
            "no answer for frontier",
        ),
        (
            serde_json::json!({"small": "reset", "mid": "reset", "frontier": "reset", "huge": "reset"}),
            "\"huge\" is not a tier",
        ),
        (
            serde_json::json!({"small": "down", "mid": "reset", "frontier": "reset"}),
            "neither an answer object nor \"reset\"",
        ),
    ];
    for (answers, needle) in cases {
        let answers = temp_file(&answers.to_string());
        let output = triage(
            &[
                "route",
                "--config",
                config.path(),
                "--answers",
                answers.path(),
            ],
            &format!("{ROW}\n"),
        );
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains(needle),
            "{needle}: {}",
            stderr(&output)
        );
    }
    let answers = temp_file(r#"{"small": "reset", "mid": "reset", "frontier": "reset"}"#);
    let output = triage(
        &["route", "--engine", "wasm", "--answers", answers.path()],
        &format!("{ROW}\n"),
    );
    assert!(stderr(&output).contains("--answers"), "{}", stderr(&output));
}
