//! Decision records for tests: a served, priced, 2xx chat request to build on, and logs of them held
//! in memory.

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;
use triage_core::{
    Applied, Config, DecisionRecord, Mismatch, MismatchCause, Usage, RECORD_VERSION,
};

use super::LogSource;

/// Three priced tiers; 1,000 prompt and 100 completion tokens cost 210 µ$ on small, 3,500 on mid
/// and 21,000 on frontier.
pub const PRICED: &str = r#"{"tiers": [
  {"name": "small", "model": "s", "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
  {"name": "mid", "model": "m", "price": {"input_per_mtok": 2.5, "output_per_mtok": 10}},
  {"name": "frontier", "model": "f", "price": {"input_per_mtok": 15, "output_per_mtok": 60}}
]}"#;

pub const USAGE: Usage = Usage {
    prompt_tokens: 1_000,
    completion_tokens: 100,
};

/// What [`USAGE`] costs on each tier of [`PRICED`], in µ$.
pub fn micro_usd(tier: &str) -> f64 {
    match tier {
        "small" => 210.0,
        "mid" => 3_500.0,
        _ => 21_000.0,
    }
}

pub fn priced_config() -> Config {
    Config::from_json(PRICED.as_bytes()).unwrap()
}

pub const BODY: &str =
    r#"{"model":"auto","messages":[{"role":"user","content":"Classify: great!"}]}"#;

/// The decision id the test records carry: `d-<id>` (the filter's are UUIDs; the join does not care).
pub fn decision_id(id: &str) -> String {
    format!("d-{id}")
}

/// An enforced, scored request served by `tier` with a 2xx answer, priced as [`PRICED`] would;
/// its decision id is [`decision_id`]`(id)` and its request id `id`.
pub fn record(id: &str, start_ms: u64, tier: &str) -> DecisionRecord {
    DecisionRecord {
        v: RECORD_VERSION,
        decision_id: Some(decision_id(id)),
        request_id: id.to_string(),
        start_ms,
        caller: None,
        tenant: None,
        api: "openai_chat".to_string(),
        mode: Applied::Enforce,
        tier: tier.to_string(),
        decided_tier: tier.to_string(),
        served_cluster: Some(format!("tier_{tier}")),
        mismatch: None,
        cause: "scored".to_string(),
        rule: None,
        fail_open: None,
        score: Some(0.1),
        reasons: vec!["simple_task-1.00".to_string()],
        requested_model: Some("auto".to_string()),
        model: Some(format!("{tier}-model")),
        override_: None,
        escalations: Vec::new(),
        status: Some(200),
        usage: Some(USAGE),
        cost_micro_usd: Some(micro_usd(tier)),
        top_tier_cost_micro_usd: Some(micro_usd("frontier")),
        decided_cost_micro_usd: Some(micro_usd(tier)),
        decision_us: 20,
        request: Some(RawValue::from_string(BODY.to_string()).unwrap()),
    }
}

/// A [`record`] triage routed to `routed` whose routed attempt Envoy served from `cluster`, the
/// tier `served` owns (None: a cluster no tier names), as the filter settles it.
pub fn misrouted(
    id: &str,
    start_ms: u64,
    routed: &str,
    cluster: &str,
    served: Option<&str>,
) -> DecisionRecord {
    let mut record = record(id, start_ms, served.unwrap_or(routed));
    record.decided_tier = routed.into();
    record.served_cluster = Some(cluster.into());
    record.mismatch = Some(Mismatch {
        routed: routed.into(),
        served_cluster: cluster.into(),
        served: served.map(str::to_string),
        cause: match served {
            Some(_) => MismatchCause::RouteTable,
            None => MismatchCause::UnknownCluster,
        },
    });
    record
}

/// A log's lines held in memory, read from the start on every pass as a file would be.
#[derive(Clone, Debug)]
pub struct MemoryLog {
    pub path: PathBuf,
    pub text: String,
}

impl LogSource for MemoryLog {
    fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self) -> io::Result<Box<dyn BufRead + '_>> {
        Ok(Box::new(self.text.as_bytes()))
    }
}

/// The log `path` of `records`, one line each, after `lines_not_records` lines Envoy writes where
/// triage did not route (`-`).
pub fn memory_log(path: &str, records: &[DecisionRecord], lines_not_records: usize) -> MemoryLog {
    let lines = std::iter::repeat_n("-".to_string(), lines_not_records)
        .chain(records.iter().map(DecisionRecord::to_json));
    MemoryLog {
        path: PathBuf::from(path),
        text: lines.map(|line| line + "\n").collect(),
    }
}

/// No logs, for a report or rows over nothing.
pub const NO_LOGS: [MemoryLog; 0] = [];
