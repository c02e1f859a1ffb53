use super::*;

use ApiFormat::{AnthropicMessages as Anthropic, OpenAiChat as Chat, OpenAiResponses as Responses};

/// Bodies the mock upstream (envoy/mock-llm) sent for its failure switches: `<format>-<switch>.json`.
mod fixtures {
    macro_rules! fixture {
        ($name:ident, $file:literal) => {
            pub const $name: &str = include_str!(concat!("fixtures/", $file));
        };
    }
    fixture!(CHAT_HEALTHY, "chat-healthy.json");
    fixture!(CHAT_EMPTY, "chat-empty.json");
    fixture!(CHAT_TRUNCATE, "chat-truncate.json");
    fixture!(CHAT_REFUSAL, "chat-refusal.json");
    fixture!(CHAT_BADJSON, "chat-badjson.json");
    fixture!(CHAT_BADTOOL, "chat-badtool.json");
    fixture!(CHAT_LOGPROBS, "chat-logprobs.json");
    fixture!(CHAT_LOGPROBS_2, "chat-logprobs-2.json");
    fixture!(RESPONSES_HEALTHY, "responses-healthy.json");
    fixture!(RESPONSES_EMPTY, "responses-empty.json");
    fixture!(RESPONSES_TRUNCATE, "responses-truncate.json");
    fixture!(RESPONSES_REFUSAL, "responses-refusal.json");
    fixture!(RESPONSES_BADJSON, "responses-badjson.json");
    fixture!(RESPONSES_BADTOOL, "responses-badtool.json");
    fixture!(RESPONSES_LOGPROBS, "responses-logprobs.json");
    fixture!(RESPONSES_LOGPROBS_2, "responses-logprobs-2.json");
    fixture!(ANTHROPIC_HEALTHY, "anthropic-healthy.json");
    fixture!(ANTHROPIC_EMPTY, "anthropic-empty.json");
    fixture!(ANTHROPIC_TRUNCATE, "anthropic-truncate.json");
    fixture!(ANTHROPIC_REFUSAL, "anthropic-refusal.json");
    fixture!(ANTHROPIC_BADJSON, "anthropic-badjson.json");
    fixture!(ANTHROPIC_BADTOOL, "anthropic-badtool.json");
}
use fixtures::*;

/// The mock's broken arguments, as they sit inside a JSON string, and a fixed version.
const BAD_ARGS: &str = r#"\"unterminated""#;
const GOOD_ARGS: &str = r#"\"unterminated\"}""#;
/// The mock's unterminated JSON answer text, and a JSON text in its place.
const BAD_JSON_TEXT: &str = r#""{\"answer\": \"unterminated""#;
const GOOD_JSON_TEXT: &str = r#""{\"answer\": 42}""#;

const NOTHING: Expectations = Expectations {
    json_output: false,
    tools: false,
    output_limit: None,
};
const JSON: Expectations = Expectations {
    json_output: true,
    tools: false,
    output_limit: None,
};
const TOOLS: Expectations = Expectations {
    json_output: false,
    tools: true,
    output_limit: None,
};

/// `expect` with the client's answer capped at `tokens`.
const fn capped(expect: Expectations, tokens: u64) -> Expectations {
    Expectations {
        output_limit: Some(tokens),
        ..expect
    }
}

fn refusal_regex() -> regex::Regex {
    regex::Regex::new(r"(?i)^\s*(I'm sorry|I can(?:not|'t) (?:help|assist))").unwrap()
}

/// Every check on, logprobs at least -0.5.
fn all_checks() -> AnswerChecks {
    AnswerChecks {
        truncated: true,
        tight_limit_tokens: 128,
        empty: true,
        refusal: Some(refusal_regex()),
        invalid_json: true,
        invalid_tool_args: true,
        min_mean_logprob: Some(-0.5),
    }
}

#[derive(Clone, Copy, Debug)]
enum Check {
    Truncated,
    Empty,
    Refusal,
    InvalidJson,
    InvalidToolArgs,
    LowLogprob,
}

/// Only `check` on.
fn only(check: Check) -> AnswerChecks {
    let all = all_checks();
    let mut checks = AnswerChecks::default();
    match check {
        Check::Truncated => {
            checks.truncated = true;
            checks.tight_limit_tokens = all.tight_limit_tokens;
        }
        Check::Empty => checks.empty = true,
        Check::Refusal => checks.refusal = all.refusal,
        Check::InvalidJson => checks.invalid_json = true,
        Check::InvalidToolArgs => checks.invalid_tool_args = true,
        Check::LowLogprob => checks.min_mean_logprob = all.min_mean_logprob,
    }
    checks
}

fn replaced(body: &str, from: &str, to: &str) -> String {
    assert!(body.contains(from), "{from} not in {body}");
    body.replace(from, to)
}

#[test]
fn each_check_on_each_format_passes_the_healthy_answer_and_fails_the_mock_switch() {
    use Check::*;
    let good_tool = |body: &str| replaced(body, BAD_ARGS, GOOD_ARGS);
    let good_json = |body: &str| replaced(body, BAD_JSON_TEXT, GOOD_JSON_TEXT);
    let anthropic_good_tool = replaced(
        ANTHROPIC_BADTOOL,
        r#""input":"{\"query\": \"unterminated""#,
        r#""input":{"query": "unterminated"}"#,
    );
    let blank = |body: &str, text: &str| replaced(body, text, "\" \\n\\t \"");
    let healthy_chat_text = r#""[mock small tier, model gpt-4o-mini] This answer""#;
    let chat_blank =
        replaced(CHAT_TRUNCATE, healthy_chat_text, "\" \\n \"").replace("\"length\"", "\"stop\"");
    let cases: Vec<(ApiFormat, Check, Expectations, String, Option<Weakness>)> = vec![
        // truncated
        (Chat, Truncated, NOTHING, CHAT_HEALTHY.into(), None),
        (
            Chat,
            Truncated,
            NOTHING,
            CHAT_TRUNCATE.into(),
            Some(Weakness::Truncated),
        ),
        (
            Responses,
            Truncated,
            NOTHING,
            RESPONSES_HEALTHY.into(),
            None,
        ),
        (
            Responses,
            Truncated,
            NOTHING,
            RESPONSES_TRUNCATE.into(),
            Some(Weakness::Truncated),
        ),
        (
            Anthropic,
            Truncated,
            NOTHING,
            ANTHROPIC_HEALTHY.into(),
            None,
        ),
        (
            Anthropic,
            Truncated,
            NOTHING,
            ANTHROPIC_TRUNCATE.into(),
            Some(Weakness::Truncated),
        ),
        // empty; a tool call is an answer
        (Chat, Empty, NOTHING, CHAT_HEALTHY.into(), None),
        (
            Chat,
            Empty,
            NOTHING,
            CHAT_EMPTY.into(),
            Some(Weakness::Empty),
        ),
        (Chat, Empty, NOTHING, chat_blank, Some(Weakness::Empty)),
        (Chat, Empty, TOOLS, CHAT_BADTOOL.into(), None),
        (Responses, Empty, NOTHING, RESPONSES_HEALTHY.into(), None),
        (
            Responses,
            Empty,
            NOTHING,
            RESPONSES_EMPTY.into(),
            Some(Weakness::Empty),
        ),
        (
            Responses,
            Empty,
            NOTHING,
            blank(
                RESPONSES_REFUSAL,
                r#""I'm sorry, but I can't help with that.""#,
            ),
            Some(Weakness::Empty),
        ),
        (Responses, Empty, TOOLS, RESPONSES_BADTOOL.into(), None),
        (Anthropic, Empty, NOTHING, ANTHROPIC_HEALTHY.into(), None),
        (
            Anthropic,
            Empty,
            NOTHING,
            ANTHROPIC_EMPTY.into(),
            Some(Weakness::Empty),
        ),
        (
            Anthropic,
            Empty,
            NOTHING,
            blank(
                ANTHROPIC_REFUSAL,
                r#""I'm sorry, but I can't help with that.""#,
            ),
            Some(Weakness::Empty),
        ),
        (Anthropic, Empty, TOOLS, ANTHROPIC_BADTOOL.into(), None),
        // refusal
        (Chat, Refusal, NOTHING, CHAT_HEALTHY.into(), None),
        (
            Chat,
            Refusal,
            NOTHING,
            CHAT_REFUSAL.into(),
            Some(Weakness::Refusal),
        ),
        (Responses, Refusal, NOTHING, RESPONSES_HEALTHY.into(), None),
        (
            Responses,
            Refusal,
            NOTHING,
            RESPONSES_REFUSAL.into(),
            Some(Weakness::Refusal),
        ),
        (Anthropic, Refusal, NOTHING, ANTHROPIC_HEALTHY.into(), None),
        (
            Anthropic,
            Refusal,
            NOTHING,
            ANTHROPIC_REFUSAL.into(),
            Some(Weakness::Refusal),
        ),
        // invalid JSON, only where JSON was asked for
        (Chat, InvalidJson, JSON, good_json(CHAT_BADJSON), None),
        (
            Chat,
            InvalidJson,
            JSON,
            CHAT_BADJSON.into(),
            Some(Weakness::InvalidJson),
        ),
        (
            Chat,
            InvalidJson,
            JSON,
            CHAT_HEALTHY.into(),
            Some(Weakness::InvalidJson),
        ),
        (Chat, InvalidJson, NOTHING, CHAT_BADJSON.into(), None),
        (
            Responses,
            InvalidJson,
            JSON,
            good_json(RESPONSES_BADJSON),
            None,
        ),
        (
            Responses,
            InvalidJson,
            JSON,
            RESPONSES_BADJSON.into(),
            Some(Weakness::InvalidJson),
        ),
        (
            Responses,
            InvalidJson,
            NOTHING,
            RESPONSES_BADJSON.into(),
            None,
        ),
        (
            Anthropic,
            InvalidJson,
            JSON,
            good_json(ANTHROPIC_BADJSON),
            None,
        ),
        (
            Anthropic,
            InvalidJson,
            JSON,
            ANTHROPIC_BADJSON.into(),
            Some(Weakness::InvalidJson),
        ),
        (
            Anthropic,
            InvalidJson,
            NOTHING,
            ANTHROPIC_BADJSON.into(),
            None,
        ),
        // invalid tool arguments, only where tools were offered
        (Chat, InvalidToolArgs, TOOLS, good_tool(CHAT_BADTOOL), None),
        (
            Chat,
            InvalidToolArgs,
            TOOLS,
            CHAT_BADTOOL.into(),
            Some(Weakness::InvalidToolArgs),
        ),
        (Chat, InvalidToolArgs, NOTHING, CHAT_BADTOOL.into(), None),
        (
            Responses,
            InvalidToolArgs,
            TOOLS,
            good_tool(RESPONSES_BADTOOL),
            None,
        ),
        (
            Responses,
            InvalidToolArgs,
            TOOLS,
            RESPONSES_BADTOOL.into(),
            Some(Weakness::InvalidToolArgs),
        ),
        (
            Responses,
            InvalidToolArgs,
            NOTHING,
            RESPONSES_BADTOOL.into(),
            None,
        ),
        (Anthropic, InvalidToolArgs, TOOLS, anthropic_good_tool, None),
        (
            Anthropic,
            InvalidToolArgs,
            TOOLS,
            ANTHROPIC_BADTOOL.into(),
            Some(Weakness::InvalidToolArgs),
        ),
        (
            Anthropic,
            InvalidToolArgs,
            NOTHING,
            ANTHROPIC_BADTOOL.into(),
            None,
        ),
        // logprobs: the mock's default mean is -0.1, `logprobs=-2` makes it -2; none, no check
        (Chat, LowLogprob, NOTHING, CHAT_LOGPROBS.into(), None),
        (
            Chat,
            LowLogprob,
            NOTHING,
            CHAT_LOGPROBS_2.into(),
            Some(Weakness::LowLogprob),
        ),
        (Chat, LowLogprob, NOTHING, CHAT_HEALTHY.into(), None),
        (
            Responses,
            LowLogprob,
            NOTHING,
            RESPONSES_LOGPROBS.into(),
            None,
        ),
        (
            Responses,
            LowLogprob,
            NOTHING,
            RESPONSES_LOGPROBS_2.into(),
            Some(Weakness::LowLogprob),
        ),
        (
            Responses,
            LowLogprob,
            NOTHING,
            RESPONSES_HEALTHY.into(),
            None,
        ),
        (
            Anthropic,
            LowLogprob,
            NOTHING,
            ANTHROPIC_HEALTHY.into(),
            None,
        ),
    ];
    for (format, check, expect, body, expected) in cases {
        assert_eq!(
            check_answer(format, body.as_bytes(), &expect, &only(check)),
            expected,
            "{format:?} {check:?} {expect:?}: {body}"
        );
        // With no check enabled nothing is ever weak.
        let none = AnswerChecks::default();
        assert_eq!(check_answer(format, body.as_bytes(), &expect, &none), None);
    }
}

#[test]
fn healthy_answers_pass_every_check() {
    for (format, body) in [
        (Chat, CHAT_HEALTHY),
        (Chat, CHAT_LOGPROBS),
        (Responses, RESPONSES_HEALTHY),
        (Responses, RESPONSES_LOGPROBS),
        (Anthropic, ANTHROPIC_HEALTHY),
    ] {
        let expect = Expectations {
            json_output: false,
            tools: true,
            output_limit: None,
        };
        assert_eq!(
            check_answer(format, body.as_bytes(), &expect, &all_checks()),
            None,
            "{format:?} {body}"
        );
    }
}

#[test]
fn the_logprob_mean_counts_each_token_once_and_not_its_alternatives() {
    // The mock's tokens alternate mean/2 and 3 mean/2: -0.05 and -0.15 around -0.1; the
    // alternatives listed in top_logprobs are a nat or more below.
    for (format, body) in [(Chat, CHAT_LOGPROBS), (Responses, RESPONSES_LOGPROBS)] {
        let at = |min: f64| AnswerChecks {
            min_mean_logprob: Some(min),
            ..AnswerChecks::default()
        };
        let check = |min| check_answer(format, body.as_bytes(), &NOTHING, &at(min));
        assert_eq!(check(-0.1 - 1e-9), None, "{format:?}");
        assert_eq!(check(-0.1 + 1e-9), Some(Weakness::LowLogprob), "{format:?}");
    }
}

#[test]
fn the_provider_s_own_refusal_counts_whatever_the_text() {
    let never = AnswerChecks {
        refusal: Some(regex::Regex::new("will never match").unwrap()),
        empty: true,
        ..AnswerChecks::default()
    };
    let chat = r#"{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":null,"refusal":"I can't assist with that request.","role":"assistant"}}],"id":"chatcmpl-1","object":"chat.completion"}"#;
    let responses = r#"{"id":"resp_1","object":"response","status":"completed","incomplete_details":null,"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"refusal","refusal":"I can't assist with that."}]}]}"#;
    let anthropic = r#"{"id":"msg_1","type":"message","role":"assistant","content":[],"stop_reason":"refusal","stop_sequence":null}"#;
    for (format, body) in [(Chat, chat), (Responses, responses), (Anthropic, anthropic)] {
        let body = body.as_bytes();
        assert_eq!(
            check_answer(format, body, &JSON, &never),
            Some(Weakness::Refusal),
            "{format:?}"
        );
        // Without the refusal check it is neither empty nor invalid JSON: it is a refusal.
        let others = AnswerChecks {
            refusal: None,
            ..all_checks()
        };
        assert_eq!(
            check_answer(format, body, &JSON, &others),
            None,
            "{format:?}"
        );
    }
    // A null or empty chat refusal is none.
    let not_refused = CHAT_HEALTHY.replace(r#""refusal":null"#, r#""refusal":"""#);
    assert_eq!(
        check_answer(Chat, not_refused.as_bytes(), &NOTHING, &never),
        None
    );
}

#[test]
fn the_refusal_regex_reads_only_the_first_4_kib() {
    let unanchored = AnswerChecks {
        refusal: Some(regex::Regex::new("I'm sorry").unwrap()),
        ..AnswerChecks::default()
    };
    let body = |text: &str| {
        format!(
            r#"{{"choices":[{{"index":0,"finish_reason":"stop","message":{{"role":"assistant","content":{}}}}}]}}"#,
            serde_json::to_string(text).unwrap()
        )
    };
    let late = format!("{}I'm sorry", "x".repeat(REFUSAL_SCAN_BYTES));
    let in_reach = format!("{}I'm sorry", "x".repeat(REFUSAL_SCAN_BYTES - 9));
    assert_eq!(
        check_answer(Chat, body(&late).as_bytes(), &NOTHING, &unanchored),
        None
    );
    assert_eq!(
        check_answer(Chat, body(&in_reach).as_bytes(), &NOTHING, &unanchored),
        Some(Weakness::Refusal)
    );
    // A character across the cap is cut before it, not split.
    let straddling = format!("{}é I'm sorry", "x".repeat(REFUSAL_SCAN_BYTES - 1));
    assert_eq!(
        check_answer(Chat, body(&straddling).as_bytes(), &NOTHING, &unanchored),
        None
    );
    assert_eq!(prefix("aé", 2), "a");
    assert_eq!(prefix("aé", 3), "aé");
    assert_eq!(prefix("aé", 99), "aé");
    assert_eq!(prefix("", 0), "");
}

#[test]
fn a_chat_answer_of_several_choices_is_judged_on_its_first() {
    let body = r#"{"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Paris."}},{"index":1,"finish_reason":"length","message":{"role":"assistant","content":""}}]}"#;
    assert_eq!(
        check_answer(Chat, body.as_bytes(), &NOTHING, &all_checks()),
        None
    );
    let swapped = r#"{"choices":[{"index":1,"finish_reason":"length","message":{"role":"assistant","content":""}},{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Paris."}}]}"#;
    assert_eq!(
        check_answer(Chat, swapped.as_bytes(), &NOTHING, &all_checks()),
        Some(Weakness::Truncated)
    );
}

#[test]
fn several_text_parts_are_one_answer() {
    let anthropic = r#"{"type":"message","role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"x"},{"type":"text","text":"{\"a\": "},{"type":"text","text":"[1, 2]}"}],"stop_reason":"end_turn"}"#;
    let responses = r#"{"object":"response","status":"completed","output":[{"type":"reasoning","id":"rs_1","summary":[]},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"{\"a\": ","annotations":[]},{"type":"output_text","text":"[1, 2]}","annotations":[]}]}]}"#;
    for (format, body) in [(Anthropic, anthropic), (Responses, responses)] {
        assert_eq!(
            check_answer(format, body.as_bytes(), &JSON, &all_checks()),
            None
        );
        let cut = body.replace("2]}", "2]");
        assert_eq!(
            check_answer(format, cut.as_bytes(), &JSON, &all_checks()),
            Some(Weakness::InvalidJson)
        );
    }
}

#[test]
fn tool_arguments_must_be_an_object() {
    let checks = only(Check::InvalidToolArgs);
    for (arguments, expected) in [
        (r#""{}""#, None),
        (r#"" {\"city\": \"Paris\", \"days\": [1, 2]} ""#, None),
        (r#""[1, 2]""#, Some(Weakness::InvalidToolArgs)),
        (r#""\"Paris\"""#, Some(Weakness::InvalidToolArgs)),
        (r#""""#, Some(Weakness::InvalidToolArgs)),
        (r#""{} {}""#, Some(Weakness::InvalidToolArgs)),
    ] {
        let chat = format!(
            r#"{{"choices":[{{"index":0,"finish_reason":"tool_calls","message":{{"role":"assistant","content":null,"tool_calls":[{{"id":"call_0","type":"function","function":{{"name":"a","arguments":"{{}}"}}}},{{"id":"call_1","type":"function","function":{{"name":"b","arguments":{arguments}}}}}]}}}}]}}"#
        );
        assert_eq!(
            check_answer(Chat, chat.as_bytes(), &TOOLS, &checks),
            expected,
            "{chat}"
        );
        let legacy = format!(
            r#"{{"choices":[{{"index":0,"finish_reason":"function_call","message":{{"role":"assistant","content":null,"function_call":{{"name":"b","arguments":{arguments}}}}}}}]}}"#
        );
        assert_eq!(
            check_answer(Chat, legacy.as_bytes(), &TOOLS, &checks),
            expected,
            "{legacy}"
        );
        let responses = format!(
            r#"{{"object":"response","status":"completed","output":[{{"type":"function_call","name":"b","call_id":"c","arguments":{arguments}}}]}}"#
        );
        assert_eq!(
            check_answer(Responses, responses.as_bytes(), &TOOLS, &checks),
            expected,
            "{responses}"
        );
    }
    for (input, expected) in [
        ("{}", None),
        (r#"{"city": "Paris"}"#, None),
        ("[1]", Some(Weakness::InvalidToolArgs)),
        ("null", Some(Weakness::InvalidToolArgs)),
        (r#""{}""#, Some(Weakness::InvalidToolArgs)),
    ] {
        let anthropic = format!(
            r#"{{"type":"message","content":[{{"type":"text","text":"Let me look."}},{{"type":"tool_use","id":"t","name":"b","input":{input}}}],"stop_reason":"tool_use"}}"#
        );
        assert_eq!(
            check_answer(Anthropic, anthropic.as_bytes(), &TOOLS, &checks),
            expected,
            "{anthropic}"
        );
    }
    // A custom tool's input is free text: counted as a call, not parsed.
    let custom = r#"{"object":"response","status":"completed","output":[{"type":"custom_tool_call","name":"sh","call_id":"c","input":"ls -la"}]}"#;
    assert_eq!(
        check_answer(Responses, custom.as_bytes(), &TOOLS, &all_checks()),
        None
    );
}

#[test]
fn the_first_failing_check_wins_in_the_documented_order() {
    // Cut off, blank, not JSON, low logprobs.
    let blank = r#"{"choices":[{"index":0,"finish_reason":"length","logprobs":{"content":[{"token":" ","logprob":-3.0,"bytes":[32],"top_logprobs":[]}],"refusal":null},"message":{"role":"assistant","content":" ","refusal":null}}]}"#;
    // Cut off, a refusal, a broken tool call, low logprobs.
    let refusing = r#"{"choices":[{"index":0,"finish_reason":"length","logprobs":{"content":[{"token":"I","logprob":-3.0,"bytes":[73],"top_logprobs":[]}],"refusal":null},"message":{"role":"assistant","content":"I'm sorry, I can't help.","refusal":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{"}}]}}]}"#;
    let both = Expectations {
        json_output: true,
        tools: true,
        output_limit: None,
    };
    let drop_in_turn = |body: &str, expected: &[Option<Weakness>]| {
        let mut checks = all_checks();
        let mut seen = Vec::new();
        for step in 0..=6 {
            seen.push(check_answer(Chat, body.as_bytes(), &both, &checks));
            match step {
                0 => checks.truncated = false,
                1 => checks.empty = false,
                2 => checks.refusal = None,
                3 => checks.invalid_json = false,
                4 => checks.invalid_tool_args = false,
                5 => checks.min_mean_logprob = None,
                _ => {}
            }
        }
        assert_eq!(seen, expected, "{body}");
    };
    use Weakness::*;
    drop_in_turn(
        blank,
        &[
            Some(Truncated),
            Some(Empty),
            Some(InvalidJson),
            Some(InvalidJson),
            Some(LowLogprob),
            Some(LowLogprob),
            None,
        ],
    );
    drop_in_turn(
        refusing,
        &[
            Some(Truncated),
            Some(Refusal),
            Some(Refusal),
            Some(InvalidToolArgs),
            Some(InvalidToolArgs),
            Some(LowLogprob),
            None,
        ],
    );
}

#[test]
fn what_is_not_a_readable_answer_is_never_weak() {
    let bodies: &[(ApiFormat, &str)] = &[
        (Chat, ""),
        (
            Chat,
            "upstream connect error or disconnect/reset before headers",
        ),
        (Chat, "[]"),
        (Chat, "null"),
        (
            Chat,
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        ),
        (Chat, r#"{"choices":[]}"#),
        (Chat, r#"{"choices":{"message":{"content":""}}}"#),
        (Chat, r#"{"choices":[{"message":{"content":42}}]}"#),
        (Chat, r#"{"id":"x","object":"chat.completion"}"#),
        (
            Responses,
            r#"{"error":{"message":"x","type":"server_error","param":null,"code":null}}"#,
        ),
        (
            Responses,
            r#"{"object":"response","status":"failed","error":{"code":"server_error","message":"x"},"output":[]}"#,
        ),
        (
            Responses,
            r#"{"object":"response","status":"in_progress","output":[]}"#,
        ),
        (
            Anthropic,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
        ),
        (Anthropic, r#"{"type":"message","content":"hi"}"#),
        // A body of another format.
        (Anthropic, CHAT_EMPTY),
        (Chat, ANTHROPIC_EMPTY),
        (Responses, CHAT_EMPTY),
    ];
    for (format, body) in bodies {
        let expect = Expectations {
            json_output: true,
            tools: true,
            output_limit: None,
        };
        assert_eq!(
            check_answer(*format, body.as_bytes(), &expect, &all_checks()),
            None,
            "{format:?} {body}"
        );
    }
}

#[test]
fn cut_and_garbled_bodies_never_panic_and_are_not_judged() {
    let expect = Expectations {
        json_output: true,
        tools: true,
        output_limit: None,
    };
    for (format, body) in [
        (Chat, CHAT_BADTOOL),
        (Chat, CHAT_LOGPROBS_2),
        (Responses, RESPONSES_TRUNCATE),
        (Anthropic, ANTHROPIC_BADTOOL),
    ] {
        let body = body.trim_end().as_bytes();
        for end in 0..body.len() {
            assert_eq!(
                check_answer(format, &body[..end], &expect, &all_checks()),
                None,
                "{format:?} cut at {end}"
            );
        }
    }
    for garbage in [
        &b"{\"choices\":[{\"message\":{\"content\":\"\xff\xfe\"}}]}"[..],
        b"{\"\\",
        b"{{{{",
    ] {
        for format in ApiFormat::ALL {
            assert_eq!(check_answer(format, garbage, &expect, &all_checks()), None);
        }
    }
}

/// A client that capped the answer under `tight_limit_tokens` gets a cut answer without an
/// escalation; at or over it, or without a cap, the cut is weak; a cut by the context window always
/// is.
#[test]
fn a_cut_at_a_tight_client_limit_is_what_the_client_asked_for() {
    let checks = only(Check::Truncated);
    let context_window = replaced(
        ANTHROPIC_TRUNCATE,
        r#""stop_reason":"max_tokens""#,
        r#""stop_reason":"model_context_window_exceeded""#,
    );
    let cases: &[(ApiFormat, &str, Option<u64>, Option<Weakness>)] = &[
        (Chat, CHAT_TRUNCATE, Some(1), None),
        (Chat, CHAT_TRUNCATE, Some(127), None),
        (Chat, CHAT_TRUNCATE, Some(128), Some(Weakness::Truncated)),
        (Chat, CHAT_TRUNCATE, None, Some(Weakness::Truncated)),
        (Responses, RESPONSES_TRUNCATE, Some(16), None),
        (
            Responses,
            RESPONSES_TRUNCATE,
            Some(4096),
            Some(Weakness::Truncated),
        ),
        (Anthropic, ANTHROPIC_TRUNCATE, Some(10), None),
        (
            Anthropic,
            ANTHROPIC_TRUNCATE,
            Some(1024),
            Some(Weakness::Truncated),
        ),
        (
            Anthropic,
            &context_window,
            Some(10),
            Some(Weakness::Truncated),
        ),
    ];
    for &(format, body, limit, expected) in cases {
        let expect = Expectations {
            output_limit: limit,
            ..NOTHING
        };
        assert_eq!(
            check_answer(format, body.as_bytes(), &expect, &checks),
            expected,
            "{format:?} cap {limit:?}: {body}"
        );
    }
    let no_tight_limit = AnswerChecks {
        tight_limit_tokens: 0,
        ..checks
    };
    assert_eq!(
        check_answer(
            Chat,
            CHAT_TRUNCATE.as_bytes(),
            &capped(NOTHING, 1),
            &no_tight_limit
        ),
        Some(Weakness::Truncated),
        "tight_limit_tokens 0 takes every cut as weak"
    );
}

#[test]
fn expectations_read_the_request() {
    let cases: &[(ApiFormat, &str, Expectations)] = &[
        (
            Chat,
            r#"{"model":"auto","messages":[{"role":"user","content":"hi"}]}"#,
            NOTHING,
        ),
        (
            Chat,
            r#"{"messages":[],"response_format":{"type":"json_object"}}"#,
            JSON,
        ),
        (
            Chat,
            r#"{"messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}}"#,
            JSON,
        ),
        (
            Chat,
            r#"{"messages":[],"response_format":{"type":"text"}}"#,
            NOTHING,
        ),
        (
            Chat,
            r#"{"messages":[],"response_format":null,"tools":null}"#,
            NOTHING,
        ),
        (Chat, r#"{"messages":[],"tools":[]}"#, NOTHING),
        (
            Chat,
            r#"{"messages":[],"tools":[{"type":"function","function":{"name":"f"}}]}"#,
            TOOLS,
        ),
        (Chat, r#"{"messages":[],"functions":[{"name":"f"}]}"#, TOOLS),
        // Another format's field means nothing.
        (
            Chat,
            r#"{"messages":[],"text":{"format":{"type":"json_object"}}}"#,
            NOTHING,
        ),
        (
            Responses,
            r#"{"input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":{}}}}"#,
            JSON,
        ),
        (
            Responses,
            r#"{"input":"hi","text":{"format":{"type":"json_object"}},"tools":[{"type":"function","name":"f"}]}"#,
            Expectations {
                json_output: true,
                tools: true,
                output_limit: None,
            },
        ),
        (
            Responses,
            r#"{"input":"hi","text":{"format":{"type":"text"},"verbosity":"low"}}"#,
            NOTHING,
        ),
        (
            Responses,
            r#"{"input":"hi","response_format":{"type":"json_object"}}"#,
            NOTHING,
        ),
        (
            Anthropic,
            r#"{"max_tokens":10,"messages":[],"tools":[{"name":"f","input_schema":{}}]}"#,
            capped(TOOLS, 10),
        ),
        (
            Anthropic,
            r#"{"max_tokens":10,"messages":[],"output_config":{"format":{"type":"json_schema","schema":{}}}}"#,
            capped(JSON, 10),
        ),
        (
            Anthropic,
            r#"{"max_tokens":10,"messages":[],"output_config":{"effort":"low"}}"#,
            capped(NOTHING, 10),
        ),
        (
            Anthropic,
            r#"{"max_tokens":10,"messages":[],"output_format":{"type":"json_schema","schema":{}}}"#,
            capped(JSON, 10),
        ),
        (
            Anthropic,
            r#"{"max_tokens":10,"messages":[],"response_format":{"type":"json_object"}}"#,
            capped(NOTHING, 10),
        ),
        // The client's cap on the answer, each format's own field.
        (
            Chat,
            r#"{"messages":[],"max_tokens":1}"#,
            capped(NOTHING, 1),
        ),
        (
            Chat,
            r#"{"messages":[],"max_tokens":900,"max_completion_tokens":5}"#,
            capped(NOTHING, 5),
        ),
        (Chat, r#"{"messages":[],"max_tokens":null}"#, NOTHING),
        (Chat, r#"{"messages":[],"max_output_tokens":5}"#, NOTHING),
        (
            Responses,
            r#"{"input":"hi","max_output_tokens":16}"#,
            capped(NOTHING, 16),
        ),
        (Responses, r#"{"input":"hi","max_tokens":16}"#, NOTHING),
    ];
    for (format, body, expected) in cases {
        let request = crate::format::parse_request(*format, body.as_bytes()).unwrap();
        assert_eq!(Expectations::of(&request), *expected, "{format:?} {body}");
    }
}

/// The decision carries the expectations of the body it parsed; a body the router cannot read
/// fails open (never escalated) and expects nothing.
#[test]
fn the_decision_carries_what_the_request_expects() {
    let config = crate::Config::default();
    let decide = |body: &str| {
        let head = crate::RequestHead {
            format: Chat,
            path: "/v1/chat/completions",
            headers: &[],
            identity: crate::Identity::ANONYMOUS,
        };
        crate::decide(&config, &head, body.as_bytes())
    };
    let asked = decide(
        r#"{"model":"auto","messages":[{"role":"user","content":"hi"}],"max_tokens":3,
            "response_format":{"type":"json_object"}}"#,
    );
    assert_eq!(asked.expect, capped(JSON, 3));
    for unreadable in [
        "",
        "not json",
        r#"[{"response_format":{"type":"json_object"}}]"#,
        r#"{"messages":[],"max_tokens":"5"}"#,
        r#"{"response_format":"json","tools":[{}],"messages":[]}"#,
        r#"{"response_format":{"type":"json_object"},"tools":[{}]"#,
    ] {
        let decision = decide(unreadable);
        assert!(
            matches!(decision.cause, crate::Cause::FailOpen(_)),
            "{unreadable}"
        );
        assert_eq!(decision.expect, NOTHING, "{unreadable}");
    }
}

#[test]
fn weakness_names() {
    let names: Vec<&str> = Weakness::ALL.iter().map(Weakness::as_str).collect();
    assert_eq!(
        names,
        [
            "truncated",
            "empty",
            "refusal",
            "invalid_json",
            "invalid_tool_args",
            "low_logprob",
            "stream_error"
        ]
    );
}
