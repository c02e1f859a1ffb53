//! Server-sent events from a byte stream split anywhere: the `event:` name and the `data:` of each
//! event, in bounded memory (a line longer than [`LINE_CAP`] is skipped).

/// The longest line kept, and the most data kept for one event: a longer line is skipped, and an
/// event whose data was skipped is dispatched without data.
pub(crate) const LINE_CAP: usize = 64 * 1024;
/// Event names are short (`response.function_call_arguments.delta` is the longest we read).
const NAME_CAP: usize = 64;

/// One dispatched event. `data` is None when the event had no data or its data was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event<'e> {
    pub name: &'e [u8],
    pub data: Option<&'e [u8]>,
}

#[derive(Debug, Default)]
pub(crate) struct EventSplitter {
    line: Vec<u8>,
    /// The current line outgrew LINE_CAP: its remaining bytes are dropped.
    skipping: bool,
    /// The last line ended with \r: a \n right after it belongs to the same line end.
    after_cr: bool,
    name: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// A data line of this event was skipped.
    data_lost: bool,
}

impl EventSplitter {
    /// Feeds the next bytes; `on_event` gets each event completed by them, in order, and says
    /// whether to stop there. Returns how many of the bytes were read: all of them, or those up to
    /// the end of the line that completed the event `on_event` stopped at.
    pub fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(Event<'_>) -> bool) -> usize {
        let mut rest = chunk;
        while !rest.is_empty() {
            if std::mem::take(&mut self.after_cr) && rest.first() == Some(&b'\n') {
                rest = rest.get(1..).unwrap_or_default();
                continue;
            }
            let end = rest.iter().position(|&byte| byte == b'\n' || byte == b'\r');
            let (text, after) = rest.split_at(end.unwrap_or(rest.len()));
            self.keep(text);
            let Some((&line_end, after)) = after.split_first() else {
                return chunk.len();
            };
            self.after_cr = line_end == b'\r';
            rest = after;
            if self.end_line(&mut on_event) {
                return chunk.len() - rest.len();
            }
        }
        chunk.len()
    }

    fn keep(&mut self, text: &[u8]) {
        if self.skipping {
            return;
        }
        if self.line.len() + text.len() > LINE_CAP {
            self.skipping = true;
            self.data_lost |= self.line.starts_with(b"data");
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(text);
        }
    }

    /// Whether `on_event` asked to stop at the event this line ended.
    fn end_line(&mut self, on_event: &mut impl FnMut(Event<'_>) -> bool) -> bool {
        if std::mem::take(&mut self.skipping) {
            return false;
        }
        let line = std::mem::take(&mut self.line);
        let mut stop = false;
        if line.is_empty() {
            stop = self.dispatch(on_event);
        } else if line.first() != Some(&b':') {
            let (field, value) = match line.iter().position(|&byte| byte == b':') {
                Some(colon) => line.split_at(colon),
                None => (line.as_slice(), &b""[..]),
            };
            let value = value.get(1..).unwrap_or_default();
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match field {
                b"event" => {
                    self.name.clear();
                    if value.len() <= NAME_CAP {
                        self.name.extend_from_slice(value);
                    }
                }
                b"data" if self.data_lost => {}
                b"data" if self.data.len() + value.len() + 1 > LINE_CAP => {
                    self.data_lost = true;
                    self.data = Vec::new();
                }
                b"data" => {
                    if self.has_data {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        // The line's allocation is reused for the next one.
        self.line = line;
        self.line.clear();
        stop
    }

    /// A blank line ends the event; one without data (or a lost data line) is still passed on when
    /// it has a name, so an `event: error` is never missed.
    fn dispatch(&mut self, on_event: &mut impl FnMut(Event<'_>) -> bool) -> bool {
        let mut stop = false;
        if self.has_data || self.data_lost || !self.name.is_empty() {
            stop = on_event(Event {
                name: &self.name,
                data: (self.has_data && !self.data_lost).then_some(self.data.as_slice()),
            });
        }
        self.name.clear();
        self.data.clear();
        self.has_data = false;
        self.data_lost = false;
        stop
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<(String, Option<String>)> {
        let mut splitter = EventSplitter::default();
        let mut seen = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, |event| {
                seen.push((
                    String::from_utf8_lossy(event.name).into_owned(),
                    event
                        .data
                        .map(|data| String::from_utf8_lossy(data).into_owned()),
                ));
                false
            });
        }
        seen
    }

    fn owned(expected: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        expected
            .iter()
            .map(|(name, data)| (name.to_string(), data.map(str::to_string)))
            .collect()
    }

    #[test]
    fn splits_events_at_every_offset_and_line_ending() {
        let expected = owned(&[
            ("", Some("{\"a\":1}")),
            ("error", Some("{\"type\":\"error\"}")),
            ("", Some("one\ntwo")),
            ("ping", None),
            ("", Some("")),
        ]);
        let lf =
            "data: {\"a\":1}\n\n: comment\nevent: error\nid: 7\ndata: {\"type\":\"error\"}\n\n\
                  data:one\ndata: two\n\nevent: ping\n\ndata\n\n\n";
        for ending in ["\n", "\r\n", "\r"] {
            let stream = lf.replace('\n', ending);
            let stream = stream.as_bytes();
            assert_eq!(events(&[stream]), expected, "{ending:?} whole");
            for at in 0..=stream.len() {
                let (head, tail) = stream.split_at(at);
                assert_eq!(events(&[head, tail]), expected, "{ending:?} split at {at}");
            }
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(events(&bytes), expected, "{ending:?} byte by byte");
        }
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        assert_eq!(events(&[b"data: {}\n"]), owned(&[]));
        assert_eq!(events(&[b"data: {}"]), owned(&[]));
    }

    #[test]
    fn a_line_over_the_cap_is_skipped_and_its_event_loses_its_data() {
        let long = format!(
            "event: big\ndata: {}\n\ndata: after\n\n",
            "x".repeat(LINE_CAP)
        );
        let long = long.as_bytes();
        let expected = owned(&[("big", None), ("", Some("after"))]);
        assert_eq!(events(&[long]), expected);
        let pieces: Vec<&[u8]> = long.chunks(1000).collect();
        assert_eq!(events(&pieces), expected);

        // Exactly at the cap is kept.
        let fits = format!("data:{}\n\n", "y".repeat(LINE_CAP - 5));
        assert_eq!(
            events(&[fits.as_bytes()]),
            owned(&[("", Some(&"y".repeat(LINE_CAP - 5)))])
        );
        let long_name = format!("event: {}\ndata: 1\n\n", "n".repeat(NAME_CAP + 1));
        assert_eq!(events(&[long_name.as_bytes()]), owned(&[("", Some("1"))]));
    }
}
