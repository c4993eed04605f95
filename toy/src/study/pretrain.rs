//! Pretraining G and D on a source.

use super::{derive_seed, probe, study_config, OnSchedule, Preset, Role, Source, WIDTH};
use crate::train::{new_trainer, DistributionData, MODEL};
use candle_core::Device;
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use whichgan::train::Checkpoint;
use whichgan::Result;

/// A finished source run.
pub struct Pretrained {
    pub source: Source,
    pub seed: u64,
    /// The state after the last G step.
    pub last: Checkpoint,
    /// Checkpoints every `checkpoint_every` G steps from step 0 (the random initialisation),
    /// when asked for.
    pub snapshots: Vec<(u64, Checkpoint)>,
    /// Exact W1 of the final G to its source.
    pub w1: f64,
}

/// Trains the playground's GAN on `source` for the preset's pretraining budget.
pub fn pretrain(
    source: Source,
    seed: u64,
    preset: &Preset,
    keep_snapshots: bool,
    bar: &ProgressBar,
) -> Result<Pretrained> {
    let run_seed = derive_seed(seed, Role::Pretrain(source));
    let mut trainer = new_trainer(study_config(), WIDTH, run_seed)?;
    let distribution = source.distribution();
    let mut snapshots = Vec::new();
    if keep_snapshots {
        snapshots.push((0, networks_only(trainer.checkpoint(MODEL)?)));
    }
    let mut hook = OnSchedule {
        schedule: whichgan::run::Every {
            every: if keep_snapshots {
                preset.checkpoint_every
            } else {
                0
            },
            last: preset.pretrain_steps,
        },
        bar,
        on_eval: |t: &mut crate::train::ToyTrainer| {
            snapshots.push((t.g_steps(), networks_only(t.checkpoint(MODEL)?)));
            Ok(())
        },
    };
    let mut data = DistributionData {
        distribution: distribution.clone(),
        device: Device::Cpu,
    };
    trainer.run(&mut data, preset.pretrain_steps, &mut hook)?;
    let mut eval_rng = ChaCha8Rng::seed_from_u64(run_seed);
    eval_rng.set_stream(u64::MAX);
    let w1 = probe::w1(trainer.g_mut(), &distribution, &mut eval_rng)?;
    Ok(Pretrained {
        source,
        seed,
        last: trainer.checkpoint(MODEL)?,
        snapshots,
        w1,
    })
}

/// A checkpoint reduced to G and D (what a fine-tune starts from), to keep a long series of
/// them small in memory.
fn networks_only(mut ckpt: Checkpoint) -> Checkpoint {
    ckpt.tensors
        .retain(|name, _| name.starts_with("G.") || name.starts_with("D."));
    ckpt
}

/// Pretrains every (source, seed) pair in parallel; `snapshots_of` lists the pairs whose
/// checkpoint series is kept.
pub fn pretrain_all(
    pairs: &[(Source, u64)],
    snapshots_of: &[(Source, u64)],
    preset: &Preset,
    bar: &ProgressBar,
) -> Result<Vec<Pretrained>> {
    bar.set_length(pairs.len() as u64 * preset.pretrain_steps);
    let runs = super::in_parallel(pairs, |&(source, seed)| {
        pretrain(
            source,
            seed,
            preset,
            snapshots_of.contains(&(source, seed)),
            bar,
        )
    })?;
    bar.finish_and_clear();
    Ok(runs)
}
