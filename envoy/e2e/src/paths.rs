//! Where the repository, Envoy, the filter's .wasm and the token script are.

use std::path::PathBuf;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `TRIAGE_ENVOY`, else `<repo>/.venv/bin/envoy`.
pub fn envoy_binary() -> PathBuf {
    existing("TRIAGE_ENVOY", repo_root().join(".venv/bin/envoy"), "Envoy")
}

/// `TRIAGE_WASM`, else `<repo>/target/wasm32-wasip1/release/triage.wasm`.
pub fn filter_wasm() -> PathBuf {
    existing(
        "TRIAGE_WASM",
        repo_root().join("target/wasm32-wasip1/release/triage.wasm"),
        "the triage filter (.wasm)",
    )
}

/// `TRIAGE_FAULT_WASM`, else `<repo>/target/fault-injection/wasm32-wasip1/release/triage.wasm`: the
/// filter built with the test-only `fault-injection` feature (`envoy/setup.sh` builds it apart from
/// the shipped one).
pub fn fault_injection_wasm() -> PathBuf {
    existing(
        "TRIAGE_FAULT_WASM",
        repo_root().join("target/fault-injection/wasm32-wasip1/release/triage.wasm"),
        "the fault-injection build of the triage filter (.wasm)",
    )
}

/// `TRIAGE_PYTHON`, else `<repo>/.venv/bin/python3` (where `envoy/setup.sh` installs PyJWT).
pub fn venv_python() -> PathBuf {
    existing(
        "TRIAGE_PYTHON",
        repo_root().join(".venv/bin/python3"),
        "the Python that runs envoy/auth/tokens.py",
    )
}

/// `<repo>/envoy/auth/tokens.py`: the gateway's test keys and caller tokens.
pub fn tokens_script() -> PathBuf {
    repo_root().join("envoy/auth/tokens.py")
}

fn existing(variable: &str, default: PathBuf, what: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or(default, PathBuf::from);
    if !path.is_file() {
        panic!(
            "{what} not found at {}: run `bash envoy/setup.sh` in the repository (or set {variable})",
            path.display()
        );
    }
    path
}
