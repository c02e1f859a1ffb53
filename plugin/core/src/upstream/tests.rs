use super::*;

const CHAT_STREAM: &[u8] =
    br#"{"model": "auto", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#;

fn config(json: &str) -> Config {
    Config::from_json(json.as_bytes()).unwrap()
}

fn body(changed: Option<Vec<u8>>) -> String {
    String::from_utf8(changed.expect("the body changed")).unwrap()
}

#[test]
fn only_the_model_changes_by_default() {
    let config = Config::default();
    let out = upstream_body(
        &config,
        ApiFormat::OpenAiChat,
        CHAT_STREAM,
        true,
        Some("gpt-4o-mini"),
        true,
    );
    assert_eq!(
        body(out.unwrap()),
        r#"{"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "hi"}]}"#
    );
    let untouched = upstream_body(
        &config,
        ApiFormat::OpenAiChat,
        CHAT_STREAM,
        true,
        None,
        true,
    );
    assert_eq!(untouched.unwrap(), None);
}

#[test]
fn streams_are_asked_for_usage_when_configured() {
    let config = config(r#"{"usage": {"request_stream_usage": true}}"#);
    let out = upstream_body(
        &config,
        ApiFormat::OpenAiChat,
        CHAT_STREAM,
        false,
        None,
        true,
    )
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&body(out)).unwrap();
    assert_eq!(value["stream_options"]["include_usage"], true);
    assert_eq!(value["model"], "auto");
    // Not a stream, or the client chose its own stream options: nothing added.
    let plain = br#"{"model": "auto", "messages": []}"#;
    assert_eq!(
        upstream_body(&config, ApiFormat::OpenAiChat, plain, false, None, false).unwrap(),
        None
    );
    let own = br#"{"stream": true, "stream_options": {"include_usage": false}, "messages": []}"#;
    assert_eq!(
        upstream_body(&config, ApiFormat::OpenAiChat, own, false, None, true).unwrap(),
        None
    );
    // Anthropic streams carry usage anyway.
    let messages = br#"{"model": "auto", "stream": true, "messages": []}"#;
    assert_eq!(
        upstream_body(
            &config,
            ApiFormat::AnthropicMessages,
            messages,
            false,
            None,
            true
        )
        .unwrap(),
        None
    );
}

#[test]
fn cheaper_tiers_are_asked_for_logprobs_when_they_are_checked() {
    let config = config(
        r#"{"escalation": {"request_logprobs": true, "checks": {"min_mean_logprob": -1.5}}}"#,
    );
    let out = upstream_body(
        &config,
        ApiFormat::OpenAiChat,
        CHAT_STREAM,
        true,
        Some("s"),
        true,
    )
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&body(out)).unwrap();
    assert_eq!(value["logprobs"], true);
    assert_eq!(value["model"], "s");
    let top = upstream_body(
        &config,
        ApiFormat::OpenAiChat,
        CHAT_STREAM,
        false,
        None,
        true,
    )
    .unwrap();
    assert_eq!(top, None, "an answer that is not judged needs no logprobs");
    let unchecked = self::config(r#"{"escalation": {"request_logprobs": true}}"#);
    let out = upstream_body(
        &unchecked,
        ApiFormat::OpenAiChat,
        CHAT_STREAM,
        true,
        None,
        true,
    )
    .unwrap();
    assert_eq!(out, None, "no logprob check, no logprobs asked");
}

#[test]
fn a_body_the_model_cannot_be_written_into_is_an_error() {
    let config = Config::default();
    assert!(upstream_body(
        &config,
        ApiFormat::OpenAiChat,
        b"[1]",
        false,
        Some("m"),
        false
    )
    .is_err());
}

/// What `upstream_body` adds to `body` for every tier's model of `format` (and no model), judged
/// or not, streamed or not.
fn growths(config: &Config, format: ApiFormat, body: &[u8]) -> Vec<usize> {
    let mut models: Vec<Option<&str>> = (0..config.tier_names().len())
        .map(|tier| config.tier_model(tier, format))
        .collect();
    models.push(None);
    let mut out = Vec::new();
    for model in models {
        for judged in [false, true] {
            for stream in [false, true] {
                let changed = upstream_body(config, format, body, judged, model, stream).unwrap();
                let length = changed.map_or(body.len(), |changed| changed.len());
                out.push(length.saturating_sub(body.len()));
            }
        }
    }
    out
}

#[test]
fn max_growth_bounds_every_body_change_and_is_reached() {
    let everything = config(
        r#"{"usage": {"request_stream_usage": true},
            "escalation": {"request_logprobs": true, "checks": {"min_mean_logprob": -1.5}},
            "tiers": [{"name": "small", "model": "s", "max_score": 0.3},
                      {"name": "big", "model": "b", "models": {"anthropic_messages": "quote\"d-\u00e9-model"}}]}"#,
    );
    let configs = [Config::default(), everything];
    let bodies: [&[u8]; 7] = [
        br#"{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}"#,
        br#"{"messages": [{"role": "user", "content": "hi"}], "stream": true}"#,
        br#"{"model": null, "messages": []}"#,
        br#"{"model":"auto"}"#,
        br#"{}"#,
        br#"  {"input": "hi", "model": "auto"}"#,
        br#"{"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}"#,
    ];
    for config in &configs {
        let bound = max_growth(config);
        let mut reached = false;
        for format in ApiFormat::ALL {
            for body in bodies {
                for growth in growths(config, format, body) {
                    assert!(
                        growth <= bound,
                        "{format:?} {} grew {growth} > {bound}",
                        String::from_utf8_lossy(body)
                    );
                    reached |= growth == bound;
                }
            }
        }
        assert!(
            reached,
            "the bound {bound} is never reached: it is not the most"
        );
    }
}

#[test]
fn max_growth_counts_the_inserted_members() {
    // `"model":"claude-sonnet-4-5",`: the shipped tiers' longest model, inserted.
    assert_eq!(max_growth(&Config::default()), 28);
    let usage = config(r#"{"usage": {"request_stream_usage": true}}"#);
    // Chat's longest, `"model":"gpt-4o-mini",`, and `"stream_options":{"include_usage":true},`.
    assert_eq!(max_growth(&usage), 22 + 40);
    let logprobs = config(
        r#"{"escalation": {"request_logprobs": true, "checks": {"min_mean_logprob": -1.5}}}"#,
    );
    // `"model":"gpt-4o-mini",` and `"logprobs":true,`.
    assert_eq!(max_growth(&logprobs), 22 + 16);
    let no_models = config(r#"{"tiers": [{"name": "only"}]}"#);
    assert_eq!(max_growth(&no_models), 0);
}
