//! What every command-line test needs: run the binary, expect success with one JSON object,
//! or expect a one-line error.

#![allow(dead_code)] // each test crate uses its own subset

use std::process::{Command, Output};

pub fn whichgan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_whichgan"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A successful run's one JSON object.
pub fn ok(out: Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// Asserts a failure with one line `error: …` mentioning every needle, and nothing on stdout.
pub fn assert_error(args: &[&str], needles: &[&str]) {
    let out = whichgan(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{args:?}: '{needle}' not in: {stderr}"
        );
    }
}
