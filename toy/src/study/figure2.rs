//! Figure 2: training on the target from the Source-I checkpoint, from the Source-II checkpoint
//! and from scratch. The study's finding: Source-I (a generator that reaches every target mode)
//! beats scratch; Source-II (three of ten modes) ends worse than scratch.

use super::runs::{Start, TargetRun, TargetStudy, FIGURE_SAMPLES};
use super::{derive_seed, median, target, Role, Source};
use crate::train::{networks, sample_generator};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::Path;
use whichgan::io::write_csv;
use whichgan::plot::{self, Panel, Scatter, PALETTE};
use whichgan::Result;

/// The three starts of Figure 2.
pub fn starts() -> [Start; 3] {
    [
        Start::pretrained(Source::One),
        Start::pretrained(Source::Two),
        Start::SCRATCH,
    ]
}

/// Median final W1 of one start over the seeds.
#[derive(Debug, Clone, Serialize)]
pub struct StartMedian {
    pub start: String,
    pub median_final_w1: f64,
    pub median_min_w1: f64,
    pub median_modes_covered: f64,
}

/// What Figure 2 found.
#[derive(Debug, Clone, Serialize)]
pub struct Figure2Summary {
    pub seeds: Vec<u64>,
    pub medians: Vec<StartMedian>,
    /// W1(Source-I start) < W1(scratch) < W1(Source-II start), in the medians of final W1.
    pub study_ordering_holds: bool,
    /// Seeds in which that ordering holds.
    pub seeds_with_ordering: usize,
}

const LIMITS: ([f64; 2], [f64; 2]) = ([-34.0, 34.0], [-34.0, 34.0]);

/// Writes `figure2.csv` (one row per seed and start) and `figure2.png`/`.svg` (the first seed).
pub fn write(out: &Path, study: &TargetStudy) -> Result<Figure2Summary> {
    let [s1, s2, scratch] = starts();
    let mut rows = Vec::new();
    for run in study.runs.iter().filter(|r| starts().contains(&r.start)) {
        let last = run.last();
        rows.push(vec![
            run.seed.to_string(),
            run.start.key(),
            last.w1.to_string(),
            run.min_w1().to_string(),
            last.coverage.modes_covered.to_string(),
            last.coverage.recall.to_string(),
            last.coverage.precision.to_string(),
        ]);
    }
    write_csv(
        &out.join("figure2.csv"),
        &[
            "seed",
            "start",
            "final_w1",
            "min_w1",
            "modes_covered",
            "recall",
            "precision",
        ],
        &rows,
    )?;
    let finals =
        |start: Start| -> Vec<f64> { study.runs_of(start).iter().map(|r| r.last().w1).collect() };
    let medians = starts()
        .iter()
        .map(|&start| {
            let runs = study.runs_of(start);
            StartMedian {
                start: start.key(),
                median_final_w1: median(&finals(start)),
                median_min_w1: median(&runs.iter().map(|r| r.min_w1()).collect::<Vec<_>>()),
                median_modes_covered: median(
                    &runs
                        .iter()
                        .map(|r| r.last().coverage.modes_covered as f64)
                        .collect::<Vec<_>>(),
                ),
            }
        })
        .collect::<Vec<_>>();
    let (f1, f2, f0) = (finals(s1), finals(s2), finals(scratch));
    let seeds_with_ordering = (0..f1.len())
        .filter(|&i| f1[i] < f0[i] && f0[i] < f2[i])
        .count();
    let m = |i: usize| medians[i].median_final_w1;
    draw(&out.join("figure2"), study)?;
    Ok(Figure2Summary {
        seeds: study.seeds.clone(),
        study_ordering_holds: m(0) < m(2) && m(2) < m(1),
        seeds_with_ordering,
        medians,
    })
}

/// The six panels for the first seed: the distributions, the two pretrained generators, the
/// three target runs.
fn draw(stem: &Path, study: &TargetStudy) -> Result<()> {
    let seed = study.seeds[0];
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, Role::Figure));
    rng.set_stream(1);
    let target_samples = target().sample(&mut rng, FIGURE_SAMPLES);
    let mut source_samples = Vec::new();
    let mut generated = Vec::new();
    for source in Source::ALL {
        source_samples.push(source.distribution().sample(&mut rng, FIGURE_SAMPLES));
        let pretrained = super::runs::find_source(&study.sources, source, seed)?;
        let (mut g, _) = networks(&pretrained.last)?;
        generated.push((
            sample_generator(&mut g, &mut rng, FIGURE_SAMPLES)?,
            pretrained.w1,
        ));
    }
    let run = |start: Start| -> &TargetRun {
        study
            .runs
            .iter()
            .find(|r| r.start == start && r.seed == seed)
            .expect("figure 2 runs every start for every seed")
    };
    let dots = |label, points, color| Scatter {
        label,
        points,
        color,
        alpha: 0.35,
        size: 2,
    };
    let mut panels = vec![Panel {
        title: "Source-I, Source-II and the target".into(),
        scatters: vec![
            dots("Source-I", &source_samples[0], PALETTE[0]),
            dots("Source-II", &source_samples[1], PALETTE[2]),
            dots("target", &target_samples, PALETTE[3]),
        ],
        arrows: Vec::new(),
        limits: Some(LIMITS),
        x_label: None,
        y_label: None,
    }];
    for (i, source) in Source::ALL.iter().enumerate() {
        panels.push(Panel {
            title: format!(
                "{} G after pretraining (W1 {:.2})",
                source.name(),
                generated[i].1
            ),
            scatters: vec![
                dots(
                    source.name(),
                    &source_samples[i],
                    PALETTE[if i == 0 { 0 } else { 2 }],
                ),
                dots("generated", &generated[i].0, PALETTE[1]),
            ],
            arrows: Vec::new(),
            limits: Some(LIMITS),
            x_label: None,
            y_label: None,
        });
    }
    for start in starts() {
        let r = run(start);
        panels.push(Panel {
            title: format!(
                "target, {}: W1 {:.2} at step {}",
                start.label(),
                r.last().w1,
                r.last().g_step
            ),
            scatters: vec![
                dots("target", &target_samples, PALETTE[3]),
                dots("generated", &r.samples, PALETTE[1]),
            ],
            arrows: Vec::new(),
            limits: Some(LIMITS),
            x_label: None,
            y_label: None,
        });
    }
    let title = format!("Figure 2 (seed {seed}): which source helps on the target");
    plot::panels(stem, Some(&title), &panels, 3, 520).map_err(|e| e.in_file(stem))
}
