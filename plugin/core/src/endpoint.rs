//! Which LLM endpoint a request names, however its path is spelled.
//!
//! A request that an upstream would serve as an LLM call must be decided, recorded and priced, so
//! the match is deliberately lenient: every spelling that some server resolves to one of the three
//! endpoints counts, and an enforced request is sent on to the endpoint's own path (the client's
//! query string kept). The shipped Envoy config already normalizes paths before any filter runs
//! (dot segments, merged slashes, percent-encoded unreserved characters; an encoded slash or
//! backslash is refused with 400), so there only upper case, a trailing slash and `;` parameters
//! reach this code; the rest is here for gateways configured otherwise.
//!
//! The path part (before `?`, or before `#` when a fragment comes first) is percent-decoded once,
//! `\` counts as `/`, `;parameters` end a segment (as servlet containers read them), empty and `.`
//! segments are dropped and `..` drops the one before, and the segments are compared with the
//! endpoint's ignoring ASCII case. The fragment is never sent on.

use crate::format::ApiFormat;

/// A POST to one of the three LLM endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub format: ApiFormat,
    /// The endpoint's own path plus the client's query string (`?` and all) when it sent one: what
    /// rules match on and what an enforced request is sent to.
    pub path: String,
}

impl Endpoint {
    /// `Some` for a POST whose path names one of the three endpoints in any spelling.
    pub fn of(method: &str, path: &str) -> Option<Endpoint> {
        if method != "POST" {
            return None;
        }
        let without_fragment = path.split_once('#').map_or(path, |(before, _)| before);
        let (path_part, query) = match without_fragment.split_once('?') {
            Some((path_part, query)) => (path_part, Some(query)),
            None => (without_fragment, None),
        };
        let decoded = percent_decode(path_part.as_bytes());
        let segments = segments(&decoded);
        let format = ApiFormat::ALL.into_iter().find(|format| {
            let wanted: Vec<&str> = format
                .path()
                .split('/')
                .filter(|segment| !segment.is_empty())
                .collect();
            wanted.len() == segments.len()
                && wanted
                    .iter()
                    .zip(&segments)
                    .all(|(want, have)| have.eq_ignore_ascii_case(want.as_bytes()))
        })?;
        let mut canonical = format.path().to_string();
        if let Some(query) = query {
            canonical.push('?');
            canonical.push_str(query);
        }
        Some(Endpoint {
            format,
            path: canonical,
        })
    }
}

/// Every `%XX` with two hex digits becomes its byte; anything else stays as it is.
fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let escaped = match (byte, bytes.get(at + 1), bytes.get(at + 2)) {
            (b'%', Some(&high), Some(&low)) => hex(high).zip(hex(low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                out.push(high << 4 | low);
                at += 3;
            }
            None => {
                out.push(byte);
                at += 1;
            }
        }
    }
    out
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// The path's segments after dot-segment removal, `;parameters` cut off, `\` read as `/`.
fn segments(path: &[u8]) -> Vec<&[u8]> {
    let mut kept: Vec<&[u8]> = Vec::new();
    for segment in path.split(|byte| *byte == b'/' || *byte == b'\\') {
        let segment = segment
            .split(|byte| *byte == b';')
            .next()
            .unwrap_or_default();
        match segment {
            b"" | b"." => {}
            b".." => {
                kept.pop();
            }
            other => kept.push(other),
        }
    }
    kept
}

#[cfg(test)]
mod tests;
