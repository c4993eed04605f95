//! Fresh StyleGAN2 networks, initialised as the reference initialises them, for training from
//! scratch: the state dicts are built here and loaded like any checkpoint.

use super::{Discriminator, Generator, Weights};
use crate::Result;
use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// The sizes that define a StyleGAN2 pair (unconditional).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Architecture {
    pub resolution: usize,
    pub img_channels: usize,
    pub z_dim: usize,
    pub w_dim: usize,
    pub mapping_layers: usize,
    /// Channels of a block at resolution r: min(channel_base / r, channel_max).
    pub channel_base: usize,
    pub channel_max: usize,
    /// D with resnet blocks (else `orig`: no skip paths).
    pub d_resnet: bool,
    /// Classes of conditional networks (0: unconditional).
    pub c_dim: usize,
}

/// Layers of a conditional D's label mapping (the reference's default).
const D_MAPPING_LAYERS: usize = 8;

impl Architecture {
    fn channels(&self, res: usize) -> usize {
        (self.channel_base / res).min(self.channel_max)
    }

    /// Resolutions 4, 8, …, `resolution`.
    fn resolutions(&self) -> Vec<usize> {
        std::iter::successors(Some(4), |r| Some(r * 2))
            .take_while(|&r| r <= self.resolution)
            .collect()
    }

    /// A generator initialised from `rng` (weights standard normal, mapping weights divided by
    /// its learning-rate multiplier, affine biases 1, other biases and noise strengths 0,
    /// `w_avg` 0, noise images standard normal).
    pub fn generator(&self, rng: &mut ChaCha8Rng, device: &Device) -> Result<Generator> {
        let mut t = Tensors::new(rng, device);
        t.mapping(
            "mapping",
            self.z_dim,
            self.c_dim,
            self.w_dim,
            self.mapping_layers,
        )?;
        t.fill("mapping.w_avg", &[self.w_dim], 0.0)?;
        let mut input = 0;
        for res in self.resolutions() {
            let out = self.channels(res);
            let name = format!("synthesis.b{res}");
            if res == 4 {
                t.normal(&format!("{name}.const"), &[out, 4, 4], 1.0)?;
            } else {
                t.synthesis_layer(&format!("{name}.conv0"), input, out, res, self.w_dim)?;
            }
            t.synthesis_layer(&format!("{name}.conv1"), out, out, res, self.w_dim)?;
            t.affine(&format!("{name}.torgb"), out, self.w_dim)?;
            t.normal(
                &format!("{name}.torgb.weight"),
                &[self.img_channels, out, 1, 1],
                1.0,
            )?;
            t.fill(&format!("{name}.torgb.bias"), &[self.img_channels], 0.0)?;
            input = out;
        }
        Generator::load(&Weights::new(t.tensors, "a fresh generator"))
    }

    /// A discriminator initialised from `rng` (weights standard normal, biases 0), with
    /// minibatch-standard-deviation groups of `mbstd_group`.
    pub fn discriminator(
        &self,
        rng: &mut ChaCha8Rng,
        mbstd_group: usize,
        device: &Device,
    ) -> Result<Discriminator> {
        let mut t = Tensors::new(rng, device);
        for res in self.resolutions().into_iter().rev().filter(|&r| r > 4) {
            let (tmp, out) = (self.channels(res), self.channels(res / 2));
            let name = format!("b{res}");
            if res == self.resolution {
                t.conv(&format!("{name}.fromrgb"), tmp, self.img_channels, 1, true)?;
            }
            t.conv(&format!("{name}.conv0"), tmp, tmp, 3, true)?;
            t.conv(&format!("{name}.conv1"), out, tmp, 3, true)?;
            if self.d_resnet {
                t.conv(&format!("{name}.skip"), out, tmp, 1, false)?;
            }
        }
        let c = self.channels(4);
        t.conv("b4.conv", c, c + 1, 3, true)?;
        t.normal("b4.fc.weight", &[c, c * 16], 1.0)?;
        t.fill("b4.fc.bias", &[c], 0.0)?;
        // A conditional D projects its output on the labels' mapping (cmap, c wide).
        let out = if self.c_dim > 0 { c } else { 1 };
        t.normal("b4.out.weight", &[out, c], 1.0)?;
        t.fill("b4.out.bias", &[out], 0.0)?;
        if self.c_dim > 0 {
            t.mapping("mapping", 0, self.c_dim, c, D_MAPPING_LAYERS)?;
        }
        Discriminator::load(
            &Weights::new(t.tensors, "a fresh discriminator"),
            mbstd_group,
        )
    }
}

/// A state dict under construction; draws come from one stream in creation order.
struct Tensors<'a> {
    rng: &'a mut ChaCha8Rng,
    device: Device,
    tensors: HashMap<String, Tensor>,
}

impl<'a> Tensors<'a> {
    fn new(rng: &'a mut ChaCha8Rng, device: &Device) -> Self {
        Tensors {
            rng,
            device: device.clone(),
            tensors: HashMap::new(),
        }
    }

    /// Standard-normal values times `scale`.
    fn normal(&mut self, name: &str, shape: &[usize], scale: f32) -> Result<()> {
        let mut t = crate::train::standard_normal(self.rng, shape, &self.device)?;
        if scale != 1.0 {
            t = (t * f64::from(scale))?;
        }
        self.tensors.insert(name.to_owned(), t);
        Ok(())
    }

    fn fill(&mut self, name: &str, shape: &[usize], value: f32) -> Result<()> {
        let t = Tensor::full(value, shape, &self.device)?;
        self.tensors.insert(name.to_owned(), t);
        Ok(())
    }

    /// A mapping network: the label embedding (when `c_dim` > 0, as wide as the output) and
    /// `layers` fully connected layers, their weights divided by the learning-rate multiplier.
    fn mapping(
        &mut self,
        prefix: &str,
        z_dim: usize,
        c_dim: usize,
        out: usize,
        layers: usize,
    ) -> Result<()> {
        let embedded = if c_dim > 0 { out } else { 0 };
        if c_dim > 0 {
            self.normal(&format!("{prefix}.embed.weight"), &[out, c_dim], 1.0)?;
            self.fill(&format!("{prefix}.embed.bias"), &[out], 0.0)?;
        }
        for i in 0..layers {
            let input = if i == 0 { z_dim + embedded } else { out };
            self.normal(&format!("{prefix}.fc{i}.weight"), &[out, input], 100.0)?;
            self.fill(&format!("{prefix}.fc{i}.bias"), &[out], 0.0)?;
        }
        Ok(())
    }

    /// The style affine of a modulated layer: its bias starts at 1.
    fn affine(&mut self, layer: &str, input: usize, w_dim: usize) -> Result<()> {
        self.normal(&format!("{layer}.affine.weight"), &[input, w_dim], 1.0)?;
        self.fill(&format!("{layer}.affine.bias"), &[input], 1.0)
    }

    fn synthesis_layer(
        &mut self,
        name: &str,
        input: usize,
        out: usize,
        res: usize,
        w_dim: usize,
    ) -> Result<()> {
        self.affine(name, input, w_dim)?;
        self.normal(&format!("{name}.weight"), &[out, input, 3, 3], 1.0)?;
        self.fill(&format!("{name}.noise_strength"), &[], 0.0)?;
        self.fill(&format!("{name}.bias"), &[out], 0.0)?;
        self.normal(&format!("{name}.noise_const"), &[res, res], 1.0)
    }

    fn conv(&mut self, name: &str, out: usize, input: usize, k: usize, bias: bool) -> Result<()> {
        self.normal(&format!("{name}.weight"), &[out, input, k, k], 1.0)?;
        if bias {
            self.fill(&format!("{name}.bias"), &[out], 0.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stylegan2::layers::Params;
    use rand::SeedableRng;

    /// Conditional networks of both D architectures: G embeds the labels, D maps them to the
    /// projection of its output, and other labels give other images and logits.
    #[test]
    fn conditional_networks_depend_on_their_labels() {
        for d_resnet in [true, false] {
            let arch = Architecture {
                resolution: 16,
                img_channels: 3,
                z_dim: 8,
                w_dim: 8,
                mapping_layers: 2,
                channel_base: 64,
                channel_max: 8,
                d_resnet,
                c_dim: 3,
            };
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let (g, d) = (
                arch.generator(&mut rng, &Device::Cpu).unwrap(),
                arch.discriminator(&mut rng, 2, &Device::Cpu).unwrap(),
            );
            assert_eq!((g.mapping.c_dim, d.c_dim()), (3, 3));
            let z = crate::train::standard_normal(&mut rng, &[2, 8], &Device::Cpu).unwrap();
            let one_hot =
                |k: usize| crate::stylegan2::sampling::one_hot(&[k, k], 3, &Device::Cpu).unwrap();
            let (c0, c1) = (one_hot(0), one_hot(1));
            let img = |c: &Tensor| {
                g.forward_labelled(&z, Some(c), 1.0, crate::stylegan2::NoiseMode::Const)
                    .unwrap()
            };
            let (a, b) = (img(&c0), img(&c1));
            let differ = |x: &Tensor, y: &Tensor| {
                (x - y)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
                    > 0.0
            };
            assert!(differ(&a, &b));
            let logits = |c: &Tensor| d.forward_labelled(&a, Some(c), Params::Tracked).unwrap();
            assert_eq!(logits(&c0).dims(), [2, 1]);
            assert!(differ(&logits(&c0), &logits(&c1)));
            assert!(g
                .forward(&z, 1.0, crate::stylegan2::NoiseMode::Const)
                .is_err());
            assert!(d.forward(&a).is_err());
        }
    }
}
