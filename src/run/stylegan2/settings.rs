//! The settings of a training run as a user gives them — `whichgan train`'s flags, a study
//! file's `training` tables — and the one place they become a [`RunOptions`]: the preset,
//! its overrides and every check on them.

use super::{AugMode, AugOptions, RunOptions, RunSpec, RunStart};
use crate::stylegan2::augment::AugmentSpec;
use crate::stylegan2::presets::Preset;
use crate::{Error, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Defaults of the settings a preset does not decide.
pub const DEFAULT_CFG: &str = "auto";
pub const DEFAULT_TARGET: f64 = 0.6;
pub const DEFAULT_AUGPIPE: &str = "bgc";
pub const DEFAULT_TICK_KIMG: f64 = 4.0;
/// The official `--snap 50` counts ticks of 4 kimg: 200 kimg.
pub const DEFAULT_SNAP_KIMG: f64 = 200.0;
pub const DEFAULT_GRID: usize = 32;

/// How D's inputs are augmented, as a user names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AugKind {
    /// p adapted towards `target`.
    Ada,
    /// p stays at `p`.
    Fixed,
    /// No augmentation.
    Noaug,
}

/// A run's settings; an absent one takes the preset's value or the default above. The field
/// names are the study file's keys and, with `-` for `_`, `whichgan train`'s flags.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSettings {
    pub cfg: Option<String>,
    pub kimg: Option<f64>,
    pub batch: Option<usize>,
    pub batch_gpu: Option<usize>,
    pub gamma: Option<f64>,
    pub mirror: Option<bool>,
    /// Conditional on the dataset's class labels (the official `--cond`).
    pub cond: Option<bool>,
    pub aug: Option<AugKind>,
    pub p: Option<f64>,
    pub target: Option<f64>,
    pub augpipe: Option<String>,
    pub freezed: Option<usize>,
    pub seed: Option<u64>,
    pub tick: Option<f64>,
    pub snap: Option<f64>,
    pub grid: Option<usize>,
    pub cbase: Option<usize>,
    pub cmax: Option<usize>,
    pub map: Option<usize>,
    pub zdim: Option<usize>,
}

impl TrainSettings {
    /// These settings with `over`'s wherever it has one.
    pub fn overridden_by(&self, over: &TrainSettings) -> TrainSettings {
        macro_rules! pick {
            ($($field:ident),*) => {
                TrainSettings { $($field: over.$field.clone().or_else(|| self.$field.clone())),* }
            };
        }
        pick!(
            cfg, kimg, batch, batch_gpu, gamma, mirror, cond, aug, p, target, augpipe, freezed,
            seed, tick, snap, grid, cbase, cmax, map, zdim
        )
    }

    /// The run that trains on `data` (images of `resolution`) into `out`, started as `resume`
    /// says (see [`RunStart`]); no metrics, on the CPU, with a progress bar, not overwriting.
    /// Settings that cannot be used are refused here, named as [`Error::setting`] names them.
    pub fn options(
        &self,
        data: &Path,
        resolution: usize,
        out: &Path,
        resume: Option<&Path>,
    ) -> Result<RunOptions> {
        let cfg = self.cfg.as_deref().unwrap_or(DEFAULT_CFG);
        let mut preset = Preset::new(cfg, resolution)?;
        let start = RunStart::new(resume, out)?;
        start.adjust(&mut preset);
        if let Some(batch) = self.batch {
            preset.set_batch(at_least_one("batch", batch)?);
        }
        for (value, field, setting) in [
            (self.batch_gpu, &mut preset.batch_gpu, "batch_gpu"),
            (self.cbase, &mut preset.channel_base, "cbase"),
            (self.cmax, &mut preset.channel_max, "cmax"),
            (self.map, &mut preset.mapping_layers, "map"),
            (self.zdim, &mut preset.z_dim, "zdim"),
        ] {
            if let Some(v) = value {
                *field = at_least_one(setting, v)?;
            }
        }
        if let Some(gamma) = self.gamma {
            if !(gamma >= 0.0 && gamma.is_finite()) {
                return Err(Error::setting(
                    "gamma",
                    Some(gamma.to_string()),
                    "must be ≥ 0",
                ));
            }
            preset.gamma = gamma;
        }
        let p = unit_interval("p", self.p.unwrap_or(0.0))?;
        let target = unit_interval("target", self.target.unwrap_or(DEFAULT_TARGET))?;
        let mode = match self.aug.unwrap_or(AugKind::Ada) {
            AugKind::Ada => start.ada(target),
            AugKind::Fixed => AugMode::Fixed,
            AugKind::Noaug => AugMode::NoAug,
        };
        let pipe = self.augpipe.as_deref().unwrap_or(DEFAULT_AUGPIPE);
        AugmentSpec::preset(pipe)
            .map_err(|e| Error::setting("augpipe", Some(pipe.to_owned()), e.to_string()))?;
        let kimg = self.kimg.unwrap_or(preset.kimg);
        if !(kimg > 0.0 && kimg.is_finite()) {
            return Err(Error::setting(
                "kimg",
                Some(kimg.to_string()),
                "must be positive",
            ));
        }
        let spec = RunSpec {
            preset,
            seed: self.seed.unwrap_or(0),
            mirror: self.mirror.unwrap_or(false),
            aug: AugOptions {
                mode,
                pipe: pipe.to_owned(),
                p,
            },
            freezed: self.freezed.unwrap_or(0),
            start: start.pretrained,
            cond: self.cond.unwrap_or(false),
        };
        let options = RunOptions {
            spec,
            data: data.to_owned(),
            out: out.to_owned(),
            kimg,
            tick_kimg: self.tick.unwrap_or(DEFAULT_TICK_KIMG),
            snap_kimg: self.snap.unwrap_or(DEFAULT_SNAP_KIMG),
            resume: start.resume,
            metrics: None,
            grid: self.grid.unwrap_or(DEFAULT_GRID),
            device: Device::Cpu,
            progress: true,
            overwrite: false,
        };
        super::intervals(&options)?;
        let preset = &options.spec.preset;
        super::check_rounds(preset.batch, preset.batch_gpu, preset.mbstd_group)?;
        Ok(options)
    }
}

fn at_least_one(setting: &'static str, value: usize) -> Result<usize> {
    if value == 0 {
        return Err(Error::setting(
            setting,
            Some("0".into()),
            "must be at least 1",
        ));
    }
    Ok(value)
}

fn unit_interval(setting: &'static str, value: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&value) {
        return Err(Error::setting(
            setting,
            Some(value.to_string()),
            "must lie in [0, 1]",
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_replaces_only_what_it_sets() {
        let base = TrainSettings {
            kimg: Some(10.0),
            mirror: Some(true),
            ..Default::default()
        };
        let over = TrainSettings {
            kimg: Some(2.0),
            freezed: Some(3),
            ..Default::default()
        };
        let both = base.overridden_by(&over);
        assert_eq!(both.kimg, Some(2.0));
        assert_eq!(both.mirror, Some(true));
        assert_eq!(both.freezed, Some(3));
        assert_eq!(both.batch, None);
    }

    #[test]
    fn unusable_settings_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let options = |s: TrainSettings| {
            s.options(Path::new("data.zip"), 16, dir.path(), None)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        for (settings, expected) in [
            (
                TrainSettings {
                    batch: Some(0),
                    ..Default::default()
                },
                "batch 0: must be at least 1",
            ),
            (
                TrainSettings {
                    p: Some(1.5),
                    ..Default::default()
                },
                "p 1.5: must lie in [0, 1]",
            ),
            (
                TrainSettings {
                    kimg: Some(-1.0),
                    ..Default::default()
                },
                "kimg -1: must be positive",
            ),
        ] {
            assert_eq!(options(settings), expected);
        }
        assert!(options(TrainSettings {
            augpipe: Some("nope".into()),
            ..Default::default()
        })
        .starts_with("augpipe nope: "));
    }
}
