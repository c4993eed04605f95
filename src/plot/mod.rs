//! Figures for the GAN research toolkit: grids of scatter/gradient-field panels, line
//! charts and value-coloured scatter panels with a colour bar.
//!
//! Every figure is written as both `<stem>.png` and `<stem>.svg`, atomically (see
//! [`panels`]). Text uses DejaVu Sans embedded in the binary, so rendering needs no
//! system fonts. The only dependency is `plotters`, built without its system-font
//! features:
//!
//! ```toml
//! plotters = { version = "0.3.7", default-features = false, features = ["bitmap_backend", "bitmap_encoder", "svg_backend", "ab_glyph", "line_series", "colormaps", "full_palette"] }
//! ```

mod axes;
mod draw;
mod output;

use std::fmt;
use std::path::Path;

pub use draw::LineChart;
use draw::{ColoredGrid, LineGrid, PanelGrid};
pub use output::figure_files;
use output::{register_embedded_font, write_figure};

/// An RGB colour.
pub type Rgb = (u8, u8, u8);

/// A palette of distinct colours for series (matplotlib's "tab10" minus grey and olive,
/// which read poorly on white).
pub const PALETTE: [Rgb; 8] = [
    (31, 119, 180),  // blue
    (255, 127, 14),  // orange
    (44, 160, 44),   // green
    (214, 39, 40),   // red
    (148, 103, 189), // purple
    (140, 86, 75),   // brown
    (227, 119, 194), // pink
    (23, 190, 207),  // cyan
];

/// Why a figure could not be drawn or written. When a function returns it, no
/// half-written or temporary file is left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotError(pub String);

impl fmt::Display for PlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlotError {}

impl PlotError {
    /// The failure as the project's error, naming the figure.
    pub fn in_file(self, stem: &Path) -> crate::Error {
        crate::Error::in_file(stem, self.0)
    }
}

impl<E: std::error::Error + Send + Sync> From<plotters::drawing::DrawingAreaErrorKind<E>>
    for PlotError
{
    fn from(err: plotters::drawing::DrawingAreaErrorKind<E>) -> Self {
        PlotError(format!("drawing failed: {err}"))
    }
}

/// A named set of 2-D points drawn as small dots.
pub struct Scatter<'a> {
    /// Legend text; an empty label leaves the series out of the legend.
    pub label: &'a str,
    /// The points, `[x, y]` in data units.
    pub points: &'a [[f64; 2]],
    /// Dot colour.
    pub color: Rgb,
    /// Dot opacity, 0 (invisible) to 1 (opaque); lower values show density.
    pub alpha: f64,
    /// Dot radius in pixels.
    pub size: u32,
}

/// One panel: title, axis limits (None = fit all data with a 5 % margin, equal aspect by default), series.
pub struct Panel<'a> {
    /// Text above the panel.
    pub title: String,
    /// Point clouds, drawn in order (later ones on top).
    pub scatters: Vec<Scatter<'a>>,
    /// Vector fields, drawn over the point clouds.
    pub arrows: Vec<Arrows<'a>>,
    /// `([x_min, x_max], [y_min, y_max])`; anything outside is not drawn. `None` fits
    /// the axes to every point and arrow tip with a 5 % margin and equal aspect
    /// (one unit is as long on both axes, so gradient directions are true).
    pub limits: Option<([f64; 2], [f64; 2])>,
    /// Text under the x axis.
    pub x_label: Option<&'a str>,
    /// Text beside the y axis.
    pub y_label: Option<&'a str>,
}

/// Arrows from points along vectors (a gradient field); vectors are drawn scaled by `scale` (in data units per unit vector length); legend text `label`.
pub struct Arrows<'a> {
    /// Legend text; an empty label leaves the field out of the legend.
    pub label: &'a str,
    /// Arrow tails, `[x, y]` in data units.
    pub origins: &'a [[f64; 2]],
    /// One vector per origin; the arrow ends at `origin + scale * vector`.
    pub vectors: &'a [[f64; 2]],
    /// Arrow colour.
    pub color: Rgb,
    /// Data units per unit of vector length.
    pub scale: f64,
}

/// Draws panels in a grid of `columns` columns (each panel square, `panel_px` pixels), with a legend per panel listing the series labels, and an optional figure title.
///
/// Writes `<stem>.png` and `<stem>.svg` (the extension is appended, so dots in the
/// stem are kept). Each file is rendered to a hidden temporary file in the same folder
/// and renamed into place only when both renders succeeded, so a failure leaves no
/// partial output. Each panel's legend goes in the corner that hides the fewest points.
///
/// Errors on non-finite data (naming the series), mismatched arrow slices, invalid
/// limits, no panels, `columns == 0`, `panel_px < 120`, or an unwritable folder.
pub fn panels(
    stem: &Path,
    title: Option<&str>,
    panels: &[Panel],
    columns: usize,
    panel_px: u32,
) -> Result<(), PlotError> {
    check_grid(panels.len(), panel_px)?;
    if columns == 0 {
        return Err(PlotError("columns must be at least 1".into()));
    }
    for panel in panels {
        check_panel(panel)?;
    }
    register_embedded_font()?;
    write_figure(stem, &PanelGrid::new(title, panels, columns, panel_px))
}

/// A line chart: several named curves (x, y) with markers, axis labels, legend, optional log-y.
pub struct Curve<'a> {
    /// Legend text; an empty label leaves the curve out of the legend.
    pub label: &'a str,
    /// `(x, y)` vertices, joined in the given order.
    pub points: &'a [(f64, f64)],
    /// Line and marker colour.
    pub color: Rgb,
}

/// Draws `curves` on shared axes (960 × 600 px) with a title, axis labels and a legend
/// placed where it hides the least of the curves. Curves with more than 40 points get
/// markers on an evenly spaced subset so the line stays visible. With `log_y` the y
/// axis is logarithmic and every y must be positive.
///
/// Writes `<stem>.png` and `<stem>.svg` atomically, as [`panels`] does. Errors on
/// non-finite values (or non-positive y with `log_y`), naming the curve.
pub fn lines(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    curves: &[Curve],
    log_y: bool,
) -> Result<(), PlotError> {
    let chart = LineChart {
        title,
        x_label,
        y_label,
        curves,
        log_y,
    };
    line_grid(stem, &[chart], 1)
}

/// Several line charts (as [`lines`] draws them) in a grid of `columns` columns, written as
/// `<stem>.png` and `<stem>.svg` atomically. Errors as [`lines`] does, and on no charts or
/// `columns == 0`.
pub fn line_grid(stem: &Path, charts: &[LineChart], columns: usize) -> Result<(), PlotError> {
    if charts.is_empty() || columns == 0 {
        return Err(PlotError(
            "a line grid needs at least one chart and one column".into(),
        ));
    }
    for chart in charts {
        for curve in chart.curves {
            let what = || format!("curve \"{}\"", curve.label);
            check_finite(curve.points.iter().map(|&(x, y)| [x, y]), "point", what)?;
            if chart.log_y && curve.points.iter().any(|&(_, y)| y <= 0.0) {
                return Err(PlotError(format!(
                    "{} has y <= 0, which a log axis cannot show",
                    what()
                )));
            }
        }
    }
    register_embedded_font()?;
    write_figure(
        stem,
        &LineGrid {
            charts,
            columns: columns.min(charts.len()),
        },
    )
}

/// Scatter panels coloured by a value with a shared colour bar (for correlation figures): each panel has its own x/y data and labels; colour = `values` through the viridis colour map between min and max, with a vertical colour bar on the right labelled `value_label`.
pub struct ColoredPanel<'a> {
    /// Text above the panel.
    pub title: String,
    /// Text under the x axis.
    pub x_label: &'a str,
    /// Text beside the y axis.
    pub y_label: &'a str,
    /// One x per sample; the same length as `y` and the shared `values`.
    pub x: &'a [f64],
    /// One y per sample.
    pub y: &'a [f64],
}

/// Draws `panels` side by side (each `panel_px` square, axes fitted to its data with a
/// 5 % margin) and the shared colour bar to their right; point `i` of every panel is
/// coloured by `values[i]`.
///
/// Writes `<stem>.png` and `<stem>.svg` atomically, as [`panels`] does. Errors on
/// non-finite data (naming the panel), slices whose lengths differ from `values`, no
/// panels, or `panel_px < 120`.
pub fn colored_scatter(
    stem: &Path,
    panels: &[ColoredPanel],
    values: &[f64],
    value_label: &str,
    panel_px: u32,
) -> Result<(), PlotError> {
    check_grid(panels.len(), panel_px)?;
    check_finite(values.iter().map(|&v| [v]), "value", || {
        format!("values \"{value_label}\"")
    })?;
    for panel in panels {
        let what = || format!("panel \"{}\"", panel.title);
        if panel.x.len() != values.len() || panel.y.len() != values.len() {
            return Err(PlotError(format!(
                "{} has {} x and {} y for {} values",
                what(),
                panel.x.len(),
                panel.y.len(),
                values.len()
            )));
        }
        check_finite(panel.x.iter().map(|&x| [x]), "x", what)?;
        check_finite(panel.y.iter().map(|&y| [y]), "y", what)?;
    }
    register_embedded_font()?;
    write_figure(
        stem,
        &ColoredGrid::new(panels, values, value_label, panel_px)?,
    )
}

/// Below this, titles, tick labels and legends no longer fit a panel.
const MIN_PANEL_PX: u32 = 120;

fn check_grid(count: usize, panel_px: u32) -> Result<(), PlotError> {
    if count == 0 {
        return Err(PlotError("no panels to draw".into()));
    }
    if panel_px < MIN_PANEL_PX {
        return Err(PlotError(format!(
            "panel_px {panel_px} is below the minimum of {MIN_PANEL_PX}"
        )));
    }
    Ok(())
}

fn check_panel(panel: &Panel) -> Result<(), PlotError> {
    let in_panel = |what: String| format!("{what} in panel \"{}\"", panel.title);
    for scatter in &panel.scatters {
        let what = || in_panel(format!("scatter \"{}\"", scatter.label));
        check_finite(scatter.points.iter().copied(), "point", what)?;
        check_finite([[scatter.alpha]], "alpha", what)?;
    }
    for arrows in &panel.arrows {
        let what = || in_panel(format!("arrows \"{}\"", arrows.label));
        if arrows.origins.len() != arrows.vectors.len() {
            return Err(PlotError(format!(
                "{} has {} origins but {} vectors",
                what(),
                arrows.origins.len(),
                arrows.vectors.len()
            )));
        }
        check_finite(arrows.origins.iter().copied(), "origin", what)?;
        check_finite(arrows.vectors.iter().copied(), "vector", what)?;
        check_finite([[arrows.scale]], "scale", what)?;
    }
    if let Some((x, y)) = panel.limits {
        let valid = |[lo, hi]: [f64; 2]| lo.is_finite() && hi.is_finite() && lo < hi;
        if !valid(x) || !valid(y) {
            return Err(PlotError(in_panel(format!(
                "limits {x:?}, {y:?} (each must be finite with min < max)"
            ))));
        }
    }
    Ok(())
}

/// Errors naming `what` and the offending item if any coordinate is NaN or infinite
/// (either would poison the axis ranges).
fn check_finite<const N: usize>(
    items: impl IntoIterator<Item = [f64; N]>,
    noun: &str,
    what: impl Fn() -> String,
) -> Result<(), PlotError> {
    match items
        .into_iter()
        .position(|item| item.iter().any(|v| !v.is_finite()))
    {
        None => Ok(()),
        Some(index) => Err(PlotError(format!(
            "{} has a non-finite {noun} (NaN or infinity) at index {index}",
            what()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use plotters::coord::Shift;
    use plotters::prelude::*;

    use super::axes::{tick_labels, Axis};
    use super::output::Figure;
    use super::*;

    /// A fresh folder under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let path = std::env::temp_dir()
                .join(format!("plot-test-{name}-{}-{nanos}", std::process::id()));
            fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn stem(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        /// Every file name in the folder, hidden temp files included, sorted.
        fn files(&self) -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        }

        /// Checks that exactly `<stem>.png` and `<stem>.svg` exist (so no temp files
        /// are left), that both are non-empty, the PNG is a PNG and the SVG has `title`.
        fn assert_only_figure(&self, stem: &str, title: &str) {
            assert_eq!(self.files(), [format!("{stem}.png"), format!("{stem}.svg")]);
            let png = fs::read(self.0.join(format!("{stem}.png"))).unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
            assert!(png.len() > 1000, "PNG suspiciously small");
            let svg = fs::read_to_string(self.0.join(format!("{stem}.svg"))).unwrap();
            assert!(svg.starts_with("<svg"), "not an SVG");
            assert!(svg.contains(title), "SVG lacks the title {title:?}");
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A deterministic, irregular point cloud.
    fn cloud(n: usize, shift: f64) -> Vec<[f64; 2]> {
        (0..n)
            .map(|i| {
                let t = i as f64;
                [
                    shift + (t * 0.37).sin() * (t * 0.011).cos(),
                    (t * 0.73).cos() * 0.5,
                ]
            })
            .collect()
    }

    fn scatter<'a>(label: &'a str, points: &'a [[f64; 2]], color: Rgb) -> Scatter<'a> {
        Scatter {
            label,
            points,
            color,
            alpha: 0.5,
            size: 2,
        }
    }

    fn panel<'a>(title: &str, scatters: Vec<Scatter<'a>>, arrows: Vec<Arrows<'a>>) -> Panel<'a> {
        Panel {
            title: title.to_string(),
            scatters,
            arrows,
            limits: None,
            x_label: Some("x"),
            y_label: Some("y"),
        }
    }

    #[test]
    fn panels_write_png_and_svg() {
        let dir = TempDir::new("panels");
        let (real, fake) = (cloud(500, 0.0), cloud(500, 1.0));
        let origins = cloud(30, 0.5);
        let vectors: Vec<[f64; 2]> = origins.iter().map(|&[x, y]| [-y, x]).collect();
        let field = Arrows {
            label: "grad D",
            origins: &origins,
            vectors: &vectors,
            color: PALETTE[3],
            scale: 0.3,
        };
        let mut zoomed = panel("zoomed", vec![scatter("real", &real, PALETTE[0])], vec![]);
        zoomed.limits = Some(([-0.5, 0.5], [-0.25, 0.25]));
        let grid = [
            panel(
                "step 0",
                vec![
                    scatter("real", &real, PALETTE[0]),
                    scatter("fake", &fake, PALETTE[1]),
                ],
                vec![field],
            ),
            zoomed,
            panel("step 2", vec![scatter("fake", &fake, PALETTE[1])], vec![]),
        ];
        panels(&dir.stem("grid"), Some("Training grid"), &grid, 2, 300).unwrap();
        dir.assert_only_figure("grid", "Training grid");
        let svg = fs::read_to_string(dir.0.join("grid.svg")).unwrap();
        assert!(svg.contains("step 0") && svg.contains("grad D"));
    }

    #[test]
    fn panels_survive_degenerate_input() {
        let dir = TempDir::new("degenerate");
        let same = [[3.0, 3.0]; 10];
        let origin = [[0.0, 0.0]];
        let zero = [[0.0, 0.0]];
        let still = Arrows {
            label: "zero field",
            origins: &origin,
            vectors: &zero,
            color: PALETTE[2],
            scale: 1.0,
        };
        let grid = [
            panel("empty", vec![scatter("nothing", &[], PALETTE[0])], vec![]),
            panel(
                "identical",
                vec![scatter("same", &same, PALETTE[1])],
                vec![],
            ),
            panel("still", vec![], vec![still]),
            panel("bare", vec![], vec![]),
        ];
        // More columns than panels, no figure title, a dotted stem.
        panels(&dir.stem("edge.v2"), None, &grid, 9, 200).unwrap();
        dir.assert_only_figure("edge.v2", "identical");
    }

    #[test]
    fn lines_write_linear_and_log() {
        let dir = TempDir::new("lines");
        let d: Vec<(f64, f64)> = (0..300)
            .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
            .collect();
        let g: Vec<(f64, f64)> = (0..300)
            .map(|i| (i as f64, 2.0 - i as f64 / 200.0))
            .collect();
        let single = [(150.0, 0.5)];
        let curves = [
            Curve {
                label: "D loss",
                points: &d,
                color: PALETTE[0],
            },
            Curve {
                label: "G loss",
                points: &g,
                color: PALETTE[1],
            },
            Curve {
                label: "checkpoint",
                points: &single,
                color: PALETTE[2],
            },
        ];
        lines(
            &dir.stem("linear"),
            "Losses",
            "epoch",
            "loss",
            &curves,
            false,
        )
        .unwrap();
        lines(
            &dir.stem("log"),
            "Log losses",
            "epoch",
            "loss",
            &curves,
            true,
        )
        .unwrap();
        let names = dir.files();
        assert_eq!(names, ["linear.png", "linear.svg", "log.png", "log.svg"]);
        for stem in ["linear", "log"] {
            let png = fs::read(dir.0.join(format!("{stem}.png"))).unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        }
        assert!(fs::read_to_string(dir.0.join("log.svg"))
            .unwrap()
            .contains("Log losses"));
        assert!(fs::read_to_string(dir.0.join("linear.svg"))
            .unwrap()
            .contains("Losses"));

        let empty = TempDir::new("lines-empty");
        lines(&empty.stem("none"), "No curves", "", "", &[], true).unwrap();
        empty.assert_only_figure("none", "No curves");
    }

    #[test]
    fn colored_scatter_writes_with_color_bar() {
        let dir = TempDir::new("colored");
        let n = 400;
        let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.1).sin()).collect();
        let y: Vec<f64> = (0..n).map(|i| (i as f64 * 0.07).cos()).collect();
        let values: Vec<f64> = (0..n).map(|i| i as f64 / n as f64).collect();
        let colored = [
            ColoredPanel {
                title: "FID vs x".into(),
                x_label: "x",
                y_label: "FID",
                x: &x,
                y: &y,
            },
            ColoredPanel {
                title: "FID vs y".into(),
                x_label: "y",
                y_label: "FID",
                x: &y,
                y: &x,
            },
        ];
        colored_scatter(&dir.stem("corr"), &colored, &values, "epoch fraction", 250).unwrap();
        dir.assert_only_figure("corr", "FID vs x");
        let svg = fs::read_to_string(dir.0.join("corr.svg")).unwrap();
        assert!(svg.contains("epoch fraction"));

        // Constant values still need a colour bar with a non-zero range.
        let flat = vec![2.0; n];
        colored_scatter(&dir.stem("flat"), &colored[..1], &flat, "constant", 250).unwrap();
    }

    #[test]
    fn non_finite_input_is_rejected_and_writes_nothing() {
        let dir = TempDir::new("nan");
        let good = cloud(20, 0.0);
        let mut bad = cloud(20, 0.0);
        bad[7][1] = f64::NAN;
        let grid = [panel(
            "step 9",
            vec![
                scatter("real", &good, PALETTE[0]),
                scatter("fake", &bad, PALETTE[1]),
            ],
            vec![],
        )];
        let err = panels(&dir.stem("grid"), None, &grid, 1, 200).unwrap_err();
        assert!(err.to_string().contains("scatter \"fake\""), "{err}");
        assert!(
            err.to_string().contains("\"step 9\"") && err.0.contains("index 7"),
            "{err}"
        );

        let curve = [(0.0, 1.0), (1.0, f64::INFINITY)];
        let curves = [Curve {
            label: "G loss",
            points: &curve,
            color: PALETTE[0],
        }];
        let err = lines(&dir.stem("lines"), "t", "x", "y", &curves, false).unwrap_err();
        assert!(err.0.contains("curve \"G loss\""), "{err}");

        let xs = [0.0, 1.0, 2.0];
        let values = [0.0, f64::NAN, 1.0];
        let colored = [ColoredPanel {
            title: "p".into(),
            x_label: "",
            y_label: "",
            x: &xs,
            y: &xs,
        }];
        let err = colored_scatter(&dir.stem("c"), &colored, &values, "FID", 200).unwrap_err();
        assert!(err.0.contains("values \"FID\""), "{err}");
        let bad_x = [0.0, f64::NAN, 1.0];
        let colored = [ColoredPanel {
            title: "p2".into(),
            x_label: "",
            y_label: "",
            x: &bad_x,
            y: &xs,
        }];
        let err = colored_scatter(&dir.stem("c"), &colored, &xs, "FID", 200).unwrap_err();
        assert!(err.0.contains("panel \"p2\""), "{err}");

        assert!(dir.files().is_empty(), "wrote {:?}", dir.files());
    }

    #[test]
    fn malformed_input_is_rejected() {
        let dir = TempDir::new("malformed");
        let origins = cloud(3, 0.0);
        let vectors = cloud(2, 0.0);
        let field = Arrows {
            label: "g",
            origins: &origins,
            vectors: &vectors,
            color: PALETTE[0],
            scale: 1.0,
        };
        let grid = [panel("p", vec![], vec![field])];
        assert!(panels(&dir.stem("a"), None, &grid, 1, 200)
            .unwrap_err()
            .0
            .contains("3 origins but 2 vectors"));

        let mut limited = panel("p", vec![], vec![]);
        limited.limits = Some(([1.0, 1.0], [0.0, 1.0]));
        assert!(panels(&dir.stem("a"), None, &[limited], 1, 200).is_err());
        assert!(panels(&dir.stem("a"), None, &[], 1, 200).is_err());
        assert!(panels(&dir.stem("a"), None, &[panel("p", vec![], vec![])], 0, 200).is_err());
        assert!(panels(&dir.stem("a"), None, &[panel("p", vec![], vec![])], 1, 50).is_err());

        let zero = [(0.0, 0.0), (1.0, 1.0)];
        let curves = [Curve {
            label: "acc",
            points: &zero,
            color: PALETTE[0],
        }];
        let err = lines(&dir.stem("l"), "t", "x", "y", &curves, true).unwrap_err();
        assert!(
            err.0.contains("curve \"acc\"") && err.0.contains("log"),
            "{err}"
        );

        let xs = [0.0, 1.0];
        let colored = [ColoredPanel {
            title: "p".into(),
            x_label: "",
            y_label: "",
            x: &xs,
            y: &xs,
        }];
        assert!(colored_scatter(&dir.stem("c"), &colored, &[1.0], "v", 200).is_err());
        assert!(colored_scatter(&dir.stem("c"), &[], &[], "v", 200).is_err());

        // A folder that does not exist: an error, and nothing created.
        let missing = dir.0.join("missing").join("fig");
        let err = lines(&missing, "t", "x", "y", &curves, false).unwrap_err();
        assert!(err.0.contains("does not exist"), "{err}");
        assert!(dir.files().is_empty(), "wrote {:?}", dir.files());
    }

    /// Draws a frame, then fails, like a backend error halfway through a figure.
    struct FailsMidway;

    impl Figure for FailsMidway {
        fn size(&self) -> (u32, u32) {
            (64, 64)
        }

        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
            root.draw(&Rectangle::new([(4, 4), (60, 60)], BLACK))?;
            Err(PlotError("simulated failure".into()))
        }
    }

    #[test]
    fn failed_render_keeps_previous_output_and_leaves_no_temp_files() {
        let dir = TempDir::new("atomic");
        let stem = dir.stem("fig");
        lines(&stem, "Old figure", "x", "y", &[], false).unwrap();
        let before = (
            fs::read(dir.0.join("fig.png")).unwrap(),
            fs::read(dir.0.join("fig.svg")).unwrap(),
        );

        let err = output::write_figure(&stem, &FailsMidway).unwrap_err();
        assert_eq!(err.0, "simulated failure");
        dir.assert_only_figure("fig", "Old figure");
        let after = (
            fs::read(dir.0.join("fig.png")).unwrap(),
            fs::read(dir.0.join("fig.svg")).unwrap(),
        );
        assert!(
            before == after,
            "a failed render changed the existing figure"
        );
    }

    /// Renders `figure` into an RGB buffer instead of a file.
    fn rasterise(figure: &impl Figure) -> (Vec<u8>, u32) {
        register_embedded_font().unwrap();
        let (w, h) = figure.size();
        let mut pixels = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            root.fill(&WHITE).unwrap();
            figure.draw(&root).unwrap();
            root.present().unwrap();
        }
        (pixels, w)
    }

    #[test]
    fn embedded_font_rasterises_title_glyphs() {
        let chart = |title| draw::LineChart {
            title,
            x_label: "x",
            y_label: "y",
            curves: &[],
            log_y: false,
        };
        let (with_title, width) = rasterise(&chart("Glyph check"));
        let (without_title, _) = rasterise(&chart(""));
        // Dark pixels in the centred band where the title goes.
        let dark_in_title_band = |pixels: &[u8]| {
            let centre = width as usize / 2;
            (0..30)
                .flat_map(|row| {
                    (centre - 100..centre + 100).map(move |col| row * width as usize + col)
                })
                .filter(|&i| pixels[3 * i..3 * i + 3].iter().all(|&c| c < 100))
                .count()
        };
        assert!(dark_in_title_band(&with_title) > 50, "title glyphs missing");
        assert_eq!(dark_in_title_band(&without_title), 0);
        assert!(with_title != without_title);
    }

    #[test]
    fn tick_labels_are_clean() {
        // Shared decimals, no float noise, and a plain "0".
        assert_eq!(
            tick_labels(&Axis::linear([-0.04, 0.31], 7)),
            ["0", "0.05", "0.10", "0.15", "0.20", "0.25", "0.30"]
        );
        assert_eq!(
            tick_labels(&Axis::linear([0.0, 2e6], 3)),
            ["0", "1e6", "2e6"]
        );
        // plotters' own log axis would label nothing below 1 here.
        let log = tick_labels(&Axis::log([0.23, 3.3], 10));
        assert_eq!(log, ["0.3", "0.5", "1", "2", "3"]);
        let wide = tick_labels(&Axis::log([1e-7, 1e3], 10));
        assert!(
            wide.contains(&"1e-7".to_string()) && wide.contains(&"1000".to_string()),
            "{wide:?}"
        );
    }
}
