//! Decision ids through real Envoy: each decision gets a random UUIDv4 (the filter's `random_get`
//! answered by Envoy's V8 host) that the client cannot choose, returned in `x-triage-decision-id`
//! and written in the access log's record; feedback joins on it, and feedback keyed on a request id
//! the client chose labels nothing.
// The helpers below are test code too (clippy only exempts `#[test]` functions).
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::Path;

use serde_json::{json, Value};
use triage_core::DecisionRecord;
use triage_e2e::bodies::{self, CHAT, NEUTRAL};
use triage_e2e::check::upstream_header;
use triage_e2e::plugin_config;
use triage_e2e::{Request, Stack};
use triage_learn::log::feedback::Feedback;
use triage_learn::log::records;
use triage_learn::log::rows::{rows_from_logs, LabelRule};
use triage_learn::report;

const DECISION_ID: &str = "x-triage-decision-id";
const CLIENT_ID: &str = "chosen-by-the-client";
const TIERS: [&str; 3] = ["small", "mid", "frontier"];

fn is_uuid_v4(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.iter().map(|group| group.len()).eq([8, 4, 4, 4, 12])
        && id
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

fn feedback(rows: &[Value]) -> Feedback {
    let text: String = rows.iter().map(|row| format!("{row}\n")).collect();
    let mut feedback = Feedback::default();
    feedback
        .parse(Cursor::new(text), Path::new("feedback.jsonl"), &TIERS)
        .expect("feedback rows parse");
    feedback
}

#[test]
fn one_client_request_id_gives_two_decisions_and_its_feedback_labels_nothing() {
    let config = plugin_config::shipped();
    let stack = Stack::start(&config);
    // The second request also forges a decision id: the filter drops it and makes its own.
    let forged = "00000000-0000-4000-8000-000000000000";
    let requests = [
        Request::post(CHAT, bodies::chat(Some("auto"), NEUTRAL)).header("x-request-id", CLIENT_ID),
        Request::post(CHAT, bodies::chat(Some("auto"), NEUTRAL))
            .header("x-request-id", CLIENT_ID)
            .header(DECISION_ID, forged),
    ];
    let responses: Vec<_> = requests.iter().map(|r| stack.send(r)).collect();
    let ids: Vec<String> = responses
        .iter()
        .map(|response| {
            assert_eq!(response.status, 200);
            response
                .header(DECISION_ID)
                .expect("every decided response names its decision")
                .to_owned()
        })
        .collect();
    assert_ne!(ids[0], ids[1], "two decisions, two ids");
    for id in &ids {
        assert!(is_uuid_v4(id), "{id}");
        assert_ne!(id, forged);
    }
    // What makes the request id unfit as a key: the shipped stack keeps a loopback client's own.
    for response in &responses {
        assert_eq!(
            response.header("x-request-id"),
            Some(CLIENT_ID),
            "Envoy kept the client's request id (if this changes, update the README's threat notes)"
        );
    }
    for (_, received) in stack.received() {
        assert_eq!(
            upstream_header(&received, DECISION_ID),
            None,
            "neither the forged nor the real decision id goes upstream"
        );
    }

    let lines = stack.access_log(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let logs = [stack.access_log_path()];
    let logged: Vec<(Option<String>, String)> = records::<_, DecisionRecord>(&logs[0], u64::MAX)
        .expect("the access log opens")
        .map(|record| {
            let record = record.expect("the access log reads as decision records");
            (record.decision_id, record.request_id)
        })
        .collect();
    assert_eq!(
        logged,
        [
            (Some(ids[0].clone()), CLIENT_ID.to_owned()),
            (Some(ids[1].clone()), CLIENT_ID.to_owned())
        ],
        "header and record name the same decisions"
    );

    // Feedback keyed on the client's id labels nothing; keyed on a decision id, exactly that record.
    let graded = feedback(&[
        json!({"request_id": CLIENT_ID, "correct_tier": "frontier"}),
        json!({"decision_id": ids[1], "correct_tier": "frontier"}),
        json!({"decision_id": forged, "correct_tier": "frontier"}),
    ]);
    let report = report::build(&logs, &graded, &TIERS, None).expect("the access log reads");
    assert_eq!(report.inputs.feedback_rows, 3);
    assert_eq!(
        report.inputs.feedback_ambiguous, 1,
        "the client's id names two records"
    );
    assert_eq!(
        report.inputs.feedback_unmatched, 1,
        "the forged id names none"
    );
    assert_eq!(report.totals.labelled, 1, "only the decision-id row grades");
    let text = report::render_text(&report);
    assert!(
        text.lines().next().is_some_and(|line| line
            .ends_with("feedback: 3 rows, 1 matching no record, 1 matching several records")),
        "{text}"
    );

    let config = triage_core::Config::from_json(config.to_string().as_bytes()).expect("config");
    let from_log = rows_from_logs(&logs, &graded, &config).expect("rows");
    assert_eq!(from_log.records, 2);
    assert_eq!(from_log.by_rule.get(&LabelRule::Feedback), Some(&1));
    let labelled: Vec<&str> = from_log.sources[0]
        .rows
        .iter()
        // Only feedback says a tier failed: a served record never marks one 0.
        .filter(|row| row.outcomes.get("small").map(|small| small.quality) == Some(0.0))
        .map(|row| row.id.as_str())
        .collect();
    assert_eq!(
        labelled,
        [ids[1].as_str()],
        "the graded row is the second decision's"
    );

    // Only the client's request id as a key, alone: nothing is labelled at all.
    let client_keyed = feedback(&[json!({"request_id": CLIENT_ID, "correct_tier": "frontier"})]);
    let from_log = rows_from_logs(&logs, &client_keyed, &config).expect("rows");
    assert_eq!(from_log.by_rule.get(&LabelRule::Feedback), None);
    assert_eq!(from_log.feedback.ambiguous, 1);
}

/// Envoy's `random_get` is a real source: many decisions, as many distinct version-4 ids.
#[test]
fn every_decision_through_envoy_gets_a_distinct_v4_id() {
    let stack = Stack::start(&plugin_config::shipped());
    let mut ids = BTreeSet::new();
    let total = 30;
    for _ in 0..total {
        let response = stack.send(
            &Request::post(CHAT, bodies::chat(Some("auto"), NEUTRAL))
                .header("x-request-id", CLIENT_ID),
        );
        let id = response
            .header(DECISION_ID)
            .expect("decision id")
            .to_owned();
        assert!(is_uuid_v4(&id), "{id}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), total);
    let passed = stack.send(&Request::get("/v1/models"));
    assert_eq!(passed.header(DECISION_ID), None, "no decision, no id");
}
