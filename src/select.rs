//! The study's checkpoint-selection recipe: score candidate sources against the target by FID,
//! KID, precision and recall, rank them, and recommend the best by one metric (recall by
//! default — the metric that picked the best source most often in the study).
//!
//! Setting 1 compares real source images with the target images, setting 2 samples of each
//! pretrained generator; either way the target is the "real" set: precision is the share of
//! source samples inside the target's k-NN manifold, recall the share of target samples inside
//! the source's.

use crate::metrics::frechet::{frechet_distance, kid, GaussianStats, KidParams};
use crate::metrics::knn::prdc;
use crate::{Error, Points, Result};

/// A selection metric and the direction in which it improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Fid,
    Kid,
    Precision,
    Recall,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::Fid, Metric::Kid, Metric::Precision, Metric::Recall];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Fid => "fid",
            Metric::Kid => "kid",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Precision | Metric::Recall)
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown metric '{s}': expected fid, kid, precision or recall"
                ))
            })
    }
}

/// The features of one image set: Inception (FID, KID) and the precision/recall embedding.
#[derive(Debug, Clone)]
pub struct FeatureSets {
    pub inception: Option<Points>,
    pub pr: Option<Points>,
}

/// One source's scores against the target (a metric is absent when its features are).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceScores {
    pub name: String,
    pub n: usize,
    pub fid: Option<f64>,
    pub kid: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
}

impl SourceScores {
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Fid => self.fid,
            Metric::Kid => self.kid,
            Metric::Precision => self.precision,
            Metric::Recall => self.recall,
        }
    }
}

/// Scores `source` against `target` (k neighbours for precision/recall).
pub fn score(
    name: &str,
    target: &FeatureSets,
    source: &FeatureSets,
    k: usize,
    kid_params: KidParams,
) -> Result<SourceScores> {
    let context = |e: Error| Error::invalid(format!("source '{name}': {e}"));
    let mut out = SourceScores {
        name: name.to_owned(),
        n: 0,
        fid: None,
        kid: None,
        precision: None,
        recall: None,
    };
    if let (Some(t), Some(s)) = (&target.inception, &source.inception) {
        out.n = s.len();
        let fid = frechet_distance(
            &GaussianStats::from_points(t).map_err(context)?,
            &GaussianStats::from_points(s).map_err(context)?,
        );
        out.fid = Some(fid.map_err(context)?);
        out.kid = Some(kid(t, s, kid_params).map_err(context)?);
    }
    if let (Some(t), Some(s)) = (&target.pr, &source.pr) {
        out.n = s.len();
        let m = prdc(t, s, k).map_err(context)?;
        out.precision = Some(m.precision);
        out.recall = Some(m.recall);
    }
    Ok(out)
}

/// Source indices best first by `metric` (ties keep the given order); sources without the
/// metric are left out.
pub fn ranking(scores: &[SourceScores], metric: Metric) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len())
        .filter(|&i| scores[i].get(metric).is_some())
        .collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (
            scores[a].get(metric).unwrap(),
            scores[b].get(metric).unwrap(),
        );
        let ord = x.total_cmp(&y);
        if metric.higher_is_better() {
            ord.reverse()
        } else {
            ord
        }
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(name: &str, fid: f64, recall: f64) -> SourceScores {
        SourceScores {
            name: name.into(),
            n: 10,
            fid: Some(fid),
            kid: None,
            precision: None,
            recall: Some(recall),
        }
    }

    #[test]
    fn rankings_follow_each_metrics_direction() {
        let s = [
            scores("a", 30.0, 0.2),
            scores("b", 10.0, 0.1),
            scores("c", 20.0, 0.5),
        ];
        assert_eq!(ranking(&s, Metric::Fid), vec![1, 2, 0]);
        assert_eq!(ranking(&s, Metric::Recall), vec![2, 0, 1]);
        assert!(ranking(&s, Metric::Kid).is_empty());
    }
}
