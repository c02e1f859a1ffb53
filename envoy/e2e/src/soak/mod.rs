//! The soak: minutes of mixed traffic through the shipped stack with two Envoy workers while the
//! cheapest tier flaps, then the checks that nothing went unexplained (issue 13):
//!
//! - every client-visible error is one the failing tier caused and escalation could not save
//!   ([`checks::explain_error`]), and no healthy answer was escalated;
//! - exactly one decision record per routed request, none for a pass-through, each naming the
//!   decision id its client got ([`records::join`]);
//! - Envoy's resident memory and the largest wasm VM's linear memory flat after warm-up
//!   ([`memory::Flatness`], bounds in [`memory::Series::growth_bound`]);
//! - Envoy's counters equal what the driver sent, what the records say and what the tiers received
//!   ([`checks::Ledger`]); and the VM never failed.
//!
//! `envoy/soak.sh [minutes]` runs it through the `soak` binary.

pub mod checks;
pub mod client;
pub mod flap;
pub mod memory;
pub mod mix;
pub mod outcome;
pub mod records;
pub mod report;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use triage_core::{Config, DecisionRecord};

use crate::check::vm_failures;
use crate::plugin_config;
use crate::prometheus::Scrape;
use crate::stack::{Stack, StackOptions};
use client::{Progress, Sent, Traffic};
use flap::Flap;
use memory::Sample;
use mix::Mix;

#[derive(Clone, Copy, Debug)]
pub struct SoakOptions {
    pub duration: Duration,
    /// Concurrent client connections.
    pub connections: usize,
    pub seed: u64,
}

impl SoakOptions {
    pub fn new(duration: Duration) -> SoakOptions {
        SoakOptions {
            duration,
            connections: 6,
            seed: 13,
        }
    }

    /// The first fifth of the run: memory is not judged while Envoy and V8 warm up (and large
    /// bodies are common, see [`Mix::draw`]).
    pub fn warm_up(&self) -> Duration {
        self.duration / 5
    }

    /// Phases of 20 s, shorter in a short run so each failing phase comes at least once.
    pub fn flap(&self) -> Flap {
        Flap {
            phase: (self.duration / 8).min(Duration::from_secs(20)),
        }
    }
}

/// Everything the soak observed, for the checks and the report.
pub struct Findings {
    pub options: SoakOptions,
    pub config: Config,
    pub sent: Vec<Sent>,
    /// The records, or why the log could not be read.
    pub records: Result<Vec<DecisionRecord>, String>,
    /// The access log's size.
    pub log_bytes: u64,
    pub samples: Vec<Sample>,
    pub scrape: Scrape,
    /// Requests each tier's mock received.
    pub upstream: BTreeMap<String, usize>,
    pub vm_failures: Vec<String>,
    /// How long the traffic ran.
    pub elapsed: Duration,
}

/// Runs the soak and gathers what it saw; [`report::verdict`] judges it.
pub fn run(options: SoakOptions) -> Findings {
    let plugin_config = plugin_config::shipped();
    let config = Config::from_json(plugin_config.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("the shipped plugin config is refused: {e}"));
    let stack = Stack::start_with(StackOptions {
        concurrency: 2,
        ..StackOptions::triage(&plugin_config).counting_upstream_requests()
    });
    let mix = Mix::mint();
    let progress = Progress::default();
    let start = Instant::now();
    let traffic = Traffic {
        stack: &stack,
        mix: &mix,
        flap: options.flap(),
        start,
        duration: options.duration,
        warm_up: options.warm_up(),
        progress: &progress,
    };
    let stop_sampling = AtomicBool::new(false);
    let (sent, samples) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| memory::sample_until(&stack, start, &stop_sampling));
        let clients: Vec<_> = (0..options.connections)
            .map(|index| {
                let traffic = &traffic;
                scope.spawn(move || client::run(traffic, index, options.seed))
            })
            .collect();
        report::progress_until_done(&traffic, &clients);
        let sent: Vec<Sent> = clients
            .into_iter()
            .flat_map(|client| {
                client
                    .join()
                    .unwrap_or_else(|_| panic!("a client panicked"))
            })
            .collect();
        stop_sampling.store(true, Ordering::Relaxed);
        let samples = sampler
            .join()
            .unwrap_or_else(|_| panic!("the memory sampler panicked"));
        (sent, samples)
    });
    let elapsed = start.elapsed();
    records::wait_until_written(&stack.access_log_path());
    Findings {
        options,
        records: records::read(&stack.access_log_path()),
        log_bytes: std::fs::metadata(stack.access_log_path()).map_or(0, |meta| meta.len()),
        scrape: stack.prometheus(),
        upstream: config
            .tier_names()
            .into_iter()
            .map(|tier| (tier.to_owned(), stack.mock(tier).received_count()))
            .collect(),
        vm_failures: vm_failures(&stack),
        config,
        sent,
        samples,
        elapsed,
    }
}
