//! The compiled triage.wasm driven like Envoy drives it: every callback path of the filter, and the
//! module against the native core on the routing dataset.
// Test code: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod chunking;
mod common;
mod config;
mod equivalence;
mod escalation;
mod fail_open;
mod formats;
mod observe;
mod passthrough;
mod vm;
