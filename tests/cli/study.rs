//! `whichgan toy reproduce|figure3|merge`: the fast preset end to end, the correlations
//! recomputed from the CSV, shard + merge equal to a single run, and bad input.

mod common;
use common::{assert_error, ok, whichgan};

use std::collections::HashMap;
use std::path::Path;

/// A CSV file as (header, rows of cells).
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect());
    (lines.next().expect("a header"), lines.collect())
}

fn column(header: &[String], rows: &[Vec<String>], name: &str) -> Vec<f64> {
    let i = header.iter().position(|h| h == name).expect(name);
    rows.iter().map(|r| r[i].parse().unwrap()).collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

#[test]
fn fast_preset_end_to_end_and_shards_equal_a_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plots");
    let out_s = out.to_str().unwrap();
    let summary = ok(whichgan(&[
        "toy",
        "reproduce",
        "--preset",
        "fast",
        "--out",
        out_s,
        "--json",
    ]));
    assert_eq!(summary["preset"], "fast");
    assert_eq!(summary["timings"].as_array().unwrap().len(), 4);
    // The CPU's vector instructions are recorded beside the numbers they round.
    assert_eq!(summary["cpu"]["arch"], std::env::consts::ARCH);
    #[cfg(target_arch = "x86_64")]
    {
        let has = |f: &str| {
            summary["cpu"]["features"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == f)
        };
        assert_eq!(has("avx2"), std::arch::is_x86_feature_detected!("avx2"));
        assert_eq!(
            has("avx512f"),
            std::arch::is_x86_feature_detected!("avx512f")
        );
    }
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(readme.contains("on a CPU with the same vector instructions"));

    for stem in ["figure2", "figure3", "ablation", "coverage"] {
        for ext in ["png", "svg"] {
            let f = out.join(format!("{stem}.{ext}"));
            assert!(
                f.metadata().map(|m| m.len() > 1000).unwrap_or(false),
                "{f:?}"
            );
        }
    }
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    for needle in [
        "figure2.png",
        "figure3.png",
        "ablation.png",
        "coverage.png",
        "r(recall, min W1)",
    ] {
        assert!(readme.contains(needle), "README lacks {needle}");
    }

    // The fast preset: 500 pretraining steps, a checkpoint every 50 → 11; fine-tunes of 200
    // steps evaluated every 100; target runs of 200 steps evaluated every 50; 3 seeds.
    let (h3, rows3) = csv(&out.join("figure3.csv"));
    assert_eq!(
        h3,
        [
            "seed",
            "checkpoint",
            "checkpoint_updates",
            "recall",
            "precision",
            "recall_f32_expanded",
            "precision_f32_expanded",
            "grad_sim_notebook",
            "grad_sim_descent",
            "grad_sim_samples",
            "w1_step_0",
            "w1_step_100",
            "w1_step_200",
            "min_w1"
        ]
    );
    assert_eq!(rows3.len(), 11);
    let steps = column(&h3, &rows3, "checkpoint");
    assert_eq!(steps, (0..=10).map(|i| 50.0 * i as f64).collect::<Vec<_>>());
    assert_eq!(
        column(&h3, &rows3, "checkpoint_updates"),
        steps,
        "the default protocol"
    );
    let notebook = column(&h3, &rows3, "grad_sim_notebook");
    let descent = column(&h3, &rows3, "grad_sim_descent");
    for (n, d) in notebook.iter().zip(&descent) {
        assert_eq!(*n, -*d, "the two signs are exact negatives");
        assert!(n.abs() <= 1.0);
    }
    let min_w1 = column(&h3, &rows3, "min_w1");
    for (i, m) in min_w1.iter().enumerate() {
        let w: Vec<f64> = ["w1_step_0", "w1_step_100", "w1_step_200"]
            .iter()
            .map(|c| column(&h3, &rows3, c)[i])
            .collect();
        assert_eq!(*m, w.iter().copied().fold(f64::INFINITY, f64::min));
    }

    let (hc, rowsc) = csv(&out.join("figure3-correlations.csv"));
    assert_eq!(
        rowsc.len(),
        6,
        "recall and precision in two arithmetics, ∇D similarity in two signs"
    );
    let corr: HashMap<(String, String), Vec<f64>> = rowsc
        .iter()
        .map(|r| {
            let key = (r[1].clone(), r[2].clone());
            let values = ["n", "pearson_r", "pearson_p", "spearman_rho", "spearman_p"]
                .iter()
                .map(|c| r[hc.iter().position(|h| h == c).unwrap()].parse().unwrap())
                .collect();
            (key, values)
        })
        .collect();
    // r and p recomputed from the CSV by the metrics command agree with the correlations file.
    let figure3_csv = out.join("figure3.csv");
    for (x, key) in [
        ("recall", ("recall", "exact")),
        ("recall_f32_expanded", ("recall", "f32-expanded")),
        ("grad_sim_notebook", ("grad_sim", "notebook")),
        ("grad_sim_descent", ("grad_sim", "descent")),
        ("precision", ("precision", "exact")),
        ("precision_f32_expanded", ("precision", "f32-expanded")),
    ] {
        let got = ok(whichgan(&[
            "metrics",
            "corr",
            figure3_csv.to_str().unwrap(),
            "--x",
            x,
            "--y",
            "min_w1",
            "--json",
        ]));
        let want = &corr[&(key.0.to_string(), key.1.to_string())];
        assert_eq!(got["n"].as_f64().unwrap(), want[0]);
        for (field, i) in [
            ("pearson_r", 1),
            ("pearson_p", 2),
            ("spearman_rho", 3),
            ("spearman_p", 4),
        ] {
            let g = got[field].as_f64().unwrap();
            assert!(close(g, want[i], 1e-12), "{x} {field}: {g} vs {}", want[i]);
        }
    }
    let r_notebook = corr[&("grad_sim".into(), "notebook".into())][1];
    let r_descent = corr[&("grad_sim".into(), "descent".into())][1];
    assert!(close(r_notebook, -r_descent, 1e-12));

    let (h2, rows2) = csv(&out.join("figure2.csv"));
    assert_eq!(
        h2,
        [
            "seed",
            "start",
            "final_w1",
            "min_w1",
            "modes_covered",
            "recall",
            "precision"
        ]
    );
    assert_eq!(rows2.len(), 3 * 3, "3 seeds × 3 starts");
    let (ha, rowsa) = csv(&out.join("ablation.csv"));
    assert_eq!(ha.len(), 8);
    assert_eq!(
        rowsa.len(),
        2 * 4 * 3 * 5,
        "2 sources × 4 starts × 3 seeds × 5 evaluations"
    );
    let (_, ranking) = csv(&out.join("ablation-ranking.csv"));
    assert_eq!(ranking.len(), 8);
    let (hv, rowsv) = csv(&out.join("coverage.csv"));
    assert_eq!(rowsv.len(), 3 * 3 * 5, "3 starts × 3 seeds × 5 evaluations");
    for m in column(&hv, &rowsv, "modes_covered") {
        assert!((0.0..=10.0).contains(&m));
    }

    // Two shards, run separately, merged: byte-identical to the single run's files.
    let shard_dir = dir.path().join("shards");
    let shard_s = shard_dir.to_str().unwrap();
    for shard in ["0/2", "1/2"] {
        let report = ok(whichgan(&[
            "toy", "figure3", "--preset", "fast", "--shard", shard, "--out", shard_s, "--json",
        ]));
        assert_eq!(report["shard"], shard);
    }
    let merged = dir.path().join("merged");
    let merged_s = merged.to_str().unwrap();
    ok(whichgan(&[
        "toy", "merge", shard_s, "--out", merged_s, "--json",
    ]));
    for name in ["figure3.csv", "figure3-correlations.csv"] {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(merged.join(name)).unwrap(),
            "{name}"
        );
    }

    // The reproduction with its sweep taken from the shards (what `reproduce --slurm`'s
    // collect job runs): the same files as the single run's.
    let from = dir.path().join("from-shards");
    ok(whichgan(&[
        "toy",
        "reproduce",
        "--preset",
        "fast",
        "--out",
        from.to_str().unwrap(),
        "--sweep-from",
        shard_s,
        "--json",
    ]));
    for name in [
        "figure2.csv",
        "figure3.csv",
        "figure3-correlations.csv",
        "ablation.csv",
        "coverage.csv",
    ] {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(from.join(name)).unwrap(),
            "{name}"
        );
    }

    // A missing shard, a shard twice, a shard of another sweep.
    let lone = dir.path().join("lone");
    std::fs::create_dir(&lone).unwrap();
    for ext in ["csv", "json"] {
        let name = format!("figure3-shard-0-of-2.{ext}");
        std::fs::copy(shard_dir.join(&name), lone.join(&name)).unwrap();
    }
    let lone_s = lone.to_str().unwrap();
    let elsewhere = dir.path().join("m2");
    let elsewhere_s = elsewhere.to_str().unwrap();
    assert_error(
        &["toy", "merge", lone_s, "--out", elsewhere_s],
        &["missing shards: 1/2"],
    );
    assert_error(
        &["toy", "merge", shard_s, lone_s, "--out", elsewhere_s],
        &["shard 0/2 is also in"],
    );
    let json_path = lone.join("figure3-shard-0-of-2.json");
    let edited = std::fs::read_to_string(&json_path)
        .unwrap()
        .replace("\"fast\"", "\"paper\"");
    std::fs::write(&json_path, edited).unwrap();
    assert_error(
        &["toy", "merge", shard_s, lone_s, "--out", elsewhere_s],
        &["another sweep"],
    );
    assert!(!elsewhere.exists(), "failed merges write nothing");
}

/// `--protocol playground` labels a checkpoint one update later, says so in every row, and
/// rows kept by a shard under one protocol are not taken up by the other.
#[test]
fn the_playground_protocol_is_recorded_in_the_rows_and_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("playground");
    let summary = ok(whichgan(&[
        "toy",
        "figure3",
        "--preset",
        "fast",
        "--protocol",
        "playground",
        "--recall-arithmetic",
        "f32-expanded",
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(summary["protocol"], "playground");
    assert_eq!(summary["recall_arithmetic"], "f32-expanded");
    let (h, rows) = csv(&out.join("figure3.csv"));
    let labels = column(&h, &rows, "checkpoint");
    let updates: Vec<f64> = labels.iter().map(|s| s + 1.0).collect();
    assert_eq!(column(&h, &rows, "checkpoint_updates"), updates);
    // The figure's recall panel is titled with the chosen arithmetic's r.
    let r = summary["correlations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["metric"] == "recall" && c["convention"] == "f32-expanded")
        .unwrap()["pearson_r"]
        .as_f64()
        .unwrap();
    let svg = std::fs::read_to_string(out.join("figure3.svg")).unwrap();
    assert!(
        svg.contains(&format!("r = {r:.3}")),
        "the panel shows r = {r:.3}"
    );

    let shard = dir.path().join("shard");
    let kept = shard.join(".figure3-shard-0-of-2-progress");
    std::fs::create_dir_all(&kept).unwrap();
    let text = std::fs::read_to_string(out.join("figure3.csv")).unwrap();
    let first_two: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(kept.join("0-0.csv"), first_two.join("\n") + "\n").unwrap();
    let shard_s = shard.to_str().unwrap();
    assert_error(
        &[
            "toy", "figure3", "--preset", "fast", "--shard", "0/2", "--out", shard_s,
        ],
        &["0-0.csv", "another protocol than 'updates'"],
    );
}

#[test]
fn bad_study_arguments_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let out_s = out.to_str().unwrap();
    assert_error(
        &["toy", "reproduce", "--preset", "huge", "--out", out_s],
        &["'huge'", "possible values: paper, fast"],
    );
    assert_error(
        &["toy", "figure3", "--shard", "2/2", "--out", out_s],
        &["--shard '2/2'"],
    );
    assert_error(
        &["toy", "figure3", "--shard", "one/two", "--out", out_s],
        &["expected i/N"],
    );
    assert_error(
        &["toy", "figure2", "--seeds", "0", "--out", out_s],
        &["--seeds must be at least 1"],
    );
    assert_error(
        &["toy", "figure3", "--protocol", "gpu", "--out", out_s],
        &["'gpu'", "updates, playground"],
    );
    assert_error(
        &[
            "toy",
            "reproduce",
            "--recall-arithmetic",
            "f16",
            "--out",
            out_s,
        ],
        &["'f16'", "exact, f32-expanded"],
    );
    assert_error(&["toy", "merge", out_s, "--out", out_s], &[out_s]);
    assert!(!out.exists(), "nothing written on bad input");
}

#[test]
fn a_killed_sweep_shard_goes_on_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, killed) = (dir.path().join("whole"), dir.path().join("killed"));
    let args = |out: &Path| {
        [
            "toy",
            "figure3",
            "--preset",
            "fast",
            "--shard",
            "0/2",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ]
        .map(String::from)
    };
    ok(whichgan(&args(&whole).each_ref().map(String::as_str)));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_whichgan"))
        .args(args(&killed))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once a fine-tune's row is kept, before the shard is written.
    let progress = killed.join(".figure3-shard-0-of-2-progress");
    let started = std::time::Instant::now();
    let kept = || std::fs::read_dir(&progress).map(|d| d.count()).unwrap_or(0);
    while kept() == 0 && started.elapsed() < std::time::Duration::from_secs(600) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = kept();
    assert!(before > 0, "no fine-tune finished");
    let csv = "figure3-shard-0-of-2.csv";
    if !killed.join(csv).exists() {
        ok(whichgan(&args(&killed).each_ref().map(String::as_str)));
    }
    assert_eq!(
        std::fs::read(whole.join(csv)).unwrap(),
        std::fs::read(killed.join(csv)).unwrap()
    );
    assert!(
        !progress.exists(),
        "the kept rows are removed once the shard is written"
    );
}
