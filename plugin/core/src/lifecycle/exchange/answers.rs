//! Tiers that answer as a JSON document says, and what came of the exchange as JSON: how
//! `triage route --answers FILE` and the web package's `exchange` show what the filter would do with
//! those answers (the body each tier got, escalations, the client's response, the decision record).
//!
//! The document is one JSON object keyed by tier name, every tier of the config present:
//! `{"small": {"status": 503, "body": "overloaded"}, "mid": {"body": {...}}, "frontier": "reset"}`.
//! An answer has `status` (200 when absent), `content_type` (`application/json` when absent),
//! `headers` (an object of strings) and `body` (a string as it is, or JSON written as JSON); `"reset"`
//! is a tier whose connection closes before it answers.

use std::collections::HashMap;
use std::rc::Rc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{run, Answer, ClientRequest, HostSettings, Outcome, Reply, Sent, Upstreams};
use crate::lifecycle::BreakerBoard;
use crate::{ApiFormat, Config};

#[derive(Deserialize)]
#[serde(untagged)]
enum RawReply {
    Reset(String),
    Answer(RawAnswer),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnswer {
    status: Option<u16>,
    content_type: Option<String>,
    #[serde(default)]
    headers: HashMap<String, String>,
    #[serde(default)]
    body: Value,
}

/// Every tier's reply, found by the cluster a request went to.
pub struct TierAnswers {
    by_cluster: HashMap<String, Reply>,
}

impl TierAnswers {
    /// Reads the document; an unknown or missing tier, or a reply that is neither an answer nor
    /// `"reset"`, is an error that says which.
    pub fn from_json(json: &[u8], config: &Config) -> Result<TierAnswers, String> {
        let raw: HashMap<String, RawReply> =
            serde_json::from_slice(json).map_err(|error| error.to_string())?;
        let names = config.tier_names();
        if let Some(unknown) = raw.keys().find(|name| !names.contains(&name.as_str())) {
            return Err(format!(
                "{unknown:?} is not a tier of the config ({})",
                names.join(", ")
            ));
        }
        let missing: Vec<&str> = names
            .iter()
            .filter(|name| !raw.contains_key(**name))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "no answer for {}: every tier needs one (\"reset\" for a tier that is down)",
                missing.join(", ")
            ));
        }
        let mut by_cluster = HashMap::new();
        for (index, name) in names.iter().enumerate() {
            let reply = match raw.get(*name) {
                Some(RawReply::Reset(word)) if word == "reset" => Reply::Reset,
                Some(RawReply::Reset(other)) => {
                    return Err(format!(
                        "{name}: {other:?} is neither an answer object nor \"reset\""
                    ))
                }
                Some(RawReply::Answer(answer)) => Reply::Answer(answer.to_answer()),
                None => Reply::Reset,
            };
            let cluster = config.tier_cluster(index).unwrap_or_default();
            by_cluster.insert(cluster.to_string(), reply);
        }
        Ok(TierAnswers { by_cluster })
    }
}

impl RawAnswer {
    fn to_answer(&self) -> Answer {
        let body = match &self.body {
            Value::String(text) => text.clone().into_bytes(),
            Value::Null => Vec::new(),
            json => json.to_string().into_bytes(),
        };
        let content_type = self.content_type.as_deref().unwrap_or("application/json");
        let mut answer = Answer::new(self.status.unwrap_or(200), content_type, body);
        let mut extra: Vec<_> = self.headers.iter().collect();
        extra.sort();
        for (name, value) in extra {
            answer
                .headers
                .push((name.to_ascii_lowercase(), value.clone()));
        }
        answer
    }
}

impl Upstreams for TierAnswers {
    /// A cluster no tier names (a route table that sent the request elsewhere) resets.
    fn reply(&mut self, request: &Sent) -> Reply {
        self.by_cluster
            .get(&request.cluster)
            .cloned()
            .unwrap_or(Reply::Reset)
    }
}

/// `body` posted by a client to `format`'s endpoint, through the filter's whole lifecycle with the
/// tiers answering from `answers` and the clock starting at `start_nanos`, shown by [`summary`].
/// The decision id is a fresh random one, as the filter draws it.
pub fn run_shown(
    config: &Rc<Config>,
    breakers: Rc<dyn BreakerBoard>,
    format: ApiFormat,
    body: Vec<u8>,
    answers: &mut TierAnswers,
    start_nanos: u64,
) -> Value {
    let request = ClientRequest::post(format, body);
    let settings = HostSettings {
        start_nanos,
        decision_id: crate::new_decision_id().ok(),
        ..HostSettings::default()
    };
    let outcome = run(config, breakers, &request, answers, &settings);
    summary(config, &outcome)
}

/// What an exchange shows: where each attempt went with which model, the client's status and
/// triage headers, and the record.
pub fn summary(config: &Config, outcome: &Outcome) -> Value {
    let attempt = |cluster: &str, body: &[u8]| {
        let model = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|body| body.get("model").cloned())
            .unwrap_or(Value::Null);
        let tier = (0..config.tier_names().len())
            .find(|index| config.tier_cluster(*index) == Some(cluster))
            .and_then(|index| config.tier_name(index));
        json!({"tier": tier, "cluster": cluster, "model": model})
    };
    let triage_headers: serde_json::Map<String, Value> = outcome
        .response
        .headers
        .iter()
        .filter(|(name, _)| name.starts_with("x-triage-"))
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    json!({
        "upstream": outcome.routed.as_ref().map(|sent| attempt(&sent.cluster, &sent.body)),
        "calls": outcome.calls.iter().map(|call| attempt(&call.cluster, &call.body)).collect::<Vec<_>>(),
        "response": {"status": outcome.response.status, "headers": triage_headers},
        "record": outcome.record.as_ref().map(|record| serde_json::to_value(record).unwrap_or_default()),
    })
}
