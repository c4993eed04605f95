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
//!   final precision against recall.

use super::jobs::{grid, Job, Layout};
use super::run::{read_evaluation, EvaluationRow, Selection, STUDY_FILE};
use super::spec::{Study, SCRATCH};
use crate::io::write_atomic;
use crate::metrics::convergence::{Curve, Direction};
use crate::metrics::stats::correlate;
use crate::plot::{line_grid, Curve as PlotCurve, LineChart, PALETTE};
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

/// The failures table as a figure: a row per metric, a column per setting, darker for more
/// failures.
fn failures_figure(rows: &[SelectionRow], stem: &Path) -> Result<()> {
    let table = failures(rows);
    let header: Vec<String> = std::iter::once("metric".to_owned())
        .chain(SETTINGS.iter().map(|s| format!("{s}: failures / targets")))
        .collect();
    let (mut cells, mut shades) = (Vec::new(), Vec::new());
    for metric in Metric::ALL {
        let mut row = vec![metric.name().to_owned()];
        let mut shade = vec![0.0];
        for setting in SETTINGS {
            match table.iter().find(|f| f.0 == setting && f.1 == metric) {
                Some(&(_, _, targets, failed)) => {
                    row.push(format!("{failed} / {targets}"));
                    shade.push(failed as f64 / targets as f64);
                }
                None => {
                    row.push("–".into());
                    shade.push(0.0);
                }
            }
        }
        cells.push(row);
        shades.push(shade);
    }
    crate::plot::table(
        stem,
        &crate::plot::Table {
            title: "Selection: targets where the metric's top source is not the best",
            header: &header,
            rows: &cells,
            shades: &shades,
        },
    )
    .map_err(|e| e.in_file(stem))
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

/// A named curve: (start, its (x, y) points).
type Series = (String, Vec<(f64, f64)>);

/// The figures; returns their file names.
fn figures(r: &Results, out: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let starts = r.study.starts();
    let colour = |start: &str| {
        let i = starts.iter().position(|s| *s == start).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let series = |target: &str, value: &dyn Fn(&EvaluationRow) -> Option<f64>| {
        r.runs
            .iter()
            .filter(|(_, t, _)| t == target)
            .map(|(start, _, rows)| {
                let points: Vec<(f64, f64)> = rows
                    .iter()
                    .filter_map(|row| value(row).map(|v| (row.kimg, v)))
                    .collect();
                (start.clone(), points)
            })
            .collect::<Vec<_>>()
    };
    let mut draw = |stem: &str,
                    y_label: &str,
                    targets: Vec<&str>,
                    value: &dyn Fn(&EvaluationRow) -> Option<f64>|
     -> Result<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let data: Vec<(String, Vec<Series>)> = targets
            .iter()
            .map(|t| (format!("{y_label} on {t}"), series(t, value)))
            .collect();
        let curves: Vec<Vec<PlotCurve>> = data
            .iter()
            .map(|(_, s)| {
                s.iter()
                    .map(|(start, points)| PlotCurve {
                        label: start,
                        points,
                        color: colour(start),
                    })
                    .collect()
            })
            .collect();
        let charts: Vec<LineChart> = data
            .iter()
            .zip(&curves)
            .map(|((title, _), curves)| LineChart {
                title,
                x_label: "kimg",
                y_label,
                curves,
                log_y: false,
            })
            .collect();
        let path = out.join(stem);
        line_grid(&path, &charts, 2).map_err(|e| e.in_file(&path))?;
        names.push(format!("{stem}.png"));
        names.push(format!("{stem}.svg"));
        Ok(())
    };
    let all: Vec<&str> = r.study.targets.iter().map(|t| t.name.as_str()).collect();
    draw("fid-vs-kimg", "FID", all.clone(), &|row| row.fid)?;
    let labelled: Vec<&str> = r
        .study
        .targets
        .iter()
        .filter(|t| t.classes)
        .map(|t| t.name.as_str())
        .collect();
    draw("classes-vs-kimg", "classes covered", labelled, &|row| {
        row.classes_covered.map(|c| c as f64)
    })?;
    // Final precision against recall: one point per start, a panel per target.
    let points: Vec<Vec<Series>> = all
        .iter()
        .map(|t| {
            starts
                .iter()
                .filter_map(|s| {
                    let row = last(r, s, t)?;
                    Some((s.to_string(), vec![(row.recall?, row.precision?)]))
                })
                .collect()
        })
        .collect();
    let curves: Vec<Vec<PlotCurve>> = points
        .iter()
        .map(|p| {
            p.iter()
                .map(|(start, pt)| PlotCurve {
                    label: start,
                    points: pt,
                    color: colour(start),
                })
                .collect()
        })
        .collect();
    let titles: Vec<String> = all
        .iter()
        .map(|t| format!("final precision and recall on {t}"))
        .collect();
    let charts: Vec<LineChart> = titles
        .iter()
        .zip(&curves)
        .map(|(title, curves)| LineChart {
            title,
            x_label: "recall",
            y_label: "precision",
            curves,
            log_y: false,
        })
        .collect();
    let path = out.join("precision-recall");
    line_grid(&path, &charts, 2).map_err(|e| e.in_file(&path))?;
    names.push("precision-recall.png".into());
    names.push("precision-recall.svg".into());
    Ok(names)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "**holds**"
    } else {
        "**does not hold**"
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "–".into())
}

/// The README: the claims of the study, each checked against these results.
/// What the study ran: its sources, targets, settings and compute.
fn setup(r: &Results) -> String {
    let study = &r.study;
    let data = |d: &super::spec::Data| match d {
        super::spec::Data::Made { name, spec } => format!(
            "`{name}`: {} synthetic images of {} classes ({}…{}), {}×{}",
            spec.images,
            spec.classes,
            spec.first_class,
            spec.first_class + spec.classes - 1,
            spec.resolution,
            spec.resolution
        ),
        super::spec::Data::File(path) => format!("`{}`", path.display()),
    };
    let mut s = String::from("## Setup\n\n");
    for source in &study.sources {
        let how = match &source.start {
            super::spec::SourceStart::Checkpoint(p) => format!("checkpoint `{}`", p.display()),
            super::spec::SourceStart::Pretrain {
                data: d, settings, ..
            } => format!(
                "pretrained from scratch for {} kimg on {}",
                settings
                    .kimg
                    .map_or("the preset's".into(), |k| k.to_string()),
                data(d)
            ),
        };
        let _ = writeln!(s, "- source **{}**: {how}", source.name);
    }
    if study.scratch {
        let _ = writeln!(s, "- **scratch**: random networks");
    }
    for t in &study.targets {
        let settings = match serde_json::to_value(&t.settings).expect("settings serialise") {
            serde_json::Value::Object(fields) => fields
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "- target **{}**: {}{}; fine-tunes with `{settings}`",
            t.name,
            data(&t.data),
            if t.classes { ", classes counted" } else { "" }
        );
    }
    let m = &study.metrics;
    let _ = writeln!(
        s,
        "- scores: FID and KID on `{}` features{}, precision and recall (k = {}) on {}; {} \
         generated images per snapshot; classes covered: {} images, a class counts with ≥ {}; \
         selection: setting 1 {}, setting 2 {}",
        m.features,
        m.inception
            .as_ref()
            .map(|w| format!(" (`{}`)", w.display()))
            .unwrap_or_default(),
        m.k,
        if m.vgg16.is_some() {
            "VGG16 features"
        } else {
            "the same features"
        },
        m.n,
        m.classes_n,
        m.classes_min,
        if study.select_real { "on" } else { "off" },
        match study.select_generated {
            0 => "off".to_owned(),
            n => format!("{n} samples per source"),
        }
    );
    if !r.seconds.is_empty() {
        let total = |prefix: &str| -> f64 {
            r.seconds
                .iter()
                .filter(|(job, _)| job.id().starts_with(prefix))
                .map(|(_, t)| t)
                .sum()
        };
        let _ = writeln!(
            s,
            "\nCompute (job time as the processes that ran them measured it): pretraining {:.1} \
             min, fine-tunes with their evaluation {:.1} min, selection scores {:.1} min, \
             probes and datasets {:.1} min; {:.1} min in all.",
            total("pretrain") / 60.0,
            total("finetune") / 60.0,
            total("select") / 60.0,
            (total("probe") + total("dataset")) / 60.0,
            r.seconds.iter().map(|(_, t)| t).sum::<f64>() / 60.0
        );
    }
    s.push('\n');
    s
}

fn readme(r: &Results, conv: &[ConvergenceRow], sel: &[SelectionRow]) -> String {
    let mut s = String::from("# Image-scale study: results\n\nWritten by `whichgan study report` from the study's folder; every number below is in the CSV files beside this one.\n\n");
    s.push_str(&setup(r));
    let sources: Vec<&str> = r.study.sources.iter().map(|s| s.name.as_str()).collect();
    let conv_of =
        |start: &str, target: &str| conv.iter().find(|c| c.start == start && c.target == target);
    // Claim 1 and 2: pretrained starts against scratch.
    if r.study.scratch {
        let mut beats = true;
        let mut faster = true;
        let mut table = String::from("| target | start | final FID | kimg to within 10 % | excess area |\n|---|---|---|---|---|\n");
        for t in &r.study.targets {
            let scratch = conv_of(SCRATCH, &t.name);
            for start in r.study.starts() {
                if let Some(c) = conv_of(start, &t.name) {
                    let _ = writeln!(
                        table,
                        "| {} | {start} | {:.3} | {} | {:.3} |",
                        t.name, c.final_fid, c.kimg_to_within, c.excess_area
                    );
                    if let (Some(sc), true) = (scratch, start != SCRATCH) {
                        beats &= c.final_fid < sc.final_fid;
                        faster &= c.excess_area < sc.excess_area;
                    }
                }
            }
        }
        let _ = write!(
            s,
            "## 1. Every pretrained start beats scratch on FID: {}\n\n## 2. Pretraining speeds up convergence (smaller excess area over the plateau than scratch): {}\n\n{table}\n",
            yes_no(beats),
            yes_no(faster)
        );
    }
    // Claim 3: recall moves more than precision with the source.
    let mut table = String::from(
        "| target | range of final recall | range of final precision |\n|---|---|---|\n",
    );
    let mut holds = true;
    for t in &r.study.targets {
        let spread = |f: &dyn Fn(&EvaluationRow) -> Option<f64>| {
            let v: Vec<f64> = sources
                .iter()
                .filter_map(|s| last(r, s, &t.name).and_then(f))
                .collect();
            let (lo, hi) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                    (lo.min(x), hi.max(x))
                });
            (hi - lo).max(0.0)
        };
        let (rec, prec) = (spread(&|row| row.recall), spread(&|row| row.precision));
        holds &= rec > prec;
        let _ = writeln!(table, "| {} | {rec:.3} | {prec:.3} |", t.name);
    }
    let _ = write!(
        s,
        "## 3. The choice of source moves recall more than precision: {}\n\n{table}\n",
        yes_no(holds)
    );
    // Claim 4: the broad source covers the most classes.
    let labelled: Vec<_> = r.study.targets.iter().filter(|t| t.classes).collect();
    if !labelled.is_empty() {
        let mut table =
            String::from("| target | start | classes covered (final) |\n|---|---|---|\n");
        let mut holds = r.study.broad_source.is_some();
        for t in &labelled {
            let covered = |s: &str| last(r, s, &t.name).and_then(|row| row.classes_covered);
            let most = r.study.starts().iter().filter_map(|s| covered(s)).max();
            if let Some(broad) = &r.study.broad_source {
                holds &= covered(broad).is_some() && covered(broad) == most;
            }
            for start in r.study.starts() {
                let _ = writeln!(
                    table,
                    "| {} | {start} | {} |",
                    t.name,
                    covered(start).map(|c| c.to_string()).unwrap_or_default()
                );
            }
        }
        let who = r
            .study
            .broad_source
            .as_deref()
            .unwrap_or("(no `report.broad_source` given)");
        let _ = write!(
            s,
            "## 4. The broadest source ({who}) covers the most target classes: {}\n\n{table}\n",
            yes_no(holds)
        );
    }
    // Claim 5: recall picks the best source most often.
    let fails = failures(sel);
    let mut table = String::from("| setting | metric | targets | failures |\n|---|---|---|---|\n");
    for (setting, metric, n, f) in &fails {
        let _ = writeln!(table, "| {setting} | {} | {n} | {f} |", metric.name());
    }
    let recall_least = SETTINGS.iter().all(|setting| {
        let of: Vec<_> = fails.iter().filter(|f| f.0 == *setting).collect();
        let recall = of.iter().find(|f| f.1 == Metric::Recall).map(|f| f.3);
        recall.is_none_or(|rf| of.iter().all(|f| rf <= f.3))
    });
    let _ = write!(
        s,
        "## 5. Ranking sources by recall fails least often to pick the best one: {}\n\n{table}\nThe best source of a target is the one whose fine-tune ends with the lowest FID; `selection.csv` has each ranking.\n\n",
        yes_no(recall_least)
    );
    let _ = write!(s, "## Selection scores\n\n| target | source | setting | FID | KID | precision | recall |\n|---|---|---|---|---|---|---|\n");
    for sel in &r.selections {
        for setting in SETTINGS {
            if let Some(sc) = setting_scores(sel, setting) {
                let _ = writeln!(
                    s,
                    "| {} | {} | {setting} | {} | {} | {} | {} |",
                    sel.target,
                    sel.source,
                    fmt(sc.fid),
                    fmt(sc.kid),
                    fmt(sc.precision),
                    fmt(sc.recall)
                );
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
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
}
