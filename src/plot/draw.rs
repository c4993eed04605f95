//! Drawing helpers shared by the figure kinds (chart frame, title, mesh, legend), generic
//! over the plotters backend so the PNG and the SVG come from the same code.

use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::axes::{text, Axis, Frame, LegendBox, TextSizes, TICK_PX};
use super::{PlotError, Rgb};

/// Labelled ticks per axis in a grid panel; fewer than plotters' default because
/// panels are small.
pub(super) const PANEL_TICKS: usize = 7;

const GRID_MAJOR: RGBColor = RGBColor(215, 215, 215);
const LEGEND_BORDER: RGBColor = RGBColor(160, 160, 160);

/// A 2-D chart over the given x and y coordinate types.
pub(super) type Chart<'a, DB, X, Y> = ChartContext<'a, DB, Cartesian2d<X, Y>>;

pub(super) fn rgb((r, g, b): Rgb) -> RGBColor {
    RGBColor(r, g, b)
}

/// Builds a chart with the frame's margin and label areas around the plotting area.
pub(super) fn build_chart<'a, DB: DrawingBackend, X: AsRangedCoord, Y: AsRangedCoord>(
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
pub(super) fn titled<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    size: f64,
) -> Result<DrawingArea<DB, Shift>, PlotError> {
    let top_pad = (size * 0.3) as i32;
    Ok(area.margin(top_pad, 0, 0, 0).titled(title, text(size))?)
}

/// Grid lines, axes, tick labels and axis descriptions in the shared style.
pub(super) fn draw_mesh<'a, DB, X, Y>(
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
pub(super) fn draw_legend<'a, DB, X, Y>(
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
