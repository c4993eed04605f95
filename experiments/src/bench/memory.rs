//! `whichgan bench memory`: the peak resident memory and the operation count of one StyleGAN2
//! training pass at a time — G forward, the main phases (G and D forward + backward), R1, path
//! length — on the generic operations (what a GPU runs), on the CPU kernels and, beside them,
//! in the official code on PyTorch CPU. Each pass runs in a process of its own (`bench
//! memory-pass`, or the reference script), which resets the kernel's high-water mark of its
//! resident memory after building the networks, runs the pass and reports the new mark.

use super::{official_kwargs, Bench};
use crate::report::Report;
use candle_core::{Device, Tensor};
use clap::ValueEnum;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;
use std::time::Instant;
use whichgan::stylegan2::presets::{Preset, R1_INTERVAL};
use whichgan::train::{DiscriminatorModel, GeneratorModel, GeneratorPenalty, Mode};
use whichgan::{Error, Result};

/// One training pass, as the official training loop's phases run it (one round, no
/// augmentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pass {
    /// G's forward pass alone, nothing recorded for gradients (sampling).
    GForward,
    /// `Gmain` then `Dmain`: G and D forward and backward.
    Main,
    /// `Dreg`: D's input gradient at the reals, then the backward pass through it.
    R1,
    /// `Greg`: the path-length penalty and the backward pass through it.
    PathLength,
}

/// The networks and batch of a measurement.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct MemorySetup {
    /// Official configuration preset of the networks.
    #[arg(long, default_value = "paper256")]
    pub(super) cfg: String,
    /// Image side.
    #[arg(long, default_value_t = 128)]
    pub(super) res: usize,
    /// Images in the pass.
    #[arg(long, default_value_t = 4, value_parser = crate::values::at_least_one)]
    pub(super) batch: usize,
    /// The preset's channel base instead (e.g. smaller networks for a quick check).
    #[arg(long)]
    pub(super) cbase: Option<usize>,
    /// The preset's channel maximum instead.
    #[arg(long)]
    pub(super) cmax: Option<usize>,
}

impl MemorySetup {
    /// The preset with the channel overrides; a preset without path length still has that
    /// pass measured, at weight 1.
    fn preset(&self) -> Result<Preset> {
        let mut preset = Preset::new(&self.cfg, self.res)?;
        preset.channel_base = self.cbase.unwrap_or(preset.channel_base);
        preset.channel_max = self.cmax.unwrap_or(preset.channel_max);
        preset.pl_weight = preset.pl_weight.max(1.0);
        Ok(preset)
    }

    /// The same setup as arguments of `bench memory-pass`.
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "--cfg".into(),
            self.cfg.clone(),
            "--res".into(),
            self.res.to_string(),
            "--batch".into(),
            self.batch.to_string(),
        ];
        for (flag, value) in [("--cbase", self.cbase), ("--cmax", self.cmax)] {
            if let Some(v) = value {
                args.extend([flag.to_owned(), v.to_string()]);
            }
        }
        args
    }
}

/// What one process measured of one pass.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Measured {
    /// Resident memory once the networks and inputs are made, MiB.
    pub(super) baseline_mib: f64,
    /// The high-water mark of resident memory during the pass, MiB.
    pub(super) peak_mib: f64,
    /// Tensor operations the pass ran: tensors made here, ATen operations dispatched there.
    pub(super) ops: u64,
    pub(super) seconds: f64,
}

impl Measured {
    /// What the pass added to the process's memory, MiB.
    fn above_baseline(&self) -> f64 {
        self.peak_mib - self.baseline_mib
    }
}

/// This process's resident memory and its high-water mark, MiB (Linux's `/proc`).
fn resident_mib() -> Result<(f64, f64)> {
    let path = Path::new("/proc/self/status");
    let status = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
            .ok_or_else(|| Error::in_file(path, format!("no {name}")))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Sets the high-water mark of resident memory to the current resident memory.
fn reset_peak() -> Result<()> {
    let path = Path::new("/proc/self/clear_refs");
    std::fs::write(path, "5").map_err(|e| Error::io(path, e))
}

/// The number of tensors made so far in this process: candle numbers every tensor it makes
/// (every operation's result, views included) from one counter.
fn tensors_made() -> Result<u64> {
    let id = format!(
        "{:?}",
        Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu)?.id()
    );
    id.trim_start_matches("TensorId(")
        .trim_end_matches(')')
        .parse()
        .map_err(|_| Error::invalid(format!("unexpected tensor id {id}")))
}

/// Runs `pass` once in this process and measures it (`bench memory-pass`).
pub(super) fn measure_pass(pass: Pass, setup: &MemorySetup) -> Result<Measured> {
    use whichgan::stylegan2::trainable::PathLength;
    let device = Device::Cpu;
    let preset = setup.preset()?;
    let mut init = ChaCha8Rng::seed_from_u64(0);
    let arch = preset.architecture(setup.res, 3);
    let mut g = arch.generator(&mut init, &device)?;
    let mut d = arch.discriminator(&mut init, preset.mbstd_group, &device)?;
    g.synthesis.conv_clamp = preset.conv_clamp;
    g.style_mixing = preset.style_mixing;
    d.conv_clamp = preset.conv_clamp;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let n = setup.batch;
    let normal = |rng: &mut ChaCha8Rng, shape: &[usize]| {
        whichgan::train::standard_normal(rng, shape, &device)
    };
    let z = normal(&mut rng, &[n, g.latent_dim()])?;
    let reals = normal(&mut rng, &[n, 3, setup.res, setup.res])?.clamp(-1f32, 1f32)?;
    let loss = preset.train_config().loss;
    let mut path_length = PathLength::official(preset.pl_weight);

    let baseline = resident_mib()?.0;
    reset_peak()?;
    let ops_before = tensors_made()?;
    let started = Instant::now();
    match pass {
        Pass::GForward => drop(g.forward_detached(&z, None, Mode::Train, &mut rng)?),
        Pass::Main => {
            let fake = GeneratorModel::forward(&mut g, &z, None, Mode::Train, &mut rng)?;
            let g_loss = loss.generator(&d.forward_frozen(&fake, None)?)?;
            drop(g_loss.backward()?);
            drop((fake, g_loss));
            // As the trainer's D round: the fakes' graph freed before the reals' is built.
            let fake = g.forward_detached(&z, None, Mode::Train, &mut rng)?;
            let fake_logits = DiscriminatorModel::forward(&d, &fake, None)?;
            drop(loss.discriminator_fake(&fake_logits)?.backward()?);
            drop((fake, fake_logits));
            let real_logits = DiscriminatorModel::forward(&d, &reals, None)?;
            drop(loss.discriminator_real(&real_logits)?.backward()?);
        }
        Pass::R1 => {
            let (_, grad) = d.forward_with_input_grad(&reals, None)?;
            let r1 = whichgan::train::r1(&grad, preset.gamma, R1_INTERVAL)?;
            drop(r1.backward()?);
        }
        Pass::PathLength => {
            let penalty = path_length.penalty(&mut g, &mut rng, n, None)?;
            drop(penalty.backward()?);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let ops = tensors_made()? - ops_before;
    Ok(Measured {
        baseline_mib: baseline,
        peak_mib: resident_mib()?.1,
        ops,
        seconds,
    })
}

impl Bench {
    /// Every pass in `passes`, on the generic operations, the CPU kernels and (with
    /// `official`) the official code: one report per pass, given to `emit` as it is made.
    pub(super) fn memory(
        &self,
        official: Option<&Path>,
        setup: &MemorySetup,
        passes: &[Pass],
        mut emit: impl FnMut(Report),
    ) -> Result<()> {
        let preset = setup.preset()?;
        let exe = std::env::current_exe().map_err(|e| Error::io(Path::new("whichgan"), e))?;
        for &pass in passes {
            let name = pass_name(pass);
            let ours = |generic: bool| -> Result<Measured> {
                let out = Command::new(&exe)
                    .args(["bench", "memory-pass", "--pass", &name])
                    .args(setup.args())
                    .env("WHICHGAN_GENERIC_OPS", if generic { "1" } else { "0" })
                    .output()
                    .map_err(|e| Error::io(&exe, e))?;
                child_result(&format!("bench memory-pass --pass {name}"), &out)
            };
            let (generic, kernels) = (ours(true)?, ours(false)?);
            let mut report = Report::new()
                .with("pass", name.clone())
                .with(
                    "setup",
                    format!(
                        "{} networks (channels {}–{}), {r}×{r}, batch {}, float32, CPU",
                        setup.cfg,
                        (preset.channel_base / setup.res).min(preset.channel_max),
                        preset.channel_max,
                        setup.batch,
                        r = setup.res
                    ),
                )
                .with("generic_peak_mib", generic.peak_mib)
                .with("generic_above_baseline_mib", generic.above_baseline())
                .with("generic_ops", generic.ops)
                .with("generic_seconds", generic.seconds)
                .with("kernels_peak_mib", kernels.peak_mib)
                .with("kernels_above_baseline_mib", kernels.above_baseline())
                .with("kernels_ops", kernels.ops)
                .with("kernels_seconds", kernels.seconds);
            if let Some(official) = official {
                let theirs = self.official_pass(official, &preset, setup, pass)?;
                report = report
                    .with("official_peak_mib", theirs.peak_mib)
                    .with("official_above_baseline_mib", theirs.above_baseline())
                    .with("official_ops", theirs.ops)
                    .with("official_seconds", theirs.seconds)
                    .with("generic_ratio", generic.peak_mib / theirs.peak_mib)
                    .with(
                        "generic_ratio_above_baseline",
                        generic.above_baseline() / theirs.above_baseline(),
                    )
                    .with("kernels_ratio", kernels.peak_mib / theirs.peak_mib);
            }
            emit(report);
        }
        Ok(())
    }

    /// The official code's measurement of `pass` (PyTorch CPU, its reference operations).
    fn official_pass(
        &self,
        official: &Path,
        preset: &Preset,
        setup: &MemorySetup,
        pass: Pass,
    ) -> Result<Measured> {
        let (g, d) = official_kwargs(preset, setup.res);
        let config = serde_json::json!({
            "G_kwargs": g, "D_kwargs": d, "batch": setup.batch, "pass": pass_name(pass),
            "gamma": preset.gamma, "pl_weight": preset.pl_weight,
            "style_mixing": preset.style_mixing,
        });
        let path = self
            .scripts
            .path()
            .join(format!("memory-{}.json", pass_name(pass)));
        std::fs::write(&path, config.to_string()).map_err(|e| Error::io(&path, e))?;
        let threads = rayon::current_num_threads().to_string();
        let value = self.python_json(
            "stylegan2_memory_torch.py",
            &[
                "--official".as_ref(),
                official.as_os_str(),
                "--config".as_ref(),
                path.as_os_str(),
                "--threads".as_ref(),
                threads.as_ref(),
            ],
            true,
        )?;
        serde_json::from_value(value)
            .map_err(|e| Error::invalid(format!("stylegan2_memory_torch.py: {e}")))
    }
}

fn pass_name(pass: Pass) -> String {
    pass.to_possible_value()
        .expect("every pass has a name")
        .get_name()
        .to_owned()
}

/// The measurement a child process printed (its last stdout line), or its error.
fn child_result(what: &str, out: &std::process::Output) -> Result<Measured> {
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::invalid(format!(
            "{what} failed: {}",
            stderr.lines().last().unwrap_or("no output")
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .map_err(|e| Error::invalid(format!("{what} printed no measurement ({e}): {line}")))
}
