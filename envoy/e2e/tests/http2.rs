//! Clients speaking HTTP/2 (h2c, the listener's codec is AUTO) are routed like HTTP/1.1 ones, also
//! when the body ends with trailers. Uses curl, and the h2 crate for the trailers.

use std::error::Error;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::net::TcpStream;
use triage_e2e::bodies::{self, CHAT, NEUTRAL};
use triage_e2e::check::{assert_body, upstream_header};
use triage_e2e::plugin_config::{self, FORCE_TIER_HEADER};
use triage_e2e::Stack;

#[test]
fn an_h2c_request_is_routed_and_rewritten() {
    let stack = Stack::start(&plugin_config::forcing());
    let url = format!("http://{}{CHAT}", stack.listener());
    let output = Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-m",
            "20",
            "-D",
            "-",
            "-o",
            "/dev/null",
        ])
        .args(["-H", "content-type: application/json"])
        .args(["-H", &format!("{FORCE_TIER_HEADER}: frontier")])
        .args(["--data-binary", &bodies::chat(Some("auto"), NEUTRAL), &url])
        .output()
        .expect("curl runs");
    let head = String::from_utf8_lossy(&output.stdout).to_ascii_lowercase();
    assert!(
        output.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(head.starts_with("http/2 200"), "response head:\n{head}");
    assert!(
        head.contains("x-mock-tier: frontier"),
        "response head:\n{head}"
    );
    assert!(
        head.contains("x-triage-tier: frontier"),
        "response head:\n{head}"
    );
    let (tier, received) = stack.only_upstream_request();
    assert_eq!(tier, "frontier");
    assert_body(&received, &bodies::chat(Some("o3"), NEUTRAL));
}

type H2Result<T> = Result<T, Box<dyn Error>>;

/// (tier forced, its model, whether the client sends content-length); all on one h2c connection.
const TRAILER_CASES: [(&str, &str, bool); 2] =
    [("frontier", "o3", true), ("small", "gpt-4o-mini", false)];

/// POSTs `body` to the chat endpoint, forced to `tier`, in two DATA frames 50 ms apart, then ends
/// the stream with a HEADERS frame of trailers: the filter sees the end of stream only in
/// `on_http_request_trailers`.
async fn post_with_trailers(
    client: &mut SendRequest<Bytes>,
    addr: SocketAddr,
    body: &str,
    (tier, _, content_length): (&str, &str, bool),
) -> H2Result<(http::response::Parts, Vec<u8>)> {
    let mut request = http::Request::post(format!("http://{addr}{CHAT}"))
        .header("content-type", "application/json")
        .header(FORCE_TIER_HEADER, tier);
    if content_length {
        request = request.header("content-length", body.len());
    }
    let (response, mut stream) = client.send_request(request.body(())?, false)?;
    let (first, second) = body.as_bytes().split_at(body.len() / 2);
    for chunk in [first, second] {
        stream.send_data(Bytes::copy_from_slice(chunk), false)?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut trailers = http::HeaderMap::new();
    trailers.insert("x-e2e-trailer", http::HeaderValue::from_static("end"));
    stream.send_trailers(trailers)?;

    let (head, mut answer) = response.await?.into_parts();
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.data().await {
        let chunk = chunk?;
        answer.flow_control().release_capacity(chunk.len())?;
        bytes.extend_from_slice(&chunk);
    }
    Ok((head, bytes))
}

/// Every case of [`TRAILER_CASES`], one after the other on one h2c (prior knowledge) connection.
async fn posts_with_trailers(
    addr: SocketAddr,
    body: &str,
) -> H2Result<Vec<(http::response::Parts, Vec<u8>)>> {
    let (client, connection) = h2::client::handshake(TcpStream::connect(addr).await?).await?;
    tokio::spawn(connection);
    let mut client = client.ready().await?;
    let mut answers = Vec::new();
    for case in TRAILER_CASES {
        answers.push(post_with_trailers(&mut client, addr, body, case).await?);
    }
    Ok(answers)
}

#[test]
fn an_h2_body_ending_in_trailers_is_routed_and_rewritten() {
    let stack = Stack::start(&plugin_config::forcing());
    let body = bodies::chat(Some("auto"), NEUTRAL);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let answers = runtime
        .block_on(async {
            tokio::time::timeout(
                Duration::from_secs(20),
                posts_with_trailers(stack.listener(), &body),
            )
            .await
        })
        .expect("answered within 20 s")
        .expect("h2 exchange");

    for ((head, answer), (tier, model, content_length)) in answers.iter().zip(TRAILER_CASES) {
        let header = |name: &str| head.headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(
            head.status,
            200,
            "{tier}: {}",
            String::from_utf8_lossy(answer)
        );
        assert_eq!(header("x-mock-tier"), Some(tier));
        assert_eq!(header("x-triage-tier"), Some(tier));
        assert_eq!(
            header("x-triage-reason"),
            Some(format!("rule: force-{tier}").as_str())
        );
        let received = stack.mock(tier).received();
        assert_eq!(received.len(), 1, "{tier} received");
        // With content-length, assert_body also checks the filter rewrote it to the new length.
        assert_body(&received[0], &bodies::chat(Some(model), NEUTRAL));
        assert_eq!(
            upstream_header(&received[0], "content-length").is_some(),
            content_length,
            "{tier}: upstream content-length"
        );
        assert_eq!(upstream_header(&received[0], "x-triage-route"), Some(tier));
    }
    assert_eq!(stack.received().len(), 2, "no request went elsewhere");
    let log = stack.log();
    assert!(
        !log.lines()
            .any(|line| line.contains("wasm log") && line.contains(" failed: ")),
        "the filter logged a failed host call:\n{log}"
    );
}
