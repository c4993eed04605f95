//! Full disks: `train` and `features` writing onto a file system of a few megabytes (a tmpfs
//! this test mounts) that fills up midway. Each stops with a one-line error naming the file it
//! could not write; what was written before (snapshots, cache entries) is intact and no partial
//! file is left. Mounting needs root (CI runs as root); otherwise the tests are skipped with a
//! printed reason.

mod common;
use common::{assert_error, assert_error_output, ok, whichgan, TINY_NETWORKS};

use std::path::{Path, PathBuf};
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tmpfs of `size` (e.g. `2500k`), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None`, with the reason printed, where no file system can be mounted.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(SmallDisk { dir }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                eprintln!("skipped: cannot mount a small tmpfs ({})", why.trim());
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount ({e})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        Command::new("umount").arg(self.dir.path()).status().ok();
    }
}

/// The files under `dir`, sorted (relative names).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn synth(dir: &Path, images: &str) -> PathBuf {
    let zip = dir.join(format!("shapes-{images}.zip"));
    ok(whichgan(&[
        "dataset",
        "synth",
        "--images",
        images,
        "--resolution",
        "8",
        "--out",
        s(&zip),
        "--json",
    ]));
    zip
}

fn train_args<'a>(data: &'a Path, out: &'a Path) -> Vec<&'a str> {
    let head = [
        "train",
        "--data",
        s(data),
        "--out",
        s(out),
        "--kimg",
        "0.128",
    ];
    let tail = [
        "--tick", "0.016", "--snap", "0.016", "--grid", "4", "--json",
    ];
    [&head[..], &TINY_NETWORKS, &tail].concat()
}

#[test]
fn training_onto_a_full_disk_keeps_its_snapshots() {
    let Some(disk) = SmallDisk::mount("2500k") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "24");
    // The same run on a roomy disk: its snapshots are what the full disk's must equal.
    let roomy = dir.path().join("roomy");
    ok(whichgan(&train_args(&data, &roomy)));
    // Snapshots of ~1 MB each: the second fits beside the first, the third does not.
    let out = disk.path().join("run");
    let error = assert_error_output(
        &whichgan(&train_args(&data, &out)),
        "train onto a full disk",
        &[s(&out), "No space left on device"],
    );
    let left = files(&out);
    let snapshots: Vec<&String> = left
        .iter()
        .filter(|n| n.starts_with("network-snapshot-"))
        .collect();
    assert!(
        !snapshots.is_empty(),
        "no snapshot fitted: {left:?} ({error})"
    );
    for name in &snapshots {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(roomy.join(name)).unwrap(),
            "{name} is not intact"
        );
    }
    for name in &left {
        assert!(!whichgan::io::is_temporary(name), "{name} left behind");
        assert!(
            roomy.join(name).exists(),
            "{name} is not an output of the run"
        );
    }
}

fn features_args<'a>(data: &'a Path, cache: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "features",
        "--extractor",
        "pixels",
        "--data",
        s(data),
        "--cache",
        s(cache),
        "--out",
        s(out),
        "--json",
    ]
}

#[test]
fn features_onto_a_full_disk_keep_the_cache_entries() {
    let Some(disk) = SmallDisk::mount("1m") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (small, large) = (synth(dir.path(), "200"), synth(dir.path(), "2000"));
    let cache = disk.path().join("cache");
    // 200 × 256 floats fit in the cache; 2000 × 256 (2 MB) do not.
    let first = dir.path().join("small.npy");
    ok(whichgan(&features_args(&small, &cache, &first)));
    let entries = files(&cache);
    let before: Vec<Vec<u8>> = entries
        .iter()
        .map(|n| std::fs::read(cache.join(n)).unwrap())
        .collect();
    let second = dir.path().join("large.npy");
    assert_error(
        &features_args(&large, &cache, &second),
        &[s(&cache), "No space left on device"],
    );
    assert_eq!(files(&cache), entries, "the cache holds other files");
    for (name, bytes) in entries.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(cache.join(name)).unwrap(),
            bytes,
            "{name} changed"
        );
    }
    // The first entry still serves its images.
    let again = ok(whichgan(&features_args(
        &small,
        &cache,
        &dir.path().join("again.npy"),
    )));
    assert_eq!(again["cached"], true);
    // Features written onto the full disk itself: refused the same way, nothing left.
    let onto_disk = disk.path().join("large.npy");
    assert_error(
        &features_args(&large, &dir.path().join("cache2"), &onto_disk),
        &[s(&onto_disk), "No space left on device"],
    );
    assert!(!onto_disk.exists());
    assert!(
        files(disk.path())
            .iter()
            .all(|n| !whichgan::io::is_temporary(n)),
        "{:?}",
        files(disk.path())
    );
}
