//! The augmentation settings ([`AugmentSpec`]: probability multipliers, ranges, the
//! reference's presets) and the source of each random choice ([`Draws`]).

use crate::{Error, Result};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

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

    pub(super) fn geometric(&self) -> bool {
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

    pub(super) fn colour(&self) -> bool {
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
    pub(super) fn uniform(&mut self) -> f32 {
        match self {
            Draws::Random(rng) => rng.random::<f32>(),
            Draws::Percentile(_) => unreachable!("percentile draws are explicit"),
        }
    }

    pub(super) fn normal(&mut self) -> f32 {
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
    pub(super) fn choose<T>(
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
pub(super) fn erfinv(x: f32) -> f32 {
    statrs::function::erf::erf_inv(x as f64) as f32
}
