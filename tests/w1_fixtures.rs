//! Exact W1 against POT's `ot.emd2` on the reference fixtures.

use serde_json::Value;
use std::path::{Path, PathBuf};
use whichgan::io::load_points;
use whichgan::metrics::w1::wasserstein1;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics/w1")
}

#[test]
fn w1_matches_pot() {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let cases: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 5);
    for (case, expected) in cases {
        let a = load_points(&fixtures().join(format!("{case}_a.csv"))).unwrap();
        let b = load_points(&fixtures().join(format!("{case}_b.csv"))).unwrap();
        assert_eq!(a.len() as u64, expected["n_a"].as_u64().unwrap());
        assert_eq!(b.len() as u64, expected["n_b"].as_u64().unwrap());
        let got = wasserstein1(a.as_slice(), b.as_slice(), 2);
        let want = expected["w1"].as_f64().unwrap();
        let err = (got - want).abs() / want;
        eprintln!("{case}: w1 {got} (POT {want}), relative error {err:.1e}");
        assert!(err < 1e-9, "{case}: {got} vs {want}");
        // Symmetric in its arguments.
        let back = wasserstein1(b.as_slice(), a.as_slice(), 2);
        assert!((back - got).abs() <= 1e-12 * got, "{case}: not symmetric");
    }
}
