//! Correlation statistics (Pearson, Spearman, Kendall τ-b) with two-sided
//! p-values that follow scipy 1.17 (`pearsonr`, `spearmanr`,
//! `kendalltau(method='auto')`).
//!
//! Inputs are assumed finite; callers validate them. Small p-values are
//! always computed as tail probabilities, never as `1 - cdf`, so they keep
//! their full relative precision.
//!
//! Files: this one holds the combined [`correlate`], the result and error types, input
//! validation and the ordering helpers shared by the rank statistics; `pearson`, `spearman`
//! and `kendall` one statistic each; `p_values` the null distributions behind the p-values.

use std::cmp::Ordering;
use std::fmt;

mod kendall;
mod p_values;
mod pearson;
mod spearman;
#[cfg(test)]
mod tests;

pub use kendall::kendall_tau_b;
pub use pearson::{pearson, pearson_ci95};
pub use spearman::{average_ranks, spearman};

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
