//! `whichgan bench`: times this project and the public reference implementations (POT, prdc,
//! the playground's torch code, numpy, pytorch-fid, the official StyleGAN2-ADA code) on the
//! same inputs, in one run, and reports the ratios. The reference scripts are embedded in the
//! binary.
//!
//! Files: this one holds the command line, its dispatch and the harness shared by the
//! benchmarks (the reference scripts in a temporary folder, running them, timing); then one
//! file per benchmark: `metrics`, `toy`, `stylegan2`, `train`, `memory`, `features`.

mod features;
mod memory;
mod metrics;
mod stylegan2;
mod toy;
mod train;

use crate::device::parse_device;
use crate::values::at_least_one;
use candle_core::Device;
use clap::{Args, Subcommand};
use memory::{MemorySetup, Pass};
use metrics::MetricBench;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use stylegan2::{check_fixture, Networks};
use train::TrainBench;
use whichgan::{Error, Result};

const MAKE_DATA: &str = include_str!("../../bench/make_data.py");
const REF_W1: &str = include_str!("../../bench/ref_w1.py");
const REF_PRDC: &str = include_str!("../../bench/ref_prdc.py");
const REF_FID: &str = include_str!("../../bench/ref_fid.py");
const TOY_TORCH: &str = include_str!("../../bench/toy_torch.py");
const STYLEGAN2_TORCH: &str = include_str!("../../bench/stylegan2_torch.py");
const INCEPTION_TORCH: &str = include_str!("../../bench/inception_torch.py");
const STYLEGAN2_TRAIN_TORCH: &str = include_str!("../../bench/stylegan2_train_torch.py");
const OFFICIAL_PLUGINS: &str = include_str!("../../bench/official_plugins.py");
const STYLEGAN2_MEMORY_TORCH: &str = include_str!("../../bench/stylegan2_memory_torch.py");

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// W1, precision/recall/density/coverage and FID against POT, prdc, torch and pytorch-fid.
    #[command(after_help = "Set-up of the reference side (once):\n  \
        python3 -m venv .bench-venv\n  \
        .bench-venv/bin/pip install numpy scipy pot prdc pytorch-fid torch\n\n\
        Example:\n  whichgan bench metrics --only w1 --json")]
    Metrics {
        /// Python interpreter that has numpy, scipy, POT, prdc, torch and pytorch-fid.
        #[arg(long, default_value = ".bench-venv/bin/python")]
        python: PathBuf,
        /// Folder of the benchmark inputs (generated there by the reference generator if absent).
        #[arg(long, default_value = ".bench-data")]
        data: PathBuf,
        /// Timed repetitions for the fast cases (the heavy ones run once after a warm-up).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Run only these benchmarks (comma-separated; default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<MetricBench>,
        /// Skip prdc's own implementation (24 s a run) and time only the playground-style torch code.
        #[arg(long)]
        skip_prdc_package: bool,
        /// Print one JSON object per result on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// One toy training cycle (4 D steps + 1 G step + EMA, batch 64) against PyTorch, 1 thread.
    #[command(after_help = "Example:\n  whichgan bench toy --cycles 500 --data circle")]
    Toy {
        /// Python interpreter that has torch and numpy.
        #[arg(long, default_value = ".bench-venv/bin/python")]
        python: PathBuf,
        /// Timed cycles on each side.
        #[arg(long, default_value_t = 500, value_parser = at_least_one)]
        cycles: usize,
        /// fat-circle (Source-I) or circle (the target mixture).
        #[arg(long, default_value = "fat-circle")]
        data: String,
        /// Print one JSON object per result on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// StyleGAN2 G forward and D forward + backward against the official code on PyTorch, same
    /// device.
    #[command(
        after_help = "The official networks are not part of this project: clone \
        NVlabs/stylegan2-ada-pytorch and pass its folder. On a GPU the official networks are \
        also timed as its `auto` configuration runs them (float16 in the four highest \
        resolutions); ours compute in float32.\n\n\
        Examples:\n  whichgan bench stylegan2 --official ../stylegan2-ada-pytorch --batch 8\n  \
        whichgan bench stylegan2 --official ../stylegan2-ada-pytorch --res 256 --batch 32 \
        --device cuda:0 --python python3"
    )]
    Stylegan2 {
        /// Python interpreter that has torch.
        #[arg(long, default_value = ".bench-venv/bin/python")]
        python: PathBuf,
        /// Folder of the official stylegan2-ada-pytorch code.
        #[arg(long)]
        official: PathBuf,
        /// Weights and configuration (config.json, G/D.safetensors, checkpoint.pt); the default
        /// is the repository's fixture, relative to its root.
        #[arg(long, default_value = "tests/fixtures/stylegan2")]
        fixture: PathBuf,
        /// Time freshly initialised networks of the `auto` configuration at this resolution
        /// instead of the fixture's.
        #[arg(long)]
        res: Option<usize>,
        /// Images per forward pass on both sides.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Timed repetitions on each side (medians are reported).
        #[arg(long, default_value_t = 5)]
        reps: usize,
        /// cpu or cuda:N (both sides).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Print one JSON object per result on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// StyleGAN2-ADA training iterations (sec/kimg) against the official training code's phase
    /// loop on PyTorch, same configuration and device.
    #[command(
        after_help = "By default both sides train a 32 × 32 network (set A's sizes: z/w 64, 2 \
        mapping layers, 64 channels) from scratch at batch 16; --cfg takes an official preset \
        as it is instead. Path length, style mixing, lazy R1 and the bgc augmentation at p = 0.2; \
        2 warm-up iterations, then --iters timed (16 lets each regulariser run its share). On a \
        GPU the official loop is also timed as its train.py runs the preset: float16 in the four \
        highest resolutions; ours computes in float32. Both run each batch in rounds of \
        --batch-gpu images (default: the preset's, or the batch). Clone \
        NVlabs/stylegan2-ada-pytorch and pass its folder.\n\n\
        Examples:\n  whichgan bench train --official ../stylegan2-ada-pytorch\n  \
        whichgan bench train --official ../stylegan2-ada-pytorch --cfg paper256 --res 256 \
        --device cuda:0 --python python3"
    )]
    Train {
        /// Python interpreter that has torch.
        #[arg(long, default_value = ".bench-venv/bin/python")]
        python: PathBuf,
        /// Folder of the official stylegan2-ada-pytorch code.
        #[arg(long)]
        official: PathBuf,
        /// Official configuration preset (auto, stylegan2, paper256, …) instead of set A's sizes.
        #[arg(long)]
        cfg: Option<String>,
        /// Image side.
        #[arg(long, default_value_t = 32)]
        res: usize,
        /// Batch size (default: 16, or the preset's).
        #[arg(long)]
        batch: Option<usize>,
        /// Images per pass on both sides (train.py's per-GPU batch; default: the preset's, e.g.
        /// 8 for paper256, or --batch).
        #[arg(long)]
        batch_gpu: Option<usize>,
        /// Timed iterations on each side.
        #[arg(long, default_value_t = 16)]
        iters: usize,
        /// cpu or cuda:N (both sides).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Print one JSON object per result on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// Peak memory and operation count of each StyleGAN2 training pass: the generic operations
    /// (what a GPU runs) and the CPU kernels against the official code on PyTorch CPU.
    #[command(
        after_help = "Each pass runs in a process of its own, which builds fresh networks of \
        the preset, resets the kernel's high-water mark of its resident memory (Linux) and runs \
        the pass once: g-forward (sampling), main (G then D forward and backward, as the \
        official Gmain and Dmain phases), r1 (Dreg: D's input gradient, then the backward pass \
        through it) and path-length (Greg). One round of --batch images, no augmentation, \
        float32. ops counts the tensor operations a pass runs (the tensors candle makes; the \
        ATen operations PyTorch dispatches), the CPU-side measure of the kernels a GPU would \
        launch. generic_ratio is the generic path's peak over the official one. Without \
        --official only this project's two paths are measured.\n\n\
        Examples:\n  whichgan bench memory --official ../stylegan2-ada-pytorch\n  \
        whichgan bench memory --cfg auto --res 32 --batch 8 --passes main,r1"
    )]
    Memory {
        /// Python interpreter that has torch.
        #[arg(long, default_value = ".bench-venv/bin/python")]
        python: PathBuf,
        /// Folder of the official stylegan2-ada-pytorch code.
        #[arg(long)]
        official: Option<PathBuf>,
        #[command(flatten)]
        setup: MemorySetup,
        /// The passes to measure (comma-separated; default: all).
        #[arg(long, value_enum, value_delimiter = ',')]
        passes: Vec<Pass>,
        /// Print one JSON object per pass on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
    },
    /// One pass of `bench memory`, measured in this process (run by `bench memory`).
    #[command(hide = true)]
    MemoryPass {
        #[arg(long, value_enum)]
        pass: Pass,
        #[command(flatten)]
        setup: MemorySetup,
    },
    /// FID Inception features of PNG images against pytorch-fid on PyTorch CPU, same weights.
    #[command(
        after_help = "Both sides decode the same PNGs and use the same (formula) weights, \
        written once as a legacy torch.save file like pytorch-fid's own; the features are compared.\n\n\
        Example:\n  whichgan bench features --n 1000 --res 256"
    )]
    Features {
        /// Python interpreter that has torch, torchvision, pytorch-fid and Pillow.
        #[arg(long, default_value = ".bench-venv/bin/python")]
        python: PathBuf,
        /// Folder of the benchmark inputs (weights and images are generated there if absent).
        #[arg(long, default_value = ".bench-data")]
        data: PathBuf,
        /// Number of images.
        #[arg(long, default_value_t = 1000, value_parser = at_least_one)]
        n: usize,
        /// Image side.
        #[arg(long, default_value_t = 256)]
        res: usize,
        /// Our batch size (pytorch-fid uses 50, its default).
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Print one JSON object per result on stdout instead of the human summary.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: BenchArgs) -> Result<()> {
    match args.what {
        BenchWhat::Metrics {
            python,
            data,
            runs,
            only,
            skip_prdc_package,
            json,
        } => {
            let bench = Bench::new(python, runs, true)?;
            bench.metrics(&data, &only, skip_prdc_package, json)
        }
        BenchWhat::Toy {
            python,
            cycles,
            data,
            json,
        } => {
            let bench = Bench::new(python, 1, true)?;
            bench.toy(cycles, &data).map(|r| r.print(json))
        }
        BenchWhat::Features {
            python,
            data,
            n,
            res,
            batch,
            json,
        } => {
            let bench = Bench::new(python, 1, true)?;
            bench.features(&data, n, res, batch).map(|r| r.print(json))
        }
        BenchWhat::Train {
            python,
            official,
            cfg,
            res,
            batch,
            batch_gpu,
            iters,
            device,
            json,
        } => {
            let device = parse_device(&device)?;
            let bench = Bench::new(python, 1, true)?;
            let run = TrainBench {
                cfg,
                res,
                batch,
                batch_gpu,
                iters,
            };
            bench.train(&official, &run, &device).map(|r| r.print(json))
        }
        BenchWhat::Memory {
            python,
            official,
            setup,
            passes,
            json,
        } => {
            let passes = match passes.is_empty() {
                true => vec![Pass::GForward, Pass::Main, Pass::R1, Pass::PathLength],
                false => passes,
            };
            // Without the official side no Python is needed.
            let bench = Bench::new(python, 1, official.is_some())?;
            bench.memory(official.as_deref(), &setup, &passes, |report| {
                report.print(json);
                if !json {
                    println!();
                }
            })
        }
        BenchWhat::MemoryPass { pass, setup } => {
            let measured = memory::measure_pass(pass, &setup)?;
            println!(
                "{}",
                serde_json::to_string(&measured).expect("numbers serialise")
            );
            Ok(())
        }
        BenchWhat::Stylegan2 {
            python,
            official,
            fixture,
            res,
            batch,
            reps,
            device,
            json,
        } => {
            if res.is_none() {
                check_fixture(&fixture)?;
            }
            let device = parse_device(&device)?;
            let bench = Bench::new(python, reps, true)?;
            let networks = match res {
                Some(res) => Networks::Auto(res),
                None => Networks::Fixture(fixture),
            };
            bench
                .stylegan2(&official, &networks, batch, &device)
                .map(|r| r.print(json))
        }
    }
}

struct Bench {
    python: PathBuf,
    /// The embedded reference scripts, and scratch files of the benchmarks.
    scripts: TempDir,
    runs: usize,
}

/// A folder that lives as long as this value: created by [`TempDir::new`], removed with its
/// contents when dropped, whether the benchmark succeeded or not.
struct TempDir(PathBuf);

impl TempDir {
    fn new(path: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

impl Bench {
    /// Checks the interpreter (when `needs_python`) and writes the embedded reference scripts
    /// to a temporary folder.
    fn new(python: PathBuf, runs: usize, needs_python: bool) -> Result<Self> {
        // A bare name (`python3`) is looked up on the PATH when the script runs.
        if needs_python && python.components().count() > 1 && !python.exists() {
            return Err(Error::invalid(format!(
                "no Python at {} (see `whichgan bench metrics --help` for the set-up)",
                python.display()
            )));
        }
        let scripts = std::env::temp_dir().join(format!("whichgan-bench-{}", std::process::id()));
        let scripts = TempDir::new(scripts)?;
        for (name, text) in [
            ("make_data.py", MAKE_DATA),
            ("ref_w1.py", REF_W1),
            ("ref_prdc.py", REF_PRDC),
            ("ref_fid.py", REF_FID),
            ("toy_torch.py", TOY_TORCH),
            ("stylegan2_torch.py", STYLEGAN2_TORCH),
            ("stylegan2_train_torch.py", STYLEGAN2_TRAIN_TORCH),
            ("official_plugins.py", OFFICIAL_PLUGINS),
            ("inception_torch.py", INCEPTION_TORCH),
            ("stylegan2_memory_torch.py", STYLEGAN2_MEMORY_TORCH),
        ] {
            let path = scripts.path().join(name);
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        }
        Ok(Bench {
            python,
            scripts,
            runs: runs.max(1),
        })
    }

    /// Runs a reference script and parses the JSON object it prints last.
    fn python_json(&self, script: &str, args: &[&std::ffi::OsStr], parse: bool) -> Result<Value> {
        let output = Command::new(&self.python)
            .arg(self.scripts.path().join(script))
            .args(args)
            .output()
            .map_err(|e| Error::io(&self.python, e))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(Error::invalid(format!(
                "reference script {script} failed: {}",
                stderr.lines().last().unwrap_or("no output")
            )));
        }
        if !parse {
            return Ok(Value::Null);
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line).map_err(|e| {
            Error::invalid(format!(
                "reference script {script} printed no JSON ({e}): {line}"
            ))
        })
    }
}

/// Median wall time of `runs` calls after one warm-up call, and the last result.
fn time<T>(runs: usize, mut f: impl FnMut() -> Result<T>) -> Result<(f64, T)> {
    let mut out = f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        out = f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], out))
}

fn ratio(reference: f64, ours: f64) -> f64 {
    reference / ours
}

/// The device's name for PyTorch.
fn torch_device(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        _ => "cpu".to_owned(),
    }
}

/// The official `Generator` and `Discriminator` constructor arguments for a preset (float32,
/// the preset's `conv_clamp`).
fn official_kwargs(preset: &whichgan::stylegan2::presets::Preset, res: usize) -> (Value, Value) {
    let layers = serde_json::json!({
        "channel_base": preset.channel_base, "channel_max": preset.channel_max,
        "num_fp16_res": 0, "conv_clamp": preset.conv_clamp,
    });
    let g = serde_json::json!({
        "z_dim": preset.z_dim, "c_dim": 0, "w_dim": preset.z_dim,
        "img_resolution": res, "img_channels": 3,
        "mapping_kwargs": {"num_layers": preset.mapping_layers},
        "synthesis_kwargs": layers,
    });
    let mut d = layers.clone();
    d["c_dim"] = 0.into();
    d["img_resolution"] = res.into();
    d["img_channels"] = 3.into();
    d["architecture"] = if preset.d_resnet { "resnet" } else { "orig" }.into();
    d["epilogue_kwargs"] = serde_json::json!({"mbstd_group_size": preset.mbstd_group});
    (g, d)
}
