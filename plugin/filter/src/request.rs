//! One HTTP stream: hold the headers, buffer the body, decide, then route and rewrite.
//!
//! Envoy lets a filter write request headers only while it holds them, so the headers are paused
//! until the decision is made at the end of the body (which needs `allow_on_headers_stop_iteration`
//! in the plugin config). Every host failure is logged and the request continues: a request the
//! client didn't break is never failed here.

use crate::host;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType, Status};
use std::rc::Rc;
use triage_core::{ApiFormat, Config, Decision, FailOpen, RequestHead};

const TIER_HEADER: &str = "x-triage-tier";
const SCORE_HEADER: &str = "x-triage-score";
const REASON_HEADER: &str = "x-triage-reason";
/// Every header with this prefix belongs to triage; a client's copy is dropped.
const OWN_HEADER_PREFIX: &str = "x-triage-";

pub struct TriageRequest {
    context_id: u32,
    config: Rc<Config>,
    stage: Stage,
}

enum Stage {
    /// Not an LLM API call (or not yet seen): nothing to do.
    PassThrough,
    /// An LLM API call whose body is being buffered.
    Buffering(PendingRequest),
    /// Routed; the response gets the decision's headers.
    Decided(Decision),
}

struct PendingRequest {
    format: ApiFormat,
    path: String,
    rule_headers: Vec<(String, String)>,
    has_content_length: bool,
    body_size: usize,
}

impl TriageRequest {
    pub fn new(context_id: u32, config: Rc<Config>) -> Self {
        Self {
            context_id,
            config,
            stage: Stage::PassThrough,
        }
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

    fn pending_request(&self, format: ApiFormat, path: String) -> PendingRequest {
        let rule_headers = self
            .config
            .rule_header_names()
            .iter()
            .filter_map(|name| self.request_header(name).map(|value| (name.clone(), value)))
            .collect();
        PendingRequest {
            format,
            path,
            rule_headers,
            has_content_length: self.request_header("content-length").is_some(),
            body_size: 0,
        }
    }

    fn decide_on_body(&mut self, pending: PendingRequest) {
        let body = match host::buffer(BufferType::HttpRequestBody, 0, pending.body_size) {
            Ok(body) => body,
            Err(status) => {
                self.warn("reading the request body", status);
                return self.route(triage_core::fail_open(
                    &self.config,
                    FailOpen::BodyUnavailable,
                ));
            }
        };
        let head = RequestHead {
            format: pending.format,
            path: &pending.path,
            headers: &pending.rule_headers,
        };
        let mut decision = triage_core::decide(&self.config, &head, &body);
        if let Some(model) = decision.model.as_deref() {
            if !self.rewrite_model(&body, model, pending.has_content_length) {
                decision.model = None;
            }
        }
        self.route(decision);
    }

    /// Writes the tier's model into the body and keeps the framing right: a stale content-length
    /// makes the upstream read leftover bytes as the next request on a pooled connection.
    fn rewrite_model(&self, body: &[u8], model: &str, has_content_length: bool) -> bool {
        let rewritten = match triage_core::rewrite_model(body, model) {
            Ok(rewritten) => rewritten,
            Err(err) => {
                log::warn!("#{} model not rewritten: {err}", self.context_id);
                return false;
            }
        };
        if let Err(status) =
            host::set_buffer(BufferType::HttpRequestBody, 0, body.len(), &rewritten)
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

    fn route(&mut self, decision: Decision) {
        log::debug!(
            "#{} tier={} reason={}",
            self.context_id,
            decision.tier,
            decision.reason_header()
        );
        let headers = MapType::HttpRequestHeaders;
        if let Err(status) = host::set_header(headers, self.config.route_header(), &decision.tier) {
            self.warn("setting the routing header", status);
        }
        self.write_decision_headers(headers, &decision);
        // Envoy picked the route before the body arrived; make it pick again with our header.
        match host::call_foreign("clear_route_cache") {
            Ok(()) | Err(Status::NotFound) => {}
            Err(status) => self.warn("clearing the route cache", status),
        }
        self.stage = Stage::Decided(decision);
    }

    fn write_decision_headers(&self, map: MapType, decision: &Decision) {
        let score = decision.score_header();
        let values = [
            (TIER_HEADER, Some(decision.tier.clone())),
            (SCORE_HEADER, score),
            (REASON_HEADER, Some(decision.reason_header())),
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

    fn warn(&self, what: &str, status: Status) {
        log::warn!("#{} {what} failed: {status:?}", self.context_id);
    }
}

impl Context for TriageRequest {}

impl HttpContext for TriageRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        self.panic_if_asked();
        self.strip_client_routing_headers();
        let method = self.request_header(":method").unwrap_or_default();
        let path = self.request_header(":path").unwrap_or_default();
        let Some(format) = ApiFormat::detect(&method, &path) else {
            return Action::Continue;
        };
        let pending = self.pending_request(format, path);
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
            // Stop buffering: the body streams through untouched to the default tier.
            let decision = triage_core::fail_open(&self.config, FailOpen::BodyTooLarge);
            self.route(decision);
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        if let Stage::Buffering(pending) = std::mem::replace(&mut self.stage, Stage::PassThrough) {
            self.decide_on_body(pending);
        }
        Action::Continue
    }

    /// With HTTP/2 trailers the end of stream arrives here instead of in the body callback.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if let Stage::Buffering(pending) = std::mem::replace(&mut self.stage, Stage::PassThrough) {
            self.decide_on_body(pending);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if let Stage::Decided(decision) = &self.stage {
            self.write_decision_headers(MapType::HttpResponseHeaders, decision);
        }
        Action::Continue
    }
}
