//! A per-tier circuit breaker: skip a tier whose recent attempts mostly failed, for a cool-down.
//!
//! Closed, it keeps the outcomes of the last `window` attempts in a ring allocated once; it opens
//! when at least `min_requests` of them are known and the failure share reaches `failure_rate`.
//! Open, it refuses the tier until `cooldown_ms` have passed, then goes half-open and lets one trial
//! request through: its success closes the breaker (with a fresh window), its failure opens it for
//! another cool-down. Outcomes of requests sent before it opened, arriving while it is open, are
//! ignored. Times are caller-supplied milliseconds (the host clock), so it is deterministic to test.

/// Breaker thresholds for one tier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerSettings {
    /// How many recent outcomes are weighed (at least 1).
    pub window: usize,
    /// Outcomes needed in the window before it may open (at least 1).
    pub min_requests: usize,
    /// The failure share in the window, 0..=1, at which it opens.
    pub failure_rate: f64,
    pub cooldown_ms: u64,
}

impl Default for BreakerSettings {
    fn default() -> BreakerSettings {
        BreakerSettings {
            window: 20,
            min_requests: 5,
            failure_rate: 0.5,
            cooldown_ms: 30_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Closed,
    Open {
        since_ms: u64,
    },
    /// The trial request was let through at `trial_ms`; its outcome is awaited.
    HalfOpen {
        trial_ms: u64,
    },
}

#[derive(Clone, Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    phase: Phase,
    /// Ring of outcomes, true for a failure; `len` of them are valid, the next goes at `next`.
    failed: Box<[bool]>,
    next: usize,
    len: usize,
    failures: usize,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Breaker {
        Breaker {
            settings,
            phase: Phase::Closed,
            failed: vec![false; settings.window.max(1)].into_boxed_slice(),
            next: 0,
            len: 0,
            failures: 0,
        }
    }

    /// Whether a request may go to this tier now. Open: false until `cooldown_ms` have passed since
    /// it opened, then half-open and true for one trial request. Half-open with the trial's outcome
    /// still unknown: false, unless another `cooldown_ms` have passed (the trial's outcome was lost;
    /// a new trial goes).
    pub fn allows(&mut self, now_ms: u64) -> bool {
        let cooldown = self.settings.cooldown_ms;
        match self.phase {
            Phase::Closed => true,
            Phase::Open { since_ms } | Phase::HalfOpen { trial_ms: since_ms }
                if now_ms.saturating_sub(since_ms) < cooldown =>
            {
                false
            }
            Phase::Open { .. } | Phase::HalfOpen { .. } => {
                self.phase = Phase::HalfOpen { trial_ms: now_ms };
                true
            }
        }
    }

    /// The outcome of one attempt on this tier.
    pub fn record(&mut self, ok: bool, now_ms: u64) {
        match self.phase {
            Phase::Closed => {
                self.push(!ok);
                let min_requests = self.settings.min_requests.max(1);
                let share = self.failures as f64 / self.len as f64;
                if self.len >= min_requests && share >= self.settings.failure_rate {
                    self.open(now_ms);
                }
            }
            Phase::Open { .. } => {}
            Phase::HalfOpen { .. } if ok => {
                self.phase = Phase::Closed;
                self.clear();
            }
            Phase::HalfOpen { .. } => self.open(now_ms),
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    fn open(&mut self, now_ms: u64) {
        self.phase = Phase::Open { since_ms: now_ms };
        self.clear();
    }

    fn clear(&mut self) {
        self.failed.fill(false);
        self.next = 0;
        self.len = 0;
        self.failures = 0;
    }

    fn push(&mut self, failed: bool) {
        let window = self.failed.len();
        let Some(slot) = self.failed.get_mut(self.next) else {
            return;
        };
        if self.len == window {
            // The oldest outcome leaves the window.
            self.failures -= usize::from(*slot);
        } else {
            self.len += 1;
        }
        *slot = failed;
        self.failures += usize::from(failed);
        self.next = (self.next + 1) % window;
    }
}

#[cfg(test)]
mod tests;
