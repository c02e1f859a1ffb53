//! One triage stack per test: three in-process mock tiers and an Envoy subprocess in front of them.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mock_llm::{MockServer, Received};
use serde_json::Value;

use crate::auth::jwks_path;
use crate::http::{Connection, Request, Response};
use crate::paths::{envoy_binary, fault_injection_wasm, filter_wasm};
use crate::render::{render, tier_names, Flavour, Ports};

/// The tiers of the shipped config and template, cheapest first.
pub const TIERS: [&str; 3] = ["small", "mid", "frontier"];

/// Where, in the stack's directory, Envoy writes the decision records.
const ACCESS_LOG: &str = "access.log";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const START_ATTEMPTS: usize = 3;

#[derive(Debug, Clone)]
pub struct StackOptions {
    pub flavour: Flavour,
    /// The plugin configuration string, as Envoy hands it to the filter.
    pub plugin_config: String,
    pub concurrency: u32,
    /// Which build of the filter the triage flavour loads.
    pub filter_build: FilterBuild,
    /// `(from, to)` replacements on the rendered Envoy config, in order; each `from` must occur.
    pub config_edits: Vec<(String, String)>,
    /// The plugin config Envoy's routes, clusters and buffer limits are made from, when it is not
    /// the filter's own: a gateway whose config disagrees with the filter's.
    pub gateway_config: Option<String>,
    /// Triage discovered from this resource file, its modules fetched from this server, instead
    /// of written into the config (see `crate::ecds`).
    pub ecds: Option<(PathBuf, SocketAddr)>,
    /// Whether the mock tiers keep every request they receive ([`Stack::received`]) or only count
    /// them ([`MockServer::received_count`]), for runs long enough to pile bodies up in memory.
    pub keep_upstream_requests: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterBuild {
    /// The shipped `triage.wasm`.
    Shipped,
    /// Built with the test-only `fault-injection` feature: `x-e2e-panic` panics the VM.
    FaultInjection,
}

impl StackOptions {
    /// The plugin config the Envoy config's tiers and limits come from.
    fn gateway_config(&self) -> &str {
        self.gateway_config
            .as_deref()
            .unwrap_or(&self.plugin_config)
    }

    pub fn triage(plugin_config: &Value) -> StackOptions {
        StackOptions::triage_raw(&plugin_config.to_string())
    }

    pub fn triage_raw(plugin_config: &str) -> StackOptions {
        StackOptions {
            flavour: Flavour::Triage,
            plugin_config: plugin_config.to_owned(),
            concurrency: 1,
            filter_build: FilterBuild::Shipped,
            config_edits: Vec::new(),
            gateway_config: None,
            ecds: None,
            keep_upstream_requests: true,
        }
    }

    pub fn baseline() -> StackOptions {
        StackOptions {
            flavour: Flavour::Baseline,
            plugin_config: String::new(),
            concurrency: 1,
            filter_build: FilterBuild::Shipped,
            config_edits: Vec::new(),
            gateway_config: None,
            ecds: None,
            keep_upstream_requests: true,
        }
    }

    /// Triage by extension config discovery: Envoy watches `resource` and fetches modules from
    /// `module_server`; the routes and clusters come from `gateway_config`.
    pub fn discovered(
        resource: &Path,
        module_server: SocketAddr,
        gateway_config: &Value,
    ) -> StackOptions {
        StackOptions {
            ecds: Some((resource.to_owned(), module_server)),
            ..StackOptions::triage(gateway_config)
        }
    }

    pub fn with_filter_build(mut self, filter_build: FilterBuild) -> StackOptions {
        self.filter_build = filter_build;
        self
    }

    /// Envoy's routes, clusters and limits made from `config` rather than the filter's plugin config.
    pub fn with_gateway_config(mut self, config: &Value) -> StackOptions {
        self.gateway_config = Some(config.to_string());
        self
    }

    /// The mock tiers count requests instead of keeping them (see `keep_upstream_requests`).
    pub fn counting_upstream_requests(mut self) -> StackOptions {
        self.keep_upstream_requests = false;
        self
    }

    /// Replaces `from` in the rendered config with `to`; starting the stack panics if `from` is absent.
    pub fn with_config_edit(mut self, from: &str, to: &str) -> StackOptions {
        self.config_edits.push((from.to_owned(), to.to_owned()));
        self
    }
}

/// Envoy exited (or never became ready) before serving.
#[derive(Debug)]
pub struct StartError {
    pub reason: String,
    pub exit: Option<ExitStatus>,
    pub log: String,
}

pub struct Stack {
    envoy: Child,
    dir: PathBuf,
    ports: Ports,
    mocks: Vec<MockServer>,
    pub startup: Duration,
}

impl Stack {
    /// A triage stack with this plugin config; panics with Envoy's log when it does not come up.
    pub fn start(plugin_config: &Value) -> Stack {
        Stack::start_with(StackOptions::triage(plugin_config))
    }

    pub fn start_with(options: StackOptions) -> Stack {
        Stack::try_start(options).unwrap_or_else(|e| {
            panic!(
                "the stack did not start: {} (exit: {:?})\n--- Envoy log\n{}",
                e.reason, e.exit, e.log
            )
        })
    }

    pub fn try_start(options: StackOptions) -> Result<Stack, StartError> {
        // One mock per tier of the config, standing in for the tier's provider.
        let mocks: Vec<MockServer> = tier_names(options.gateway_config())
            .iter()
            .map(|tier| {
                let started = if options.keep_upstream_requests {
                    MockServer::start(tier, "127.0.0.1:0")
                } else {
                    MockServer::start_counting(tier, "127.0.0.1:0")
                };
                started.unwrap_or_else(|e| panic!("mock tier {tier} did not start: {e}"))
            })
            .collect();
        let upstreams: Vec<(String, SocketAddr)> = mocks
            .iter()
            .map(|mock| (mock.tier().to_owned(), mock.addr()))
            .collect();
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let ports = Ports {
                listen: free_port(),
                admin: free_port(),
            };
            match launch(&options, ports, &upstreams) {
                Ok((envoy, dir, startup)) => {
                    return Ok(Stack {
                        envoy,
                        dir,
                        ports,
                        mocks,
                        startup,
                    })
                }
                // Another process took a port between our probe and Envoy's bind: try new ports.
                Err(e) if e.log.contains("Address already in use") => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| StartError {
            reason: "no start attempt".to_owned(),
            exit: None,
            log: String::new(),
        }))
    }

    pub fn listener(&self) -> SocketAddr {
        loopback(self.ports.listen)
    }

    pub fn admin(&self) -> SocketAddr {
        loopback(self.ports.admin)
    }

    /// The Envoy process's id, e.g. to read its memory from `/proc`.
    pub fn envoy_pid(&self) -> u32 {
        self.envoy.id()
    }

    /// A new client connection to the listener.
    pub fn connect(&self) -> Connection {
        Connection::open(self.listener()).unwrap_or_else(|e| {
            panic!("cannot connect to Envoy's listener: {e}{}", self.log_tail())
        })
    }

    /// Sends `request` on a new connection; a transport error (or a hang) fails the test with the
    /// tail of Envoy's log.
    pub fn send(&self, request: &Request) -> Response {
        self.send_on(&mut self.connect(), request)
    }

    pub fn send_on(&self, connection: &mut Connection, request: &Request) -> Response {
        connection.send(request).unwrap_or_else(|e| {
            panic!(
                "{} {} through Envoy failed: {e}{}",
                request.method,
                request.path,
                self.log_tail()
            )
        })
    }

    pub fn mock(&self, tier: &str) -> &MockServer {
        self.mocks
            .iter()
            .find(|mock| mock.tier() == tier)
            .unwrap_or_else(|| panic!("no mock tier {tier}"))
    }

    /// Every request the mocks received, with the tier that received it.
    pub fn received(&self) -> Vec<(String, Received)> {
        self.mocks
            .iter()
            .flat_map(|mock| {
                mock.received()
                    .into_iter()
                    .map(|received| (mock.tier().to_owned(), received))
            })
            .collect()
    }

    /// The one request the upstream received so far, and its tier; fails unless there is exactly one.
    pub fn only_upstream_request(&self) -> (String, Received) {
        let mut received = self.received();
        match received.len() {
            1 => received.remove(0),
            n => panic!(
                "expected exactly one upstream request, got {n}: {:?}",
                received
                    .iter()
                    .map(|(tier, r)| format!("{tier}: {} {}", r.method, r.path))
                    .collect::<Vec<_>>()
            ),
        }
    }

    pub fn admin_get(&self, path: &str) -> Response {
        Connection::open(self.admin())
            .and_then(|mut admin| admin.send(&Request::get(path)))
            .unwrap_or_else(|e| panic!("admin {path} failed: {e}{}", self.log_tail()))
    }

    /// The value of a counter or gauge from admin `/stats`.
    pub fn stat(&self, name: &str) -> Option<u64> {
        let stats = self.admin_get("/stats").text();
        stats.lines().find_map(|line| {
            let (stat, value) = line.split_once(": ")?;
            (stat == name).then(|| value.trim().parse().ok())?
        })
    }

    /// Everything Envoy logged so far.
    /// Envoy's `/stats/prometheus`, parsed.
    pub fn prometheus(&self) -> crate::prometheus::Scrape {
        let response = self.admin_get("/stats/prometheus");
        assert_eq!(
            response.status,
            200,
            "/stats/prometheus: {}",
            response.text()
        );
        crate::prometheus::Scrape::parse(&response.text())
    }

    /// The first scrape within 10 s for which `ready` holds (else the last one): histograms reach
    /// `/stats/prometheus` only at Envoy's periodic stats flush.
    pub fn prometheus_when(
        &self,
        ready: impl Fn(&crate::prometheus::Scrape) -> bool,
    ) -> crate::prometheus::Scrape {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let scrape = self.prometheus();
            if ready(&scrape) || Instant::now() > deadline {
                return scrape;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The access log file (see [`Stack::access_log`] for waiting on its lines).
    pub fn access_log_path(&self) -> PathBuf {
        self.dir.join(ACCESS_LOG)
    }

    /// The access log's lines (one decision record per routed request), once there are at least
    /// `expected` of them or 5 s have passed (Envoy writes the file from a flush timer).
    pub fn access_log(&self, expected: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let lines: Vec<String> = std::fs::read_to_string(self.dir.join(ACCESS_LOG))
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            if lines.len() >= expected || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("\n--- tail of Envoy's log ({})\n{tail}", self.dir.display())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
        if std::thread::panicking() {
            eprintln!("Envoy's config and log are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `envoy --mode validate` on the rendered config of `options`: whether it passed, and its output.
pub fn validate(options: &StackOptions) -> (bool, String) {
    let dir = fresh_dir();
    let ports = Ports {
        listen: 10000,
        admin: 9901,
    };
    let upstreams: Vec<(String, SocketAddr)> = tier_names(options.gateway_config())
        .into_iter()
        .zip(18001..)
        .map(|(tier, port)| (tier, SocketAddr::from((Ipv4Addr::LOCALHOST, port))))
        .collect();
    let config = write_config(&dir, options, ports, &upstreams);
    let output = Command::new(envoy_binary())
        .args(["--mode", "validate", "--log-level", "info", "-c"])
        .arg(&config)
        .output()
        .unwrap_or_else(|e| panic!("cannot run Envoy: {e}"));
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn launch(
    options: &StackOptions,
    ports: Ports,
    upstreams: &[(String, SocketAddr)],
) -> Result<(Child, PathBuf, Duration), StartError> {
    let started = Instant::now();
    let dir = fresh_dir();
    let config = write_config(&dir, options, ports, upstreams);
    let log_path = dir.join("envoy.log");
    let log = std::fs::File::create(&log_path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", log_path.display()));
    let log_err = log
        .try_clone()
        .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
    let mut envoy = Command::new(envoy_binary())
        .arg("-c")
        .arg(&config)
        .args(["--concurrency", &options.concurrency.to_string()])
        .args(["--base-id", &ports.admin.to_string()])
        .args(["--disable-hot-restart", "--log-level", "info"])
        // Decision records reach the access log file within 100 ms instead of Envoy's 10 s.
        .args(["--file-flush-interval-msec", "100"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run Envoy: {e}"));
    let failure = |envoy: &mut Child, reason: String| {
        let _ = envoy.kill();
        let exit = envoy.wait().ok();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        StartError { reason, exit, log }
    };
    loop {
        if let Ok(Some(status)) = envoy.try_wait() {
            return Err(failure(&mut envoy, format!("Envoy exited with {status}")));
        }
        if is_ready(ports) {
            return Ok((envoy, dir, started.elapsed()));
        }
        if started.elapsed() > READY_TIMEOUT {
            let reason = format!("not ready after {READY_TIMEOUT:?}");
            return Err(failure(&mut envoy, reason));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Admin `/ready` says LIVE and the listener accepts connections.
fn is_ready(ports: Ports) -> bool {
    let probe_timeout = Duration::from_secs(1);
    let live = Connection::open_with_timeout(loopback(ports.admin), probe_timeout)
        .and_then(|mut admin| admin.send(&Request::get("/ready")))
        .is_ok_and(|response| response.status == 200 && response.text().starts_with("LIVE"));
    live && TcpStream::connect_timeout(&loopback(ports.listen), probe_timeout).is_ok()
}

fn write_config(
    dir: &Path,
    options: &StackOptions,
    ports: Ports,
    upstreams: &[(String, SocketAddr)],
) -> PathBuf {
    let wasm = (options.flavour == Flavour::Triage).then(|| match options.filter_build {
        FilterBuild::Shipped => filter_wasm(),
        FilterBuild::FaultInjection => fault_injection_wasm(),
    });
    let mut yaml = render(
        options.flavour,
        ports,
        upstreams,
        wasm.as_deref(),
        &options.plugin_config,
        options.gateway_config(),
        &dir.join(ACCESS_LOG),
        &jwks_path(),
        options.ecds.as_ref(),
    );
    for (from, to) in &options.config_edits {
        assert!(
            yaml.contains(from.as_str()),
            "config edit: {from:?} is not in the rendered config"
        );
        yaml = yaml.replace(from.as_str(), to);
    }
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

fn fresh_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "triage-e2e-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A port that was free a moment ago (bind to port 0, read it, release it).
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}
