//! What the machine reads from its host. Reads are not effects: they change nothing, so the machine
//! pulls exactly what an event needs (a request it does not route costs one header read), and a
//! test hands it plain values. A read the host fails is logged by the host and comes back empty.

/// The host's view of one stream.
pub trait Reads {
    /// Wall clock, nanoseconds since the Unix epoch (0 when the host has none).
    fn now_nanos(&self) -> u64;
    /// Every request header as the filter received them, names in lowercase.
    fn request_headers(&self) -> Vec<(String, String)>;
    fn response_header(&self, name: &str) -> Option<String>;
    /// A host attribute (`["xds", "cluster_name"]`, dynamic metadata).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// The buffered request body's first `size` bytes; None when the host could not hand it over.
    fn request_body(&self, size: usize) -> Option<Vec<u8>>;
    /// `size` bytes of the response body the host holds, from `start`.
    fn response_body(&self, start: usize, size: usize) -> Vec<u8>;
    /// The headers and body of the answer to the stream's call.
    fn call_answer(&self, num_headers: usize, body_size: usize)
        -> (Vec<(String, String)>, Vec<u8>);
    /// A fresh random decision id; None when the random source failed (the host logs why: the
    /// request goes on without one).
    fn new_decision_id(&self) -> Option<String>;
}

/// The tiers' circuit breakers, shared by every stream (and, in Envoy, every worker): asked and
/// taught while an event is handled, because the answer decides that very step.
pub trait BreakerBoard {
    /// Whether a request may go to `tier` now; a half-open breaker grants its trial here.
    fn allows(&self, tier: usize, now_ms: u64) -> bool;
    /// The outcome of one attempt on `tier`.
    fn record(&self, tier: usize, ok: bool, now_ms: u64);
}
