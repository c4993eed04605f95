//! Whole-or-nothing file writes: write a temporary file beside the target, then rename it.

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh temporary path in the same folder as `path` (so the rename stays on one file
/// system): `.<stem>.tmp-<pid>-<n>.<ext>`. The counter keeps two writes of one process apart;
/// the extension stays last because the PNG encoder picks its format from it.
pub fn temporary_beside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let stem = path
        .file_stem()
        .map_or("out".into(), |s| s.to_string_lossy());
    let extension = path
        .extension()
        .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
    path.with_file_name(format!(".{stem}.tmp-{}-{n}{extension}", std::process::id()))
}

/// Writes `bytes` to `path` atomically: readers see the old file or the complete new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temporary_beside(path);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        std::fs::remove_file(&tmp).ok();
        Error::io(path, e)
    })
}

/// Whether the output folder `out` already holds something: an error saying `how_to_proceed`
/// when it does and the run may not reuse it (`may_reuse`: resuming or overwriting).
pub fn check_out_dir(out: &Path, may_reuse: bool, how_to_proceed: &str) -> Result<bool> {
    let non_empty = std::fs::read_dir(out)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if non_empty && !may_reuse {
        return Err(Error::in_file(
            out,
            format!("output folder is not empty; {how_to_proceed}"),
        ));
    }
    Ok(non_empty)
}

/// Creates `dir` (and its parents) and checks that files can be written in it, so that a run
/// fails before its work rather than at its first output.
pub fn create_writable_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"").map_err(|e| Error::io(dir, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}
