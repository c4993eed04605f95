//! Every loss and the WGAN-GP penalty train the toy GAN without numerical trouble, and a start
//! from a checkpoint loads every tensor.

use whichgan::train::{Loss, Penalty, Trainer};
use whichgan_toy::train::{new_trainer, playground_config, DistributionData, MODEL};

fn data() -> DistributionData {
    whichgan::runtime::setup(whichgan::runtime::Parallelism::AcrossTasks);
    DistributionData {
        distribution: "circle:size=20,sigma=0.25".parse().unwrap(),
        device: candle_core::Device::Cpu,
    }
}

#[test]
fn every_loss_and_penalty_trains_finitely() {
    for loss in [Loss::Vanilla, Loss::Js, Loss::Wasserstein, Loss::Hinge] {
        for penalty in [Penalty::None, Penalty::WganGp { weight: 10.0 }] {
            let mut trainer = new_trainer(playground_config(loss, penalty, 2), 16, 1).unwrap();
            let mut source = data();
            for _ in 0..15 {
                let report = trainer.cycle(&mut source).unwrap();
                assert!(
                    report.d_loss.is_finite() && report.g_loss.is_finite(),
                    "{loss:?} {penalty:?}: {report:?}"
                );
            }
            // 2 D steps per G step, the first G step after the first D step.
            assert_eq!(trainer.g_steps(), 15);
            assert_eq!(trainer.d_steps(), 1 + 2 * 14);
        }
    }
}

#[test]
fn checkpoint_round_trip_restores_every_tensor() {
    let config = playground_config(Loss::Vanilla, Penalty::None, 4);
    let mut trainer = new_trainer(config.clone(), 16, 2).unwrap();
    let mut source = data();
    for _ in 0..5 {
        trainer.cycle(&mut source).unwrap();
    }
    let saved = trainer.checkpoint(MODEL).unwrap();
    let mut fresh: Trainer<_, _> = new_trainer(config, 16, 99).unwrap();
    fresh.resume(&saved, MODEL).unwrap();
    let again = fresh.checkpoint(MODEL).unwrap();
    assert_eq!(saved.meta, again.meta);
    assert_eq!(saved.tensors.len(), again.tensors.len());
    for (name, t) in &saved.tensors {
        let u = &again.tensors[name];
        let diff = (t - u).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{name}");
    }
    // Continuing both gives the same next step.
    let (a, b) = (
        trainer.cycle(&mut data()).unwrap(),
        fresh.cycle(&mut data()).unwrap(),
    );
    assert_eq!(a, b);
    // Another model's checkpoint is refused.
    assert!(fresh.resume(&saved, "other-model").is_err());
}

#[test]
fn detached_generator_pass_equals_the_recorded_one() {
    use candle_core::{Device, Tensor};
    use rand::SeedableRng;
    use whichgan::train::{GeneratorModel, Mode, Network};
    use whichgan_toy::nets::MlpGenerator;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let mut g = MlpGenerator::new(&mut rng, 16, &Device::Cpu).unwrap();
    let mut twin = g.deep_copy().unwrap();
    let z = Tensor::randn(0f32, 1.0, (32, 64), &Device::Cpu).unwrap();
    for mode in [Mode::Train, Mode::Train, Mode::Eval] {
        let a = g
            .forward(&z, None, mode, &mut rng)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let b = twin
            .forward_detached(&z, None, mode, &mut rng)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(a, b, "{mode:?}");
    }
    // Both updated the running statistics identically.
    for ((name, x), (_, y)) in g.buffers().into_iter().zip(twin.buffers()) {
        let (x, y) = (x.to_vec1::<f32>().unwrap(), y.to_vec1::<f32>().unwrap());
        assert_eq!(x, y, "{name}");
    }
}

#[test]
fn frozen_discriminator_gives_the_generator_the_same_gradients() {
    use candle_core::{Device, Tensor};
    use rand::SeedableRng;
    use whichgan::train::{DiscriminatorModel, GeneratorModel, Loss, Mode, Network};
    use whichgan_toy::nets::{MlpDiscriminator, MlpGenerator};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
    let mut g = MlpGenerator::new(&mut rng, 16, &Device::Cpu).unwrap();
    let d = MlpDiscriminator::new(&mut rng, 16, &Device::Cpu).unwrap();
    let z = Tensor::randn(0f32, 1.0, (32, 64), &Device::Cpu).unwrap();
    let mut grads = |frozen: bool, g: &mut MlpGenerator| {
        let fake = g.forward(&z, None, Mode::Eval, &mut rng).unwrap();
        let logits = if frozen {
            d.forward_frozen(&fake, None).unwrap()
        } else {
            d.forward(&fake, None).unwrap()
        };
        assert_eq!(
            logits.to_vec1::<f32>().unwrap(),
            d.forward(&fake, None).unwrap().to_vec1::<f32>().unwrap()
        );
        let store = Loss::Vanilla
            .generator(&logits)
            .unwrap()
            .backward()
            .unwrap();
        let frozen_d_has_grads = d
            .parameters()
            .iter()
            .any(|(_, v)| store.get(v.as_tensor()).is_some());
        assert_eq!(frozen_d_has_grads, !frozen);
        g.parameters()
            .iter()
            .map(|(_, v)| {
                store
                    .get(v.as_tensor())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(grads(true, &mut g), grads(false, &mut g));
}

#[test]
fn a_checkpoint_in_memory_does_not_follow_further_training() {
    let mut trainer =
        new_trainer(playground_config(Loss::Vanilla, Penalty::None, 1), 16, 3).unwrap();
    let mut source = data();
    trainer.cycle(&mut source).unwrap();
    let kept = trainer.checkpoint(MODEL).unwrap();
    let values = |ckpt: &whichgan::train::Checkpoint| -> Vec<(String, Vec<f32>)> {
        let mut v: Vec<(String, Vec<f32>)> = ckpt
            .tensors
            .iter()
            .map(|(n, t)| (n.clone(), t.flatten_all().unwrap().to_vec1().unwrap()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let before = values(&kept);
    for _ in 0..3 {
        trainer.cycle(&mut source).unwrap();
    }
    assert_eq!(before, values(&kept), "parameters are updated in place");
    assert_ne!(before, values(&trainer.checkpoint(MODEL).unwrap()));
}
