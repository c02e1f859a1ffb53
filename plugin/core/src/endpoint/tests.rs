use super::*;

const CHAT: &str = "/v1/chat/completions";

fn format_of(path: &str) -> Option<ApiFormat> {
    Endpoint::of("POST", path).map(|endpoint| endpoint.format)
}

#[test]
fn the_three_endpoints_are_found_as_spelled() {
    for format in ApiFormat::ALL {
        let endpoint = Endpoint::of("POST", format.path());
        assert_eq!(
            endpoint,
            Some(Endpoint {
                format,
                path: format.path().to_string(),
            })
        );
    }
}

#[test]
fn every_spelling_an_upstream_may_resolve_to_an_endpoint_is_that_endpoint() {
    let cases = [
        "/v1/chat/completions/",
        "/v1//chat/completions",
        "//v1/chat//completions//",
        "/v1/./chat/completions",
        "/v1/x/../chat/completions",
        "/v1/x/%2e%2E/chat/completions",
        "/../v1/chat/completions",
        "/v1/chat/completions/.",
        "/v1%2Fchat%2fcompletions",
        "/v1%5Cchat%5ccompletions",
        "/v1\\chat\\completions",
        "/v1/chat/%63ompletions",
        "/V1/Chat/Completions",
        "/V1/CHAT/COMPLETIONS/",
        "/v1/chat/completions;jsessionid=1",
        "/v1/chat;x/completions",
        "/v1/x;y/..;z/chat/completions",
        "/v1/chat/completions#fragment",
    ];
    for path in cases {
        let endpoint = Endpoint::of("POST", path);
        assert_eq!(
            endpoint.as_ref().map(|e| (e.format, e.path.as_str())),
            Some((ApiFormat::OpenAiChat, CHAT)),
            "{path}"
        );
    }
    assert_eq!(
        format_of("/V1/Responses/"),
        Some(ApiFormat::OpenAiResponses)
    );
    assert_eq!(
        format_of("/v1//messages"),
        Some(ApiFormat::AnthropicMessages)
    );
}

#[test]
fn the_query_string_is_kept_and_the_fragment_dropped() {
    let cases = [
        (
            "/v1/chat/completions?api-version=1",
            "/v1/chat/completions?api-version=1",
        ),
        (
            "/V1/Chat/Completions/?a=%2F&b=../c",
            "/v1/chat/completions?a=%2F&b=../c",
        ),
        ("/v1/chat/completions?", "/v1/chat/completions?"),
        (
            "/v1/chat/completions?x=1#frag?y",
            "/v1/chat/completions?x=1",
        ),
        ("/v1/chat/completions#frag?y=1", "/v1/chat/completions"),
    ];
    for (path, expected) in cases {
        let endpoint = Endpoint::of("POST", path);
        assert_eq!(
            endpoint.map(|endpoint| endpoint.path),
            Some(expected.to_string()),
            "{path}"
        );
    }
}

#[test]
fn other_paths_and_methods_are_not_llm_calls() {
    let cases = [
        ("GET", CHAT),
        ("post", CHAT),
        ("PUT", CHAT),
        ("POST", "/v1/models"),
        ("POST", "/v1/embeddings"),
        ("POST", "/v1/messages/count_tokens"),
        ("POST", "/v1/messages/batches"),
        ("POST", "/v1/responses/resp_123/cancel"),
        ("POST", "/v1/chat/completions/chatcmpl-123"),
        ("POST", "/v1/chat/completions/.."),
        ("POST", "/v2/chat/completions"),
        ("POST", "/chat/completions"),
        ("POST", "/x/v1/chat/completions"),
        ("POST", "/v1/chat/completions%20"),
        ("POST", "/v1/chat/completions%3Fx=1"),
        ("POST", "/v1/chat/completions%2"),
        ("POST", "/v1/chat/completionsx"),
        ("POST", "/v1/chat%252Fcompletions"),
        ("POST", ""),
        ("POST", "*"),
        ("POST", "/"),
    ];
    for (method, path) in cases {
        assert_eq!(Endpoint::of(method, path), None, "{method} {path}");
    }
}

#[test]
fn percent_decoding_keeps_what_is_not_an_escape() {
    assert_eq!(percent_decode(b"a%2Fb%2fc"), b"a/b/c");
    assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
    assert_eq!(percent_decode(b"%%41"), b"%A");
    assert_eq!(percent_decode(b"%ff%00"), [0xff, 0x00]);
    assert_eq!(percent_decode(b""), b"");
}

#[test]
fn arbitrary_paths_never_panic() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let alphabet = b"/\\.;%?#aAvV1cC2fF5e";
    for _ in 0..20_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let length = (state % 24) as usize;
        let path: String = (0..length)
            .map(|i| {
                let pick = (state >> (i % 50)) as usize % alphabet.len();
                char::from(alphabet[pick])
            })
            .collect();
        let _ = Endpoint::of("POST", &path);
    }
    let _ = Endpoint::of("POST", "/v1/%e2%82/chat\u{1F600}/completions");
}
