//! One client connection of the soak: sends requests one after the other until the end, each with
//! its own request id and the flap's switch when it draws one, and keeps what came back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use triage_learn::rng::SplitMix;

use super::flap::{Failure, Flap};
use super::mix::{Mix, Route, Shape};
use super::outcome::{classify, Outcome};
use crate::http::{Connection, Exchange, Request};
use crate::stack::Stack;

/// The response header carrying the decision's id.
pub const DECISION_ID: &str = "x-triage-decision-id";

/// One request the soak sent, and what its client saw.
#[derive(Clone, Debug)]
pub struct Sent {
    /// Envoy keeps a loopback client's `x-request-id` and the record carries it: the key that
    /// joins a request to its record when no response head brought the decision id.
    pub request_id: String,
    pub shape: Shape,
    /// The failure switch the request carried, if any.
    pub failure: Option<Failure>,
    pub outcome: Outcome,
    /// `x-triage-decision-id` of the response, when a head arrived and had one.
    pub decision_id: Option<String>,
    /// The status of the response head, when one arrived.
    pub head_status: Option<u16>,
    pub latency: Duration,
}

/// Counts shared by the clients, read by the progress line.
#[derive(Default)]
pub struct Progress {
    pub requests: AtomicU64,
    pub errors: AtomicU64,
}

/// What every client shares.
pub struct Traffic<'a> {
    pub stack: &'a Stack,
    pub mix: &'a Mix,
    pub flap: Flap,
    pub start: Instant,
    pub duration: Duration,
    /// The first part of the run, whose memory is not judged.
    pub warm_up: Duration,
    pub progress: &'a Progress,
}

/// Runs client `index` until the soak's end; returns every request it sent.
pub fn run(traffic: &Traffic, index: usize, seed: u64) -> Vec<Sent> {
    let mut rng = SplitMix::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9));
    let mut connection: Option<Connection> = None;
    let mut sent = Vec::new();
    while traffic.start.elapsed() < traffic.duration {
        let warming = traffic.start.elapsed() < traffic.warm_up;
        let shape = traffic.mix.draw(&mut rng, warming);
        let failure = traffic.flap.draw(traffic.start.elapsed(), &mut rng);
        let request_id = format!("soak-{index}-{}", sent.len());
        let request = request(traffic.mix, &shape, failure, &request_id, &mut rng);
        let began = Instant::now();
        let exchange = match connection.as_mut() {
            Some(open) => open.exchange(&request),
            None => match Connection::open(traffic.stack.listener()) {
                Ok(open) => connection.insert(open).exchange(&request),
                Err(error) => {
                    // Envoy refusing connections is an error of this request; don't spin on it.
                    std::thread::sleep(Duration::from_millis(100));
                    Exchange::NoResponse(error)
                }
            },
        };
        let (outcome, head) = classify(&exchange, &shape);
        let keeps_connection = matches!(exchange, Exchange::Complete(_))
            && head.is_some_and(|head| head.header("connection") != Some("close"));
        if !keeps_connection {
            connection = None;
        }
        traffic.progress.requests.fetch_add(1, Ordering::Relaxed);
        if outcome.is_error() {
            traffic.progress.errors.fetch_add(1, Ordering::Relaxed);
        }
        sent.push(Sent {
            request_id,
            shape,
            failure,
            outcome,
            decision_id: head.and_then(|head| head.header(DECISION_ID).map(str::to_owned)),
            head_status: head.map(|head| head.status),
            latency: began.elapsed(),
        });
    }
    sent
}

fn request(
    mix: &Mix,
    shape: &Shape,
    failure: Option<Failure>,
    request_id: &str,
    rng: &mut SplitMix,
) -> Request {
    let mut request =
        Request::post(mix.path(shape), mix.body(shape, rng)).header("x-request-id", request_id);
    if let Some((name, value)) = mix.credential(shape) {
        request = request.header(name, &value);
    }
    if let Route::Override(tier) = shape.route {
        request = request.header("x-triage-override", tier);
    }
    match failure {
        Some(failure) => failure.apply(request),
        None => request,
    }
}
