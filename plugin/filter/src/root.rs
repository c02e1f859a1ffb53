//! The root context: parses and validates the plugin config once, then hands it to every request.

use crate::breakers::Breakers;
use crate::host;
use crate::metrics::Metrics;
use crate::stream::TriageStream;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};
use std::rc::Rc;
use triage_core::Config;

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
                log::info!("triage config accepted");
                true
            }
            Err(err) => {
                log::error!("{}", err.refusal());
                false
            }
        }
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
