//! Odd paths and files where commands expect ordinary ones: folders, FIFOs with no writer and
//! devices as inputs, inputs the user may not read, output folders the user may not write,
//! paths with spaces and names that are not UTF-8. Each gives a one-line error naming the path
//! (and never blocks), or the same result as an ordinary path.
//!
//! The permission cases need a user whom permissions bind: run as root (CI), the binary is run
//! as `nobody` through `setpriv`; without `setpriv` they are skipped with a printed reason.

mod common;
use common::{assert_error, assert_error_output, ok, whichgan};

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `command`, killing it after a minute: a command that blocks fails the test.
fn output_within_a_minute(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("{command:?} blocked for a minute");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A points file of a few 2-D points, in either format the metrics read.
fn write_points(path: &Path, shift: f32) {
    let values: Vec<f32> = (0..12).map(|i| (i as f32 * 0.37).sin() + shift).collect();
    if path.extension().is_some_and(|e| e == "npy") {
        whichgan::io::write_npy_f32(path, &[6, 2], &values).unwrap();
    } else {
        let rows: String = values
            .chunks(2)
            .map(|p| format!("{},{}\n", p[0], p[1]))
            .collect();
        std::fs::write(path, format!("x,y\n{rows}")).unwrap();
    }
}

/// The extensions of the files [`readers`] read.
const KINDS: [&str; 5] = ["csv", "npy", "pt", "zip", "jsonl"];

/// A command reading a file of each kind of [`KINDS`], the file being `input(kind)`.
fn readers(input: impl Fn(&str) -> PathBuf, dir: &Path) -> Vec<Vec<String>> {
    let ok_points = dir.join("ok.csv");
    let out = |name: &str| {
        dir.join("outputs")
            .join(name)
            .to_string_lossy()
            .into_owned()
    };
    let path = |kind: &str| input(kind).to_string_lossy().into_owned();
    let (csv, npy, pt, zip, jsonl) = (
        path("csv"),
        path("npy"),
        path("pt"),
        path("zip"),
        path("jsonl"),
    );
    let (features, grid, packed) = (out("f.npy"), out("g.png"), out("p.zip"));
    let all = [
        vec!["metrics", "w1", &csv, s(&ok_points), "--json"],
        vec![
            "features",
            "--extractor",
            "pixels",
            "--images",
            &npy,
            "--no-cache",
            "--out",
            &features,
        ],
        vec!["generate", "--ckpt", &pt, "--seeds", "0", "--out", &grid],
        vec!["dataset", "pack", &zip, &packed],
        vec!["convergence", &jsonl, "--metric", "fid"],
    ];
    all.iter()
        .map(|args| args.iter().map(|a| a.to_string()).collect())
        .collect()
}

fn arguments(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn fifos_devices_and_folders_as_inputs_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("outputs")).unwrap();
    write_points(&dir.path().join("ok.csv"), 0.0);
    // Each kind of odd file under every name a command reads.
    for odd in ["fifo", "device", "folder"] {
        let input = |kind: &str| dir.path().join(format!("{odd}.{kind}"));
        for kind in KINDS {
            let path = input(kind);
            match odd {
                "fifo" => assert!(Command::new("mkfifo")
                    .arg(&path)
                    .status()
                    .unwrap()
                    .success()),
                "device" => std::os::unix::fs::symlink("/dev/zero", &path).unwrap(),
                _ => std::fs::create_dir(&path).unwrap(),
            }
        }
        for args in readers(input, dir.path()) {
            let input = args.iter().find(|a| a.contains(odd)).unwrap().clone();
            let mut command = Command::new(env!("CARGO_BIN_EXE_whichgan"));
            command.args(&args);
            let out = output_within_a_minute(command);
            assert_error_output(&out, &format!("{args:?}"), &[&input]);
        }
    }
    assert_eq!(
        std::fs::read_dir(dir.path().join("outputs"))
            .unwrap()
            .count(),
        0,
        "outputs were written"
    );
}

#[test]
fn paths_with_spaces_and_non_utf8_names_give_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let plain = [dir.path().join("a.csv"), dir.path().join("b.npy")];
    let spaced = dir.path().join("with spaces");
    std::fs::create_dir(&spaced).unwrap();
    let odd = [
        spaced.join("points a.csv"),
        spaced.join(OsStr::from_bytes(b"b-\xff\xfe.npy")),
    ];
    for pair in [&plain, &odd] {
        write_points(&pair[0], 0.0);
        write_points(&pair[1], 0.5);
    }
    let w1 = |pair: &[PathBuf; 2]| {
        let out = Command::new(env!("CARGO_BIN_EXE_whichgan"))
            .args(["metrics".as_ref(), "w1".as_ref(), pair[0].as_os_str()])
            .arg(&pair[1])
            .arg("--json")
            .output()
            .unwrap();
        ok(out)["w1"].as_f64().unwrap()
    };
    let expected = w1(&plain);
    assert!(expected > 0.0);
    assert_eq!(w1(&odd), expected);
    // An error about a non-UTF-8 name shows it with replacement characters, on one line.
    let missing = spaced.join(OsStr::from_bytes(b"gone-\xff.csv"));
    let out = Command::new(env!("CARGO_BIN_EXE_whichgan"))
        .args(["metrics".as_ref(), "w1".as_ref(), missing.as_os_str()])
        .arg(&odd[0])
        .output()
        .unwrap();
    assert_error_output(&out, "a missing non-UTF-8 name", &["gone-\u{fffd}.csv"]);
}

/// How to run the binary as a user whom permissions bind: directly when this is not root,
/// else as `nobody` through `setpriv` from a copy of the binary anyone may run; `None`, with a
/// printed reason, when that cannot be done.
fn unprivileged(dir: &Path) -> Option<Box<dyn Fn() -> Command>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some(Box::new(|| Command::new(env!("CARGO_BIN_EXE_whichgan"))));
    }
    let setpriv = Command::new("setpriv").arg("--version").output();
    if !setpriv.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: running as root and setpriv is missing, so permissions bind no one");
        return None;
    }
    let binary = dir.join("whichgan");
    std::fs::copy(env!("CARGO_BIN_EXE_whichgan"), &binary).unwrap();
    Some(Box::new(move || {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&binary);
        command
    }))
}

/// A folder anyone may enter, with the given mode once its files are in.
fn open_folder(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_owned()
}

#[test]
fn unreadable_inputs_and_unwritable_folders_are_named() {
    // Not under the default temporary folder's private subfolders: `nobody` must reach it.
    let root = tempfile::Builder::new().tempdir_in("/tmp").unwrap();
    let dir = open_folder(root.path());
    let Some(whichgan_as_user) = unprivileged(&dir) else {
        return;
    };
    let readable = dir.join("ok.csv");
    write_points(&readable, 0.0);
    let secret = |kind: &str| dir.join(format!("secret.{kind}"));
    for kind in KINDS {
        // Contents that do not matter: the file cannot be opened.
        std::fs::write(secret(kind), b"x").unwrap();
        std::fs::set_permissions(secret(kind), std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    let outputs = open_folder(&dir.join("outputs"));
    for args in readers(secret, &dir) {
        let input = args.iter().find(|a| a.contains("secret")).unwrap();
        let mut command = whichgan_as_user();
        command.args(arguments(&args));
        let out = output_within_a_minute(command);
        assert_error_output(&out, &format!("{args:?}"), &[input, "ermission denied"]);
    }
    // A folder of outputs the user may not write: refused before any work.
    std::fs::set_permissions(&outputs, std::fs::Permissions::from_mode(0o555)).unwrap();
    let images = dir.join("images.npy");
    whichgan::io::write_npy_f32(&images, &[2, 3, 8, 8], &[0.5; 2 * 3 * 64]).unwrap();
    let unwritable: [&[&str]; 2] = [
        &[
            "features",
            "--extractor",
            "pixels",
            "--images",
            s(&images),
            "--no-cache",
            "--out",
            &format!("{}/f.npy", s(&outputs)),
        ],
        &[
            "dataset",
            "synth",
            "--images",
            "4",
            "--resolution",
            "8",
            "--out",
            &format!("{}/shapes.zip", s(&outputs)),
        ],
    ];
    for args in unwritable {
        let mut command = whichgan_as_user();
        command.args(args);
        let out = output_within_a_minute(command);
        assert_error_output(&out, &format!("{args:?}"), &[s(&outputs)]);
    }
    // The same commands as the owner of the files work: the refusals were the permissions'.
    let points = secret("csv");
    write_points(&points, 0.5);
    std::fs::set_permissions(&points, std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(whichgan(&[
        "metrics",
        "w1",
        s(&points),
        s(&readable),
        "--json",
    ]));
    assert_error(
        &["metrics", "w1", s(&dir.join("gone.csv")), s(&readable)],
        &["gone.csv"],
    );
}
