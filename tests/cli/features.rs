//! `whichgan features`, `whichgan select` and `whichgan convergence` end to end: datasets
//! (folder, zip) equal arrays, the cache, both selection settings, bad input.
//! The Inception weights are the formula weights of the parity fixture (tests/fixtures/inception).

mod common;
#[path = "../common/formula.rs"]
mod formula;
use common::{assert_error, ok, whichgan};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// The formula Inception weights as a safetensors file, written once per build.
fn inception_weights() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("inception-formula.safetensors");
        if !path.exists() {
            let tmp = formula::inception_file(&path.with_extension("partial"));
            std::fs::rename(&tmp, &path).unwrap();
        }
        path
    })
}

/// A deterministic RGB image as bytes k (row-major, interleaved).
fn pixels(seed: usize, w: usize, h: usize) -> Vec<u8> {
    (0..w * h * 3)
        .map(|i| ((i * 37 + seed * 101 + (i / 3 % w) * seed * 13) % 256) as u8)
        .collect()
}

/// Writes one PNG through the library's grid writer (bytes k exactly: x = (k − 127.5)/127.5).
fn write_png(path: &Path, seed: usize, w: usize, h: usize) -> Vec<u8> {
    let px = pixels(seed, w, h);
    let mut planar = vec![0f32; px.len()];
    for (i, &k) in px.iter().enumerate() {
        let (pixel, c) = (i / 3, i % 3);
        planar[c * w * h + pixel] = (k as f32 - 127.5) / 127.5;
    }
    whichgan::io::write_png_grid(path, [1, 3, h, w], &planar).unwrap();
    px
}

/// A folder of `n` 16 × 16 PNGs (two levels deep) and the same images as a [0, 1] .npy.
fn dataset(dir: &Path, n: usize, seed: usize) -> (PathBuf, PathBuf) {
    let folder = dir.join(format!("data{seed}"));
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    let mut all = Vec::new();
    for i in 0..n {
        // Sorted order: img0…, then sub/img…
        let name = if i < n / 2 {
            format!("img{i}.png")
        } else {
            format!("sub/img{i}.png")
        };
        let px = write_png(&folder.join(name), seed * 100 + i, 16, 16);
        for c in 0..3 {
            all.extend(px.iter().skip(c).step_by(3).map(|&k| k as f32 / 255.0));
        }
    }
    let npy = dir.join(format!("images{seed}.npy"));
    whichgan::io::write_npy_f32(&npy, &[n, 3, 16, 16], &all).unwrap();
    (folder, npy)
}

fn read(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let a = whichgan::io::read_npy(path).unwrap();
    (a.shape, a.data)
}

#[test]
fn folders_zips_and_arrays_give_the_same_features_and_the_cache_returns_them() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, npy) = dataset(dir.path(), 4, 1);
    let cache = dir.path().join("cache");
    let w = s(inception_weights());
    let run = |input: &[&str], out: &Path| {
        let mut args = vec!["features", "--extractor", "inception", "--weights", w];
        args.extend_from_slice(input);
        args.extend_from_slice(&["--out", s(out), "--cache", s(&cache), "--json"]);
        ok(whichgan(&args))
    };
    let from_folder = run(&["--data", s(&folder)], &dir.path().join("a.npy"));
    assert_eq!(from_folder["images"], 4);
    assert_eq!(from_folder["dim"], 2048);
    assert_eq!(from_folder["cached"], false);
    let from_array = run(&["--images", s(&npy)], &dir.path().join("b.npy"));
    let (shape, a) = read(&dir.path().join("a.npy"));
    let (_, b) = read(&dir.path().join("b.npy"));
    assert_eq!(shape, vec![4, 2048]);
    assert_eq!(a, b, "dataset and array features differ");
    assert_eq!(from_array["cached"], false);
    // Different images give different features.
    assert!(a[..2048].iter().zip(&a[2048..4096]).any(|(x, y)| x != y));

    // The same folder packed as a zip in the official layout.
    let zip_path = dir.path().join("data.zip");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    for (i, name) in ["img0.png", "img1.png", "sub/img2.png", "sub/img3.png"]
        .iter()
        .enumerate()
    {
        zip.start_file(
            format!("0000{}/{name}", i / 2),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&std::fs::read(folder.join(name)).unwrap())
            .unwrap();
    }
    zip.start_file("dataset.json", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"{\"labels\": null}").unwrap();
    zip.finish().unwrap();
    run(&["--data", s(&zip_path)], &dir.path().join("c.npy"));
    assert_eq!(
        read(&dir.path().join("c.npy")).1,
        a,
        "zip and folder features differ"
    );

    // A second run over the folder comes from the cache, with the same values.
    let again = run(&["--data", s(&folder)], &dir.path().join("d.npy"));
    assert_eq!(again["cached"], true);
    assert_eq!(read(&dir.path().join("d.npy")).1, a);
}

#[test]
fn bad_datasets_and_weights_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let w = s(inception_weights());
    let out = dir.path().join("f.npy");
    let base = |data: &Path| -> Vec<String> {
        [
            "features",
            "--extractor",
            "inception",
            "--weights",
            w,
            "--data",
            s(data),
            "--out",
            s(&out),
            "--no-cache",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect()
    };
    let check = |args: Vec<String>, needles: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_error(&args, needles);
        assert!(!out.exists(), "an output was written for {args:?}");
    };
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    check(base(&empty), &["empty", "holds no PNG or JPEG images"]);

    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    write_png(&mixed.join("a.png"), 1, 16, 16);
    write_png(&mixed.join("b.png"), 2, 20, 16);
    check(base(&mixed), &["b.png", "20×16", "expected 16×16"]);
    // A centre-crop resize brings both to one size.
    let mut args = base(&mixed);
    args.extend([
        "--resize".to_string(),
        "12".to_string(),
        "--json".to_string(),
    ]);
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(ok(whichgan(&args_ref))["images"], 2);
    std::fs::remove_file(&out).unwrap();

    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    write_png(&corrupt.join("good.png"), 3, 16, 16);
    std::fs::write(corrupt.join("bad.png"), b"not a png").unwrap();
    check(base(&corrupt), &["bad.png", "cannot decode image"]);
    let mut args = base(&corrupt);
    args.extend(["--skip-bad".to_string(), "--json".to_string()]);
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = ok(whichgan(&args_ref));
    assert_eq!(
        (report["images"].as_u64(), report["skipped"].as_u64()),
        (Some(1), Some(1))
    );
    std::fs::remove_file(&out).unwrap();

    // Missing weights; weights of another network.
    let mut args = base(&corrupt);
    args[4] = dir.path().join("nope.pth").display().to_string();
    check(args.clone(), &["nope.pth"]);
    // The output's folder is checked first, before the weights are even looked at.
    let nowhere = dir.path().join("feats").join("f.npy");
    args[8] = nowhere.display().to_string();
    check(args, &["f.npy", "folder", "feats", "does not exist"]);
    let mut args = base(&corrupt);
    args[4] = fixtures()
        .join("stylegan2/G.safetensors")
        .display()
        .to_string();
    check(
        args,
        &[
            "G.safetensors",
            "Conv2d_1a_3x3.conv.weight",
            "not inception weights",
        ],
    );
}

/// Writes features [n, 2048] on a 4-dimensional manifold: latents drawn around `centre` with
/// spread `scale`, mapped by one fixed random linear map (k-NN metrics behave as in 4-D).
fn manifold_features(path: &Path, n: usize, centre: f32, scale: f32, seed: u64) {
    use rand::SeedableRng;
    use rand_distr::Distribution;
    const LATENT: usize = 4;
    const D: usize = 2048;
    let normal = rand_distr::StandardNormal;
    let mut map_rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let map: Vec<f32> = (0..LATENT * D)
        .map(|_| normal.sample(&mut map_rng))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut data = Vec::with_capacity(n * D);
    for _ in 0..n {
        let z: Vec<f32> = (0..LATENT)
            .map(|_| centre + scale * Distribution::<f32>::sample(&normal, &mut rng))
            .collect();
        data.extend((0..D).map(|j| (0..LATENT).map(|l| z[l] * map[l * D + j]).sum::<f32>()));
    }
    whichgan::io::write_npy_f32(path, &[n, D], &data).unwrap();
}

#[test]
fn select_ranks_sources_and_agrees_with_the_metric_commands() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    manifold_features(&p("target.npy"), 200, 0.0, 1.0, 1);
    manifold_features(&p("close.npy"), 150, 0.0, 1.0, 2);
    manifold_features(&p("narrow.npy"), 150, 0.0, 0.4, 3);
    manifold_features(&p("far.npy"), 150, 1.5, 1.0, 4);
    let out = p("sel");
    let close = format!("close={}", s(&p("close.npy")));
    let narrow = format!("narrow={}", s(&p("narrow.npy")));
    let far = format!("far={}", s(&p("far.npy")));
    let report = ok(whichgan(&[
        "select",
        "--target",
        s(&p("target.npy")),
        "--source",
        &narrow,
        "--source",
        &far,
        "--source",
        &close,
        "--kid-subset-size",
        "100",
        "--kid-subsets",
        "10",
        "--out",
        s(&out),
        "--json",
    ]));
    assert_eq!(report["recommended"], "close");
    assert_eq!(report["metric"], "recall");
    assert_eq!(report["pr_features"], "inception");
    let table = whichgan::io::Table::read(&out.join("scores.csv")).unwrap();
    let names = table.text_column("source").unwrap();
    assert_eq!(names, vec!["narrow", "far", "close"]);
    let recall = table.numeric_column("recall").unwrap();
    assert!(
        recall[2] > recall[0],
        "narrow covers less of the target: {recall:?}"
    );
    assert_eq!(table.numeric_column("rank_recall").unwrap()[2], 1.0);
    // Every score equals the stand-alone metric commands on the same files.
    for (i, name) in ["narrow", "far", "close"].iter().enumerate() {
        let file = p(&format!("{name}.npy"));
        let m = ok(whichgan(&[
            "metrics",
            "prdc",
            s(&p("target.npy")),
            s(&file),
            "--k",
            "3",
            "--json",
        ]));
        assert_eq!(
            table.numeric_column("precision").unwrap()[i],
            (m["precision"].as_f64().unwrap() * 1e6).round() / 1e6
        );
        assert_eq!(
            recall[i],
            (m["recall"].as_f64().unwrap() * 1e6).round() / 1e6
        );
        let f = ok(whichgan(&[
            "metrics",
            "fid",
            s(&p("target.npy")),
            s(&file),
            "--kid-subset-size",
            "100",
            "--kid-subsets",
            "10",
            "--json",
        ]));
        let fid = table.numeric_column("fid").unwrap()[i];
        assert!(
            (fid - f["fid"].as_f64().unwrap()).abs() <= 1e-6 * fid.max(1.0),
            "{name} fid"
        );
        let kid = table.numeric_column("kid").unwrap()[i];
        assert!(
            (kid - f["kid"].as_f64().unwrap()).abs() <= 1e-6,
            "{name} kid"
        );
    }
    let md = std::fs::read_to_string(out.join("selection.md")).unwrap();
    assert!(
        md.starts_with("Recommended source (best recall): **close**"),
        "{md}"
    );
    // FID picks the same source here; by FID, far (shifted mean) is worst.
    let by_fid = ok(whichgan(&[
        "select",
        "--target",
        s(&p("target.npy")),
        "--source",
        &narrow,
        "--source",
        &far,
        "--source",
        &close,
        // Metric names are accepted in any case.
        "--metric",
        "FID",
        "--kid-subset-size",
        "100",
        "--out",
        s(&p("sel2")),
        "--json",
    ]));
    assert_eq!(by_fid["recommended"], "close");

    // Bad input.
    assert_error(
        &[
            "select",
            "--target",
            s(&p("target.npy")),
            "--source",
            "oops",
            "--out",
            s(&p("x")),
        ],
        &["--source 'oops'", "NAME=PATH"],
    );
    assert_error(
        &[
            "select",
            "--target",
            s(&p("target.npy")),
            "--source",
            &close,
            "--metric",
            "fidelity",
            "--out",
            s(&p("x")),
        ],
        &["'fidelity'", "fid, kid, precision, recall"],
    );
    // A run that fails on its inputs leaves no output folder behind.
    assert_error(
        &[
            "select",
            "--target",
            s(&p("missing.npy")),
            "--source",
            &close,
            "--out",
            s(&p("x")),
        ],
        &["missing.npy"],
    );
    assert!(!p("x").exists(), "a failed run created its output folder");
    // --out names a folder; an existing file is refused before any work.
    std::fs::write(p("scores.csv"), "").unwrap();
    assert_error(
        &[
            "select",
            "--target",
            s(&p("target.npy")),
            "--source",
            &close,
            "--out",
            s(&p("scores.csv")),
        ],
        &["scores.csv", "is a file", "folder"],
    );
}

#[test]
fn generator_sources_are_sampled_as_the_generate_command_draws_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let ckpt = fixtures().join("stylegan2/checkpoint.pt");
    // Setting 2 from the checkpoint …
    ok(whichgan(&[
        "generate",
        "--ckpt",
        s(&ckpt),
        "--seeds",
        "0-3",
        "--out",
        s(&p("g.npy")),
        "--json",
    ]));
    let (shape, g) = read(&p("g.npy"));
    // … and the same samples quantised as the official metrics do, given as images.
    let q: Vec<f32> = g
        .iter()
        .map(|&x| (x as f32 * 127.5 + 128.0).clamp(0.0, 255.0).floor() / 255.0)
        .collect();
    whichgan::io::write_npy_f32(&p("q.npy"), &shape, &q).unwrap();
    let (_, target_npy) = dataset(dir.path(), 5, 7);
    let w = s(inception_weights());
    let run = |source: String, out: &str| {
        ok(whichgan(&[
            "select",
            "--target",
            s(&target_npy),
            "--source",
            &source,
            "--inception",
            w,
            "--n",
            "4",
            "--no-cache",
            "--out",
            s(&p(out)),
            "--json",
        ]))
    };
    let from_ckpt = run(format!("g={}", s(&ckpt)), "a");
    let from_images = run(format!("g={}", s(&p("q.npy"))), "b");
    assert_eq!(from_ckpt["sources"][0]["n"], 4);
    assert_eq!(from_ckpt["sources"], from_images["sources"]);
    assert!(from_ckpt["sources"][0]["fid"].as_f64().unwrap() > 0.0);
}

#[test]
fn convergence_reads_our_logs_the_official_ones_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    // FID 40, 20, 12, 10.4, 10, 10 at 0…500 kimg: plateau (last 10 % = the point at 500) 10;
    // within 5 % from 300 kimg; excess area (trapezoids of 30, 10, 2, 0.4, 0, 0 over 100 kimg)
    // 100·(15 + 10 + 2 + 0.4) = 2740.
    let fid = [40.0, 20.0, 12.0, 10.4, 10.0, 10.0];
    let mut ours = String::new();
    let mut official = String::new();
    let mut csv = String::from("kimg,fid\n");
    for (i, v) in fid.iter().enumerate() {
        ours += &format!(
            "{{\"kimg\": {}, \"loss_G\": 1.0, \"fid\": {v}}}\n{{\"kimg\": {}, \"loss_G\": 0.5}}\n",
            i * 100,
            i * 100 + 50
        );
        official += &format!(
            "{{\"results\": {{\"fid50k_full\": {v}}}, \"metric\": \"fid50k_full\", \"snapshot_pkl\": \"network-snapshot-{:06}.pkl\"}}\n",
            i * 100
        );
        csv += &format!("{},{v}\n", i * 100);
    }
    std::fs::write(p("log.jsonl"), ours).unwrap();
    std::fs::write(p("metric-fid50k_full.jsonl"), official).unwrap();
    std::fs::write(p("log.csv"), csv).unwrap();
    let out = whichgan(&[
        "convergence",
        s(&p("log.jsonl")),
        s(&p("log.csv")),
        "--within",
        "5",
        "--json",
    ]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for c in &lines {
        assert_eq!(c["plateau"], 10.0);
        assert_eq!(c["kimg_to_within"], 300.0);
        assert!((c["excess_area"].as_f64().unwrap() - 2740.0).abs() < 1e-9);
        assert_eq!(c["points"], 6);
    }
    let official = ok(whichgan(&[
        "convergence",
        s(&p("metric-fid50k_full.jsonl")),
        "--metric",
        "fid50k_full",
        "--within",
        "5",
        "--json",
    ]));
    assert_eq!(official["kimg_to_within"], 300.0);
    assert_error(
        &["convergence", s(&p("log.jsonl")), "--metric", "recall"],
        &["log.jsonl", "no 'recall' values"],
    );
    std::fs::write(p("broken.jsonl"), "{\"kimg\": 1, \"fid\": 2}\nnot json\n").unwrap();
    assert_error(
        &["convergence", s(&p("broken.jsonl"))],
        &["broken.jsonl", "2", "not JSON"],
    );
}

#[test]
fn pixel_features_need_no_weights_and_refuse_some() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, _) = dataset(dir.path(), 3, 7);
    let out = dir.path().join("pixels.npy");
    let r = ok(whichgan(&[
        "features",
        "--extractor",
        "pixels",
        "--data",
        s(&folder),
        "--out",
        s(&out),
        "--no-cache",
        "--json",
    ]));
    assert_eq!(r["dim"], 256);
    let (shape, values) = read(&out);
    assert_eq!(shape, [3, 256]);
    // The first 192 are averages of pixels in [0, 1]; the rest spectrum magnitudes ≥ 0.
    assert!(values.iter().all(|v| *v >= 0.0));
    assert!(values[..192].iter().all(|v| *v <= 1.0));
    assert_error(
        &[
            "features",
            "--extractor",
            "pixels",
            "--weights",
            s(&out),
            "--data",
            s(&folder),
            "--out",
            s(&dir.path().join("o.npy")),
        ],
        &["pixels embedding takes no weights"],
    );
    assert_error(
        &[
            "features",
            "--extractor",
            "vgg16",
            "--data",
            s(&folder),
            "--out",
            s(&dir.path().join("o.npy")),
        ],
        &["vgg16 network needs its weights file"],
    );
}

#[test]
fn processes_sharing_a_feature_cache_at_once_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (folder, _) = dataset(dir.path(), 6, 3);
    let cache = dir.path().join("cache");
    // The command writing features to `<out>.npy`, reading and filling the one cache.
    let args = |out: &str| -> Vec<String> {
        let out = dir.path().join(format!("{out}.npy"));
        [
            "features",
            "--extractor",
            "pixels",
            "--data",
            s(&folder),
            "--cache",
            s(&cache),
            "--out",
            s(&out),
            "--json",
        ]
        .map(String::from)
        .to_vec()
    };
    // Six processes at once, each embedding the same images into the same cache.
    let running: Vec<_> = (0..6)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_whichgan"))
                .args(args(&format!("g{i}")))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in running {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let first = read(&dir.path().join("g0.npy"));
    for i in 1..6 {
        assert_eq!(read(&dir.path().join(format!("g{i}.npy"))), first);
    }
    // One entry, no temporaries left, and a later run finds it.
    let entries: Vec<String> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let again = args("h");
    let again = ok(whichgan(
        &again.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert_eq!(again["cached"], true);
}
