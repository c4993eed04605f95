//! The colour part of the pipeline: per-sample choices (brightness, contrast, luma flip, hue,
//! saturation) composed into one homogeneous 4 × 4 matrix, applied to RGB or grey images.

use super::spec::{erfinv, Draws};
use super::AugmentPipe;
use crate::{Error, Result};
use candle_core::Tensor;
use std::f32::consts::PI;

pub(super) type M4 = [[f32; 4]; 4];

fn mul4(a: &M4, b: &M4) -> M4 {
    let mut c = [[0f32; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            c[i][j] = (0..4).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

fn identity4() -> M4 {
    let mut m = [[0f32; 4]; 4];
    (0..4).for_each(|i| m[i][i] = 1.0);
    m
}

/// The luma axis (1, 1, 1, 0)/√3.
fn luma() -> [f32; 4] {
    let v = 1.0 / 3f32.sqrt();
    [v, v, v, 0.0]
}

/// Rotation by θ about the axis v (homogeneous 4 × 4).
fn rotate3d(v: [f32; 4], theta: f32) -> M4 {
    let (s, c) = theta.sin_cos();
    let cc = 1.0 - c;
    let [x, y, z, _] = v;
    [
        [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0.0],
        [y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0.0],
        [z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

impl AugmentPipe {
    /// The colour matrix of one sample (colour in → colour out, homogeneous).
    pub(super) fn colour_matrix(&self, d: &mut Draws, channels: usize) -> M4 {
        let (s, p) = (&self.spec, self.p);
        let mut m = identity4();
        let v = luma();
        let outer = |a: [f32; 4]| -> M4 {
            let mut o = [[0f32; 4]; 4];
            for i in 0..4 {
                for j in 0..4 {
                    o[i][j] = a[i] * a[j];
                }
            }
            o
        };
        if s.brightness > 0.0 {
            let b = d.choose(
                s.brightness * p,
                0.0,
                |d| d.normal() * s.brightness_std,
                |q| erfinv(q * 2.0 - 1.0) * s.brightness_std,
            );
            let mut t = identity4();
            (t[0][3], t[1][3], t[2][3]) = (b, b, b);
            m = mul4(&t, &m);
        }
        if s.contrast > 0.0 {
            let c = d.choose(
                s.contrast * p,
                1.0,
                |d| (d.normal() * s.contrast_std).exp2(),
                |q| (erfinv(q * 2.0 - 1.0) * s.contrast_std).exp2(),
            );
            let mut t = identity4();
            (t[0][0], t[1][1], t[2][2]) = (c, c, c);
            m = mul4(&t, &m);
        }
        if s.lumaflip > 0.0 {
            let i = d.choose(
                s.lumaflip * p,
                0.0,
                |d| (d.uniform() * 2.0).floor(),
                |q| (q * 2.0).floor(),
            );
            let vv = outer(v);
            let mut t = identity4();
            for r in 0..4 {
                for c in 0..4 {
                    t[r][c] -= 2.0 * vv[r][c] * i;
                }
            }
            m = mul4(&t, &m);
        }
        if s.hue > 0.0 && channels > 1 {
            let theta = d.choose(
                s.hue * p,
                0.0,
                |d| (d.uniform() * 2.0 - 1.0) * PI * s.hue_max,
                |q| (q * 2.0 - 1.0) * PI * s.hue_max,
            );
            m = mul4(&rotate3d(v, theta), &m);
        }
        if s.saturation > 0.0 && channels > 1 {
            let sat = d.choose(
                s.saturation * p,
                1.0,
                |d| (d.normal() * s.saturation_std).exp2(),
                |q| (erfinv(q * 2.0 - 1.0) * s.saturation_std).exp2(),
            );
            let vv = outer(v);
            let mut t = [[0f32; 4]; 4];
            let id = identity4();
            for r in 0..4 {
                for c in 0..4 {
                    t[r][c] = vv[r][c] + (id[r][c] - vv[r][c]) * sat;
                }
            }
            m = mul4(&t, &m);
        }
        m
    }
}

/// Applies per-sample colour matrices to RGB images (grey images: the mean row, as the
/// reference does).
pub(super) fn colour(images: &Tensor, m: &[M4]) -> Result<Tensor> {
    let (n, c, h, w) = images.dims4()?;
    let device = images.device();
    let x = images.reshape((n, c, h * w))?;
    let y = match c {
        3 => {
            let linear: Vec<f32> = m
                .iter()
                .flat_map(|m| (0..3).flat_map(move |i| m[i][..3].to_vec()))
                .collect();
            let offset: Vec<f32> = m
                .iter()
                .flat_map(|m| (0..3).map(move |i| m[i][3]))
                .collect();
            let linear = Tensor::from_vec(linear, (n, 3, 3), device)?.to_dtype(x.dtype())?;
            let offset = Tensor::from_vec(offset, (n, 3, 1), device)?.to_dtype(x.dtype())?;
            linear.matmul(&x)?.broadcast_add(&offset)?
        }
        1 => {
            let gain: Vec<f32> = m
                .iter()
                .map(|m| {
                    (0..3)
                        .map(|i| (0..3).map(|j| m[i][j]).sum::<f32>())
                        .sum::<f32>()
                        / 3.0
                })
                .collect();
            let offset: Vec<f32> = m
                .iter()
                .map(|m| (0..3).map(|i| m[i][3]).sum::<f32>() / 3.0)
                .collect();
            let gain = Tensor::from_vec(gain, (n, 1, 1), device)?.to_dtype(x.dtype())?;
            let offset = Tensor::from_vec(offset, (n, 1, 1), device)?.to_dtype(x.dtype())?;
            x.broadcast_mul(&gain)?.broadcast_add(&offset)?
        }
        other => {
            return Err(Error::invalid(format!(
                "colour augmentation needs RGB or grey images, got {other} channels"
            )))
        }
    };
    Ok(y.reshape((n, c, h, w))?)
}
