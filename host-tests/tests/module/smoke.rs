use crate::common::*;
use std::time::Instant;

#[test]
fn a_chat_request_is_routed() {
    let started = Instant::now();
    let mut host = host();
    eprintln!("start: {:?}", started.elapsed());
    let body = chat_body("auto", SIMPLE);
    let mut stream = host.request().unwrap();
    let actions = send(&mut stream, CHAT, body.as_bytes(), &[body.len()]);
    eprintln!("{actions:?} {:?}", stream.upstream_headers());
    eprintln!("{}", String::from_utf8_lossy(stream.upstream_body()));
    eprintln!("{:?}", stream.host().logs());
}
