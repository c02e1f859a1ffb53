use super::*;

fn rewritten(body: &str, model: &str) -> String {
    String::from_utf8(rewrite_model(body.as_bytes(), model).unwrap()).unwrap()
}

#[test]
fn replaces_only_the_top_level_value_byte_for_byte() {
    let cases = [
        (
            r#"{"model":"auto","messages":[]}"#,
            "gpt-4o",
            r#"{"model":"gpt-4o","messages":[]}"#,
        ),
        (
            "{ \"stream\" : true ,\n  \"model\"  :\t\"auto\" ,\n  \"x\": 1 }\n",
            "o3",
            "{ \"stream\" : true ,\n  \"model\"  :\t\"o3\" ,\n  \"x\": 1 }\n",
        ),
        (
            r#"{"messages":[{"role":"user","content":"model","model":"keep"}],"meta":{"model":"keep"},"model":"auto"}"#,
            "o3",
            r#"{"messages":[{"role":"user","content":"model","model":"keep"}],"meta":{"model":"keep"},"model":"o3"}"#,
        ),
        (
            r#"{"a":"x\"}{[","model":"auto"}"#,
            "o3",
            r#"{"a":"x\"}{[","model":"o3"}"#,
        ),
        (
            r#"{"a":"\\","model":"a\"b"}"#,
            "o3",
            r#"{"a":"\\","model":"o3"}"#,
        ),
        (r#"{"model":null}"#, "o3", r#"{"model":"o3"}"#),
        (
            r#"{"model":{"nested":["x"]},"y":2}"#,
            "o3",
            r#"{"model":"o3","y":2}"#,
        ),
        (r#"{"mod\u0065l":"auto"}"#, "o3", r#"{"mod\u0065l":"o3"}"#),
        (
            r#"{"model":"a","model":"b"}"#,
            "o3",
            r#"{"model":"o3","model":"o3"}"#,
        ),
        (
            r#"{"models":"auto"}"#,
            "o3",
            r#"{"model":"o3","models":"auto"}"#,
        ),
    ];
    for (body, model, expected) in cases {
        assert_eq!(rewritten(body, model), expected, "{body}");
    }
}

#[test]
fn escapes_the_new_model() {
    let cases = [
        ("we\"ird\\", r#"{"model":"we\"ird\\"}"#),
        ("tab\there\n", r#"{"model":"tab\there\n"}"#),
        ("\u{1}", r#"{"model":"\u0001"}"#),
        ("модель", r#"{"model":"модель"}"#),
    ];
    for (model, expected) in cases {
        let out = rewritten(r#"{"model":"auto"}"#, model);
        assert_eq!(out, expected);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["model"], model);
    }
}

#[test]
fn inserts_when_absent() {
    let cases = [
        (r#"{"messages":[]}"#, r#"{"model":"o3","messages":[]}"#),
        ("{}", r#"{"model":"o3"}"#),
        (" { } ", r#" {"model":"o3" } "#),
        ("{\n  \"x\": 1\n}", "{\"model\":\"o3\",\n  \"x\": 1\n}"),
    ];
    for (body, expected) in cases {
        assert_eq!(rewritten(body, "o3"), expected);
    }
}

#[test]
fn refuses_what_is_not_an_object() {
    let cases: [(&[u8], RewriteError); 9] = [
        (b"", RewriteError::NotAnObject),
        (b"[1]", RewriteError::NotAnObject),
        (b"\"model\"", RewriteError::NotAnObject),
        (b"{", RewriteError::Malformed { offset: 1 }),
        (
            b"{\"model\":\"auto\"",
            RewriteError::Malformed { offset: 15 },
        ),
        (
            b"{\"model\" \"auto\"}",
            RewriteError::Malformed { offset: 9 },
        ),
        (
            b"{\"model\":\"auto\"} x",
            RewriteError::Malformed { offset: 17 },
        ),
        (
            b"{\"a\":[1,{\"b\":2]",
            RewriteError::Malformed { offset: 15 },
        ),
        (b"{\"a\":}", RewriteError::Malformed { offset: 5 }),
    ];
    for (body, expected) in cases {
        assert_eq!(
            rewrite_model(body, "o3"),
            Err(expected),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(
        RewriteError::NotAnObject.to_string(),
        "body is not a JSON object"
    );
}

#[test]
fn invalid_utf8_is_kept_and_does_not_panic() {
    let body = b"{\"x\":\"\xff\xfe\",\"model\":\"auto\"}";
    assert_eq!(
        rewrite_model(body, "o3").unwrap(),
        b"{\"x\":\"\xff\xfe\",\"model\":\"o3\"}".to_vec()
    );
    for end in 0..body.len() {
        let _ = rewrite_model(&body[..end], "o3");
    }
    let _ = rewrite_model(b"{\"\\", "o3");
    let _ = rewrite_model(b"{\"mod\\\xff\":1}", "o3");
}

fn inserted(body: &str, key: &str, value: &str) -> Option<String> {
    insert_member(body.as_bytes(), key, value).map(|out| String::from_utf8(out).unwrap())
}

#[test]
fn insert_member_adds_the_first_member_and_keeps_every_other_byte() {
    let usage = r#"{"include_usage": true}"#;
    let cases = [
        (
            r#"{"model":"gpt-4o-mini","stream":true,"messages":[]}"#,
            "stream_options",
            usage,
            r#"{"stream_options":{"include_usage": true},"model":"gpt-4o-mini","stream":true,"messages":[]}"#,
        ),
        (
            "  { \"model\" : \"auto\" ,\t\"messages\" : [ ] }  \n",
            "logprobs",
            "true",
            "  {\"logprobs\":true, \"model\" : \"auto\" ,\t\"messages\" : [ ] }  \n",
        ),
        (
            "{\n  \"model\": \"auto\",\n  \"messages\": [\n    {\"role\": \"user\", \"content\": \"hi\"}\n  ]\n}\n",
            "top_logprobs",
            "0",
            "{\"top_logprobs\":0,\n  \"model\": \"auto\",\n  \"messages\": [\n    {\"role\": \"user\", \"content\": \"hi\"}\n  ]\n}\n",
        ),
        // The same name nested (in a message, in a nested object, in a string) is not top level.
        (
            r#"{"messages":[{"role":"user","content":"\"logprobs\": true","logprobs":1}],"meta":{"logprobs":false}}"#,
            "logprobs",
            "true",
            r#"{"logprobs":true,"messages":[{"role":"user","content":"\"logprobs\": true","logprobs":1}],"meta":{"logprobs":false}}"#,
        ),
        ("{}", "include", r#"["message.output_text.logprobs"]"#, r#"{"include":["message.output_text.logprobs"]}"#),
        (" { } ", "k", "null", r#" {"k":null } "#),
        (r#"{"a":1}"#, "we\"ird\\", "1", r#"{"we\"ird\\":1,"a":1}"#),
        (r#"{"logprobs2":1,"log":2}"#, "logprobs", "true", r#"{"logprobs":true,"logprobs2":1,"log":2}"#),
    ];
    for (body, key, value, expected) in cases {
        let out = inserted(body, key, value);
        assert_eq!(out.as_deref(), Some(expected), "{body}");
        let parsed: serde_json::Value = serde_json::from_str(expected).unwrap();
        let value: serde_json::Value = serde_json::from_str(value).unwrap();
        assert_eq!(parsed[key], value, "{body}");
    }
}

#[test]
fn insert_member_refuses_an_existing_key_a_non_object_or_a_bad_value() {
    let refused: [(&[u8], &str, &str); 15] = [
        (br#"{"logprobs":false}"#, "logprobs", "true"),
        (br#"{"a":1, "logprobs" : null}"#, "logprobs", "true"),
        // An escaped spelling is the same key.
        (br#"{"log\u0070robs":false}"#, "logprobs", "true"),
        (b"", "k", "1"),
        (b"[]", "k", "1"),
        (b"\"{}\"", "k", "1"),
        (b"null", "k", "1"),
        (b"{", "k", "1"),
        (b"{\"a\":1", "k", "1"),
        (b"{\"a\":1} {}", "k", "1"),
        (b"{}", "k", ""),
        (b"{}", "k", "{"),
        (b"{}", "k", "tru"),
        (b"{}", "k", "1 2"),
        (b"{}", "k", "{\"a\":1} x"),
    ];
    for (body, key, value) in refused {
        assert_eq!(
            insert_member(body, key, value),
            None,
            "{} {key} {value}",
            String::from_utf8_lossy(body)
        );
    }
    // Whitespace around a valid value is kept as given.
    assert_eq!(inserted("{}", "k", " 1 ").as_deref(), Some(r#"{"k": 1 }"#));
    for end in 0..20 {
        let body = br#"{"a":[1,{"b":"\"}"}]}"#;
        let _ = insert_member(&body[..end.min(body.len())], "k", "1");
    }
}

#[test]
fn insert_member_then_rewrite_model_agree_on_the_scan() {
    let body = br#"{"stream":true,"model":"auto","messages":[]}"#;
    let with_options = insert_member(body, "stream_options", r#"{"include_usage":true}"#).unwrap();
    assert_eq!(
        rewrite_model(&with_options, "o3").unwrap(),
        br#"{"stream_options":{"include_usage":true},"stream":true,"model":"o3","messages":[]}"#
    );
    assert_eq!(insert_member(body, "model", "\"x\""), None);
    assert_eq!(insert_member(body, "mod\u{65}l", "\"x\""), None);
}
