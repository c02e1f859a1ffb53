//! The decision record: one JSON object per routed request, written by the filter into Envoy filter
//! state for the access log, and read back by `triage report` and `triage train --from-log`.
//!
//! Every field is always written (null when unknown), so the log has one fixed schema; unknown
//! usage stays null, never zero.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::config::Config;
use crate::decision::{Cause, Decision};
use crate::identity::Identity;
use crate::mode::Applied;
use crate::usage::Usage;

mod served;
pub use served::{DroppedAnswer, Mismatch, MismatchCause};

/// Bumped when a field changes meaning; readers refuse records of another version. Version 2 added
/// `decision_id`, the key feedback rows join on (version 1 joined on the client-influenced
/// `request_id`). Version 3 added the verified `caller` and `tenant`: a version 2 override was
/// honoured for anyone sending an allowlisted header, so it is no label to learn from; and
/// `served_cluster` and `mismatch`: `tier` and the cost follow the cluster Envoy says served the
/// answer, where version 2 assumed the tier triage routed to.
pub const RECORD_VERSION: u32 = 3;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverrideRecord {
    /// The tier triage chose.
    pub from: String,
    /// The tier the caller asked for.
    pub to: String,
}

/// One move up a tier: after a failure or a weak answer, or past a tier whose circuit breaker is open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Escalation {
    pub from: String,
    pub to: String,
    /// e.g. `status_5xx`, `timeout`, `empty`, `truncated`, `circuit_open`.
    pub cause: String,
    /// The status the `to` tier answered; null when it did not answer or was not asked yet.
    pub status: Option<u16>,
    /// What the dropped `from` answer used (billed all the same); null when unknown.
    pub abandoned_usage: Option<Usage>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub v: u32,
    /// A random UUIDv4 made by the filter for this decision (the client gets it in
    /// `x-triage-decision-id`): the key feedback rows join on. Null only when the host's random
    /// source failed (the filter logged why).
    pub decision_id: Option<String>,
    /// The request's `x-request-id` as Envoy passed it on: a correlation value for other logs, not a
    /// key. Client-influenced: Envoy keeps a client's own id from a peer it treats as internal (the
    /// shipped stack's loopback clients are), so two records may share one; empty when absent.
    pub request_id: String,
    /// When the request headers arrived, milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// The caller the gateway verified (the config's `identity.caller`); null when anonymous.
    /// Overrides are honoured only for a verified caller, so an override record always has one.
    pub caller: Option<String>,
    /// The tenant the gateway verified (`identity.tenant`); null when anonymous.
    pub tenant: Option<String>,
    /// `openai_chat`, `openai_responses` or `anthropic_messages`.
    pub api: String,
    pub mode: Applied,
    /// The tier that served the request: the tier whose cluster is `served_cluster`. When Envoy
    /// named no cluster, or one no tier names (see `mismatch`), the tier triage routed to: the
    /// decided one when enforced (or the one escalation moved to), the default tier (where the
    /// shipped routes send un-routed requests) when shadowed.
    pub tier: String,
    /// The tier triage chose (after an allowed override).
    pub decided_tier: String,
    /// The upstream cluster of the answer the client got, as Envoy named it (`xds.cluster_name`),
    /// or the cluster triage itself sent an escalated attempt to; null when there was none (a
    /// reply no upstream gave, such as the filter's 413).
    pub served_cluster: Option<String>,
    /// Envoy served the attempt triage routed from another cluster than the routed tier's; null
    /// when it used the routed tier's own.
    pub mismatch: Option<Mismatch>,
    /// `scored`, `rule`, `explicit_model`, `fail_open` or `override`.
    pub cause: String,
    pub rule: Option<String>,
    pub fail_open: Option<String>,
    pub score: Option<f64>,
    pub reasons: Vec<String>,
    pub requested_model: Option<String>,
    /// The model written into the body; null when the body went upstream untouched.
    pub model: Option<String>,
    #[serde(rename = "override")]
    pub override_: Option<OverrideRecord>,
    pub escalations: Vec<Escalation>,
    /// The response status the client got; null when the stream ended without one.
    pub status: Option<u16>,
    pub usage: Option<Usage>,
    /// What the serving tier charged, plus any dropped answers of cheaper tiers (null without usage
    /// or price, or when a cluster no tier names gave one of the answers).
    pub cost_micro_usd: Option<f64>,
    /// What the top tier would have charged for the same tokens: savings are the difference.
    pub top_tier_cost_micro_usd: Option<f64>,
    /// What the decided tier would have charged for the same tokens (differs from the cost only when
    /// shadowed): the priced effect of enforcing.
    pub decided_cost_micro_usd: Option<f64>,
    /// Time spent deciding and rewriting, in microseconds.
    pub decision_us: u64,
    /// The request body as the client sent it, when the config asks for bodies and it fits.
    pub request: Option<Box<RawValue>>,
}

/// What the filter knows about a request when it has decided.
pub struct RecordStart<'a> {
    pub decision_id: Option<&'a str>,
    pub request_id: &'a str,
    pub start_ms: u64,
    pub identity: Identity<'a>,
    pub api: &'a str,
    pub mode: Applied,
    pub decision_us: u64,
    /// The body as received; kept only when the config allows and it is JSON.
    pub body: Option<&'a [u8]>,
}

impl DecisionRecord {
    pub fn new(config: &Config, decision: &Decision, start: RecordStart) -> DecisionRecord {
        let tier = match start.mode {
            Applied::Enforce => decision.tier.clone(),
            Applied::Shadow => config.default_tier_name().to_string(),
        };
        let request = start
            .body
            .filter(|body| body.len() <= config.record_body_bytes())
            .and_then(|body| serde_json::from_slice::<Box<RawValue>>(&one_line(body)).ok());
        DecisionRecord {
            v: RECORD_VERSION,
            decision_id: start.decision_id.map(str::to_string),
            request_id: start.request_id.to_string(),
            start_ms: start.start_ms,
            caller: start.identity.caller.map(str::to_string),
            tenant: start.identity.tenant.map(str::to_string),
            api: start.api.to_string(),
            mode: start.mode,
            tier,
            decided_tier: decision.tier.clone(),
            served_cluster: None,
            mismatch: None,
            cause: decision.cause.kind().to_string(),
            rule: match &decision.cause {
                Cause::Rule(name) => Some(name.clone()),
                _ => None,
            },
            fail_open: match &decision.cause {
                Cause::FailOpen(cause) => Some(cause.as_str().to_string()),
                _ => None,
            },
            score: decision.score,
            reasons: decision.reasons.clone(),
            requested_model: decision.requested_model.clone(),
            model: match start.mode {
                Applied::Enforce => decision.model.clone(),
                Applied::Shadow => None,
            },
            override_: match &decision.cause {
                Cause::Override { from } => Some(OverrideRecord {
                    from: from.clone(),
                    to: decision.tier.clone(),
                }),
                _ => None,
            },
            escalations: Vec::new(),
            status: None,
            usage: None,
            cost_micro_usd: None,
            top_tier_cost_micro_usd: None,
            decided_cost_micro_usd: None,
            decision_us: start.decision_us,
            request,
        }
    }

    /// Fills in the response's status and usage, names the serving tier, and prices the usage at
    /// the serving, top and decided tiers. Served by a cluster no tier names, the answer's price is
    /// unknown: every cost stays null rather than being guessed from the routed tier.
    pub fn settle(&mut self, config: &Config, status: Option<u16>, usage: Option<Usage>) {
        self.status = status;
        self.usage = usage;
        let Some(serving) = self.serving_tier().map(str::to_string) else {
            self.cost_micro_usd = None;
            self.top_tier_cost_micro_usd = None;
            self.decided_cost_micro_usd = None;
            return;
        };
        self.tier = serving;
        let priced = |tier: &str| {
            let usage = usage?;
            config.price(tier).map(|price| price.cost_micro_usd(&usage))
        };
        let dropped: Option<f64> = self
            .dropped_answers(config)
            .map(|answer| answer.cost_micro_usd)
            .sum();
        self.cost_micro_usd = self
            .served_answer_cost(config)
            .zip(dropped)
            .map(|(served, dropped)| served + dropped);
        self.top_tier_cost_micro_usd = priced(config.top_tier_name());
        self.decided_cost_micro_usd = priced(&self.decided_tier);
    }

    /// One line of JSON.
    pub fn to_json(&self) -> String {
        // A record holds only strings, numbers and already-valid JSON: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The access log holds one record a line. Raw line breaks in JSON can only be whitespace (inside
/// strings they are escaped), so turning them into spaces keeps the body's meaning.
fn one_line(body: &[u8]) -> Vec<u8> {
    body.iter()
        .map(|byte| match byte {
            b'\n' | b'\r' => b' ',
            other => *other,
        })
        .collect()
}

#[cfg(test)]
mod tests;
