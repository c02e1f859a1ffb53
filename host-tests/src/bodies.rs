//! Request bodies of a chosen size for benchmarks: a realistic mix of prose, a code block and a
//! question, in the OpenAI chat format.

/// An OpenAI chat body of about `size` bytes (within a few bytes) with `"model": "auto"`.
pub fn chat_body_of_size(size: usize) -> String {
    const PROSE: &str = "The quarterly report says revenue grew 12% while costs rose 4%; \
        the board asks whether the new pricing explains it. ";
    const CODE: &str = "fn total(xs: &[u64]) -> u64 { xs.iter().sum() }\n";
    let question = "Summarise the document above in three bullet points and say whether \
        the code is correct.";
    let shell = serde_json::json!({
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are a careful analyst."},
            {"role": "user", "content": ""}
        ]
    })
    .to_string();
    let budget = size.saturating_sub(shell.len() + question.len() + 16);
    let mut text = String::with_capacity(budget + question.len() + 16);
    text.push_str("```rust\n");
    while text.len() + CODE.len() < budget / 8 {
        text.push_str(CODE);
    }
    text.push_str("```\n");
    while text.len() + PROSE.len() <= budget {
        text.push_str(PROSE);
    }
    text.push_str(question);
    serde_json::json!({
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are a careful analyst."},
            {"role": "user", "content": text}
        ]
    })
    .to_string()
}
