//! `whichgan classes fit|cover`: the probe's held-out accuracy on `dataset synth` classes with
//! the weight-free pixel features, exact counts of a constructed image set, and bad input.

mod common;
use common::{assert_error, ok, whichgan};

use std::path::Path;
use whichgan::dataset::{synth_image, SynthSpec};

fn synth(dir: &Path, name: &str, images: usize, resolution: u32) -> String {
    let out = dir.join(name);
    ok(whichgan(&[
        "dataset",
        "synth",
        "--images",
        &images.to_string(),
        "--classes",
        "10",
        "--resolution",
        &resolution.to_string(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ]));
    out.to_str().unwrap().to_owned()
}

#[test]
fn a_probe_on_pixel_features_tells_synth_classes_apart() {
    let dir = tempfile::tempdir().unwrap();
    for resolution in [16, 32] {
        let data = synth(dir.path(), &format!("s{resolution}.zip"), 2000, resolution);
        let probe = dir.path().join(format!("p{resolution}.safetensors"));
        let fit = ok(whichgan(&[
            "classes",
            "fit",
            "--data",
            &data,
            "--extractor",
            "pixels",
            "--out",
            probe.to_str().unwrap(),
            "--no-cache",
            "--json",
        ]));
        assert_eq!(
            (fit["classes"].as_u64(), fit["held_out"].as_u64()),
            (Some(10), Some(400))
        );
        let accuracy = fit["accuracy"].as_f64().unwrap();
        assert!(
            accuracy >= 0.95,
            "{resolution} px: held-out accuracy {accuracy}"
        );
    }
}

#[test]
fn cover_counts_a_constructed_set_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth(dir.path(), "train.zip", 2000, 32);
    let probe = dir.path().join("probe.safetensors");
    ok(whichgan(&[
        "classes",
        "fit",
        "--data",
        &data,
        "--extractor",
        "pixels",
        "--out",
        probe.to_str().unwrap(),
        "--no-cache",
        "--json",
    ]));
    // New images (a different seed) of classes 0, 1, 2 in counts 9, 10 and 11.
    let spec = SynthSpec {
        images: 1,
        classes: 10,
        first_class: 0,
        resolution: 32,
        seed: 99,
    };
    let wanted = [9, 10, 11];
    let mut have = [0; 3];
    let mut pixels: Vec<f32> = Vec::new();
    for index in 0.. {
        let (image, class) = synth_image(&spec, index);
        let c = class as usize;
        if c < 3 && have[c] < wanted[c] {
            have[c] += 1;
            for channel in 0..3 {
                pixels.extend(image.pixels().map(|p| p.0[channel] as f32 / 255.0));
            }
        }
        if have == wanted {
            break;
        }
    }
    let images = dir.path().join("images.npy");
    whichgan::io::write_npy_f32(&images, &[30, 3, 32, 32], &pixels).unwrap();
    let hist = dir.path().join("hist.csv");
    let cover = ok(whichgan(&[
        "classes",
        "cover",
        "--probe",
        probe.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--min",
        "10",
        "--out",
        hist.to_str().unwrap(),
        "--no-cache",
        "--json",
    ]));
    assert_eq!(cover["classes_covered"], 2);
    assert_eq!(cover["n"], 30);
    let text = std::fs::read_to_string(&hist).unwrap();
    let counts: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(counts, ["9", "10", "11", "0", "0", "0", "0", "0", "0", "0"]);
}

#[test]
fn unlabelled_data_and_bad_probes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("unlabelled");
    std::fs::create_dir(&folder).unwrap();
    let spec = SynthSpec {
        images: 2,
        classes: 2,
        first_class: 0,
        resolution: 16,
        seed: 0,
    };
    for i in 0..2 {
        synth_image(&spec, i)
            .0
            .save(folder.join(format!("{i}.png")))
            .unwrap();
    }
    let out = dir.path().join("probe.safetensors");
    assert_error(
        &[
            "classes",
            "fit",
            "--data",
            folder.to_str().unwrap(),
            "--extractor",
            "pixels",
            "--out",
            out.to_str().unwrap(),
        ],
        &["unlabelled", "has no class labels"],
    );
    assert!(!out.exists());
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not a probe at all").unwrap();
    let hist = dir.path().join("hist.csv");
    assert_error(
        &[
            "classes",
            "cover",
            "--probe",
            bad.to_str().unwrap(),
            "--data",
            folder.to_str().unwrap(),
            "--out",
            hist.to_str().unwrap(),
        ],
        &["bad.safetensors", "not a class probe"],
    );
    assert!(!hist.exists());
    assert_error(
        &[
            "classes",
            "fit",
            "--data",
            folder.to_str().unwrap(),
            "--extractor",
            "inception",
            "--out",
            out.to_str().unwrap(),
        ],
        &["inception", "weights"],
    );
}
