//! The image-scale study as one grid of runs (`whichgan study`): candidate sources
//! (checkpoints, or pretrained here), fine-tunes of every source — and of random networks —
//! on every target through `train`'s run ([`crate::run::stylegan2`]), each snapshot scored
//! (FID, KID, precision, recall, classes covered), the selection scores of every source for
//! every target, and the report that checks the study's claims.
//!
//! - [`file`]: the study file's schema (TOML);
//! - [`spec`]: the study checked and resolved before any work;
//! - [`jobs`]: the grid of jobs, where each writes, and how processes share them;
//! - [`run`]: running the jobs (all, or one shard's);
//! - [`report`]: tables, figures and the claims checked.

pub mod file;
pub mod jobs;
pub mod report;
pub mod run;
pub mod spec;

pub use file::StudyFile;
pub use report::write_report;
pub use run::{run_study, Outcome, StudyOptions};
pub use spec::Study;
