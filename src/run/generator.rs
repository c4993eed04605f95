//! The one rule for how the networks of a StyleGAN2 checkpoint are rebuilt where their
//! tensors cannot tell — the clamp of layer outputs and D's minibatch-std group — for every
//! command that runs one (`generate`, `discriminate`, generator sources of `features` and
//! `select`, snapshot metrics): what the user gives; else what the checkpoint says (a whichgan
//! snapshot's run settings, an official network pickle's constructor arguments, a converted
//! file's metadata); else the official defaults (no clamp, groups of 4).

use super::state;
use super::stylegan2::SnapshotState;
use crate::stylegan2::network_info::NetworkInfo;
use std::path::Path;

/// The official default minibatch-std group.
pub const DEFAULT_MBSTD_GROUP: usize = 4;

/// The clamp `given` by the user; else the checkpoint's; else none.
pub fn conv_clamp(checkpoint: &Path, given: Option<f64>) -> Option<f64> {
    given
        .or_else(|| state::peek::<SnapshotState>(checkpoint).and_then(|s| s.spec.preset.conv_clamp))
        .or_else(|| NetworkInfo::read(checkpoint).ok()?.conv_clamp)
}

/// D's minibatch-std group `given` by the user; else the checkpoint's; else 4.
pub fn mbstd_group(checkpoint: &Path, given: Option<usize>) -> usize {
    given
        .or_else(|| state::peek::<SnapshotState>(checkpoint).map(|s| s.spec.preset.mbstd_group))
        .or_else(|| NetworkInfo::read(checkpoint).ok()?.mbstd_group)
        .unwrap_or(DEFAULT_MBSTD_GROUP)
}
