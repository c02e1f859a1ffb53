//! Error bodies as the providers send them, for the `status=<code>` switch.

use hyper::StatusCode;
use serde_json::{json, Value};

struct Kind {
    openai_type: &'static str,
    openai_code: Option<&'static str>,
    anthropic_type: &'static str,
    message: &'static str,
}

fn kind(status: StatusCode) -> Kind {
    let (openai_type, openai_code, anthropic_type, message) = match status.as_u16() {
        400 => (
            "invalid_request_error",
            None,
            "invalid_request_error",
            "Invalid request.",
        ),
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "authentication_error",
            "Incorrect API key provided.",
        ),
        403 => (
            "permission_error",
            None,
            "permission_error",
            "Permission denied.",
        ),
        404 => (
            "invalid_request_error",
            Some("model_not_found"),
            "not_found_error",
            "The model does not exist or you do not have access to it.",
        ),
        413 => (
            "invalid_request_error",
            Some("request_too_large"),
            "request_too_large",
            "Request exceeds the maximum allowed size.",
        ),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "rate_limit_error",
            "Rate limit reached for requests. Please try again later.",
        ),
        500 => (
            "server_error",
            None,
            "api_error",
            "The server had an error while processing your request.",
        ),
        529 => ("server_error", None, "overloaded_error", "Overloaded."),
        code if code < 500 => (
            "invalid_request_error",
            None,
            "invalid_request_error",
            "The request was refused.",
        ),
        _ => (
            "server_error",
            None,
            "api_error",
            "The server is unavailable. Please try again later.",
        ),
    };
    Kind {
        openai_type,
        openai_code,
        anthropic_type,
        message,
    }
}

/// `{"error": {"message", "type", "param", "code"}}`; `detail` says which switch on which tier.
pub(crate) fn openai(status: StatusCode, detail: &str) -> Value {
    let kind = kind(status);
    json!({"error": {
        "message": format!("{} ({detail})", kind.message),
        "type": kind.openai_type,
        "param": null,
        "code": kind.openai_code,
    }})
}

/// `{"type": "error", "error": {"type", "message"}, "request_id"}`.
pub(crate) fn anthropic(status: StatusCode, detail: &str, request_id: &str) -> Value {
    let kind = kind(status);
    json!({
        "type": "error",
        "error": {"type": kind.anthropic_type, "message": format!("{} ({detail})", kind.message)},
        "request_id": request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_follow_the_status() {
        let cases = [
            (400, "invalid_request_error", "invalid_request_error"),
            (401, "invalid_request_error", "authentication_error"),
            (404, "invalid_request_error", "not_found_error"),
            (422, "invalid_request_error", "invalid_request_error"),
            (429, "requests", "rate_limit_error"),
            (500, "server_error", "api_error"),
            (503, "server_error", "api_error"),
            (529, "server_error", "overloaded_error"),
        ];
        for (code, openai_type, anthropic_type) in cases {
            let status = StatusCode::from_u16(code).unwrap();
            let openai = openai(status, "detail");
            assert_eq!(openai["error"]["type"], openai_type, "{code}");
            assert_eq!(openai["error"]["param"], Value::Null);
            assert!(openai["error"]["message"]
                .as_str()
                .is_some_and(|message| message.ends_with(" (detail)")));
            let anthropic = anthropic(status, "detail", "req_1");
            assert_eq!(anthropic["type"], "error");
            assert_eq!(anthropic["error"]["type"], anthropic_type, "{code}");
            assert_eq!(anthropic["request_id"], "req_1");
        }
        assert_eq!(
            openai(StatusCode::TOO_MANY_REQUESTS, "x")["error"]["code"],
            "rate_limit_exceeded"
        );
    }
}
