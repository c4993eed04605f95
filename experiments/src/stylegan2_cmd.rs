//! `whichgan generate` and `whichgan discriminate`: the StyleGAN2 networks of a checkpoint.

use crate::device::parse_device;
use crate::outputs::check_output_files;
use crate::report::Report;
use candle_core::{Device, Tensor};
use clap::Args;
use std::path::{Path, PathBuf};
use whichgan::io::{extension, read_npy, write_npy_f32, write_png_grid};
use whichgan::run::generator::conv_clamp;
use whichgan::stylegan2::sampling::{generate as draw, load_generator, seed_latents, synthesise};
use whichgan::stylegan2::weights::load_network;
use whichgan::stylegan2::{Discriminator, NoiseMode};
use whichgan::{Error, Result};

#[derive(Args)]
#[command(
    after_help = "Checkpoints: safetensors files of official state-dict keys, flat (one \
    network) or with G./D./G_ema. prefixes.\n\n\
    Examples:\n  \
    whichgan generate --ckpt ckpt.safetensors --seeds 0-15 --out grid.png\n  \
    whichgan generate --ckpt ckpt.safetensors --net G --z z.npy --psi 0.7 --out images.npy"
)]
pub struct GenerateArgs {
    /// Checkpoint (.safetensors or .pt).
    #[arg(long)]
    ckpt: PathBuf,
    /// Which generator of a checkpoint holding several.
    #[arg(long, default_value = "G_ema")]
    net: String,
    /// Seeds, e.g. 0-15 or 1,5,9: latents as the official generate.py draws them.
    #[arg(long, conflicts_with_all = ["z", "ws"])]
    seeds: Option<String>,
    /// Latents [N, z_dim] (.npy).
    #[arg(long, conflicts_with = "ws")]
    z: Option<PathBuf>,
    /// Intermediate latents [N, num_ws, w_dim] (.npy); skips the mapping network.
    #[arg(long)]
    ws: Option<PathBuf>,
    /// Truncation ψ (1: none; 0: the average latent; negative values flip around it).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    psi: f64,
    /// const | random | none
    #[arg(long, default_value = "const")]
    noise: String,
    /// Seed of the random noise (with --noise random).
    #[arg(long, default_value_t = 0)]
    noise_seed: u64,
    /// Images per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Output: .png (a grid) or .npy (float32 NCHW in [−1, 1], not clamped).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

/// Options of both commands.
#[derive(Args)]
struct CommonArgs {
    /// Clamp of the layer outputs the network was trained with (official `conv_clamp`;
    /// default: the clamp a whichgan snapshot's run trained with, none for other files).
    #[arg(long)]
    conv_clamp: Option<f64>,
    /// cpu (cuda:N in a CUDA build)
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long)]
    json: bool,
}

impl CommonArgs {
    /// The device, after checking the clamp.
    fn device(&self) -> Result<Device> {
        if let Some(c) = self.conv_clamp {
            if !(c > 0.0 && c.is_finite()) {
                return Err(Error::invalid(format!(
                    "--conv-clamp must be a positive number, got {c}"
                )));
            }
        }
        parse_device(&self.device)
    }
}

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    whichgan discriminate --ckpt ckpt.safetensors --images real.npy --out logits.npy\n  \
    whichgan discriminate --ckpt ckpt.safetensors --images real.npy --grad grad.npy --out logits.npy")]
pub struct DiscriminateArgs {
    /// Checkpoint (.safetensors or .pt); its D (or all tensors of a flat file).
    #[arg(long)]
    ckpt: PathBuf,
    /// Images [N, C, H, W] (.npy, float32 in [−1, 1]).
    #[arg(long)]
    images: PathBuf,
    /// Also write ∇ₓ Σ D(x) [N, C, H, W] here (.npy): the image-scale gradient field.
    #[arg(long)]
    grad: Option<PathBuf>,
    /// Samples per minibatch-standard-deviation group (the official default 4).
    #[arg(long, default_value_t = 4)]
    mbstd_group: usize,
    /// Images per forward pass (a multiple of the mbstd group).
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Logits [N, 1] (.npy).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

/// `0-15`, `1,5,9` or a mix (`0-3,8`).
fn parse_seeds(spec: &str) -> Result<Vec<u32>> {
    let bad = || Error::invalid(format!("--seeds '{spec}': expected e.g. 0-15 or 1,5,9"));
    let mut seeds = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                seeds.extend(a..=b);
            }
            None => seeds.push(part.trim().parse().map_err(|_| bad())?),
        }
    }
    Ok(seeds)
}

/// A float32 tensor from a .npy file, which must have `rank` dimensions.
fn npy_tensor(path: &Path, rank: usize, what: &str, device: &Device) -> Result<Tensor> {
    let array = read_npy(path)?;
    if array.shape.len() != rank || array.shape[0] == 0 {
        return Err(Error::in_file(
            path,
            format!("expected {what}, got shape {:?}", array.shape),
        ));
    }
    let data: Vec<f32> = array.data.iter().map(|&v| v as f32).collect();
    Ok(Tensor::from_vec(data, array.shape, device)?)
}

fn check_out(path: &Path, allowed: &[&str]) -> Result<String> {
    let ext = extension(path).unwrap_or_default();
    if !allowed.contains(&ext.as_str()) {
        return Err(Error::in_file(
            path,
            format!("output must end in .{}", allowed.join(" or .")),
        ));
    }
    Ok(ext)
}

pub fn generate(args: GenerateArgs) -> Result<()> {
    let ext = check_out(&args.out, &["png", "npy"])?;
    let mut inputs = vec![("--ckpt", args.ckpt.as_path())];
    inputs.extend(args.z.as_deref().map(|z| ("--z", z)));
    check_output_files(&[("--out", &args.out)], &inputs)?;
    if !args.psi.is_finite() {
        return Err(Error::invalid(format!(
            "--psi must be a finite number, got {}",
            args.psi
        )));
    }
    let device = args.common.device()?;
    let noise = match args.noise.as_str() {
        "const" => NoiseMode::Const,
        "none" => NoiseMode::None,
        "random" => NoiseMode::Random {
            seed: args.noise_seed,
        },
        other => {
            return Err(Error::invalid(format!(
                "--noise '{other}': expected const, random or none"
            )))
        }
    };
    if args.batch == 0 {
        return Err(Error::invalid("--batch must be at least 1"));
    }
    let clamp = conv_clamp(&args.ckpt, args.common.conv_clamp);
    let g = load_generator(&args.ckpt, &args.net, clamp, &device)?;
    let (z_dim, num_ws, w_dim) = (g.mapping.z_dim, g.synthesis.num_ws, g.mapping.w_dim);
    let images = match (&args.seeds, &args.z, &args.ws) {
        (Some(spec), _, _) => {
            let z = seed_latents(&parse_seeds(spec)?, z_dim, &device)?;
            draw(&g, &z, args.psi, noise, args.batch)?
        }
        (_, Some(path), _) => {
            let z = npy_tensor(path, 2, &format!("latents [N, {z_dim}]"), &device)?;
            if z.dim(1)? != z_dim {
                return Err(Error::in_file(
                    path,
                    format!("latents must have {z_dim} columns"),
                ));
            }
            draw(&g, &z, args.psi, noise, args.batch)?
        }
        (_, _, Some(path)) => {
            let ws = npy_tensor(path, 3, &format!("ws [N, {num_ws}, {w_dim}]"), &device)?;
            if ws.dims()[1..] != [num_ws, w_dim] {
                return Err(Error::in_file(
                    path,
                    format!("ws must be [N, {num_ws}, {w_dim}]"),
                ));
            }
            synthesise(&g, &ws, noise, args.batch)?
        }
        _ => return Err(Error::invalid("give --seeds, --z or --ws")),
    };
    let (n, c, h, w) = images.dims4()?;
    let data: Vec<f32> = images.flatten_all()?.to_vec1()?;
    if ext == "png" {
        write_png_grid(&args.out, [n, c, h, w], &data)?;
    } else {
        write_npy_f32(&args.out, &[n, c, h, w], &data)?;
    }
    Report::new()
        .with("images", n)
        .with("resolution", h)
        .with("out", args.out.display().to_string())
        .print(args.common.json);
    Ok(())
}

pub fn discriminate(args: DiscriminateArgs) -> Result<()> {
    check_out(&args.out, &["npy"])?;
    let mut outputs = vec![("--out", args.out.as_path())];
    if let Some(grad) = &args.grad {
        check_out(grad, &["npy"])?;
        outputs.push(("--grad", grad.as_path()));
    }
    let inputs = [("--ckpt", args.ckpt.as_path()), ("--images", &args.images)];
    check_output_files(&outputs, &inputs)?;
    let device = args.common.device()?;
    if args.batch == 0 || args.mbstd_group == 0 {
        return Err(Error::invalid(
            "--batch and --mbstd-group must be at least 1",
        ));
    }
    // A smaller last group would see other statistics than the rest and change the logits.
    if !args.batch.is_multiple_of(args.mbstd_group) {
        return Err(Error::invalid(format!(
            "--batch {} must be a multiple of --mbstd-group {}",
            args.batch, args.mbstd_group
        )));
    }
    let weights = load_network(&args.ckpt, "D", &device)?;
    let mut d =
        Discriminator::load(&weights, args.mbstd_group).map_err(|e| e.located_in(&args.ckpt))?;
    d.conv_clamp = conv_clamp(&args.ckpt, args.common.conv_clamp);
    let (r, c) = (d.resolution, d.img_channels);
    let images = npy_tensor(
        &args.images,
        4,
        &format!("images [N, {c}, {r}, {r}]"),
        &device,
    )?;
    if images.dims()[1..] != [c, r, r] {
        return Err(Error::in_file(
            &args.images,
            format!(
                "images must be [N, {c}, {r}, {r}] for this discriminator, got {:?}",
                images.dims()
            ),
        ));
    }
    let n = images.dim(0)?;
    let (mut logits, mut grads) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(args.batch) {
        let chunk = images.narrow(0, start, args.batch.min(n - start))?;
        if args.grad.is_some() {
            let (l, g) = d.forward_with_input_grad(&chunk)?;
            logits.push(l);
            grads.push(g);
        } else {
            logits.push(d.forward(&chunk)?);
        }
    }
    let logits = Tensor::cat(&logits, 0)?;
    write_npy_f32(&args.out, &[n, 1], &logits.flatten_all()?.to_vec1()?)?;
    if let Some(path) = &args.grad {
        let grads = Tensor::cat(&grads, 0)?;
        write_npy_f32(path, &[n, c, r, r], &grads.flatten_all()?.to_vec1()?)?;
    }
    Report::new()
        .with("images", n)
        .with("out", args.out.display().to_string())
        .with("grad", args.grad.as_ref().map(|p| p.display().to_string()))
        .print(args.common.json);
    Ok(())
}
