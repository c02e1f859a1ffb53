//! A tier's `upstream`: where its model server listens, as `http://host[:port]` or
//! `https://host[:port]`. The filter routes by cluster name and never dials it; the address is there
//! so the gateway's routes and clusters are generated from the plugin config (`triage envoy`), one
//! file declaring every tier.

use std::fmt;

use super::ConfigError;

/// A parsed `upstream`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamAddress {
    /// `https`: the connection is TLS, with the host as SNI.
    pub tls: bool,
    /// A DNS name or an IP address (an IPv6 address without its brackets).
    pub host: String,
    pub port: u16,
}

impl UpstreamAddress {
    /// Parses `http(s)://host[:port]`, with an optional trailing `/`; `what` names the field in
    /// errors.
    pub fn parse(what: &str, text: &str) -> Result<UpstreamAddress, ConfigError> {
        let refuse = |why: &str| {
            ConfigError::new(
                what,
                format!("{text:?} {why}: write http://host[:port] or https://host[:port]"),
            )
        };
        let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(refuse("has no http:// or https:// scheme"));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(refuse(
                "has a path, query or user: the tier's route keeps the client's path",
            ));
        }
        let (host, port) = split_port(authority).ok_or_else(|| refuse("has a bad port"))?;
        let host_is_valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        if !host_is_valid {
            return Err(refuse("has no valid host"));
        }
        Ok(UpstreamAddress {
            tls,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(if tls { 443 } else { 80 }),
        })
    }

    /// The host is an IP address (Envoy connects to it as is) rather than a name to resolve.
    pub fn is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

impl fmt::Display for UpstreamAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// `host[:port]` or `[v6]:port`; None for a port that is not a number in 1..=65535.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed.split_once(']')?;
            match after {
                "" => (host, None),
                port => (host, Some(port.strip_prefix(':')?)),
            }
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    match port {
        None => Some((host, None)),
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => Some((host, Some(port))),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> UpstreamAddress {
        UpstreamAddress::parse("tiers[0].upstream", text).unwrap()
    }

    #[test]
    fn scheme_host_and_port() {
        let openai = parsed("https://api.openai.com");
        assert_eq!(
            openai,
            UpstreamAddress {
                tls: true,
                host: "api.openai.com".into(),
                port: 443
            }
        );
        assert!(!openai.is_ip());
        let local = parsed("http://127.0.0.1:18001/");
        assert_eq!((local.tls, local.port), (false, 18001));
        assert!(local.is_ip());
        assert_eq!(
            parsed("http://vLLM.models.svc:8000").host,
            "vllm.models.svc"
        );
        let v6 = parsed("http://[::1]:9000");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 9000));
        assert!(v6.is_ip());
        assert_eq!(v6.to_string(), "http://[::1]:9000");
        assert_eq!(
            parsed("http://example.com").to_string(),
            "http://example.com:80"
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_form_to_write() {
        for (text, why) in [
            ("api.openai.com", "no http:// or https:// scheme"),
            ("ftp://x", "no http:// or https:// scheme"),
            ("https://api.openai.com/v1", "a path, query or user"),
            ("https://user@host", "a path, query or user"),
            ("http://host:0", "a bad port"),
            ("http://host:70000", "a bad port"),
            ("http://host:", "a bad port"),
            ("http://", "no valid host"),
            ("http://ho st", "no valid host"),
        ] {
            let error = UpstreamAddress::parse("tiers[1].upstream", text).unwrap_err();
            let shown = error.to_string();
            assert!(shown.starts_with("tiers[1].upstream: "), "{shown}");
            assert!(shown.contains(why), "{text}: {shown}");
            assert!(shown.ends_with("write http://host[:port] or https://host[:port]"));
        }
    }
}
