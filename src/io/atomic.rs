//! Whole-or-nothing file writes: write a temporary file beside the target, then rename it.

use crate::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long a temporary file must have been left unchanged to count as abandoned: a writer
/// that is still alive, on this machine or another sharing the folder, changes it far more
/// often.
const ABANDONED_AFTER: Duration = Duration::from_secs(600);

/// A fresh temporary path in the same folder as `path` (so the rename stays on one file
/// system): `.<stem>.tmp-<pid>-<n>.<ext>`. The counter keeps two writes of one process apart;
/// the extension stays last because the PNG encoder picks its format from it. Temporaries of
/// the same target abandoned by killed writers are removed on the way.
pub fn temporary_beside(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let stem = path
        .file_stem()
        .map_or("out".into(), |s| s.to_string_lossy());
    let extension = path
        .extension()
        .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
    remove_abandoned_temporaries(path, &format!(".{stem}.tmp-"), &extension);
    path.with_file_name(format!(".{stem}.tmp-{}-{n}{extension}", std::process::id()))
}

/// Removes the temporaries `<prefix><pid>-<n><extension>` beside `path` that nobody has
/// written for [`ABANDONED_AFTER`]. Best effort: another process may be removing them too,
/// and a folder that cannot be listed is the write's own error to report.
fn remove_abandoned_temporaries(path: &Path, prefix: &str, extension: &str) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with(prefix)
            && name.ends_with(extension)
            && temporary_owner(&name).is_some();
        let untouched = || {
            let modified = entry.metadata().and_then(|m| m.modified()).ok()?;
            Some(modified.elapsed().ok()? >= ABANDONED_AFTER)
        };
        if ours && untouched() == Some(true) {
            std::fs::remove_file(entry.path()).ok();
        }
    }
}

/// Whether `name` is that of a temporary file of [`temporary_beside`], and of which process.
fn temporary_owner(name: &str) -> Option<u32> {
    let (_, rest) = name.strip_prefix('.')?.rsplit_once(".tmp-")?;
    let (pid, rest) = rest.split_once('-')?;
    let n = rest.split_once('.').map_or(rest, |(n, _)| n);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n)).then(|| pid.parse().ok())?
}

/// Whether `name` is that of a temporary file of the atomic writer.
pub fn is_temporary(name: &str) -> bool {
    temporary_owner(name).is_some()
}

/// Removes the temporary files in `dir` left by writes that never finished (a process killed
/// between writing and renaming); this process's own are kept.
pub fn remove_stale_temporaries(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(()); // no folder, nothing left behind
    };
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if temporary_owner(&name).is_some_and(|pid| pid != std::process::id()) {
            std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
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
    // A name of this process's own: shards checking one folder at once must not remove each
    // other's probe.
    let probe = temporary_beside(&dir.join(".write-test"));
    std::fs::write(&probe, b"").map_err(|e| Error::io(dir, e))?;
    std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let own = temporary_beside(&dir.path().join("last.safetensors"));
        let keep = [
            "last.safetensors",
            ".last.tmp-x-1.safetensors",
            "notes.tmp-12-3.txt",
            own.file_name().unwrap().to_str().unwrap(),
        ];
        let stale = [
            ".last.tmp-4242-0.safetensors",
            ".w1.tmp-1-17.csv",
            ".log.tmp-7-0",
        ];
        for name in keep.iter().chain(&stale) {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        remove_stale_temporaries(dir.path()).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn temporaries_of_a_target_are_removed_once_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("features.npy");
        let long_ago = SystemTime::now() - 2 * ABANDONED_AFTER;
        let write = |name: &str, modified: SystemTime| {
            let file = std::fs::File::create(dir.path().join(name)).unwrap();
            file.set_modified(modified).unwrap();
        };
        // Abandoned: removed. Recent (a live writer), another target's, not a temporary: kept.
        write(".features.tmp-4242-0.npy", long_ago);
        write(".features.tmp-4243-7.npy", SystemTime::now());
        write(".other.tmp-4242-0.npy", long_ago);
        write(".features.tmp-4242-0.npy.keep", long_ago);
        let fresh = temporary_beside(&target);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".features.tmp-4242-0.npy.keep",
                ".features.tmp-4243-7.npy",
                ".other.tmp-4242-0.npy"
            ]
        );
        assert!(is_temporary(&fresh.file_name().unwrap().to_string_lossy()));
    }
}
