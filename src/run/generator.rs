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
    match given {
        Some(clamp) => Ok(Some(clamp)),
        None => Ok(stated(checkpoint)?.conv_clamp),
    }
}

/// D's minibatch-std group `given` by the user; else the checkpoint's; else 4. An error when
/// the checkpoint states it unreadably.
pub fn mbstd_group(checkpoint: &Path, given: Option<usize>) -> Result<usize> {
    match given {
        Some(group) => Ok(group),
        None => Ok(stated(checkpoint)?
            .mbstd_group
            .unwrap_or(DEFAULT_MBSTD_GROUP)),
    }
}

/// What the checkpoint says of these settings: a whichgan snapshot's run settings, else its
/// [`NetworkInfo`]. Only a regular file is looked into (opening a FIFO would wait for a
/// writer).
fn stated(checkpoint: &Path) -> Result<NetworkInfo> {
    crate::io::check_readable_file(checkpoint)?;
    Ok(match state::peek::<SnapshotState>(checkpoint) {
        Some(s) => NetworkInfo {
            conv_clamp: s.spec.preset.conv_clamp,
            mbstd_group: Some(s.spec.preset.mbstd_group),
            ..NetworkInfo::default()
        },
        None => NetworkInfo::read(checkpoint)?,
    })
}
