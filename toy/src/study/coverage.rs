//! Mode coverage over fine-tuning: modes covered (≥ 10 samples within 3σ), precision and
//! recall along the target runs from Source-I, Source-II and scratch — the toy counterpart of
//! the study's Flowers mode-coverage curve.

use super::median;
use super::probe::Coverage;
use super::runs::{draw_median_curves, MedianPanel, Start, TargetStudy};
use serde::Serialize;
use std::path::Path;
use whichgan::io::write_csv;
use whichgan::Result;

/// The starts of the coverage curves (those of Figure 2).
pub fn starts() -> [Start; 3] {
    super::figure2::starts()
}

/// Medians over seeds at the last step.
#[derive(Debug, Clone, Serialize)]
pub struct CoverageFinal {
    pub start: String,
    pub median_modes_covered: f64,
    pub median_precision: f64,
    pub median_recall: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageSummary {
    pub samples: usize,
    pub finals: Vec<CoverageFinal>,
}

/// Writes `coverage.csv` (every evaluation of every run) and `coverage.png`/`.svg` (medians
/// over seeds of modes covered, recall and precision against G steps).
pub fn write(out: &Path, study: &TargetStudy, samples: usize) -> Result<CoverageSummary> {
    let mut rows = Vec::new();
    for run in study.runs.iter().filter(|r| starts().contains(&r.start)) {
        for p in &run.curve {
            rows.push(vec![
                run.seed.to_string(),
                run.start.key(),
                p.g_step.to_string(),
                p.coverage.modes_covered.to_string(),
                p.coverage.high_quality.to_string(),
                p.coverage.precision.to_string(),
                p.coverage.recall.to_string(),
                p.w1.to_string(),
            ]);
        }
    }
    write_csv(
        &out.join("coverage.csv"),
        &[
            "seed",
            "start",
            "g_step",
            "modes_covered",
            "high_quality",
            "precision",
            "recall",
            "w1",
        ],
        &rows,
    )?;
    type Metric = (&'static str, fn(&Coverage) -> f64);
    let metrics: [Metric; 3] = [
        ("modes covered (of 10)", |c| c.modes_covered as f64),
        ("recall", |c| c.recall),
        ("precision", |c| c.precision),
    ];
    let panels: Vec<MedianPanel> = metrics
        .into_iter()
        .map(|(name, get)| MedianPanel {
            title: format!("{name}, median of {} seeds", study.seeds.len()),
            y_label: name,
            starts: starts().to_vec(),
            value: Box::new(move |p| get(&p.coverage)),
        })
        .collect();
    draw_median_curves(&out.join("coverage"), study, &panels, 3)?;
    let finals = starts()
        .iter()
        .map(|&s| {
            let last = |get: fn(&Coverage) -> f64| {
                median(
                    &study
                        .runs_of(s)
                        .iter()
                        .map(|r| get(&r.last().coverage))
                        .collect::<Vec<_>>(),
                )
            };
            CoverageFinal {
                start: s.key(),
                median_modes_covered: last(|c| c.modes_covered as f64),
                median_precision: last(|c| c.precision),
                median_recall: last(|c| c.recall),
            }
        })
        .collect();
    Ok(CoverageSummary { samples, finals })
}
