//! Exponential moving average of the generator's weights.

use serde::{Deserialize, Serialize};

/// How fast the average follows the generator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Ema {
    /// A fixed decay per G step (the toy playground: 0.99).
    Decay(f64),
    /// StyleGAN2-ADA: half-life in thousands of images, optionally ramped up as
    /// min(half-life, images seen × `rampup`).
    HalfLife { kimg: f64, rampup: Option<f64> },
}

impl Ema {
    /// The weight of the old average for one update after a batch of `batch` images, with
    /// `images_seen` images shown so far.
    pub fn beta(&self, batch: usize, images_seen: u64) -> f64 {
        match *self {
            Ema::Decay(d) => d,
            Ema::HalfLife { kimg, rampup } => {
                let mut half_life = kimg * 1000.0;
                if let Some(r) = rampup {
                    half_life = half_life.min(images_seen as f64 * r);
                }
                if half_life <= 0.0 {
                    0.0
                } else {
                    0.5f64.powf(batch as f64 / half_life)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_life_halves_after_half_life_images() {
        let ema = Ema::HalfLife {
            kimg: 10.0,
            rampup: None,
        };
        assert!((ema.beta(10_000, 0) - 0.5).abs() < 1e-15);
        let ramped = Ema::HalfLife {
            kimg: 10.0,
            rampup: Some(0.05),
        };
        // After 100k images the ramp allows a 5k-image half-life.
        assert!((ramped.beta(5_000, 100_000) - 0.5).abs() < 1e-15);
        assert_eq!(Ema::Decay(0.99).beta(64, 0), 0.99);
    }
}
