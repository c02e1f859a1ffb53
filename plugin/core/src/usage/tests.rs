use super::*;

use ApiFormat::{AnthropicMessages as Anthropic, OpenAiChat as Chat, OpenAiResponses as Responses};

const JSON: bool = false;
const SSE: bool = true;

fn usage(prompt_tokens: u64, completion_tokens: u64) -> Option<Usage> {
    Some(Usage {
        prompt_tokens,
        completion_tokens,
    })
}

fn read<'a>(
    format: ApiFormat,
    event_stream: bool,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Option<Usage> {
    let mut reader = UsageReader::new(format, event_stream);
    for chunk in chunks {
        reader.feed(chunk);
    }
    reader.usage()
}

/// The body fed whole, in two pieces split at every offset, and byte by byte all read `expected`.
fn assert_reads(format: ApiFormat, event_stream: bool, body: &str, expected: Option<Usage>) {
    let body = body.as_bytes();
    assert_eq!(read(format, event_stream, [body]), expected, "whole");
    for at in 0..=body.len() {
        let (head, tail) = body.split_at(at);
        assert_eq!(
            read(format, event_stream, [head, tail]),
            expected,
            "split at {at}"
        );
    }
    assert_eq!(
        read(format, event_stream, body.chunks(1)),
        expected,
        "byte by byte"
    );
}

/// An event stream from `(event name or "", data)` pairs, each event ended by a blank line.
fn events(events: &[(&str, &str)]) -> String {
    events
        .iter()
        .map(|(name, data)| match name {
            &"" => format!("data: {data}\n\n"),
            name => format!("event: {name}\ndata: {data}\n\n"),
        })
        .collect()
}

const CHAT_JSON: &str = r#"{
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "The \"usage\": {\"prompt_tokens\": 1} field counts tokens \\ like this.",
        "refusal": null,
        "annotations": [],
        "usage": {"prompt_tokens": 500, "completion_tokens": 500}
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 1117,
    "completion_tokens": 46,
    "total_tokens": 1163,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
}
"#;

fn chat_chunk(delta: &str, finish: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]}}"#
    )
}

fn chat_stream(usage_chunk: Option<&str>) -> String {
    let mut chunks = vec![
        chat_chunk(r#"{"role":"assistant","content":""}"#, "null"),
        chat_chunk(r#"{"content":"Hello"}"#, "null"),
        chat_chunk(
            r#"{"content":" \"usage\": {\"prompt_tokens\": 3}"}"#,
            "null",
        ),
        chat_chunk("{}", r#""stop""#),
    ];
    chunks.extend(usage_chunk.map(str::to_owned));
    let mut stream: String = chunks.iter().map(|chunk| events(&[("", chunk)])).collect();
    stream.push_str("data: [DONE]\n\n");
    stream
}

const CHAT_USAGE_CHUNK: &str = r#"{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#;

const RESPONSES_JSON: &str = r#"{"id":"resp_67ccd3a9da748190","object":"response","created_at":1741476777,"status":"completed","error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"gpt-4o-2024-08-06","output":[{"type":"message","id":"msg_67ccd3acc8d48190","status":"completed","role":"assistant","content":[{"type":"output_text","text":"In a peaceful grove beneath a silver moon, a unicorn named Lumina...","annotations":[]}]}],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":{"input_tokens":328,"input_tokens_details":{"cached_tokens":0},"output_tokens":52,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":380},"user":null,"metadata":{}}"#;

fn responses_object(status: &str, text: &str, usage: &str) -> String {
    format!(
        r#"{{"id":"resp_1","object":"response","created_at":1741290958,"status":"{status}","model":"gpt-4.1","output":[{{"type":"message","id":"msg_1","status":"{status}","role":"assistant","content":[{{"type":"output_text","text":"{text}","annotations":[]}}]}}],"usage":{usage}}}"#
    )
}

fn responses_stream(last: &str, text: &str, usage: &str) -> String {
    let created = responses_object("in_progress", "", "null");
    let done = responses_object(last.trim_start_matches("response."), text, usage);
    events(&[
        (
            "response.created",
            &format!(r#"{{"type":"response.created","sequence_number":0,"response":{created}}}"#),
        ),
        (
            "response.in_progress",
            &format!(
                r#"{{"type":"response.in_progress","sequence_number":1,"response":{created}}}"#
            ),
        ),
        (
            "response.output_text.delta",
            r#"{"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi \"usage\":"}"#,
        ),
        (
            "response.output_item.done",
            r#"{"type":"response.output_item.done","sequence_number":3,"output_index":0,"item":{"id":"msg_1","type":"message","usage":{"input_tokens":700,"output_tokens":700}}}"#,
        ),
        (
            last,
            &format!(r#"{{"type":"{last}","sequence_number":4,"response":{done}}}"#),
        ),
    ])
}

const ANTHROPIC_JSON: &str = r#"{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hi! My name is Claude."},{"type":"tool_use","id":"toolu_1","name":"lookup","input":{"usage":{"input_tokens":900,"output_tokens":900}}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"cache_creation_input_tokens":100,"cache_read_input_tokens":7,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":0},"output_tokens":503,"service_tier":"standard"}}"#;

fn anthropic_stream(message_delta_usage: &str) -> String {
    events(&[
        (
            "message_start",
            r#"{"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":1}}}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        ("ping", r#"{"type": "ping"}"#),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello \"usage\":{"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "message_delta",
            &format!(
                r#"{{"type":"message_delta","delta":{{"stop_reason":"end_turn","stop_sequence":null}},"usage":{message_delta_usage}}}"#
            ),
        ),
        ("message_stop", r#"{"type":"message_stop"}"#),
    ])
}

#[test]
fn openai_chat_json_reads_the_top_level_usage_only() {
    assert_reads(Chat, JSON, CHAT_JSON, usage(1117, 46));
}

#[test]
fn openai_chat_stream_reads_the_usage_chunk() {
    assert_reads(
        Chat,
        SSE,
        &chat_stream(Some(CHAT_USAGE_CHUNK)),
        usage(9, 12),
    );
}

#[test]
fn openai_chat_stream_without_the_usage_chunk_is_unknown() {
    assert_reads(Chat, SSE, &chat_stream(None), None);
    let nulls = chat_stream(None).replace(r#""choices""#, r#""usage":null,"choices""#);
    assert_eq!(nulls.matches(r#""usage":null"#).count(), 4);
    assert_reads(Chat, SSE, &nulls, None);
}

#[test]
fn openai_responses_json() {
    assert_reads(Responses, JSON, RESPONSES_JSON, usage(328, 52));
}

#[test]
fn openai_responses_stream_reads_the_final_response() {
    let usage_json = r#"{"input_tokens":37,"input_tokens_details":{"cached_tokens":0},"output_tokens":11,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":48}"#;
    for last in [
        "response.completed",
        "response.incomplete",
        "response.failed",
    ] {
        let stream = responses_stream(last, "Hi there", usage_json);
        assert_reads(Responses, SSE, &stream, usage(37, 11));
    }
    // Without a final usage (the created/in_progress ones are null) it stays unknown.
    let stream = responses_stream("response.failed", "", "null");
    assert_reads(Responses, SSE, &stream, None);
}

#[test]
fn anthropic_json_counts_cache_tokens_as_prompt() {
    assert_reads(Anthropic, JSON, ANTHROPIC_JSON, usage(2095 + 100 + 7, 503));
}

#[test]
fn anthropic_stream_takes_input_from_message_start_and_the_last_output() {
    assert_reads(
        Anthropic,
        SSE,
        &anthropic_stream(r#"{"output_tokens":15}"#),
        usage(25 + 10, 15),
    );
    // Newer API versions repeat (cumulative) input counts in message_delta, or send them as null.
    assert_reads(
        Anthropic,
        SSE,
        &anthropic_stream(
            r#"{"input_tokens":40,"cache_creation_input_tokens":null,"cache_read_input_tokens":12,"output_tokens":16,"server_tool_use":{"web_search_requests":1}}"#,
        ),
        usage(40 + 12, 16),
    );
    // Cut off before message_delta: message_start's counts are all there is.
    let stream = anthropic_stream(r#"{"output_tokens":15}"#);
    let cut = stream.find("event: message_delta").unwrap();
    assert_eq!(
        read(Anthropic, SSE, [&stream.as_bytes()[..cut]]),
        usage(35, 1)
    );
}

/// The exact shapes the mock upstream sends through Envoy (envoy/mock-llm), fewer deltas.
#[test]
fn mock_upstream_bodies() {
    let chat_json = r#"{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"[mock mid tier, model gpt-4o] This answer comes from the triage mock upstream.","refusal":null,"role":"assistant"}}],"created":1795853965,"id":"chatcmpl-mock_mid_1","model":"gpt-4o","object":"chat.completion","usage":{"completion_tokens":60,"prompt_tokens":1,"total_tokens":61}}"#;
    let chat_sse = concat!(
        r#"data: {"choices":[{"delta":{"content":"","role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1795853965,"id":"chatcmpl-mock_mid_2","model":"gpt-4o","object":"chat.completion.chunk"}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{"content":"[mock mid tier, model "},"finish_reason":null,"index":0,"logprobs":null}],"created":1795853965,"id":"chatcmpl-mock_mid_2","model":"gpt-4o","object":"chat.completion.chunk"}"#,
        "\n\n",
        r#"data: {"choices":[{"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1795853965,"id":"chatcmpl-mock_mid_2","model":"gpt-4o","object":"chat.completion.chunk"}"#,
        "\n\n",
        r#"data: {"choices":[],"created":1795853965,"id":"chatcmpl-mock_mid_2","model":"gpt-4o","object":"chat.completion.chunk","usage":{"completion_tokens":60,"prompt_tokens":1,"total_tokens":61}}"#,
        "\n\n",
        "data: [DONE]\n\n",
    );
    let responses_json = r#"{"created_at":1795853965,"id":"resp_mock_mid_4","model":"gpt-4o","object":"response","output":[{"content":[{"annotations":[],"text":"[mock mid tier, model gpt-4o] This answer comes from the triage mock upstream.","type":"output_text"}],"id":"msg_mock_mid_4","role":"assistant","status":"completed","type":"message"}],"status":"completed","usage":{"input_tokens":1,"output_tokens":60,"total_tokens":61}}"#;
    let responses_sse = concat!(
        "event: response.created\n",
        r#"data: {"response":{"created_at":1795853965,"id":"resp_mock_mid_5","model":"gpt-4o","object":"response","output":[],"status":"in_progress","usage":null},"sequence_number":0,"type":"response.created"}"#,
        "\n\n",
        "event: response.output_text.delta\n",
        r#"data: {"content_index":0,"delta":"[mock mid tier, model ","item_id":"msg_mock_mid_5","output_index":0,"sequence_number":4,"type":"response.output_text.delta"}"#,
        "\n\n",
        "event: response.completed\n",
        r#"data: {"response":{"created_at":1795853965,"id":"resp_mock_mid_5","model":"gpt-4o","object":"response","output":[{"content":[{"annotations":[],"text":"[mock mid tier, model gpt-4o] This answer comes from the triage mock upstream.","type":"output_text"}],"id":"msg_mock_mid_5","role":"assistant","status":"completed","type":"message"}],"status":"completed","usage":{"input_tokens":1,"output_tokens":60,"total_tokens":61}},"sequence_number":19,"type":"response.completed"}"#,
        "\n\n",
    );
    let anthropic_json = r#"{"content":[{"text":"[mock mid tier, model claude] This answer comes from the triage mock upstream.","type":"text"}],"id":"msg_mock_mid_6","model":"claude","role":"assistant","stop_reason":"end_turn","stop_sequence":null,"type":"message","usage":{"input_tokens":1,"output_tokens":60}}"#;
    let anthropic_sse = concat!(
        "event: message_start\n",
        r#"data: {"message":{"content":[],"id":"msg_mock_mid_7","model":"claude","role":"assistant","stop_reason":null,"stop_sequence":null,"type":"message","usage":{"input_tokens":1,"output_tokens":1}},"type":"message_start"}"#,
        "\n\n",
        "event: ping\n",
        r#"data: {"type":"ping"}"#,
        "\n\n",
        "event: content_block_delta\n",
        r#"data: {"delta":{"text":"[mock mid tier, model ","type":"text_delta"},"index":0,"type":"content_block_delta"}"#,
        "\n\n",
        "event: message_delta\n",
        r#"data: {"delta":{"stop_reason":"end_turn","stop_sequence":null},"type":"message_delta","usage":{"output_tokens":60}}"#,
        "\n\n",
        "event: message_stop\n",
        r#"data: {"type":"message_stop"}"#,
        "\n\n",
    );
    for (format, event_stream, body) in [
        (Chat, JSON, chat_json),
        (Chat, SSE, chat_sse),
        (Responses, JSON, responses_json),
        (Responses, SSE, responses_sse),
        (Anthropic, JSON, anthropic_json),
        (Anthropic, SSE, anthropic_sse),
    ] {
        assert_reads(format, event_stream, body, usage(1, 60));
    }
}

#[test]
fn missing_or_null_usage_is_unknown() {
    for format in ApiFormat::ALL {
        for body in [
            "",
            r#"{"id":"x","choices":[]}"#,
            r#"{"id":"x","usage":null}"#,
            r#"{"usage":{}}"#,
            r#"{"usage":[1,2]}"#,
            r#"{"error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            "<html><body>502 Bad Gateway</body></html>",
            r#"["usage",{"usage":{"prompt_tokens":1,"completion_tokens":2,"input_tokens":1,"output_tokens":2}}]"#,
        ] {
            assert_reads(format, JSON, body, None);
        }
    }
}

#[test]
fn nested_usage_keys_and_lookalike_keys_are_not_the_usage() {
    let bodies = [
        // Only nested: inside choices, inside another top-level object.
        r#"{"choices":[{"usage":{"prompt_tokens":1,"completion_tokens":2}}],"meta":{"usage":{"prompt_tokens":3,"completion_tokens":4}}}"#,
        // In strings, values and lookalike keys.
        r#"{"note":"\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}","kind":"usage","usages":{"prompt_tokens":7,"completion_tokens":8}}"#,
        r#"{"usage_details":{"prompt_tokens":1,"completion_tokens":2},"my_usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
        r#"{"us\u0061ge":{"prompt_tokens":1,"completion_tokens":2},"\"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
    ];
    for body in bodies {
        assert_reads(Chat, JSON, body, None);
    }
    // Escaped quotes and brackets in strings don't hide the real one.
    let body = r#"{"a":"\"}{[","b":"x\\","c":["\\\"usage\":"],"usage":{"prompt_tokens":8,"completion_tokens":9}}"#;
    assert_reads(Chat, JSON, body, usage(8, 9));
    // A nested one before and after the top-level one does not replace it.
    let body = r#"{"a":{"usage":{"prompt_tokens":1,"completion_tokens":1}},"usage":{"prompt_tokens":42,"completion_tokens":24},"b":[{"usage":{"prompt_tokens":2,"completion_tokens":2}}]}"#;
    assert_reads(Chat, JSON, body, usage(42, 24));
    // In a stream, the Responses usage counts only under `response`, and Anthropic's only at the
    // top or under `message`.
    let stream = events(&[
        ("", r#"{"usage":{"input_tokens":5,"output_tokens":5}}"#),
        (
            "",
            r#"{"item":{"usage":{"input_tokens":6,"output_tokens":6}}}"#,
        ),
        (
            "",
            r#"{"response":{"output":[{"usage":{"input_tokens":7,"output_tokens":7}}]}}"#,
        ),
    ]);
    assert_reads(Responses, SSE, &stream, None);
    let stream = events(&[(
        "content_block_start",
        r#"{"content_block":{"usage":{"input_tokens":8,"output_tokens":8}},"response":{"usage":{"input_tokens":9,"output_tokens":9}}}"#,
    )]);
    assert_reads(Anthropic, SSE, &stream, None);
}

#[test]
fn counts_that_are_not_u64_are_ignored() {
    let cases = [
        (
            r#"{"usage":{"prompt_tokens":-5,"completion_tokens":3}}"#,
            None,
        ),
        (
            r#"{"usage":{"prompt_tokens":2.5,"completion_tokens":3}}"#,
            None,
        ),
        (
            r#"{"usage":{"prompt_tokens":"7","completion_tokens":3}}"#,
            None,
        ),
        (
            r#"{"usage":{"prompt_tokens":1e30,"completion_tokens":3}}"#,
            None,
        ),
        (
            r#"{"usage":{"prompt_tokens":18446744073709551616,"completion_tokens":3}}"#,
            None,
        ),
        (
            r#"{"usage":{"prompt_tokens":null,"completion_tokens":3}}"#,
            None,
        ),
        (
            r#"{"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":0}}"#,
            usage(u64::MAX, 0),
        ),
    ];
    for (body, expected) in cases {
        assert_reads(Chat, JSON, body, expected);
    }
    // One bad count in a later event leaves the earlier good one in place.
    let stream = events(&[
        ("", r#"{"usage":{"prompt_tokens":4,"completion_tokens":5}}"#),
        (
            "",
            r#"{"usage":{"prompt_tokens":6,"completion_tokens":-1}}"#,
        ),
    ]);
    assert_reads(Chat, SSE, &stream, usage(6, 5));
}

#[test]
fn anthropic_cache_sum_saturates() {
    let body = r#"{"usage":{"input_tokens":18446744073709551615,"cache_read_input_tokens":5,"output_tokens":1}}"#;
    assert_reads(Anthropic, JSON, body, usage(u64::MAX, 1));
}

#[test]
fn event_stream_line_endings_comments_and_fields() {
    let base = chat_stream(Some(CHAT_USAGE_CHUNK));
    assert_reads(Chat, SSE, &base.replace('\n', "\r\n"), usage(9, 12));
    assert_reads(Chat, SSE, &base.replace('\n', "\r"), usage(9, 12));
    let noisy = base
        .replace(
            "data: ",
            ": keep-alive\r\nid: 7\nretry: 1000\nevent: chunk\r\ndata:",
        )
        .replace("\n\n", "\n:\n\n");
    assert_reads(Chat, SSE, &noisy, usage(9, 12));
    // A data field over several lines is one payload; other fields in between don't break it.
    let lines = [
        "event: message_delta",
        "data: {\"type\":\"message_delta\",",
        ": a comment",
        "data:   \"usage\":",
        "id: 3",
        "data: {\"output_tokens\":17,",
        "data:",
        "data:\t\"input_tokens\":5}}",
        "",
        "",
    ];
    for end in ["\n", "\r\n", "\r"] {
        assert_reads(Anthropic, SSE, &lines.join(end), usage(5, 17));
    }
    // Data lines are joined with a newline: a token split over two lines is not one token.
    let split = "data: {\"usage\":{\"prompt_tokens\":1\ndata:2,\"completion_tokens\":3}}\n\n";
    assert_reads(Chat, SSE, split, None);
    // Fields that only look like data, each in its own event.
    let value = r#"{"usage":{"prompt_tokens":1,"completion_tokens":1}}"#;
    for line in [
        "dat: ", "data ", " data: ", ":data: ", "DATA: ", "event: ", "datum:",
    ] {
        let stream = format!("{line}{value}\n\n");
        assert_reads(Chat, SSE, &stream, None);
    }
}

#[test]
fn malformed_events_are_ignored_and_the_others_still_count() {
    let stream = concat!(
        "data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n",
        // Cut short, trailing junk, leading junk, a second value, an unbalanced close, no JSON.
        "data: {\"usage\":{\"prompt_tokens\":90,\"completion_tokens\":90}\n\n",
        "data: {\"usage\":{\"prompt_tokens\":91,\"completion_tokens\":91}} x\n\n",
        "data: x {\"usage\":{\"prompt_tokens\":92,\"completion_tokens\":92}}\n\n",
        "data: {} {\"usage\":{\"prompt_tokens\":93,\"completion_tokens\":93}}\n\n",
        "data: {\"usage\":{\"prompt_tokens\":94,\"completion_tokens\":94}}}\n\n",
        "data: {\"usage\":{\"prompt_tokens\":95,\"completion_tokens\":95,}}\n\n",
        "data: {\"usage\":{\"prompt_tokens\":96,\"completion_tokens\":\"96}}\n\n",
        "data: {\"usage\":{prompt_tokens:97}}\n\n",
        "data: not json\n\n",
        "data: [DONE]\n\n",
    );
    assert_reads(Chat, SSE, stream, usage(3, 4));
    let later =
        format!("{stream}data: {{\"usage\":{{\"prompt_tokens\":5,\"completion_tokens\":6}}}}\n\n");
    assert_reads(Chat, SSE, &later, usage(5, 6));
    // An event not ended by a blank line is never dispatched.
    let unended = "data: {\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}\n";
    assert_reads(Chat, SSE, unended, None);
}

#[test]
fn chat_stream_usage_in_every_chunk_last_wins() {
    let stream: String = (1..=4)
        .map(|n| {
            events(&[(
                "",
                &format!(
                    r#"{{"choices":[],"usage":{{"prompt_tokens":10,"completion_tokens":{n}}}}}"#
                ),
            )])
        })
        .collect();
    assert_reads(Chat, SSE, &stream, usage(10, 4));
}

/// Far over any event-buffer cap: the scanner holds no event, so size does not matter.
#[test]
fn huge_events_before_the_usage_still_count() {
    let text = "lorem \\\"usage\\\": ipsum ".repeat(10_000);
    assert!(text.len() > 200 * 1024);
    let chat = format!(
        "{}{}",
        events(&[(
            "",
            &chat_chunk(&format!(r#"{{"content":"{text}"}}"#), "null")
        )]),
        chat_stream(Some(CHAT_USAGE_CHUNK)),
    );
    // The Responses final event repeats the whole output before its usage.
    let responses = responses_stream(
        "response.completed",
        &text,
        r#"{"input_tokens":37,"output_tokens":11}"#,
    );
    for (format, body, expected) in [
        (Chat, chat, usage(9, 12)),
        (Responses, responses, usage(37, 11)),
    ] {
        let body = body.as_bytes();
        assert_eq!(read(format, SSE, [body]), expected);
        assert_eq!(read(format, SSE, body.chunks(1)), expected);
        assert_eq!(read(format, SSE, body.chunks(4093)), expected);
    }
}

#[test]
fn a_usage_value_over_the_cap_is_dropped() {
    let pad = "x".repeat(USAGE_CAP);
    let body = format!(r#"{{"usage":{{"prompt_tokens":1,"completion_tokens":2,"pad":"{pad}"}}}}"#);
    assert_reads(Chat, JSON, &body[..], None);
    let stream = events(&[
        ("", &body),
        ("", r#"{"usage":{"prompt_tokens":3,"completion_tokens":4}}"#),
    ]);
    assert_eq!(read(Chat, SSE, [stream.as_bytes()]), usage(3, 4));
    assert_eq!(read(Chat, SSE, stream.as_bytes().chunks(1)), usage(3, 4));
    // Just under the cap still counts.
    let fits = r#"{"usage":{"prompt_tokens":1,"completion_tokens":2,"pad":""}}"#;
    let pad = "x".repeat(USAGE_CAP - (fits.len() - r#"{"usage":}"#.len()));
    let body = fits.replace(r#""pad":"""#, &format!(r#""pad":"{pad}""#));
    assert_eq!(read(Chat, JSON, [body.as_bytes()]), usage(1, 2));
}

#[test]
fn garbage_never_panics() {
    // A fixed pseudo-random byte soup, heavy in JSON and SSE punctuation.
    let alphabet = b"{}[]\":,\\\r\n usage data: 0123456789-e.\xff\x00";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let soup: Vec<u8> = (0..20_000)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            alphabet[(state >> 33) as usize % alphabet.len()]
        })
        .collect();
    for format in ApiFormat::ALL {
        for event_stream in [JSON, SSE] {
            let mut reader = UsageReader::new(format, event_stream);
            for chunk in soup.chunks(13) {
                reader.feed(chunk);
            }
            let _ = reader.usage();
        }
    }
}

#[test]
fn usage_serializes_with_its_field_names() {
    let value = Usage {
        prompt_tokens: 3,
        completion_tokens: 4,
    };
    let json = serde_json::to_string(&value).unwrap();
    assert_eq!(json, r#"{"prompt_tokens":3,"completion_tokens":4}"#);
    assert_eq!(serde_json::from_str::<Usage>(&json).unwrap(), value);
}
