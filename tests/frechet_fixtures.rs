//! FID and KID against pytorch-fid / stylegan2-ada reference values.

use serde_json::Value;
use std::path::{Path, PathBuf};
use whichgan::io::load_points;
use whichgan::metrics::frechet::{frechet_distance, kid_subset, GaussianStats};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics/fid")
}

fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-300)
}

#[test]
fn fid_and_kid_match_references() {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let cases: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    for (case, expected) in cases {
        let a = load_points(&fixtures().join(format!("{case}_a.npy"))).unwrap();
        let b = load_points(&fixtures().join(format!("{case}_b.npy"))).unwrap();
        assert_eq!(a.len() as u64, expected["n_a"].as_u64().unwrap());
        assert_eq!(a.dim() as u64, expected["d"].as_u64().unwrap());
        let fid = frechet_distance(
            &GaussianStats::from_points(&a).unwrap(),
            &GaussianStats::from_points(&b).unwrap(),
        )
        .unwrap();
        let want = expected["fid"].as_f64().unwrap();
        assert!(rel_err(fid, want) < 1e-6, "{case}: fid {fid} vs {want}");

        // The reference KID: one subset of size min(N_a, N_b) made of the first rows.
        let m = a.len().min(b.len());
        let kid = kid_subset(&a.head(m), &b.head(m)).unwrap();
        let want = expected["kid"].as_f64().unwrap();
        assert!(rel_err(kid, want) < 1e-9, "{case}: kid {kid} vs {want}");
        eprintln!(
            "{case}: fid rel err {:.2e}, kid rel err {:.2e}",
            rel_err(fid, expected["fid"].as_f64().unwrap()),
            rel_err(kid, want)
        );
    }
}

#[test]
fn fid_of_a_set_with_itself_is_zero() {
    for case in ["gauss64_2000_a", "relu256_480x400_b"] {
        let a = load_points(&fixtures().join(format!("{case}.npy"))).unwrap();
        let s = GaussianStats::from_points(&a).unwrap();
        let fid = frechet_distance(&s, &s).unwrap();
        let scale: f64 = (0..s.dim()).map(|i| s.sigma[(i, i)]).sum();
        assert!(fid.abs() < 1e-9 * scale, "{case}: FID with itself = {fid}");
    }
}
