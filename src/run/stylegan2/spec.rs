//! What a StyleGAN2 run trains and how, what `--resume` starts, and the state its snapshots
//! keep.

use super::MODEL;
use crate::run::state::{self, RunState};
use crate::stylegan2::presets::Preset;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How D's inputs are augmented.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AugMode {
    /// p adjusted towards E[sign D(real)] = `target`, a unit change in `speed_kimg` kimg.
    Ada { target: f64, speed_kimg: f64 },
    /// p fixed.
    Fixed,
    /// No augmentation.
    NoAug,
}

/// The augmentation of a run: mode, pipeline preset (`bgc`, …) and starting p.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugOptions {
    pub mode: AugMode,
    pub pipe: String,
    pub p: f64,
}

/// What a run trains and how: resuming needs all of it unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub preset: Preset,
    pub seed: u64,
    pub mirror: bool,
    pub aug: AugOptions,
    /// Discriminator layers frozen (Freeze-D).
    pub freezed: usize,
    /// The pretrained checkpoint the run started from, if any.
    pub start: Option<String>,
    /// Conditional on the dataset's class labels (absent in snapshots of earlier versions,
    /// which trained unconditionally).
    #[serde(default)]
    pub cond: bool,
}

/// What a snapshot keeps of its run: the spec and where the tick and snapshot schedule stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotState {
    pub spec: RunSpec,
    pub next_tick: u64,
    pub next_snap: u64,
}

impl RunState for SnapshotState {
    const MODEL: &'static str = MODEL;
    const FORMAT: u32 = 1;
}

/// A snapshot of ours and its state; its spec must equal this run's (every difference named).
pub(super) fn read_snapshot(
    path: &Path,
    spec: &RunSpec,
) -> Result<(crate::train::Checkpoint, SnapshotState)> {
    let (ckpt, snapshot) = state::load::<SnapshotState>(path)?;
    if snapshot.spec != *spec {
        return Err(Error::in_file(
            path,
            format!(
                "this run was trained with other settings: {}; resume with its settings",
                state::differences(&snapshot.spec, spec)
            ),
        ));
    }
    Ok((ckpt, snapshot))
}

/// What `--resume` starts: a new run, the exact continuation of a snapshot of the run in the
/// output folder, or a fine-tune from any other checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStart {
    /// The snapshot to continue, when `--resume` names one of the run in the output folder.
    pub resume: Option<PathBuf>,
    /// The pretrained checkpoint the networks come from (that of the continued run, if any).
    pub pretrained: Option<String>,
}

impl RunStart {
    /// `resume` read against the output folder `out`: a snapshot of the run there continues
    /// it; any other file starts a fine-tune from it.
    pub fn new(resume: Option<&Path>, out: &Path) -> Result<Self> {
        let Some(path) = resume else {
            return Ok(RunStart {
                resume: None,
                pretrained: None,
            });
        };
        if let Some(pretrained) = snapshot_start(path, out) {
            return Ok(RunStart {
                resume: Some(path.to_owned()),
                pretrained,
            });
        }
        crate::io::check_readable_file(path)?;
        Ok(RunStart {
            resume: None,
            pretrained: Some(path.display().to_string()),
        })
    }

    /// The preset as the reference trains from pretrained networks: no EMA ramp-up.
    pub fn adjust(&self, preset: &mut Preset) {
        if self.pretrained.is_some() {
            preset.ema_rampup = None;
        }
    }

    /// ADA towards `target`: 500 kimg for a unit change of p, 100 from pretrained networks (as
    /// the reference does).
    pub fn ada(&self, target: f64) -> AugMode {
        let speed_kimg = if self.pretrained.is_some() {
            100.0
        } else {
            500.0
        };
        AugMode::Ada { target, speed_kimg }
    }
}

/// The pretrained checkpoint a snapshot's run started from, when `path` is a snapshot of the
/// run in `out` (`Some(None)`: trained from scratch); `None` for any other file.
fn snapshot_start(path: &Path, out: &Path) -> Option<Option<String>> {
    let folder = path.parent()?.canonicalize().ok()?;
    if out.canonicalize().ok()? != folder {
        return None;
    }
    // Any checkpoint of ours there continues the run (one of another model is refused then).
    crate::train::Checkpoint::read_meta(path)?;
    Some(state::peek::<SnapshotState>(path).and_then(|s| s.spec.start))
}
