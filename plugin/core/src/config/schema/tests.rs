use super::*;

const CHECKED_IN: &str = include_str!("../../../schema/plugin-config.schema.json");

fn schema_errors(json: &str) -> Vec<String> {
    let validator = jsonschema::validator_for(&json_schema()).unwrap();
    let value: Value = serde_json::from_str(json).unwrap();
    validator
        .iter_errors(&value)
        .map(|error| format!("{}: {error}", error.instance_path()))
        .collect()
}

#[test]
fn the_checked_in_schema_is_the_generated_one() {
    let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    assert!(
        CHECKED_IN == generated,
        "plugin/core/schema/plugin-config.schema.json is stale: \
         run `triage schema > plugin/core/schema/plugin-config.schema.json`"
    );
}

#[test]
fn the_shipped_and_example_configs_are_accepted_and_valid() {
    for (name, json) in [
        (
            "envoy/plugin-config.json",
            include_str!("../../../../../envoy/plugin-config.json"),
        ),
        (
            "examples/tiers-of-your-own.json",
            include_str!("../../../../../examples/tiers-of-your-own.json"),
        ),
    ] {
        Config::from_json(json.as_bytes()).unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(schema_errors(json), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn refusals_of_the_configs_structure_are_invalid_by_the_schema_too() {
    for (json, field) in [
        (r#"{"route_headr": "x-route"}"#, "route_headr"),
        (r#"{"tiers": [{"name": "a", "modle": "m"}]}"#, "tiers[0]"),
        (r#"{"tiers": [{"model": "m"}]}"#, "tiers[0]"),
        (
            r#"{"limits": {"max_body_bytes": "8"}}"#,
            "limits.max_body_bytes",
        ),
        (
            r#"{"limits": {"max_scan_bytes": -1}}"#,
            "limits.max_scan_bytes",
        ),
        (r#"{"rules": [{"name": "r", "tier": "mid"}]}"#, "rules[0]"),
        (r#"{"mode": 1}"#, "mode"),
        (
            r#"{"override": {"header": "x-o", "allow": ["a"]}}"#,
            "override",
        ),
        (
            r#"{"escalation": {"checks": {"empty": "yes"}}}"#,
            "escalation.checks.empty",
        ),
        (
            r#"{"identity": {"caller": {"metadata": {"namespace": "n"}}}}"#,
            "identity.caller.metadata",
        ),
        (r#"{"model": "models/default.json"}"#, "model"),
        (r#"[]"#, "(root)"),
    ] {
        let error = Config::from_json(json.as_bytes()).unwrap_err();
        assert!(error.path().starts_with(field), "{json}: {error}");
        assert!(
            !schema_errors(json).is_empty(),
            "valid by the schema: {json}"
        );
    }
}

#[test]
fn the_values_the_schema_states_are_refused_by_both() {
    for json in [
        r#"{"mode": "loud"}"#,
        r#"{"limits": {"over_max_body": "drop"}}"#,
        r#"{"tiers": []}"#,
        r#"{"tiers": [{"name": "Big"}]}"#,
        r#"{"tiers": [{"name": "a", "max_score": 1.5}, {"name": "b"}]}"#,
    ] {
        assert!(Config::from_json(json.as_bytes()).is_err(), "{json}");
        assert!(
            !schema_errors(json).is_empty(),
            "valid by the schema: {json}"
        );
    }
}

/// The description lists what the schema cannot state; each of these is one of them: valid by
/// the schema, refused by the config check.
#[test]
fn refusals_the_schema_cannot_state_are_listed_in_its_description() {
    let description = json_schema()["description"].as_str().unwrap().to_string();
    for (json, listed) in [
        (
            r#"{"tiers": [{"name": "a", "max_score": 0.5}, {"name": "b", "max_score": 0.4}, {"name": "c"}]}"#,
            "max_score not strictly increasing",
        ),
        (r#"{"default_tier": "huge"}"#, "default_tier"),
        (
            r#"{"tiers": [{"name": "a"}, {"name": "a"}]}"#,
            "tier names that repeat",
        ),
        (
            r#"{"rules": [{"name": "r", "when": {"last_user_regex": "("}, "tier": "mid"}]}"#,
            "invalid last_user_regex",
        ),
        (
            r#"{"route_header": "x triage"}"#,
            "not valid HTTP header names",
        ),
        (r#"{"limits": {"max_body_bytes": 0}}"#, "max_body_bytes"),
        (r#"{"mode": "canary"}"#, "canary_percent missing"),
    ] {
        assert!(Config::from_json(json.as_bytes()).is_err(), "{json}");
        assert!(schema_errors(json).is_empty(), "{json}");
        assert!(description.contains(listed), "not listed: {listed}");
    }
}
