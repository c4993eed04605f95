//! The training loop.

use super::networks::{blend, insert_network, restore_network};
use super::{
    loss, Adam, AdamConfig, Augment, Checkpoint, CheckpointMeta, DiscriminatorModel, Ema,
    GeneratorModel, GeneratorPenalty, Labels, Loss, Mode, Penalty, RealData,
};
use crate::{Error, Result};
use candle_core::{backprop::GradStore, DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Everything that shapes the updates (not the schedule of evaluations and snapshots).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub batch: usize,
    /// Images per forward and backward pass: each step runs its batch in rounds of this many
    /// and sums their gradients, the loss of each round being its own mean (the reference's
    /// `batch_gpu`; batch statistics such as minibatch standard deviation see one round).
    /// Equal to `batch` for one pass.
    pub batch_gpu: usize,
    /// D steps per G step.
    pub d_steps: usize,
    pub loss: Loss,
    pub penalty: Penalty,
    pub adam_g: AdamConfig,
    pub adam_d: AdamConfig,
    pub ema: Ema,
}

/// Losses of the last cycle, for logs and progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepReport {
    pub g_steps: u64,
    pub d_loss: f64,
    pub g_loss: f64,
}

/// Called after G steps with the trainer; evaluation and snapshots live here.
pub trait EvalHook<G: GeneratorModel, D: DiscriminatorModel> {
    fn after_g_step(&mut self, trainer: &mut Trainer<G, D>, report: &StepReport) -> Result<()>;
}

/// G, D, the generator average, their optimisers, the counters and the random stream.
pub struct Trainer<G: GeneratorModel, D: DiscriminatorModel> {
    g: G,
    d: D,
    g_ema: G,
    config: TrainConfig,
    opt_g: Adam,
    opt_d: Adam,
    rng: ChaCha8Rng,
    seed: u64,
    /// G steps (updates of G) done.
    g_steps: u64,
    /// D steps done.
    d_steps: u64,
    /// Real images shown to D.
    images_seen: u64,
    device: Device,
    augment: Option<Box<dyn Augment>>,
    g_penalty: Option<Box<dyn GeneratorPenalty<G>>>,
}

impl<G: GeneratorModel, D: DiscriminatorModel> Trainer<G, D> {
    /// A trainer starting at step 0; G-EMA starts as a copy of G.
    pub fn new(g: G, d: D, config: TrainConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::with_average(g, None, d, config, seed, device)
    }

    /// A trainer starting at step 0 whose G-EMA is `g_ema` (e.g. that of a pretrained
    /// checkpoint), or a copy of G without one.
    pub fn with_average(
        g: G,
        g_ema: Option<G>,
        d: D,
        config: TrainConfig,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let (batch, round) = (config.batch, config.batch_gpu);
        if round == 0 || batch % round != 0 {
            return Err(Error::invalid(format!(
                "batch {batch} does not split into rounds of {round} images (batch_gpu)"
            )));
        }
        let g_ema = match g_ema {
            Some(g_ema) => g_ema,
            None => g.deep_copy()?,
        };
        let opt_g = Adam::new(g.parameters(), config.adam_g)?;
        let opt_d = Adam::new(d.parameters(), config.adam_d)?;
        Ok(Trainer {
            g,
            d,
            g_ema,
            config,
            opt_g,
            opt_d,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            g_steps: 0,
            d_steps: 0,
            images_seen: 0,
            device: device.clone(),
            augment: None,
            g_penalty: None,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn g(&self) -> &G {
        &self.g
    }

    /// G itself, e.g. to sample it (sampling may move a network's running statistics).
    pub fn g_mut(&mut self) -> &mut G {
        &mut self.g
    }

    pub fn g_ema(&self) -> &G {
        &self.g_ema
    }

    pub fn g_ema_mut(&mut self) -> &mut G {
        &mut self.g_ema
    }

    pub fn d(&self) -> &D {
        &self.d
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// G steps (updates of G) done.
    pub fn g_steps(&self) -> u64 {
        self.g_steps
    }

    /// D steps done.
    pub fn d_steps(&self) -> u64 {
        self.d_steps
    }

    /// Real images shown to D.
    pub fn images_seen(&self) -> u64 {
        self.images_seen
    }

    /// Starts G and G-EMA from the generator under `prefix` in `ckpt` (a fine-tune's start);
    /// the optimiser state stays fresh.
    pub fn start_generator_from(&mut self, ckpt: &Checkpoint, prefix: &str) -> Result<()> {
        restore_network(&mut self.g, ckpt, prefix)?;
        restore_network(&mut self.g_ema, ckpt, prefix)
    }

    /// Starts D from the discriminator under `prefix` in `ckpt`; the optimiser state stays
    /// fresh.
    pub fn start_discriminator_from(&mut self, ckpt: &Checkpoint, prefix: &str) -> Result<()> {
        restore_network(&mut self.d, ckpt, prefix)
    }

    /// Cleans every gradient before its update from now on (NaN → 0, ±∞ → ±1e5), as the
    /// StyleGAN2 reference loop does; see [`Adam::clean_gradients`].
    pub fn clean_gradients(&mut self) {
        self.opt_g.clean_gradients = true;
        self.opt_d.clean_gradients = true;
    }

    /// Augments everything D sees from now on (e.g. ADA).
    pub fn set_augment(&mut self, augment: Box<dyn Augment>) {
        self.augment = Some(augment);
    }

    /// Adds a lazy regulariser to the G loss from now on (e.g. path-length regularisation).
    pub fn set_generator_penalty(&mut self, penalty: Box<dyn GeneratorPenalty<G>>) {
        self.g_penalty = Some(penalty);
    }

    /// The augmentation's state (e.g. ADA's p), when one is set.
    pub fn augment_state(&self) -> Option<serde_json::Value> {
        self.augment.as_ref().map(|a| a.state())
    }

    /// The generator penalty's state (e.g. the mean path length), when one is set.
    pub fn generator_penalty_state(&self) -> Option<serde_json::Value> {
        self.g_penalty.as_ref().map(|p| p.state())
    }

    /// `x` as D sees it: augmented when an augmentation is set.
    fn for_d(&mut self, x: Tensor) -> Result<Tensor> {
        match &self.augment {
            Some(augment) => augment.apply(&x, &mut self.rng),
            None => Ok(x),
        }
    }

    /// Standard-normal latents [n, latent_dim] from the training stream.
    fn latents(&mut self, n: usize) -> Result<Tensor> {
        super::standard_normal(&mut self.rng, &[n, self.g.latent_dim()], &self.device)
    }

    /// One D step: real and fake batches, the loss (with R1 when it is not lazy), one Adam
    /// update; with a lazy R1 due, then a separate R1 update (the reference's `Dreg` phase).
    /// Both run in rounds of `batch_gpu` images.
    fn d_step(&mut self, data: &mut impl RealData) -> Result<f64> {
        let batch = self.config.batch;
        let (real_images, real_c) = data.sample_labelled(&mut self.rng, batch)?;
        let z = self.latents(batch)?;
        let gen_c = data.sample_labels(&mut self.rng, batch)?;
        let r1_due = match self.config.penalty {
            Penalty::R1 { gamma, every } if self.d_steps.is_multiple_of(every.max(1) as u64) => {
                Some((gamma, every.max(1)))
            }
            _ => None,
        };
        let (reals, zs) = (self.rounds(&real_images)?, self.rounds(&z)?);
        let (real_cs, gen_cs) = (self.label_rounds(&real_c)?, self.label_rounds(&gen_c)?);
        let mut grads = GradStore::default();
        let (mut loss_sum, mut real_logits) = (0.0, Vec::with_capacity(reals.len()));
        for (i, (real, z)) in reals.iter().zip(&zs).enumerate() {
            let labels = (real_cs[i].as_ref(), gen_cs[i].as_ref());
            let (loss, logits, round_grads) = self.d_round(real, z, labels, r1_due)?;
            loss_sum += loss;
            grads.extend(round_grads)?;
            real_logits.push(logits);
        }
        if let Some(augment) = &mut self.augment {
            let logits = Tensor::cat(&real_logits, 0)?;
            augment.observe_real_logits(&logits, self.images_seen + batch as u64)?;
        }
        self.opt_d.step(&grads)?;
        if let Some((gamma, every)) = r1_due.filter(|&(_, every)| every > 1) {
            let mut grads = GradStore::default();
            for (real, c) in reals.iter().zip(&real_cs) {
                let (_, _, grad) = self.real_logits_with_grad(real, c.as_ref())?;
                let r1 = loss::r1(&grad, gamma, every)?.to_dtype(DType::F32)?;
                grads.extend(r1.backward()?)?;
            }
            self.opt_d.step_regulariser(&grads)?;
        }
        self.d_steps += 1;
        self.images_seen += batch as u64;
        Ok(loss_sum / reals.len() as f64)
    }

    /// One round of a D step: its loss, D's logits on its reals (detached) and the loss's
    /// gradients. `labels`: the classes of the reals and of the fakes, for conditional models.
    fn d_round(
        &mut self,
        real_images: &Tensor,
        z: &Tensor,
        (real_c, gen_c): (Labels, Labels),
        r1_due: Option<(f64, usize)>,
    ) -> Result<(f64, Tensor, GradStore)> {
        // Train mode: the fake batch updates G's running statistics, as in the reference.
        let fake = self
            .g
            .forward_detached(z, gen_c, Mode::Train, &mut self.rng)?;
        let plain = !matches!(r1_due, Some((_, 1)))
            && !matches!(self.config.penalty, Penalty::WganGp { .. });
        if plain && !self.d.judges_samples_independently() {
            // One graph of D at a time, as the reference's Dgen and Dreal phases: the fakes'
            // backward pass frees theirs before the reals' is built.
            let real = self.for_d(real_images.clone())?;
            let fake = self.for_d(fake)?;
            let loss = self.config.loss;
            let fake_loss = loss.discriminator_fake(&self.d.forward(&fake, gen_c)?)?;
            let fake_loss = fake_loss.to_dtype(DType::F32)?;
            let mut grads = fake_loss.backward()?;
            let real_logits = self.d.forward(&real, real_c)?;
            let real_loss = loss
                .discriminator_real(&real_logits)?
                .to_dtype(DType::F32)?;
            grads.extend(real_loss.backward()?)?;
            let total = real_loss.to_scalar::<f32>()? + fake_loss.to_scalar::<f32>()?;
            return Ok((f64::from(total), real_logits.detach(), grads));
        }
        // R1 inside the D loss needs D's input gradient at the reals, so their logits come
        // from that pass; otherwise real and fake logits may share one.
        let (real, real_logits, fake, fake_logits, r1_grad) = match r1_due {
            Some((_, 1)) => {
                let (real, logits, grad) = self.real_logits_with_grad(real_images, real_c)?;
                let fake = self.for_d(fake)?;
                let fake_logits = self.d.forward(&fake, gen_c)?;
                (real, logits, fake, fake_logits, Some(grad))
            }
            _ => {
                let real = self.for_d(real_images.clone())?;
                let fake = self.for_d(fake)?;
                let (r, f) = self.logits_pair((&real, real_c), (&fake, gen_c))?;
                (real, r, fake, f, None)
            }
        };
        let mut total = self.config.loss.discriminator(&real_logits, &fake_logits)?;
        if let (Some((gamma, every)), Some(grad)) = (r1_due, &r1_grad) {
            total = (total + loss::r1(grad, gamma, every)?)?;
        }
        if let Penalty::WganGp { weight } = self.config.penalty {
            let n = real.dim(0)?;
            let t: Vec<f32> = (0..n).map(|_| self.rng.random::<f32>()).collect();
            let shape: Vec<usize> = std::iter::once(n)
                .chain(std::iter::repeat_n(1, real.rank() - 1))
                .collect();
            let t = Tensor::from_vec(t, shape, &self.device)?;
            let mixed = (real.broadcast_mul(&t)? + fake.broadcast_mul(&t.affine(-1.0, 1.0)?)?)?;
            let (logits, grad) = self.d.forward_with_input_grad(&mixed, real_c)?;
            total = (total + loss::wgan_gp(&logits, &grad, weight)?)?;
        }
        let total = total.to_dtype(DType::F32)?;
        let grads = total.backward()?;
        Ok((
            f64::from(total.to_scalar::<f32>()?),
            real_logits.detach(),
            grads,
        ))
    }

    /// `x` ([batch, …]) split into the rounds of a step.
    fn rounds(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let round = self.config.batch_gpu;
        let n = x.dim(0)? / round;
        Ok((0..n)
            .map(|i| x.narrow(0, i * round, round))
            .collect::<Result<_, _>>()?)
    }

    /// Labels (if any) split as [`Trainer::rounds`] splits their batch.
    fn label_rounds(&self, c: &Option<Tensor>) -> Result<Vec<Option<Tensor>>> {
        match c {
            Some(c) => Ok(self.rounds(c)?.into_iter().map(Some).collect()),
            None => Ok(vec![None; self.config.batch / self.config.batch_gpu.max(1)]),
        }
    }

    /// The reals as D sees them, D's logits and their gradient with respect to the reals
    /// before augmentation (as the reference takes R1), built from differentiable operations.
    fn real_logits_with_grad(
        &mut self,
        real: &Tensor,
        c: Labels,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let Some(augment) = &self.augment else {
            let (logits, grad) = self.d.forward_with_input_grad(real, c)?;
            return Ok((real.clone(), logits, grad));
        };
        let input = candle_core::Var::from_tensor(real)?;
        let seen = augment.apply(input.as_tensor(), &mut self.rng)?;
        let logits = self.d.forward(&seen, c)?;
        let grad = logit_input_gradient(&logits, &input)?;
        Ok((seen, logits.detach(), grad))
    }

    /// Logits of a real and a fake batch; one pass over both (fewer, larger operations) when
    /// D judges samples independently, which then equals two passes.
    fn logits_pair(
        &self,
        (real, real_c): (&Tensor, Labels),
        (fake, gen_c): (&Tensor, Labels),
    ) -> Result<(Tensor, Tensor)> {
        let separately = !self.d.judges_samples_independently() || real_c.is_some();
        if separately {
            return Ok((self.d.forward(real, real_c)?, self.d.forward(fake, gen_c)?));
        }
        let n = real.dim(0)?;
        let logits = self.d.forward(&Tensor::cat(&[real, fake], 0)?, None)?;
        Ok((logits.narrow(0, 0, n)?, logits.narrow(0, n, fake.dim(0)?)?))
    }

    /// One G step, with a lazy G penalty due a separate update after it (the reference's
    /// `Greg` phase), both in rounds of `batch_gpu` images, and the moving-average update.
    fn g_step(&mut self, data: &mut impl RealData) -> Result<f64> {
        let penalty_every = match &self.g_penalty {
            Some(p) if self.g_steps.is_multiple_of(p.every().max(1)) => Some(p.every().max(1)),
            _ => None,
        };
        let z = self.latents(self.config.batch)?;
        let gen_c = data.sample_labels(&mut self.rng, self.config.batch)?;
        let (zs, gen_cs) = (self.rounds(&z)?, self.label_rounds(&gen_c)?);
        let mut grads = GradStore::default();
        let mut loss_sum = 0.0;
        for (z, c) in zs.iter().zip(&gen_cs) {
            let fake = self.g.forward(z, c.as_ref(), Mode::Train, &mut self.rng)?;
            let fake = self.for_d(fake)?;
            let logits = self.d.forward_frozen(&fake, c.as_ref())?;
            let mut loss = self.config.loss.generator(&logits)?;
            if penalty_every == Some(1) {
                let extra = self.generator_penalty(c.as_ref())?.to_dtype(loss.dtype())?;
                loss = (loss + extra)?;
            }
            loss_sum += f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?);
            grads.extend(loss.backward()?)?;
        }
        self.opt_g.step(&grads)?;
        if penalty_every.is_some_and(|every| every > 1) {
            let mut grads = GradStore::default();
            for c in &gen_cs {
                let extra = self.generator_penalty(c.as_ref())?.to_dtype(DType::F32)?;
                grads.extend(extra.backward()?)?;
            }
            self.opt_g.step_regulariser(&grads)?;
        }
        let beta = self.config.ema.beta(self.config.batch, self.images_seen);
        blend(&mut self.g_ema, &self.g, beta)?;
        self.g_steps += 1;
        Ok(loss_sum / zs.len() as f64)
    }

    /// The G penalty of one round (of classes `c`).
    fn generator_penalty(&mut self, c: Labels) -> Result<Tensor> {
        let penalty = self
            .g_penalty
            .as_mut()
            .expect("called only with a penalty set");
        penalty.penalty(&mut self.g, &mut self.rng, self.config.batch_gpu, c)
    }

    /// D steps until the next G step is due, then that G step (the toy playground's order: a
    /// G step follows D steps number 1, 1 + n, 1 + 2n, …; StyleGAN2's reference runs G's
    /// phases first).
    pub fn cycle(&mut self, data: &mut impl RealData) -> Result<StepReport> {
        let per_g = self.config.d_steps.max(1) as u64;
        loop {
            let d_loss = self.d_step(data)?;
            if (self.d_steps - 1).is_multiple_of(per_g) {
                let g_loss = self.g_step(data)?;
                return Ok(StepReport {
                    g_steps: self.g_steps,
                    d_loss,
                    g_loss,
                });
            }
        }
    }

    /// Trains until `g_steps` G steps are done, calling `hook` after each.
    pub fn run(
        &mut self,
        data: &mut impl RealData,
        g_steps: u64,
        hook: &mut dyn EvalHook<G, D>,
    ) -> Result<()> {
        while self.g_steps < g_steps {
            let report = self.cycle(data)?;
            hook.after_g_step(self, &report)?;
        }
        Ok(())
    }

    /// The complete training state, copied: parameters are updated in place, so a checkpoint
    /// kept in memory must not share their storage.
    pub fn checkpoint(&self, model: &str) -> Result<Checkpoint> {
        let mut tensors = HashMap::new();
        for (prefix, net) in [("G", &self.g), ("G_ema", &self.g_ema)] {
            insert_network(&mut tensors, prefix, net)?;
        }
        insert_network(&mut tensors, "D", &self.d)?;
        for (prefix, opt) in [("opt_G", &self.opt_g), ("opt_D", &self.opt_d)] {
            for (name, t) in opt.state() {
                tensors.insert(format!("{prefix}.{name}"), t.copy()?);
            }
        }
        Ok(Checkpoint {
            meta: CheckpointMeta {
                model: model.to_owned(),
                g_steps: self.g_steps,
                d_steps: self.d_steps,
                images_seen: self.images_seen,
                adam_steps_g: self.opt_g.steps(),
                adam_steps_d: self.opt_d.steps(),
                seed: self.seed,
                rng_word_pos: self.rng.get_word_pos(),
                config: serde_json::to_value(&self.config).expect("config serialises"),
                augment: self.augment.as_ref().map(|a| a.state()),
                g_penalty: self.g_penalty.as_ref().map(|p| p.state()),
                extra: serde_json::Value::Null,
            },
            tensors,
        })
    }

    /// Continues exactly where `ckpt` left off (same model, same configuration).
    pub fn resume(&mut self, ckpt: &Checkpoint, model: &str) -> Result<()> {
        ckpt.expect_model(model)?;
        let config: TrainConfig = serde_json::from_value(ckpt.meta.config.clone())
            .map_err(|e| Error::invalid(format!("checkpoint configuration unreadable: {e}")))?;
        if config != self.config {
            return Err(Error::invalid(
                "the checkpoint was trained with other settings (loss, penalty, batch, \
                 optimiser or EMA); resume with the same ones",
            ));
        }
        restore_network(&mut self.g, ckpt, "G")?;
        restore_network(&mut self.g_ema, ckpt, "G_ema")?;
        restore_network(&mut self.d, ckpt, "D")?;
        self.opt_g.load_state(
            |n| ckpt.tensor(&format!("opt_G.{n}")),
            ckpt.meta.adam_steps_g,
        )?;
        self.opt_d.load_state(
            |n| ckpt.tensor(&format!("opt_D.{n}")),
            ckpt.meta.adam_steps_d,
        )?;
        self.seed = ckpt.meta.seed;
        self.rng = ChaCha8Rng::seed_from_u64(self.seed);
        self.rng.set_word_pos(ckpt.meta.rng_word_pos);
        self.g_steps = ckpt.meta.g_steps;
        self.d_steps = ckpt.meta.d_steps;
        self.images_seen = ckpt.meta.images_seen;
        match (&mut self.augment, &ckpt.meta.augment) {
            (Some(augment), Some(state)) => augment.load_state(state)?,
            (None, None) => {}
            _ => {
                return Err(Error::invalid(
                    "the checkpoint was trained with an augmentation and this run without, or \
                     the other way round",
                ))
            }
        }
        match (&mut self.g_penalty, &ckpt.meta.g_penalty) {
            (Some(penalty), Some(state)) => penalty.load_state(state)?,
            (None, None) => {}
            _ => {
                return Err(Error::invalid(
                    "the checkpoint was trained with a generator penalty and this run without, \
                     or the other way round",
                ))
            }
        }
        Ok(())
    }
}

/// ∂(Σ logits)/∂input, differentiable again (R1 and similar penalties).
pub fn logit_input_gradient(logits: &Tensor, input: &candle_core::Var) -> Result<Tensor> {
    let grads = crate::backend::differentiable_backward(&logits.sum_all()?)?;
    grads
        .get(input.as_tensor())
        .cloned()
        .ok_or_else(|| Error::invalid("the discriminator's output does not depend on its input"))
}
