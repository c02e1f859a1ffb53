//! The stream lifecycle machine (`triage_core::lifecycle::Stream`) fed any sequence of events, with
//! what the host reads scripted per event (`triage_fuzz::stream::StreamScript`): request headers
//! once at the start (any method, path and client headers), then request bodies, trailers,
//! response headers and bodies (sizes as Envoy buffers them, or not), calls sent or failed or never
//! reported, their answers with or without headers under any token, a refused body rewrite, the
//! clock moving or jumping, and the end of the stream at any point, followed by more events.
//!
//! Checked at every step, beyond "no panic":
//! - a record settles at most once over the stream, only for an LLM call, and by the end of the
//!   `log` step for every LLM call; after `log` the stream is over: no effects at all;
//! - a settled record names configured tiers, bills the tier whose cluster served the answer (a
//!   cluster no tier names is a recorded mismatch and keeps the routed tier), its escalations climb
//!   between configured tiers for known causes, and its model is one a body that went out carries;
//! - request headers are written, and the body replaced, only before the request went on; never
//!   the decision id; a replaced body replaces what the machine read, keeps the client's framing,
//!   is JSON when the client's was and differs from it only in the model (a tier's) and the
//!   members the config asks for;
//! - every call goes to a configured tier's cluster with one `content-length` equal to its body,
//!   a body changed only as above with that tier's model, a timeout within the policy, and of the
//!   `x-triage-*` headers only those the machine wrote or names the call's own tier with, never a
//!   client's;
//! - `dispatched` when no call waits for it, and `call_answered` with a token never issued (or
//!   already answered), change nothing;
//! - a shadowed setup never writes a request header, the body, the route or a call.
#![no_main]

use std::cell::RefCell;
use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use triage_core::lifecycle::{
    BreakerBoard, Call, Effect, HeaderMap, MemoryBreakers, Next, Reads, Step, Stream,
    DECISION_ID_HEADER, ESCALATED_HEADER, TIER_HEADER,
};
use triage_core::{
    ApiFormat, Applied, Config, DecisionRecord, Endpoint, MismatchCause, ESCALATION_CAUSES,
    OWN_HEADER_PREFIX,
};
use triage_fuzz::assert_only_model_changed;
use triage_fuzz::input::{InputReader, Script, Text};
use triage_fuzz::stream::{
    stream_config, DispatchReply, Event, Size, StreamHold, StreamScript, Token, UpstreamAnswer,
    CLUSTERS, CODE_DETAILS, CONTENT_TYPES, DECISION_IDS, ROUTE_TABLE, SETUPS, STATUSES,
};

fuzz_target!(|data: &[u8]| {
    let script = StreamScript::read(&mut InputReader::new(data));
    Run::new(&script).play(&script);
});

/// Where the wall clock starts (2027): far from both ends of the range, as a real clock is.
const START_NANOS: u64 = 1_800_000_000_000_000_000;

/// One script played through the machine, with the host applying its effects as Envoy would.
struct Run {
    config: Rc<Config>,
    machine: Stream,
    host: ScriptedHost,
    refuse_rewrite: bool,
    /// The host's token for the next call it sends (Envoy's are never reused within a stream).
    next_token: u32,
    latest_token: Option<u32>,
    check: Invariants,
}

/// Which side of the stream a callback belongs to: a step that continues lets that side's buffer go.
#[derive(Clone, Copy)]
enum Side {
    Request,
    Response,
    /// A call's report or answer, the end of the stream: no buffer of their own.
    Other,
}

impl Run {
    fn new(script: &StreamScript) -> Run {
        let config = stream_config(script.setup, StreamHold::Start);
        let breakers = Rc::new(MemoryBreakers::new(&config));
        for tier in 0..config.tier_names().len() {
            if script.open_breakers & (1 << tier) != 0 {
                breakers.record(tier, false, START_NANOS / 1_000_000);
            }
        }
        let request_headers = script
            .request
            .as_ref()
            .map(|request| request.header_pairs())
            .unwrap_or_default();
        let header = |name: &str| {
            request_headers
                .iter()
                .find(|(have, _)| have == name)
                .map(|(_, value)| value.as_str())
        };
        let method = header(":method").unwrap_or_default();
        let format = Endpoint::of(method, header(":path").unwrap_or_default())
            .map(|endpoint| endpoint.format);
        let check = Invariants {
            config: Rc::clone(&config),
            format,
            client_content_length: header("content-length").is_some(),
            shadowed: SETUPS[script.setup] == "shadow",
            request_went_on: false,
            settled: false,
            logged: false,
            awaiting_dispatch: false,
            live_tokens: Vec::new(),
            request_header_writes: Vec::new(),
            written_models: Vec::new(),
            unreadable_model_written: false,
        };
        Run {
            machine: Stream::new(Rc::clone(&config), breakers),
            host: ScriptedHost {
                clock: START_NANOS,
                decision_id: script
                    .decision_id
                    .resolve(&DECISION_IDS)
                    .map(|id| id.into_owned()),
                request_headers,
                request_buffer: Vec::new(),
                request_read_fails: false,
                request_body_read: RefCell::new(Vec::new()),
                status: None,
                content_type: None,
                served_cluster: None,
                code_details: None,
                response_buffer: Vec::new(),
                call_answer: None,
            },
            config,
            refuse_rewrite: script.refuse_rewrite,
            next_token: 1,
            latest_token: None,
            check,
        }
    }

    fn play(mut self, script: &StreamScript) {
        if let Some(request) = &script.request {
            let step = self
                .machine
                .request_headers(&self.host, request.end_of_stream);
            self.apply(Side::Request, step, DispatchReply::Sent);
        }
        for event in &script.events {
            self.event(event);
        }
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::RequestBody {
                chunk,
                size,
                end_of_stream,
                read_fails,
            } => {
                self.host.request_buffer.extend_from_slice(chunk);
                self.host.request_read_fails = *read_fails;
                let size = size.reported(self.host.request_buffer.len());
                let step = self.machine.request_body(&self.host, size, *end_of_stream);
                self.apply(Side::Request, step, DispatchReply::Sent);
            }
            Event::RequestTrailers => {
                let step = self.machine.request_trailers(&self.host);
                self.apply(Side::Request, step, DispatchReply::Sent);
            }
            Event::ResponseHeaders {
                status,
                content_type,
                cluster,
                code_details,
                end_of_stream,
                dispatch,
            } => {
                let text = |text: &Text, menu: &[&'static str]| {
                    text.resolve(menu).map(|text| text.into_owned())
                };
                self.host.status = text(status, &STATUSES);
                self.host.content_type = text(content_type, &CONTENT_TYPES);
                self.host.served_cluster = text(cluster, &CLUSTERS).map(|cluster| {
                    if cluster == ROUTE_TABLE {
                        self.host.route_table_cluster(&self.config)
                    } else {
                        cluster
                    }
                });
                self.host.code_details = text(code_details, &CODE_DETAILS);
                let step = self.machine.response_headers(&self.host, *end_of_stream);
                self.apply(Side::Response, step, *dispatch);
            }
            Event::ResponseBody {
                chunk,
                size,
                end_of_stream,
                dispatch,
            } => {
                self.host.response_buffer.extend_from_slice(chunk);
                let size = size.reported(self.host.response_buffer.len());
                let step = self.machine.response_body(&self.host, size, *end_of_stream);
                self.apply(Side::Response, step, *dispatch);
            }
            Event::ResponseTrailers => {
                let step = self.machine.response_trailers(&self.host);
                self.apply(Side::Response, step, DispatchReply::Sent);
            }
            Event::Dispatched { token } => {
                let asked = self.check.awaiting_dispatch;
                let step = self.machine.dispatched(&self.host, *token);
                if !asked {
                    Invariants::unchanged(&step, "a call report no call waited for");
                }
                self.check.reported(*token);
                self.apply(Side::Other, step, DispatchReply::Sent);
            }
            Event::CallAnswered {
                token,
                answer,
                num_headers,
                body_size,
                dispatch,
            } => self.call_answered(*token, answer.as_ref(), *num_headers, *body_size, *dispatch),
            Event::RewriteFailed => self.machine.rewrite_failed(),
            Event::Log => {
                let step = self.machine.log(&self.host);
                self.apply(Side::Other, step, DispatchReply::Sent);
                self.check.stream_ended();
            }
            Event::Wait { ms } => {
                self.host.clock = self.host.clock.saturating_add(u64::from(*ms) * 1_000_000);
            }
            Event::ClockJump { nanos } => self.host.clock = *nanos,
        }
    }

    fn call_answered(
        &mut self,
        token: Token,
        answer: Option<&UpstreamAnswer>,
        num_headers: Size,
        body_size: Size,
        dispatch: DispatchReply,
    ) {
        let token = match token {
            Token::Latest => self.latest_token.unwrap_or_default(),
            Token::Raw(token) => token,
        };
        let live = self.check.answered(token);
        self.host.call_answer = answer.cloned();
        // As Envoy counts them: `:status` is a header too.
        let headers = answer.map_or(0, |answer| {
            usize::from(answer.status().is_some()) + answer.headers().len()
        });
        let num_headers = num_headers.reported(headers);
        let body_size = body_size.reported(answer.map_or(0, |answer| answer.body.len()));
        let step = self
            .machine
            .call_answered(&self.host, token, num_headers, body_size);
        if !live {
            Invariants::unchanged(&step, "an answer under a token never issued");
        }
        self.apply(Side::Other, step, dispatch);
    }

    /// Applies a step's effects in order, sends its call as `dispatch` says (and tells the machine),
    /// and lets the side's buffer go when the callback continues. Events whose script has no say in
    /// calls pass `DispatchReply::Sent`, what Envoy does.
    fn apply(&mut self, side: Side, step: Step, dispatch: DispatchReply) {
        self.check.step(&step);
        for effect in step.effects {
            self.apply_effect(effect);
        }
        let next = match step.next {
            Next::Dispatch(call) => {
                self.check
                    .call(&call, &self.host.request_body_read.borrow());
                let token = match dispatch {
                    DispatchReply::Sent => {
                        let token = self.next_token;
                        self.next_token += 1;
                        self.latest_token = Some(token);
                        Some(token)
                    }
                    DispatchReply::Failed => None,
                    // The host holds the callback's stream and never says what became of the call.
                    DispatchReply::Unreported => return,
                };
                let step = self.machine.dispatched(&self.host, token);
                self.check.reported(token);
                return self.apply(side, step, dispatch);
            }
            next => next,
        };
        if next != Next::Continue {
            return;
        }
        match side {
            Side::Request => {
                self.check.request_went_on = true;
                self.host.request_buffer.clear();
            }
            Side::Response => self.host.response_buffer.clear(),
            Side::Other => {}
        }
    }

    fn apply_effect(&mut self, effect: Effect) {
        match effect {
            Effect::SetHeader {
                map: HeaderMap::Request,
                name,
                value,
            } => {
                self.check.request_header_written(&name, Some(&value));
                self.host.remove_request_header(&name);
                self.host.request_headers.push((name, value));
            }
            Effect::RemoveHeader {
                map: HeaderMap::Request,
                name,
            } => {
                self.check.request_header_written(&name, None);
                self.host.remove_request_header(&name);
            }
            Effect::ReplaceRequestBody {
                replaced,
                body,
                content_length,
            } => {
                let model = self.check.body_replaced(
                    replaced,
                    &body,
                    content_length,
                    &self.host.request_body_read.borrow(),
                );
                if self.refuse_rewrite {
                    return self.machine.rewrite_failed();
                }
                self.check.written(model);
                let replaced = replaced.min(self.host.request_buffer.len());
                self.host.request_buffer.splice(..replaced, body);
                if content_length {
                    let length = self.host.request_buffer.len().to_string();
                    self.host.remove_request_header("content-length");
                    self.host
                        .request_headers
                        .push(("content-length".to_string(), length));
                }
            }
            Effect::ClearRouteCache => self.check.route_cleared(),
            Effect::ContinueResponse => self.host.response_buffer.clear(),
            Effect::Settle(record) => self.check.settled(&record),
            Effect::SetHeader { .. }
            | Effect::RemoveHeader { .. }
            | Effect::LocalReply { .. }
            | Effect::Log { .. } => {}
        }
    }
}

/// The host as the script has it at each event: what every read returns, and Envoy's buffers.
struct ScriptedHost {
    clock: u64,
    decision_id: Option<String>,
    /// As the upstream will get them: the client's, with the machine's writes applied.
    request_headers: Vec<(String, String)>,
    request_buffer: Vec<u8>,
    request_read_fails: bool,
    /// The request body the machine read last: what its rewrite replaces and its calls start from.
    request_body_read: RefCell<Vec<u8>>,
    status: Option<String>,
    content_type: Option<String>,
    served_cluster: Option<String>,
    code_details: Option<String>,
    response_buffer: Vec<u8>,
    call_answer: Option<UpstreamAnswer>,
}

impl ScriptedHost {
    fn remove_request_header(&mut self, name: &str) {
        self.request_headers
            .retain(|(have, _)| !have.eq_ignore_ascii_case(name));
    }

    /// The cluster the shipped route table picks: the routing header's tier's, else the default
    /// tier's.
    fn route_table_cluster(&self, config: &Config) -> String {
        let routed = self
            .request_headers
            .iter()
            .find(|(name, _)| name == config.route_header())
            .and_then(|(_, tier)| config.tier_index(tier));
        let tier = routed.or_else(|| config.tier_index(config.default_tier_name()));
        tier.and_then(|tier| config.tier_cluster(tier))
            .unwrap_or_default()
            .to_string()
    }
}

impl Reads for ScriptedHost {
    fn now_nanos(&self) -> u64 {
        self.clock
    }

    fn request_headers(&self) -> Vec<(String, String)> {
        self.request_headers.clone()
    }

    fn response_header(&self, name: &str) -> Option<String> {
        match name {
            ":status" => self.status.clone(),
            "content-type" => self.content_type.clone(),
            _ => None,
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let value = match path {
            ["xds", "cluster_name"] => &self.served_cluster,
            ["response", "code_details"] => &self.code_details,
            _ => &None,
        };
        value.clone().map(String::into_bytes)
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        if self.request_read_fails {
            return None;
        }
        let body = self.request_buffer[..size.min(self.request_buffer.len())].to_vec();
        self.request_body_read.replace(body.clone());
        Some(body)
    }

    fn response_body(&self, start: usize, size: usize) -> Vec<u8> {
        let end = start.saturating_add(size).min(self.response_buffer.len());
        self.response_buffer
            .get(start..end)
            .unwrap_or_default()
            .to_vec()
    }

    fn call_answer(
        &self,
        num_headers: usize,
        body_size: usize,
    ) -> (Vec<(String, String)>, Vec<u8>) {
        let Some(answer) = self.call_answer.as_ref().filter(|_| num_headers > 0) else {
            return (Vec::new(), Vec::new());
        };
        let status = answer
            .status()
            .map(|status| (":status".to_string(), status.into_owned()));
        let headers = status.into_iter().chain(answer.headers()).collect();
        let body = answer.body[..body_size.min(answer.body.len())].to_vec();
        (headers, body)
    }

    fn new_decision_id(&self) -> Option<String> {
        self.decision_id.clone()
    }
}

/// What the steps so far say about the next ones.
struct Invariants {
    config: Rc<Config>,
    /// The API format of the LLM endpoint the request headers named; None: not an LLM call (or no
    /// request headers), which never settles a record.
    format: Option<ApiFormat>,
    client_content_length: bool,
    shadowed: bool,
    /// A request callback continued: its headers and body are the upstream's now.
    request_went_on: bool,
    settled: bool,
    logged: bool,
    /// The machine asked for a call and the host has not said what became of it.
    awaiting_dispatch: bool,
    /// Tokens of calls sent and not yet answered.
    live_tokens: Vec<u32>,
    /// Every request header the machine wrote, as (name, value).
    request_header_writes: Vec<(String, String)>,
    /// The `model` of every body the machine sent (rewritten and accepted, or a call's).
    written_models: Vec<Value>,
    /// A body was sent with a model the harness could not read (the client's body is not JSON).
    unreadable_model_written: bool,
}

impl Invariants {
    /// An event the machine had no business with: nothing may come of it.
    fn unchanged(step: &Step, what: &str) {
        assert!(
            step.effects.is_empty() && step.next == Next::Continue,
            "{what} changed the stream: {step:?}"
        );
    }

    fn step(&self, step: &Step) {
        if self.logged {
            Invariants::unchanged(step, "an event after the stream's end");
        }
        if self.shadowed {
            assert!(
                !matches!(step.next, Next::Dispatch(_)),
                "a shadowed stream sent a call"
            );
        }
    }

    fn stream_ended(&mut self) {
        self.logged = true;
        if self.format.is_some() {
            assert!(self.settled, "an LLM call ended without its record");
        }
    }

    fn reported(&mut self, token: Option<u32>) {
        if std::mem::take(&mut self.awaiting_dispatch) {
            self.live_tokens.extend(token);
        }
    }

    /// Whether `token` names a call sent and not yet answered (it is answered now).
    fn answered(&mut self, token: u32) -> bool {
        let live = self.live_tokens.contains(&token);
        self.live_tokens.retain(|have| *have != token);
        live
    }

    fn request_header_written(&mut self, name: &str, value: Option<&str>) {
        assert!(
            !self.request_went_on,
            "request header {name} written after the request went on"
        );
        let Some(value) = value else { return };
        assert!(
            !self.shadowed,
            "a shadowed stream wrote request header {name}"
        );
        assert_ne!(name, DECISION_ID_HEADER, "the decision id sent upstream");
        self.request_header_writes
            .push((name.to_string(), value.to_string()));
    }

    fn route_cleared(&self) {
        assert!(!self.shadowed, "a shadowed stream re-routed the request");
    }

    /// Checks a body replacement against the body the machine read; the model it writes.
    fn body_replaced(
        &self,
        replaced: usize,
        body: &[u8],
        content_length: bool,
        client: &[u8],
    ) -> Option<Value> {
        assert!(
            !self.request_went_on,
            "request body replaced after the request went on"
        );
        assert!(!self.shadowed, "a shadowed stream rewrote the body");
        assert_eq!(
            replaced,
            client.len(),
            "replacing other bytes than were read"
        );
        assert_eq!(
            content_length, self.client_content_length,
            "the body's framing changed"
        );
        let format = self.format.expect("a body replaced for no LLM call");
        let model = assert_only_model_changed(client, body, &self.additions(format))?;
        let tier_models = (0..self.config.tier_names().len())
            .filter_map(|tier| self.config.tier_model(tier, format))
            .map(Value::from);
        let client_model = client_model(client);
        assert!(
            tier_models.chain([client_model]).any(|have| have == model),
            "the body got model {model}, no tier's"
        );
        Some(model)
    }

    fn written(&mut self, model: Option<Value>) {
        match model {
            Some(model) => self.written_models.push(model),
            None => self.unreadable_model_written = true,
        }
    }

    /// The members the config asks the body for beyond its model (`upstream_body`): token logprobs
    /// and a stream's usage, OpenAI chat only.
    fn additions(&self, format: ApiFormat) -> Vec<(&'static str, &'static str)> {
        if format != ApiFormat::OpenAiChat {
            return Vec::new();
        }
        let logprobs = self.config.escalation().is_some_and(|policy| {
            policy.request_logprobs && policy.checks.min_mean_logprob.is_some()
        });
        let stream_usage = self.config.request_stream_usage();
        [
            (logprobs, ("logprobs", "true")),
            (
                stream_usage,
                ("stream_options", r#"{"include_usage":true}"#),
            ),
        ]
        .into_iter()
        .filter_map(|(asked, member)| asked.then_some(member))
        .collect()
    }

    fn tier_of_cluster(&self, cluster: &str) -> Option<usize> {
        (0..self.config.tier_names().len())
            .find(|tier| self.config.tier_cluster(*tier) == Some(cluster))
    }

    fn tier_index(&self, name: &str) -> usize {
        self.config
            .tier_index(name)
            .unwrap_or_else(|| panic!("{name:?} is no configured tier"))
    }

    fn call(&mut self, call: &Call, client: &[u8]) {
        let config = Rc::clone(&self.config);
        let tier = self
            .tier_of_cluster(&call.cluster)
            .unwrap_or_else(|| panic!("a call to {}, no tier's cluster", call.cluster));
        let tier_name = config.tier_name(tier).unwrap_or_default();
        let lengths: Vec<&str> = call
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map(|(_, value)| value.as_str())
            .collect();
        assert_eq!(lengths, [call.body.len().to_string()], "the call's framing");
        let route_header = config.route_header();
        for named in [route_header, TIER_HEADER, ESCALATED_HEADER] {
            let count = call
                .headers
                .iter()
                .filter(|(name, _)| name == named)
                .count();
            assert_eq!(count, 1, "{named} {count} times on a call");
        }
        for (name, value) in &call.headers {
            if name != route_header && !name.starts_with(OWN_HEADER_PREFIX) {
                continue;
            }
            if name == route_header || name == TIER_HEADER {
                assert_eq!(value, tier_name, "{name} on a call to {}", call.cluster);
            } else if name == ESCALATED_HEADER {
                let (from, to) = value.split_once("->").unwrap_or_default();
                assert_eq!(to, tier_name, "{name}: {value}");
                assert!(self.tier_index(from) < tier, "{name}: {value}");
            } else {
                let written = (name.clone(), value.clone());
                assert!(
                    self.request_header_writes.contains(&written),
                    "a call carries {name}: {value}, which the machine never wrote"
                );
            }
        }
        let timeout_ms = config
            .escalation()
            .map_or(0, |policy| policy.attempt_timeout_ms);
        let timeout = call.timeout.as_millis();
        assert!(
            (1..=u128::from(timeout_ms)).contains(&timeout),
            "a call's timeout of {timeout} ms"
        );
        let format = self.format.expect("a call for no LLM call");
        let model = assert_only_model_changed(client, &call.body, &self.additions(format));
        if let Some(model) = &model {
            let expected = config
                .tier_model(tier, format)
                .map_or_else(|| client_model(client), Value::from);
            assert_eq!(model, &expected, "the model of a call to {}", call.cluster);
        }
        self.awaiting_dispatch = true;
        self.written(model);
    }

    fn settled(&mut self, record: &DecisionRecord) {
        assert!(!self.settled, "a second record");
        assert!(!self.logged, "a record after the stream's end");
        assert!(self.format.is_some(), "a record for no LLM call");
        self.settled = true;
        let config = Rc::clone(&self.config);
        let tier = self.tier_index(&record.tier);
        self.tier_index(&record.decided_tier);
        if let Some(mismatch) = &record.mismatch {
            self.tier_index(&mismatch.routed);
            let served = mismatch
                .served
                .as_deref()
                .map(|served| self.tier_index(served));
            match (served, mismatch.cause) {
                (Some(served), MismatchCause::RouteTable) => {
                    assert_ne!(mismatch.served, Some(mismatch.routed.clone()));
                    assert_eq!(
                        config.tier_cluster(served),
                        Some(mismatch.served_cluster.as_str())
                    );
                }
                (None, MismatchCause::UnknownCluster) => {
                    assert_eq!(self.tier_of_cluster(&mismatch.served_cluster), None);
                }
                _ => panic!("a mismatch of the wrong cause: {mismatch:?}"),
            }
        }
        if let Some(cluster) = &record.served_cluster {
            if self.tier_of_cluster(cluster).is_some() {
                assert_eq!(
                    config.tier_cluster(tier),
                    Some(cluster.as_str()),
                    "the record bills {} for an answer from {cluster}",
                    record.tier
                );
            } else {
                let mismatch = record
                    .mismatch
                    .as_ref()
                    .unwrap_or_else(|| panic!("served by {cluster} without a mismatch"));
                assert_eq!(&mismatch.served_cluster, cluster);
                assert_eq!(record.tier, mismatch.routed, "an unknown cluster billed");
            }
        }
        for step in &record.escalations {
            assert!(
                self.tier_index(&step.from) < self.tier_index(&step.to),
                "{step:?}"
            );
            assert!(ESCALATION_CAUSES.contains(&step.cause.as_str()), "{step:?}");
        }
        if let Some(model) = &record.model {
            assert!(
                self.unreadable_model_written
                    || self.written_models.contains(&Value::from(model.as_str())),
                "the record says {model} was written; bodies sent had {:?}",
                self.written_models
            );
        }
        if self.shadowed {
            assert_eq!(record.mode, Applied::Shadow);
            assert!(record.escalations.is_empty() && record.model.is_none());
        }
    }
}

/// The client's `model` (null when absent or the body is not JSON).
fn client_model(client: &[u8]) -> Value {
    serde_json::from_slice::<Value>(client).map_or(Value::Null, |body| body["model"].clone())
}
