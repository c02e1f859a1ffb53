//! `triage report`'s log reader on any bytes: a line is a record, a skipped line, or an error naming
//! its line; records never outnumber lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_learn::log::parse_log;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|byte| *byte == b'\n').count();
    match parse_log(data, std::path::Path::new("fuzz.log")) {
        Ok(log) => assert!(log.records.len() + log.skipped_lines <= lines),
        Err(error) => assert!(error.line <= lines, "{error}"),
    }
});
