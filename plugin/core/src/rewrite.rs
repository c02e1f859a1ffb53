//! Rewrites the top-level "model" of a JSON object body, or adds a top-level member, keeping every
//! other byte as it was.

use std::fmt;
use std::ops::Range;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RewriteError {
    /// The body does not start with a JSON object.
    NotAnObject,
    /// The object is malformed at this byte offset.
    Malformed { offset: usize },
}

impl fmt::Display for RewriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RewriteError::NotAnObject => write!(f, "body is not a JSON object"),
            RewriteError::Malformed { offset } => {
                write!(f, "malformed JSON object at byte {offset}")
            }
        }
    }
}

impl std::error::Error for RewriteError {}

/// Replaces the value of the top-level "model" key with `model` (a JSON string), keeping every other
/// byte as it was; inserts `"model":"..."` as the first member when absent. Every top-level "model"
/// member is replaced, so a duplicate key cannot carry the old model past the router.
pub fn rewrite_model(body: &[u8], model: &str) -> Result<Vec<u8>, RewriteError> {
    let scan = scan_object(body, "model")?;
    let value = json_string(model);
    if scan.key_values.is_empty() {
        return Ok(insert_first(body, &scan, "model", &value));
    }
    let mut out = Vec::with_capacity(body.len() + value.len() + 10);
    let mut copied = 0;
    for range in scan.key_values {
        out.extend_from_slice(body.get(copied..range.start).unwrap_or_default());
        out.extend_from_slice(value.as_bytes());
        copied = range.end;
    }
    out.extend_from_slice(body.get(copied..).unwrap_or_default());
    Ok(out)
}

/// Adds `"key": value_json` as the first member of the top-level object, changing no other byte;
/// None when the body is not a JSON object, already has `key` at top level (in any escaped
/// spelling), or `value_json` is not valid JSON.
pub fn insert_member(body: &[u8], key: &str, value_json: &str) -> Option<Vec<u8>> {
    serde_json::from_str::<serde::de::IgnoredAny>(value_json).ok()?;
    let scan = scan_object(body, key).ok()?;
    if !scan.key_values.is_empty() {
        return None;
    }
    Some(insert_first(body, &scan, key, value_json))
}

/// `body` with `"key":value` (value already JSON) as the first member of its object.
fn insert_first(body: &[u8], scan: &ObjectScan, key: &str, value: &str) -> Vec<u8> {
    let key = json_string(key);
    let mut out = Vec::with_capacity(body.len() + key.len() + value.len() + 2);
    let (head, tail) = body.split_at(scan.open_brace + 1);
    out.extend_from_slice(head);
    out.extend_from_slice(key.as_bytes());
    out.push(b':');
    out.extend_from_slice(value.as_bytes());
    if !scan.is_empty {
        out.push(b',');
    }
    out.extend_from_slice(tail);
    out
}

/// `text` as a JSON string, quotes included, escaping only what JSON requires.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct ObjectScan {
    open_brace: usize,
    is_empty: bool,
    /// The value of every top-level member named by the scanned key.
    key_values: Vec<Range<usize>>,
}

struct Scanner<'b> {
    bytes: &'b [u8],
    at: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn malformed(&self) -> RewriteError {
        RewriteError::Malformed { offset: self.at }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), RewriteError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.malformed())
        }
    }

    /// Skips a string starting at the opening quote; returns the range inside the quotes.
    fn string(&mut self) -> Result<Range<usize>, RewriteError> {
        self.expect(b'"')?;
        let start = self.at;
        loop {
            match self.peek() {
                None => return Err(self.malformed()),
                Some(b'"') => {
                    self.at += 1;
                    return Ok(start..self.at - 1);
                }
                Some(b'\\') => self.at += 2,
                Some(_) => self.at += 1,
            }
        }
    }

    /// Skips any value: strings, nested objects and arrays (brackets balanced, strings honoured),
    /// and scalars up to the next delimiter.
    fn value(&mut self) -> Result<Range<usize>, RewriteError> {
        let start = self.at;
        match self.peek() {
            Some(b'"') => {
                self.string()?;
            }
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                loop {
                    match self.peek() {
                        None => return Err(self.malformed()),
                        Some(b'"') => {
                            self.string()?;
                            continue;
                        }
                        Some(b'{' | b'[') => depth += 1,
                        Some(b'}' | b']') => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                break;
                            }
                        }
                        Some(_) => {}
                    }
                    self.at += 1;
                }
            }
            Some(_) => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.at += 1;
                }
                if self.at == start {
                    return Err(self.malformed());
                }
            }
            None => return Err(self.malformed()),
        }
        Ok(start..self.at)
    }
}

/// `raw` (a key as written, without its quotes) is `key`.
fn is_key(raw: &[u8], key: &str) -> bool {
    if raw == key.as_bytes() {
        return true;
    }
    // An escaped spelling such as "mod\u0065l" is the same key to every JSON parser; an escape
    // takes at most six bytes per byte of the key.
    raw.contains(&b'\\')
        && raw.len() <= 6 * key.len()
        && std::str::from_utf8(raw)
            .ok()
            .and_then(|raw| serde_json::from_str::<String>(&format!("\"{raw}\"")).ok())
            .is_some_and(|decoded| decoded == key)
}

fn scan_object(body: &[u8], key_name: &str) -> Result<ObjectScan, RewriteError> {
    let mut scanner = Scanner { bytes: body, at: 0 };
    scanner.skip_whitespace();
    if scanner.peek() != Some(b'{') {
        return Err(RewriteError::NotAnObject);
    }
    let open_brace = scanner.at;
    scanner.at += 1;
    let mut key_values = Vec::new();
    scanner.skip_whitespace();
    let is_empty = scanner.peek() == Some(b'}');
    if is_empty {
        scanner.at += 1;
    } else {
        loop {
            scanner.skip_whitespace();
            let key = scanner.string()?;
            scanner.skip_whitespace();
            scanner.expect(b':')?;
            scanner.skip_whitespace();
            let value = scanner.value()?;
            if is_key(body.get(key).unwrap_or_default(), key_name) {
                key_values.push(value);
            }
            scanner.skip_whitespace();
            match scanner.peek() {
                Some(b',') => scanner.at += 1,
                Some(b'}') => {
                    scanner.at += 1;
                    break;
                }
                _ => return Err(scanner.malformed()),
            }
        }
    }
    scanner.skip_whitespace();
    if scanner.at != body.len() {
        return Err(scanner.malformed());
    }
    Ok(ObjectScan {
        open_brace,
        is_empty,
        key_values,
    })
}

#[cfg(test)]
mod tests;
