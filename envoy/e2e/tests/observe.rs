//! What operators read back: Prometheus metrics with tier and cause labels, exact tokens and costs
//! per tier, one decision record per routed request in the access log, shadow and canary modes, and
//! overrides honoured only for allowed callers.
// The helpers below are test code too (clippy only exempts `#[test]` functions).
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use serde_json::{json, Value};
use triage_core::{Applied, Mode};
use triage_e2e::auth;
use triage_e2e::bodies::{self, CHAT, MESSAGES, NEUTRAL, RESPONSES, TRIVIAL};
use triage_e2e::check::{records, upstream_header};
use triage_e2e::plugin_config::{self, FORCE_TIER_HEADER};
use triage_e2e::{Request, Response, Scrape, Stack, StackOptions, TIERS};

/// The caller the shipped config lets override, as a token the stack's `jwt_authn` verifies.
const ALLOWED_CALLER: &str = "ops-console";
const OVERRIDE_HEADER: &str = "x-triage-override";

fn streamed(body: &str, include_usage: bool) -> String {
    let mut value: Value = serde_json::from_str(body).expect("test body is JSON");
    value["stream"] = json!(true);
    if include_usage {
        value["stream_options"] = json!({"include_usage": true});
    }
    value.to_string()
}

fn forced(path: &str, body: String, tier: &str) -> Request {
    Request::post(path, body).header(FORCE_TIER_HEADER, tier)
}

/// The usage the upstream reported to the client, read here independently of the filter: the JSON
/// body's `usage`, or the last usage found in the SSE events (Anthropic splits it over two events).
fn reported_usage(response: &Response) -> Option<(u64, u64)> {
    let text = response.text();
    let objects: Vec<Value> = if response
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("text/event-stream"))
    {
        text.lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter_map(|data| serde_json::from_str(data).ok())
            .collect()
    } else {
        serde_json::from_str(&text).into_iter().collect()
    };
    let (mut prompt, mut completion) = (None, None);
    for object in objects {
        let usage = [
            object.get("usage"),
            object.pointer("/message/usage"),
            object.pointer("/response/usage"),
        ];
        for usage in usage.into_iter().flatten().filter(|u| u.is_object()) {
            for key in ["prompt_tokens", "input_tokens"] {
                if let Some(n) = usage.get(key).and_then(Value::as_u64) {
                    prompt = Some(n);
                }
            }
            for key in ["completion_tokens", "output_tokens"] {
                if let Some(n) = usage.get(key).and_then(Value::as_u64) {
                    completion = Some(n);
                }
            }
        }
    }
    prompt.zip(completion)
}

/// `(input, output)` USD per million tokens of each tier in a plugin config.
fn prices(config: &Value) -> BTreeMap<String, (f64, f64)> {
    config["tiers"]
        .as_array()
        .expect("tiers")
        .iter()
        .map(|tier| {
            let price = &tier["price"];
            (
                tier["name"].as_str().expect("name").to_owned(),
                (
                    price["input_per_mtok"].as_f64().expect("input price"),
                    price["output_per_mtok"].as_f64().expect("output price"),
                ),
            )
        })
        .collect()
}

/// Records by their decision id, which each response names in `x-triage-decision-id`.
fn by_decision_id(records: Vec<Value>) -> BTreeMap<String, Value> {
    let count = records.len();
    let keyed: BTreeMap<String, Value> = records
        .into_iter()
        .map(|record| {
            (
                record["decision_id"]
                    .as_str()
                    .expect("decision_id")
                    .to_owned(),
                record,
            )
        })
        .collect();
    assert_eq!(keyed.len(), count, "every record has its own decision id");
    keyed
}

fn decision_id(response: &Response) -> String {
    response
        .header("x-triage-decision-id")
        .expect("a decided response names its decision")
        .to_owned()
}

fn request_id(response: &Response) -> String {
    response
        .header("x-request-id")
        .expect("the shipped config returns x-request-id")
        .to_owned()
}

/// What one response says the filter did: (tier, cause kind).
fn decided(response: &Response) -> (String, String) {
    let tier = response
        .header("x-triage-tier")
        .expect("x-triage-tier")
        .to_owned();
    let reason = response.header("x-triage-reason").expect("x-triage-reason");
    let cause = reason.split(':').next().expect("cause").to_owned();
    (tier, cause)
}

#[test]
fn metrics_and_records_add_up_to_the_traffic_sent() {
    let config = plugin_config::forcing();
    let prices = prices(&config);
    let stack = Stack::start(&config);
    let trivial = bodies::chat(Some("auto"), TRIVIAL);
    let allowed = [
        (
            "authorization",
            format!("Bearer {}", auth::token(ALLOWED_CALLER, None)),
        ),
        (OVERRIDE_HEADER, "frontier".to_owned()),
    ];
    let requests = vec![
        forced(CHAT, bodies::chat(Some("auto"), NEUTRAL), "small"),
        forced(
            CHAT,
            bodies::chat(Some("auto"), "Name three colours."),
            "small",
        ),
        forced(CHAT, bodies::chat(Some("auto"), NEUTRAL), "mid"),
        forced(CHAT, bodies::chat(Some("auto"), NEUTRAL), "frontier"),
        forced(
            CHAT,
            streamed(&bodies::chat(Some("auto"), NEUTRAL), true),
            "small",
        ),
        // No include_usage: OpenAI sends no usage, so the tokens are unknown, not zero.
        forced(
            CHAT,
            streamed(&bodies::chat(Some("auto"), NEUTRAL), false),
            "mid",
        ),
        forced(
            RESPONSES,
            bodies::responses(Some("auto"), NEUTRAL),
            "frontier",
        ),
        forced(
            RESPONSES,
            streamed(&bodies::responses(Some("auto"), NEUTRAL), false),
            "small",
        ),
        forced(MESSAGES, bodies::messages(Some("auto"), NEUTRAL), "mid"),
        forced(
            MESSAGES,
            streamed(&bodies::messages(Some("auto"), NEUTRAL), false),
            "frontier",
        ),
        Request::post(CHAT, trivial.clone()),
        allowed
            .iter()
            .fold(Request::post(CHAT, trivial.clone()), |r, (k, v)| {
                r.header(k, v)
            }),
        // Not an allowed caller: the override header is ignored and stripped.
        Request::post(CHAT, trivial.clone()).header(OVERRIDE_HEADER, "frontier"),
        Request::post(CHAT, "{\"model\": \"auto\", \"messages\": [")
            .header("content-type", "application/json"),
        Request::post(CHAT, bodies::chat(Some("gpt-4o"), NEUTRAL)),
    ];
    let responses: Vec<Response> = requests.iter().map(|request| stack.send(request)).collect();

    let mut expected_requests: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut tokens: BTreeMap<(String, &str), f64> = BTreeMap::new();
    let mut cost: BTreeMap<String, f64> = BTreeMap::new();
    let mut top_cost: BTreeMap<String, f64> = BTreeMap::new();
    let mut unknown: BTreeMap<String, f64> = BTreeMap::new();
    for response in &responses {
        let (tier, cause) = decided(response);
        assert_eq!(
            response.header("x-mock-tier"),
            Some(tier.as_str()),
            "served by the decided tier"
        );
        *expected_requests.entry((tier.clone(), cause)).or_default() += 1.0;
        match reported_usage(response) {
            Some((prompt, completion)) => {
                *tokens.entry((tier.clone(), "prompt")).or_default() += prompt as f64;
                *tokens.entry((tier.clone(), "completion")).or_default() += completion as f64;
                let priced = |tier: &str| {
                    let (input, output) = prices[tier];
                    (prompt as f64 * input + completion as f64 * output).round()
                };
                *cost.entry(tier.clone()).or_default() += priced(&tier);
                *top_cost.entry(tier.clone()).or_default() += priced("frontier");
            }
            None => *unknown.entry(tier.clone()).or_default() += 1.0,
        }
    }
    // What the mix must have produced, whatever the arithmetic above says.
    assert_eq!(expected_requests[&("small".into(), "rule".into())], 4.0);
    assert_eq!(
        expected_requests[&("frontier".into(), "override".into())],
        1.0
    );
    assert_eq!(expected_requests[&("small".into(), "scored".into())], 2.0);
    assert_eq!(expected_requests[&("mid".into(), "fail_open".into())], 1.0);
    assert_eq!(
        expected_requests[&("mid".into(), "explicit_model".into())],
        1.0
    );
    assert_eq!(
        unknown.values().sum::<f64>(),
        2.0,
        "the usage-less stream and the 400"
    );

    let scrape = stack.prometheus();
    for ((tier, cause), count) in &expected_requests {
        let labels = [
            ("mode", "enforce"),
            ("tier", tier.as_str()),
            ("cause", cause.as_str()),
        ];
        assert_eq!(
            scrape.sum("triage_requests", &labels),
            *count,
            "requests {labels:?}"
        );
    }
    assert_eq!(scrape.sum("triage_requests", &[]), responses.len() as f64);
    for tier in TIERS {
        for kind in ["prompt", "completion"] {
            let want = tokens.get(&(tier.to_owned(), kind)).copied().unwrap_or(0.0);
            let labels = [("tier", tier), ("kind", kind)];
            assert_eq!(
                scrape.sum("triage_tokens", &labels),
                want,
                "tokens {labels:?}"
            );
        }
        let one = |map: &BTreeMap<String, f64>| map.get(tier).copied().unwrap_or(0.0);
        let tier_label = [("tier", tier)];
        assert_eq!(
            scrape.sum("triage_cost_micro_usd", &tier_label),
            one(&cost),
            "cost {tier}"
        );
        assert_eq!(
            scrape.sum("triage_top_tier_cost_micro_usd", &tier_label),
            one(&top_cost),
            "top-tier cost {tier}"
        );
        assert_eq!(
            scrape.sum("triage_usage_unknown", &tier_label),
            one(&unknown),
            "unknown {tier}"
        );
    }
    assert!(cost.values().sum::<f64>() > 0.0);
    assert_eq!(
        scrape.sum("triage_fail_open", &[("reason", "invalid_json")]),
        1.0
    );
    assert_eq!(scrape.sum("triage_fail_open", &[]), 1.0);
    assert_eq!(
        scrape.sum("triage_overrides", &[("from", "small"), ("to", "frontier")]),
        1.0
    );
    assert_eq!(scrape.sum("triage_overrides", &[]), 1.0);
    // Histograms reach the admin endpoint at Envoy's stats flush (every 5 s by default).
    let scrape = stack.prometheus_when(|scrape| scrape.sum("triage_decision_us_count", &[]) > 0.0);
    assert_eq!(
        scrape.sum("triage_decision_us_count", &[]),
        responses.len() as f64,
        "one decision time per routed request"
    );
    assert_eq!(
        scrape.sum("triage_score_permille_count", &[]),
        3.0,
        "scored requests"
    );

    // The access log: one record per request, agreeing with what the client saw.
    let records = by_decision_id(records(&stack, responses.len()));
    for response in &responses {
        let record = &records[&decision_id(response)];
        assert_eq!(record["request_id"], request_id(response).as_str());
        let (tier, cause) = decided(response);
        assert_eq!(record["v"], triage_core::RECORD_VERSION);
        assert_eq!(record["mode"], "enforce");
        assert_eq!(record["tier"], tier.as_str(), "{record}");
        assert_eq!(record["decided_tier"], tier.as_str());
        assert_eq!(record["cause"], cause.as_str());
        assert_eq!(record["status"], u64::from(response.status));
        match reported_usage(response) {
            Some((prompt, completion)) => {
                assert_eq!(
                    record["usage"],
                    json!({"prompt_tokens": prompt, "completion_tokens": completion})
                );
                let (input, output) = prices[&tier];
                let want = prompt as f64 * input + completion as f64 * output;
                let got = record["cost_micro_usd"].as_f64().expect("cost");
                assert!((got - want).abs() < 1e-6, "cost {got} vs {want}");
            }
            None => {
                assert!(record["usage"].is_null(), "{record}");
                assert!(record["cost_micro_usd"].is_null(), "{record}");
            }
        }
        assert!(record["decision_us"].as_u64().is_some());
    }
    let overridden = records
        .values()
        .find(|record| record["cause"] == "override")
        .expect("the override's record");
    assert_eq!(
        overridden["override"],
        json!({"from": "small", "to": "frontier"})
    );
    assert!(
        overridden["score"].as_f64().is_some(),
        "the automatic score is kept"
    );

    // Overrides are stripped from the upstream request whether honoured or not.
    for (_, received) in stack.received() {
        assert_eq!(upstream_header(&received, OVERRIDE_HEADER), None);
    }
}

#[test]
fn requests_the_filter_does_not_route_are_not_logged() {
    let stack = Stack::start(&plugin_config::shipped());
    let models = stack.send(&Request::get("/v1/models"));
    assert_eq!(models.status, 200);
    let routed = stack.send(&Request::post(CHAT, bodies::chat(Some("auto"), NEUTRAL)));
    assert_eq!(routed.status, 200);
    let records = records(&stack, 1);
    assert_eq!(records[0]["request_id"], request_id(&routed).as_str());
    assert_eq!(records[0]["decision_id"], decision_id(&routed).as_str());
    assert_eq!(
        models.header("x-triage-decision-id"),
        None,
        "not decided, no id"
    );
}

fn shadow_config() -> Value {
    let mut config = plugin_config::shipped();
    config["mode"] = json!("shadow");
    config
}

/// A mix that enforcing would change: rewritten models, tiers other than the default.
fn shadow_mix() -> Vec<Request> {
    vec![
        Request::post(CHAT, bodies::chat(Some("auto"), TRIVIAL)),
        Request::post(CHAT, bodies::chat(Some("auto"), "Prove that 17 is prime.")),
        Request::post(RESPONSES, bodies::responses(Some("auto"), NEUTRAL)),
        Request::post(
            MESSAGES,
            streamed(&bodies::messages(Some("auto"), NEUTRAL), false),
        ),
        Request::post(CHAT, bodies::chat(Some("gpt-4o"), NEUTRAL)),
        Request::post(CHAT, "{\"model\": \"auto\", \"messages\": ["),
    ]
}

/// What one upstream received: tier, method, path, headers, body.
type Exchange = (String, String, String, Vec<(String, String)>, Vec<u8>);

/// Everything the upstream received, minus the id Envoy generates per request.
fn upstream_traffic(stack: &Stack) -> Vec<Exchange> {
    stack
        .received()
        .into_iter()
        .map(|(tier, received)| {
            let headers = received
                .headers
                .into_iter()
                .filter(|(name, _)| name != "x-request-id")
                .collect();
            (tier, received.method, received.path, headers, received.body)
        })
        .collect()
}

#[test]
fn shadow_mode_leaves_upstream_traffic_byte_identical_to_no_filter() {
    let baseline = Stack::start_with(StackOptions::baseline());
    for request in shadow_mix() {
        baseline.send(&request);
    }
    let shadow = Stack::start(&shadow_config());
    let responses: Vec<Response> = shadow_mix().iter().map(|r| shadow.send(r)).collect();
    let enforced = Stack::start(&plugin_config::shipped());
    for request in shadow_mix() {
        enforced.send(&request);
    }

    let without_filter = upstream_traffic(&baseline);
    assert_eq!(
        upstream_traffic(&shadow),
        without_filter,
        "shadow vs no filter"
    );
    assert_ne!(
        upstream_traffic(&enforced),
        without_filter,
        "enforcing this mix changes the upstream traffic, so the comparison above can fail"
    );

    // Decided, recorded and counted all the same.
    let records = by_decision_id(records(&shadow, responses.len()));
    let mut decided_tiers = Vec::new();
    for response in &responses {
        assert_eq!(response.header("x-triage-mode"), Some("shadow"));
        assert_eq!(
            response.header("x-mock-tier"),
            Some("mid"),
            "served by the default route"
        );
        let record = &records[&decision_id(response)];
        let (tier, _) = decided(response);
        assert_eq!(record["mode"], "shadow");
        assert_eq!(record["tier"], "mid");
        assert_eq!(record["decided_tier"], tier.as_str());
        assert!(record["model"].is_null(), "no model written: {record}");
        if let Some((prompt, completion)) = reported_usage(response) {
            let prices = prices(&shadow_config());
            let (input, output) = prices[&tier];
            let want = prompt as f64 * input + completion as f64 * output;
            let got = record["decided_cost_micro_usd"]
                .as_f64()
                .expect("priced effect");
            assert!((got - want).abs() < 1e-6, "decided cost {got} vs {want}");
        }
        decided_tiers.push(tier);
    }
    assert!(
        decided_tiers.iter().any(|tier| tier == "frontier"),
        "{decided_tiers:?}"
    );
    let scrape = shadow.prometheus();
    assert_eq!(
        scrape.sum("triage_requests", &[("mode", "shadow")]),
        responses.len() as f64
    );
    assert_eq!(scrape.sum("triage_requests", &[("mode", "enforce")]), 0.0);
}

#[test]
fn canary_enforces_the_requests_its_hash_picks_and_shadows_the_rest() {
    let mut config = plugin_config::forcing();
    config["mode"] = json!("canary");
    config["canary_percent"] = json!(50);
    let stack = Stack::start(&config);
    let canary = Mode::Canary(50.0);
    let mut seen = BTreeMap::new();
    for _ in 0..40 {
        // One client request id for every request: it plays no part in the draw.
        let request = forced(CHAT, bodies::chat(Some("auto"), NEUTRAL), "small")
            .header("x-request-id", "chosen-by-the-client");
        let response = stack.send(&request);
        let applied = canary.applied(Some(&decision_id(&response)));
        match applied {
            Applied::Enforce => {
                assert_eq!(response.header("x-mock-tier"), Some("small"));
                assert_eq!(response.header("x-triage-mode"), None);
            }
            Applied::Shadow => {
                assert_eq!(response.header("x-mock-tier"), Some("mid"));
                assert_eq!(response.header("x-triage-mode"), Some("shadow"));
            }
        }
        *seen.entry(applied.as_str()).or_insert(0.0) += 1.0;
    }
    assert!(
        seen.len() == 2,
        "40 requests at 50% under one client request id hit both modes: {seen:?}"
    );
    let scrape = stack.prometheus();
    for (mode, count) in &seen {
        assert_eq!(
            scrape.sum("triage_requests", &[("mode", mode)]),
            *count,
            "{mode}"
        );
    }
    let records = records(&stack, 40);
    for record in records {
        let id = record["decision_id"].as_str().expect("decision id");
        assert_eq!(record["mode"], canary.applied(Some(id)).as_str());
    }
}

#[test]
fn labels_come_from_the_shipped_stats_tags() {
    let stack = Stack::start(&plugin_config::shipped());
    stack.send(&Request::post(CHAT, bodies::chat(Some("auto"), NEUTRAL)));
    let scrape: Scrape = stack.prometheus();
    let requests: Vec<_> = scrape.matching("triage_requests", &[]).collect();
    assert_eq!(
        requests.len(),
        2 * TIERS.len() * 5,
        "every mode × tier × cause exists from the start"
    );
    for sample in requests {
        let keys: Vec<&str> = sample.labels.keys().map(String::as_str).collect();
        assert_eq!(keys, ["cause", "mode", "tier"], "{sample:?}");
    }
    for name in [
        "triage_tokens",
        "triage_cost_micro_usd",
        "triage_fail_open",
        "triage_overrides",
    ] {
        assert!(scrape.matching(name, &[]).count() > 0, "{name} exported");
        for sample in scrape.matching(name, &[]) {
            assert!(!sample.name.contains('.'), "{sample:?}");
            assert!(!sample.labels.is_empty(), "{name} has labels");
        }
    }
}

#[test]
fn requests_that_end_without_an_upstream_answer_are_still_recorded() {
    let stack = Stack::start(&plugin_config::forcing());
    // Over Envoy's 8 MiB buffer limit: Envoy answers 413 while the filter is still buffering.
    let huge = bodies::chat(Some("auto"), &"a".repeat(9 * 1024 * 1024));
    let too_large = stack.send(&Request::post(CHAT, huge));
    assert_eq!(too_large.status, 413);

    // The client gives up while the upstream is still thinking.
    let body = bodies::chat(Some("auto"), NEUTRAL);
    let mut socket = std::net::TcpStream::connect(stack.listener()).expect("connect");
    let head = format!(
        "POST {CHAT} HTTP/1.1\r\nhost: triage\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n{FORCE_TIER_HEADER}: small\r\nx-mock-fail: delay=2s\r\n\r\n",
        body.len()
    );
    std::io::Write::write_all(&mut socket, head.as_bytes()).expect("send head");
    std::io::Write::write_all(&mut socket, body.as_bytes()).expect("send body");
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(socket);

    let records = records(&stack, 2);
    let rejected = records
        .iter()
        .find(|record| record["status"] == 413)
        .unwrap_or_else(|| panic!("the 413's record: {records:?}"));
    assert_eq!(rejected["cause"], "fail_open");
    assert_eq!(rejected["fail_open"], "body_too_large");
    let abandoned = records
        .iter()
        .find(|record| record["status"].is_null())
        .unwrap_or_else(|| panic!("the abandoned request's record: {records:?}"));
    assert_eq!(abandoned["tier"], "small");
    assert!(abandoned["usage"].is_null());
    let scrape = stack.prometheus();
    assert_eq!(
        scrape.sum("triage_fail_open", &[("reason", "body_too_large")]),
        1.0
    );
    assert_eq!(scrape.sum("triage_usage_unknown", &[]), 2.0);
}

#[test]
fn the_grafana_dashboard_queries_only_metrics_envoy_exports() {
    let stack = Stack::start(&plugin_config::shipped());
    stack.send(&Request::post(CHAT, bodies::chat(Some("auto"), NEUTRAL)));
    // Histograms appear at the stats flush.
    stack.prometheus_when(|scrape| scrape.sum("triage_decision_us_count", &[]) > 0.0);
    let scrape = stack.admin_get("/stats/prometheus").text();
    let file = std::env::temp_dir().join(format!("triage-scrape-{}.txt", std::process::id()));
    std::fs::write(&file, scrape).expect("write the scrape");
    let root = triage_e2e::paths::repo_root();
    let output = std::process::Command::new("python3")
        .arg(root.join("examples/grafana/check.py"))
        .arg("--metrics")
        .arg(&file)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "dashboard check against a real scrape failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn openai_streams_can_be_asked_for_their_usage() {
    let mut config = plugin_config::forcing();
    config["usage"] = json!({"request_stream_usage": true});
    let stack = Stack::start(&config);
    let body = streamed(&bodies::chat(Some("auto"), NEUTRAL), false);
    let response = stack.send(&forced(CHAT, body, "small"));
    let (prompt, completion) = reported_usage(&response).expect("the stream now ends with usage");
    let sent: Value =
        serde_json::from_slice(&stack.mock("small").received()[0].body).expect("JSON");
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    let record = &records(&stack, 1)[0];
    assert_eq!(
        record["usage"],
        json!({"prompt_tokens": prompt, "completion_tokens": completion})
    );
    assert_eq!(stack.prometheus().sum("triage_usage_unknown", &[]), 0.0);
}
