//! A StyleGAN2-ADA training run (`whichgan train`): the shared trainer with a preset's
//! settings, ADA and path-length regularisation; ticks logged as JSON lines; snapshots
//! (checkpoint, image grid, metrics); exact resume from any snapshot, or a fine-tune started
//! from a pretrained checkpoint (official/study `.pt`, safetensors).

use super::augment::{Ada, AugmentPipe, AugmentSpec};
use super::latents::latent_for_seed;
use super::presets::Preset;
use super::training::PathLength;
use super::weights::network_in;
use super::{Discriminator, Generator, NoiseMode, TrainingSet};
use crate::dataset::ImageDataset;
use crate::features::{Extraction, ExtractorKind, FeatureCache, ImageSource};
use crate::metrics::frechet::KidParams;
use crate::select::{score, FeatureSets, SourceScores};
use crate::train::{Checkpoint, EvalHook, Network, StepReport, Trainer};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Name of the model in checkpoints.
pub const MODEL: &str = "stylegan2";
/// The run's log: one JSON line per tick.
pub const LOG_FILE: &str = "log.jsonl";

pub type StyleGan2Trainer = Trainer<Generator, Discriminator>;

/// How D's inputs are augmented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AugMode {
    /// p adjusted towards E[sign D(real)] = `target`, a unit change in `speed_kimg` kimg.
    Ada { target: f64, speed_kimg: f64 },
    /// p fixed.
    Fixed,
    /// No augmentation.
    NoAug,
}

/// The augmentation of a run: mode, pipeline preset (`bgc`, …) and starting p.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugOptions {
    pub mode: AugMode,
    pub pipe: String,
    pub p: f64,
}

/// What a run trains and how: resuming needs all of it unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub preset: Preset,
    pub seed: u64,
    pub mirror: bool,
    pub aug: AugOptions,
    /// Discriminator layers frozen (Freeze-D).
    pub freezed: usize,
    /// The pretrained checkpoint the run started from, if any.
    pub start: Option<String>,
}

/// Metrics computed at each snapshot against the training set.
#[derive(Debug, Clone)]
pub struct MetricOptions {
    /// FID Inception weights (FID and KID; precision/recall too without VGG16).
    pub inception: PathBuf,
    /// VGG16 weights for precision and recall.
    pub vgg16: Option<PathBuf>,
    /// Generated images per evaluation.
    pub n: usize,
}

/// Everything `whichgan train` needs.
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
    /// A checkpoint of ours to continue exactly.
    pub resume: Option<PathBuf>,
    pub metrics: Option<MetricOptions>,
    /// Images in each snapshot's grid.
    pub grid: usize,
    pub device: Device,
    pub progress: bool,
    pub overwrite: bool,
}

/// Where the tick and snapshot schedule stands (kept in checkpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RunState {
    spec: RunSpec,
    next_tick: u64,
    next_snap: u64,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub kimg: f64,
    pub g_steps: u64,
    pub last_snapshot: PathBuf,
    pub resumed_from_kimg: Option<f64>,
    pub last_scores: Option<serde_json::Value>,
}

/// What `--resume` starts: a new run, the exact continuation of a snapshot of the run in the
/// output folder, or a fine-tune from any other checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// The snapshot to continue, when `--resume` names one of the run in the output folder.
    pub resume: Option<PathBuf>,
    /// The pretrained checkpoint the networks come from (that of the continued run, if any).
    pub pretrained: Option<String>,
}

impl RunStart {
    /// `resume` read against the output folder `out`: a snapshot of the run there continues
    /// it; any other file starts a fine-tune from it.
    pub fn new(resume: Option<&Path>, out: &Path) -> Result<Self> {
        let Some(path) = resume else {
            return Ok(RunStart {
                resume: None,
                pretrained: None,
            });
        };
        if let Some(pretrained) = snapshot_start(path, out) {
            return Ok(RunStart {
                resume: Some(path.to_owned()),
                pretrained,
            });
        }
        crate::io::check_readable_file(path)?;
        Ok(RunStart {
            resume: None,
            pretrained: Some(path.display().to_string()),
        })
    }

    /// The preset as the reference trains from pretrained networks: no EMA ramp-up.
    pub fn adjust(&self, preset: &mut Preset) {
        if self.pretrained.is_some() {
            preset.ema_rampup = None;
        }
    }

    /// ADA towards `target`: 500 kimg for a unit change of p, 100 from pretrained networks (as
    /// the reference does).
    pub fn ada(&self, target: f64) -> AugMode {
        let speed_kimg = if self.pretrained.is_some() {
            100.0
        } else {
            500.0
        };
        AugMode::Ada { target, speed_kimg }
    }
}

/// The pretrained checkpoint a snapshot's run started from, when `path` is a snapshot of the
/// run in `out` (`Some(None)`: trained from scratch); `None` for any other file.
fn snapshot_start(path: &Path, out: &Path) -> Option<Option<String>> {
    let folder = path.parent()?.canonicalize().ok()?;
    if out.canonicalize().ok()? != folder {
        return None;
    }
    let meta = Checkpoint::read_meta(path)?;
    let start = &meta.extra["spec"]["start"];
    Some(start.as_str().map(str::to_owned))
}

/// A fresh trainer for `spec` on images of `resolution` (from scratch, or from the networks of
/// the pretrained checkpoint `spec.start`), with ADA and path length set as the spec says.
pub fn new_trainer(spec: &RunSpec, resolution: usize, device: &Device) -> Result<StyleGan2Trainer> {
    let preset = &spec.preset;
    let (mut g, mut g_ema, mut d) = match &spec.start {
        None => {
            // The initialisation draws from its own stream, not the training stream.
            let mut init = ChaCha8Rng::seed_from_u64(spec.seed);
            init.set_stream(1);
            let arch = preset.architecture(resolution, 3);
            let g = arch.generator(&mut init, device)?;
            let d = arch.discriminator(&mut init, preset.mbstd_group, device)?;
            (g, None, d)
        }
        Some(path) => load_pretrained(Path::new(path), preset.mbstd_group, device)?,
    };
    if g.synthesis.resolution() != resolution || d.resolution != resolution {
        return Err(Error::invalid(format!(
            "G makes {0}×{0} images and D judges {1}×{1} ones; the dataset has {resolution}×{resolution}",
            g.synthesis.resolution(),
            d.resolution
        )));
    }
    for net in std::iter::once(&mut g).chain(g_ema.as_mut()) {
        net.synthesis.conv_clamp = preset.conv_clamp;
        net.style_mixing = preset.style_mixing;
    }
    d.conv_clamp = preset.conv_clamp;
    d.freeze(spec.freezed)?;
    // The trainer starts G_ema as a copy of G; a pretrained file's own G_ema replaces it.
    let mut trainer = Trainer::new(g, d, preset.train_config(), spec.seed, device)?;
    if let Some(g_ema) = g_ema {
        trainer.g_ema = g_ema;
    }
    trainer.clean_gradients();
    if preset.pl_weight > 0.0 {
        trainer.set_generator_penalty(Box::new(PathLength::official(preset.pl_weight)));
    }
    // Like the reference, no pipeline at a fixed p of 0: it would only draw random numbers.
    let augments = match spec.aug.mode {
        AugMode::NoAug => false,
        AugMode::Fixed => spec.aug.p > 0.0,
        AugMode::Ada { .. } => true,
    };
    if augments {
        let pipe = AugmentPipe::new(AugmentSpec::preset(&spec.aug.pipe)?, spec.aug.p as f32);
        let mut ada = Ada::new(pipe, matches!(spec.aug.mode, AugMode::Ada { .. }));
        if let AugMode::Ada { target, speed_kimg } = spec.aug.mode {
            ada.target = target;
            ada.speed_kimg = speed_kimg;
        }
        trainer.set_augment(Box::new(ada));
    }
    Ok(trainer)
}

/// G, G_ema (when the file has one) and D of a pretrained checkpoint; every tensor of the
/// file must find its place (the official fixed resampling filters aside).
fn load_pretrained(
    path: &Path,
    mbstd_group: usize,
    device: &Device,
) -> Result<(Generator, Option<Generator>, Discriminator)> {
    let all = crate::io::read_tensor_file(path, device)?;
    let g_weights = network_in(&all, path, "G")?;
    let g = Generator::load(&g_weights)?;
    let g_ema = match network_in(&all, path, "G_ema") {
        Ok(w) => {
            let g_ema = Generator::load(&w)?;
            check_all_used(path, "G_ema", w.names(), &g_ema)?;
            Some(g_ema)
        }
        Err(_) => None,
    };
    let d_weights = network_in(&all, path, "D")?;
    let d = Discriminator::load(&d_weights, mbstd_group)?;
    check_all_used(path, "G", g_weights.names(), &g)?;
    check_all_used(path, "D", d_weights.names(), &d)?;
    Ok((g, g_ema, d))
}

fn check_all_used<'a>(
    path: &Path,
    net: &str,
    names: impl Iterator<Item = &'a str>,
    model: &impl Network,
) -> Result<()> {
    let known: std::collections::HashSet<String> = model
        .parameters()
        .into_iter()
        .map(|(n, _)| n)
        .chain(model.buffers().into_iter().map(|(n, _)| n))
        .collect();
    let mut unused: Vec<&str> = names
        .filter(|n| !known.contains(*n) && !n.ends_with("resample_filter"))
        .collect();
    unused.sort_unstable();
    match unused.first() {
        None => Ok(()),
        Some(first) => Err(Error::in_file(
            path,
            format!(
                "{net} has {} tensor(s) this architecture does not use, e.g. '{first}' \
                 (a conditional or non-skip/resnet network?)",
                unused.len()
            ),
        )),
    }
}

/// The convolution clamp the run of snapshot `path` trained with (its preset's), so that
/// its G_ema is rebuilt as training ran it; `None` for any other checkpoint.
pub fn snapshot_conv_clamp(path: &Path) -> Option<f64> {
    let meta = Checkpoint::read_meta(path)?;
    if meta.model != MODEL {
        return None;
    }
    let state: RunState = serde_json::from_value(meta.extra).ok()?;
    state.spec.preset.conv_clamp
}

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

/// Trains (or resumes) a run; writes snapshots, grids, the log.
pub fn train_run(opts: &RunOptions) -> Result<RunSummary> {
    let dataset = ImageDataset::open(&opts.data)?;
    let tick = kimg_images(opts.tick_kimg, "--tick")?;
    let snap = kimg_images(opts.snap_kimg, "--snap")?;
    if snap % tick != 0 {
        return Err(Error::invalid(format!(
            "--snap {} is not a multiple of --tick {}",
            opts.snap_kimg, opts.tick_kimg
        )));
    }
    let preset = &opts.spec.preset;
    let (batch, round, group) = (preset.batch, preset.batch_gpu, preset.mbstd_group);
    if round == 0 || batch % round != 0 {
        return Err(Error::invalid(format!(
            "--batch {batch} does not split into rounds of --batch-gpu {round}; use a divisor \
             of {batch}"
        )));
    }
    if round % group.min(round).max(1) != 0 {
        return Err(Error::invalid(format!(
            "--batch-gpu {round} does not split into the discriminator's minibatch-std groups \
             of {group}; use a multiple of {group}"
        )));
    }
    if opts.grid == 0 {
        return Err(Error::invalid("--grid must be at least 1"));
    }
    let total_images = (opts.kimg * 1000.0).round() as u64;
    let total_steps = total_images.div_ceil(batch as u64);
    // Everything that can be refused (options, checkpoint, data, networks, metric weights) is
    // checked before the output folder is touched: a refused --overwrite keeps the old run.
    let resumed = match &opts.resume {
        Some(path) => Some(read_run_checkpoint(path, &opts.spec)?),
        None => None,
    };
    let bar = progress_bar(opts.progress, total_steps);
    bar.set_message(format!("loading {} images", dataset.len()));
    let mut data = TrainingSet::load(&dataset, opts.spec.mirror, &opts.device, |_| {})?;
    let mut trainer = new_trainer(&opts.spec, data.resolution(), &opts.device)?;
    if let Some((ckpt, _)) = &resumed {
        trainer.resume(ckpt, MODEL)?;
    }
    let extractors = match &opts.metrics {
        Some(m) => Some(Extractors::load(m, &opts.out, &opts.device)?),
        None => None,
    };
    prepare_out(&opts.out, resumed.is_some(), opts.overwrite)?;
    let log = opts.out.join(LOG_FILE);
    let (state, resumed_from_kimg) = match &resumed {
        Some((_, state)) => {
            let kimg = trainer.images_seen as f64 / 1000.0;
            crate::io::truncate_jsonl(&log, "kimg", kimg)?;
            (state.clone(), Some(kimg))
        }
        None => {
            if log.exists() {
                std::fs::remove_file(&log).map_err(|e| Error::io(&log, e))?;
            }
            let state = RunState {
                spec: opts.spec.clone(),
                next_tick: tick,
                next_snap: snap,
            };
            (state, None)
        }
    };
    let metrics = match extractors {
        Some(e) => Some(e.with_reals(&opts.data, &bar)?),
        None => None,
    };
    let grid = grid_latents(opts.grid, trainer.g.mapping.z_dim, &opts.device)?;
    if resumed.is_none() {
        let reals: Vec<usize> = (0..opts.grid.min(data.len())).collect();
        write_grid(&opts.out.join("reals.png"), &data.images(&reals)?)?;
        write_grid(
            &opts.out.join("fakes_init.png"),
            &grid_images(&trainer, &grid)?,
        )?;
    }
    let mut hook = RunHook {
        opts,
        state,
        tick,
        snap,
        total_steps,
        bar,
        metrics,
        grid,
        tick_timer: Instant::now(),
        tick_images: trainer.images_seen,
        losses: (0.0, 0.0, 0),
        last_snapshot: opts.resume.clone().unwrap_or_default(),
        last_scores: None,
    };
    hook.bar.set_position(trainer.g_steps);
    trainer.run(&mut data, total_steps, &mut hook)?;
    hook.bar.finish_and_clear();
    Ok(RunSummary {
        kimg: trainer.images_seen as f64 / 1000.0,
        g_steps: trainer.g_steps,
        last_snapshot: hook.last_snapshot,
        resumed_from_kimg,
        last_scores: hook.last_scores,
    })
}

fn kimg_images(kimg: f64, flag: &str) -> Result<u64> {
    let images = (kimg * 1000.0).round();
    if images.is_nan() || images < 1.0 {
        return Err(Error::invalid(format!(
            "{flag} {kimg}: needs at least 0.001 kimg"
        )));
    }
    Ok(images as u64)
}

/// A checkpoint of ours and its run state; its spec must equal this run's.
fn read_run_checkpoint(path: &Path, spec: &RunSpec) -> Result<(Checkpoint, RunState)> {
    let ckpt = Checkpoint::load(path, &Device::Cpu)?;
    if ckpt.meta.model != MODEL {
        return Err(Error::in_file(
            path,
            format!("a '{}' checkpoint, not a StyleGAN2 run", ckpt.meta.model),
        ));
    }
    let state: RunState = serde_json::from_value(ckpt.meta.extra.clone())
        .map_err(|e| Error::in_file(path, format!("unreadable run state: {e}")))?;
    if state.spec != *spec {
        return Err(Error::in_file(
            path,
            format!(
                "this run was trained with other settings: {}; resume with its settings",
                spec_differences(&state.spec, spec)
            ),
        ));
    }
    Ok((ckpt, state))
}

/// The settings in which `was` and `now` differ, by dotted name: a value changed, or a
/// setting one of them has and the other lacks (e.g. ADA's target when the mode changes).
fn spec_differences(was: &RunSpec, now: &RunSpec) -> String {
    let (was, now) = (to_flat(was), to_flat(now));
    let find = |list: &[(String, String)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    for (k, v) in &was {
        match find(&now, k) {
            Some(v2) if v2 == *v => {}
            Some(v2) => out.push(format!("{k} {v2} (the run used {v})")),
            None => out.push(format!("{k} unset (the run used {v})")),
        }
    }
    for (k, v) in &now {
        if find(&was, k).is_none() {
            out.push(format!("{k} {v} (the run had none)"));
        }
    }
    out.join(", ")
}

/// A JSON value's leaves as (dotted path, value).
fn to_flat(value: &impl Serialize) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            leaf => out.push((prefix.to_owned(), leaf.to_string())),
        }
    }
    let mut out = Vec::new();
    walk(
        "",
        &serde_json::to_value(value).expect("serialises"),
        &mut out,
    );
    out
}

/// An existing non-empty output folder needs a resume or `overwrite`.
fn prepare_out(out: &Path, resume: bool, overwrite: bool) -> Result<()> {
    let non_empty = crate::io::check_out_dir(
        out,
        resume || overwrite,
        "pass --resume SNAPSHOT to continue its run or --overwrite to start over in it",
    )?;
    if non_empty && overwrite && !resume {
        // Start over: the earlier run's snapshots and grids would mix with this run's.
        for entry in std::fs::read_dir(out).map_err(|e| Error::io(out, e))? {
            let path = entry.map_err(|e| Error::io(out, e))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with("network-snapshot-") || name.starts_with("fakes") {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
    }
    crate::io::create_writable_dir(out)
}

fn progress_bar(visible: bool, total_steps: u64) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} G steps  {msg}  [{elapsed} < {eta}]",
        )
        .expect("valid template"),
    );
    bar
}

/// Latents of the snapshot grid: seeds 0…n−1 as `whichgan generate` draws them.
fn grid_latents(n: usize, z_dim: usize, device: &Device) -> Result<Tensor> {
    let values: Vec<f32> = (0..n as u32)
        .flat_map(|seed| latent_for_seed(seed, z_dim))
        .collect();
    Ok(Tensor::from_vec(values, (n, z_dim), device)?)
}

/// G_ema's images of the grid latents (ψ = 1, stored noise), in batches.
fn grid_images(trainer: &StyleGan2Trainer, z: &Tensor) -> Result<Tensor> {
    let n = z.dim(0)?;
    let mut parts = Vec::new();
    for start in (0..n).step_by(8) {
        let chunk = z.narrow(0, start, 8.min(n - start))?;
        parts.push(
            trainer
                .g_ema
                .forward(&chunk, 1.0, NoiseMode::Const)?
                .detach(),
        );
    }
    Ok(Tensor::cat(&parts, 0)?)
}

fn write_grid(path: &Path, images: &Tensor) -> Result<()> {
    let (n, c, h, w) = images.dims4()?;
    let data = images.flatten_all()?.to_vec1::<f32>()?;
    crate::io::write_png_grid(path, [n, c, h, w], &data)
}

/// The feature extractors of a run's metrics, loaded before anything is written.
struct Extractors {
    inception: Extraction,
    vgg16: Option<Extraction>,
    n: usize,
}

impl Extractors {
    fn load(opts: &MetricOptions, out: &Path, device: &Device) -> Result<Self> {
        let cache = out.join("feature-cache");
        let extraction = |kind, weights: &Path| -> Result<Extraction> {
            let mut e = Extraction::new(kind, weights, device)?;
            e.cache = Some(FeatureCache::new(&cache));
            Ok(e)
        };
        let inception = extraction(ExtractorKind::Inception, &opts.inception)?;
        let vgg16 = match &opts.vgg16 {
            Some(w) => Some(extraction(ExtractorKind::Vgg16, w)?),
            None => None,
        };
        Ok(Extractors {
            inception,
            vgg16,
            n: opts.n,
        })
    }

    /// The metrics with the training set's features.
    fn with_reals(self, data: &Path, bar: &ProgressBar) -> Result<Metrics> {
        bar.set_message("features of the training set");
        let source = ImageSource::Data(data.to_owned());
        let hidden = ProgressBar::hidden();
        let real = self.feature_sets(&source, &hidden)?;
        Ok(Metrics {
            extractors: self,
            real,
        })
    }

    /// Inception features, and those precision and recall use (VGG16's when given).
    fn feature_sets(&self, source: &ImageSource, bar: &ProgressBar) -> Result<FeatureSets> {
        let inc = self.inception.features(source, bar)?.0.points()?;
        let pr = match &self.vgg16 {
            Some(e) => e.features(source, bar)?.0.points()?,
            None => inc.clone(),
        };
        Ok(FeatureSets {
            inception: Some(inc),
            pr: Some(pr),
        })
    }
}

/// Feature extractors and the training set's features, prepared once per run.
struct Metrics {
    extractors: Extractors,
    real: FeatureSets,
}

impl Metrics {
    /// FID, KID, precision and recall (k = 3) of the snapshot's G_ema against the reals.
    fn score(&self, snapshot: &Path) -> Result<SourceScores> {
        let source = ImageSource::Generator {
            checkpoint: snapshot.to_owned(),
            n: self.extractors.n,
        };
        let hidden = ProgressBar::hidden();
        let fake = self.extractors.feature_sets(&source, &hidden)?;
        score("G_ema", &self.real, &fake, 3, KidParams::default())
    }
}

/// Ticks, snapshots and the progress bar of a run.
struct RunHook<'a> {
    opts: &'a RunOptions,
    state: RunState,
    tick: u64,
    snap: u64,
    total_steps: u64,
    bar: ProgressBar,
    metrics: Option<Metrics>,
    grid: Tensor,
    tick_timer: Instant,
    tick_images: u64,
    /// D loss sum, G loss sum and G steps since the tick began.
    losses: (f64, f64, u64),
    last_snapshot: PathBuf,
    last_scores: Option<serde_json::Value>,
}

impl RunHook<'_> {
    fn tick_entry(&mut self, trainer: &StyleGan2Trainer) -> serde_json::Value {
        let seconds = self.tick_timer.elapsed().as_secs_f64();
        let kimg_done = (trainer.images_seen - self.tick_images) as f64 / 1000.0;
        let (d_sum, g_sum, steps) = self.losses;
        let mut entry = serde_json::json!({
            "kimg": trainer.images_seen as f64 / 1000.0,
            "g_steps": trainer.g_steps,
            "d_loss": d_sum / steps.max(1) as f64,
            "g_loss": g_sum / steps.max(1) as f64,
            "sec_per_tick": seconds,
            "sec_per_kimg": seconds / kimg_done.max(1e-9),
        });
        if let Some(aug) = trainer.augment_state() {
            entry["p"] = aug["p"].clone();
            entry["rt"] = aug["rt"].clone();
        }
        if let Some(pl) = trainer.generator_penalty_state() {
            entry["pl_mean"] = pl["pl_mean"].clone();
        }
        entry
    }

    fn snapshot(
        &mut self,
        trainer: &StyleGan2Trainer,
        entry: &mut serde_json::Value,
    ) -> Result<()> {
        let mut ckpt = trainer.checkpoint(MODEL)?;
        ckpt.meta.extra = serde_json::to_value(&self.state).expect("run state serialises");
        let name = snapshot_name(trainer.images_seen);
        let path = self.opts.out.join(&name);
        ckpt.save(&path)?;
        let grid = grid_images(trainer, &self.grid)?;
        let png = path.with_file_name(
            name.replace("network-snapshot-", "fakes")
                .replace(".safetensors", ".png"),
        );
        write_grid(&png, &grid)?;
        entry["snapshot"] = serde_json::json!(name);
        if let Some(metrics) = &self.metrics {
            self.bar.set_message("metrics");
            let s = metrics.score(&path)?;
            let scores = serde_json::json!({
                "fid": s.fid, "kid": s.kid, "precision": s.precision, "recall": s.recall,
            });
            for (k, v) in scores.as_object().expect("an object") {
                entry[k] = v.clone();
            }
            self.last_scores = Some(scores);
        }
        self.last_snapshot = path;
        Ok(())
    }
}

impl EvalHook<Generator, Discriminator> for RunHook<'_> {
    fn after_g_step(&mut self, trainer: &mut StyleGan2Trainer, report: &StepReport) -> Result<()> {
        if !(report.d_loss.is_finite() && report.g_loss.is_finite()) {
            return Err(Error::invalid(format!(
                "training diverged at kimg {:.3} (D loss {}, G loss {}); try a larger --gamma \
                 or a lower learning rate",
                trainer.images_seen as f64 / 1000.0,
                report.d_loss,
                report.g_loss
            )));
        }
        self.losses.0 += report.d_loss;
        self.losses.1 += report.g_loss;
        self.losses.2 += 1;
        let done = trainer.g_steps >= self.total_steps;
        let images = trainer.images_seen;
        self.bar.set_position(trainer.g_steps);
        if !(done || images >= self.state.next_tick) {
            return Ok(());
        }
        let mut entry = self.tick_entry(trainer);
        while self.state.next_tick <= images {
            self.state.next_tick += self.tick;
        }
        if done || images >= self.state.next_snap {
            while self.state.next_snap <= images {
                self.state.next_snap += self.snap;
            }
            self.snapshot(trainer, &mut entry)?;
        }
        crate::io::append_jsonl(&self.opts.out.join(LOG_FILE), &entry)?;
        self.bar.set_message(format!(
            "kimg {:.1}  D {:.3}  G {:.3}{}",
            images as f64 / 1000.0,
            entry["d_loss"].as_f64().unwrap_or(f64::NAN),
            entry["g_loss"].as_f64().unwrap_or(f64::NAN),
            entry["p"]
                .as_f64()
                .map_or(String::new(), |p| format!("  p {p:.3}")),
        ));
        self.losses = (0.0, 0.0, 0);
        self.tick_timer = Instant::now();
        self.tick_images = images;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: AugMode) -> RunSpec {
        RunSpec {
            preset: Preset::new("auto", 16).expect("a preset"),
            seed: 0,
            mirror: false,
            aug: AugOptions {
                mode,
                pipe: "bgc".into(),
                p: 0.0,
            },
            freezed: 0,
            start: None,
        }
    }

    #[test]
    fn spec_differences_name_changed_values_and_one_sided_settings() {
        let ada = spec(AugMode::Ada {
            target: 0.6,
            speed_kimg: 500.0,
        });
        let mut fixed = spec(AugMode::Fixed);
        fixed.seed = 3;
        assert_eq!(
            spec_differences(&ada, &fixed),
            "seed 3 (the run used 0), aug.mode.Ada.target unset (the run used 0.6), \
             aug.mode.Ada.speed_kimg unset (the run used 500.0), aug.mode \"Fixed\" (the run \
             had none)"
        );
        assert_eq!(spec_differences(&ada, &ada), "");
    }
}
