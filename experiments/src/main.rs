//! `whichgan`: the command-line front end. It parses, calls the library, prints; nothing else.

mod bench;
mod metrics_cmd;
mod report;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "whichgan",
    version,
    about = "Which pretrained GAN is useful? Exact GAN metrics, the toy 2-D GAN lab and StyleGAN2 tools.",
    after_help = "Examples:\n  \
        whichgan metrics w1 target.csv samples.csv\n  \
        whichgan metrics prdc real.npy fake.npy --k 5 --json\n  \
        whichgan metrics fid real_feats.npy fake_feats.npy\n  \
        whichgan metrics corr sweep.csv --x recall --y min_w1"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluation metrics on point or feature files (.csv with a header row, .npy [N, D]).
    Metrics(metrics_cmd::MetricsArgs),
    /// Time the metrics side by side with the public reference implementations.
    Bench(bench::BenchArgs),
}

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Metrics(args) => metrics_cmd::run(args),
        Command::Bench(args) => bench::run(args),
    };
    if let Err(e) = outcome {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
