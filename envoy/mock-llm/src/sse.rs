use bytes::Bytes;
use serde_json::Value;

/// `data: <json>` (OpenAI chat completions chunks).
pub(crate) fn data(json: &Value) -> Bytes {
    Bytes::from(format!("data: {json}\n\n"))
}

/// `event: <name>` then `data: <json>` where the json carries `"type": <name>` (Responses, Anthropic).
pub(crate) fn typed_event(name: &str, mut json: Value) -> Bytes {
    if let Some(object) = json.as_object_mut() {
        object.insert("type".to_owned(), Value::from(name));
    }
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

/// The answer cut into deltas of a few words each; concatenated they give the text back exactly.
pub(crate) fn deltas(text: &str) -> Vec<String> {
    const WORDS_PER_DELTA: usize = 4;
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    words
        .chunks(WORDS_PER_DELTA)
        .map(|chunk| chunk.concat())
        .collect()
}

/// Tool call arguments as streamed: pieces of a few characters, concatenated the arguments again.
pub(crate) fn argument_pieces(arguments: &str) -> Vec<String> {
    const CHARS_PER_PIECE: usize = 8;
    let chars: Vec<char> = arguments.chars().collect();
    chars
        .chunks(CHARS_PER_PIECE)
        .map(|chunk| chunk.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_rebuild_the_text_in_several_pieces() {
        let text = "one two three four five six seven eight nine";
        let pieces = deltas(text);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), text);
    }

    #[test]
    fn argument_pieces_rebuild_the_arguments() {
        let arguments = r#"{"query": "unterminated"#;
        let pieces = argument_pieces(arguments);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), arguments);
        assert!(argument_pieces("").is_empty());
    }

    #[test]
    fn typed_event_names_the_event_and_the_type() {
        let event = typed_event("message_stop", serde_json::json!({}));
        assert_eq!(
            event,
            Bytes::from("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
        );
    }
}
