//! Convergence rate of a training run from its metric-vs-kimg curve (e.g. FID every snapshot).
//!
//! Definitions (kimg = thousands of real images shown to D):
//! - **plateau**: the mean of the metric over the last `tail` fraction of the run's kimg span
//!   (default 10 %; at least the last point) — where the run settled.
//! - **kimg to within x %**: the first kimg from which the metric stays within x % of the
//!   plateau until the end (one-sided: never worse than plateau·(1 ± x/100); better is fine).
//!   Smaller means faster convergence. Because it must *stay* there, one early lucky snapshot
//!   does not count.
//! - **excess area**: the area between the curve and the plateau, on the bad side only, in
//!   metric·kimg (trapezoids) — how much worse than its end the run was, summed over training.
//! - **mean level**: the curve's time average (area under the curve / kimg span).
//!
//! Logs: JSONL (one object per line with `kimg` and the metric; or the official StyleGAN2-ADA
//! `metric-*.jsonl` lines, `{"results": {"fid50k_full": …}, "snapshot_pkl":
//! "network-snapshot-000200.pkl"}`, kimg taken from the snapshot name) or CSV with `kimg` and the
//! metric as columns.

use crate::{Error, Result};
use std::path::Path;

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    LowerIsBetter,
    HigherIsBetter,
}

impl Direction {
    /// FID, KID, perceptual path length (StyleGAN's `ppl*`), W1 and losses improve downwards;
    /// precision, recall and the like upwards.
    pub fn for_metric(name: &str) -> Direction {
        let n = name.to_ascii_lowercase();
        let lower = ["fid", "kid", "ppl", "w1"];
        if lower.iter().any(|p| n.starts_with(p)) || n.contains("loss") {
            Direction::LowerIsBetter
        } else {
            Direction::HigherIsBetter
        }
    }

    /// How much worse `value` is than `reference` (≤ 0 when not worse).
    fn excess(self, value: f64, reference: f64) -> f64 {
        match self {
            Direction::LowerIsBetter => value - reference,
            Direction::HigherIsBetter => reference - value,
        }
    }
}

/// A metric curve: (kimg, value) pairs in increasing kimg.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub kimg: Vec<f64>,
    pub value: Vec<f64>,
}

/// The convergence summary of one curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Convergence {
    pub points: usize,
    pub final_kimg: f64,
    pub final_value: f64,
    pub best_value: f64,
    pub plateau: f64,
    /// The first kimg from which the curve stays within the threshold of the plateau; the final
    /// kimg when the last point itself is outside it (a tail that ends on its worst value).
    pub kimg_to_within: f64,
    pub within_percent: f64,
    pub excess_area: f64,
    pub mean_level: f64,
}

impl Curve {
    /// Checks: at least two points, finite values, strictly increasing kimg.
    pub fn new(kimg: Vec<f64>, value: Vec<f64>) -> Result<Self> {
        if kimg.len() != value.len() || kimg.len() < 2 {
            return Err(Error::invalid(format!(
                "a convergence curve needs at least 2 (kimg, value) points, got {}",
                kimg.len().min(value.len())
            )));
        }
        if let Some(i) = (0..kimg.len()).find(|&i| !kimg[i].is_finite() || !value[i].is_finite()) {
            return Err(Error::invalid(format!(
                "point {i} is not finite (kimg {}, value {})",
                kimg[i], value[i]
            )));
        }
        if let Some(i) = (1..kimg.len()).find(|&i| kimg[i] <= kimg[i - 1]) {
            return Err(Error::invalid(format!(
                "kimg must increase: point {i} has {} after {}",
                kimg[i],
                kimg[i - 1]
            )));
        }
        Ok(Curve { kimg, value })
    }

    /// The summary with plateau over the last `tail` ∈ (0, 1] of the span and threshold
    /// `within_percent`.
    pub fn convergence(
        &self,
        direction: Direction,
        tail: f64,
        within_percent: f64,
    ) -> Result<Convergence> {
        if !(tail > 0.0 && tail <= 1.0) {
            return Err(Error::invalid(format!(
                "the tail fraction must lie in (0, 1], got {tail}"
            )));
        }
        if !(within_percent >= 0.0 && within_percent.is_finite()) {
            return Err(Error::invalid(format!(
                "the threshold must be a percentage ≥ 0, got {within_percent}"
            )));
        }
        let (first, last) = (self.kimg[0], *self.kimg.last().expect("≥ 2 points"));
        let span = last - first;
        let tail_start = last - tail * span;
        let in_tail: Vec<f64> = self
            .kimg
            .iter()
            .zip(&self.value)
            .filter(|(k, _)| **k >= tail_start)
            .map(|(_, v)| *v)
            .collect();
        let plateau = in_tail.iter().sum::<f64>() / in_tail.len() as f64;
        let tolerance = within_percent / 100.0 * plateau.abs();
        // Walk back from the end while the curve stays within the tolerance.
        let mut start = self.value.len();
        while start > 0 && direction.excess(self.value[start - 1], plateau) <= tolerance {
            start -= 1;
        }
        let kimg_to_within = if start == self.value.len() {
            last
        } else {
            self.kimg[start]
        };
        let mut excess_area = 0.0;
        let mut area = 0.0;
        for i in 1..self.kimg.len() {
            let dk = self.kimg[i] - self.kimg[i - 1];
            let (a, b) = (self.value[i - 1], self.value[i]);
            area += 0.5 * (a + b) * dk;
            excess_area += positive_part_area(
                direction.excess(a, plateau),
                direction.excess(b, plateau),
                dk,
            );
        }
        let best_value = match direction {
            Direction::LowerIsBetter => self.value.iter().copied().fold(f64::INFINITY, f64::min),
            Direction::HigherIsBetter => {
                self.value.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            }
        };
        Ok(Convergence {
            points: self.kimg.len(),
            final_kimg: last,
            final_value: *self.value.last().expect("≥ 2 points"),
            best_value,
            plateau,
            kimg_to_within,
            within_percent,
            excess_area,
            mean_level: area / span,
        })
    }
}

/// ∫ max(0, f) over a segment where f goes linearly from `a` to `b` over width `dk`.
fn positive_part_area(a: f64, b: f64, dk: f64) -> f64 {
    match (a > 0.0, b > 0.0) {
        (true, true) => 0.5 * (a + b) * dk,
        (false, false) => 0.0,
        // One sign change: the triangle on the positive side.
        _ => {
            let (pos, neg) = if a > 0.0 { (a, b) } else { (b, a) };
            0.5 * pos * dk * pos / (pos - neg)
        }
    }
}

/// The curve of `metric` in a training log (JSONL or CSV; see the module docs).
pub fn read_curve(path: &Path, metric: &str) -> Result<Curve> {
    let mut points: Vec<(f64, f64)> = Vec::new();
    if crate::io::extension(path).as_deref() == Some("csv") {
        let table = crate::io::Table::read(path)?;
        let kimg = table.numeric_column("kimg")?;
        points.extend(kimg.into_iter().zip(table.numeric_column(metric)?));
    } else {
        crate::io::check_readable_file(path)?;
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = |m: &str| Error::at(path, i as u64 + 1, None, m);
            let object: serde_json::Value =
                serde_json::from_str(line).map_err(|e| at(&format!("not JSON ({e})")))?;
            if let Some(point) = json_point(&object, metric).map_err(|m| at(&m))? {
                points.push(point);
            }
        }
    }
    if points.is_empty() {
        return Err(Error::in_file(
            path,
            format!("no '{metric}' values with a kimg"),
        ));
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (kimg, value) = points.into_iter().unzip();
    Curve::new(kimg, value).map_err(|e| Error::in_file(path, e.to_string()))
}

/// (kimg, value) of one log line, `None` when the line does not carry the metric.
fn json_point(
    object: &serde_json::Value,
    metric: &str,
) -> std::result::Result<Option<(f64, f64)>, String> {
    let value = object
        .get(metric)
        .or_else(|| object.get("results").and_then(|r| r.get(metric)));
    let Some(value) = value else {
        return Ok(None);
    };
    let value = value
        .as_f64()
        .ok_or_else(|| format!("'{metric}' is not a number"))?;
    if let Some(k) = object.get("kimg") {
        return Ok(Some((k.as_f64().ok_or("'kimg' is not a number")?, value)));
    }
    let snapshot = object
        .get("snapshot_pkl")
        .and_then(|s| s.as_str())
        .ok_or("no 'kimg' and no 'snapshot_pkl' to read it from")?;
    let digits: String = snapshot
        .rsplit('-')
        .next()
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let kimg = digits
        .parse::<f64>()
        .map_err(|_| format!("no kimg in snapshot name '{snapshot}'"))?;
    Ok(Some((kimg, value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// p + a·exp(−t/τ) sampled every `step` kimg up to `end`.
    fn decay(p: f64, a: f64, tau: f64, step: f64, end: f64) -> Curve {
        let kimg: Vec<f64> = (0..=(end / step) as usize)
            .map(|i| i as f64 * step)
            .collect();
        let value = kimg.iter().map(|t| p + a * (-t / tau).exp()).collect();
        Curve::new(kimg, value).unwrap()
    }

    #[test]
    fn exponential_decay_reaches_the_threshold_where_the_formula_says() {
        // FID from 110 to 10 with τ = 500 kimg, over 10 000 kimg: the plateau is 10 (to 1e-6),
        // within 10 % when 100·exp(−t/500) ≤ 1, t = 500·ln 100 ≈ 2302.6 → first sample 2310.
        let c = decay(10.0, 100.0, 500.0, 10.0, 10_000.0)
            .convergence(Direction::LowerIsBetter, 0.1, 10.0)
            .unwrap();
        assert!((c.plateau - 10.0).abs() < 1e-6);
        assert_eq!(c.kimg_to_within, 2310.0);
        // Excess area → ∫ 100·exp(−t/500) dt = 50 000 (trapezoids slightly above).
        assert!((c.excess_area - 50_000.0).abs() < 10.0, "{}", c.excess_area);
        assert!((c.mean_level - (10.0 + 50_000.0 / 10_000.0)).abs() < 0.01);
        // A run twice as fast converges in half the kimg.
        let fast = decay(10.0, 100.0, 250.0, 10.0, 10_000.0)
            .convergence(Direction::LowerIsBetter, 0.1, 10.0)
            .unwrap();
        assert_eq!(fast.kimg_to_within, 1160.0);
    }

    #[test]
    fn an_early_dip_does_not_count_as_converged() {
        let kimg = vec![0.0, 100.0, 200.0, 300.0, 400.0, 500.0];
        let value = vec![50.0, 10.0, 40.0, 30.0, 10.5, 10.0];
        let c = Curve::new(kimg, value)
            .unwrap()
            .convergence(Direction::LowerIsBetter, 0.1, 10.0)
            .unwrap();
        assert_eq!(c.plateau, 10.0);
        assert_eq!(c.kimg_to_within, 400.0);
        assert_eq!(c.best_value, 10.0);
    }

    #[test]
    fn higher_is_better_metrics_mirror_the_rule() {
        let kimg = vec![0.0, 1.0, 2.0, 3.0];
        let value = vec![0.1, 0.5, 0.48, 0.5];
        let c = Curve::new(kimg, value)
            .unwrap()
            .convergence(Direction::HigherIsBetter, 0.1, 5.0)
            .unwrap();
        assert_eq!(c.kimg_to_within, 1.0);
        // Shortfalls below the plateau 0.5: 0.4 → 0 over [0, 1], then the dip 0 → 0.02 → 0.
        assert!((c.excess_area - (0.2 + 0.02)).abs() < 1e-12);
    }

    #[test]
    fn metric_names_give_their_direction() {
        for name in ["fid50k_full", "kid50k_full", "ppl2_wend", "w1", "loss_G"] {
            assert_eq!(
                Direction::for_metric(name),
                Direction::LowerIsBetter,
                "{name}"
            );
        }
        for name in ["pr50k3_full_precision", "recall", "is50k", "coverage"] {
            assert_eq!(
                Direction::for_metric(name),
                Direction::HigherIsBetter,
                "{name}"
            );
        }
    }

    #[test]
    fn a_tail_ending_on_its_worst_value_gives_the_final_kimg() {
        // Tail of the last 3 points: plateau 10; the last point, 12, is 20 % above it.
        let c = Curve::new(vec![0.0, 1.0, 2.0, 3.0], vec![10.0, 10.0, 8.0, 12.0])
            .unwrap()
            .convergence(Direction::LowerIsBetter, 0.75, 5.0)
            .unwrap();
        assert_eq!(c.kimg_to_within, 3.0);
    }

    #[test]
    fn the_positive_part_of_a_crossing_segment_is_a_triangle() {
        assert!((positive_part_area(2.0, -2.0, 1.0) - 0.5).abs() < 1e-12);
        assert!((positive_part_area(-1.0, 3.0, 4.0) - 4.5).abs() < 1e-12);
    }

    #[test]
    fn official_metric_lines_give_kimg_from_the_snapshot_name() {
        let line: serde_json::Value = serde_json::from_str(
            r#"{"results": {"fid50k_full": 12.5}, "metric": "fid50k_full", "snapshot_pkl": "network-snapshot-000200.pkl"}"#,
        )
        .unwrap();
        assert_eq!(
            json_point(&line, "fid50k_full").unwrap(),
            Some((200.0, 12.5))
        );
        let ours: serde_json::Value = serde_json::from_str(r#"{"kimg": 4.5, "fid": 3.0}"#).unwrap();
        assert_eq!(json_point(&ours, "fid").unwrap(), Some((4.5, 3.0)));
        assert_eq!(json_point(&ours, "kid").unwrap(), None);
    }

    #[test]
    fn bad_curves_are_refused() {
        assert!(Curve::new(vec![0.0], vec![1.0]).is_err());
        assert!(Curve::new(vec![0.0, 0.0], vec![1.0, 2.0]).is_err());
        assert!(Curve::new(vec![0.0, 1.0], vec![1.0, f64::NAN]).is_err());
    }
}
