//! Who is calling, as the gateway vouches for it. A client controls its body and every header it
//! sends, so nothing a client writes can make it a caller allowed to override the tier or a tenant a
//! rule picks out. The plugin config names where the gateway puts a verified identity instead:
//! dynamic metadata written by an authentication filter (Envoy's `jwt_authn` with
//! `payload_in_metadata`, or `ext_authz`), which no client can write; or a header that the gateway's
//! Envoy config removes from every client request before any filter and that only its
//! authentication filter sets (triage cannot see whether it does, which is why the metadata source is
//! the one the example stack uses).

/// Where one identity attribute comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentitySource {
    /// A value in the request's dynamic metadata: `filter_metadata[namespace]` then `path`, e.g.
    /// `envoy.filters.http.jwt_authn` / `["jwt_payload", "sub"]`.
    Metadata {
        namespace: String,
        path: Vec<String>,
    },
    /// A lowercase header name the gateway sets after authentication and strips from clients.
    Header(String),
}

impl IdentitySource {
    /// The host property path of a metadata source (Envoy's `metadata` attribute is the request's
    /// dynamic metadata); None for a header source.
    pub fn property_path(&self) -> Option<Vec<&str>> {
        match self {
            IdentitySource::Metadata { namespace, path } => Some(
                ["metadata", "filter_metadata", namespace.as_str()]
                    .into_iter()
                    .chain(path.iter().map(String::as_str))
                    .collect(),
            ),
            IdentitySource::Header(_) => None,
        }
    }
}

/// The configured sources of the caller (who may override) and the tenant (whom rules, and later
/// budgets, key on); either may be absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentitySources {
    pub caller: Option<IdentitySource>,
    pub tenant: Option<IdentitySource>,
}

/// A request's verified identity; None where the gateway vouched for nothing (an anonymous request,
/// or no source configured).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identity<'a> {
    pub caller: Option<&'a str>,
    pub tenant: Option<&'a str>,
}

impl Identity<'_> {
    pub const ANONYMOUS: Identity<'static> = Identity {
        caller: None,
        tenant: None,
    };
}

/// The longest identity value kept; a longer one is not an identity any gateway issues.
pub const MAX_IDENTITY_BYTES: usize = 256;

/// An identity value as the host returned it: kept only when it is 1 to [`MAX_IDENTITY_BYTES`]
/// bytes of visible ASCII or UTF-8 without control characters. Envoy returns a string claim as its
/// bytes; a claim of another type (a number, a list, an object) comes back serialized or not at all,
/// and is no caller's name.
pub fn identity_value(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() || bytes.len() > MAX_IDENTITY_BYTES {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    if text.chars().any(char::is_control) {
        return None;
    }
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metadata_source_is_read_under_the_requests_dynamic_metadata() {
        let source = IdentitySource::Metadata {
            namespace: "envoy.filters.http.jwt_authn".into(),
            path: vec!["jwt_payload".into(), "sub".into()],
        };
        assert_eq!(
            source.property_path().unwrap(),
            [
                "metadata",
                "filter_metadata",
                "envoy.filters.http.jwt_authn",
                "jwt_payload",
                "sub"
            ]
        );
        assert_eq!(
            IdentitySource::Header("x-caller".into()).property_path(),
            None
        );
    }

    #[test]
    fn only_short_printable_text_is_an_identity() {
        assert_eq!(
            identity_value(b"ops-console").as_deref(),
            Some("ops-console")
        );
        assert_eq!(
            identity_value("équipe".as_bytes()).as_deref(),
            Some("équipe")
        );
        assert_eq!(identity_value(b""), None);
        assert_eq!(identity_value(b"ops\nconsole"), None);
        assert_eq!(
            identity_value(b"\x08\x01"),
            None,
            "a serialized protobuf is not a name"
        );
        assert_eq!(identity_value(&[0xff, 0xfe]), None);
        let longest = "a".repeat(MAX_IDENTITY_BYTES);
        assert_eq!(identity_value(longest.as_bytes()), Some(longest.clone()));
        assert_eq!(identity_value(format!("{longest}a").as_bytes()), None);
    }
}
