use super::*;
use crate::model::Model;

fn refused(json: &str) -> String {
    match Config::from_json(json.as_bytes()) {
        Ok(_) => panic!("accepted: {json}"),
        Err(error) => error.to_string(),
    }
}

const TIERS: &str =
    r#""tiers":[{"name":"small","model":"s","max_score":0.3},{"name":"big","model":"b"}]"#;

#[test]
fn defaults_from_empty_and_whitespace() {
    for json in ["", "  \n", "{}"] {
        let config = Config::from_json(json.as_bytes()).unwrap();
        assert_eq!(config.route_header(), "x-triage-route");
        assert_eq!(config.default_tier_name(), "mid");
        assert_eq!(config.max_body_bytes(), 8 * 1024 * 1024);
        assert_eq!(config.max_scan_bytes(), 64 * 1024);
        assert_eq!(config.tier_names(), vec!["small", "mid", "frontier"]);
        assert!(config.routes("auto") && !config.routes("gpt-4o"));
        assert!(config.decision_header_names().is_empty());
        assert!(std::ptr::eq(config.model(), Model::shipped()));
        assert_eq!(
            config.thresholds(),
            Model::shipped().thresholds,
            "default tiers take the shipped model's thresholds"
        );
    }
    assert!(
        validate(RawConfig::default()).is_ok(),
        "the shipped defaults must validate"
    );
    let tiers = &Config::default().tiers;
    assert_eq!(
        tiers[0].model_for(ApiFormat::OpenAiChat),
        Some("gpt-4o-mini")
    );
    assert_eq!(
        tiers[0].model_for(ApiFormat::AnthropicMessages),
        Some("claude-haiku-4-5")
    );
    assert_eq!(tiers[2].model_for(ApiFormat::OpenAiResponses), Some("o3"));
}

#[test]
fn the_contract_example_is_accepted() {
    let json = r#"{
      "route_header": "X-Triage-Route",
      "default_tier": "mid",
      "route_models": ["auto"],
      "tiers": [
        {"name": "small", "model": "gpt-4o-mini", "max_score": 0.35,
         "models": {"anthropic_messages": "claude-haiku-4-5"}},
        {"name": "mid", "model": "gpt-4o", "max_score": 0.65,
         "models": {"anthropic_messages": "claude-sonnet-4-5"}},
        {"name": "frontier", "model": "o3", "models": {"anthropic_messages": "claude-opus-4-1"}}
      ],
      "rules": [
        {"name": "legal-team-frontier", "when": {"header": {"name": "X-Team", "value": "legal"}}, "tier": "frontier"},
        {"name": "proofs", "when": {"last_user_regex": "(?i)\\bprove\\b"}, "tier": "frontier"},
        {"name": "legal-2", "when": {"header": {"name": "x-team", "value": "other"}, "path_prefix": "/v1"}, "tier": "small"}
      ],
      "limits": {"max_body_bytes": 1000, "max_scan_bytes": 100},
      "model": MODEL
    }"#;
    let mut model = Model::hand_set(4);
    model.bias = -1.5;
    model.dense.fill(0.0);
    model.dense[5] = 0.8;
    model.sparse[3] = 0.25;
    model.thresholds = vec![0.2, 0.9];
    let json = json.replace("MODEL", &model.to_json());
    let config = Config::from_json(json.as_bytes()).unwrap();
    assert_eq!(config.route_header(), "x-triage-route");
    assert_eq!(config.decision_header_names(), vec!["x-team"]);
    assert_eq!(
        (config.max_body_bytes(), config.max_scan_bytes()),
        (1000, 100)
    );
    assert_eq!(config.model(), &model, "the embedded model, bit for bit");
    assert_eq!(config.model().dense_weight("code_lines"), Some(0.8));
    assert_eq!(
        config.model().dense_weight("tokens"),
        Some(0.0),
        "the embedded model replaces the shipped one entirely"
    );
    assert_eq!(
        config.thresholds(),
        vec![0.35, 0.65],
        "the config's max_score wins over the model's thresholds"
    );
    assert_eq!(config.rules[1].tier, 2);
}

#[test]
fn custom_tiers_without_mid_fail_open_to_the_dearest() {
    let config = Config::from_json(format!("{{{TIERS}}}").as_bytes()).unwrap();
    assert_eq!(config.default_tier_name(), "big");
    let explicit =
        Config::from_json(format!(r#"{{{TIERS},"default_tier":"small"}}"#).as_bytes()).unwrap();
    assert_eq!(explicit.default_tier_name(), "small");
}

/// Every validation rule: (config, the field path and words the error must carry).
#[test]
fn refusals_name_the_field() {
    let cases: Vec<(String, &str)> = vec![
        (r#"{"colour":1}"#.into(), "colour: unknown field"),
        (r#"{"route_header":5}"#.into(), "route_header: invalid type"),
        (r#"{"tiers":[{"name":"a","colour":1}]}"#.into(), "tiers[0].colour: unknown field"),
        (r#"{"tiers":[{"name":"a","models":{"gemini":"x"}}]}"#.into(), "tiers[0].models.gemini: unknown field"),
        (r#"{"rules":[{"name":"r","tier":"mid","when":{"hedder":{}}}]}"#.into(), "rules[0].when.hedder: unknown field"),
        (r#"{"limits":{"max_body_bytes":-1}}"#.into(), "limits.max_body_bytes: invalid value"),
        ("{".into(), "(root): EOF"),
        ("{} {}".into(), "(root): trailing characters"),
        (r#"{"route_header":"bad header"}"#.into(), "route_header: \"bad header\" is not a valid header name"),
        (r#"{"route_header":":path"}"#.into(), "route_header: \":path\" is a pseudo-header"),
        (r#"{"route_header":""}"#.into(), "route_header: \"\" is not a valid header name"),
        (r#"{"route_models":["auto",""]}"#.into(), "route_models[1]: must not be empty"),
        (r#"{"tiers":[]}"#.into(), "tiers: must list at least one tier"),
        (r#"{"tiers":[{"name":"Mid"}]}"#.into(), "tiers[0].name: \"Mid\" must match [a-z0-9_-]+"),
        (r#"{"tiers":[{"name":""}]}"#.into(), "tiers[0].name: \"\" must match"),
        (
            r#"{"tiers":[{"name":"a","max_score":0.3},{"name":"a"}]}"#.into(),
            "tiers[1].name: duplicate tier name \"a\"",
        ),
        (
            r#"{"tiers":[{"name":"a"},{"name":"b"}]}"#.into(),
            "model.tiers: the model's thresholds are for tiers [small, mid, frontier], not [a, b]: set tiers[].max_score",
        ),
        (
            r#"{"tiers":[{"name":"a","max_score":0.3},{"name":"b"},{"name":"c"}]}"#.into(),
            "tiers[1].max_score: required on every tier but the last once one sets it",
        ),
        (
            r#"{"tiers":[{"name":"a"},{"name":"b","max_score":0.3},{"name":"c"}]}"#.into(),
            "tiers[0].max_score: required on every tier but the last once one sets it",
        ),
        (r#"{"tiers":[{"name":"a","max_score":0.5}]}"#.into(), "tiers[0].max_score: the last tier"),
        (
            r#"{"tiers":[{"name":"a","max_score":1.5},{"name":"b"}]}"#.into(),
            "tiers[0].max_score: must be within [0, 1], got 1.5",
        ),
        (
            r#"{"tiers":[{"name":"a","max_score":-0.1},{"name":"b"}]}"#.into(),
            "tiers[0].max_score: must be within [0, 1]",
        ),
        (
            r#"{"tiers":[{"name":"a","max_score":0.35},{"name":"b","max_score":0.35},{"name":"c"}]}"#.into(),
            "tiers[1].max_score: must be greater than tiers[0].max_score (0.35)",
        ),
        (r#"{"tiers":[{"name":"a","model":""}]}"#.into(), "tiers[0].model: must not be empty"),
        (
            r#"{"tiers":[{"name":"a","models":{"openai_responses":""}}]}"#.into(),
            "tiers[0].models.openai_responses: must not be empty",
        ),
        (r#"{"default_tier":"huge"}"#.into(), "default_tier: no tier named \"huge\" (tiers: small, mid, frontier)"),
        (format!(r#"{{{TIERS},"default_tier":"mid"}}"#), "default_tier: no tier named \"mid\""),
        (r#"{"rules":[{"name":"r","tier":"huge","when":{"model":"x"}}]}"#.into(), "rules[0].tier: no tier named \"huge\""),
        (r#"{"rules":[{"name":"r","tier":"mid","when":{}}]}"#.into(), "rules[0].when: needs at least one of"),
        (r#"{"rules":[{"name":"","tier":"mid","when":{"model":"x"}}]}"#.into(), "rules[0].name: must be non-empty"),
        (r#"{"rules":[{"name":"a b","tier":"mid","when":{"model":"x"}}]}"#.into(), "rules[0].name: must be non-empty"),
        (
            r#"{"rules":[{"name":"r","tier":"mid","when":{"model":"x"}},{"name":"r","tier":"mid","when":{"model":"y"}}]}"#.into(),
            "rules[1].name: duplicate rule name \"r\"",
        ),
        (
            r#"{"rules":[{"name":"r","tier":"mid","when":{"header":{"name":"x team","value":"v"}}}]}"#.into(),
            "rules[0].when.header.name: \"x team\" is not a valid header name",
        ),
        (
            r#"{"rules":[{"name":"r","tier":"mid","when":{"last_user_regex":"(unclosed"}}]}"#.into(),
            "rules[0].when.last_user_regex: invalid regex",
        ),
        (
            r#"{"rules":[{"name":"r","tier":"mid","when":{"last_user_regex":"\\w{1000}\\w{1000}"}}]}"#.into(),
            "rules[0].when.last_user_regex: invalid regex",
        ),
        (r#"{"limits":{"max_body_bytes":0}}"#.into(), "limits.max_body_bytes: must be at least 1"),
        (r#"{"limits":{"max_scan_bytes":0}}"#.into(), "limits.max_scan_bytes: must be at least 1"),
        (r#"{"limits":{"envoy_buffer_limit_bytes":0}}"#.into(), "limits.envoy_buffer_limit_bytes: must be at least 1"),
        (
            r#"{"limits":{"max_body_bytes":1000,"envoy_buffer_limit_bytes":1027}}"#.into(),
            "limits.envoy_buffer_limit_bytes: must be at least 1028: limits.max_body_bytes (1000) plus the 28 bytes",
        ),
        (
            r#"{"limits":{"envoy_buffer_limit_bytes":8388608}}"#.into(),
            "limits.envoy_buffer_limit_bytes: must be at least 8388636",
        ),
        (r#"{"limits":{"over_max_body":"drop"}}"#.into(), "limits.over_max_body: \"drop\" is not one of"),
        (r#"{"weights":{"bias":1.0}}"#.into(), "weights: unknown field"),
        (r#"{"model":"models/default.json"}"#.into(), "model: must be the model object itself, not a file name"),
        (r#"{"model":{"format":"triage-model"}}"#.into(), "model: missing field `version`"),
        (r#"{"model":{"format":1}}"#.into(), "model.format: invalid type"),
    ];
    for (json, expected) in &cases {
        let message = refused(json);
        assert!(
            message.starts_with(expected),
            "{json}\n  got:      {message}\n  expected: {expected}"
        );
    }
}

#[test]
fn tier_lookup_helpers() {
    let config = Config::default();
    assert!(config.tiers[1].lists("gpt-4o"));
    assert!(config.tiers[1].lists("claude-sonnet-4-5"));
    assert!(!config.tiers[1].lists("o3"));
    let no_model = Config::from_json(br#"{"tiers":[{"name":"only"}]}"#).unwrap();
    assert_eq!(no_model.tiers[0].model_for(ApiFormat::OpenAiChat), None);
}

#[test]
fn config_error_exposes_the_path() {
    let error = Config::from_json(br#"{"limits":{"max_scan_bytes":0}}"#).unwrap_err();
    assert_eq!(error.path(), "limits.max_scan_bytes");
    let boxed: Box<dyn std::error::Error> = Box::new(error);
    assert!(boxed.to_string().contains("at least 1"));
}

#[test]
fn operations_defaults() {
    let config = Config::default();
    assert_eq!(config.mode(), Mode::Enforce);
    assert!(config.override_policy().is_none());
    assert_eq!(config.record_body_bytes(), 0);
    assert!(!config.request_stream_usage());
    assert_eq!(config.price("mid"), None);
    assert_eq!(config.top_tier_name(), "frontier");
}

#[test]
fn operations_are_parsed() {
    let config = Config::from_json(
        br#"{"mode":"canary","canary_percent":12.5,
            "tiers":[{"name":"small","max_score":0.3,"price":{"input_per_mtok":0.15,"output_per_mtok":0.6}},
                     {"name":"big"}],
            "identity":{"caller":{"header":"X-Caller"},
                        "tenant":{"metadata":{"namespace":"envoy.filters.http.jwt_authn","path":["jwt_payload","team"]}}},
            "override":{"header":"X-Pick-Tier","callers":["ops"]},
            "rules":[{"name":"r","when":{"header":{"name":"x-team","value":"a"}},"tier":"big"},
                     {"name":"t","when":{"tenant":"legal"},"tier":"big"}],
            "record":{"request_body_bytes":4096},
            "usage":{"request_stream_usage":true}}"#,
    )
    .unwrap();
    assert_eq!(config.mode(), Mode::Canary(12.5));
    assert_eq!(
        config.price("small"),
        Some(Price {
            input_per_mtok: 0.15,
            output_per_mtok: 0.6
        })
    );
    assert_eq!(config.price("big"), None);
    let policy = config.override_policy().unwrap();
    assert_eq!(policy.header, "x-pick-tier");
    assert_eq!(policy.callers, vec!["ops".to_string()]);
    assert_eq!(
        config.identity_sources().caller,
        Some(IdentitySource::Header("x-caller".into()))
    );
    assert_eq!(
        config.identity_sources().tenant,
        Some(IdentitySource::Metadata {
            namespace: "envoy.filters.http.jwt_authn".into(),
            path: vec!["jwt_payload".into(), "team".into()],
        })
    );
    assert_eq!(
        config.decision_header_names(),
        vec!["x-team", "x-pick-tier", "x-caller"],
        "the filter fetches the rule, override and identity headers"
    );
    assert_eq!(config.record_body_bytes(), 4096);
    assert!(config.request_stream_usage());
    assert_eq!(config.top_tier_name(), "big");
    let shadow = Config::from_json(br#"{"mode":"shadow"}"#).unwrap();
    assert_eq!(shadow.mode(), Mode::Shadow);
}

#[test]
fn operations_errors_name_the_field() {
    let cases = [
        (r#"{"mode":"observe"}"#, "mode: \"observe\" is not one of"),
        (r#"{"mode":"canary"}"#, "canary_percent: required with mode"),
        (
            r#"{"mode":"canary","canary_percent":101}"#,
            "canary_percent: must be within [0, 100]",
        ),
        (r#"{"canary_percent":5}"#, "canary_percent: only with mode"),
        (
            r#"{"tiers":[{"name":"a","price":{"input_per_mtok":-1,"output_per_mtok":1}}]}"#,
            "tiers[0].price.input_per_mtok: must be a price",
        ),
        (
            r#"{"tiers":[{"name":"a","price":{"input_per_mtok":1}}]}"#,
            "tiers[0].price: missing field `output_per_mtok`",
        ),
        (
            r#"{"tiers":[{"name":"a","upstream":"api.openai.com"}]}"#,
            "tiers[0].upstream: \"api.openai.com\" has no http:// or https:// scheme",
        ),
        (
            r#"{"override":{"allow":[{"name":"x-caller","value":"ops"}]}}"#,
            "override.allow: is replaced by override.callers: a header any client can send",
        ),
        (
            r#"{"override":{"callers":[]}}"#,
            "override.callers: must list at least one verified caller",
        ),
        (
            r#"{"override":{"callers":["ops"]}}"#,
            "override.callers: needs identity.caller",
        ),
        (
            r#"{"identity":{"caller":{"header":"x-c"}},"override":{"callers":[""]}}"#,
            "override.callers[0]: must not be empty",
        ),
        (
            r#"{"identity":{"caller":{"header":"x-c"}},
                "override":{"header":"x-triage-route","callers":["ops"]}}"#,
            "override.header: must differ from route_header",
        ),
        (
            r#"{"identity":{"caller":{"header":"bad name"}}}"#,
            "identity.caller.header: \"bad name\" is not a valid header name",
        ),
        (
            r#"{"identity":{"tenant":{"header":"X-Triage-Team"}}}"#,
            "identity.tenant.header: \"x-triage-team\" is a header triage owns",
        ),
        (
            r#"{"identity":{"caller":{}}}"#,
            "identity.caller: needs exactly one of metadata",
        ),
        (
            r#"{"identity":{"caller":{"header":"x-c","metadata":{"namespace":"n","path":["a"]}}}}"#,
            "identity.caller: needs exactly one of metadata",
        ),
        (
            r#"{"identity":{"caller":{"metadata":{"namespace":"","path":["sub"]}}}}"#,
            "identity.caller.metadata.namespace: must be a filter's metadata namespace",
        ),
        (
            r#"{"identity":{"caller":{"metadata":{"namespace":"n","path":[]}}}}"#,
            "identity.caller.metadata.path: must name 1 to 8 keys",
        ),
        (
            r#"{"identity":{"caller":{"metadata":{"namespace":"n","path":["a","b\u0000c"]}}}}"#,
            "identity.caller.metadata.path[1]: must be a non-empty key",
        ),
        (
            r#"{"rules":[{"name":"r","when":{"tenant":"legal"},"tier":"frontier"}]}"#,
            "rules[0].when.tenant: needs identity.tenant",
        ),
        (
            r#"{"rules":[{"name":"r","when":{"caller":"ops"},"tier":"frontier"}]}"#,
            "rules[0].when.caller: needs identity.caller",
        ),
        (
            r#"{"record":{"bodies":true}}"#,
            "record.bodies: unknown field",
        ),
    ];
    for (json, expected) in cases {
        let error = refused(json);
        assert!(error.starts_with(expected), "{json}\n  gave: {error}");
    }
}

/// The JSON blocks of the README's Configuration section: the defaults written out, then examples.
fn readme_config_blocks() -> Vec<String> {
    let readme = include_str!("../../../../README.md");
    let section = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap();
    section
        .split("```json\n")
        .skip(1)
        .map(|block| block.split("\n```").next().unwrap().to_string())
        .collect()
}

#[test]
fn the_readme_defaults_block_is_the_defaults() {
    let blocks = readme_config_blocks();
    assert!(blocks.len() >= 2, "{blocks:?}");
    let written = Config::from_json(blocks[0].as_bytes()).unwrap();
    let defaults = Config::from_json(b"{}").unwrap();
    assert_eq!(format!("{written:?}"), format!("{defaults:?}"));
    // The example blocks are configs the filter accepts.
    for block in &blocks[1..] {
        if let Err(error) = Config::from_json(block.as_bytes()) {
            panic!("README example refused: {error}\n{block}");
        }
    }
}

#[test]
fn the_envoy_limit_leaves_room_for_the_longest_rewrite() {
    let default = Config::default();
    assert_eq!(default.over_max_body(), OverMaxBody::DefaultTier);
    assert_eq!(
        default.envoy_buffer_limit_bytes(),
        default.max_body_bytes() + crate::upstream::max_growth(&default),
        "without a stated limit, the least the config needs"
    );
    let exact = Config::from_json(
        br#"{"limits":{"max_body_bytes":1000,"envoy_buffer_limit_bytes":1028,"over_max_body":"reject"}}"#,
    )
    .unwrap();
    assert_eq!(exact.envoy_buffer_limit_bytes(), 1028);
    assert_eq!(exact.over_max_body(), OverMaxBody::Reject);
    // A longer model needs more room: the same limits are refused.
    let longer = r#"{"limits":{"max_body_bytes":1000,"envoy_buffer_limit_bytes":1028},
        "tiers":[{"name":"small","model":"gpt-4o-mini","max_score":0.3},
                 {"name":"big","model":"a-much-longer-model-name"}]}"#;
    assert!(refused(longer).starts_with("limits.envoy_buffer_limit_bytes: must be at least 1035"));
}
