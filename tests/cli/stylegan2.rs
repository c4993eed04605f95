//! `whichgan generate` and `whichgan discriminate` on the fixture checkpoint (official
//! StyleGAN2-ADA outputs, tests/fixtures/stylegan2): values, checkpoint layouts, bad input;
//! and `whichgan bench memory` on small networks.

mod common;
use common::{assert_error, ok, whichgan};

use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/stylegan2")
        .join(name)
}

fn io() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture("io.safetensors"), &Device::Cpu).unwrap()
}

fn save_npy(path: &Path, t: &Tensor) {
    let data: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    whichgan::io::write_npy_f32(path, t.dims(), &data).unwrap();
}

fn load_npy(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let a = whichgan::io::read_npy(path).unwrap();
    (a.shape, a.data)
}

fn assert_close(name: &str, got: &[f64], want: &Tensor) {
    let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
    let err = got
        .iter()
        .zip(&want)
        .fold(0.0f64, |m, (g, w)| m.max((g - *w as f64).abs()));
    assert!(err <= 1e-4 * scale, "{name}: {err} vs scale {scale}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn generate_and_discriminate_match_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let io = io();
    let (z, real) = (dir.path().join("z.npy"), dir.path().join("real.npy"));
    save_npy(&z, &io["z"]);
    save_npy(&real, &io["real"]);
    let g = fixture("G.safetensors");
    let d = fixture("D.safetensors");

    let images = dir.path().join("img.npy");
    ok(whichgan(&[
        "generate",
        "--ckpt",
        s(&g),
        "--z",
        s(&z),
        "--out",
        s(&images),
        "--json",
    ]));
    let (shape, data) = load_npy(&images);
    assert_eq!(shape, [4, 3, 32, 32]);
    assert_close("img_psi1", &data, &io["img_psi1"]);
    ok(whichgan(&[
        "generate",
        "--ckpt",
        s(&g),
        "--z",
        s(&z),
        "--psi",
        "0.7",
        "--batch",
        "3",
        "--out",
        s(&images),
        "--json",
    ]));
    assert_close("img_psi07", &load_npy(&images).1, &io["img_psi07"]);

    let logits = dir.path().join("logits.npy");
    let grad = dir.path().join("grad.npy");
    ok(whichgan(&[
        "discriminate",
        "--ckpt",
        s(&d),
        "--images",
        s(&real),
        "--grad",
        s(&grad),
        "--out",
        s(&logits),
        "--json",
    ]));
    let (shape, data) = load_npy(&logits);
    assert_eq!(shape, [4, 1]);
    assert_close("d_real", &data, &io["d_real"]);
    assert_close("grad_real", &load_npy(&grad).1, &io["grad_real"]);

    // Seeds give a PNG grid: 4 images of 32 × 32 in 2 × 2.
    let png = dir.path().join("grid.png");
    let report = ok(whichgan(&[
        "generate",
        "--ckpt",
        s(&g),
        "--seeds",
        "0-3",
        "--out",
        s(&png),
        "--json",
    ]));
    assert_eq!(report["images"], 4);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    let (w, h) = (
        u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
        u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (64, 64));
}

#[test]
fn prefixed_checkpoints_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let g = candle_core::safetensors::load(fixture("G.safetensors"), &Device::Cpu).unwrap();
    let d = candle_core::safetensors::load(fixture("D.safetensors"), &Device::Cpu).unwrap();
    let mut both: HashMap<String, Tensor> = HashMap::new();
    for (k, v) in &g {
        both.insert(format!("G_ema.{k}"), v.clone());
    }
    for (k, v) in &d {
        both.insert(format!("D.{k}"), v.clone());
    }
    let ckpt = dir.path().join("both.safetensors");
    candle_core::safetensors::save(&both, &ckpt).unwrap();
    let io = io();
    let z = dir.path().join("z.npy");
    save_npy(&z, &io["z"]);
    let out = dir.path().join("img.npy");
    ok(whichgan(&[
        "generate",
        "--ckpt",
        s(&ckpt),
        "--z",
        s(&z),
        "--out",
        s(&out),
        "--json",
    ]));
    assert_close("img_psi1", &load_npy(&out).1, &io["img_psi1"]);
    assert_error(
        &[
            "generate",
            "--ckpt",
            s(&ckpt),
            "--net",
            "G",
            "--z",
            s(&z),
            "--out",
            s(&out),
        ],
        &["holds no 'G.' tensors (it holds: G_ema, D)"],
    );

    // A missing tensor is named.
    let mut partial = g.clone();
    partial.remove("synthesis.b8.conv1.affine.bias");
    let broken = dir.path().join("broken.safetensors");
    candle_core::safetensors::save(&partial, &broken).unwrap();
    assert_error(
        &[
            "generate",
            "--ckpt",
            s(&broken),
            "--seeds",
            "0",
            "--out",
            s(&out),
        ],
        &["missing tensor 'synthesis.b8.conv1.affine.bias'"],
    );
    // Images of the wrong size, PyTorch pickles, a bad output name, bad seeds.
    let small = dir.path().join("small.npy");
    save_npy(
        &small,
        &Tensor::zeros((2, 3, 16, 16), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let logits = dir.path().join("l.npy");
    assert_error(
        &[
            "discriminate",
            "--ckpt",
            s(&ckpt),
            "--images",
            s(&small),
            "--out",
            s(&logits),
        ],
        &["images must be [N, 3, 32, 32]"],
    );
    assert_error(
        &[
            "generate",
            "--ckpt",
            "missing.pt",
            "--seeds",
            "0",
            "--out",
            s(&out),
        ],
        &["missing.pt"],
    );
    let not_zip = dir.path().join("garbled.pt");
    std::fs::write(&not_zip, b"\x80\x02not a checkpoint").unwrap();
    assert_error(
        &[
            "generate",
            "--ckpt",
            s(&not_zip),
            "--seeds",
            "0",
            "--out",
            s(&out),
        ],
        &[
            "garbled.pt",
            "neither a PyTorch zip checkpoint nor a legacy torch.save file",
        ],
    );
    assert_error(
        &[
            "generate",
            "--ckpt",
            s(&ckpt),
            "--seeds",
            "0",
            "--out",
            "x.jpg",
        ],
        &["output must end in .png or .npy"],
    );
    assert_error(
        &[
            "generate",
            "--ckpt",
            s(&ckpt),
            "--seeds",
            "5-2",
            "--out",
            s(&out),
        ],
        &["--seeds '5-2'"],
    );
    assert!(!logits.exists());
}

#[test]
fn truncation_takes_negative_values_and_refuses_non_finite_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = fixture("G.safetensors");
    let run = |psi: &str, out: &Path| {
        whichgan(&[
            "generate",
            "--ckpt",
            s(&ckpt),
            "--seeds",
            "0-1",
            "--psi",
            psi,
            "--out",
            s(out),
            "--json",
        ])
    };
    let (neg, pos) = (dir.path().join("neg.npy"), dir.path().join("pos.npy"));
    ok(run("-0.5", &neg));
    ok(run("0.5", &pos));
    let (neg, pos) = (load_npy(&neg).1, load_npy(&pos).1);
    assert!(neg.iter().all(|v| v.is_finite()));
    // −ψ mirrors the latents around the average one: other images than +ψ.
    assert_ne!(neg, pos);
    for bad in ["nan", "inf", "-inf"] {
        let out = dir.path().join(format!("{bad}.npy"));
        assert_error(
            &[
                "generate",
                "--ckpt",
                s(&ckpt),
                "--seeds",
                "0",
                "--psi",
                bad,
                "--out",
                s(&out),
            ],
            &["--psi must be a finite number"],
        );
        assert!(!out.exists());
    }
}

#[test]
fn output_paths_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.npy");
    save_npy(&images, &io()["img_psi1"]);
    let ckpt = fixture("D.safetensors");
    let logits = dir.path().join("logits.npy");
    let discriminate = |out: &Path, grad: &Path| {
        vec![
            "discriminate".to_owned(),
            "--ckpt".to_owned(),
            s(&ckpt).to_owned(),
            "--images".to_owned(),
            s(&images).to_owned(),
            "--out".to_owned(),
            s(out).to_owned(),
            "--grad".to_owned(),
            s(grad).to_owned(),
        ]
    };
    let check = |args: Vec<String>, needles: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_error(&args, needles);
    };
    // A missing folder for the second output: the first is not written either.
    let nowhere = dir.path().join("nodir").join("g.npy");
    check(
        discriminate(&logits, &nowhere),
        &["g.npy", "folder", "nodir", "does not exist"],
    );
    assert!(
        !logits.exists(),
        "the logits were written before the failure"
    );
    // One file for both outputs (spelt two ways).
    let same = dir.path().join(".").join("logits.npy");
    check(discriminate(&logits, &same), &["both --out and --grad"]);
    assert!(!logits.exists());
    // The generator's output likewise.
    let grid = dir.path().join("grids").join("g.png");
    assert_error(
        &[
            "generate",
            "--ckpt",
            s(&fixture("G.safetensors")),
            "--seeds",
            "0",
            "--out",
            s(&grid),
        ],
        &["folder", "grids", "does not exist"],
    );
}

#[test]
fn hostile_arguments_and_files_are_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images.npy");
    save_npy(&images, &io()["img_psi1"]);
    let before = std::fs::read(&images).unwrap();
    let d = fixture("D.safetensors");
    let discriminate = |images: &Path, out: &Path, extra: &[&str]| {
        let mut args = vec!["discriminate", "--ckpt", s(&d), "--images"];
        args.extend([s(images), "--out", s(out)]);
        args.extend_from_slice(extra);
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let check = |args: Vec<String>, needles: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_error(&args, needles);
    };
    // The output may not replace an input.
    check(
        discriminate(&images, &images, &[]),
        &["both --images and --out"],
    );
    assert_eq!(before, std::fs::read(&images).unwrap());
    let logits = dir.path().join("logits.npy");
    // A batch that splits the minibatch-std groups.
    check(
        discriminate(&images, &logits, &["--batch", "3"]),
        &["--batch 3 must be a multiple of --mbstd-group 4"],
    );
    // An empty image file names the file.
    let empty = dir.path().join("empty.npy");
    whichgan::io::write_npy_f32(&empty, &[0, 3, 32, 32], &[]).unwrap();
    check(
        discriminate(&empty, &logits, &[]),
        &["empty.npy", "[0, 3, 32, 32]"],
    );
    assert!(!logits.exists());
    // features likewise keeps its input.
    let w = s(&d);
    assert_error(
        &[
            "features",
            "--extractor",
            "inception",
            "--weights",
            w,
            "--images",
            s(&images),
            "--out",
            s(&images),
        ],
        &["both --images and --out"],
    );
    assert_eq!(before, std::fs::read(&images).unwrap());
    // A missing tensor is reported with the file named once.
    let mut partial = candle_core::safetensors::load(&d, &Device::Cpu).unwrap();
    partial.retain(|name, _| !name.starts_with("b4.out"));
    let broken = dir.path().join("broken.safetensors");
    candle_core::safetensors::save(&partial, &broken).unwrap();
    let out = whichgan(&[
        "discriminate",
        "--ckpt",
        s(&broken),
        "--images",
        s(&images),
        "--out",
        s(&logits),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("broken.safetensors").count(), 1, "{stderr}");
    assert!(stderr.contains("missing tensor"), "{stderr}");
}

/// `bench memory` on small networks: a report per pass with both paths' peaks above their
/// baselines and their operation counts; the generic path runs more, smaller operations; G's
/// sampling pass keeps no graph, so it holds less than the passes that train.
#[test]
fn the_memory_benchmark_measures_every_pass_on_both_paths() {
    let out = whichgan(&[
        "bench", "memory", "--cfg", "auto", "--res", "16", "--batch", "2", "--cbase", "256",
        "--cmax", "32", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let passes: Vec<&str> = reports
        .iter()
        .map(|r| r["pass"].as_str().unwrap())
        .collect();
    assert_eq!(passes, ["g-forward", "main", "r1", "path-length"]);
    let number = |r: &serde_json::Value, key: &str| r[key].as_f64().unwrap();
    for r in &reports {
        for path in ["generic", "kernels"] {
            let above = number(r, &format!("{path}_above_baseline_mib"));
            assert!(
                above > 0.0 && above < number(r, &format!("{path}_peak_mib")),
                "{r}"
            );
        }
        assert!(
            r.get("official_peak_mib").is_none(),
            "no official side was asked for"
        );
        if r["pass"] != "g-forward" {
            assert!(number(r, "generic_ops") > number(r, "kernels_ops"), "{r}");
            let sampling = number(&reports[0], "generic_above_baseline_mib");
            assert!(sampling < number(r, "generic_above_baseline_mib"), "{r}");
        }
    }
    // The official side needs its Python: a one-line error before any measurement.
    assert_error(
        &[
            "bench",
            "memory",
            "--official",
            "/nowhere",
            "--python",
            "/nowhere/python",
        ],
        &["no Python at /nowhere/python"],
    );
}
