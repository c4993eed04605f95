//! Helpers shared by the unit tests.

use candle_core::Tensor;

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
