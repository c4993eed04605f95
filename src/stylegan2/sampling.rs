//! Images from a generator checkpoint: one way to rebuild the generator and to draw its
//! images for seeds, used by `whichgan generate`, the metrics of generator sources and the
//! snapshot grids of training runs.

use super::latents::latent_for_seed;
use super::weights::load_network;
use super::{Generator, NoiseMode};
use crate::Result;
use candle_core::{Device, Tensor};
use std::path::Path;

/// The generator `net` (`G_ema`, `G`, …) of the checkpoint `path`, its layer outputs clamped
/// at `conv_clamp` (the run layer has the rule that chooses it for a checkpoint).
pub fn load_generator(
    path: &Path,
    net: &str,
    conv_clamp: Option<f64>,
    device: &Device,
) -> Result<Generator> {
    let weights = load_network(path, net, device)?;
    let mut g = Generator::load(&weights).map_err(|e| e.located_in(path))?;
    g.synthesis.conv_clamp = conv_clamp;
    Ok(g)
}

/// Latents [n, z_dim] of `seeds`, as the official `generate.py` draws them.
pub fn seed_latents(seeds: &[u32], z_dim: usize, device: &Device) -> Result<Tensor> {
    let z: Vec<f32> = seeds
        .iter()
        .flat_map(|&seed| latent_for_seed(seed, z_dim))
        .collect();
    Ok(Tensor::from_vec(z, (seeds.len(), z_dim), device)?)
}

/// Images of the intermediate latents `ws` [N, num_ws, w_dim], `batch` at a time, detached.
pub fn synthesise(g: &Generator, ws: &Tensor, noise: NoiseMode, batch: usize) -> Result<Tensor> {
    in_batches(ws, batch, |chunk| g.synthesis.forward(chunk, noise))
}

/// Images of latents `z` [N, z_dim] at truncation `psi`, `batch` at a time, detached.
pub fn generate(
    g: &Generator,
    z: &Tensor,
    psi: f64,
    noise: NoiseMode,
    batch: usize,
) -> Result<Tensor> {
    in_batches(z, batch, |chunk| g.forward(chunk, psi, noise))
}

/// `images` of each run of `batch` rows of `x`, detached and joined.
fn in_batches(
    x: &Tensor,
    batch: usize,
    images: impl Fn(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    let (n, batch) = (x.dim(0)?, batch.max(1));
    let mut parts = Vec::with_capacity(n.div_ceil(batch));
    for start in (0..n).step_by(batch) {
        parts.push(images(&x.narrow(0, start, batch.min(n - start))?)?.detach());
    }
    Ok(Tensor::cat(&parts, 0)?)
}
