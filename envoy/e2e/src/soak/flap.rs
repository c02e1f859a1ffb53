//! The flapping tier: calm phases alternate with phases in which requests carry one of the mock's
//! failure switches for that tier (a 5xx or a 429, a reset before the answer, a stream broken
//! half-way, a slow answer), so escalation and the circuit breakers act on and off all run long.

use std::time::Duration;

use triage_learn::rng::SplitMix;

use super::mix::CHEAPEST_TIER;
use crate::http::Request;

/// The tier whose mock fails: the cheapest, the one escalation can rescue.
pub const FLAPPING_TIER: &str = CHEAPEST_TIER;

/// One failure switch of the mock (envoy/mock-llm/README.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Failure {
    /// The provider's error with this status.
    Status(u16),
    /// The connection closes before any answer.
    Reset,
    /// Half the answer, then the connection closes: after the head, so nothing can rescue it.
    BrokenStream,
    /// The answer waits this long before its head: slow, never an error by itself.
    Slow(Duration),
}

impl Failure {
    /// The `x-mock-fail` value.
    pub fn switch(&self) -> String {
        match self {
            Failure::Status(code) => format!("status={code}"),
            Failure::Reset => "reset".to_owned(),
            Failure::BrokenStream => "broken-stream".to_owned(),
            Failure::Slow(delay) => format!("delay={}ms", delay.as_millis()),
        }
    }

    /// Adds the switch for the flapping tier to `request`.
    pub fn apply(&self, request: Request) -> Request {
        request
            .header("x-mock-fail", &self.switch())
            .header("x-mock-fail-tier", FLAPPING_TIER)
    }
}

/// The failing phases take these in turn: the first four fit in a one-minute run.
const SEQUENCE: [Failure; 5] = [
    Failure::Status(503),
    Failure::Reset,
    Failure::BrokenStream,
    Failure::Slow(Duration::from_millis(1500)),
    Failure::Status(429),
];

/// The schedule: phase 0 calm, phase 1 failing with the first failure, phase 2 calm, phase 3
/// failing with the second, and so on.
#[derive(Clone, Copy, Debug)]
pub struct Flap {
    pub phase: Duration,
}

impl Flap {
    /// The failure of the phase `elapsed` falls in; None while calm.
    pub fn failure_at(&self, elapsed: Duration) -> Option<Failure> {
        let phase = (elapsed.as_millis() / self.phase.as_millis().max(1)) as usize;
        (phase % 2 == 1).then(|| SEQUENCE[(phase / 2) % SEQUENCE.len()])
    }

    /// The switch one request carries: in a failing phase, one request in three, under the shipped
    /// breaker's 50 % failure rate, so most failures are escalated one by one and the breaker
    /// still opens when they bunch up.
    pub fn draw(&self, elapsed: Duration, rng: &mut SplitMix) -> Option<Failure> {
        self.failure_at(elapsed).filter(|_| rng.below(3) == 0)
    }

    /// The schedule in words, for the report.
    pub fn describe(&self, duration: Duration) -> String {
        let phases = duration.as_millis().div_ceil(self.phase.as_millis().max(1)) as usize;
        let failing: Vec<String> = (0..phases)
            .filter(|phase| phase % 2 == 1)
            .map(|phase| SEQUENCE[(phase / 2) % SEQUENCE.len()].switch())
            .collect();
        format!(
            "tier {FLAPPING_TIER} flaps in phases of {} s, calm and failing in turn (a third of the \
             requests of a failing phase carry its switch): {}",
            self.phase.as_secs_f64(),
            failing.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calm_and_failing_phases_alternate_through_the_sequence() {
        let flap = Flap {
            phase: Duration::from_secs(10),
        };
        let at = |s| flap.failure_at(Duration::from_secs(s));
        assert_eq!(at(0), None);
        assert_eq!(at(10), Some(Failure::Status(503)));
        assert_eq!(at(25), None);
        assert_eq!(at(35), Some(Failure::Reset));
        assert_eq!(at(55), Some(Failure::BrokenStream));
        assert_eq!(at(75), Some(Failure::Slow(Duration::from_millis(1500))));
        assert_eq!(at(95), Some(Failure::Status(429)));
        assert_eq!(at(115), Some(Failure::Status(503)));
    }
}
