#![cfg(test)]
//! `triage route --engine`: the shipped triage.wasm (through the wasmtime host) decides like the
//! native core, and a build without the wasm engine says how to get it.

use std::process::Command;

const BODIES: &str = r#"{"model":"auto","messages":[{"role":"user","content":"Translate 'good morning' to French."}]}
{"model":"auto","messages":[{"role":"user","content":"Prove that there are infinitely many twin primes, or explain step by step why this is open, with the key lemmas in LaTeX: $\\sum_p 1/p$."}]}
{"model":"auto","input":"Classify the sentiment of: the delivery was late again."}
{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}
{"model":"auto","messages":5}
"#;

fn route(engine: &str) -> std::process::Output {
    let input = std::env::temp_dir().join(format!("triage-engine-{}-{engine}", std::process::id()));
    std::fs::write(&input, BODIES).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_triage"))
        .args([
            "route",
            "--engine",
            engine,
            "--input",
            input.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    std::fs::remove_file(&input).unwrap();
    output
}

#[cfg(feature = "wasm-engine")]
#[test]
fn the_module_decides_like_the_native_core() {
    let parse = |output: std::process::Output| -> Vec<serde_json::Value> {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let native = parse(route("native"));
    let wasm = parse(route("wasm"));
    assert_eq!(native.len(), 5);
    assert_eq!(wasm.len(), native.len());
    for (native, wasm) in native.iter().zip(&wasm) {
        for field in ["id", "tier", "model", "reasons"] {
            assert_eq!(native[field], wasm[field], "{field}: {native} vs {wasm}");
        }
        match (native["score"].as_f64(), wasm["score"].as_f64()) {
            // The module's score travels in x-triage-score, with 4 decimals.
            (Some(native), Some(wasm)) => {
                assert!((native - wasm).abs() <= 5e-5, "{native} vs {wasm}")
            }
            (native, wasm) => assert_eq!(native, wasm),
        }
    }
}

#[cfg(not(feature = "wasm-engine"))]
#[test]
fn without_the_feature_the_wasm_engine_is_refused_with_the_fix() {
    let output = route("wasm");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--features wasm-engine"));
    assert!(route("native").status.success());
}
