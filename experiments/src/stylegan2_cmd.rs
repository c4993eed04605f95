//! `whichgan generate` and `whichgan discriminate`: the StyleGAN2 networks of a checkpoint.

use crate::device::parse_device;
use crate::outputs::check_output_files;
use crate::report::Report;
use candle_core::{Device, Tensor};
use clap::Args;
use std::path::{Path, PathBuf};
use whichgan::io::{extension, read_npy, write_npy_f32, write_png_grid};
use whichgan::run::generator::{conv_clamp, mbstd_group};
use whichgan::stylegan2::layers::Params;
use whichgan::stylegan2::sampling::{
    generate as draw, load_generator, one_hot, seed_latents, synthesise,
};
use whichgan::stylegan2::weights::load_network;
use whichgan::stylegan2::{Discriminator, NoiseMode};
use whichgan::{Error, Result};

#[derive(Args)]
#[command(
    after_help = "Checkpoints: safetensors files of official state-dict keys, flat (one \
    network) or with G./D./G_ema. prefixes; PyTorch state dicts (.pt); official network \
    pickles (.pkl, read without running any of their code; their conv_clamp is used unless \
    --conv-clamp says otherwise).\n\n\
    Examples:\n  \
    whichgan generate --ckpt ckpt.safetensors --seeds 0-15 --out grid.png\n  \
    whichgan generate --ckpt ckpt.safetensors --net G --z z.npy --psi 0.7 --out images.npy\n  \
    whichgan generate --ckpt cifar10.pkl --seeds 0-9 --class 0,1,2,3,4,5,6,7,8,9 --out grid.png"
)]
pub struct GenerateArgs {
    /// Checkpoint (.safetensors, .pt or .pkl).
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
    labels: LabelArgs,
    #[command(flatten)]
    common: CommonArgs,
}

/// The class labels of a conditional network.
#[derive(Args)]
struct LabelArgs {
    /// Class of every image (K), or one per image (K1,K2,…), for a conditional network.
    #[arg(long = "class", value_name = "K[,K…]", conflicts_with = "c")]
    class: Option<String>,
    /// One-hot labels [N, c_dim] (.npy), one row per image.
    #[arg(long)]
    c: Option<PathBuf>,
}

impl LabelArgs {
    /// One-hot labels [n, c_dim] for a network of `c_dim` classes (none when it has none).
    fn labels(&self, n: usize, c_dim: usize, device: &Device) -> Result<Option<Tensor>> {
        match (&self.class, &self.c, c_dim) {
            (None, None, 0) => Ok(None),
            (Some(_), _, 0) | (_, Some(_), 0) => Err(Error::invalid(
                "the network is not conditional: it takes no --class or --c",
            )),
            (None, None, k) => Err(Error::invalid(format!(
                "the network is conditional ({k} classes): give --class or --c"
            ))),
            (Some(spec), _, k) => {
                let bad = || Error::invalid(format!("--class '{spec}': expected K or K1,K2,…"));
                let classes: Vec<usize> = spec
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|_| bad()))
                    .collect::<Result<_>>()?;
                let classes = match classes.len() {
                    1 => vec![classes[0]; n],
                    m if m == n => classes,
                    m => {
                        return Err(Error::invalid(format!(
                            "--class gives {m} classes for {n} images: give one, or one per image"
                        )))
                    }
                };
                one_hot(&classes, k, device).map(Some)
            }
            (None, Some(path), k) => {
                let c = npy_tensor(path, 2, &format!("labels [N, {k}]"), device)?;
                if c.dims() != [n, k] {
                    return Err(Error::in_file(
                        path,
                        format!(
                            "labels must be [{n}, {k}] (one one-hot row per image), got {:?}",
                            c.dims()
                        ),
                    ));
                }
                Ok(Some(c))
            }
        }
    }
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
    /// Checkpoint (.safetensors, .pt or .pkl); its D (or all tensors of a flat file).
    #[arg(long)]
    ckpt: PathBuf,
    /// Images [N, C, H, W] (.npy, float32 in [−1, 1]).
    #[arg(long)]
    images: PathBuf,
    /// Also write ∇ₓ Σ D(x) [N, C, H, W] here (.npy): the image-scale gradient field.
    #[arg(long)]
    grad: Option<PathBuf>,
    /// Samples per minibatch-standard-deviation group (default: the checkpoint's — a whichgan
    /// snapshot's run, a network pickle's D — else the official 4).
    #[arg(long)]
    mbstd_group: Option<usize>,
    /// Images per forward pass (a multiple of the mbstd group).
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Logits [N, 1] (.npy).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    labels: LabelArgs,
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
    let clamp = conv_clamp(&args.ckpt, args.common.conv_clamp)?;
    let g = load_generator(&args.ckpt, &args.net, clamp, &device)?;
    let (z_dim, num_ws, w_dim) = (g.mapping.z_dim, g.synthesis.num_ws, g.mapping.w_dim);
    let images = match (&args.seeds, &args.z, &args.ws) {
        (Some(spec), _, _) => {
            let z = seed_latents(&parse_seeds(spec)?, z_dim, &device)?;
            let c = args.labels.labels(z.dim(0)?, g.mapping.c_dim, &device)?;
            draw(&g, &z, c.as_ref(), args.psi, noise, args.batch)?
        }
        (_, Some(path), _) => {
            let z = npy_tensor(path, 2, &format!("latents [N, {z_dim}]"), &device)?;
            if z.dim(1)? != z_dim {
                return Err(Error::in_file(
                    path,
                    format!("latents must have {z_dim} columns"),
                ));
            }
            let c = args.labels.labels(z.dim(0)?, g.mapping.c_dim, &device)?;
            draw(&g, &z, c.as_ref(), args.psi, noise, args.batch)?
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
    let group = mbstd_group(&args.ckpt, args.mbstd_group)?;
    if args.batch == 0 || group == 0 {
        return Err(Error::invalid(
            "--batch and --mbstd-group must be at least 1",
        ));
    }
    // A smaller last group would see other statistics than the rest and change the logits.
    if !args.batch.is_multiple_of(group) {
        return Err(Error::invalid(format!(
            "--batch {} must be a multiple of --mbstd-group {group} (given, or the checkpoint's)",
            args.batch
        )));
    }
    let weights = load_network(&args.ckpt, "D", &device)?;
    let mut d = Discriminator::load(&weights, group).map_err(|e| e.located_in(&args.ckpt))?;
    d.conv_clamp = conv_clamp(&args.ckpt, args.common.conv_clamp)?;
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
    let labels = args.labels.labels(n, d.c_dim(), &device)?;
    let (mut logits, mut grads) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(args.batch) {
        let len = args.batch.min(n - start);
        let chunk = images.narrow(0, start, len)?;
        let c = labels
            .as_ref()
            .map(|c| c.narrow(0, start, len))
            .transpose()?;
        if args.grad.is_some() {
            let (l, g) = d.forward_with_input_grad(&chunk, c.as_ref())?;
            logits.push(l);
            grads.push(g);
        } else {
            logits.push(d.forward_labelled(&chunk, c.as_ref(), Params::Tracked)?);
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

#[derive(Args)]
#[command(after_help = "Example:\n  \
    whichgan convert network-snapshot-001000.pkl ffhq-finetuned.safetensors\n\n\
    A .pkl is read without running any of the code it embeds. The output holds G., D. and \
    G_ema. tensors with the official state-dict names and, as metadata, what the input says \
    of its networks (conv_clamp, minibatch-std group, classes, D architecture, augment p), \
    which generate, discriminate and train then use.")]
pub struct ConvertArgs {
    /// An official network pickle (.pkl) or a PyTorch checkpoint (.pt).
    input: PathBuf,
    /// The safetensors file to write.
    output: PathBuf,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long)]
    json: bool,
}

pub fn convert(args: ConvertArgs) -> Result<()> {
    if extension(&args.output).as_deref() != Some("safetensors") {
        return Err(Error::in_file(
            &args.output,
            "the output must be a .safetensors file",
        ));
    }
    check_output_files(&[("OUTPUT", &args.output)], &[("INPUT", &args.input)])?;
    let tensors = whichgan::stylegan2::network_info::convert(&args.input, &args.output)?;
    Report::new()
        .with("tensors", tensors)
        .with("out", args.output.display().to_string())
        .print(args.json);
    Ok(())
}

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    whichgan inspect network-snapshot-001000.pkl\n  \
    whichgan inspect imagenet-256-state.pt --json")]
pub struct InspectArgs {
    /// A checkpoint: .pkl, .pt or .safetensors.
    ckpt: PathBuf,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long)]
    json: bool,
}

pub fn inspect(args: InspectArgs) -> Result<()> {
    let device = Device::Cpu;
    let all = whichgan::io::read_tensor_file(&args.ckpt, &device)?;
    let info = whichgan::stylegan2::network_info::NetworkInfo::read(&args.ckpt)?;
    let mut report = Report::new();
    let mut held = Vec::new();
    for net in ["G", "G_ema", "D"] {
        let Ok(weights) = whichgan::stylegan2::weights::network_in(&all, &args.ckpt, net) else {
            continue;
        };
        let elements: usize = weights
            .names()
            .filter_map(|n| weights.shape(n).ok())
            .map(|s| s.iter().product::<usize>())
            .sum();
        let described = if net == "D" {
            Discriminator::load(&weights, mbstd_group(&args.ckpt, None)?).map(|d| {
                serde_json::json!({
                    "resolution": d.resolution,
                    "c_dim": d.c_dim(),
                    "architecture": if weights.contains(&format!("b{}.skip.weight", d.resolution)) { "resnet" } else { "orig" },
                })
            })
        } else {
            whichgan::stylegan2::Generator::load(&weights).map(|g| {
                serde_json::json!({
                    "resolution": g.synthesis.resolution(),
                    "z_dim": g.mapping.z_dim,
                    "w_dim": g.mapping.w_dim,
                    "c_dim": g.mapping.c_dim,
                    "num_ws": g.synthesis.num_ws,
                })
            })
        };
        let Ok(mut described) = described else {
            continue;
        };
        described["parameters"] = serde_json::json!(elements);
        report = report.with(net, described);
        held.push(net);
    }
    if held.is_empty() {
        return Err(Error::in_file(&args.ckpt, "holds no StyleGAN2 network"));
    }
    report
        .with("networks", held.join(", "))
        .with("conv_clamp", conv_clamp(&args.ckpt, None)?)
        .with("mbstd_group", mbstd_group(&args.ckpt, None)?)
        .with(
            "stated",
            serde_json::to_value(&info).expect("info serialises"),
        )
        .print(args.json);
    Ok(())
}
