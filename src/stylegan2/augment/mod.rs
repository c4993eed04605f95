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
//!
//! Files: this one holds the pipeline ([`AugmentPipe`]); `spec` the augmentation settings and
//! presets and where the choices come from ([`Draws`]); `geometry` the geometric choices and
//! their execution (3 × 3 matrices, reflect padding, wavelet resampling, bilinear taps);
//! `colour` the colour choices and their 4 × 4 matrices; `ada` the adaptive controller of p.

mod ada;
mod colour;
mod geometry;
mod spec;

pub use ada::{Ada, AdaState};
pub use spec::{AugmentSpec, Draws};

use crate::Result;
use candle_core::Tensor;
use colour::{colour, M4};
use geometry::{geometric, M3};

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
}
