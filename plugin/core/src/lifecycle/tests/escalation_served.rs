//! Who served an escalated request, natively: the escalated answer comes from the cluster the
//! machine called itself, and the dropped first answer from wherever Envoy's route table sent the
//! routed attempt, each billed at the tier whose cluster that is.
//!
//! Host twins (host-tests/tests/module/escalation/served.rs → here):
//! - an_escalated_answer_is_served_by_the_cluster_triage_called → same name
//! - a_dropped_answer_envoy_served_from_another_cluster_is_billed_to_that_tier → same name (the
//!   filter's counters are the record's bills, asserted here)

use super::super::exchange::HostSettings;
use super::*;
use crate::DecisionRecord;

/// small's request, served from `first_cluster` as Envoy's route table sends it, answers weakly
/// (truncated); mid's answer to the call goes out.
fn escalate_from(first_cluster: &str) -> DecisionRecord {
    let config = default_config();
    let client = Client::simple(CHAT);
    client.goes_small(&config);
    let settings = HostSettings {
        route_to: Some(first_cluster.to_string()),
        ..HostSettings::default()
    };
    let weak = answer(CHAT, SMALL, "The sentiment", "length");
    // Whichever cluster the routed request reaches answers weakly; mid answers the call.
    let outcome = exchange_with(
        &config,
        &client,
        |sent: &Sent| match sent.cluster.as_str() {
            "tier_mid" => Reply::Answer(good_response(CHAT, MID)),
            _ => ok_json(weak.clone()),
        },
        &settings,
    );
    assert_eq!(outcome.routed.as_ref().unwrap().cluster, first_cluster);
    assert_eq!(the_call(&outcome).cluster, "tier_mid");
    outcome.record.unwrap()
}

#[test]
fn an_escalated_answer_is_served_by_the_cluster_triage_called() {
    let config = default_config();
    let record = escalate_from("tier_small");
    assert_eq!(record.tier, "mid");
    assert_eq!(record.served_cluster.as_deref(), Some("tier_mid"));
    assert_eq!(
        record.mismatch, None,
        "the routed attempt was served where it was routed"
    );
    let (small, mid) = (TIERS[SMALL].usage, TIERS[MID].usage);
    assert_close(
        record.cost_micro_usd,
        cost(MID, mid) + cost(SMALL, small),
        "the served answer and the dropped one",
    );
    assert_eq!(dropped_bills(&record, &config), [(Some("small"), small)]);
}

#[test]
fn a_dropped_answer_envoy_served_from_another_cluster_is_billed_to_that_tier() {
    // The route table sent small's request to frontier's cluster; frontier's weak answer is dropped
    // and mid answers the escalation.
    let config = default_config();
    let record = escalate_from("tier_frontier");
    assert_eq!(record.tier, "mid");
    assert_eq!(record.served_cluster.as_deref(), Some("tier_mid"));
    let mismatch = record
        .mismatch
        .clone()
        .expect("the routed attempt's mismatch");
    assert_eq!(mismatch.routed, "small");
    assert_eq!(mismatch.served_cluster, "tier_frontier");
    assert_eq!(mismatch.served.as_deref(), Some("frontier"));
    let (dropped, mid) = (TIERS[SMALL].usage, TIERS[MID].usage);
    assert_close(
        record.cost_micro_usd,
        cost(MID, mid) + cost(FRONTIER, dropped),
        "the dropped answer at the price of the tier that gave it",
    );
    // What the filter counts: the dropped tokens and cost to frontier, none to small, the served
    // answer to mid.
    assert_eq!(
        dropped_bills(&record, &config),
        [(Some("frontier"), dropped)]
    );
    assert_eq!(record.serving_tier(), Some("mid"));
    assert_close(
        record.served_answer_cost(&config),
        cost(MID, mid),
        "mid's answer",
    );
}
