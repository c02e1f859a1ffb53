//! The offline side of triage, shared by the CLI's train, calibrate and eval commands: routing
//! datasets in, models, thresholds and reports out. Never part of the filter.

pub mod adapt;
pub mod baselines;
pub mod bootstrap;
pub mod calibrate;
mod columns;
pub mod dataset;
pub mod enough;
pub mod eval;
pub mod log;
pub mod logistic;
pub mod loso;
pub mod metrics;
pub mod plot;
pub mod report;
pub mod rng;
pub mod train;
