//! Figure 3's results: each measurement's correlation with the fine-tunes' minimum W1 (per
//! seed, and their spread over the seeds), the trend along the first seed's run, the CSV files
//! and the figure.

use super::{write_rows, SweepPlan, SweepRow};
use crate::study::probe::{Arithmetic, CheckpointProbe};
use crate::study::{finite_range, median, Protocol};
use serde::Serialize;
use std::path::Path;
use whichgan::io::write_csv;
use whichgan::metrics::stats::{correlate, Correlation, CorrelationError};
use whichgan::plot::{self, ColoredPanel};
use whichgan::{Error, Result};

/// One correlation of a checkpoint measurement with the fine-tunes' minimum W1.
#[derive(Debug, Clone, Serialize)]
pub struct Figure3Correlation {
    pub seed: u64,
    pub metric: &'static str,
    /// For ∇D similarity: `notebook` (+∇ₓL_G) or `descent` (∇ₓ log D); for recall and
    /// precision: the arithmetic, `exact` or `f32-expanded`.
    pub convention: &'static str,
    pub n: usize,
    pub pearson_r: f64,
    pub pearson_p: f64,
    pub pearson_ci95: (f64, f64),
    pub spearman_rho: f64,
    pub spearman_p: f64,
}

/// Spread of one correlation over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub metric: &'static str,
    pub convention: &'static str,
    pub min_r: f64,
    pub median_r: f64,
    pub max_r: f64,
    pub max_p: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure3Summary {
    pub checkpoints: usize,
    pub protocol: Protocol,
    /// The arithmetic of the recall in the figure and the trend.
    pub recall_arithmetic: Arithmetic,
    pub seeds: Vec<u64>,
    pub correlations: Vec<Figure3Correlation>,
    pub spread: Vec<Spread>,
    /// How the measurements move along the first seed's Source-I run.
    pub trend: Trend,
}

/// The first seed's first and last checkpoint, and how recall and ∇D similarity move together
/// along the run.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    pub first: CheckpointProbe,
    pub last: CheckpointProbe,
    /// Pearson r of recall (in the summary's arithmetic) and ∇D similarity (notebook sign) over
    /// the checkpoints.
    pub r_recall_grad_sim_notebook: f64,
}

type Measure = (&'static str, &'static str, fn(&SweepRow) -> f64);

/// The measurements correlated with the minimum W1.
const MEASURES: [Measure; 6] = [
    ("recall", "exact", |r| r.probe.recall),
    ("recall", "f32-expanded", |r| r.probe.recall_f32_expanded),
    ("grad_sim", "notebook", |r| r.probe.grad_sim_notebook),
    ("grad_sim", "descent", |r| r.probe.grad_sim_descent),
    ("precision", "exact", |r| r.probe.precision),
    ("precision", "f32-expanded", |r| {
        r.probe.precision_f32_expanded
    }),
];

/// Writes `figure3.csv`, `figure3-correlations.csv` and `figure3.png`/`.svg` (first seed, its
/// recall in `arithmetic`).
pub fn write_results(
    out: &Path,
    plan: &SweepPlan,
    rows: &[SweepRow],
    arithmetic: Arithmetic,
) -> Result<Figure3Summary> {
    write_rows(&out.join("figure3.csv"), plan, rows)?;
    let mut correlations = Vec::new();
    for &seed in &plan.seeds {
        let seed_rows: Vec<&SweepRow> = rows.iter().filter(|r| r.seed == seed).collect();
        let min_w1: Vec<f64> = seed_rows.iter().map(|r| r.min_w1()).collect();
        for (metric, convention, get) in MEASURES {
            let x: Vec<f64> = seed_rows.iter().map(|r| get(r)).collect();
            // A measure that is the same at every checkpoint (a recall of 0 throughout a short
            // sweep) has no correlation: NaN, not an error.
            let c = match correlate(&x, &min_w1) {
                Ok(c) => Some(c),
                Err(CorrelationError::Constant { which: "x" }) => None,
                Err(e) => {
                    return Err(Error::invalid(format!(
                        "{metric} ({convention}) vs min W1 (seed {seed}): {e}"
                    )))
                }
            };
            let of = |get: fn(&Correlation) -> f64| c.as_ref().map_or(f64::NAN, get);
            correlations.push(Figure3Correlation {
                seed,
                metric,
                convention,
                n: x.len(),
                pearson_r: of(|c| c.pearson_r),
                pearson_p: of(|c| c.pearson_p),
                pearson_ci95: (of(|c| c.pearson_ci95.0), of(|c| c.pearson_ci95.1)),
                spearman_rho: of(|c| c.spearman_rho),
                spearman_p: of(|c| c.spearman_p),
            });
        }
    }
    let lines: Vec<Vec<String>> = correlations
        .iter()
        .map(|c| {
            vec![
                c.seed.to_string(),
                c.metric.to_string(),
                c.convention.to_string(),
                c.n.to_string(),
                c.pearson_r.to_string(),
                format!("{:e}", c.pearson_p),
                c.pearson_ci95.0.to_string(),
                c.pearson_ci95.1.to_string(),
                c.spearman_rho.to_string(),
                format!("{:e}", c.spearman_p),
            ]
        })
        .collect();
    write_csv(
        &out.join("figure3-correlations.csv"),
        &[
            "seed",
            "metric",
            "convention",
            "n",
            "pearson_r",
            "pearson_p",
            "pearson_ci95_lo",
            "pearson_ci95_hi",
            "spearman_rho",
            "spearman_p",
        ],
        &lines,
    )?;
    let spread = MEASURES
        .iter()
        .map(|&(metric, convention, _)| {
            let of: Vec<&Figure3Correlation> = correlations
                .iter()
                .filter(|c| c.metric == metric && c.convention == convention)
                .collect();
            let r: Vec<f64> = of
                .iter()
                .map(|c| c.pearson_r)
                .filter(|r| r.is_finite())
                .collect();
            let (min_r, max_r) = finite_range(&r);
            Spread {
                metric,
                convention,
                min_r,
                median_r: median(&r),
                max_r,
                max_p: of.iter().map(|c| c.pearson_p).fold(0.0, f64::max),
            }
        })
        .collect();
    draw(&out.join("figure3"), plan, rows, &correlations, arithmetic)?;
    let first_seed: Vec<&SweepRow> = rows.iter().filter(|r| r.seed == plan.seeds[0]).collect();
    let recall: Vec<f64> = first_seed
        .iter()
        .map(|r| r.probe.recall_in(arithmetic))
        .collect();
    let sim: Vec<f64> = first_seed
        .iter()
        .map(|r| r.probe.grad_sim_notebook)
        .collect();
    let trend = Trend {
        first: first_seed[0].probe,
        last: first_seed[first_seed.len() - 1].probe,
        r_recall_grad_sim_notebook: whichgan::metrics::stats::pearson(&recall, &sim)
            .map_or(f64::NAN, |(r, _)| r),
    };
    Ok(Figure3Summary {
        checkpoints: plan.checkpoints.len(),
        protocol: plan.protocol,
        recall_arithmetic: arithmetic,
        seeds: plan.seeds.clone(),
        correlations,
        spread,
        trend,
    })
}

/// The study's three panels for the first seed, coloured by minimum W1.
fn draw(
    stem: &Path,
    plan: &SweepPlan,
    rows: &[SweepRow],
    correlations: &[Figure3Correlation],
    arithmetic: Arithmetic,
) -> Result<()> {
    let seed = plan.seeds[0];
    let rows: Vec<&SweepRow> = rows.iter().filter(|r| r.seed == seed).collect();
    let sim: Vec<f64> = rows.iter().map(|r| r.probe.grad_sim_notebook).collect();
    let recall: Vec<f64> = rows.iter().map(|r| r.probe.recall_in(arithmetic)).collect();
    let w1: Vec<f64> = rows.iter().map(|r| r.min_w1()).collect();
    let r_of = |metric: &str, convention: &str| {
        correlations
            .iter()
            .find(|c| c.seed == seed && c.metric == metric && c.convention == convention)
            .map_or(f64::NAN, |c| c.pearson_r)
    };
    let sim_label = "∇D similarity (notebook sign, +∇ₓL_G)";
    let recall_label = match arithmetic {
        Arithmetic::Exact => "recall",
        Arithmetic::F32Expanded => "recall (float32, |u|²−2u·v+|v|²)",
    };
    let panels = [
        ColoredPanel {
            title: format!("recall vs ∇D similarity (seed {seed})"),
            x_label: sim_label,
            y_label: recall_label,
            x: &sim,
            y: &recall,
        },
        ColoredPanel {
            title: format!("r = {:.3}", r_of("grad_sim", "notebook")),
            x_label: sim_label,
            y_label: "min W1 of the fine-tune",
            x: &sim,
            y: &w1,
        },
        ColoredPanel {
            title: format!("r = {:.3}", r_of("recall", arithmetic.name())),
            x_label: recall_label,
            y_label: "min W1 of the fine-tune",
            x: &recall,
            y: &w1,
        },
    ];
    plot::colored_scatter(stem, &panels, &w1, "min W1", 480).map_err(|e| e.in_file(stem))
}
