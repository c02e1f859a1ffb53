//! A whole exchange through the machine, with a host in memory standing in for Envoy: the client's
//! request goes in (in chunks of a chosen size), the route table picks the cluster the routing
//! header names, an upstream per cluster answers (a mock, a recorded answer), and out come what each
//! tier got, what the client got and the decision record. The CLI shows with it what the filter
//! would do with an answer, and the machine's tests drive every path through it.
//!
//! It holds Envoy's semantics the machine relies on: a paused body is buffered and handed back
//! whole, a continued one flows on; request headers can be written only while held, and the route
//! is picked on them as received unless the route cache is cleared while they are; a local reply
//! replaces whatever the client would have got; an upstream that resets before answering becomes
//! Envoy's own 503 with the reset in `response.code_details`. A call the machine sends is answered
//! as soon as the callback that sent it returns (or, when the settings say so, once the routed
//! response has been fed whole, so that its body arrives while the call is in flight).

use std::cell::Cell;
use std::rc::Rc;

use super::{BreakerBoard, Call, Effect, HeaderMap, Level, Next, Reads, Step, Stream};
use crate::{ApiFormat, Config, DecisionRecord};

pub mod answers;

/// What an upstream does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Answer(Answer),
    /// Envoy answers in the upstream's place (a timeout, a refused connection): its answer, and
    /// its response code details saying why (empty: none).
    Envoy(Answer, String),
    /// The connection closes before any response.
    Reset,
}

/// A response: status, headers (without `:status`) and body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".to_string(), content_type.to_string())],
            body: body.into(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(have, _)| have.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A request as one upstream cluster got it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sent {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The upstream clusters: each request sent to one gets its reply.
pub trait Upstreams {
    fn reply(&mut self, request: &Sent) -> Reply;
}

impl<F: FnMut(&Sent) -> Reply> Upstreams for F {
    fn reply(&mut self, request: &Sent) -> Reply {
        self(request)
    }
}

/// The client's request.
#[derive(Debug, Clone, Default)]
pub struct ClientRequest {
    /// Pseudo-headers (`:method`, `:path`, `:authority`) included.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body ends with (HTTP/2) trailers instead of with its last chunk.
    pub trailers: bool,
}

impl ClientRequest {
    /// A client's POST of `body` to the format's endpoint, as the gateway would pass it on.
    pub fn post(format: ApiFormat, body: Vec<u8>) -> ClientRequest {
        let headers = [
            (":method", "POST".to_string()),
            (":path", format.path().to_string()),
            (":authority", "triage".to_string()),
            ("content-type", "application/json".to_string()),
            ("content-length", body.len().to_string()),
        ];
        ClientRequest {
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
            body,
            trailers: false,
        }
    }
}

/// How the host behaves, beyond the request and the upstreams.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// Body bytes per callback, request and response: these sizes in turn, then over again from
    /// the first (each at least 1; none: a body in one piece).
    pub chunk_bytes: Vec<usize>,
    /// The clock's start, and how far it moves at each read (0: it stands still).
    pub start_nanos: u64,
    pub nanos_per_read: u64,
    /// How long each upstream, routed or called, takes to answer: the clock moves on by this much
    /// before its response arrives.
    pub latency_nanos: u64,
    /// The decision id the random source gives; None: it fails.
    pub decision_id: Option<String>,
    /// Host attributes the gateway set (identity metadata), by path.
    pub properties: Vec<(Vec<String>, Vec<u8>)>,
    /// The cluster Envoy's route table sends the request to, whatever the routing header names;
    /// None: the named tier's cluster (the default tier's without one).
    pub route_to: Option<String>,
    /// Clusters Envoy can not send a call to (no healthy host): dispatching one fails.
    pub unavailable_clusters: Vec<String>,
    /// Calls are answered only once the routed response has been fed whole (its body and its end
    /// arrive while the call is in flight); false: as soon as the callback that sent one returns.
    pub calls_wait_for_response: bool,
}

impl Default for HostSettings {
    fn default() -> HostSettings {
        HostSettings {
            chunk_bytes: vec![16 * 1024],
            start_nanos: 1_800_000_000_000_000_000,
            nanos_per_read: 0,
            latency_nanos: 0,
            decision_id: Some("00000000-0000-4000-8000-000000000000".to_string()),
            properties: Vec::new(),
            route_to: None,
            unavailable_clusters: Vec::new(),
            calls_wait_for_response: false,
        }
    }
}

/// What came of an exchange.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The request the route table sent on; None when the client was answered before it.
    pub routed: Option<Sent>,
    /// The calls the machine sent (escalations), in order; not one the host could not send.
    pub calls: Vec<Call>,
    /// What the machine said next at each request callback (headers, body chunks, trailers) and
    /// at each response callback (headers, body chunks), in order: a call it asked for shows as
    /// the [`Next::Dispatch`] it was.
    pub request_next: Vec<Next>,
    pub response_next: Vec<Next>,
    /// What the client got.
    pub response: Answer,
    /// The settled record; None for a request triage does not route.
    pub record: Option<DecisionRecord>,
    pub logs: Vec<(Level, String)>,
    /// Effects the host could not apply in the state the stream was in (a request header written
    /// after the headers went on, a local reply once the response went out): a machine bug,
    /// asserted empty by the tests.
    pub refused: Vec<String>,
}

/// Runs one exchange.
pub fn run(
    config: &Rc<Config>,
    breakers: Rc<dyn BreakerBoard>,
    request: &ClientRequest,
    upstreams: &mut dyn Upstreams,
    settings: &HostSettings,
) -> Outcome {
    let mut host = Host::new(config, request, settings);
    let mut machine = Stream::new(Rc::clone(config), breakers);
    host.send_request(&mut machine, request, upstreams);
    if host.replied.is_none() {
        host.receive_response(&mut machine, upstreams);
    }
    host.calls_held = false;
    host.answer_calls(&mut machine, upstreams);
    let step = machine.log(&host);
    host.apply(&mut machine, step, upstreams);
    host.finish()
}

/// Where the request and the response stand, as Envoy holds them.
struct Host<'a> {
    config: &'a Config,
    settings: &'a HostSettings,
    clock: Cell<u64>,
    request_headers: Vec<(String, String)>,
    /// Request headers can be written until they go on.
    request_headers_held: bool,
    /// The headers the route was picked on: as received, unless the route cache was cleared
    /// while they were held (then the route is picked again on the headers as they go on).
    route_headers: Vec<(String, String)>,
    route_picked_again: bool,
    request_buffer: Vec<u8>,
    upstream_body: Vec<u8>,
    response_status: Option<u16>,
    response_headers: Vec<(String, String)>,
    response_buffer: Vec<u8>,
    code_details: String,
    served_cluster: Option<String>,
    /// The answer to the call being read, and the calls still to answer.
    call_answer: Option<Answer>,
    queued_calls: Vec<(u32, Call)>,
    /// Calls wait while the routed response is being fed.
    calls_held: bool,
    /// The client's response so far, and the local reply that replaced it.
    response_started: bool,
    client_body: Vec<u8>,
    replied: Option<Answer>,
    outcome: Outcome,
}

impl<'a> Host<'a> {
    fn new(config: &'a Config, request: &ClientRequest, settings: &'a HostSettings) -> Host<'a> {
        let request_headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        Host {
            config,
            settings,
            clock: Cell::new(settings.start_nanos),
            route_headers: request_headers.clone(),
            route_picked_again: false,
            request_headers,
            request_headers_held: true,
            request_buffer: Vec::new(),
            upstream_body: Vec::new(),
            response_status: None,
            response_headers: Vec::new(),
            response_buffer: Vec::new(),
            code_details: String::new(),
            served_cluster: None,
            call_answer: None,
            queued_calls: Vec::new(),
            calls_held: false,
            response_started: false,
            client_body: Vec::new(),
            replied: None,
            outcome: Outcome::default(),
        }
    }

    fn chunks<'b>(&self, body: &'b [u8]) -> Vec<&'b [u8]> {
        chunks(body, &self.settings.chunk_bytes)
    }

    fn wait_for_an_upstream(&self) {
        let now = self.clock.get();
        self.clock
            .set(now.saturating_add(self.settings.latency_nanos));
    }

    fn send_request(
        &mut self,
        machine: &mut Stream,
        request: &ClientRequest,
        up: &mut dyn Upstreams,
    ) {
        let has_body = !request.body.is_empty() || request.trailers;
        let step = machine.request_headers(self, !has_body);
        self.outcome.request_next.push(step.next.clone());
        if self.apply(machine, step, up) == Next::Continue {
            self.request_headers_held = false;
        }
        let chunks = self.chunks(&request.body);
        for (n, chunk) in chunks.iter().enumerate() {
            if self.replied.is_some() {
                return;
            }
            self.request_buffer.extend_from_slice(chunk);
            let end = n + 1 == chunks.len() && !request.trailers;
            let step = machine.request_body(self, self.request_buffer.len(), end);
            self.outcome.request_next.push(step.next.clone());
            if self.apply(machine, step, up) == Next::Continue {
                self.request_headers_held = false;
                self.upstream_body.append(&mut self.request_buffer);
            }
        }
        if request.trailers && self.replied.is_none() {
            let step = machine.request_trailers(self);
            self.outcome.request_next.push(step.next.clone());
            self.apply(machine, step, up);
            self.request_headers_held = false;
        }
        self.upstream_body.append(&mut self.request_buffer);
    }

    /// The cluster of the tier the routing header names (in the headers the route was picked on);
    /// without one, the default tier's.
    fn routed_cluster(&self) -> String {
        if let Some(cluster) = &self.settings.route_to {
            return cluster.clone();
        }
        let route_headers = match self.route_picked_again {
            true => &self.request_headers,
            false => &self.route_headers,
        };
        let tier = header(route_headers, self.config.route_header())
            .and_then(|name| self.config.tier_index(name))
            .or_else(|| self.config.tier_index(self.config.default_tier_name()))
            .unwrap_or_default();
        self.config
            .tier_cluster(tier)
            .unwrap_or_default()
            .to_string()
    }

    fn receive_response(&mut self, machine: &mut Stream, up: &mut dyn Upstreams) {
        let sent = Sent {
            cluster: self.routed_cluster(),
            headers: self.request_headers.clone(),
            body: std::mem::take(&mut self.upstream_body),
        };
        self.wait_for_an_upstream();
        let answer = match up.reply(&sent) {
            Reply::Answer(answer) => {
                self.code_details = "via_upstream".to_string();
                answer
            }
            Reply::Envoy(answer, details) => {
                self.code_details = details;
                answer
            }
            Reply::Reset => {
                self.code_details =
                    "upstream_reset_before_response_started{connection_termination}".to_string();
                Answer::new(
                    503,
                    "text/plain",
                    "upstream connect error or disconnect/reset before headers",
                )
            }
        };
        self.served_cluster = Some(sent.cluster.clone());
        self.outcome.routed = Some(sent);
        self.response_status = Some(answer.status);
        self.response_headers = answer.headers.clone();
        self.calls_held = self.settings.calls_wait_for_response;
        let step = machine.response_headers(self, answer.body.is_empty());
        self.outcome.response_next.push(step.next.clone());
        self.response_started |= self.apply(machine, step, up) == Next::Continue;
        let chunks = self.chunks(&answer.body);
        for (n, chunk) in chunks.iter().enumerate() {
            if self.replied.is_some() {
                return;
            }
            self.response_buffer.extend_from_slice(chunk);
            let end = n + 1 == chunks.len();
            let step = machine.response_body(self, self.response_buffer.len(), end);
            self.outcome.response_next.push(step.next.clone());
            if self.apply(machine, step, up) == Next::Continue {
                self.response_started = true;
                self.client_body.append(&mut self.response_buffer);
            }
        }
    }

    /// Applies a step's effects, sends its call and answers every call sent, as Envoy would once
    /// the callback returns (unless calls wait for the response); what the callback returned.
    fn apply(&mut self, machine: &mut Stream, step: Step, up: &mut dyn Upstreams) -> Next {
        for effect in step.effects {
            self.apply_effect(machine, effect);
        }
        if let Next::Dispatch(call) = step.next {
            let token = if self.settings.unavailable_clusters.contains(&call.cluster) {
                // As the filter does when Envoy refuses to start the call.
                let message = format!("escalating to cluster {} failed", call.cluster);
                self.outcome.logs.push((Level::Warn, message));
                None
            } else {
                let token = self.outcome.calls.len() as u32 + 1;
                self.outcome.calls.push(call.clone());
                self.queued_calls.push((token, call));
                Some(token)
            };
            let step = machine.dispatched(self, token);
            return self.apply(machine, step, up);
        }
        self.answer_calls(machine, up);
        step.next
    }

    /// Answers every call sent and not answered yet, unless calls wait for the response.
    fn answer_calls(&mut self, machine: &mut Stream, up: &mut dyn Upstreams) {
        if self.calls_held {
            return;
        }
        while let Some((token, call)) = self.queued_calls.pop() {
            let sent = Sent {
                cluster: call.cluster,
                headers: call.headers,
                body: call.body,
            };
            self.wait_for_an_upstream();
            let answer = match up.reply(&sent) {
                Reply::Answer(answer) => Some(answer),
                Reply::Envoy(answer, _) => Some(answer),
                Reply::Reset => None,
            };
            let (headers, body) = answer.as_ref().map_or((0, 0), |answer| {
                (answer.headers.len() + 1, answer.body.len())
            });
            self.call_answer = answer;
            let step = machine.call_answered(self, token, headers, body);
            self.apply(machine, step, up);
        }
    }

    fn apply_effect(&mut self, machine: &mut Stream, effect: Effect) {
        match effect {
            Effect::SetHeader { map, name, value } => {
                if let Some(headers) = self.writable(map, &name) {
                    headers.retain(|(have, _)| !have.eq_ignore_ascii_case(&name));
                    headers.push((name, value));
                }
            }
            Effect::RemoveHeader { map, name } => {
                if let Some(headers) = self.writable(map, &name) {
                    headers.retain(|(have, _)| !have.eq_ignore_ascii_case(&name));
                }
            }
            Effect::ReplaceRequestBody {
                replaced,
                body,
                content_length,
            } => {
                if replaced != self.request_buffer.len() {
                    self.outcome.refused.push(format!(
                        "replacing {replaced} of {} bytes",
                        self.request_buffer.len()
                    ));
                    return machine.rewrite_failed();
                }
                self.request_buffer = body;
                if content_length {
                    let length = self.request_buffer.len().to_string();
                    self.apply_effect(
                        machine,
                        Effect::SetHeader {
                            map: HeaderMap::Request,
                            name: "content-length".to_string(),
                            value: length,
                        },
                    );
                }
            }
            Effect::ClearRouteCache => self.route_picked_again |= self.request_headers_held,
            Effect::LocalReply {
                status,
                body,
                headers,
                ..
            } => {
                if self.response_started {
                    // Envoy can only reset a stream whose response went out already.
                    let message = format!("a local reply {status} after the response started");
                    self.outcome.refused.push(message);
                }
                self.replied = Some(Answer {
                    status,
                    headers,
                    body,
                });
            }
            Effect::ContinueResponse => {
                self.response_started = true;
                self.client_body.append(&mut self.response_buffer);
            }
            Effect::Settle(record) => self.outcome.record = Some(*record),
            Effect::Log { level, message } => self.outcome.logs.push((level, message)),
        }
    }

    fn writable(&mut self, map: HeaderMap, name: &str) -> Option<&mut Vec<(String, String)>> {
        match map {
            HeaderMap::Request if self.request_headers_held => Some(&mut self.request_headers),
            HeaderMap::Response if self.response_status.is_some() => {
                Some(&mut self.response_headers)
            }
            _ => {
                self.outcome
                    .refused
                    .push(format!("writing {name} on {map:?}"));
                None
            }
        }
    }

    fn finish(mut self) -> Outcome {
        self.outcome.response = match self.replied.take() {
            Some(reply) => reply,
            None => Answer {
                status: self.response_status.unwrap_or_default(),
                headers: std::mem::take(&mut self.response_headers),
                body: std::mem::take(&mut self.client_body),
            },
        };
        self.outcome
    }
}

impl Reads for Host<'_> {
    fn now_nanos(&self) -> u64 {
        let now = self.clock.get();
        self.clock
            .set(now.saturating_add(self.settings.nanos_per_read));
        now
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        self.request_headers.clone()
    }

    fn response_header(&self, name: &str) -> Option<String> {
        if name == ":status" {
            return self.response_status.map(|status| status.to_string());
        }
        header(&self.response_headers, name).map(str::to_string)
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match path {
            ["xds", "cluster_name"] => self.served_cluster.clone().map(String::into_bytes),
            ["response", "code_details"] => Some(self.code_details.clone().into_bytes()),
            _ => property(&self.settings.properties, path),
        }
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        Some(held_bytes(&self.request_buffer, 0, size))
    }

    fn response_body(&self, start: usize, size: usize) -> Vec<u8> {
        held_bytes(&self.response_buffer, start, size)
    }

    fn call_answer(
        &self,
        num_headers: usize,
        body_size: usize,
    ) -> (Vec<(String, String)>, Vec<u8>) {
        call_answer(self.call_answer.as_ref(), num_headers, body_size)
    }

    fn new_decision_id(&self) -> Option<String> {
        self.settings.decision_id.clone()
    }
}

/// The value of the host attribute at `path` among `properties`.
pub(crate) fn property(properties: &[(Vec<String>, Vec<u8>)], path: &[&str]) -> Option<Vec<u8>> {
    properties
        .iter()
        .find(|(have, _)| have.iter().map(String::as_str).eq(path.iter().copied()))
        .map(|(_, value)| value.clone())
}

/// `size` bytes of a buffer the host holds, from `start` (fewer at its end).
pub(crate) fn held_bytes(buffer: &[u8], start: usize, size: usize) -> Vec<u8> {
    let end = start.saturating_add(size).min(buffer.len());
    buffer.get(start..end).unwrap_or_default().to_vec()
}

/// A call's answer as the host hands it over: `:status` and the headers, then `body_size` bytes
/// of the body; nothing without headers (the call failed).
pub(crate) fn call_answer(
    answer: Option<&Answer>,
    num_headers: usize,
    body_size: usize,
) -> (Vec<(String, String)>, Vec<u8>) {
    let Some(answer) = answer.filter(|_| num_headers > 0) else {
        return (Vec::new(), Vec::new());
    };
    let mut headers = vec![(":status".to_string(), answer.status.to_string())];
    headers.extend(answer.headers.iter().cloned());
    (headers, held_bytes(&answer.body, 0, body_size))
}

/// `body` cut as [`HostSettings::chunk_bytes`] says: `sizes` in turn, over again from the first.
pub fn chunks<'b>(body: &'b [u8], sizes: &[usize]) -> Vec<&'b [u8]> {
    let mut sizes = sizes.iter().cycle();
    let mut chunks = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let size = sizes.next().map_or(rest.len(), |size| (*size).max(1));
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(have, _)| have.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}
