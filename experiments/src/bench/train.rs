//! `whichgan bench train`: StyleGAN2-ADA training iterations (sec/kimg) against the official
//! training code's phase loop on PyTorch.

use super::{official_kwargs, ratio, torch_device, Bench};
use crate::report::Report;
use candle_core::Device;
use std::path::Path;
use std::time::Instant;
use whichgan::{Error, Result};

/// What `bench train` runs (see its help).
pub(super) struct TrainBench {
    pub(super) cfg: Option<String>,
    pub(super) res: usize,
    pub(super) batch: Option<usize>,
    pub(super) batch_gpu: Option<usize>,
    pub(super) iters: usize,
}

impl Bench {
    pub(super) fn train(
        &self,
        official: &Path,
        run: &TrainBench,
        device: &Device,
    ) -> Result<Report> {
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
            cond: false,
        };
        let zip = self.scripts.path().join("train-data.zip");
        let synth = whichgan::dataset::SynthSpec {
            images: 256,
            classes: 10,
            first_class: 0,
            resolution: res as u32,
            seed: 0,
        };
        whichgan::dataset::write_synth(&synth, &zip)?;
        let dataset = whichgan::dataset::ImageDataset::open(&zip)?;
        let mut data = TrainingSet::load(&dataset, false, device, |_| {})?;
        let mut trainer = new_trainer(&spec, res, 0, device)?;
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
        let config_path = self.scripts.path().join("train-config.json");
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
}
