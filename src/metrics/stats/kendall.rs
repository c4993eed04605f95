//! Kendall's τ-b: O(n log n) pair counting (merge sort), tie sums and the variance of S.

use super::p_values::{kendall_exact_p, normal_two_sided_p};
use super::{compare, runs, validate, CorrelationError};

/// scipy's `kendalltau(method='auto')` uses the exact null distribution for
/// tie-free samples up to this size.
const KENDALL_EXACT_MAX_N: usize = 33;

/// Kendall's τ-b (tie-corrected) and its two-sided p-value, as scipy's
/// `kendalltau(method='auto')`.
///
/// Without ties, the p-value is exact when n ≤ 33 or when at most one pair
/// is discordant (or at most one concordant). Otherwise it uses the normal
/// approximation of S = concordant - discordant with the tie-corrected
/// variance. Pair counting is O(n log n) (merge sort).
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Result<(f64, f64), CorrelationError> {
    let n = validate(x, y)?;
    let counts = PairCounts::new(x, y);
    let total = counts.total_pairs();
    let s = counts.concordant_minus_discordant() as f64;
    let tau = s
        / ((total - counts.x_tied.pairs) as f64).sqrt()
        / ((total - counts.y_tied.pairs) as f64).sqrt();
    let tau = tau.clamp(-1.0, 1.0);

    let tie_free = counts.x_tied.pairs == 0 && counts.y_tied.pairs == 0;
    let nearly_ordered = counts.discordant.min(total - counts.discordant) <= 1;
    let p = if tie_free && (n <= KENDALL_EXACT_MAX_N || nearly_ordered) {
        kendall_exact_p(n, total - counts.discordant)
    } else {
        normal_two_sided_p(s / counts.null_variance_of_s().sqrt())
    };
    Ok((tau, p))
}

/// Sums over the groups of tied values of one variable, with t the group
/// size; these enter τ-b and the variance of S.
#[derive(Debug, Default)]
struct TieSums {
    /// Σ t(t-1)/2: number of tied pairs.
    pairs: u64,
    /// Σ t(t-1)(t-2).
    cubic: f64,
    /// Σ t(t-1)(2t+5).
    variance_term: f64,
}

impl TieSums {
    fn from_runs(runs: &[(usize, usize)]) -> Self {
        let mut sums = Self::default();
        for &(start, end) in runs {
            let t = (end - start) as u64;
            sums.pairs += t * (t - 1) / 2;
            let t = t as f64;
            sums.cubic += t * (t - 1.0) * (t - 2.0);
            sums.variance_term += t * (t - 1.0) * (2.0 * t + 5.0);
        }
        sums
    }
}

/// Pair counts behind Kendall's τ.
#[derive(Debug)]
pub(super) struct PairCounts {
    n: u64,
    /// Pairs ordered one way by x and the other way by y.
    discordant: u64,
    /// Pairs tied in both x and y.
    joint_tied_pairs: u64,
    x_tied: TieSums,
    y_tied: TieSums,
}

impl PairCounts {
    pub(super) fn new(x: &[f64], y: &[f64]) -> Self {
        let mut order: Vec<usize> = (0..x.len()).collect();
        order.sort_by(|&i, &j| compare(x[i], x[j]).then(compare(y[i], y[j])));
        let x_runs = runs(&order, |&i, &j| compare(x[i], x[j]).is_eq());
        let joint_runs = runs(&order, |&i, &j| {
            compare(x[i], x[j]).is_eq() && compare(y[i], y[j]).is_eq()
        });
        // In (x, y) order, y is ascending within each x group, so strict
        // inversions of y are exactly the discordant pairs. Counting them by
        // merge sort also leaves y sorted for its own tie groups.
        let mut y_sorted: Vec<f64> = order.iter().map(|&i| y[i]).collect();
        let discordant = sort_counting_inversions(&mut y_sorted);
        let y_runs = runs(&y_sorted, |&a, &b| compare(a, b).is_eq());
        Self {
            n: x.len() as u64,
            discordant,
            joint_tied_pairs: TieSums::from_runs(&joint_runs).pairs,
            x_tied: TieSums::from_runs(&x_runs),
            y_tied: TieSums::from_runs(&y_runs),
        }
    }

    fn total_pairs(&self) -> u64 {
        self.n * (self.n - 1) / 2
    }

    /// S = concordant - discordant, using
    /// total = concordant + discordant + x ties + y ties - joint ties.
    pub(super) fn concordant_minus_discordant(&self) -> i64 {
        let concordant_plus_discordant =
            self.total_pairs() + self.joint_tied_pairs - self.x_tied.pairs - self.y_tied.pairs;
        concordant_plus_discordant as i64 - 2 * self.discordant as i64
    }

    /// Variance of S when y is a uniformly random permutation relative to x,
    /// with the tie corrections of Kendall (1970), as used by scipy.
    pub(super) fn null_variance_of_s(&self) -> f64 {
        let n = self.n as f64;
        let m = n * (n - 1.0);
        (m * (2.0 * n + 5.0) - self.x_tied.variance_term - self.y_tied.variance_term) / 18.0
            + 2.0 * self.x_tied.pairs as f64 * self.y_tied.pairs as f64 / m
            + self.x_tied.cubic * self.y_tied.cubic / (9.0 * m * (n - 2.0))
    }
}

/// Sorts `v` ascending (merge sort) and returns the number of pairs i < j
/// with v[i] > v[j] in the original order; equal values are not inversions.
fn sort_counting_inversions(v: &mut [f64]) -> u64 {
    let mut buffer = v.to_vec();
    let mut inversions = 0;
    let mut width = 1;
    while width < v.len() {
        for start in (0..v.len()).step_by(2 * width) {
            let mid = (start + width).min(v.len());
            let end = (start + 2 * width).min(v.len());
            let (mut left, mut right) = (start, mid);
            for slot in &mut buffer[start..end] {
                // Take from the left on ties so that equal values stay put.
                if right == end || (left < mid && compare(v[left], v[right]).is_le()) {
                    *slot = v[left];
                    left += 1;
                } else {
                    // v[right] jumps over every value still waiting on the left.
                    inversions += (mid - left) as u64;
                    *slot = v[right];
                    right += 1;
                }
            }
        }
        v.copy_from_slice(&buffer);
        width *= 2;
    }
    inversions
}
