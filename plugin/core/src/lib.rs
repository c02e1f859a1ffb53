//! Routing core of triage: reads an LLM API request body, computes cheap features and hashed n-grams,
//! predicts with a calibrated model how likely a cheap model is to fail on it, and decides the tier (and
//! the model to write into the body).
//!
//! Pure Rust that never imports proxy-wasm: the proxy-wasm filter and the `triage` CLI call the same
//! [`decide`] on the same [`Config`]. The one thing it asks of its platform is random bytes, for
//! [`new_decision_id`] (through `getrandom`: WASI `random_get` in the filter).

mod config;
mod decision;
mod decision_id;
pub mod embed;
mod endpoint;
pub mod explain;
mod features;
mod format;
mod identity;
pub mod lifecycle;
mod mode;
mod model;
mod policy;
mod pricing;
mod record;
mod rewrite;
mod scan;
mod upstream;
mod usage;

/// The plugin config's JSON Schema (the `schema` feature; `triage schema` prints it).
#[cfg(any(test, feature = "schema"))]
pub use config::json_schema as plugin_config_schema;
pub use config::{
    Config, ConfigError, EscalationPolicy, OverMaxBody, Override, UpstreamAddress,
    OWN_HEADER_PREFIX,
};
pub use decision::{Cause, Decision, FailOpen};
pub use decision_id::{
    decision_id_from_bytes, decision_id_from_source, new_decision_id, IdUnavailable,
};
pub use endpoint::Endpoint;
pub use features::{Features, FEATURE_COUNT, FEATURE_NAMES};
pub use format::{parse_request, ApiFormat, Message, ParsedRequest, Role};
pub use identity::{identity_value, Identity, IdentitySource, IdentitySources, MAX_IDENTITY_BYTES};
pub use lifecycle::escalation::answer::{check_answer, AnswerChecks, Expectations, Weakness};
pub use lifecycle::escalation::breaker::{Breaker, BreakerSettings, BreakerState};
pub use lifecycle::escalation::causes::{
    cause_judges_the_answer, failure_cause, ESCALATION_CAUSES,
};
pub use lifecycle::escalation::stream_watch::{StreamVerdict, StreamWatch};
pub use mode::{Applied, Mode};
pub use model::{
    model_inputs, Calibration, Model, ModelError, ModelInputs, Prediction, FEATURE_SET,
};
pub use policy::{decide, fail_open, retarget, RequestHead};
pub use pricing::{counter_micro_usd, Price};
pub use record::{
    DecisionRecord, DroppedAnswer, Escalation, Mismatch, MismatchCause, OverrideRecord,
    RecordStart, RECORD_VERSION,
};
pub use rewrite::{insert_member, rewrite_model, RewriteError};
pub use upstream::{max_growth, upstream_body};
pub use usage::{Usage, UsageReader};
