//! The metrics of a run's snapshots: FID, KID, precision and recall of G_ema against the
//! training set, with the features of both cached in the run's folder.

use crate::features::{Extraction, ExtractorKind, FeatureCache, ImageSource};
use crate::metrics::frechet::KidParams;
use crate::select::{score, FeatureSets};
use crate::Result;
use candle_core::Device;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Metrics computed at each snapshot against the training set.
#[derive(Debug, Clone)]
pub struct MetricOptions {
    /// FID Inception weights (FID and KID; precision/recall too without VGG16).
    pub inception: PathBuf,
    /// VGG16 weights for precision and recall.
    pub vgg16: Option<PathBuf>,
    /// Generated images per evaluation.
    pub n: usize,
}

/// The scores of one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub fid: Option<f64>,
    pub kid: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

/// The feature extractors of a run's metrics, loaded before anything is written: the
/// embedding of FID and KID (Inception), and VGG16's for precision and recall when given.
pub(crate) struct Extractors {
    inception: Extraction,
    vgg16: Option<Extraction>,
    n: usize,
}

impl Scores {
    /// FID and KID on the first embedding, precision and recall (k neighbours) on the second.
    pub(crate) fn of(real: &FeatureSets, fake: &FeatureSets, k: usize) -> Result<Scores> {
        let s = score("G_ema", real, fake, k, KidParams::default())?;
        Ok(Scores {
            fid: s.fid,
            kid: s.kid,
            precision: s.precision,
            recall: s.recall,
        })
    }
}

impl Extractors {
    /// `main` embeds for FID and KID (and for precision and recall without `vgg16`); `n`
    /// images are generated per evaluation.
    pub(crate) fn new(main: Extraction, vgg16: Option<Extraction>, n: usize) -> Self {
        Extractors {
            inception: main,
            vgg16,
            n,
        }
    }

    pub(super) fn load(opts: &MetricOptions, out: &Path, device: &Device) -> Result<Self> {
        let cache = out.join("feature-cache");
        let extraction = |kind, weights: &Path| -> Result<Extraction> {
            let mut e = Extraction::new(kind, Some(weights), device)?;
            e.cache = Some(FeatureCache::new(&cache));
            Ok(e)
        };
        let inception = extraction(ExtractorKind::Inception, &opts.inception)?;
        let vgg16 = match &opts.vgg16 {
            Some(w) => Some(extraction(ExtractorKind::Vgg16, w)?),
            None => None,
        };
        Ok(Self::new(inception, vgg16, opts.n))
    }

    /// The metrics with the training set's features.
    pub(super) fn with_reals(self, data: &Path, bar: &ProgressBar) -> Result<Metrics> {
        bar.set_message("features of the training set");
        let source = ImageSource::Data(data.to_owned());
        let real = self.feature_sets(&source)?;
        Ok(Metrics {
            extractors: self,
            real,
        })
    }

    /// `n` samples of a checkpoint's G_ema, as every evaluation draws them.
    pub(crate) fn generated(&self, checkpoint: &Path, conv_clamp: Option<f64>) -> ImageSource {
        ImageSource::Generator {
            checkpoint: checkpoint.to_owned(),
            n: self.n,
            conv_clamp,
        }
    }

    /// Inception features, and those precision and recall use (VGG16's when given).
    pub(crate) fn feature_sets(&self, source: &ImageSource) -> Result<FeatureSets> {
        let hidden = ProgressBar::hidden();
        let inc = self.inception.features(source, &hidden)?.0.points()?;
        let pr = match &self.vgg16 {
            Some(e) => e.features(source, &hidden)?.0.points()?,
            None => inc.clone(),
        };
        Ok(FeatureSets {
            inception: Some(inc),
            pr: Some(pr),
        })
    }
}

/// Feature extractors and the training set's features, prepared once per run.
pub(super) struct Metrics {
    extractors: Extractors,
    real: FeatureSets,
}

impl Metrics {
    /// FID, KID, precision and recall (k = 3) of the snapshot's G_ema, rebuilt with the run's
    /// clamp, against the reals.
    pub(super) fn score(&self, snapshot: &Path, conv_clamp: Option<f64>) -> Result<Scores> {
        let fake = self
            .extractors
            .feature_sets(&self.extractors.generated(snapshot, conv_clamp))?;
        Scores::of(&self.real, &fake, 3)
    }
}
