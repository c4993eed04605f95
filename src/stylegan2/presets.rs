//! The official training configurations (`--cfg` of StyleGAN2-ADA's `train.py`) in one table,
//! and the trainer settings they imply.

use super::Architecture;
use crate::train::{AdamConfig, Ema, Loss, Penalty, TrainConfig};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// R1 runs as a separate D update every this many D steps (lazy regularisation).
pub const R1_INTERVAL: usize = 16;
/// Path-length regularisation runs as a separate G update every this many G steps.
pub const PL_INTERVAL: usize = 4;

/// One row of the table: (name, reference GPU count, kimg, batch, mbstd group, feature-map
/// factor, learning rate, R1 γ, EMA half-life in kimg, EMA ramp-up, mapping layers).
type Row = (
    &'static str,
    usize,
    f64,
    usize,
    usize,
    f64,
    f64,
    f64,
    f64,
    Option<f64>,
    usize,
);

/// The fixed presets as the reference lists them (`auto` depends on the resolution).
#[rustfmt::skip]
const TABLE: [Row; 5] = [
    // name        gpus  kimg       mb  mbstd fmaps lrate   gamma ema    ramp        map
    ("stylegan2",  8,  25_000.0,  32, 4,  1.0, 0.002,  10.0, 10.0,  None,       8),
    ("paper256",   8,  25_000.0,  64, 8,  0.5, 0.0025, 1.0,  20.0,  None,       8),
    ("paper512",   8,  25_000.0,  64, 8,  1.0, 0.0025, 0.5,  20.0,  None,       8),
    ("paper1024",  8,  25_000.0,  32, 4,  1.0, 0.002,  2.0,  10.0,  None,       8),
    ("cifar",      2,  100_000.0, 64, 32, 1.0, 0.0025, 0.01, 500.0, Some(0.05), 2),
];

/// Names `--cfg` accepts.
pub const NAMES: [&str; 6] = [
    "auto",
    "stylegan2",
    "paper256",
    "paper512",
    "paper1024",
    "cifar",
];

/// Everything a preset decides, after any command-line overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub name: String,
    pub kimg: f64,
    pub batch: usize,
    /// Images per pass (the reference's `batch_gpu`: the batch over its reference GPU count,
    /// run here in rounds on the one device; `batch` itself for `auto`).
    pub batch_gpu: usize,
    pub mbstd_group: usize,
    pub channel_base: usize,
    pub channel_max: usize,
    pub mapping_layers: usize,
    pub z_dim: usize,
    pub lr: f64,
    pub gamma: f64,
    pub ema_kimg: f64,
    pub ema_rampup: Option<f64>,
    pub pl_weight: f64,
    pub style_mixing: f64,
    pub d_resnet: bool,
    /// Clamp of layer outputs (the reference sets 256 for its mixed precision, in every
    /// preset).
    pub conv_clamp: Option<f64>,
}

impl Preset {
    /// The preset `name` for images of `resolution` on one device (what the reference's
    /// `auto` computes with `--gpus 1`).
    pub fn new(name: &str, resolution: usize) -> Result<Preset> {
        let (kimg, batch, gpus, mbstd, fmaps, lr, gamma, ema, ramp, map) = if name == "auto" {
            let batch = (4096 / resolution).clamp(1, 32);
            let fmaps = if resolution >= 512 { 1.0 } else { 0.5 };
            let lr = if resolution >= 1024 { 0.002 } else { 0.0025 };
            let gamma = 0.0002 * (resolution * resolution) as f64 / batch as f64;
            let ema = batch as f64 * 10.0 / 32.0;
            (
                25_000.0,
                batch,
                1,
                batch.min(4),
                fmaps,
                lr,
                gamma,
                ema,
                Some(0.05),
                2,
            )
        } else {
            let row = TABLE.iter().find(|r| r.0 == name).ok_or_else(|| {
                Error::setting(
                    "cfg",
                    Some(format!("'{name}'")),
                    format!("no such preset (known: {})", NAMES.join(", ")),
                )
            })?;
            let (_, gpus, kimg, mb, mbstd, fmaps, lr, gamma, ema, ramp, map) = *row;
            (kimg, mb, gpus, mbstd, fmaps, lr, gamma, ema, ramp, map)
        };
        let cifar = name == "cifar";
        Ok(Preset {
            name: name.to_owned(),
            kimg,
            batch,
            batch_gpu: batch / gpus,
            mbstd_group: mbstd,
            channel_base: (fmaps * 32768.0) as usize,
            channel_max: 512,
            mapping_layers: map,
            z_dim: 512,
            lr,
            gamma,
            ema_kimg: ema,
            ema_rampup: ramp,
            pl_weight: if cifar { 0.0 } else { 2.0 },
            style_mixing: if cifar { 0.0 } else { 0.9 },
            d_resnet: !cifar,
            conv_clamp: Some(256.0),
        })
    }

    /// Sets the batch; as `train.py` does on one GPU, it then runs in one round (`batch_gpu`).
    pub fn set_batch(&mut self, batch: usize) {
        self.batch = batch;
        self.batch_gpu = batch;
    }

    /// Network sizes for `resolution` × `resolution` images with `img_channels` channels.
    pub fn architecture(&self, resolution: usize, img_channels: usize) -> Architecture {
        Architecture {
            resolution,
            img_channels,
            z_dim: self.z_dim,
            w_dim: self.z_dim,
            mapping_layers: self.mapping_layers,
            channel_base: self.channel_base,
            channel_max: self.channel_max,
            d_resnet: self.d_resnet,
            c_dim: 0,
        }
    }

    /// The trainer's settings: non-saturating loss, lazy R1 every 16 D steps (none when γ = 0),
    /// Adam(lr, β = (0, 0.99), ε = 1e-8) adjusted for the lazy intervals of D (16) and G (4,
    /// also without path length, as in the reference), the EMA by half-life.
    pub fn train_config(&self) -> TrainConfig {
        let adam = AdamConfig {
            lr: self.lr,
            beta1: 0.0,
            beta2: 0.99,
            eps: 1e-8,
        };
        TrainConfig {
            batch: self.batch,
            batch_gpu: self.batch_gpu,
            d_steps: 1,
            loss: Loss::Vanilla,
            penalty: if self.gamma > 0.0 {
                Penalty::R1 {
                    gamma: self.gamma,
                    every: R1_INTERVAL,
                }
            } else {
                Penalty::None
            },
            adam_g: adam.for_lazy_interval(PL_INTERVAL),
            adam_d: adam.for_lazy_interval(R1_INTERVAL),
            ema: Ema::HalfLife {
                kimg: self.ema_kimg,
                rampup: self.ema_rampup,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_reference_formulas() {
        // One GPU at 256²: batch min(4096/256, 32) = 16, mbstd 4, γ = 0.0002·256²/16.
        let p = Preset::new("auto", 256).unwrap();
        assert_eq!((p.batch, p.mbstd_group, p.channel_base), (16, 4, 16384));
        assert_eq!(p.batch_gpu, 16);
        assert!((p.gamma - 0.8192).abs() < 1e-12);
        assert_eq!((p.ema_kimg, p.lr, p.mapping_layers), (5.0, 0.0025, 2));
        let p = Preset::new("auto", 1024).unwrap();
        assert_eq!((p.batch, p.channel_base, p.lr), (4, 32768, 0.002));
        let c = Preset::new("cifar", 32).unwrap();
        assert_eq!((c.pl_weight, c.style_mixing, c.d_resnet), (0.0, 0.0, false));
        assert!(Preset::new("paper2048", 32).is_err());
        // train.py's batch_gpu = mb / ref_gpus: rounds of 8 for paper256, 4 for stylegan2.
        let batch_gpu = |name| Preset::new(name, 256).unwrap().batch_gpu;
        assert_eq!((batch_gpu("paper256"), batch_gpu("stylegan2")), (8, 4));
        assert_eq!(batch_gpu("cifar"), 32);
    }

    #[test]
    fn lazy_intervals_shrink_lr_and_betas() {
        let config = Preset::new("paper256", 256).unwrap().train_config();
        assert!((config.adam_d.lr - 0.0025 * 16.0 / 17.0).abs() < 1e-15);
        assert!((config.adam_g.lr - 0.0025 * 0.8).abs() < 1e-15);
        assert!((config.adam_g.beta2 - 0.99f64.powf(0.8)).abs() < 1e-15);
        assert_eq!(config.adam_g.beta1, 0.0);
    }
}
