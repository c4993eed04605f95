//! `whichgan bench stylegan2`: the StyleGAN2 G forward and D forward + backward against the
//! official networks on PyTorch, same device.

use super::{official_kwargs, ratio, torch_device, Bench};
use crate::report::Report;
use candle_core::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::time::Instant;
use whichgan::{Error, Result};

/// The default `--fixture` is relative to the repository's root; elsewhere it is missing, and
/// the message says what to pass instead.
pub(super) fn check_fixture(dir: &Path) -> Result<()> {
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

/// The networks `bench stylegan2` times.
pub(super) enum Networks {
    /// G/D.safetensors, checkpoint.pt and config.json in a folder.
    Fixture(PathBuf),
    /// Fresh networks of the `auto` preset at this resolution.
    Auto(usize),
}

impl Bench {
    pub(super) fn stylegan2(
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
                let path = self.scripts.path().join("networks.json");
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
}
