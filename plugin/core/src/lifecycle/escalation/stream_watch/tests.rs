use super::*;

use ApiFormat::{AnthropicMessages as Anthropic, OpenAiChat as Chat, OpenAiResponses as Responses};
use StreamVerdict::{Escalate, Hold, Release};

/// Streams the mock upstream (envoy/mock-llm) sent for its failure switches:
/// `<format>-<switch>.sse`.
mod fixtures {
    macro_rules! fixture {
        ($name:ident, $file:literal) => {
            pub const $name: &str = include_str!(concat!("fixtures/", $file));
        };
    }
    fixture!(CHAT_HEALTHY, "chat-healthy.sse");
    fixture!(CHAT_EMPTY, "chat-empty.sse");
    fixture!(CHAT_TRUNCATE, "chat-truncate.sse");
    fixture!(CHAT_REFUSAL, "chat-refusal.sse");
    fixture!(CHAT_BADJSON, "chat-badjson.sse");
    fixture!(CHAT_BADTOOL, "chat-badtool.sse");
    fixture!(CHAT_LOGPROBS_2, "chat-logprobs-2.sse");
    fixture!(RESPONSES_HEALTHY, "responses-healthy.sse");
    fixture!(RESPONSES_EMPTY, "responses-empty.sse");
    fixture!(RESPONSES_TRUNCATE, "responses-truncate.sse");
    fixture!(RESPONSES_REFUSAL, "responses-refusal.sse");
    fixture!(RESPONSES_BADTOOL, "responses-badtool.sse");
    fixture!(RESPONSES_LOGPROBS_2, "responses-logprobs-2.sse");
    fixture!(ANTHROPIC_HEALTHY, "anthropic-healthy.sse");
    fixture!(ANTHROPIC_EMPTY, "anthropic-empty.sse");
    fixture!(ANTHROPIC_TRUNCATE, "anthropic-truncate.sse");
    fixture!(ANTHROPIC_REFUSAL, "anthropic-refusal.sse");
    fixture!(ANTHROPIC_BADTOOL, "anthropic-badtool.sse");
}
use fixtures::*;

/// More than any stream here: release can only come from `finish`.
const HOLD_ALL: usize = 1 << 20;

const NOTHING: Expectations = Expectations {
    json_output: false,
    tools: false,
    output_limit: None,
};

fn all_checks() -> AnswerChecks {
    AnswerChecks {
        truncated: true,
        tight_limit_tokens: 128,
        empty: true,
        refusal: Some(regex::Regex::new(r"(?i)^\s*(I'm sorry|I can(?:not|'t) help)").unwrap()),
        invalid_json: true,
        invalid_tool_args: true,
        min_mean_logprob: Some(-0.5),
    }
}

/// The verdict after each chunk, then the one of `finish`.
fn run(
    format: ApiFormat,
    hold: usize,
    expect: Expectations,
    checks: &AnswerChecks,
    chunks: &[&[u8]],
) -> Vec<StreamVerdict> {
    let mut watch = StreamWatch::new(format, hold, expect, checks.clone());
    let mut verdicts: Vec<StreamVerdict> = chunks.iter().map(|chunk| watch.feed(chunk)).collect();
    verdicts.push(watch.finish());
    verdicts
}

/// Feeds `stream` in two pieces split at every offset: the verdicts after the head, after the tail
/// and of `finish` must be `expected(offset)`; and byte by byte, the verdict after the last byte and
/// of `finish` must follow from them.
fn every_split(
    format: ApiFormat,
    hold: usize,
    expect: Expectations,
    checks: &AnswerChecks,
    stream: &str,
    expected: impl Fn(usize) -> [StreamVerdict; 3],
) {
    let bytes = stream.as_bytes();
    for at in 0..=bytes.len() {
        let (head, tail) = bytes.split_at(at);
        assert_eq!(
            run(format, hold, expect, checks, &[head, tail]),
            expected(at),
            "{format:?} hold {hold}, split at {at} of {}",
            bytes.len()
        );
    }
    // Byte by byte, the first prefix whose verdict is not Hold decides; without one, `finish` does.
    let decided = (0..=bytes.len())
        .map(|at| expected(at)[0])
        .find(|verdict| *verdict != Hold);
    let last = match decided {
        Some(verdict) => [verdict, verdict],
        None => [Hold, expected(bytes.len())[2]],
    };
    let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
    let verdicts = run(format, hold, expect, checks, &one_by_one);
    assert_eq!(
        verdicts[verdicts.len() - 2..],
        last,
        "{format:?} hold {hold}, byte by byte"
    );
}

/// The offset just past the blank line ending the first event that contains `marker` (at or after
/// `from`).
fn event_end(stream: &str, marker: &str, from: usize) -> usize {
    let at = from + stream[from..].find(marker).unwrap();
    at + stream[at..].find("\n\n").unwrap() + 2
}

/// The first event with content in each healthy stream.
fn first_content(format: ApiFormat, stream: &str) -> usize {
    let marker = match format {
        Chat => r#"{"delta":{"content":"[mock"#,
        Responses => "event: response.output_text.delta",
        Anthropic => r#""type":"text_delta""#,
    };
    event_end(stream, marker, 0)
}

fn healthy(format: ApiFormat) -> &'static str {
    match format {
        Chat => CHAT_HEALTHY,
        Responses => RESPONSES_HEALTHY,
        Anthropic => ANTHROPIC_HEALTHY,
    }
}

fn error_events(format: ApiFormat) -> Vec<&'static str> {
    match format {
        Chat => vec![
            "data: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
            "event: error\ndata: overloaded\n\n",
        ],
        Responses => vec![
            "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"The server had an error.\",\"param\":null,\"sequence_number\":4}\n\n",
            "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":4,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"x\"},\"incomplete_details\":null,\"output\":[]}}\n\n",
        ],
        Anthropic => vec![
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
            "event: error\ndata: not json\n\n",
        ],
    }
}

fn inserted(stream: &str, at: usize, event: &str) -> String {
    format!("{}{event}{}", &stream[..at], &stream[at..])
}

#[test]
fn a_healthy_stream_is_released_once_held_bytes_and_content_have_arrived() {
    let checks = all_checks();
    for format in ApiFormat::ALL {
        let stream = healthy(format);
        let content = first_content(format, stream);
        for hold in [
            0,
            100,
            content - 1,
            content,
            content + 1,
            stream.len(),
            HOLD_ALL,
        ] {
            let release_at = hold.max(content);
            every_split(format, hold, NOTHING, &checks, stream, |at| {
                [
                    if at >= release_at { Release } else { Hold },
                    if stream.len() >= release_at {
                        Release
                    } else {
                        Hold
                    },
                    Release,
                ]
            });
        }
    }
}

#[test]
fn the_release_point_is_where_the_first_content_event_ends() {
    // Pinned so a change in what counts as content shows: the first chat and Responses events
    // carry no text, the Anthropic text block starts empty.
    assert_eq!(first_content(Chat, CHAT_HEALTHY), 441);
    assert_eq!(first_content(Responses, RESPONSES_HEALTHY), 1168);
    assert_eq!(first_content(Anthropic, ANTHROPIC_HEALTHY), 542);
    for format in ApiFormat::ALL {
        let stream = healthy(format).as_bytes();
        let content = first_content(format, healthy(format));
        let mut watch = StreamWatch::new(format, 0, NOTHING, all_checks());
        let released = stream
            .iter()
            .position(|byte| watch.feed(std::slice::from_ref(byte)) == Release);
        assert_eq!(released, Some(content - 1), "{format:?}");
    }
}

#[test]
fn an_empty_stream_escalates_at_its_end() {
    for (format, stream) in [
        (Chat, CHAT_EMPTY),
        (Responses, RESPONSES_EMPTY),
        (Anthropic, ANTHROPIC_EMPTY),
    ] {
        for hold in [0, 10, HOLD_ALL] {
            every_split(format, hold, NOTHING, &all_checks(), stream, |_| {
                [Hold, Hold, Escalate(Weakness::Empty)]
            });
            // Without the empty check it passes at its end.
            every_split(
                format,
                hold,
                NOTHING,
                &AnswerChecks::default(),
                stream,
                |_| [Hold, Hold, Release],
            );
        }
    }
}

#[test]
fn an_error_event_while_holding_escalates_at_once() {
    for format in ApiFormat::ALL {
        let stream = healthy(format);
        let content = first_content(format, stream);
        let first_event = stream.find("\n\n").unwrap() + 2;
        for error in error_events(format) {
            // Before any content, and after content while the bytes are still held.
            for at in [first_event, content] {
                let broken = inserted(stream, at, error);
                let error_end = at + error.len();
                every_split(format, HOLD_ALL, NOTHING, &all_checks(), &broken, |split| {
                    let escalated = Escalate(Weakness::StreamError);
                    let first = if split >= error_end { escalated } else { Hold };
                    [first, escalated, escalated]
                });
            }
        }
    }
}

#[test]
fn an_error_event_after_release_changes_nothing() {
    for format in ApiFormat::ALL {
        let stream = healthy(format);
        let content = first_content(format, stream);
        // Two events after the first content.
        let late = event_end(stream, "\n\n", event_end(stream, "\n\n", content));
        for error in error_events(format) {
            let broken = inserted(stream, late, error);
            let error_end = late + error.len();
            every_split(format, 0, NOTHING, &all_checks(), &broken, |split| {
                let escalated = Escalate(Weakness::StreamError);
                if split < content {
                    // The tail holds the content and the error: it is judged whole, never sent.
                    [Hold, escalated, escalated]
                } else if split < error_end {
                    [Release, Release, Release]
                } else {
                    [escalated, escalated, escalated]
                }
            });
        }
    }
}

#[test]
fn a_short_truncated_stream_escalates_at_its_end_and_a_released_one_does_not() {
    for (format, stream) in [
        (Chat, CHAT_TRUNCATE),
        (Responses, RESPONSES_TRUNCATE),
        (Anthropic, ANTHROPIC_TRUNCATE),
    ] {
        every_split(format, HOLD_ALL, NOTHING, &all_checks(), stream, |_| {
            [Hold, Hold, Escalate(Weakness::Truncated)]
        });
        let content = first_content(format, stream);
        every_split(format, 0, NOTHING, &all_checks(), stream, |at| {
            [if at >= content { Release } else { Hold }, Release, Release]
        });
    }
}

/// A stream cut at the client's own tight cap is released like a healthy one; Anthropic's
/// context-window stop is still a weak cut.
#[test]
fn a_short_stream_cut_at_a_tight_client_limit_is_released() {
    let capped = Expectations {
        output_limit: Some(8),
        ..NOTHING
    };
    for (format, stream) in [
        (Chat, CHAT_TRUNCATE),
        (Responses, RESPONSES_TRUNCATE),
        (Anthropic, ANTHROPIC_TRUNCATE),
    ] {
        let verdicts = run(
            format,
            HOLD_ALL,
            capped,
            &all_checks(),
            &[stream.as_bytes()],
        );
        assert_eq!(verdicts, [Hold, Release], "{format:?}");
    }
    let context_window = ANTHROPIC_TRUNCATE.replace(
        "\"stop_reason\":\"max_tokens\"",
        "\"stop_reason\":\"model_context_window_exceeded\"",
    );
    assert_ne!(context_window, ANTHROPIC_TRUNCATE);
    let verdicts = run(
        Anthropic,
        HOLD_ALL,
        capped,
        &all_checks(),
        &[context_window.as_bytes()],
    );
    assert_eq!(verdicts, [Hold, Escalate(Weakness::Truncated)]);
}

#[test]
fn a_truncated_stream_without_content_is_truncated_not_empty() {
    let stream = "data: {\"choices\":[{\"delta\":{\"content\":\"\",\"role\":\"assistant\"},\"finish_reason\":null,\"index\":0}]}\n\n\
                  data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\",\"index\":0}]}\n\ndata: [DONE]\n\n";
    every_split(Chat, HOLD_ALL, NOTHING, &all_checks(), stream, |_| {
        [Hold, Hold, Escalate(Weakness::Truncated)]
    });
}

#[test]
fn a_short_refusal_escalates_at_its_end() {
    for (format, stream) in [
        (Chat, CHAT_REFUSAL),
        (Responses, RESPONSES_REFUSAL),
        (Anthropic, ANTHROPIC_REFUSAL),
    ] {
        every_split(format, HOLD_ALL, NOTHING, &all_checks(), stream, |_| {
            [Hold, Hold, Escalate(Weakness::Refusal)]
        });
        let no_refusal_check = AnswerChecks {
            refusal: None,
            ..all_checks()
        };
        every_split(format, HOLD_ALL, NOTHING, &no_refusal_check, stream, |_| {
            [Hold, Hold, Release]
        });
    }
    // The providers' own refusal markers.
    let chat = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":null,\"refusal\":\"\"},\"index\":0}]}\n\n\
                data: {\"choices\":[{\"delta\":{\"refusal\":\"No.\"},\"index\":0}]}\n\n\
                data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\",\"index\":0}]}\n\ndata: [DONE]\n\n";
    let responses = "event: response.refusal.delta\ndata: {\"type\":\"response.refusal.delta\",\"delta\":\"No.\"}\n\n\
                     event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"status\":\"completed\"}}\n\n";
    let anthropic = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"refusal\",\"stop_sequence\":null}}\n\n\
                     event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    for (format, stream, marker) in [
        (Chat, chat, "No."),
        (Responses, responses, "No."),
        (Anthropic, anthropic, r#""stop_reason":"refusal""#),
    ] {
        every_split(format, HOLD_ALL, NOTHING, &all_checks(), stream, |_| {
            [Hold, Hold, Escalate(Weakness::Refusal)]
        });
        // A marked refusal is content: it is not empty, and can be released.
        let refused = event_end(stream, marker, 0);
        every_split(format, 0, NOTHING, &AnswerChecks::default(), stream, |at| {
            [if at >= refused { Release } else { Hold }, Release, Release]
        })
    }
}

#[test]
fn broken_tool_arguments_in_a_short_stream_escalate_at_its_end() {
    let tools = Expectations {
        json_output: false,
        tools: true,
        output_limit: None,
    };
    // The mock's last piece of arguments is `minated`: closing the string and the object fixes them.
    let fixed = |stream: &str| stream.replace(r#"minated""#, r#"minated\"}""#);
    // An Anthropic tool call without input pieces has the input {}.
    let no_input: String = ANTHROPIC_BADTOOL
        .split_inclusive("\n\n")
        .filter(|event| !event.contains("input_json_delta"))
        .collect();
    for (format, stream) in [
        (Chat, CHAT_BADTOOL),
        (Responses, RESPONSES_BADTOOL),
        (Anthropic, ANTHROPIC_BADTOOL),
    ] {
        assert_ne!(fixed(stream), stream);
        every_split(format, HOLD_ALL, tools, &all_checks(), stream, |_| {
            [Hold, Hold, Escalate(Weakness::InvalidToolArgs)]
        });
        every_split(
            format,
            HOLD_ALL,
            tools,
            &all_checks(),
            &fixed(stream),
            |_| [Hold, Hold, Release],
        );
        // Not checked when the request offered no tools.
        every_split(format, HOLD_ALL, NOTHING, &all_checks(), stream, |_| {
            [Hold, Hold, Release]
        });
    }
    every_split(Anthropic, HOLD_ALL, tools, &all_checks(), &no_input, |_| {
        [Hold, Hold, Release]
    });
    // Chat: each call of a parallel pair is checked on its own.
    let pair = |second: &str| {
        format!(
            "data: {{\"choices\":[{{\"delta\":{{\"tool_calls\":[{{\"index\":0,\"function\":{{\"name\":\"a\",\"arguments\":\"{{}}\"}}}}]}},\"index\":0}}]}}\n\n\
             data: {{\"choices\":[{{\"delta\":{{\"tool_calls\":[{{\"index\":1,\"function\":{{\"name\":\"b\",\"arguments\":\"\"}}}}]}},\"index\":0}}]}}\n\n\
             data: {{\"choices\":[{{\"delta\":{{\"tool_calls\":[{{\"index\":1,\"function\":{{\"arguments\":\"{second}\"}}}}]}},\"index\":0}}]}}\n\n\
             data: {{\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"tool_calls\",\"index\":0}}]}}\n\ndata: [DONE]\n\n"
        )
    };
    every_split(
        Chat,
        HOLD_ALL,
        tools,
        &all_checks(),
        &pair(r#"{\"x\":1}"#),
        |_| [Hold, Hold, Release],
    );
    every_split(
        Chat,
        HOLD_ALL,
        tools,
        &all_checks(),
        &pair(r#"{\"x\":"#),
        |_| [Hold, Hold, Escalate(Weakness::InvalidToolArgs)],
    );
}

#[test]
fn invalid_json_in_a_short_stream_escalates_at_its_end() {
    let json = Expectations {
        json_output: true,
        tools: false,
        output_limit: None,
    };
    let fixed = CHAT_BADJSON.replace(r#"\"unterminated""#, r#"\"done\"}""#);
    assert_ne!(fixed, CHAT_BADJSON);
    every_split(Chat, HOLD_ALL, json, &all_checks(), CHAT_BADJSON, |_| {
        [Hold, Hold, Escalate(Weakness::InvalidJson)]
    });
    every_split(Chat, HOLD_ALL, json, &all_checks(), &fixed, |_| {
        [Hold, Hold, Release]
    });
    every_split(Chat, HOLD_ALL, NOTHING, &all_checks(), CHAT_BADJSON, |_| {
        [Hold, Hold, Release]
    });
    // A text longer than the 4 KiB kept is not judged as JSON.
    let long_text = format!(
        "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}},\"index\":0}}]}}\n\n\
         data: {{\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"stop\",\"index\":0}}]}}\n\ndata: [DONE]\n\n",
        "x".repeat(REFUSAL_SCAN_BYTES + 1)
    );
    assert_eq!(
        run(Chat, HOLD_ALL, json, &all_checks(), &[long_text.as_bytes()]),
        [Hold, Release]
    );
}

#[test]
fn low_logprobs_in_a_short_stream_escalate_at_its_end() {
    for (format, stream) in [(Chat, CHAT_LOGPROBS_2), (Responses, RESPONSES_LOGPROBS_2)] {
        let at = |min: f64| AnswerChecks {
            min_mean_logprob: Some(min),
            ..all_checks()
        };
        let bytes = stream.as_bytes();
        for size in [bytes.len(), 1, 7, 4096] {
            let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
            let holding = vec![Hold; chunks.len()];
            // The mock's `logprobs=-2`: the mean of the streamed tokens is -2.
            let low = run(format, HOLD_ALL, NOTHING, &at(-2.0 + 1e-9), &chunks);
            assert_eq!(low[..chunks.len()], holding, "{format:?} {size}");
            assert_eq!(low.last(), Some(&Escalate(Weakness::LowLogprob)));
            let fine = run(format, HOLD_ALL, NOTHING, &at(-2.0 - 1e-9), &chunks);
            assert_eq!(fine.last(), Some(&Release), "{format:?} {size}");
        }
    }
}

#[test]
fn a_stream_cut_off_before_its_end_is_an_error() {
    for format in ApiFormat::ALL {
        let stream = healthy(format);
        let content = first_content(format, stream);
        every_split(
            format,
            HOLD_ALL,
            NOTHING,
            &all_checks(),
            &stream[..content],
            |_| [Hold, Hold, Escalate(Weakness::StreamError)],
        );
        // Released before the cut: the stream is the client's.
        every_split(
            format,
            0,
            NOTHING,
            &all_checks(),
            &stream[..content],
            |at| [if at >= content { Release } else { Hold }, Release, Release],
        );
    }
    // The answer's end is its finish or stop reason: only `[DONE]` or `message_stop` missing is whole;
    // a Responses stream ends with `response.completed` or `response.incomplete` only.
    for (format, last_event, verdict) in [
        (Chat, "data: [DONE]\n\n", Release),
        (Anthropic, "event: message_stop\n", Release),
        (
            Responses,
            "event: response.completed\n",
            Escalate(Weakness::StreamError),
        ),
    ] {
        let stream = healthy(format);
        let without = &stream[..stream.rfind(last_event).unwrap()];
        assert_eq!(
            run(
                format,
                HOLD_ALL,
                NOTHING,
                &all_checks(),
                &[without.as_bytes()]
            ),
            [Hold, verdict],
            "{format:?}"
        );
    }
    for body in ["", "{\"error\":{\"message\":\"x\"}}", "upstream reset"] {
        for format in ApiFormat::ALL {
            assert_eq!(
                run(format, HOLD_ALL, NOTHING, &all_checks(), &[body.as_bytes()]),
                [Hold, Escalate(Weakness::StreamError)],
                "{format:?} {body}"
            );
        }
    }
}

#[test]
fn an_oversized_event_is_read_by_its_name() {
    // The final event repeats the whole answer; past 64 KiB its data is skipped, its name is not.
    let stream = format!(
        "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"delta\":\"Hello\"}}\n\n\
         event: response.incomplete\ndata: {{\"type\":\"response.incomplete\",\"response\":{{\"status\":\"incomplete\",\"output\":[{{\"text\":\"{}\"}}]}}}}\n\n",
        "x".repeat(sse::LINE_CAP)
    );
    let bytes = stream.as_bytes();
    for size in [bytes.len(), 1000, 4093] {
        let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
        let verdicts = run(Responses, HOLD_ALL, NOTHING, &all_checks(), &chunks);
        assert_eq!(
            verdicts.last(),
            Some(&Escalate(Weakness::Truncated)),
            "{size}"
        );
    }
    let failed = format!(
        "event: response.failed\ndata: {{\"type\":\"response.failed\",\"response\":{{\"output\":[{{\"text\":\"{}\"}}]}}}}\n\n",
        "x".repeat(sse::LINE_CAP)
    );
    assert_eq!(
        run(
            Responses,
            HOLD_ALL,
            NOTHING,
            &all_checks(),
            &[failed.as_bytes()]
        ),
        [
            Escalate(Weakness::StreamError),
            Escalate(Weakness::StreamError)
        ]
    );
}

#[test]
fn a_verdict_is_final() {
    let format = Anthropic;
    let error = error_events(format)[0].as_bytes();
    let mut escalated = StreamWatch::new(format, HOLD_ALL, NOTHING, all_checks());
    assert_eq!(escalated.feed(error), Escalate(Weakness::StreamError));
    assert_eq!(
        escalated.feed(ANTHROPIC_HEALTHY.as_bytes()),
        Escalate(Weakness::StreamError)
    );
    assert_eq!(escalated.finish(), Escalate(Weakness::StreamError));
    assert_eq!(escalated.feed(b""), Escalate(Weakness::StreamError));

    let mut released = StreamWatch::new(format, 0, NOTHING, all_checks());
    assert_eq!(released.feed(ANTHROPIC_HEALTHY.as_bytes()), Release);
    assert_eq!(released.feed(error), Release);
    assert_eq!(released.finish(), Release);
    assert_eq!(released.finish(), Release);

    let mut finished = StreamWatch::new(format, HOLD_ALL, NOTHING, all_checks());
    assert_eq!(finished.feed(ANTHROPIC_EMPTY.as_bytes()), Hold);
    assert_eq!(finished.finish(), Escalate(Weakness::Empty));
    assert_eq!(
        finished.feed(ANTHROPIC_HEALTHY.as_bytes()),
        Escalate(Weakness::Empty)
    );
}

#[test]
fn carriage_return_line_ends_read_the_same() {
    for format in ApiFormat::ALL {
        for (ending, stream) in [
            ("crlf", healthy(format).replace('\n', "\r\n")),
            ("cr", healthy(format).replace('\n', "\r")),
        ] {
            let bytes = stream.as_bytes();
            let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
            let verdicts = run(format, HOLD_ALL, NOTHING, &all_checks(), &chunks);
            assert_eq!(verdicts.last(), Some(&Release), "{format:?} {ending}");
            let mut watch = StreamWatch::new(format, 0, NOTHING, all_checks());
            let released = bytes
                .iter()
                .position(|byte| watch.feed(std::slice::from_ref(byte)) == Release);
            assert!(released.is_some(), "{format:?} {ending}");
        }
    }
}

#[test]
fn the_text_kept_for_the_checks_is_capped() {
    let mut seen = Seen::default();
    let piece = "é".repeat(1000);
    for _ in 0..5 {
        seen.text(&piece);
    }
    assert!(seen.text.len() <= REFUSAL_SCAN_BYTES);
    assert_eq!(seen.text.len(), REFUSAL_SCAN_BYTES);
    assert!(seen.text_cut && seen.has_text);
    let mut seen = Seen::default();
    seen.start_call(0, false);
    seen.call_args(0, &"x".repeat(ARGS_CAP + 1));
    seen.end_call();
    // Too long to check: not judged broken.
    assert!(!seen.bad_tool_args);
    assert!(seen.args.is_empty());
}

#[test]
fn a_stream_of_several_choices_is_judged_on_its_first() {
    let chunk = |index: u32, delta: &str, finish: &str| {
        format!(
            "data: {{\"choices\":[{{\"index\":{index},\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        )
    };
    let stream = [
        chunk(0, r#"{"role":"assistant","content":""}"#, "null"),
        chunk(
            1,
            r#"{"role":"assistant","content":"I'm sorry, I can't help."}"#,
            "null",
        ),
        chunk(0, r#"{"content":"Paris is the capital."}"#, "null"),
        chunk(1, "{}", r#""length""#),
        chunk(0, "{}", r#""stop""#),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    every_split(Chat, HOLD_ALL, NOTHING, &all_checks(), &stream, |_| {
        [Hold, Hold, Release]
    });
    let swapped = stream
        .replace("\"index\":0", "\"index\":2")
        .replace("\"index\":1", "\"index\":0");
    every_split(Chat, HOLD_ALL, NOTHING, &all_checks(), &swapped, |_| {
        [Hold, Hold, Escalate(Weakness::Truncated)]
    });
}
