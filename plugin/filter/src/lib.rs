//! triage's Envoy filter: thin proxy-wasm glue over `triage_core`.
//!
//! `root` owns the validated config, the metric ids and the tier breakers; `request` is one HTTP
//! stream's request side and state, `response` its response side, `escalation` moves it up a tier
//! after a failure or a weak answer; `breakers` keeps the tiers' circuit breakers in the data every
//! worker shares; `metrics` names and counts triage's stats; `host` is the only place that makes
//! host calls.

mod breakers;
mod escalation;
mod host;
mod metrics;
mod request;
mod response;
mod root;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::TriageRoot::default())
    });
}}
