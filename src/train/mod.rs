//! The one GAN training loop shared by the toy 2-D lab and the image-scale networks.
//!
//! A model plugs in by implementing [`GeneratorModel`], [`DiscriminatorModel`] and
//! [`RealData`]; the loop ([`Trainer`]) owns everything else: losses and penalties, Adam, D
//! steps per G step, the generator's moving average, an evaluation hook after each G step and
//! checkpoints that resume exactly. Image-scale training adds an augmentation of D's inputs and
//! a lazy G regulariser through [`Augment`] and [`GeneratorPenalty`], whose states are typed
//! ([`HookState`]). What surrounds a run — output folders, logs, progress bars, schedules — is
//! the run layer's (`run`); the loop knows nothing of files but its checkpoints.
//!
//! Determinism: every random draw of training (latents, real batches, interpolation weights)
//! comes from one ChaCha8 stream whose position is saved in each checkpoint, so the same seed
//! gives the same numbers and a resumed run equals an uninterrupted one.

mod adam;
mod checkpoint;
mod ema;
mod hooks;
mod loss;
mod networks;
mod trainer;

pub use adam::{Adam, AdamConfig};
pub use checkpoint::{Checkpoint, CheckpointMeta};
pub use ema::Ema;
pub use hooks::{Augment, GeneratorPenalty, HookState};
pub use loss::{r1, wgan_gp, Loss, Penalty};
pub use networks::restore_network;
pub use trainer::{logit_input_gradient, EvalHook, StepReport, TrainConfig, Trainer};

use crate::Result;
use candle_core::{Tensor, Var};
use rand_chacha::ChaCha8Rng;

/// Whether a network runs as in training (batch statistics, updated running statistics) or
/// for evaluation (running statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// Parameters and buffers of a network, named as in the reference PyTorch state dict.
pub trait Network {
    /// Trainable parameters.
    fn parameters(&self) -> Vec<(String, Var)>;
    /// Non-trainable state that still belongs to the model (e.g. running statistics).
    fn buffers(&self) -> Vec<(String, Tensor)>;
    /// Replaces a buffer by name.
    fn set_buffer(&mut self, name: &str, value: Tensor) -> Result<()>;
}

/// The class labels of a batch, one-hot [batch, classes], for conditional models (`None`
/// for unconditional ones).
pub type Labels<'a> = Option<&'a Tensor>;

/// A generator: latents (and, when conditional, class labels) to samples.
pub trait GeneratorModel: Network + Sized {
    fn latent_dim(&self) -> usize;
    /// An independent copy (new parameter storage), e.g. to start the moving average.
    fn deep_copy(&self) -> Result<Self>;
    /// Samples for latents `z` ([batch, latent_dim]) of classes `c`; any other random choice
    /// of the pass (e.g. noise inputs, style mixing) comes from the training stream `rng`.
    fn forward(
        &mut self,
        z: &Tensor,
        c: Labels,
        mode: Mode,
        rng: &mut ChaCha8Rng,
    ) -> Result<Tensor>;
    /// The same samples without recording the computation for gradients (e.g. the fakes of a
    /// D step); networks may override it with a cheaper pass.
    fn forward_detached(
        &mut self,
        z: &Tensor,
        c: Labels,
        mode: Mode,
        rng: &mut ChaCha8Rng,
    ) -> Result<Tensor> {
        Ok(self.forward(z, c, mode, rng)?.detach())
    }
    /// Whether the moving average blends buffers like parameters (the toy playground averages
    /// the whole state dict) or copies them from G (StyleGAN2-ADA).
    fn averages_buffers(&self) -> bool {
        true
    }
}

/// A discriminator: samples (of classes `c`, when conditional) to logits (\[batch\]).
pub trait DiscriminatorModel: Network {
    fn forward(&self, x: &Tensor, c: Labels) -> Result<Tensor>;
    /// The same logits with D's parameters held fixed: gradients reach `x` (the generator)
    /// but no work is spent on D's own, which the G step does not use. Networks may override
    /// it with a cheaper pass.
    fn forward_frozen(&self, x: &Tensor, c: Labels) -> Result<Tensor> {
        self.forward(x, c)
    }
    /// Whether each sample is judged on its own (no batch statistics such as minibatch
    /// standard deviation); then real and fake batches may share one pass.
    fn judges_samples_independently(&self) -> bool {
        false
    }
    /// Logits and their gradient with respect to `x`, the gradient built from differentiable
    /// operations so that penalties on it can be back-propagated into the parameters.
    fn forward_with_input_grad(&self, x: &Tensor, c: Labels) -> Result<(Tensor, Tensor)>;
}

/// The real data: batches drawn from the training stream.
pub trait RealData {
    fn sample(&mut self, rng: &mut ChaCha8Rng, batch: usize) -> Result<Tensor>;
    /// A batch and its class labels (data with classes override this and the next).
    fn sample_labelled(
        &mut self,
        rng: &mut ChaCha8Rng,
        batch: usize,
    ) -> Result<(Tensor, Option<Tensor>)> {
        Ok((self.sample(rng, batch)?, None))
    }
    /// Class labels for `n` generated samples, drawn as the data's own are distributed (the
    /// reference draws the labels of random training images); none without classes, and then
    /// nothing is drawn from `rng`.
    fn sample_labels(&mut self, _rng: &mut ChaCha8Rng, _n: usize) -> Result<Option<Tensor>> {
        Ok(None)
    }
}

/// Standard-normal f32 values of `shape` from `rng`, in row-major order: latents, noise
/// inputs and initial weights all draw this way.
pub fn standard_normal(
    rng: &mut impl rand::Rng,
    shape: &[usize],
    device: &candle_core::Device,
) -> Result<Tensor> {
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| rng.sample(rand_distr::StandardNormal))
        .collect();
    Ok(Tensor::from_vec(values, shape, device)?)
}
