//! `whichgan train` end to end on a tiny configuration (16 × 16 synthetic shapes): the run's
//! files, snapshots other commands read, metrics at snapshots, exact resume, bad input.

mod common;
#[path = "../common/formula.rs"]
mod formula;
use common::{assert_error, ok, whichgan, TINY_NETWORKS};

use candle_core::Device;
use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn shapes(dir: &Path, resolution: &str) -> PathBuf {
    let zip = dir.join(format!("shapes{resolution}.zip"));
    ok(whichgan(&[
        "dataset",
        "synth",
        "--images",
        "24",
        "--classes",
        "3",
        "--resolution",
        resolution,
        "--out",
        s(&zip),
        "--json",
    ]));
    zip
}

/// A tiny run's arguments (a snapshot every 2 ticks of 16 images).
fn run_args<'a>(data: &'a Path, out: &'a Path, kimg: &'a str) -> Vec<&'a str> {
    vec!["train", "--data", s(data), "--out", s(out), "--kimg", kimg]
        .into_iter()
        .chain(TINY_NETWORKS)
        .chain([
            "--tick", "0.016", "--snap", "0.032", "--grid", "4", "--aug", "ada", "--p", "0.2",
            "--mirror", "--json",
        ])
        .collect()
}

fn log(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A log line without its timings.
fn untimed(mut v: serde_json::Value) -> serde_json::Value {
    let map = v.as_object_mut().unwrap();
    map.remove("sec_per_tick");
    map.remove("sec_per_kimg");
    v
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> = candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap()
        .into_iter()
        .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn a_run_writes_snapshots_grids_and_its_log_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = shapes(dir.path(), "16");
    let straight = dir.path().join("straight");
    let summary = ok(whichgan(&run_args(&data, &straight, "0.064")));
    assert_eq!(summary["kimg"], 0.064);
    assert_eq!(summary["g_steps"], 16);
    for file in [
        "reals.png",
        "fakes_init.png",
        "network-snapshot-000000.032.safetensors",
        "fakes000000.032.png",
        "network-snapshot-000000.064.safetensors",
        "fakes000000.064.png",
    ] {
        assert!(straight.join(file).exists(), "{file}");
    }
    let lines = log(&straight);
    let kimg: Vec<f64> = lines.iter().map(|l| l["kimg"].as_f64().unwrap()).collect();
    assert_eq!(kimg, [0.016, 0.032, 0.048, 0.064]);
    for l in &lines {
        for key in ["d_loss", "g_loss", "p", "rt", "pl_mean", "sec_per_kimg"] {
            assert!(l[key].as_f64().unwrap().is_finite(), "{key} in {l}");
        }
    }
    assert_eq!(
        lines[1]["snapshot"],
        "network-snapshot-000000.032.safetensors"
    );

    // A snapshot is a generator checkpoint for the other commands.
    let last = straight.join("network-snapshot-000000.064.safetensors");
    let grid = dir.path().join("grid.png");
    ok(whichgan(&[
        "generate",
        "--ckpt",
        s(&last),
        "--seeds",
        "0-3",
        "--out",
        s(&grid),
        "--json",
    ]));
    assert!(grid.exists());

    // Half the run, then resumed from its last snapshot: the same networks, optimiser
    // states, counters and log.
    let split = dir.path().join("split");
    ok(whichgan(&run_args(&data, &split, "0.032")));
    let snapshot = split.join("network-snapshot-000000.032.safetensors");
    let mut resume = run_args(&data, &split, "0.064");
    resume.extend(["--resume", s(&snapshot)]);
    let resumed = ok(whichgan(&resume));
    assert_eq!(resumed["resumed_from_kimg"], 0.032);
    assert_eq!(
        tensors(&last),
        tensors(&split.join("network-snapshot-000000.064.safetensors"))
    );
    let untimed_log = |out: &Path| log(out).into_iter().map(untimed).collect::<Vec<_>>();
    assert_eq!(untimed_log(&straight), untimed_log(&split));

    // A snapshot of another run starts a fine-tune (a new run from its networks).
    let tuned = dir.path().join("tuned");
    let mut fine_tune = run_args(&data, &tuned, "0.016");
    fine_tune.extend(["--resume", s(&last), "--freezed", "3"]);
    let summary = ok(whichgan(&fine_tune));
    assert!(summary.get("resumed_from_kimg").is_none(), "{summary}");
    assert_eq!(summary["kimg"], 0.016);

    // Resuming with other settings is refused, naming the setting.
    let mut other = run_args(&data, &split, "0.064");
    other.extend(["--resume", s(&snapshot), "--seed", "5"]);
    assert_error(&other, &["seed", "the run used 0"]);
}

#[test]
fn snapshots_carry_fid_and_precision_recall_when_weights_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let data = shapes(dir.path(), "16");
    let weights = formula::inception_file(&dir.path().join("inception.safetensors"));
    let out = dir.path().join("run");
    let mut args = run_args(&data, &out, "0.032");
    args.extend(["--inception", s(&weights), "--metrics-n", "8"]);
    let summary = ok(whichgan(&args));
    let scores = &summary["scores"];
    assert!(scores["fid"].as_f64().unwrap() > 0.0, "{scores}");
    for key in ["precision", "recall"] {
        let v = scores[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert_eq!(log(&out)[1]["fid"], scores["fid"]);
}

#[test]
fn bad_input_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = shapes(dir.path(), "16");
    let out = dir.path().join("out");
    let mut args = run_args(&data, &out, "0.032");
    let snap = args.iter().position(|a| *a == "--snap").unwrap();
    args[snap + 1] = "0.02";
    assert_error(&args, &["--snap 0.02", "multiple of --tick 0.016"]);
    let mut args = run_args(&data, &out, "0.032");
    args.extend(["--freezed", "99"]);
    assert_error(&args, &["--freezed 99", "freezable layers"]);
    let mut args = run_args(&data, &out, "0.032");
    let batch = args.iter().position(|a| *a == "--batch").unwrap();
    args[batch + 1] = "6";
    assert_error(&args, &["--batch-gpu 6", "groups of 4"]);
    let mut args = run_args(&data, &out, "0.032");
    args.extend(["--batch-gpu", "3"]);
    assert_error(&args, &["--batch-gpu 3", "--batch 4 does not split"]);
    // synth writes power-of-two sides only; a 24 × 24 dataset is packed from the 16 × 16 one.
    let odd = dir.path().join("shapes24.zip");
    ok(whichgan(&[
        "dataset",
        "pack",
        s(&data),
        s(&odd),
        "--resize",
        "24",
        "--json",
    ]));
    assert_error(&run_args(&odd, &out, "0.032"), &["24×24", "power-of-two"]);
    let missing = dir.path().join("missing.pt");
    let mut args = run_args(&data, &out, "0.032");
    args.extend(["--resume", s(&missing)]);
    assert_error(&args, &["missing.pt"]);
    assert!(!out.exists(), "an output folder was created");
    // A non-empty output folder needs --resume or --overwrite.
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    assert_error(
        &run_args(&data, &out, "0.032"),
        &["not empty", "--overwrite"],
    );
}

#[test]
fn a_conditional_run_trains_on_labels_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = shapes(dir.path(), "16");
    let (whole, part) = (dir.path().join("whole"), dir.path().join("part"));
    let mut args = run_args(&data, &whole, "0.064");
    args.push("--cond");
    ok(whichgan(&args));
    let mut args = run_args(&data, &part, "0.032");
    args.push("--cond");
    ok(whichgan(&args));
    let snapshot = part.join("network-snapshot-000000.032.safetensors");
    let mut args = run_args(&data, &part, "0.064");
    args.extend(["--cond", "--resume", s(&snapshot)]);
    ok(whichgan(&args));
    let last = "network-snapshot-000000.064.safetensors";
    assert_eq!(tensors(&whole.join(last)), tensors(&part.join(last)));
    // The networks are conditional on the dataset's 3 classes: G embeds the labels, D maps
    // them to its projection.
    let names: Vec<String> = tensors(&whole.join(last))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for name in [
        "G.mapping.embed.weight",
        "D.mapping.embed.weight",
        "D.mapping.fc7.weight",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing");
    }
    let grid = dir.path().join("classes.npy");
    ok(whichgan(&[
        "generate",
        "--ckpt",
        s(&whole.join(last)),
        "--seeds",
        "0-2",
        "--class",
        "0,1,2",
        "--out",
        s(&grid),
        "--json",
    ]));
    // A conditional checkpoint does not fine-tune unconditionally, nor on unlabelled data.
    let other = dir.path().join("other");
    let conditional = whole.join(last);
    let mut args = run_args(&data, &other, "0.016");
    args.extend(["--resume", s(&conditional)]);
    assert_error(&args, &["--cond", "conditional on 3 classes"]);
    let unlabelled = dir.path().join("unlabelled");
    std::fs::create_dir(&unlabelled).unwrap();
    let spec = whichgan::dataset::SynthSpec {
        images: 4,
        classes: 2,
        first_class: 0,
        resolution: 16,
        seed: 0,
    };
    for i in 0..4 {
        whichgan::dataset::synth_image(&spec, i)
            .0
            .save(unlabelled.join(format!("{i}.png")))
            .unwrap();
    }
    let mut args = run_args(&unlabelled, &other, "0.016");
    args.push("--cond");
    assert_error(&args, &["has no class labels", "--cond"]);
}

#[test]
fn a_run_killed_before_its_first_snapshot_starts_over_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let data = shapes(dir.path(), "16");
    let out = dir.path().join("run");
    // A snapshot only at the end of a long run: killed as soon as it has begun.
    let mut args = run_args(&data, &out, "4");
    let snap = args.iter().position(|a| *a == "--snap").unwrap() + 1;
    args[snap] = "4";
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_whichgan"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !out.join("fakes_init.png").exists() && started.elapsed().as_secs() < 600 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(out.join("fakes_init.png").exists(), "the run never began");
    let snapshots = |out: &Path| {
        std::fs::read_dir(out)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("network-snapshot-")
            })
            .count()
    };
    assert_eq!(snapshots(&out), 0, "killed too late to test this");
    // The same command again, without --overwrite, starts the run over.
    let r = ok(whichgan(&run_args(&data, &out, "0.032")));
    assert_eq!(r["kimg"], 0.032);
    assert!(snapshots(&out) > 0);
    // A folder that holds anything else is still refused.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    assert_error(&run_args(&data, &other, "0.016"), &["not empty"]);
}
