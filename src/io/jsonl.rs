//! Run logs as JSON lines: appended one entry at a time, and cut back to a checkpoint's
//! position when a run resumes, so a resumed run's log equals an uninterrupted run's.

use crate::{Error, Result};
use std::path::Path;

/// Appends one entry as a line.
pub fn append_jsonl(path: &Path, entry: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    // One write of the whole line: a process killed mid-append leaves no partial line.
    file.write_all(format!("{entry}\n").as_bytes())
        .map_err(|e| Error::io(path, e))
}

/// Keeps the lines whose numeric field `key` is at most `last` (drops what a run killed after
/// its last checkpoint wrote); a missing file stays missing.
pub fn truncate_jsonl(path: &Path, key: &str, last: f64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v[key].as_f64())
                .is_some_and(|v| v <= last)
        })
        .map(|line| format!("{line}\n"))
        .collect();
    super::write_atomic(path, kept.as_bytes())
}
