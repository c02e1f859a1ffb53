//! The usage reader on a response body, JSON or SSE, of any format: fed whole or split anywhere, it
//! reads the same usage.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_core::UsageReader;
use triage_fuzz::{chunks, format};

fuzz_target!(|data: &[u8]| {
    let [control, seed, body @ ..] = data else {
        return;
    };
    let (format, event_stream) = (format(*control), control & 0x80 != 0);
    let mut whole = UsageReader::new(format, event_stream);
    whole.feed(body);
    let mut split = UsageReader::new(format, event_stream);
    for chunk in chunks(body, *seed) {
        split.feed(chunk);
    }
    assert_eq!(whole.usage(), split.usage());
});
