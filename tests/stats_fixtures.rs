//! Correlation statistics against scipy 1.17.1 (`pearsonr`, `spearmanr`, `kendalltau`).

use serde_json::Value;
use std::path::{Path, PathBuf};
use whichgan::io::Table;
use whichgan::metrics::stats::correlate;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics/stats")
}

/// Relative error of a p-value; values below 1e-300 may read 0.
fn p_error(got: f64, want: f64) -> f64 {
    if got < 1e-300 && want < 1e-300 {
        0.0
    } else {
        (got - want).abs() / want.abs()
    }
}

#[test]
fn correlations_match_scipy() {
    let table = Table::read(&fixtures().join("cases.csv")).unwrap();
    let labels = table.text_column("case").unwrap();
    let (x, y) = (
        table.numeric_column("x").unwrap(),
        table.numeric_column("y").unwrap(),
    );
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let expected: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    for (case, want) in &expected {
        let rows: Vec<usize> = (0..labels.len()).filter(|&r| labels[r] == case).collect();
        let gx: Vec<f64> = rows.iter().map(|&r| x[r]).collect();
        let gy: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
        let c = correlate(&gx, &gy).unwrap();
        assert_eq!(c.n as u64, want["n"].as_u64().unwrap(), "{case}");
        let w = |k: &str| want[k].as_f64().unwrap();
        for (name, got) in [
            ("pearson_r", c.pearson_r),
            ("spearman_rho", c.spearman_rho),
            ("kendall_tau", c.kendall_tau),
        ] {
            assert!(
                (got - w(name)).abs() <= 1e-10,
                "{case} {name}: {got} vs {}",
                w(name)
            );
        }
        for (name, got) in [
            ("pearson_p", c.pearson_p),
            ("spearman_p", c.spearman_p),
            ("kendall_p", c.kendall_p),
        ] {
            let err = p_error(got, w(name));
            assert!(
                err <= 1e-8,
                "{case} {name}: {got} vs {} ({err:.1e})",
                w(name)
            );
        }
    }
}
