//! Figure 3: which checkpoint is a good start? The Source-I run's checkpoints (every
//! `checkpoint_every` G steps) are each measured — recall against the target, ∇D similarity —
//! and fine-tuned on the target; a checkpoint's score is the minimum W1 of its fine-tune. The
//! study correlates the measurements with the score over the checkpoints.
//!
//! The sweep can be split: `--shard i/N` runs every N-th fine-tune (starting at the i-th) and
//! writes `figure3-shard-i-of-N.{csv,json}`; [`merge`] joins the shards into the same files a
//! single run writes. Each shard repeats the (deterministic) Source-I pretraining, so shards need
//! nothing from each other.
//!
//! Files: this one holds the sweep (its plan, running the fine-tunes, the rows and their CSV
//! form); `shards` the `--shard` slices, their files and [`merge`]; `results` the correlations,
//! the summary and the figure.

mod results;
mod shards;

pub use results::{write_results, Figure3Correlation, Figure3Summary, Spread, Trend};
pub use shards::{merge, progress_dir, write_shard, Shard};

use super::pretrain::{pretrain_all, Pretrained};
use super::probe::{self, CheckpointProbe};
use super::runs::find_source;
use super::{
    derive_seed, in_parallel, study_config, target, train_on_target, Preset, Protocol, Role,
    Source, StudyOptions, WIDTH,
};
use crate::train::{networks, new_trainer, start_from, ToyTrainer};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use whichgan::io::{write_csv, Table};
use whichgan::{Error, Result};

/// One checkpoint of the sweep: its measurements and its fine-tune's W1 curve.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub seed: u64,
    /// Label of the checkpoint in the Source-I run (its G updates as the plan's protocol
    /// counts them).
    pub checkpoint: u64,
    pub probe: CheckpointProbe,
    /// W1 of the fine-tune at each of the plan's evaluation labels.
    pub w1: Vec<f64>,
}

impl SweepRow {
    pub fn min_w1(&self) -> f64 {
        self.w1.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// What the sweep covers: the preset, the seeds, the checkpoint and evaluation labels and how
/// they count G updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    pub preset: String,
    pub seeds: Vec<u64>,
    pub checkpoints: Vec<u64>,
    pub eval_steps: Vec<u64>,
    #[serde(default)]
    pub protocol: Protocol,
}

impl SweepPlan {
    pub fn new(opts: &StudyOptions) -> SweepPlan {
        let p = opts.preset;
        SweepPlan {
            preset: p.name.to_owned(),
            seeds: opts.seed_list(opts.seeds.unwrap_or(p.sweep_seeds)),
            checkpoints: p.checkpoint_steps(),
            eval_steps: Preset::eval_steps(p.sweep_steps, p.sweep_eval_every),
            protocol: opts.protocol,
        }
    }

    /// Every (seed, checkpoint) fine-tune, in seed-then-step order.
    fn tasks(&self) -> Vec<(u64, u64)> {
        self.seeds
            .iter()
            .flat_map(|&s| self.checkpoints.iter().map(move |&c| (s, c)))
            .collect()
    }

    /// The fine-tunes of one shard (all without one).
    pub fn tasks_of(&self, shard: Option<Shard>) -> Vec<(u64, u64)> {
        self.tasks()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| shard.is_none_or(|s| s.takes(*i)))
            .map(|(_, t)| t)
            .collect()
    }

    fn header(&self) -> Vec<String> {
        let mut h: Vec<String> = [
            "seed",
            "checkpoint",
            "checkpoint_updates",
            "recall",
            "precision",
            "recall_f32_expanded",
            "precision_f32_expanded",
            "grad_sim_notebook",
            "grad_sim_descent",
            "grad_sim_samples",
        ]
        .map(String::from)
        .to_vec();
        h.extend(self.eval_steps.iter().map(|s| format!("w1_step_{s}")));
        h.push("min_w1".into());
        h
    }
}

/// Runs the sweep's fine-tunes (all, or one shard's), after pretraining Source-I for the
/// seeds they need, and returns their rows. With `progress`, each finished fine-tune's row is
/// kept there (`<seed>-<step>.csv`, atomically), and those found there are not run again: a
/// killed or requeued shard goes on where it stopped.
pub fn sweep(
    opts: &StudyOptions,
    plan: &SweepPlan,
    shard: Option<Shard>,
    progress: Option<&Path>,
) -> Result<Vec<SweepRow>> {
    let tasks = plan.tasks_of(shard);
    let kept = |&(seed, step): &(u64, u64)| progress.map(|d| d.join(format!("{seed}-{step}.csv")));
    let mut found = Vec::new();
    for task in &tasks {
        match kept(task).filter(|p| p.is_file()) {
            Some(path) => found.push(Some(
                read_rows(&path, plan)?
                    .pop()
                    .ok_or_else(|| Error::in_file(&path, "holds no row"))?,
            )),
            None => found.push(None),
        }
    }
    let remaining: Vec<(u64, u64)> = tasks
        .iter()
        .zip(&found)
        .filter(|(_, row)| row.is_none())
        .map(|(t, _)| *t)
        .collect();
    let mut ran = Vec::new();
    if !remaining.is_empty() {
        if let Some(dir) = progress {
            whichgan::io::create_writable_dir(dir)?;
        }
        let mut seeds: Vec<u64> = remaining.iter().map(|t| t.0).collect();
        seeds.dedup();
        let pairs: Vec<(Source, u64)> = seeds.iter().map(|&s| (Source::One, s)).collect();
        let bar = opts.bar("pretraining Source-I", 0);
        let sources = pretrain_all(&pairs, &pairs, plan.protocol, opts.preset, &bar)?;
        ran = fine_tunes_kept(
            plan,
            opts,
            &sources,
            &remaining,
            &|task, row| match kept(task) {
                Some(path) => write_rows(&path, plan, std::slice::from_ref(row)),
                None => Ok(()),
            },
        )?;
    }
    let mut ran = ran.into_iter();
    Ok(found
        .into_iter()
        .map(|row| row.unwrap_or_else(|| ran.next().expect("one row per remaining task")))
        .collect())
}

/// The fine-tunes of `tasks` ((seed, checkpoint label) pairs), in parallel, from the
/// checkpoint series in `sources`.
pub fn fine_tunes(
    plan: &SweepPlan,
    opts: &StudyOptions,
    sources: &[Pretrained],
    tasks: &[(u64, u64)],
) -> Result<Vec<SweepRow>> {
    fine_tunes_kept(plan, opts, sources, tasks, &|_, _| Ok(()))
}

/// What is done with each fine-tune's row as soon as it ends: (task, row).
type KeepRow<'a> = &'a (dyn Fn(&(u64, u64), &SweepRow) -> Result<()> + Sync);

/// [`fine_tunes`], handing each row to `keep` as soon as its fine-tune ends.
fn fine_tunes_kept(
    plan: &SweepPlan,
    opts: &StudyOptions,
    sources: &[Pretrained],
    tasks: &[(u64, u64)],
    keep: KeepRow,
) -> Result<Vec<SweepRow>> {
    let bar = opts.bar("checkpoint fine-tunes", 0);
    bar.set_length(tasks.len() as u64 * (opts.preset.sweep_steps + plan.protocol.offset()));
    let rows = in_parallel(tasks, |task| {
        let row = fine_tune(plan, sources, task.0, task.1, opts.preset, &bar)?;
        keep(task, &row)?;
        Ok(row)
    })?;
    bar.finish_and_clear();
    Ok(rows)
}

/// Measures the Source-I checkpoint of `seed` labelled `step`, then fine-tunes it on the
/// target with fresh optimisers, measuring W1 at the plan's evaluation labels.
fn fine_tune(
    plan: &SweepPlan,
    sources: &[Pretrained],
    seed: u64,
    step: u64,
    preset: &Preset,
    bar: &ProgressBar,
) -> Result<SweepRow> {
    let run = find_source(sources, Source::One, seed)?;
    let ckpt = &run
        .snapshots
        .iter()
        .find(|(s, _)| *s == step)
        .ok_or_else(|| Error::invalid(format!("no Source-I checkpoint at G step {step}")))?
        .1;
    let target = target();
    let (mut g, d) = networks(ckpt)?;
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, Role::SweepProbe(step)));
    let probe = probe::checkpoint_probe(&mut g, &d, &target, &mut rng, preset.sweep_samples)?;

    let run_seed = derive_seed(seed, Role::SweepFinetune(step));
    let mut trainer = new_trainer(study_config(), WIDTH, run_seed)?;
    start_from(&mut trainer, Some(ckpt), Some(ckpt))?;
    let mut w1 = Vec::new();
    let offset = plan.protocol.offset();
    let eval_at: Vec<u64> = plan.eval_steps.iter().map(|s| s + offset).collect();
    train_on_target(&mut trainer, &eval_at, bar, |t: &mut ToyTrainer| {
        // Streams 0 and 1 of the run seed are training and initialisation.
        let mut rng = ChaCha8Rng::seed_from_u64(run_seed);
        rng.set_stream(2 + t.g_steps());
        w1.push(probe::w1(t.g_mut(), &target, &mut rng)?);
        Ok(())
    })?;
    Ok(SweepRow {
        seed,
        checkpoint: step,
        probe,
        w1,
    })
}

fn write_rows(path: &Path, plan: &SweepPlan, rows: &[SweepRow]) -> Result<()> {
    let header = plan.header();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let p = &r.probe;
            let mut cells = vec![
                r.seed.to_string(),
                r.checkpoint.to_string(),
                (r.checkpoint + plan.protocol.offset()).to_string(),
                p.recall.to_string(),
                p.precision.to_string(),
                p.recall_f32_expanded.to_string(),
                p.precision_f32_expanded.to_string(),
                p.grad_sim_notebook.to_string(),
                p.grad_sim_descent.to_string(),
                p.grad_sim_samples.to_string(),
            ];
            cells.extend(r.w1.iter().map(f64::to_string));
            cells.push(r.min_w1().to_string());
            cells
        })
        .collect();
    write_csv(path, &header, &lines)
}

/// Reads rows written by [`write_rows`] for `plan`.
fn read_rows(path: &Path, plan: &SweepPlan) -> Result<Vec<SweepRow>> {
    let table = Table::read(path)?;
    if table.columns() != plan.header().as_slice() {
        return Err(Error::in_file(
            path,
            "columns differ from the sweep's (another preset or an edited file?)",
        ));
    }
    let col = |name: &str| table.numeric_column(name);
    let integers = |name: &str| -> Result<Vec<u64>> {
        table
            .text_column(name)?
            .iter()
            .map(|v| {
                v.parse().map_err(|_| {
                    Error::in_file(
                        path,
                        format!("'{v}' in column {name} is not a whole number"),
                    )
                })
            })
            .collect()
    };
    let (seed, checkpoint) = (integers("seed")?, integers("checkpoint")?);
    let (updates, offset) = (integers("checkpoint_updates")?, plan.protocol.offset());
    if let Some(i) = (0..table.len()).find(|&i| updates[i] != checkpoint[i] + offset) {
        return Err(Error::in_file(
            path,
            format!(
                "row {} was counted by another protocol than '{}' (checkpoint_updates)",
                i + 1,
                plan.protocol.name()
            ),
        ));
    }
    let (recall, precision) = (col("recall")?, col("precision")?);
    let (recall_f32, precision_f32) = (col("recall_f32_expanded")?, col("precision_f32_expanded")?);
    let (notebook, descent, samples) = (
        col("grad_sim_notebook")?,
        col("grad_sim_descent")?,
        col("grad_sim_samples")?,
    );
    let w1: Vec<Vec<f64>> = plan
        .eval_steps
        .iter()
        .map(|s| col(&format!("w1_step_{s}")))
        .collect::<Result<_>>()?;
    Ok((0..table.len())
        .map(|i| SweepRow {
            seed: seed[i],
            checkpoint: checkpoint[i],
            probe: CheckpointProbe {
                recall: recall[i],
                precision: precision[i],
                recall_f32_expanded: recall_f32[i],
                precision_f32_expanded: precision_f32[i],
                grad_sim_notebook: notebook[i],
                grad_sim_descent: descent[i],
                grad_sim_samples: samples[i] as usize,
            },
            w1: w1.iter().map(|c| c[i]).collect(),
        })
        .collect())
}
