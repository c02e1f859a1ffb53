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
    /// The mode for the decision with this id. A canary picks by a hash of the decision id, which
    /// is random per request (see [`crate::new_decision_id`]): no client can choose or predict
    /// whether it is enforced or shadowed (a client's `x-request-id` plays no part), and a log can
    /// be re-checked offline from each record's `decision_id` and `mode`. Without an id (the random
    /// source failed) a canary shadows: the request goes on as it came.
    pub fn applied(&self, decision_id: Option<&str>) -> Applied {
        match self {
            Mode::Enforce => Applied::Enforce,
            Mode::Shadow => Applied::Shadow,
            Mode::Canary(percent) => {
                let Some(id) = decision_id else {
                    return Applied::Shadow;
                };
                // 10,000 buckets: canary shares down to 0.01 % are honoured.
                let bucket = fnv1a(id.as_bytes()) % 10_000;
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
            .filter(|_| {
                let id = crate::new_decision_id().unwrap();
                mode.applied(Some(&id)) == Applied::Enforce
            })
            .count();
        enforced as f64 / n as f64
    }

    #[test]
    fn canary_enforces_its_share_of_random_decision_ids() {
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
    fn canary_is_a_function_of_the_decision_id_alone() {
        let mode = Mode::Canary(50.0);
        let mut seen = [0; 2];
        for _ in 0..200 {
            let id = crate::new_decision_id().unwrap();
            let applied = mode.applied(Some(&id));
            assert_eq!(
                applied,
                mode.applied(Some(&id.clone())),
                "re-checkable offline"
            );
            seen[usize::from(applied == Applied::Enforce)] += 1;
        }
        // A client who sends the same x-request-id every time still gets fresh ids, so both modes.
        assert!(seen[0] > 50 && seen[1] > 50, "{seen:?}");
        // Known answers pin the hash, FNV-1a 64 of the id's text mod 10,000 (buckets 2309 and 6987).
        let first = "00000000-0000-4000-8000-000000000000";
        let last = "ffffffff-ffff-4fff-bfff-ffffffffffff";
        assert_eq!(mode.applied(Some(first)), Applied::Enforce);
        assert_eq!(mode.applied(Some(last)), Applied::Shadow);
        assert_eq!(Mode::Canary(23.09).applied(Some(first)), Applied::Shadow);
        assert_eq!(Mode::Canary(23.10).applied(Some(first)), Applied::Enforce);
    }

    #[test]
    fn without_a_decision_id_a_canary_shadows() {
        assert_eq!(Mode::Canary(100.0).applied(None), Applied::Shadow);
        assert_eq!(Mode::Canary(0.0).applied(None), Applied::Shadow);
        assert_eq!(Mode::Enforce.applied(None), Applied::Enforce);
        assert_eq!(Mode::Shadow.applied(None), Applied::Shadow);
        assert_eq!(Mode::Enforce.applied(Some("x")), Applied::Enforce);
        assert_eq!(Mode::Shadow.applied(Some("x")), Applied::Shadow);
    }

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
