//! A run's output folder and its log.

use crate::io::{
    append_jsonl, check_out_dir, create_writable_dir, remove_stale_temporaries, truncate_jsonl,
};
use crate::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How a run meets its output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new run: the folder must be empty or absent.
    New,
    /// A new run in place of an earlier one, whose files are removed first.
    Overwrite,
    /// The continuation of the run in the folder.
    Resume,
}

impl Start {
    /// The start `resume` and `overwrite` ask for; resuming takes precedence.
    pub fn new(resume: bool, overwrite: bool) -> Self {
        match (resume, overwrite) {
            (true, _) => Start::Resume,
            (false, true) => Start::Overwrite,
            (false, false) => Start::New,
        }
    }
}

/// Prepares the output folder `out` of a run, before anything is written into it: a non-empty
/// folder needs a resume or an overwrite (else an error that says `how_to_proceed`); an
/// overwrite removes the entries of the earlier run, those whose names start with one of
/// `run_entries` (files or folders), so that they do not mix with the new run's. The folder is
/// created and checked to be writable, and the temporary files of writes a killed process never
/// finished are removed from it.
pub fn prepare_out(
    out: &Path,
    start: Start,
    run_entries: &[&str],
    how_to_proceed: &str,
) -> Result<()> {
    let non_empty = check_out_dir(out, start != Start::New, how_to_proceed)?;
    if non_empty && start == Start::Overwrite {
        for entry in std::fs::read_dir(out).map_err(|e| Error::io(out, e))? {
            let path = entry.map_err(|e| Error::io(out, e))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !run_entries.iter().any(|prefix| name.starts_with(prefix)) {
                continue;
            }
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| Error::io(&path, e))?;
        }
    }
    create_writable_dir(out)?;
    remove_stale_temporaries(out)
}

/// A run's JSONL log: one JSON object a line, appended as the run goes.
pub struct RunLog {
    path: PathBuf,
}

impl RunLog {
    /// The log at `path` for a run that starts anew (`resumed_at` `None`: an earlier log is
    /// removed) or resumes from a checkpoint whose numeric field `key` had the value `at` (the
    /// lines a run killed after that checkpoint wrote are dropped).
    pub fn start(path: &Path, resumed_at: Option<(&str, f64)>) -> Result<Self> {
        match resumed_at {
            Some((key, at)) => truncate_jsonl(path, key, at)?,
            None if path.exists() => std::fs::remove_file(path).map_err(|e| Error::io(path, e))?,
            None => {}
        }
        Ok(RunLog {
            path: path.to_owned(),
        })
    }

    /// Appends one entry.
    pub fn append(&self, entry: &impl Serialize) -> Result<()> {
        let value = serde_json::to_value(entry).expect("log entries serialise");
        append_jsonl(&self.path, &value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_empty_folder_needs_a_resume_or_an_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        prepare_out(&out, Start::New, &[], "say how").unwrap();
        std::fs::write(out.join("network-snapshot-000001.safetensors"), b"x").unwrap();
        std::fs::create_dir(out.join("checkpoints")).unwrap();
        std::fs::write(out.join("notes.txt"), b"kept").unwrap();
        let err = prepare_out(&out, Start::New, &[], "say how").unwrap_err();
        assert!(err.to_string().contains("not empty; say how"), "{err}");
        prepare_out(&out, Start::Resume, &["network-snapshot-"], "").unwrap();
        assert!(out.join("network-snapshot-000001.safetensors").exists());
        prepare_out(
            &out,
            Start::Overwrite,
            &["network-snapshot-", "checkpoints"],
            "",
        )
        .unwrap();
        let mut left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["notes.txt"]);
    }

    #[test]
    fn a_resumed_log_keeps_the_lines_up_to_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let log = RunLog::start(&path, None).unwrap();
        for step in 1..=4 {
            log.append(&serde_json::json!({ "step": step })).unwrap();
        }
        RunLog::start(&path, Some(("step", 2.0))).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"step\":1}\n{\"step\":2}\n");
        RunLog::start(&path, None).unwrap();
        assert!(!path.exists());
    }
}
