//! The trainer's extension points for image-scale training, exercised on the toy GAN: an
//! augmentation of D's inputs (ADA's place) and a lazy generator penalty (path length's place).

use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use whichgan::train::{Augment, DiscriminatorModel, GeneratorPenalty, Loss, Network, Penalty};
use whichgan::Result;
use whichgan_toy::nets::MlpGenerator;
use whichgan_toy::train::{new_trainer, playground_config, DistributionData, ToyTrainer, MODEL};

fn data() -> DistributionData {
    whichgan::runtime::setup(whichgan::runtime::Parallelism::AcrossTasks);
    DistributionData {
        distribution: "circle:size=20,sigma=0.25".parse().unwrap(),
        device: Device::Cpu,
    }
}

fn trainer(d_steps: usize) -> ToyTrainer {
    whichgan::runtime::setup(whichgan::runtime::Parallelism::AcrossTasks);
    new_trainer(
        playground_config(Loss::Vanilla, Penalty::None, d_steps),
        16,
        4,
    )
    .unwrap()
}

/// An augmentation that scales its input and keeps an ADA-like probability that moves with the
/// sign of D's real logits; it counts its calls.
struct Scale {
    factor: f64,
    p: f64,
    observed: Arc<AtomicUsize>,
    rows_seen: Arc<AtomicUsize>,
}

impl Scale {
    fn new(factor: f64) -> Self {
        Scale {
            factor,
            p: 0.0,
            observed: Arc::default(),
            rows_seen: Arc::default(),
        }
    }
}

impl Augment for Scale {
    fn apply(&self, x: &Tensor, _rng: &mut ChaCha8Rng) -> Result<Tensor> {
        Ok((x * self.factor)?)
    }

    fn observe_real_logits(&mut self, logits: &Tensor, _images_seen: u64) -> Result<()> {
        let signs: Vec<f32> = logits.sign()?.to_vec1()?;
        self.p += 0.01 * signs.iter().sum::<f32>() as f64 / signs.len() as f64;
        self.observed.fetch_add(1, Ordering::SeqCst);
        self.rows_seen.fetch_add(signs.len(), Ordering::SeqCst);
        Ok(())
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "p": self.p })
    }

    fn load_state(&mut self, state: &serde_json::Value) -> Result<()> {
        self.p = state["p"].as_f64().unwrap();
        Ok(())
    }
}

fn tensors(t: &ToyTrainer) -> Vec<(String, Vec<f32>)> {
    let ckpt = t.checkpoint(MODEL).unwrap();
    let mut v: Vec<(String, Vec<f32>)> = ckpt
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.flatten_all().unwrap().to_vec1().unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn identity_augmentation_changes_nothing_and_sees_every_d_step() {
    let mut plain = trainer(2);
    let mut hooked = trainer(2);
    let augment = Scale::new(1.0);
    let (observed, rows) = (augment.observed.clone(), augment.rows_seen.clone());
    hooked.set_augment(Box::new(augment));
    for _ in 0..4 {
        assert_eq!(
            plain.cycle(&mut data()).unwrap(),
            hooked.cycle(&mut data()).unwrap()
        );
    }
    assert_eq!(tensors(&plain), tensors(&hooked));
    assert_eq!(observed.load(Ordering::SeqCst) as u64, hooked.d_steps());
    assert_eq!(rows.load(Ordering::SeqCst) as u64, hooked.d_steps() * 64);
}

#[test]
fn discriminator_sees_the_augmented_batches() {
    // Everything mapped (next) to the origin: D's real and fake logits are both D(0), so the
    // first D loss is softplus(−l) + softplus(l) with l = D(0) before the update.
    let mut t = trainer(1);
    let l = t
        .d()
        .forward(
            &Tensor::zeros((1, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
            None,
        )
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()[0] as f64;
    t.set_augment(Box::new(Scale::new(1e-9)));
    let report = t.cycle(&mut data()).unwrap();
    let softplus = |v: f64| v.exp().ln_1p();
    let expected = softplus(-l) + softplus(l);
    assert!(
        (report.d_loss - expected).abs() < 1e-5,
        "{} vs {expected}",
        report.d_loss
    );
}

#[test]
fn augmentation_state_resumes_exactly() {
    let mut straight = trainer(2);
    straight.set_augment(Box::new(Scale::new(0.9)));
    for _ in 0..6 {
        straight.cycle(&mut data()).unwrap();
    }
    let mut first = trainer(2);
    first.set_augment(Box::new(Scale::new(0.9)));
    for _ in 0..3 {
        first.cycle(&mut data()).unwrap();
    }
    let ckpt = first.checkpoint(MODEL).unwrap();
    assert!(ckpt.meta.augment.as_ref().unwrap()["p"].as_f64().unwrap() != 0.0);

    let mut resumed = trainer(2);
    resumed.set_augment(Box::new(Scale::new(0.9)));
    resumed.resume(&ckpt, MODEL).unwrap();
    for _ in 0..3 {
        resumed.cycle(&mut data()).unwrap();
    }
    assert_eq!(tensors(&straight), tensors(&resumed));
    assert_eq!(
        straight.checkpoint(MODEL).unwrap().meta,
        resumed.checkpoint(MODEL).unwrap().meta
    );
    // Resuming an augmented run without its augmentation is refused.
    let err = trainer(2).resume(&ckpt, MODEL).unwrap_err().to_string();
    assert!(err.contains("augmentation"), "{err}");
}

/// weight · Σ (G's output bias), counting its calls: its gradient on that bias is `weight`
/// everywhere, so when it dominates, Adam's first step moves every entry by −lr.
struct BiasSum {
    weight: f64,
    every: u64,
    calls: Arc<AtomicUsize>,
}

const OUTPUT_BIAS: &str = "module.15.bias";

fn output_bias(g: &MlpGenerator) -> Tensor {
    let params = g.parameters();
    let (_, var) = params.iter().find(|(n, _)| n == OUTPUT_BIAS).unwrap();
    var.as_tensor().clone()
}

impl GeneratorPenalty<MlpGenerator> for BiasSum {
    fn every(&self) -> u64 {
        self.every
    }

    fn penalty(
        &mut self,
        g: &mut MlpGenerator,
        _rng: &mut ChaCha8Rng,
        _batch: usize,
        _c: whichgan::train::Labels,
    ) -> Result<Tensor> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok((output_bias(g).sum_all()? * self.weight)?)
    }

    fn state(&self) -> serde_json::Value {
        serde_json::json!({ "calls": self.calls.load(Ordering::SeqCst) })
    }

    fn load_state(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

fn bias_values(t: &ToyTrainer) -> Vec<f32> {
    output_bias(t.g()).to_vec1().unwrap()
}

#[test]
fn generator_penalty_every_step_is_part_of_the_g_loss() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut t = trainer(1);
    t.set_generator_penalty(Box::new(BiasSum {
        weight: 1e6,
        every: 1,
        calls: calls.clone(),
    }));
    let before = bias_values(&t);
    t.cycle(&mut data()).unwrap();
    let after = bias_values(&t);
    // Adam's first step is lr · g / (|g| + ε): −lr per entry for a dominating positive g.
    for (b, a) in before.iter().zip(&after) {
        assert!(((a - b) + 2e-4).abs() < 1e-7, "{b} → {a}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(t.checkpoint(MODEL).unwrap().meta.adam_steps_g, 1);
}

#[test]
fn lazy_generator_penalty_is_a_separate_update_every_k_steps() {
    let calls = Arc::new(AtomicUsize::new(0));
    let mut t = trainer(1);
    t.set_generator_penalty(Box::new(BiasSum {
        weight: 1e6,
        every: 2,
        calls: calls.clone(),
    }));
    let mut plain = trainer(1);
    plain.cycle(&mut data()).unwrap();
    t.cycle(&mut data()).unwrap();
    // The G-loss update equals a plain run's; then the penalty's own update: Adam with
    // β1 = 0.5, β2 = 0.999 on a dominating gradient w after a first gradient g ≪ w moves by
    // lr/(1 − β1²) · (1 − β1) w / (√((1 − β2) w² / (1 − β2²)) + ε) ≈ lr · (2/3) · √(1 + β2).
    let step = 2e-4 * (2.0 / 3.0) * 1.999f64.sqrt();
    for (b, a) in bias_values(&plain).iter().zip(bias_values(&t)) {
        assert!(((a - b) as f64 + step).abs() < 1e-6, "{b} → {a}");
    }
    for _ in 0..5 {
        t.cycle(&mut data()).unwrap();
    }
    // At G steps 0, 2 and 4, each an extra Adam update of G.
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let meta = t.checkpoint(MODEL).unwrap().meta;
    assert_eq!(meta.g_penalty.unwrap()["calls"], 3);
    assert_eq!((meta.adam_steps_g, meta.adam_steps_d), (6 + 3, 6));
}

#[test]
fn lazy_r1_is_a_separate_d_update_every_k_steps() {
    for (every, extra) in [(1, 0), (4, 2)] {
        let config = playground_config(Loss::Vanilla, Penalty::R1 { gamma: 1.0, every }, 1);
        let mut t = new_trainer(config, 16, 4).unwrap();
        for _ in 0..8 {
            t.cycle(&mut data()).unwrap();
        }
        // Lazy: at D steps 0 and 4.
        assert_eq!(t.checkpoint(MODEL).unwrap().meta.adam_steps_d, 8 + extra);
    }
}

/// Each parameter's gradient, summed over `rounds` losses, each differentiated alone.
fn summed_gradients(net: &impl Network, rounds: &[Tensor]) -> Vec<(String, Vec<f32>)> {
    let mut sums: Vec<(String, Vec<f32>)> = Vec::new();
    for loss in rounds {
        let grads = loss.backward().unwrap();
        for (i, (name, var)) in net.parameters().into_iter().enumerate() {
            let g: Vec<f32> = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            match sums.get_mut(i) {
                Some((_, sum)) => sum.iter_mut().zip(&g).for_each(|(s, v)| *s += v),
                None => sums.push((name, g)),
            }
        }
    }
    sums
}

/// Adam's first moment after one update is (1 − β₁)·gradient: compares it with `expected`.
fn assert_first_moments(t: &ToyTrainer, opt: &str, expected: &[(String, Vec<f32>)]) {
    let ckpt = t.checkpoint(MODEL).unwrap();
    let beta1 = t.config().adam_d.beta1 as f32;
    for (name, grad) in expected {
        let m: Vec<f32> = ckpt.tensors[&format!("{opt}.m.{name}")]
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let scale = grad.iter().fold(1e-12f32, |a, v| a.max(v.abs()));
        for (got, g) in m.iter().zip(grad) {
            let want = (1.0 - beta1) * g;
            assert!(
                (got - want).abs() <= 1e-5 * scale,
                "{opt} {name}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn a_step_in_rounds_sums_the_gradients_of_each_rounds_mean_loss() {
    use whichgan::train::{standard_normal, GeneratorModel, Mode, RealData};
    let mut config = playground_config(Loss::Vanilla, Penalty::None, 1);
    config.batch_gpu = 16;
    let mut t = new_trainer(config, 16, 4).unwrap();
    let augment = Scale::new(1.0);
    let (observed, rows) = (augment.observed.clone(), augment.rows_seen.clone());
    t.set_augment(Box::new(augment));

    // The reference makes the same draws from the training stream (the D step's reals and
    // latents, then the G step's latents; the playground G draws nothing else) and
    // differentiates each round's mean loss alone: G's batch statistics see 16 samples.
    let mut rng = <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(4);
    let mut g = t.g().deep_copy().unwrap();
    let round = |x: &Tensor, i: usize| x.narrow(0, 16 * i, 16).unwrap();
    let reals = data().sample(&mut rng, 64).unwrap();
    let z = standard_normal(&mut rng, &[64, g.latent_dim()], &Device::Cpu).unwrap();
    let d_losses: Vec<Tensor> = (0..4)
        .map(|i| {
            let fake = g
                .forward(&round(&z, i), None, Mode::Train, &mut rng)
                .unwrap();
            let real = t.d().forward(&round(&reals, i), None).unwrap();
            let fake = t.d().forward(&fake.detach(), None).unwrap();
            Loss::Vanilla.discriminator(&real, &fake).unwrap()
        })
        .collect();
    let d_grads = summed_gradients(t.d(), &d_losses);

    t.cycle(&mut data()).unwrap();
    assert_first_moments(&t, "opt_D", &d_grads);
    // The G step ran against the updated D.
    let z = standard_normal(&mut rng, &[64, g.latent_dim()], &Device::Cpu).unwrap();
    let g_losses: Vec<Tensor> = (0..4)
        .map(|i| {
            let fake = g
                .forward(&round(&z, i), None, Mode::Train, &mut rng)
                .unwrap();
            Loss::Vanilla
                .generator(&t.d().forward_frozen(&fake, None).unwrap())
                .unwrap()
        })
        .collect();
    assert_first_moments(&t, "opt_G", &summed_gradients(&g, &g_losses));
    // ADA's place sees all of a step's real logits at once.
    assert_eq!(observed.load(Ordering::SeqCst), 1);
    assert_eq!(rows.load(Ordering::SeqCst), 64);
}

#[test]
fn a_batch_that_does_not_split_into_rounds_is_refused() {
    let mut config = playground_config(Loss::Vanilla, Penalty::None, 1);
    config.batch_gpu = 48;
    let err = new_trainer(config, 16, 4).err().unwrap().to_string();
    assert!(
        err.contains("batch 64 does not split into rounds of 48"),
        "{err}"
    );
}
