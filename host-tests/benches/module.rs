//! Time per request through the compiled module, beside the same decision made natively.
//!
//! `wasm`: one whole stream as Envoy drives it (context created, headers, the body in 16 KiB data
//! frames, the decision, on_done/on_log/on_delete), on a warm VM. `native`: `triage_core::decide`
//! on the same bytes.

// A benchmark that fails should stop loudly.
#![allow(clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use triage_core::{decide, ApiFormat, Config, RequestHead};
use triage_host::bodies::chat_body_of_size;
use triage_host::Host;

const SIZES: [(usize, &str); 5] = [
    (1 << 10, "1KB"),
    (4 << 10, "4KB"),
    (32 << 10, "32KB"),
    (256 << 10, "256KB"),
    (1 << 20, "1MB"),
];
const FRAME: usize = 16 << 10;

fn through_module(host: &mut Host, headers: &[(&str, &str)], body: &[u8]) {
    let mut stream = host.request().unwrap();
    stream.send_request_headers(headers, false).unwrap();
    let frames = body.len().div_ceil(FRAME);
    for (index, frame) in body.chunks(FRAME).enumerate() {
        stream
            .send_request_body(frame, index + 1 == frames)
            .unwrap();
    }
    assert!(stream.upstream_header("x-triage-tier").is_some());
    stream.finish().unwrap();
}

fn per_request(c: &mut Criterion) {
    let config = Config::from_json(b"").unwrap();
    let mut host = Host::start("").unwrap();
    let mut group = c.benchmark_group("request");
    for (size, label) in SIZES {
        let body = chat_body_of_size(size);
        let length = body.len().to_string();
        let headers = [
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "llm.example"),
            ("content-type", "application/json"),
            ("content-length", length.as_str()),
        ];
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("wasm", label), &body, |b, body| {
            b.iter(|| through_module(&mut host, &headers, body.as_bytes()))
        });
        let head = RequestHead {
            format: ApiFormat::OpenAiChat,
            path: "/v1/chat/completions",
            headers: &[],
            identity: triage_core::Identity::ANONYMOUS,
        };
        group.bench_with_input(BenchmarkId::new("native", label), &body, |b, body| {
            b.iter(|| decide(&config, &head, black_box(body.as_bytes())))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = per_request
}
criterion_main!(benches);
