//! One HTTP stream: hold the headers, buffer the body, decide, route and rewrite (or, shadowed, only
//! record), then read the response's usage and settle the decision record.
//!
//! Envoy lets a filter write request headers only while it holds them, so the headers are paused
//! until the decision is made at the end of the body (which needs `allow_on_headers_stop_iteration`
//! in the plugin config). Every host failure is logged and the request continues: a request the
//! client didn't break is never failed here.

use crate::breakers::Breakers;
use crate::escalation::{Hold, Retry};
use crate::host;
use crate::metrics::Metrics;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType, Status};
use std::rc::Rc;
use triage_core::{
    identity_value, ApiFormat, Applied, Config, Decision, DecisionRecord, Endpoint, Escalation,
    FailOpen, Identity, IdentitySource, OverMaxBody, RecordStart, RequestHead, UsageReader,
    OWN_HEADER_PREFIX,
};

pub(crate) const TIER_HEADER: &str = "x-triage-tier";
const SCORE_HEADER: &str = "x-triage-score";
const REASON_HEADER: &str = "x-triage-reason";
const MODE_HEADER: &str = "x-triage-mode";
/// The decision's random id, on the client's response only (the key its feedback names).
pub(crate) const DECISION_ID_HEADER: &str = "x-triage-decision-id";

pub struct TriageRequest {
    pub(crate) context_id: u32,
    pub(crate) config: Rc<Config>,
    pub(crate) metrics: Rc<Metrics>,
    pub(crate) breakers: Rc<Breakers>,
    pub(crate) stage: Stage,
}

pub(crate) enum Stage {
    /// Not an LLM API call (or not yet seen): nothing to do.
    PassThrough,
    /// An LLM API call whose body is being buffered.
    Buffering(PendingRequest),
    /// Decided; the response gets the decision's headers and settles the record.
    Decided(Box<Routed>),
    /// The record is written and counted.
    Settled,
}

pub(crate) struct PendingRequest {
    pub(crate) format: ApiFormat,
    /// The endpoint's own path and the client's query string: what rules see, and what an
    /// enforced request is sent to.
    path: String,
    /// The client spelled the path otherwise (`/V1/Chat/Completions/`): an enforced request's
    /// `:path` is set to `path`, so the tier serves it as the call it was decided and priced as.
    respell_path: bool,
    /// Random, made here for the decision: the record's key and the canary's draw. None when the
    /// host's random source failed.
    decision_id: Option<String>,
    /// The `x-request-id` Envoy passes on (client-influenced): recorded, never a key.
    request_id: String,
    pub(crate) start_nanos: u64,
    /// The request headers the decision reads (rules, override, escalation opt-outs), captured
    /// before any is stripped.
    pub(crate) decision_headers: Vec<(String, String)>,
    /// What the gateway verified, read where the config says (never from a client-chosen header).
    caller: Option<String>,
    tenant: Option<String>,
    has_content_length: bool,
    body_size: usize,
}

impl PendingRequest {
    fn identity(&self) -> Identity<'_> {
        Identity {
            caller: self.caller.as_deref(),
            tenant: self.tenant.as_deref(),
        }
    }
}

/// A decided request, from the decision to the end of its response.
pub(crate) struct Routed {
    pub(crate) decision: Decision,
    pub(crate) record: DecisionRecord,
    pub(crate) format: ApiFormat,
    pub(crate) status: Option<u16>,
    pub(crate) event_stream: bool,
    pub(crate) usage: Option<UsageReader>,
    /// Set when a failure or a weak answer may move the request up a tier.
    pub(crate) retry: Option<Retry>,
    pub(crate) hold: Hold,
    /// Bytes of the response body buffer already read (Envoy hands back the whole buffer while the
    /// filter holds it).
    pub(crate) seen: usize,
    pub(crate) response_ended: bool,
    /// The tier whose circuit breaker learns from this answer (enforced automatic decisions only).
    pub(crate) breaker_tier: Option<usize>,
    /// Answered before any tier saw it (a 413, another filter's reply): the client's response names
    /// no tier, only the reason.
    pub(crate) unrouted: bool,
}

impl TriageRequest {
    pub fn new(
        context_id: u32,
        config: Rc<Config>,
        metrics: Rc<Metrics>,
        breakers: Rc<Breakers>,
    ) -> Self {
        Self {
            context_id,
            config,
            metrics,
            breakers,
            stage: Stage::PassThrough,
        }
    }

    pub(crate) fn now_nanos(&self) -> u64 {
        host::now_nanos().unwrap_or_else(|status| {
            self.warn("reading the clock", status);
            0
        })
    }

    fn request_header(&self, name: &str) -> Option<String> {
        match host::header(MapType::HttpRequestHeaders, name) {
            Ok(value) => value.map(|v| String::from_utf8_lossy(&v).into_owned()),
            Err(status) => {
                self.warn(&format!("reading request header {name}"), status);
                None
            }
        }
    }

    /// Drops the routing header and every `x-triage-*` header the client sent: a client never
    /// picks its own tier. (The shipped Envoy config also strips them before any filter runs.)
    fn strip_client_routing_headers(&self) {
        let names = match host::header_names(MapType::HttpRequestHeaders) {
            Ok(names) => names,
            Err(status) => return self.warn("listing request headers", status),
        };
        let route_header = self.config.route_header();
        for name in names {
            if name == route_header || name.starts_with(OWN_HEADER_PREFIX) {
                if let Err(status) = host::remove_header(MapType::HttpRequestHeaders, &name) {
                    self.warn(&format!("removing client header {name}"), status);
                }
            }
        }
    }

    /// One identity attribute from where the gateway put it; None when absent or not a name.
    fn verified(&self, source: Option<&IdentitySource>) -> Option<String> {
        let source = source?;
        let read = match source {
            IdentitySource::Header(name) => host::header(MapType::HttpRequestHeaders, name),
            IdentitySource::Metadata { .. } => {
                host::property(&source.property_path().unwrap_or_default())
            }
        };
        match read {
            Ok(bytes) => identity_value(&bytes?),
            Err(status) => {
                self.warn(&format!("reading the identity {source:?}"), status);
                None
            }
        }
    }

    fn decision_headers(&self) -> Vec<(String, String)> {
        self.config
            .decision_header_names()
            .iter()
            .filter_map(|name| self.request_header(name).map(|value| (name.clone(), value)))
            .collect()
    }

    fn pending_request(
        &self,
        endpoint: Endpoint,
        client_path: &str,
        decision_headers: Vec<(String, String)>,
        start_nanos: u64,
    ) -> PendingRequest {
        let sources = self.config.identity_sources();
        PendingRequest {
            format: endpoint.format,
            respell_path: endpoint.path != client_path,
            path: endpoint.path,
            decision_id: self.new_decision_id(),
            request_id: self.request_header("x-request-id").unwrap_or_default(),
            start_nanos,
            decision_headers,
            caller: self.verified(sources.caller.as_ref()),
            tenant: self.verified(sources.tenant.as_ref()),
            has_content_length: self.request_header("content-length").is_some(),
            body_size: 0,
        }
    }

    /// A random id for the decision; without one (the random source failed) the request goes on:
    /// no `x-triage-decision-id`, a null `decision_id` in the record, and a canary shadows it.
    fn new_decision_id(&self) -> Option<String> {
        match triage_core::new_decision_id() {
            Ok(id) => Some(id),
            Err(error) => {
                log::warn!(
                    "#{} {error}; the request goes on without one",
                    self.context_id
                );
                None
            }
        }
    }

    fn decide_on_body(&mut self, pending: PendingRequest) {
        let started = self.now_nanos();
        let applied = self.config.mode().applied(pending.decision_id.as_deref());
        let body = match host::buffer(BufferType::HttpRequestBody, 0, pending.body_size) {
            Ok(body) => body,
            Err(status) => {
                self.warn("reading the request body", status);
                let decision = triage_core::fail_open(&self.config, FailOpen::BodyUnavailable);
                return self.route(pending, applied, decision, None, started, Vec::new());
            }
        };
        let head = RequestHead {
            format: pending.format,
            path: &pending.path,
            headers: &pending.decision_headers,
            identity: pending.identity(),
        };
        let mut decision = triage_core::decide(&self.config, &head, &body);
        let mut skipped = Vec::new();
        if applied == Applied::Enforce {
            skipped = self.skip_open_tiers(&mut decision, pending.format);
            let tier = self.config.tier_index(&decision.tier).unwrap_or_default();
            let judged = tier + 1 < self.config.tier_names().len();
            let model = decision.model.as_deref();
            match triage_core::upstream_body(
                &self.config,
                pending.format,
                &body,
                judged,
                model,
                decision.stream,
            ) {
                // Unreachable with a validated config: the body is at most max_body_bytes and the
                // limit leaves room for the longest change. Handing Envoy a longer body would get
                // the client a 413 after the request was routed.
                Ok(Some(changed)) if changed.len() > self.config.envoy_buffer_limit_bytes() => {
                    log::warn!(
                        "#{} body not rewritten: {} bytes would pass Envoy's limit of {}",
                        self.context_id,
                        changed.len(),
                        self.config.envoy_buffer_limit_bytes()
                    );
                    decision.model = None;
                }
                Ok(Some(changed)) => {
                    if !self.replace_body(&body, &changed, pending.has_content_length) {
                        decision.model = None;
                    }
                }
                Ok(None) => {}
                Err(err) => {
                    log::warn!("#{} body not rewritten: {err}", self.context_id);
                    decision.model = None;
                }
            }
        }
        self.route(pending, applied, decision, Some(body), started, skipped);
    }

    /// Routes past the body cap: the body streams through untouched to the default tier.
    fn route_without_body(&mut self, pending: PendingRequest, cause: FailOpen) {
        let started = self.now_nanos();
        let applied = self.config.mode().applied(pending.decision_id.as_deref());
        let decision = triage_core::fail_open(&self.config, cause);
        self.route(pending, applied, decision, None, started, Vec::new());
    }

    /// Past the body cap with `over_max_body: reject`: the client gets 413 and no tier sees the
    /// request (a shadowed request streams through as it would without triage).
    fn refuse_too_large(&mut self, pending: PendingRequest) -> Action {
        let applied = self.config.mode().applied(pending.decision_id.as_deref());
        if applied == Applied::Shadow {
            self.route_without_body(pending, FailOpen::BodyTooLarge);
            return Action::Continue;
        }
        let started = self.now_nanos();
        let decision = triage_core::fail_open(&self.config, FailOpen::BodyTooLarge);
        self.track(pending, applied, decision, None, started, Vec::new());
        if let Stage::Decided(routed) = &mut self.stage {
            routed.unrouted = true;
        }
        let headers = [("content-type".to_string(), "text/plain".to_string())];
        if let Err(status) =
            host::send_local_response(413, "triage_body_too_large", b"Payload Too Large", &headers)
        {
            self.warn("answering 413", status);
        }
        // Envoy sends the reply once this callback returns; the body is not to go on.
        Action::Pause
    }

    /// Replaces the body and keeps the framing right: a stale content-length makes the upstream
    /// read leftover bytes as the next request on a pooled connection.
    fn replace_body(&self, body: &[u8], rewritten: &[u8], has_content_length: bool) -> bool {
        if let Err(status) = host::set_buffer(BufferType::HttpRequestBody, 0, body.len(), rewritten)
        {
            self.warn("replacing the request body", status);
            return false;
        }
        if has_content_length {
            let length = rewritten.len().to_string();
            if let Err(status) =
                host::set_header(MapType::HttpRequestHeaders, "content-length", &length)
            {
                self.warn("setting content-length", status);
            }
        }
        true
    }

    /// Enforced: the routing header picks the tier's route. Shadowed: the request goes on exactly
    /// as it came (the decision only reaches the record, the metrics and the response headers).
    fn route(
        &mut self,
        pending: PendingRequest,
        applied: Applied,
        decision: Decision,
        body: Option<Vec<u8>>,
        started: u64,
        skipped: Vec<Escalation>,
    ) {
        log::debug!(
            "#{} {} tier={} reason={}",
            self.context_id,
            applied.as_str(),
            decision.tier,
            decision.reason_header()
        );
        if applied == Applied::Enforce {
            let headers = MapType::HttpRequestHeaders;
            if let Err(status) =
                host::set_header(headers, self.config.route_header(), &decision.tier)
            {
                self.warn("setting the routing header", status);
            }
            if pending.respell_path {
                if let Err(status) = host::set_header(headers, ":path", &pending.path) {
                    self.warn("setting :path to the endpoint's own", status);
                }
            }
            self.write_decision_headers(headers, &decision, applied);
            // Envoy picked the route before the body arrived; make it pick again with our header.
            match host::call_foreign("clear_route_cache") {
                Ok(()) | Err(Status::NotFound) => {}
                Err(status) => self.warn("clearing the route cache", status),
            }
        }
        self.track(pending, applied, decision, body, started, skipped);
    }

    /// From here on the request is followed to the end of its response, for the record.
    fn track(
        &mut self,
        pending: PendingRequest,
        applied: Applied,
        decision: Decision,
        body: Option<Vec<u8>>,
        started: u64,
        skipped: Vec<Escalation>,
    ) {
        let start = RecordStart {
            decision_id: pending.decision_id.as_deref(),
            request_id: &pending.request_id,
            start_ms: pending.start_nanos / 1_000_000,
            identity: pending.identity(),
            api: pending.format.as_str(),
            mode: applied,
            decision_us: self.now_nanos().saturating_sub(started) / 1_000,
            body: body.as_deref(),
        };
        let mut record = DecisionRecord::new(&self.config, &decision, start);
        if let Some(first) = skipped.first() {
            // Skipping an open breaker's tier is not a different decision: the record keeps it
            // (and an override keeps the tier the caller asked for).
            record.decided_tier = first.from.clone();
            if let Some(corrected) = record.override_.as_mut() {
                corrected.to = first.from.clone();
            }
        }
        record.escalations = skipped;
        let breaker_tier = self.breaker_tier(&decision, applied);
        let retry = body.and_then(|body| self.retry_for(&pending, &decision, applied, body));
        self.stage = Stage::Decided(Box::new(Routed {
            decision,
            record,
            format: pending.format,
            status: None,
            event_stream: false,
            usage: None,
            retry,
            hold: Hold::Off,
            seen: 0,
            response_ended: false,
            breaker_tier,
            unrouted: false,
        }));
    }

    /// Takes the request whose body is being buffered out of the stage; any other stage stays.
    fn take_pending(&mut self) -> Option<PendingRequest> {
        match std::mem::replace(&mut self.stage, Stage::PassThrough) {
            Stage::Buffering(pending) => Some(pending),
            other => {
                self.stage = other;
                None
            }
        }
    }

    /// Envoy answered before the body was complete (a 413 past its buffer limit, another filter's
    /// local reply): nothing can be routed any more, but the request is still recorded and counted.
    pub(crate) fn answered_before_decision(&mut self, status: Option<u16>) {
        let Some(pending) = self.take_pending() else {
            return;
        };
        let cause = if status == Some(413) {
            FailOpen::BodyTooLarge
        } else {
            FailOpen::BodyUnavailable
        };
        let started = self.now_nanos();
        let applied = self.config.mode().applied(pending.decision_id.as_deref());
        let decision = triage_core::fail_open(&self.config, cause);
        self.track(pending, applied, decision, None, started, Vec::new());
        if let Stage::Decided(routed) = &mut self.stage {
            routed.unrouted = true;
        }
    }

    /// A response no tier gave (a 413, another filter's reply before the body was complete) says
    /// why triage did not route the request, and names no tier.
    pub(crate) fn write_unrouted_headers(&self, decision: &Decision) {
        let map = MapType::HttpResponseHeaders;
        for name in [TIER_HEADER, SCORE_HEADER, MODE_HEADER] {
            if let Err(status) = host::remove_header(map, name) {
                self.warn(&format!("removing {name}"), status);
            }
        }
        if let Err(status) = host::set_header(map, REASON_HEADER, &decision.reason_header()) {
            self.warn(&format!("writing {REASON_HEADER}"), status);
        }
    }

    pub(crate) fn write_decision_headers(
        &self,
        map: MapType,
        decision: &Decision,
        applied: Applied,
    ) {
        let score = decision.score_header();
        let mode = (applied == Applied::Shadow).then(|| applied.as_str().to_string());
        let values = [
            (TIER_HEADER, Some(decision.tier.clone())),
            (SCORE_HEADER, score),
            (REASON_HEADER, Some(decision.reason_header())),
            (MODE_HEADER, mode),
        ];
        for (name, value) in values {
            let written = match value {
                Some(value) => host::set_header(map, name, &value),
                None => host::remove_header(map, name),
            };
            if let Err(status) = written {
                self.warn(&format!("writing {name}"), status);
            }
        }
    }

    /// Exists only for the e2e test of `failure_policy` (the `fault-injection` build, never the
    /// shipped .wasm): a request carrying `x-e2e-panic` takes the VM down.
    #[cfg(feature = "fault-injection")]
    #[allow(clippy::panic)]
    fn panic_if_asked(&self) {
        if self.request_header("x-e2e-panic").is_some() {
            panic!("#{} fault injected by x-e2e-panic", self.context_id);
        }
    }

    pub(crate) fn warn(&self, what: &str, status: Status) {
        log::warn!("#{} {what} failed: {status:?}", self.context_id);
    }
}

impl Context for TriageRequest {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.escalation_answered(token_id, num_headers, body_size);
    }
}

impl HttpContext for TriageRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        self.panic_if_asked();
        let start_nanos = self.now_nanos();
        // Read before stripping: an allowed caller's override header is one of ours.
        let decision_headers = self.decision_headers();
        self.strip_client_routing_headers();
        let method = self.request_header(":method").unwrap_or_default();
        let path = self.request_header(":path").unwrap_or_default();
        let Some(endpoint) = Endpoint::of(&method, &path) else {
            return Action::Continue;
        };
        let pending = self.pending_request(endpoint, &path, decision_headers, start_nanos);
        if end_of_stream {
            self.decide_on_body(pending);
            return Action::Continue;
        }
        self.stage = Stage::Buffering(pending);
        Action::Pause
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Stage::Buffering(pending) = &mut self.stage else {
            return Action::Continue;
        };
        pending.body_size = body_size;
        if body_size > self.config.max_body_bytes() {
            let Some(pending) = self.take_pending() else {
                return Action::Continue;
            };
            return match self.config.over_max_body() {
                OverMaxBody::DefaultTier => {
                    self.route_without_body(pending, FailOpen::BodyTooLarge);
                    Action::Continue
                }
                OverMaxBody::Reject => self.refuse_too_large(pending),
            };
        }
        if !end_of_stream {
            return Action::Pause;
        }
        if let Some(pending) = self.take_pending() {
            self.decide_on_body(pending);
        }
        Action::Continue
    }

    /// With HTTP/2 trailers the end of stream arrives here instead of in the body callback (a
    /// request already routed past the body cap stays as it is).
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if let Some(pending) = self.take_pending() {
            self.decide_on_body(pending);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.response_headers(end_of_stream)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.response_body(body_size, end_of_stream)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.response_trailers()
    }

    /// The stream ended without a complete response (reset, client gone): the record still counts.
    fn on_log(&mut self) {
        self.answered_before_decision(None);
        self.settle();
    }
}
