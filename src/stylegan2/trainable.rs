//! The StyleGAN2 networks on the shared trainer: training passes of G (random noise, style
//! mixing, tracking of `w_avg`), Freeze-D, and path-length regularisation.

use super::layers::Params;
use super::{Discriminator, Generator, NoiseMode, Weights};
use crate::train::{self, standard_normal, GeneratorPenalty, HookState, Labels, Mode};
use crate::{Error, Result};
use candle_core::{Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Decay of the tracked average w per training pass (the reference's `w_avg_beta`).
const W_AVG_BETA: f64 = 0.995;

impl Generator {
    /// A training pass: ws of `z` (ψ = 1), `w_avg` moved towards their mean, style mixing with
    /// probability [`Generator::style_mixing`] (one cut-off for the batch, the later ws from
    /// fresh latents), random noise. With `ws_input`, the ws enter the synthesis through a
    /// variable of the same value, so the gradient with respect to them can be read (path
    /// length) while they stay connected to the mapping network.
    pub fn training_pass(
        &mut self,
        z: &Tensor,
        c: Labels,
        rng: &mut ChaCha8Rng,
        ws_input: bool,
    ) -> Result<(Tensor, Option<Var>)> {
        let num_ws = self.synthesis.num_ws;
        let mut ws = self.mapping.forward_labelled(z, c, num_ws, 1.0)?;
        let mean = ws.narrow(1, 0, 1)?.squeeze(1)?.detach().mean(0)?;
        let w_avg = &self.mapping.w_avg;
        // torch's lerp(mean, w_avg, β) for β ≥ 0.5: w_avg − (w_avg − mean)·(1 − β).
        self.mapping.w_avg = (w_avg - ((w_avg - mean)? * (1.0 - W_AVG_BETA))?)?;
        if self.style_mixing > 0.0 {
            let cutoff = rng.random_range(1..num_ws);
            if rng.random::<f64>() < self.style_mixing {
                let z2 = standard_normal(rng, z.dims(), z.device())?;
                let later = self.mapping.forward_labelled(&z2, c, num_ws, 1.0)?;
                ws = Tensor::cat(
                    &[
                        ws.narrow(1, 0, cutoff)?,
                        later.narrow(1, cutoff, num_ws - cutoff)?,
                    ],
                    1,
                )?;
            }
        }
        let noise = NoiseMode::Random { seed: rng.random() };
        if !ws_input {
            return Ok((self.synthesis.forward(&ws, noise)?, None));
        }
        let leaf = Var::from_tensor(&ws.detach())?;
        let connected = (leaf.as_tensor() + (&ws - ws.detach())?)?;
        Ok((self.synthesis.forward(&connected, noise)?, Some(leaf)))
    }
}

impl train::Network for Generator {
    fn parameters(&self) -> Vec<(String, Var)> {
        self.named_params().to_vec()
    }

    fn buffers(&self) -> Vec<(String, Tensor)> {
        self.named_buffers()
    }

    fn set_buffer(&mut self, name: &str, value: Tensor) -> Result<()> {
        self.set_named_buffer(name, value)
    }
}

impl train::GeneratorModel for Generator {
    fn latent_dim(&self) -> usize {
        self.mapping.z_dim
    }

    fn deep_copy(&self) -> Result<Self> {
        let mut copy = Generator::load(&Weights::new(self.state_dict()?, "a generator copy"))?;
        copy.synthesis.conv_clamp = self.synthesis.conv_clamp;
        copy.style_mixing = self.style_mixing;
        Ok(copy)
    }

    /// Train: [`Generator::training_pass`]; eval: ψ = 1 with the stored noise.
    fn forward(
        &mut self,
        z: &Tensor,
        c: Labels,
        mode: Mode,
        rng: &mut ChaCha8Rng,
    ) -> Result<Tensor> {
        match mode {
            Mode::Train => Ok(self.training_pass(z, c, rng, false)?.0),
            Mode::Eval => self.forward_labelled(z, c, 1.0, NoiseMode::Const),
        }
    }

    /// The same pass recording nothing for gradients, as the reference samples under
    /// `no_grad`: no intermediate outlives its use.
    fn forward_detached(
        &mut self,
        z: &Tensor,
        c: Labels,
        mode: Mode,
        rng: &mut ChaCha8Rng,
    ) -> Result<Tensor> {
        crate::stylegan2::layers::without_graph(|| self.forward(z, c, mode, rng))
    }

    /// The reference copies G's buffers (`w_avg`, noise images) into G_ema.
    fn averages_buffers(&self) -> bool {
        false
    }
}

impl Discriminator {
    /// Freezes the first `layers` layers in the reference's order ([`Discriminator::layer_names`]):
    /// their tensors become buffers, which the optimiser does not update (Freeze-D).
    pub fn freeze(&mut self, layers: usize) -> Result<()> {
        let names = self.layer_names();
        if layers > names.len() {
            return Err(Error::setting(
                "freezed",
                Some(layers.to_string()),
                format!("the discriminator has {} freezable layers", names.len()),
            ));
        }
        self.frozen = names[..layers].to_vec();
        Ok(())
    }

    fn is_frozen(&self, param: &str) -> bool {
        self.frozen.iter().any(|layer| {
            param
                .strip_prefix(layer.as_str())
                .is_some_and(|r| r.starts_with('.'))
        })
    }
}

impl train::Network for Discriminator {
    fn parameters(&self) -> Vec<(String, Var)> {
        let params = self.named_params().iter().cloned();
        params.filter(|(name, _)| !self.is_frozen(name)).collect()
    }

    fn buffers(&self) -> Vec<(String, Tensor)> {
        let params = self.named_params().iter();
        params
            .filter(|(name, _)| self.is_frozen(name))
            .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
            .collect()
    }

    fn set_buffer(&mut self, name: &str, value: Tensor) -> Result<()> {
        let found = self.named_params().iter().find(|(n, _)| n == name);
        match found {
            Some((_, var)) if self.is_frozen(name) => Ok(var.set(&value)?),
            _ => Err(Error::invalid(format!(
                "the discriminator has no frozen tensor '{name}'"
            ))),
        }
    }
}

impl train::DiscriminatorModel for Discriminator {
    fn forward(&self, x: &Tensor, c: Labels) -> Result<Tensor> {
        Ok(self
            .forward_labelled(x, c, Params::Tracked)?
            .flatten_all()?)
    }

    fn forward_frozen(&self, x: &Tensor, c: Labels) -> Result<Tensor> {
        Ok(self.forward_labelled(x, c, Params::Fixed)?.flatten_all()?)
    }

    fn forward_with_input_grad(&self, x: &Tensor, c: Labels) -> Result<(Tensor, Tensor)> {
        let (logits, grad) = Discriminator::forward_with_input_grad(self, x, c)?;
        Ok((logits.flatten_all()?, grad))
    }
}

/// Path-length regularisation (lazy): for half a batch (`batch_shrink`) of training passes,
/// the length a = √(mean over ws of ‖∂(img · y)/∂w‖²) with y standard normal / √(H·W); the
/// penalty is weight · every · E[(a − ā)²] with ā the running mean (decay 0.01), updated from
/// each batch before use, as the reference does.
#[derive(Debug, Clone, PartialEq)]
pub struct PathLength {
    pub weight: f64,
    pub decay: f64,
    pub batch_shrink: usize,
    pub every: u64,
    /// The running mean path length ā.
    pub mean: f64,
}

impl PathLength {
    /// The reference's settings: weight 2, decay 0.01, half batches, every
    /// [`PL_INTERVAL`](super::presets::PL_INTERVAL) G steps.
    pub fn official(weight: f64) -> Self {
        PathLength {
            weight,
            decay: 0.01,
            batch_shrink: 2,
            every: super::presets::PL_INTERVAL as u64,
            mean: 0.0,
        }
    }
}

impl GeneratorPenalty<Generator> for PathLength {
    fn every(&self) -> u64 {
        self.every
    }

    fn penalty(
        &mut self,
        g: &mut Generator,
        rng: &mut ChaCha8Rng,
        batch: usize,
        c: Labels,
    ) -> Result<Tensor> {
        let n = (batch / self.batch_shrink.max(1)).max(1);
        let z = standard_normal(rng, &[n, g.mapping.z_dim], g.mapping.w_avg.device())?;
        // The reference takes the first labels of the round for its shrunk batch.
        let c = c.map(|c| c.narrow(0, 0, n)).transpose()?;
        let (img, ws) = g.training_pass(&z, c.as_ref(), rng, true)?;
        let ws = ws.expect("asked for the ws input");
        let (_, c, h, w) = img.dims4()?;
        let y = (standard_normal(rng, &[n, c, h, w], img.device())? / ((h * w) as f64).sqrt())?;
        let grads = crate::backend::differentiable_backward(&(img * y)?.sum_all()?)?;
        let grad = grads
            .get(ws.as_tensor())
            .ok_or_else(|| Error::invalid("the generator's images do not depend on their ws"))?;
        let lengths = grad.sqr()?.sum(2)?.mean(1)?.sqrt()?;
        // torch's lerp(ā, mean a, decay) for decay < 0.5, kept differentiable in mean a.
        let mean = ((lengths.mean_all()? - self.mean)? * self.decay)?.affine(1.0, self.mean)?;
        self.mean = f64::from(mean.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?);
        let penalty = lengths.broadcast_sub(&mean)?.sqr()?.mean_all()?;
        Ok((penalty * (self.weight * self.every as f64))?)
    }

    fn state(&self) -> serde_json::Value {
        PathLengthState { pl_mean: self.mean }.store()
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.mean = PathLengthState::read(state)?.pl_mean;
        Ok(())
    }
}

/// What path-length regularisation keeps in checkpoints (and shows in run logs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PathLengthState {
    /// The running mean path length.
    pub pl_mean: f64,
}

impl crate::train::HookState for PathLengthState {
    const WHAT: &'static str = "path-length state";
    const FORMAT: u32 = 1;
}
