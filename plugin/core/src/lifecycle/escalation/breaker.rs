//! A per-tier circuit breaker: skip a tier whose recent attempts mostly failed, for a cool-down.
//!
//! Closed, it keeps the outcomes of the last `window` attempts in a ring allocated once; it opens
//! when at least `min_requests` of them are known and the failure share reaches `failure_rate`.
//! Open, it refuses the tier until `cooldown_ms` have passed, then goes half-open and lets one trial
//! request through: its success closes the breaker (with a fresh window), its failure opens it for
//! another cool-down. Outcomes of requests sent before it opened, arriving while it is open, are
//! ignored. Times are caller-supplied milliseconds (the host clock), so it is deterministic to test.
//!
//! A breaker also travels as bytes ([`Breaker::to_bytes`], [`Breaker::from_bytes`]): Envoy runs one
//! VM per worker thread, and the filter keeps each tier's breaker in the host's shared data so that
//! every worker sees the same failures.

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

const LAYOUT_VERSION: u8 = 1;
const PHASE_CLOSED: u8 = 0;
const PHASE_OPEN: u8 = 1;
const PHASE_HALF_OPEN: u8 = 2;
/// Version, phase, time (u64), window, next, len (u32 each).
const HEADER_BYTES: usize = 2 + 8 + 3 * 4;

#[derive(Clone, Debug, PartialEq)]
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

    /// The state as bytes: a layout version, the phase and its time, the ring's geometry, then one
    /// bit per outcome (set = failed), little-endian throughout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (tag, time_ms) = match self.phase {
            Phase::Closed => (PHASE_CLOSED, 0),
            Phase::Open { since_ms } => (PHASE_OPEN, since_ms),
            Phase::HalfOpen { trial_ms } => (PHASE_HALF_OPEN, trial_ms),
        };
        let mut bytes = Vec::with_capacity(HEADER_BYTES + self.failed.len().div_ceil(8));
        bytes.push(LAYOUT_VERSION);
        bytes.push(tag);
        bytes.extend_from_slice(&time_ms.to_le_bytes());
        for count in [self.failed.len(), self.next, self.len] {
            bytes.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
        }
        for chunk in self.failed.chunks(8) {
            let bits = chunk
                .iter()
                .enumerate()
                .fold(0u8, |bits, (bit, &failed)| bits | (u8::from(failed) << bit));
            bytes.push(bits);
        }
        bytes
    }

    /// The breaker `bytes` describe, or None when they are not a breaker of these settings' window
    /// (another layout, a config whose window changed, or damage): the caller starts afresh.
    pub fn from_bytes(settings: BreakerSettings, bytes: &[u8]) -> Option<Breaker> {
        let window = settings.window.max(1);
        let (header, bits) = bytes.split_at_checked(HEADER_BYTES)?;
        let word = |at: usize| -> Option<usize> {
            let raw: [u8; 4] = header.get(at..at + 4)?.try_into().ok()?;
            usize::try_from(u32::from_le_bytes(raw)).ok()
        };
        let time_raw: [u8; 8] = header.get(2..10)?.try_into().ok()?;
        let time_ms = u64::from_le_bytes(time_raw);
        let phase = match (header.first()?, header.get(1)?) {
            (&LAYOUT_VERSION, &PHASE_CLOSED) => Phase::Closed,
            (&LAYOUT_VERSION, &PHASE_OPEN) => Phase::Open { since_ms: time_ms },
            (&LAYOUT_VERSION, &PHASE_HALF_OPEN) => Phase::HalfOpen { trial_ms: time_ms },
            _ => return None,
        };
        let (stored_window, next, len) = (word(10)?, word(14)?, word(18)?);
        let filling_in_order = len == window || next == len;
        if stored_window != window || next >= window || len > window || !filling_in_order {
            return None;
        }
        if bits.len() != window.div_ceil(8) {
            return None;
        }
        let failed: Box<[bool]> = (0..window)
            .map(|index| {
                bits.get(index / 8)
                    .is_some_and(|byte| byte >> (index % 8) & 1 == 1)
            })
            .collect();
        // Slots past `len` were never written; any set bit there is damage.
        let written = |index: usize| len == window || index < len;
        if failed.iter().enumerate().any(|(i, &f)| f && !written(i)) {
            return None;
        }
        let failures = failed.iter().filter(|&&failed| failed).count();
        Some(Breaker {
            settings,
            phase,
            failed,
            next,
            len,
            failures,
        })
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
