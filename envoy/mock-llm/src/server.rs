use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::fail::{Failure, Injected, Outcome};
use crate::reply::{self, Reply, ReplyBody};

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Counts accepted TCP connections from 1, per server: equal ids mean one (keep-alive) connection.
    pub conn_id: u64,
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Lowercase names, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A mock tier listening on its own thread with its own current-thread tokio runtime.
/// Dropping it stops the server and closes its connections.
pub struct MockServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

struct ServerState {
    tier: String,
    tier_header: HeaderValue,
    log_requests: bool,
    /// Whether [`MockServer::received`] keeps each request, bodies included; the count is kept
    /// either way.
    keep_requests: bool,
    received: Mutex<ReceivedLog>,
}

#[derive(Default)]
struct ReceivedLog {
    count: usize,
    kept: Vec<Received>,
}

impl MockServer {
    /// Binds `addr` (e.g. "127.0.0.1:0") before returning, so [`MockServer::addr`] is the real port.
    pub fn start(tier: &str, addr: &str) -> io::Result<MockServer> {
        Self::launch(tier, addr, false, true)
    }

    /// Like [`MockServer::start`], but only counts requests ([`MockServer::received`] stays empty):
    /// for long runs, whose request bodies would otherwise pile up in memory.
    pub fn start_counting(tier: &str, addr: &str) -> io::Result<MockServer> {
        Self::launch(tier, addr, false, false)
    }

    /// Logs one line per request to stderr and only counts requests, like
    /// [`MockServer::start_counting`]: the binary runs as long as a stack does, and nobody reads
    /// what it received.
    pub fn start_logged(tier: &str, addr: &str) -> io::Result<MockServer> {
        Self::launch(tier, addr, true, false)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn tier(&self) -> &str {
        &self.state.tier
    }

    /// All requests so far, in arrival order (none for a server that only counts).
    pub fn received(&self) -> Vec<Received> {
        self.state.received_lock().kept.clone()
    }

    /// How many requests it received so far, failed ones included.
    pub fn received_count(&self) -> usize {
        self.state.received_lock().count
    }

    fn launch(
        tier: &str,
        addr: &str,
        log_requests: bool,
        keep_requests: bool,
    ) -> io::Result<MockServer> {
        let tier_header = HeaderValue::from_str(tier).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tier name {tier:?} is not a valid header value"),
            )
        })?;
        let listener = StdTcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let bound = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let state = Arc::new(ServerState {
            tier: tier.to_owned(),
            tier_header,
            log_requests,
            keep_requests,
            received: Mutex::new(ReceivedLog::default()),
        });
        let (shutdown, stop) = oneshot::channel();
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("mock-llm-{tier}"))
            .spawn(move || runtime.block_on(serve(listener, thread_state, stop)))?;
        Ok(MockServer {
            addr: bound,
            state,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl ServerState {
    fn received_lock(&self) -> std::sync::MutexGuard<'_, ReceivedLog> {
        // A poisoned lock only means a test thread panicked while reading; the list is still whole.
        self.received.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts (and keeps, unless only counting) the request and returns its 1-based position,
    /// used to make response ids unique.
    fn record(&self, received: Received) -> usize {
        let mut log = self.received_lock();
        log.count += 1;
        if self.keep_requests {
            log.kept.push(received);
        }
        log.count
    }
}

/// Accepts until `stop` fires; returning drops the runtime, which ends every connection task.
async fn serve(listener: StdTcpListener, state: Arc<ServerState>, mut stop: oneshot::Receiver<()>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("mock-llm [{}]: cannot listen: {error}", state.tier);
            return;
        }
    };
    let mut last_conn_id = 0u64;
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    eprintln!("mock-llm [{}]: accept failed: {error}", state.tier);
                    continue;
                }
            },
        };
        last_conn_id += 1;
        let conn_id = last_conn_id;
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(Arc::clone(&state), conn_id, request));
            // Errors here are clients going away mid-request; the request log tells the story.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Records the request, then applies its `x-mock-fail` switches: the delay, then a reset (an error
/// from the service makes hyper close the connection without a response) or a reply.
async fn handle(
    state: Arc<ServerState>,
    conn_id: u64,
    request: Request<Incoming>,
) -> Result<Response<ReplyBody>, Injected> {
    let (head, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let reply = reply::bad_request(&format!("mock-llm: reading the body failed: {error}"));
            return Ok(response(&state, conn_id, reply));
        }
    };
    let received = Received {
        conn_id,
        method: head.method.as_str().to_owned(),
        path: head
            .uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_owned(),
        headers: head
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: body.to_vec(),
    };
    let failure = Failure::from_headers(
        &state.tier,
        received
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    let (method, path) = (received.method.clone(), received.path.clone());
    let sequence = state.record(received);
    let log = |model: Option<&str>, outcome: &str, note: &str| {
        if state.log_requests {
            eprintln!(
                "mock-llm tier={} conn={conn_id} {method} {path} model={} body_bytes={} status={outcome}{note}",
                state.tier,
                model.unwrap_or("-"),
                body.len(),
            );
        }
    };
    let failure = match failure {
        Ok(failure) => failure,
        Err(message) => {
            let reply = reply::bad_request(&message);
            log(None, reply.status.as_str(), &format!(" error={message:?}"));
            return Ok(response(&state, conn_id, reply));
        }
    };
    let note = if failure.is_none() {
        String::new()
    } else {
        format!(" fail={failure}")
    };
    if let Some(delay) = failure.delay {
        tokio::time::sleep(delay).await;
    }
    if failure.outcome == Outcome::Reset {
        log(None, "reset", &note);
        return Err(Injected("reset"));
    }
    let reply = reply::reply(&state.tier, &method, &path, &body, sequence, &failure);
    log(reply.model.as_deref(), reply.status.as_str(), &note);
    Ok(response(&state, conn_id, reply))
}

fn response(state: &ServerState, conn_id: u64, reply: Reply) -> Response<ReplyBody> {
    let mut response = Response::new(reply.body);
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    headers.insert("x-mock-tier", state.tier_header.clone());
    headers.insert("x-mock-conn", HeaderValue::from(conn_id));
    for (name, value) in reply.headers {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
