//! What the `lifecycle` and `exchange` targets share, and the seed generator writes: the plugin
//! configs a stream runs under, the menus of meaningful header values, paths and statuses, and the
//! two scripts decoded from the fuzzer's bytes: a stream's events with what the host reads at each
//! ([`StreamScript`]), and a whole exchange's request and upstream answers ([`ExchangeScript`]).

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::{json, Value};
use triage_core::Config;

use crate::input::{InputReader, InputWriter, Script, Text};

/// The configs a script picks from: without escalation; escalating on failures only; escalating on
/// failures and weak answers (every check, logprobs and stream usage asked for, so the body gets
/// more than its model); the same shadowed, and as a canary; a small body cap rejected with a 413,
/// or sent to the default tier. Every one has rules, a verified caller from a header and an
/// override for it, so the client's `x-triage-*` headers matter.
pub const SETUPS: [&str; 7] = [
    "plain",
    "escalating",
    "checked",
    "shadow",
    "canary",
    "reject_over_max",
    "default_tier_over_max",
];

/// The small body cap of the two `*_over_max` setups.
pub const SMALL_MAX_BODY_BYTES: usize = 256;

/// How much of a cheaper tier's stream the escalation watch holds before releasing it.
#[derive(Clone, Copy)]
pub enum StreamHold {
    /// 64 bytes: streams are released early, so the release point is fuzzed too.
    Start,
    /// More than any input: every stream is held and judged to its end. A stream released early is
    /// judged a chunk at a time (an error event in the chunk that passes the hold escalates, the
    /// same event a chunk later goes to the client), so only a stream held whole gives the same
    /// exchange in any chunking.
    Whole,
}

impl StreamHold {
    fn bytes(self) -> u64 {
        match self {
            StreamHold::Start => 64,
            StreamHold::Whole => 1 << 20,
        }
    }
}

thread_local! {
    /// Every setup's config, built once per process (libFuzzer runs one thread; `Rc` is what the
    /// machine takes).
    static CONFIGS: [Vec<Rc<Config>>; 2] = [StreamHold::Start, StreamHold::Whole].map(|hold| {
        SETUPS
            .iter()
            .map(|setup| Rc::new(setup_config(setup, hold)))
            .collect()
    });
}

/// The config of `SETUPS[setup]` (taken modulo the number of setups).
pub fn stream_config(setup: usize, hold: StreamHold) -> Rc<Config> {
    CONFIGS.with(|configs| Rc::clone(&configs[hold as usize][setup % SETUPS.len()]))
}

fn setup_config(setup: &str, hold: StreamHold) -> Config {
    let mut config = json!({
        "tiers": [
            {"name": "small", "model": "gpt-4o-mini",
             "models": {"anthropic_messages": "claude-haiku-4-5"},
             "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
            {"name": "mid", "model": "gpt-4.1",
             "price": {"input_per_mtok": 2.0, "output_per_mtok": 8.0}},
            // No model for the Responses and Anthropic APIs: an escalation there sends the client's
            // body as it came.
            {"name": "frontier", "models": {"openai_chat": "gpt-5"},
             "price": {"input_per_mtok": 5.0, "output_per_mtok": 20.0}}
        ],
        "default_tier": "mid",
        "rules": [
            {"name": "legal", "when": {"header": {"name": "x-team", "value": "legal"}}, "tier": "frontier"},
            {"name": "proofs", "when": {"last_user_regex": "(?i)\\bprove\\b"}, "tier": "frontier"}
        ],
        "identity": {"caller": {"header": "x-caller"}},
        "override": {"header": "x-triage-override", "callers": ["ops"]},
        "record": {"request_body_bytes": 1024}
    });
    let failures_only = json!({
        "max_escalations": 2,
        "deadline_ms": 10_000,
        "attempt_timeout_ms": 4000,
        "never_when": [{"name": "x-no-escalate", "value": "1"}],
        // Streams are watched whether or not the checks are on (an error event escalates).
        "stream_hold_bytes": hold.bytes(),
        // One failure opens a tier's breaker for a second: a script opens them and waits them out.
        "circuit_breaker": {"window": 4, "min_requests": 1, "failure_rate": 0.5, "cooldown_ms": 1000}
    });
    let mut checked = failures_only.clone();
    checked["checks"] = json!({
        "truncated": true, "empty": true, "invalid_json": true, "invalid_tool_args": true,
        "refusal_regex": "(?i)^\\W*(I'm sorry|I can(no|')t)\\b", "min_mean_logprob": -1.0
    });
    checked["request_logprobs"] = json!(true);
    let small_cap = |over_max_body: &str| json!({"max_body_bytes": SMALL_MAX_BODY_BYTES, "over_max_body": over_max_body});
    let extra: Value = match setup {
        "plain" => json!({}),
        "escalating" => json!({"escalation": failures_only}),
        "checked" => json!({"escalation": checked, "usage": {"request_stream_usage": true}}),
        "shadow" => json!({"escalation": checked, "mode": "shadow"}),
        "canary" => json!({"escalation": checked, "mode": "canary", "canary_percent": 50}),
        "reject_over_max" => json!({"escalation": checked, "limits": small_cap("reject")}),
        "default_tier_over_max" => {
            json!({"escalation": failures_only, "limits": small_cap("default_tier")})
        }
        other => panic!("no setup {other}"),
    };
    for (key, value) in extra.as_object().into_iter().flatten() {
        config[key] = value.clone();
    }
    Config::from_json(config.to_string().as_bytes())
        .unwrap_or_else(|error| panic!("the {setup} config is refused: {error}"))
}

pub const METHODS: [&str; 4] = ["POST", "GET", "post", "PUT"];

/// The three endpoints in several spellings, and paths triage lets pass.
pub const PATHS: [&str; 9] = [
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/messages",
    "/V1/Chat/Completions/",
    "/v1/chat/completions?stream=1",
    "//v1/responses",
    "/v1/messages/count_tokens",
    "/v1/models",
    "/healthz",
];

/// Client request headers: framing, correlation, the verified caller's header and the rule's, and
/// every `x-triage-*` a client may try to steer with.
pub const HEADER_NAMES: [&str; 16] = [
    "content-type",
    "content-length",
    "x-request-id",
    "x-caller",
    "x-team",
    "x-no-escalate",
    "x-triage-override",
    "x-triage-route",
    "x-triage-tier",
    "x-triage-score",
    "x-triage-reason",
    "x-triage-mode",
    "x-triage-decision-id",
    "x-triage-escalated",
    "x-triage-escalation-cause",
    "x-triage-anything",
];

pub const HEADER_VALUES: [&str; 10] = [
    "application/json",
    "123",
    "req-1",
    "ops",
    "someone",
    "legal",
    "1",
    "small",
    "frontier",
    "client-spoof",
];

pub const STATUSES: [&str; 12] = [
    "200", "201", "204", "400", "404", "413", "429", "500", "503", "504", "abc", "2000",
];

pub const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "text/event-stream",
    "Text/Event-Stream; charset=utf-8",
    "text/plain",
];

/// What Envoy's router says served the request: the first entry is not a cluster name but the
/// route table's pick (the cluster of the tier the routing header names, as the shipped routes
/// do); the others name a cluster whatever the header said (a hand-edited route table).
pub const CLUSTERS: [&str; 6] = [
    ROUTE_TABLE,
    "tier_small",
    "tier_mid",
    "tier_frontier",
    "elsewhere",
    "",
];
pub const ROUTE_TABLE: &str = "<route table>";

/// Envoy's response code details: an upstream's own answer, resets, refusals and timeouts.
pub const CODE_DETAILS: [&str; 5] = [
    "via_upstream",
    "upstream_reset_before_response_started{connection_termination}",
    "upstream_reset_before_response_started{connection_failure}",
    "upstream_response_timeout",
    "local_reply",
];

/// Decision ids from the host's random source; different ids fall on both sides of the canary.
pub const DECISION_IDS: [&str; 3] = [
    "00000000-0000-4000-8000-000000000000",
    "6a1f0c2e-9d4b-4e7a-8c3f-2b5d7e9a1c40",
    "ffffffff-ffff-4fff-bfff-ffffffffffff",
];

/// The most events a script runs: a bound on time per input, far above what the paths need.
const MAX_EVENTS: usize = 256;

/// One stream: the setup, the host's state before the first event, and the events in order.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamScript {
    pub setup: usize,
    /// Tiers whose circuit breaker is open when the stream starts (bit n: tier n).
    pub open_breakers: u8,
    /// The host refuses the body the machine rewrites (Envoy may, and then says so).
    pub refuse_rewrite: bool,
    /// What the host's random source gives (from [`DECISION_IDS`]; absent: it fails).
    pub decision_id: Text,
    /// None: the stream starts without request headers, as Envoy runs a filter's response side
    /// alone when an earlier filter answered.
    pub request: Option<RequestStart>,
    pub events: Vec<Event>,
}

/// The request headers, the stream's first event when there is one (Envoy never sends another).
#[derive(Clone, Debug, PartialEq)]
pub struct RequestStart {
    pub method: Text,
    pub path: Text,
    /// Names from [`HEADER_NAMES`], values from [`HEADER_VALUES`] or any bytes.
    pub headers: Vec<(usize, Text)>,
    pub end_of_stream: bool,
}

/// One callback into the machine, with what the host holds when it comes.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// `chunk` joins the request buffer; `read_fails`: the host cannot hand the body over.
    RequestBody {
        chunk: Vec<u8>,
        size: Size,
        end_of_stream: bool,
        read_fails: bool,
    },
    RequestTrailers,
    ResponseHeaders {
        status: Text,
        content_type: Text,
        cluster: Text,
        code_details: Text,
        end_of_stream: bool,
        dispatch: DispatchReply,
    },
    ResponseBody {
        chunk: Vec<u8>,
        size: Size,
        end_of_stream: bool,
        dispatch: DispatchReply,
    },
    ResponseTrailers,
    /// The host reports a call the machine may never have asked for.
    Dispatched {
        token: Option<u32>,
    },
    /// The answer to a call; None: it failed (no headers).
    CallAnswered {
        token: Token,
        answer: Option<UpstreamAnswer>,
        num_headers: Size,
        body_size: Size,
        dispatch: DispatchReply,
    },
    /// The host says it refused a body replacement, asked or not.
    RewriteFailed,
    Log,
    /// The wall clock moves on (past a breaker's cool-down, an escalation's deadline).
    Wait {
        ms: u16,
    },
    /// The wall clock is set anywhere, backwards too.
    ClockJump {
        nanos: u64,
    },
}

/// A body size as Envoy reports it: what it buffered (what the filter's pauses imply), or any
/// number (a host that does not keep to that: the machine must survive it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Size {
    Buffered,
    Raw(u16),
}

/// Which call an answer names: the latest the host sent, or any token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Token {
    Latest,
    Raw(u32),
}

/// What the host does when the event's step asks it to send a call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DispatchReply {
    /// Sent, with a fresh token.
    Sent,
    /// The host could not send it.
    Failed,
    /// The host never reports back (the machine must not wait on it forever).
    Unreported,
}

/// An upstream's answer: status, content type and body.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamAnswer {
    pub status: Text,
    pub content_type: Text,
    pub body: Vec<u8>,
}

impl UpstreamAnswer {
    pub fn status(&self) -> Option<Cow<'static, str>> {
        self.status.resolve(&STATUSES)
    }

    /// The headers besides `:status`.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.content_type
            .resolve(&CONTENT_TYPES)
            .map(|kind| ("content-type".to_string(), kind.into_owned()))
            .into_iter()
            .collect()
    }

    fn read(input: &mut InputReader) -> UpstreamAnswer {
        UpstreamAnswer {
            status: input.text(&STATUSES),
            content_type: input.text(&CONTENT_TYPES),
            body: input.bytes(),
        }
    }

    fn write(&self, out: &mut InputWriter) {
        out.text(&self.status);
        out.text(&self.content_type);
        out.bytes(&self.body);
    }
}

impl Script for StreamScript {
    fn read(input: &mut InputReader) -> StreamScript {
        let setup = usize::from(input.byte()) % SETUPS.len();
        let open_breakers = input.byte();
        let refuse_rewrite = input.flag();
        let decision_id = input.text(&DECISION_IDS);
        let request = input.flag().then(|| RequestStart::read(input));
        let mut events = Vec::new();
        while !input.is_empty() && events.len() < MAX_EVENTS {
            events.push(Event::read(input));
        }
        StreamScript {
            setup,
            open_breakers,
            refuse_rewrite,
            decision_id,
            request,
            events,
        }
    }

    fn write(&self, out: &mut InputWriter) {
        out.byte(self.setup as u8);
        out.byte(self.open_breakers);
        out.flag(self.refuse_rewrite);
        out.text(&self.decision_id);
        out.flag(self.request.is_some());
        if let Some(request) = &self.request {
            request.write(out);
        }
        for event in &self.events {
            event.write(out);
        }
    }
}

impl RequestStart {
    /// At most eight headers besides `:method` and `:path`.
    const MAX_HEADERS: u8 = 8;

    fn read(input: &mut InputReader) -> RequestStart {
        let method = input.text(&METHODS);
        let path = input.text(&PATHS);
        let count = input.byte() % (RequestStart::MAX_HEADERS + 1);
        let headers = (0..count)
            .map(|_| {
                let name = usize::from(input.byte()) % HEADER_NAMES.len();
                (name, input.text(&HEADER_VALUES))
            })
            .collect();
        RequestStart {
            method,
            path,
            headers,
            end_of_stream: input.flag(),
        }
    }

    fn write(&self, out: &mut InputWriter) {
        out.text(&self.method);
        out.text(&self.path);
        assert!(self.headers.len() <= usize::from(RequestStart::MAX_HEADERS));
        out.byte(self.headers.len() as u8);
        for (name, value) in &self.headers {
            out.byte(*name as u8);
            out.text(value);
        }
        out.flag(self.end_of_stream);
    }

    /// The headers as the host hands them over: `:method` and `:path` first (when present), names
    /// in lowercase.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        let pseudo = [
            (":method", &self.method, &METHODS[..]),
            (":path", &self.path, &PATHS[..]),
        ];
        let pseudo = pseudo.into_iter().filter_map(|(name, text, menu)| {
            Some((name.to_string(), text.resolve(menu)?.into_owned()))
        });
        let others = self.headers.iter().filter_map(|(name, value)| {
            let value = value.resolve(&HEADER_VALUES)?;
            Some((HEADER_NAMES[*name].to_string(), value.into_owned()))
        });
        pseudo.chain(others).collect()
    }
}

impl Size {
    fn read(input: &mut InputReader) -> Size {
        if input.flag() {
            Size::Raw(input.u16())
        } else {
            Size::Buffered
        }
    }

    fn write(self, out: &mut InputWriter) {
        out.flag(matches!(self, Size::Raw(_)));
        if let Size::Raw(size) = self {
            out.u16(size);
        }
    }

    /// The size the host reports, `buffered` being what it holds.
    pub fn reported(self, buffered: usize) -> usize {
        match self {
            Size::Buffered => buffered,
            Size::Raw(size) => usize::from(size),
        }
    }
}

impl DispatchReply {
    fn read(input: &mut InputReader) -> DispatchReply {
        match input.byte() % 3 {
            0 => DispatchReply::Sent,
            1 => DispatchReply::Failed,
            _ => DispatchReply::Unreported,
        }
    }

    fn write(self, out: &mut InputWriter) {
        out.byte(self as u8);
    }
}

impl Event {
    fn read(input: &mut InputReader) -> Event {
        match input.byte() % 11 {
            0 => Event::RequestBody {
                chunk: input.bytes(),
                size: Size::read(input),
                end_of_stream: input.flag(),
                read_fails: input.flag(),
            },
            1 => Event::RequestTrailers,
            2 => Event::ResponseHeaders {
                status: input.text(&STATUSES),
                content_type: input.text(&CONTENT_TYPES),
                cluster: input.text(&CLUSTERS),
                code_details: input.text(&CODE_DETAILS),
                end_of_stream: input.flag(),
                dispatch: DispatchReply::read(input),
            },
            3 => Event::ResponseBody {
                chunk: input.bytes(),
                size: Size::read(input),
                end_of_stream: input.flag(),
                dispatch: DispatchReply::read(input),
            },
            4 => Event::ResponseTrailers,
            5 => Event::Dispatched {
                token: input.flag().then(|| input.u32()),
            },
            6 => Event::CallAnswered {
                token: if input.flag() {
                    Token::Raw(input.u32())
                } else {
                    Token::Latest
                },
                answer: input.flag().then(|| UpstreamAnswer::read(input)),
                num_headers: Size::read(input),
                body_size: Size::read(input),
                dispatch: DispatchReply::read(input),
            },
            7 => Event::RewriteFailed,
            8 => Event::Log,
            9 => Event::Wait { ms: input.u16() },
            _ => Event::ClockJump { nanos: input.u64() },
        }
    }

    fn write(&self, out: &mut InputWriter) {
        match self {
            Event::RequestBody {
                chunk,
                size,
                end_of_stream,
                read_fails,
            } => {
                out.byte(0);
                out.bytes(chunk);
                size.write(out);
                out.flag(*end_of_stream);
                out.flag(*read_fails);
            }
            Event::RequestTrailers => out.byte(1),
            Event::ResponseHeaders {
                status,
                content_type,
                cluster,
                code_details,
                end_of_stream,
                dispatch,
            } => {
                out.byte(2);
                out.text(status);
                out.text(content_type);
                out.text(cluster);
                out.text(code_details);
                out.flag(*end_of_stream);
                dispatch.write(out);
            }
            Event::ResponseBody {
                chunk,
                size,
                end_of_stream,
                dispatch,
            } => {
                out.byte(3);
                out.bytes(chunk);
                size.write(out);
                out.flag(*end_of_stream);
                dispatch.write(out);
            }
            Event::ResponseTrailers => out.byte(4),
            Event::Dispatched { token } => {
                out.byte(5);
                out.flag(token.is_some());
                if let Some(token) = token {
                    out.u32(*token);
                }
            }
            Event::CallAnswered {
                token,
                answer,
                num_headers,
                body_size,
                dispatch,
            } => {
                out.byte(6);
                out.flag(matches!(token, Token::Raw(_)));
                if let Token::Raw(token) = token {
                    out.u32(*token);
                }
                out.flag(answer.is_some());
                if let Some(answer) = answer {
                    answer.write(out);
                }
                num_headers.write(out);
                body_size.write(out);
                dispatch.write(out);
            }
            Event::RewriteFailed => out.byte(7),
            Event::Log => out.byte(8),
            Event::Wait { ms } => {
                out.byte(9);
                out.u16(*ms);
            }
            Event::ClockJump { nanos } => {
                out.byte(10);
                out.u64(*nanos);
            }
        }
    }
}

/// A whole exchange: the setup, how the host cuts bodies, the client's request, and what each
/// tier's upstream answers (None: it resets before answering).
#[derive(Clone, Debug, PartialEq)]
pub struct ExchangeScript {
    pub setup: usize,
    /// Body bytes per callback in the chunked run, 1 to 64.
    pub chunk_bytes: usize,
    pub path: Text,
    pub content_length: bool,
    /// The request ends with trailers.
    pub trailers: bool,
    pub body: Vec<u8>,
    /// By tier, cheapest first.
    pub replies: [Option<UpstreamAnswer>; 3],
}

impl Script for ExchangeScript {
    fn read(input: &mut InputReader) -> ExchangeScript {
        ExchangeScript {
            setup: usize::from(input.byte()) % SETUPS.len(),
            chunk_bytes: usize::from(input.byte() % 64) + 1,
            path: input.text(&PATHS),
            content_length: input.flag(),
            trailers: input.flag(),
            body: input.bytes(),
            replies: [(); 3].map(|()| input.flag().then(|| UpstreamAnswer::read(input))),
        }
    }

    fn write(&self, out: &mut InputWriter) {
        assert!((1..=64).contains(&self.chunk_bytes));
        out.byte(self.setup as u8);
        out.byte(self.chunk_bytes as u8 - 1);
        out.text(&self.path);
        out.flag(self.content_length);
        out.flag(self.trailers);
        out.bytes(&self.body);
        for reply in &self.replies {
            out.flag(reply.is_some());
            if let Some(answer) = reply {
                answer.write(out);
            }
        }
    }
}
