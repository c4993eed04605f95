//! Figure 3: which checkpoint is a good start? The Source-I run's checkpoints (every
//! `checkpoint_every` G steps) are each measured — recall against the target, ∇D similarity —
//! and fine-tuned on the target; a checkpoint's score is the minimum W1 of its fine-tune. The
//! study correlates the measurements with the score over the checkpoints.
//!
//! The sweep can be split: `--shard i/N` runs every N-th fine-tune (starting at the i-th) and
//! writes `figure3-shard-i-of-N.{csv,json}`; [`merge`] joins the shards into the same files a
//! single run writes. Each shard repeats the (deterministic) Source-I pretraining, so shards need
//! nothing from each other.

use super::pretrain::{pretrain_all, Pretrained};
use super::probe::{self, CheckpointProbe};
use super::runs::find_source;
use super::{
    derive_seed, in_parallel, median, study_config, target, train_on_target, Preset, Role, Source,
    StudyOptions, WIDTH,
};
use crate::train::{networks, new_trainer, start_from, ToyTrainer};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use whichgan::io::{write_csv, Table};
use whichgan::metrics::stats::correlate;
use whichgan::plot::{self, ColoredPanel};
use whichgan::{Error, Result};

/// One slice of the sweep: fine-tunes number `index`, `index + count`, … in seed-then-step order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::setting(
                "shard",
                Some(format!("'{s}'")),
                "expected i/N with 0 ≤ i < N",
            )
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// One checkpoint of the sweep: its measurements and its fine-tune's W1 curve.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub seed: u64,
    /// G step of the Source-I run the checkpoint was taken at.
    pub checkpoint: u64,
    pub probe: CheckpointProbe,
    /// W1 of the fine-tune at each of the preset's evaluation steps.
    pub w1: Vec<f64>,
}

impl SweepRow {
    pub fn min_w1(&self) -> f64 {
        self.w1.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// What the sweep covers: the preset, the seeds, the evaluation steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepPlan {
    pub preset: String,
    pub seeds: Vec<u64>,
    pub checkpoints: Vec<u64>,
    pub eval_steps: Vec<u64>,
}

impl SweepPlan {
    pub fn new(opts: &StudyOptions) -> SweepPlan {
        let p = opts.preset;
        SweepPlan {
            preset: p.name.to_owned(),
            seeds: opts.seed_list(opts.seeds.unwrap_or(p.sweep_seeds)),
            checkpoints: p.checkpoint_steps(),
            eval_steps: Preset::eval_steps(p.sweep_steps, p.sweep_eval_every),
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
            .filter(|(i, _)| shard.is_none_or(|s| i % s.count == s.index))
            .map(|(_, t)| t)
            .collect()
    }

    fn header(&self) -> Vec<String> {
        let mut h: Vec<String> = [
            "seed",
            "checkpoint",
            "recall",
            "precision",
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
/// seeds they need, and returns their rows.
pub fn sweep(opts: &StudyOptions, plan: &SweepPlan, shard: Option<Shard>) -> Result<Vec<SweepRow>> {
    let tasks = plan.tasks_of(shard);
    let mut seeds: Vec<u64> = tasks.iter().map(|t| t.0).collect();
    seeds.dedup();
    let pairs: Vec<(Source, u64)> = seeds.iter().map(|&s| (Source::One, s)).collect();
    let bar = opts.bar("pretraining Source-I", 0);
    let sources = pretrain_all(&pairs, &pairs, opts.preset, &bar)?;
    fine_tunes(opts, &sources, &tasks)
}

/// The fine-tunes of `tasks` ((seed, checkpoint step) pairs), in parallel, from the checkpoint
/// series in `sources`.
pub fn fine_tunes(
    opts: &StudyOptions,
    sources: &[Pretrained],
    tasks: &[(u64, u64)],
) -> Result<Vec<SweepRow>> {
    let bar = opts.bar("checkpoint fine-tunes", 0);
    bar.set_length(tasks.len() as u64 * opts.preset.sweep_steps);
    let rows = in_parallel(tasks, |&(seed, step)| {
        fine_tune(sources, seed, step, opts.preset, &bar)
    })?;
    bar.finish_and_clear();
    Ok(rows)
}

/// Measures the Source-I checkpoint of `seed` at G step `step`, then fine-tunes it on the
/// target with fresh optimisers.
fn fine_tune(
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
    train_on_target(
        &mut trainer,
        preset.sweep_steps,
        preset.sweep_eval_every,
        bar,
        |t: &mut ToyTrainer| {
            // Streams 0 and 1 of the run seed are training and initialisation.
            let mut rng = ChaCha8Rng::seed_from_u64(run_seed);
            rng.set_stream(2 + t.g_steps());
            w1.push(probe::w1(t.g_mut(), &target, &mut rng)?);
            Ok(())
        },
    )?;
    Ok(SweepRow {
        seed,
        checkpoint: step,
        probe,
        w1,
    })
}

fn shard_stem(shard: Shard) -> String {
    format!("figure3-shard-{}-of-{}", shard.index, shard.count)
}

/// What a shard writes beside its rows, so that [`merge`] can check the shards fit together.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardInfo {
    plan: SweepPlan,
    shard: Shard,
}

/// Writes one shard's rows (`figure3-shard-i-of-N.csv`) and its description (`.json`).
pub fn write_shard(out: &Path, plan: &SweepPlan, shard: Shard, rows: &[SweepRow]) -> Result<()> {
    let stem = shard_stem(shard);
    write_rows(&out.join(format!("{stem}.csv")), plan, rows)?;
    let info = ShardInfo {
        plan: plan.clone(),
        shard,
    };
    let json = serde_json::to_string_pretty(&info).expect("shard info serialises");
    whichgan::io::write_atomic(&out.join(format!("{stem}.json")), json.as_bytes())
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
                p.recall.to_string(),
                p.precision.to_string(),
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
    let (recall, precision) = (col("recall")?, col("precision")?);
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
                grad_sim_notebook: notebook[i],
                grad_sim_descent: descent[i],
                grad_sim_samples: samples[i] as usize,
            },
            w1: w1.iter().map(|c| c[i]).collect(),
        })
        .collect())
}

/// Joins the shards found in `folders` (files `figure3-shard-*-of-*.json` and their `.csv`):
/// they must describe the same sweep and hold every shard exactly once.
pub fn merge(folders: &[PathBuf]) -> Result<(SweepPlan, Vec<SweepRow>)> {
    let mut found: Vec<(PathBuf, ShardInfo)> = Vec::new();
    for folder in folders {
        let entries = std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(folder, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("figure3-shard-") && name.ends_with(".json") {
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                let info: ShardInfo = serde_json::from_str(&text)
                    .map_err(|e| Error::in_file(&path, format!("not a shard description: {e}")))?;
                if info.shard.count == 0 || info.shard.index >= info.shard.count {
                    return Err(Error::in_file(&path, "shard index out of range"));
                }
                found.push((path, info));
            }
        }
    }
    let Some((first_path, first)) = found.first().cloned() else {
        let names: Vec<String> = folders.iter().map(|f| f.display().to_string()).collect();
        return Err(Error::invalid(format!(
            "no figure3-shard-*.json files in {}",
            names.join(", ")
        )));
    };
    let count = first.shard.count;
    let mut by_index: Vec<Option<PathBuf>> = vec![None; count];
    for (path, info) in &found {
        if info.plan != first.plan || info.shard.count != count {
            return Err(Error::in_file(
                path,
                format!(
                    "belongs to another sweep than {} (preset, seeds or shard count differ)",
                    first_path.display()
                ),
            ));
        }
        if let Some(other) = &by_index[info.shard.index] {
            return Err(Error::in_file(
                path,
                format!(
                    "shard {}/{count} is also in {}",
                    info.shard.index,
                    other.display()
                ),
            ));
        }
        by_index[info.shard.index] = Some(path.clone());
    }
    let missing: Vec<String> = (0..count)
        .filter(|&i| by_index[i].is_none())
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::invalid(format!(
            "missing shards: {}",
            missing.join(", ")
        )));
    }
    let mut rows = Vec::new();
    for (index, path) in by_index.into_iter().flatten().enumerate() {
        let csv = path.with_extension("csv");
        let shard_rows = read_rows(&csv, &first.plan)?;
        let got: Vec<(u64, u64)> = shard_rows.iter().map(|r| (r.seed, r.checkpoint)).collect();
        if got != first.plan.tasks_of(Some(Shard { index, count })) {
            return Err(Error::in_file(
                &csv,
                "its rows are not this shard's fine-tunes (edited or mixed files?)",
            ));
        }
        rows.extend(shard_rows);
    }
    rows.sort_by_key(|r| (r.seed, r.checkpoint));
    Ok((first.plan, rows))
}

/// One correlation of a checkpoint measurement with the fine-tunes' minimum W1.
#[derive(Debug, Clone, Serialize)]
pub struct Figure3Correlation {
    pub seed: u64,
    pub metric: &'static str,
    /// For ∇D similarity: `notebook` (+∇ₓL_G) or `descent` (∇ₓ log D).
    pub convention: &'static str,
    pub n: usize,
    pub pearson_r: f64,
    pub pearson_p: f64,
    pub pearson_ci95: (f64, f64),
    pub spearman_rho: f64,
    pub spearman_p: f64,
}

/// Spread of one correlation over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub metric: &'static str,
    pub convention: &'static str,
    pub min_r: f64,
    pub median_r: f64,
    pub max_r: f64,
    pub max_p: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure3Summary {
    pub checkpoints: usize,
    pub seeds: Vec<u64>,
    pub correlations: Vec<Figure3Correlation>,
    pub spread: Vec<Spread>,
    /// How the measurements move along the first seed's Source-I run.
    pub trend: Trend,
}

/// The first seed's first and last checkpoint, and how recall and ∇D similarity move together
/// along the run.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    pub first: CheckpointProbe,
    pub last: CheckpointProbe,
    /// Pearson r of recall and ∇D similarity (notebook sign) over the checkpoints.
    pub r_recall_grad_sim_notebook: f64,
}

type Measure = (&'static str, &'static str, fn(&SweepRow) -> f64);

/// The measurements correlated with the minimum W1.
const MEASURES: [Measure; 4] = [
    ("recall", "", |r| r.probe.recall),
    ("grad_sim", "notebook", |r| r.probe.grad_sim_notebook),
    ("grad_sim", "descent", |r| r.probe.grad_sim_descent),
    ("precision", "", |r| r.probe.precision),
];

/// Writes `figure3.csv`, `figure3-correlations.csv` and `figure3.png`/`.svg` (first seed).
pub fn write_results(out: &Path, plan: &SweepPlan, rows: &[SweepRow]) -> Result<Figure3Summary> {
    write_rows(&out.join("figure3.csv"), plan, rows)?;
    let mut correlations = Vec::new();
    for &seed in &plan.seeds {
        let seed_rows: Vec<&SweepRow> = rows.iter().filter(|r| r.seed == seed).collect();
        let min_w1: Vec<f64> = seed_rows.iter().map(|r| r.min_w1()).collect();
        for (metric, convention, get) in MEASURES {
            let x: Vec<f64> = seed_rows.iter().map(|r| get(r)).collect();
            let c = correlate(&x, &min_w1)
                .map_err(|e| Error::invalid(format!("{metric} vs min W1 (seed {seed}): {e}")))?;
            correlations.push(Figure3Correlation {
                seed,
                metric,
                convention,
                n: c.n,
                pearson_r: c.pearson_r,
                pearson_p: c.pearson_p,
                pearson_ci95: c.pearson_ci95,
                spearman_rho: c.spearman_rho,
                spearman_p: c.spearman_p,
            });
        }
    }
    let lines: Vec<Vec<String>> = correlations
        .iter()
        .map(|c| {
            vec![
                c.seed.to_string(),
                c.metric.to_string(),
                c.convention.to_string(),
                c.n.to_string(),
                c.pearson_r.to_string(),
                format!("{:e}", c.pearson_p),
                c.pearson_ci95.0.to_string(),
                c.pearson_ci95.1.to_string(),
                c.spearman_rho.to_string(),
                format!("{:e}", c.spearman_p),
            ]
        })
        .collect();
    write_csv(
        &out.join("figure3-correlations.csv"),
        &[
            "seed",
            "metric",
            "convention",
            "n",
            "pearson_r",
            "pearson_p",
            "pearson_ci95_lo",
            "pearson_ci95_hi",
            "spearman_rho",
            "spearman_p",
        ],
        &lines,
    )?;
    let spread = MEASURES
        .iter()
        .map(|&(metric, convention, _)| {
            let of: Vec<&Figure3Correlation> = correlations
                .iter()
                .filter(|c| c.metric == metric && c.convention == convention)
                .collect();
            let r: Vec<f64> = of.iter().map(|c| c.pearson_r).collect();
            Spread {
                metric,
                convention,
                min_r: r.iter().copied().fold(f64::INFINITY, f64::min),
                median_r: median(&r),
                max_r: r.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                max_p: of.iter().map(|c| c.pearson_p).fold(0.0, f64::max),
            }
        })
        .collect();
    draw(&out.join("figure3"), plan, rows, &correlations)?;
    let first_seed: Vec<&SweepRow> = rows.iter().filter(|r| r.seed == plan.seeds[0]).collect();
    let recall: Vec<f64> = first_seed.iter().map(|r| r.probe.recall).collect();
    let sim: Vec<f64> = first_seed
        .iter()
        .map(|r| r.probe.grad_sim_notebook)
        .collect();
    let trend = Trend {
        first: first_seed[0].probe,
        last: first_seed[first_seed.len() - 1].probe,
        r_recall_grad_sim_notebook: whichgan::metrics::stats::pearson(&recall, &sim)
            .map_or(f64::NAN, |(r, _)| r),
    };
    Ok(Figure3Summary {
        checkpoints: plan.checkpoints.len(),
        seeds: plan.seeds.clone(),
        correlations,
        spread,
        trend,
    })
}

/// The study's three panels for the first seed, coloured by minimum W1.
fn draw(
    stem: &Path,
    plan: &SweepPlan,
    rows: &[SweepRow],
    correlations: &[Figure3Correlation],
) -> Result<()> {
    let seed = plan.seeds[0];
    let rows: Vec<&SweepRow> = rows.iter().filter(|r| r.seed == seed).collect();
    let sim: Vec<f64> = rows.iter().map(|r| r.probe.grad_sim_notebook).collect();
    let recall: Vec<f64> = rows.iter().map(|r| r.probe.recall).collect();
    let w1: Vec<f64> = rows.iter().map(|r| r.min_w1()).collect();
    let r_of = |metric: &str, convention: &str| {
        correlations
            .iter()
            .find(|c| c.seed == seed && c.metric == metric && c.convention == convention)
            .map_or(f64::NAN, |c| c.pearson_r)
    };
    let sim_label = "∇D similarity (notebook sign, +∇ₓL_G)";
    let panels = [
        ColoredPanel {
            title: format!("recall vs ∇D similarity (seed {seed})"),
            x_label: sim_label,
            y_label: "recall",
            x: &sim,
            y: &recall,
        },
        ColoredPanel {
            title: format!("r = {:.3}", r_of("grad_sim", "notebook")),
            x_label: sim_label,
            y_label: "min W1 of the fine-tune",
            x: &sim,
            y: &w1,
        },
        ColoredPanel {
            title: format!("r = {:.3}", r_of("recall", "")),
            x_label: "recall",
            y_label: "min W1 of the fine-tune",
            x: &recall,
            y: &w1,
        },
    ];
    plot::colored_scatter(stem, &panels, &w1, "min W1", 480).map_err(|e| e.in_file(stem))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_the_sweep_round_robin() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        for bad in ["3/3", "0/0", "1", "a/b", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let plan = SweepPlan {
            preset: "fast".into(),
            seeds: vec![0, 1],
            checkpoints: vec![0, 50, 100],
            eval_steps: vec![0, 100],
        };
        let mut joined: Vec<(u64, u64)> = (0..4)
            .flat_map(|i| plan.tasks_of(Some(Shard { index: i, count: 4 })))
            .collect();
        joined.sort();
        assert_eq!(joined, plan.tasks_of(None));
        assert_eq!(
            plan.tasks_of(Some(Shard { index: 1, count: 4 })),
            [(0, 50), (1, 100)]
        );
    }
}
