//! Request bodies as clients write them (pretty, spaced), built so that the body the upstream should
//! get after a model rewrite is the same call with the new model: the filter changes no other byte.

use serde_json::Value;

pub const CHAT: &str = "/v1/chat/completions";
pub const RESPONSES: &str = "/v1/responses";
pub const MESSAGES: &str = "/v1/messages";

/// `"model": "<model>", ` or nothing when `model` is None.
fn model_member(model: Option<&str>) -> String {
    model.map_or_else(String::new, |model| {
        format!("\"model\": {}, ", Value::from(model))
    })
}

fn text(value: &str) -> String {
    Value::from(value).to_string()
}

/// OpenAI Chat Completions with a system message and the user's text as a string.
pub fn chat(model: Option<&str>, user: &str) -> String {
    format!(
        "{{{}\"messages\": [{{\"role\": \"system\", \"content\": \"You are a helpful assistant.\"}}, \
         {{\"role\": \"user\", \"content\": {}}}], \"temperature\": 0.2}}",
        model_member(model),
        text(user)
    )
}

/// OpenAI Chat Completions with the user's text as content parts.
pub fn chat_parts(model: Option<&str>, user: &str) -> String {
    format!(
        "{{{}\"messages\": [{{\"role\": \"user\", \"content\": [{{\"type\": \"text\", \"text\": {}}}]}}]}}",
        model_member(model),
        text(user)
    )
}

/// OpenAI Responses with `input` as a string.
pub fn responses(model: Option<&str>, input: &str) -> String {
    format!(
        "{{{}\"input\": {}, \"max_output_tokens\": 200}}",
        model_member(model),
        text(input)
    )
}

/// OpenAI Responses with `input` as message items with content parts.
pub fn responses_items(model: Option<&str>, input: &str) -> String {
    format!(
        "{{{}\"input\": [{{\"role\": \"user\", \"content\": [{{\"type\": \"input_text\", \"text\": {}}}]}}]}}",
        model_member(model),
        text(input)
    )
}

/// Anthropic Messages with the user's text as a string.
pub fn messages(model: Option<&str>, user: &str) -> String {
    format!(
        "{{{}\"max_tokens\": 512, \"messages\": [{{\"role\": \"user\", \"content\": {}}}]}}",
        model_member(model),
        text(user)
    )
}

/// Anthropic Messages with a system prompt and the user's text as content blocks.
pub fn messages_parts(model: Option<&str>, user: &str) -> String {
    format!(
        "{{{}\"max_tokens\": 512, \"system\": \"Be brief.\", \"messages\": [{{\"role\": \"user\", \
         \"content\": [{{\"type\": \"text\", \"text\": {}}}]}}]}}",
        model_member(model),
        text(user)
    )
}

/// A trivial request any small model answers: scored to the cheapest tier by the shipped weights.
pub const TRIVIAL: &str =
    "Classify the sentiment of this review as positive or negative: \"Great phone, love it.\"";

/// A request that no rule forces (the tests force tiers with a header instead).
pub const NEUTRAL: &str = "Summarize the plot of Hamlet in three sentences.";
