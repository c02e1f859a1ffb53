//! The decision id: a random UUIDv4 the filter makes for every decision, returns to the client in
//! `x-triage-decision-id` and writes into the decision record. It is what feedback rows join on and
//! what a canary hashes, because, unlike `x-request-id` (which Envoy keeps from a trusted peer, and
//! loopback is one), no client can choose or predict it.
//!
//! The 16 bytes come from the host's random source through `getrandom` (on wasm32-wasip1 that is
//! WASI `random_get`, which Envoy's wasm host answers from BoringSSL's `RAND_bytes`); 122 of their
//! bits survive the version and variant bits. A failing source is an error, never a panic (uuid's
//! own `new_v4` panics), so the filter can go on without an id.

use std::fmt;

/// The random source failed; the text is its error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdUnavailable(pub String);

impl fmt::Display for IdUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no random bytes for a decision id: {}", self.0)
    }
}

impl std::error::Error for IdUnavailable {}

/// A new decision id from the host's random source.
pub fn new_decision_id() -> Result<String, IdUnavailable> {
    decision_id_from_source(getrandom::fill)
}

/// A decision id from `fill`, a random source that fills 16 bytes or says why it could not.
pub fn decision_id_from_source<E: fmt::Display>(
    fill: impl FnOnce(&mut [u8]) -> Result<(), E>,
) -> Result<String, IdUnavailable> {
    let mut bytes = [0_u8; 16];
    fill(&mut bytes).map_err(|error| IdUnavailable(error.to_string()))?;
    Ok(decision_id_from_bytes(bytes))
}

/// The UUIDv4 text of 16 random bytes: version nibble 4, RFC 4122 variant, lowercase, hyphenated.
pub fn decision_id_from_bytes(bytes: [u8; 16]) -> String {
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The shape of every id: 8-4-4-4-12 lowercase hex, version 4, variant 10xx.
    fn assert_v4(id: &str) {
        assert_eq!(id.len(), 36, "{id}");
        for (at, char) in id.char_indices() {
            if [8, 13, 18, 23].contains(&at) {
                assert_eq!(char, '-', "{id}");
            } else {
                assert!(matches!(char, '0'..='9' | 'a'..='f'), "{id}");
            }
        }
        assert_eq!(&id[14..15], "4", "version nibble: {id}");
        assert!(
            matches!(&id[19..20], "8" | "9" | "a" | "b"),
            "variant: {id}"
        );
        let parsed = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
    }

    #[test]
    fn ten_thousand_ids_are_distinct_version_4_uuids() {
        let ids: Vec<String> = (0..10_000).map(|_| new_decision_id().unwrap()).collect();
        for id in &ids {
            assert_v4(id);
        }
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }

    #[test]
    fn every_random_bit_but_the_version_and_variant_is_used() {
        // Known answers: the version and variant bits are forced, every other bit is the input's.
        assert_eq!(
            decision_id_from_bytes([0; 16]),
            "00000000-0000-4000-8000-000000000000"
        );
        assert_eq!(
            decision_id_from_bytes([0xff; 16]),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        let counting: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
        assert_eq!(
            decision_id_from_bytes(counting),
            "00112233-4455-4677-8899-aabbccddeeff"
        );
        // Over many ids every free bit takes both values: nothing constant beyond the six forced bits.
        let ids: Vec<u128> = (0..256)
            .map(|_| {
                uuid::Uuid::parse_str(&new_decision_id().unwrap())
                    .unwrap()
                    .as_u128()
            })
            .collect();
        let ones = ids.iter().fold(0_u128, |all, id| all | id);
        let zeros = ids.iter().fold(0_u128, |all, id| all | !id);
        let forced: u128 = (0xf_u128 << 76) | (0b11_u128 << 62);
        assert_eq!(
            ones & zeros,
            !forced,
            "bits that never vary besides the forced ones"
        );
    }

    #[test]
    fn a_failing_random_source_is_an_error_not_a_panic() {
        let failed = decision_id_from_source(|_| Err("random_get: errno 52"));
        assert_eq!(failed, Err(IdUnavailable("random_get: errno 52".into())));
        assert_eq!(
            failed.unwrap_err().to_string(),
            "no random bytes for a decision id: random_get: errno 52"
        );
        let filled = decision_id_from_source(|bytes: &mut [u8]| {
            bytes.fill(0xab);
            Ok::<(), String>(())
        });
        assert_eq!(filled.unwrap(), "abababab-abab-4bab-abab-abababababab");
    }
}
