//! Who served an escalated request (issue 19): the escalated answer comes from the cluster triage
//! called itself, and the dropped first answer from wherever Envoy's route table sent the routed
//! attempt, each billed at the tier whose cluster that is.

use super::*;

const SERVED_CLUSTER: [&str; 2] = ["xds", "cluster_name"];

/// small answers weakly (truncated) from `first_cluster`, as Envoy names it; mid's answer to the
/// escalation call goes out. Returns the host and the record.
fn escalate_from(first_cluster: &str) -> (Host, DecisionRecord) {
    let config = default_config();
    let mut host = start(&config);
    let client = Client::simple(CHAT);
    assert_goes_small(&client, &config);
    let mut stream = host.request().unwrap();
    client.send(&mut stream);
    stream.set_property(&SERVED_CLUSTER, first_cluster.as_bytes());
    let weak = answer(CHAT, SMALL, "The sentiment", "length");
    respond(&mut stream, 200, JSON, &weak, &[]);
    let call = the_call(&stream);
    assert_eq!(call.cluster, "tier_mid");
    stream
        .answer_http_call(call.token, good_response(CHAT, MID))
        .unwrap();
    drop(stream);
    let record = record(&host);
    (host, record)
}

#[test]
fn an_escalated_answer_is_served_by_the_cluster_triage_called() {
    let (host, record) = escalate_from("tier_small");
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
    assert!(host
        .metric_names()
        .iter()
        .filter(|name| name.starts_with("triage.tier_mismatch."))
        .all(|name| host.metric(name) == Some(0)));
}

#[test]
fn a_dropped_answer_envoy_served_from_another_cluster_is_billed_to_that_tier() {
    // The route table sent small's request to frontier's cluster; frontier's weak answer is dropped
    // and mid answers the escalation.
    let (host, record) = escalate_from("tier_frontier");
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
    let rounded = |tier, usage| cost(tier, usage).round() as i64;
    for (name, value) in [
        (
            "triage.cost_micro_usd.tier.frontier",
            rounded(FRONTIER, dropped),
        ),
        ("triage.cost_micro_usd.tier.small", 0),
        ("triage.cost_micro_usd.tier.mid", rounded(MID, mid)),
        (
            "triage.tokens.tier.frontier.kind.prompt",
            dropped.prompt_tokens as i64,
        ),
        ("triage.tokens.tier.small.kind.prompt", 0),
        ("triage.tier_mismatch.routed.small.served.frontier", 1),
    ] {
        assert_eq!(host.metric(name), Some(value), "{name}");
    }
}
