//! Pearson's product-moment correlation: r, its p-value and its Fisher-z interval.

use super::p_values::correlation_p;
use super::{validate, CorrelationError};

/// The 0.975 quantile of the standard normal distribution (scipy's
/// `special.ndtri(0.975)`), used for the two-sided 95 % Fisher-z interval.
pub(super) const NORMAL_QUANTILE_975: f64 = 1.959963984540054;

/// Pearson's r and its two-sided p-value.
///
/// The p-value is that of scipy's `pearsonr`: under independence r follows a
/// beta distribution on (-1, 1) with both shapes n/2 - 1, so
/// p = 2 I_{(1-|r|)/2}(n/2 - 1, n/2 - 1), the same number as the two-sided
/// Student-t p-value with n - 2 degrees of freedom, which is how it is
/// evaluated. For n = 2, r is exactly ±1 and p = 1 (as in scipy).
pub fn pearson(x: &[f64], y: &[f64]) -> Result<(f64, f64), CorrelationError> {
    let n = validate(x, y)?;
    let r = correlation_coefficient(x, y);
    if n == 2 {
        // Two distinct points always lie on a line; scipy reports r = ±1, p = 1.
        return Ok((1.0_f64.copysign(r), 1.0));
    }
    Ok((r, correlation_p(r, n)))
}

/// 95 % confidence interval of a Pearson r from `n` pairs, by Fisher's z
/// transform: tanh(atanh(r) ∓ q / sqrt(n - 3)) with q the 0.975 normal quantile.
///
/// Matches scipy's `pearsonr(...).confidence_interval()`: for n ≤ 3 the
/// interval is the whole range (-1, 1); for |r| = 1 (and n > 3) it collapses
/// to (r, r).
pub fn pearson_ci95(r: f64, n: usize) -> (f64, f64) {
    if n <= 3 {
        return (-1.0, 1.0);
    }
    let z = r.atanh();
    let half_width = NORMAL_QUANTILE_975 / ((n - 3) as f64).sqrt();
    ((z - half_width).tanh(), (z + half_width).tanh())
}

/// Pearson's r of two validated (equal length, non-constant) samples.
pub(super) fn correlation_coefficient(x: &[f64], y: &[f64]) -> f64 {
    let xs = centred_and_scaled(x);
    let ys = centred_and_scaled(y);
    let sxy: f64 = xs.iter().zip(&ys).map(|(a, b)| a * b).sum();
    let sxx: f64 = xs.iter().map(|a| a * a).sum();
    let syy: f64 = ys.iter().map(|b| b * b).sum();
    // sqrt(s * s) == s exactly, so identical or mirrored inputs (such as
    // perfectly monotone ranks) give exactly ±1.
    (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0)
}

/// `v` minus its mean, divided by its largest absolute deviation so that the
/// sums of squares can neither overflow nor underflow.
fn centred_and_scaled(v: &[f64]) -> Vec<f64> {
    let n = v.len() as f64;
    let rough_mean = v.iter().sum::<f64>() / n;
    // A second pass removes most of the rounding error of the first mean.
    let mean = rough_mean + v.iter().map(|&a| a - rough_mean).sum::<f64>() / n;
    let centred: Vec<f64> = v.iter().map(|&a| a - mean).collect();
    // Non-zero because the input is not constant.
    let scale = centred.iter().fold(0.0_f64, |m, a| m.max(a.abs()));
    centred.into_iter().map(|a| a / scale).collect()
}
