//! A request body in any of the three formats, decided with the shipped config: the decision always
//! names a configured tier, deciding again gives the same decision, and the body the tier gets is
//! valid JSON whenever the client's was, differing from it only in the model's value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_core::{decide, rewrite_model, RequestHead};
use triage_fuzz::{format, SHIPPED_CONFIG};

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
    if let (Some(model), Ok(client)) = (
        &decision.model,
        serde_json::from_slice::<serde_json::Value>(body),
    ) {
        let Ok(rewritten) = rewrite_model(body, model) else {
            return;
        };
        let mut sent: serde_json::Value = serde_json::from_slice(&rewritten)
            .unwrap_or_else(|error| panic!("rewritten body is not JSON: {error}"));
        assert_eq!(sent["model"], serde_json::Value::from(model.as_str()));
        let mut client = client;
        if let (Some(sent), Some(client)) = (sent.as_object_mut(), client.as_object_mut()) {
            sent.remove("model");
            client.remove("model");
        }
        assert_eq!(sent, client, "the rewrite changed more than the model");
    }
});
