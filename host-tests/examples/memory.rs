//! The module's linear memory over 100k requests of mixed sizes on one VM: it must plateau.
//!
//! cargo run --release -p triage-host --example memory

use std::time::Instant;
use triage_host::bodies::chat_body_of_size;
use triage_host::Host;

const CHECKPOINTS: [usize; 5] = [1_000, 10_000, 50_000, 100_000, 0];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Mostly small and medium bodies, a 256 KB one every 100 requests, a 1 MB one every 1000.
    let sizes = [200, 1 << 10, 2 << 10, 4 << 10, 8 << 10, 32 << 10];
    let bodies: Vec<String> = sizes.iter().map(|&size| chat_body_of_size(size)).collect();
    let large = chat_body_of_size(256 << 10);
    let huge = chat_body_of_size(1 << 20);
    let mut host = Host::start("")?;
    println!("after start: {} KiB", host.memory_bytes() / 1024);
    let started = Instant::now();
    let mut next_checkpoint = 0;
    for n in 1..=100_000usize {
        let body = match n {
            n if n % 1000 == 0 => &huge,
            n if n % 100 == 0 => &large,
            n => &bodies[n % bodies.len()],
        };
        let length = body.len().to_string();
        let headers = [
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            ("content-length", length.as_str()),
        ];
        let mut stream = host.request()?;
        stream.send_request_headers(&headers, false)?;
        let frames = body.len().div_ceil(16 << 10);
        for (index, frame) in body.as_bytes().chunks(16 << 10).enumerate() {
            stream.send_request_body(frame, index + 1 == frames)?;
        }
        stream.finish()?;
        if n == CHECKPOINTS[next_checkpoint] {
            println!(
                "after {n:>6} requests: {:>6} KiB linear memory ({:.1?})",
                host.memory_bytes() / 1024,
                started.elapsed()
            );
            next_checkpoint += 1;
        }
    }
    Ok(())
}
