//! A StyleGAN2-ADA training run (`whichgan train`): the shared trainer with a preset's
//! settings, ADA and path-length regularisation; ticks logged as JSON lines; snapshots
//! (checkpoint, image grid, metrics); exact resume from any snapshot, or a fine-tune started
//! from a pretrained checkpoint (official/study `.pt`, safetensors).
//!
//! - [`spec`]: what a run trains (its spec), what `--resume` starts, what snapshots keep;
//! - [`settings`]: the settings a user gives, and the run options they make;
//! - [`setup`]: the trainer a spec asks for;
//! - [`snapshots`]: ticks, snapshots and grids;
//! - [`metrics`]: FID, KID, precision and recall of each snapshot.

mod metrics;
pub mod settings;
mod setup;
mod snapshots;
mod spec;

pub(crate) use metrics::Extractors;
pub use metrics::{MetricOptions, Scores};
pub use settings::{AugKind, TrainSettings};
pub use setup::new_trainer;
pub use snapshots::snapshot_name;
pub use spec::{AugMode, AugOptions, RunSpec, RunStart, SnapshotState};

use super::{prepare_out, progress, RunLog, Start};
use crate::dataset::ImageDataset;
use crate::stylegan2::{Discriminator, Generator, TrainingSet};
use crate::train::Trainer;
use crate::{Error, Result};
use candle_core::Device;
use serde::Serialize;
use snapshots::{grid_images, grid_latents, write_grid, RunHook};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Name of the model in checkpoints.
pub const MODEL: &str = "stylegan2";
/// The run's log: one JSON line per tick.
pub const LOG_FILE: &str = "log.jsonl";

pub type StyleGan2Trainer = Trainer<Generator, Discriminator>;

/// Everything a StyleGAN2 run needs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub spec: RunSpec,
    pub data: PathBuf,
    pub out: PathBuf,
    /// Train until this many thousand real images have been shown to D.
    pub kimg: f64,
    /// A log line every this many kimg.
    pub tick_kimg: f64,
    /// A snapshot every this many kimg (a multiple of the tick), and at the end.
    pub snap_kimg: f64,
    /// A snapshot of this run to continue exactly.
    pub resume: Option<PathBuf>,
    pub metrics: Option<MetricOptions>,
    /// Images in each snapshot's grid.
    pub grid: usize,
    pub device: Device,
    pub progress: bool,
    pub overwrite: bool,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub kimg: f64,
    pub g_steps: u64,
    pub last_snapshot: PathBuf,
    pub resumed_from_kimg: Option<f64>,
    pub last_scores: Option<Scores>,
}

/// The run's intervals in images: (tick, snapshot).
fn intervals(opts: &RunOptions) -> Result<(u64, u64)> {
    let tick = kimg_images(opts.tick_kimg, "tick_kimg")?;
    let snap = kimg_images(opts.snap_kimg, "snap_kimg")?;
    if snap % tick != 0 {
        return Err(Error::setting(
            "snap_kimg",
            Some(opts.snap_kimg.to_string()),
            format!("not a multiple of `tick_kimg` {}", opts.tick_kimg),
        ));
    }
    Ok((tick, snap))
}

fn kimg_images(kimg: f64, setting: &'static str) -> Result<u64> {
    let images = (kimg * 1000.0).round();
    if images.is_nan() || images < 1.0 {
        return Err(Error::setting(
            setting,
            Some(kimg.to_string()),
            "needs at least 0.001 kimg",
        ));
    }
    Ok(images as u64)
}

/// The batch splits into rounds of `batch_gpu`, and those into D's minibatch-std groups.
fn check_rounds(batch: usize, round: usize, group: usize) -> Result<()> {
    if round == 0 || !batch.is_multiple_of(round) {
        return Err(Error::setting(
            "batch_gpu",
            Some(round.to_string()),
            format!(
                "`batch` {batch} does not split into rounds of this many images; use a divisor \
                 of {batch}"
            ),
        ));
    }
    if !round.is_multiple_of(group.min(round).max(1)) {
        return Err(Error::setting(
            "batch_gpu",
            Some(round.to_string()),
            format!(
                "does not split into the discriminator's minibatch-std groups of {group}; use a \
                 multiple of {group}"
            ),
        ));
    }
    Ok(())
}

/// Whether `out` holds only what a run writes before its first snapshot: its log, the grids
/// of the reals and the initial fakes, the feature cache, temporaries of unfinished writes.
fn holds_no_snapshot(out: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(out) else {
        return true;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .all(|name| {
            [LOG_FILE, "reals.png", "fakes_init.png", "feature-cache"].contains(&name.as_str())
                || crate::io::is_temporary(&name)
        })
}

/// Trains (or resumes) a run; writes snapshots, grids, the log.
pub fn train_run(opts: &RunOptions) -> Result<RunSummary> {
    let dataset = ImageDataset::open(&opts.data)?;
    let (tick, snap) = intervals(opts)?;
    let preset = &opts.spec.preset;
    check_rounds(preset.batch, preset.batch_gpu, preset.mbstd_group)?;
    if opts.grid == 0 {
        return Err(Error::setting("grid", None, "must be at least 1"));
    }
    let total_images = (opts.kimg * 1000.0).round() as u64;
    let total_steps = total_images.div_ceil(preset.batch as u64);
    // Everything that can be refused (options, checkpoint, data, networks, metric weights) is
    // checked before the output folder is touched: a refused overwrite keeps the old run.
    let resumed = match &opts.resume {
        Some(path) => Some(spec::read_snapshot(path, &opts.spec)?),
        None => None,
    };
    let bar = progress::steps(opts.progress, total_steps, 0);
    bar.set_message(format!("loading {} images", dataset.len()));
    let mut data = TrainingSet::load(&dataset, opts.spec.mirror, &opts.device, |_| {})?;
    if opts.spec.cond {
        data = data.with_labels(&dataset)?;
    }
    let mut trainer = new_trainer(&opts.spec, data.resolution(), data.classes(), &opts.device)?;
    if let Some((ckpt, _)) = &resumed {
        trainer.resume(ckpt, MODEL)?;
    }
    let extractors = match &opts.metrics {
        Some(m) => Some(metrics::Extractors::load(m, &opts.out, &opts.device)?),
        None => None,
    };
    // What a run killed before its first snapshot leaves holds nothing to keep.
    let replace = opts.overwrite || holds_no_snapshot(&opts.out);
    prepare_out(
        &opts.out,
        Start::new(resumed.is_some(), replace),
        &["network-snapshot-", "fakes"],
        "`resume` a snapshot to continue its run or `overwrite` to start over in it",
    )?;
    let resumed_from_kimg = resumed
        .as_ref()
        .map(|_| trainer.images_seen() as f64 / 1000.0);
    let log = RunLog::start(
        &opts.out.join(LOG_FILE),
        resumed_from_kimg.map(|kimg| ("kimg", kimg)),
    )?;
    let state = match &resumed {
        Some((_, state)) => state.clone(),
        None => SnapshotState {
            spec: opts.spec.clone(),
            next_tick: tick,
            next_snap: snap,
        },
    };
    let metrics = match extractors {
        Some(e) => Some(e.with_reals(&opts.data, &bar)?),
        None => None,
    };
    let grid = grid_latents(opts.grid, trainer.g().mapping.z_dim, &opts.device)?;
    if resumed.is_none() {
        let reals: Vec<usize> = (0..opts.grid.min(data.len())).collect();
        write_grid(&opts.out.join("reals.png"), &data.images(&reals)?)?;
        write_grid(
            &opts.out.join("fakes_init.png"),
            &grid_images(trainer.g_ema(), &grid)?,
        )?;
    }
    let mut hook = RunHook {
        opts,
        state,
        tick,
        snap,
        total_steps,
        log,
        bar,
        metrics,
        grid,
        tick_timer: Instant::now(),
        tick_images: trainer.images_seen(),
        losses: (0.0, 0.0, 0),
        last_snapshot: opts.resume.clone().unwrap_or_default(),
        last_scores: None,
    };
    hook.bar.set_position(trainer.g_steps());
    trainer.run(&mut data, total_steps, &mut hook)?;
    hook.bar.finish_and_clear();
    Ok(RunSummary {
        kimg: trainer.images_seen() as f64 / 1000.0,
        g_steps: trainer.g_steps(),
        last_snapshot: hook.last_snapshot,
        resumed_from_kimg,
        last_scores: hook.last_scores,
    })
}
