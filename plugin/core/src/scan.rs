//! Which text the text features and rule regexes may read: at most `max_scan_bytes`, the last user
//! message first, then the rest of the conversation from the most recent back, then the system prompt.

use crate::format::{Message, ParsedRequest, Role};

/// The longest prefix of `text` that fits in `max` bytes and ends on a char boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

/// Slices of `texts`, in order, with at most `budget` bytes in all.
fn take<'r>(texts: impl IntoIterator<Item = &'r str>, budget: &mut usize, out: &mut Vec<&'r str>) {
    for text in texts {
        if *budget == 0 {
            return;
        }
        let slice = truncate(text, *budget);
        *budget -= slice.len();
        if !slice.is_empty() {
            out.push(slice);
        }
    }
}

fn message_texts<'r>(message: &'r Message) -> impl Iterator<Item = &'r str> {
    message.texts.iter().map(|text| text.as_ref())
}

/// The last user message, capped.
pub(crate) fn last_user_segments<'r>(request: &'r ParsedRequest, cap: usize) -> Vec<&'r str> {
    let mut out = Vec::new();
    let mut budget = cap;
    if let Some(message) = request.last_user_message() {
        take(message_texts(message), &mut budget, &mut out);
    }
    out
}

/// Everything, in priority order, capped.
pub(crate) fn all_segments<'r>(request: &'r ParsedRequest, cap: usize) -> Vec<&'r str> {
    let mut out = Vec::new();
    let mut budget = cap;
    let last_user = request
        .messages
        .iter()
        .rposition(|message| message.role == Role::User);
    if let Some(message) = last_user.and_then(|index| request.messages.get(index)) {
        take(message_texts(message), &mut budget, &mut out);
    }
    for (index, message) in request.messages.iter().enumerate().rev() {
        if Some(index) != last_user {
            take(message_texts(message), &mut budget, &mut out);
        }
    }
    take(
        request.system.iter().map(|text| text.as_ref()),
        &mut budget,
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn message(role: Role, text: &str) -> Message<'_> {
        Message {
            role,
            texts: vec![Cow::Borrowed(text)],
        }
    }

    #[test]
    fn truncate_keeps_char_boundaries() {
        let cases = [
            ("hello", 10, "hello"),
            ("hello", 3, "hel"),
            ("héllo", 2, "h"),
            ("日本", 4, "日"),
            ("日本", 0, ""),
        ];
        for (text, max, expected) in cases {
            assert_eq!(truncate(text, max), expected, "{text} {max}");
        }
    }

    #[test]
    fn last_user_message_comes_first_and_the_cap_holds() {
        let request = ParsedRequest {
            system: vec![Cow::Borrowed("SYSTEM")],
            messages: vec![
                message(Role::User, "old question"),
                message(Role::Assistant, "answer"),
                message(Role::User, "new question"),
            ],
            ..ParsedRequest::default()
        };
        assert_eq!(
            all_segments(&request, 1000),
            vec!["new question", "answer", "old question", "SYSTEM"]
        );
        assert_eq!(all_segments(&request, 15), vec!["new question", "ans"]);
        assert_eq!(last_user_segments(&request, 3), vec!["new"]);
        assert!(all_segments(&request, 0).is_empty());
    }
}
