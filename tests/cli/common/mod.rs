//! What every command-line test needs: run the binary, expect success with one JSON object,
//! or expect a one-line error.

#![allow(dead_code)] // each test crate uses its own subset

use std::process::{Command, Output};

/// The small StyleGAN2 networks and batch of the command-line tests' `train` runs.
pub const TINY_NETWORKS: [&str; 10] = [
    "--batch", "4", "--cbase", "256", "--cmax", "32", "--map", "2", "--zdim", "16",
];

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
    assert_error_output(&whichgan(args), &format!("{args:?}"), needles);
}

/// [`assert_error`] of the output of a command run otherwise (`what` names it); the line.
pub fn assert_error_output(out: &Output, what: &str, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} should fail");
    assert!(out.stdout.is_empty(), "{what} printed to stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: not one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{what}: '{needle}' not in: {stderr}"
        );
    }
    lines[0].to_owned()
}
