//! Grids on a real Slurm (`--slurm`, `whichgan jobs status`): the fast Figure 3 sweep and the
//! fast image study in 4 array tasks equal one local process byte for byte; a cancelled task
//! is found failed and `--resubmit` finishes the grid. `.ci/slurm-up` starts a one-node Slurm;
//! where none answers the tests say so and pass, unless WHICHGAN_REQUIRE_SLURM is set (as CI
//! sets it). The scripts themselves (`--dry-run`) are checked everywhere.

mod common;
use common::{assert_error, ok, whichgan};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether a Slurm controller answers; panics when it must and does not.
fn slurm_is_up(test: &str) -> bool {
    let up = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !up {
        assert!(
            std::env::var_os("WHICHGAN_REQUIRE_SLURM").is_none(),
            "{test}: WHICHGAN_REQUIRE_SLURM is set but no Slurm answers (run .ci/slurm-up)"
        );
        eprintln!(
            "{test}: skipped, no Slurm controller answers `sinfo` (start one with .ci/slurm-up)"
        );
    } else {
        eprintln!("{test}: running against the Slurm cluster that answers `sinfo`");
    }
    up
}

fn status(dir: &Path) -> serde_json::Value {
    ok(whichgan(&[
        "jobs",
        "status",
        dir.to_str().unwrap(),
        "--json",
    ]))
}

/// Waits until no shard of the grid is pending or running, and returns the status then.
fn wait_for_shards(dir: &Path) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let s = status(dir);
        let busy = ["pending", "running"]
            .iter()
            .any(|k| !s[k].as_array().unwrap().is_empty());
        if !busy {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "shards still busy: {s}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Waits for the collect job to end and asserts it completed.
fn wait_for_collect(dir: &Path) {
    let start = Instant::now();
    loop {
        let s = status(dir);
        match s["collect_state"].as_str().unwrap() {
            "COMPLETED" => return,
            "PENDING" | "RUNNING" | "COMPLETING" | "CONFIGURING" => {}
            other => panic!("the collect job ended {other}: {s}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(900),
            "collect never ran: {s}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// The fast Figure 3 sweep in one local process.
fn local_sweep() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("local");
        ok(whichgan(&[
            "toy",
            "figure3",
            "--preset",
            "fast",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]));
        (tmp, out)
    })
    .1
}

fn submit_sweep(out: &Path) -> serde_json::Value {
    ok(whichgan(&[
        "toy",
        "figure3",
        "--preset",
        "fast",
        "--out",
        out.to_str().unwrap(),
        "--slurm",
        "--shards",
        "4",
        "--json",
    ]))
}

fn assert_same_sweep(out: &Path) {
    for file in ["figure3.csv", "figure3-correlations.csv"] {
        assert_eq!(
            text(&local_sweep().join(file)),
            text(&out.join(file)),
            "{file} differs"
        );
    }
}

#[test]
fn a_figure3_sweep_on_slurm_equals_one_process() {
    if !slurm_is_up("a_figure3_sweep_on_slurm_equals_one_process") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let submitted = submit_sweep(&out);
    assert_eq!(submitted["shards"], 4);
    wait_for_collect(&out);
    let s = status(&out);
    assert_eq!(s["done"], serde_json::json!([0, 1, 2, 3]));
    assert_same_sweep(&out);
    for i in 0..4 {
        assert!(out.join(format!("figure3-shard-{i}-of-4.csv")).is_file());
    }
}

#[test]
fn a_cancelled_task_is_resubmitted_and_the_grid_finishes() {
    if !slurm_is_up("a_cancelled_task_is_resubmitted_and_the_grid_finishes") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let submitted = submit_sweep(&out);
    let task = format!("{}_1", submitted["array_job"].as_str().unwrap());
    let cancelled = Command::new("scancel").arg(&task).status().unwrap();
    assert!(cancelled.success());
    let s = wait_for_shards(&out);
    assert_eq!(s["failed"], serde_json::json!([1]), "{s}");
    assert_eq!(s["done"], serde_json::json!([0, 2, 3]), "{s}");
    // The collect job waits for a task that never succeeds.
    assert_eq!(s["collect_state"], "PENDING");
    let r = ok(whichgan(&[
        "jobs",
        "status",
        out.to_str().unwrap(),
        "--resubmit",
        "--json",
    ]));
    assert_eq!(r["resubmitted"], serde_json::json!([1]));
    wait_for_collect(&out);
    assert_same_sweep(&out);
    // Nothing is left to resubmit.
    let r = ok(whichgan(&[
        "jobs",
        "status",
        out.to_str().unwrap(),
        "--resubmit",
        "--json",
    ]));
    assert_eq!(r["resubmitted"], serde_json::json!([]));
}

#[test]
fn the_fast_image_study_on_slurm_equals_one_run() {
    if !slurm_is_up("the_fast_image_study_on_slurm_equals_one_run") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (local, cluster) = (tmp.path().join("local"), tmp.path().join("cluster"));
    ok(whichgan(&[
        "study",
        "run",
        "--preset",
        "fast",
        "--out",
        local.to_str().unwrap(),
        "--json",
    ]));
    ok(whichgan(&[
        "study",
        "run",
        "--preset",
        "fast",
        "--out",
        cluster.to_str().unwrap(),
        "--slurm",
        "--shards",
        "4",
        "--json",
    ]));
    wait_for_collect(&cluster);
    for table in [
        "runs.csv",
        "convergence.csv",
        "selection.csv",
        "correlations.csv",
    ] {
        assert_eq!(
            text(&local.join("report").join(table)),
            text(&cluster.join("report").join(table)),
            "{table} differs"
        );
    }
}

#[test]
fn dry_runs_print_the_scripts_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let o = out.to_str().unwrap();
    let printed = whichgan(&[
        "toy",
        "figure3",
        "--preset",
        "fast",
        "--out",
        o,
        "--slurm",
        "--shards",
        "3",
        "--partition",
        "cpu",
        "--time",
        "1:00:00",
        "--gpus-per-task",
        "1",
        "--cpus-per-task",
        "4",
        "--mem",
        "8G",
        "--account",
        "lab",
        "--max-parallel",
        "2",
        "--sbatch=--qos=long",
        "--dry-run",
    ]);
    assert!(printed.status.success());
    let scripts = String::from_utf8(printed.stdout).unwrap();
    for line in [
        "#SBATCH --array=0-2%2",
        "#SBATCH --partition=cpu",
        "#SBATCH --time=1:00:00",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=8G",
        "#SBATCH --account=lab",
        "#SBATCH --qos=long",
        "#SBATCH --job-name=whichgan-figure3-collect",
    ] {
        assert!(
            scripts.lines().any(|l| l == line),
            "{line} not in:\n{scripts}"
        );
    }
    let shard_line = scripts
        .lines()
        .find(|l| l.contains(" toy figure3 "))
        .unwrap();
    assert!(
        shard_line.ends_with(&format!(
            "--out {o} --json --protocol updates --recall-arithmetic exact --shard \"$i/3\""
        )),
        "{shard_line}"
    );
    assert!(scripts.contains(&format!(
        " toy merge {o} --out {o} --json --recall-arithmetic exact"
    )));
    // The reproduction's array runs the sweep; its collect job the rest from the shards.
    let printed = whichgan(&[
        "toy",
        "reproduce",
        "--preset",
        "fast",
        "--out",
        o,
        "--slurm",
        "--dry-run",
    ]);
    let scripts = String::from_utf8(printed.stdout).unwrap();
    assert!(
        scripts.contains(&format!("--sweep-from {o}/figure3-shards")),
        "{scripts}"
    );
    assert!(!out.exists(), "a dry run wrote {out:?}");
    assert_error(
        &[
            "toy", "figure3", "--preset", "fast", "--out", o, "--slurm", "--shards", "1000",
        ],
        &["--shards 1000", "must lie in 1…"],
    );
    assert_error(
        &["jobs", "status", tmp.path().to_str().unwrap()],
        &["holds no grid submitted to Slurm"],
    );
}
