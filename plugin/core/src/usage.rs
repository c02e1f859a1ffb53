//! Token usage read from an LLM API response body as it streams through, chunk by chunk, without
//! buffering the body.
//!
//! A small JSON scanner follows nesting depth and string/escape state across chunks and keeps only the
//! bytes of a `usage` value found where the format puts it (capped); only those are parsed with serde.
//! For a server-sent event stream each event's `data:` payload goes through the same scanner, so an
//! event of any size costs no memory: that matters because the Responses API's `response.completed`
//! event repeats the whole output before its usage, and would not fit a capped event buffer.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::format::ApiFormat;

/// The most bytes kept for one `usage` value. Real ones (with the cache and reasoning details) are a
/// few hundred bytes; a bigger one is not a usage object we know, so it is dropped.
const USAGE_CAP: usize = 4 * 1024;
/// Keys of interest are `usage`, `response` and `message`: eight bytes hold the longest.
const KEY_CAP: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Reads the usage of one response. Feed it every body chunk in order; ask [`UsageReader::usage`]
/// at any time (the answer is final once the body has ended).
#[derive(Debug)]
pub struct UsageReader {
    format: ApiFormat,
    /// `Some` for a text/event-stream body.
    events: Option<EventLines>,
    json: JsonScan,
    counts: Counts,
}

impl UsageReader {
    pub fn new(format: ApiFormat, event_stream: bool) -> UsageReader {
        // Where a usage object sits: a JSON body has it at the top level in all three formats; in a
        // stream, Responses nests it in `response` (response.completed/incomplete/failed) and Anthropic
        // in `message` (message_start) as well as at the top (message_delta).
        let target = match (event_stream, format) {
            (false, _) | (true, ApiFormat::OpenAiChat) => Target {
                top: true,
                under: None,
            },
            (true, ApiFormat::OpenAiResponses) => Target {
                top: false,
                under: Some(b"response"),
            },
            (true, ApiFormat::AnthropicMessages) => Target {
                top: true,
                under: Some(b"message"),
            },
        };
        UsageReader {
            format,
            events: event_stream.then(EventLines::default),
            json: JsonScan::new(target),
            counts: Counts::default(),
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.events.is_some() {
            self.feed_events(chunk);
        } else {
            self.json.feed(chunk);
            // A plain body's usage counts as soon as its value is complete: a body cut off later still
            // had those tokens billed.
            if let Some(usage) = self.json.take_usage() {
                self.counts.merge(self.format, usage);
            }
        }
    }

    /// None when no usage was seen: unknown, never zero.
    pub fn usage(&self) -> Option<Usage> {
        self.counts.usage()
    }

    /// Event stream: each `data:` line's text goes to the JSON scanner; a blank line ends the event.
    fn feed_events(&mut self, mut chunk: &[u8]) {
        let Some(lines) = self.events.as_mut() else {
            return;
        };
        while let Some((&byte, rest)) = chunk.split_first() {
            if std::mem::take(&mut lines.after_cr) && byte == b'\n' {
                chunk = rest;
                continue;
            }
            let line_end = byte == b'\n' || byte == b'\r';
            match lines.line {
                _ if line_end => {}
                Line::Data | Line::Skip => {
                    let end = chunk
                        .iter()
                        .position(|&b| b == b'\n' || b == b'\r')
                        .unwrap_or(chunk.len());
                    let (text, rest) = chunk.split_at(end);
                    if lines.line == Line::Data {
                        self.json.feed(text);
                    }
                    chunk = rest;
                    continue;
                }
                Line::Field(matched) => {
                    lines.line = match DATA_FIELD.get(matched) {
                        Some(&expected) if expected == byte && matched + 1 == DATA_FIELD.len() => {
                            Line::Data
                        }
                        Some(&expected) if expected == byte => Line::Field(matched + 1),
                        // Another field (event:, id:, retry:) or a `:` comment.
                        _ => Line::Skip,
                    };
                    chunk = rest;
                    continue;
                }
            }
            // `byte` ends a line (\n, \r, or \r\n: the \n is skipped on the next turn).
            lines.after_cr = byte == b'\r';
            match std::mem::replace(&mut lines.line, Line::Field(0)) {
                Line::Field(0) => {
                    // A blank line dispatches the event; a cut-off or malformed one is ignored.
                    if self.json.complete() {
                        if let Some(usage) = self.json.take_usage() {
                            self.counts.merge(self.format, usage);
                        }
                    }
                    self.json.reset();
                }
                // Lines of one data field are joined with a newline, which JSON reads as whitespace.
                Line::Data => self.json.feed(b"\n"),
                Line::Field(_) | Line::Skip => {}
            }
            chunk = rest;
        }
    }
}

const DATA_FIELD: &[u8] = b"data:";

#[derive(Debug, Default)]
struct EventLines {
    line: Line,
    /// The last line ended with \r: a \n right after it belongs to the same line end.
    after_cr: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Line {
    /// At the start of a line, this many bytes of `data:` matched so far.
    Field(usize),
    /// The rest of a `data:` line.
    Data,
    /// The rest of a line we don't read.
    Skip,
}

impl Default for Line {
    fn default() -> Line {
        Line::Field(0)
    }
}

/// The counts seen so far; a later usage object overrides only the fields it carries (Anthropic's
/// message_delta is cumulative and may or may not repeat the input counts).
#[derive(Debug, Default)]
struct Counts {
    input: Option<u64>,
    cache_creation: Option<u64>,
    cache_read: Option<u64>,
    output: Option<u64>,
}

impl Counts {
    fn merge(&mut self, format: ApiFormat, usage: &[u8]) {
        // `null` and anything but an object is no usage.
        let Ok(usage) = serde_json::from_slice::<Map<String, Value>>(usage) else {
            return;
        };
        // A count that is not a u64 (negative, fractional, a string, null) is ignored.
        let count = |name: &str| usage.get(name).and_then(Value::as_u64);
        let (input, output) = match format {
            ApiFormat::OpenAiChat => ("prompt_tokens", "completion_tokens"),
            ApiFormat::OpenAiResponses | ApiFormat::AnthropicMessages => {
                ("input_tokens", "output_tokens")
            }
        };
        self.input = count(input).or(self.input);
        self.output = count(output).or(self.output);
        // OpenAI's prompt counts already include cached tokens; Anthropic's input_tokens does not.
        if format == ApiFormat::AnthropicMessages {
            self.cache_creation = count("cache_creation_input_tokens").or(self.cache_creation);
            self.cache_read = count("cache_read_input_tokens").or(self.cache_read);
        }
    }

    fn usage(&self) -> Option<Usage> {
        let prompt_tokens = self
            .input?
            .saturating_add(self.cache_creation.unwrap_or(0))
            .saturating_add(self.cache_read.unwrap_or(0));
        Some(Usage {
            prompt_tokens,
            completion_tokens: self.output?,
        })
    }
}

/// Where a `usage` key counts: in the top-level object, and/or in the object that is the value of
/// the top-level key `under`. Deeper ones (inside `choices`, `output`, ...) never do.
#[derive(Clone, Copy, Debug)]
struct Target {
    top: bool,
    under: Option<&'static [u8]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lex {
    Code,
    String,
    /// Inside a string, right after a backslash.
    Escape,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Capture {
    Off,
    /// After `"usage":` in an object at this depth, before the value's first byte.
    Armed(u32),
    /// Copying the value; it ends at the next `,` `}` `]` at this depth.
    On(u32),
}

/// A streaming scanner over one JSON document. It does not validate JSON: it tracks just enough
/// (depth, strings, the last short key) to find `usage` values; serde validates what it keeps.
/// Top-level junk, a second top-level value or an unbalanced close marks the document broken.
#[derive(Debug)]
struct JsonScan {
    target: Target,
    /// Containers open (objects and arrays alike).
    depth: u32,
    lex: Lex,
    /// A top-level value has been opened.
    started: bool,
    broken: bool,
    /// The last string read (a key if a `:` follows), if at most KEY_CAP bytes long.
    key: [u8; KEY_CAP],
    /// Bytes in `key`; KEY_CAP + 1 once the string is longer than KEY_CAP.
    key_len: usize,
    /// The current top-level key is `target.under`.
    under_parent: bool,
    capture: Capture,
    /// The captured bytes of the last `usage` value.
    value: Vec<u8>,
    /// `value` holds a whole value not yet taken.
    captured: bool,
}

impl JsonScan {
    fn new(target: Target) -> JsonScan {
        JsonScan {
            target,
            depth: 0,
            lex: Lex::Code,
            started: false,
            broken: false,
            key: [0; KEY_CAP],
            key_len: 0,
            under_parent: false,
            capture: Capture::Off,
            value: Vec::new(),
            captured: false,
        }
    }

    /// Ready for the next document; the capture buffer's allocation is kept.
    fn reset(&mut self) {
        let mut value = std::mem::take(&mut self.value);
        value.clear();
        *self = JsonScan {
            value,
            ..JsonScan::new(self.target)
        };
    }

    /// A top-level value was opened and closed, and nothing but whitespace followed.
    fn complete(&self) -> bool {
        self.started && self.depth == 0 && self.lex == Lex::Code && !self.broken
    }

    /// The last complete `usage` value, once.
    fn take_usage(&mut self) -> Option<&[u8]> {
        std::mem::take(&mut self.captured).then_some(self.value.as_slice())
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.broken {
            let used = if self.lex == Lex::Code {
                self.code_byte(bytes.first().copied().unwrap_or(b' '));
                1
            } else {
                self.string_bytes(bytes)
            };
            bytes = bytes.get(used..).unwrap_or_default();
        }
    }

    /// Inside a string: consumes text up to and including the next quote or backslash (or the
    /// escaped byte after a backslash) and returns how many bytes it used.
    fn string_bytes(&mut self, bytes: &[u8]) -> usize {
        if self.lex == Lex::Escape {
            self.lex = Lex::String;
            self.string_text(bytes.get(..1).unwrap_or_default());
            return 1;
        }
        let Some(at) = bytes.iter().position(|&b| b == b'"' || b == b'\\') else {
            self.string_text(bytes);
            return bytes.len();
        };
        let (text, special) = bytes.split_at(at);
        self.string_text(text);
        if special.first() == Some(&b'\\') {
            self.string_text(b"\\");
            self.lex = Lex::Escape;
        } else {
            self.keep(b"\"");
            self.lex = Lex::Code;
        }
        at + 1
    }

    fn string_text(&mut self, text: &[u8]) {
        self.keep(text);
        if self.key_len <= KEY_CAP {
            let end = self.key_len + text.len();
            match self.key.get_mut(self.key_len..end) {
                Some(room) => {
                    room.copy_from_slice(text);
                    self.key_len = end;
                }
                None => self.key_len = KEY_CAP + 1,
            }
        }
    }

    fn code_byte(&mut self, byte: u8) {
        let space = matches!(byte, b' ' | b'\t' | b'\n' | b'\r');
        if let Capture::Armed(depth) = self.capture {
            if !space {
                self.value.clear();
                self.captured = false;
                self.capture = Capture::On(depth);
            }
        }
        if let Capture::On(depth) = self.capture {
            if self.depth == depth && matches!(byte, b',' | b'}' | b']') {
                self.capture = Capture::Off;
                self.captured = true;
            } else {
                self.keep(&[byte]);
            }
        }
        if self.depth == 0 {
            match byte {
                _ if space => {}
                b'{' | b'[' if !self.started => {
                    self.started = true;
                    self.depth = 1;
                }
                _ => self.broken = true,
            }
            return;
        }
        match byte {
            b'{' | b'[' => self.depth = self.depth.saturating_add(1),
            b'}' | b']' => self.depth -= 1,
            b'"' => {
                self.lex = Lex::String;
                self.key_len = 0;
            }
            b':' => self.key_done(),
            _ => {}
        }
    }

    /// A `:`: the last string read was the key of the object at the current depth.
    fn key_done(&mut self) {
        // None when the key was longer than KEY_CAP.
        let key = self.key.get(..self.key_len);
        let usage = key == Some(b"usage".as_slice());
        match self.depth {
            1 => {
                self.under_parent = key.is_some() && key == self.target.under;
                if usage && self.target.top {
                    self.capture = Capture::Armed(1);
                }
            }
            2 if usage && self.under_parent => self.capture = Capture::Armed(2),
            _ => {}
        }
    }

    /// Appends to the captured value, dropping it once it outgrows USAGE_CAP.
    fn keep(&mut self, bytes: &[u8]) {
        if let Capture::On(_) = self.capture {
            if self.value.len() + bytes.len() > USAGE_CAP {
                self.capture = Capture::Off;
                self.value.clear();
            } else {
                self.value.extend_from_slice(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests;
