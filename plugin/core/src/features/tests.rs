use super::*;
use crate::format::{parse_request, ApiFormat};

const CAP: usize = 64 * 1024;

fn chat(user: &str) -> String {
    serde_json::json!({"messages": [{"role": "user", "content": user}]}).to_string()
}

fn features_of(format: ApiFormat, body: &str) -> Features {
    let request = parse_request(format, body.as_bytes()).unwrap();
    Features::extract(&request, CAP)
}

fn feature(features: &Features, name: &str) -> f64 {
    let index = FEATURE_NAMES
        .iter()
        .position(|known| *known == name)
        .unwrap();
    features.values()[index]
}

#[test]
fn cue_regexes_compile() {
    let set = CUES.as_ref().expect("the cue set compiles");
    assert_eq!(set.len(), CUE_COUNT);
    assert_eq!(
        CUE_LISTS.iter().map(|list| list.len()).sum::<usize>(),
        CUE_COUNT
    );
}

/// (feature, body that moves it, body that does not).
#[test]
fn each_feature_moves_on_its_signal_only() {
    let long = "word ".repeat(4000);
    let code = "```python\ndef f(x):\n    return x + 1\n```\n```js\nlet y = 2;\n```";
    let cases: Vec<(&str, String, String)> = vec![
        ("tokens", chat(&long), chat("")),
        (
            "turns",
            r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"}]}"#.into(),
            chat("a"),
        ),
        (
            "system_prompt",
            r#"{"messages":[{"role":"system","content":"You are a careful assistant."},{"role":"user","content":"a"}]}"#.into(),
            chat("a"),
        ),
        ("last_user", chat("a considerably longer request text"), chat("")),
        ("code_fences", chat(code), chat("no code here")),
        ("code_lines", chat("import os\nx = 1;\nclass A {\n}"), chat("Tell me about Paris.\nIt is nice.")),
        ("latex", chat(r"Compute $$\frac{1}{2} + \sqrt{x}$$"), chat("Compute a half plus the root of x")),
        ("math_terms", chat("State the theorem about the integral of a polynomial"), chat("State the capital of France")),
        ("operators", chat("x=y+z*2/3"), chat("x equals y")),
        ("digits", chat("12345 67890"), chat("numbers")),
        ("reasoning_cues", chat("Prove it step by step and analyze the trade-offs"), chat("Say hello")),
        ("reasoning_cues", chat("First read the file, then summarize it"), chat("Read the file")),
        ("simple_task", chat("Classify the sentiment of this review"), chat("Write a story")),
        ("questions", chat("Why? How? When? Where?"), chat("Why is the sky blue?")),
        ("constraints", chat("You must answer in exactly 3 words without punctuation\n- one\n- two"), chat("Answer this")),
        (
            "tools",
            r#"{"tools":[{"type":"function","function":{"name":"f"}}],"messages":[{"role":"user","content":"a"}]}"#.into(),
            chat("a"),
        ),
        (
            "tool_depth",
            r#"{"messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"1"}]},{"role":"tool","content":"r"}]}"#.into(),
            chat("a"),
        ),
        (
            "images",
            r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"a"}]}]}"#.into(),
            chat("a"),
        ),
        ("max_tokens", r#"{"max_tokens":4000,"messages":[]}"#.into(), r#"{"messages":[]}"#.into()),
        ("reasoning_effort", r#"{"reasoning_effort":"medium","messages":[]}"#.into(), r#"{"messages":[]}"#.into()),
        ("json_output", r#"{"response_format":{"type":"json_object"},"messages":[]}"#.into(), r#"{"messages":[]}"#.into()),
        ("non_latin", chat("Объясни, пожалуйста"), chat("Explique, s'il vous plaît, café")),
    ];
    let mut covered: Vec<&str> = Vec::new();
    for (name, moves, stays) in &cases {
        let high = feature(&features_of(ApiFormat::OpenAiChat, moves), name);
        let low = feature(&features_of(ApiFormat::OpenAiChat, stays), name);
        assert!(
            high > 0.0 && high <= 1.0,
            "{name} should move on {moves}: {high}"
        );
        assert_eq!(low, 0.0, "{name} should not move on {stays}");
        covered.push(name);
    }
    for name in FEATURE_NAMES {
        assert!(covered.contains(name), "feature {name} has no test case");
    }
}

#[test]
fn every_value_is_in_unit_range() {
    let body = chat(&format!(
        "{}\n{}",
        "```\nfn x() {}\n```\n".repeat(50),
        r"\frac ? must ".repeat(500)
    ));
    let values = features_of(ApiFormat::OpenAiChat, &body).values();
    assert!(
        values.iter().all(|value| (0.0..=1.0).contains(value)),
        "{values:?}"
    );
}

#[test]
fn repeated_constraint_words_count_once() {
    let once = feature(
        &features_of(ApiFormat::OpenAiChat, &chat("Print only A")),
        "constraints",
    );
    let many = feature(
        &features_of(ApiFormat::OpenAiChat, &chat(&"Print only A\n".repeat(5))),
        "constraints",
    );
    assert_eq!(once, many);
}

#[test]
fn scan_cap_bounds_text_features() {
    let padding = "a".repeat(1000);
    let body = serde_json::json!({"messages": [
        {"role": "user", "content": "Prove the theorem step by step"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": format!("{padding} Prove the theorem step by step")}
    ]})
    .to_string();
    let request = parse_request(ApiFormat::OpenAiChat, body.as_bytes()).unwrap();
    let capped = Features::extract(&request, 500);
    let full = Features::extract(&request, CAP);
    assert_eq!(
        capped.reasoning_cues, 0.0,
        "cues past the cap must not be seen"
    );
    assert_eq!(capped.math_terms, 0.0);
    assert!(full.reasoning_cues > 0.0 && full.math_terms > 0.0);
    assert_eq!(
        capped.tokens, full.tokens,
        "token estimate is a length sum, not a scan"
    );
}

#[test]
fn last_user_message_is_scanned_first() {
    let body = serde_json::json!({"messages": [
        {"role": "user", "content": format!("{} prove", "a".repeat(1000))},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "Classify this review"}
    ]})
    .to_string();
    let request = parse_request(ApiFormat::OpenAiChat, body.as_bytes()).unwrap();
    let features = Features::extract(&request, 100);
    assert!(features.simple_task > 0.0);
    assert_eq!(features.reasoning_cues, 0.0);
}

#[test]
fn log_scale_and_density_edges() {
    assert_eq!(log_scale(0.0, 10.0), 0.0);
    assert_eq!(log_scale(-5.0, 10.0), 0.0);
    assert_eq!(log_scale(f64::NAN, 10.0), 0.0);
    assert_eq!(log_scale(f64::INFINITY, 10.0), 1.0);
    assert_eq!(log_scale(10.0, 10.0), 1.0);
    assert_eq!(log_scale(1e9, 10.0), 1.0);
    assert_eq!(density(1, 0, 1.0), 0.0);
    assert_eq!(ratio(10, 4), 1.0);
}
