//! Requests as Envoy hands them to the filter, and checks every test makes.

use triage_host::{Action, Host, LogLevel, Stream};

pub const CHAT: &str = "/v1/chat/completions";
pub const RESPONSES: &str = "/v1/responses";
pub const MESSAGES: &str = "/v1/messages";

pub const SIMPLE: &str =
    "Classify the sentiment of this review as positive or negative: I loved it.";

pub const HARD: &str = "Prove step by step that the integral of $e^{-x^2}$ over the real line is $\\sqrt{\\pi}$ — derive it.";

pub fn host() -> Host {
    Host::start("").expect("the default config starts")
}

pub fn post_headers(path: &str, body_len: usize) -> Vec<(String, String)> {
    vec![
        (":method".into(), "POST".into()),
        (":path".into(), path.into()),
        (":authority".into(), "llm.example".into()),
        ("content-type".into(), "application/json".into()),
        ("content-length".into(), body_len.to_string()),
    ]
}

/// The body cut at `chunk_sizes`; whatever is left goes last, and an empty body is one empty chunk.
pub fn split<'b>(body: &'b [u8], chunk_sizes: &[usize]) -> Vec<&'b [u8]> {
    let mut chunks = Vec::new();
    let mut rest = body;
    for &size in chunk_sizes {
        if rest.is_empty() {
            break;
        }
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    if !rest.is_empty() || body.is_empty() {
        chunks.push(rest);
    }
    chunks
}

/// `headers`, then the body cut at `chunk_sizes`, the last chunk ending the stream.
pub fn send_request<K: AsRef<str>, V: AsRef<str>>(
    stream: &mut Stream,
    headers: &[(K, V)],
    body: &[u8],
    chunk_sizes: &[usize],
) -> Vec<Action> {
    let mut actions = vec![stream.send_request_headers(headers, false).unwrap()];
    let chunks = split(body, chunk_sizes);
    let last = chunks.len() - 1;
    for (index, chunk) in chunks.into_iter().enumerate() {
        actions.push(stream.send_request_body(chunk, index == last).unwrap());
    }
    actions
}

/// A POST to `path`, then the body cut at `chunk_sizes`.
pub fn send_chunked(
    stream: &mut Stream,
    path: &str,
    body: &[u8],
    chunk_sizes: &[usize],
) -> Vec<Action> {
    send_request(stream, &post_headers(path, body.len()), body, chunk_sizes)
}

pub fn send(stream: &mut Stream, path: &str, body: &[u8]) -> Vec<Action> {
    send_chunked(stream, path, body, &[])
}

pub fn chat_body(model: &str, text: &str) -> String {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]}).to_string()
}

pub fn upstream_json(stream: &Stream) -> serde_json::Value {
    serde_json::from_slice(stream.upstream_body()).expect("the upstream body is JSON")
}

/// The filter logged nothing at warn or above: every host call it made succeeded.
pub fn assert_no_warnings(host: &Host) {
    let bad = host.logs_at_least(LogLevel::Warn);
    assert!(bad.is_empty(), "the filter warned: {bad:#?}");
}

/// The request went upstream whole, with `content-length` matching the body it carries.
pub fn assert_framed(stream: &Stream) {
    assert!(
        stream.upstream_complete(),
        "the request did not reach the upstream"
    );
    assert!(!stream.request_paused());
    if let Some(length) = stream.upstream_header("content-length") {
        assert_eq!(
            length,
            stream.upstream_body().len().to_string(),
            "content-length does not match the body sent upstream"
        );
    }
}

/// The tier is on the request, the router picked the route again after it was set, and the
/// x-triage-* headers agree.
pub fn assert_routed(stream: &Stream, tier: &str) {
    assert_eq!(stream.upstream_header("x-triage-route"), Some(tier));
    assert_eq!(stream.upstream_header("x-triage-tier"), Some(tier));
    assert_eq!(
        stream.routing_headers().get("x-triage-route"),
        Some(tier),
        "the router did not see the routing header: route cache not cleared after setting it"
    );
}

/// xorshift64*: reproducible chunkings without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// What the native core decides for `body` on `path` with the default config: tests expect the
/// module to agree, whatever the scoring model currently says.
pub fn native(path: &str, body: &[u8]) -> triage_core::Decision {
    native_with("", path, &[], body)
}

/// The native decision with `config` and the request `headers` (lowercase names); an identity the
/// config reads from a header is taken from `headers`, as the filter takes it.
pub fn native_with(
    config: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> triage_core::Decision {
    let config = triage_core::Config::from_json(config.as_bytes()).unwrap();
    let format = triage_core::ApiFormat::detect("POST", path).unwrap();
    let from_header = |source: &Option<triage_core::IdentitySource>| match source {
        Some(triage_core::IdentitySource::Header(name)) => headers
            .iter()
            .find(|(have, _)| have == name)
            .map(|(_, value)| value.as_str()),
        _ => None,
    };
    let sources = config.identity_sources();
    let head = triage_core::RequestHead {
        format,
        path,
        headers,
        identity: triage_core::Identity {
            caller: from_header(&sources.caller),
            tenant: from_header(&sources.tenant),
        },
    };
    triage_core::decide(&config, &head, body)
}

/// The model the native decision sends upstream.
pub fn native_model(path: &str, body: &[u8]) -> serde_json::Value {
    let decision = native(path, body);
    serde_json::json!(decision.model.or(decision.requested_model))
}

pub const HISTOGRAMS: [&str; 2] = ["triage.score_permille", "triage.decision_us"];

/// The gauge of the largest VM's linear memory: the module's size, not a count of requests.
pub const VM_MEMORY_GAUGE: &str = "triage.vm_memory_bytes";

/// Every counter the filter defines for `tiers` (cheapest first), as issues #5 and #6 name them:
/// requests by mode, tier and cause, fail-open by reason, overrides between any two tiers,
/// escalations from each tier to each dearer one by cause, and per tier tokens by kind, unknown
/// usage and the three costs.
pub fn defined_counters(tiers: &[&str]) -> Vec<String> {
    let mut names = Vec::new();
    for mode in ["enforce", "shadow"] {
        for tier in tiers {
            for cause in ["scored", "rule", "explicit_model", "fail_open", "override"] {
                names.push(format!(
                    "triage.requests.mode.{mode}.tier.{tier}.cause.{cause}"
                ));
            }
        }
    }
    for reason in [
        "empty_body",
        "invalid_json",
        "unknown_shape",
        "body_too_large",
        "body_unavailable",
    ] {
        names.push(format!("triage.fail_open.reason.{reason}"));
    }
    for from in tiers {
        for to in tiers {
            names.push(format!("triage.overrides.from.{from}.to.{to}"));
        }
    }
    for (index, from) in tiers.iter().enumerate() {
        for to in &tiers[index + 1..] {
            for cause in triage_core::ESCALATION_CAUSES {
                names.push(format!(
                    "triage.escalations.from.{from}.to.{to}.cause.{cause}"
                ));
            }
        }
    }
    for routed in tiers {
        let elsewhere = tiers.iter().filter(|served| *served != routed);
        for served in elsewhere.chain(&["unknown"]) {
            names.push(format!(
                "triage.tier_mismatch.routed.{routed}.served.{served}"
            ));
        }
    }
    for tier in tiers {
        for kind in ["prompt", "completion"] {
            names.push(format!("triage.tokens.tier.{tier}.kind.{kind}"));
        }
        for family in [
            "usage_unknown",
            "cost_micro_usd",
            "top_tier_cost_micro_usd",
            "decided_cost_micro_usd",
        ] {
            names.push(format!("triage.{family}.tier.{tier}"));
        }
    }
    names
}
