//! Toy GAN runs: the playground's MLPs trained on a 2-D distribution with the shared trainer,
//! evaluated by exact W1, with checkpoints that resume exactly.

use crate::distributions::Distribution;
use crate::nets::{MlpDiscriminator, MlpGenerator};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use whichgan::metrics::w1::wasserstein1;
use whichgan::plot::{self, Curve, Panel, Scatter, PALETTE};
use whichgan::run::state::{self, RunState};
use whichgan::run::{prepare_out, progress, Every, RunLog, Start};
use whichgan::train::{
    restore_network, AdamConfig, Checkpoint, Ema, EvalHook, GeneratorModel, Loss, Mode, Penalty,
    RealData, StepReport, TrainConfig, Trainer,
};
use whichgan::{Error, Points, Result};

/// Name of the model in checkpoints.
pub const MODEL: &str = "toy-mlp";
/// Samples on each side of every W1 evaluation (the playground's test size).
pub const EVAL_SAMPLES: usize = 2048;

pub type ToyTrainer = Trainer<MlpGenerator, MlpDiscriminator>;

/// The target distribution as the trainer's real data.
pub struct DistributionData {
    pub distribution: Distribution,
    pub device: Device,
}

impl RealData for DistributionData {
    fn sample(&mut self, rng: &mut ChaCha8Rng, batch: usize) -> Result<Tensor> {
        points_tensor(&self.distribution.sample(rng, batch), &self.device)
    }
}

/// [n, 2] f32 tensor of points.
pub fn points_tensor(points: &[[f64; 2]], device: &Device) -> Result<Tensor> {
    let flat: Vec<f32> = points
        .iter()
        .flat_map(|p| [p[0] as f32, p[1] as f32])
        .collect();
    Ok(Tensor::from_vec(flat, (points.len(), 2), device)?)
}

/// Points of an [n, 2] tensor.
fn tensor_points(t: &Tensor) -> Result<Vec<[f64; 2]>> {
    Ok(t.to_vec2::<f32>()?
        .into_iter()
        .map(|r| [r[0] as f64, r[1] as f64])
        .collect())
}

/// The playground's training settings, with the loss and penalty chosen.
pub fn playground_config(loss: Loss, penalty: Penalty, d_steps: usize) -> TrainConfig {
    TrainConfig {
        batch: 64,
        batch_gpu: 64,
        d_steps,
        loss,
        penalty,
        adam_g: AdamConfig::playground(),
        adam_d: AdamConfig::playground(),
        ema: Ema::Decay(0.99),
    }
}

/// A fresh toy trainer: networks of width `width` initialised from `seed`.
pub fn new_trainer(config: TrainConfig, width: usize, seed: u64) -> Result<ToyTrainer> {
    let device = Device::Cpu;
    // The initialisation draws from its own stream, so it does not shift the training stream.
    let mut init = ChaCha8Rng::seed_from_u64(seed);
    init.set_stream(1);
    let g = MlpGenerator::new(&mut init, width, &device)?;
    let d = MlpDiscriminator::new(&mut init, width, &device)?;
    Trainer::new(g, d, config, seed, &device)
}

/// Which parts of a pretrained checkpoint start a run.
#[derive(Debug, Clone, Default)]
pub struct Init {
    pub g: Option<PathBuf>,
    pub d: Option<PathBuf>,
}

impl Init {
    /// Loads G (into G and G-EMA) and D from their checkpoints; optimiser state starts fresh.
    pub fn apply(&self, trainer: &mut ToyTrainer) -> Result<()> {
        if let Some(path) = &self.g {
            let ckpt = load_toy_checkpoint(path)?;
            start_from(trainer, Some(&ckpt), None).map_err(|e| in_ckpt(path, e))?;
        }
        if let Some(path) = &self.d {
            let ckpt = load_toy_checkpoint(path)?;
            start_from(trainer, None, Some(&ckpt)).map_err(|e| in_ckpt(path, e))?;
        }
        Ok(())
    }
}

/// Starts a run from pretrained halves: G (into G and G-EMA) from `g`, D from `d`; a half
/// without a checkpoint keeps its fresh initialisation, the optimisers start fresh.
pub fn start_from(
    trainer: &mut ToyTrainer,
    g: Option<&Checkpoint>,
    d: Option<&Checkpoint>,
) -> Result<()> {
    if let Some(ckpt) = g {
        trainer.start_generator_from(ckpt, "G")?;
    }
    if let Some(ckpt) = d {
        trainer.start_discriminator_from(ckpt, "D")?;
    }
    Ok(())
}

fn in_ckpt(path: &Path, e: Error) -> Error {
    e.located_in(path)
}

/// Reads a checkpoint and checks it holds the toy model.
pub fn load_toy_checkpoint(path: &Path) -> Result<Checkpoint> {
    let ckpt = Checkpoint::load(path, &Device::Cpu)?;
    ckpt.expect_model(MODEL).map_err(|e| in_ckpt(path, e))?;
    Ok(ckpt)
}

/// G and D of a checkpoint (its width read from the first layer).
pub fn networks(ckpt: &Checkpoint) -> Result<(MlpGenerator, MlpDiscriminator)> {
    let width = ckpt.tensor("G.module.0.weight")?.dim(0)?;
    // The fresh initialisation is overwritten by the checkpoint.
    let mut init = ChaCha8Rng::seed_from_u64(0);
    let mut g = MlpGenerator::new(&mut init, width, &Device::Cpu)?;
    let mut d = MlpDiscriminator::new(&mut init, width, &Device::Cpu)?;
    restore_network(&mut g, ckpt, "G")?;
    restore_network(&mut d, ckpt, "D")?;
    Ok((g, d))
}

/// `n` samples of `g` in eval mode (running statistics), latents from `rng`.
pub fn sample_generator(
    g: &mut MlpGenerator,
    rng: &mut ChaCha8Rng,
    n: usize,
) -> Result<Vec<[f64; 2]>> {
    let z = whichgan::train::standard_normal(rng, &[n, g.latent_dim()], &Device::Cpu)?;
    tensor_points(&g.forward_detached(&z, None, Mode::Eval, rng)?)
}

/// Generator samples as [`Points`]; an error if any is non-finite (training diverged), which
/// the metrics would otherwise take as ordinary coordinates.
pub fn finite_points(samples: &[[f64; 2]]) -> Result<Points> {
    Points::new(samples.len(), 2, samples.concat()).map_err(|_| {
        Error::invalid("the generator produced non-finite samples (training diverged)")
    })
}

/// The run's JSONL log: one line per evaluation (G step, losses of that step, W1 of G and
/// G-EMA).
pub const LOG_FILE: &str = "log.jsonl";

/// One W1 evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct W1Point {
    pub g_step: u64,
    pub w1_g: f64,
    pub w1_g_ema: f64,
}

/// Exact W1 of G and G-EMA against the target at the trainer's current step. The samples come
/// from a stream fixed by (seed, step), so evaluating never changes the training trajectory.
pub fn evaluate(trainer: &mut ToyTrainer, target: &Distribution, seed: u64) -> Result<W1Point> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2 + trainer.g_steps());
    let real = target.sample(&mut rng, EVAL_SAMPLES);
    let flat_real: Vec<f64> = real.concat();
    let fake = sample_generator(trainer.g_mut(), &mut rng, EVAL_SAMPLES)?;
    let fake_ema = sample_generator(trainer.g_ema_mut(), &mut rng, EVAL_SAMPLES)?;
    Ok(W1Point {
        g_step: trainer.g_steps(),
        w1_g: wasserstein1(&flat_real, finite_points(&fake)?.as_slice(), 2),
        w1_g_ema: wasserstein1(&flat_real, finite_points(&fake_ema)?.as_slice(), 2),
    })
}

/// Evaluation and snapshot schedule of a toy run, and what it has recorded.
pub struct ToyHook<'a> {
    pub target: &'a Distribution,
    pub seed: u64,
    /// When to evaluate W1.
    pub eval: Every,
    /// When to write a numbered checkpoint.
    pub save: Every,
    pub out: &'a Path,
    pub log: RunLog,
    /// What the run trains on, kept in its checkpoints.
    pub identity: RunIdentity,
    pub history: Vec<W1Point>,
    pub progress: indicatif::ProgressBar,
}

/// One line of the log.
#[derive(Debug, Serialize)]
struct LogEntry {
    g_step: u64,
    d_loss: f64,
    g_loss: f64,
    w1_g: f64,
    w1_g_ema: f64,
}

/// What a run trains on and how it was seeded: a resumed run must keep all of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunIdentity {
    pub data: String,
    pub width: usize,
    pub seed: u64,
}

/// The toy run's own part of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ToyRunState {
    run: RunIdentity,
    w1: Vec<W1Point>,
}

impl RunState for ToyRunState {
    const MODEL: &'static str = MODEL;
    const FORMAT: u32 = 1;
}

impl ToyHook<'_> {
    pub fn checkpoint_dir(out: &Path) -> PathBuf {
        out.join("checkpoints")
    }

    /// The checkpoint `--resume` continues from.
    pub fn last_checkpoint(out: &Path) -> PathBuf {
        Self::checkpoint_dir(out).join("last.safetensors")
    }

    /// Writes the numbered checkpoint of this step and `last.safetensors`.
    fn save(&self, trainer: &ToyTrainer) -> Result<()> {
        let mut ckpt = trainer.checkpoint(MODEL)?;
        let run_state = ToyRunState {
            run: self.identity.clone(),
            w1: self.history.clone(),
        };
        state::store(&mut ckpt, &run_state);
        let dir = Self::checkpoint_dir(self.out);
        ckpt.save(&dir.join(format!("step-{:06}.safetensors", trainer.g_steps())))?;
        ckpt.save(&Self::last_checkpoint(self.out))
    }
}

impl EvalHook<MlpGenerator, MlpDiscriminator> for ToyHook<'_> {
    fn after_g_step(&mut self, trainer: &mut ToyTrainer, report: &StepReport) -> Result<()> {
        let step = trainer.g_steps();
        if self.eval.due(step) {
            let point = evaluate(trainer, self.target, self.seed)?;
            self.history.push(point);
            self.log.append(&LogEntry {
                g_step: step,
                d_loss: report.d_loss,
                g_loss: report.g_loss,
                w1_g: point.w1_g,
                w1_g_ema: point.w1_g_ema,
            })?;
            self.progress.set_message(format!("W1 {:.3}", point.w1_g));
        }
        self.progress.set_position(step);
        if step.is_multiple_of(50) {
            self.progress
                .set_prefix(format!("D {:.3} G {:.3}", report.d_loss, report.g_loss));
        }
        if self.save.due(step) {
            self.save(trainer)?;
        }
        Ok(())
    }
}

/// Everything `whichgan toy train` needs.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub data: Distribution,
    /// The spec `data` was parsed from, kept in checkpoints.
    pub data_spec: String,
    pub steps: u64,
    pub out: PathBuf,
    pub init: Init,
    pub config: TrainConfig,
    pub width: usize,
    pub seed: u64,
    pub save_every: u64,
    pub eval_every: u64,
    pub resume: bool,
    pub overwrite: bool,
    pub progress: bool,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub steps: u64,
    pub final_w1: Option<f64>,
    pub min_w1: Option<f64>,
    pub checkpoint: PathBuf,
    pub resumed_from: Option<u64>,
}

/// Trains (or resumes) a toy run and writes its checkpoints, W1 curve and log.
pub fn train_run(opts: &TrainOptions) -> Result<TrainSummary> {
    let mut trainer = new_trainer(opts.config.clone(), opts.width, opts.seed)?;
    let identity = RunIdentity {
        data: opts.data_spec.clone(),
        width: opts.width,
        seed: opts.seed,
    };
    let last = ToyHook::last_checkpoint(&opts.out);
    let mut history = Vec::new();
    let mut resumed_from = None;
    if opts.resume && !last.exists() {
        // A mistyped folder would otherwise quietly start a new run.
        return Err(Error::setting(
            "resume",
            None,
            format!(
                "{}: no run to continue (no checkpoints/last.safetensors); check the output \
                 folder, or start a new run",
                opts.out.display()
            ),
        ));
    }
    if opts.resume {
        let (ckpt, run_state) = state::load::<ToyRunState>(&last)?;
        if ckpt.meta.g_steps > opts.steps {
            return Err(Error::setting(
                "steps",
                Some(opts.steps.to_string()),
                format!(
                    "{}: the run is already at {} G steps; the step count is the run's total, \
                     so give at least that",
                    last.display(),
                    ckpt.meta.g_steps
                ),
            ));
        }
        trainer
            .resume(&ckpt, MODEL)
            .map_err(|e| in_ckpt(&last, e))?;
        if run_state.run != identity {
            return Err(Error::in_file(
                &last,
                format!(
                    "this run was trained on other settings: {}; resume with the run's \
                     settings, or start over with `overwrite`",
                    state::differences(&run_state.run, &identity)
                ),
            ));
        }
        history = run_state.w1;
        resumed_from = Some(trainer.g_steps());
    } else {
        // Validate inputs before touching the output folder.
        opts.init.apply(&mut trainer)?;
    }
    // What a run killed or diverged before its first checkpoint leaves holds nothing to keep.
    let replace = opts.overwrite || holds_no_checkpoint(&opts.out);
    prepare_out(
        &opts.out,
        Start::new(opts.resume, replace),
        &["checkpoints"],
        "`resume` to continue its run or `overwrite` to replace it",
    )?;
    let checkpoints = ToyHook::checkpoint_dir(&opts.out);
    whichgan::io::create_writable_dir(&checkpoints)?;
    whichgan::io::remove_stale_temporaries(&checkpoints)?;
    let log = RunLog::start(
        &opts.out.join(LOG_FILE),
        resumed_from.map(|step| ("g_step", step as f64)),
    )?;
    let progress = progress::steps(opts.progress, opts.steps, trainer.g_steps());
    let mut data = DistributionData {
        distribution: opts.data.clone(),
        device: trainer.device().clone(),
    };
    let mut hook = ToyHook {
        target: &opts.data,
        seed: opts.seed,
        eval: Every {
            every: opts.eval_every,
            last: opts.steps,
        },
        save: Every {
            every: opts.save_every,
            last: opts.steps,
        },
        out: &opts.out,
        log,
        identity,
        history,
        progress,
    };
    trainer.run(&mut data, opts.steps, &mut hook)?;
    hook.progress.finish_and_clear();
    write_w1_csv(&opts.out.join("w1.csv"), &hook.history)?;
    plot_w1_curve(&opts.out.join("w1"), &hook.history)?;
    plot_samples(
        &opts.out.join("samples"),
        &mut trainer,
        &opts.data,
        opts.seed,
    )?;
    Ok(TrainSummary {
        steps: trainer.g_steps(),
        final_w1: hook.history.last().map(|p| p.w1_g),
        min_w1: hook.history.iter().map(|p| p.w1_g).reduce(f64::min),
        checkpoint: last,
        resumed_from,
    })
}

/// Whether `out` holds only the start of a run that wrote no checkpoint: its log and a
/// `checkpoints` folder with at most the temporary files of an unfinished first write.
fn holds_no_checkpoint(out: &Path) -> bool {
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir).map_or(Vec::new(), |entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
    };
    let checkpoints = ToyHook::checkpoint_dir(out);
    names(out)
        .iter()
        .all(|name| name == LOG_FILE || out.join(name) == checkpoints)
        && names(&checkpoints)
            .iter()
            .all(|name| whichgan::io::is_temporary(name))
}

/// The W1 curve as CSV (`g_step,w1_g,w1_g_ema`), written atomically.
fn write_w1_csv(path: &Path, history: &[W1Point]) -> Result<()> {
    let rows: Vec<Vec<String>> = history
        .iter()
        .map(|p| {
            vec![
                p.g_step.to_string(),
                p.w1_g.to_string(),
                p.w1_g_ema.to_string(),
            ]
        })
        .collect();
    whichgan::io::write_csv(path, &["g_step", "w1_g", "w1_g_ema"], &rows)
}

/// The W1 curves of G and G-EMA (`<stem>.png`, `<stem>.svg`).
fn plot_w1_curve(stem: &Path, history: &[W1Point]) -> Result<()> {
    let g: Vec<(f64, f64)> = history.iter().map(|p| (p.g_step as f64, p.w1_g)).collect();
    let ema: Vec<(f64, f64)> = history
        .iter()
        .map(|p| (p.g_step as f64, p.w1_g_ema))
        .collect();
    let curves = [
        Curve {
            label: "G",
            points: &g,
            color: PALETTE[0],
        },
        Curve {
            label: "G-EMA",
            points: &ema,
            color: PALETTE[1],
        },
    ];
    plot::lines(
        stem,
        "Exact W1 to the target",
        "G step",
        "W1",
        &curves,
        false,
    )
    .map_err(|e| e.in_file(stem))
}

/// Samples of G and G-EMA over target samples, 2048 each (`<stem>.png`, `<stem>.svg`).
fn plot_samples(
    stem: &Path,
    trainer: &mut ToyTrainer,
    target: &Distribution,
    seed: u64,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(u64::MAX);
    let real = target.sample(&mut rng, EVAL_SAMPLES);
    let fake = sample_generator(trainer.g_mut(), &mut rng, EVAL_SAMPLES)?;
    let fake_ema = sample_generator(trainer.g_ema_mut(), &mut rng, EVAL_SAMPLES)?;
    let step = trainer.g_steps();
    let panels = [
        samples_panel(format!("G, G step {step}"), &real, &fake),
        samples_panel(format!("G-EMA, G step {step}"), &real, &fake_ema),
    ];
    plot::panels(stem, None, &panels, 2, 500).map_err(|e| e.in_file(stem))
}

fn samples_panel<'a>(title: String, real: &'a [[f64; 2]], fake: &'a [[f64; 2]]) -> Panel<'a> {
    Panel {
        title,
        scatters: vec![
            Scatter {
                label: "target",
                points: real,
                color: PALETTE[0],
                alpha: 0.25,
                size: 2,
            },
            Scatter {
                label: "generated",
                points: fake,
                color: PALETTE[1],
                alpha: 0.4,
                size: 2,
            },
        ],
        arrows: Vec::new(),
        limits: None,
        x_label: None,
        y_label: None,
    }
}
