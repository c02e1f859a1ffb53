//! The tiers' circuit breakers, kept in the host's shared data so that every Envoy worker (one VM
//! each) sees the same failures: a tier that is down opens once for the whole proxy, not once per
//! worker after each has seen `min_requests` failures of its own.
//!
//! Every read-modify-write goes through the host's compare-and-swap: read the bytes and their CAS
//! token, apply the step, write back only when the state changed, and start again if another worker
//! wrote in between. A tier's key is its name and cluster, so a config update that keeps a tier keeps
//! its breaker, and a tier pointed at another cluster starts closed. Shared data the filter cannot
//! read or write fails open: the tier is allowed and the outcome goes unrecorded. Every change of
//! state is published in the `triage.breaker_state` gauge of its tier.

use std::rc::Rc;

use proxy_wasm::types::Status;
use triage_core::lifecycle::BreakerBoard;
use triage_core::{Breaker, BreakerSettings, Config};

use crate::host;
use crate::metrics::Metrics;

/// Attempts at one compare-and-swap before the step is given up (only under a burst of writers).
const CAS_ATTEMPTS: usize = 4;

pub struct Breakers {
    settings: Option<BreakerSettings>,
    /// One (tier name, shared-data key) per tier, cheapest first.
    tiers: Vec<(String, String)>,
    metrics: Rc<Metrics>,
}

impl Breakers {
    /// The config's breakers; each tier's gauge starts at the state its shared breaker is in (a
    /// config update keeps the breakers of the tiers it keeps).
    pub fn new(config: &Config, metrics: Rc<Metrics>) -> Breakers {
        let settings = config.escalation().map(|policy| policy.breaker);
        let tiers = (0..config.tier_names().len())
            .map(|tier| {
                let name = config.tier_name(tier).unwrap_or_default();
                let cluster = config.tier_cluster(tier).unwrap_or_default();
                (name.to_string(), format!("triage.breaker.{name}@{cluster}"))
            })
            .collect();
        let breakers = Breakers {
            settings,
            tiers,
            metrics,
        };
        for (tier, (name, _)) in breakers.tiers.iter().enumerate() {
            if let Some(state) = breakers.update(tier, |breaker| breaker.state()) {
                breakers.metrics.breaker_moved(name, state);
            }
        }
        breakers
    }

    /// Applies `step` to the tier's shared breaker; None when there is none or the host refused.
    fn update<R>(&self, tier: usize, mut step: impl FnMut(&mut Breaker) -> R) -> Option<R> {
        let settings = self.settings?;
        let (name, key) = self.tiers.get(tier)?;
        for _ in 0..CAS_ATTEMPTS {
            let (stored, cas) = match host::shared_data(key) {
                Ok(found) => found,
                Err(status) => {
                    log::warn!("triage: reading breaker {key}: {status:?}");
                    return None;
                }
            };
            let mut breaker = stored
                .as_deref()
                .and_then(|bytes| Breaker::from_bytes(settings, bytes))
                .unwrap_or_else(|| Breaker::new(settings));
            let before = breaker.state();
            let answer = step(&mut breaker);
            let bytes = breaker.to_bytes();
            if stored.as_deref() == Some(bytes.as_slice()) {
                return Some(answer);
            }
            match host::set_shared_data(key, &bytes, cas) {
                Ok(()) => {
                    if breaker.state() != before {
                        self.metrics.breaker_moved(name, breaker.state());
                    }
                    return Some(answer);
                }
                Err(Status::CasMismatch) => continue,
                Err(status) => {
                    log::warn!("triage: writing breaker {key}: {status:?}");
                    return Some(answer);
                }
            }
        }
        log::warn!(
            "triage: breaker {key} kept changing under {CAS_ATTEMPTS} attempts; step dropped"
        );
        None
    }
}

impl BreakerBoard for Breakers {
    /// True for a tier without a breaker (escalation off) and when shared data fails.
    fn allows(&self, tier: usize, now_ms: u64) -> bool {
        self.update(tier, |breaker| breaker.allows(now_ms))
            .unwrap_or(true)
    }

    fn record(&self, tier: usize, ok: bool, now_ms: u64) {
        self.update(tier, |breaker| breaker.record(ok, now_ms));
    }
}
