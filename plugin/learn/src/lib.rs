//! The offline side of triage, shared by the CLI's train, calibrate and eval commands: routing
//! datasets in, models, thresholds and reports out. Never part of the filter.

pub mod dataset;
