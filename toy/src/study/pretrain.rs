//! Pretraining G and D on a source.

use super::{derive_seed, probe, study_config, OnSchedule, Preset, Protocol, Role, Source, WIDTH};
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
    /// The sweep's checkpoints, when asked for: (label, checkpoint) for the labels 0,
    /// `checkpoint_every`, …, `pretrain_steps`, each taken after label + the protocol's offset
    /// G updates.
    pub snapshots: Vec<(u64, Checkpoint)>,
    /// Exact W1 of the final G to its source.
    pub w1: f64,
}

/// Trains the playground's GAN on `source` for the preset's pretraining budget; with
/// `snapshots`, keeps the sweep's checkpoints as `protocol` counts them (and makes the extra
/// update it implies).
pub fn pretrain(
    source: Source,
    seed: u64,
    preset: &Preset,
    snapshots: Option<Protocol>,
    bar: &ProgressBar,
) -> Result<Pretrained> {
    let run_seed = derive_seed(seed, Role::Pretrain(source));
    let mut trainer = new_trainer(study_config(), WIDTH, run_seed)?;
    let distribution = source.distribution();
    let offset = snapshots.map_or(0, Protocol::offset);
    let eval_at: Vec<u64> = match snapshots {
        Some(_) => preset
            .checkpoint_steps()
            .iter()
            .map(|s| s + offset)
            .collect(),
        None => Vec::new(),
    };
    let mut kept = Vec::new();
    if eval_at.first() == Some(&0) {
        kept.push((0, networks_only(trainer.checkpoint(MODEL)?)));
    }
    let mut hook = OnSchedule {
        eval_at: &eval_at,
        bar,
        on_eval: |t: &mut crate::train::ToyTrainer| {
            kept.push((t.g_steps() - offset, networks_only(t.checkpoint(MODEL)?)));
            Ok(())
        },
    };
    let mut data = DistributionData {
        distribution: distribution.clone(),
        device: Device::Cpu,
    };
    trainer.run(&mut data, preset.pretrain_steps + offset, &mut hook)?;
    let mut eval_rng = ChaCha8Rng::seed_from_u64(run_seed);
    eval_rng.set_stream(u64::MAX);
    let w1 = probe::w1(trainer.g_mut(), &distribution, &mut eval_rng)?;
    Ok(Pretrained {
        source,
        seed,
        last: trainer.checkpoint(MODEL)?,
        snapshots: kept,
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
/// checkpoint series is kept, as `protocol` counts them.
pub fn pretrain_all(
    pairs: &[(Source, u64)],
    snapshots_of: &[(Source, u64)],
    protocol: Protocol,
    preset: &Preset,
    bar: &ProgressBar,
) -> Result<Vec<Pretrained>> {
    bar.set_length(pairs.len() as u64 * preset.pretrain_steps);
    let runs = super::in_parallel(pairs, |&(source, seed)| {
        let snapshots = snapshots_of.contains(&(source, seed)).then_some(protocol);
        pretrain(source, seed, preset, snapshots, bar)
    })?;
    bar.finish_and_clear();
    Ok(runs)
}
