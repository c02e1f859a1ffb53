//! triage's Envoy stats. Every name is defined once per VM when the config is accepted, so the
//! series exist (at 0) before the first request and dashboards show all tiers from the start.
//!
//! Labels travel in the name as `.key.value` pairs (`triage.requests.mode.enforce.tier.small.cause.
//! scored`); the shipped Envoy config's `stats_tags` turn each pair into a Prometheus label, and Envoy
//! exports the `wasmcustom.` namespace without prefix: `triage_requests{mode=..,tier=..,cause=..}`.

use std::collections::HashMap;

use proxy_wasm::types::MetricType;
use triage_core::{
    counter_micro_usd, Applied, BreakerState, Config, DecisionRecord, Usage, ESCALATION_CAUSES,
};

use crate::host;

const MODES: [Applied; 2] = [Applied::Enforce, Applied::Shadow];
const CAUSES: [&str; 5] = ["scored", "rule", "explicit_model", "fail_open", "override"];
const FAIL_OPEN_REASONS: [&str; 5] = [
    "empty_body",
    "invalid_json",
    "unknown_shape",
    "body_too_large",
    "body_unavailable",
];
const TOKEN_KINDS: [&str; 2] = ["prompt", "completion"];
/// The `served` label of a mismatch whose cluster no tier names.
const UNKNOWN_CLUSTER: &str = "unknown";

/// The two histograms; their bucket bounds are set by the shipped Envoy config
/// (`histogram_bucket_settings` in envoy/envoy.yaml.in).
const SCORE_PERMILLE: &str = "triage.score_permille";
const DECISION_US: &str = "triage.decision_us";
/// A gauge: the largest linear memory of the plugin's VMs (see [`Metrics::vm_memory`]).
const VM_MEMORY_BYTES: &str = "triage.vm_memory_bytes";

#[derive(Default)]
pub struct Metrics {
    /// Full metric name -> host id. Names are built from a handful of labels per request, never
    /// from client input (tier names come from the config, causes from fixed sets).
    ids: HashMap<String, u32>,
}

impl Metrics {
    /// Defines every series the config can produce. A name the host refuses is logged and skipped:
    /// a missing metric never fails a request.
    pub fn define(config: &Config) -> Metrics {
        let tiers = config.tier_names();
        let mut counters: Vec<String> = Vec::new();
        for mode in MODES {
            for tier in &tiers {
                for cause in CAUSES {
                    counters.push(requests(mode, tier, cause));
                }
            }
        }
        counters.extend(FAIL_OPEN_REASONS.iter().map(|reason| fail_open(reason)));
        for from in &tiers {
            counters.extend(tiers.iter().map(|to| overrides(from, to)));
        }
        for (index, from) in tiers.iter().enumerate() {
            for to in tiers.iter().skip(index + 1) {
                counters.extend(
                    ESCALATION_CAUSES
                        .iter()
                        .map(|cause| escalations(from, to, cause)),
                );
            }
        }
        for routed in &tiers {
            let elsewhere = tiers.iter().filter(|served| *served != routed);
            counters.extend(
                elsewhere
                    .chain([&UNKNOWN_CLUSTER])
                    .map(|served| tier_mismatch(routed, served)),
            );
        }
        for tier in &tiers {
            counters.extend(TOKEN_KINDS.iter().map(|kind| tokens(tier, kind)));
            for family in [
                "usage_unknown",
                "cost_micro_usd",
                "top_tier_cost_micro_usd",
                "decided_cost_micro_usd",
            ] {
                counters.push(per_tier(family, tier));
            }
        }
        let mut metrics = Metrics::default();
        for name in counters {
            metrics.add(MetricType::Counter, name);
        }
        if config.escalation().is_some() {
            for tier in &tiers {
                metrics.add(MetricType::Gauge, breaker_state(tier));
            }
        }
        metrics.add(MetricType::Gauge, VM_MEMORY_BYTES.to_string());
        for name in [SCORE_PERMILLE, DECISION_US] {
            metrics.add(MetricType::Histogram, name.to_string());
        }
        metrics
    }

    fn add(&mut self, kind: MetricType, name: String) {
        match host::define_metric(kind, &name) {
            Ok(id) => {
                self.ids.insert(name, id);
            }
            Err(status) => log::warn!("defining metric {name} failed: {status:?}"),
        }
    }

    /// Counts one finished request from its decision record.
    pub fn observe(&self, record: &DecisionRecord, config: &Config) {
        self.count(
            &requests(record.mode, &record.decided_tier, &record.cause),
            1,
        );
        if let Some(reason) = &record.fail_open {
            self.count(&fail_open(reason), 1);
        }
        if let Some(change) = &record.override_ {
            self.count(&overrides(&change.from, &change.to), 1);
        }
        if let Some(mismatch) = &record.mismatch {
            let served = mismatch.served.as_deref().unwrap_or(UNKNOWN_CLUSTER);
            self.count(&tier_mismatch(&mismatch.routed, served), 1);
        }
        // Tokens and costs go to the tier that served them; an answer from a cluster no tier names
        // is no tier's (its record's costs are null too), and shows in the mismatch counter.
        if let Some(serving) = record.serving_tier() {
            match record.usage {
                Some(usage) => self.count_tokens(serving, usage),
                None => self.count(&per_tier("usage_unknown", serving), 1),
            }
        }
        for step in &record.escalations {
            self.count(&escalations(&step.from, &step.to, &step.cause), 1);
        }
        // A dropped answer of a cheaper tier is billed to the tier that gave it; the record's cost
        // includes it.
        for dropped in record.dropped_answers(config) {
            let Some(tier) = dropped.tier else { continue };
            self.count_tokens(tier, dropped.usage);
            if let Some(cost) = dropped.cost_micro_usd {
                self.count(&per_tier("cost_micro_usd", tier), counter_micro_usd(cost));
            }
        }
        let costs = [
            (
                "cost_micro_usd",
                &record.tier,
                record.served_answer_cost(config),
            ),
            (
                "top_tier_cost_micro_usd",
                &record.tier,
                record.top_tier_cost_micro_usd,
            ),
            (
                "decided_cost_micro_usd",
                &record.decided_tier,
                record.decided_cost_micro_usd,
            ),
        ];
        for (family, tier, cost) in costs {
            if let Some(cost) = cost {
                self.count(&per_tier(family, tier), counter_micro_usd(cost));
            }
        }
        if let Some(score) = record.score {
            self.record(SCORE_PERMILLE, (score * 1000.0).round() as u64);
        }
        self.record(DECISION_US, record.decision_us);
    }

    fn count_tokens(&self, tier: &str, usage: Usage) {
        self.count(&tokens(tier, "prompt"), usage.prompt_tokens);
        self.count(&tokens(tier, "completion"), usage.completion_tokens);
    }

    /// A tier's breaker changed state: 0 closed, 1 half-open (its trial in flight), 2 open. Envoy
    /// keeps one gauge for all workers, and every worker sets it when it moves the shared breaker.
    pub fn breaker_moved(&self, tier: &str, state: BreakerState) {
        let value = match state {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        };
        self.record(&breaker_state(tier), value);
    }

    /// Raises the VM memory gauge to this VM's linear memory, `bytes`, when that is larger. Envoy
    /// runs one VM per worker (and one or two on the main thread, which serve no requests) and keeps
    /// one gauge for them all: a plain set would show whichever VM set it last, which hides the
    /// others. Wasm memory never shrinks, so each VM's size is its high-water mark and the gauge is
    /// the largest VM's, the one that says what a worker costs. Two VMs raising it at once may leave
    /// the smaller value for one period; the larger VM raises it again on its next report. A VM that
    /// is replaced (a reload, a new config) leaves its size in the gauge until Envoy restarts.
    pub fn vm_memory(&self, bytes: u64) {
        let Some(id) = self.ids.get(VM_MEMORY_BYTES) else {
            return;
        };
        match host::metric(*id) {
            Ok(shown) if shown >= bytes => {}
            Ok(_) => self.record(VM_MEMORY_BYTES, bytes),
            Err(status) => log::warn!("reading {VM_MEMORY_BYTES} failed: {status:?}"),
        }
    }

    fn count(&self, name: &str, by: u64) {
        if let Some(id) = self.ids.get(name) {
            if let Err(status) = host::increment_metric(*id, by) {
                log::warn!("incrementing {name} failed: {status:?}");
            }
        }
    }

    fn record(&self, name: &str, value: u64) {
        if let Some(id) = self.ids.get(name) {
            if let Err(status) = host::record_metric(*id, value) {
                log::warn!("recording {name} failed: {status:?}");
            }
        }
    }
}

fn requests(mode: Applied, tier: &str, cause: &str) -> String {
    format!(
        "triage.requests.mode.{}.tier.{tier}.cause.{cause}",
        mode.as_str()
    )
}

fn fail_open(reason: &str) -> String {
    format!("triage.fail_open.reason.{reason}")
}

fn overrides(from: &str, to: &str) -> String {
    format!("triage.overrides.from.{from}.to.{to}")
}

fn escalations(from: &str, to: &str, cause: &str) -> String {
    format!("triage.escalations.from.{from}.to.{to}.cause.{cause}")
}

/// Envoy served a request routed to `routed` from `served`'s cluster (or one no tier names).
fn tier_mismatch(routed: &str, served: &str) -> String {
    format!("triage.tier_mismatch.routed.{routed}.served.{served}")
}

fn tokens(tier: &str, kind: &str) -> String {
    format!("triage.tokens.tier.{tier}.kind.{kind}")
}

fn breaker_state(tier: &str) -> String {
    format!("triage.breaker_state.tier.{tier}")
}

fn per_tier(family: &str, tier: &str) -> String {
    format!("triage.{family}.tier.{tier}")
}
