//! The soak's verdicts on what clients saw and on the counters: every client-visible error is one
//! the failing tier caused and escalation could not save; every escalation had a cause; Envoy's
//! counters equal what the driver sent, what the records say and what the tiers received.

use std::collections::BTreeMap;

use triage_core::{Applied, Config, DecisionRecord};

use super::client::Sent;
use super::flap::{Failure, FLAPPING_TIER};
use super::mix::{Route, TOP_TIER};
use super::outcome::Outcome;
use super::records::{describe, Join};
use crate::prometheus::Scrape;

/// Why a client-visible error is the upstream's doing, or why it is not.
pub fn explain_error(
    request: &Sent,
    record: Option<&DecisionRecord>,
) -> Result<&'static str, String> {
    let Some(failure) = request.failure else {
        return Err("the request asked for no failure".to_owned());
    };
    let Some(record) = record else {
        return Err("no record says which tier answered".to_owned());
    };
    if record.tier != FLAPPING_TIER {
        return Err(format!(
            "tier {} answered, not the failing {FLAPPING_TIER}",
            record.tier
        ));
    }
    let rescuable = escalation_could_act(record);
    match (failure, &request.outcome) {
        (Failure::Status(code), Outcome::Status(got)) if *got == code && !rescuable => {
            Ok("the tier's error status; nothing escalates this request")
        }
        // Envoy answers a reset before the response head with its own 503.
        (Failure::Reset, Outcome::Status(503)) if !rescuable => {
            Ok("Envoy's 503 for the tier's reset; nothing escalates this request")
        }
        (Failure::BrokenStream, Outcome::Truncated(_) | Outcome::NoResponse(_)) => {
            Ok("the tier broke its answer after the head: nothing can rescue it")
        }
        // The filter held the answer to check it; Envoy answers the break itself.
        (Failure::BrokenStream, Outcome::Status(502)) => {
            Ok("Envoy's 502 for a held answer the tier broke after its head: nothing rescues it")
        }
        (Failure::Status(_) | Failure::Reset, _) if rescuable => Err(format!(
            "escalation should have answered it from the next tier (cause {}, decided {})",
            record.cause, record.decided_tier
        )),
        (failure, outcome) => Err(format!(
            "{} does not make {}",
            failure.switch(),
            outcome.kind()
        )),
    }
}

/// Whether triage would move this request up after a failure (README "Escalation"): it routed it
/// itself (scored, by a rule, overridden), enforced, below the top tier.
fn escalation_could_act(record: &DecisionRecord) -> bool {
    ["scored", "rule", "override"].contains(&record.cause.as_str())
        && record.mode == Applied::Enforce
        && record.decided_tier != TOP_TIER
}

/// Every client-visible error, explained or not: (request, its explanation or why there is none).
pub fn errors<'s>(sent: &'s [Sent], join: &Join) -> Vec<(&'s Sent, Result<&'static str, String>)> {
    sent.iter()
        .filter(|request| request.outcome.is_error())
        .map(|request| {
            let record = join.by_request.get(request.request_id.as_str()).copied();
            (request, explain_error(request, record))
        })
        .collect()
}

/// The escalation causes a failure switch can give; a circuit-open skip needs none.
fn causes_of(failure: Failure) -> &'static [&'static str] {
    match failure {
        Failure::Status(429) => &["status_429"],
        Failure::Status(_) => &["status_5xx"],
        Failure::Reset => &["reset"],
        Failure::BrokenStream => &["reset", "empty", "truncated", "invalid_json"],
        Failure::Slow(_) => &[],
    }
}

/// Escalations of requests that asked for no failure, or for another one: a healthy answer must
/// never be replaced.
pub fn unexplained_escalations(sent: &[Sent], join: &Join) -> Vec<String> {
    let mut failures = Vec::new();
    for request in sent {
        let Some(record) = join.by_request.get(request.request_id.as_str()) else {
            continue;
        };
        for step in &record.escalations {
            let explained = step.cause == "circuit_open"
                || request
                    .failure
                    .is_some_and(|failure| causes_of(failure).contains(&step.cause.as_str()));
            if !explained {
                failures.push(format!(
                    "{} escalated {}->{} for {}",
                    describe(request),
                    step.from,
                    step.to,
                    step.cause
                ));
            }
        }
    }
    failures
}

/// One identity between a counter and what it must equal.
#[derive(Clone, Debug)]
pub struct Identity {
    pub what: String,
    pub counted: f64,
    pub expected: f64,
}

impl Identity {
    fn new(what: impl Into<String>, counted: f64, expected: f64) -> Identity {
        Identity {
            what: what.into(),
            counted,
            expected,
        }
    }

    pub fn holds(&self) -> bool {
        self.counted == self.expected
    }
}

/// What the counters are compared with.
pub struct Ledger<'a> {
    pub sent: &'a [Sent],
    pub records: &'a [DecisionRecord],
    pub scrape: &'a Scrape,
    pub config: &'a Config,
    /// Requests each tier's mock received, by tier.
    pub upstream: &'a BTreeMap<String, usize>,
}

impl Ledger<'_> {
    /// Every identity the soak checks; the report prints them all and the run fails on any that
    /// does not hold.
    pub fn identities(&self) -> Vec<Identity> {
        let mut identities = self.requests_against_the_driver();
        identities.extend(self.counters_against_the_records());
        identities.extend(self.upstream_against_the_records());
        identities
    }

    /// `triage_requests` against what the driver sent: the total, each cause, and the tier of every
    /// route that fixes one.
    fn requests_against_the_driver(&self) -> Vec<Identity> {
        let routed: Vec<Route> = self
            .sent
            .iter()
            .map(|request| request.shape.route)
            .filter(|route| *route != Route::Passthrough)
            .collect();
        let mut identities = vec![
            Identity::new(
                "triage_requests = routed requests sent",
                self.scrape.sum("triage_requests", &[]),
                routed.len() as f64,
            ),
            Identity::new(
                "triage_requests = decision records",
                self.scrape.sum("triage_requests", &[]),
                self.records.len() as f64,
            ),
            Identity::new(
                "triage_fail_open = 0 (every body was valid)",
                self.scrape.sum("triage_fail_open", &[]),
                0.0,
            ),
        ];
        for cause in ["scored", "rule", "override", "explicit_model", "fail_open"] {
            let sent = routed
                .iter()
                .filter(|route| route.cause() == Some(cause))
                .count();
            identities.push(Identity::new(
                format!("triage_requests{{cause={cause}}} = requests sent so"),
                self.scrape.sum("triage_requests", &[("cause", cause)]),
                sent as f64,
            ));
        }
        let mut fixed: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for route in &routed {
            if let (Some(cause), Some(tier)) = (route.cause(), route.tier()) {
                *fixed.entry((cause, tier)).or_default() += 1;
            }
        }
        for ((cause, tier), sent) in fixed {
            identities.push(Identity::new(
                format!("triage_requests{{cause={cause},tier={tier}}} = requests sent so"),
                self.scrape
                    .sum("triage_requests", &[("cause", cause), ("tier", tier)]),
                sent as f64,
            ));
        }
        identities
    }

    /// Every `triage_requests`, `triage_escalations`, `triage_tokens` and `triage_usage_unknown`
    /// series against the records (as the filter counts a record: the decided tier; tokens at the
    /// tier that served them, a dropped answer's at the tier that gave it).
    fn counters_against_the_records(&self) -> Vec<Identity> {
        let mut expected: BTreeMap<(&str, Labels), u64> = BTreeMap::new();
        let mut add = |family, labels: Labels, by: u64| {
            *expected.entry((family, labels)).or_default() += by;
        };
        for record in self.records {
            add(
                "triage_requests",
                labels(&[
                    ("cause", &record.cause),
                    ("mode", record.mode.as_str()),
                    ("tier", &record.decided_tier),
                ]),
                1,
            );
            for step in &record.escalations {
                let step_labels = [
                    ("cause", &*step.cause),
                    ("from", &step.from),
                    ("to", &step.to),
                ];
                add("triage_escalations", labels(&step_labels), 1);
            }
            if let Some(tier) = record.serving_tier() {
                match record.usage {
                    Some(usage) => {
                        add("triage_tokens", tokens(tier, "prompt"), usage.prompt_tokens);
                        let completion = tokens(tier, "completion");
                        add("triage_tokens", completion, usage.completion_tokens);
                    }
                    None => add("triage_usage_unknown", labels(&[("tier", tier)]), 1),
                }
            }
            for dropped in record.dropped_answers(self.config) {
                if let Some(tier) = dropped.tier {
                    add(
                        "triage_tokens",
                        tokens(tier, "prompt"),
                        dropped.usage.prompt_tokens,
                    );
                    let completion = tokens(tier, "completion");
                    add("triage_tokens", completion, dropped.usage.completion_tokens);
                }
            }
        }
        let families = [
            "triage_requests",
            "triage_escalations",
            "triage_tokens",
            "triage_usage_unknown",
        ];
        let mut identities = Vec::new();
        for family in families {
            // Every series Envoy has, and every one the records call for.
            let mut series: BTreeMap<Labels, f64> = BTreeMap::new();
            for sample in self.scrape.matching(family, &[]) {
                series.insert(sample.labels.clone(), sample.value);
            }
            for (family_of, labels) in expected.keys() {
                if *family_of == family {
                    series.entry(labels.clone()).or_insert(f64::NAN);
                }
            }
            let (mut counted, mut wanted, mut wrong) = (0.0, 0.0, Vec::new());
            for (labels, value) in &series {
                let want = expected
                    .get(&(family, labels.clone()))
                    .copied()
                    .unwrap_or(0) as f64;
                counted += value;
                wanted += want;
                if *value != want {
                    wrong.push(format!(
                        "{}: {value} counted, {want} in the records",
                        show(labels)
                    ));
                }
            }
            let what = if wrong.is_empty() {
                format!("{family}: each of {} series = the records", series.len())
            } else {
                format!("{family} differs from the records in {}", wrong.join("; "))
            };
            identities.push(Identity::new(what, counted, wanted));
        }
        identities
    }

    /// What each tier's mock received against the attempts the records name: the routed attempt
    /// (at the next tier when the decided one's breaker was open) and each escalation's call, plus
    /// the pass-through calls, which take the default route.
    fn upstream_against_the_records(&self) -> Vec<Identity> {
        let mut attempts: BTreeMap<&str, usize> = BTreeMap::new();
        for record in self.records {
            let skipped = record
                .escalations
                .first()
                .filter(|step| step.cause == "circuit_open");
            let routed_to = skipped.map_or(record.decided_tier.as_str(), |step| step.to.as_str());
            *attempts.entry(routed_to).or_default() += 1;
            for step in &record.escalations {
                if step.cause != "circuit_open" {
                    *attempts.entry(step.to.as_str()).or_default() += 1;
                }
            }
        }
        let passthrough = self
            .sent
            .iter()
            .filter(|request| request.shape.route == Route::Passthrough)
            .count();
        *attempts.entry(self.config.default_tier_name()).or_default() += passthrough;
        self.upstream
            .iter()
            .map(|(tier, received)| {
                Identity::new(
                    format!("requests tier {tier}'s upstream received = attempts the records name"),
                    *received as f64,
                    attempts.get(tier.as_str()).copied().unwrap_or(0) as f64,
                )
            })
            .collect()
    }
}

/// A series' labels, as the Prometheus scrape holds them.
type Labels = BTreeMap<String, String>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

fn tokens(tier: &str, kind: &str) -> Labels {
    labels(&[("kind", kind), ("tier", tier)])
}

fn show(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", pairs.join(","))
}
