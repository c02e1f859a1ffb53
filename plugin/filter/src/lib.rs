//! triage's Envoy filter: thin proxy-wasm glue over `triage_core`.
//!
//! `root` owns the validated config; `request` is one HTTP stream's state machine; `host` is the
//! only place that makes host calls.

mod host;
mod request;
mod root;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::TriageRoot::default())
    });
}}
