//! Whether triage's decision changes the request: `enforce`, `shadow` (decide and record only), or a
//! canary share of requests enforced and the rest shadowed.

/// The configured mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Enforce,
    Shadow,
    /// Percent of requests (0..=100) enforced; the rest are shadowed.
    Canary(f64),
}

/// What was applied to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    Enforce,
    Shadow,
}

impl Applied {
    pub fn as_str(&self) -> &'static str {
        match self {
            Applied::Enforce => "enforce",
            Applied::Shadow => "shadow",
        }
    }
}

impl Mode {
    /// The mode for the request with this id. A canary picks by a hash of the request id, so a retry
    /// carrying the same `x-request-id` gets the same treatment and a log can be re-checked offline.
    pub fn applied(&self, request_id: &str) -> Applied {
        match self {
            Mode::Enforce => Applied::Enforce,
            Mode::Shadow => Applied::Shadow,
            Mode::Canary(percent) => {
                // 10,000 buckets: canary shares down to 0.01 % are honoured.
                let bucket = fnv1a(request_id.as_bytes()) % 10_000;
                if (bucket as f64) < percent * 100.0 {
                    Applied::Enforce
                } else {
                    Applied::Shadow
                }
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
            Mode::Canary(_) => "canary",
        }
    }
}

/// FNV-1a 64: stable across builds and platforms (std's hasher is not), and enough to spread ids.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enforced_share(percent: f64, n: usize) -> f64 {
        let mode = Mode::Canary(percent);
        let enforced = (0..n)
            .filter(|i| mode.applied(&format!("req-{i}")) == Applied::Enforce)
            .count();
        enforced as f64 / n as f64
    }

    #[test]
    fn canary_enforces_its_share() {
        assert_eq!(enforced_share(0.0, 2_000), 0.0);
        assert_eq!(enforced_share(100.0, 2_000), 1.0);
        for percent in [5.0, 25.0, 50.0] {
            let share = enforced_share(percent, 20_000);
            assert!(
                (share - percent / 100.0).abs() < 0.01,
                "{percent}% canary enforced {share}"
            );
        }
    }

    #[test]
    fn canary_is_stable_per_request_id() {
        let mode = Mode::Canary(50.0);
        for i in 0..100 {
            let id = format!("5b9e-{i}");
            assert_eq!(mode.applied(&id), mode.applied(&id));
        }
        assert_eq!(Mode::Enforce.applied("x"), Applied::Enforce);
        assert_eq!(Mode::Shadow.applied("x"), Applied::Shadow);
    }

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
