//! Tests of the figures: files written atomically, input checks, the embedded font and tick labels.

use std::fs;
use std::path::PathBuf;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axes::{tick_labels, Axis};
use super::output::{register_embedded_font, Figure};
use super::*;

/// A fresh folder under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("plot-test-{name}-{}-{nanos}", std::process::id()));
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
    let chart = |title| LineChart {
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
            .flat_map(|row| (centre - 100..centre + 100).map(move |col| row * width as usize + col))
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
