//! Who may steer a request, through the shipped stack as it is (issue 17): the caller and tenant come
//! from the gateway's `jwt_authn` (a verified token's `sub` and `team`, read by the filter from
//! Envoy's dynamic metadata), never from what a client writes. A forged allow header, team header or
//! token gets nothing; a verified caller on `override.callers` gets its override; a verified tenant
//! gets its rule; records name who was verified, and only the verified override teaches the router.
// The helpers below are test code too (clippy only exempts `#[test]` functions).
#![allow(clippy::expect_used, clippy::panic)]

use serde_json::Value;
use triage_e2e::auth;
use triage_e2e::bodies::{self, CHAT, TRIVIAL};
use triage_e2e::check::{record_of, records, upstream_header};
use triage_e2e::{plugin_config, Request, Response, Stack};
use triage_learn::log::feedback::Feedback;
use triage_learn::log::rows::{rows_from_logs, LabelRule};

const OVERRIDE: &str = "x-triage-override";
/// In the shipped config: the caller allowed to override, and the tenant its rule sends to frontier.
const OPS: &str = "ops-console";
const LEGAL: &str = "legal";

fn trivial() -> Request {
    Request::post(CHAT, bodies::chat(Some("auto"), TRIVIAL))
}

fn bearer(request: Request, token: &str) -> Request {
    request.header("authorization", &format!("Bearer {token}"))
}

fn reason(response: &Response) -> &str {
    response.header("x-triage-reason").expect("x-triage-reason")
}

#[test]
fn only_a_verified_caller_steers_its_tier_and_teaches_the_router() {
    let config = plugin_config::shipped();
    let stack = Stack::start(&config);
    let anonymous = stack.send(&trivial());
    let chosen = anonymous
        .header("x-triage-tier")
        .expect("decided")
        .to_owned();
    assert!(
        reason(&anonymous).starts_with("scored"),
        "{}",
        reason(&anonymous)
    );
    let wanted = if chosen == "frontier" {
        "small"
    } else {
        "frontier"
    };

    // What a client can write itself: the allow header of earlier versions, the team header the
    // example rule once keyed on, and a valid token of its own that is not on override.callers.
    let forged_allow = stack.send(
        &trivial()
            .header("x-gateway-caller", OPS)
            .header(OVERRIDE, wanted),
    );
    let forged_team = stack.send(&trivial().header("x-team", LEGAL));
    let not_allowed = stack.send(&bearer(
        trivial().header(OVERRIDE, wanted),
        &auth::token("alice", None),
    ));
    for response in [&forged_allow, &forged_team, &not_allowed] {
        assert_eq!(response.status, 200);
        assert_eq!(response.header("x-triage-tier"), Some(chosen.as_str()));
        assert_eq!(reason(response), reason(&anonymous), "scored as before");
    }

    // A token signed by anyone but the gateway's key: refused before triage or any tier.
    let forged_token = stack.send(&bearer(
        trivial().header(OVERRIDE, wanted),
        &auth::forged_token(OPS),
    ));
    assert_eq!(forged_token.status, 401, "{}", forged_token.text());

    // The gateway vouches: the verified caller's override, the verified tenant's rule.
    let verified = stack.send(&bearer(
        trivial().header(OVERRIDE, wanted),
        &auth::token(OPS, None),
    ));
    assert_eq!(verified.header("x-triage-tier"), Some(wanted));
    assert_eq!(reason(&verified), format!("override: {chosen}->{wanted}"));
    assert_eq!(verified.header("x-mock-tier"), Some(wanted), "served by");
    let legal = stack.send(&bearer(trivial(), &auth::token("bob", Some(LEGAL))));
    assert_eq!(legal.header("x-triage-tier"), Some("frontier"));
    assert_eq!(reason(&legal), "rule: legal-team-frontier");

    for (_, received) in stack.received() {
        assert_eq!(upstream_header(&received, OVERRIDE), None, "never upstream");
    }

    let logged = records(&stack, 6);
    let identity = |response: &Response| {
        let record = record_of(&logged, response);
        (record["caller"].clone(), record["tenant"].clone())
    };
    let none = (Value::Null, Value::Null);
    assert_eq!(identity(&anonymous), none);
    assert_eq!(identity(&forged_allow), none);
    assert_eq!(identity(&forged_team), none);
    assert_eq!(identity(&not_allowed), ("alice".into(), Value::Null));
    assert_eq!(identity(&verified), (OPS.into(), Value::Null));
    assert_eq!(identity(&legal), ("bob".into(), LEGAL.into()));
    let overrides: Vec<&Value> = logged
        .iter()
        .filter(|record| !record["override"].is_null())
        .collect();
    assert_eq!(
        overrides.len(),
        1,
        "only the verified caller's: {overrides:?}"
    );
    assert_eq!(overrides[0]["caller"], OPS);

    // What `train --from-log` learns from this log: one override label, the verified one.
    let config = triage_core::Config::from_json(config.to_string().as_bytes()).expect("config");
    let from_log = rows_from_logs(&[stack.access_log_path()], &Feedback::default(), &config)
        .expect("the access log reads as records");
    assert_eq!(from_log.records, 6);
    assert_eq!(from_log.by_rule.get(&LabelRule::Override), Some(&1));
}
