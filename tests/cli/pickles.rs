//! Official network pickles on the command line (`tests/fixtures/pkl`, sets A, C and D
//! written by the official code): generate and discriminate equal the official outputs (sets C
//! and D, conditional, with their class labels; D's discriminator is `orig`), convert and
//! inspect, a fine-tune from a pickle, and hostile pickles refused without anything run.

mod common;
use common::{assert_error, ok, whichgan};

use std::path::{Path, PathBuf};

fn set(name: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/pkl")
        .join(name)
        .join(file)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `got` equals the official `want` within 1e-4 of want's largest value.
fn assert_matches(got: &Path, want: &Path) {
    let (g, w) = (
        whichgan::io::read_npy(got).unwrap(),
        whichgan::io::read_npy(want).unwrap(),
    );
    assert_eq!(g.data.len(), w.data.len(), "{want:?}");
    let scale = w.data.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = g
        .data
        .iter()
        .zip(&w.data)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(err <= 1e-4 * scale, "{want:?}: {err} vs scale {scale}");
}

#[test]
fn generate_and_discriminate_from_pickles_match_the_official_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);
    for name in ["setA", "setC", "setD"] {
        let pkl = set(name, "network-snapshot-000100.pkl");
        let (z, c, images) = (
            set(name, "z.npy"),
            set(name, "c.npy"),
            set(name, "img_ema.npy"),
        );
        // Sets C and D are conditional: labels 0, 3, 1, c_dim − 1 as one-hot rows.
        let labels: Vec<&str> = match name {
            "setA" => vec![],
            _ => vec!["--c", s(&c)],
        };
        for (psi, want) in [("1", "img_ema.npy"), ("0.7", "img_ema_psi07.npy")] {
            let img = out(&format!("{name}-{want}"));
            let mut args = vec![
                "generate",
                "--ckpt",
                s(&pkl),
                "--z",
                s(&z),
                "--psi",
                psi,
                "--out",
                s(&img),
                "--json",
            ];
            args.extend(&labels);
            ok(whichgan(&args));
            assert_matches(&img, &set(name, want));
        }
        // The pickle's minibatch-std group (2) and clamp (256 for C) are used unasked.
        let logits = out(&format!("{name}-logits.npy"));
        let mut args = vec![
            "discriminate",
            "--ckpt",
            s(&pkl),
            "--images",
            s(&images),
            "--out",
            s(&logits),
            "--json",
        ];
        args.extend(&labels);
        ok(whichgan(&args));
        assert_matches(&logits, &set(name, "d_logits.npy"));
    }
    let by_class = out("by-class.npy");
    ok(whichgan(&[
        "generate",
        "--ckpt",
        s(&set("setC", "network-snapshot-000100.pkl")),
        "--z",
        s(&set("setC", "z.npy")),
        "--class",
        "0,3,1,4",
        "--out",
        s(&by_class),
        "--json",
    ]));
    assert_matches(&by_class, &set("setC", "img_ema.npy"));
    let conditional = set("setC", "network-snapshot-000100.pkl");
    assert_error(
        &[
            "generate",
            "--ckpt",
            s(&conditional),
            "--seeds",
            "0-3",
            "--out",
            s(&out("x.npy")),
        ],
        &["conditional (5 classes)", "--class"],
    );
    assert_error(
        &[
            "generate",
            "--ckpt",
            s(&conditional),
            "--seeds",
            "0-3",
            "--class",
            "5",
            "--out",
            s(&out("x.npy")),
        ],
        &["class 5 does not exist"],
    );
    assert_error(
        &[
            "generate",
            "--ckpt",
            s(&set("setA", "network-snapshot-000100.pkl")),
            "--seeds",
            "0",
            "--class",
            "1",
            "--out",
            s(&out("x.npy")),
        ],
        &["not conditional"],
    );
}

#[test]
fn convert_and_inspect_keep_what_the_pickle_says() {
    let dir = tempfile::tempdir().unwrap();
    let pkl = set("setC", "network-snapshot-000100.pkl");
    let converted = dir.path().join("c.safetensors");
    let r = ok(whichgan(&["convert", s(&pkl), s(&converted), "--json"]));
    assert_eq!(r["tensors"], 209);
    for ckpt in [&pkl, &converted] {
        let i = ok(whichgan(&["inspect", s(ckpt), "--json"]));
        assert_eq!(i["networks"], "G, G_ema, D");
        assert_eq!(i["G"]["c_dim"], 5);
        assert_eq!(i["D"]["architecture"], "resnet");
        assert_eq!(i["conv_clamp"], 256.0);
        assert_eq!(i["mbstd_group"], 2);
        assert!((i["stated"]["augment_p"].as_f64().unwrap() - 0.137).abs() < 1e-6);
    }
    // The converted file's metadata gives discriminate the pickle's settings.
    let logits = dir.path().join("logits.npy");
    ok(whichgan(&[
        "discriminate",
        "--ckpt",
        s(&converted),
        "--images",
        s(&set("setC", "img_ema.npy")),
        "--c",
        s(&set("setC", "c.npy")),
        "--out",
        s(&logits),
        "--json",
    ]));
    assert_matches(&logits, &set("setC", "d_logits.npy"));
    assert_error(
        &["convert", s(&pkl), s(&dir.path().join("c.pt"))],
        &["must be a .safetensors"],
    );
}

/// A fine-tune on `data` into `out` from networks of 32 × 32 images, 2 mapping layers and z 64
/// (sets A and C), `extra` giving their channels.
fn fine_tune(
    data: &Path,
    out: &Path,
    resume: &Path,
    kimg: &str,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "train",
        "--data",
        s(data),
        "--out",
        s(out),
        "--resume",
        s(resume),
        "--kimg",
        kimg,
        "--batch",
        "8",
        "--map",
        "2",
        "--zdim",
        "64",
        "--tick",
        "0.016",
        "--snap",
        "0.016",
        "--grid",
        "5",
        "--json",
    ];
    args.extend(extra);
    ok(whichgan(&args))
}

/// A synthetic dataset of 32 × 32 images in `classes` classes.
fn shapes(dir: &Path, classes: &str) -> PathBuf {
    let data = dir.join(format!("shapes{classes}.zip"));
    ok(whichgan(&[
        "dataset",
        "synth",
        "--images",
        "32",
        "--classes",
        classes,
        "--resolution",
        "32",
        "--out",
        s(&data),
        "--json",
    ]));
    data
}

fn tensors(path: &Path) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<(String, Vec<f32>)> =
        candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .unwrap()
            .into_iter()
            .map(|(n, t)| (n, t.flatten_all().unwrap().to_vec1().unwrap()))
            .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn a_pickle_starts_a_fine_tune_that_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = shapes(dir.path(), "4");
    let pkl = set("setA", "network-snapshot-000100.pkl");
    let (part, whole) = (dir.path().join("part"), dir.path().join("whole"));
    let set_a = ["--cbase", "2048", "--cmax", "64"];
    assert_eq!(fine_tune(&data, &part, &pkl, "0.016", &set_a)["g_steps"], 2);
    // Continued from its first snapshot, the fine-tune equals one run through.
    let first = part.join("network-snapshot-000000.016.safetensors");
    fine_tune(&data, &part, &first, "0.032", &set_a);
    fine_tune(&data, &whole, &pkl, "0.032", &set_a);
    let last = "network-snapshot-000000.032.safetensors";
    assert_eq!(tensors(&whole.join(last)), tensors(&part.join(last)));
    // The conditional pickle (5 classes) fine-tunes with --cond on 5 labelled classes.
    let labelled = shapes(dir.path(), "5");
    let out = dir.path().join("conditional");
    let conditional = set("setC", "network-snapshot-000100.pkl");
    fine_tune(
        &labelled,
        &out,
        &conditional,
        "0.016",
        &["--cbase", "1024", "--cmax", "32", "--cond"],
    );
    let i = ok(whichgan(&[
        "inspect",
        s(&out.join("network-snapshot-000000.016.safetensors")),
        "--json",
    ]));
    assert_eq!(
        (i["G"]["c_dim"].as_u64(), i["D"]["c_dim"].as_u64()),
        (Some(5), Some(5))
    );
}

/// A protocol-2 pickle that calls `global(arg)`: what a hostile checkpoint does.
fn calling(global: &str, arg: &str) -> Vec<u8> {
    let (module, name) = global.rsplit_once('.').unwrap();
    let mut p = b"\x80\x02c".to_vec();
    p.extend(format!("{module}\n{name}\n").as_bytes());
    p.extend(b"X");
    p.extend((arg.len() as u32).to_le_bytes());
    p.extend(arg.as_bytes());
    p.extend(b"\x85R.");
    p
}

#[test]
fn hostile_pickles_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let command = format!("touch {}", marker.display());
    for global in [
        "os.system",
        "posix.system",
        "builtins.eval",
        "builtins.exec",
        "subprocess.Popen",
        "torch_utils.persistence.reconstruct",
    ] {
        let pkl = dir.path().join("evil.pkl");
        std::fs::write(&pkl, calling(global, &command)).unwrap();
        for args in [
            vec![
                "generate",
                "--ckpt",
                s(&pkl),
                "--seeds",
                "0",
                "--out",
                "x.npy",
            ],
            vec!["inspect", s(&pkl)],
        ] {
            assert_error(&args, &["evil.pkl", global, "refused"]);
        }
    }
    let tf = dir.path().join("tf.pkl");
    std::fs::write(&tf, calling("dnnlib.tflib.network.Network", "x")).unwrap();
    assert_error(&["inspect", s(&tf)], &["TensorFlow-era"]);
    assert!(!marker.exists(), "a pickle ran a command");
}
