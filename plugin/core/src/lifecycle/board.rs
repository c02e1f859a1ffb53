//! The tiers' breakers in one process's memory, for the machine run outside Envoy (the CLI, tests,
//! the browser build): the same [`Breaker`] steps the filter keeps in Envoy's shared data.

use std::cell::RefCell;

use super::BreakerBoard;
use crate::{Breaker, BreakerState, Config};

pub struct MemoryBreakers {
    /// One per tier, cheapest first; empty when the config does not escalate (every tier allowed).
    tiers: RefCell<Vec<Breaker>>,
}

impl MemoryBreakers {
    /// Closed breakers for the config's tiers.
    pub fn new(config: &Config) -> MemoryBreakers {
        let tiers = config.escalation().map_or_else(Vec::new, |policy| {
            vec![Breaker::new(policy.breaker); config.tier_names().len()]
        });
        MemoryBreakers {
            tiers: RefCell::new(tiers),
        }
    }

    /// The state of `tier`'s breaker (what the filter publishes as its gauge); None without one.
    pub fn state(&self, tier: usize) -> Option<BreakerState> {
        self.tiers.borrow().get(tier).map(Breaker::state)
    }
}

impl BreakerBoard for MemoryBreakers {
    fn allows(&self, tier: usize, now_ms: u64) -> bool {
        self.tiers
            .borrow_mut()
            .get_mut(tier)
            .is_none_or(|breaker| breaker.allows(now_ms))
    }

    fn record(&self, tier: usize, ok: bool, now_ms: u64) {
        if let Some(breaker) = self.tiers.borrow_mut().get_mut(tier) {
            breaker.record(ok, now_ms);
        }
    }
}
