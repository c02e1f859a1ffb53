use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The canned answer to one LLM request, shared by the three API formats.
pub(crate) struct Answer {
    /// `<tier>_<n>`: unique per server, readable in ids like `chatcmpl-mock_small_3`.
    pub id_suffix: String,
    /// The request's `model`, echoed back ("unknown" when absent).
    pub model: String,
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub created: u64,
}

impl Answer {
    pub fn new(tier: &str, request: &Value, sequence: usize) -> Answer {
        let model = request
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        let request_chars = request_text_chars(request);
        let text = format!(
            "[mock {tier} tier, model {model}] This answer comes from the triage mock upstream, \
             not from a real model. It names the tier and the model that served the request so \
             that routing can be checked end to end. The request carried {request_chars} \
             characters of text."
        );
        Answer {
            id_suffix: format!("{tier}_{sequence}"),
            input_tokens: tokens(request_chars),
            output_tokens: tokens(text.chars().count()),
            model,
            text,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
        }
    }

    pub fn id(&self, prefix: &str) -> String {
        format!("{prefix}mock_{}", self.id_suffix)
    }
}

/// Roughly what a tokenizer gives for English: four characters a token, never zero.
fn tokens(chars: usize) -> u64 {
    (chars / 4).max(1) as u64
}

/// Characters of prompt text in any of the three formats: chat `messages`, Responses `input` and
/// `instructions`, Anthropic `system` and `messages`, legacy `prompt`.
fn request_text_chars(request: &Value) -> usize {
    ["messages", "input", "instructions", "system", "prompt"]
        .iter()
        .filter_map(|field| request.get(field))
        .map(text_chars)
        .sum()
}

/// A string counts whole; in arrays every item counts; in objects (messages, content parts) only
/// `content` and `text` count, so roles, types and ids don't.
fn text_chars(value: &Value) -> usize {
    match value {
        Value::String(text) => text.chars().count(),
        Value::Array(items) => items.iter().map(text_chars).sum(),
        Value::Object(fields) => ["content", "text"]
            .iter()
            .filter_map(|key| fields.get(*key))
            .map(text_chars)
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_text_of_every_format_but_not_roles_or_types() {
        let cases = [
            (
                json!({"messages": [{"role": "user", "content": "12345678"}]}),
                8,
            ),
            (
                json!({"messages": [{"role": "user", "content": [
                    {"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {"url": "x"}}
                ]}]}),
                4,
            ),
            (
                json!({"instructions": "be brief", "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "hello"}]}
                ]}),
                13,
            ),
            (json!({"input": "héllo"}), 5),
            (
                json!({"system": [{"type": "text", "text": "sys"}],
                       "messages": [{"role": "user", "content": "abc"}]}),
                6,
            ),
            (json!({"model": "gpt-4o", "temperature": 0.5}), 0),
        ];
        for (request, chars) in cases {
            assert_eq!(request_text_chars(&request), chars, "{request}");
        }
    }

    #[test]
    fn usage_is_a_quarter_of_the_characters_and_at_least_one() {
        let answer = Answer::new("small", &json!({"input": "x".repeat(400)}), 1);
        assert_eq!(answer.input_tokens, 100);
        assert_eq!(answer.output_tokens, answer.text.chars().count() as u64 / 4);
        let empty = Answer::new("small", &json!({}), 1);
        assert_eq!(empty.input_tokens, 1);
        assert_eq!(empty.model, "unknown");
        assert!(empty.text.starts_with("[mock small tier, model unknown] "));
    }
}
