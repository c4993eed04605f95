//! Crash consistency of every command whose files a later command reads: each is killed
//! (SIGKILL) at moments spread over the time an uninterrupted run takes. Every file a killed
//! run leaves must be complete — equal to the uninterrupted run's file of that name, a prefix of
//! its log — or a temporary that no reader takes; the command run again (resumed where it
//! resumes) must then leave exactly the uninterrupted run's outputs. `CRASH_TRIALS` sets the
//! kills per command (3 here; the long run, `experiments/reliability/crash-long`, uses 20).

mod common;
#[path = "../common/formula.rs"]
mod formula;
use common::{ok, whichgan, TINY_NETWORKS};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn run(args: &[String]) -> serde_json::Value {
    ok(whichgan(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
}

/// The files under `dir`, by path relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    found.sort();
    found
}

fn is_temporary(rel: &Path) -> bool {
    whichgan::io::is_temporary(&rel.file_name().unwrap().to_string_lossy())
}

/// A JSONL log's entries without their timings.
fn untimed_log(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{path:?}: a broken line ({e}): {line}"));
            v.as_object_mut()
                .unwrap()
                .retain(|k, _| !k.starts_with("sec_"));
            v
        })
        .collect()
}

/// Whether the file `rel` a killed run left is complete: a log whose lines begin the
/// uninterrupted run's log, anything else equal to the uninterrupted run's file.
fn assert_complete(rel: &Path, left: &Path, whole: &Path) {
    let theirs = whole.join(rel);
    assert!(
        theirs.exists(),
        "{left:?} is not an output of the uninterrupted run"
    );
    if rel.extension().is_some_and(|e| e == "jsonl") {
        let (mine, theirs) = (untimed_log(left), untimed_log(&theirs));
        assert!(
            theirs.starts_with(&mine),
            "{left:?} is not a beginning of the uninterrupted run's log"
        );
    } else {
        assert!(
            std::fs::read(left).unwrap() == std::fs::read(&theirs).unwrap(),
            "{left:?} differs from the uninterrupted run's"
        );
    }
}

/// A command's arguments for an output folder.
type Arguments<'a> = &'a dyn Fn(&Path) -> Vec<String>;

/// A command under test: its arguments for an output folder, and what runs it again.
struct Crashable<'a> {
    name: &'a str,
    args: Arguments<'a>,
    /// The arguments that finish a killed run in the folder (default: the same command).
    finish: Option<Arguments<'a>>,
    /// Files a killed run may leave that the finished run removes (relative path → allowed).
    transient: &'a dyn Fn(&Path) -> bool,
    /// The command owns its folder: no temporaries may be left once it has finished.
    owns_folder: bool,
}

fn trials() -> usize {
    std::env::var("CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Kills `c` [`trials`] times at moments spread over an uninterrupted run (seeded, so a failure
/// repeats), checks what each kill left, finishes the run and compares its outputs.
fn crash_trials(dir: &Path, c: Crashable) {
    let whole = dir.join(format!("{}-whole", c.name));
    let started = Instant::now();
    run(&(c.args)(&whole));
    let took = started.elapsed();
    let outputs: Vec<PathBuf> = files(&whole);
    let n = trials();
    let mut draw = c.name.bytes().fold(7u64, |h, b| h * 31 + b as u64);
    let mut mid_run = 0;
    for trial in 0..n {
        draw = draw
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let jitter = (draw >> 11) as f64 / (1u64 << 53) as f64;
        let delay = took.mul_f64((trial as f64 + jitter) / n as f64);
        let out = dir.join(format!("{}-{trial}", c.name));
        let mut child = Command::new(env!("CARGO_BIN_EXE_whichgan"))
            .args((c.args)(&out))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            mid_run += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for rel in files(&out) {
            if !is_temporary(&rel) && !(c.transient)(&rel) {
                assert_complete(&rel, &out.join(&rel), &whole);
            }
        }
        run(&c.finish.unwrap_or(c.args)(&out));
        let left = files(&out);
        for rel in &left {
            let allowed = (is_temporary(rel) && !c.owns_folder) || outputs.contains(rel);
            assert!(allowed, "{} trial {trial}: {rel:?} left behind", c.name);
        }
        for rel in &outputs {
            assert!(left.contains(rel), "{} trial {trial}: no {rel:?}", c.name);
            assert_complete(rel, &out.join(rel), &whole);
        }
    }
    eprintln!(
        "crash {}: {n} kills over {:.2} s, {mid_run} mid-run, every run finished equal",
        c.name,
        took.as_secs_f64()
    );
    assert!(mid_run > 0, "{}: no kill landed mid-run", c.name);
}

fn synth(dir: &Path, name: &str, images: &str, resolution: &str) -> PathBuf {
    let zip = dir.join(name);
    let args = [
        "dataset",
        "synth",
        "--images",
        images,
        "--classes",
        "4",
        "--resolution",
        resolution,
        "--out",
        s(&zip),
        "--json",
    ];
    ok(whichgan(&args));
    zip
}

const NEVER: &dyn Fn(&Path) -> bool = &|_| false;

#[test]
fn features_and_their_cache() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "data.zip", "4000", "32");
    let args = |out: &Path| {
        std::fs::create_dir_all(out).unwrap();
        let (cache, features) = (out.join("cache"), out.join("features.npy"));
        strings(&[
            "features",
            "--extractor",
            "pixels",
            "--data",
            s(&data),
            "--cache",
            s(&cache),
            "--out",
            s(&features),
            "--json",
        ])
    };
    crash_trials(
        dir.path(),
        Crashable {
            name: "features",
            args: &args,
            finish: None,
            transient: NEVER,
            owns_folder: false,
        },
    );
}

#[test]
fn dataset_pack() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "data.zip", "2000", "64");
    let args = |out: &Path| {
        std::fs::create_dir_all(out).unwrap();
        let packed = out.join("packed.zip");
        strings(&[
            "dataset",
            "pack",
            s(&data),
            s(&packed),
            "--resize",
            "32",
            "--json",
        ])
    };
    crash_trials(
        dir.path(),
        Crashable {
            name: "pack",
            args: &args,
            finish: None,
            transient: NEVER,
            owns_folder: false,
        },
    );
}

#[test]
fn select_and_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let target = synth(dir.path(), "target.zip", "16", "16");
    let source = synth(dir.path(), "source.zip", "24", "16");
    let weights = formula::inception_file(&dir.path().join("inception.safetensors"));
    let args = |out: &Path| {
        let source = format!("shapes={}", s(&source));
        strings(&[
            "select",
            "--target",
            s(&target),
            "--source",
            &source,
            "--inception",
            s(&weights),
            "--kid-subset-size",
            "8",
            "--kid-subsets",
            "4",
            "--cache",
            s(&out.join("cache")),
            "--out",
            s(&out.join("selection")),
            "--json",
        ])
    };
    crash_trials(
        dir.path(),
        Crashable {
            name: "select",
            args: &args,
            finish: None,
            transient: NEVER,
            owns_folder: false,
        },
    );
}

/// The last snapshot in a run folder, if any.
fn last_snapshot(run: &Path) -> Option<PathBuf> {
    files(run)
        .into_iter()
        .filter(|rel| {
            let name = rel.to_string_lossy();
            name.starts_with("network-snapshot-") && !is_temporary(rel)
        })
        .max()
        .map(|rel| run.join(rel))
}

#[test]
fn a_training_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "data.zip", "24", "8");
    let args = |out: &Path| {
        let head = [
            "train",
            "--data",
            s(&data),
            "--out",
            s(out),
            "--kimg",
            "0.384",
        ];
        let tail = [
            "--tick", "0.016", "--snap", "0.064", "--grid", "4", "--aug", "ada", "--p", "0.2",
            "--json",
        ];
        strings(&[&head[..], &TINY_NETWORKS, &tail].concat())
    };
    // Resumed from its last snapshot; started over (the same command) when it has none.
    let finish = |out: &Path| {
        let mut args = args(out);
        if let Some(snapshot) = last_snapshot(out) {
            args.extend(strings(&["--resume", s(&snapshot)]));
        }
        args
    };
    crash_trials(
        dir.path(),
        Crashable {
            name: "train",
            args: &args,
            finish: Some(&finish),
            transient: NEVER,
            owns_folder: true,
        },
    );
}

#[test]
fn a_toy_sweep_shard() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path| {
        strings(&[
            "toy",
            "figure3",
            "--preset",
            "fast",
            "--shard",
            "1/4",
            "--out",
            s(out),
            "--json",
        ])
    };
    // The rows of finished fine-tunes, kept until the shard's table is written.
    let progress = |rel: &Path| rel.starts_with(".figure3-shard-1-of-4-progress");
    crash_trials(
        dir.path(),
        Crashable {
            name: "figure3",
            args: &args,
            finish: None,
            transient: &progress,
            owns_folder: true,
        },
    );
}
