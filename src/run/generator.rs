//! The one rule for how the networks of a StyleGAN2 checkpoint are rebuilt where their
//! tensors cannot tell — the clamp of layer outputs and D's minibatch-std group — for every
//! command that runs one (`generate`, `discriminate`, generator sources of `features` and
//! `select`, snapshot metrics): what the user gives; else what the checkpoint says (a whichgan
//! snapshot's run settings, an official network pickle's constructor arguments, a converted
//! file's metadata); else the official defaults (no clamp, groups of 4).

use super::state;
use super::stylegan2::SnapshotState;
use crate::stylegan2::network_info::NetworkInfo;
use crate::Result;
use std::path::Path;

/// The official default minibatch-std group.
pub const DEFAULT_MBSTD_GROUP: usize = 4;

/// The clamp `given` by the user; else the checkpoint's; else none. An error when the
/// checkpoint states it unreadably.
pub fn conv_clamp(checkpoint: &Path, given: Option<f64>) -> Result<Option<f64>> {
    crate::io::check_readable_file(checkpoint)?;
    if given.is_some() {
        return Ok(given);
    }
    if let Some(s) = state::peek::<SnapshotState>(checkpoint) {
        return Ok(s.spec.preset.conv_clamp);
    }
    Ok(NetworkInfo::read(checkpoint)?.conv_clamp)
}

/// D's minibatch-std group `given` by the user; else the checkpoint's; else 4. An error when
/// the checkpoint states it unreadably.
pub fn mbstd_group(checkpoint: &Path, given: Option<usize>) -> Result<usize> {
    crate::io::check_readable_file(checkpoint)?;
    if let Some(group) = given {
        return Ok(group);
    }
    if let Some(s) = state::peek::<SnapshotState>(checkpoint) {
        return Ok(s.spec.preset.mbstd_group);
    }
    Ok(NetworkInfo::read(checkpoint)?
        .mbstd_group
        .unwrap_or(DEFAULT_MBSTD_GROUP))
}
