//! The request side: hold the headers, buffer the body, decide, route and rewrite (or, shadowed,
//! only record), and start following the request for its record.

use super::headers::HeaderList;
use super::response::Routed;
use super::{decision_header_values, Effect, HeaderMap, Level, Next, State, Turn};
use crate::{
    decide, fail_open, identity_value, upstream_body, ApiFormat, Applied, Config, Decision,
    DecisionRecord, Endpoint, Escalation, FailOpen, Identity, IdentitySource, OverMaxBody,
    RecordStart, RequestHead, OWN_HEADER_PREFIX,
};

/// An LLM API call whose body is being buffered.
pub(super) struct Pending {
    pub(super) format: ApiFormat,
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
    pub(super) start_nanos: u64,
    /// The request headers the decision reads (rules, override, escalation opt-outs), captured
    /// before any is stripped.
    pub(super) decision_headers: Vec<(String, String)>,
    /// What the gateway verified, read where the config says (never from a client-chosen header).
    caller: Option<String>,
    tenant: Option<String>,
    has_content_length: bool,
    body_size: usize,
    /// The request headers as the upstream gets them.
    pub(super) headers: HeaderList,
}

impl Pending {
    fn identity(&self) -> Identity<'_> {
        Identity {
            caller: self.caller.as_deref(),
            tenant: self.tenant.as_deref(),
        }
    }
}

/// How a request ended up decided: its decision, what it applies, and the body it was made on.
struct Decided {
    applied: Applied,
    decision: Decision,
    body: Option<Vec<u8>>,
    /// When the decision started, for the record's `decision_us`.
    started: u64,
    /// Tiers skipped by their open breaker, stated like escalations.
    skipped: Vec<Escalation>,
}

impl Decided {
    /// The default tier, decided without the body (past the cap, unreadable, answered before).
    fn failed_open(config: &Config, applied: Applied, cause: FailOpen, started: u64) -> Decided {
        Decided {
            applied,
            decision: fail_open(config, cause),
            body: None,
            started,
            skipped: Vec::new(),
        }
    }
}

impl Turn<'_> {
    /// [`Decided::failed_open`] for `pending`, decided now.
    fn failed_open(&self, pending: &Pending, cause: FailOpen) -> Decided {
        let started = self.now_nanos();
        let applied = self.config.mode().applied(pending.decision_id.as_deref());
        Decided::failed_open(self.config, applied, cause, started)
    }

    pub(super) fn request_headers(&mut self, state: &mut State, end_of_stream: bool) -> Next {
        let start_nanos = self.now_nanos();
        let mut headers = HeaderList::new(self.reads.request_headers());
        // Read before stripping: an allowed caller's override header is one of ours.
        let decision_headers = self
            .config
            .decision_header_names()
            .iter()
            .filter_map(|name| {
                headers
                    .get(name)
                    .map(|value| (name.clone(), value.to_string()))
            })
            .collect();
        self.strip_client_routing_headers(&mut headers);
        let method = headers.get(":method").unwrap_or_default();
        let path = headers.get(":path").unwrap_or_default().to_string();
        let Some(endpoint) = Endpoint::of(method, &path) else {
            return Next::Continue;
        };
        let pending = self.pending(endpoint, &path, decision_headers, start_nanos, headers);
        if end_of_stream {
            self.decide_on_body(state, pending);
            return Next::Continue;
        }
        *state = State::Buffering(Box::new(pending));
        Next::Pause
    }

    pub(super) fn request_body(
        &mut self,
        state: &mut State,
        size: usize,
        end_of_stream: bool,
    ) -> Next {
        let State::Buffering(pending) = state else {
            return Next::Continue;
        };
        pending.body_size = size;
        if size > self.config.max_body_bytes() {
            let Some(pending) = Turn::take_pending(state) else {
                return Next::Continue;
            };
            return match self.config.over_max_body() {
                OverMaxBody::DefaultTier => {
                    self.route_without_body(state, *pending, FailOpen::BodyTooLarge);
                    Next::Continue
                }
                OverMaxBody::Reject => self.refuse_too_large(state, *pending),
            };
        }
        if !end_of_stream {
            return Next::Pause;
        }
        if let Some(pending) = Turn::take_pending(state) {
            self.decide_on_body(state, *pending);
        }
        Next::Continue
    }

    /// A request already routed past the body cap stays as it is.
    pub(super) fn request_trailers(&mut self, state: &mut State) -> Next {
        if let Some(pending) = Turn::take_pending(state) {
            self.decide_on_body(state, *pending);
        }
        Next::Continue
    }

    /// Drops the routing header and every `x-triage-*` header the client sent: a client never
    /// picks its own tier. (The shipped Envoy config also strips them before any filter runs.)
    fn strip_client_routing_headers(&mut self, headers: &mut HeaderList) {
        let route_header = self.config.route_header();
        let names: Vec<String> = headers
            .pairs()
            .iter()
            .map(|(name, _)| name)
            .filter(|name| *name == route_header || name.starts_with(OWN_HEADER_PREFIX))
            .cloned()
            .collect();
        for name in names {
            headers.remove(&name);
            self.remove_header(HeaderMap::Request, &name);
        }
    }

    /// One identity attribute from where the gateway put it; None when absent or not a name.
    fn verified(&self, source: Option<&IdentitySource>, headers: &HeaderList) -> Option<String> {
        let bytes = match source? {
            IdentitySource::Header(name) => headers.get(name)?.as_bytes().to_vec(),
            metadata @ IdentitySource::Metadata { .. } => self
                .reads
                .property(&metadata.property_path().unwrap_or_default())?,
        };
        identity_value(&bytes)
    }

    fn pending(
        &mut self,
        endpoint: Endpoint,
        client_path: &str,
        decision_headers: Vec<(String, String)>,
        start_nanos: u64,
        headers: HeaderList,
    ) -> Pending {
        let sources = self.config.identity_sources();
        let decision_id = self.reads.new_decision_id();
        Pending {
            format: endpoint.format,
            respell_path: endpoint.path != client_path,
            path: endpoint.path,
            decision_id,
            request_id: headers.get("x-request-id").unwrap_or_default().to_string(),
            start_nanos,
            decision_headers,
            caller: self.verified(sources.caller.as_ref(), &headers),
            tenant: self.verified(sources.tenant.as_ref(), &headers),
            has_content_length: headers.get("content-length").is_some(),
            body_size: 0,
            headers,
        }
    }

    fn decide_on_body(&mut self, state: &mut State, mut pending: Pending) {
        let started = self.now_nanos();
        let applied = self.config.mode().applied(pending.decision_id.as_deref());
        let Some(body) = self.reads.request_body(pending.body_size) else {
            let decided =
                Decided::failed_open(self.config, applied, FailOpen::BodyUnavailable, started);
            return self.route(state, pending, decided);
        };
        let head = RequestHead {
            format: pending.format,
            path: &pending.path,
            headers: &pending.decision_headers,
            identity: pending.identity(),
        };
        let mut decision = decide(self.config, &head, &body);
        let mut skipped = Vec::new();
        if applied == Applied::Enforce {
            skipped = self.skip_open_tiers(&mut decision, pending.format);
            self.rewrite_model(&mut pending, &mut decision, &body);
        }
        let decided = Decided {
            applied,
            decision,
            body: Some(body),
            started,
            skipped,
        };
        self.route(state, pending, decided);
    }

    /// Writes the decided tier's model into the body; when it can't, the upstream gets the body as
    /// it came and the record says no model was written.
    fn rewrite_model(&mut self, pending: &mut Pending, decision: &mut Decision, body: &[u8]) {
        let tier = self.config.tier_index(&decision.tier).unwrap_or_default();
        let judged = tier + 1 < self.config.tier_names().len();
        let model = decision.model.as_deref();
        let limit = self.config.envoy_buffer_limit_bytes();
        match upstream_body(
            self.config,
            pending.format,
            body,
            judged,
            model,
            decision.stream,
        ) {
            // Unreachable with a validated config: the body is at most max_body_bytes and the
            // limit leaves room for the longest change. Handing Envoy a longer body would get
            // the client a 413 after the request was routed.
            Ok(Some(changed)) if changed.len() > limit => {
                let message = format!(
                    "body not rewritten: {} bytes would pass Envoy's limit of {limit}",
                    changed.len()
                );
                self.log(Level::Warn, message);
                decision.model = None;
            }
            Ok(Some(changed)) => {
                if pending.has_content_length {
                    pending
                        .headers
                        .set("content-length", &changed.len().to_string());
                }
                self.effects.push(Effect::ReplaceRequestBody {
                    replaced: body.len(),
                    body: changed,
                    content_length: pending.has_content_length,
                });
            }
            Ok(None) => {}
            Err(err) => {
                self.log(Level::Warn, format!("body not rewritten: {err}"));
                decision.model = None;
            }
        }
    }

    /// Routes past the body cap: the body streams through untouched to the default tier.
    fn route_without_body(&mut self, state: &mut State, pending: Pending, cause: FailOpen) {
        let decided = self.failed_open(&pending, cause);
        self.route(state, pending, decided);
    }

    /// Past the body cap with `over_max_body: reject`: the client gets 413 and no tier sees the
    /// request (a shadowed request streams through as it would without triage).
    fn refuse_too_large(&mut self, state: &mut State, pending: Pending) -> Next {
        let applied = self.config.mode().applied(pending.decision_id.as_deref());
        if applied == Applied::Shadow {
            self.route_without_body(state, pending, FailOpen::BodyTooLarge);
            return Next::Continue;
        }
        self.track_unrouted(state, pending, FailOpen::BodyTooLarge);
        self.effects.push(Effect::LocalReply {
            status: 413,
            details: "triage_body_too_large",
            body: b"Payload Too Large".to_vec(),
            headers: vec![("content-type".to_string(), "text/plain".to_string())],
        });
        // Envoy sends the reply once this callback returns; the body is not to go on.
        Next::Pause
    }

    /// Enforced: the routing header picks the tier's route. Shadowed: the request goes on exactly
    /// as it came (the decision only reaches the record, the metrics and the response headers).
    fn route(&mut self, state: &mut State, mut pending: Pending, decided: Decided) {
        if decided.applied == Applied::Enforce {
            let tier = decided.decision.tier.clone();
            self.set_request_header(&mut pending.headers, self.config.route_header(), Some(tier));
            if pending.respell_path {
                let path = pending.path.clone();
                self.set_request_header(&mut pending.headers, ":path", Some(path));
            }
            for (name, value) in decision_header_values(&decided.decision, decided.applied) {
                self.set_request_header(&mut pending.headers, name, value);
            }
            // Envoy picked the route before the body arrived; make it pick again with our header.
            self.effects.push(Effect::ClearRouteCache);
        }
        self.track(state, pending, decided);
    }

    /// Writes (or, with None, removes) a request header, in the host and in the machine's copy.
    fn set_request_header(&mut self, headers: &mut HeaderList, name: &str, value: Option<String>) {
        match value {
            Some(value) => {
                headers.set(name, &value);
                self.set_header(HeaderMap::Request, name, value);
            }
            None => {
                headers.remove(name);
                self.remove_header(HeaderMap::Request, name);
            }
        }
    }

    /// From here on the request is followed to the end of its response, for the record.
    fn track(&mut self, state: &mut State, pending: Pending, decided: Decided) {
        let Decided {
            applied,
            decision,
            body,
            started,
            skipped,
        } = decided;
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
        let mut record = DecisionRecord::new(self.config, &decision, start);
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
        let format = pending.format;
        let retry = body.and_then(|body| self.retry_for(pending, &decision, applied, body));
        *state = State::Decided(Box::new(Routed::new(
            decision,
            record,
            format,
            retry,
            breaker_tier,
        )));
    }

    /// Answered (or refused) before any tier saw the request: recorded and counted with the cause,
    /// and the client's response names no tier.
    fn track_unrouted(&mut self, state: &mut State, pending: Pending, cause: FailOpen) {
        let decided = self.failed_open(&pending, cause);
        self.track(state, pending, decided);
        if let State::Decided(routed) = state {
            routed.unrouted = true;
        }
    }

    /// Envoy answered before the body was complete (a 413 past its buffer limit, another filter's
    /// local reply): nothing can be routed any more, but the request is still recorded and counted.
    pub(super) fn answered_before_decision(&mut self, state: &mut State, status: Option<u16>) {
        let Some(pending) = Turn::take_pending(state) else {
            return;
        };
        let cause = if status == Some(413) {
            FailOpen::BodyTooLarge
        } else {
            FailOpen::BodyUnavailable
        };
        self.track_unrouted(state, *pending, cause);
    }
}
