//! The experiments' budgets, in one table.

use serde::Serialize;
use whichgan::{Error, Result};

/// Budgets and sample sizes of the synthetic experiments. G steps count generator updates; a
/// run of `n` steps is evaluated before its first update (step 0) and after update `n`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preset {
    pub name: &'static str,
    /// G steps of each source pretraining.
    pub pretrain_steps: u64,
    /// The sweep's checkpoints are the Source-I run every this many G steps, step 0 included
    /// (a divisor of `pretrain_steps`, so the last step is one too).
    pub checkpoint_every: u64,
    /// G steps of each fine-tune from a sweep checkpoint.
    pub sweep_steps: u64,
    /// W1 of a sweep fine-tune every this many G steps; a checkpoint's score is the minimum.
    pub sweep_eval_every: u64,
    /// G samples (and fresh target samples) for a checkpoint's recall and ∇D similarity.
    pub sweep_samples: usize,
    /// Seeds of the sweep (each its own Source-I run and fine-tunes).
    pub sweep_seeds: u64,
    /// G steps of the target runs of Figure 2, the ablation and the coverage curves.
    pub target_steps: u64,
    /// Their evaluations every this many G steps.
    pub target_eval_every: u64,
    /// G samples (and target samples) for mode coverage, precision and recall.
    pub coverage_samples: usize,
    /// Seeds of the target runs.
    pub seeds: u64,
}

/// `paper`: the public notebook's budgets — 5000 pretraining G steps with a checkpoint every
/// 50 (101 checkpoints), 1000-step fine-tunes with W1 every 250 on 2048 samples, recall and ∇D
/// similarity on 1000 samples; the target runs get the notebook's fine-tuning budget too.
/// `fast`: the same pipeline shrunk to finish in a couple of minutes (a smoke test, not a
/// result).
pub const PRESETS: [Preset; 2] = [
    Preset {
        name: "paper",
        pretrain_steps: 5000,
        checkpoint_every: 50,
        sweep_steps: 1000,
        sweep_eval_every: 250,
        sweep_samples: 1000,
        sweep_seeds: 1,
        target_steps: 1000,
        target_eval_every: 100,
        coverage_samples: 10_000,
        seeds: 3,
    },
    Preset {
        name: "fast",
        pretrain_steps: 500,
        checkpoint_every: 50,
        sweep_steps: 200,
        sweep_eval_every: 100,
        sweep_samples: 1000,
        sweep_seeds: 1,
        target_steps: 200,
        target_eval_every: 50,
        coverage_samples: 2000,
        seeds: 3,
    },
];

impl Preset {
    pub fn by_name(name: &str) -> Result<&'static Preset> {
        PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
            let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
            Error::invalid(format!(
                "unknown preset '{name}'; choose one of: {}",
                names.join(", ")
            ))
        })
    }

    /// G steps of the sweep's checkpoints: 0, every, 2·every, …, pretrain_steps.
    pub fn checkpoint_steps(&self) -> Vec<u64> {
        (0..=self.pretrain_steps)
            .step_by(self.checkpoint_every as usize)
            .collect()
    }

    /// G steps at which a run of `steps` steps is evaluated every `every`: 0, every, …, and
    /// the last step.
    pub fn eval_steps(steps: u64, every: u64) -> Vec<u64> {
        let mut out: Vec<u64> = (0..=steps).step_by(every.max(1) as usize).collect();
        if out.last() != Some(&steps) {
            out.push(steps);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        let paper = Preset::by_name("paper").unwrap();
        let steps = paper.checkpoint_steps();
        assert_eq!(steps.len(), 101, "the notebook's 101 checkpoints");
        assert_eq!((steps[0], steps[100]), (0, 5000));
        assert_eq!(Preset::eval_steps(1000, 250), [0, 250, 500, 750, 1000]);
        assert_eq!(Preset::eval_steps(120, 50), [0, 50, 100, 120]);
        for p in &PRESETS {
            assert_eq!(p.pretrain_steps % p.checkpoint_every, 0, "{}", p.name);
            assert!(
                p.sweep_eval_every > 0 && p.target_eval_every > 0,
                "{}",
                p.name
            );
        }
        assert!(Preset::by_name("nope")
            .unwrap_err()
            .to_string()
            .contains("paper, fast"));
    }
}
