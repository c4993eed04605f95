//! The report's figures: curves against kimg per target, final precision against recall, and
//! the selection failures as a shaded table.

use super::*;
use crate::plot::{line_grid, Curve as PlotCurve, LineChart, PALETTE};

/// The failures table as a figure: a row per metric, a column per setting, darker for more
/// failures.
pub(super) fn failures_figure(rows: &[SelectionRow], stem: &Path) -> Result<()> {
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

/// A named curve: (start, its (x, y) points).
type Series = (String, Vec<(f64, f64)>);

/// The figures; returns their file names.
pub(super) fn figures(r: &Results, out: &Path) -> Result<Vec<String>> {
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
