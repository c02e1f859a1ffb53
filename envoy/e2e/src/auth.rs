//! Caller tokens for the gateway's `jwt_authn` filter, made by `envoy/auth/tokens.py`. One key pair
//! per test process: every stack the process starts trusts its JWKS ([`jwks_path`]).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::paths::{tokens_script, venv_python};

/// The gateway's public keys, the JWKS every stack's `jwt_authn` filter loads.
pub fn jwks_path() -> PathBuf {
    key_dir().join("jwks.json")
}

/// A valid token for the caller `sub`, with the tenant `team` when given.
pub fn token(sub: &str, team: Option<&str>) -> String {
    match team {
        Some(team) => mint(sub, &["--team".as_ref(), team.as_ref()]),
        None => mint(sub, &[]),
    }
}

/// Expired an hour ago: well past `jwt_authn`'s 60 s default clock skew.
pub fn expired_token(sub: &str) -> String {
    mint(sub, &["--ttl=-3600".as_ref()])
}

/// Valid but issued for another audience than the gateway's (`triage`).
pub fn token_for_audience(sub: &str, audience: &str) -> String {
    mint(sub, &["--audience".as_ref(), audience.as_ref()])
}

/// Valid but from another issuer than the gateway (`triage-example-gateway`).
pub fn token_from_issuer(sub: &str, issuer: &str) -> String {
    mint(sub, &["--issuer".as_ref(), issuer.as_ref()])
}

/// The claims and `kid` of a valid token, signed with a key the JWKS does not hold.
pub fn forged_token(sub: &str) -> String {
    mint(sub, &["--signing-key".as_ref(), forged_key().as_os_str()])
}

fn mint(sub: &str, options: &[&OsStr]) -> String {
    let mut args: Vec<&OsStr> = vec![
        "token".as_ref(),
        key_dir().as_os_str(),
        "--sub".as_ref(),
        sub.as_ref(),
    ];
    args.extend_from_slice(options);
    run_tokens_script(&args).trim().to_owned()
}

const KEY_DIR_PREFIX: &str = "triage-e2e-keys-";

fn key_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_key_dirs_of_exited_processes();
        let dir = std::env::temp_dir().join(format!("{KEY_DIR_PREFIX}{}", std::process::id()));
        run_tokens_script(&["keys".as_ref(), dir.as_os_str()]);
        dir
    })
}

/// A test process has no exit hook to remove its key directory, so the next one removes those whose
/// process is gone (no `/proc/<pid>`).
fn remove_key_dirs_of_exited_processes() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(KEY_DIR_PREFIX))
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// What an attacker signs with: an RSA key unrelated to the JWKS.
fn forged_key() -> &'static Path {
    static KEY: OnceLock<PathBuf> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = key_dir().join("forged-key.pem");
        run_tokens_script(&["forge-key".as_ref(), key.as_os_str()]);
        key
    })
}

/// `tokens.py ARGS` with the repository's `.venv` Python; its standard output.
fn run_tokens_script(args: &[&OsStr]) -> String {
    let output = Command::new(venv_python())
        .arg(tokens_script())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tokens_script().display()));
    if !output.status.success() {
        panic!(
            "tokens.py {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).expect("tokens.py prints text")
}
