//! The adaptive controller ([`Ada`]): the pipeline as the trainer's augmentation hook, with
//! its probability p driven by the overfitting heuristic r_t.

use super::{AugmentPipe, Draws};
use crate::train::HookState;
use crate::Result;
use candle_core::Tensor;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Adaptive discriminator augmentation: the pipeline as the trainer's
/// [`Augment`](crate::train::Augment) hook, its probability p moved every `interval` D steps by
/// sign(E[sign D(real)] − target) · (images shown since the last move) / (`speed_kimg` · 1000),
/// floored at 0 — the official update, which can take p from 0 to 1 in `speed_kimg` thousand
/// images. `adaptive = false` keeps p fixed (`--aug fixed`); r_t is tracked either way, for the
/// log.
#[derive(Debug, Clone)]
pub struct Ada {
    pub pipe: AugmentPipe,
    pub adaptive: bool,
    pub target: f64,
    pub interval: u64,
    pub speed_kimg: f64,
    /// E[sign D(real)] over the last adjustment interval (the overfitting heuristic r_t).
    pub rt: f64,
    signs_sum: f64,
    signs_count: u64,
    steps: u64,
    images_at_last_update: u64,
}

impl Ada {
    /// The official defaults: target 0.6, every 4 D steps, 500 kimg for a unit change of p.
    pub fn new(pipe: AugmentPipe, adaptive: bool) -> Self {
        Ada {
            pipe,
            adaptive,
            target: 0.6,
            interval: 4,
            speed_kimg: 500.0,
            rt: 0.0,
            signs_sum: 0.0,
            signs_count: 0,
            steps: 0,
            images_at_last_update: 0,
        }
    }
}

impl crate::train::Augment for Ada {
    fn apply(&self, x: &Tensor, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        self.pipe.apply(x, &mut Draws::Random(rng))
    }

    fn observe_real_logits(&mut self, logits: &Tensor, images_seen: u64) -> Result<()> {
        let signs: Vec<f32> = logits
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1()?;
        self.signs_sum += signs
            .iter()
            .map(|&v| f64::from(v.signum() * f32::from(v != 0.0)))
            .sum::<f64>();
        self.signs_count += signs.len() as u64;
        self.steps += 1;
        if self.steps.is_multiple_of(self.interval) && self.signs_count > 0 {
            let mean = self.signs_sum / self.signs_count as f64;
            self.rt = mean;
            if self.adaptive {
                let direction =
                    (mean - self.target).signum() * f64::from(u8::from(mean != self.target));
                let shown = images_seen.saturating_sub(self.images_at_last_update) as f64;
                let p = f64::from(self.pipe.p) + direction * shown / (self.speed_kimg * 1000.0);
                self.pipe.p = p.max(0.0) as f32;
            }
            (self.signs_sum, self.signs_count) = (0.0, 0);
            self.images_at_last_update = images_seen;
        }
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        AdaState {
            p: f64::from(self.pipe.p),
            rt: self.rt,
            signs_sum: self.signs_sum,
            signs_count: self.signs_count,
            steps: self.steps,
            images_at_last_update: self.images_at_last_update,
        }
        .store()
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        let state = AdaState::read(state)?;
        self.pipe.p = state.p as f32;
        self.rt = state.rt;
        self.signs_sum = state.signs_sum;
        self.signs_count = state.signs_count;
        self.steps = state.steps;
        self.images_at_last_update = state.images_at_last_update;
        Ok(())
    }
}

/// What ADA keeps in checkpoints (and shows in run logs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdaState {
    /// The augmentation probability.
    pub p: f64,
    /// E[sign D(real)] over the last adjustment interval.
    pub rt: f64,
    pub signs_sum: f64,
    pub signs_count: u64,
    pub steps: u64,
    pub images_at_last_update: u64,
}

impl HookState for AdaState {
    const WHAT: &'static str = "augmentation state";
    const FORMAT: u32 = 1;
}
