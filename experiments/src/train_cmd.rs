//! `whichgan train`: StyleGAN2-ADA training and fine-tuning.

use crate::device::parse_device;
use crate::report::Report;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use whichgan::run::stylegan2::settings::{
    DEFAULT_AUGPIPE, DEFAULT_CFG, DEFAULT_GRID, DEFAULT_SNAP_KIMG, DEFAULT_TARGET,
    DEFAULT_TICK_KIMG,
};
use whichgan::run::stylegan2::{train_run, AugKind, MetricOptions, RunOptions, TrainSettings};
use whichgan::stylegan2::presets::NAMES;
use whichgan::Result;

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    whichgan dataset synth --out shapes.zip --images 2000 --resolution 32\n  \
    whichgan train --data shapes.zip --out runs/shapes --cfg cifar --kimg 200\n  \
    whichgan train --data flowers.zip --out runs/flowers --cfg paper256 --mirror \\\n      \
    --resume imagenet-256-state.pt --freezed 4 --kimg 1000 --inception pt_inception.pth\n  \
    whichgan train --data flowers.zip --out runs/flowers --cfg paper256 --mirror \\\n      \
    --resume runs/flowers/network-snapshot-000200.safetensors --kimg 1000\n\n\
    --resume takes a snapshot in --out to continue that run exactly (with the same options), or\n\
    any other checkpoint (official/study .pt, safetensors with G./D./G_ema. tensors, a snapshot\n\
    of another run) to fine-tune from. Snapshots write network-snapshot-<kimg>.safetensors\n\
    (usable by generate, select, features), fakes<kimg>.png and a line of log.jsonl.")]
pub struct TrainArgs {
    /// Training images: a folder or a dataset .zip (square, one power-of-two size).
    #[arg(long)]
    data: PathBuf,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Configuration preset.
    #[arg(long, default_value = DEFAULT_CFG, value_parser = clap::builder::PossibleValuesParser::new(NAMES))]
    cfg: String,
    /// Training length in thousands of real images shown to D (default: the preset's).
    #[arg(long)]
    kimg: Option<f64>,
    /// Batch size (default: the preset's).
    #[arg(long)]
    batch: Option<usize>,
    /// Images per forward and backward pass; each batch runs in rounds of this many, their
    /// gradients summed, as train.py does per GPU (default: the preset's batch over its
    /// reference GPU count, e.g. 8 for paper256; with --batch, the batch).
    #[arg(long)]
    batch_gpu: Option<usize>,
    /// R1 weight γ (default: the preset's).
    #[arg(long)]
    gamma: Option<f64>,
    /// Add x-flipped copies of the images.
    #[arg(long)]
    mirror: bool,
    /// Train conditional networks on the dataset's class labels (dataset.json), as the
    /// official --cond=1; a conditional checkpoint fine-tunes only with it.
    #[arg(long)]
    cond: bool,
    /// Augmentation: ada (adaptive p), fixed (p stays at --p), noaug.
    #[arg(long, value_enum, default_value_t = AugArg::Ada)]
    aug: AugArg,
    /// Augmentation probability to start from (ada) or keep (fixed).
    #[arg(long, default_value_t = 0.0)]
    p: f64,
    /// ADA's target for E[sign D(real)].
    #[arg(long, default_value_t = DEFAULT_TARGET)]
    target: f64,
    /// Augmentation pipeline: blit, geom, color, bg, bgc.
    #[arg(long, default_value = DEFAULT_AUGPIPE)]
    augpipe: String,
    /// Freeze the first N discriminator layers (Freeze-D).
    #[arg(long, default_value_t = 0)]
    freezed: usize,
    /// Pretrained checkpoint to fine-tune from, or a snapshot of this run to continue.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Seed of the initialisation and of every random draw of training.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A log line every this many kimg.
    #[arg(long, default_value_t = DEFAULT_TICK_KIMG)]
    tick: f64,
    /// A snapshot every this many kimg (a multiple of --tick; the official --snap 50 counts
    /// ticks of 4 kimg: 200 kimg).
    #[arg(long, default_value_t = DEFAULT_SNAP_KIMG)]
    snap: f64,
    /// Images in each snapshot's grid.
    #[arg(long, default_value_t = DEFAULT_GRID)]
    grid: usize,
    /// FID Inception weights: FID, KID, precision and recall at each snapshot.
    #[arg(long)]
    inception: Option<PathBuf>,
    /// VGG16 weights for precision and recall (else Inception features).
    #[arg(long, requires = "inception")]
    vgg16: Option<PathBuf>,
    /// Generated images per snapshot evaluation.
    #[arg(long, default_value_t = 5000)]
    metrics_n: usize,
    /// Channel base of new networks (default: the preset's, 16384 or 32768).
    #[arg(long)]
    cbase: Option<usize>,
    /// Channel maximum of new networks.
    #[arg(long)]
    cmax: Option<usize>,
    /// Mapping layers of new networks.
    #[arg(long)]
    map: Option<usize>,
    /// z and w dimension of new networks.
    #[arg(long)]
    zdim: Option<usize>,
    /// Start over in a non-empty --out folder.
    #[arg(long)]
    overwrite: bool,
    /// cpu (cuda:N in a CUDA build)
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object on stdout instead of the human summary (and no progress bar).
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum AugArg {
    Ada,
    Fixed,
    Noaug,
}

impl TrainArgs {
    /// The flags as the library's run settings: what `train` and a study's runs share.
    fn settings(&self) -> TrainSettings {
        TrainSettings {
            cfg: Some(self.cfg.clone()),
            kimg: self.kimg,
            batch: self.batch,
            batch_gpu: self.batch_gpu,
            gamma: self.gamma,
            mirror: Some(self.mirror),
            cond: Some(self.cond),
            aug: Some(match self.aug {
                AugArg::Ada => AugKind::Ada,
                AugArg::Fixed => AugKind::Fixed,
                AugArg::Noaug => AugKind::Noaug,
            }),
            p: Some(self.p),
            target: Some(self.target),
            augpipe: Some(self.augpipe.clone()),
            freezed: Some(self.freezed),
            seed: Some(self.seed),
            tick: Some(self.tick),
            snap: Some(self.snap),
            grid: Some(self.grid),
            cbase: self.cbase,
            cmax: self.cmax,
            map: self.map,
            zdim: self.zdim,
        }
    }

    fn options(&self) -> Result<RunOptions> {
        let dataset = whichgan::dataset::ImageDataset::open(&self.data)?;
        let (w, _) = dataset.image_size(whichgan::dataset::Resize::None, false)?;
        let mut options =
            self.settings()
                .options(&self.data, w as usize, &self.out, self.resume.as_deref())?;
        options.metrics = self.inception.as_ref().map(|inception| MetricOptions {
            inception: inception.clone(),
            vgg16: self.vgg16.clone(),
            n: self.metrics_n,
        });
        options.device = parse_device(&self.device)?;
        options.progress = !self.json;
        options.overwrite = self.overwrite;
        Ok(options)
    }
}

pub fn run(args: TrainArgs) -> Result<()> {
    let opts = args.options()?;
    let summary = train_run(&opts)?;
    let mut report = Report::new()
        .with("kimg", summary.kimg)
        .with("g_steps", summary.g_steps)
        .with("last_snapshot", summary.last_snapshot.display().to_string())
        .with("log", opts.out.join("log.jsonl").display().to_string());
    if let Some(kimg) = summary.resumed_from_kimg {
        report = report.with("resumed_from_kimg", kimg);
    }
    if let Some(scores) = summary.last_scores {
        report = report.with(
            "scores",
            serde_json::to_value(scores).expect("scores serialise"),
        );
    }
    report.print(args.json);
    Ok(())
}
