//! Null distributions behind the two-sided p-values: Student's t (as a regularised incomplete
//! beta), the standard normal, and Kendall's exact (Mahonian) distribution.

use statrs::function::beta::beta_reg;
use statrs::function::gamma::gamma_ur;

/// Two-sided p-value of a correlation coefficient `r` from `n` > 2 pairs:
/// P(|T| ≥ |t|) for Student's t with n - 2 degrees of freedom and
/// t = r sqrt((n-2) / (1 - r²)), which equals scipy's beta form for Pearson,
/// 2 I_{(1-|r|)/2}(n/2 - 1, n/2 - 1).
pub(super) fn correlation_p(r: f64, n: usize) -> f64 {
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
pub(super) fn normal_two_sided_p(z: f64) -> f64 {
    if z == 0.0 {
        return 1.0;
    }
    // erfc(x) = Q(1/2, x²). statrs' own `erfc` is only accurate to about
    // 1e-10 relative (truncated constants), its upper incomplete gamma to
    // about 1e-14.
    gamma_ur(0.5, z * z / 2.0)
}

/// Exact two-sided p-value of Kendall's test for `n` tie-free pairs of which
/// `concordant` are concordant (scipy's `_kendall_p_exact`).
///
/// The number of discordant pairs of a random permutation follows the
/// Mahonian distribution, which is symmetric, so p = min(1, 2 P(D ≤ c)) with
/// c the smaller of the concordant and discordant counts.
pub(super) fn kendall_exact_p(n: usize, concordant: u64) -> f64 {
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
