//! A model file on any bytes: refused, or a model that validates, writes itself back, and reads back
//! equal. The fuzzer starts from the shipped model file, so mutations reach past the checksum only
//! where it is recomputed; the rest tests that every damaged file is refused cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_core::Model;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = Model::from_json(data) {
        assert_eq!(model.validate(), Ok(()));
        let written = model.to_json();
        let again = Model::from_json(written.as_bytes())
            .unwrap_or_else(|error| panic!("a model's own file is refused: {error}"));
        assert!(again == model, "the model changed through its own file");
    }
});
