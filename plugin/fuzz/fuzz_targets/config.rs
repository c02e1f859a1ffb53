//! The plugin config on any bytes: refused with a message, or accepted as a config
//! whose tiers, thresholds and default tier hold together; parsing it again gives the same config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use triage_core::Config;

fuzz_target!(|data: &[u8]| {
    match Config::from_json(data) {
        Err(error) => assert!(!error.to_string().is_empty()),
        Ok(config) => {
            let names = config.tier_names();
            assert!(!names.is_empty());
            assert!(names.contains(&config.default_tier_name()));
            let thresholds = config.thresholds();
            assert!(
                thresholds.windows(2).all(|pair| pair[0] < pair[1]),
                "{thresholds:?}"
            );
            assert!(thresholds.iter().all(|t| (0.0..=1.0).contains(t)));
            let again = Config::from_json(data).map(|config| format!("{config:?}"));
            assert_eq!(again, Ok(format!("{config:?}")));
        }
    }
});
