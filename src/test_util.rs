//! Helpers shared by the unit tests.

use candle_core::{Device, Tensor};

/// max |a − b| over all elements (f32 tensors of the same shape).
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// max |a − b| / max |b|.
pub fn relative_diff(a: &Tensor, b: &Tensor) -> f32 {
    let scale: f32 = b.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
    max_diff(a, b) / scale
}

/// A deterministic, irregular [N, C, H, W] f32 input for operations (values in [−1.5, 1.65)).
pub fn ramp(shape: (usize, usize, usize, usize)) -> Tensor {
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 23) as f32 / 7.0 - 1.5)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}
