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
