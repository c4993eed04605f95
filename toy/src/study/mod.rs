//! The study's synthetic experiments: Figure 2 (which source helps), Figure 3 (what predicts a
//! good checkpoint), the G/D ablation and the mode-coverage curves.
//!
//! Every experiment is built from the same parts: pretrain G and D on the sources
//! ([`pretrain`]), train on the target from chosen starts ([`runs`]), measure ([`probe`]), write
//! CSV files and figures. The budgets live in one table, [`PRESETS`]; `paper` follows the
//! study's public notebook.
//!
//! Randomness: each run draws from streams derived from the user's seed and the run's role
//! ([`derive_seed`]), never from the order in which runs happen, so the numbers do not depend on
//! the number of threads, on sharding, or on which experiments run together. Runs of one seed
//! that start differently share their random initialisation, latents and data batches (common
//! random numbers), so differences between starts are not noise between streams. (The sweep's
//! fine-tunes each get their own streams, as the notebook's did.)

pub mod ablation;
pub mod coverage;
pub mod figure2;
pub mod figure3;
mod preset;
pub mod pretrain;
pub mod probe;
pub mod reference;
pub mod reproduce;
pub mod runs;

pub use preset::{Preset, PRESETS};

use crate::Distribution;
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use whichgan::Result;

/// Width of the playground's networks.
pub const WIDTH: usize = 64;
/// The study's target: 10 Gaussians of σ = 0.25 on a circle of radius 20.
pub const TARGET_SPEC: &str = "circle:size=20,sigma=0.25";

/// The target distribution.
pub fn target() -> Distribution {
    TARGET_SPEC.parse().expect("the target spec is valid")
}

/// The study's two sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// A fat circle through all ten target modes: a generator that can reach every mode.
    One,
    /// Three of the ten target modes: a generator that reaches only those.
    Two,
}

impl Source {
    pub const ALL: [Source; 2] = [Source::One, Source::Two];

    pub fn spec(self) -> &'static str {
        match self {
            Source::One => "fat-circle:r=20,sigma=4",
            Source::Two => "circle:size=20,sigma=0.5,modes=3",
        }
    }

    pub fn distribution(self) -> Distribution {
        self.spec().parse().expect("the source specs are valid")
    }

    /// Name in figures.
    pub fn name(self) -> &'static str {
        match self {
            Source::One => "Source-I",
            Source::Two => "Source-II",
        }
    }

    /// Name in CSV files.
    pub fn key(self) -> &'static str {
        match self {
            Source::One => "source1",
            Source::Two => "source2",
        }
    }
}

/// What a derived seed is for; each role (and step, where given) has its own streams.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    Pretrain(Source),
    /// Training on the target (all starts of one seed share it).
    Target,
    /// Evaluation samples of target runs.
    TargetEval,
    /// The fine-tune from the sweep checkpoint at this G step.
    SweepFinetune(u64),
    /// Recall and ∇D similarity of the sweep checkpoint at this G step.
    SweepProbe(u64),
    /// Samples drawn for figures.
    Figure,
}

impl Role {
    fn code(self) -> u64 {
        match self {
            Role::Pretrain(Source::One) => 1,
            Role::Pretrain(Source::Two) => 2,
            Role::Target => 3,
            Role::TargetEval => 4,
            Role::SweepFinetune(step) => (5 << 40) | step,
            Role::SweepProbe(step) => (6 << 40) | step,
            Role::Figure => 7,
        }
    }
}

/// A seed for one role of an experiment, from the user's seed (SplitMix64 finaliser of both,
/// so nearby seeds and roles give unrelated streams).
pub fn derive_seed(seed: u64, role: Role) -> u64 {
    let mut z = seed ^ role.code().wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How the Figure 3 sweep counts G steps. A checkpoint or evaluation labelled `s` is taken
/// after `s + offset()` G updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Label s is after s updates: checkpoint 0 is the random initialisation, and a fine-tune's
    /// W1 is measured after 0, 250, …, 1000 updates.
    #[default]
    Updates,
    /// The public playground's counter, which is read after an update and before it is
    /// incremented: label s is after s + 1 updates. Checkpoint 0 has had one D and one G update
    /// (its BatchNorm statistics have moved), W1 is measured after 1, 251, …, 1001 updates, and
    /// the Source-I run makes one update more than the preset's budget.
    Playground,
}

impl Protocol {
    pub const NAMES: [&'static str; 2] = ["updates", "playground"];

    /// G updates a label stands for beyond its number.
    pub fn offset(self) -> u64 {
        match self {
            Protocol::Updates => 0,
            Protocol::Playground => 1,
        }
    }

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl std::str::FromStr for Protocol {
    type Err = whichgan::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "updates" => Ok(Protocol::Updates),
            "playground" => Ok(Protocol::Playground),
            _ => Err(whichgan::Error::invalid(format!(
                "unknown protocol '{s}'; choose one of: {}",
                Self::NAMES.join(", ")
            ))),
        }
    }
}

/// What every experiment command takes.
#[derive(Debug, Clone)]
pub struct StudyOptions {
    pub preset: &'static Preset,
    /// The first seed; repeats use the next ones.
    pub seed: u64,
    /// How many seeds to run — of the target runs (Figure 2, ablation, coverage) and of the
    /// Figure 3 sweep alike; `None`: the preset's numbers for each.
    pub seeds: Option<u64>,
    /// How the Figure 3 sweep counts G steps.
    pub protocol: Protocol,
    /// The arithmetic of the recall and precision Figure 3's panels and headline use (both are
    /// in its CSV files).
    pub recall_arithmetic: probe::Arithmetic,
    /// Show progress bars on stderr.
    pub progress: bool,
}

impl StudyOptions {
    /// Seeds of the target runs.
    pub fn target_seeds(&self) -> Vec<u64> {
        self.seed_list(self.seeds.unwrap_or(self.preset.seeds))
    }

    fn seed_list(&self, n: u64) -> Vec<u64> {
        (self.seed..self.seed + n).collect()
    }

    /// A progress bar for one phase, counting G steps (hidden without `progress`).
    pub fn bar(&self, phase: &str, g_steps: u64) -> ProgressBar {
        whichgan::run::progress::phase(self.progress, phase, g_steps)
    }
}

/// Runs `task` on every item on the thread pool; results come back in item order.
pub fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    task: impl Fn(&T) -> Result<R> + Sync + Send,
) -> Result<Vec<R>> {
    items.par_iter().with_max_len(1).map(task).collect()
}

/// Median of values (mean of the middle two for an even count); NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// The least and the greatest of the finite `values` (∞ and −∞ for none).
pub fn finite_range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// The playground's default training: vanilla loss, no penalty, 4 D steps per G step.
pub fn study_config() -> whichgan::train::TrainConfig {
    crate::train::playground_config(
        whichgan::train::Loss::Vanilla,
        whichgan::train::Penalty::None,
        4,
    )
}

/// Trains on the target until the last of `eval_at` (G step counts, ascending), calling
/// `evaluate` after each of them (before the first update for a 0).
pub(crate) fn train_on_target(
    trainer: &mut crate::train::ToyTrainer,
    eval_at: &[u64],
    bar: &ProgressBar,
    mut evaluate: impl FnMut(&mut crate::train::ToyTrainer) -> Result<()>,
) -> Result<()> {
    if eval_at.first() == Some(&0) {
        evaluate(trainer)?;
    }
    let mut hook = OnSchedule {
        eval_at,
        bar,
        on_eval: evaluate,
    };
    let mut data = crate::train::DistributionData {
        distribution: target(),
        device: candle_core::Device::Cpu,
    };
    trainer.run(&mut data, eval_at.last().copied().unwrap_or(0), &mut hook)
}

/// A hook that advances a progress bar and calls `on_eval` after the G steps listed in
/// `eval_at` (ascending).
pub(crate) struct OnSchedule<'a, F> {
    pub eval_at: &'a [u64],
    pub bar: &'a ProgressBar,
    pub on_eval: F,
}

impl<F> whichgan::train::EvalHook<crate::nets::MlpGenerator, crate::nets::MlpDiscriminator>
    for OnSchedule<'_, F>
where
    F: FnMut(&mut crate::train::ToyTrainer) -> Result<()>,
{
    fn after_g_step(
        &mut self,
        trainer: &mut crate::train::ToyTrainer,
        _report: &whichgan::train::StepReport,
    ) -> Result<()> {
        self.bar.inc(1);
        if self.eval_at.binary_search(&trainer.g_steps()).is_ok() {
            (self.on_eval)(trainer)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_by_role_and_seed() {
        let roles = [
            Role::Pretrain(Source::One),
            Role::Pretrain(Source::Two),
            Role::Target,
            Role::TargetEval,
            Role::SweepFinetune(0),
            Role::SweepFinetune(50),
            Role::SweepProbe(0),
            Role::Figure,
        ];
        let mut seen = std::collections::HashSet::new();
        for seed in 0..4 {
            for role in roles {
                assert!(seen.insert(derive_seed(seed, role)), "{seed} {role:?}");
            }
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
