//! Where image-scale training plugs into the one loop: an augmentation of everything D sees
//! (ADA) and a lazy regulariser of G (path-length regularisation). The toy runs use neither;
//! with none set, the loop's numbers and random draws are exactly those of a plain run.

use crate::Result;
use candle_core::Tensor;
use rand_chacha::ChaCha8Rng;

/// An augmentation applied to every batch D sees — reals and fakes, in D steps and G steps —
/// built from differentiable tensor operations so that the G loss back-propagates through it.
///
/// R1 is taken with respect to the reals before augmentation, through it (as the reference
/// does, with [`crate::backend::differentiable_backward`]); WGAN-GP at D's input.
pub trait Augment: Send {
    /// The augmented batch; random choices come from the training stream `rng`.
    fn apply(&self, x: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor>;
    /// Called after each D step with D's logits on the augmented reals and the number of real
    /// images shown so far (ADA moves its probability from the sign of these logits).
    fn observe_real_logits(&mut self, logits: &Tensor, images_seen: u64) -> Result<()>;
    /// What a checkpoint keeps (e.g. the augmentation probability).
    fn state(&self) -> serde_json::Value;
    /// Restores [`Augment::state`] on resume.
    fn load_state(&mut self, state: &serde_json::Value) -> Result<()>;
}

/// A regulariser of G, due every `every()` G steps: inside the G loss when that is 1, else as a
/// separate update after the G step (lazy regularisation, the reference's `Greg` phase).
pub trait GeneratorPenalty<G>: Send {
    /// The interval in G steps; the penalty runs when the G-step count is a multiple of it.
    fn every(&self) -> u64;
    /// The penalty for one round of this G step (`batch` images, of classes `c` for a
    /// conditional G), already scaled for the interval; random draws from `rng`.
    fn penalty(
        &mut self,
        g: &mut G,
        rng: &mut ChaCha8Rng,
        batch: usize,
        c: super::Labels,
    ) -> Result<Tensor>;
    /// What a checkpoint keeps (e.g. the running mean path length).
    fn state(&self) -> serde_json::Value;
    /// Restores [`GeneratorPenalty::state`] on resume.
    fn load_state(&mut self, state: &serde_json::Value) -> Result<()>;
}

/// A hook's state as checkpoints keep it: a typed struct stored with its format number
/// ([`crate::io::versioned`]), so that a state of another layout is refused by name.
pub trait HookState: serde::Serialize + serde::de::DeserializeOwned {
    /// What it is, for errors ("augmentation state").
    const WHAT: &'static str;
    /// Raised when the struct changes; states written before they had numbers read as 1.
    const FORMAT: u32;

    fn store(&self) -> serde_json::Value {
        crate::io::versioned::to_json(self, Self::FORMAT)
    }

    fn read(value: &serde_json::Value) -> Result<Self> {
        crate::io::versioned::from_json(value, Self::FORMAT, Self::WHAT)
            .map_err(crate::Error::Invalid)
    }
}
