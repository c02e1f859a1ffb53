use std::io::Cursor;
use std::path::Path;

use triage_core::{Escalation, OverrideRecord};

use super::*;
use crate::log::testing::{
    memory_log, micro_usd, misrouted, priced_config, record, MemoryLog, NO_LOGS,
};

const TIERS: [&str; 3] = ["small", "mid", "frontier"];

fn known(qualities: [f64; 3]) -> Vec<Option<f64>> {
    qualities.map(Some).to_vec()
}

fn overridden(from: &str, to: &str) -> DecisionRecord {
    let mut record = record("o", 0, to);
    record.cause = "override".into();
    record.caller = Some("ops-console".into());
    record.decided_tier = to.into();
    record.override_ = Some(OverrideRecord {
        from: from.into(),
        to: to.into(),
    });
    record
}

fn escalated(steps: &[(&str, &str)], status: u16) -> DecisionRecord {
    let served = steps.last().map_or("small", |(_, to)| *to);
    let mut record = record("e", 0, served);
    record.decided_tier = steps.first().map_or(served, |(from, _)| *from).into();
    record.status = Some(status);
    record.escalations = steps
        .iter()
        .map(|(from, to)| Escalation {
            from: from.to_string(),
            to: to.to_string(),
            cause: "empty".into(),
            status: Some(200),
            abandoned_usage: None,
        })
        .collect();
    record
}

#[test]
fn feedback_names_the_cheapest_tier_that_answers() {
    let labelled = label(&record("f", 0, "small"), Some("mid"), &TIERS).unwrap();
    assert_eq!(labelled.rule, LabelRule::Feedback);
    assert_eq!(labelled.quality, known([0.0, 1.0, 1.0]));
    // Feedback is the strongest signal: it holds whatever the answer's status was.
    let mut failed = record("f", 0, "frontier");
    failed.status = Some(503);
    let labelled = label(&failed, Some("small"), &TIERS).unwrap();
    assert_eq!(labelled.quality, known([1.0, 1.0, 1.0]));
}

#[test]
fn an_override_teaches_only_from_a_verified_caller() {
    let verified = overridden("mid", "small");
    let labelled = label(&verified, None, &TIERS).unwrap();
    assert_eq!(labelled.rule, LabelRule::Override);
    assert_eq!(labelled.quality, known([1.0, 1.0, 1.0]));

    let mut forged = verified;
    forged.caller = None;
    assert_eq!(
        label(&forged, None, &TIERS),
        Err(SkipReason::UnverifiedOverride),
        "neither the override nor the tier it forced is a label"
    );
    // The operator's own feedback still labels the request.
    let labelled = label(&forged, Some("mid"), &TIERS).unwrap();
    assert_eq!(labelled.rule, LabelRule::Feedback);
}

#[test]
fn feedback_beats_an_override_and_an_override_beats_an_escalation() {
    let mut record = overridden("small", "frontier");
    record.escalations = escalated(&[("small", "mid")], 200).escalations;
    let by_feedback = label(&record, Some("mid"), &TIERS).unwrap();
    assert_eq!(by_feedback.rule, LabelRule::Feedback);
    assert_eq!(by_feedback.quality, known([0.0, 1.0, 1.0]));
    let by_override = label(&record, None, &TIERS).unwrap();
    assert_eq!(by_override.rule, LabelRule::Override);
    assert_eq!(by_override.quality, known([0.0, 0.0, 1.0]));
}

#[test]
fn an_override_takes_its_target_as_the_correct_tier() {
    let labelled = label(&overridden("small", "mid"), None, &TIERS).unwrap();
    assert_eq!(labelled.rule, LabelRule::Override);
    assert_eq!(labelled.quality, known([0.0, 1.0, 1.0]));
    // An override to the tier triage chose anyway corrects nothing: the served rule applies.
    let agreed = label(&overridden("mid", "mid"), None, &TIERS);
    assert_eq!(agreed, Err(SkipReason::NoLabelInformation));
    let agreed_small = label(&overridden("small", "small"), None, &TIERS).unwrap();
    assert_eq!(agreed_small.rule, LabelRule::Served);
}

#[test]
fn an_answered_escalation_fails_every_tier_up_to_its_dearest_source() {
    let one_step = label(&escalated(&[("small", "mid")], 200), None, &TIERS).unwrap();
    assert_eq!(one_step.rule, LabelRule::Escalation);
    assert_eq!(one_step.quality, known([0.0, 1.0, 1.0]));
    let chain = escalated(&[("small", "mid"), ("mid", "frontier")], 200);
    assert_eq!(
        label(&chain, None, &TIERS).unwrap().quality,
        known([0.0, 0.0, 1.0])
    );
    // A jump over a tier leaves it unknown.
    let jump = label(&escalated(&[("small", "frontier")], 200), None, &TIERS).unwrap();
    assert_eq!(jump.quality, vec![Some(0.0), None, Some(1.0)]);
    // Still failing after escalating, or falling back to a cheaper tier, says nothing usable.
    let unanswered = escalated(&[("small", "mid")], 502);
    assert_eq!(label(&unanswered, None, &TIERS), Err(SkipReason::NoSuccess));
    let downwards = escalated(&[("frontier", "mid")], 200);
    assert_eq!(
        label(&downwards, None, &TIERS),
        Err(SkipReason::NoLabelInformation)
    );
}

#[test]
fn a_quiet_answer_vouches_for_its_tier_and_dearer_ones_only() {
    let small = label(&record("s", 0, "small"), None, &TIERS).unwrap();
    assert_eq!(small.rule, LabelRule::Served);
    assert_eq!(small.quality, known([1.0, 1.0, 1.0]));
    for tier in ["mid", "frontier"] {
        assert_eq!(
            label(&record("s", 0, tier), None, &TIERS),
            Err(SkipReason::NoLabelInformation),
            "{tier}: nothing is known of the cheapest tier"
        );
    }
    let mut failed = record("s", 0, "small");
    failed.status = Some(500);
    assert_eq!(label(&failed, None, &TIERS), Err(SkipReason::NoSuccess));
    failed.status = None;
    assert_eq!(label(&failed, None, &TIERS), Err(SkipReason::NoSuccess));
    let mut unknown = record("s", 0, "ultra");
    unknown.decided_tier = "ultra".into();
    assert_eq!(label(&unknown, None, &TIERS), Err(SkipReason::UnknownTier));
    assert_eq!(
        label(&record("s", 0, "small"), None, &["small"]),
        Err(SkipReason::NoLabelInformation),
        "one tier: nothing to choose between"
    );
}

fn feedback(rows: &str) -> Feedback {
    let mut feedback = Feedback::default();
    feedback
        .parse(Cursor::new(rows), Path::new("fb"), &TIERS)
        .unwrap();
    feedback
}

fn one_log(records: Vec<DecisionRecord>) -> [MemoryLog; 1] {
    [memory_log("access.log", &records, 0)]
}

#[test]
fn the_rows_give_the_trainer_the_intended_label() {
    let config = priced_config();
    let cases = [
        (record("needs-mid", 0, "small"), Some("mid"), true),
        (
            record("small-is-enough", 0, "frontier"),
            Some("small"),
            false,
        ),
        (overridden("small", "frontier"), None, true),
        (escalated(&[("small", "mid")], 200), None, true),
        (record("served-small", 0, "small"), None, false),
    ];
    for (record, correct_tier, needs_strong) in cases {
        let (row, _) = row(&record, "log:test", correct_tier, &config).unwrap();
        assert_eq!(
            crate::train::label(&row),
            Some(needs_strong),
            "{}: {:?}",
            record.request_id,
            row.outcomes
        );
        assert_eq!(
            Some(&row.id),
            record.decision_id.as_ref(),
            "rows are named by decision id"
        );
        assert_eq!(row.source, "log:test");
        assert_eq!(row.request, crate::log::testing::BODY);
    }
}

#[test]
fn costs_come_from_the_config_prices_else_the_record() {
    let config = priced_config();
    let none = None;
    let (row, _) = row(&escalated(&[("small", "mid")], 200), "s", none, &config).unwrap();
    for tier in TIERS {
        let outcome = &row.outcomes[tier];
        assert!(
            (outcome.cost_usd - micro_usd(tier) / 1e6).abs() < 1e-15,
            "{tier}"
        );
        assert_eq!(outcome.cost_estimated, tier != "mid", "{tier}");
        assert_eq!(outcome.model, tier);
    }

    // Without usage, the logged costs price the served, top and decided tiers.
    let mut unmetered = escalated(&[("small", "mid")], 200);
    unmetered.usage = None;
    unmetered.cost_micro_usd = Some(4_000.0);
    unmetered.top_tier_cost_micro_usd = Some(30_000.0);
    unmetered.decided_cost_micro_usd = Some(300.0);
    let (row, _) = super::row(&unmetered, "s", none, &config).unwrap();
    let costs: Vec<f64> = TIERS.iter().map(|t| row.outcomes[*t].cost_usd).collect();
    assert_eq!(costs, [0.0003, 0.004, 0.03]);
    unmetered.decided_cost_micro_usd = None;
    assert_eq!(
        super::row(&unmetered, "s", none, &config).err(),
        Some(SkipReason::Unpriced)
    );
}

#[test]
fn every_record_is_a_row_or_a_counted_skip() {
    let config = priced_config();
    let mut records = vec![
        record("ok-1", 0, "small"),
        record("ok-2", 0, "small"),
        overridden("small", "mid"),
        record("mid", 0, "mid"),
    ];
    let mut bodiless = record("bodiless", 0, "small");
    bodiless.request = None;
    let mut anthropic = record("anthropic", 0, "small");
    anthropic.api = "anthropic_messages".into();
    let mut failed = record("failed", 0, "small");
    failed.status = Some(429);
    records.extend([bodiless, anthropic, failed]);
    let logs = [
        memory_log("/var/log/envoy/day-1.log", &records, 4),
        memory_log("day-2.log", &[record("mid-2", 0, "mid")], 1),
    ];
    let from_log = rows_from_logs(&logs, &Feedback::default(), &config).unwrap();
    assert_eq!(from_log.records, 8);
    assert_eq!(from_log.rows(), 3);
    assert_eq!(from_log.lines_not_records, 5);
    assert_eq!(from_log.sources.len(), 1, "a log without rows is no source");
    assert_eq!(from_log.sources[0].name, "/var/log/envoy/day-1.log");
    assert_eq!(from_log.sources[0].rows[0].source, "log:day-1");
    assert_eq!(from_log.by_rule.get(&LabelRule::Served), Some(&2));
    assert_eq!(from_log.by_rule.get(&LabelRule::Override), Some(&1));
    let skipped: Vec<(SkipReason, usize)> =
        from_log.skipped.iter().map(|(r, n)| (*r, *n)).collect();
    assert_eq!(
        skipped,
        [
            (SkipReason::NoRequestBody, 1),
            (SkipReason::OtherApi, 1),
            (SkipReason::NoSuccess, 1),
            (SkipReason::NoLabelInformation, 2),
        ]
    );
    let summary = from_log.summary();
    assert!(
        summary.starts_with("from the log: 3 rows of 8 records (5 lines not records); by label rule: feedback 0, override 1, escalation 0, served 2\n"),
        "{summary}"
    );
    assert!(
        summary.contains("skipped 5 records: 1 without a request body, "),
        "{summary}"
    );
}

#[test]
fn label_rules_left_out_skip_their_records_instead_of_weakening_them() {
    let config = priced_config();
    let logs = one_log(vec![
        record("served", 0, "small"),
        overridden("small", "mid"),
        escalated(&[("small", "mid")], 200),
        record("graded", 0, "frontier"),
    ]);
    let grades = feedback(r#"{"decision_id": "d-graded", "correct_tier": "mid"}"#);
    let trusted = [LabelRule::Feedback, LabelRule::Override];
    let from_log = rows_from_logs_by(&logs, &grades, &config, &trusted).unwrap();
    assert_eq!(from_log.rows(), 2);
    assert_eq!(from_log.by_rule.get(&LabelRule::Feedback), Some(&1));
    assert_eq!(from_log.by_rule.get(&LabelRule::Override), Some(&1));
    assert_eq!(from_log.skipped.get(&SkipReason::RuleNotUsed), Some(&2));
    let all = rows_from_logs(&logs, &grades, &config).unwrap();
    assert_eq!(
        all.rows(),
        4,
        "every rule: the escalation and the quiet answer label too"
    );
    assert_eq!(LabelRule::from_name("served"), Some(LabelRule::Served));
    assert_eq!(LabelRule::from_name("verified"), None);
}

#[test]
fn tiers_must_carry_the_trainers_names() {
    let config = |json: &str| Config::from_json(json.as_bytes()).unwrap();
    let none = Feedback::default();
    let custom = config(r#"{"tiers": [{"name": "cheap", "max_score": 0.5}, {"name": "dear"}]}"#);
    let error = rows_from_logs(&NO_LOGS, &none, &custom).unwrap_err();
    assert!(
        error.contains("(cheap, dear) must be named among small, mid, frontier"),
        "{error}"
    );
    let reversed =
        config(r#"{"tiers": [{"name": "frontier", "max_score": 0.5}, {"name": "small"}]}"#);
    assert!(rows_from_logs(&NO_LOGS, &none, &reversed).is_err());
    let two = config(r#"{"tiers": [{"name": "small", "max_score": 0.5}, {"name": "frontier"}]}"#);
    assert!(rows_from_logs(&NO_LOGS, &none, &two).is_ok());
}

/// A tier skipped by its open breaker was never asked, and one that was down (refused, reset, timed
/// out, rate-limited, a 5xx) did not answer: neither says the request was hard for it. Without that
/// evidence the record is a quiet answer from mid, which says nothing about small.
#[test]
fn an_unavailable_tier_says_nothing_about_the_request() {
    for cause in [
        "circuit_open",
        "status_5xx",
        "status_429",
        "reset",
        "connect_failure",
        "timeout",
    ] {
        let mut unavailable = escalated(&[("small", "mid")], 200);
        unavailable.escalations[0].cause = cause.into();
        assert!(
            label(&unavailable, None, &TIERS).is_err(),
            "{cause}: small must not be labelled failed"
        );
    }
    for cause in [
        "empty",
        "truncated",
        "refusal",
        "invalid_json",
        "stream_error",
    ] {
        let mut weak = escalated(&[("small", "mid")], 200);
        weak.escalations[0].cause = cause.into();
        let labelled = label(&weak, None, &TIERS).unwrap();
        assert_eq!(labelled.rule, LabelRule::Escalation, "{cause}");
        assert_eq!(
            labelled.quality,
            vec![Some(0.0), Some(1.0), Some(1.0)],
            "{cause}"
        );
    }
    // An outage of small, then a weak answer of mid: mid failed the request, small says nothing
    // beyond what mid's failure implies for a cheaper tier.
    let mut mixed = escalated(&[("small", "mid"), ("mid", "frontier")], 200);
    mixed.escalations[0].cause = "status_5xx".into();
    let labelled = label(&mixed, None, &TIERS).unwrap();
    assert_eq!(labelled.quality, vec![Some(0.0), Some(0.0), Some(1.0)]);
}

/// Feedback labels through the decision id; a row whose key names no record or several labels
/// nothing, and the rows it would have labelled keep the label the traffic gives them.
#[test]
fn feedback_joins_on_the_decision_id_and_skips_unmatched_and_ambiguous_rows() {
    let config = priced_config();
    let mut first = record("a", 0, "small");
    first.request_id = "chosen-by-client".into();
    let mut second = record("b", 1, "small");
    second.request_id = "chosen-by-client".into();
    let third = record("c", 2, "small");
    let grades = feedback(
        r#"{"decision_id": "d-a", "correct_tier": "frontier"}
{"request_id": "chosen-by-client", "correct_tier": "frontier"}
{"decision_id": "no-such-decision", "correct_tier": "mid"}
{"request_id": "c", "correct_tier": "mid"}"#,
    );
    let from_log = rows_from_logs(&one_log(vec![first, second, third]), &grades, &config).unwrap();
    assert_eq!(
        (
            from_log.feedback.rows,
            from_log.feedback.matched,
            from_log.feedback.unmatched,
            from_log.feedback.ambiguous
        ),
        (4, 2, 1, 1)
    );
    let rows = &from_log.sources[0].rows;
    let quality = |id: &str| -> Vec<f64> {
        let row = rows.iter().find(|row| row.id == id).unwrap();
        TIERS
            .iter()
            .map(|tier| row.outcomes[*tier].quality)
            .collect()
    };
    assert_eq!(
        quality("d-a"),
        [0.0, 0.0, 1.0],
        "labelled by its decision id"
    );
    assert_eq!(
        quality("d-b"),
        [1.0, 1.0, 1.0],
        "the shared request id labels nothing"
    );
    assert_eq!(
        quality("d-c"),
        [0.0, 1.0, 1.0],
        "a request id naming one record"
    );
    assert_eq!(from_log.by_rule.get(&LabelRule::Feedback), Some(&2));
    assert_eq!(from_log.by_rule.get(&LabelRule::Served), Some(&1));
}

#[test]
fn a_quiet_answer_vouches_for_the_tier_envoy_served_it_from() {
    // Routed to mid, served by small's cluster: small answered, so every tier does.
    let labelled = label(
        &misrouted("m", 0, "mid", "tier_small", Some("small")),
        None,
        &TIERS,
    )
    .unwrap();
    assert_eq!(labelled.rule, LabelRule::Served);
    assert_eq!(labelled.quality, known([1.0, 1.0, 1.0]));
    // Served by a cluster no tier names: no tier's answer to learn from.
    assert_eq!(
        label(&misrouted("m", 0, "mid", "catch_all", None), None, &TIERS),
        Err(SkipReason::UnknownServer)
    );
}

#[test]
fn a_dropped_answer_fails_the_tier_envoy_served_it_from() {
    // Routed to mid, small's cluster gave the weak answer, frontier's call answered well: small
    // failed, mid never answered.
    let mut record = misrouted("m", 0, "mid", "tier_small", Some("small"));
    record.escalations = vec![Escalation {
        from: "mid".into(),
        to: "frontier".into(),
        cause: "empty".into(),
        status: Some(200),
        abandoned_usage: None,
    }];
    record.answered_by_escalation("frontier", "tier_frontier", None);
    let labelled = label(&record, None, &TIERS).unwrap();
    assert_eq!(labelled.rule, LabelRule::Escalation);
    assert_eq!(labelled.quality, vec![Some(0.0), None, Some(1.0)]);

    let mut unknown = misrouted("m", 0, "mid", "catch_all", None);
    unknown.escalations = record.escalations.clone();
    unknown.answered_by_escalation("frontier", "tier_frontier", None);
    assert_eq!(
        label(&unknown, None, &TIERS),
        Err(SkipReason::UnknownServer)
    );
}
