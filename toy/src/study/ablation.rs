//! The G/D ablation: training on the target from pretrained or random G × pretrained or random
//! D, for each source — the study's claim that the generator decides which modes can be reached
//! and the discriminator supplies the gradient field that moves samples, so both halves matter.

use super::runs::{draw_median_curves, CurvePoint, Half, MedianPanel, Start, TargetStudy};
use super::{median, Source};
use serde::Serialize;
use std::path::Path;
use whichgan::io::write_csv;
use whichgan::Result;

/// Every start of the ablation (the scratch start is shared by both sources).
pub fn starts() -> Vec<Start> {
    let mut unique = Vec::new();
    for s in Source::ALL.iter().flat_map(|&s| Start::ablation(s)) {
        if !unique.contains(&s) {
            unique.push(s);
        }
    }
    unique
}

/// One start's medians over seeds and its rank among the four.
#[derive(Debug, Clone, Serialize)]
pub struct AblationRank {
    pub source: &'static str,
    pub start: String,
    pub median_final_w1: f64,
    pub median_final_modes: f64,
    /// 1 = lowest median final W1 among the source's four starts.
    pub rank: usize,
}

/// Writes `ablation.csv` (every evaluation), `ablation-ranking.csv` and
/// `ablation.png`/`.svg` (median W1 and modes covered against G steps, per source).
pub fn write(out: &Path, study: &TargetStudy) -> Result<Vec<AblationRank>> {
    let mut rows = Vec::new();
    let mut ranking = Vec::new();
    for source in Source::ALL {
        for start in Start::ablation(source) {
            for run in study.runs_of(start) {
                for p in &run.curve {
                    rows.push(vec![
                        run.seed.to_string(),
                        source.key().to_string(),
                        start.key(),
                        init(start.g).into(),
                        init(start.d).into(),
                        p.g_step.to_string(),
                        p.w1.to_string(),
                        p.coverage.modes_covered.to_string(),
                    ]);
                }
            }
        }
        let mut ranks: Vec<AblationRank> = Start::ablation(source)
            .iter()
            .map(|&start| {
                let runs = study.runs_of(start);
                let finals = |get: &dyn Fn(&super::runs::TargetRun) -> f64| {
                    median(&runs.iter().map(|r| get(r)).collect::<Vec<_>>())
                };
                AblationRank {
                    source: source.key(),
                    start: start.key(),
                    median_final_w1: finals(&|r| r.last().w1),
                    median_final_modes: finals(&|r| r.last().coverage.modes_covered as f64),
                    rank: 0,
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..ranks.len()).collect();
        order.sort_by(|&a, &b| {
            ranks[a]
                .median_final_w1
                .total_cmp(&ranks[b].median_final_w1)
        });
        for (rank, &i) in order.iter().enumerate() {
            ranks[i].rank = rank + 1;
        }
        ranking.extend(ranks);
    }
    write_csv(
        &out.join("ablation.csv"),
        &[
            "seed",
            "source",
            "start",
            "g_init",
            "d_init",
            "g_step",
            "w1",
            "modes_covered",
        ],
        &rows,
    )?;
    let ranking_rows: Vec<Vec<String>> = ranking
        .iter()
        .map(|r| {
            vec![
                r.source.to_string(),
                r.start.clone(),
                r.median_final_w1.to_string(),
                r.median_final_modes.to_string(),
                r.rank.to_string(),
            ]
        })
        .collect();
    write_csv(
        &out.join("ablation-ranking.csv"),
        &[
            "source",
            "start",
            "median_final_w1",
            "median_final_modes_covered",
            "rank",
        ],
        &ranking_rows,
    )?;
    draw(&out.join("ablation"), study)?;
    Ok(ranking)
}

fn init(half: Half) -> &'static str {
    match half {
        Half::Pretrained(_) => "pretrained",
        Half::Random => "random",
    }
}

fn draw(stem: &Path, study: &TargetStudy) -> Result<()> {
    type Metric = (&'static str, fn(&CurvePoint) -> f64);
    let metrics: [Metric; 2] = [
        ("W1 to the target", |p| p.w1),
        ("modes covered (of 10)", |p| p.coverage.modes_covered as f64),
    ];
    let panels: Vec<MedianPanel> = metrics
        .into_iter()
        .flat_map(|(name, get)| {
            Source::ALL.into_iter().map(move |source| MedianPanel {
                title: format!(
                    "{}: {name}, median of {} seeds",
                    source.name(),
                    study.seeds.len()
                ),
                y_label: name,
                starts: Start::ablation(source).to_vec(),
                value: Box::new(get),
            })
        })
        .collect();
    draw_median_curves(stem, study, &panels, 2)
}
