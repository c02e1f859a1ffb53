//! Plugin configurations for the tests, derived from the shipped one.

use serde_json::{json, Value};

use crate::paths::repo_root;

/// Request header whose value forces the tier of the same name (a rule in [`forcing`]), so routing
/// tests do not depend on score tuning.
pub const FORCE_TIER_HEADER: &str = "x-e2e-force-tier";

/// `envoy/plugin-config.json`.
pub fn shipped() -> Value {
    let path = repo_root().join("envoy/plugin-config.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The shipped config with one rule per tier, first in order: `x-e2e-force-tier: <tier>` forces it.
pub fn forcing() -> Value {
    with_forcing_rules(shipped())
}

/// `examples/tiers-of-your-own.json`: four tiers named after their models, as an operator writes.
pub fn tiers_of_your_own() -> Value {
    let path = repo_root().join("examples/tiers-of-your-own.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// `config` with one rule per tier, first in order: `x-e2e-force-tier: <tier>` forces it.
pub fn with_forcing_rules(mut config: Value) -> Value {
    let tiers: Vec<String> = config["tiers"]
        .as_array()
        .expect("shipped config has tiers")
        .iter()
        .map(|tier| tier["name"].as_str().expect("tier name").to_owned())
        .collect();
    let mut rules: Vec<Value> = tiers
        .iter()
        .map(|tier| {
            json!({
                "name": format!("force-{tier}"),
                "when": {"header": {"name": FORCE_TIER_HEADER, "value": tier}},
                "tier": tier,
            })
        })
        .collect();
    rules.extend(config["rules"].as_array().cloned().unwrap_or_default());
    config["rules"] = Value::Array(rules);
    config
}

/// [`forcing`] with `limits.max_body_bytes` set and a larger body streamed through to the default
/// tier (`over_max_body: default_tier`) instead of the shipped 413.
pub fn forcing_with_max_body(max_body_bytes: usize) -> Value {
    let mut config = forcing();
    config["limits"]["max_body_bytes"] = json!(max_body_bytes);
    config["limits"]["over_max_body"] = json!("default_tier");
    config
}

/// The model the shipped config writes for `tier` into a body of `format`.
pub fn shipped_tier_model(tier: &str, format: triage_core::ApiFormat) -> String {
    let config = triage_core::Config::from_json(forcing().to_string().as_bytes())
        .expect("the shipped config is valid");
    let index = config.tier_index(tier).expect("a shipped tier");
    config
        .tier_model(index, format)
        .expect("every shipped tier names a model")
        .to_owned()
}

/// [`forcing`] buffering up to 16 MiB and stating no Envoy limit (it would refuse a stated one
/// as low as the shipped): run with the shipped config as the gateway's (`with_gateway_config`),
/// Envoy's own 8 MiB + 1 KiB limit is what a larger body meets.
pub fn buffering_past_envoys_limit() -> Value {
    let mut config = forcing_with_max_body(16 * 1024 * 1024);
    config["limits"]
        .as_object_mut()
        .expect("limits")
        .remove("envoy_buffer_limit_bytes");
    config
}

/// A number from the shipped config's `limits`.
pub fn shipped_limit(name: &str) -> usize {
    shipped()["limits"][name]
        .as_u64()
        .and_then(|value| usize::try_from(value).ok())
        .unwrap_or_else(|| panic!("the shipped config has no limits.{name}"))
}
