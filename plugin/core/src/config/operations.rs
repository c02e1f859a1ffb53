//! The parts of the config that say how triage operates around the decision: the mode, the prices
//! that turn usage into cost, who may override the tier, and what the decision record carries.

use serde::Deserialize;

use super::{header_name, ConfigError};
use crate::identity::{Identity, IdentitySources};
use crate::mode::Mode;
use crate::pricing::Price;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "Price")
)]
pub(super) struct RawPrice {
    input_per_mtok: f64,
    output_per_mtok: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "Override")
)]
pub(super) struct RawOverride {
    header: Option<String>,
    callers: Option<Vec<String>>,
    /// The header allowlist of earlier versions, refused with what replaces it.
    #[cfg_attr(any(test, feature = "schema"), schemars(skip))]
    allow: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "Record")
)]
pub(super) struct RawRecord {
    request_body_bytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "Usage")
)]
pub(super) struct RawUsage {
    request_stream_usage: Option<bool>,
}

/// Who may pick the tier with a header: only the listed callers, as the gateway verified them
/// (`identity.caller`); a header any client can send never makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// Lowercase.
    pub header: String,
    /// Verified caller names, matched exactly.
    pub callers: Vec<String>,
}

impl Override {
    pub(crate) fn allows(&self, identity: Identity) -> bool {
        identity
            .caller
            .is_some_and(|caller| self.callers.iter().any(|allowed| allowed == caller))
    }
}

pub(super) const DEFAULT_OVERRIDE_HEADER: &str = "x-triage-override";

pub(super) fn price(path: &str, raw: Option<RawPrice>) -> Result<Option<Price>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    for (field, value) in [
        ("input_per_mtok", raw.input_per_mtok),
        ("output_per_mtok", raw.output_per_mtok),
    ] {
        if !value.is_finite() || value < 0.0 {
            return Err(ConfigError::new(
                format!("{path}.{field}"),
                format!("must be a price in USD per million tokens (>= 0), got {value}"),
            ));
        }
    }
    Ok(Some(Price {
        input_per_mtok: raw.input_per_mtok,
        output_per_mtok: raw.output_per_mtok,
    }))
}

pub(super) fn mode(mode: Option<&str>, canary_percent: Option<f64>) -> Result<Mode, ConfigError> {
    match (mode.unwrap_or("enforce"), canary_percent) {
        ("enforce", None) => Ok(Mode::Enforce),
        ("shadow", None) => Ok(Mode::Shadow),
        ("canary", Some(percent)) if (0.0..=100.0).contains(&percent) => Ok(Mode::Canary(percent)),
        ("canary", Some(percent)) => Err(ConfigError::new(
            "canary_percent",
            format!("must be within [0, 100], got {percent}"),
        )),
        ("canary", None) => Err(ConfigError::new(
            "canary_percent",
            "required with mode \"canary\": the percent of requests enforced",
        )),
        ("enforce" | "shadow", Some(_)) => Err(ConfigError::new(
            "canary_percent",
            "only with mode \"canary\"",
        )),
        (other, _) => Err(ConfigError::new(
            "mode",
            format!("{other:?} is not one of \"enforce\", \"shadow\", \"canary\""),
        )),
    }
}

pub(super) fn override_policy(
    raw: Option<RawOverride>,
    route_header: &str,
    identity: &IdentitySources,
) -> Result<Option<Override>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.allow.is_some() {
        return Err(ConfigError::new(
            "override.allow",
            "is replaced by override.callers: a header any client can send is not an identity. \
             Say in identity.caller where your gateway puts the verified caller (e.g. jwt_authn's \
             payload in dynamic metadata) and list in override.callers who may override",
        ));
    }
    let header = header_name(
        "override.header",
        raw.header.as_deref().unwrap_or(DEFAULT_OVERRIDE_HEADER),
    )?;
    if header == route_header {
        return Err(ConfigError::new(
            "override.header",
            "must differ from route_header (the filter owns the routing header)",
        ));
    }
    let callers = raw.callers.unwrap_or_default();
    if callers.is_empty() {
        return Err(ConfigError::new(
            "override.callers",
            "must list at least one verified caller allowed to override (without it every \
             client could pick its own tier)",
        ));
    }
    if let Some(index) = callers.iter().position(String::is_empty) {
        return Err(ConfigError::new(
            format!("override.callers[{index}]"),
            "must not be empty",
        ));
    }
    if identity.caller.is_none() {
        return Err(ConfigError::new(
            "override.callers",
            "needs identity.caller: where the gateway puts the caller it verified",
        ));
    }
    Ok(Some(Override { header, callers }))
}

pub(super) fn record_body_bytes(raw: Option<RawRecord>) -> usize {
    raw.and_then(|record| record.request_body_bytes)
        .map_or(0, |bytes| usize::try_from(bytes).unwrap_or(usize::MAX))
}

pub(super) fn request_stream_usage(raw: Option<RawUsage>) -> bool {
    raw.and_then(|usage| usage.request_stream_usage)
        .unwrap_or(false)
}
