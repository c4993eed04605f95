//! The one rule for the clamp the networks of a StyleGAN2 checkpoint are rebuilt with, for
//! every command that runs one (`generate`, `discriminate`, generator sources of `features`
//! and `select`, snapshot metrics).

use super::state;
use super::stylegan2::SnapshotState;
use std::path::Path;

/// The clamp `given` by the user; else, for a snapshot of a whichgan training run, the clamp
/// that run trained with; else none (the official default).
pub fn conv_clamp(checkpoint: &Path, given: Option<f64>) -> Option<f64> {
    given
        .or_else(|| state::peek::<SnapshotState>(checkpoint).and_then(|s| s.spec.preset.conv_clamp))
}
