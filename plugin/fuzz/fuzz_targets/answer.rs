//! The answer checks on any bytes: a whole answer body judged directly, and the same bytes watched as
//! a stream. Held to its end (nothing released early), the stream watcher gives the same verdict
//! whether the stream arrives whole or split anywhere: its event parser does not depend on where
//! Envoy cuts the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_core::{check_answer, Expectations, StreamVerdict, StreamWatch};
use triage_fuzz::{chunks, format, ALL_CHECKS};

/// The verdict of a stream fed `parts` in order and then ended, held to the end.
fn watch<'a>(
    format: triage_core::ApiFormat,
    expect: Expectations,
    parts: impl IntoIterator<Item = &'a [u8]>,
) -> StreamVerdict {
    let mut watch = StreamWatch::new(format, usize::MAX, expect, ALL_CHECKS.clone());
    for part in parts {
        let verdict = watch.feed(part);
        if verdict != StreamVerdict::Hold {
            return verdict;
        }
    }
    watch.finish()
}

fuzz_target!(|data: &[u8]| {
    let [control, seed, body @ ..] = data else {
        return;
    };
    let format = format(*control);
    let expect = Expectations {
        json_output: control & 0x10 != 0,
        tools: control & 0x20 != 0,
        output_limit: (control & 0x40 != 0).then_some(8),
    };
    let _ = check_answer(format, body, &expect, &ALL_CHECKS);
    let whole = watch(format, expect, [body]);
    let split = watch(format, expect, chunks(body, *seed));
    assert_eq!(whole, split);
});
