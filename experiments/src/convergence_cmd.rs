//! `whichgan convergence`: how fast runs reach their plateau, from their metric logs.

use crate::report::Report;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use whichgan::metrics::convergence::{read_curve, Convergence, Curve, Direction};
use whichgan::plot::{self, Curve as PlotCurve, PALETTE};
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
    /// Also draw the curves with their plateau and convergence point (STEM.png, STEM.svg).
    #[arg(long, value_name = "STEM")]
    plot: Option<PathBuf>,
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
        let curve = read_curve(log, &args.metric)?;
        let c = curve.convergence(direction, args.tail, args.within)?;
        results.push((log, curve, c));
    }
    if let Some(stem) = &args.plot {
        plot_curves(stem, &args.metric, &results)?;
    }
    for (i, (log, _, c)) in results.iter().enumerate() {
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

/// Each curve, its plateau (a flat unlabelled line across the whole curve) and a vertical mark
/// at kimg_to_within, in one colour per log.
fn plot_curves(
    stem: &Path,
    metric: &str,
    results: &[(&PathBuf, Curve, Convergence)],
) -> Result<()> {
    // (legend label, vertices, colour index) of every line.
    type Line = (String, Vec<(f64, f64)>, usize);
    let mut owned: Vec<Line> = Vec::new();
    for (i, (log, curve, c)) in results.iter().enumerate() {
        let name = log.file_stem().map_or_else(
            || log.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let points = curve
            .kimg
            .iter()
            .copied()
            .zip(curve.value.iter().copied())
            .collect();
        let (lo, hi) = curve
            .value
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        owned.push((name, points, i));
        owned.push((
            String::new(),
            vec![(curve.kimg[0], c.plateau), (c.final_kimg, c.plateau)],
            i,
        ));
        owned.push((
            String::new(),
            vec![(c.kimg_to_within, lo), (c.kimg_to_within, hi)],
            i,
        ));
    }
    let curves: Vec<PlotCurve> = owned
        .iter()
        .map(|(label, points, i)| PlotCurve {
            label,
            points,
            color: PALETTE[i % PALETTE.len()],
        })
        .collect();
    plot::lines(
        stem,
        &format!("{metric}: plateau and kimg to within"),
        "kimg",
        metric,
        &curves,
        false,
    )
    .map_err(|e| e.in_file(stem))
}
