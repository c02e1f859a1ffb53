//! triage's Envoy filter: thin proxy-wasm glue over `triage_core`.
//!
//! `root` owns the validated config, the metric ids and the tier breakers; `stream` feeds one HTTP
//! stream's callbacks to the core's lifecycle machine and applies its effects, `reads` answers the
//! machine's reads of the host; `breakers` keeps the tiers' circuit breakers in the data every
//! worker shares; `metrics` names and counts triage's stats; `host` is the only place that makes
//! host calls.

mod breakers;
mod host;
mod metrics;
mod reads;
mod root;
mod stream;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::TriageRoot::default())
    });
}}
