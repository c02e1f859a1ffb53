//! Routing core of triage: reads an LLM API request body, computes cheap features, scores how strong a
//! model the request needs and decides the tier (and the model to write into the body).
//!
//! Pure Rust with no host dependencies: the proxy-wasm filter and the `triage` CLI call the same
//! [`decide`] on the same [`Config`].

mod config;
mod decision;
mod features;
mod format;
mod policy;
mod rewrite;
mod scan;
mod score;

pub use config::{Config, ConfigError};
pub use decision::{Cause, Decision, FailOpen};
pub use features::{Features, FEATURE_NAMES};
pub use format::{parse_request, ApiFormat, Message, ParsedRequest, Role};
pub use policy::{decide, fail_open, RequestHead};
pub use rewrite::{rewrite_model, RewriteError};
pub use score::{score, Score, Weights};
