//! The `whichgan metrics` command line: outputs on the reference fixtures, and one test per kind
//! of bad input (one-line error naming the file and place, non-zero exit, nothing on stdout).

mod common;
use common::{assert_error, whichgan};

use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn fixture(rel: &str) -> String {
    fixtures().join(rel).to_string_lossy().into_owned()
}

/// Runs a `--json` command that must succeed and print exactly one JSON object per line.
fn json_lines(args: &[&str]) -> Vec<serde_json::Map<String, Value>> {
    let out = whichgan(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| match serde_json::from_str(l).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        })
        .collect()
}

fn json_one(args: &[&str]) -> serde_json::Map<String, Value> {
    let mut lines = json_lines(args);
    assert_eq!(lines.len(), 1, "{args:?} printed {} lines", lines.len());
    lines.pop().unwrap()
}

fn keys(m: &serde_json::Map<String, Value>) -> Vec<&str> {
    m.keys().map(String::as_str).collect()
}

fn expected(rel: &str) -> serde_json::Map<String, Value> {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(rel)).unwrap()).unwrap()
}

fn rel_close(got: &Value, want: &Value, tol: f64) -> bool {
    let (g, w) = (got.as_f64().unwrap(), want.as_f64().unwrap());
    (g - w).abs() <= tol * w.abs().max(f64::MIN_POSITIVE)
}

fn temp_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn w1_matches_pot_through_the_cli() {
    for (case, want) in expected("metrics/w1/expected.json") {
        let a = fixture(&format!("metrics/w1/{case}_a.csv"));
        let b = fixture(&format!("metrics/w1/{case}_b.csv"));
        let got = json_one(&["metrics", "w1", &a, &b, "--json"]);
        assert_eq!(keys(&got), ["w1", "n_a", "n_b", "d"]);
        assert!(
            rel_close(&got["w1"], &want["w1"], 1e-9),
            "{case}: {got:?} vs {want:?}"
        );
        assert_eq!(got["n_a"], want["n_a"]);
        assert_eq!(got["n_b"], want["n_b"]);
        assert_eq!(got["d"], 2);
    }
}

#[test]
fn prdc_output_contract() {
    let dir = "metrics/pr/circle10_vs_mix3_2d";
    let got = json_one(&[
        "metrics",
        "prdc",
        &fixture(&format!("{dir}/real.npy")),
        &fixture(&format!("{dir}/fake.npy")),
        "--json",
    ]);
    assert_eq!(
        keys(&got),
        [
            "precision",
            "recall",
            "density",
            "coverage",
            "k",
            "n_real",
            "n_fake",
            "d"
        ]
    );
    let want = &expected("metrics/pr/expected.json")["circle10_vs_mix3_2d"];
    assert_eq!(got["precision"], want["precision"]);
    assert_eq!(got["recall"], want["recall"]);
    assert_eq!(got["k"], 5);
}

#[test]
fn fid_from_features_and_from_npz_statistics_agree() {
    let a = fixture("metrics/fid/gauss64_2000_a.npy");
    let b = fixture("metrics/fid/gauss64_2000_b.npy");
    let features = json_one(&["metrics", "fid", &a, &b, "--kid-subsets", "3", "--json"]);
    assert_eq!(keys(&features), ["fid", "kid", "n_a", "n_b", "d"]);
    let want = &expected("metrics/fid/expected.json")["gauss64_2000"];
    assert!(rel_close(&features["fid"], &want["fid"], 1e-6));
    // KID is seeded: the same seed gives the same value.
    let again = json_one(&["metrics", "fid", &a, &b, "--kid-subsets", "3", "--json"]);
    assert_eq!(features["kid"], again["kid"]);

    let sa = fixture("inputs/gauss64_2000_a_stats.npz");
    let sb = fixture("inputs/gauss64_2000_b_stats_compressed.npz");
    let stats = json_one(&["metrics", "fid", &sa, &sb, "--json"]);
    assert_eq!(
        keys(&stats),
        ["fid", "n_a", "n_b", "d"],
        "no KID from statistics"
    );
    assert!(stats["n_a"].is_null());
    assert!(rel_close(&stats["fid"], &features["fid"], 1e-9));
    let mixed = json_one(&["metrics", "fid", &a, &sb, "--json"]);
    assert!(rel_close(&mixed["fid"], &features["fid"], 1e-9));
    assert_eq!(mixed["n_a"], 2000);
}

#[test]
fn corr_by_group_matches_scipy() {
    let want = expected("metrics/stats/expected.json");
    let lines = json_lines(&[
        "metrics",
        "corr",
        &fixture("metrics/stats/cases.csv"),
        "--x",
        "x",
        "--y",
        "y",
        "--by",
        "case",
        "--json",
    ]);
    assert_eq!(lines.len(), want.len());
    for got in lines {
        let case = got["case"].as_str().unwrap();
        let w = &want[case];
        assert_eq!(got["n"], w["n"], "{case}");
        for key in ["pearson_r", "spearman_rho", "kendall_tau"] {
            let diff = (got[key].as_f64().unwrap() - w[key].as_f64().unwrap()).abs();
            assert!(diff <= 1e-10, "{case} {key}: {} vs {}", got[key], w[key]);
        }
        for key in ["pearson_p", "spearman_p", "kendall_p"] {
            assert!(rel_close(&got[key], &w[key], 1e-8), "{case} {key}");
        }
        let ci = got["pearson_ci95"].as_array().unwrap();
        let r = got["pearson_r"].as_f64().unwrap();
        assert!(ci[0].as_f64().unwrap() <= r && r <= ci[1].as_f64().unwrap());
    }
}

#[test]
fn coverage_counts_modes() {
    let dir = tempfile::tempdir().unwrap();
    let centres = temp_file(&dir, "centres.csv", "x,y\n0,0\n10,0\n");
    let mut samples = String::from("x,y\n");
    for i in 0..12 {
        samples.push_str(&format!("{},0\n", 0.01 * i as f64));
    }
    samples.push_str("10,0.2\n5,5\n");
    let samples = temp_file(&dir, "samples.csv", &samples);
    let got = json_one(&[
        "metrics",
        "coverage",
        &samples,
        "--centres",
        &centres,
        "--sigma",
        "0.25",
        "--json",
    ]);
    assert_eq!(got["modes_covered"], 1);
    assert_eq!(got["high_quality"], 13);
    assert_eq!(got["per_mode"], serde_json::json!([12, 1]));
    assert_eq!(got["min_samples"], 10);
    // A mode with no samples would count as covered with --min-samples 0; an infinite sigma
    // makes every sample high quality.
    let base = ["metrics", "coverage", &samples, "--centres", &centres];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    assert_error(
        &with(&["--sigma", "0.25", "--min-samples", "0"]),
        &["--min-samples", "at least 1"],
    );
    for sigma in ["inf", "nan", "0"] {
        assert_error(
            &with(&["--sigma", sigma]),
            &["--sigma must be a positive finite number"],
        );
    }
    assert_error(
        &with(&["--sigma", "0.25", "--radius-sigmas", "inf"]),
        &["--radius-sigmas must be a positive finite number"],
    );
}

#[test]
fn human_output_is_readable() {
    let a = fixture("metrics/w1/circle10_vs_fatcircle_256_a.csv");
    let out = whichgan(&["metrics", "w1", &a, &a]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("w1")),
        "{text}"
    );
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "human output is not JSON"
    );
}

#[test]
fn human_output_shows_a_dash_for_values_that_do_not_apply() {
    let sa = fixture("inputs/gauss64_2000_a_stats.npz");
    let sb = fixture("inputs/gauss64_2000_b_stats_compressed.npz");
    let out = whichgan(&["metrics", "fid", &sa, &sb]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let n_a = text
        .lines()
        .find(|l| l.trim_start().starts_with("n_a"))
        .unwrap_or_else(|| panic!("no n_a line: {text}"));
    assert_eq!(n_a.split_whitespace().collect::<Vec<_>>(), ["n_a", "-"]);
    assert!(!text.contains("null"), "{text}");
}

#[test]
fn usage_errors_are_one_line_with_exit_code_2() {
    // An unknown flag, a missing required option, a value outside the choices.
    let cases: [(&[&str], &[&str]); 3] = [
        (
            &["metrics", "w1", "a.csv", "b.csv", "--bogus"],
            &["'--bogus'", "whichgan metrics w1 --help"],
        ),
        (
            &["metrics", "coverage", "s.csv"],
            &["required", "--centres <CENTRES>", "--sigma <SIGMA>"],
        ),
        (
            &["metrics", "prdc", "a.csv", "b.csv", "--backend", "gpu"],
            &["'gpu'", "possible values: auto, tree, dense"],
        ),
    ];
    for (args, needles) in cases {
        assert_error(args, needles);
        assert_eq!(whichgan(args).status.code(), Some(2), "{args:?}");
    }
    // A group without its subcommand: one line too, not the help page.
    assert_error(&["metrics"], &["'whichgan metrics' needs a subcommand"]);
    // Help is still help, on stdout with exit 0.
    let help = whichgan(&["metrics", "--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8(help.stdout)
        .unwrap()
        .contains("Examples:"));
}

#[test]
fn bench_arguments_are_checked_before_any_python_runs() {
    // The interpreter does not exist: each of these must fail on its argument first.
    let python = ["--python", "/nonexistent/python"];
    let with = |args: &[&'static str]| -> Vec<&'static str> {
        args.iter().copied().chain(python).collect()
    };
    assert_error(
        &with(&["bench", "metrics", "--only", "w1,foo"]),
        &["'foo'", "possible values: w1, prdc, fid"],
    );
    assert_error(
        &with(&["bench", "toy", "--cycles", "0"]),
        &["--cycles", "at least 1"],
    );
    assert_error(
        &with(&["bench", "features", "--n", "0"]),
        &["--n", "at least 1"],
    );
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("fixture").to_string_lossy().into_owned();
    assert_error(
        &[
            "bench",
            "stylegan2",
            "--official",
            "official",
            "--fixture",
            &missing,
            "--python",
            "/nonexistent/python",
        ],
        &[&missing, "G.safetensors", "pass --fixture"],
    );
}

#[test]
fn bad_csv_inputs_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let good = temp_file(&dir, "good.csv", "x,y\n0,0\n1,0\n0,1\n1,1\n2,2\n3,3\n");
    let cases = [
        ("empty.csv", "", vec!["empty.csv", "empty file"]),
        ("header.csv", "x,y\n", vec!["header.csv", "no data rows"]),
        (
            "ragged.csv",
            "x,y\n1,2\n3\n",
            vec!["ragged.csv:3", "1 cells"],
        ),
        (
            "text.csv",
            "x,y\n1,2\n3,abc\n",
            vec!["text.csv:3:2", "'abc'"],
        ),
        (
            "nan.csv",
            "x,y\n1,nan\n",
            vec!["nan.csv:2:2", "not a finite"],
        ),
        (
            "inf.csv",
            "x,y\n1,2\n-inf,2\n",
            vec!["inf.csv:3:1", "not a finite"],
        ),
    ];
    for (name, contents, needles) in cases {
        let bad = temp_file(&dir, name, contents);
        assert_error(&["metrics", "w1", &good, &bad], &needles);
        assert_error(&["metrics", "prdc", &bad, &good, "--json"], &needles);
    }
}

#[test]
fn missing_files_and_directories() {
    let good = fixture("inputs/points_f64.npy");
    assert_error(
        &["metrics", "w1", "no/such.csv", &good],
        &["no/such.csv", "no such file"],
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_string_lossy().into_owned();
    assert_error(&["metrics", "w1", &good, &d], &[&d, "directory"]);
    let other = temp_file(&dir, "points.txt", "1 2\n");
    assert_error(
        &["metrics", "w1", &good, &other],
        &["points.txt", "unsupported file type"],
    );
}

#[test]
fn bad_npy_inputs() {
    let good = fixture("inputs/points_f64.npy");
    for (name, needle) in [
        ("int64.npy", "'<i8' is not supported"),
        ("rank1.npy", "expected a 2-D array"),
        ("rank3.npy", "expected a 2-D array"),
        ("truncated.npy", "truncated"),
        ("nan.npy", "row 4, column 2"),
    ] {
        let bad = fixture(&format!("inputs/{name}"));
        assert_error(&["metrics", "w1", &good, &bad], &[name, needle]);
    }
    // Fortran order and float32 read to the same points.
    let f = fixture("inputs/points_f32_fortran.npy");
    let got = json_one(&["metrics", "w1", &good, &f, "--json"]);
    assert_eq!(got["w1"], 0.0);
}

#[test]
fn inputs_that_do_not_fit_together() {
    let two_d = fixture("metrics/w1/circle10_vs_fatcircle_256_a.csv");
    let wide = fixture("metrics/fid/gauss64_2000_a.npy");
    for metric in ["w1", "prdc", "fid"] {
        assert_error(
            &["metrics", metric, &two_d, &wide],
            &["dimension 2", "dimension 64"],
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let five = temp_file(&dir, "five.csv", "x,y\n0,0\n1,0\n0,1\n1,1\n2,2\n");
    assert_error(
        &["metrics", "prdc", &two_d, &five],
        &["five.csv", "k + 1 = 6"],
    );
    let small_k = json_one(&["metrics", "prdc", &five, &five, "--k", "3", "--json"]);
    assert_eq!(small_k["precision"], 1.0);
    let one = temp_file(&dir, "one.csv", "x,y\n0,0\n");
    assert_error(
        &["metrics", "fid", &one, &five],
        &["one.csv", "at least 2 rows"],
    );
    let corr = temp_file(&dir, "corr.csv", "a,b\n1,2\n");
    assert_error(
        &["metrics", "corr", &corr, "--x", "a", "--y", "b"],
        &["corr.csv", "at least 2"],
    );
    assert_error(
        &["metrics", "corr", &corr, "--x", "a", "--y", "nope"],
        &["corr.csv", "no column 'nope'"],
    );
}

#[test]
fn npz_without_sigma() {
    let bad = fixture("inputs/no_sigma.npz");
    let good = fixture("inputs/gauss64_2000_a_stats.npz");
    assert_error(
        &["metrics", "fid", &good, &bad],
        &["no_sigma.npz", "no 'sigma'"],
    );
}

#[test]
fn corr_by_group_prints_nothing_when_a_group_fails() {
    let dir = tempfile::tempdir().unwrap();
    // Group a is fine; group b has a single row, too few to correlate.
    let csv = temp_file(&dir, "g.csv", "g,x,y\na,1,2\na,2,1\na,3,5\nb,1,1\n");
    assert_error(
        &["metrics", "corr", &csv, "--x", "x", "--y", "y", "--by", "g"],
        &["g.csv", "group b"],
    );
}

#[test]
fn points_near_the_largest_float_give_numbers_or_errors() {
    let dir = tempfile::tempdir().unwrap();
    let huge = temp_file(
        &dir,
        "huge.csv",
        "x,y\n1e308,-1e308\n-1.5e308,1e308\n0,1e307\n",
    );
    let w1 = json_one(&["metrics", "w1", &huge, &huge, "--json"]);
    assert_eq!(w1["w1"], 0.0);
    let out = whichgan(&["metrics", "fid", &huge, &huge, "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "fid gave {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}
