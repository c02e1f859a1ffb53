//! The soak, shortened for the test suite: one minute of mixed traffic through the shipped stack
//! with two Envoy workers while the cheapest tier flaps, then every check of `envoy/soak.sh`
//! (src/soak/). The full run is `bash envoy/soak.sh` (10 minutes).

use std::time::Duration;

use triage_e2e::soak::{self, report, SoakOptions};

#[test]
fn a_minute_of_mixed_traffic_while_a_tier_flaps_leaves_nothing_unexplained() {
    let findings = soak::run(SoakOptions::new(Duration::from_secs(60)));
    let verdict = report::verdict(&findings);
    println!("{}", verdict.report);
    assert!(
        verdict.failures.is_empty(),
        "{} soak checks failed:\n{}",
        verdict.failures.len(),
        verdict.failures.join("\n")
    );
}
