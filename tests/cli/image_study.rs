//! `whichgan study run|report|init`: the `fast` study end to end (every output, the CSVs'
//! columns and rows, correlations recomputed by `metrics corr`), a split run (shards out of
//! order, and `--jobs`) and a killed run resumed, each equal to one run byte for byte; and
//! study files refused with one line naming the key, before anything is written.

mod common;
use common::{assert_error, ok, whichgan};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The tables of a report, which every way of running the study must write identically.
const TABLES: [&str; 5] = [
    "runs.csv",
    "convergence.csv",
    "selection.csv",
    "selection-failures.csv",
    "correlations.csv",
];

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// The `fast` study run once, shared by the tests that read it.
fn reference() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("study");
        let report = ok(whichgan(&[
            "study",
            "run",
            "--preset",
            "fast",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]));
        assert_eq!(report["skipped"], 0);
        (tmp, out)
    })
    .1
}

fn assert_same_tables(a: &Path, b: &Path) {
    for table in TABLES {
        assert_eq!(
            text(&a.join("report").join(table)),
            text(&b.join("report").join(table)),
            "{table} differs"
        );
    }
}

/// A CSV file as (header, rows of cells).
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let t = text(path);
    let mut lines = t.lines().map(|l| l.split(',').map(String::from).collect());
    (lines.next().expect("a header"), lines.collect())
}

#[test]
fn the_fast_study_writes_every_output() {
    let out = reference();
    let report = out.join("report");
    for file in TABLES.iter().chain(&[
        "README.md",
        "fid-vs-kimg.png",
        "fid-vs-kimg.svg",
        "classes-vs-kimg.png",
        "precision-recall.png",
        "selection-failures.png",
    ]) {
        assert!(report.join(file).is_file(), "{file} missing");
    }
    let (header, rows) = csv(&report.join("runs.csv"));
    assert_eq!(
        header,
        [
            "source",
            "target",
            "kimg",
            "fid",
            "kid",
            "precision",
            "recall",
            "classes_covered"
        ]
    );
    // 3 starts × 2 targets × 3 snapshots (0.384 kimg, a snapshot every 0.128).
    assert_eq!(rows.len(), 18);
    for row in &rows {
        let covered: usize = row[7].parse().expect("classes are counted on both targets");
        assert!(covered <= 4, "{row:?}");
        let (p, r): (f64, f64) = (row[5].parse().unwrap(), row[6].parse().unwrap());
        assert!((0.0..=1.0).contains(&p) && (0.0..=1.0).contains(&r));
    }
    let (header, rows) = csv(&report.join("convergence.csv"));
    assert_eq!(
        header[0..4],
        ["source", "target", "final_kimg", "final_fid"]
    );
    assert_eq!(rows.len(), 6);
    let (_, rows) = csv(&report.join("selection.csv"));
    // 2 targets × 2 settings × 4 metrics, each ranking both sources.
    assert_eq!(rows.len(), 16);
    assert!(rows.iter().all(|r| r[3].split(" > ").count() == 2));
    let readme = text(&report.join("README.md"));
    for claim in ["## 1.", "## 2.", "## 3.", "## 4.", "## 5."] {
        assert!(readme.contains(claim), "{claim} missing");
    }
    // Every job left its marker; a second run finds them all done.
    let again = ok(whichgan(&[
        "study",
        "run",
        "--preset",
        "fast",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(again["ran"], 0);
    assert_eq!(again["skipped"], again["jobs"]);
}

#[test]
fn correlations_agree_with_metrics_corr() {
    let out = reference();
    let report = out.join("report");
    // The pairs behind correlations.csv, rebuilt from runs.csv and the selection files.
    let (header, rows) = csv(&report.join("runs.csv"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut table = String::from("score,final_fid\n");
    for target in ["a", "b"] {
        for source in ["broad", "narrow"] {
            let last = rows
                .iter()
                .rfind(|r| r[col("source")] == source && r[col("target")] == target)
                .unwrap();
            let sel: serde_json::Value = serde_json::from_str(&text(
                &out.join("selection")
                    .join(target)
                    .join(format!("{source}.json")),
            ))
            .unwrap();
            let score = sel["generated"]["recall"].as_f64().unwrap();
            table.push_str(&format!("{score},{}\n", last[col("fid")]));
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let pairs = tmp.path().join("pairs.csv");
    std::fs::write(&pairs, table).unwrap();
    let corr = whichgan(&[
        "metrics",
        "corr",
        pairs.to_str().unwrap(),
        "--x",
        "score",
        "--y",
        "final_fid",
        "--json",
    ]);
    let (header, rows) = csv(&report.join("correlations.csv"));
    let row = rows
        .iter()
        .find(|r| r[0] == "generated" && r[1] == "recall" && r[2] == "final_fid")
        .unwrap();
    if corr.status.success() {
        let c: serde_json::Value = serde_json::from_slice(&corr.stdout).unwrap();
        let cell = |name: &str| {
            row[header.iter().position(|h| h == name).unwrap()]
                .parse::<f64>()
                .unwrap()
        };
        assert_eq!(row[3], "4");
        assert!((cell("pearson_r") - c["pearson_r"].as_f64().unwrap()).abs() < 1e-12);
        assert!((cell("spearman_rho") - c["spearman_rho"].as_f64().unwrap()).abs() < 1e-12);
        assert!((cell("pearson_p") - c["pearson_p"].as_f64().unwrap()).abs() < 1e-12);
    } else {
        // A constant score has no correlation: the report leaves the cells empty.
        assert_eq!(row[4], "", "{row:?}");
    }
}

#[test]
fn shards_out_of_order_equal_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    let o = out.to_str().unwrap();
    // Shard 1 first: it runs the jobs of shard 0 it needs, which shard 0 then finds done.
    for shard in ["1/2", "0/2"] {
        let r = ok(whichgan(&[
            "study", "run", "--preset", "fast", "--out", o, "--shard", shard, "--json",
        ]));
        assert_eq!(r["shard"], shard);
    }
    ok(whichgan(&["study", "report", o, "--json"]));
    assert_same_tables(reference(), &out);
}

#[test]
fn parallel_shards_equal_one_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    let o = out.to_str().unwrap();
    let r = ok(whichgan(&[
        "study", "run", "--preset", "fast", "--out", o, "--jobs", "2", "--json",
    ]));
    assert_eq!(r["shards"], 2);
    assert!(out.join("logs/shard-0-of-2.log").is_file());
    assert_same_tables(reference(), &out);
}

#[test]
fn a_killed_run_resumes_to_the_same_result() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("study");
    let o = out.to_str().unwrap();
    let args = ["study", "run", "--preset", "fast", "--out", o, "--json"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_whichgan"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once a fine-tune has written its first snapshot (mid-run).
    let started = Instant::now();
    let first = out.join("runs/a/broad/network-snapshot-000000.128.safetensors");
    while !first.exists() && started.elapsed() < Duration::from_secs(600) {
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.exists(), "the run never reached a fine-tune");
    assert!(!out.join("report").exists());
    let r = ok(whichgan(&args));
    assert!(r["ran"].as_u64().unwrap() > 0);
    assert_same_tables(reference(), &out);
}

#[test]
fn bad_study_files_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    let out = tmp.path().join("out");
    let fast = include_str!("../../experiments/presets/study-fast.toml");
    for (from, to, needles) in [
        (
            "kimg = 0.384",
            "kimgg = 0.384",
            &["s.toml", "line", "kimgg"][..],
        ),
        ("kimg = 0.384", "kimg = 'x'", &["s.toml", "key 'kimg'"][..]),
        (
            "data = \"target-a\"",
            "data = \"nowhere\"",
            &["`targets.a.data`"][..],
        ),
        (
            "batch = 8\ncbase",
            "batch = 6\ncbase",
            &["training.batch_gpu`"][..],
        ),
        (
            "features = \"pixels\"",
            "features = \"resnet\"",
            &["`metrics.features`"][..],
        ),
        (
            "broad_source = \"broad\"",
            "broad_source = \"other\"",
            &["`report.broad_source`"][..],
        ),
    ] {
        assert!(fast.contains(from), "{from}");
        std::fs::write(&file, fast.replacen(from, to, 1)).unwrap();
        assert_error(
            &[
                "study",
                "run",
                file.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            needles,
        );
        assert!(!out.exists(), "{to}: something was written");
    }
    assert_error(
        &[
            "study",
            "run",
            "--preset",
            "huge",
            "--out",
            out.to_str().unwrap(),
        ],
        &["no study preset 'huge'", "fast"],
    );
    assert_error(
        &["study", "report", tmp.path().to_str().unwrap()],
        &["is not a study folder"],
    );
}

#[test]
fn init_writes_a_study_file_that_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("paper.toml");
    ok(whichgan(&[
        "study",
        "init",
        "--preset",
        "paper",
        file.to_str().unwrap(),
        "--json",
    ]));
    let written = text(&file);
    assert!(written.contains("cfg = \"paper256\""));
    // The template's paths are the user's to fill: reading it names the first missing one.
    assert_error(
        &[
            "study",
            "run",
            file.to_str().unwrap(),
            "--out",
            tmp.path().join("o").to_str().unwrap(),
        ],
        &["paper.toml", "`targets."],
    );
    // An existing file is not overwritten.
    assert_error(
        &["study", "init", "--preset", "tiny", file.to_str().unwrap()],
        &["paper.toml"],
    );
}
