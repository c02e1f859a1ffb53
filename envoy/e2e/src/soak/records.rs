//! The decision records Envoy wrote during the soak, and their join to the requests sent: exactly
//! one record per routed request, none for a pass-through, each naming the decision id its client
//! got.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use triage_core::DecisionRecord;

use super::client::Sent;
use super::flap::Failure;
use super::mix::Route;
use super::outcome::Outcome;

/// Waits until Envoy has flushed the log: its size unchanged for a second (the harness's Envoy
/// flushes every 100 ms), or 15 s.
pub fn wait_until_written(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let size = || std::fs::metadata(path).map_or(0, |meta| meta.len());
    let mut last = size();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        let now = size();
        if now == last {
            return;
        }
        last = now;
    }
}

/// Every record in the log, read line by line (the log holds request bodies up to 64 KiB each, so
/// it is never read whole); the bodies are dropped. A line that is not a record is a failure.
pub fn read(path: &Path) -> Result<Vec<DecisionRecord>, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot open the access log {}: {e}", path.display()))?;
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("access log line {}: {e}", index + 1))?;
        let mut record: DecisionRecord = serde_json::from_str(&line).map_err(|e| {
            let start: String = line.chars().take(200).collect();
            format!(
                "access log line {} is not a decision record ({e}): {start}",
                index + 1
            )
        })?;
        record.request = None;
        records.push(record);
    }
    Ok(records)
}

/// Each request's record, by request id, once the join held; the failures when it did not.
pub struct Join<'r> {
    pub by_request: HashMap<&'r str, &'r DecisionRecord>,
    pub failures: Vec<String>,
}

/// Joins records to requests: by the request id the client chose (Envoy keeps it), checked against
/// the decision id the response carried.
pub fn join<'r>(sent: &[Sent], records: &'r [DecisionRecord]) -> Join<'r> {
    let mut failures = Vec::new();
    let mut by_request: HashMap<&str, Vec<&DecisionRecord>> = HashMap::new();
    for record in records {
        by_request
            .entry(record.request_id.as_str())
            .or_default()
            .push(record);
    }
    let mut decision_ids = HashSet::new();
    for record in records {
        match &record.decision_id {
            None => failures.push(format!(
                "record of {} has no decision id",
                record.request_id
            )),
            Some(id) if !decision_ids.insert(id.as_str()) => {
                failures.push(format!("decision id {id} is in two records"))
            }
            Some(_) => {}
        }
    }
    let mut joined = HashMap::new();
    let mut seen = HashSet::new();
    for request in sent {
        seen.insert(request.request_id.as_str());
        let found = by_request
            .get(request.request_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        let routed = request.shape.route != Route::Passthrough;
        match (routed, found) {
            (true, [record]) => {
                if let Some(problem) = decision_id_problem(request, record) {
                    failures.push(problem);
                }
                joined.insert(record.request_id.as_str(), *record);
            }
            (true, []) => failures.push(format!("no record for {}", describe(request))),
            (true, _) => {
                failures.push(format!("{} records for {}", found.len(), describe(request)))
            }
            (false, []) => {}
            (false, _) => failures.push(format!(
                "a record for the pass-through call {}",
                request.request_id
            )),
        }
    }
    for request_id in by_request.keys() {
        if !seen.contains(request_id) {
            failures.push(format!(
                "a record for {request_id:?}, which the soak never sent"
            ));
        }
    }
    Join {
        by_request: joined,
        failures,
    }
}

/// A routed response whose head arrived names its decision and its record the same decision and
/// status, except where Envoy answered past the filter ([`answered_past_the_filter`]).
fn decision_id_problem(request: &Sent, record: &DecisionRecord) -> Option<String> {
    let status = request.head_status?;
    if answered_past_the_filter(request) {
        return None;
    }
    match (&request.decision_id, &record.decision_id) {
        (Some(got), Some(recorded)) if got != recorded => Some(format!(
            "{} got decision id {got}, its record says {recorded}",
            describe(request)
        )),
        (None, _) => Some(format!(
            "{} got a response without x-triage-decision-id ({})",
            describe(request),
            request.outcome.kind()
        )),
        _ if record.status != Some(status) => Some(format!(
            "{} got status {status}, its record says {:?}",
            describe(request),
            record.status
        )),
        _ => None,
    }
}

/// Envoy's own 502 for an answer the tier broke after its head while the filter held it to check
/// it (a JSON answer of a tier escalation may leave): Envoy sends it past the filter, so it carries
/// no decision id and the record keeps the status of the tier's head (200). A gap in the filter
/// this soak found; the join still holds by request id, and the report counts these.
pub fn answered_past_the_filter(request: &Sent) -> bool {
    request.failure == Some(Failure::BrokenStream)
        && request.outcome == Outcome::Status(502)
        && request.decision_id.is_none()
}

pub fn describe(request: &Sent) -> String {
    format!(
        "{} ({} {}, {} bytes, {}{})",
        request.request_id,
        request.shape.format.as_str(),
        if request.shape.stream {
            "stream"
        } else {
            "JSON"
        },
        request.shape.size,
        request.shape.route.name(),
        request.failure.map_or_else(String::new, |failure| format!(
            ", x-mock-fail {}",
            failure.switch()
        ))
    )
}
