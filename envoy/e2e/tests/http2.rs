//! Clients speaking HTTP/2 (h2c, the listener's codec is AUTO) are routed like HTTP/1.1 ones.
//! Uses curl, which this harness otherwise does not need.

use std::process::Command;

use triage_e2e::bodies::{self, CHAT, NEUTRAL};
use triage_e2e::check::assert_body;
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
