//! The plugin config's JSON Schema, made from the very types [`Config::from_json`] reads (so a field
//! added, renamed or retyped there changes the schema), with the refusals of the config check that a
//! JSON Schema cannot state listed in its description. `triage schema` prints it; the checked-in
//! `plugin/core/schema/plugin-config.schema.json` is it, and in this crate's tests every config
//! `from_json` reads is also checked against it (see [`agrees_with_the_schema`]).

use serde_json::Value;

use super::RawConfig;
#[cfg(test)]
use super::{Config, ConfigError};

/// What the schema does not say, in its description: what `from_json` refuses beyond field names,
/// types, required fields, tier names, score bounds, enumerations and minimum sizes.
const DESCRIPTION: &str = "The triage plugin config (the Wasm filter's configuration string, as \
JSON). This schema is made from the config types the filter reads, so a config it refuses is one \
the filter refuses: an unknown field, a wrong type, a missing required field, a tier name outside \
[a-z0-9_-]+, a max_score outside [0, 1], an unknown mode or over_max_body, an empty tier list. \
The filter's check (`triage validate CONFIG`, or the filter's log: `triage config refused: <field>: \
<why>`) refuses more than a JSON Schema can state, among others: tier names that repeat; max_score \
not strictly increasing, given on the last tier, or given on some tiers but not all (and without \
it, a model calibrated for other tiers); default_tier, a rule's tier or an override naming no tier; \
a rule without any condition, with an invalid last_user_regex, with a duplicate name or one that is \
not visible ASCII, or keying on caller or tenant without identity.caller or identity.tenant; header \
names that are not valid HTTP header names, pseudo-headers, or headers triage owns; empty strings \
(models, clusters, route_models entries); an upstream that is not http(s)://host[:port]; \
limits.max_body_bytes, max_scan_bytes or envoy_buffer_limit_bytes of 0, and an \
envoy_buffer_limit_bytes below max_body_bytes plus the most the filter can add to a body; \
canary_percent missing for mode canary or outside [0, 100]; an identity source with both or \
neither of metadata and header, or a metadata path empty or deeper than 8; override without \
identity.caller, or with the retired allow list; escalation values out of their ranges; an embedded \
model whose format, features, weights, thresholds or checksum do not check out; a number too large \
for its field, or a whole number written with a fraction or an exponent (JSON Schema counts 1e3 as \
an integer); and a key given twice. An empty or all-whitespace configuration means the defaults.";

/// The plugin config's JSON Schema (draft 2020-12).
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(RawConfig).to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert("title".into(), Value::from("triage plugin config"));
        object.insert("description".into(), Value::from(DESCRIPTION));
    }
    schema
}

/// In this crate's tests, every config `from_json` reads is also checked against the schema: one
/// it accepts must be valid, and one it refuses for its structure (an unknown field, a wrong type, a
/// missing field: a refusal of the deserializer, before the config check) must be invalid. Text that
/// is not JSON has no schema to agree with, and a key given twice is invisible to a JSON Schema.
#[cfg(test)]
pub(super) fn agrees_with_the_schema(
    json: &[u8],
    outcome: &Result<Config, ConfigError>,
    structural: bool,
) {
    use std::sync::OnceLock;
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let Ok(value) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let validator = VALIDATOR.get_or_init(|| {
        jsonschema::validator_for(&json_schema()).unwrap_or_else(|error| panic!("{error}"))
    });
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect();
    let text = String::from_utf8_lossy(json);
    match outcome {
        Ok(_) => assert!(
            errors.is_empty(),
            "accepted by the config check, refused by the schema: {errors:?}\n{text}"
        ),
        Err(error) if structural && !error.to_string().contains("duplicate field") => assert!(
            !errors.is_empty(),
            "refused by the config check ({error}), valid by the schema:\n{text}"
        ),
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests;
