//! pytorch-fid's FID Inception-v3 (`fid_inception_v3`, the port of the TensorFlow FID graph):
//! 2048-d average-pool features of images in [0, 1].
//!
//! Forward pass: bilinear resize to 299 × 299 (no antialias; height and width independently),
//! x ↦ 2x − 1, the stem, Mixed_5b…7c, global average pool. Every `BasicConv2d` is conv →
//! BatchNorm (eps 0.001, running statistics) → ReLU. Where the FID network departs from
//! torchvision's Inception-v3: the pool branches of the A, C and E_1 blocks average without
//! counting the padding, and the last block (E_2) max-pools its pool branch.
//! Key names are those of `pt_inception-2015-12-05-6726825d.pth` (torchvision's).

use super::layers::{
    avg_pool_3x3_same_exclude_pad, global_avg_pool, max_pool_3x3_s2, max_pool_3x3_same_nonneg,
    resize_bilinear, Conv, Padding,
};
use crate::io::Weights;
use crate::Result;
use candle_core::Tensor;

/// Side of the images the network sees.
pub const INPUT_SIZE: usize = 299;
/// Feature dimension.
pub const DIM: usize = 2048;

/// The FID Inception-v3 up to its pool features.
#[derive(Debug, Clone)]
pub struct InceptionV3 {
    stem: Vec<Conv>,
    mixed_5: [InceptionA; 3],
    mixed_6a: InceptionB,
    mixed_6: [InceptionC; 4],
    mixed_7a: InceptionD,
    mixed_7b: InceptionE,
    mixed_7c: InceptionE,
}

/// How an E block pools its pool branch.
#[derive(Debug, Clone, Copy)]
enum EPool {
    Average,
    Max,
}

fn basic(w: &Weights, name: &str) -> Result<Conv> {
    Conv::basic(w, name, 1, Padding::Same)
}

fn concat(parts: &[Tensor]) -> Result<Tensor> {
    Ok(Tensor::cat(parts, 1)?)
}

/// Applies convolutions one after the other.
fn chain(convs: &[Conv], x: &Tensor) -> Result<Tensor> {
    convs.iter().try_fold(x.clone(), |x, c| c.forward(&x))
}

#[derive(Debug, Clone)]
struct InceptionA {
    b1x1: Conv,
    b5x5: [Conv; 2],
    b3x3dbl: [Conv; 3],
    pool: Conv,
}

impl InceptionA {
    fn load(w: &Weights, name: &str) -> Result<Self> {
        let c = |b: &str| basic(w, &format!("{name}.{b}"));
        Ok(InceptionA {
            b1x1: c("branch1x1")?,
            b5x5: [c("branch5x5_1")?, c("branch5x5_2")?],
            b3x3dbl: [
                c("branch3x3dbl_1")?,
                c("branch3x3dbl_2")?,
                c("branch3x3dbl_3")?,
            ],
            pool: c("branch_pool")?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        concat(&[
            self.b1x1.forward(x)?,
            chain(&self.b5x5, x)?,
            chain(&self.b3x3dbl, x)?,
            self.pool.forward(&avg_pool_3x3_same_exclude_pad(x)?)?,
        ])
    }
}

/// torchvision's InceptionB (Mixed_6a): grid reduction 35 → 17.
#[derive(Debug, Clone)]
struct InceptionB {
    b3x3: Conv,
    b3x3dbl: [Conv; 3],
}

impl InceptionB {
    fn load(w: &Weights, name: &str) -> Result<Self> {
        let c = |b: &str, stride, padding| Conv::basic(w, &format!("{name}.{b}"), stride, padding);
        Ok(InceptionB {
            b3x3: c("branch3x3", 2, Padding::Valid)?,
            b3x3dbl: [
                c("branch3x3dbl_1", 1, Padding::Same)?,
                c("branch3x3dbl_2", 1, Padding::Same)?,
                c("branch3x3dbl_3", 2, Padding::Valid)?,
            ],
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        concat(&[
            self.b3x3.forward(x)?,
            chain(&self.b3x3dbl, x)?,
            max_pool_3x3_s2(x)?,
        ])
    }
}

/// FIDInceptionC (Mixed_6b…6e): factorised 7 × 7 convolutions.
#[derive(Debug, Clone)]
struct InceptionC {
    b1x1: Conv,
    b7x7: [Conv; 3],
    b7x7dbl: [Conv; 5],
    pool: Conv,
}

impl InceptionC {
    fn load(w: &Weights, name: &str) -> Result<Self> {
        let c = |b: &str| basic(w, &format!("{name}.{b}"));
        Ok(InceptionC {
            b1x1: c("branch1x1")?,
            b7x7: [c("branch7x7_1")?, c("branch7x7_2")?, c("branch7x7_3")?],
            b7x7dbl: [
                c("branch7x7dbl_1")?,
                c("branch7x7dbl_2")?,
                c("branch7x7dbl_3")?,
                c("branch7x7dbl_4")?,
                c("branch7x7dbl_5")?,
            ],
            pool: c("branch_pool")?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        concat(&[
            self.b1x1.forward(x)?,
            chain(&self.b7x7, x)?,
            chain(&self.b7x7dbl, x)?,
            self.pool.forward(&avg_pool_3x3_same_exclude_pad(x)?)?,
        ])
    }
}

/// torchvision's InceptionD (Mixed_7a): grid reduction 17 → 8.
#[derive(Debug, Clone)]
struct InceptionD {
    b3x3: [Conv; 2],
    b7x7x3: [Conv; 4],
}

impl InceptionD {
    fn load(w: &Weights, name: &str) -> Result<Self> {
        let c = |b: &str, stride, padding| Conv::basic(w, &format!("{name}.{b}"), stride, padding);
        Ok(InceptionD {
            b3x3: [
                c("branch3x3_1", 1, Padding::Same)?,
                c("branch3x3_2", 2, Padding::Valid)?,
            ],
            b7x7x3: [
                c("branch7x7x3_1", 1, Padding::Same)?,
                c("branch7x7x3_2", 1, Padding::Same)?,
                c("branch7x7x3_3", 1, Padding::Same)?,
                c("branch7x7x3_4", 2, Padding::Valid)?,
            ],
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        concat(&[
            chain(&self.b3x3, x)?,
            chain(&self.b7x7x3, x)?,
            max_pool_3x3_s2(x)?,
        ])
    }
}

/// FIDInceptionE_1 (Mixed_7b, average pool) and FIDInceptionE_2 (Mixed_7c, max pool).
#[derive(Debug, Clone)]
struct InceptionE {
    b1x1: Conv,
    b3x3_1: Conv,
    b3x3_2: [Conv; 2],
    b3x3dbl: [Conv; 2],
    b3x3dbl_3: [Conv; 2],
    pool: Conv,
    pool_kind: EPool,
}

impl InceptionE {
    fn load(w: &Weights, name: &str, pool_kind: EPool) -> Result<Self> {
        let c = |b: &str| basic(w, &format!("{name}.{b}"));
        Ok(InceptionE {
            b1x1: c("branch1x1")?,
            b3x3_1: c("branch3x3_1")?,
            b3x3_2: [c("branch3x3_2a")?, c("branch3x3_2b")?],
            b3x3dbl: [c("branch3x3dbl_1")?, c("branch3x3dbl_2")?],
            b3x3dbl_3: [c("branch3x3dbl_3a")?, c("branch3x3dbl_3b")?],
            pool: c("branch_pool")?,
            pool_kind,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let b3x3 = self.b3x3_1.forward(x)?;
        let b3x3dbl = chain(&self.b3x3dbl, x)?;
        // The input is a concatenation of ReLU outputs, so it is non-negative.
        let pooled = match self.pool_kind {
            EPool::Average => avg_pool_3x3_same_exclude_pad(x)?,
            EPool::Max => max_pool_3x3_same_nonneg(x)?,
        };
        concat(&[
            self.b1x1.forward(x)?,
            self.b3x3_2[0].forward(&b3x3)?,
            self.b3x3_2[1].forward(&b3x3)?,
            self.b3x3dbl_3[0].forward(&b3x3dbl)?,
            self.b3x3dbl_3[1].forward(&b3x3dbl)?,
            self.pool.forward(&pooled)?,
        ])
    }
}

impl InceptionV3 {
    pub fn load(w: &Weights) -> Result<Self> {
        let stem = vec![
            Conv::basic(w, "Conv2d_1a_3x3", 2, Padding::Valid)?,
            Conv::basic(w, "Conv2d_2a_3x3", 1, Padding::Valid)?,
            Conv::basic(w, "Conv2d_2b_3x3", 1, Padding::Same)?,
            Conv::basic(w, "Conv2d_3b_1x1", 1, Padding::Valid)?,
            Conv::basic(w, "Conv2d_4a_3x3", 1, Padding::Valid)?,
        ];
        Ok(InceptionV3 {
            stem,
            mixed_5: [
                InceptionA::load(w, "Mixed_5b")?,
                InceptionA::load(w, "Mixed_5c")?,
                InceptionA::load(w, "Mixed_5d")?,
            ],
            mixed_6a: InceptionB::load(w, "Mixed_6a")?,
            mixed_6: [
                InceptionC::load(w, "Mixed_6b")?,
                InceptionC::load(w, "Mixed_6c")?,
                InceptionC::load(w, "Mixed_6d")?,
                InceptionC::load(w, "Mixed_6e")?,
            ],
            mixed_7a: InceptionD::load(w, "Mixed_7a")?,
            mixed_7b: InceptionE::load(w, "Mixed_7b", EPool::Average)?,
            mixed_7c: InceptionE::load(w, "Mixed_7c", EPool::Max)?,
        })
    }

    /// Pool features [N, 2048] of images [N, 3, H, W] with values in [0, 1].
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        let x = ((resize_bilinear(images, INPUT_SIZE)? * 2.0)? - 1.0)?;
        // Stem: three convolutions, max pool, two convolutions, max pool.
        let x = chain(&self.stem[..3], &x)?;
        let x = chain(&self.stem[3..], &max_pool_3x3_s2(&x)?)?;
        let mut x = max_pool_3x3_s2(&x)?;
        for block in &self.mixed_5 {
            x = block.forward(&x)?;
        }
        x = self.mixed_6a.forward(&x)?;
        for block in &self.mixed_6 {
            x = block.forward(&x)?;
        }
        x = self.mixed_7a.forward(&x)?;
        x = self.mixed_7b.forward(&x)?;
        x = self.mixed_7c.forward(&x)?;
        global_avg_pool(&x)
    }
}
