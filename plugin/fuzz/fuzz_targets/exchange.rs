//! A whole exchange through the lifecycle machine (`triage_core::lifecycle::exchange::run`: the
//! host in memory with Envoy's buffering, local replies and resets) on any request body and any
//! answers from the three tiers (`triage_fuzz::stream::ExchangeScript`), run with each body whole
//! and again cut into chunks of 1 to 64 bytes. The two runs give the same exchange: the request the
//! route table sent on, the calls, what the client got and the record; and the host never had to
//! refuse an effect (a request header written after the headers went on, a body replaced that is no
//! longer held). Streams are held whole (`StreamHold::Whole`): a stream released early is judged
//! a chunk at a time by design.
//!
//! Its own target rather than a mode of `lifecycle`: its input is a request and three answers, not
//! an event script, so each target's corpus stays one shape that mutations keep meaningful.
#![no_main]

use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use triage_core::lifecycle::exchange::{
    run, Answer, ClientRequest, HostSettings, Outcome, Reply, Sent,
};
use triage_core::lifecycle::MemoryBreakers;
use triage_core::Config;
use triage_fuzz::input::{InputReader, Script};
use triage_fuzz::stream::{stream_config, ExchangeScript, StreamHold, PATHS};

fuzz_target!(|data: &[u8]| {
    let script = ExchangeScript::read(&mut InputReader::new(data));
    let config = stream_config(script.setup, StreamHold::Whole);
    let request = client_request(&script);
    let whole = exchange(&config, &request, &script, usize::MAX);
    let chunked = exchange(&config, &request, &script, script.chunk_bytes);
    let chunking = format!("in chunks of {}", script.chunk_bytes);
    assert_eq!(chunked.routed, whole.routed, "{chunking}");
    assert_eq!(chunked.calls, whole.calls, "{chunking}");
    assert_eq!(chunked.response, whole.response, "{chunking}");
    assert_eq!(
        chunked.record.map(|record| record.to_json()),
        whole.record.map(|record| record.to_json()),
        "{chunking}"
    );
});

fn client_request(script: &ExchangeScript) -> ClientRequest {
    let path = script.path.resolve(&PATHS).unwrap_or_default();
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), path.into_owned()),
        (":authority".to_string(), "gateway".to_string()),
        ("content-type".to_string(), "application/json".to_string()),
        ("x-request-id".to_string(), "req-1".to_string()),
    ];
    if script.content_length {
        headers.push(("content-length".to_string(), script.body.len().to_string()));
    }
    ClientRequest {
        headers,
        body: script.body.clone(),
        trailers: script.trailers,
    }
}

/// One run, with fresh breakers (both runs start from the same state) and the clock standing still
/// (a moving clock would tell the runs apart by how many callbacks each took).
fn exchange(
    config: &Rc<Config>,
    request: &ClientRequest,
    script: &ExchangeScript,
    chunk_bytes: usize,
) -> Outcome {
    let breakers = Rc::new(MemoryBreakers::new(config));
    let mut upstreams = |sent: &Sent| {
        let tier = (0..script.replies.len())
            .find(|tier| config.tier_cluster(*tier) == Some(sent.cluster.as_str()));
        let Some(answer) = tier.and_then(|tier| script.replies[tier].as_ref()) else {
            return Reply::Reset;
        };
        Reply::Answer(Answer {
            // An unreadable status is an answer Envoy would not pass: a 502 stands for it.
            status: answer
                .status()
                .and_then(|status| status.parse().ok())
                .unwrap_or(502),
            headers: answer.headers(),
            body: answer.body.clone(),
        })
    };
    let settings = HostSettings {
        chunk_bytes: vec![chunk_bytes],
        ..HostSettings::default()
    };
    let outcome = run(config, breakers, request, &mut upstreams, &settings);
    assert!(
        outcome.refused.is_empty(),
        "the host refused {:?} in chunks of {chunk_bytes}",
        outcome.refused
    );
    outcome
}
