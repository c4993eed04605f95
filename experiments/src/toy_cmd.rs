//! `whichgan toy …`: the 2-D GAN lab.

use crate::report::Report;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use whichgan::train::{Loss, Penalty};
use whichgan::{Error, Result};
use whichgan_toy::field::plot_field;
use whichgan_toy::train::{playground_config, train_run, Init, TrainOptions};
use whichgan_toy::Distribution;

#[derive(Args)]
pub struct ToyArgs {
    #[command(subcommand)]
    command: ToyCommand,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum ToyCommand {
    /// Train the playground's MLP GAN on a 2-D distribution (exact W1 curve, checkpoints).
    #[command(after_help = "Distributions (SPEC):\n  \
        fat-circle:r=20,sigma=4          the study's Source-I\n  \
        circle:size=20,sigma=0.5,modes=3 the study's Source-II\n  \
        circle:size=20,sigma=0.25        the study's target\n  \
        grid:size=4,sigma=0.2   grid2d:size=3   spiral:rotations=5,r-step=0.2,r0=1\n  \
        csv:points.csv                   rows of a CSV file (columns x,y)\n\n\
        Examples:\n  \
        whichgan toy train --data fat-circle:r=20,sigma=4 --steps 5000 --out runs/source1\n  \
        whichgan toy train --data circle:size=20,sigma=0.25 --steps 1000 --out runs/ft \\\n    \
        --init runs/source1/checkpoints/last.safetensors\n  \
        whichgan toy train --data circle:size=20,sigma=0.25 --steps 1000 --out runs/ft --resume")]
    Train(TrainArgs),
    /// Draw a checkpoint's G samples, the target and D's gradient field (PNG + SVG).
    #[command(
        after_help = "Arrows show ∇ₓ log D(x) = −∇ₓ L_G(x): the direction in which a \
        generator update moves a sample at x (unit length; magnitudes differ by orders).\n\n\
        Example:\n  whichgan toy field --ckpt runs/source1/checkpoints/last.safetensors \\\n    \
        --target circle:size=20,sigma=0.25 --out field.png"
    )]
    Field {
        /// A toy training checkpoint.
        #[arg(long)]
        ckpt: PathBuf,
        /// Distribution whose samples are drawn under the field.
        #[arg(long)]
        target: String,
        /// Output image; the .png and an .svg beside it are written.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

#[derive(Args)]
struct TrainArgs {
    /// Target distribution spec (see below).
    #[arg(long)]
    data: String,
    /// G steps to train for (in total, counting those of a resumed run).
    #[arg(long)]
    steps: u64,
    /// Output folder: checkpoints/, w1.csv.
    #[arg(long)]
    out: PathBuf,
    /// Start G and D from this checkpoint (fresh optimiser state).
    #[arg(long, conflicts_with_all = ["init_g", "init_d"])]
    init: Option<PathBuf>,
    /// Start G (and its average) from this checkpoint.
    #[arg(long)]
    init_g: Option<PathBuf>,
    /// Start D from this checkpoint.
    #[arg(long)]
    init_d: Option<PathBuf>,
    /// vanilla | js | wasserstein | hinge
    #[arg(long, default_value = "vanilla")]
    loss: String,
    /// WGAN-GP weight λ (0: no penalty).
    #[arg(long, default_value_t = 0.0)]
    gp: f64,
    /// D steps per G step.
    #[arg(long, default_value_t = 4)]
    d_steps: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Network width (the study: 64).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Numbered checkpoint every K G steps (0: only the last).
    #[arg(long, default_value_t = 500)]
    save_every: u64,
    /// Exact W1 (2048 vs 2048 samples) every K G steps (0: only at the end).
    #[arg(long, default_value_t = 250)]
    eval_every: u64,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Replace an existing run in --out.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
}

pub fn run(args: ToyArgs) -> Result<()> {
    match args.command {
        ToyCommand::Train(t) => train(t, args.json),
        ToyCommand::Field {
            ckpt,
            target,
            out,
            seed,
        } => {
            let target: Distribution = target.parse()?;
            let stem = out.with_extension("");
            plot_field(&ckpt, &target, &stem, seed)?;
            Report::new()
                .with("png", stem.with_extension("png").display().to_string())
                .with("svg", stem.with_extension("svg").display().to_string())
                .print(args.json);
            Ok(())
        }
    }
}

fn train(args: TrainArgs, json: bool) -> Result<()> {
    let data: Distribution = args.data.parse()?;
    let loss: Loss = args.loss.parse()?;
    if !(args.gp >= 0.0 && args.gp.is_finite()) {
        return Err(Error::invalid(format!("--gp must be ≥ 0, got {}", args.gp)));
    }
    if args.steps == 0 || args.d_steps == 0 || args.width == 0 {
        return Err(Error::invalid(
            "--steps, --d-steps and --width must be positive",
        ));
    }
    let penalty = if args.gp > 0.0 {
        Penalty::WganGp { weight: args.gp }
    } else {
        Penalty::None
    };
    let init = Init {
        g: args.init.clone().or(args.init_g),
        d: args.init.or(args.init_d),
    };
    let options = TrainOptions {
        data,
        data_spec: args.data.clone(),
        steps: args.steps,
        out: args.out,
        init,
        config: playground_config(loss, penalty, args.d_steps),
        width: args.width,
        seed: args.seed,
        save_every: args.save_every,
        eval_every: args.eval_every,
        resume: args.resume,
        overwrite: args.overwrite,
        progress: !json,
    };
    let summary = train_run(&options)?;
    Report::new()
        .with("steps", summary.steps)
        .with("final_w1", summary.final_w1)
        .with("min_w1", summary.min_w1)
        .with("checkpoint", summary.checkpoint.display().to_string())
        .with("resumed_from", summary.resumed_from)
        .print(json);
    Ok(())
}
