//! Kubernetes manifests as YAML text: JSON values written in block style, a comment ahead of each
//! document. Written here rather than with a YAML library so the output keeps its comments and a
//! readable key order (`apiVersion`, `kind`, `metadata`, `name` first); a test parses it back with
//! a YAML parser and compares it with the value it came from.

use serde_json::Value;

/// Keys written first, in this order, wherever they appear; the rest follow sorted.
const LEADING_KEYS: [&str; 5] = ["apiVersion", "kind", "metadata", "name", "namespace"];

/// One document: why it exists (comment lines, without `#`), and the object.
pub struct Document {
    pub comment: String,
    pub value: Value,
}

/// The documents of one file, `---` between them.
pub fn documents(header: &str, documents: &[Document]) -> String {
    let mut out = String::new();
    push_comment(&mut out, header, "");
    for document in documents {
        out.push_str("---\n");
        push_comment(&mut out, &document.comment, "");
        write_value(&mut out, &document.value, "");
    }
    out
}

fn push_comment(out: &mut String, text: &str, indent: &str) {
    for line in text.lines() {
        out.push_str(indent);
        out.push('#');
        if !line.is_empty() {
            out.push(' ');
            out.push_str(line);
        }
        out.push('\n');
    }
}

/// `value` as block YAML at `indent`, starting at the beginning of a line.
fn write_value(out: &mut String, value: &Value, indent: &str) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in ordered(map) {
                out.push_str(indent);
                out.push_str(&scalar_text(key));
                out.push(':');
                write_item(out, item, indent);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(indent);
                out.push('-');
                // A sequence item's mapping or sequence continues on the dash's line.
                let nested = format!("{indent}  ");
                if is_block(item) {
                    let mut block = String::new();
                    write_value(&mut block, item, &nested);
                    out.push(' ');
                    out.push_str(&block[nested.len()..]);
                } else {
                    write_item(out, item, indent);
                }
            }
        }
        other => {
            out.push_str(indent);
            out.push_str(&inline_text(other, indent));
            out.push('\n');
        }
    }
}

/// What follows `key:` or `-`: a scalar on the same line, or a block below it.
fn write_item(out: &mut String, item: &Value, indent: &str) {
    match item {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_value(out, item, &format!("{indent}  "));
        }
        // Sequences sit at their key's indentation, as kubectl writes them.
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_value(out, item, indent);
        }
        other => {
            out.push(' ');
            out.push_str(&inline_text(other, indent));
            out.push('\n');
        }
    }
}

/// A non-empty mapping or sequence: written as a block, not inline.
fn is_block(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    }
}

fn ordered(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by_key(|(key, _)| {
        let rank = LEADING_KEYS
            .iter()
            .position(|leading| leading == key)
            .unwrap_or(LEADING_KEYS.len());
        (rank, (*key).clone())
    });
    entries
}

/// A scalar, an empty collection, or a multi-line string as a literal block.
fn inline_text(value: &Value, indent: &str) -> String {
    match value {
        Value::String(text) if literal_block_fits(text) => {
            let chomp = if text.ends_with('\n') { "|" } else { "|-" };
            let body_indent = format!("{indent}  ");
            let mut block = String::from(chomp);
            for line in text.trim_end_matches('\n').split('\n') {
                block.push('\n');
                if !line.is_empty() {
                    block.push_str(&body_indent);
                    block.push_str(line);
                }
            }
            block
        }
        Value::String(text) => scalar_text(text),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// A literal block keeps every character as it is, so it takes text of several lines with no
/// control characters, no trailing blank lines and a first line that does not start with a space
/// (which would need an indentation indicator).
fn literal_block_fits(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with([' ', '\n'])
        && !text.trim_end_matches('\n').ends_with(' ')
        && !text.ends_with("\n\n")
        && !text.chars().any(|c| c.is_control() && c != '\n')
}

/// A string as a plain scalar when no YAML reader (YAML 1.1 or 1.2, as Kubernetes' and others'
/// parsers differ) can take it for anything else; otherwise double-quoted with JSON's escapes, which
/// YAML's double-quoted style shares.
fn scalar_text(text: &str) -> String {
    if plain_is_safe(text) {
        text.to_string()
    } else {
        Value::from(text).to_string()
    }
}

fn plain_is_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    let reserved = [
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~",
    ];
    let number_like = first.is_ascii_digit()
        || (matches!(first, '+' | '-' | '.')
            && text[1..].starts_with(|c: char| c.is_ascii_digit() || c == '.'));
    (first.is_ascii_alphanumeric() || first == '/')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-' | ':' | '@'))
        && !text.ends_with(':')
        && !reserved.contains(&text.to_ascii_lowercase().as_str())
        && !number_like
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_maps_and_sequences_are_block_style_with_the_leading_keys_first() {
        let value = json!({
            "spec": {"list": [{"b": 1, "name": "x"}, "plain", [1, 2]], "empty": {}, "none": []},
            "kind": "Thing",
            "apiVersion": "v1"
        });
        let text = documents(
            "header",
            &[Document {
                comment: "why".into(),
                value,
            }],
        );
        assert_eq!(
            text,
            "# header\n---\n# why\napiVersion: v1\nkind: Thing\nspec:\n  empty: {}\n  list:\n  \
             - name: x\n    b: 1\n  - plain\n  - - 1\n    - 2\n  none: []\n"
        );
    }

    #[test]
    fn strings_a_reader_could_misread_are_quoted_and_multi_line_text_is_a_literal_block() {
        for (text, written) in [
            ("api.openai.com", "api.openai.com"),
            (
                "outbound|80|small|api.openai.com",
                "\"outbound|80|small|api.openai.com\"",
            ),
            ("yes", "\"yes\""),
            ("On", "\"On\""),
            ("1.5", "\"1.5\""),
            ("-1", "\"-1\""),
            ("8080", "\"8080\""),
            ("a: b", "\"a: b\""),
            ("x-triage-(route|tier)", "\"x-triage-(route|tier)\""),
            ("", "\"\""),
            ("Bearer ", "\"Bearer \""),
        ] {
            assert_eq!(scalar_text(text), written, "{text:?}");
        }
        assert_eq!(
            inline_text(&Value::from("{\n  \"a\": 1\n}"), "  "),
            "|-\n    {\n      \"a\": 1\n    }"
        );
        assert_eq!(inline_text(&Value::from(" x\ny"), ""), "\" x\\ny\"");
    }
}
