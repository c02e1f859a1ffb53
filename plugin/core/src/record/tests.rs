use super::*;
use crate::decision::FailOpen;
use crate::format::ApiFormat;
use crate::policy::{decide, RequestHead};

const PRICED: &str = r#"{
  "tiers": [
    {"name": "small", "model": "s", "max_score": 0.3, "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
    {"name": "mid", "model": "m", "max_score": 0.6, "price": {"input_per_mtok": 2.5, "output_per_mtok": 10}},
    {"name": "frontier", "model": "f", "price": {"input_per_mtok": 15, "output_per_mtok": 60}}
  ],
  "record": {"request_body_bytes": 200}
}"#;

fn config() -> Config {
    Config::from_json(PRICED.as_bytes()).unwrap()
}

fn start(mode: Applied, body: Option<&[u8]>) -> RecordStart<'_> {
    RecordStart {
        decision_id: Some("6f1c2a4e-0b7d-4f3e-9a51-2c8d7e6b5a40"),
        request_id: "req-1",
        start_ms: 1_700_000_000_000,
        identity: crate::Identity {
            caller: Some("ops-console"),
            tenant: None,
        },
        api: "openai_chat",
        mode,
        decision_us: 42,
        body,
    }
}

const BODY: &[u8] =
    br#"{"model":"auto","messages":[{"role":"user","content":"Classify: great!"}]}"#;

fn decided(config: &Config) -> Decision {
    let head = RequestHead {
        format: ApiFormat::OpenAiChat,
        path: "/v1/chat/completions",
        headers: &[],
        identity: crate::Identity::ANONYMOUS,
    };
    decide(config, &head, BODY)
}

const USAGE: Usage = Usage {
    prompt_tokens: 1_000,
    completion_tokens: 100,
};

#[test]
fn enforced_record_prices_the_serving_and_top_tier() {
    let config = config();
    let decision = decided(&config);
    let mut record = DecisionRecord::new(&config, &decision, start(Applied::Enforce, Some(BODY)));
    record.settle(&config, Some(200), Some(USAGE));
    assert_eq!(record.tier, decision.tier);
    assert_eq!(record.decided_tier, decision.tier);
    assert_eq!(record.model, decision.model);
    let expected = |tier: &str| {
        let price = config.price(tier).unwrap();
        1_000.0 * price.input_per_mtok + 100.0 * price.output_per_mtok
    };
    assert_eq!(record.cost_micro_usd, Some(expected(&decision.tier)));
    assert_eq!(record.top_tier_cost_micro_usd, Some(expected("frontier")));
    assert_eq!(record.top_tier_cost_micro_usd, Some(21_000.0));
    assert_eq!(record.decided_cost_micro_usd, record.cost_micro_usd);
    assert_eq!(
        record.request.as_ref().map(|raw| raw.get().as_bytes()),
        Some(BODY)
    );
}

#[test]
fn shadowed_record_is_served_by_the_default_tier_and_prices_the_decision() {
    let config = config();
    let mut decision = decided(&config);
    decision.tier = "small".into();
    let mut record = DecisionRecord::new(&config, &decision, start(Applied::Shadow, None));
    record.settle(&config, Some(200), Some(USAGE));
    assert_eq!(record.mode, Applied::Shadow);
    assert_eq!(record.tier, "mid");
    assert_eq!(record.decided_tier, "small");
    assert_eq!(record.model, None, "a shadowed body is never rewritten");
    assert_eq!(record.cost_micro_usd, Some(3_500.0));
    assert_eq!(record.decided_cost_micro_usd, Some(210.0));
    assert!(record.request.is_none());
}

#[test]
fn unknown_usage_or_price_stays_null_not_zero() {
    let config = config();
    let decision = decided(&config);
    let mut record = DecisionRecord::new(&config, &decision, start(Applied::Enforce, None));
    record.settle(&config, Some(200), None);
    let json: serde_json::Value = serde_json::from_str(&record.to_json()).unwrap();
    for field in ["usage", "cost_micro_usd", "top_tier_cost_micro_usd"] {
        assert!(json[field].is_null(), "{field} must be null: {json}");
    }
    let unpriced = Config::default();
    let mut record = DecisionRecord::new(&unpriced, &decision, start(Applied::Enforce, None));
    record.settle(&unpriced, Some(200), Some(USAGE));
    assert_eq!(record.usage, Some(USAGE));
    assert_eq!(record.cost_micro_usd, None);
}

#[test]
fn body_is_kept_only_when_it_fits_and_is_json() {
    let config = config();
    let decision = decided(&config);
    let long = format!(r#"{{"model":"auto","pad":"{}"}}"#, "x".repeat(300));
    for body in [long.as_bytes(), b"{not json".as_slice()] {
        let record = DecisionRecord::new(&config, &decision, start(Applied::Enforce, Some(body)));
        assert!(record.request.is_none());
    }
    let off = Config::default();
    let record = DecisionRecord::new(&off, &decision, start(Applied::Enforce, Some(BODY)));
    assert!(record.request.is_none(), "body logging is off by default");
}

#[test]
fn round_trips_with_every_field_present() {
    let config = config();
    let mut decision = decided(&config);
    decision.cause = Cause::Override {
        from: "small".into(),
    };
    decision.tier = "frontier".into();
    let mut record = DecisionRecord::new(&config, &decision, start(Applied::Enforce, Some(BODY)));
    record.escalations.push(Escalation {
        from: "small".into(),
        to: "mid".into(),
        cause: "status_5xx".into(),
        status: Some(200),
        abandoned_usage: None,
    });
    record.settle(&config, Some(200), Some(USAGE));
    let line = record.to_json();
    assert!(!line.contains('\n'));
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(json.as_object().unwrap().len(), 28, "fixed schema: {line}");
    assert_eq!(json["v"], 3);
    assert_eq!(json["decision_id"], "6f1c2a4e-0b7d-4f3e-9a51-2c8d7e6b5a40");
    assert_eq!(json["request_id"], "req-1");
    assert_eq!(json["override"]["from"], "small");
    assert_eq!(json["override"]["to"], "frontier");
    assert_eq!(json["cause"], "override");
    let back: DecisionRecord = serde_json::from_str(&line).unwrap();
    assert_eq!(back.to_json(), line);
}

#[test]
fn fail_open_and_rule_causes_are_named() {
    let config = config();
    let decision = crate::policy::fail_open(&config, FailOpen::BodyTooLarge);
    let record = DecisionRecord::new(&config, &decision, start(Applied::Enforce, None));
    assert_eq!(record.cause, "fail_open");
    assert_eq!(record.fail_open.as_deref(), Some("body_too_large"));
    assert_eq!(record.rule, None);
}

#[test]
fn a_dropped_answer_is_billed_to_its_tier() {
    let config = config();
    let decision = decided(&config);
    let mut record = DecisionRecord::new(&config, &decision, start(Applied::Enforce, None));
    record.tier = "mid".into();
    record.escalations.push(Escalation {
        from: "small".into(),
        to: "mid".into(),
        cause: "truncated".into(),
        status: Some(200),
        abandoned_usage: Some(Usage {
            prompt_tokens: 100,
            completion_tokens: 10,
        }),
    });
    record.settle(&config, Some(200), Some(USAGE));
    // mid: 1000 * 2.5 + 100 * 10 = 3500; the dropped small answer: 100 * 0.15 + 10 * 0.6 = 21.
    assert_eq!(record.cost_micro_usd, Some(3_521.0));
    assert_eq!(record.top_tier_cost_micro_usd, Some(21_000.0));
}

#[test]
fn a_pretty_body_is_kept_on_one_line() {
    let config = config();
    let decision = decided(&config);
    let pretty = b"{\n  \"model\": \"auto\",\r\n  \"messages\": [{\"role\": \"user\", \"content\": \"a\\nb\"}]\n}";
    let record = DecisionRecord::new(&config, &decision, start(Applied::Enforce, Some(pretty)));
    let line = record.to_json();
    assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
    let back: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        back["request"]["messages"][0]["content"], "a\nb",
        "escaped breaks inside strings stay"
    );
}

#[test]
fn a_record_without_a_decision_id_says_null() {
    let config = config();
    let decision = decided(&config);
    let mut no_id = start(Applied::Enforce, None);
    no_id.decision_id = None;
    let record = DecisionRecord::new(&config, &decision, no_id);
    let json: serde_json::Value = serde_json::from_str(&record.to_json()).unwrap();
    assert!(json["decision_id"].is_null(), "{json}");
    assert_eq!(json["request_id"], "req-1");
}

#[test]
fn the_verified_identity_is_recorded_and_anonymous_is_null() {
    let config = config();
    let decision = decided(&config);
    let verified = DecisionRecord::new(&config, &decision, start(Applied::Enforce, None));
    let json: serde_json::Value = serde_json::from_str(&verified.to_json()).unwrap();
    assert_eq!(json["caller"], "ops-console");
    assert!(json["tenant"].is_null(), "{json}");
    assert_eq!(json["v"], 3);

    let mut anonymous = start(Applied::Enforce, None);
    anonymous.identity = crate::Identity::ANONYMOUS;
    let record = DecisionRecord::new(&config, &decision, anonymous);
    let json: serde_json::Value = serde_json::from_str(&record.to_json()).unwrap();
    assert!(
        json["caller"].is_null() && json["tenant"].is_null(),
        "{json}"
    );
}

/// A record of a request triage routed to `tier` (enforced) or shadowed (routed to nothing).
fn routed_to(config: &Config, tier: &str, mode: Applied) -> DecisionRecord {
    let mut decision = decided(config);
    decision.tier = tier.into();
    DecisionRecord::new(config, &decision, start(mode, None))
}

fn json_of(record: &DecisionRecord) -> serde_json::Value {
    serde_json::from_str(&record.to_json()).unwrap()
}

#[test]
fn a_request_served_by_another_tiers_cluster_is_billed_at_that_tier() {
    let config = config();
    let mut record = routed_to(&config, "mid", Applied::Enforce);
    record.routed_attempt_served_by(&config, Some("tier_small"));
    record.settle(&config, Some(200), Some(USAGE));
    assert_eq!(record.tier, "small", "the tier whose cluster served it");
    assert_eq!(record.decided_tier, "mid");
    assert_eq!(record.served_cluster.as_deref(), Some("tier_small"));
    // small: 1000 * 0.15 + 100 * 0.6 = 210; mid would have been 3500.
    assert_eq!(record.cost_micro_usd, Some(210.0));
    assert_eq!(record.decided_cost_micro_usd, Some(3_500.0));
    assert_eq!(record.top_tier_cost_micro_usd, Some(21_000.0));
    let json = json_of(&record);
    assert_eq!(
        json["mismatch"],
        serde_json::json!({"routed": "mid", "served_cluster": "tier_small", "served": "small",
                           "cause": "route_table"})
    );
    assert_eq!(json["served_cluster"], "tier_small");
}

#[test]
fn the_routed_tiers_own_cluster_is_no_mismatch() {
    let config = config();
    let mut record = routed_to(&config, "mid", Applied::Enforce);
    record.routed_attempt_served_by(&config, Some("tier_mid"));
    record.settle(&config, Some(200), Some(USAGE));
    assert_eq!(record.tier, "mid");
    assert_eq!(record.served_cluster.as_deref(), Some("tier_mid"));
    assert_eq!(record.mismatch, None);
    assert_eq!(record.cost_micro_usd, Some(3_500.0));
    assert!(json_of(&record)["mismatch"].is_null());
}

#[test]
fn a_cluster_no_tier_names_keeps_the_routed_tier_and_every_cost_unknown() {
    let config = config();
    let mut record = routed_to(&config, "mid", Applied::Enforce);
    record.routed_attempt_served_by(&config, Some("catch_all"));
    record.settle(&config, Some(200), Some(USAGE));
    assert_eq!(record.tier, "mid", "the routed tier: no tier served it");
    assert_eq!(record.serving_tier(), None);
    assert_eq!(
        record.usage,
        Some(USAGE),
        "the tokens are known, their price is not"
    );
    let json = json_of(&record);
    for field in [
        "cost_micro_usd",
        "top_tier_cost_micro_usd",
        "decided_cost_micro_usd",
    ] {
        assert!(json[field].is_null(), "{field} must be null: {json}");
    }
    assert_eq!(
        json["mismatch"],
        serde_json::json!({"routed": "mid", "served_cluster": "catch_all", "served": null,
                           "cause": "unknown_cluster"})
    );
}

#[test]
fn without_a_cluster_from_envoy_the_routed_tier_is_billed() {
    let config = config();
    let mut record = routed_to(&config, "mid", Applied::Enforce);
    record.routed_attempt_served_by(&config, None);
    record.settle(&config, Some(200), Some(USAGE));
    assert_eq!(record.tier, "mid");
    assert_eq!(record.served_cluster, None);
    assert_eq!(record.mismatch, None);
    assert_eq!(record.cost_micro_usd, Some(3_500.0));
    assert!(json_of(&record)["served_cluster"].is_null());
}

#[test]
fn a_shadowed_request_is_compared_with_the_default_tier() {
    let config = config();
    let mut record = routed_to(&config, "small", Applied::Shadow);
    record.routed_attempt_served_by(&config, Some("tier_mid"));
    assert_eq!(
        record.mismatch, None,
        "the default route serves a shadowed request"
    );
    let mut record = routed_to(&config, "small", Applied::Shadow);
    record.routed_attempt_served_by(&config, Some("tier_frontier"));
    record.settle(&config, Some(200), Some(USAGE));
    let mismatch = record.mismatch.clone().unwrap();
    assert_eq!(mismatch.routed, "mid");
    assert_eq!(mismatch.served.as_deref(), Some("frontier"));
    assert_eq!(record.tier, "frontier");
    assert_eq!(record.cost_micro_usd, Some(21_000.0));
    assert_eq!(record.decided_cost_micro_usd, Some(210.0));
}

#[test]
fn an_escalated_answer_is_its_calls_and_the_dropped_one_the_route_tables() {
    let config = config();
    let mut record = routed_to(&config, "mid", Applied::Enforce);
    record.routed_attempt_served_by(&config, Some("tier_small"));
    record.escalations.push(Escalation {
        from: "mid".into(),
        to: "frontier".into(),
        cause: "truncated".into(),
        status: Some(200),
        abandoned_usage: Some(Usage {
            prompt_tokens: 100,
            completion_tokens: 10,
        }),
    });
    record.answered_by_escalation("frontier", "tier_frontier", Some("f".into()));
    record.settle(&config, Some(200), Some(USAGE));
    assert_eq!(record.tier, "frontier");
    assert_eq!(record.served_cluster.as_deref(), Some("tier_frontier"));
    assert_eq!(record.model.as_deref(), Some("f"));
    assert_eq!(
        record.mismatch.as_ref().map(|m| m.served_cluster.as_str()),
        Some("tier_small"),
        "the routed attempt's mismatch stays recorded"
    );
    let dropped: Vec<DroppedAnswer> = record.dropped_answers(&config).collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(
        dropped[0].tier,
        Some("small"),
        "small answered the routed attempt"
    );
    // frontier: 1000 * 15 + 100 * 60 = 21000; the dropped small answer: 100 * 0.15 + 10 * 0.6 = 21.
    assert_eq!(record.cost_micro_usd, Some(21_021.0));

    // Dropped by a cluster no tier names: that answer's price, and so the cost, is unknown.
    let mut unknown = routed_to(&config, "mid", Applied::Enforce);
    unknown.routed_attempt_served_by(&config, Some("catch_all"));
    unknown.escalations = record.escalations.clone();
    unknown.answered_by_escalation("frontier", "tier_frontier", None);
    unknown.settle(&config, Some(200), Some(USAGE));
    assert_eq!(unknown.serving_tier(), Some("frontier"));
    assert_eq!(unknown.cost_micro_usd, None);
    assert_eq!(unknown.top_tier_cost_micro_usd, Some(21_000.0));
}

#[test]
fn tiers_sharing_a_cluster_read_it_as_the_routed_one() {
    let shared = Config::from_json(
        br#"{"tiers": [
            {"name": "small", "model": "s", "max_score": 0.3, "cluster": "pool"},
            {"name": "mid", "model": "m", "max_score": 0.6, "cluster": "pool"},
            {"name": "frontier", "model": "f"}
        ]}"#,
    )
    .unwrap();
    assert_eq!(shared.tier_of_cluster("pool", "mid"), Some("mid"));
    assert_eq!(shared.tier_of_cluster("pool", "frontier"), Some("small"));
    assert_eq!(
        shared.tier_of_cluster("tier_frontier", "mid"),
        Some("frontier")
    );
    assert_eq!(shared.tier_of_cluster("elsewhere", "mid"), None);
    let mut record = routed_to(&shared, "mid", Applied::Enforce);
    record.routed_attempt_served_by(&shared, Some("pool"));
    assert_eq!(record.mismatch, None);
}
