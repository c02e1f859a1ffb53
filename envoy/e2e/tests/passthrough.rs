//! Requests that are not LLM calls pass through untouched to the default route, with no triage
//! headers.

use triage_e2e::bodies::{self, CHAT, TRIVIAL};
use triage_e2e::check::{assert_body, triage_headers};
use triage_e2e::plugin_config::{self, FORCE_TIER_HEADER};
use triage_e2e::{Request, Stack};

fn passes_through(request: Request) {
    let stack = Stack::start(&plugin_config::forcing());
    let request = request.header(FORCE_TIER_HEADER, "frontier");
    let response = stack.send(&request);

    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("x-mock-tier"), Some("mid"), "default route");
    assert_eq!(triage_headers(&response.headers), vec![], "on the response");
    let (tier, received) = stack.only_upstream_request();
    assert_eq!(tier, "mid");
    assert_eq!(received.method, request.method);
    assert_eq!(received.path, request.path);
    assert_eq!(triage_headers(&received.headers), vec![], "upstream");
    assert_body(&received, &String::from_utf8_lossy(&request.body_bytes()));
}

#[test]
fn get_on_an_llm_path_passes_through() {
    passes_through(Request::get(CHAT));
}

#[test]
fn post_to_embeddings_passes_through() {
    let body = r#"{"model": "auto", "input": "The food was delicious."}"#;
    passes_through(Request::post("/v1/embeddings", body));
}

#[test]
fn post_to_a_non_llm_path_passes_through() {
    passes_through(Request::post(
        "/healthz",
        bodies::chat(Some("auto"), TRIVIAL),
    ));
}

#[test]
fn an_llm_path_with_a_query_string_is_still_routed() {
    let stack = Stack::start(&plugin_config::forcing());
    let path = format!("{CHAT}?api-version=2024-10-21");
    let response = stack.send(
        &Request::post(&path, bodies::chat(Some("auto"), TRIVIAL))
            .header(FORCE_TIER_HEADER, "frontier"),
    );
    assert_eq!(response.header("x-mock-tier"), Some("frontier"));
    let (_, received) = stack.only_upstream_request();
    assert_eq!(received.path, path);
    assert_body(&received, &bodies::chat(Some("o3"), TRIVIAL));
}
