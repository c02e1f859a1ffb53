//! Billing follows the truth (issue 19): the record and the counters name the cluster Envoy says
//! served the request (`xds.cluster_name`), bill the tier whose cluster that is, and count a
//! mismatch with the tier triage routed to. The host plays an Envoy whose route table answers with
//! the cluster each test gives it.

use super::*;

const SERVED_CLUSTER: [&str; 2] = ["xds", "cluster_name"];
const FORCE_HEADER: &str = "x-force-tier";

/// The priced tiers with a rule per tier: `x-force-tier: <tier>` routes there.
fn forcing_config() -> String {
    let rules: Vec<Value> = TIERS
        .iter()
        .map(|tier| {
            json!({"name": format!("force-{}", tier.name), "tier": tier.name,
                   "when": {"header": {"name": FORCE_HEADER, "value": tier.name}}})
        })
        .collect();
    priced_config(json!({ "rules": rules }))
}

/// One JSON exchange routed to `tier`, through an Envoy that serves it from `cluster`.
fn routed_to(tier: &str, cluster: &str) -> (Host, Exchange) {
    let mut host = HostOptions::default()
        .property(&SERVED_CLUSTER, cluster.as_bytes())
        .start(&forcing_config())
        .unwrap();
    let request = Request::new(CHAT, request_body(CHAT), "served").header(FORCE_HEADER, tier);
    let response = json_response(CHAT);
    let exchange = exchange(
        &mut host,
        &request,
        Some(Response::ok(JSON, &response, &[])),
    );
    assert_eq!(exchange.routed.as_deref(), Some(tier));
    (host, exchange)
}

fn mismatch_counter(routed: &str, served: &str) -> String {
    format!("triage.tier_mismatch.routed.{routed}.served.{served}")
}

#[test]
fn a_request_served_from_its_tiers_cluster_names_it_and_is_no_mismatch() {
    let (host, exchange) = routed_to("mid", "tier_mid");
    let record = &exchange.record;
    assert_eq!(record.tier, "mid");
    assert_eq!(record.served_cluster.as_deref(), Some("tier_mid"));
    assert_eq!(record.mismatch, None);
    assert!(exchange.record_json["mismatch"].is_null());
    assert_close(record.cost_micro_usd, cost("mid", USAGE), "cost");
    Counters::default()
        .requests("enforce", "mid", "rule", 1)
        .priced("mid", "mid", USAGE, 1)
        .assert_on(&host);
    assert_no_warnings(&host);
}

#[test]
fn a_request_served_from_another_tiers_cluster_is_billed_there_and_counted() {
    let (host, exchange) = routed_to("mid", "tier_small");
    let record = &exchange.record;
    assert_eq!(record.tier, "small", "the tier whose cluster served it");
    assert_eq!(record.decided_tier, "mid");
    assert_eq!(
        record.model.as_deref(),
        Some("gpt-4o"),
        "the body triage wrote"
    );
    assert_eq!(record.served_cluster.as_deref(), Some("tier_small"));
    assert_eq!(
        exchange.record_json["mismatch"],
        json!({"routed": "mid", "served_cluster": "tier_small", "served": "small",
               "cause": "route_table"})
    );
    assert_close(record.cost_micro_usd, cost("small", USAGE), "cost");
    assert_close(
        record.decided_cost_micro_usd,
        cost("mid", USAGE),
        "decided cost",
    );
    assert_eq!(
        exchange.downstream_header("x-triage-tier"),
        Some("mid"),
        "the client is told the decision; the record tells who served it"
    );
    Counters::default()
        .requests("enforce", "mid", "rule", 1)
        .priced("small", "mid", USAGE, 1)
        .add(mismatch_counter("mid", "small"), 1)
        .assert_on(&host);
    assert_no_warnings(&host);
}

#[test]
fn a_request_served_from_a_cluster_no_tier_names_bills_no_tier() {
    let (host, exchange) = routed_to("small", "catch_all");
    let record = &exchange.record;
    assert_eq!(record.tier, "small", "the routed tier: no tier served it");
    assert_eq!(record.served_cluster.as_deref(), Some("catch_all"));
    assert_eq!(record.usage, Some(USAGE));
    let json = &exchange.record_json;
    for field in [
        "cost_micro_usd",
        "top_tier_cost_micro_usd",
        "decided_cost_micro_usd",
    ] {
        assert!(
            json[field].is_null(),
            "{field}: an unknown price, never a guess"
        );
    }
    assert_eq!(
        json["mismatch"],
        json!({"routed": "small", "served_cluster": "catch_all", "served": null,
               "cause": "unknown_cluster"})
    );
    Counters::default()
        .requests("enforce", "small", "rule", 1)
        .add(mismatch_counter("small", "unknown"), 1)
        .assert_on(&host);
    assert_no_warnings(&host);
}

#[test]
fn a_shadowed_request_is_compared_with_the_default_tiers_cluster() {
    let config = priced_config(json!({"mode": "shadow"}));
    let (body, decision) = body_not_for_the_default_tier(&config);
    for (cluster, served, mismatches) in [("tier_mid", "mid", 0), ("tier_frontier", "frontier", 1)]
    {
        let mut host = HostOptions::default()
            .property(&SERVED_CLUSTER, cluster.as_bytes())
            .start(&config)
            .unwrap();
        let request = Request::new(CHAT, body.clone(), "shadowed");
        let response = json_response(CHAT);
        let exchange = exchange(
            &mut host,
            &request,
            Some(Response::ok(JSON, &response, &[])),
        );
        let record = &exchange.record;
        assert_eq!(record.tier, served);
        assert_eq!(record.served_cluster.as_deref(), Some(cluster));
        assert_eq!(record.mismatch.is_some(), mismatches == 1, "{cluster}");
        assert_close(record.cost_micro_usd, cost(served, USAGE), "cost");
        let mut counters = Counters::default();
        counters
            .requests("shadow", &decision.tier, "scored", 1)
            .priced(served, &decision.tier, USAGE, 1);
        if mismatches == 1 {
            counters.add(mismatch_counter(DEFAULT_TIER, served), 1);
        }
        counters.assert_on(&host);
    }
}
