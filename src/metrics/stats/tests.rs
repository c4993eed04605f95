//! Tests of the correlation statistics and their p-values against brute force and scipy.

use super::kendall::PairCounts;
use super::p_values::{correlation_p, normal_two_sided_p};
use super::pearson::NORMAL_QUANTILE_975;
use super::*;
use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::function::beta::beta_reg;

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
    let expected =
        brute_force_s(&x, &y) as f64 / ((total - tied_pairs(&x)) * (total - tied_pairs(&y))).sqrt();
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
