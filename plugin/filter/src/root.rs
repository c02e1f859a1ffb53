//! The root context: parses and validates the plugin config once, then hands it to every request.

use crate::breakers::Breakers;
use crate::host;
use crate::metrics::Metrics;
use crate::stream::TriageStream;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};
use std::rc::Rc;
use std::time::Duration;
use triage_core::Config;

/// How often each VM reports its linear memory (`triage_vm_memory_bytes`): often enough to follow
/// growth in a soak, rarely enough to cost nothing.
const VM_MEMORY_PERIOD: Duration = Duration::from_secs(5);

pub struct TriageRoot {
    config: Rc<Config>,
    metrics: Rc<Metrics>,
    breakers: Rc<Breakers>,
}

impl Default for TriageRoot {
    fn default() -> Self {
        let config = Config::default();
        let metrics = Rc::new(Metrics::default());
        TriageRoot {
            breakers: Rc::new(Breakers::new(&config, Rc::clone(&metrics))),
            config: Rc::new(config),
            metrics,
        }
    }
}

impl Context for TriageRoot {}

impl TriageRoot {
    fn report_vm_memory(&self) {
        if let Some(bytes) = linear_memory_bytes() {
            self.metrics.vm_memory(bytes);
        }
    }
}

/// The VM's linear memory: its pages times the wasm page size (64 KiB). Native builds (the filter's
/// unit tests and clippy) have no linear memory to report.
#[cfg(target_arch = "wasm32")]
fn linear_memory_bytes() -> Option<u64> {
    const WASM_PAGE_BYTES: u64 = 65_536;
    Some(core::arch::wasm32::memory_size(0) as u64 * WASM_PAGE_BYTES)
}

#[cfg(not(target_arch = "wasm32"))]
fn linear_memory_bytes() -> Option<u64> {
    None
}

impl RootContext for TriageRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        log::info!(
            "triage {} ({}) starting",
            env!("CARGO_PKG_VERSION"),
            env!("TRIAGE_GIT_COMMIT")
        );
        true
    }

    /// Refusing here (returning false) makes Envoy reject the config: a static config fails to
    /// start and an xDS update is rejected, which is what an operator wants for a typo.
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let raw = match host::buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(raw) => raw,
            Err(status) => {
                log::error!("triage config refused: the host returned {status:?} for it");
                return false;
            }
        };
        match Config::from_json(&raw) {
            Ok(config) => {
                self.metrics = Rc::new(Metrics::define(&config));
                // Breakers live in shared data keyed by tier and cluster: a tier the new config
                // keeps keeps its breaker.
                self.breakers = Rc::new(Breakers::new(&config, Rc::clone(&self.metrics)));
                self.config = Rc::new(config);
                self.report_vm_memory();
                if let Err(status) = host::set_tick_period(VM_MEMORY_PERIOD) {
                    log::warn!("triage_vm_memory_bytes is not refreshed: no timer ({status:?})");
                }
                log::info!("triage config accepted");
                true
            }
            Err(err) => {
                log::error!("{}", err.refusal());
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.report_vm_memory();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(TriageStream::new(
            context_id,
            Rc::clone(&self.config),
            Rc::clone(&self.metrics),
            Rc::clone(&self.breakers),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
