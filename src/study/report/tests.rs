//! The report's tables and claims on a constructed study whose answers are known.

use super::*;
use crate::study::StudyFile;

/// Three sources, two targets; the final FIDs make `b` best on `t1` and `c` on `t2`.
fn constructed() -> Results {
    let text = "
[datasets.d]
synth = { images = 10, classes = 4, resolution = 16 }
[sources.a]
pretrain = { data = 'd' }
[sources.b]
pretrain = { data = 'd' }
[sources.c]
pretrain = { data = 'd' }
[targets.t1]
data = 'd'
[targets.t2]
data = 'd'
[training]
snap = 4
[metrics]
features = 'pixels'
";
    let file = StudyFile::parse(text, Path::new("s.toml")).unwrap();
    let study = Study::check(&file, Path::new(".")).unwrap();
    let final_fid = |s: &str, t: &str| match (s, t) {
        ("b", "t1") | ("c", "t2") => 10.0,
        (SCRATCH, _) => 50.0,
        _ => 20.0,
    };
    let mut runs = Vec::new();
    for t in ["t1", "t2"] {
        for s in ["a", "b", "c", SCRATCH] {
            let rows = [(4.0, 40.0), (8.0, final_fid(s, t))]
                .map(|(kimg, fid)| EvaluationRow {
                    kimg,
                    fid: Some(fid),
                    kid: Some(fid / 100.0),
                    precision: Some(0.5),
                    recall: Some(1.0 / fid),
                    classes_covered: None,
                })
                .to_vec();
            runs.push((s.to_owned(), t.to_owned(), rows));
        }
    }
    // Recall ranks the best source first on both targets; FID (real images) prefers `a`.
    let scores = |fid: f64, recall: f64| Scores {
        fid: Some(fid),
        kid: Some(fid),
        precision: Some(0.5),
        recall: Some(recall),
    };
    let mut selections = Vec::new();
    for t in ["t1", "t2"] {
        for s in ["a", "b", "c"] {
            let best = final_fid(s, t) == 10.0;
            let fid = if s == "a" { 1.0 } else { 5.0 };
            let recall = if best { 0.9 } else { 0.2 };
            selections.push(Selection {
                source: s.into(),
                target: t.into(),
                real: Some(scores(fid, recall)),
                generated: None,
            });
        }
    }
    Results {
        study,
        runs,
        selections,
        seconds: Vec::new(),
    }
}

#[test]
fn the_selection_table_counts_the_failures() {
    let r = constructed();
    let rows = selection_rows(&r);
    // Setting 2 has no scores: 4 metrics × 2 targets of setting 1.
    assert_eq!(rows.len(), 8);
    let row = |t: &str, m: Metric| {
        rows.iter()
            .find(|r| r.target == t && r.metric == m)
            .unwrap()
    };
    assert_eq!(row("t1", Metric::Recall).ranking, ["b", "a", "c"]);
    assert_eq!(row("t2", Metric::Fid).ranking, ["a", "b", "c"]);
    assert_eq!(row("t2", Metric::Fid).best, "c");
    let table = failures(&rows);
    let failed = |m: Metric| table.iter().find(|f| f.1 == m).unwrap().3;
    assert_eq!(failed(Metric::Recall), 0);
    assert_eq!(failed(Metric::Fid), 2);
    assert_eq!(failed(Metric::Kid), 2);
    // Precision ties: the study's order puts `a` first, which is best on neither target.
    assert_eq!(failed(Metric::Precision), 2);
    let csv = failures_csv(&rows);
    assert!(
        csv.contains("real,recall,2,0\n") && csv.contains("real,fid,2,2\n"),
        "{csv}"
    );
}

#[test]
fn convergence_and_claims_come_from_the_runs() {
    let r = constructed();
    let conv = convergence_rows(&r).unwrap();
    assert_eq!(conv.len(), 8);
    let scratch = conv.iter().find(|c| c.start == SCRATCH).unwrap();
    assert_eq!((scratch.final_kimg, scratch.final_fid), (8.0, 50.0));
    let text = readme(&r, &conv, &selection_rows(&r));
    assert!(text.contains("## 1. Every pretrained start beats scratch on FID: **holds**"));
    assert!(text.contains(
        "## 5. Ranking sources by recall fails least often to pick the best one: **holds**"
    ));
    let corr = correlations_csv(&r);
    // The selection recall is high exactly where the final recall is: r = ρ = 1.
    let line = corr
        .lines()
        .find(|l| l.starts_with("real,recall,final_recall,6,"))
        .unwrap();
    let cells: Vec<f64> = line
        .split(',')
        .skip(4)
        .map(|c| c.parse().unwrap())
        .collect();
    assert!(
        (cells[0] - 1.0).abs() < 1e-12 && (cells[2] - 1.0).abs() < 1e-12,
        "{line}"
    );
}
