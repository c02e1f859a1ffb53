//! A request body in any of the three formats, decided with the shipped config: the decision always
//! names a configured tier, deciding again gives the same decision, and the body the tier gets is
//! valid JSON whenever the client's was, differing from it only in the model's value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_core::{decide, rewrite_model, RequestHead};
use triage_fuzz::{assert_only_model_changed, format, SHIPPED_CONFIG};

fuzz_target!(|data: &[u8]| {
    let Some((&control, body)) = data.split_first() else {
        return;
    };
    let config = &*SHIPPED_CONFIG;
    let format = format(control);
    let head = RequestHead {
        format,
        path: format.path(),
        headers: &[],
        identity: triage_core::Identity::ANONYMOUS,
    };
    let decision = decide(config, &head, body);
    assert!(
        config.tier_names().contains(&decision.tier.as_str()),
        "{decision:?}"
    );
    assert_eq!(decide(config, &head, body), decision);
    if let Some(score) = decision.score {
        assert!((0.0..=1.0).contains(&score), "{decision:?}");
    }
    if let Some(model) = &decision.model {
        let Ok(rewritten) = rewrite_model(body, model) else {
            return;
        };
        if let Some(sent) = assert_only_model_changed(body, &rewritten, &[]) {
            assert_eq!(sent, serde_json::Value::from(model.as_str()));
        }
    }
});
