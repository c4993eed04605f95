//! `whichgan`: the command-line front end. It parses, calls the library, prints; nothing else.

mod bench;
mod classes_cmd;
mod cluster;
mod convergence_cmd;
mod dataset_cmd;
mod device;
mod features_cmd;
mod metrics_cmd;
mod outputs;
mod report;
mod study_cmd;
mod stylegan2_cmd;
mod toy_cmd;
mod train_cmd;
mod values;

use clap::{Parser, Subcommand};
use whichgan::runtime::Parallelism;

#[derive(Parser)]
#[command(
    name = "whichgan",
    version,
    about = "Which pretrained GAN is useful? Exact GAN metrics, the toy 2-D GAN lab and StyleGAN2 tools.",
    after_help = "Examples:\n  \
        whichgan metrics w1 target.csv samples.csv\n  \
        whichgan metrics prdc real.npy fake.npy --k 5 --json\n  \
        whichgan metrics fid real_feats.npy fake_feats.npy\n  \
        whichgan metrics corr sweep.csv --x recall --y min_w1\n  \
        whichgan toy train --data fat-circle:r=20,sigma=4 --steps 5000 --out runs/source1\n  \
        whichgan toy field --ckpt runs/source1/checkpoints/last.safetensors \\\n      \
        --target circle:size=20,sigma=0.25 --out field.png\n  \
        whichgan toy reproduce\n  \
        whichgan generate --ckpt ckpt.safetensors --seeds 0-15 --out grid.png\n  \
        whichgan features --extractor inception --weights pt_inception.pth --data flowers.zip --out f.npy\n  \
        whichgan select --target flowers.zip --source imagenet=imagenet-256-state.pt --inception pt_inception.pth --out sel/\n  \
        whichgan train --data flowers.zip --out runs/flowers --cfg paper256 --resume imagenet-256-state.pt\n  \
        whichgan convergence runs/flowers/log.jsonl --metric fid"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluation metrics on point or feature files (.csv with a header row, .npy [N, D]).
    Metrics(metrics_cmd::MetricsArgs),
    /// The toy 2-D GAN lab: train the MLP GAN, draw its gradient field, reproduce the study.
    Toy(toy_cmd::ToyArgs),
    /// Images from a StyleGAN2 checkpoint's generator (PNG grid or .npy).
    Generate(stylegan2_cmd::GenerateArgs),
    /// Logits (and input gradients) of a StyleGAN2 checkpoint's discriminator.
    Discriminate(stylegan2_cmd::DiscriminateArgs),
    /// A checkpoint (.pkl, .pt) as one safetensors file with what it says of its networks.
    Convert(stylegan2_cmd::ConvertArgs),
    /// What a checkpoint holds: networks, sizes, classes, clamp, minibatch-std group.
    Inspect(stylegan2_cmd::InspectArgs),
    /// Image features for metrics: FID Inception-v3 (2048-d) or VGG16 fc2 (4096-d).
    Features(features_cmd::FeaturesArgs),
    /// Rank candidate sources for a target by FID, KID, precision and recall; recommend one.
    Select(features_cmd::SelectArgs),
    /// Class coverage of generated images: fit a class probe on labelled data, count covered classes.
    Classes(classes_cmd::ClassesArgs),
    /// Train or fine-tune StyleGAN2-ADA (snapshots, metrics, exact resume).
    Train(train_cmd::TrainArgs),
    /// Image datasets in the official zip layout: a synthetic one with classes, or your folder.
    Dataset(dataset_cmd::DatasetArgs),
    /// The image-scale study as one grid: sources × targets fine-tunes, class coverage, which
    /// metric picks the best source.
    Study(study_cmd::StudyArgs),
    /// Grids submitted to Slurm (--slurm): which shards are done, running, failed; resubmit.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Convergence rate of training runs from their metric-vs-kimg logs.
    Convergence(convergence_cmd::ConvergenceArgs),
    /// Time the metrics side by side with the public reference implementations.
    Bench(bench::BenchArgs),
}

#[derive(Subcommand)]
enum JobsCommand {
    /// The shards of a grid submitted with --slurm: done, pending, running, failed.
    Status(cluster::JobsArgs),
}

fn main() {
    quiet_broken_pipe();
    let cli = Cli::try_parse().unwrap_or_else(|e| usage_error(e));
    let parallelism = match cli.command {
        Command::Toy(_) | Command::Features(_) | Command::Select(_) | Command::Classes(_) => {
            Parallelism::AcrossTasks
        }
        _ => Parallelism::WithinOperations,
    };
    whichgan::runtime::setup(parallelism);
    let outcome = match cli.command {
        Command::Metrics(args) => metrics_cmd::run(args),
        Command::Toy(args) => toy_cmd::run(args),
        Command::Generate(args) => stylegan2_cmd::generate(args),
        Command::Discriminate(args) => stylegan2_cmd::discriminate(args),
        Command::Convert(args) => stylegan2_cmd::convert(args),
        Command::Inspect(args) => stylegan2_cmd::inspect(args),
        Command::Features(args) => features_cmd::features(args),
        Command::Select(args) => features_cmd::select(args),
        Command::Classes(args) => classes_cmd::run(args),
        Command::Train(args) => train_cmd::run(args),
        Command::Dataset(args) => dataset_cmd::run(args),
        Command::Study(args) => study_cmd::run(args),
        Command::Jobs(JobsCommand::Status(args)) => cluster::jobs_status(args),
        Command::Convergence(args) => convergence_cmd::run(args),
        Command::Bench(args) => bench::run(args),
    };
    if let Err(e) = outcome {
        eprintln!("error: {}", for_the_command_line(&e));
        std::process::exit(1);
    }
}

/// Help and version go out as clap prints them (exit 0); a usage error becomes the one
/// `error: …` line of every other failure (exit 2, clap's code for usage errors).
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let command = command_path(&e.to_string()).unwrap_or_else(|| "whichgan".into());
            eprintln!("error: '{command}' needs a subcommand (see '{command} --help')");
        }
        _ => {
            let text = e.to_string();
            let help = match command_path(&text) {
                Some(command) => format!("'{command} --help'"),
                None => "--help".to_owned(),
            };
            eprintln!("error: {} (see {help})", one_line(&text));
        }
    }
    std::process::exit(2)
}

/// clap's message on one line: its first line without the `error: ` prefix, the items of a
/// list it introduces (`… were not provided:` then one argument a line) and the possible
/// values it names further down. Usage and tips are left to `--help`.
fn one_line(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    let rest: Vec<&str> = lines.map(str::trim).collect();
    if line.ends_with(':') {
        let items: Vec<&str> = rest.iter().copied().take_while(|l| !l.is_empty()).collect();
        line = format!("{} {}", line, items.join(", "));
    }
    if let Some(values) = rest.iter().find(|l| l.starts_with("[possible values:")) {
        line = format!("{line} {values}");
    }
    line
}

/// The command a usage error is about (`whichgan dataset synth`), from clap's usage line (which
/// some messages, such as those about a value, do not have).
fn command_path(text: &str) -> Option<String> {
    let usage = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))?;
    let words: Vec<&str> = usage
        .split_whitespace()
        .take_while(|w| !w.starts_with(['[', '<', '-']))
        .collect();
    Some(words.join(" "))
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`whichgan … | head`) would panic;
/// with the default action the process ends quietly, as command-line tools do.
fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default at start-up, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error as the user typed things: settings named by their flags, the one the error is
/// about and those its message mentions (the library writes them as `name`).
fn for_the_command_line(e: &whichgan::Error) -> String {
    let text = match e {
        whichgan::Error::Setting {
            setting,
            value,
            message,
        } => {
            let name = whichgan::Error::setting_name(setting, value.as_deref(), |s| {
                flag(s).unwrap_or_else(|| s.to_owned())
            });
            format!("{name}: {message}")
        }
        other => other.to_string(),
    };
    let mut out = String::with_capacity(text.len());
    let mut parts = text.split('`');
    out.push_str(parts.next().unwrap_or_default());
    // Odd parts stand between backticks; a closing one must follow for a mention.
    let rest: Vec<&str> = parts.collect();
    let mut i = 0;
    while i < rest.len() {
        match (flag(rest[i]), i + 1 < rest.len()) {
            (Some(f), true) => {
                out.push_str(&f);
                out.push_str(rest[i + 1]);
                i += 2;
            }
            _ => {
                out.push('`');
                out.push_str(rest[i]);
                i += 1;
            }
        }
    }
    out
}

/// The flag of a library setting, for the settings the commands have.
fn flag(setting: &str) -> Option<String> {
    let flag = match setting {
        "snap_kimg" => "--snap",
        "tick_kimg" => "--tick",
        "resume" => "--resume",
        "overwrite" => "--overwrite",
        "steps" => "--steps",
        "batch" => "--batch",
        "batch_gpu" => "--batch-gpu",
        "grid" => "--grid",
        "cfg" => "--cfg",
        "freezed" => "--freezed",
        "gamma" => "--gamma",
        "shard" => "--shard",
        "kimg" => "--kimg",
        "cbase" => "--cbase",
        "cmax" => "--cmax",
        "map" => "--map",
        "zdim" => "--zdim",
        "p" => "--p",
        "target" => "--target",
        "augpipe" => "--augpipe",
        "shards" => "--shards",
        "cond" => "--cond",
        _ => return None,
    };
    Some(flag.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use whichgan::Error;

    #[test]
    fn settings_are_named_by_their_flags() {
        let e = Error::setting(
            "snap_kimg",
            Some("0.02".into()),
            "not a multiple of `tick_kimg` 0.016",
        );
        assert_eq!(
            for_the_command_line(&e),
            "--snap 0.02: not a multiple of --tick 0.016"
        );
        assert_eq!(
            e.to_string(),
            "snap_kimg 0.02: not a multiple of `tick_kimg` 0.016"
        );
        // Unknown names and unpaired backticks stay as written.
        let e = Error::invalid("`resume` or `x` or `overwrite`, and a ` alone");
        assert_eq!(
            for_the_command_line(&e),
            "--resume or `x` or --overwrite, and a ` alone"
        );
    }
}
