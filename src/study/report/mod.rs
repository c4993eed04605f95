//! `study report`: the study's tables, figures and a README that checks its claims one by
//! one, from the files the jobs wrote.
//!
//! - `runs.csv`: every snapshot of every fine-tune (start, target, kimg, FID, KID, precision,
//!   recall, classes covered);
//! - `convergence.csv`: per fine-tune, the FID curve's plateau, kimg to within 10 % of it and
//!   excess area (see [`crate::metrics::convergence`]);
//! - `selection.csv`: per target, setting and metric, the ranking of the sources, its top pick
//!   and whether that is the source whose fine-tune ends with the best FID;
//!   `selection-failures.csv`: the study's table, failures per setting and metric;
//! - `correlations.csv`: over source × target pairs, Pearson and Spearman between each
//!   selection score and the fine-tune's final FID and recall;
//! - figures: FID and classes covered against kimg (a panel per target, a curve per start),
//!   final precision against recall, the failure table (`figures`);
//! - `README.md`: the setup and the claims checked one by one (`readme`).

mod figures;
mod readme;

use figures::{failures_figure, figures};
use readme::readme;
#[cfg(test)]
mod tests;

use super::jobs::{grid, Job, Layout};
use super::run::{read_evaluation, EvaluationRow, Selection, STUDY_FILE};
use super::spec::{Study, SCRATCH};
use crate::io::write_atomic;
use crate::metrics::convergence::{Curve, Direction};
use crate::metrics::stats::correlate;
use crate::run::stylegan2::Scores;
use crate::select::Metric;
use crate::{Error, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The percentage of the plateau that counts as converged.
const WITHIN_PERCENT: f64 = 10.0;
/// The share of the kimg span, at the end, whose mean is the plateau.
const PLATEAU_TAIL: f64 = 0.25;
/// The selection settings, as the report names them.
const SETTINGS: [&str; 2] = ["real", "generated"];

/// The files a report wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Written {
    pub folder: PathBuf,
    pub files: Vec<String>,
}

/// The study read back from its folder: its description and every job's outputs.
struct Results {
    study: Study,
    /// (start, target, snapshots).
    runs: Vec<(String, String, Vec<EvaluationRow>)>,
    selections: Vec<Selection>,
    /// (job, seconds it took), for the jobs whose markers say.
    seconds: Vec<(Job, f64)>,
}

fn read_results(dir: &Path) -> Result<Results> {
    let path = dir.join(STUDY_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::in_file(dir, format!("is not a study folder ({STUDY_FILE}: {e})")))?;
    let study: Study = serde_json::from_str(&text)
        .map_err(|e| Error::in_file(&path, format!("not a study description: {e}")))?;
    let layout = Layout {
        out: dir.to_owned(),
    };
    let missing: Vec<String> = grid(&study)
        .iter()
        .filter(|j| !layout.is_done(j))
        .map(Job::id)
        .collect();
    if !missing.is_empty() {
        return Err(Error::in_file(
            dir,
            format!(
                "{} of the study's jobs are not done ({}); finish them with `study run`",
                missing.len(),
                missing.join(", ")
            ),
        ));
    }
    let mut runs = Vec::new();
    for t in &study.targets {
        for start in study.starts() {
            let rows = read_evaluation(&layout.evaluation(start, &t.name))?;
            runs.push((start.to_owned(), t.name.clone(), rows));
        }
    }
    let mut selections = Vec::new();
    for t in &study.targets {
        for s in &study.sources {
            let path = layout.selection(&s.name, &t.name);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            selections.push(
                serde_json::from_str(&text)
                    .map_err(|e| Error::in_file(&path, format!("not selection scores: {e}")))?,
            );
        }
    }
    let seconds = grid(&study)
        .into_iter()
        .filter_map(|job| layout.seconds(&job).map(|s| (job, s)))
        .collect();
    Ok(Results {
        study,
        runs,
        selections,
        seconds,
    })
}

/// Writes the report of the study in `dir` into `out`.
pub fn write_report(dir: &Path, out: &Path) -> Result<Written> {
    let results = read_results(dir)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut files = Vec::new();
    let mut put = |name: &str, text: String| -> Result<()> {
        write_atomic(&out.join(name), text.as_bytes())?;
        files.push(name.to_owned());
        Ok(())
    };
    put("runs.csv", runs_csv(&results))?;
    let convergence = convergence_rows(&results)?;
    put("convergence.csv", convergence_csv(&convergence))?;
    let selection = selection_rows(&results);
    put("selection.csv", selection_csv(&selection))?;
    put("selection-failures.csv", failures_csv(&selection))?;
    put("correlations.csv", correlations_csv(&results))?;
    put("README.md", readme(&results, &convergence, &selection))?;
    let stem = out.join("selection-failures");
    failures_figure(&selection, &stem)?;
    files.extend([
        "selection-failures.png".to_owned(),
        "selection-failures.svg".to_owned(),
    ]);
    for name in figures(&results, out)? {
        files.push(name);
    }
    Ok(Written {
        folder: out.to_owned(),
        files,
    })
}

/// A cell: the value, or empty when there is none.
fn cell(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_default()
}

fn runs_csv(r: &Results) -> String {
    let mut s = String::from("source,target,kimg,fid,kid,precision,recall,classes_covered\n");
    for (start, target, rows) in &r.runs {
        for row in rows {
            let _ = writeln!(
                s,
                "{start},{target},{},{},{},{},{},{}",
                row.kimg,
                cell(row.fid),
                cell(row.kid),
                cell(row.precision),
                cell(row.recall),
                row.classes_covered
                    .map(|c| c.to_string())
                    .unwrap_or_default()
            );
        }
    }
    s
}

/// A fine-tune's FID curve and where it converged.
struct ConvergenceRow {
    start: String,
    target: String,
    final_kimg: f64,
    final_fid: f64,
    plateau: f64,
    kimg_to_within: f64,
    excess_area: f64,
}

fn convergence_rows(r: &Results) -> Result<Vec<ConvergenceRow>> {
    let mut out = Vec::new();
    for (start, target, rows) in &r.runs {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|row| row.fid.map(|f| (row.kimg, f)))
            .collect();
        let curve = Curve::new(
            points.iter().map(|p| p.0).collect(),
            points.iter().map(|p| p.1).collect(),
        )
        .map_err(|e| Error::invalid(format!("the FID curve of {start} → {target}: {e}")))?;
        let c = curve.convergence(Direction::LowerIsBetter, PLATEAU_TAIL, WITHIN_PERCENT)?;
        out.push(ConvergenceRow {
            start: start.clone(),
            target: target.clone(),
            final_kimg: c.final_kimg,
            final_fid: c.final_value,
            plateau: c.plateau,
            kimg_to_within: c.kimg_to_within,
            excess_area: c.excess_area,
        });
    }
    Ok(out)
}

fn convergence_csv(rows: &[ConvergenceRow]) -> String {
    let mut s = String::from(
        "source,target,final_kimg,final_fid,plateau,kimg_to_within_10pct,excess_area\n",
    );
    for c in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{}",
            c.start,
            c.target,
            c.final_kimg,
            c.final_fid,
            c.plateau,
            c.kimg_to_within,
            c.excess_area
        );
    }
    s
}

/// The last snapshot's scores of a fine-tune.
fn last<'a>(r: &'a Results, start: &str, target: &str) -> Option<&'a EvaluationRow> {
    r.runs
        .iter()
        .find(|(s, t, _)| s == start && t == target)
        .and_then(|(_, _, rows)| rows.last())
}

/// One metric's pick of a source for one target in one setting.
struct SelectionRow {
    target: String,
    setting: &'static str,
    metric: Metric,
    /// Sources best first by the metric.
    ranking: Vec<String>,
    /// The source whose fine-tune ends with the lowest FID.
    best: String,
}

impl SelectionRow {
    fn picked_best(&self) -> bool {
        self.ranking.first() == Some(&self.best)
    }
}

fn setting_scores(s: &Selection, setting: &str) -> Option<Scores> {
    match setting {
        "real" => s.real,
        _ => s.generated,
    }
}

fn metric_of(scores: &Scores, metric: Metric) -> Option<f64> {
    match metric {
        Metric::Fid => scores.fid,
        Metric::Kid => scores.kid,
        Metric::Precision => scores.precision,
        Metric::Recall => scores.recall,
    }
}

fn selection_rows(r: &Results) -> Vec<SelectionRow> {
    let mut rows = Vec::new();
    for t in &r.study.targets {
        let final_fid = |source: &str| last(r, source, &t.name).and_then(|row| row.fid);
        let Some(best) = r
            .study
            .sources
            .iter()
            .filter_map(|s| final_fid(&s.name).map(|f| (s.name.clone(), f)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(name, _)| name)
        else {
            continue;
        };
        for setting in SETTINGS {
            for metric in Metric::ALL {
                let mut scored: Vec<(String, f64)> = r
                    .selections
                    .iter()
                    .filter(|s| s.target == t.name)
                    .filter_map(|s| {
                        let v = setting_scores(s, setting).and_then(|sc| metric_of(&sc, metric));
                        v.map(|v| (s.source.clone(), v))
                    })
                    .collect();
                if scored.is_empty() {
                    continue;
                }
                // Stable: ties keep the study's order of the sources.
                scored.sort_by(|a, b| {
                    let o = a.1.total_cmp(&b.1);
                    if metric.higher_is_better() {
                        o.reverse()
                    } else {
                        o
                    }
                });
                rows.push(SelectionRow {
                    target: t.name.clone(),
                    setting,
                    metric,
                    ranking: scored.into_iter().map(|(name, _)| name).collect(),
                    best: best.clone(),
                });
            }
        }
    }
    rows
}

fn selection_csv(rows: &[SelectionRow]) -> String {
    let mut s =
        String::from("target,setting,metric,ranking,top_pick,best_by_final_fid,picked_best\n");
    for row in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{}",
            row.target,
            row.setting,
            row.metric.name(),
            row.ranking.join(" > "),
            row.ranking[0],
            row.best,
            row.picked_best()
        );
    }
    s
}

/// Failures per (setting, metric): targets where the top pick is not the best source.
fn failures(rows: &[SelectionRow]) -> Vec<(&'static str, Metric, usize, usize)> {
    let mut out = Vec::new();
    for setting in SETTINGS {
        for metric in Metric::ALL {
            let of: Vec<&SelectionRow> = rows
                .iter()
                .filter(|r| r.setting == setting && r.metric == metric)
                .collect();
            if !of.is_empty() {
                let failed = of.iter().filter(|r| !r.picked_best()).count();
                out.push((setting, metric, of.len(), failed));
            }
        }
    }
    out
}

fn failures_csv(rows: &[SelectionRow]) -> String {
    let mut s = String::from("setting,metric,targets,failures\n");
    for (setting, metric, targets, failed) in failures(rows) {
        let _ = writeln!(s, "{setting},{},{targets},{failed}", metric.name());
    }
    s
}

fn correlations_csv(r: &Results) -> String {
    let mut s =
        String::from("setting,score,outcome,n,pearson_r,pearson_p,spearman_rho,spearman_p\n");
    for setting in SETTINGS {
        for metric in Metric::ALL {
            for outcome in ["final_fid", "final_recall"] {
                let (mut x, mut y) = (Vec::new(), Vec::new());
                for sel in &r.selections {
                    let score = setting_scores(sel, setting).and_then(|sc| metric_of(&sc, metric));
                    let result = last(r, &sel.source, &sel.target).and_then(|row| match outcome {
                        "final_fid" => row.fid,
                        _ => row.recall,
                    });
                    if let (Some(a), Some(b)) = (score, result) {
                        x.push(a);
                        y.push(b);
                    }
                }
                if x.is_empty() {
                    continue;
                }
                let line = match correlate(&x, &y) {
                    Ok(c) => format!(
                        "{},{},{},{}",
                        c.pearson_r, c.pearson_p, c.spearman_rho, c.spearman_p
                    ),
                    // Too few pairs or a constant score: no correlation to give.
                    Err(_) => ",,,".to_owned(),
                };
                let _ = writeln!(
                    s,
                    "{setting},{},{outcome},{},{line}",
                    metric.name(),
                    x.len()
                );
            }
        }
    }
    s
}
