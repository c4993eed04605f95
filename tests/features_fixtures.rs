//! Feature extractors against their references: pytorch-fid's FID Inception-v3
//! (`tests/fixtures/inception`) and torchvision's VGG16 (`tests/fixtures/vgg16`), both with
//! the formula weights of `tests/common/formula.rs`.

#[path = "common/formula.rs"]
mod formula;

use candle_core::{Device, Tensor};
use std::path::{Path, PathBuf};
use whichgan::features::{Extractor, ExtractorKind};
use whichgan::io::{read_npy, Weights};

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// |a − e| ≤ 1e-4·max|e| + 1e-6 (the fixture README's tolerance); returns max|a − e| / max|e|.
fn assert_close(actual: &Tensor, expected: &Tensor, what: &str) -> f64 {
    assert_eq!(actual.dims(), expected.dims(), "{what}");
    let a: Vec<f32> = actual.flatten_all().unwrap().to_vec1().unwrap();
    let e: Vec<f32> = expected.flatten_all().unwrap().to_vec1().unwrap();
    let scale = e.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
    let worst = a
        .iter()
        .zip(&e)
        .map(|(x, y)| (x - y).abs() as f64)
        .fold(0.0, f64::max);
    assert!(
        worst <= 1e-4 * scale + 1e-6,
        "{what}: max |Δ| {worst:e}, max |ref| {scale}"
    );
    worst / scale
}

fn inception_keys() -> Vec<(String, Vec<usize>)> {
    let text = std::fs::read_to_string(fixture("inception/keys.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn formula_weights_match_the_reference_check_sums() {
    let text = std::fs::read_to_string(fixture("inception/formula_check.json")).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let keys = inception_keys();
    assert_eq!(rows.len(), keys.len());
    for (t, ((key, shape), row)) in keys.iter().zip(&rows).enumerate() {
        assert_eq!(row["key"].as_str().unwrap(), key);
        let v = formula::values(key, shape, t);
        let sum: f64 = v.iter().map(|&x| x as f64).sum();
        let want = row["sum_f64"].as_f64().unwrap();
        assert!(
            (sum - want).abs() <= 1e-9 * row["abs_sum_f64"].as_f64().unwrap(),
            "{key}: {sum} vs {want}"
        );
        for (j, f) in row["first4"].as_array().unwrap().iter().enumerate() {
            assert_eq!(v[j], f.as_f64().unwrap() as f32, "{key}[{j}]");
        }
    }
}

#[test]
fn inception_pool_features_match_pytorch_fid() {
    let weights = Weights::new(formula::tensors(&inception_keys()), "formula");
    let net = Extractor::from_weights(ExtractorKind::Inception, &weights).unwrap();
    let inputs =
        candle_core::safetensors::load(fixture("inception/input.safetensors"), &Device::Cpu)
            .unwrap();
    let expected =
        candle_core::safetensors::load(fixture("inception/expected.safetensors"), &Device::Cpu)
            .unwrap();
    for j in 0..2 {
        let features = net.forward(&inputs[&format!("input_{j}")]).unwrap();
        let rel = assert_close(
            &features,
            &expected[&format!("pool3_{j}")],
            &format!("pool3_{j}"),
        );
        eprintln!("pool3_{j}: max |Δ| / max |ref| = {rel:.1e}");
    }
}

#[test]
fn vgg16_fc2_features_match_torchvision() {
    let names = [
        "classifier.0.bias",
        "classifier.0.weight",
        "classifier.3.bias",
        "classifier.3.weight",
        "classifier.6.bias",
        "classifier.6.weight",
    ];
    // torchvision's vgg16 state dict: 13 convolutions, then the classifier; keys sorted
    // byte-wise as the fixture script numbers them.
    let convs = [
        (3, 64),
        (64, 64),
        (64, 128),
        (128, 128),
        (128, 256),
        (256, 256),
        (256, 256),
        (256, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
    ];
    let conv_index = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
    let mut keys: Vec<(String, Vec<usize>)> = names
        .iter()
        .map(|n| {
            let shape = match *n {
                "classifier.0.weight" => vec![4096, 25088],
                "classifier.3.weight" => vec![4096, 4096],
                "classifier.6.weight" => vec![1000, 4096],
                "classifier.6.bias" => vec![1000],
                _ => vec![4096],
            };
            (n.to_string(), shape)
        })
        .collect();
    for (&i, &(c_in, c_out)) in conv_index.iter().zip(&convs) {
        keys.push((format!("features.{i}.weight"), vec![c_out, c_in, 3, 3]));
        keys.push((format!("features.{i}.bias"), vec![c_out]));
    }
    keys.sort();
    let weights = Weights::new(formula::tensors(&keys), "formula");
    let net = Extractor::from_weights(ExtractorKind::Vgg16, &weights).unwrap();
    for j in 0..2 {
        let load = |name: &str| {
            let a = read_npy(&fixture(&format!("vgg16/{name}_{j}.npy"))).unwrap();
            let data: Vec<f32> = a.data.iter().map(|&v| v as f32).collect();
            Tensor::from_vec(data, a.shape, &Device::Cpu).unwrap()
        };
        let features = net.forward(&load("input")).unwrap();
        let rel = assert_close(&features, &load("fc2"), &format!("fc2_{j}"));
        eprintln!("fc2_{j}: max |Δ| / max |ref| = {rel:.1e}");
    }
}
