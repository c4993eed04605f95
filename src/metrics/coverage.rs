//! Mode coverage of samples from a mixture whose mode centres are known (the toy targets).
//!
//! A sample is *high quality* when its nearest centre lies within `radius_sigmas · sigma` of it;
//! a mode is *covered* when at least `min_samples` high-quality samples belong to it. The
//! defaults (3σ, 10 samples) are the usual choice for 2-D mixtures of Gaussians.

use crate::{Error, Points, Result};

/// The thresholds of [`mode_coverage`], explicit so that every report can state them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoverageThresholds {
    /// Standard deviation of each mixture component.
    pub sigma: f64,
    /// A sample counts when its nearest centre is within this many `sigma`s.
    pub radius_sigmas: f64,
    /// A mode counts as covered with at least this many high-quality samples.
    pub min_samples: usize,
}

impl CoverageThresholds {
    /// 3σ and 10 samples.
    pub fn new(sigma: f64) -> Self {
        CoverageThresholds {
            sigma,
            radius_sigmas: 3.0,
            min_samples: 10,
        }
    }
}

/// What [`mode_coverage`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeCoverage {
    /// Modes with at least `min_samples` high-quality samples.
    pub modes_covered: usize,
    pub modes: usize,
    /// Samples within the radius of their nearest centre.
    pub high_quality: usize,
    pub samples: usize,
    /// High-quality samples per mode, in the order of the centres.
    pub per_mode: Vec<usize>,
}

impl ModeCoverage {
    /// Share of samples that are high quality.
    pub fn high_quality_share(&self) -> f64 {
        self.high_quality as f64 / self.samples as f64
    }
}

/// Assigns each sample to its nearest centre and counts covered modes and high-quality samples.
pub fn mode_coverage(
    samples: &Points,
    centres: &Points,
    thresholds: CoverageThresholds,
) -> Result<ModeCoverage> {
    if samples.dim() != centres.dim() {
        return Err(Error::invalid(format!(
            "the samples have dimension {}, the centres {}",
            samples.dim(),
            centres.dim()
        )));
    }
    if samples.is_empty() || centres.is_empty() {
        return Err(Error::invalid("mode coverage needs samples and centres"));
    }
    let usable = |v: f64| v > 0.0 && v.is_finite();
    if !(usable(thresholds.sigma) && usable(thresholds.radius_sigmas)) {
        return Err(Error::invalid(
            "sigma and the radius in sigmas must be positive finite numbers",
        ));
    }
    let radius_sq = (thresholds.radius_sigmas * thresholds.sigma).powi(2);
    let mut per_mode = vec![0usize; centres.len()];
    for i in 0..samples.len() {
        let x = samples.row(i);
        let (nearest, d2) = (0..centres.len())
            .map(|c| {
                let d2: f64 = x
                    .iter()
                    .zip(centres.row(c))
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum();
                (c, d2)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("centres are not empty");
        if d2 <= radius_sq {
            per_mode[nearest] += 1;
        }
    }
    Ok(ModeCoverage {
        modes_covered: per_mode
            .iter()
            .filter(|&&c| c >= thresholds.min_samples)
            .count(),
        modes: centres.len(),
        high_quality: per_mode.iter().sum(),
        samples: samples.len(),
        per_mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_modes_and_quality() {
        let centres =
            Points::from_rows(&[vec![0.0, 0.0], vec![10.0, 0.0], vec![0.0, 10.0]]).unwrap();
        let mut rows = Vec::new();
        rows.extend(std::iter::repeat_n(vec![0.5, 0.0], 12)); // mode 0, inside 3σ = 0.75
        rows.extend(std::iter::repeat_n(vec![10.0, 0.7], 9)); // mode 1, inside, 9 < 10
        rows.extend(std::iter::repeat_n(vec![5.0, 5.0], 4)); // far from every centre
        let samples = Points::from_rows(&rows).unwrap();
        let got = mode_coverage(&samples, &centres, CoverageThresholds::new(0.25)).unwrap();
        assert_eq!(got.per_mode, vec![12, 9, 0]);
        assert_eq!(got.modes_covered, 1);
        assert_eq!(got.high_quality, 21);
        assert!((got.high_quality_share() - 21.0 / 25.0).abs() < 1e-15);
        let lenient = CoverageThresholds {
            min_samples: 9,
            ..CoverageThresholds::new(0.25)
        };
        assert_eq!(
            mode_coverage(&samples, &centres, lenient)
                .unwrap()
                .modes_covered,
            2
        );
        for sigma in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            let e = mode_coverage(&samples, &centres, CoverageThresholds::new(sigma)).unwrap_err();
            assert!(e.to_string().contains("positive finite"), "{sigma}: {e}");
        }
    }
}
