//! Grids of scatter / gradient-field panels: their inputs ([`Panel`], [`Scatter`],
//! [`Arrows`]), checks, and drawing.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axes::{
    equal_aspect, extent, padded, text, tick_labels, Axis, Frame, LegendBox, TextSizes,
};
use super::draw::{build_chart, draw_legend, draw_mesh, rgb, titled, PANEL_TICKS};
use super::error::{check_finite, check_grid};
use super::output::{register_embedded_font, write_figure, Figure};
use super::{PlotError, Rgb};

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

/// A grid of equal-aspect scatter/arrow panels under an optional figure title.
struct PanelGrid<'a> {
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
