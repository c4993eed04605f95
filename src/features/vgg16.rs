//! VGG16 fc2 features (4096-d), the embedding of the improved precision/recall metric
//! (Kynkäänniemi et al. 2019; k = 3 in StyleGAN2-ADA's metrics).
//!
//! torchvision's `vgg16` layout and key names (`features.N.weight`, `classifier.N.weight`).
//! Preprocessing, for images in [0, 1]: bilinear resize to 224 × 224 (as the Inception
//! resize, no antialias), then ImageNet normalisation (mean 0.485, 0.456, 0.406; std 0.229,
//! 0.224, 0.225). Features: the second fully connected layer after its ReLU (classifier.3 →
//! ReLU; dropout is inactive at inference). StyleGAN2-ADA's own detector is a TorchScript
//! export of the same architecture with its own preprocessing; features from the two are
//! comparable among themselves, not with each other.

use super::layers::{resize_bilinear, Conv, Padding};
use crate::io::Weights;
use crate::Result;
use candle_core::Tensor;

/// Side of the images the network sees.
pub const INPUT_SIZE: usize = 224;
/// Feature dimension.
pub const DIM: usize = 4096;

/// Indices in `features` of the 13 convolutions, grouped by the max pool that ends each stage.
const STAGES: [&[usize]; 5] = [
    &[0, 2],
    &[5, 7],
    &[10, 12, 14],
    &[17, 19, 21],
    &[24, 26, 28],
];

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

#[derive(Debug, Clone)]
pub struct Vgg16 {
    stages: Vec<Vec<Conv>>,
    /// classifier.0 and classifier.3: weights [out, in] transposed to [in, out], biases [1, out].
    fc: [(Tensor, Tensor); 2],
}

impl Vgg16 {
    pub fn load(w: &Weights) -> Result<Self> {
        let stages = STAGES
            .iter()
            .map(|stage| {
                stage
                    .iter()
                    .map(|i| Conv::with_bias_relu(w, &format!("features.{i}"), Padding::Same))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let fc = |i: usize, input: usize| -> Result<(Tensor, Tensor)> {
            let weight = w.get(&format!("classifier.{i}.weight"), &[DIM, input])?;
            let bias = w.get(&format!("classifier.{i}.bias"), &[DIM])?;
            Ok((weight.t()?.contiguous()?, bias.reshape((1, DIM))?))
        };
        Ok(Vgg16 {
            stages,
            fc: [fc(0, 512 * 7 * 7)?, fc(3, DIM)?],
        })
    }

    /// fc2 features [N, 4096] of images [N, 3, H, W] with values in [0, 1].
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        let device = images.device();
        let mean = Tensor::new(&MEAN, device)?.reshape((1, 3, 1, 1))?;
        let std = Tensor::new(&STD, device)?.reshape((1, 3, 1, 1))?;
        let mut x = resize_bilinear(images, INPUT_SIZE)?
            .broadcast_sub(&mean)?
            .broadcast_div(&std)?;
        for stage in &self.stages {
            for conv in stage {
                x = conv.forward(&x)?;
            }
            x = x.max_pool2d(2)?;
        }
        // 224 → 7 × 7 after five pools: torchvision's adaptive 7 × 7 average pool is the
        // identity here.
        let mut x = x.flatten_from(1)?;
        for (weight, bias) in &self.fc {
            x = x.matmul(weight)?.broadcast_add(bias)?.relu()?;
        }
        Ok(x)
    }
}
