//! k-NN precision/recall/density/coverage against the reference fixtures (numpy f64 and prdc).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::path::{Path, PathBuf};
use whichgan::io::load_points;
use whichgan::metrics::knn::{prdc_with, Backend, MAX_TREE_DIM};
use whichgan::Points;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics/pr")
}

fn cases() -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let map: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    map.into_iter().collect()
}

/// The fixture values are ratios of counts: equal means the same count.
fn assert_ratio(case: &str, what: &str, got: f64, want: &Value) {
    let want = want.as_f64().unwrap();
    assert!(
        (got - want).abs() < 1e-12,
        "{case}: {what} = {got}, reference {want}"
    );
}

#[test]
fn prdc_matches_references_on_every_backend() {
    for (case, expected) in cases() {
        let dir = fixtures().join(&case);
        let real = load_points(&dir.join("real.npy")).unwrap();
        let fake = load_points(&dir.join("fake.npy")).unwrap();
        let k = expected["k"].as_u64().unwrap() as usize;
        let mut backends = vec![Backend::Auto, Backend::Dense];
        if real.dim() <= MAX_TREE_DIM {
            backends.push(Backend::Tree);
        }
        for backend in backends {
            let got = prdc_with(&real, &fake, k, backend).unwrap();
            let label = format!("{case} ({backend:?})");
            // precision/recall: the f64 reference, including the float32 near-tie case.
            assert_ratio(&label, "precision", got.precision, &expected["precision"]);
            assert_ratio(&label, "recall", got.recall, &expected["recall"]);
            // density/coverage: prdc's values.
            assert_ratio(&label, "density", got.density, &expected["prdc"]["density"]);
            assert_ratio(
                &label,
                "coverage",
                got.coverage,
                &expected["prdc"]["coverage"],
            );
        }
    }
}

/// Plain O(n²) evaluation of the definitions, for comparison on random data.
fn brute_force(real: &Points, fake: &Points, k: usize) -> (usize, usize, usize, usize) {
    let d2 =
        |u: &[f64], v: &[f64]| -> f64 { u.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum() };
    let radii = |p: &Points| -> Vec<f64> {
        (0..p.len())
            .map(|i| {
                let mut row: Vec<f64> = (0..p.len()).map(|j| d2(p.row(i), p.row(j))).collect();
                row.sort_by(f64::total_cmp);
                row[k]
            })
            .collect()
    };
    let (rr, rf) = (radii(real), radii(fake));
    let inside_real = |j: usize, i: usize| d2(real.row(i), fake.row(j)) < rr[i];
    let precision = (0..fake.len())
        .filter(|&j| (0..real.len()).any(|i| inside_real(j, i)))
        .count();
    let recall = (0..real.len())
        .filter(|&i| (0..fake.len()).any(|j| d2(real.row(i), fake.row(j)) < rf[j]))
        .count();
    let density = (0..fake.len())
        .map(|j| (0..real.len()).filter(|&i| inside_real(j, i)).count())
        .sum();
    let coverage = (0..real.len())
        .filter(|&i| (0..fake.len()).any(|j| inside_real(j, i)))
        .count();
    (precision, recall, density, coverage)
}

/// Random points on a coarse lattice plus noise: many exact duplicates and distance ties.
fn lattice_points(rng: &mut impl Rng, n: usize, d: usize, noise: f64) -> Points {
    let data = (0..n * d)
        .map(|_| rng.random_range(0..4) as f64 + noise * rng.random::<f64>())
        .collect();
    Points::new(n, d, data).unwrap()
}

#[test]
fn every_backend_equals_brute_force_with_ties_and_duplicates() {
    let mut rng = StdRng::seed_from_u64(7);
    for (d, noise) in [(2, 0.0), (2, 0.3), (3, 0.0), (4, 0.5), (9, 0.0), (9, 0.2)] {
        for k in [1, 3, 5] {
            let real = lattice_points(&mut rng, 150, d, noise);
            let fake = lattice_points(&mut rng, 120, d, noise);
            let (p, r, dens, c) = brute_force(&real, &fake, k);
            let mut backends = vec![Backend::Dense];
            if d <= MAX_TREE_DIM {
                backends.push(Backend::Tree);
            }
            for backend in backends {
                let got = prdc_with(&real, &fake, k, backend).unwrap();
                let label = format!("d={d} noise={noise} k={k} {backend:?}");
                assert_eq!(got.precision, p as f64 / 120.0, "{label} precision");
                assert_eq!(got.recall, r as f64 / 150.0, "{label} recall");
                assert_eq!(
                    got.density,
                    dens as f64 / (k as f64 * 120.0),
                    "{label} density"
                );
                assert_eq!(got.coverage, c as f64 / 150.0, "{label} coverage");
            }
        }
    }
}

#[test]
fn too_few_points_and_dimension_mismatch_are_errors() {
    let a = Points::new(5, 2, vec![0.0; 10]).unwrap();
    let b = Points::new(6, 2, vec![0.0; 12]).unwrap();
    let e = prdc_with(&a, &b, 5, Backend::Auto).unwrap_err().to_string();
    assert!(e.contains("at least k + 1 = 6"), "{e}");
    let c = Points::new(6, 3, vec![0.0; 18]).unwrap();
    let e = prdc_with(&b, &c, 5, Backend::Auto).unwrap_err().to_string();
    assert!(e.contains("dimension"), "{e}");
    let e = prdc_with(&b, &b, 5, Backend::Tree);
    assert!(e.is_ok());
    let wide = Points::new(6, 9, vec![0.0; 54]).unwrap();
    assert!(prdc_with(&wide, &wide, 5, Backend::Tree).is_err());
}

/// The playground's float32 arithmetic against torch's own float32 evaluation on the CPU
/// (`fixtures/metrics/pr_f32_expanded`), on cases where it agrees with the exact definition and
/// on cases where it does not.
#[test]
fn f32_expanded_precision_and_recall_match_torch() {
    use whichgan::metrics::knn_expanded::precision_recall_f32_expanded;
    let root = fixtures().join("..");
    let text = std::fs::read_to_string(root.join("pr_f32_expanded/expected.json")).unwrap();
    let cases: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    let mut disagreeing = 0;
    for (case, expected) in &cases {
        let dir = root.join(expected["folder"].as_str().unwrap());
        let real = load_points(&dir.join("real.npy")).unwrap();
        let fake = load_points(&dir.join("fake.npy")).unwrap();
        let k = expected["k"].as_u64().unwrap() as usize;
        let (precision, recall) = precision_recall_f32_expanded(&real, &fake, k).unwrap();
        assert_ratio(case, "f32 precision", precision, &expected["precision"]);
        assert_ratio(case, "f32 recall", recall, &expected["recall"]);
        let exact = prdc_with(&real, &fake, k, Backend::Auto).unwrap();
        assert_ratio(
            case,
            "exact precision",
            exact.precision,
            &expected["exact_precision"],
        );
        assert_ratio(
            case,
            "exact recall",
            exact.recall,
            &expected["exact_recall"],
        );
        if (exact.precision, exact.recall) != (precision, recall) {
            disagreeing += 1;
        }
    }
    assert!(
        disagreeing >= 2,
        "the fixture must hold cases where the arithmetics differ"
    );
    let one = load_points(&fixtures().join("circle10_vs_mix3_2d/real.npy")).unwrap();
    let three_d = Points::new(6, 3, vec![0.0; 18]).unwrap();
    assert!(precision_recall_f32_expanded(&one, &three_d, 5).is_err());
    assert!(precision_recall_f32_expanded(&one, &one.head(5), 5).is_err());
}
