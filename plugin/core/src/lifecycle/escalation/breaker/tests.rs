use super::*;

use BreakerState::{Closed, HalfOpen, Open};

const COOLDOWN: u64 = 1_000;

fn breaker(window: usize, min_requests: usize, failure_rate: f64) -> Breaker {
    Breaker::new(BreakerSettings {
        window,
        min_requests,
        failure_rate,
        cooldown_ms: COOLDOWN,
    })
}

/// Records `outcomes` (true = ok) at t = 0, 1, 2, ... and returns the state after each.
fn states(breaker: &mut Breaker, outcomes: &[bool]) -> Vec<BreakerState> {
    outcomes
        .iter()
        .enumerate()
        .map(|(t, &ok)| {
            breaker.record(ok, t as u64);
            breaker.state()
        })
        .collect()
}

#[test]
fn defaults() {
    assert_eq!(
        BreakerSettings::default(),
        BreakerSettings {
            window: 20,
            min_requests: 5,
            failure_rate: 0.5,
            cooldown_ms: 30_000,
        }
    );
    let mut fresh = Breaker::new(BreakerSettings::default());
    assert_eq!(fresh.state(), Closed);
    assert!(fresh.allows(0));
    // Four failures are under min_requests; the fifth opens it.
    assert_eq!(
        states(&mut fresh, &[false; 5]),
        [Closed, Closed, Closed, Closed, Open]
    );
}

#[test]
fn opens_when_the_window_holds_enough_requests_and_failures() {
    // Two of three failed: 0.67 >= 0.5 at min_requests 3.
    let mut b = breaker(4, 3, 0.5);
    assert_eq!(
        states(&mut b, &[false, true, false]),
        [Closed, Closed, Open]
    );
    // Exactly the rate opens; one under does not.
    let mut b = breaker(4, 4, 0.5);
    assert_eq!(
        states(&mut b, &[true, false, true, false]),
        [Closed, Closed, Closed, Open]
    );
    let mut b = breaker(4, 4, 0.5);
    assert_eq!(
        states(&mut b, &[true, false, true, true, true, true]),
        [Closed; 6]
    );
    // All failures under min_requests never open.
    let mut b = breaker(10, 3, 0.5);
    assert_eq!(states(&mut b, &[false, false]), [Closed, Closed]);
    // A rate above 1 never opens.
    let mut b = breaker(4, 1, 1.01);
    assert_eq!(states(&mut b, &[false; 6]), [Closed; 6]);
}

#[test]
fn old_outcomes_leave_the_window() {
    // Window 3, all must fail: the oldest outcome drops out as each new one comes.
    let mut b = breaker(3, 3, 1.0);
    assert_eq!(
        states(&mut b, &[false, false, true, false, false, false]),
        [Closed, Closed, Closed, Closed, Closed, Open]
    );
    // Window 0 is a window of 1.
    let mut b = breaker(0, 1, 1.0);
    assert_eq!(states(&mut b, &[true, false]), [Closed, Open]);
}

#[test]
fn open_refuses_until_the_cooldown_then_lets_one_trial_through() {
    let mut b = breaker(4, 2, 0.5);
    b.record(false, 90);
    b.record(false, 100);
    assert_eq!(b.state(), Open);
    assert!(!b.allows(100));
    assert!(!b.allows(100 + COOLDOWN - 1));
    // Time running backwards keeps it open.
    assert!(!b.allows(5));
    assert_eq!(b.state(), Open);
    // Late outcomes of requests sent before it opened change nothing.
    b.record(true, 500);
    b.record(true, 600);
    assert_eq!(b.state(), Open);
    assert!(b.allows(100 + COOLDOWN));
    assert_eq!(b.state(), HalfOpen);
    // One trial at a time.
    assert!(!b.allows(100 + COOLDOWN + 1));
    assert!(!b.allows(100 + 2 * COOLDOWN - 1));
    assert_eq!(b.state(), HalfOpen);
}

#[test]
fn a_successful_trial_closes_with_a_fresh_window() {
    let mut b = breaker(4, 2, 0.5);
    b.record(true, 0);
    b.record(false, 1);
    assert_eq!(b.state(), Open);
    assert!(b.allows(1 + COOLDOWN));
    b.record(true, 1 + COOLDOWN + 50);
    assert_eq!(b.state(), Closed);
    assert!(b.allows(1 + COOLDOWN + 51));
    assert!(b.allows(1 + COOLDOWN + 52));
    // The window was cleared: one failure is under min_requests again.
    b.record(false, 2_000);
    assert_eq!(b.state(), Closed);
    b.record(false, 2_001);
    assert_eq!(b.state(), Open);
}

#[test]
fn a_failed_trial_opens_for_another_cooldown() {
    let mut b = breaker(4, 1, 0.5);
    b.record(false, 0);
    assert!(b.allows(COOLDOWN));
    b.record(false, 1_500);
    assert_eq!(b.state(), Open);
    assert!(!b.allows(1_500 + COOLDOWN - 1));
    assert!(b.allows(1_500 + COOLDOWN));
    assert_eq!(b.state(), HalfOpen);
}

#[test]
fn a_lost_trial_is_replaced_after_a_cooldown() {
    let mut b = breaker(4, 1, 0.5);
    b.record(false, 0);
    assert!(b.allows(COOLDOWN));
    // The trial's outcome never comes.
    assert!(!b.allows(2 * COOLDOWN - 1));
    assert!(b.allows(2 * COOLDOWN));
    assert!(!b.allows(2 * COOLDOWN + 1));
    b.record(true, 2 * COOLDOWN + 10);
    assert_eq!(b.state(), Closed);
}

#[test]
fn a_long_run_stays_within_the_window() {
    let mut b = breaker(5, 5, 0.5);
    // Alternating: two failures in every five, never half.
    for t in 0..10_000u64 {
        b.record(t % 5 != 0 && t % 5 != 2, t);
        assert_eq!(b.state(), Closed, "{t}");
        assert!(b.len <= 5 && b.failures <= b.len);
    }
    assert_eq!((b.len, b.failures), (5, 2));
}

/// Encodes and decodes after every step of `steps` (true = ok, false = failed, None = an `allows`
/// call), and checks the decoded breaker equals the live one and answers the same afterwards.
#[test]
fn bytes_round_trip_through_every_phase() {
    let settings = BreakerSettings {
        window: 11,
        min_requests: 3,
        failure_rate: 0.5,
        cooldown_ms: COOLDOWN,
    };
    let mut live = Breaker::new(settings);
    let steps = [
        Some(true),
        Some(false),
        Some(true),
        Some(false),
        Some(false), // opens
        None,        // refused
        None,        // after the cool-down: half-open trial
        Some(false), // reopens
        None,
        Some(true), // closes
        Some(true),
    ];
    let mut phases = Vec::new();
    for (t, step) in steps.iter().enumerate() {
        let now = t as u64 * COOLDOWN / 2 + 1;
        let mut decoded = Breaker::from_bytes(settings, &live.to_bytes()).unwrap();
        assert_eq!(decoded, live, "step {t}");
        match step {
            Some(ok) => {
                live.record(*ok, now);
                decoded.record(*ok, now);
            }
            None => assert_eq!(decoded.allows(now), live.allows(now), "step {t}"),
        }
        assert_eq!(decoded, live, "step {t}");
        phases.push(live.state());
    }
    assert!(phases.contains(&Open) && phases.contains(&HalfOpen) && phases.contains(&Closed));
}

#[test]
fn a_full_ring_keeps_its_order_and_failure_count() {
    let mut live = breaker(4, 10, 0.9);
    // Six outcomes into a window of four: the ring has wrapped.
    states(&mut live, &[false, true, true, false, false, true]);
    let decoded = Breaker::from_bytes(live.settings, &live.to_bytes()).unwrap();
    assert_eq!(decoded, live);
    assert_eq!(decoded.failures, 2);
}

#[test]
fn bytes_of_another_window_or_layout_start_afresh() {
    let mut live = breaker(8, 2, 0.5);
    states(&mut live, &[false, true, false]);
    let bytes = live.to_bytes();
    let other_window = BreakerSettings {
        window: 9,
        ..live.settings
    };
    assert_eq!(Breaker::from_bytes(other_window, &bytes), None);
    assert_eq!(
        Breaker::from_bytes(live.settings, &bytes[..bytes.len() - 1]),
        None
    );
    assert_eq!(Breaker::from_bytes(live.settings, &[]), None);
    let mut other_version = bytes.clone();
    other_version[0] = 2;
    assert_eq!(Breaker::from_bytes(live.settings, &other_version), None);
    let mut unknown_phase = bytes.clone();
    unknown_phase[1] = 7;
    assert_eq!(Breaker::from_bytes(live.settings, &unknown_phase), None);
    // A failure bit in a slot the ring never wrote is damage.
    let mut stray_bit = bytes;
    *stray_bit.last_mut().unwrap() |= 0x80;
    assert_eq!(Breaker::from_bytes(live.settings, &stray_bit), None);
}
