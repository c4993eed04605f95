//! ADA's augmentation pipeline (StyleGAN2-ADA `training/augment.py`, the `bgc` set): pixel
//! blitting (x-flip, 90° rotations, integer translation), general geometric transforms
//! (isotropic scaling, rotation, anisotropic scaling, fractional translation) and colour
//! transforms (brightness, contrast, luma flip, hue rotation, saturation), each applied to a
//! sample with probability multiplier × p, as differentiable tensor operations.
//!
//! As in the reference, all geometric choices compose into one inverse homogeneous matrix per
//! sample, executed once: reflect padding wide enough for the transformed corners, 2×
//! up-sampling with the `sym6` wavelet low-pass, bilinear sampling (`affine_grid` +
//! `grid_sample`, zeros outside, `align_corners=False`), 2× down-sampling with the same filter
//! and a crop; colour choices compose into one 4 × 4 matrix per sample. With a fixed
//! percentile instead of random draws (the reference's `debug_percentile`), every choice is
//! deterministic, which the parity tests use.

use super::bilinear::{BilinearSample, SamplingTaps};
use super::ops::upfirdn2d_taps;
use crate::backend::cpu_kernels;
use crate::train::HookState;
use crate::{Error, Result};
use candle_core::Tensor;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
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

/// Probability multipliers and ranges of each augmentation (the reference's constructor
/// arguments and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AugmentSpec {
    pub xflip: f32,
    pub rotate90: f32,
    pub xint: f32,
    pub xint_max: f32,
    pub scale: f32,
    pub rotate: f32,
    pub aniso: f32,
    pub xfrac: f32,
    pub scale_std: f32,
    pub rotate_max: f32,
    pub aniso_std: f32,
    pub xfrac_std: f32,
    pub brightness: f32,
    pub contrast: f32,
    pub lumaflip: f32,
    pub hue: f32,
    pub saturation: f32,
    pub brightness_std: f32,
    pub contrast_std: f32,
    pub hue_max: f32,
    pub saturation_std: f32,
}

impl AugmentSpec {
    /// Everything off, the reference's ranges.
    pub fn none() -> Self {
        AugmentSpec {
            xflip: 0.0,
            rotate90: 0.0,
            xint: 0.0,
            xint_max: 0.125,
            scale: 0.0,
            rotate: 0.0,
            aniso: 0.0,
            xfrac: 0.0,
            scale_std: 0.2,
            rotate_max: 1.0,
            aniso_std: 0.2,
            xfrac_std: 0.125,
            brightness: 0.0,
            contrast: 0.0,
            lumaflip: 0.0,
            hue: 0.0,
            saturation: 0.0,
            brightness_std: 0.2,
            contrast_std: 0.5,
            hue_max: 1.0,
            saturation_std: 1.0,
        }
    }

    /// The reference's presets: `blit`, `geom`, `color`, `bg`, `bgc` (the default of ADA).
    pub fn preset(name: &str) -> Result<Self> {
        let mut s = AugmentSpec::none();
        let (blit, geom, color) = match name {
            "blit" => (true, false, false),
            "geom" => (false, true, false),
            "color" => (false, false, true),
            "bg" => (true, true, false),
            "bgc" => (true, true, true),
            other => {
                return Err(Error::invalid(format!(
                    "unknown augmentation set '{other}': expected blit, geom, color, bg or bgc"
                )))
            }
        };
        if blit {
            (s.xflip, s.rotate90, s.xint) = (1.0, 1.0, 1.0);
        }
        if geom {
            (s.scale, s.rotate, s.aniso, s.xfrac) = (1.0, 1.0, 1.0, 1.0);
        }
        if color {
            (s.brightness, s.contrast, s.lumaflip, s.hue, s.saturation) = (1.0, 1.0, 1.0, 1.0, 1.0);
        }
        Ok(s)
    }

    fn geometric(&self) -> bool {
        [
            self.xflip,
            self.rotate90,
            self.xint,
            self.scale,
            self.rotate,
            self.aniso,
            self.xfrac,
        ]
        .iter()
        .any(|&m| m > 0.0)
    }

    fn colour(&self) -> bool {
        [
            self.brightness,
            self.contrast,
            self.lumaflip,
            self.hue,
            self.saturation,
        ]
        .iter()
        .any(|&m| m > 0.0)
    }
}

/// Where each choice comes from.
pub enum Draws<'a> {
    /// Random, from a training stream.
    Random(&'a mut ChaCha8Rng),
    /// Every choice at this percentile of its distribution (the reference's debug mode).
    Percentile(f32),
}

impl Draws<'_> {
    fn uniform(&mut self) -> f32 {
        match self {
            Draws::Random(rng) => rng.random::<f32>(),
            Draws::Percentile(_) => unreachable!("percentile draws are explicit"),
        }
    }

    fn normal(&mut self) -> f32 {
        match self {
            Draws::Random(rng) => rng.sample::<f32, _>(StandardNormal),
            Draws::Percentile(_) => unreachable!("percentile draws are explicit"),
        }
    }

    /// Whether an augmentation with probability `prob` applies to this sample.
    fn applies(&mut self, prob: f32) -> bool {
        match self {
            Draws::Random(_) => self.uniform() < prob,
            Draws::Percentile(_) => true,
        }
    }

    /// A choice: `random(draws)` when random (`neutral` when it does not apply), else `debug(q)`.
    fn choose<T>(
        &mut self,
        prob: f32,
        neutral: T,
        random: impl FnOnce(&mut Self) -> T,
        debug: impl FnOnce(f32) -> T,
    ) -> T {
        match self {
            Draws::Percentile(q) => debug(*q),
            Draws::Random(_) => {
                let value = random(self);
                if self.applies(prob) {
                    value
                } else {
                    neutral
                }
            }
        }
    }
}

/// The inverse error function (percentile choices are erfinv(2q − 1)·std, as in the
/// reference).
fn erfinv(x: f32) -> f32 {
    statrs::function::erf::erf_inv(x as f64) as f32
}

type M3 = [[f32; 3]; 3];
type M4 = [[f32; 4]; 4];

fn mul3(a: &M3, b: &M3) -> M3 {
    let mut c = [[0f32; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            c[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

fn mul4(a: &M4, b: &M4) -> M4 {
    let mut c = [[0f32; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            c[i][j] = (0..4).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    c
}

fn identity3() -> M3 {
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
}

fn identity4() -> M4 {
    let mut m = [[0f32; 4]; 4];
    (0..4).for_each(|i| m[i][i] = 1.0);
    m
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

/// The augmentation pipeline with its overall probability `p`.
#[derive(Debug, Clone)]
pub struct AugmentPipe {
    pub spec: AugmentSpec,
    pub p: f32,
}

impl AugmentPipe {
    pub fn new(spec: AugmentSpec, p: f32) -> Self {
        AugmentPipe { spec, p }
    }

    /// Augments images [N, C, H, W] (C = 3, or 1 without the colour part's hue/saturation).
    pub fn apply(&self, images: &Tensor, draws: &mut Draws) -> Result<Tensor> {
        let (n, c, h, w) = images.dims4()?;
        let mut x = images.clone();
        if self.spec.geometric() {
            let g: Vec<M3> = (0..n).map(|_| self.geometric_matrix(draws, w, h)).collect();
            x = geometric(&x, &g)?;
        }
        if self.spec.colour() {
            let m: Vec<M4> = (0..n).map(|_| self.colour_matrix(draws, c)).collect();
            x = colour(&x, &m)?;
        }
        Ok(x)
    }

    /// G⁻¹ of one sample (output pixel → input pixel).
    fn geometric_matrix(&self, d: &mut Draws, w: usize, h: usize) -> M3 {
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

    /// The colour matrix of one sample (colour in → colour out, homogeneous).
    fn colour_matrix(&self, d: &mut Draws, channels: usize) -> M4 {
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
fn geometric(images: &Tensor, g: &[M3]) -> Result<Tensor> {
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

/// Applies per-sample colour matrices to RGB images (grey images: the mean row, as the
/// reference does).
fn colour(images: &Tensor, m: &[M4]) -> Result<Tensor> {
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

/// Adaptive discriminator augmentation: the pipeline as the trainer's
/// [`Augment`](crate::train::Augment) hook, its probability p moved every `interval` D steps by
/// sign(E[sign D(real)] − target) · (images shown since the last move) / (`speed_kimg` · 1000),
/// floored at 0 — the official update, which can take p from 0 to 1 in `speed_kimg` thousand
/// images. `adaptive = false` keeps p fixed (`--aug fixed`); r_t is tracked either way, for the
/// log.
#[derive(Debug, Clone)]
pub struct Ada {
    pub pipe: AugmentPipe,
    pub adaptive: bool,
    pub target: f64,
    pub interval: u64,
    pub speed_kimg: f64,
    /// E[sign D(real)] over the last adjustment interval (the overfitting heuristic r_t).
    pub rt: f64,
    signs_sum: f64,
    signs_count: u64,
    steps: u64,
    images_at_last_update: u64,
}

impl Ada {
    /// The official defaults: target 0.6, every 4 D steps, 500 kimg for a unit change of p.
    pub fn new(pipe: AugmentPipe, adaptive: bool) -> Self {
        Ada {
            pipe,
            adaptive,
            target: 0.6,
            interval: 4,
            speed_kimg: 500.0,
            rt: 0.0,
            signs_sum: 0.0,
            signs_count: 0,
            steps: 0,
            images_at_last_update: 0,
        }
    }
}

impl crate::train::Augment for Ada {
    fn apply(&self, x: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        self.pipe.apply(x, &mut Draws::Random(rng))
    }

    fn observe_real_logits(&mut self, logits: &Tensor, images_seen: u64) -> Result<()> {
        let signs: Vec<f32> = logits
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1()?;
        self.signs_sum += signs
            .iter()
            .map(|&v| f64::from(v.signum() * f32::from(v != 0.0)))
            .sum::<f64>();
        self.signs_count += signs.len() as u64;
        self.steps += 1;
        if self.steps.is_multiple_of(self.interval) && self.signs_count > 0 {
            let mean = self.signs_sum / self.signs_count as f64;
            self.rt = mean;
            if self.adaptive {
                let direction =
                    (mean - self.target).signum() * f64::from(u8::from(mean != self.target));
                let shown = images_seen.saturating_sub(self.images_at_last_update) as f64;
                let p = f64::from(self.pipe.p) + direction * shown / (self.speed_kimg * 1000.0);
                self.pipe.p = p.max(0.0) as f32;
            }
            (self.signs_sum, self.signs_count) = (0.0, 0);
            self.images_at_last_update = images_seen;
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        AdaState {
            p: f64::from(self.pipe.p),
            rt: self.rt,
            signs_sum: self.signs_sum,
            signs_count: self.signs_count,
            steps: self.steps,
            images_at_last_update: self.images_at_last_update,
        }
        .store()
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let state = AdaState::read(state)?;
        self.pipe.p = state.p as f32;
        self.rt = state.rt;
        self.signs_sum = state.signs_sum;
        self.signs_count = state.signs_count;
        self.steps = state.steps;
        self.images_at_last_update = state.images_at_last_update;
        Ok(())
    }
}

/// What ADA keeps in checkpoints (and shows in run logs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdaState {
    /// The augmentation probability.
    pub p: f64,
    /// E[sign D(real)] over the last adjustment interval.
    pub rt: f64,
    pub signs_sum: f64,
    pub signs_count: u64,
    pub steps: u64,
    pub images_at_last_update: u64,
}

impl crate::train::HookState for AdaState {
    const WHAT: &'static str = "augmentation state";
    const FORMAT: u32 = 1;
}
