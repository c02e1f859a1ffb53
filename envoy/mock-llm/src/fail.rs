//! Failure switches: `x-mock-fail: <switch>[, <switch>...]`, limited to some tiers by
//! `x-mock-fail-tier: <tier>[,<tier>...]`, make one mock tier misbehave for tests and demos.

use std::fmt;
use std::time::Duration;

use hyper::StatusCode;

pub(crate) const SWITCH_HEADER: &str = "x-mock-fail";
pub(crate) const TIER_HEADER: &str = "x-mock-fail-tier";

pub(crate) const REFUSAL: &str = "I'm sorry, but I can't help with that.";
pub(crate) const BAD_JSON: &str = r#"{"answer": "unterminated"#;
pub(crate) const BAD_TOOL_ARGUMENTS: &str = r#"{"query": "unterminated"#;
/// The mean logprob of an answer when the request asks for logprobs and no `logprobs=` switch is set.
pub(crate) const DEFAULT_LOGPROB_MEAN: f64 = -0.1;

const KNOWN: &str = "status=<code>, delay=<duration>, empty, truncate, refusal, badjson, badtool, \
                     broken-stream, reset, no-usage, logprobs=<mean>";

/// The switches that apply to one request on one tier; the default is a normal answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Failure {
    pub outcome: Outcome,
    /// Wait before the response headers (or before closing, with `reset`).
    pub delay: Option<Duration>,
    /// Close the connection halfway through the body.
    pub broken_stream: bool,
    pub no_usage: bool,
    /// The mean of the per-token logprobs, when the request asks for logprobs.
    pub logprobs_mean: Option<f64>,
}

/// What is answered: at most one switch of a request chooses it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    #[default]
    Answer,
    Reset,
    Status(StatusCode),
    Empty,
    Truncate,
    Refusal,
    BadJson,
    BadTool,
}

/// What a request with `reset` or `broken-stream` ends with: hyper closes the connection on it.
#[derive(Debug)]
pub(crate) struct Injected(pub &'static str);

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mock-llm: {SWITCH_HEADER} {}", self.0)
    }
}

impl std::error::Error for Injected {}

impl Failure {
    /// The switches of every `x-mock-fail` header, if an `x-mock-fail-tier` header names `tier` or
    /// there is none. Switches are checked on every tier, so a typo fails wherever it lands.
    pub fn from_headers<'a>(
        tier: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Failure, String> {
        let mut switches = Vec::new();
        let mut tiers: Option<Vec<&str>> = None;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(SWITCH_HEADER) {
                switches.push(value);
            } else if name.eq_ignore_ascii_case(TIER_HEADER) {
                tiers.get_or_insert_with(Vec::new).extend(items(value));
            }
        }
        let failure = Failure::parse(&switches.join(","))?;
        match tiers {
            Some(tiers) if tiers.is_empty() => Err(format!("{TIER_HEADER} names no tier")),
            Some(tiers) if !tiers.contains(&tier) => Ok(Failure::default()),
            _ => Ok(failure),
        }
    }

    /// `switches` is the comma-separated value of `x-mock-fail`.
    pub fn parse(switches: &str) -> Result<Failure, String> {
        let mut failure = Failure::default();
        let mut seen: Vec<&str> = Vec::new();
        for switch in items(switches) {
            let (name, value) = match switch.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value.trim())),
                None => (switch, None),
            };
            if seen.contains(&name) {
                return Err(format!("{SWITCH_HEADER}: {name} is given twice"));
            }
            seen.push(name);
            let outcome = match (name, value) {
                ("status", Some(code)) => Some(Outcome::Status(parse_status(code)?)),
                ("delay", Some(delay)) => {
                    failure.delay = Some(parse_delay(delay)?);
                    None
                }
                ("logprobs", Some(mean)) => {
                    failure.logprobs_mean = Some(parse_logprob_mean(mean)?);
                    None
                }
                ("broken-stream", None) => {
                    failure.broken_stream = true;
                    None
                }
                ("no-usage", None) => {
                    failure.no_usage = true;
                    None
                }
                ("reset", None) => Some(Outcome::Reset),
                ("empty", None) => Some(Outcome::Empty),
                ("truncate", None) => Some(Outcome::Truncate),
                ("refusal", None) => Some(Outcome::Refusal),
                ("badjson", None) => Some(Outcome::BadJson),
                ("badtool", None) => Some(Outcome::BadTool),
                ("status" | "delay" | "logprobs", None) => {
                    return Err(format!(
                        "{SWITCH_HEADER}: {name} needs a value: status=<code>, delay=<duration>, \
                         logprobs=<mean>"
                    ))
                }
                (
                    "broken-stream" | "no-usage" | "reset" | "empty" | "truncate" | "refusal"
                    | "badjson" | "badtool",
                    Some(_),
                ) => {
                    return Err(format!(
                        "{SWITCH_HEADER}: {name} takes no value: {switch:?}"
                    ))
                }
                _ => {
                    return Err(format!(
                        "{SWITCH_HEADER}: unknown switch {switch:?}; known: {KNOWN}"
                    ))
                }
            };
            if let Some(outcome) = outcome {
                if failure.outcome != Outcome::Answer {
                    return Err(format!(
                        "{SWITCH_HEADER}: {} and {outcome} both choose the answer; give one",
                        failure.outcome
                    ));
                }
                failure.outcome = outcome;
            }
        }
        if failure.outcome == Outcome::Reset && failure.broken_stream {
            return Err(format!(
                "{SWITCH_HEADER}: reset sends no body for broken-stream to break; give one"
            ));
        }
        Ok(failure)
    }

    pub fn is_none(&self) -> bool {
        *self == Failure::default()
    }
}

/// Comma-separated items, trimmed, empty ones skipped.
fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

fn parse_status(code: &str) -> Result<StatusCode, String> {
    code.parse::<u16>()
        .ok()
        .filter(|code| (400..=599).contains(code))
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| {
            format!("{SWITCH_HEADER}: status={code}: expected an HTTP error status, 400 to 599")
        })
}

/// `2s`, `1.5s`, `250ms`.
fn parse_delay(delay: &str) -> Result<Duration, String> {
    let seconds = if let Some(millis) = delay.strip_suffix("ms") {
        millis.parse::<f64>().map(|millis| millis / 1000.0)
    } else if let Some(seconds) = delay.strip_suffix('s') {
        seconds.parse::<f64>()
    } else {
        "no unit".parse::<f64>()
    };
    seconds
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| {
            format!("{SWITCH_HEADER}: delay={delay}: expected a duration like 2s or 250ms")
        })
}

fn parse_logprob_mean(mean: &str) -> Result<f64, String> {
    mean.parse::<f64>()
        .ok()
        .filter(|mean| mean.is_finite() && *mean <= 0.0)
        .ok_or_else(|| {
            format!(
                "{SWITCH_HEADER}: logprobs={mean}: expected a mean log-probability <= 0, like -0.7"
            )
        })
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Answer => f.write_str("answer"),
            Outcome::Reset => f.write_str("reset"),
            Outcome::Status(status) => write!(f, "status={}", status.as_u16()),
            Outcome::Empty => f.write_str("empty"),
            Outcome::Truncate => f.write_str("truncate"),
            Outcome::Refusal => f.write_str("refusal"),
            Outcome::BadJson => f.write_str("badjson"),
            Outcome::BadTool => f.write_str("badtool"),
        }
    }
}

/// The switches in `x-mock-fail` syntax (for the request log); parsing it gives the same failure.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut switches = Vec::new();
        if self.outcome != Outcome::Answer {
            switches.push(self.outcome.to_string());
        }
        if let Some(delay) = self.delay {
            switches.push(format!("delay={}ms", delay.as_secs_f64() * 1000.0));
        }
        if self.broken_stream {
            switches.push("broken-stream".to_owned());
        }
        if self.no_usage {
            switches.push("no-usage".to_owned());
        }
        if let Some(mean) = self.logprobs_mean {
            switches.push(format!("logprobs={mean}"));
        }
        f.write_str(&switches.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(outcome: Outcome) -> Failure {
        Failure {
            outcome,
            ..Failure::default()
        }
    }

    #[test]
    fn parses_every_switch() {
        let cases = [
            ("", Failure::default()),
            (" , ", Failure::default()),
            (
                "status=429",
                failure(Outcome::Status(StatusCode::TOO_MANY_REQUESTS)),
            ),
            (
                "status=529",
                failure(Outcome::Status(StatusCode::from_u16(529).unwrap())),
            ),
            ("reset", failure(Outcome::Reset)),
            ("empty", failure(Outcome::Empty)),
            ("truncate", failure(Outcome::Truncate)),
            ("refusal", failure(Outcome::Refusal)),
            ("badjson", failure(Outcome::BadJson)),
            ("badtool", failure(Outcome::BadTool)),
            (
                "delay=2s",
                Failure {
                    delay: Some(Duration::from_secs(2)),
                    ..Failure::default()
                },
            ),
            (
                "delay=250ms",
                Failure {
                    delay: Some(Duration::from_millis(250)),
                    ..Failure::default()
                },
            ),
            (
                "delay=1.5s",
                Failure {
                    delay: Some(Duration::from_millis(1500)),
                    ..Failure::default()
                },
            ),
            (
                "broken-stream",
                Failure {
                    broken_stream: true,
                    ..Failure::default()
                },
            ),
            (
                "no-usage",
                Failure {
                    no_usage: true,
                    ..Failure::default()
                },
            ),
            (
                "logprobs=-0.7",
                Failure {
                    logprobs_mean: Some(-0.7),
                    ..Failure::default()
                },
            ),
            (
                " truncate , delay = 100ms,no-usage,, broken-stream, logprobs=0 ",
                Failure {
                    outcome: Outcome::Truncate,
                    delay: Some(Duration::from_millis(100)),
                    broken_stream: true,
                    no_usage: true,
                    logprobs_mean: Some(0.0),
                },
            ),
        ];
        for (switches, expected) in cases {
            assert_eq!(Failure::parse(switches), Ok(expected), "{switches:?}");
        }
    }

    #[test]
    fn refuses_what_it_does_not_know_with_a_message_that_names_it() {
        let cases = [
            ("stauts=500", "unknown switch \"stauts=500\""),
            ("Empty", "unknown switch \"Empty\""),
            ("status", "status needs a value"),
            ("status=200", "status=200: expected an HTTP error status"),
            ("status=600", "status=600"),
            ("status=5xx", "status=5xx"),
            ("delay=2", "delay=2: expected a duration"),
            ("delay=-1s", "delay=-1s"),
            ("delay=soon", "delay=soon"),
            (
                "logprobs=0.5",
                "logprobs=0.5: expected a mean log-probability <= 0",
            ),
            ("logprobs=NaN", "logprobs=NaN"),
            ("empty=1", "empty takes no value"),
            ("delay=1s, delay=2s", "delay is given twice"),
            ("empty, refusal", "empty and refusal both choose the answer"),
            ("status=500, reset", "status=500 and reset both choose"),
            ("reset, broken-stream", "reset sends no body"),
        ];
        for (switches, expected) in cases {
            let error = Failure::parse(switches).unwrap_err();
            assert!(error.contains(expected), "{switches:?} gave {error:?}");
            assert!(error.starts_with("x-mock-fail"), "{error:?}");
        }
    }

    #[test]
    fn tier_header_limits_where_the_switches_apply() {
        let status = failure(Outcome::Status(StatusCode::SERVICE_UNAVAILABLE));
        let cases: [(&[(&str, &str)], Failure); 6] = [
            (&[("x-mock-fail", "status=503")], status.clone()),
            (
                &[("x-mock-fail", "status=503"), ("x-mock-fail-tier", "mid")],
                status.clone(),
            ),
            (
                &[
                    ("x-mock-fail-tier", "small"),
                    ("X-Mock-Fail", "status=503"),
                    ("x-mock-fail-tier", " frontier , mid"),
                ],
                status.clone(),
            ),
            (
                &[("x-mock-fail", "status=503"), ("x-mock-fail-tier", "small")],
                Failure::default(),
            ),
            (
                &[("x-mock-fail-tier", "mid"), ("x-other", "status=503")],
                Failure::default(),
            ),
            (
                &[("x-mock-fail", "status=503"), ("x-mock-fail", "no-usage")],
                Failure {
                    no_usage: true,
                    ..status
                },
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                Failure::from_headers("mid", headers.iter().copied()),
                Ok(expected),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn a_typo_is_refused_on_every_tier_and_an_empty_tier_list_too() {
        let typo = [("x-mock-fail", "stauts=503"), ("x-mock-fail-tier", "small")];
        let error = Failure::from_headers("mid", typo).unwrap_err();
        assert!(error.contains("stauts=503"), "{error}");
        let no_tier = [("x-mock-fail", "empty"), ("x-mock-fail-tier", " , ")];
        let error = Failure::from_headers("mid", no_tier).unwrap_err();
        assert_eq!(error, "x-mock-fail-tier names no tier");
    }

    #[test]
    fn display_is_switch_syntax_that_parses_back() {
        let all = Failure {
            outcome: Outcome::Status(StatusCode::TOO_MANY_REQUESTS),
            delay: Some(Duration::from_millis(250)),
            broken_stream: true,
            no_usage: true,
            logprobs_mean: Some(-0.25),
        };
        assert_eq!(
            all.to_string(),
            "status=429,delay=250ms,broken-stream,no-usage,logprobs=-0.25"
        );
        for failure in [all, failure(Outcome::BadTool), Failure::default()] {
            assert_eq!(Failure::parse(&failure.to_string()), Ok(failure));
        }
        assert!(Failure::default().is_none());
        assert!(!failure(Outcome::Empty).is_none());
    }
}
