use super::*;

fn parse(format: ApiFormat, body: &str) -> ParsedRequest<'_> {
    match parse_request(format, body.as_bytes()) {
        Ok(request) => request,
        Err(error) => panic!("{body}: {error:?}"),
    }
}

fn texts<'a>(request: &'a ParsedRequest) -> Vec<(Role, Vec<&'a str>)> {
    request
        .messages
        .iter()
        .map(|message| {
            (
                message.role,
                message.texts.iter().map(|text| text.as_ref()).collect(),
            )
        })
        .collect()
}

#[test]
fn detect_formats_by_method_and_path() {
    let cases = [
        ("POST", "/v1/chat/completions", Some(ApiFormat::OpenAiChat)),
        (
            "POST",
            "/v1/chat/completions?api-version=1",
            Some(ApiFormat::OpenAiChat),
        ),
        ("POST", "/v1/responses", Some(ApiFormat::OpenAiResponses)),
        ("POST", "/v1/messages", Some(ApiFormat::AnthropicMessages)),
        ("GET", "/v1/messages", None),
        ("POST", "/v1/models", None),
        ("POST", "/v1/messages/count_tokens", None),
    ];
    for (method, path, expected) in cases {
        assert_eq!(ApiFormat::detect(method, path), expected, "{method} {path}");
    }
    for format in ApiFormat::ALL {
        assert_eq!(ApiFormat::from_name(format.as_str()), Some(format));
    }
    assert_eq!(ApiFormat::from_name("openai"), None);
}

#[test]
fn chat_string_and_part_content_with_system_images_tools() {
    let body = r#"{"model":"auto","stream":true,"max_tokens":50,"reasoning_effort":"high",
        "response_format":{"type":"json_schema","json_schema":{}},"unknown":{"x":[1]},
        "tools":[{"type":"function","function":{"name":"f"}},{"type":"function","function":{"name":"g"}}],
        "messages":[
          {"role":"system","content":"be brief"},
          {"role":"developer","content":[{"type":"text","text":"dev rules"}]},
          {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"x"}}]},
          {"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"1","content":"42"},
          {"role":"user","content":"and \"now\"?"}]}"#;
    let request = parse(ApiFormat::OpenAiChat, body);
    assert_eq!(request.model.as_deref(), Some("auto"));
    assert_eq!(request.system, vec!["be brief", "dev rules"]);
    assert_eq!(
        texts(&request),
        vec![
            (Role::User, vec!["look"]),
            (Role::Tool, vec!["42"]),
            (Role::User, vec!["and \"now\"?"])
        ]
    );
    assert_eq!(
        (
            request.tools_defined,
            request.tool_calls,
            request.tool_results,
            request.images
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(request.max_output_tokens, Some(50.0));
    assert_eq!(request.reasoning_effort, Some(1.0));
    assert!(request.json_output && request.stream);
    assert!(request.structured_bytes > 0);
    assert_eq!(request.last_user_message().map(|m| m.texts.len()), Some(1));
    assert_eq!(request.user_turns(), 2);
}

#[test]
fn chat_defaults_when_optional_fields_absent() {
    let request = parse(
        ApiFormat::OpenAiChat,
        r#"{"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(request.model, None);
    assert_eq!(
        (request.tools_defined, request.images, request.tool_calls),
        (0, 0, 0)
    );
    assert_eq!(
        (request.max_output_tokens, request.reasoning_effort),
        (None, None)
    );
    assert!(!request.json_output && !request.stream);
    let text_format = parse(
        ApiFormat::OpenAiChat,
        r#"{"response_format":{"type":"text"},"max_completion_tokens":9,"max_tokens":1,"messages":[]}"#,
    );
    assert!(!text_format.json_output);
    assert_eq!(text_format.max_output_tokens, Some(9.0));
}

#[test]
fn responses_string_input() {
    let body = r#"{"model":"auto","input":"Tell me a joke","instructions":"You are funny",
        "max_output_tokens":100,"reasoning":{"effort":"low"},"text":{"format":{"type":"json_object"}}}"#;
    let request = parse(ApiFormat::OpenAiResponses, body);
    assert_eq!(texts(&request), vec![(Role::User, vec!["Tell me a joke"])]);
    assert_eq!(request.system, vec!["You are funny"]);
    assert_eq!(request.max_output_tokens, Some(100.0));
    assert_eq!(request.reasoning_effort, Some(0.33));
    assert!(request.json_output);
}

#[test]
fn responses_item_array() {
    let body = r#"{"input":[
        {"role":"system","content":"sys"},
        {"type":"message","role":"user","content":[{"type":"input_text","text":"what is in"},{"type":"input_image","image_url":"x"}]},
        {"type":"function_call","call_id":"c","name":"f","arguments":"{\"a\":1}"},
        {"type":"function_call_output","call_id":"c","output":"sunny"},
        {"type":"reasoning","summary":[]},
        {"role":"assistant","content":[{"type":"output_text","text":"done"}]},
        {"role":"user","content":"thanks"}],
        "tools":[{"type":"function","name":"f"}],"stream":true}"#;
    let request = parse(ApiFormat::OpenAiResponses, body);
    assert_eq!(request.system, vec!["sys"]);
    assert_eq!(
        texts(&request),
        vec![
            (Role::User, vec!["what is in"]),
            (Role::Tool, vec!["sunny"]),
            (Role::Assistant, vec!["done"]),
            (Role::User, vec!["thanks"]),
        ]
    );
    assert_eq!(
        (
            request.images,
            request.tool_calls,
            request.tool_results,
            request.tools_defined
        ),
        (1, 1, 1, 1)
    );
    assert!(request.stream);
}

#[test]
fn anthropic_system_string_and_blocks() {
    let string_system = parse(
        ApiFormat::AnthropicMessages,
        r#"{"model":"claude","max_tokens":1024,"system":"sys","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(string_system.system, vec!["sys"]);
    assert_eq!(string_system.max_output_tokens, Some(1024.0));
    let block_system = parse(
        ApiFormat::AnthropicMessages,
        r#"{"system":[{"type":"text","text":"a","cache_control":{"type":"ephemeral"}},{"type":"text","text":"b"}],
            "messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(block_system.system, vec!["a", "b"]);
}

#[test]
fn anthropic_tool_use_results_images_thinking() {
    let body = r#"{"model":"auto","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":16000},
        "output_format":{"type":"json_schema"},
        "tools":[{"name":"weather","input_schema":{}}],
        "messages":[
          {"role":"user","content":[{"type":"image","source":{"type":"base64","data":"AAA"}},{"type":"text","text":"weather?"}]},
          {"role":"assistant","content":[{"type":"text","text":"checking"},{"type":"tool_use","id":"t","name":"weather","input":{"city":"Paris"}}]},
          {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"rain"}]},{"type":"tool_result","tool_use_id":"u","content":"wind"}]},
          {"role":"user","content":[{"type":"text","text":"so?"}]}]}"#;
    let request = parse(ApiFormat::AnthropicMessages, body);
    assert_eq!(
        texts(&request),
        vec![
            (Role::User, vec!["weather?"]),
            (Role::Assistant, vec!["checking"]),
            (Role::Tool, vec!["rain", "wind"]),
            (Role::User, vec!["so?"]),
        ]
    );
    assert_eq!(
        (
            request.images,
            request.tool_calls,
            request.tool_results,
            request.tools_defined
        ),
        (1, 1, 2, 1)
    );
    assert_eq!(request.reasoning_effort, Some(1.0));
    assert!(request.json_output);
    assert_eq!(
        request.last_user_message().map(|m| m.texts[0].as_ref()),
        Some("so?")
    );
}

/// Anthropic's generally available structured outputs (`output_config.format`) ask for JSON like
/// the beta's `output_format`; `output_config` without a JSON format (an effort) does not.
#[test]
fn anthropic_output_config_format_asks_for_json() {
    let json = |extra: &str| {
        let body = format!(
            r#"{{"model":"auto","max_tokens":64,{extra}"messages":[{{"role":"user","content":"hi"}}]}}"#
        );
        parse(ApiFormat::AnthropicMessages, &body).json_output
    };
    assert!(json(
        r#""output_config":{"format":{"type":"json_schema","schema":{}}},"#
    ));
    assert!(!json(r#""output_config":{"effort":"low"},"#));
    assert!(!json(r#""output_config":{"format":{"type":"text"}},"#));
    assert!(!json(""));
}

#[test]
fn thinking_budget_maps_to_effort() {
    let cases = [
        (r#"{"type":"disabled"}"#, Some(0.0)),
        (r#"{"type":"enabled","budget_tokens":1024}"#, Some(0.33)),
        (r#"{"type":"enabled","budget_tokens":4096}"#, Some(0.67)),
        (r#"{"type":"enabled"}"#, Some(1.0)),
        (r#"{"type":"other"}"#, None),
    ];
    for (thinking, expected) in cases {
        let body = format!(r#"{{"thinking":{thinking},"messages":[]}}"#);
        assert_eq!(
            parse(ApiFormat::AnthropicMessages, &body).reasoning_effort,
            expected,
            "{thinking}"
        );
    }
}

#[test]
fn escaped_text_is_decoded() {
    let request = parse(
        ApiFormat::OpenAiChat,
        r#"{"messages":[{"role":"user","content":"a\nb \u00e9"}]}"#,
    );
    assert_eq!(texts(&request), vec![(Role::User, vec!["a\nb é"])]);
}

#[test]
fn failures_are_classified() {
    let cases: &[(ApiFormat, &str, FailOpen)] = &[
        (ApiFormat::OpenAiChat, "", FailOpen::EmptyBody),
        (ApiFormat::OpenAiChat, " \n\t", FailOpen::EmptyBody),
        (ApiFormat::OpenAiChat, "{", FailOpen::InvalidJson),
        (ApiFormat::OpenAiChat, "not json", FailOpen::InvalidJson),
        (
            ApiFormat::OpenAiChat,
            r#"{"messages":5, nope"#,
            FailOpen::InvalidJson,
        ),
        (
            ApiFormat::OpenAiChat,
            r#"{"messages":[]} trailing"#,
            FailOpen::InvalidJson,
        ),
        (
            ApiFormat::OpenAiChat,
            r#"{"model":"auto"}"#,
            FailOpen::UnknownShape,
        ),
        (
            ApiFormat::OpenAiChat,
            r#"{"messages":"hi"}"#,
            FailOpen::UnknownShape,
        ),
        (
            ApiFormat::OpenAiChat,
            r#"{"messages":[{"content":"no role"}]}"#,
            FailOpen::UnknownShape,
        ),
        (
            ApiFormat::OpenAiChat,
            r#"{"model":5,"messages":[]}"#,
            FailOpen::UnknownShape,
        ),
        (
            ApiFormat::OpenAiChat,
            r#"["messages",[]]"#,
            FailOpen::UnknownShape,
        ),
        (ApiFormat::OpenAiChat, "42", FailOpen::UnknownShape),
        (
            ApiFormat::OpenAiResponses,
            r#"{"messages":[]}"#,
            FailOpen::UnknownShape,
        ),
        (
            ApiFormat::OpenAiResponses,
            r#"{"input":7}"#,
            FailOpen::UnknownShape,
        ),
        (
            ApiFormat::AnthropicMessages,
            r#"{"input":"hi"}"#,
            FailOpen::UnknownShape,
        ),
    ];
    for (format, body, expected) in cases {
        assert_eq!(
            parse_request(*format, body.as_bytes()).err(),
            Some(*expected),
            "{body}"
        );
    }
    assert_eq!(
        parse_request(ApiFormat::OpenAiChat, b"{\"messages\":[\"\xff\"]}").err(),
        Some(FailOpen::InvalidJson)
    );
}

#[test]
fn probe_finds_the_model_of_odd_shapes() {
    let cases = [
        (
            r#"{"model":"gpt-4o","x":1}"#,
            ModelField::Named(Cow::Borrowed("gpt-4o")),
        ),
        (r#"{"x":1}"#, ModelField::Absent),
        (r#"{"model":5}"#, ModelField::Unusable),
        (r#"[1]"#, ModelField::Unusable),
        (r#"{"model":"a","model":"b"}"#, ModelField::Unusable),
        (r#"{"model":"a","model":"a"}"#, ModelField::Unusable),
        (
            r#" {"mod\u0065l" : "gpt-4o", "x": {"model": "inner"}} "#,
            ModelField::Named(Cow::Borrowed("gpt-4o")),
        ),
        (r#"{"model":"auto","#, ModelField::Unusable),
    ];
    for (body, expected) in cases {
        assert_eq!(probe_model(body.as_bytes()), expected, "{body}");
    }
}

/// Valid JSON nested past serde_json's recursion limit where the parser expects a message list: a
/// shape triage cannot read (not invalid JSON), whose top-level model is still found, so a fail-open
/// keeps the README's contract (only a routable model's value changes).
#[test]
fn a_body_nested_past_the_parsers_limit_is_an_unknown_shape_with_its_model() {
    let nesting = 300;
    let deep = format!(
        r#"{{"model":"auto","messages":{}1{}}}"#,
        "[".repeat(nesting),
        "]".repeat(nesting)
    );
    serde_json::from_str::<serde_json::Value>(&deep).unwrap_err();
    assert_eq!(
        parse_request(ApiFormat::OpenAiChat, deep.as_bytes()).err(),
        Some(FailOpen::UnknownShape)
    );
    assert_eq!(
        probe_model(deep.as_bytes()),
        ModelField::Named(Cow::Borrowed("auto"))
    );
    let broken = format!("{deep}]");
    assert_eq!(
        parse_request(ApiFormat::OpenAiChat, broken.as_bytes()).err(),
        Some(FailOpen::InvalidJson),
        "broken JSON stays invalid, however deep"
    );
}
