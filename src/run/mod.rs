//! The run layer: what every training run needs around the one training loop
//! ([`crate::train`]), written once for the toy runs, the StyleGAN2 runs and the studies built
//! on them.
//!
//! - [`folder`]: the output folder (new, `overwrite`, resume), checked before anything is
//!   written, and the run's JSONL log (appended; cut back to a resumed checkpoint);
//! - [`progress`]: the progress bars;
//! - [`schedule`]: "every N steps and at the last one";
//! - [`state`]: a run's own state in its checkpoints, typed and versioned, the model check and
//!   the names of the settings a resume changed;
//! - [`shard`]: one slice of a grid of jobs (`--shard i/N`), and [`slurm`]: a grid's shards as
//!   a Slurm job array with a collect job, their status, resubmission;
//! - [`generator`]: the one rule for the clamp a generator checkpoint is rebuilt with;
//! - [`stylegan2`]: the StyleGAN2-ADA training run (`whichgan train`).
//!
//! The toy run (`whichgan-toy`) is built from the same pieces.

pub mod folder;
pub mod generator;
pub mod progress;
pub mod schedule;
pub mod shard;
pub mod slurm;
pub mod state;
pub mod stylegan2;

pub use folder::{prepare_out, RunLog, Start};
pub use schedule::Every;
pub use shard::Shard;
pub use state::RunState;
