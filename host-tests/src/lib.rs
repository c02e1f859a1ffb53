//! A proxy-wasm host on wasmtime that drives the exact `triage.wasm` Envoy runs, the way Envoy 1.40
//! drives it, so every callback path can be tested and measured without Envoy.
//!
//! Tests are state-based: start a [`Host`] with a plugin config, open a [`Stream`], send headers, a
//! body in any chunking and trailers, then look at what the upstream and the client would receive,
//! whether the route was recomputed, the logs and the metrics. The module is compiled once per
//! process; every host is a fresh instance, so tests run in parallel.

mod abi;
pub mod bodies;
mod engine;
mod state;

pub use abi::Status;
pub use engine::{route_with_module, ModuleDecision, ModuleRouter};
pub use state::{HeaderMap, HttpCall, HttpResponse, LogLine, SharedData};

use state::{Phase, State, StreamSide};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex, OnceLock};
use wasmtime::{Engine, InstancePre, Linker, Module, Store, TypedFunc};

/// `TRIAGE_WASM`, else `<repo>/target/wasm32-wasip1/release/triage.wasm` (as envoy/e2e finds it).
pub fn default_wasm_path() -> PathBuf {
    std::env::var_os("TRIAGE_WASM").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip1/release/triage.wasm")
        },
        PathBuf::from,
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl LogLevel {
    fn from_abi(level: i32) -> Self {
        match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Critical,
        }
    }
}

/// What a filter callback returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// StopIteration (headers, trailers) or StopIterationAndBuffer (body).
    Pause,
    /// Any other value (the StopAll variants Envoy maps Pause to without
    /// `allow_on_headers_stop_iteration`).
    Other(i32),
}

impl Action {
    fn from_abi(value: i32) -> Self {
        match value {
            0 => Action::Continue,
            1 => Action::Pause,
            other => Action::Other(other),
        }
    }
}

/// A reply the filter sent with `proxy_send_local_response`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub grpc_status: Option<u32>,
}

pub enum HostError {
    /// The .wasm could not be read, compiled or instantiated.
    Load(String),
    /// `proxy_on_vm_start` returned false.
    VmStartRefused { logs: Vec<LogLine> },
    /// `proxy_on_configure` returned false: Envoy rejects such a config.
    ConfigRefused { logs: Vec<LogLine> },
    /// The module trapped; `panic` is the message the module logged at critical level just before.
    Trap {
        callback: String,
        trap: String,
        panic: Option<String>,
    },
    /// An earlier trap took the VM down; Envoy would answer 503 or reload it.
    VmFailed { callback: String },
    /// The test drove the stream in an order Envoy never would.
    Misuse(String),
}

impl HostError {
    /// The log lines of a refused start, empty for other errors.
    pub fn logs(&self) -> &[LogLine] {
        match self {
            HostError::VmStartRefused { logs } | HostError::ConfigRefused { logs } => logs,
            _ => &[],
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Load(message) => write!(f, "loading the module: {message}"),
            HostError::VmStartRefused { logs } => {
                write!(f, "proxy_on_vm_start returned false; logs: {logs:?}")
            }
            HostError::ConfigRefused { logs } => {
                write!(f, "proxy_on_configure refused the config; logs: {logs:?}")
            }
            HostError::Trap {
                callback,
                trap,
                panic,
            } => match panic {
                Some(panic) => write!(
                    f,
                    "{callback} trapped after the module panicked: {panic} ({trap})"
                ),
                None => write!(f, "{callback} trapped: {trap}"),
            },
            HostError::VmFailed { callback } => {
                write!(f, "{callback}: the VM failed earlier and was not reloaded")
            }
            HostError::Misuse(message) => write!(f, "host misuse: {message}"),
        }
    }
}

impl fmt::Debug for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for HostError {}

struct Loaded {
    pre: InstancePre<State>,
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(Engine::default)
}

/// Compiles each .wasm once per process (holding the lock, so parallel tests wait instead of
/// compiling it again) and links it once.
fn load(path: &Path) -> Result<Arc<Loaded>, HostError> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<Loaded>>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| HostError::Load("a thread panicked while compiling the module".into()))?;
    if let Some(found) = loaded.get(path) {
        return Ok(Arc::clone(found));
    }
    let bytes = std::fs::read(path).map_err(|error| {
        HostError::Load(format!(
            "{}: {error} (build it: cargo build --release --target wasm32-wasip1 -p triage-filter, or set TRIAGE_WASM)",
            path.display()
        ))
    })?;
    let load_error =
        |error: wasmtime::Error| HostError::Load(format!("{}: {error:?}", path.display()));
    let module = Module::new(engine(), &bytes).map_err(load_error)?;
    let mut linker = Linker::new(engine());
    abi::link(&mut linker, &module).map_err(load_error)?;
    let pre = linker.instantiate_pre(&module).map_err(load_error)?;
    let found = Arc::new(Loaded { pre });
    loaded.insert(path.to_path_buf(), Arc::clone(&found));
    Ok(found)
}

/// (context, token, headers, body size, trailers)
type HttpCallResponseFunc = TypedFunc<(i32, i32, i32, i32, i32), ()>;

struct Exports {
    on_context_create: TypedFunc<(i32, i32), ()>,
    on_vm_start: TypedFunc<(i32, i32), i32>,
    on_configure: TypedFunc<(i32, i32), i32>,
    on_request_headers: TypedFunc<(i32, i32, i32), i32>,
    on_request_body: TypedFunc<(i32, i32, i32), i32>,
    on_request_trailers: TypedFunc<(i32, i32), i32>,
    on_response_headers: TypedFunc<(i32, i32, i32), i32>,
    on_response_body: TypedFunc<(i32, i32, i32), i32>,
    on_response_trailers: TypedFunc<(i32, i32), i32>,
    on_done: TypedFunc<i32, i32>,
    on_log: TypedFunc<i32, ()>,
    on_delete: TypedFunc<i32, ()>,
    on_tick: Option<TypedFunc<i32, ()>>,
    on_http_call_response: Option<HttpCallResponseFunc>,
}

/// How to start a host; `Host::start` uses the defaults.
#[derive(Clone, Debug)]
pub struct HostOptions {
    wasm: PathBuf,
    vm_configuration: Vec<u8>,
    properties: Vec<(Vec<u8>, Vec<u8>)>,
    http_responses: Vec<(String, HttpResponse)>,
    clusters: Vec<String>,
    unavailable_clusters: Vec<String>,
    seed: u64,
    clock_nanos: u64,
    clock_step_nanos: u64,
    shared_data: SharedData,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            wasm: default_wasm_path(),
            vm_configuration: Vec::new(),
            properties: vec![
                (b"plugin_name".to_vec(), b"triage".to_vec()),
                (b"plugin_root_id".to_vec(), Vec::new()),
            ],
            http_responses: Vec::new(),
            clusters: Vec::new(),
            unavailable_clusters: Vec::new(),
            seed: 0x7472_6961_6765,
            clock_nanos: 1_700_000_000_000_000_000,
            clock_step_nanos: 0,
            shared_data: SharedData::default(),
        }
    }
}

impl HostOptions {
    pub fn wasm(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm = path.into();
        self
    }

    pub fn vm_configuration(mut self, bytes: &[u8]) -> Self {
        self.vm_configuration = bytes.to_vec();
        self
    }

    /// A property the module can read; `path` segments are joined with NUL as the ABI passes them.
    pub fn property(mut self, path: &[&str], value: &[u8]) -> Self {
        self.properties
            .push((path.join("\0").into_bytes(), value.to_vec()));
        self
    }

    /// The response every `dispatch_http_call` to `cluster` gets, delivered as soon as the
    /// callback that made the call returns. Calls to clusters neither scripted here nor named by
    /// [`HostOptions::cluster`] are BadArgument, as for a cluster Envoy does not know.
    pub fn http_response(mut self, cluster: &str, response: HttpResponse) -> Self {
        self.http_responses.push((cluster.to_string(), response));
        self
    }

    /// A cluster Envoy knows whose calls stay in flight until the test answers them
    /// ([`Stream::answer_http_call`], [`Stream::fail_http_call`]), as a real upstream takes its time.
    pub fn cluster(mut self, cluster: &str) -> Self {
        self.clusters.push(cluster.to_string());
        self
    }

    /// A cluster Envoy knows whose async client fails every request as it starts (no healthy
    /// host, an overflowing circuit breaker): `dispatch_http_call` returns InternalFailure and no
    /// response ever arrives.
    pub fn unavailable_cluster(mut self, cluster: &str) -> Self {
        self.unavailable_clusters.push(cluster.to_string());
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Each clock read returns the time and then moves it on by `nanos`, as time passes between
    /// two reads of Envoy's wall clock; the default, 0, is a frozen clock.
    pub fn clock_step(mut self, nanos: u64) -> Self {
        self.clock_step_nanos = nanos;
        self
    }

    /// Shares `store` with other hosts ([`Host::shared_store`]), as Envoy's worker VMs share it.
    pub fn shared_data(mut self, store: SharedData) -> Self {
        self.shared_data = store;
        self
    }

    pub fn start(self, plugin_config: &str) -> Result<Host, HostError> {
        Host::start_with(self, plugin_config)
    }
}

/// One VM with its root context, configured like Envoy configures a plugin.
pub struct Host {
    store: Store<State>,
    exports: Exports,
    next_context: u32,
    failed: Option<String>,
}

const ROOT_CONTEXT: u32 = 1;

impl Host {
    /// Loads the default module and configures it with `plugin_config` (the string Envoy passes).
    pub fn start(plugin_config: &str) -> Result<Host, HostError> {
        HostOptions::default().start(plugin_config)
    }

    fn start_with(options: HostOptions, plugin_config: &str) -> Result<Host, HostError> {
        let loaded = load(&options.wasm)?;
        let state = State {
            root_context: ROOT_CONTEXT,
            vm_configuration: options.vm_configuration,
            properties: options.properties.into_iter().collect(),
            http_responses: options.http_responses.into_iter().collect(),
            clusters: options.clusters.into_iter().collect(),
            unavailable_clusters: options.unavailable_clusters.into_iter().collect(),
            random_state: options.seed,
            clock_nanos: options.clock_nanos,
            clock_step_nanos: options.clock_step_nanos,
            shared_data: options.shared_data,
            ..State::default()
        };
        let mut store = Store::new(engine(), state);
        let load_error = |error: wasmtime::Error| HostError::Load(format!("{error:?}"));
        let instance = loaded.pre.instantiate(&mut store).map_err(load_error)?;
        let memory = instance.get_memory(&mut store, "memory");
        let allocate = instance
            .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            .map_err(load_error)?;
        store.data_mut().memory = memory;
        store.data_mut().allocate = Some(allocate);
        macro_rules! export {
            ($name:literal) => {
                instance
                    .get_typed_func(&mut store, $name)
                    .map_err(load_error)?
            };
        }
        let exports = Exports {
            on_context_create: export!("proxy_on_context_create"),
            on_vm_start: export!("proxy_on_vm_start"),
            on_configure: export!("proxy_on_configure"),
            on_request_headers: export!("proxy_on_request_headers"),
            on_request_body: export!("proxy_on_request_body"),
            on_request_trailers: export!("proxy_on_request_trailers"),
            on_response_headers: export!("proxy_on_response_headers"),
            on_response_body: export!("proxy_on_response_body"),
            on_response_trailers: export!("proxy_on_response_trailers"),
            on_done: export!("proxy_on_done"),
            on_log: export!("proxy_on_log"),
            on_delete: export!("proxy_on_delete"),
            on_tick: instance.get_typed_func(&mut store, "proxy_on_tick").ok(),
            on_http_call_response: instance
                .get_typed_func(&mut store, "proxy_on_http_call_response")
                .ok(),
        };
        let initialize = instance
            .get_typed_func::<(), ()>(&mut store, "_initialize")
            .ok();
        let mut host = Host {
            store,
            exports,
            next_context: ROOT_CONTEXT + 1,
            failed: None,
        };
        if let Some(initialize) = initialize {
            host.call(ROOT_CONTEXT, "_initialize", |store| {
                initialize.call(store, ())
            })?;
        }
        let create = host.exports.on_context_create.clone();
        host.call(ROOT_CONTEXT, "proxy_on_context_create", |store| {
            create.call(store, (ROOT_CONTEXT as i32, 0))
        })?;
        let vm_start = host.exports.on_vm_start.clone();
        let size = host.store.data().vm_configuration.len() as i32;
        host.store.data_mut().phase = Phase::VmStart;
        let started = host.call(ROOT_CONTEXT, "proxy_on_vm_start", |store| {
            vm_start.call(store, (ROOT_CONTEXT as i32, size))
        });
        host.store.data_mut().phase = Phase::Idle;
        if started? == 0 {
            return Err(HostError::VmStartRefused {
                logs: host.store.data().logs.clone(),
            });
        }
        host.configure(plugin_config)?;
        Ok(host)
    }

    /// Calls `proxy_on_configure` again with a new plugin config, as Envoy does on an update.
    pub fn configure(&mut self, plugin_config: &str) -> Result<(), HostError> {
        let log_mark = self.store.data().logs.len();
        self.store.data_mut().plugin_configuration = plugin_config.as_bytes().to_vec();
        self.store.data_mut().phase = Phase::Configure;
        let configure = self.exports.on_configure.clone();
        let size = plugin_config.len() as i32;
        let accepted = self.call(ROOT_CONTEXT, "proxy_on_configure", |store| {
            configure.call(store, (ROOT_CONTEXT as i32, size))
        });
        self.store.data_mut().phase = Phase::Idle;
        if accepted? == 0 {
            return Err(HostError::ConfigRefused {
                logs: self.store.data().logs[log_mark..].to_vec(),
            });
        }
        Ok(())
    }

    /// Runs one call into the module with `context` current, then Envoy's deferred actions. A trap
    /// fails the VM for good, like Envoy without a reload.
    fn call<R>(
        &mut self,
        context: u32,
        callback: &str,
        run: impl FnOnce(&mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R, HostError> {
        if self.failed.is_some() {
            return Err(HostError::VmFailed {
                callback: callback.to_string(),
            });
        }
        let log_mark = self.store.data().logs.len();
        let state = self.store.data_mut();
        let outer = (state.current_context, state.effective_context);
        state.current_context = context;
        state.effective_context = None;
        let result = run(&mut self.store);
        let state = self.store.data_mut();
        (state.current_context, state.effective_context) = outer;
        match result {
            Ok(value) => {
                self.resume_continued_streams();
                self.answer_http_calls()?;
                Ok(value)
            }
            Err(error) => {
                let panic = self.store.data().logs[log_mark..]
                    .iter()
                    .rev()
                    .find(|line| line.level == LogLevel::Critical)
                    .map(|line| line.message.clone());
                let trap = format!("{error:?}");
                self.failed = Some(trap.clone());
                Err(HostError::Trap {
                    callback: callback.to_string(),
                    trap,
                    panic,
                })
            }
        }
    }

    /// Envoy runs a `continue_stream` after the call that asked for it returns, whichever context
    /// asked (for example an HTTP call response resuming its request).
    fn resume_continued_streams(&mut self) {
        for stream in self.store.data_mut().streams.values_mut() {
            let replied = stream.local_reply.is_some();
            for side in [&mut stream.request, &mut stream.response] {
                if side.continue_requested && !replied {
                    side.continue_requested = false;
                    side.release();
                }
            }
        }
    }

    /// Delivers the scripted response of every `dispatch_http_call` to a scripted cluster made so
    /// far; calls to the other known clusters wait for the test.
    fn answer_http_calls(&mut self) -> Result<(), HostError> {
        loop {
            let state = self.store.data_mut();
            let Some(call) = state
                .http_calls
                .iter_mut()
                .find(|call| !call.answered && state.http_responses.contains_key(&call.cluster))
            else {
                return Ok(());
            };
            call.answered = true;
            let (context, token) = (call.context, call.token);
            let response = state.http_responses.get(&call.cluster).cloned();
            self.deliver_http_call(context, token, response)?;
        }
    }

    /// `proxy_on_http_call_response` in the context that made the call. Envoy's async client
    /// reports a response (its own 503/504 local replies for a refused connection or a timeout
    /// included) with its header, body and trailer counts; a failure (a reset, a response over the
    /// buffer limit) with all three 0 and no response maps.
    fn deliver_http_call(
        &mut self,
        context: u32,
        token: u32,
        response: Option<HttpResponse>,
    ) -> Result<(), HostError> {
        let Some(on_response) = self.exports.on_http_call_response.clone() else {
            return Ok(());
        };
        let sizes = response.as_ref().map_or((0, 0, 0), |response| {
            (
                response.headers.len() as i32,
                response.body.len() as i32,
                response.trailers.len() as i32,
            )
        });
        self.store.data_mut().http_call_response = response;
        let result = self.call(context, "proxy_on_http_call_response", |store| {
            on_response.call(
                store,
                (context as i32, token as i32, sizes.0, sizes.1, sizes.2),
            )
        });
        self.store.data_mut().http_call_response = None;
        result
    }

    /// Completes the call `token` to a cluster named by [`HostOptions::cluster`]: with `response`,
    /// or, for None, as a failure. A call whose stream has ended was cancelled by Envoy and can't
    /// complete.
    pub fn complete_http_call(
        &mut self,
        token: u32,
        response: Option<HttpResponse>,
    ) -> Result<(), HostError> {
        let state = self.store.data_mut();
        let Some(call) = state.http_calls.iter_mut().find(|call| call.token == token) else {
            return Err(HostError::Misuse(format!("no HTTP call has token {token}")));
        };
        if call.answered {
            return Err(HostError::Misuse(format!(
                "HTTP call {token} was answered already"
            )));
        }
        let context = call.context;
        if context != ROOT_CONTEXT && !state.streams.contains_key(&context) {
            return Err(HostError::Misuse(format!(
                "HTTP call {token}: its stream ended, and Envoy cancelled the call with it"
            )));
        }
        call.answered = true;
        self.deliver_http_call(context, token, response)
    }

    /// Calls in flight (made, not answered, their stream still open), oldest first.
    pub fn pending_http_calls(&self) -> Vec<&HttpCall> {
        let state = self.store.data();
        let open = |context: u32| context == ROOT_CONTEXT || state.streams.contains_key(&context);
        let calls = state.http_calls.iter();
        calls
            .filter(|call| !call.answered && open(call.context))
            .collect()
    }

    /// From now on WASI `random_get` fails with `errno` (e.g. 52, ENOSYS) instead of filling the
    /// buffer; `None` restores it. Set after start: the module's std also reads random_get (to
    /// seed its hash maps), which is out of triage's hands.
    pub fn fail_random_get(&mut self, errno: Option<i32>) {
        self.store.data_mut().random_failure = errno;
    }

    /// Moves the host's clock (what the module reads as the time) on by `by`.
    pub fn advance_clock(&mut self, by: std::time::Duration) {
        let state = self.store.data_mut();
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        state.clock_nanos = state.clock_nanos.saturating_add(nanos);
    }

    /// The host's clock, nanoseconds since the Unix epoch.
    pub fn clock_nanos(&self) -> u64 {
        self.store.data().clock_nanos
    }

    /// Opens an HTTP stream: a new context under the root, as Envoy creates one per request.
    pub fn request(&mut self) -> Result<Stream<'_>, HostError> {
        let id = self.next_context;
        self.next_context += 1;
        self.store.data_mut().streams.insert(id, Default::default());
        let create = self.exports.on_context_create.clone();
        self.call(id, "proxy_on_context_create", |store| {
            create.call(store, (id as i32, ROOT_CONTEXT as i32))
        })?;
        Ok(Stream {
            host: self,
            id,
            finished: false,
        })
    }

    /// Fires the root context's timer if the module set a tick period; false if it did not.
    pub fn tick(&mut self) -> Result<bool, HostError> {
        let (Some(on_tick), true) = (
            self.exports.on_tick.clone(),
            self.store.data().tick_period_ms > 0,
        ) else {
            return Ok(false);
        };
        self.call(ROOT_CONTEXT, "proxy_on_tick", |store| {
            on_tick.call(store, ROOT_CONTEXT as i32)
        })?;
        Ok(true)
    }

    pub fn logs(&self) -> &[LogLine] {
        &self.store.data().logs
    }

    /// True if any log line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs().iter().any(|line| line.message.contains(needle))
    }

    /// Log lines at `level` or above.
    pub fn logs_at_least(&self, level: LogLevel) -> Vec<&LogLine> {
        self.logs().iter().filter(|l| l.level >= level).collect()
    }

    /// A counter's or gauge's value by the name the module defined it with.
    pub fn metric(&self, name: &str) -> Option<i64> {
        self.store
            .data()
            .metrics
            .all
            .iter()
            .find(|metric| metric.name == name)
            .map(|metric| metric.value)
    }

    pub fn histogram(&self, name: &str) -> Option<&[u64]> {
        self.store
            .data()
            .metrics
            .all
            .iter()
            .find(|metric| metric.name == name)
            .map(|metric| &metric.samples[..])
    }

    pub fn metric_names(&self) -> Vec<&str> {
        let metrics = &self.store.data().metrics.all;
        metrics.iter().map(|metric| metric.name.as_str()).collect()
    }

    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        let store = self.store.data().shared_data.borrow();
        store.get(key.as_bytes()).map(|(value, _)| value.clone())
    }

    /// This VM's shared data, to start another VM on it ([`HostOptions::shared_data`]).
    pub fn shared_store(&self) -> SharedData {
        Rc::clone(&self.store.data().shared_data)
    }

    pub fn property(&self, path: &[&str]) -> Option<&[u8]> {
        let key = path.join("\0").into_bytes();
        self.store.data().properties.get(&key).map(|v| &v[..])
    }

    /// Every foreign function the module called, with the context it called it from.
    pub fn foreign_calls(&self) -> &[(u32, String)] {
        &self.store.data().foreign_calls
    }

    pub fn http_calls(&self) -> &[HttpCall] {
        &self.store.data().http_calls
    }

    pub fn stdout(&self) -> &[u8] {
        &self.store.data().stdout
    }

    pub fn stderr(&self) -> &[u8] {
        &self.store.data().stderr
    }

    pub fn done_called(&self) -> bool {
        self.store.data().done_called
    }

    /// The module's linear memory; it only grows.
    pub fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map_or(0, |memory| memory.data_size(&self.store))
    }

    /// The error that took the VM down, if one did.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub fn open_streams(&self) -> usize {
        self.store.data().streams.len()
    }
}

/// One HTTP stream through the filter. Dropping it ends the stream (on_done, on_log, on_delete).
pub struct Stream<'h> {
    host: &'h mut Host,
    id: u32,
    finished: bool,
}

impl Stream<'_> {
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn host(&self) -> &Host {
        self.host
    }

    fn stream(&self) -> &state::Stream {
        static EMPTY: OnceLock<state::Stream> = OnceLock::new();
        self.host
            .store
            .data()
            .streams
            .get(&self.id)
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
    }

    /// The side a frame arrives on. After a local reply Envoy has answered the client and reset
    /// the upstream request: no frame arrives any more.
    fn side_mut(&mut self, side: StreamSide) -> Result<&mut state::Side, HostError> {
        let stream = self
            .host
            .store
            .data_mut()
            .streams
            .get_mut(&self.id)
            .ok_or_else(|| HostError::Misuse("the stream has ended".into()))?;
        if let Some(reply) = &stream.local_reply {
            return Err(HostError::Misuse(format!(
                "{side:?} frame after the local reply ({}): Envoy ended the stream",
                reply.details
            )));
        }
        Ok(stream.side_mut(side))
    }

    fn send_headers<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        side: StreamSide,
        headers: &[(K, V)],
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        let map = HeaderMap::from_pairs(headers);
        let count = map.len() as i32;
        let s = self.side_mut(side)?;
        if s.headers_received {
            return Err(HostError::Misuse(format!("{side:?} headers sent twice")));
        }
        s.headers = map.clone();
        s.headers_received = true;
        s.headers_open = true;
        s.end_of_stream_received = end_of_stream;
        let (func, name) = match side {
            StreamSide::Request => {
                if let Some(stream) = self.host.store.data_mut().streams.get_mut(&self.id) {
                    stream.original_request_headers = map;
                }
                (
                    self.host.exports.on_request_headers.clone(),
                    "proxy_on_request_headers",
                )
            }
            StreamSide::Response => (
                self.host.exports.on_response_headers.clone(),
                "proxy_on_response_headers",
            ),
        };
        let id = self.id;
        let action = self.host.call(id, name, |store| {
            func.call(store, (id as i32, count, i32::from(end_of_stream)))
        })?;
        self.settle(side, Action::from_abi(action))
    }

    fn send_body(
        &mut self,
        side: StreamSide,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        let s = self.side_mut(side)?;
        if !s.headers_received || s.end_of_stream_received {
            return Err(HostError::Misuse(format!(
                "{side:?} body sent before the headers or after the end of stream"
            )));
        }
        s.pending_body.extend_from_slice(chunk);
        s.body_open = true;
        s.end_of_stream_received = end_of_stream;
        let size = s.pending_body.len();
        s.body_callbacks.push(size);
        let (func, name) = match side {
            StreamSide::Request => (
                self.host.exports.on_request_body.clone(),
                "proxy_on_request_body",
            ),
            StreamSide::Response => (
                self.host.exports.on_response_body.clone(),
                "proxy_on_response_body",
            ),
        };
        let id = self.id;
        let action = self.host.call(id, name, |store| {
            func.call(store, (id as i32, size as i32, i32::from(end_of_stream)))
        })?;
        self.settle(side, Action::from_abi(action))
    }

    fn send_trailers<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        side: StreamSide,
        trailers: &[(K, V)],
    ) -> Result<Action, HostError> {
        let map = HeaderMap::from_pairs(trailers);
        let count = map.len() as i32;
        let s = self.side_mut(side)?;
        if !s.headers_received || s.end_of_stream_received {
            return Err(HostError::Misuse(format!(
                "{side:?} trailers sent before the headers or after the end of stream"
            )));
        }
        s.trailers = Some(map);
        s.trailers_open = true;
        s.end_of_stream_received = true;
        let (func, name) = match side {
            StreamSide::Request => (
                self.host.exports.on_request_trailers.clone(),
                "proxy_on_request_trailers",
            ),
            StreamSide::Response => (
                self.host.exports.on_response_trailers.clone(),
                "proxy_on_response_trailers",
            ),
        };
        let id = self.id;
        let action = self
            .host
            .call(id, name, |store| func.call(store, (id as i32, count)))?;
        self.settle(side, Action::from_abi(action))
    }

    /// Envoy's reaction to a callback's answer: Continue passes on everything held; anything else
    /// keeps holding it. After a local reply nothing more goes upstream.
    fn settle(&mut self, side: StreamSide, action: Action) -> Result<Action, HostError> {
        let stream = self
            .host
            .store
            .data_mut()
            .streams
            .get_mut(&self.id)
            .ok_or_else(|| HostError::Misuse("the stream has ended".into()))?;
        let replied = stream.local_reply.is_some();
        if action == Action::Continue && !replied {
            stream.side_mut(side).release();
        }
        Ok(action)
    }

    pub fn send_request_headers<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        headers: &[(K, V)],
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        self.send_headers(StreamSide::Request, headers, end_of_stream)
    }

    pub fn send_request_body(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        self.send_body(StreamSide::Request, chunk, end_of_stream)
    }

    pub fn send_request_trailers<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        trailers: &[(K, V)],
    ) -> Result<Action, HostError> {
        self.send_trailers(StreamSide::Request, trailers)
    }

    pub fn send_response_headers<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        headers: &[(K, V)],
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        self.send_headers(StreamSide::Response, headers, end_of_stream)
    }

    pub fn send_response_body(
        &mut self,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HostError> {
        self.send_body(StreamSide::Response, chunk, end_of_stream)
    }

    pub fn send_response_trailers<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        trailers: &[(K, V)],
    ) -> Result<Action, HostError> {
        self.send_trailers(StreamSide::Response, trailers)
    }

    /// The request headers the upstream received; None while the filter still holds them.
    pub fn upstream_headers(&self) -> Option<&HeaderMap> {
        self.stream().request.forwarded_headers.as_ref()
    }

    pub fn upstream_header(&self, name: &str) -> Option<&str> {
        self.upstream_headers()
            .and_then(|headers| headers.get(name))
    }

    pub fn upstream_body(&self) -> &[u8] {
        &self.stream().request.forwarded_body
    }

    pub fn upstream_trailers(&self) -> Option<&HeaderMap> {
        self.stream().request.forwarded_trailers.as_ref()
    }

    /// The whole request, end of stream included, went upstream.
    pub fn upstream_complete(&self) -> bool {
        self.stream().request.forwarded_end_of_stream
    }

    /// The filter holds part of the request (headers, buffered body or trailers).
    pub fn request_paused(&self) -> bool {
        self.stream().request.holds_anything()
    }

    /// The body sizes the request body callbacks were told, in order.
    pub fn request_body_callbacks(&self) -> &[usize] {
        &self.stream().request.body_callbacks
    }

    /// Body bytes the filter is holding back right now.
    pub fn buffered_request_body(&self) -> usize {
        self.stream().request.pending_body.len()
    }

    /// clear_route_cache calls on this stream.
    pub fn route_cache_clears(&self) -> usize {
        self.stream().route_cache_clears
    }

    /// The headers Envoy's router matches on: picked when the headers arrived and picked again only
    /// if the filter cleared the route cache before passing them on (no implicit clear on header
    /// writes, as in Envoy after PR #36671).
    pub fn routing_headers(&self) -> &HeaderMap {
        let stream = self.stream();
        match (&stream.request.forwarded_headers, stream.route_recomputed) {
            (Some(forwarded), true) => forwarded,
            _ => &stream.original_request_headers,
        }
    }

    pub fn local_reply(&self) -> Option<&LocalReply> {
        self.stream().local_reply.as_ref()
    }

    /// A property of this stream's stream info (e.g. `["response", "code_details"]`, which Envoy
    /// sets before the response headers reach the filters); it hides a host-wide one.
    pub fn set_property(&mut self, path: &[&str], value: &[u8]) {
        let key = path.join("\0").into_bytes();
        if let Some(stream) = self.host.store.data_mut().streams.get_mut(&self.id) {
            stream.properties.insert(key, value.to_vec());
        }
    }

    /// This stream's calls still in flight, oldest first.
    pub fn pending_http_calls(&self) -> Vec<&HttpCall> {
        let id = self.id;
        let calls = self.host.pending_http_calls();
        calls
            .into_iter()
            .filter(|call| call.context == id)
            .collect()
    }

    /// The upstream of call `token` answered with `response` (see [`Host::complete_http_call`]).
    pub fn answer_http_call(
        &mut self,
        token: u32,
        response: HttpResponse,
    ) -> Result<(), HostError> {
        self.host.complete_http_call(token, Some(response))
    }

    /// Call `token` failed without a response (Envoy's `onFailure`: a reset).
    pub fn fail_http_call(&mut self, token: u32) -> Result<(), HostError> {
        self.host.complete_http_call(token, None)
    }

    /// See [`Host::advance_clock`].
    pub fn advance_clock(&mut self, by: std::time::Duration) {
        self.host.advance_clock(by);
    }

    pub fn was_reset(&self) -> bool {
        self.stream().reset
    }

    /// The response headers the client received; None while the filter holds them.
    pub fn downstream_headers(&self) -> Option<&HeaderMap> {
        self.stream().response.forwarded_headers.as_ref()
    }

    pub fn downstream_header(&self, name: &str) -> Option<&str> {
        self.downstream_headers()
            .and_then(|headers| headers.get(name))
    }

    pub fn downstream_body(&self) -> &[u8] {
        &self.stream().response.forwarded_body
    }

    pub fn downstream_trailers(&self) -> Option<&HeaderMap> {
        self.stream().response.forwarded_trailers.as_ref()
    }

    pub fn downstream_complete(&self) -> bool {
        self.stream().response.forwarded_end_of_stream
    }

    pub fn response_paused(&self) -> bool {
        self.stream().response.holds_anything()
    }

    /// Log lines this stream's context wrote.
    pub fn logs(&self) -> Vec<&LogLine> {
        let id = self.id;
        self.host
            .logs()
            .iter()
            .filter(|l| l.context == id)
            .collect()
    }

    /// Ends the stream as Envoy does: on_done, on_log, on_delete.
    pub fn finish(mut self) -> Result<(), HostError> {
        self.end()
    }

    fn end(&mut self) -> Result<(), HostError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let id = self.id;
        let exports = &self.host.exports;
        let (done, log, delete) = (
            exports.on_done.clone(),
            exports.on_log.clone(),
            exports.on_delete.clone(),
        );
        let result = (|| {
            self.host
                .call(id, "proxy_on_done", |store| done.call(store, id as i32))?;
            self.host
                .call(id, "proxy_on_log", |store| log.call(store, id as i32))?;
            self.host
                .call(id, "proxy_on_delete", |store| delete.call(store, id as i32))
        })();
        self.host.store.data_mut().streams.remove(&id);
        result
    }
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        if self.host.failed.is_none() {
            // A failure here is visible through Host::failure().
            let _ = self.end();
        } else {
            self.host.store.data_mut().streams.remove(&self.id);
        }
    }
}
