//! Tests of the exact W1 against brute force, the 1-D quantile formula and metric properties.

use super::wasserstein1;

/// splitmix64: a tiny deterministic generator, enough for test inputs.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn normal_cloud(&mut self, n: usize, dim: usize, shift: f64) -> Vec<f64> {
        (0..n * dim).map(|_| self.normal() + shift).collect()
    }

    fn uniform_cloud(&mut self, n: usize, dim: usize) -> Vec<f64> {
        (0..n * dim).map(|_| self.uniform()).collect()
    }

    fn permuted(&mut self, cloud: &[f64], dim: usize) -> Vec<f64> {
        let mut rows: Vec<&[f64]> = cloud.chunks(dim).collect();
        for i in (1..rows.len()).rev() {
            rows.swap(i, self.below(i + 1));
        }
        rows.concat()
    }
}

fn dist(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

fn assert_close(got: f64, want: f64, rel: f64) {
    let err = (got - want).abs();
    assert!(
        err <= rel * want.abs().max(1e-300) || err <= 1e-14,
        "got {got:e}, want {want:e} (error {err:e})"
    );
}

/// Reference W1 in 1-D: ∫₀¹ |F_a⁻¹(t) − F_b⁻¹(t)| dt over the quantile functions, which
/// are step functions with jumps at multiples of 1/n_a and 1/n_b (in integer units of
/// 1/(n_a·n_b), so the breakpoints are exact).
fn w1_1d_quantiles(a: &[f64], b: &[f64]) -> f64 {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n_a, n_b) = (a.len(), b.len());
    let (mut i, mut j, mut t, mut total) = (0, 0, 0, 0.0);
    while i < n_a && j < n_b {
        let next = ((i + 1) * n_b).min((j + 1) * n_a);
        total += (next - t) as f64 * (a[i] - b[j]).abs();
        t = next;
        if t == (i + 1) * n_b {
            i += 1;
        }
        if t == (j + 1) * n_a {
            j += 1;
        }
    }
    total / (n_a * n_b) as f64
}

/// Reference W1 by brute force: each a-point replicated n_b/g times and each b-point n_a/g
/// times (an assignment problem with the same optimum), minimised over all permutations.
fn w1_brute_force(a: &[f64], b: &[f64], dim: usize) -> f64 {
    let (n_a, n_b) = (a.len() / dim, b.len() / dim);
    let g = (1..=n_a.min(n_b))
        .rev()
        .find(|g| n_a % g == 0 && n_b % g == 0)
        .unwrap();
    let rows: Vec<&[f64]> = a.chunks(dim).flat_map(|p| vec![p; n_b / g]).collect();
    let cols: Vec<&[f64]> = b.chunks(dim).flat_map(|p| vec![p; n_a / g]).collect();
    let n = rows.len();
    assert!(n <= 8, "brute force limited to 8 points per side");
    let cost: Vec<Vec<f64>> = rows
        .iter()
        .map(|p| cols.iter().map(|q| dist(p, q)).collect())
        .collect();
    // Heap's algorithm over all permutations of the columns.
    let mut perm: Vec<usize> = (0..n).collect();
    let value = |perm: &[usize]| (0..n).map(|i| cost[i][perm[i]]).sum::<f64>();
    let mut best = value(&perm);
    let mut counters = vec![0; n];
    let mut i = 1;
    while i < n {
        if counters[i] < i {
            let k = if i % 2 == 0 { 0 } else { counters[i] };
            perm.swap(k, i);
            best = best.min(value(&perm));
            counters[i] += 1;
            i = 1;
        } else {
            counters[i] = 0;
            i += 1;
        }
    }
    best / n as f64
}

#[test]
fn matches_brute_force_on_small_clouds() {
    let sizes = [
        (1, 1),
        (1, 5),
        (4, 1),
        (2, 2),
        (3, 3),
        (5, 5),
        (6, 6),
        (7, 7),
        (2, 4),
        (4, 2),
        (2, 6),
        (4, 8),
        (8, 4),
        (2, 3),
        (3, 2),
        (3, 6),
        (6, 3),
    ];
    let mut rng = Rng(1);
    for dim in [2, 3] {
        for &(n_a, n_b) in &sizes {
            for _ in 0..12 {
                let a = rng.normal_cloud(n_a, dim, 0.0);
                let b = rng.normal_cloud(n_b, dim, 0.5);
                let want = w1_brute_force(&a, &b, dim);
                assert_close(wasserstein1(&a, &b, dim), want, 1e-12);
            }
        }
    }
}

#[test]
fn matches_brute_force_with_duplicate_points() {
    let mut rng = Rng(2);
    for _ in 0..30 {
        // Points on a 3×3 integer grid: many exact duplicates and equal costs.
        let mut grid_cloud = |n| -> Vec<f64> { (0..2 * n).map(|_| rng.below(3) as f64).collect() };
        let (a, b) = (grid_cloud(6), grid_cloud(6));
        assert_close(wasserstein1(&a, &b, 2), w1_brute_force(&a, &b, 2), 1e-12);
        let (a, b) = (grid_cloud(4), grid_cloud(2));
        assert_close(wasserstein1(&a, &b, 2), w1_brute_force(&a, &b, 2), 1e-12);
    }
}

#[test]
fn matches_1d_quantile_formula() {
    let mut rng = Rng(3);
    for &(n_a, n_b) in &[
        (1, 1),
        (5, 5),
        (64, 64),
        (10, 7),
        (30, 45),
        (300, 300),
        (700, 1000),
    ] {
        let a = rng.normal_cloud(n_a, 1, 0.0);
        let b: Vec<f64> = rng
            .normal_cloud(n_b, 1, 0.3)
            .iter()
            .map(|x| 2.0 * x)
            .collect();
        assert_close(wasserstein1(&a, &b, 1), w1_1d_quantiles(&a, &b), 1e-12);
    }
    // Equal sizes: the mean gap between sorted samples.
    let a = rng.uniform_cloud(500, 1);
    let b = rng.uniform_cloud(500, 1);
    let (mut sa, mut sb) = (a.clone(), b.clone());
    sa.sort_by(f64::total_cmp);
    sb.sort_by(f64::total_cmp);
    let want = sa.iter().zip(&sb).map(|(x, y)| (x - y).abs()).sum::<f64>() / 500.0;
    assert_close(wasserstein1(&a, &b, 1), want, 1e-12);
}

#[test]
fn single_point_on_one_side_is_mean_distance() {
    let mut rng = Rng(4);
    for &(n, dim) in &[(1, 2), (9, 2), (50, 3), (400, 2), (20, 5)] {
        let cloud = rng.normal_cloud(n, dim, 0.0);
        let single = rng.normal_cloud(1, dim, 1.0);
        let want = cloud.chunks(dim).map(|p| dist(p, &single)).sum::<f64>() / n as f64;
        assert_close(wasserstein1(&cloud, &single, dim), want, 1e-12);
        assert_close(wasserstein1(&single, &cloud, dim), want, 1e-12);
    }
}

#[test]
fn identical_points_give_zero() {
    let a = [1.5, -2.0].repeat(7);
    let b = [1.5, -2.0].repeat(3);
    assert_eq!(wasserstein1(&a, &b, 2), 0.0);
    assert_eq!(wasserstein1(&[4.0], &[4.0], 1), 0.0);
}

#[test]
fn permuted_copy_gives_zero() {
    let mut rng = Rng(5);
    for &(n, dim) in &[(10, 2), (100, 3), (600, 2), (300, 5)] {
        let a = rng.normal_cloud(n, dim, 0.0);
        let b = rng.permuted(&a, dim);
        assert!(wasserstein1(&a, &b, dim) <= 1e-12);
    }
}

#[test]
fn translation_moves_by_its_length() {
    // W1(μ, μ shifted by v) = |v|: the shift is a plan of that cost, and the 1-Lipschitz
    // potential x ↦ x·v/|v| proves that nothing cheaper exists.
    let mut rng = Rng(6);
    for &(n, dim) in &[(40, 2), (600, 2), (300, 3)] {
        let a = rng.uniform_cloud(n, dim);
        let v: Vec<f64> = (0..dim).map(|k| 0.3 + 0.1 * k as f64).collect();
        let shifted: Vec<f64> = a.iter().enumerate().map(|(i, x)| x + v[i % dim]).collect();
        let b = rng.permuted(&shifted, dim);
        let length = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert_close(wasserstein1(&a, &b, dim), length, 1e-12);
    }
}

#[test]
fn is_symmetric() {
    let mut rng = Rng(7);
    for &(n_a, n_b, dim) in &[
        (30, 30, 2),
        (25, 40, 2),
        (300, 500, 2),
        (64, 48, 5),
        (40, 40, 1),
    ] {
        let a = rng.normal_cloud(n_a, dim, 0.0);
        let b = rng.uniform_cloud(n_b, dim);
        assert_close(wasserstein1(&a, &b, dim), wasserstein1(&b, &a, dim), 1e-12);
    }
}

#[test]
fn satisfies_triangle_inequality() {
    let mut rng = Rng(8);
    for &(n_a, n_b, n_c, dim) in &[
        (10, 10, 10, 2),
        (12, 20, 15, 2),
        (40, 25, 60, 3),
        (300, 280, 350, 2),
        (50, 50, 30, 5),
    ] {
        let a = rng.normal_cloud(n_a, dim, 0.0);
        let b = rng.uniform_cloud(n_b, dim);
        let c = rng.normal_cloud(n_c, dim, 1.0);
        let (ab, bc, ac) = (
            wasserstein1(&a, &b, dim),
            wasserstein1(&b, &c, dim),
            wasserstein1(&a, &c, dim),
        );
        assert!(ac <= (ab + bc) * (1.0 + 1e-12), "{ac} > {ab} + {bc}");
    }
}

#[test]
fn is_deterministic_and_works_in_high_dimension() {
    let mut rng = Rng(9);
    let a = rng.normal_cloud(300, 64, 0.0);
    let b = rng.normal_cloud(200, 64, 0.1);
    let first = wasserstein1(&a, &b, 64);
    assert_eq!(first.to_bits(), wasserstein1(&a, &b, 64).to_bits());
    assert!(first > 0.0);
}

#[test]
fn coordinates_near_the_largest_float_do_not_overflow() {
    let a = [1e308, -1e308, 0.5e308, 1e308, -1.5e308, 0.0];
    assert_eq!(wasserstein1(&a, &a, 2), 0.0);
    // W1 scales with the points: the value at 2⁹⁰⁰ times the coordinates is 2⁹⁰⁰ times it.
    let small = [1.0, -1.0, 0.5, 1.0, -1.5, 0.0];
    let moved = [0.0, 2.0, 1.5, -1.0, 0.25, 0.75];
    let big = |x: &[f64]| x.iter().map(|v| v * 2f64.powi(900)).collect::<Vec<_>>();
    let want = wasserstein1(&small, &moved, 2) * 2f64.powi(900);
    assert_close(wasserstein1(&big(&small), &big(&moved), 2), want, 1e-12);
}
