//! Billing follows the truth (issue 19), through real Envoy: the record and the metrics name the
//! cluster Envoy's router actually used (`xds.cluster_name`), bill the tier whose cluster that is,
//! and count a mismatch with the tier triage routed to. A route table an operator got wrong sends
//! `x-triage-route: mid` to small's cluster.
// The helpers below are test code too (clippy only exempts `#[test]` functions).
#![allow(clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use triage_e2e::bodies::{self, CHAT, NEUTRAL};
use triage_e2e::check::{record_of, records};
use triage_e2e::plugin_config::{self, FORCE_TIER_HEADER};
use triage_e2e::{Request, Response, Scrape, Stack, StackOptions, TIERS};
use triage_learn::log::feedback::Feedback;
use triage_learn::report;

/// The one edit to the rendered Envoy config that makes the route for `x-triage-route: mid` name
/// small's cluster: a gateway config edited by hand after `triage envoy` made it (the routes it
/// generates cannot disagree with the plugin config). Tied to the route lines
/// plugin/gateway/src/envoy.rs writes: when those change, only this line needs to.
const MID_ROUTE_TO_SMALL_CLUSTER: (&str, &str) = (
    "exact: \"mid\" } }] }\n                route: { cluster: \"tier_mid\",",
    "exact: \"mid\" } }] }\n                route: { cluster: \"tier_small\",",
);

fn forced(tier: &str) -> Request {
    Request::post(CHAT, bodies::chat(Some("auto"), NEUTRAL)).header(FORCE_TIER_HEADER, tier)
}

/// What `tier` charges for the record's usage, in micro-dollars, at the plugin config's price.
fn priced(config: &Value, tier: &str, record: &Value) -> f64 {
    let price = config["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .find(|known| known["name"] == tier)
        .map(|known| &known["price"])
        .unwrap_or_else(|| panic!("no tier {tier}"));
    let tokens = |kind: &str| record["usage"][kind].as_f64().expect("usage is known");
    tokens("prompt_tokens") * price["input_per_mtok"].as_f64().expect("input price")
        + tokens("completion_tokens") * price["output_per_mtok"].as_f64().expect("output price")
}

fn assert_close(value: &Value, expected: f64, what: &str) {
    let value = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(
        (value - expected).abs() < 1e-6,
        "{what}: {value}, expected {expected}"
    );
}

fn served_by(response: &Response, mock: &str, decided: &str) {
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.header("x-mock-tier"),
        Some(mock),
        "the mock that answered"
    );
    assert_eq!(
        response.header("x-triage-tier"),
        Some(decided),
        "triage's decision"
    );
}

/// The mismatch counter, by label: every series but `routed`/`served` is 0.
fn mismatches(scrape: &Scrape, routed: &str, served: &str) -> f64 {
    scrape.sum(
        "triage_tier_mismatch",
        &[("routed", routed), ("served", served)],
    )
}

#[test]
fn a_request_the_route_table_sends_to_another_tiers_cluster_is_billed_there_and_counted() {
    let config = plugin_config::forcing();
    let (from, to) = MID_ROUTE_TO_SMALL_CLUSTER;
    let stack = Stack::start_with(StackOptions::triage(&config).with_config_edit(from, to));
    let misrouted = stack.send(&forced("mid"));
    served_by(&misrouted, "small", "mid");
    let routed_right = stack.send(&forced("frontier"));
    served_by(&routed_right, "frontier", "frontier");

    let records = records(&stack, 2);
    let record = record_of(&records, &misrouted);
    assert_eq!(
        record["tier"], "small",
        "the tier whose cluster served it: {record}"
    );
    assert_eq!(record["decided_tier"], "mid");
    assert_eq!(record["served_cluster"], "tier_small");
    assert_eq!(
        record["mismatch"],
        json!({"routed": "mid", "served_cluster": "tier_small", "served": "small",
               "cause": "route_table"})
    );
    let small_cost = priced(&config, "small", record);
    assert!(small_cost > 0.0);
    assert_close(
        &record["cost_micro_usd"],
        small_cost,
        "cost at small's price",
    );
    assert_close(
        &record["decided_cost_micro_usd"],
        priced(&config, "mid", record),
        "the decided tier's price",
    );
    let right = record_of(&records, &routed_right);
    assert_eq!(right["served_cluster"], "tier_frontier");
    assert!(right["mismatch"].is_null(), "{right}");

    let scrape = stack.prometheus();
    assert_eq!(mismatches(&scrape, "mid", "small"), 1.0);
    assert_eq!(scrape.sum("triage_tier_mismatch", &[]), 1.0, "nothing else");
    assert_eq!(
        scrape.sum("triage_cost_micro_usd", &[("tier", "small")]),
        small_cost.round(),
        "small's bill"
    );
    assert_eq!(scrape.sum("triage_cost_micro_usd", &[("tier", "mid")]), 0.0);
    assert_eq!(
        scrape.sum("triage_tokens", &[("tier", "small"), ("kind", "prompt")]),
        record["usage"]["prompt_tokens"]
            .as_f64()
            .expect("prompt tokens")
    );
    assert_eq!(
        scrape.sum(
            "triage_requests",
            &[("tier", "mid"), ("cause", "rule"), ("mode", "enforce")]
        ),
        1.0,
        "the decision is still mid's"
    );

    // `triage report` reads the same log: the request counts as small's, and as a mismatch.
    let built = report::build(
        &[stack.access_log_path()],
        &Feedback::default(),
        &TIERS,
        None,
    )
    .expect("the access log reads");
    assert_eq!(built.totals.tier_mismatches, 1);
    assert_eq!(built.totals.unknown_cluster, 0);
    let small = built
        .totals
        .tiers
        .iter()
        .find(|share| share.tier == "small");
    assert_eq!(small.map(|share| share.requests), Some(1));
}

#[test]
fn a_request_served_where_it_was_routed_names_its_tiers_cluster_and_no_mismatch() {
    let config = plugin_config::forcing();
    let stack = Stack::start(&config);
    let responses: Vec<Response> = TIERS.iter().map(|tier| stack.send(&forced(tier))).collect();
    let records = records(&stack, TIERS.len());
    for (tier, response) in TIERS.iter().zip(&responses) {
        served_by(response, tier, tier);
        let record = record_of(&records, response);
        assert_eq!(record["tier"], *tier);
        assert_eq!(record["served_cluster"], format!("tier_{tier}"));
        assert!(record["mismatch"].is_null(), "{record}");
        assert_close(
            &record["cost_micro_usd"],
            priced(&config, tier, record),
            "cost",
        );
    }
    let scrape = stack.prometheus();
    assert_eq!(scrape.sum("triage_tier_mismatch", &[]), 0.0);
    assert!(
        scrape
            .names()
            .iter()
            .any(|name| name == "triage_tier_mismatch"),
        "the mismatch series exist at 0 from the start"
    );
}
