//! Line charts of named curves (optionally log-y), alone or in a grid: their inputs
//! ([`Curve`], [`LineChart`]), checks, and drawing.

use std::path::Path;

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axes::{
    extent, padded, padded_log, tick_labels, Axis, Frame, LegendBox, Log10Coord, TextSizes,
};
use super::draw::{build_chart, draw_legend, draw_mesh, rgb, titled, Chart};
use super::error::check_finite;
use super::output::{register_embedded_font, write_figure, Figure};
use super::{PlotError, Rgb};

/// Labelled ticks per axis in the line chart.
const LINE_TICKS: usize = 10;
/// Canvas of the line chart.
const LINE_CHART_PX: (u32, u32) = (960, 600);
/// At most this many markers per curve, so long training curves stay readable.
const MAX_MARKERS: usize = 40;

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
/// Writes `<stem>.png` and `<stem>.svg` atomically, as [`panels`](fn@super::panels) does. Errors on
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

/// A line chart of named curves with markers.
pub struct LineChart<'a> {
    /// Text above the chart.
    pub title: &'a str,
    /// Text under the x axis.
    pub x_label: &'a str,
    /// Text beside the y axis.
    pub y_label: &'a str,
    pub curves: &'a [Curve<'a>],
    /// Logarithmic y axis (every y must be positive).
    pub log_y: bool,
}

/// Line charts side by side, `columns` per row, each on a canvas of the single chart's size.
struct LineGrid<'a> {
    pub charts: &'a [LineChart<'a>],
    pub columns: usize,
}

impl Figure for LineGrid<'_> {
    fn size(&self) -> (u32, u32) {
        let rows = self.charts.len().div_ceil(self.columns);
        (
            self.columns as u32 * LINE_CHART_PX.0,
            rows as u32 * LINE_CHART_PX.1,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let rows = self.charts.len().div_ceil(self.columns);
        for (area, chart) in root
            .split_evenly((rows, self.columns))
            .iter()
            .zip(self.charts)
        {
            chart.draw(area)?;
        }
        Ok(())
    }
}

impl Figure for LineChart<'_> {
    fn size(&self) -> (u32, u32) {
        LINE_CHART_PX
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let sizes = TextSizes::for_side(LINE_CHART_PX.1 * 4 / 5);
        let area = titled(root, self.title, sizes.title)?;
        let all_points = || self.curves.iter().flat_map(|c| c.points.iter().copied());
        let x_range = padded(extent(all_points().map(|p| p.0)));
        let y_extent = extent(all_points().map(|p| p.1));
        let x_axis = Axis::linear(x_range, LINE_TICKS);
        let y_axis = if self.log_y {
            Axis::log(padded_log(y_extent), LINE_TICKS)
        } else {
            Axis::linear(padded(y_extent), LINE_TICKS)
        };
        let frame = Frame::new(
            &sizes,
            &tick_labels(&y_axis),
            !self.x_label.is_empty(),
            !self.y_label.is_empty(),
        )?;
        let [y_lo, y_hi] = y_axis.range;
        let x_spec = x_range[0]..x_range[1];
        if self.log_y {
            let chart = build_chart(&area, &frame, x_spec, Log10Coord::new(y_lo, y_hi))?;
            self.draw_curves(chart, &sizes, &x_axis, &y_axis)
        } else {
            let chart = build_chart(&area, &frame, x_spec, y_lo..y_hi)?;
            self.draw_curves(chart, &sizes, &x_axis, &y_axis)
        }
    }
}

impl LineChart<'_> {
    fn draw_curves<'a, DB, Y>(
        &self,
        mut chart: Chart<'a, DB, RangedCoordf64, Y>,
        sizes: &TextSizes,
        x_axis: &Axis,
        y_axis: &Axis,
    ) -> Result<(), PlotError>
    where
        DB: DrawingBackend + 'a,
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        draw_mesh(
            &mut chart,
            sizes,
            (x_axis, y_axis),
            (self.x_label, self.y_label),
        )?;
        let labels: Vec<&str> = self
            .curves
            .iter()
            .map(|c| c.label)
            .filter(|l| !l.is_empty())
            .collect();
        let legend = LegendBox::new(&labels, sizes.tick)?;
        let mark = legend.mark;
        let marker = (sizes.tick / 5.0).max(2.0) as u32;

        for curve in self.curves {
            let color = rgb(curve.color);
            let line = color.stroke_width(2);
            let series = chart.draw_series(LineSeries::new(curve.points.iter().copied(), line))?;
            if !curve.label.is_empty() {
                series.label(curve.label).legend(move |(x, y)| {
                    EmptyElement::at((0, 0))
                        + PathElement::new(vec![(x, y), (x + mark, y)], line)
                        + Circle::new((x + mark / 2, y), marker, color.filled())
                });
            }
            let stride = curve.points.len().div_ceil(MAX_MARKERS).max(1);
            let last = curve.points.len().saturating_sub(1);
            let markers = curve
                .points
                .iter()
                .enumerate()
                .filter(|&(i, _)| i % stride == 0 || i == last)
                .map(|(_, &p)| Circle::new(p, marker, color.filled()));
            chart.draw_series(markers)?;
        }

        // The legend should avoid the lines too, not only the vertices, so sample along
        // each segment.
        let samples = self.curves.iter().flat_map(|c| {
            c.points.windows(2).flat_map(|w| {
                let ((x0, y0), (x1, y1)) = (w[0], w[1]);
                (0..8).map(move |k| {
                    let t = f64::from(k) / 8.0;
                    // Log axes interpolate geometrically, like the drawn straight segment.
                    let y = if y_axis.log {
                        y0 * (y1 / y0).powf(t)
                    } else {
                        y0 + (y1 - y0) * t
                    };
                    (x0 + (x1 - x0) * t, y)
                })
            })
        });
        // Segment samples stop short of each end point; add the last vertices (this
        // also covers one-point curves).
        let ends = self.curves.iter().filter_map(|c| c.points.last().copied());
        draw_legend(&mut chart, &legend, samples.chain(ends))
    }
}
