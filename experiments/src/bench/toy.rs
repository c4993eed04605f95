//! `whichgan bench toy`: one toy training cycle against the playground's PyTorch code, 1 thread.

use super::{ratio, Bench};
use crate::report::Report;
use std::time::Instant;
use whichgan::train::{Loss, Penalty};
use whichgan::{Error, Result};
use whichgan_toy::train::{new_trainer, playground_config, DistributionData};

impl Bench {
    pub(super) fn toy(&self, cycles: usize, data: &str) -> Result<Report> {
        let spec = match data {
            "fat-circle" => "fat-circle:r=20,sigma=4",
            "circle" => "circle:size=20,sigma=0.25",
            other => {
                return Err(Error::invalid(format!(
                    "--data must be fat-circle or circle, got '{other}'"
                )))
            }
        };
        whichgan::runtime::setup(whichgan::runtime::Parallelism::AcrossTasks);
        let config = playground_config(Loss::Vanilla, Penalty::None, 4);
        let mut trainer = new_trainer(config, 64, 0)?;
        let mut source = DistributionData {
            distribution: spec.parse()?,
            device: trainer.device().clone(),
        };
        for _ in 0..20 {
            trainer.cycle(&mut source)?;
        }
        let start = Instant::now();
        for _ in 0..cycles {
            trainer.cycle(&mut source)?;
        }
        let ours_ms = start.elapsed().as_secs_f64() * 1e3 / cycles as f64;
        let cycles_arg = cycles.to_string();
        let reference = self.python_json(
            "toy_torch.py",
            &[
                "--threads".as_ref(),
                "1".as_ref(),
                "--cycles".as_ref(),
                cycles_arg.as_ref(),
                "--data".as_ref(),
                data.as_ref(),
            ],
            true,
        )?;
        let torch_ms = reference["ms_per_cycle"].as_f64().unwrap_or(f64::NAN);
        Ok(Report::new()
            .with("bench", format!("toy training cycle ({data}), 1 thread"))
            .with("ours_ms_per_cycle", ours_ms)
            .with("torch_ms_per_cycle", torch_ms)
            .with("speedup_vs_torch", ratio(torch_ms, ours_ms)))
    }
}
