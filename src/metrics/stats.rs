//! Correlation statistics (Pearson, Spearman, Kendall τ-b) with two-sided
//! p-values that follow scipy 1.17 (`pearsonr`, `spearmanr`,
//! `kendalltau(method='auto')`).
//!
//! Inputs are assumed finite; callers validate them. Small p-values are
//! always computed as tail probabilities, never as `1 - cdf`, so they keep
//! their full relative precision.

use statrs::function::beta::beta_reg;
use statrs::function::gamma::gamma_ur;
use std::cmp::Ordering;
use std::fmt;

/// The 0.975 quantile of the standard normal distribution (scipy's
/// `special.ndtri(0.975)`), used for the two-sided 95 % Fisher-z interval.
const NORMAL_QUANTILE_975: f64 = 1.959963984540054;

/// scipy's `kendalltau(method='auto')` uses the exact null distribution for
/// tie-free samples up to this size.
const KENDALL_EXACT_MAX_N: usize = 33;

/// All correlation measures of one paired sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    /// Number of observation pairs.
    pub n: usize,
    /// Pearson's product-moment correlation coefficient.
    pub pearson_r: f64,
    /// Two-sided p-value of `pearson_r`.
    pub pearson_p: f64,
    /// 95 % confidence interval of `pearson_r` (Fisher z, see [`pearson_ci95`]).
    pub pearson_ci95: (f64, f64),
    /// Spearman's rank correlation coefficient.
    pub spearman_rho: f64,
    /// Two-sided p-value of `spearman_rho` (NaN for n = 2, as in scipy).
    pub spearman_p: f64,
    /// Kendall's τ-b.
    pub kendall_tau: f64,
    /// Two-sided p-value of `kendall_tau`.
    pub kendall_p: f64,
}

/// Why a correlation cannot be computed.
#[derive(Debug, Clone, PartialEq)]
pub enum CorrelationError {
    /// `x` and `y` have different lengths.
    LengthMismatch { x: usize, y: usize },
    /// Fewer than two observations.
    TooFew { n: usize },
    /// All values of one input (`"x"` or `"y"`) are equal.
    Constant { which: &'static str },
    /// A NaN or infinite value in one input (0-based `index`).
    NonFinite { which: &'static str, index: usize },
}

impl fmt::Display for CorrelationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LengthMismatch { x, y } => {
                write!(f, "x and y differ in length ({x} vs {y})")
            }
            Self::TooFew { n } => write!(f, "need at least 2 observations, got {n}"),
            Self::Constant { which } => {
                write!(f, "{which} is constant, so its correlation is undefined")
            }
            Self::NonFinite { which, index } => {
                write!(
                    f,
                    "{which} has a non-finite value at observation {}",
                    index + 1
                )
            }
        }
    }
}

impl std::error::Error for CorrelationError {}

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

/// Pearson, Spearman and Kendall statistics of one paired sample.
pub fn correlate(x: &[f64], y: &[f64]) -> Result<Correlation, CorrelationError> {
    let n = validate(x, y)?;
    let (pearson_r, pearson_p) = pearson(x, y)?;
    let (spearman_rho, spearman_p) = spearman(x, y)?;
    let (kendall_tau, kendall_p) = kendall_tau_b(x, y)?;
    Ok(Correlation {
        n,
        pearson_r,
        pearson_p,
        pearson_ci95: pearson_ci95(pearson_r, n),
        spearman_rho,
        spearman_p,
        kendall_tau,
        kendall_p,
    })
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

/// Checks the preconditions shared by all correlations and returns n.
fn validate(x: &[f64], y: &[f64]) -> Result<usize, CorrelationError> {
    if x.len() != y.len() {
        return Err(CorrelationError::LengthMismatch {
            x: x.len(),
            y: y.len(),
        });
    }
    let n = x.len();
    if n < 2 {
        return Err(CorrelationError::TooFew { n });
    }
    for (which, v) in [("x", x), ("y", y)] {
        if let Some(index) = v.iter().position(|a| !a.is_finite()) {
            return Err(CorrelationError::NonFinite { which, index });
        }
    }
    let is_constant = |v: &[f64]| v.iter().all(|&a| a == v[0]);
    if is_constant(x) {
        return Err(CorrelationError::Constant { which: "x" });
    }
    if is_constant(y) {
        return Err(CorrelationError::Constant { which: "y" });
    }
    Ok(n)
}

/// Pearson's r of two validated (equal length, non-constant) samples.
fn correlation_coefficient(x: &[f64], y: &[f64]) -> f64 {
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

/// Two-sided p-value of a correlation coefficient `r` from `n` > 2 pairs:
/// P(|T| ≥ |t|) for Student's t with n - 2 degrees of freedom and
/// t = r sqrt((n-2) / (1 - r²)), which equals scipy's beta form for Pearson,
/// 2 I_{(1-|r|)/2}(n/2 - 1, n/2 - 1).
fn correlation_p(r: f64, n: usize) -> f64 {
    // P(|T| ≥ |t|) = I_{1-r²}(df/2, 1/2) = 1 - I_{r²}(1/2, df/2). statrs'
    // beta_reg evaluates I_x(a, b) directly below x = (a+1)/(a+b+2) and as a
    // complement above it, so pick the form that it evaluates directly:
    // - small r² (p above about 0.1): 1 - I_{r²}(1/2, df/2), as 1 - r² would
    //   lose r² to rounding (r = 1e-8 would give p = 1 exactly);
    // - otherwise I_{(1-r)(1+r)}(df/2, 1/2), the tail itself, so tiny
    //   p-values keep full relative precision.
    // The symmetric form I(df/2, df/2) is avoided because statrs' continued
    // fraction fails to converge in it for large n (6e-8 off at n = 300 000).
    let half_df = (n - 2) as f64 / 2.0;
    let r_squared = r * r;
    let p = if r_squared < 1.5 / (half_df + 2.5) {
        1.0 - beta_reg(0.5, half_df, r_squared)
    } else {
        beta_reg(half_df, 0.5, (1.0 - r) * (1.0 + r))
    };
    p.min(1.0)
}

/// Two-sided p-value of a standard normal statistic, erfc(|z| / sqrt 2).
fn normal_two_sided_p(z: f64) -> f64 {
    if z == 0.0 {
        return 1.0;
    }
    // erfc(x) = Q(1/2, x²). statrs' own `erfc` is only accurate to about
    // 1e-10 relative (truncated constants), its upper incomplete gamma to
    // about 1e-14.
    gamma_ur(0.5, z * z / 2.0)
}

/// Total order on finite values in which -0.0 equals 0.0 (as for numpy).
fn compare(a: f64, b: f64) -> Ordering {
    // Adding 0.0 turns -0.0 into +0.0; total_cmp never fails, so sorting
    // cannot panic even on NaN that slipped through.
    (a + 0.0).total_cmp(&(b + 0.0))
}

/// Half-open index ranges `(start, end)` of maximal runs of equal adjacent
/// items.
fn runs<T>(items: &[T], equal: impl Fn(&T, &T) -> bool) -> Vec<(usize, usize)> {
    let mut result = Vec::new();
    let mut start = 0;
    for i in 1..=items.len() {
        if i == items.len() || !equal(&items[i - 1], &items[i]) {
            result.push((start, i));
            start = i;
        }
    }
    result
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
struct PairCounts {
    n: u64,
    /// Pairs ordered one way by x and the other way by y.
    discordant: u64,
    /// Pairs tied in both x and y.
    joint_tied_pairs: u64,
    x_tied: TieSums,
    y_tied: TieSums,
}

impl PairCounts {
    fn new(x: &[f64], y: &[f64]) -> Self {
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
    fn concordant_minus_discordant(&self) -> i64 {
        let concordant_plus_discordant =
            self.total_pairs() + self.joint_tied_pairs - self.x_tied.pairs - self.y_tied.pairs;
        concordant_plus_discordant as i64 - 2 * self.discordant as i64
    }

    /// Variance of S when y is a uniformly random permutation relative to x,
    /// with the tie corrections of Kendall (1970), as used by scipy.
    fn null_variance_of_s(&self) -> f64 {
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

/// Exact two-sided p-value of Kendall's test for `n` tie-free pairs of which
/// `concordant` are concordant (scipy's `_kendall_p_exact`).
///
/// The number of discordant pairs of a random permutation follows the
/// Mahonian distribution, which is symmetric, so p = min(1, 2 P(D ≤ c)) with
/// c the smaller of the concordant and discordant counts.
fn kendall_exact_p(n: usize, concordant: u64) -> f64 {
    let total = (n * (n - 1) / 2) as u64;
    let c = concordant.min(total - concordant) as usize;
    // prob[k] = P(k inversions) for permutations of j elements, truncated at
    // k = c. Inserting element j adds 0..j-1 inversions with equal
    // probability, hence prob_j[k] = (1/j) Σ_{i < min(k+1, j)} prob_{j-1}[k-i].
    // Probabilities rather than counts cannot overflow, and summing the window
    // directly avoids the cancellation of a prefix-sum difference.
    let mut prob = vec![0.0; c + 1];
    prob[0] = 1.0;
    for j in 2..=n {
        let previous = prob.clone();
        for (k, p) in prob.iter_mut().enumerate() {
            let lowest = k.saturating_sub(j - 1);
            *p = previous[lowest..=k].iter().sum::<f64>() / j as f64;
        }
    }
    (2.0 * prob.iter().sum::<f64>()).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::{ContinuousCDF, StudentsT};

    fn assert_close(actual: f64, expected: f64, rel: f64) {
        assert!(
            (actual - expected).abs() <= rel * expected.abs(),
            "{actual} vs {expected} (relative tolerance {rel})"
        );
    }

    /// Every permutation of 0..n (Heap's algorithm).
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        fn heap(k: usize, items: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
            if k <= 1 {
                out.push(items.clone());
                return;
            }
            for i in 0..k - 1 {
                heap(k - 1, items, out);
                let swap_with = if k.is_multiple_of(2) { i } else { 0 };
                items.swap(swap_with, k - 1);
            }
            heap(k - 1, items, out);
        }
        let mut out = Vec::new();
        heap(n, &mut (0..n).collect(), &mut out);
        out
    }

    /// S = concordant - discordant by direct O(n²) pair inspection.
    fn brute_force_s(x: &[f64], y: &[f64]) -> i64 {
        let mut s = 0;
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                if x[i] != x[j] && y[i] != y[j] {
                    s += ((x[j] - x[i]).signum() * (y[j] - y[i]).signum()) as i64;
                }
            }
        }
        s
    }

    fn sample() -> (Vec<f64>, Vec<f64>) {
        let x = vec![2.1, 3.4, 1.9, 5.6, 4.4, 3.3, 6.0, 2.8, 4.9, 5.1];
        let y = vec![1.2, 2.0, 2.2, 3.9, 2.5, 3.1, 3.0, 1.1, 4.2, 2.9];
        (x, y)
    }

    #[test]
    fn average_ranks_share_the_mean_rank_of_ties() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 4.0, 1.0, 5.0, 4.0, 4.0]),
            vec![3.0, 1.5, 5.0, 1.5, 7.0, 5.0, 5.0]
        );
        assert_eq!(average_ranks(&[2.0, 2.0, 2.0]), vec![2.0, 2.0, 2.0]);
        assert_eq!(average_ranks(&[0.0, -0.0, -1.0]), vec![2.5, 2.5, 1.0]);
        assert!(average_ranks(&[]).is_empty());
    }

    #[test]
    fn pearson_of_linear_data_is_plus_or_minus_one() {
        let x: Vec<f64> = (0..20).map(|i| 0.37 * i as f64 - 1.3).collect();
        let up: Vec<f64> = x.iter().map(|v| 3.0 * v + 2.0).collect();
        let down: Vec<f64> = x.iter().map(|v| -0.5 * v + 7.0).collect();
        let (r, p) = pearson(&x, &up).unwrap();
        assert!((r - 1.0).abs() < 1e-15 && p < 1e-100, "r = {r}, p = {p}");
        let (r, p) = pearson(&x, &down).unwrap();
        assert!((r + 1.0).abs() < 1e-15 && p < 1e-100, "r = {r}, p = {p}");
        // Mirrored data gives ±1 exactly, hence p = 0.
        let mirrored: Vec<f64> = x.iter().map(|v| -v).collect();
        assert_eq!(pearson(&x, &mirrored).unwrap(), (-1.0, 0.0));
    }

    #[test]
    fn pearson_p_matches_students_t_survival() {
        let (x, y) = sample();
        let (r, p) = pearson(&x, &y).unwrap();
        let df = (x.len() - 2) as f64;
        let t = r * (df / (1.0 - r * r)).sqrt();
        let students_t = StudentsT::new(0.0, 1.0, df).unwrap();
        assert!(p > 0.001 && p < 0.5, "p = {p} is not moderate");
        assert_close(p, 2.0 * students_t.sf(t.abs()), 1e-12);
    }

    #[test]
    fn pearson_p_keeps_relative_precision_when_tiny() {
        // Linear trend plus a small deterministic wiggle: r close to 1.
        let x: Vec<f64> = (0..60).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| v + 3.0 * (v * 1.7).sin()).collect();
        let (r, p) = pearson(&x, &y).unwrap();
        assert!(p < 1e-30, "p = {p}");
        // scipy's beta form, a different parametrisation of the same tail.
        let shape = 29.0;
        assert_close(p, 2.0 * beta_reg(shape, shape, (1.0 - r) / 2.0), 1e-11);
    }

    #[test]
    fn correlation_p_matches_scipys_symmetric_beta_form() {
        // scipy: p = 2 I_{(1-|r|)/2}(n/2 - 1, n/2 - 1); statrs evaluates it
        // well for moderate n, covering both branches of correlation_p.
        for n in [3, 4, 7, 10, 50, 500] {
            for r in [0.0_f64, 1e-9, -1e-5, 0.01, 0.2, -0.5, 0.9, 0.999, -0.999999] {
                let shape = n as f64 / 2.0 - 1.0;
                let expected = (2.0 * beta_reg(shape, shape, (1.0 - r.abs()) / 2.0)).min(1.0);
                assert_close(correlation_p(r, n), expected, 1e-12);
            }
        }
    }

    #[test]
    fn pearson_with_two_points_is_exactly_one_with_p_one() {
        assert_eq!(pearson(&[1.0, 2.0], &[3.0, 5.0]).unwrap(), (1.0, 1.0));
        assert_eq!(pearson(&[1.0, 2.0], &[5.0, 3.0]).unwrap(), (-1.0, 1.0));
    }

    #[test]
    fn fisher_interval_is_symmetric_in_z() {
        let (r, n) = (0.6, 28);
        let (low, high) = pearson_ci95(r, n);
        let half_width = 1.959963984540054 / 5.0;
        assert_close(r.atanh() - low.atanh(), half_width, 1e-12);
        assert_close(high.atanh() - r.atanh(), half_width, 1e-12);
        let (low, high) = pearson_ci95(0.0, 12);
        assert_eq!(low, -high);
    }

    #[test]
    fn fisher_interval_edge_cases_follow_scipy() {
        assert_eq!(pearson_ci95(0.99, 3), (-1.0, 1.0));
        assert_eq!(pearson_ci95(1.0, 2), (-1.0, 1.0));
        assert_eq!(pearson_ci95(1.0, 10), (1.0, 1.0));
        assert_eq!(pearson_ci95(-1.0, 10), (-1.0, -1.0));
    }

    #[test]
    fn spearman_is_pearson_of_ranks_with_t_test_p() {
        let (x, y) = sample();
        let (rho, p) = spearman(&x, &y).unwrap();
        let (r_ranks, _) = pearson(&average_ranks(&x), &average_ranks(&y)).unwrap();
        assert_eq!(rho, r_ranks);
        let df = (x.len() - 2) as f64;
        let t = rho * (df / (1.0 - rho * rho)).sqrt();
        let students_t = StudentsT::new(0.0, 1.0, df).unwrap();
        assert_close(p, 2.0 * students_t.sf(t.abs()), 1e-12);
    }

    #[test]
    fn spearman_of_monotone_data_is_exactly_one_with_p_zero() {
        let x = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7];
        let cubed: Vec<f64> = x.iter().map(|v| v * v * v).collect();
        assert_eq!(spearman(&x, &cubed).unwrap(), (1.0, 0.0));
        let negated: Vec<f64> = x.iter().map(|v| -v.exp()).collect();
        assert_eq!(spearman(&x, &negated).unwrap(), (-1.0, 0.0));
        let (rho, p) = spearman(&[1.0, 2.0], &[4.0, 3.0]).unwrap();
        assert!(rho == -1.0 && p.is_nan());
    }

    #[test]
    fn rank_correlations_are_invariant_to_monotone_transforms() {
        let (x, y) = sample();
        let x_transformed: Vec<f64> = x.iter().map(|v| (2.0 * v).exp() - 3.0).collect();
        let y_transformed: Vec<f64> = y.iter().map(|v| v.powi(3) + v).collect();
        assert_eq!(
            spearman(&x, &y).unwrap(),
            spearman(&x_transformed, &y_transformed).unwrap()
        );
        assert_eq!(
            kendall_tau_b(&x, &y).unwrap(),
            kendall_tau_b(&x_transformed, &y_transformed).unwrap()
        );
    }

    #[test]
    fn kendall_exact_p_matches_enumeration_of_all_permutations() {
        for n in 2..=7 {
            let x: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let all = permutations(n);
            let s_values: Vec<i64> = all
                .iter()
                .map(|perm| {
                    let y: Vec<f64> = perm.iter().map(|&v| v as f64).collect();
                    brute_force_s(&x, &y)
                })
                .collect();
            for (perm, &s) in all.iter().zip(&s_values) {
                let y: Vec<f64> = perm.iter().map(|&v| v as f64).collect();
                let as_extreme = s_values.iter().filter(|t| t.abs() >= s.abs()).count();
                let expected = as_extreme as f64 / all.len() as f64;
                let (tau, p) = kendall_tau_b(&x, &y).unwrap();
                assert_close(p, expected, 1e-13);
                let total = (n * (n - 1) / 2) as f64;
                assert_close(tau, s as f64 / total, 1e-15);
            }
        }
    }

    #[test]
    fn kendall_uses_exact_p_for_nearly_sorted_large_samples() {
        let x: Vec<f64> = (0..40).map(f64::from).collect();
        let two_over_40_factorial = (1..=40).fold(2.0, |acc, k| acc / f64::from(k));
        assert_close(
            kendall_tau_b(&x, &x).unwrap().1,
            two_over_40_factorial,
            1e-13,
        );
        // One adjacent swap: one discordant pair, p = 2 (1 + 39) / 40! = 2 / 39!.
        let mut y = x.clone();
        y.swap(10, 11);
        assert_close(
            kendall_tau_b(&x, &y).unwrap().1,
            two_over_40_factorial * 40.0,
            1e-13,
        );
    }

    #[test]
    fn kendall_tau_b_matches_brute_force_with_ties() {
        let x = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0, 5.0, 0.0, -0.0];
        let y = [2.0, 1.0, 3.0, 3.0, 1.0, 2.0, 5.0, 5.0, 4.0, 1.0, 0.0];
        let tied_pairs = |v: &[f64]| {
            let mut count = 0;
            for i in 0..v.len() {
                count += v[i + 1..].iter().filter(|&&w| w == v[i]).count();
            }
            count as f64
        };
        let n = x.len() as f64;
        let total = n * (n - 1.0) / 2.0;
        let expected = brute_force_s(&x, &y) as f64
            / ((total - tied_pairs(&x)) * (total - tied_pairs(&y))).sqrt();
        let (tau, _) = kendall_tau_b(&x, &y).unwrap();
        assert_close(tau, expected, 1e-14);
    }

    #[test]
    fn kendall_tie_corrected_variance_is_the_permutation_variance() {
        // Under the null every permutation of y is equally likely, so the
        // formula must equal the mean of S² over all of them (E[S] = 0).
        let x = [1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 4.0];
        let y = [5.0, 6.0, 6.0, 7.0, 8.0, 8.0, 8.0];
        let all = permutations(x.len());
        let mean_square = all
            .iter()
            .map(|perm| {
                let permuted: Vec<f64> = perm.iter().map(|&i| y[i]).collect();
                (brute_force_s(&x, &permuted) as f64).powi(2)
            })
            .sum::<f64>()
            / all.len() as f64;
        assert_close(
            PairCounts::new(&x, &y).null_variance_of_s(),
            mean_square,
            1e-12,
        );
    }

    #[test]
    fn normal_two_sided_p_matches_standard_normal_tails() {
        // erfc(|z| / sqrt 2) at well-known points (high-precision reference values).
        assert_eq!(normal_two_sided_p(0.0), 1.0);
        assert_close(normal_two_sided_p(1.0), 0.3173105078629141, 1e-14);
        assert_close(normal_two_sided_p(NORMAL_QUANTILE_975), 0.05, 1e-14);
        assert_close(normal_two_sided_p(-3.0), 0.002699796063260189, 1e-14);
        assert_close(normal_two_sided_p(10.0), 1.523970604832105e-23, 1e-13);
        assert_close(normal_two_sided_p(30.0), 9.813427854296374e-198, 1e-12);
    }

    #[test]
    fn kendall_with_ties_uses_the_normal_approximation() {
        let (mut x, y) = sample();
        x[1] = x[0];
        let counts = PairCounts::new(&x, &y);
        let z = counts.concordant_minus_discordant() as f64 / counts.null_variance_of_s().sqrt();
        let (_, p) = kendall_tau_b(&x, &y).unwrap();
        assert_eq!(p, normal_two_sided_p(z));
    }

    #[test]
    fn correlate_combines_the_individual_statistics() {
        let (x, y) = sample();
        let all = correlate(&x, &y).unwrap();
        let (pearson_r, pearson_p) = pearson(&x, &y).unwrap();
        let (spearman_rho, spearman_p) = spearman(&x, &y).unwrap();
        let (kendall_tau, kendall_p) = kendall_tau_b(&x, &y).unwrap();
        let expected = Correlation {
            n: x.len(),
            pearson_r,
            pearson_p,
            pearson_ci95: pearson_ci95(pearson_r, x.len()),
            spearman_rho,
            spearman_p,
            kendall_tau,
            kendall_p,
        };
        assert_eq!(all, expected);
    }

    #[test]
    fn invalid_inputs_are_reported() {
        assert_eq!(
            correlate(&[1.0, 2.0], &[1.0]),
            Err(CorrelationError::LengthMismatch { x: 2, y: 1 })
        );
        assert_eq!(
            pearson(&[1.0], &[2.0]),
            Err(CorrelationError::TooFew { n: 1 })
        );
        assert_eq!(spearman(&[], &[]), Err(CorrelationError::TooFew { n: 0 }));
        assert_eq!(
            kendall_tau_b(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]),
            Err(CorrelationError::Constant { which: "x" })
        );
        assert_eq!(
            correlate(&[1.0, 2.0, 3.0], &[0.0, -0.0, 0.0]),
            Err(CorrelationError::Constant { which: "y" })
        );
        assert_eq!(
            correlate(&[1.0, 2.0, 3.0], &[0.5, f64::NAN, 1.0]),
            Err(CorrelationError::NonFinite {
                which: "y",
                index: 1
            })
        );
        assert_eq!(
            pearson(&[1.0, f64::INFINITY], &[1.0, 2.0]),
            Err(CorrelationError::NonFinite {
                which: "x",
                index: 1
            })
        );
        let message = CorrelationError::Constant { which: "y" }.to_string();
        assert!(message.contains('y'), "{message}");
    }
}
