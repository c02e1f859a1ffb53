//! The model rewrite on any bytes. It changes only the model's value: the result depends on the body
//! only outside that value (rewriting a body whose model was first set to something else gives the
//! same bytes), and rewriting is idempotent. On a JSON body it gives JSON equal to the body but for
//! `model`, which reads back as written.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_core::rewrite_model;
use triage_fuzz::assert_only_model_changed;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    // The model name from the front, the body after it (model names are config values: any text).
    let cut = usize::from(split).min(rest.len());
    let (name, body) = rest.split_at(cut);
    let model = String::from_utf8_lossy(name);
    let Ok(rewritten) = rewrite_model(body, &model) else {
        return;
    };
    assert_eq!(rewrite_model(&rewritten, &model).as_ref(), Ok(&rewritten));
    let other = rewrite_model(body, "some \"other\" model\u{e9}").unwrap_or_else(|error| {
        panic!("the body was rewritten once and refused with another model: {error}")
    });
    assert_eq!(rewrite_model(&other, &model).as_ref(), Ok(&rewritten));

    if let Some(sent) = assert_only_model_changed(body, &rewritten, &[]) {
        assert_eq!(sent, serde_json::Value::from(model.as_ref()));
    }
});
