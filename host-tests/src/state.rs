//! What the host knows: the VM's logs, metrics and shared data, and every open stream as Envoy
//! would hold it (which maps the filter may still touch, what has gone upstream or downstream).

use crate::abi::Status;
use crate::{LocalReply, LogLevel};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use wasmtime::{Memory, TypedFunc};

/// A header map as Envoy keeps it: lowercase keys, insertion order, repeated keys allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    pairs: Vec<(String, String)>,
}

impl HeaderMap {
    pub fn from_pairs<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Self {
        let mut map = HeaderMap::default();
        for (key, value) in pairs {
            map.add(key.as_ref(), value.as_ref());
        }
        map
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The first value, as Envoy's `getHeaderMapValue` returns.
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn add(&mut self, key: &str, value: &str) {
        self.pairs
            .push((key.to_ascii_lowercase(), value.to_string()));
    }

    /// Envoy's `setCopy`: the first entry takes the value, later duplicates go.
    pub fn replace(&mut self, key: &str, value: &str) {
        let key = key.to_ascii_lowercase();
        match self.pairs.iter().position(|(k, _)| *k == key) {
            Some(first) => {
                self.pairs[first].1 = value.to_string();
                let mut index = 0;
                self.pairs.retain(|(k, _)| {
                    index += 1;
                    index - 1 == first || *k != key
                });
            }
            None => self.pairs.push((key, value.to_string())),
        }
    }

    pub fn remove(&mut self, key: &str) {
        let key = key.to_ascii_lowercase();
        self.pairs.retain(|(k, _)| *k != key);
    }

    pub fn set_all(&mut self, pairs: &[(String, String)]) {
        self.pairs.clear();
        for (key, value) in pairs {
            self.add(key, value);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamSide {
    Request,
    Response,
}

/// One direction of a stream, from this filter's seat: what it holds, what it passed on.
#[derive(Debug, Default)]
pub struct Side {
    pub headers: HeaderMap,
    /// Envoy keeps the pointer to the map only until the filter continues the headers.
    pub headers_open: bool,
    pub headers_received: bool,
    /// Body bytes not yet passed on: buffered while the filter pauses, then the current chunk.
    pub pending_body: Vec<u8>,
    pub body_open: bool,
    pub trailers: Option<HeaderMap>,
    pub trailers_open: bool,
    pub end_of_stream_received: bool,
    /// What the next hop (the upstream for requests, the client for responses) received.
    pub forwarded_headers: Option<HeaderMap>,
    pub forwarded_body: Vec<u8>,
    pub forwarded_trailers: Option<HeaderMap>,
    pub forwarded_end_of_stream: bool,
    pub continue_requested: bool,
    /// Body callbacks and the size each one was told.
    pub body_callbacks: Vec<usize>,
}

impl Side {
    pub fn open_map(&mut self, trailers: bool) -> Option<&mut HeaderMap> {
        if trailers {
            self.trailers_open.then_some(()).and(self.trailers.as_mut())
        } else {
            self.headers_open.then_some(&mut self.headers)
        }
    }

    pub fn visible_body(&self) -> &[u8] {
        if self.body_open {
            &self.pending_body
        } else {
            &[]
        }
    }

    pub fn open_body(&mut self) -> Option<&mut Vec<u8>> {
        self.body_open.then_some(&mut self.pending_body)
    }

    /// Passes on everything the filter held: the headers (then closed to it), the buffered body and
    /// trailers that already arrived.
    pub fn release(&mut self) {
        if self.headers_received && self.forwarded_headers.is_none() {
            self.forwarded_headers = Some(self.headers.clone());
        }
        self.headers_open = false;
        self.forwarded_body.append(&mut self.pending_body);
        self.body_open = false;
        if let Some(trailers) = &self.trailers {
            self.forwarded_trailers = Some(trailers.clone());
            self.trailers_open = false;
        }
        if self.end_of_stream_received {
            self.forwarded_end_of_stream = true;
        }
    }

    pub fn holds_anything(&self) -> bool {
        (self.headers_received && self.forwarded_headers.is_none())
            || !self.pending_body.is_empty()
            || (self.trailers.is_some() && self.forwarded_trailers.is_none())
            || (self.end_of_stream_received && !self.forwarded_end_of_stream)
    }
}

#[derive(Debug, Default)]
pub struct Stream {
    pub request: Side,
    pub response: Side,
    pub request_header_writes: usize,
    pub route_cache_clears: usize,
    /// Request headers as received, before the filter touched them: what the route was picked on.
    pub original_request_headers: HeaderMap,
    /// True once clear_route_cache ran while the request headers were still held.
    pub route_recomputed: bool,
    pub local_reply: Option<LocalReply>,
    pub reset: bool,
    /// Properties of this stream's own stream info (e.g. `response.code_details`), read before the
    /// host-wide ones.
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
}

impl Stream {
    pub fn side(&self, side: StreamSide) -> &Side {
        match side {
            StreamSide::Request => &self.request,
            StreamSide::Response => &self.response,
        }
    }

    pub fn side_mut(&mut self, side: StreamSide) -> &mut Side {
        match side {
            StreamSide::Request => &mut self.request,
            StreamSide::Response => &mut self.response,
        }
    }

    pub fn clear_route_cache(&mut self) {
        self.route_cache_clears += 1;
        if self.request.forwarded_headers.is_none() {
            self.route_recomputed = true;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub fn from_abi(kind: i32) -> Option<Self> {
        match kind {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            2 => Some(MetricKind::Histogram),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Metric {
    pub name: String,
    pub kind: MetricKind,
    pub value: i64,
    pub samples: Vec<u64>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub all: Vec<Metric>,
}

impl Metrics {
    /// Ids carry the kind in the low two bits, as Envoy's do.
    pub fn define(&mut self, kind: MetricKind, name: &str) -> u32 {
        let index = match self
            .all
            .iter()
            .position(|m| m.name == name && m.kind == kind)
        {
            Some(index) => index,
            None => {
                self.all.push(Metric {
                    name: name.to_string(),
                    kind,
                    value: 0,
                    samples: Vec::new(),
                });
                self.all.len() - 1
            }
        };
        ((index as u32 + 1) << 2) | kind as u32
    }

    fn find(&mut self, id: u32) -> Option<&mut Metric> {
        let index = (id >> 2).checked_sub(1)? as usize;
        self.all
            .get_mut(index)
            .filter(|metric| metric.kind as u32 == id & 3)
    }

    pub fn increment(&mut self, id: u32, offset: i64) -> Status {
        match self.find(id) {
            None => Status::NotFound,
            Some(metric) => match metric.kind {
                MetricKind::Counter if offset <= 0 => Status::BadArgument,
                MetricKind::Counter | MetricKind::Gauge => {
                    metric.value = metric.value.saturating_add(offset);
                    Status::Ok
                }
                MetricKind::Histogram => Status::BadArgument,
            },
        }
    }

    pub fn record(&mut self, id: u32, value: u64) -> Status {
        match self.find(id) {
            None => Status::NotFound,
            Some(metric) => {
                match metric.kind {
                    MetricKind::Counter => metric.value = metric.value.saturating_add(value as i64),
                    MetricKind::Gauge => metric.value = value as i64,
                    MetricKind::Histogram => metric.samples.push(value),
                }
                Status::Ok
            }
        }
    }

    pub fn get(&mut self, id: u32) -> Result<u64, Status> {
        let metric = self.find(id).ok_or(Status::NotFound)?;
        match metric.kind {
            MetricKind::Histogram => Err(Status::BadArgument),
            _ => Ok(metric.value as u64),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct HttpResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    pub grpc_status: u32,
}

impl HttpResponse {
    /// A response with `:status` first, then `headers`, and `body`, as Envoy's async client hands
    /// one to the module.
    pub fn new<K: AsRef<str>, V: AsRef<str>>(status: u16, headers: &[(K, V)], body: &[u8]) -> Self {
        let mut map = HeaderMap::default();
        map.add(":status", &status.to_string());
        for (key, value) in headers {
            map.add(key.as_ref(), value.as_ref());
        }
        HttpResponse {
            headers: map,
            body: body.to_vec(),
            ..HttpResponse::default()
        }
    }
}

#[derive(Clone, Debug)]
pub struct HttpCall {
    pub context: u32,
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub timeout_ms: u32,
    /// The module got its `proxy_on_http_call_response`.
    pub answered: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub context: u32,
    pub message: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    #[default]
    Idle,
    VmStart,
    Configure,
}

/// The data every VM of one plugin shares (Envoy: across worker threads), with each key's
/// compare-and-swap token. Hosts started with the same store act as one Envoy's workers.
pub type SharedData = Rc<RefCell<HashMap<Vec<u8>, (Vec<u8>, u32)>>>;

#[derive(Default)]
pub struct State {
    pub memory: Option<Memory>,
    pub allocate: Option<TypedFunc<i32, i32>>,
    pub root_context: u32,
    pub current_context: u32,
    pub effective_context: Option<u32>,
    pub phase: Phase,
    pub vm_configuration: Vec<u8>,
    pub plugin_configuration: Vec<u8>,
    pub streams: HashMap<u32, Stream>,
    pub logs: Vec<LogLine>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub metrics: Metrics,
    pub shared_data: SharedData,
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    pub foreign_calls: Vec<(u32, String)>,
    pub http_responses: HashMap<String, HttpResponse>,
    /// Clusters Envoy knows whose calls wait until the test answers them.
    pub clusters: HashSet<String>,
    /// Clusters Envoy knows whose every call fails as it starts.
    pub unavailable_clusters: HashSet<String>,
    pub http_calls: Vec<HttpCall>,
    pub next_http_token: u32,
    pub http_call_response: Option<HttpResponse>,
    pub tick_period_ms: u32,
    pub done_called: bool,
    pub clock_nanos: u64,
    pub clock_step_nanos: u64,
    pub random_state: u64,
    /// When set, WASI `random_get` fails with this errno instead of filling the buffer.
    pub random_failure: Option<i32>,
}

impl State {
    /// The context host calls act on: the callback's own, unless the module switched it.
    pub fn active_context(&self) -> u32 {
        self.effective_context.unwrap_or(self.current_context)
    }

    pub fn vm_configuration_visible(&self) -> Option<&Vec<u8>> {
        (self.phase == Phase::VmStart).then_some(&self.vm_configuration)
    }

    pub fn plugin_configuration_visible(&self) -> Option<&Vec<u8>> {
        (self.phase == Phase::Configure).then_some(&self.plugin_configuration)
    }

    /// The time now; the clock then moves on by its step.
    pub fn read_clock(&mut self) -> u64 {
        let now = self.clock_nanos;
        self.clock_nanos = now.wrapping_add(self.clock_step_nanos);
        now
    }

    /// splitmix64: deterministic per seed, so a run is reproducible.
    pub fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            self.random_state = self.random_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.random_state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            out.extend((z ^ (z >> 31)).to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_maps_behave_like_envoys() {
        let mut map = HeaderMap::from_pairs(&[("A", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(map.get("a"), Some("1"), "the first value");
        map.replace("A", "x");
        assert_eq!(
            map.pairs(),
            [("a".into(), "x".into()), ("b".into(), "2".into())]
        );
        map.replace("c", "new");
        map.add("b", "again");
        map.remove("B");
        assert_eq!(
            map.pairs(),
            [("a".into(), "x".into()), ("c".into(), "new".into())]
        );
    }

    #[test]
    fn metrics_return_envoys_statuses() {
        let mut metrics = Metrics::default();
        let counter = metrics.define(MetricKind::Counter, "requests");
        let gauge = metrics.define(MetricKind::Gauge, "in_flight");
        let histogram = metrics.define(MetricKind::Histogram, "score");
        assert_eq!(metrics.define(MetricKind::Counter, "requests"), counter);
        assert_eq!(metrics.increment(counter, 0), Status::BadArgument);
        assert_eq!(metrics.increment(counter, -1), Status::BadArgument);
        assert_eq!(metrics.increment(counter, 2), Status::Ok);
        assert_eq!(metrics.record(counter, 3), Status::Ok);
        assert_eq!(metrics.get(counter), Ok(5));
        assert_eq!(metrics.increment(gauge, 4), Status::Ok);
        assert_eq!(metrics.increment(gauge, -1), Status::Ok);
        assert_eq!(metrics.get(gauge), Ok(3));
        assert_eq!(metrics.record(gauge, 9), Status::Ok);
        assert_eq!(metrics.get(gauge), Ok(9));
        assert_eq!(metrics.increment(histogram, 1), Status::BadArgument);
        assert_eq!(metrics.record(histogram, 7), Status::Ok);
        assert_eq!(metrics.get(histogram), Err(Status::BadArgument));
        assert_eq!(metrics.increment(99 << 2, 1), Status::NotFound);
        assert_eq!(metrics.get(counter | 1), Err(Status::NotFound));
    }

    #[test]
    fn the_clock_moves_on_by_its_step_per_read() {
        let mut state = State {
            clock_nanos: 10,
            clock_step_nanos: 5,
            ..State::default()
        };
        assert_eq!([state.read_clock(), state.read_clock()], [10, 15]);
        let mut frozen = State {
            clock_nanos: 10,
            ..State::default()
        };
        assert_eq!([frozen.read_clock(), frozen.read_clock()], [10, 10]);
    }

    #[test]
    fn random_bytes_are_reproducible_per_seed() {
        let mut a = State {
            random_state: 7,
            ..State::default()
        };
        let mut b = State {
            random_state: 7,
            ..State::default()
        };
        assert_eq!(a.random_bytes(13), b.random_bytes(13));
        assert_ne!(a.random_bytes(8), State::default().random_bytes(8));
    }
}
