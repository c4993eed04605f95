//! `whichgan convergence`: how fast runs reach their plateau, from their metric logs.

use crate::report::Report;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use whichgan::metrics::convergence::{read_curve, Direction};
use whichgan::Result;

#[derive(Clone, Copy, ValueEnum)]
enum DirectionArg {
    /// FID, KID, W1, losses (the default for names starting so).
    Lower,
    /// Precision, recall (the default otherwise).
    Higher,
}

#[derive(Args)]
#[command(
    after_help = "Definitions: the plateau is the mean over the last --tail of the kimg span; \
kimg_to_within is the first kimg from which the metric stays within --within % of the plateau; \
excess_area is the area between the curve and the plateau on the bad side (metric·kimg); \
mean_level the curve's time average.\n\n\
Examples:\n  \
    whichgan convergence runs/flowers-imagenet/log.jsonl --metric fid\n  \
    whichgan convergence metric-fid50k_full.jsonl --metric fid50k_full --within 5 --json\n  \
    whichgan convergence a/log.jsonl b/log.jsonl c.csv --metric recall"
)]
pub struct ConvergenceArgs {
    /// Logs: JSONL (ours, or the official metric-*.jsonl) or CSV with a kimg column.
    #[arg(required = true)]
    logs: Vec<PathBuf>,
    /// The metric's key or column.
    #[arg(long, default_value = "fid")]
    metric: String,
    /// Threshold, percent of the plateau.
    #[arg(long, default_value_t = 10.0)]
    within: f64,
    /// Fraction of the kimg span, at the end, that defines the plateau.
    #[arg(long, default_value_t = 0.1)]
    tail: f64,
    /// Which way the metric improves (default: from its name).
    #[arg(long, value_enum)]
    direction: Option<DirectionArg>,
    /// One JSON object per log on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: ConvergenceArgs) -> Result<()> {
    let direction = match args.direction {
        Some(DirectionArg::Lower) => Direction::LowerIsBetter,
        Some(DirectionArg::Higher) => Direction::HigherIsBetter,
        None => Direction::for_metric(&args.metric),
    };
    // Read every log first: a bad one fails the command before anything is printed.
    let mut results = Vec::new();
    for log in &args.logs {
        let c = read_curve(log, &args.metric)?.convergence(direction, args.tail, args.within)?;
        results.push((log, c));
    }
    for (i, (log, c)) in results.iter().enumerate() {
        if i > 0 && !args.json {
            println!();
        }
        Report::new()
            .with("log", log.display().to_string())
            .with("metric", args.metric.clone())
            .with("points", c.points)
            .with("final_kimg", c.final_kimg)
            .with("final", c.final_value)
            .with("best", c.best_value)
            .with("plateau", c.plateau)
            .with("within_percent", c.within_percent)
            .with("kimg_to_within", c.kimg_to_within)
            .with("excess_area", c.excess_area)
            .with("mean_level", c.mean_level)
            .print(args.json);
    }
    Ok(())
}
