//! Scatter panels coloured by one value array, with a shared viridis colour bar (for
//! correlation figures): their inputs ([`ColoredPanel`]), checks, and drawing.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axes::{extent, padded, text, text_size, tick_labels, Axis, Frame, TextSizes, TICK_PX};
use super::draw::{build_chart, draw_mesh, titled, PANEL_TICKS};
use super::error::{check_finite, check_grid};
use super::output::{register_embedded_font, write_figure, Figure};
use super::PlotError;

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
/// Writes `<stem>.png` and `<stem>.svg` atomically, as [`panels`](fn@super::panels) does. Errors on
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

/// Scatter panels coloured by one value array, with a shared viridis colour bar.
struct ColoredGrid<'a> {
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
