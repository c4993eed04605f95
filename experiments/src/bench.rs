//! `whichgan bench metrics`: times the metrics here and the public reference implementations
//! (POT, prdc, the playground's torch code, numpy, pytorch-fid) on the same inputs, in one run,
//! and reports the ratios. The reference scripts are embedded in the binary.

use crate::device::parse_device;
use crate::report::Report;
use crate::values::at_least_one;
use candle_core::Device;
use clap::{Args, Subcommand, ValueEnum};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use whichgan::io::load_points;
use whichgan::metrics::frechet::{frechet_distance, GaussianStats};
use whichgan::metrics::knn::prdc;
use whichgan::metrics::w1::wasserstein1;
use whichgan::train::{Loss, Penalty};
use whichgan::{Error, Result};
use whichgan_toy::train::{new_trainer, playground_config, DistributionData};

const MAKE_DATA: &str = include_str!("../bench/make_data.py");
const REF_W1: &str = include_str!("../bench/ref_w1.py");
const REF_PRDC: &str = include_str!("../bench/ref_prdc.py");
const REF_FID: &str = include_str!("../bench/ref_fid.py");
const TOY_TORCH: &str = include_str!("../bench/toy_torch.py");
const STYLEGAN2_TORCH: &str = include_str!("../bench/stylegan2_torch.py");
const INCEPTION_TORCH: &str = include_str!("../bench/inception_torch.py");
const STYLEGAN2_TRAIN_TORCH: &str = include_str!("../bench/stylegan2_train_torch.py");
const OFFICIAL_PLUGINS: &str = include_str!("../bench/official_plugins.py");

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
            let bench = Bench::new(python, runs)?;
            let result = bench.metrics(&data, &only, skip_prdc_package, json);
            std::fs::remove_dir_all(&bench.scripts).ok();
            result
        }
        BenchWhat::Toy {
            python,
            cycles,
            data,
            json,
        } => {
            let bench = Bench::new(python, 1)?;
            let result = bench.toy(cycles, &data).map(|r| r.print(json));
            std::fs::remove_dir_all(&bench.scripts).ok();
            result
        }
        BenchWhat::Features {
            python,
            data,
            n,
            res,
            batch,
            json,
        } => {
            let bench = Bench::new(python, 1)?;
            let result = bench.features(&data, n, res, batch).map(|r| r.print(json));
            std::fs::remove_dir_all(&bench.scripts).ok();
            result
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
            let bench = Bench::new(python, 1)?;
            let run = TrainBench {
                cfg,
                res,
                batch,
                batch_gpu,
                iters,
            };
            let result = bench.train(&official, &run, &device).map(|r| r.print(json));
            std::fs::remove_dir_all(&bench.scripts).ok();
            result
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
            let bench = Bench::new(python, reps)?;
            let networks = match res {
                Some(res) => Networks::Auto(res),
                None => Networks::Fixture(fixture),
            };
            let result = bench
                .stylegan2(&official, &networks, batch, &device)
                .map(|r| r.print(json));
            std::fs::remove_dir_all(&bench.scripts).ok();
            result
        }
    }
}

/// The benchmarks of `bench metrics`.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum MetricBench {
    W1,
    Prdc,
    Fid,
}

/// The default `--fixture` is relative to the repository's root; elsewhere it is missing, and
/// the message says what to pass instead.
fn check_fixture(dir: &Path) -> Result<()> {
    let missing = ["G.safetensors", "D.safetensors", "config.json"]
        .into_iter()
        .find(|name| !dir.join(name).is_file());
    match missing {
        None => Ok(()),
        Some(name) => Err(Error::in_file(
            dir,
            format!(
                "no {name}: pass --fixture <repository>/tests/fixtures/stylegan2 (the default \
                 is relative to the repository's root), or --res R for fresh networks"
            ),
        )),
    }
}

impl Bench {
    /// Checks the interpreter and writes the embedded reference scripts to a temporary folder.
    fn new(python: PathBuf, runs: usize) -> Result<Self> {
        // A bare name (`python3`) is looked up on the PATH when the script runs.
        if python.components().count() > 1 && !python.exists() {
            return Err(Error::invalid(format!(
                "no Python at {} (see `whichgan bench metrics --help` for the set-up)",
                python.display()
            )));
        }
        let scripts = std::env::temp_dir().join(format!("whichgan-bench-{}", std::process::id()));
        std::fs::create_dir_all(&scripts).map_err(|e| Error::io(&scripts, e))?;
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
        ] {
            let path = scripts.join(name);
            std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        }
        Ok(Bench {
            python,
            scripts,
            runs: runs.max(1),
        })
    }

    fn metrics(
        &self,
        data: &Path,
        only: &[MetricBench],
        skip_prdc_package: bool,
        json: bool,
    ) -> Result<()> {
        let bench = self;
        if !data.join("feats_10000x2048_b.npy").exists() {
            eprintln!("generating benchmark inputs in {} …", data.display());
            bench.python_json("make_data.py", &[data.as_os_str()], false)?;
        }
        let wanted = |bench: MetricBench| only.is_empty() || only.contains(&bench);
        if wanted(MetricBench::W1) {
            for n in [2048, 4096] {
                bench.w1(data, n)?.print(json);
            }
        }
        if wanted(MetricBench::Prdc) {
            bench.prdc(data, skip_prdc_package)?.print(json);
        }
        if wanted(MetricBench::Fid) {
            bench.fid(data)?.print(json);
        }
        Ok(())
    }
}

struct Bench {
    python: PathBuf,
    scripts: PathBuf,
    runs: usize,
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

/// What `bench train` runs (see its help).
struct TrainBench {
    cfg: Option<String>,
    res: usize,
    batch: Option<usize>,
    batch_gpu: Option<usize>,
    iters: usize,
}

/// The networks `bench stylegan2` times.
enum Networks {
    /// G/D.safetensors, checkpoint.pt and config.json in a folder.
    Fixture(PathBuf),
    /// Fresh networks of the `auto` preset at this resolution.
    Auto(usize),
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

impl Bench {
    /// Runs a reference script and parses the JSON object it prints last.
    fn python_json(&self, script: &str, args: &[&std::ffi::OsStr], parse: bool) -> Result<Value> {
        let output = Command::new(&self.python)
            .arg(self.scripts.join(script))
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

    fn w1(&self, data: &Path, n: usize) -> Result<Report> {
        let (a, b) = (
            data.join(format!("cloud_{n}_a.npy")),
            data.join(format!("cloud_{n}_b.npy")),
        );
        let (pa, pb) = (load_points(&a)?, load_points(&b)?);
        let (ours, w1) = time(self.runs, || {
            Ok(wasserstein1(pa.as_slice(), pb.as_slice(), pa.dim()))
        })?;
        let runs = self.runs.to_string();
        let reference = self.python_json(
            "ref_w1.py",
            &[
                a.as_os_str(),
                b.as_os_str(),
                "--runs".as_ref(),
                runs.as_ref(),
            ],
            true,
        )?;
        let ref_s = reference["median_s"].as_f64().unwrap_or(f64::NAN);
        Ok(Report::new()
            .with("bench", format!("w1 exact, {n} vs {n} 2-D points"))
            .with("ours_s", ours)
            .with("pot_s", ref_s)
            .with("speedup_vs_pot", ratio(ref_s, ours))
            .with("w1", w1)
            .with("w1_pot", reference["w1"].clone()))
    }

    fn prdc(&self, data: &Path, skip_package: bool) -> Result<Report> {
        let (a, b) = (
            data.join("feats_10000x2048_a.npy"),
            data.join("feats_10000x2048_b.npy"),
        );
        let (real, fake) = (load_points(&a)?, load_points(&b)?);
        let (ours, m) = time(1, || prdc(&real, &fake, 5))?;
        let mut args = vec![
            a.as_os_str(),
            b.as_os_str(),
            "--runs".as_ref(),
            "1".as_ref(),
        ];
        if skip_package {
            args.push("--skip-prdc".as_ref());
        }
        let reference = self.python_json("ref_prdc.py", &args, true)?;
        let torch_s = reference["torch_playground"]["median_s"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let mut report = Report::new()
            .with(
                "bench",
                "precision/recall/density/coverage, 10000 x 2048-D, k = 5",
            )
            .with("ours_s", ours)
            .with("torch_playground_s", torch_s)
            .with("speedup_vs_torch_playground", ratio(torch_s, ours))
            .with("precision", m.precision)
            .with("recall", m.recall)
            .with("density", m.density)
            .with("coverage", m.coverage)
            .with(
                "torch_precision",
                reference["torch_playground"]["precision"].clone(),
            )
            .with(
                "torch_recall",
                reference["torch_playground"]["recall"].clone(),
            );
        if let Some(p) = reference["prdc"].as_object() {
            let prdc_s = p["median_s"].as_f64().unwrap_or(f64::NAN);
            report = report
                .with("prdc_s", prdc_s)
                .with("speedup_vs_prdc", ratio(prdc_s, ours))
                .with("prdc_density", p["density"].clone())
                .with("prdc_coverage", p["coverage"].clone());
        }
        Ok(report)
    }

    fn toy(&self, cycles: usize, data: &str) -> Result<Report> {
        let spec = match data {
            "fat-circle" => "fat-circle:r=20,sigma=4",
            "circle" => "circle:size=20,sigma=0.25",
            other => {
                return Err(Error::invalid(format!(
                    "--data must be fat-circle or circle, got '{other}'"
                )))
            }
        };
        crate::single_threaded_tensor_kernels();
        let config = playground_config(Loss::Vanilla, Penalty::None, 4);
        let mut trainer = new_trainer(config, 64, 0)?;
        let mut source = DistributionData {
            distribution: spec.parse()?,
            device: trainer.device().clone(),
        };
        for _ in 0..20 {
            trainer.cycle(&mut source)?;
        }
        let start = Instant::now();
        for _ in 0..cycles {
            trainer.cycle(&mut source)?;
        }
        let ours_ms = start.elapsed().as_secs_f64() * 1e3 / cycles as f64;
        let cycles_arg = cycles.to_string();
        let reference = self.python_json(
            "toy_torch.py",
            &[
                "--threads".as_ref(),
                "1".as_ref(),
                "--cycles".as_ref(),
                cycles_arg.as_ref(),
                "--data".as_ref(),
                data.as_ref(),
            ],
            true,
        )?;
        let torch_ms = reference["ms_per_cycle"].as_f64().unwrap_or(f64::NAN);
        Ok(Report::new()
            .with("bench", format!("toy training cycle ({data}), 1 thread"))
            .with("ours_ms_per_cycle", ours_ms)
            .with("torch_ms_per_cycle", torch_ms)
            .with("speedup_vs_torch", ratio(torch_ms, ours_ms)))
    }

    fn train(&self, official: &Path, run: &TrainBench, device: &Device) -> Result<Report> {
        use whichgan::run::stylegan2::{new_trainer, AugMode, AugOptions, RunSpec};
        use whichgan::stylegan2::presets::Preset;
        use whichgan::stylegan2::TrainingSet;
        const WARMUP: usize = 2;
        let res = run.res;
        let mut preset = match &run.cfg {
            Some(name) => Preset::new(name, res)?,
            None => {
                let mut preset = Preset::new("auto", res)?;
                (preset.batch, preset.batch_gpu) = (16, 16);
                preset.mbstd_group = 4;
                (preset.channel_base, preset.channel_max) = (2048, 64);
                (preset.mapping_layers, preset.z_dim) = (2, 64);
                preset
            }
        };
        if let Some(batch) = run.batch {
            (preset.batch, preset.batch_gpu) = (batch, batch);
        }
        if let Some(round) = run.batch_gpu {
            preset.batch_gpu = round;
        }
        let (batch, batch_gpu) = (preset.batch, preset.batch_gpu);
        let spec = RunSpec {
            preset: preset.clone(),
            seed: 0,
            mirror: false,
            aug: AugOptions {
                mode: AugMode::Fixed,
                pipe: "bgc".into(),
                p: 0.2,
            },
            freezed: 0,
            start: None,
        };
        let zip = self.scripts.join("train-data.zip");
        let synth = whichgan::dataset::SynthSpec {
            images: 256,
            classes: 10,
            resolution: res as u32,
            seed: 0,
        };
        whichgan::dataset::write_synth(&synth, &zip)?;
        let dataset = whichgan::dataset::ImageDataset::open(&zip)?;
        let mut data = TrainingSet::load(&dataset, false, device, |_| {})?;
        let mut trainer = new_trainer(&spec, res, device)?;
        for _ in 0..WARMUP {
            trainer.cycle(&mut data)?;
        }
        device.synchronize()?;
        let start = Instant::now();
        for _ in 0..run.iters {
            trainer.cycle(&mut data)?;
        }
        device.synchronize()?;
        let ours = start.elapsed().as_secs_f64() / ((run.iters * batch) as f64 / 1000.0);

        // The reference: float32 as ours; on a GPU also as train.py runs.
        let mut variants = vec![serde_json::json!({
            "name": "float32", "num_fp16_res": 0, "batch_gpu": batch_gpu,
        })];
        if device.is_cuda() {
            variants.push(serde_json::json!({
                "name": "float16", "num_fp16_res": 4, "batch_gpu": batch_gpu,
            }));
        }
        let (g, d) = official_kwargs(&preset, res);
        let config = serde_json::json!({
            "G_kwargs": g, "D_kwargs": d, "batch": batch, "lr": preset.lr,
            "gamma": preset.gamma, "pl_weight": preset.pl_weight,
            "style_mixing": preset.style_mixing, "ema_kimg": preset.ema_kimg, "p": 0.2,
            "warmup": WARMUP, "iterations": run.iters, "variants": variants,
        });
        let config_path = self.scripts.join("train-config.json");
        std::fs::write(&config_path, config.to_string()).map_err(|e| Error::io(&config_path, e))?;
        let threads = rayon::current_num_threads().to_string();
        let torch_device = torch_device(device);
        let reference = self.python_json(
            "stylegan2_train_torch.py",
            &[
                "--official".as_ref(),
                official.as_os_str(),
                "--config".as_ref(),
                config_path.as_os_str(),
                "--threads".as_ref(),
                threads.as_ref(),
                "--device".as_ref(),
                torch_device.as_ref(),
            ],
            true,
        )?;
        let torch = reference["float32"].as_f64().unwrap_or(f64::NAN);
        let on = if device.is_cuda() {
            torch_device.clone()
        } else {
            format!("{threads} CPU threads")
        };
        let name = run.cfg.as_deref().unwrap_or("set A sizes");
        let mut report = Report::new()
            .with(
                "bench",
                format!(
                    "StyleGAN2-ADA training {res}×{res} ({name}), batch {batch} in rounds of \
                     {batch_gpu}, {on}"
                ),
            )
            .with("ours_sec_per_kimg", ours)
            .with("torch_sec_per_kimg", torch)
            .with("speedup_vs_torch", ratio(torch, ours));
        if device.is_cuda() {
            let fp16 = reference["float16"].as_f64().unwrap_or(f64::NAN);
            report = report
                .with("torch_trainpy_sec_per_kimg", fp16)
                .with("speedup_vs_torch_trainpy", ratio(fp16, ours))
                .with("torch_cuda_plugins", reference["plugins"].to_string());
        }
        Ok(report)
    }

    fn stylegan2(
        &self,
        official: &Path,
        networks: &Networks,
        batch: usize,
        device: &Device,
    ) -> Result<Report> {
        use whichgan::stylegan2::presets::Preset;
        use whichgan::stylegan2::weights::load_network;
        use whichgan::stylegan2::{Discriminator, Generator, NoiseMode};
        let (g, d, config, checkpoint) = match networks {
            Networks::Fixture(dir) => {
                let g = Generator::load(&load_network(&dir.join("G.safetensors"), "G", device)?)?;
                let d = load_network(&dir.join("D.safetensors"), "D", device)?;
                let d = Discriminator::load(&d, 4)?;
                let checkpoint = Some(dir.join("checkpoint.pt"));
                (g, d, dir.join("config.json"), checkpoint)
            }
            Networks::Auto(res) => {
                let preset = Preset::new("auto", *res)?;
                let arch = preset.architecture(*res, 3);
                let mut rng = ChaCha8Rng::seed_from_u64(0);
                let mut g = arch.generator(&mut rng, device)?;
                let mut d = arch.discriminator(&mut rng, preset.mbstd_group, device)?;
                g.synthesis.conv_clamp = preset.conv_clamp;
                d.conv_clamp = preset.conv_clamp;
                let (g_kwargs, d_kwargs) = official_kwargs(&preset, *res);
                let config = serde_json::json!({"G_kwargs": g_kwargs, "D_kwargs": d_kwargs});
                let path = self.scripts.join("networks.json");
                std::fs::write(&path, config.to_string()).map_err(|e| Error::io(&path, e))?;
                (g, d, path, None)
            }
        };
        let z = whichgan::train::standard_normal(
            &mut ChaCha8Rng::seed_from_u64(1),
            &[batch, g.mapping.z_dim],
            device,
        )?;
        // As the reference (under no_grad): D's backward stops at its input.
        let img = g.forward(&z, 1.0, NoiseMode::Const)?.detach();
        let median_ms = |f: &dyn Fn() -> Result<()>| -> Result<f64> {
            f()?;
            device.synchronize()?;
            let mut times = Vec::new();
            for _ in 0..self.runs {
                let start = Instant::now();
                f()?;
                device.synchronize()?;
                times.push(start.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            Ok(times[times.len() / 2])
        };
        let g_ms = median_ms(&|| {
            g.forward(&z, 1.0, NoiseMode::Const)?;
            Ok(())
        })?;
        let d_ms = median_ms(&|| {
            d.forward(&img)?.sum_all()?.backward()?;
            Ok(())
        })?;
        let (batch_arg, reps_arg) = (batch.to_string(), self.runs.to_string());
        let threads = rayon::current_num_threads().to_string();
        let torch_device = torch_device(device);
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--official".as_ref(),
            official.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
            "--batch".as_ref(),
            batch_arg.as_ref(),
            "--reps".as_ref(),
            reps_arg.as_ref(),
            "--threads".as_ref(),
            threads.as_ref(),
            "--device".as_ref(),
            torch_device.as_ref(),
        ];
        if let Some(checkpoint) = &checkpoint {
            args.extend(["--checkpoint".as_ref(), checkpoint.as_os_str()]);
        }
        let reference = self.python_json("stylegan2_torch.py", &args, true)?;
        let number = |key: &str| reference[key].as_f64().unwrap_or(f64::NAN);
        let (ref_g, ref_d) = (number("g_forward_ms"), number("d_forward_backward_ms"));
        let images_per_s = |ms: f64| batch as f64 / (ms / 1e3);
        let what = match networks {
            Networks::Fixture(_) => "set-A".to_owned(),
            Networks::Auto(res) => format!("auto {res}×{res}"),
        };
        let on = if device.is_cuda() {
            torch_device.clone()
        } else {
            format!("{threads} threads")
        };
        let mut report = Report::new()
            .with(
                "bench",
                format!("StyleGAN2 {what} networks, batch {batch}, {on}"),
            )
            .with("ours_g_forward_ms", g_ms)
            .with("torch_g_forward_ms", ref_g)
            .with("speedup_g_forward", ratio(ref_g, g_ms))
            .with("ours_g_images_per_s", images_per_s(g_ms))
            .with("torch_g_images_per_s", images_per_s(ref_g))
            .with("ours_d_forward_backward_ms", d_ms)
            .with("torch_d_forward_backward_ms", ref_d)
            .with("speedup_d_forward_backward", ratio(ref_d, d_ms));
        if device.is_cuda() {
            let (g16, d16) = (
                number("g_forward_ms_fp16"),
                number("d_forward_backward_ms_fp16"),
            );
            report = report
                .with("torch_fp16_g_forward_ms", g16)
                .with("torch_fp16_g_images_per_s", images_per_s(g16))
                .with("torch_fp16_d_forward_backward_ms", d16)
                .with("torch_cuda_plugins", reference["plugins"].to_string());
        }
        Ok(report)
    }

    fn features(&self, data: &Path, n: usize, res: usize, batch: usize) -> Result<Report> {
        use whichgan::dataset::Resize;
        use whichgan::features::{Extraction, ExtractorKind, ImageSource};
        // As `whichgan features` runs: images in parallel, one thread per tensor kernel.
        crate::single_threaded_tensor_kernels();
        whichgan::io::create_writable_dir(data)?;
        let weights = data.join("inception-formula.pth");
        if !weights.exists() {
            eprintln!(
                "writing formula Inception weights to {} …",
                weights.display()
            );
            self.python_json(
                "inception_torch.py",
                &["make-weights".as_ref(), weights.as_os_str()],
                false,
            )?;
        }
        let images = data.join(format!("images-{n}x{res}"));
        if !images.exists() {
            eprintln!("writing {n} PNG images to {} …", images.display());
            let (n_arg, res_arg) = (n.to_string(), res.to_string());
            self.python_json(
                "inception_torch.py",
                &[
                    "make-images".as_ref(),
                    images.as_os_str(),
                    "--n".as_ref(),
                    n_arg.as_ref(),
                    "--res".as_ref(),
                    res_arg.as_ref(),
                ],
                false,
            )?;
        }
        let threads = rayon::current_num_threads();
        let reference_out = data.join("inception-reference.npy");
        let threads_arg = threads.to_string();
        let reference = self.python_json(
            "inception_torch.py",
            &[
                "time".as_ref(),
                images.as_os_str(),
                "--weights".as_ref(),
                weights.as_os_str(),
                "--out".as_ref(),
                reference_out.as_os_str(),
                "--threads".as_ref(),
                threads_arg.as_ref(),
            ],
            true,
        )?;
        let torch_s = reference["seconds"].as_f64().unwrap_or(f64::NAN);
        let mut extraction = Extraction::new(
            ExtractorKind::Inception,
            &weights,
            &candle_core::Device::Cpu,
        )?;
        extraction.batch = batch;
        let source = ImageSource::Data(images.clone());
        let bar = indicatif::ProgressBar::hidden();
        // Warm-up on one batch, as the reference does.
        let dataset = whichgan::dataset::ImageDataset::open(&images)?;
        let size = (res as u32, res as u32);
        let first = dataset.load(0..batch.min(n), Resize::None, size, false)?;
        let shape = (first.n, 3, first.height, first.width);
        let first = candle_core::Tensor::from_vec(first.data, shape, &candle_core::Device::Cpu)?;
        extraction.extractor.forward(&first)?;
        let start = Instant::now();
        let (ours, _) = extraction.features(&source, &bar)?;
        let ours_s = start.elapsed().as_secs_f64();
        let reference = whichgan::features::read_features(&reference_out)?;
        let scale = reference.data.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        let max_diff = ours
            .data
            .iter()
            .zip(&reference.data)
            .map(|(a, b)| (a - b).abs() as f64)
            .fold(0.0, f64::max);
        Ok(Report::new()
            .with(
                "bench",
                format!("FID Inception features of {n} PNGs {res}x{res}, CPU, {threads} threads"),
            )
            .with("ours_s", ours_s)
            .with("pytorch_fid_s", torch_s)
            .with("speedup_vs_pytorch_fid", ratio(torch_s, ours_s))
            .with("ours_images_per_s", n as f64 / ours_s)
            .with("max_abs_diff_over_max_abs", max_diff / scale))
    }

    fn fid(&self, data: &Path) -> Result<Report> {
        let (a, b) = (
            data.join("feats_10000x2048_a.npy"),
            data.join("feats_10000x2048_b.npy"),
        );
        let (pa, pb) = (load_points(&a)?, load_points(&b)?);
        let (stats_s, (sa, sb)) = time(self.runs.min(3), || {
            Ok((
                GaussianStats::from_points(&pa)?,
                GaussianStats::from_points(&pb)?,
            ))
        })?;
        let (distance_s, fid) = time(self.runs.min(3), || frechet_distance(&sa, &sb))?;
        let reference = self.python_json(
            "ref_fid.py",
            &[
                a.as_os_str(),
                b.as_os_str(),
                "--runs".as_ref(),
                "1".as_ref(),
            ],
            true,
        )?;
        let ref_stats = reference["stats_median_s"].as_f64().unwrap_or(f64::NAN);
        let ref_distance = reference["distance_median_s"].as_f64().unwrap_or(f64::NAN);
        let fid_ref = reference["fid"].as_f64().unwrap_or(f64::NAN);
        Ok(Report::new()
            .with("bench", "FID, 2 x 10000 x 2048 features")
            .with("ours_stats_s", stats_s)
            .with("numpy_stats_s", ref_stats)
            .with("speedup_stats_vs_numpy", ratio(ref_stats, stats_s))
            .with("ours_distance_s", distance_s)
            .with("pytorch_fid_distance_s", ref_distance)
            .with(
                "speedup_distance_vs_pytorch_fid",
                ratio(ref_distance, distance_s),
            )
            .with("fid", fid)
            .with("fid_pytorch_fid", fid_ref)
            .with("relative_difference", (fid - fid_ref).abs() / fid_ref.abs()))
    }
}
