//! The `identity` section: where the gateway puts the verified caller and tenant of a request.

use serde::Deserialize;

use super::{header_name, ConfigError, OWN_HEADER_PREFIX};
use crate::identity::{IdentitySource, IdentitySources};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "Identity")
)]
pub(super) struct RawIdentity {
    caller: Option<RawSource>,
    tenant: Option<RawSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "IdentitySource")
)]
struct RawSource {
    metadata: Option<RawMetadata>,
    header: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(
    any(test, feature = "schema"),
    derive(schemars::JsonSchema),
    schemars(rename = "MetadataSource")
)]
struct RawMetadata {
    namespace: String,
    path: Vec<String>,
}

/// Deeper than any claim an authentication filter writes; bounds the property path.
const MAX_METADATA_DEPTH: usize = 8;

pub(super) fn sources(
    raw: Option<RawIdentity>,
    route_header: &str,
) -> Result<IdentitySources, ConfigError> {
    let Some(raw) = raw else {
        return Ok(IdentitySources::default());
    };
    let source = |name: &str, raw: Option<RawSource>| {
        raw.map(|raw| self::source(&format!("identity.{name}"), raw, route_header))
            .transpose()
    };
    Ok(IdentitySources {
        caller: source("caller", raw.caller)?,
        tenant: source("tenant", raw.tenant)?,
    })
}

fn source(path: &str, raw: RawSource, route_header: &str) -> Result<IdentitySource, ConfigError> {
    match (raw.metadata, raw.header) {
        (Some(metadata), None) => metadata_source(&format!("{path}.metadata"), metadata),
        (None, Some(header)) => {
            let path = format!("{path}.header");
            let name = header_name(&path, &header)?;
            if name == route_header || name.starts_with(OWN_HEADER_PREFIX) {
                return Err(ConfigError::new(
                    path,
                    format!(
                        "{name:?} is a header triage owns; name the header your authentication \
                         filter sets"
                    ),
                ));
            }
            Ok(IdentitySource::Header(name))
        }
        _ => Err(ConfigError::new(
            path,
            "needs exactly one of metadata ({\"namespace\", \"path\"}: dynamic metadata an \
             authentication filter writes) or header (one the gateway strips from clients and \
             sets after authentication)",
        )),
    }
}

fn metadata_source(path: &str, raw: RawMetadata) -> Result<IdentitySource, ConfigError> {
    // Segments are joined by NUL in a property path, so a NUL would split one.
    let usable = |segment: &str| !segment.is_empty() && !segment.contains('\0');
    if !usable(&raw.namespace) {
        return Err(ConfigError::new(
            format!("{path}.namespace"),
            "must be a filter's metadata namespace, e.g. \"envoy.filters.http.jwt_authn\"",
        ));
    }
    if raw.path.is_empty() || raw.path.len() > MAX_METADATA_DEPTH {
        return Err(ConfigError::new(
            format!("{path}.path"),
            format!(
                "must name 1 to {MAX_METADATA_DEPTH} keys down to a string, e.g. \
                 [\"jwt_payload\", \"sub\"]"
            ),
        ));
    }
    if let Some(index) = raw.path.iter().position(|segment| !usable(segment)) {
        return Err(ConfigError::new(
            format!("{path}.path[{index}]"),
            "must be a non-empty key",
        ));
    }
    Ok(IdentitySource::Metadata {
        namespace: raw.namespace,
        path: raw.path,
    })
}
