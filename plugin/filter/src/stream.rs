//! One HTTP stream in Envoy: every callback feeds the core's lifecycle machine
//! (`triage_core::lifecycle::Stream`) with what it reads through [`HostReads`], applies the effects
//! it returns through `host`, and maps what it says next to the callback's `Action`.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType, Status};
use triage_core::lifecycle::{Effect, HeaderMap, Level, Next, Step, Stream, RECORD_PROPERTY};
use triage_core::Config;

use crate::breakers::Breakers;
use crate::host;
use crate::metrics::Metrics;
use crate::reads::HostReads;

pub struct TriageStream {
    context_id: u32,
    config: Rc<Config>,
    metrics: Rc<Metrics>,
    machine: Stream,
}

impl TriageStream {
    pub fn new(
        context_id: u32,
        config: Rc<Config>,
        metrics: Rc<Metrics>,
        breakers: Rc<Breakers>,
    ) -> Self {
        Self {
            context_id,
            machine: Stream::new(Rc::clone(&config), breakers),
            config,
            metrics,
        }
    }

    fn reads(&self) -> HostReads {
        HostReads {
            context_id: self.context_id,
        }
    }

    /// Applies the step's effects in order, sends the call it asks for (and tells the machine how
    /// that went), and returns the callback's action.
    fn apply(&mut self, step: Step) -> Action {
        for effect in step.effects {
            self.apply_effect(effect);
        }
        match step.next {
            Next::Continue => Action::Continue,
            Next::Pause => Action::Pause,
            Next::Dispatch(call) => {
                let sent = host::dispatch(&call.cluster, &call.headers, &call.body, call.timeout);
                let token = sent
                    .map_err(|status| {
                        self.warn(&format!("escalating to cluster {}", call.cluster), status)
                    })
                    .ok();
                let step = self.machine.dispatched(&self.reads(), token);
                self.apply(step)
            }
        }
    }

    fn apply_effect(&mut self, effect: Effect) {
        match effect {
            Effect::SetHeader { map, name, value } => {
                if let Err(status) = host::set_header(map_type(map), &name, &value) {
                    self.warn(&format!("writing {name}"), status);
                }
            }
            Effect::RemoveHeader { map, name } => {
                if let Err(status) = host::remove_header(map_type(map), &name) {
                    self.warn(&format!("removing {name}"), status);
                }
            }
            Effect::ReplaceRequestBody {
                replaced,
                body,
                content_length,
            } => self.replace_body(replaced, &body, content_length),
            Effect::ClearRouteCache => match host::call_foreign("clear_route_cache") {
                Ok(()) | Err(Status::NotFound) => {}
                Err(status) => self.warn("clearing the route cache", status),
            },
            Effect::LocalReply {
                status,
                details,
                body,
                headers,
            } => {
                let sent = host::send_local_response(u32::from(status), details, &body, &headers);
                if let Err(error) = sent {
                    self.warn(&format!("answering {status} ({details})"), error);
                }
            }
            Effect::ContinueResponse => {
                if let Err(status) = host::continue_response() {
                    self.warn("releasing the held answer", status);
                }
            }
            Effect::Settle(record) => {
                self.metrics.observe(&record, &self.config);
                if let Err(status) =
                    host::set_property(RECORD_PROPERTY, record.to_json().as_bytes())
                {
                    self.warn("storing the decision record", status);
                }
            }
            Effect::Log { level, message } => match level {
                Level::Info => log::info!("#{} {message}", self.context_id),
                Level::Warn => log::warn!("#{} {message}", self.context_id),
            },
        }
    }

    fn replace_body(&mut self, replaced: usize, body: &[u8], content_length: bool) {
        if let Err(status) = host::set_buffer(BufferType::HttpRequestBody, 0, replaced, body) {
            self.warn("replacing the request body", status);
            return self.machine.rewrite_failed();
        }
        if content_length {
            let length = body.len().to_string();
            if let Err(status) =
                host::set_header(MapType::HttpRequestHeaders, "content-length", &length)
            {
                self.warn("setting content-length", status);
            }
        }
    }

    /// Exists only for the e2e test of `failure_policy` (the `fault-injection` build, never the
    /// shipped .wasm): a request carrying `x-e2e-panic` takes the VM down.
    #[cfg(feature = "fault-injection")]
    #[allow(clippy::panic)]
    fn panic_if_asked(&self) {
        if let Ok(Some(_)) = host::header(MapType::HttpRequestHeaders, "x-e2e-panic") {
            panic!("#{} fault injected by x-e2e-panic", self.context_id);
        }
    }

    fn warn(&self, what: &str, status: Status) {
        log::warn!("#{} {what} failed: {status:?}", self.context_id);
    }
}

fn map_type(map: HeaderMap) -> MapType {
    match map {
        HeaderMap::Request => MapType::HttpRequestHeaders,
        HeaderMap::Response => MapType::HttpResponseHeaders,
    }
}

impl Context for TriageStream {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let step = self
            .machine
            .call_answered(&self.reads(), token_id, num_headers, body_size);
        // Outside the stream's own callbacks: there is no action to return.
        self.apply(step);
    }
}

impl HttpContext for TriageStream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        self.panic_if_asked();
        let step = self.machine.request_headers(&self.reads(), end_of_stream);
        self.apply(step)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let step = self
            .machine
            .request_body(&self.reads(), body_size, end_of_stream);
        self.apply(step)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let step = self.machine.request_trailers(&self.reads());
        self.apply(step)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let step = self.machine.response_headers(&self.reads(), end_of_stream);
        self.apply(step)
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let step = self
            .machine
            .response_body(&self.reads(), body_size, end_of_stream);
        self.apply(step)
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        let step = self.machine.response_trailers(&self.reads());
        self.apply(step)
    }

    fn on_log(&mut self) {
        let step = self.machine.log(&self.reads());
        self.apply(step);
    }
}
