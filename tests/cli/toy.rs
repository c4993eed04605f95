//! `whichgan toy train`: determinism, exact resume after a hard kill, and bad input.

mod common;
use common::{assert_error, ok, whichgan};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TARGET: &str = "circle:size=20,sigma=0.25";

fn train_args<'a>(out: &'a str, steps: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "toy",
        "train",
        "--data",
        TARGET,
        "--steps",
        steps,
        "--out",
        out,
        "--seed",
        "3",
        "--eval-every",
        "50",
        "--save-every",
        "20",
        "--json",
    ];
    args.extend_from_slice(extra);
    args
}

fn last(dir: &Path) -> PathBuf {
    dir.join("checkpoints/last.safetensors")
}

fn path(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).to_string_lossy().into_owned()
}

#[test]
fn same_seed_gives_identical_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (path(&dir, "a"), path(&dir, "b"));
    let first = ok(whichgan(&train_args(&a, "60", &[])));
    ok(whichgan(&train_args(&b, "60", &[])));
    let bytes_a = std::fs::read(last(Path::new(&a))).unwrap();
    assert_eq!(bytes_a, std::fs::read(last(Path::new(&b))).unwrap());
    assert!(first["final_w1"].as_f64().unwrap() > 0.0);
    let csv = std::fs::read_to_string(Path::new(&a).join("w1.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        3,
        "header + evaluations at 50 and 60:\n{csv}"
    );
    // Another seed trains differently.
    let c = path(&dir, "c");
    let mut args = train_args(&c, "60", &[]);
    args[9] = "4";
    ok(whichgan(&args));
    assert_ne!(bytes_a, std::fs::read(last(Path::new(&c))).unwrap());
}

#[test]
fn killed_and_resumed_run_equals_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (whole, killed) = (path(&dir, "whole"), path(&dir, "killed"));
    ok(whichgan(&train_args(&whole, "300", &[])));

    let mut child = Command::new(env!("CARGO_BIN_EXE_whichgan"))
        .args(train_args(&killed, "300", &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it hard once it has written a snapshot part-way.
    let started = Instant::now();
    let snapshot = Path::new(&killed).join("checkpoints/step-000040.safetensors");
    while !snapshot.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no snapshot appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(
        !Path::new(&killed)
            .join("checkpoints/step-000300.safetensors")
            .exists(),
        "the run finished before the kill; the test proves nothing"
    );

    let resumed = ok(whichgan(&train_args(&killed, "300", &["--resume"])));
    // The kill may fall between writing step-000040 and updating last.safetensors (at 20).
    assert!(resumed["resumed_from"].as_u64().unwrap() >= 20);
    assert_eq!(
        std::fs::read(last(Path::new(&whole))).unwrap(),
        std::fs::read(last(Path::new(&killed))).unwrap(),
        "resumed run differs from the uninterrupted one"
    );
    for file in ["w1.csv", "log.jsonl"] {
        assert_eq!(
            std::fs::read_to_string(Path::new(&whole).join(file)).unwrap(),
            std::fs::read_to_string(Path::new(&killed).join(file)).unwrap(),
            "{file} differs"
        );
    }
    for figure in ["w1.png", "w1.svg", "samples.png", "samples.svg"] {
        assert!(Path::new(&killed).join(figure).exists(), "{figure} missing");
    }
}

#[test]
fn a_folder_with_no_checkpoint_yet_takes_a_new_run() {
    let dir = tempfile::tempdir().unwrap();
    let (fresh, left) = (path(&dir, "fresh"), path(&dir, "left"));
    ok(whichgan(&train_args(&fresh, "20", &[])));
    let checkpoints = Path::new(&left).join("checkpoints");
    let partial = checkpoints.join(".last.tmp-1-0.safetensors");
    // What a run killed before its first checkpoint leaves (a log, a partial write), then
    // what a diverged one leaves (an empty checkpoints folder): a plain run starts anew.
    for unfinished_write in [true, false] {
        std::fs::create_dir_all(&checkpoints).unwrap();
        std::fs::write(Path::new(&left).join("log.jsonl"), "{\"g_step\":1}\n").unwrap();
        if unfinished_write {
            std::fs::write(&partial, b"partial").unwrap();
        }
        ok(whichgan(&train_args(&left, "20", &[])));
        assert_eq!(
            std::fs::read(last(Path::new(&fresh))).unwrap(),
            std::fs::read(last(Path::new(&left))).unwrap()
        );
        assert!(!partial.exists());
        std::fs::remove_dir_all(&left).unwrap();
    }
    // Anything else in the folder is kept unless --overwrite.
    std::fs::create_dir_all(&checkpoints).unwrap();
    std::fs::write(Path::new(&left).join("notes.txt"), "mine").unwrap();
    assert_error(&train_args(&left, "20", &[]), &["not empty", "--overwrite"]);
}

#[test]
fn a_resumed_run_removes_the_temporary_files_of_a_killed_write() {
    let dir = tempfile::tempdir().unwrap();
    let out = path(&dir, "run");
    ok(whichgan(&train_args(&out, "20", &[])));
    let stale = [
        Path::new(&out).join("checkpoints/.last.tmp-1-0.safetensors"),
        Path::new(&out).join(".w1.tmp-1-1.csv"),
    ];
    for file in &stale {
        std::fs::write(file, b"partial").unwrap();
    }
    ok(whichgan(&train_args(&out, "40", &["--resume"])));
    for file in &stale {
        assert!(!file.exists(), "{} left behind", file.display());
    }
}

#[test]
fn bad_input_is_refused_without_touching_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = path(&dir, "run");
    let args = |spec: &'static str| {
        vec![
            "toy", "train", "--data", spec, "--steps", "5", "--out", "OUT", "--json",
        ]
    };
    let with_out = |a: Vec<&'static str>, o: &str| -> Vec<String> {
        a.into_iter()
            .map(|s| {
                if s == "OUT" {
                    o.to_owned()
                } else {
                    s.to_owned()
                }
            })
            .collect()
    };
    let run = |a: Vec<String>, needles: &[&str]| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        assert_error(&refs, needles);
    };
    run(
        with_out(args("blob:r=1"), &out),
        &["unknown distribution 'blob'"],
    );
    run(with_out(args("circle:size=20"), &out), &["missing sigma"]);
    run(
        with_out(args("circle:size=20,sigma=x"), &out),
        &["sigma='x'"],
    );
    assert!(
        !Path::new(&out).exists(),
        "a refused run created its folder"
    );

    // A checkpoint of the wrong kind, and a corrupt one.
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint at all").unwrap();
    let junk = junk.to_string_lossy().into_owned();
    let mut a = with_out(args(TARGET), &out);
    a.extend(["--init".to_owned(), junk.clone()]);
    run(a, &["junk.safetensors", "not a safetensors checkpoint"]);
    assert!(!Path::new(&out).exists());

    // A checkpoint of another architecture (width 8 into width 64) names the mismatch.
    let narrow = path(&dir, "narrow");
    ok(whichgan(&train_args(&narrow, "2", &["--width", "8"])));
    let narrow_ckpt = last(Path::new(&narrow)).to_string_lossy().into_owned();
    let mut a = with_out(args(TARGET), &out);
    a.extend(["--init".to_owned(), narrow_ckpt]);
    run(a, &["last.safetensors", "module.0.weight", "shape"]);
    assert!(!Path::new(&out).exists());

    // A finished run is not overwritten without --resume or --overwrite.
    ok(whichgan(&train_args(&out, "5", &[])));
    let before = std::fs::read(last(Path::new(&out))).unwrap();
    run(
        with_out(args(TARGET), &out),
        &["not empty", "--resume", "--overwrite"],
    );
    assert_eq!(before, std::fs::read(last(Path::new(&out))).unwrap());

    // Resuming with another target is refused.
    let other = vec![
        "toy",
        "train",
        "--data",
        "circle:size=20,sigma=0.5,modes=3",
        "--steps",
        "9",
        "--out",
        &out,
        "--seed",
        "3",
        "--resume",
    ];
    assert_error(
        &other,
        &[
            "last.safetensors",
            "circle:size=20,sigma=0.25",
            "--overwrite",
        ],
    );
    assert_eq!(before, std::fs::read(last(Path::new(&out))).unwrap());

    // --resume with no run in --out (a mistyped folder) does not start a new one…
    let typo = path(&dir, "rnu");
    assert_error(
        &train_args(&typo, "9", &["--resume"]),
        &["rnu", "--resume", "no run to continue"],
    );
    assert!(!Path::new(&typo).exists());
    // … and a run already past --steps says so instead of doing nothing.
    assert_error(
        &train_args(&out, "4", &["--resume"]),
        &["last.safetensors", "already at 5 G steps"],
    );
    // At its total, a resume trains nothing and writes the run's outputs (a run killed after
    // its last checkpoint is finished this way).
    std::fs::remove_file(Path::new(&out).join("w1.csv")).unwrap();
    ok(whichgan(&train_args(&out, "5", &["--resume"])));
    assert!(Path::new(&out).join("w1.csv").exists());
    assert_eq!(before, std::fs::read(last(Path::new(&out))).unwrap());

    // An output folder that cannot be created.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let inside = blocker.join("run").to_string_lossy().into_owned();
    run(with_out(args(TARGET), &inside), &["file"]);
}

#[test]
fn field_draws_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = path(&dir, "run");
    ok(whichgan(&train_args(&run, "20", &[])));
    let ckpt = last(Path::new(&run)).to_string_lossy().into_owned();
    let png = path(&dir, "field.png");
    ok(whichgan(&[
        "toy", "field", "--ckpt", &ckpt, "--target", TARGET, "--out", &png, "--json",
    ]));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(dir.path().join("field.svg")).unwrap();
    assert!(
        svg.contains("where G moves samples"),
        "legend/title missing"
    );
    // Only a .png or .svg extension is taken off: dots in the name stay, and the report names
    // the files written.
    let dotted = path(&dir, "field_lr1e-3.step.500.png");
    let report = ok(whichgan(&[
        "toy", "field", "--ckpt", &ckpt, "--target", TARGET, "--out", &dotted, "--json",
    ]));
    let svg_path = path(&dir, "field_lr1e-3.step.500.svg");
    assert_eq!(report["png"], dotted.as_str());
    assert_eq!(report["svg"], svg_path.as_str());
    assert!(Path::new(&dotted).exists() && Path::new(&svg_path).exists());
    // Another image format is refused rather than written as PNG under another name.
    let jpg = path(&dir, "f.jpg");
    assert_error(
        &[
            "toy", "field", "--ckpt", &ckpt, "--target", TARGET, "--out", &jpg,
        ],
        &["f.jpg", ".jpg", ".png"],
    );
    assert!(!dir.path().join("f.png").exists());
    // A corrupt checkpoint is refused with its name.
    let junk = path(&dir, "junk.safetensors");
    std::fs::write(&junk, b"junk").unwrap();
    assert_error(
        &[
            "toy", "field", "--ckpt", &junk, "--target", TARGET, "--out", &png,
        ],
        &["junk.safetensors"],
    );
}
