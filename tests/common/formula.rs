//! The closed-form weights of `tests/fixtures/inception/formula.md` (set A), for any list of
//! state-dict keys: the parity tests rebuild the networks without a weights file.

use candle_core::{Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const A: f64 = 0.731;
const B: f64 = 1.37;
const C: f64 = 0.0173;
const P: u64 = 65521;
const WMUL: f64 = 4.5;
const GAMMA_AMP: f64 = 0.1;
const BETA_AMP: f64 = 0.05;
const MEAN_AMP: f64 = 0.05;
const VAR_AMP: f64 = 0.5;
const BIAS_AMP: f64 = 0.05;

/// The f32 values of tensor number `t` (its position in the sorted key list).
pub fn values(key: &str, shape: &[usize], t: usize) -> Vec<f32> {
    let count: usize = shape.iter().product();
    let fan_in: usize = shape[1..].iter().product();
    (0..count as u64)
        .map(|i| {
            let q = (i * i) % P;
            let s = ((A * i as f64 + B * t as f64) + C * q as f64).sin();
            let v = if key.ends_with("bn.weight") {
                1.0 + GAMMA_AMP * s
            } else if key.ends_with("bn.bias") {
                BETA_AMP * s
            } else if key.ends_with("running_mean") {
                MEAN_AMP * s
            } else if key.ends_with("running_var") {
                1.0 + VAR_AMP * s.abs()
            } else if key.ends_with("weight") {
                (WMUL / fan_in as f64).sqrt() * s
            } else {
                BIAS_AMP * s
            };
            v as f32
        })
        .collect()
}

/// Every tensor of `keys` (already in sorted order), on the CPU.
pub fn tensors(keys: &[(String, Vec<usize>)]) -> HashMap<String, Tensor> {
    keys.iter()
        .enumerate()
        .map(|(t, (key, shape))| {
            let v = values(key, shape, t);
            (
                key.clone(),
                Tensor::from_vec(v, shape.as_slice(), &Device::Cpu).unwrap(),
            )
        })
        .collect()
}

/// Writes the formula Inception-v3 (the keys of `tests/fixtures/inception/keys.json`) as a
/// safetensors file at `path`, which it returns.
#[allow(dead_code)] // not every test crate writes the weights
pub fn inception_file(path: &Path) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|dir| dir.join("tests/fixtures/inception/keys.json"))
        .find(|keys| keys.exists())
        .expect("tests/fixtures in the workspace");
    let text = std::fs::read_to_string(fixtures).unwrap();
    let keys: Vec<(String, Vec<usize>)> = serde_json::from_str(&text).unwrap();
    candle_core::safetensors::save(&tensors(&keys), path).unwrap();
    path.to_owned()
}
