//! A run's ticks and snapshots: a log line every tick; at each snapshot a checkpoint, an image
//! grid of G_ema and the metrics.

use super::metrics::{Metrics, Scores};
use super::spec::SnapshotState;
use super::{RunOptions, StyleGan2Trainer, MODEL};
use crate::run::{state, RunLog};
use crate::stylegan2::augment::AdaState;
use crate::stylegan2::sampling::{classes_in_turn, generate, seed_latents};
use crate::stylegan2::trainable::PathLengthState;
use crate::stylegan2::{Discriminator, Generator, NoiseMode};
use crate::train::{EvalHook, HookState, StepReport};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Images G_ema draws at a time for a grid.
const GRID_BATCH: usize = 8;

/// The snapshot file name for `images` shown: the reference's `network-snapshot-<kimg>`, with
/// the remainder in images when a snapshot falls inside a thousand.
pub fn snapshot_name(images: u64) -> String {
    match images % 1000 {
        0 => format!("network-snapshot-{:06}.safetensors", images / 1000),
        rest => format!(
            "network-snapshot-{:06}.{rest:03}.safetensors",
            images / 1000
        ),
    }
}

/// One line of the log.
#[derive(Debug, Serialize)]
struct TickEntry {
    kimg: f64,
    g_steps: u64,
    d_loss: f64,
    g_loss: f64,
    sec_per_tick: f64,
    sec_per_kimg: f64,
    /// ADA's probability and its overfitting heuristic, when the run augments.
    #[serde(skip_serializing_if = "Option::is_none")]
    p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rt: Option<f64>,
    /// The running mean path length, when the run regularises it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pl_mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    scores: Option<Scores>,
}

/// Latents of the snapshot grid: seeds 0…n−1 as `whichgan generate` draws them.
pub(super) fn grid_latents(n: usize, z_dim: usize, device: &Device) -> Result<Tensor> {
    let seeds: Vec<u32> = (0..n as u32).collect();
    seed_latents(&seeds, z_dim, device)
}

/// G_ema's images of the grid latents (ψ = 1, stored noise; a conditional G's classes in
/// turn).
pub(super) fn grid_images(g_ema: &Generator, z: &Tensor) -> Result<Tensor> {
    let labels = classes_in_turn(g_ema, z.dim(0)?, z.device())?;
    generate(g_ema, z, labels.as_ref(), 1.0, NoiseMode::Const, GRID_BATCH)
}

pub(super) fn write_grid(path: &Path, images: &Tensor) -> Result<()> {
    let (n, c, h, w) = images.dims4()?;
    let data = images.flatten_all()?.to_vec1::<f32>()?;
    crate::io::write_png_grid(path, [n, c, h, w], &data)
}

/// Ticks, snapshots and the progress bar of a run.
pub(super) struct RunHook<'a> {
    pub opts: &'a RunOptions,
    pub state: SnapshotState,
    /// The tick and snapshot intervals in images.
    pub tick: u64,
    pub snap: u64,
    pub total_steps: u64,
    pub log: RunLog,
    pub bar: ProgressBar,
    pub metrics: Option<Metrics>,
    pub grid: Tensor,
    pub tick_timer: Instant,
    pub tick_images: u64,
    /// D loss sum, G loss sum and G steps since the tick began.
    pub losses: (f64, f64, u64),
    pub last_snapshot: PathBuf,
    pub last_scores: Option<Scores>,
}

impl RunHook<'_> {
    fn tick_entry(&mut self, trainer: &StyleGan2Trainer) -> Result<TickEntry> {
        let seconds = self.tick_timer.elapsed().as_secs_f64();
        let images = trainer.images_seen();
        let kimg_done = (images - self.tick_images) as f64 / 1000.0;
        let (d_sum, g_sum, steps) = self.losses;
        let ada = trainer
            .augment_state()
            .map(|state| AdaState::read(&state))
            .transpose()?;
        let path_length = trainer
            .generator_penalty_state()
            .map(|state| PathLengthState::read(&state))
            .transpose()?;
        Ok(TickEntry {
            kimg: images as f64 / 1000.0,
            g_steps: trainer.g_steps(),
            d_loss: d_sum / steps.max(1) as f64,
            g_loss: g_sum / steps.max(1) as f64,
            sec_per_tick: seconds,
            sec_per_kimg: seconds / kimg_done.max(1e-9),
            p: ada.as_ref().map(|a| a.p),
            rt: ada.as_ref().map(|a| a.rt),
            pl_mean: path_length.map(|pl| pl.pl_mean),
            snapshot: None,
            scores: None,
        })
    }

    /// Writes the snapshot under a temporary name, its grid and its scores; returns (the
    /// temporary, the snapshot's name), for [`RunHook::after_g_step`] to rename once the log
    /// holds the tick.
    fn snapshot(
        &mut self,
        trainer: &StyleGan2Trainer,
        entry: &mut TickEntry,
    ) -> Result<(PathBuf, PathBuf)> {
        let mut ckpt = trainer.checkpoint(MODEL)?;
        state::store(&mut ckpt, &self.state);
        let name = snapshot_name(trainer.images_seen());
        let path = self.opts.out.join(&name);
        let pending = crate::io::temporary_beside(&path);
        ckpt.save(&pending)?;
        let grid = grid_images(trainer.g_ema(), &self.grid)?;
        let png = path.with_file_name(
            name.replace("network-snapshot-", "fakes")
                .replace(".safetensors", ".png"),
        );
        write_grid(&png, &grid)?;
        entry.snapshot = Some(name);
        if let Some(metrics) = &self.metrics {
            self.bar.set_message("metrics");
            let scores = metrics.score(&pending, self.state.spec.preset.conv_clamp)?;
            entry.scores = Some(scores);
            self.last_scores = Some(scores);
        }
        self.last_snapshot = path.clone();
        Ok((pending, path))
    }
}

impl EvalHook<Generator, Discriminator> for RunHook<'_> {
    fn after_g_step(&mut self, trainer: &mut StyleGan2Trainer, report: &StepReport) -> Result<()> {
        let images = trainer.images_seen();
        if !(report.d_loss.is_finite() && report.g_loss.is_finite()) {
            return Err(Error::invalid(format!(
                "training diverged at kimg {:.3} (D loss {}, G loss {}); try a larger \
                 `gamma` or a lower learning rate",
                images as f64 / 1000.0,
                report.d_loss,
                report.g_loss
            )));
        }
        self.losses.0 += report.d_loss;
        self.losses.1 += report.g_loss;
        self.losses.2 += 1;
        let done = trainer.g_steps() >= self.total_steps;
        self.bar.set_position(trainer.g_steps());
        if !(done || images >= self.state.next_tick) {
            return Ok(());
        }
        let mut entry = self.tick_entry(trainer)?;
        while self.state.next_tick <= images {
            self.state.next_tick += self.tick;
        }
        let mut snapshot = None;
        if done || images >= self.state.next_snap {
            while self.state.next_snap <= images {
                self.state.next_snap += self.snap;
            }
            snapshot = Some(self.snapshot(trainer, &mut entry)?);
        }
        self.log.append(&entry)?;
        // The snapshot takes its name only once the log holds its tick: a run killed in between
        // is resumed from the snapshot before, which cuts the log back to that one's tick.
        if let Some((pending, path)) = snapshot {
            std::fs::rename(&pending, &path).map_err(|e| Error::io(&path, e))?;
        }
        self.bar.set_message(format!(
            "kimg {:.1}  D {:.3}  G {:.3}{}",
            entry.kimg,
            entry.d_loss,
            entry.g_loss,
            entry.p.map_or(String::new(), |p| format!("  p {p:.3}")),
        ));
        self.losses = (0.0, 0.0, 0);
        self.tick_timer = Instant::now();
        self.tick_images = images;
        Ok(())
    }
}
