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
    in_batches(ws.dim(0)?, batch, |start, len| {
        g.synthesis.forward(&ws.narrow(0, start, len)?, noise)
    })
}

/// Images of latents `z` [N, z_dim] (with one-hot labels [N, c_dim] for a conditional
/// generator) at truncation `psi`, `batch` at a time, detached.
pub fn generate(
    g: &Generator,
    z: &Tensor,
    labels: Option<&Tensor>,
    psi: f64,
    noise: NoiseMode,
    batch: usize,
) -> Result<Tensor> {
    in_batches(z.dim(0)?, batch, |start, len| {
        let c = labels.map(|c| c.narrow(0, start, len)).transpose()?;
        g.forward_labelled(&z.narrow(0, start, len)?, c.as_ref(), psi, noise)
    })
}

/// For a conditional generator, labels of its classes in turn for `n` images (image i of
/// class i mod c_dim): how grids and metrics sample one; none for an unconditional one.
pub fn classes_in_turn(g: &Generator, n: usize, device: &Device) -> Result<Option<Tensor>> {
    match g.mapping.c_dim {
        0 => Ok(None),
        k => {
            let classes: Vec<usize> = (0..n).map(|i| i % k).collect();
            one_hot(&classes, k, device).map(Some)
        }
    }
}

/// One-hot labels [n, classes] of class indices.
pub fn one_hot(classes: &[usize], count: usize, device: &Device) -> Result<Tensor> {
    let mut data = vec![0f32; classes.len() * count];
    for (row, &class) in classes.iter().enumerate() {
        if class >= count {
            return Err(crate::Error::invalid(format!(
                "class {class} does not exist: the network has {count} (0…{})",
                count - 1
            )));
        }
        data[row * count + class] = 1.0;
    }
    Ok(Tensor::from_vec(data, (classes.len(), count), device)?)
}

/// `images(start, len)` of each run of `batch` of `n` rows, detached and joined.
fn in_batches(
    n: usize,
    batch: usize,
    images: impl Fn(usize, usize) -> Result<Tensor>,
) -> Result<Tensor> {
    let batch = batch.max(1);
    let mut parts = Vec::with_capacity(n.div_ceil(batch));
    for start in (0..n).step_by(batch) {
        parts.push(images(start, batch.min(n - start))?.detach());
    }
    Ok(Tensor::cat(&parts, 0)?)
}
