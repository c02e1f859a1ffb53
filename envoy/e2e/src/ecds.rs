//! triage delivered the way a control plane delivers wasm: Envoy discovers the filter through
//! extension config discovery (ECDS) from a watched file, and fetches each version's module by URL
//! from an HTTP server, checked against its sha256.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use triage_gateway::envoy::{ecds_resource, EcdsVersion};

use crate::stack::Stack;

/// The name the filter's discovery stats carry (`extension_config_discovery.http_filter.triage.*`).
const STATS: &str = "extension_config_discovery.http_filter.triage";
/// How long a version may take to be fetched and accepted or refused.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// A static HTTP server for modules: `GET /<name>` answers the bytes published under that name.
pub struct ModuleServer {
    addr: SocketAddr,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    fetches: Arc<Mutex<Vec<String>>>,
}

impl ModuleServer {
    pub fn start() -> ModuleServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("module server: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("module server: {e}"));
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let fetches: Arc<Mutex<Vec<String>>> = Arc::default();
        let (served, logged) = (Arc::clone(&files), Arc::clone(&fetches));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // The rest of the head: Envoy's fetch has no body.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let target = request_line.split(' ').nth(1).unwrap_or("/");
                // A retried delivery varies the URL's query; the module is the path's.
                let path = target.split('?').next().unwrap_or(target);
                let name = path.trim_start_matches('/').to_owned();
                logged.lock().map(|mut log| log.push(name.clone())).ok();
                let body = served
                    .lock()
                    .ok()
                    .and_then(|files| files.get(&name).cloned());
                let mut stream = &stream;
                let _ = match body {
                    Some(body) => write!(
                        stream,
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    )
                    .and_then(|()| stream.write_all(&body)),
                    None => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    ),
                };
            }
        });
        ModuleServer {
            addr,
            files,
            fetches,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `bytes` at `/<name>` from now on; the URL Envoy fetches them from.
    pub fn publish(&self, name: &str, bytes: Vec<u8>) -> String {
        if let Ok(mut files) = self.files.lock() {
            files.insert(name.to_owned(), bytes);
        }
        format!("http://{}/{name}", self.addr)
    }

    /// The names requested so far, in order.
    pub fn fetches(&self) -> Vec<String> {
        self.fetches
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }
}

/// What Envoy made of a delivered version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// It serves this version now.
    Accepted,
    /// It refused the version (the previous one, if any, keeps serving).
    Refused,
}

/// The watched file Envoy discovers triage from, and the versions written to it.
pub struct Discovery {
    resource: PathBuf,
}

impl Discovery {
    /// A discovery file in `dir` (not written yet: see [`Discovery::write`]).
    pub fn in_dir(dir: &Path) -> Discovery {
        Discovery {
            resource: dir.join("triage-ecds.yaml"),
        }
    }

    pub fn resource(&self) -> &Path {
        &self.resource
    }

    /// Writes a version the way a control plane's file push does: whole, by rename, so Envoy never
    /// reads half of it. `first`: the version a fresh Envoy starts with (see
    /// `triage_gateway::envoy::ecds_resource`).
    pub fn write(
        &self,
        version: &str,
        plugin_config: &str,
        module_url: &str,
        sha256: &str,
        first: bool,
    ) {
        let resource = ecds_resource(&EcdsVersion {
            version,
            plugin_config,
            module_url,
            sha256,
            refuse_uncached_module: !first,
        })
        .unwrap_or_else(|e| panic!("ECDS resource: {e}"));
        let staged = self.resource.with_extension("staged");
        std::fs::write(&staged, resource)
            .and_then(|()| std::fs::rename(&staged, &self.resource))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", self.resource.display()));
    }

    /// Delivers a new version to a serving Envoy and waits for its verdict. A version whose module
    /// Envoy has not cached yet is refused once while Envoy fetches it; it is then delivered again
    /// (its module URL's query varied, since Envoy skips a delivery equal to the last one), as a
    /// control plane retries, until Envoy serves it or refuses it with the module in hand (a wrong
    /// sha256 is refused every time).
    pub fn deliver(
        &self,
        stack: &Stack,
        version: &str,
        plugin_config: &str,
        module_url: &str,
        sha256: &str,
    ) -> Delivery {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        let mut refusals_seen = stat(stack, "update_rejected");
        let mut attempt = 0;
        loop {
            let url = match attempt {
                0 => module_url.to_owned(),
                n => format!("{module_url}?attempt={n}"),
            };
            self.write(version, plugin_config, &url, sha256, false);
            loop {
                if version_text(stack) == version {
                    return Delivery::Accepted;
                }
                let refusals = stat(stack, "update_rejected");
                if refusals > refusals_seen {
                    refusals_seen = refusals;
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "no verdict on ECDS version {version} after {DELIVERY_TIMEOUT:?}\n{}",
                    stack.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            // One more delivery once the fetch is done; a second refusal with the module in hand
            // is Envoy's last word.
            if attempt == 2 {
                return Delivery::Refused;
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// One of the filter's discovery counters.
pub fn stat(stack: &Stack, name: &str) -> u64 {
    stack.stat(&format!("{STATS}.{name}")).unwrap_or(0)
}

/// The version Envoy serves (`""` before the first).
pub fn version_text(stack: &Stack) -> String {
    let stats = stack.admin_get("/stats").text();
    let prefix = format!("{STATS}.version_text: ");
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .unwrap_or_default()
}

/// The module's sha256, as Envoy checks it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
