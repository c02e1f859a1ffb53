//! `triage report`'s log reader on any bytes: a line is a record, a skipped line, or an error naming
//! its line; records never outnumber lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_core::DecisionRecord;
use triage_learn::log::Records;

fuzz_target!(|data: &[u8]| {
    let lines = data.split(|byte| *byte == b'\n').count();
    let mut log = Records::<_, DecisionRecord>::new(data, std::path::Path::new("fuzz.log"));
    let mut records = 0;
    for record in &mut log {
        match record {
            Ok(_) => records += 1,
            Err(error) => {
                assert!(error.line <= lines, "{error}");
                return;
            }
        }
    }
    assert!(records + log.skipped_lines() <= lines);
});
