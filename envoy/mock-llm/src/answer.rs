use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::sse;

const CHARS_PER_TOKEN: usize = 4;
/// Logprob tokens per streamed delta, when the request asked for logprobs.
const TOKENS_PER_DELTA: usize = 4;
/// OpenAI accepts `top_logprobs` up to 20.
const MAX_TOP_LOGPROBS: usize = 20;

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
    pub stop: Stop,
    /// A function call in place of the text.
    pub tool_call: Option<ToolCall>,
    /// False leaves usage out of every object and event.
    pub report_usage: bool,
    /// Per-token logprobs, when the request asked for them.
    pub logprobs: Option<Logprobs>,
}

/// Why the answer ended; each API has its own words for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Finished,
    MaxTokens,
    ToolCall,
}

pub(crate) struct ToolCall {
    pub name: String,
    pub arguments: String,
}

pub(crate) struct Logprobs {
    /// The text cut into `output_tokens` tokens: concatenated they give the text back.
    pub tokens: Vec<TokenLogprob>,
    /// How many `top_logprobs` each token lists.
    pub top: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
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
            stop: Stop::Finished,
            tool_call: None,
            report_usage: true,
            logprobs: None,
        }
    }

    pub fn id(&self, prefix: &str) -> String {
        format!("{prefix}mock_{}", self.id_suffix)
    }

    /// Replaces the text; the output tokens follow it.
    pub fn set_text(&mut self, text: &str) {
        self.text = text.to_owned();
        self.output_tokens = tokens(self.text.chars().count());
    }

    /// Cuts the text at `max_tokens` when the request allows fewer tokens than the answer has,
    /// else at half its tokens, and ends it as cut off.
    pub fn truncate(&mut self, max_tokens: Option<u64>) {
        let limit = max_tokens
            .filter(|max| *max < self.output_tokens)
            .unwrap_or(self.output_tokens / 2)
            .max(1);
        let chars = usize::try_from(limit).map_or(usize::MAX, |limit| limit * CHARS_PER_TOKEN);
        self.text = self.text.chars().take(chars).collect();
        self.output_tokens = tokens(self.text.chars().count());
        self.stop = Stop::MaxTokens;
    }

    /// Answers with a call of the tool `name` instead of text.
    pub fn call_tool(&mut self, name: &str, arguments: &str) {
        self.text.clear();
        self.output_tokens = tokens(arguments.chars().count());
        self.tool_call = Some(ToolCall {
            name: name.to_owned(),
            arguments: arguments.to_owned(),
        });
        self.stop = Stop::ToolCall;
    }

    /// Logprobs for the text's tokens whose mean is `mean`: the tokens alternate `mean / 2` and
    /// `3 mean / 2` (an odd last one is `mean`), so they vary like real ones and stay <= 0.
    pub fn add_logprobs(&mut self, mean: f64, top: usize) {
        let pieces = token_pieces(&self.text);
        let count = pieces.len();
        let tokens = pieces
            .into_iter()
            .enumerate()
            .map(|(index, token)| {
                let factor = if count % 2 == 1 && index + 1 == count {
                    1.0
                } else if index % 2 == 0 {
                    0.5
                } else {
                    1.5
                };
                TokenLogprob {
                    token,
                    logprob: mean * factor,
                }
            })
            .collect();
        self.logprobs = Some(Logprobs {
            tokens,
            top: top.min(MAX_TOP_LOGPROBS),
        });
    }

    /// The text as streamed: a few words per delta, or with logprobs a few tokens per delta and
    /// the logprobs of those tokens.
    pub fn text_deltas(&self) -> Vec<(String, &[TokenLogprob])> {
        match &self.logprobs {
            None => sse::deltas(&self.text)
                .into_iter()
                .map(|delta| (delta, &[][..]))
                .collect(),
            Some(logprobs) => logprobs
                .tokens
                .chunks(TOKENS_PER_DELTA)
                .map(|chunk| {
                    (
                        chunk.iter().map(|token| token.token.as_str()).collect(),
                        chunk,
                    )
                })
                .collect(),
        }
    }
}

impl Logprobs {
    /// The per-token entries both OpenAI APIs use: token, logprob, UTF-8 bytes, top alternatives
    /// (the token itself first, then made-up ones each a nat less likely).
    pub fn json(&self, tokens: &[TokenLogprob]) -> Value {
        let entry = |token: &str, logprob: f64| json!({"token": token, "logprob": logprob, "bytes": token.as_bytes()});
        tokens
            .iter()
            .map(|token| {
                let mut top = vec![entry(&token.token, token.logprob)];
                top.extend(
                    (1..self.top)
                        .map(|rank| entry(&format!(" alt{rank}"), token.logprob - rank as f64)),
                );
                top.truncate(self.top);
                let mut item = entry(&token.token, token.logprob);
                item["top_logprobs"] = Value::Array(top);
                item
            })
            .collect()
    }
}

/// Roughly what a tokenizer gives for English: four characters a token, never zero.
fn tokens(chars: usize) -> u64 {
    (chars / CHARS_PER_TOKEN).max(1) as u64
}

/// The text cut into as many tokens as [`tokens`] counts: four characters each, the rest in the last.
fn token_pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let count = chars.len() / CHARS_PER_TOKEN;
    let mut pieces: Vec<String> = chars
        .chunks(CHARS_PER_TOKEN)
        .take(count.saturating_sub(1))
        .map(|chunk| chunk.iter().collect())
        .collect();
    let rest = pieces.len() * CHARS_PER_TOKEN;
    pieces.push(chars[rest..].iter().collect());
    pieces
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

    #[test]
    fn token_pieces_are_as_many_as_the_token_count_and_rebuild_the_text() {
        for text in [
            "",
            "a",
            "abcd",
            "abcdefg",
            "abcdefgh",
            "héllo wörld, ünïcode!",
        ] {
            let pieces = token_pieces(text);
            assert_eq!(pieces.concat(), text);
            let expected = if text.is_empty() {
                0
            } else {
                tokens(text.chars().count())
            };
            assert_eq!(pieces.len() as u64, expected, "{text:?}");
        }
    }

    #[test]
    fn truncate_cuts_at_max_tokens_or_at_half() {
        let request = json!({"messages": [{"role": "user", "content": "hi"}]});
        let full = Answer::new("mid", &request, 1);
        assert!(full.output_tokens > 20);

        let mut limited = Answer::new("mid", &request, 1);
        limited.truncate(Some(10));
        assert_eq!((limited.output_tokens, limited.stop), (10, Stop::MaxTokens));
        assert_eq!(limited.text.chars().count(), 40);
        assert!(full.text.starts_with(&limited.text));

        for max_tokens in [None, Some(full.output_tokens), Some(100_000)] {
            let mut halved = Answer::new("mid", &request, 1);
            halved.truncate(max_tokens);
            assert_eq!(
                halved.output_tokens,
                full.output_tokens / 2,
                "{max_tokens:?}"
            );
            assert!(full.text.starts_with(&halved.text));
        }
        let mut zero = Answer::new("mid", &request, 1);
        zero.truncate(Some(0));
        assert_eq!(zero.output_tokens, 1);
    }

    #[test]
    fn logprobs_average_the_mean_and_stream_with_their_tokens() {
        for mean in [-0.1, -0.7, 0.0, -3.25] {
            let mut answer = Answer::new("small", &json!({}), 1);
            answer.add_logprobs(mean, 0);
            let logprobs = answer.logprobs.as_ref().unwrap();
            assert_eq!(logprobs.tokens.len() as u64, answer.output_tokens);
            let sum: f64 = logprobs.tokens.iter().map(|token| token.logprob).sum();
            assert!(
                (sum / logprobs.tokens.len() as f64 - mean).abs() < 1e-9,
                "{mean}"
            );
            assert!(logprobs.tokens.iter().all(|token| token.logprob <= 0.0));
            let deltas = answer.text_deltas();
            assert!(deltas.len() > 1);
            let streamed: String = deltas.iter().map(|(text, _)| text.as_str()).collect();
            assert_eq!(streamed, answer.text);
            for (text, tokens) in &deltas {
                let joined: String = tokens.iter().map(|token| token.token.as_str()).collect();
                assert_eq!(&joined, text);
            }
        }
    }

    #[test]
    fn logprob_entries_carry_bytes_and_the_requested_top_alternatives() {
        let mut answer = Answer::new("small", &json!({}), 1);
        answer.set_text("héllo!!!");
        answer.add_logprobs(-1.0, 3);
        let logprobs = answer.logprobs.as_ref().unwrap();
        let entries = logprobs.json(&logprobs.tokens);
        assert_eq!(
            entries[0],
            json!({"token": "héll", "logprob": -0.5, "bytes": [104, 195, 169, 108, 108],
            "top_logprobs": [
                {"token": "héll", "logprob": -0.5, "bytes": [104, 195, 169, 108, 108]},
                {"token": " alt1", "logprob": -1.5, "bytes": [32, 97, 108, 116, 49]},
                {"token": " alt2", "logprob": -2.5, "bytes": [32, 97, 108, 116, 50]},
            ]})
        );
        assert_eq!(entries[1]["logprob"], -1.5);
        answer.add_logprobs(-1.0, 0);
        let logprobs = answer.logprobs.as_ref().unwrap();
        assert_eq!(
            logprobs.json(&logprobs.tokens)[0]["top_logprobs"],
            json!([])
        );
    }

    #[test]
    fn a_tool_call_replaces_the_text_and_counts_its_arguments() {
        let mut answer = Answer::new("small", &json!({}), 1);
        answer.call_tool("lookup", "0123456789abcdef");
        assert_eq!((answer.text.as_str(), answer.output_tokens), ("", 4));
        assert_eq!(answer.stop, Stop::ToolCall);
        let call = answer.tool_call.as_ref().unwrap();
        assert_eq!(
            (call.name.as_str(), call.arguments.as_str()),
            ("lookup", "0123456789abcdef")
        );
    }
}
