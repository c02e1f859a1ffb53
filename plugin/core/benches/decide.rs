//! `cargo bench -p triage-core --bench decide`: one full decision on a realistic 4 KB chat request and
//! on a 1 MB one (throughput), and the shipped model's prediction, the hand-made features and the
//! prompt's embedding alone on an already parsed request; and the whole lifecycle of a stream (the
//! machine with its in-memory host: request in 16 KiB chunks, the decision, the rewrite, a JSON
//! answer read for usage and checked, the record settled) with the shipped plugin config, beside
//! `decide` alone on the same bytes with that config.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::rc::Rc;

use triage_core::embed::Embedder;
use triage_core::lifecycle::exchange::{run, Answer, ClientRequest, HostSettings, Reply, Sent};
use triage_core::lifecycle::MemoryBreakers;
use triage_core::{decide, parse_request, ApiFormat, Config, Features, Model, RequestHead};

const SYSTEM: &str = "You are a senior backend engineer helping a team that runs a payments platform. \
Answer precisely, show code when it helps, and say when you are unsure. Prefer Rust and PostgreSQL. \
Keep answers under 400 words unless asked for more.";

const HISTORY: &[(&str, &str)] = &[
    (
        "user",
        "We see intermittent timeouts when the ledger service writes to Postgres under load. \
         The p99 latency jumps from 40 ms to 2.5 s for about a minute, then recovers. What should we look at first?",
    ),
    (
        "assistant",
        "Start with lock contention and connection-pool saturation. Check pg_stat_activity for sessions \
         waiting on locks during the spikes, and compare the pool's max size with the number of concurrent \
         requests. Autovacuum on the ledger table and checkpoints can also cause periodic stalls; look at \
         pg_stat_bgwriter and the checkpoint logs. If the spikes line up with batch jobs, the jobs may hold \
         row locks that the online writes wait for.",
    ),
    (
        "user",
        "The spikes line up with the nightly reconciliation job. It updates balances in one big \
         transaction. Could that be it?",
    ),
    (
        "assistant",
        "Very likely. A single transaction that updates many account rows holds their row locks until \
         it commits, so every online payment touching one of those accounts waits, and the pool fills \
         with waiting connections; new requests then time out waiting for a connection rather than for \
         the lock itself. Three things would confirm it: pg_locks during the spike should show many \
         sessions waiting on transactionid locks held by the job's backend; the job's transaction should \
         start right before the spike and commit right before recovery; and the pool's wait-time metric \
         should rise with it. Typical fixes are to commit in small batches, to take locks in a fixed \
         order, and to move the job to a replica where it only reads, writing back small deltas. \
         Batching changes the job's semantics, so check what atomicity the business actually needs: \
         per account, per day, or for the whole run. Also look at whether the job reads with \
         SELECT ... FOR UPDATE: that locks rows before they are written, widening the window further. \
         If you share the code, I can point at the exact statements.",
    ),
    (
        "user",
        "Before the code: our pool is HikariCP-style with max 50 connections per instance, 6 \
         instances, and Postgres max_connections is 400. The job runs as a separate Kubernetes CronJob \
         with its own pool of 10. Statement timeout is 30 s, lock_timeout is unset, and we run \
         PostgreSQL 15 on a 16-vCPU instance with 64 GB of RAM. Autovacuum settings are the defaults.",
    ),
];

const LAST_USER: &str = "Here is the job's main loop:\n\n```rust\nasync fn reconcile(pool: &PgPool, day: Date) -> Result<()> {\n    let mut tx = pool.begin().await?;\n    let rows = sqlx::query_as::<_, Entry>(\"SELECT * FROM entries WHERE day = $1 FOR UPDATE\")\n        .bind(day)\n        .fetch_all(&mut *tx)\n        .await?;\n    for row in rows {\n        let balance = compute_balance(&row)?;\n        sqlx::query(\"UPDATE accounts SET balance = $1 WHERE id = $2\")\n            .bind(balance)\n            .bind(row.account_id)\n            .execute(&mut *tx)\n            .await?;\n    }\n    tx.commit().await?;\n    Ok(())\n}\n```\n\nThe entries table has about 3 million rows per day and accounts has 400k rows. \
Online payments update the same accounts rows. We must keep the reconciliation atomic per account, but \
not necessarily for the whole day. Explain why this design blocks the online writes, then propose a \
redesign step by step: batching, lock ordering to avoid deadlocks, and how to make the job restartable \
if it crashes halfway. Compare at least two approaches and discuss the trade-offs in latency, \
consistency and operational complexity. Also estimate how long each approach would take for 3 million \
rows if a single UPDATE takes 0.2 ms.";

fn chat_request(filler_bytes: usize) -> Vec<u8> {
    let mut messages = vec![serde_json::json!({"role": "system", "content": SYSTEM})];
    for (role, content) in HISTORY {
        messages.push(serde_json::json!({"role": role, "content": content}));
    }
    let mut last = String::new();
    if filler_bytes > 0 {
        let paragraph = "Log excerpt: 2024-05-03T02:14:07Z ledger-writer WARN slow query (2310 ms): \
            UPDATE accounts SET balance = $1 WHERE id = $2; waiting for ShareLock on transaction 88123941. ";
        last.push_str("Attached the logs of last night first.\n");
        while last.len() < filler_bytes {
            last.push_str(paragraph);
        }
        last.push_str("\n\n");
    }
    last.push_str(LAST_USER);
    messages.push(serde_json::json!({"role": "user", "content": last}));
    serde_json::json!({"model": "auto", "max_tokens": 2048, "messages": messages})
        .to_string()
        .into_bytes()
}

fn bench(c: &mut Criterion) {
    let config = Config::default();
    let head = RequestHead {
        format: ApiFormat::OpenAiChat,
        path: "/v1/chat/completions",
        headers: &[],
        identity: triage_core::Identity::ANONYMOUS,
    };
    let small = chat_request(0);
    let large = chat_request(1 << 20);

    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_function(format!("chat_{}_bytes", small.len()), |b| {
        b.iter(|| decide(black_box(&config), &head, black_box(&small)))
    });
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.sample_size(20);
    group.bench_function(format!("chat_{}_bytes", large.len()), |b| {
        b.iter(|| decide(black_box(&config), &head, black_box(&large)))
    });
    group.finish();

    let cap = config.max_scan_bytes();
    let model = Model::shipped();
    let mut group = c.benchmark_group("parsed_4k");
    if let Ok(request) = parse_request(ApiFormat::OpenAiChat, &small) {
        group.bench_function("shipped_model_predict", |b| {
            b.iter(|| model.predict(black_box(&request), cap))
        });
        group.bench_function("features_only", |b| {
            b.iter(|| Features::extract(black_box(&request), cap))
        });
        if let Ok(embedder) = Embedder::shipped() {
            group.bench_function("embedding_only", |b| {
                b.iter(|| embedder.embed_request(black_box(&request)))
            });
        }
    }
    group.bench_function("parse_only", |b| {
        b.iter(|| parse_request(ApiFormat::OpenAiChat, black_box(&small)).is_ok())
    });
    group.finish();
}

/// The plugin config the shipped stack runs (prices, records with bodies, escalation with checks).
fn shipped_config() -> Config {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../envoy/plugin-config.json"
    );
    let json = std::fs::read(path).unwrap_or_default();
    Config::from_json(&json).unwrap_or_default()
}

fn bench_lifecycle(c: &mut Criterion) {
    let config = Rc::new(shipped_config());
    let head = RequestHead {
        format: ApiFormat::OpenAiChat,
        path: "/v1/chat/completions",
        headers: &[],
        identity: triage_core::Identity::ANONYMOUS,
    };
    let answer = serde_json::json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Batch per account."},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 5}
    })
    .to_string();
    let mut upstreams =
        |_: &Sent| Reply::Answer(Answer::new(200, "application/json", answer.clone()));
    let settings = HostSettings::default();
    let mut group = c.benchmark_group("lifecycle");
    for filler in [0, 28 << 10] {
        let body = chat_request(filler);
        let request = ClientRequest {
            headers: vec![
                (":method".into(), "POST".into()),
                (":path".into(), "/v1/chat/completions".into()),
                (":authority".into(), "llm.example".into()),
                ("content-type".into(), "application/json".into()),
                ("content-length".into(), body.len().to_string()),
            ],
            body: body.clone(),
            trailers: false,
        };
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("exchange_{}_bytes", body.len()), |b| {
            b.iter(|| {
                let breakers = Rc::new(MemoryBreakers::new(&config));
                run(
                    &config,
                    breakers,
                    black_box(&request),
                    &mut upstreams,
                    &settings,
                )
            })
        });
        group.bench_function(format!("decide_{}_bytes", body.len()), |b| {
            b.iter(|| decide(black_box(&config), &head, black_box(&body)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_lifecycle);
criterion_main!(benches);
