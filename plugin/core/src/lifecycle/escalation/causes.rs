//! Names for why a request moved up a tier (a weak answer is named by `Weakness::as_str`), shared by the filter (metric labels, decision records)
//! and the CLI reports.

use super::answer::Weakness;

/// Every escalation cause, a bounded set: metric series are defined for each.
pub const ESCALATION_CAUSES: [&str; 13] = [
    "connect_failure",
    "reset",
    "timeout",
    "status_429",
    "status_5xx",
    "truncated",
    "empty",
    "refusal",
    "invalid_json",
    "invalid_tool_args",
    "low_logprob",
    "stream_error",
    "circuit_open",
];

/// Whether an escalation's cause says the tier could not answer *this request* (its answer was
/// weak), as opposed to the tier being unavailable (refused, reset, timed out, rate-limited, a 5xx,
/// or skipped by its open breaker), which says nothing about the request's difficulty.
pub fn cause_judges_the_answer(cause: &str) -> bool {
    Weakness::ALL
        .iter()
        .any(|weakness| weakness.as_str() == cause)
}

/// Why an upstream answer with a failing status failed. `details` is Envoy's response code details
/// (`upstream_reset_before_response_started{connection_failure}`, `upstream_response_timeout`,
/// `via_upstream`, ...), which tell Envoy's own replies from the provider's.
pub fn failure_cause(status: u16, details: &str) -> &'static str {
    if details.starts_with("upstream_reset_before_response_started") {
        if details.contains("connection_failure") || details.contains("connection_timeout") {
            "connect_failure"
        } else {
            "reset"
        }
    } else if details.contains("timeout") {
        // `response_timeout` (Envoy 1.40), `upstream_response_timeout`, `upstream_per_try_timeout`.
        "timeout"
    } else if status == 429 {
        "status_429"
    } else {
        "status_5xx"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_details_name_the_failure() {
        let cases = [
            (503, "upstream_reset_before_response_started{remote_connection_failure,delayed_connect_error:_Connection_refused}", "connect_failure"),
            (503, "upstream_reset_before_response_started{connection_termination}", "reset"),
            (504, "upstream_response_timeout", "timeout"),
            (504, "response_timeout", "timeout"),
            (503, "upstream_reset_before_response_started{connection_timeout}", "connect_failure"),
            (429, "via_upstream", "status_429"),
            (503, "via_upstream", "status_5xx"),
            (500, "", "status_5xx"),
        ];
        for (status, details, cause) in cases {
            assert_eq!(failure_cause(status, details), cause, "{details}");
            assert!(ESCALATION_CAUSES.contains(&cause));
        }
    }

    #[test]
    fn only_weak_answers_judge_the_answer_and_every_cause_is_classed() {
        let availability = [
            "connect_failure",
            "reset",
            "timeout",
            "status_429",
            "status_5xx",
            "circuit_open",
        ];
        for cause in ESCALATION_CAUSES {
            assert_eq!(
                cause_judges_the_answer(cause),
                !availability.contains(&cause),
                "{cause}"
            );
        }
    }

    #[test]
    fn every_weakness_is_a_known_cause() {
        for weakness in Weakness::ALL {
            assert!(
                ESCALATION_CAUSES.contains(&weakness.as_str()),
                "{weakness:?}"
            );
        }
    }
}
