//! Routing decisions made by the module itself: the `wasm` engine of `triage route`, and the
//! equivalence test against the native `triage_core::decide`.

use crate::{Host, HostError, HostOptions};
use triage_core::ApiFormat;

/// The decision as the module reports it, read from the request it passed upstream.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleDecision {
    pub tier: String,
    /// `x-triage-score` parsed: the header carries 4 decimals.
    pub score: Option<f64>,
    pub score_header: Option<String>,
    pub reason_header: String,
    /// `x-triage-route` (the configured routing header) as the router sees it.
    pub routed_tier: Option<String>,
    pub upstream_body: Vec<u8>,
    pub upstream_content_length: Option<String>,
}

impl ModuleDecision {
    /// The reasons in the native `Decision::reasons` form, rebuilt from `x-triage-reason`: a scored
    /// decision's list, else the header itself (a rule's, an explicit model's or a fail-open's
    /// reason is spelt as its header is).
    pub fn reasons(&self) -> Vec<String> {
        let header = self.reason_header.as_str();
        match header.split_once(": ") {
            Some(("scored", "none")) => Vec::new(),
            Some(("scored", list)) => list.split(", ").map(str::to_string).collect(),
            _ => vec![header.to_string()],
        }
    }

    /// The top-level `model` the upstream receives, if the body is a JSON object with one.
    pub fn model(&self) -> Option<String> {
        let body: serde_json::Value = serde_json::from_slice(&self.upstream_body).ok()?;
        body.get("model")?.as_str().map(str::to_string)
    }
}

/// One configured VM that routes bodies one request at a time, as one Envoy worker would.
pub struct ModuleRouter {
    host: Host,
    route_header: String,
}

impl ModuleRouter {
    /// The default module (`TRIAGE_WASM` or the release build) with `plugin_config`.
    pub fn new(plugin_config: &str) -> Result<Self, HostError> {
        Self::with_options(HostOptions::default(), plugin_config)
    }

    pub fn with_options(options: HostOptions, plugin_config: &str) -> Result<Self, HostError> {
        let host = options.start(plugin_config)?;
        Ok(ModuleRouter {
            host,
            route_header: route_header_of(plugin_config),
        })
    }

    /// Reconfigures the VM (`proxy_on_configure` again), as Envoy does on a config update.
    pub fn configure(&mut self, plugin_config: &str) -> Result<(), HostError> {
        self.host.configure(plugin_config)?;
        self.route_header = route_header_of(plugin_config);
        Ok(())
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Sends `body` as a POST to the format's path, headers then the whole body with end of stream,
    /// and reads the decision off what went upstream.
    pub fn route(&mut self, format: ApiFormat, body: &[u8]) -> Result<ModuleDecision, HostError> {
        let length = body.len().to_string();
        let headers = [
            (":method", "POST"),
            (":path", format.path()),
            (":authority", "triage.local"),
            ("content-type", "application/json"),
            ("content-length", length.as_str()),
        ];
        let route_header = self.route_header.clone();
        let mut stream = self.host.request()?;
        stream.send_request_headers(&headers, false)?;
        stream.send_request_body(body, true)?;
        let upstream = stream.upstream_headers().cloned().ok_or_else(|| {
            HostError::Misuse("the module still holds the request headers at end of stream".into())
        })?;
        let header = |name: &str| upstream.get(name).map(str::to_string);
        let score_header = header("x-triage-score");
        let decision = ModuleDecision {
            tier: header("x-triage-tier").unwrap_or_default(),
            score: score_header.as_deref().and_then(|s| s.parse().ok()),
            score_header,
            reason_header: header("x-triage-reason").unwrap_or_default(),
            routed_tier: stream
                .routing_headers()
                .get(&route_header)
                .map(str::to_string),
            upstream_body: stream.upstream_body().to_vec(),
            upstream_content_length: header("content-length"),
        };
        stream.finish()?;
        Ok(decision)
    }
}

fn route_header_of(plugin_config: &str) -> String {
    serde_json::from_str::<serde_json::Value>(plugin_config)
        .ok()
        .and_then(|config| config.get("route_header")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "x-triage-route".to_string())
}

/// Routes one body through a fresh VM configured with `plugin_config` (for many bodies keep a
/// [`ModuleRouter`]: one VM, configured once).
pub fn route_with_module(
    plugin_config: &str,
    format: ApiFormat,
    body: &[u8],
) -> Result<ModuleDecision, HostError> {
    ModuleRouter::new(plugin_config)?.route(format, body)
}
