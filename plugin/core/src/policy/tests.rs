use super::*;
use crate::identity::Identity;
use crate::model::Model;

const CHAT: &str = "/v1/chat/completions";

fn head(format: ApiFormat) -> RequestHead<'static> {
    RequestHead {
        format,
        path: CHAT,
        headers: &[],
        identity: crate::Identity::ANONYMOUS,
    }
}

fn chat_body(model: Option<&str>, user: &str) -> Vec<u8> {
    let mut body = serde_json::json!({"messages": [{"role": "user", "content": user}]});
    if let Some(model) = model {
        body["model"] = model.into();
    }
    body.to_string().into_bytes()
}

fn config(json: &str) -> Config {
    Config::from_json(json.as_bytes()).unwrap()
}

/// A config embedding the hand-set weights (thresholds 0.35 / 0.65), whatever model is shipped: these
/// tests are about the policy, not about what the trained model learned.
fn hand_set_config(tiers: &str) -> Config {
    let model = Model::hand_set(1).to_json();
    config(&format!(r#"{{{tiers}"model":{model}}}"#))
}

/// A model whose probability is `sigmoid(bias)` for any request.
fn constant_model(bias: f64) -> String {
    let mut model = Model::hand_set(1);
    model.bias = bias;
    model.dense.fill(0.0);
    model.to_json()
}

const RULES: &str = r#"{"rules":[
    {"name":"legal","when":{"header":{"name":"X-Team","value":"legal"}},"tier":"frontier"},
    {"name":"batch","when":{"path_prefix":"/batch"},"tier":"small"},
    {"name":"mini-alias","when":{"model":"cheap"},"tier":"small"},
    {"name":"proofs","when":{"last_user_regex":"(?i)\\bprove\\b"},"tier":"frontier"}],
    "route_models":["auto","cheap"]}"#;

#[test]
fn model_thresholds_pick_tiers() {
    let config = hand_set_config("");
    let cases = [
        ("Translate 'good morning' to French.", "small"),
        ("Classify the sentiment of this review as positive or negative: great phone!", "small"),
        ("Extract the dates from: we met on 3 May and 9 June.", "small"),
        ("Is Paris the capital of France? Answer yes or no.", "small"),
        ("Fix the grammar: he go to school yesterday.", "small"),
        ("Explain how photosynthesis works.", "mid"),
        ("Write a short blog post about remote work.", "mid"),
        (
            "Prove that there are infinitely many primes, step by step, and derive a bound on the gap between \
             consecutive primes. Analyze where the argument would fail for $$\\sum_{p} \\frac{1}{p}$$.",
            "frontier",
        ),
        (
            "Design a distributed rate limiter in Rust. Compare token bucket and sliding window, discuss the \
             trade-offs, optimize for latency, and debug this deadlock:\n```rust\nfn main() {\n    let a = m.lock();\n    let b = m.lock();\n}\n```\nYou must handle at least 1M rps and ensure no more than 1% error.",
            "frontier",
        ),
    ];
    for (prompt, tier) in cases {
        let decision = decide(
            &config,
            &head(ApiFormat::OpenAiChat),
            &chat_body(Some("auto"), prompt),
        );
        assert_eq!(decision.cause, Cause::Scored);
        assert_eq!(
            decision.tier, tier,
            "{prompt}: score {:?} {:?}",
            decision.score, decision.reasons
        );
    }
}

#[test]
fn scored_decision_rewrites_the_routable_model_per_format() {
    let config = hand_set_config("");
    let simple = "Translate 'hi' to French.";
    let decision = decide(
        &config,
        &head(ApiFormat::OpenAiChat),
        &chat_body(Some("auto"), simple),
    );
    assert_eq!(decision.tier, "small");
    assert_eq!(decision.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(decision.requested_model.as_deref(), Some("auto"));
    assert!(decision.score.is_some_and(|score| score <= 0.35));
    assert!(decision.score_header().is_some());
    assert!(decision.reason_header().starts_with("scored"));

    let anthropic = br#"{"model":"auto","max_tokens":10,"messages":[{"role":"user","content":"Translate 'hi' to French."}]}"#;
    let decision = decide(&config, &head(ApiFormat::AnthropicMessages), anthropic);
    assert_eq!(decision.model.as_deref(), Some("claude-haiku-4-5"));

    let no_model = decide(
        &config,
        &head(ApiFormat::OpenAiChat),
        &chat_body(None, simple),
    );
    assert_eq!(
        (no_model.model.as_deref(), no_model.requested_model),
        (Some("gpt-4o-mini"), None)
    );

    let same_model = config_with_small_model("auto");
    let decision = decide(
        &same_model,
        &head(ApiFormat::OpenAiChat),
        &chat_body(Some("auto"), simple),
    );
    assert_eq!(decision.tier, "small");
    assert_eq!(
        decision.model, None,
        "no rewrite when the tier's model is what was requested"
    );
}

fn config_with_small_model(model: &str) -> Config {
    hand_set_config(&format!(
        r#""tiers":[{{"name":"small","model":"{model}","max_score":0.35}},{{"name":"mid","max_score":0.65}},{{"name":"frontier","model":"o3"}}],"#
    ))
}

#[test]
fn tier_without_model_leaves_the_body() {
    let config = config_with_small_model("x");
    let decision = decide(
        &config,
        &head(ApiFormat::OpenAiChat),
        &chat_body(Some("auto"), "Explain how photosynthesis works."),
    );
    assert_eq!((decision.tier.as_str(), decision.model), ("mid", None));
}

#[test]
fn thresholds_are_inclusive_and_the_last_tier_takes_the_rest() {
    let body = chat_body(Some("auto"), "anything");
    // sigmoid(bias): -40 -> 0.0, -1 -> 0.27, 0 -> 0.5 (max_score is inclusive), 0.5 -> 0.62.
    let cases = [
        (-40.0, "small"),
        (-1.0, "mid"),
        (0.0, "mid"),
        (0.5, "frontier"),
        (40.0, "frontier"),
    ];
    for (bias, tier) in cases {
        let config = config(&format!(
            r#"{{"tiers":[{{"name":"small","max_score":0.2}},{{"name":"mid","max_score":0.5}},{{"name":"frontier"}}],
                "model":{}}}"#,
            constant_model(bias)
        ));
        let decision = decide(&config, &head(ApiFormat::OpenAiChat), &body);
        assert_eq!(
            decision.tier, tier,
            "bias {bias} score {:?}",
            decision.score
        );
    }
}

#[test]
fn rules_beat_the_score_in_order() {
    let config = config(RULES);
    let legal = vec![("x-team".to_string(), "legal".to_string())];
    let simple = chat_body(Some("auto"), "Translate 'hi' to French.");
    let with_header = RequestHead {
        headers: &legal,
        ..head(ApiFormat::OpenAiChat)
    };
    let decision = decide(&config, &with_header, &simple);
    assert_eq!(decision.cause, Cause::Rule("legal".into()));
    assert_eq!(
        (
            decision.tier.as_str(),
            decision.model.as_deref(),
            decision.score
        ),
        ("frontier", Some("o3"), None)
    );
    assert_eq!(decision.reason_header(), "rule: legal");

    let other_team = vec![("x-team".to_string(), "Legal".to_string())];
    let decision = decide(
        &config,
        &RequestHead {
            headers: &other_team,
            ..head(ApiFormat::OpenAiChat)
        },
        &simple,
    );
    assert_eq!(decision.cause, Cause::Scored, "header values match exactly");

    let batch = RequestHead {
        path: "/batch/v1/chat/completions",
        ..head(ApiFormat::OpenAiChat)
    };
    let hard = chat_body(Some("auto"), "Prove it");
    assert_eq!(
        decide(&config, &batch, &hard).cause,
        Cause::Rule("batch".into()),
        "first match wins"
    );
    assert_eq!(
        decide(&config, &head(ApiFormat::OpenAiChat), &hard).cause,
        Cause::Rule("proofs".into())
    );
    assert_eq!(
        decide(
            &config,
            &head(ApiFormat::OpenAiChat),
            &chat_body(Some("auto"), "improve it")
        )
        .cause,
        Cause::Scored
    );

    let alias = decide(
        &config,
        &head(ApiFormat::OpenAiChat),
        &chat_body(Some("cheap"), "Prove it"),
    );
    assert_eq!(alias.cause, Cause::Rule("mini-alias".into()));
    assert_eq!(alias.model.as_deref(), Some("gpt-4o-mini"));
}

#[test]
fn rules_needing_the_body_skip_unparsable_bodies() {
    let config = config(RULES);
    let cases: [&[u8]; 3] = [b"prove", b"", br#"{"model":"cheap","text":"prove"}"#];
    for body in cases {
        let decision = decide(&config, &head(ApiFormat::OpenAiChat), body);
        assert!(
            matches!(decision.cause, Cause::FailOpen(_) | Cause::ExplicitModel),
            "{decision:?}"
        );
    }
    let batch = RequestHead {
        path: "/batch",
        ..head(ApiFormat::OpenAiChat)
    };
    let decision = decide(&config, &batch, b"not json");
    assert_eq!(
        decision.cause,
        Cause::Rule("batch".into()),
        "header-only rules still apply"
    );
    assert_eq!(decision.model, None, "an invalid body is never rewritten");
}

#[test]
fn explicit_models_pass_through_to_the_tier_that_lists_them() {
    let config = Config::default();
    let cases = [
        ("gpt-4o", "mid"),
        ("o3", "frontier"),
        ("claude-haiku-4-5", "small"),
        ("some-other-model", "mid"),
    ];
    for (model, tier) in cases {
        let decision = decide(
            &config,
            &head(ApiFormat::OpenAiChat),
            &chat_body(Some(model), "Prove it step by step"),
        );
        assert_eq!(decision.cause, Cause::ExplicitModel);
        assert_eq!(
            (decision.tier.as_str(), decision.model.as_deref()),
            (tier, None),
            "{model}"
        );
        assert_eq!(decision.requested_model.as_deref(), Some(model));
        assert_eq!(decision.reason_header(), format!("explicit_model: {model}"));
    }
    let rule = config_rule_for_explicit();
    let decision = decide(
        &rule,
        &head(ApiFormat::OpenAiChat),
        &chat_body(Some("gpt-4o"), "x"),
    );
    assert_eq!(
        (decision.cause, decision.tier.as_str(), decision.model),
        (Cause::Rule("r".into()), "small", None)
    );
}

fn config_rule_for_explicit() -> Config {
    config(r#"{"rules":[{"name":"r","when":{"path_prefix":"/"},"tier":"small"}]}"#)
}

#[test]
fn fail_open_causes_and_their_rewrites() {
    let config = Config::default();
    /// (body, cause, model written, model requested)
    type Case<'a> = (&'a [u8], FailOpen, Option<&'a str>, Option<&'a str>);
    let cases: [Case; 7] = [
        (b"", FailOpen::EmptyBody, None, None),
        (b"{\"model\":\"auto\",", FailOpen::InvalidJson, None, None),
        (b"\xff\xfe", FailOpen::InvalidJson, None, None),
        (
            br#"{"model":"auto","prompt":"hi"}"#,
            FailOpen::UnknownShape,
            Some("gpt-4o"),
            Some("auto"),
        ),
        (
            br#"{"prompt":"hi"}"#,
            FailOpen::UnknownShape,
            Some("gpt-4o"),
            None,
        ),
        (
            br#"{"model":7,"messages":[]}"#,
            FailOpen::UnknownShape,
            None,
            None,
        ),
        (br#"[{"model":"auto"}]"#, FailOpen::UnknownShape, None, None),
    ];
    for (body, cause, model, requested) in cases {
        let decision = decide(&config, &head(ApiFormat::OpenAiChat), body);
        assert_eq!(
            decision.cause,
            Cause::FailOpen(cause),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(decision.tier, "mid");
        assert_eq!(
            decision.model.as_deref(),
            model,
            "{}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(decision.requested_model.as_deref(), requested);
        assert_eq!(decision.score, None);
        assert_eq!(
            decision.reason_header(),
            format!("fail_open: {}", cause.as_str())
        );
    }
    let explicit = decide(
        &config,
        &head(ApiFormat::OpenAiChat),
        br#"{"model":"o3","prompt":"hi"}"#,
    );
    assert_eq!(
        (explicit.cause, explicit.tier.as_str()),
        (Cause::ExplicitModel, "frontier")
    );
}

#[test]
fn fail_open_without_body() {
    let decision = fail_open(&Config::default(), FailOpen::BodyTooLarge);
    assert_eq!(decision.tier, "mid");
    assert_eq!(
        (&decision.model, decision.score, &decision.requested_model),
        (&None, None, &None)
    );
    assert_eq!(decision.reason_header(), "fail_open: body_too_large");
}

#[test]
fn rule_regex_respects_the_scan_cap() {
    let config = config(
        r#"{"limits":{"max_scan_bytes":64},"rules":[{"name":"proofs","when":{"last_user_regex":"prove"},"tier":"frontier"}]}"#,
    );
    let early = chat_body(Some("auto"), "prove this");
    let late = chat_body(Some("auto"), &format!("{} prove this", "a".repeat(100)));
    assert_eq!(
        decide(&config, &head(ApiFormat::OpenAiChat), &early).cause,
        Cause::Rule("proofs".into())
    );
    assert_eq!(
        decide(&config, &head(ApiFormat::OpenAiChat), &late).cause,
        Cause::Scored
    );
}

/// A tiny xorshift generator: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn decide_never_panics_on_prefixes_and_noise() {
    let config = config(RULES);
    let bodies: [(ApiFormat, &str); 3] = [
        (
            ApiFormat::OpenAiChat,
            r#"{"model":"auto","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"h\u00e9 \"q\" ```x``` \\frac"},{"type":"image_url","image_url":{"url":"u"}}]},{"role":"assistant","tool_calls":[{"id":"1"}]},{"role":"tool","content":"r"}],"tools":[{"type":"function"}],"max_tokens":5}"#,
        ),
        (
            ApiFormat::OpenAiResponses,
            r#"{"model":"auto","instructions":"i","input":[{"role":"user","content":[{"type":"input_text","text":"日本語 proof"}]},{"type":"function_call","arguments":"{}"},{"type":"function_call_output","output":"o"}],"reasoning":{"effort":"high"}}"#,
        ),
        (
            ApiFormat::AnthropicMessages,
            r#"{"model":"auto","system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"text","text":"r"}]},{"type":"text","text":"go"}]}],"thinking":{"type":"enabled","budget_tokens":100}}"#,
        ),
    ];
    for (format, body) in bodies {
        let full = decide(&config, &head(format), body.as_bytes());
        assert_eq!(full.cause, Cause::Scored, "{body}");
        for end in 0..body.len() {
            let prefix = &body.as_bytes()[..end];
            let decision = decide(&config, &head(format), prefix);
            assert!(
                matches!(decision.cause, Cause::FailOpen(_)),
                "prefix {end} of {body}"
            );
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet = br#"{}[]":,\ amodelsgructnx0123456789.-eE\u"#;
    for _ in 0..3000 {
        let len = (rng.next() % 64) as usize;
        let noise: Vec<u8> = (0..len)
            .map(|_| {
                let pick = rng.next();
                if pick % 4 == 0 {
                    (pick >> 8) as u8
                } else {
                    alphabet[(pick >> 8) as usize % alphabet.len()]
                }
            })
            .collect();
        for format in ApiFormat::ALL {
            let decision = decide(&config, &head(format), &noise);
            assert!(!decision.tier.is_empty());
            if let Some(model) = &decision.model {
                assert!(crate::rewrite_model(&noise, model).is_ok(), "{noise:?}");
            }
        }
    }
}

const OVERRIDE: &str = r#""identity":{
        "caller":{"metadata":{"namespace":"envoy.filters.http.jwt_authn","path":["jwt_payload","sub"]}},
        "tenant":{"metadata":{"namespace":"envoy.filters.http.jwt_authn","path":["jwt_payload","team"]}}},
    "override":{"callers":["ops-console"]},
    "rules":[{"name":"legal","when":{"tenant":"legal"},"tier":"frontier"}],"#;

const OPS: Identity = Identity {
    caller: Some("ops-console"),
    tenant: None,
};

fn with_headers(
    headers: &[(&str, &str)],
    identity: Identity,
    body: &[u8],
    config: &Config,
) -> Decision {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let head = RequestHead {
        format: ApiFormat::OpenAiChat,
        path: CHAT,
        headers: &headers,
        identity,
    };
    decide(config, &head, body)
}

#[test]
fn allowed_callers_override_automatic_decisions() {
    let config = hand_set_config(OVERRIDE);
    let easy = chat_body(Some("auto"), "Translate 'good morning' to French.");
    let auto = with_headers(&[], Identity::ANONYMOUS, &easy, &config);
    assert_eq!(auto.tier, "small");

    let overridden = with_headers(&[("x-triage-override", "frontier")], OPS, &easy, &config);
    assert_eq!(overridden.tier, "frontier");
    assert_eq!(overridden.model.as_deref(), Some("o3"));
    assert_eq!(
        overridden.cause,
        Cause::Override {
            from: "small".into()
        }
    );
    assert_eq!(overridden.score, auto.score, "the automatic score is kept");
    assert_eq!(overridden.reason_header(), "override: small->frontier");

    // A rule's decision is automatic too: the override names the rule's tier as its origin.
    let legal_ops = Identity {
        tenant: Some("legal"),
        ..OPS
    };
    let by_rule = with_headers(&[("X-Triage-Override", "small")], legal_ops, &easy, &config);
    assert_eq!(by_rule.tier, "small");
    assert_eq!(
        by_rule.cause,
        Cause::Override {
            from: "frontier".into()
        }
    );
}

#[test]
fn identity_rules_match_only_the_verified_tenant_or_caller() {
    let config = hand_set_config(
        r#""identity":{"caller":{"header":"x-gw-caller"},"tenant":{"header":"x-gw-team"}},
        "rules":[{"name":"legal","when":{"tenant":"legal"},"tier":"frontier"},
                 {"name":"batch-job","when":{"caller":"nightly"},"tier":"small"}],"#,
    );
    let hard = chat_body(
        Some("auto"),
        "Prove that the algorithm terminates, step by step.",
    );
    let easy = chat_body(Some("auto"), "Translate 'good morning' to French.");
    let legal = Identity {
        caller: Some("alice"),
        tenant: Some("legal"),
    };
    assert_eq!(
        with_headers(&[], legal, &easy, &config).cause,
        Cause::Rule("legal".into())
    );
    let nightly = Identity {
        caller: Some("nightly"),
        tenant: None,
    };
    assert_eq!(
        with_headers(&[], nightly, &hard, &config).cause,
        Cause::Rule("batch-job".into())
    );
    // The rule reads the verified identity the filter hands over, never a header of the request:
    // a client's own copy of the identity header matches nothing.
    let forged = with_headers(
        &[("x-gw-team", "legal"), ("x-gw-caller", "nightly")],
        Identity::ANONYMOUS,
        &easy,
        &config,
    );
    assert_eq!(forged.cause, Cause::Scored);
    let other = Identity {
        caller: Some("Nightly"),
        tenant: Some("Legal"),
    };
    assert_eq!(
        with_headers(&[], other, &easy, &config).cause,
        Cause::Scored,
        "identity values match exactly"
    );
}

#[test]
fn overrides_from_other_callers_or_to_unknown_tiers_are_ignored() {
    let config = hand_set_config(OVERRIDE);
    let easy = chat_body(Some("auto"), "Translate 'good morning' to French.");
    let auto = with_headers(&[], Identity::ANONYMOUS, &easy, &config);
    let someone = Identity {
        caller: Some("someone"),
        tenant: Some("ops-console"),
    };
    for (headers, identity) in [
        (vec![("x-triage-override", "frontier")], Identity::ANONYMOUS),
        (
            vec![
                ("x-triage-override", "frontier"),
                ("x-caller", "ops-console"),
            ],
            Identity::ANONYMOUS,
        ),
        (vec![("x-triage-override", "frontier")], someone),
        (vec![("x-triage-override", "ultra")], OPS),
    ] {
        assert_eq!(
            with_headers(&headers, identity, &easy, &config),
            auto,
            "{headers:?} {identity:?}"
        );
    }
    // No override section: the header means nothing.
    let plain = hand_set_config("");
    let headers = [("x-triage-override", "frontier")];
    assert_eq!(with_headers(&headers, OPS, &easy, &plain).tier, "small");
}

#[test]
fn overrides_do_not_touch_pinned_models_or_fail_opens() {
    let config = hand_set_config(OVERRIDE);
    let headers = [("x-triage-override", "small")];
    let pinned = with_headers(&headers, OPS, &chat_body(Some("gpt-4o"), "hi"), &config);
    assert_eq!(pinned.cause, Cause::ExplicitModel);
    let broken = with_headers(&headers, OPS, b"{not json", &config);
    assert_eq!(broken.cause, Cause::FailOpen(FailOpen::InvalidJson));
}

#[test]
fn retarget_moves_the_tier_and_its_model() {
    let config = hand_set_config("");
    let easy = chat_body(Some("auto"), "Translate 'good morning' to French.");
    let mut decision = decide(&config, &head(ApiFormat::AnthropicMessages), &easy);
    retarget(&config, &mut decision, 1, ApiFormat::AnthropicMessages);
    assert_eq!(decision.tier, "mid");
    assert_eq!(decision.model.as_deref(), Some("claude-sonnet-4-5"));
    let mut pinned = decide(
        &config,
        &head(ApiFormat::OpenAiChat),
        &chat_body(Some("gpt-4o-mini"), "hi"),
    );
    retarget(&config, &mut pinned, 2, ApiFormat::OpenAiChat);
    assert_eq!(pinned.tier, "frontier");
    assert_eq!(pinned.model, None, "a pinned model is never rewritten");
    let before = pinned.clone();
    retarget(&config, &mut pinned, 9, ApiFormat::OpenAiChat);
    assert_eq!(pinned, before, "no such tier: unchanged");
}
