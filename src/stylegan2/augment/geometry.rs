//! The geometric part of the pipeline: per-sample choices composed into one inverse 3 × 3
//! matrix, executed once by reflect padding, 2× `sym6` up-sampling, bilinear sampling (the
//! taps of `affine_grid` + `grid_sample`) and 2× down-sampling.

use super::spec::{erfinv, Draws};
use super::AugmentPipe;
use crate::backend::cpu_kernels;
use crate::stylegan2::bilinear::{BilinearSample, SamplingTaps};
use crate::stylegan2::resample::upfirdn2d_taps;
use crate::{Error, Result};
use candle_core::Tensor;
use std::f32::consts::PI;

/// The `sym6` wavelet's low-pass filter.
const SYM6: [f64; 12] = [
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
];

pub(super) type M3 = [[f32; 3]; 3];

fn mul3(a: &M3, b: &M3) -> M3 {
    let mut c = [[0f32; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            c[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

fn identity3() -> M3 {
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
}

fn translate2d(tx: f32, ty: f32) -> M3 {
    [[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]]
}

fn scale2d(sx: f32, sy: f32) -> M3 {
    [[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]]
}

fn rotate2d(theta: f32) -> M3 {
    let (s, c) = theta.sin_cos();
    [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
}

impl AugmentPipe {
    /// G⁻¹ of one sample (output pixel → input pixel).
    pub(super) fn geometric_matrix(&self, d: &mut Draws, w: usize, h: usize) -> M3 {
        let (s, p) = (&self.spec, self.p);
        let mut g = identity3();
        if s.xflip > 0.0 {
            let i = d.choose(
                s.xflip * p,
                0.0,
                |d| (d.uniform() * 2.0).floor(),
                |q| (q * 2.0).floor(),
            );
            g = mul3(&g, &scale2d(1.0 / (1.0 - 2.0 * i), 1.0));
        }
        if s.rotate90 > 0.0 {
            let i = d.choose(
                s.rotate90 * p,
                0.0,
                |d| (d.uniform() * 4.0).floor(),
                |q| (q * 4.0).floor(),
            );
            g = mul3(&g, &rotate2d(PI / 2.0 * i));
        }
        if s.xint > 0.0 {
            let t = d.choose(
                s.xint * p,
                [0.0; 2],
                |d| {
                    [
                        (d.uniform() * 2.0 - 1.0) * s.xint_max,
                        (d.uniform() * 2.0 - 1.0) * s.xint_max,
                    ]
                },
                |q| [(q * 2.0 - 1.0) * s.xint_max; 2],
            );
            // torch.round rounds half to even.
            let (tx, ty) = (
                (t[0] * w as f32).round_ties_even(),
                (t[1] * h as f32).round_ties_even(),
            );
            g = mul3(&g, &translate2d(-tx, -ty));
        }
        if s.scale > 0.0 {
            let v = d.choose(
                s.scale * p,
                1.0,
                |d| (d.normal() * s.scale_std).exp2(),
                |q| (erfinv(q * 2.0 - 1.0) * s.scale_std).exp2(),
            );
            g = mul3(&g, &scale2d(1.0 / v, 1.0 / v));
        }
        let p_rot = 1.0 - (1.0 - s.rotate * p).clamp(0.0, 1.0).sqrt();
        if s.rotate > 0.0 {
            let theta = d.choose(
                p_rot,
                0.0,
                |d| (d.uniform() * 2.0 - 1.0) * PI * s.rotate_max,
                |q| (q * 2.0 - 1.0) * PI * s.rotate_max,
            );
            g = mul3(&g, &rotate2d(theta));
        }
        if s.aniso > 0.0 {
            let v = d.choose(
                s.aniso * p,
                1.0,
                |d| (d.normal() * s.aniso_std).exp2(),
                |q| (erfinv(q * 2.0 - 1.0) * s.aniso_std).exp2(),
            );
            g = mul3(&g, &scale2d(1.0 / v, v));
        }
        if s.rotate > 0.0 {
            let theta = d.choose(
                p_rot,
                0.0,
                |d| (d.uniform() * 2.0 - 1.0) * PI * s.rotate_max,
                |_| 0.0,
            );
            g = mul3(&g, &rotate2d(theta));
        }
        if s.xfrac > 0.0 {
            let t = d.choose(
                s.xfrac * p,
                [0.0; 2],
                |d| [d.normal() * s.xfrac_std, d.normal() * s.xfrac_std],
                |q| [erfinv(q * 2.0 - 1.0) * s.xfrac_std; 2],
            );
            g = mul3(&g, &translate2d(-t[0] * w as f32, -t[1] * h as f32));
        }
        g
    }
}

/// Reflect padding (the edge pixel is not repeated) along `dim`, as an index selection.
fn pad_reflect(x: &Tensor, dim: usize, before: usize, after: usize) -> Result<Tensor> {
    let len = x.dim(dim)?;
    if before >= len || after >= len {
        return Err(Error::invalid(format!(
            "reflect padding of {before}/{after} needs more than {len} pixels"
        )));
    }
    let index: Vec<u32> = (-(before as isize)..(len + after) as isize)
        .map(|i| {
            let r = if i < 0 {
                -i
            } else if i >= len as isize {
                2 * (len as isize - 1) - i
            } else {
                i
            };
            r as u32
        })
        .collect();
    let index = Tensor::new(index.as_slice(), x.device())?;
    Ok(x.index_select(&index, dim)?)
}

/// Executes per-sample inverse transforms G⁻¹ (output pixel → input pixel) on [N, C, H, W].
pub(super) fn geometric(images: &Tensor, g: &[M3]) -> Result<Tensor> {
    let (n, _, h, w) = images.dims4()?;
    let hz_pad = SYM6.len() / 4;
    let (cx, cy) = ((w as f32 - 1.0) / 2.0, (h as f32 - 1.0) / 2.0);
    // Padding: where the transformed corners land, plus the filter's reach, within bounds.
    let corners = [[-cx, -cy], [cx, -cy], [cx, cy], [-cx, cy]];
    let mut margin = [f32::NEG_INFINITY; 4];
    for m in g {
        for [x, y] in corners {
            let (tx, ty) = (
                m[0][0] * x + m[0][1] * y + m[0][2],
                m[1][0] * x + m[1][1] * y + m[1][2],
            );
            margin = [
                margin[0].max(-tx),
                margin[1].max(-ty),
                margin[2].max(tx),
                margin[3].max(ty),
            ];
        }
    }
    let reach = [hz_pad as f32 * 2.0 - cx, hz_pad as f32 * 2.0 - cy];
    let limit = [w as f32 - 1.0, h as f32 - 1.0];
    let pads: Vec<usize> = (0..4)
        .map(|i| (margin[i] + reach[i % 2]).max(0.0).min(limit[i % 2]).ceil() as usize)
        .collect();
    let (mx0, my0, mx1, my1) = (pads[0], pads[1], pads[2], pads[3]);
    let x = pad_reflect(&pad_reflect(images, 3, mx0, mx1)?, 2, my0, my1)?;
    // Up-sample 2× with the wavelet filter (padding (6, 5), gain 4 → 2 per axis).
    let taps: Vec<f64> = {
        let sum: f64 = SYM6.iter().sum();
        SYM6.iter().map(|t| t / sum).collect()
    };
    let up_pad = ((taps.len() as isize + 1) / 2, (taps.len() as isize - 2) / 2);
    let x = upfirdn2d_taps(&x, &taps, false, (2, 1), up_pad, 2.0)?;
    let (_, _, hi, wi) = x.dims4()?;
    let (ho, wo) = ((h + hz_pad * 2) * 2, (w + hz_pad * 2) * 2);
    // The per-sample sampling matrix, in torch's normalised coordinates.
    let shift = translate2d(
        (mx0 as f32 - mx1 as f32) / 2.0,
        (my0 as f32 - my1 as f32) / 2.0,
    );
    let mut index = Vec::with_capacity(n * 4 * ho * wo);
    let mut weight = Vec::with_capacity(n * 4 * ho * wo);
    for m in g {
        let mut t = mul3(&shift, m);
        t = mul3(&mul3(&scale2d(2.0, 2.0), &t), &scale2d(0.5, 0.5));
        t = mul3(&mul3(&translate2d(-0.5, -0.5), &t), &translate2d(0.5, 0.5));
        t = mul3(
            &mul3(&scale2d(2.0 / wi as f32, 2.0 / hi as f32), &t),
            &scale2d(wo as f32 / 2.0, ho as f32 / 2.0),
        );
        sampling_taps(&t, (hi, wi), (ho, wo), &mut index, &mut weight);
    }
    let points = SamplingTaps {
        index,
        weight,
        input: (hi, wi),
        output: (ho, wo),
    };
    let sampled = if cpu_kernels(&x) {
        BilinearSample::new(points).apply(&x)?
    } else {
        gather_taps(&x, points)?
    };
    // Down-sample 2× with the same filter (not flipped), cropping the padding.
    let down_pad = (
        (taps.len() as isize - 1) / 2 - 2 * hz_pad as isize,
        (taps.len() as isize - 2) / 2 - 2 * hz_pad as isize,
    );
    upfirdn2d_taps(&sampled, &taps, true, (1, 2), down_pad, 1.0)
}

/// [`BilinearSample`] with tensor operations: a gather along one axis of [n·hi·wi, c] rows,
/// index_select, whose backward (index_add) candle differentiates correctly again, as R1 through
/// the augmentation needs (its scatter_add backward is not).
fn gather_taps(x: &Tensor, taps: SamplingTaps) -> Result<Tensor> {
    let (n, c, hi, wi) = x.dims4()?;
    let (ho, wo) = taps.output;
    let mut index = taps.index;
    let plane = (hi * wi) as u32;
    for (i, v) in index.iter_mut().enumerate() {
        *v += (i / (4 * ho * wo)) as u32 * plane;
    }
    let rows = x.permute((0, 2, 3, 1))?.reshape((n * hi * wi, c))?;
    let index = Tensor::from_vec(index, n * 4 * ho * wo, x.device())?;
    let weight = Tensor::from_vec(taps.weight, (n, 4, ho * wo, 1), x.device())?;
    Ok(rows
        .index_select(&index, 0)?
        .reshape((n, 4, ho * wo, c))?
        .broadcast_mul(&weight.to_dtype(x.dtype())?)?
        .sum(1)?
        .permute((0, 2, 1))?
        .reshape((n, c, ho, wo))?)
}

/// Bilinear sampling taps of `affine_grid(θ) + grid_sample` (align_corners=False, zeros
/// outside): for each output pixel, four input indices and weights (weight 0 outside).
fn sampling_taps(
    theta: &M3,
    (hi, wi): (usize, usize),
    (ho, wo): (usize, usize),
    index: &mut Vec<u32>,
    weight: &mut Vec<f32>,
) {
    let start = index.len();
    index.resize(start + 4 * ho * wo, 0);
    weight.resize(start + 4 * ho * wo, 0.0);
    let plane = ho * wo;
    for oy in 0..ho {
        let y = (2 * oy + 1) as f32 / ho as f32 - 1.0;
        for ox in 0..wo {
            let x = (2 * ox + 1) as f32 / wo as f32 - 1.0;
            let gx = theta[0][0] * x + theta[0][1] * y + theta[0][2];
            let gy = theta[1][0] * x + theta[1][1] * y + theta[1][2];
            let ix = ((gx + 1.0) * wi as f32 - 1.0) / 2.0;
            let iy = ((gy + 1.0) * hi as f32 - 1.0) / 2.0;
            let (x0, y0) = (ix.floor(), iy.floor());
            let (fx, fy) = (ix - x0, iy - y0);
            let corners = [
                (x0, y0, (1.0 - fx) * (1.0 - fy)),
                (x0 + 1.0, y0, fx * (1.0 - fy)),
                (x0, y0 + 1.0, (1.0 - fx) * fy),
                (x0 + 1.0, y0 + 1.0, fx * fy),
            ];
            let o = oy * wo + ox;
            for (k, (cx, cy, wgt)) in corners.into_iter().enumerate() {
                if cx >= 0.0 && cy >= 0.0 && (cx as usize) < wi && (cy as usize) < hi {
                    index[start + k * plane + o] = (cy as usize * wi + cx as usize) as u32;
                    weight[start + k * plane + o] = wgt;
                }
            }
        }
    }
}
