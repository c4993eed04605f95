//! Training on the target from a chosen start, with evaluation curves.

use super::pretrain::Pretrained;
use super::probe::{self, Coverage};
use super::{
    derive_seed, in_parallel, median, study_config, target, train_on_target, Preset, Role, Source,
    WIDTH,
};
use crate::train::{new_trainer, start_from, ToyTrainer};
use indicatif::ProgressBar;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::Path;
use whichgan::plot::{self, Curve, LineChart, PALETTE};
use whichgan::{Error, Result};

/// Where one half (G or D) of a target run starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Half {
    /// The final state of the source run of the same seed.
    Pretrained(Source),
    /// The seed's random initialisation.
    Random,
}

impl Half {
    fn key(self) -> &'static str {
        match self {
            Half::Pretrained(s) => s.key(),
            Half::Random => "random",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Half::Pretrained(s) => s.name(),
            Half::Random => "random",
        }
    }
}

/// The start of a target run: where G and where D come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Start {
    pub g: Half,
    pub d: Half,
}

impl Start {
    pub const SCRATCH: Start = Start {
        g: Half::Random,
        d: Half::Random,
    };

    /// G and D both from `source`.
    pub fn pretrained(source: Source) -> Start {
        Start {
            g: Half::Pretrained(source),
            d: Half::Pretrained(source),
        }
    }

    /// The four starts of the ablation for `source`: pretrained or random G × D.
    pub fn ablation(source: Source) -> [Start; 4] {
        let p = Half::Pretrained(source);
        [
            Start { g: p, d: p },
            Start {
                g: p,
                d: Half::Random,
            },
            Start {
                g: Half::Random,
                d: p,
            },
            Start::SCRATCH,
        ]
    }

    /// Name in CSV files: `source1`, `scratch`, `source1-g+random-d`, …
    pub fn key(&self) -> String {
        match (self.g, self.d) {
            (Half::Random, Half::Random) => "scratch".into(),
            (g, d) if g == d => g.key().into(),
            (g, d) => format!("{}-g+{}-d", g.key(), d.key()),
        }
    }

    /// Name in figures: `Source-I start`, `scratch`, `Source-I G + random D`, …
    pub fn label(&self) -> String {
        match (self.g, self.d) {
            (Half::Random, Half::Random) => "scratch".into(),
            (g, d) if g == d => format!("{} start", g.name()),
            (g, d) => format!("{} G + {} D", g.name(), d.name()),
        }
    }

    /// The sources this start needs.
    pub fn sources(&self) -> Vec<Source> {
        let mut out: Vec<Source> = [self.g, self.d]
            .into_iter()
            .filter_map(|h| match h {
                Half::Pretrained(s) => Some(s),
                Half::Random => None,
            })
            .collect();
        out.dedup();
        out
    }
}

/// One evaluation of a target run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    pub g_step: u64,
    /// Exact W1 of G (not the average) to the target.
    pub w1: f64,
    pub coverage: Coverage,
}

/// A finished target run.
#[derive(Debug, Clone)]
pub struct TargetRun {
    pub start: Start,
    pub seed: u64,
    /// Evaluations at step 0, every `target_eval_every` steps and at the end.
    pub curve: Vec<CurvePoint>,
    /// G samples after the last step (for figures).
    pub samples: Vec<[f64; 2]>,
}

impl TargetRun {
    pub fn last(&self) -> &CurvePoint {
        self.curve.last().expect("a run is evaluated at step 0")
    }

    pub fn min_w1(&self) -> f64 {
        self.curve
            .iter()
            .map(|p| p.w1)
            .fold(f64::INFINITY, f64::min)
    }
}

/// Samples drawn for figures.
pub const FIGURE_SAMPLES: usize = 1000;

/// Trains on the target from `start` for the preset's budget, evaluating W1, mode coverage,
/// precision and recall along the way.
pub fn target_run(
    start: Start,
    seed: u64,
    sources: &[Pretrained],
    preset: &Preset,
    bar: &ProgressBar,
) -> Result<TargetRun> {
    let mut trainer = new_trainer(study_config(), WIDTH, derive_seed(seed, Role::Target))?;
    let half = |h: Half| match h {
        Half::Pretrained(source) => find_source(sources, source, seed).map(|p| Some(&p.last)),
        Half::Random => Ok(None),
    };
    start_from(&mut trainer, half(start.g)?, half(start.d)?)?;
    let target = target();
    let eval_seed = derive_seed(seed, Role::TargetEval);
    let mut curve = Vec::new();
    train_on_target(
        &mut trainer,
        &Preset::eval_steps(preset.target_steps, preset.target_eval_every),
        bar,
        |t: &mut ToyTrainer| {
            // The same evaluation samples for every start of a seed.
            let mut rng = ChaCha8Rng::seed_from_u64(eval_seed);
            rng.set_stream(t.g_steps());
            let w1 = probe::w1(t.g_mut(), &target, &mut rng)?;
            let coverage = probe::coverage(t.g_mut(), &target, &mut rng, preset.coverage_samples)?;
            curve.push(CurvePoint {
                g_step: t.g_steps(),
                w1,
                coverage,
            });
            Ok(())
        },
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, Role::Figure));
    let samples = crate::train::sample_generator(trainer.g_mut(), &mut rng, FIGURE_SAMPLES)?;
    Ok(TargetRun {
        start,
        seed,
        curve,
        samples,
    })
}

/// Every start × seed, in parallel; results ordered by seed, then start.
pub fn target_runs(
    starts: &[Start],
    seeds: &[u64],
    sources: &[Pretrained],
    preset: &Preset,
    bar: &ProgressBar,
) -> Result<Vec<TargetRun>> {
    let tasks: Vec<(Start, u64)> = seeds
        .iter()
        .flat_map(|&seed| starts.iter().map(move |&start| (start, seed)))
        .collect();
    bar.set_length(tasks.len() as u64 * preset.target_steps);
    let runs = in_parallel(&tasks, |&(start, seed)| {
        target_run(start, seed, sources, preset, bar)
    })?;
    bar.finish_and_clear();
    Ok(runs)
}

/// The pretrained source run of `seed`.
pub fn find_source(sources: &[Pretrained], source: Source, seed: u64) -> Result<&Pretrained> {
    sources
        .iter()
        .find(|p| p.source == source && p.seed == seed)
        .ok_or_else(|| {
            Error::invalid(format!(
                "no pretrained {} run for seed {seed}",
                source.name()
            ))
        })
}

/// The (source, seed) pairs that `starts` × `seeds` need.
pub fn sources_needed(starts: &[Start], seeds: &[u64]) -> Vec<(Source, u64)> {
    let mut pairs: Vec<(Source, u64)> = seeds
        .iter()
        .flat_map(|&seed| {
            starts
                .iter()
                .flat_map(|s| s.sources())
                .map(move |s| (s, seed))
        })
        .collect();
    pairs.sort();
    pairs.dedup();
    pairs
}

/// Source runs and target runs of several seeds.
pub struct TargetStudy {
    pub seeds: Vec<u64>,
    pub sources: Vec<Pretrained>,
    pub runs: Vec<TargetRun>,
}

impl TargetStudy {
    /// Pretrains what `starts` need, then trains on the target from each start, every seed.
    pub fn run(starts: &[Start], opts: &super::StudyOptions) -> Result<TargetStudy> {
        let seeds = opts.target_seeds();
        let pairs = sources_needed(starts, &seeds);
        let bar = opts.bar("pretraining sources", 0);
        let sources = super::pretrain::pretrain_all(&pairs, &[], opts.protocol, opts.preset, &bar)?;
        let bar = opts.bar("target runs", 0);
        let runs = target_runs(starts, &seeds, &sources, opts.preset, &bar)?;
        Ok(TargetStudy {
            seeds,
            sources,
            runs,
        })
    }

    /// The runs of `start`, in seed order.
    pub fn runs_of(&self, start: Start) -> Vec<&TargetRun> {
        self.runs.iter().filter(|r| r.start == start).collect()
    }
}

/// One panel of [`draw_median_curves`]: for each start, the median over seeds of `value`.
pub struct MedianPanel<'a> {
    pub title: String,
    pub y_label: &'a str,
    pub starts: Vec<Start>,
    pub value: Box<dyn Fn(&CurvePoint) -> f64 + 'a>,
}

/// Median curves against the G step on the target, one panel each, `columns` panels per row
/// (`<stem>.png`, `<stem>.svg`).
pub fn draw_median_curves(
    stem: &Path,
    study: &TargetStudy,
    panels: &[MedianPanel],
    columns: usize,
) -> Result<()> {
    // Per panel, per start: (legend label, median curve).
    type Labelled = (String, Vec<(f64, f64)>);
    let medians: Vec<Vec<Labelled>> = panels
        .iter()
        .map(|panel| {
            let starts = panel.starts.iter();
            starts
                .map(|&s| (s.label(), median_curve(study, s, &panel.value)))
                .collect()
        })
        .collect();
    let curves: Vec<Vec<Curve>> = medians
        .iter()
        .map(|per_start| {
            let per_start = per_start.iter().enumerate();
            per_start
                .map(|(i, (label, points))| Curve {
                    label,
                    points,
                    color: PALETTE[i],
                })
                .collect()
        })
        .collect();
    let charts: Vec<LineChart> = panels
        .iter()
        .zip(&curves)
        .map(|(panel, curves)| LineChart {
            title: &panel.title,
            x_label: "G step on the target",
            y_label: panel.y_label,
            curves,
            log_y: false,
        })
        .collect();
    plot::line_grid(stem, &charts, columns).map_err(|e| e.in_file(stem))
}

/// The median over seeds of `value` at each evaluated step of `start`'s runs.
fn median_curve(
    study: &TargetStudy,
    start: Start,
    value: impl Fn(&CurvePoint) -> f64,
) -> Vec<(f64, f64)> {
    let runs = study.runs_of(start);
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    (0..first.curve.len())
        .map(|i| {
            let values: Vec<f64> = runs.iter().map(|r| value(&r.curve[i])).collect();
            (first.curve[i].g_step as f64, median(&values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_names_and_sources() {
        let [full, g_only, d_only, scratch] = Start::ablation(Source::One);
        assert_eq!(full.key(), "source1");
        assert_eq!(g_only.key(), "source1-g+random-d");
        assert_eq!(d_only.label(), "random G + Source-I D");
        assert_eq!(scratch, Start::SCRATCH);
        assert_eq!(full.sources(), [Source::One]);
        assert!(scratch.sources().is_empty());
        let pairs = sources_needed(&[full, Start::pretrained(Source::Two), scratch], &[0, 1]);
        assert_eq!(
            pairs,
            [
                (Source::One, 0),
                (Source::One, 1),
                (Source::Two, 0),
                (Source::Two, 1)
            ]
        );
    }
}
