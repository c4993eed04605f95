//! The three figure kinds, each drawn generically over the plotters backend so the PNG
//! and the SVG come from the same code.

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axes::{
    equal_aspect, extent, padded, padded_log, text, text_size, tick_labels, Axis, Frame, LegendBox,
    Log10Coord, TextSizes, TICK_PX,
};
use super::output::Figure;
use super::{ColoredPanel, Curve, Panel, PlotError, Rgb};

/// Labelled ticks per axis in a grid panel; fewer than plotters' default because
/// panels are small.
const PANEL_TICKS: usize = 7;
/// Labelled ticks per axis in the line chart.
const LINE_TICKS: usize = 10;
/// Canvas of the line chart.
const LINE_CHART_PX: (u32, u32) = (960, 600);
/// At most this many markers per curve, so long training curves stay readable.
const MAX_MARKERS: usize = 40;

const GRID_MAJOR: RGBColor = RGBColor(215, 215, 215);
const LEGEND_BORDER: RGBColor = RGBColor(160, 160, 160);

/// A 2-D chart over the given x and y coordinate types.
type Chart<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

fn rgb((r, g, b): Rgb) -> RGBColor {
    RGBColor(r, g, b)
}

/// Builds a chart with the frame's margin and label areas around the plotting area.
fn build_chart<'a, DB: DrawingBackend, X: AsRangedCoord, Y: AsRangedCoord>(
    area: &'a DrawingArea<DB, Shift>,
    frame: &Frame,
    x: X,
    y: Y,
) -> Result<Chart<'a, DB, X::CoordDescType, Y::CoordDescType>, PlotError> {
    Ok(ChartBuilder::on(area)
        .margin(frame.margin)
        // The title above already has padding; only half a tick label overhangs.
        .margin_top(frame.margin / 2)
        .x_label_area_size(frame.x_label_area)
        .y_label_area_size(frame.y_label_area)
        .build_cartesian_2d(x, y)?)
}

/// Draws `title` centred at the top of `area` (a little below the edge) and returns
/// the area below it.
fn titled<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    size: f64,
) -> Result<DrawingArea<DB, Shift>, PlotError> {
    let top_pad = (size * 0.3) as i32;
    Ok(area.margin(top_pad, 0, 0, 0).titled(title, text(size))?)
}

/// Grid lines, axes, tick labels and axis descriptions in the shared style.
fn draw_mesh<'a, DB, X, Y>(
    chart: &mut Chart<'a, DB, X, Y>,
    sizes: &TextSizes,
    (x_axis, y_axis): (&Axis, &Axis),
    (x_desc, y_desc): (&str, &str),
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let (x_format, y_format) = (x_axis.formatter(), y_axis.formatter());
    let x_label = |v: &f64| x_format.format(*v);
    let y_label = |v: &f64| y_format.format(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(x_axis.ticks)
        .y_labels(y_axis.ticks)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(text(sizes.tick))
        .axis_desc_style(text(sizes.label))
        .bold_line_style(GRID_MAJOR)
        // No minor grid: at every tenth it makes small panels look like graph paper.
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK)
        .set_all_tick_mark_size(TICK_PX);
    if !x_desc.is_empty() {
        mesh.x_desc(x_desc);
    }
    if !y_desc.is_empty() {
        mesh.y_desc(y_desc);
    }
    mesh.draw()?;
    Ok(())
}

/// Draws the legend in the plotting-area corner that hides the fewest of `points`
/// (data coordinates); does nothing when no series has a label.
fn draw_legend<'a, DB, X, Y>(
    chart: &mut Chart<'a, DB, X, Y>,
    legend: &LegendBox,
    points: impl IntoIterator<Item = (f64, f64)>,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    if legend.entries == 0 {
        return Ok(());
    }
    let (base_x, base_y) = chart.plotting_area().get_base_pixel();
    let points_px = points.into_iter().map(|p| {
        let (x, y) = chart.backend_coord(&p);
        (x - base_x, y - base_y)
    });
    let corner = legend.least_covered_corner(points_px, chart.plotting_area().dim_in_pixel());
    chart
        .configure_series_labels()
        .position(corner)
        .label_font(text(legend.font))
        .legend_area_size(legend.swatch)
        .margin(legend.padding)
        .background_style(WHITE.mix(0.85))
        .border_style(LEGEND_BORDER)
        .draw()?;
    Ok(())
}

/// A grid of equal-aspect scatter/arrow panels under an optional figure title.
pub(super) struct PanelGrid<'a> {
    title: Option<&'a str>,
    panels: &'a [Panel<'a>],
    rows: usize,
    columns: usize,
    panel_px: u32,
    title_px: u32,
    sizes: TextSizes,
}

impl<'a> PanelGrid<'a> {
    pub fn new(
        title: Option<&'a str>,
        panels: &'a [Panel<'a>],
        columns: usize,
        panel_px: u32,
    ) -> Self {
        let columns = columns.min(panels.len());
        let sizes = TextSizes::for_side(panel_px);
        let title_px = title.map_or(0, |_| (sizes.figure_title * 1.8) as u32);
        PanelGrid {
            title,
            panels,
            rows: panels.len().div_ceil(columns),
            columns,
            panel_px,
            title_px,
            sizes,
        }
    }
}

impl Figure for PanelGrid<'_> {
    fn size(&self) -> (u32, u32) {
        (
            self.columns as u32 * self.panel_px,
            self.rows as u32 * self.panel_px + self.title_px,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let (title_area, grid) = root.split_vertically(self.title_px);
        if let Some(title) = self.title {
            let style = text(self.sizes.figure_title).pos(Pos::new(HPos::Center, VPos::Center));
            let (w, h) = title_area.dim_in_pixel();
            title_area.draw_text(title, &style, (w as i32 / 2, h as i32 / 2))?;
        }
        let stroke = (self.panel_px / 400).max(1);
        for (area, panel) in grid
            .split_evenly((self.rows, self.columns))
            .iter()
            .zip(self.panels)
        {
            draw_panel(area, panel, &self.sizes, stroke)?;
        }
        Ok(())
    }
}

/// End point of an arrow.
fn tip(origin: [f64; 2], vector: [f64; 2], scale: f64) -> [f64; 2] {
    [origin[0] + scale * vector[0], origin[1] + scale * vector[1]]
}

/// Every point a panel draws (scatter points, arrow origins and tips), for fitting
/// the axes and placing the legend.
fn panel_points<'p>(panel: &'p Panel) -> impl Iterator<Item = [f64; 2]> + 'p {
    let scatter = panel.scatters.iter().flat_map(|s| s.points.iter().copied());
    let arrows = panel.arrows.iter().flat_map(|a| {
        a.origins
            .iter()
            .zip(a.vectors)
            .flat_map(move |(&o, &v)| [o, tip(o, v, a.scale)])
    });
    scatter.chain(arrows)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    sizes: &TextSizes,
    stroke: u32,
) -> Result<(), PlotError> {
    let area = titled(area, &panel.title, sizes.title)?;
    let (x_desc, y_desc) = (panel.x_label.unwrap_or(""), panel.y_label.unwrap_or(""));
    let frame_for = |y: [f64; 2]| {
        let labels = tick_labels(&Axis::linear(y, PANEL_TICKS));
        Frame::new(sizes, &labels, !x_desc.is_empty(), !y_desc.is_empty())
    };
    let (x_range, y_range) = match panel.limits {
        Some(limits) => limits,
        None => {
            let fit_x = padded(extent(panel_points(panel).map(|p| p[0])));
            let fit_y = padded(extent(panel_points(panel).map(|p| p[1])));
            // The y tick labels set the plot width, which sets the equal-aspect ranges,
            // which set the labels; two rounds settle it.
            let mut ranges = (fit_x, fit_y);
            for _ in 0..2 {
                let plot_px = frame_for(ranges.1)?.plot_px(area.dim_in_pixel());
                ranges = equal_aspect(fit_x, fit_y, plot_px);
            }
            ranges
        }
    };
    let frame = frame_for(y_range)?;
    let (x_axis, y_axis) = (
        Axis::linear(x_range, PANEL_TICKS),
        Axis::linear(y_range, PANEL_TICKS),
    );
    let mut chart = build_chart(
        &area,
        &frame,
        x_range[0]..x_range[1],
        y_range[0]..y_range[1],
    )?;
    draw_mesh(&mut chart, sizes, (&x_axis, &y_axis), (x_desc, y_desc))?;

    // plotters does not clip to the plotting area, so explicit limits must filter.
    let inside = |p: [f64; 2]| {
        (x_range[0]..=x_range[1]).contains(&p[0]) && (y_range[0]..=y_range[1]).contains(&p[1])
    };
    let legend = LegendBox::new(&legend_labels(panel), sizes.tick)?;
    let mark = legend.mark;

    for scatter in &panel.scatters {
        let color = rgb(scatter.color);
        let style = color.mix(scatter.alpha.clamp(0.0, 1.0)).filled();
        let dots = scatter
            .points
            .iter()
            .filter(|&&p| inside(p))
            .map(|p| Circle::new((p[0], p[1]), scatter.size, style));
        let series = chart.draw_series(dots)?;
        if !scatter.label.is_empty() {
            let radius = (sizes.tick / 3.0) as u32;
            series
                .label(scatter.label)
                .legend(move |(x, y)| Circle::new((x + mark / 2, y), radius, color.filled()));
        }
    }

    let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
    let units_per_px = (
        (x_range[1] - x_range[0]) / f64::from(plot_w.max(1)),
        (y_range[1] - y_range[0]) / f64::from(plot_h.max(1)),
    );
    let head_px = sizes.tick * 0.55;
    for arrows in &panel.arrows {
        let style = rgb(arrows.color).stroke_width(stroke);
        let paths = arrows
            .origins
            .iter()
            .zip(arrows.vectors)
            .map(|(&o, &v)| (o, tip(o, v, arrows.scale)))
            .filter(|&(o, t)| inside(o) && inside(t))
            .filter_map(|(o, t)| arrow_paths(o, t, units_per_px, head_px))
            .flatten()
            .map(|path| PathElement::new(path, style));
        let series = chart.draw_series(paths)?;
        if !arrows.label.is_empty() {
            let head = (head_px * 0.8) as i32;
            series.label(arrows.label).legend(move |(x, y)| {
                let end = x + mark;
                let barbs = vec![
                    (end - head, y - head / 2),
                    (end, y),
                    (end - head, y + head / 2),
                ];
                EmptyElement::at((0, 0))
                    + PathElement::new(vec![(x, y), (end, y)], style)
                    + PathElement::new(barbs, style)
            });
        }
    }

    let points = panel_points(panel)
        .filter(|&p| inside(p))
        .map(|p| (p[0], p[1]));
    draw_legend(&mut chart, &legend, points)
}

fn legend_labels<'p>(panel: &Panel<'p>) -> Vec<&'p str> {
    let scatter = panel.scatters.iter().map(|s| s.label);
    let arrows = panel.arrows.iter().map(|a| a.label);
    scatter.chain(arrows).filter(|l| !l.is_empty()).collect()
}

/// The shaft and the two-stroke head of one arrow, in data coordinates. The head is
/// sized in pixels (via `units_per_px`) so it looks the same on any axis scale.
/// Arrows shorter than a pixel return `None`.
fn arrow_paths(
    origin: [f64; 2],
    tip: [f64; 2],
    units_per_px: (f64, f64),
    head_px: f64,
) -> Option<[Vec<(f64, f64)>; 2]> {
    let (ux, uy) = units_per_px;
    let (dx, dy) = ((tip[0] - origin[0]) / ux, (tip[1] - origin[1]) / uy);
    let length = dx.hypot(dy);
    if length < 1.0 {
        return None;
    }
    let head = head_px.min(length * 0.4);
    let (cos, sin) = (0.42f64.cos(), 0.42f64.sin()); // ~24 degree barbs
    let (bx, by) = (-dx / length * head, -dy / length * head);
    let barb = |s: f64| {
        (
            tip[0] + (bx * cos - s * by * sin) * ux,
            tip[1] + (s * bx * sin + by * cos) * uy,
        )
    };
    let tip = (tip[0], tip[1]);
    Some([
        vec![(origin[0], origin[1]), tip],
        vec![barb(1.0), tip, barb(-1.0)],
    ])
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
pub(super) struct LineGrid<'a> {
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

/// Scatter panels coloured by one value array, with a shared viridis colour bar.
pub(super) struct ColoredGrid<'a> {
    panels: &'a [ColoredPanel<'a>],
    values: &'a [f64],
    value_label: &'a str,
    value_axis: Axis,
    panel_px: u32,
    sizes: TextSizes,
    bar: ColorBarLayout,
}

/// Horizontal pixel layout of the colour bar strip.
struct ColorBarLayout {
    margin: u32,
    bar: u32,
    labels: u32,
}

impl ColorBarLayout {
    fn width(&self) -> u32 {
        2 * self.margin + self.bar + self.labels
    }
}

impl<'a> ColoredGrid<'a> {
    pub fn new(
        panels: &'a [ColoredPanel<'a>],
        values: &'a [f64],
        value_label: &'a str,
        panel_px: u32,
    ) -> Result<Self, PlotError> {
        let sizes = TextSizes::for_side(panel_px);
        // The bar spans exactly the data (no 5 % margin); constant values still need
        // a non-zero range.
        let range = match extent(values.iter().copied()) {
            Some([lo, hi]) if hi > lo => [lo, hi],
            other => padded(other),
        };
        let value_axis = Axis::linear(range, PANEL_TICKS + 1);
        let widest = tick_labels(&value_axis)
            .iter()
            .try_fold(0, |w, t| text_size(t, sizes.tick).map(|(tw, _)| w.max(tw)))?;
        let desc = if value_label.is_empty() {
            0
        } else {
            text_size(value_label, sizes.label)?.1 + 8
        };
        let bar = ColorBarLayout {
            margin: (sizes.tick * 0.8) as u32,
            bar: (sizes.tick * 1.4) as u32,
            labels: 2 * TICK_PX + 4 + widest + desc,
        };
        Ok(ColoredGrid {
            panels,
            values,
            value_label,
            value_axis,
            panel_px,
            sizes,
            bar,
        })
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &ColoredPanel,
    ) -> Result<Range<i32>, PlotError> {
        // Always titled (even with an empty title) so every panel's plotting area has
        // the same vertical extent as the colour bar.
        let area = titled(area, &panel.title, self.sizes.title)?;
        let x_axis = Axis::linear(padded(extent(panel.x.iter().copied())), PANEL_TICKS);
        let y_axis = Axis::linear(padded(extent(panel.y.iter().copied())), PANEL_TICKS);
        let frame = Frame::new(
            &self.sizes,
            &tick_labels(&y_axis),
            !panel.x_label.is_empty(),
            !panel.y_label.is_empty(),
        )?;
        let ([x0, x1], [y0, y1]) = (x_axis.range, y_axis.range);
        let mut chart = build_chart(&area, &frame, x0..x1, y0..y1)?;
        draw_mesh(
            &mut chart,
            &self.sizes,
            (&x_axis, &y_axis),
            (panel.x_label, panel.y_label),
        )?;
        let [lo, hi] = self.value_axis.range;
        let radius = (self.panel_px / 200).max(2);
        let dots = panel
            .x
            .iter()
            .zip(panel.y)
            .zip(self.values)
            .map(|((&x, &y), &v)| {
                let color = ViridisRGB.get_color_normalized(v, lo, hi);
                Circle::new((x, y), radius, color.mix(0.85).filled())
            });
        chart.draw_series(dots)?;
        Ok(chart.plotting_area().get_pixel_range().1)
    }

    /// Draws the bar so its ends line up with the panels' plotting areas (`plot_rows`,
    /// absolute pixel rows).
    fn draw_color_bar<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        plot_rows: Range<i32>,
    ) -> Result<(), PlotError> {
        let (_, top) = area.get_base_pixel();
        let (_, height) = area.dim_in_pixel();
        let [lo, hi] = self.value_axis.range;
        let mut chart = ChartBuilder::on(area)
            .margin_top((plot_rows.start - top).max(0))
            .margin_bottom((top + height as i32 - plot_rows.end).max(0))
            .margin_left(self.bar.margin)
            .margin_right(self.bar.margin)
            .set_label_area_size(LabelAreaPosition::Right, self.bar.labels)
            .build_cartesian_2d(0f64..1f64, lo..hi)?;
        // One band per pixel row gives a smooth gradient without bloating the SVG.
        let steps = plot_rows.len().max(1);
        let bands = (0..steps).map(|i| {
            let at = |k: usize| lo + (hi - lo) * k as f64 / steps as f64;
            let color = ViridisRGB.get_color_normalized((at(i) + at(i + 1)) / 2.0, lo, hi);
            Rectangle::new([(0.0, at(i)), (1.0, at(i + 1))], color.filled())
        });
        chart.draw_series(bands)?;
        chart
            .plotting_area()
            .draw(&Rectangle::new([(0.0, lo), (1.0, hi)], BLACK))?;
        let format = self.value_axis.formatter();
        let label = |v: &f64| format.format(*v);
        let mut mesh = chart.configure_mesh();
        mesh.disable_mesh()
            .disable_x_axis()
            .y_labels(self.value_axis.ticks)
            .y_label_formatter(&label)
            .label_style(text(self.sizes.tick))
            .axis_desc_style(text(self.sizes.label))
            .axis_style(BLACK)
            .set_all_tick_mark_size(TICK_PX);
        if !self.value_label.is_empty() {
            mesh.y_desc(self.value_label);
        }
        mesh.draw()?;
        Ok(())
    }
}

impl Figure for ColoredGrid<'_> {
    fn size(&self) -> (u32, u32) {
        (
            self.panels.len() as u32 * self.panel_px + self.bar.width(),
            self.panel_px,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let (panels_area, bar_area) =
            root.split_horizontally(self.panels.len() as u32 * self.panel_px);
        let mut plot_rows = None;
        for (area, panel) in panels_area
            .split_evenly((1, self.panels.len()))
            .iter()
            .zip(self.panels)
        {
            plot_rows = Some(self.draw_panel(area, panel)?);
        }
        let (_, bar_height) = bar_area.dim_in_pixel();
        self.draw_color_bar(&bar_area, plot_rows.unwrap_or(0..bar_height as i32))
    }
}
