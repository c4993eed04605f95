//! Spearman's rank correlation and the average ranks it is computed from.

use super::p_values::correlation_p;
use super::pearson::correlation_coefficient;
use super::{compare, runs, validate, CorrelationError};

/// Spearman's ρ (Pearson's r of the average ranks) and its two-sided p-value.
///
/// As in scipy, p is the two-sided Student-t p-value with n - 2 degrees of
/// freedom for t = ρ sqrt((n-2) / ((1+ρ)(1-ρ))), i.e.
/// p = I_{(1-ρ)(1+ρ)}((n-2)/2, 1/2); |ρ| = 1 gives p = 0. For n = 2 there are
/// no degrees of freedom and p is NaN, as in scipy.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<(f64, f64), CorrelationError> {
    let n = validate(x, y)?;
    let rho = correlation_coefficient(&average_ranks(x), &average_ranks(y));
    if n == 2 {
        return Ok((rho, f64::NAN));
    }
    Ok((rho, correlation_p(rho, n)))
}

/// 1-based ranks of `x`; tied values all get the mean of the ranks they span
/// (scipy's `rankdata(method='average')`). -0.0 and 0.0 count as tied.
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&i, &j| compare(x[i], x[j]));
    let mut ranks = vec![0.0; x.len()];
    for (start, end) in runs(&order, |&i, &j| compare(x[i], x[j]).is_eq()) {
        // Positions start..end hold ranks start+1 ..= end; their mean:
        let rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
    }
    ranks
}
