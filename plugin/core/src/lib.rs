//! Routing core of triage: reads an LLM API request body, computes cheap features and hashed n-grams,
//! predicts with a calibrated model how likely a cheap model is to fail on it, and decides the tier (and
//! the model to write into the body).
//!
//! Pure Rust with no host dependencies: the proxy-wasm filter and the `triage` CLI call the same
//! [`decide`] on the same [`Config`].

mod config;
mod decision;
mod features;
mod format;
mod model;
mod policy;
mod rewrite;
mod scan;

pub use config::{Config, ConfigError};
pub use decision::{Cause, Decision, FailOpen};
pub use features::{Features, FEATURE_COUNT, FEATURE_NAMES};
pub use format::{parse_request, ApiFormat, Message, ParsedRequest, Role};
pub use model::{
    model_inputs, Calibration, Model, ModelError, ModelInputs, Prediction, FEATURE_SET,
};
pub use policy::{decide, fail_open, RequestHead};
pub use rewrite::{rewrite_model, RewriteError};
