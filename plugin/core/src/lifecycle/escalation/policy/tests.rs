use crate::config::Config;

fn policy(escalation: &str) -> super::EscalationPolicy {
    let json = format!(r#"{{"escalation": {escalation}}}"#);
    let config = Config::from_json(json.as_bytes()).unwrap();
    config.escalation().unwrap().clone()
}

fn refused(escalation: &str) -> String {
    let json = format!(r#"{{"escalation": {escalation}}}"#);
    match Config::from_json(json.as_bytes()) {
        Ok(_) => panic!("accepted: {escalation}"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn without_the_section_nothing_escalates() {
    assert!(Config::from_json(b"{}").unwrap().escalation().is_none());
}

#[test]
fn an_empty_section_escalates_failures_only_with_the_documented_defaults() {
    let policy = policy("{}");
    assert_eq!(policy.max_escalations, 1);
    assert_eq!(policy.deadline_ms, 120_000);
    assert_eq!(policy.attempt_timeout_ms, 60_000);
    assert_eq!(policy.stream_hold_bytes, 1024);
    assert_eq!(policy.on_status.len(), 101, "429 and every 5xx");
    assert!(policy.on_status.contains(&429) && policy.on_status.contains(&599));
    assert!(!policy.on_status.contains(&400));
    assert!(!policy.checks_answers(), "every check is opt-in");
    assert!(!policy.request_logprobs);
    assert_eq!(policy.breaker, crate::BreakerSettings::default());
}

#[test]
fn checks_are_read_and_a_tight_cap_defaults_to_128_tokens() {
    let checks = policy(r#"{"checks": {"truncated": true}}"#).checks;
    assert!(checks.truncated);
    assert_eq!(checks.tight_limit_tokens, 128);
    assert!(!checks.empty && !checks.invalid_json && checks.refusal.is_none());
    let checks = policy(r#"{"checks": {"truncated": true, "tight_limit_tokens": 0}}"#).checks;
    assert_eq!(checks.tight_limit_tokens, 0);
    let checks = policy(r#"{"checks": {"refusal_regex": "^no", "min_mean_logprob": -2}}"#).checks;
    assert!(checks.refusal.is_some_and(|regex| regex.is_match("no way")));
    assert_eq!(checks.min_mean_logprob, Some(-2.0));
}

#[test]
fn never_when_matches_header_names_in_any_case_and_values_exactly() {
    let policy = policy(r#"{"never_when": [{"name": "X-No-Escalate", "value": "1"}]}"#);
    let headers = |name: &str, value: &str| vec![(name.to_string(), value.to_string())];
    assert!(policy.never_for(&headers("x-no-escalate", "1")));
    assert!(!policy.never_for(&headers("x-no-escalate", "yes")));
    assert!(!policy.never_for(&headers("x-other", "1")));
}

#[test]
fn refusals_name_the_field() {
    let cases = [
        (
            r#"{"max_escalations": 0}"#,
            "escalation.max_escalations: must be at least 1",
        ),
        (
            r#"{"deadline_ms": 0}"#,
            "escalation.deadline_ms: must be at least 1",
        ),
        (
            r#"{"attempt_timeout_ms": 0}"#,
            "escalation.attempt_timeout_ms: must be at least 1",
        ),
        (
            r#"{"stream_hold_bytes": 0}"#,
            "escalation.stream_hold_bytes: must be at least 1",
        ),
        (
            r#"{"on_status": [503, 200]}"#,
            "escalation.on_status[1]: 200 is not an HTTP error status",
        ),
        (
            r#"{"on_status": [700]}"#,
            "escalation.on_status[0]: 700 is not an HTTP error status",
        ),
        (
            r#"{"checks": {"refusal_regex": "(unclosed"}}"#,
            "escalation.checks.refusal_regex: invalid regex",
        ),
        (
            r#"{"checks": {"min_mean_logprob": 0.5}}"#,
            "escalation.checks.min_mean_logprob: must be a log-probability",
        ),
        (
            r#"{"checks": {"tight_limit_tokens": -1}}"#,
            "escalation.checks.tight_limit_tokens: invalid value",
        ),
        (
            r#"{"checks": {"truncate": true}}"#,
            "escalation.checks.truncate: unknown field `truncate`",
        ),
        (
            r#"{"never_when": [{"name": "bad name", "value": "1"}]}"#,
            "escalation.never_when[0].name",
        ),
        (
            r#"{"circuit_breaker": {"window": 0}}"#,
            "escalation.circuit_breaker.window: must be within [1, 10000]",
        ),
        (
            r#"{"circuit_breaker": {"window": 4, "min_requests": 5}}"#,
            "escalation.circuit_breaker.min_requests: must be within [1, window (4)]",
        ),
        (
            r#"{"circuit_breaker": {"failure_rate": 0}}"#,
            "escalation.circuit_breaker.failure_rate: must be within (0, 1]",
        ),
        (
            r#"{"circuit_breaker": {"cooldown_ms": 0}}"#,
            "escalation.circuit_breaker.cooldown_ms: must be at least 1",
        ),
    ];
    for (escalation, expected) in cases {
        let message = refused(escalation);
        assert!(
            message.starts_with(expected),
            "{escalation}\n  got:      {message}\n  expected: {expected}"
        );
    }
}
