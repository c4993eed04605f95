//! Axis ranges, tick labels, text sizes and legend placement shared by all figures.

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::PlotError;

/// Fraction of the data span added on each side so points do not sit on the frame.
const MARGIN_FRACTION: f64 = 0.05;
/// Tick mark length in pixels; plotters keeps tick labels two tick lengths away.
pub(super) const TICK_PX: u32 = 4;

/// The font family registered from the embedded TTF.
const FAMILY: &str = "sans-serif";

/// Smallest and largest value, or `None` for no values.
pub(super) fn extent(values: impl IntoIterator<Item = f64>) -> Option<[f64; 2]> {
    values.into_iter().fold(None, |acc, v| match acc {
        None => Some([v, v]),
        Some([lo, hi]) => Some([lo.min(v), hi.max(v)]),
    })
}

/// Widens an extent by the 5 % margin. No data, or data without spread (all points
/// identical), still gets a non-zero range so the axis can be drawn.
pub(super) fn padded(extent: Option<[f64; 2]>) -> [f64; 2] {
    match extent {
        None => [-1.0, 1.0],
        Some([lo, hi]) if hi - lo > 1e-12 * lo.abs().max(hi.abs()) => {
            let pad = (hi - lo) * MARGIN_FRACTION;
            [lo - pad, hi + pad]
        }
        Some([v, _]) => {
            let half = if v == 0.0 { 1.0 } else { v.abs() * 0.1 };
            [v - half, v + half]
        }
    }
}

/// Like [`padded`] but the margin is applied in log10 space; values must be positive.
pub(super) fn padded_log(extent: Option<[f64; 2]>) -> [f64; 2] {
    let [lo, hi] = padded(extent.map(|[lo, hi]| [lo.log10(), hi.log10()]));
    [10f64.powf(lo), 10f64.powf(hi)]
}

/// Widens the narrower range so one data unit spans the same number of pixels on both
/// axes of a `plot_px` plotting area (circles stay circles, angles stay true).
pub(super) fn equal_aspect(x: [f64; 2], y: [f64; 2], plot_px: (u32, u32)) -> ([f64; 2], [f64; 2]) {
    let (w, h) = (f64::from(plot_px.0.max(1)), f64::from(plot_px.1.max(1)));
    let per_px = ((x[1] - x[0]) / w).max((y[1] - y[0]) / h);
    let widen = |r: [f64; 2], px: f64| {
        let centre = (r[0] + r[1]) / 2.0;
        [centre - per_px * px / 2.0, centre + per_px * px / 2.0]
    };
    (widen(x, w), widen(y, h))
}

/// One axis: its range, whether it is logarithmic, and how many labelled ticks to aim for.
#[derive(Clone, Copy)]
pub(super) struct Axis {
    pub range: [f64; 2],
    pub log: bool,
    pub ticks: usize,
}

impl Axis {
    pub fn linear(range: [f64; 2], ticks: usize) -> Self {
        Axis {
            range,
            log: false,
            ticks,
        }
    }

    pub fn log(range: [f64; 2], ticks: usize) -> Self {
        Axis {
            range,
            log: true,
            ticks,
        }
    }

    /// The tick positions plotters will label (the same computation its mesh uses).
    pub fn tick_values(&self) -> Vec<f64> {
        let [lo, hi] = self.range;
        if self.log {
            Log10Coord::new(lo, hi).key_points(self.ticks)
        } else {
            RangedCoordf64::from(lo..hi).key_points(self.ticks)
        }
    }

    /// The label formatter for this axis's ticks.
    pub fn formatter(&self) -> TickFormat {
        if self.log {
            TickFormat::Significant
        } else {
            TickFormat::fixed_for(&self.tick_values())
        }
    }
}

/// A base-10 log axis. plotters' own log coordinate only labels from the first power
/// of ten inside the range upwards, so a loss axis spanning 0.2–3 would get no label
/// below 1; this one labels 1-2-…-9, 1-2-3-5, 1-2-5 or 1 per decade (or every few
/// decades), whichever fits.
pub(super) struct Log10Coord {
    linear: RangedCoordf64,
    range: [f64; 2],
}

impl Log10Coord {
    /// `lo` and `hi` must be positive.
    pub fn new(lo: f64, hi: f64) -> Self {
        Log10Coord {
            linear: (lo.log10()..hi.log10()).into(),
            range: [lo, hi],
        }
    }
}

impl Ranged for Log10Coord {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(&value.log10(), limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let max = hint.max_num_points().max(1);
        let [lo, hi] = self.range;
        let in_range = |mantissas: &[f64], every: i32| -> Vec<f64> {
            (lo.log10().floor() as i32..=hi.log10().ceil() as i32)
                .filter(|decade| decade.rem_euclid(every) == 0)
                .flat_map(|decade| mantissas.iter().map(move |m| m * 10f64.powi(decade)))
                .filter(|v| (lo..=hi).contains(v))
                .collect()
        };
        // Densest first. Pick the sparsest set that still gives four labels; when no
        // set does (a narrow range), the densest set that fits.
        const STEPS: [&[f64]; 4] = [
            &[1., 2., 3., 4., 5., 6., 7., 8., 9.],
            &[1., 2., 3., 5.],
            &[1., 2., 5.],
            &[1.],
        ];
        let fitting: Vec<Vec<f64>> = STEPS
            .iter()
            .map(|mantissas| in_range(mantissas, 1))
            .filter(|ticks| ticks.len() <= max)
            .collect();
        let mut ticks = fitting
            .iter()
            .rev()
            .find(|ticks| ticks.len() >= 4)
            .or(fitting.first())
            .cloned()
            .unwrap_or_default();
        if ticks.is_empty() {
            let decades = (hi / lo).log10().ceil() as usize;
            ticks = in_range(&[1.], decades.div_ceil(max).max(1) as i32);
        }
        if ticks.len() < 2 {
            // Less than a decade with at most one round value inside: linear ticks
            // are the readable choice at this zoom.
            ticks = RangedCoordf64::from(lo..hi).key_points(max);
        }
        ticks
    }

    fn range(&self) -> Range<f64> {
        self.range[0]..self.range[1]
    }
}

impl ValueFormatter<f64> for Log10Coord {
    fn format(value: &f64) -> String {
        TickFormat::Significant.format(*value)
    }
}

/// How tick values become labels.
pub(super) enum TickFormat {
    /// Fixed decimals (or a fixed-precision mantissa) shared by all ticks of an axis, so
    /// labels line up and never show float noise like `0.30000000000000004`.
    Fixed {
        scientific: bool,
        decimals: usize,
        zero_below: f64,
    },
    /// Up to four significant digits per value, for log axes whose ticks span decades.
    Significant,
}

impl TickFormat {
    fn fixed_for(ticks: &[f64]) -> Self {
        let magnitude = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let scientific = magnitude >= 1e5 || (magnitude > 0.0 && magnitude < 1e-3);
        let step = ticks
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(f64::INFINITY, f64::min);
        let tolerance = if step.is_finite() {
            step * 1e-3
        } else {
            magnitude * 1e-6
        };
        // The fewest decimals that still reproduce every tick.
        let decimals = (0..=8)
            .find(|&decimals| {
                ticks.iter().all(|&v| {
                    let shown = Self::fixed(v, scientific, decimals);
                    shown
                        .parse::<f64>()
                        .is_ok_and(|p| (p - v).abs() <= tolerance)
                })
            })
            .unwrap_or(8);
        TickFormat::Fixed {
            scientific,
            decimals,
            zero_below: tolerance,
        }
    }

    fn fixed(v: f64, scientific: bool, decimals: usize) -> String {
        if scientific {
            format!("{v:.decimals$e}")
        } else {
            format!("{v:.decimals$}")
        }
    }

    pub fn format(&self, v: f64) -> String {
        match *self {
            // Snapping near-zero ticks avoids labels like "-0.0" or "1e-17".
            TickFormat::Fixed { zero_below, .. } if v.abs() <= zero_below => "0".to_string(),
            TickFormat::Fixed {
                scientific,
                decimals,
                ..
            } => Self::fixed(v, scientific, decimals),
            TickFormat::Significant if v == 0.0 => "0".to_string(),
            TickFormat::Significant => {
                let scale = 10f64.powi(3 - v.abs().log10().floor() as i32);
                let rounded = (v * scale).round() / scale;
                if (1e-3..1e5).contains(&rounded.abs()) {
                    rounded.to_string()
                } else {
                    format!("{rounded:e}")
                }
            }
        }
    }
}

/// Text sizes in pixels, scaled with the figure so text stays legible at any resolution.
pub(super) struct TextSizes {
    pub figure_title: f64,
    pub title: f64,
    pub label: f64,
    pub tick: f64,
}

impl TextSizes {
    /// Sizes for a chart whose shorter side is `px` pixels.
    pub fn for_side(px: u32) -> Self {
        let px = f64::from(px);
        TextSizes {
            figure_title: (px * 0.06).clamp(16.0, 40.0),
            title: (px * 0.05).clamp(14.0, 32.0),
            label: (px * 0.042).clamp(12.0, 26.0),
            tick: (px * 0.036).clamp(11.0, 22.0),
        }
    }
}

/// A text style in the embedded font.
pub(super) fn text(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&BLACK)
}

/// Rendered width and height of `s` in pixels.
pub(super) fn text_size(s: &str, size: f64) -> Result<(u32, u32), PlotError> {
    (FAMILY, size)
        .into_font()
        .box_size(s)
        .map_err(|e| PlotError(format!("measuring text {s:?}: {e}")))
}

/// Pixel sizes around a chart's plotting area, derived from the text that goes there.
#[derive(Clone, Copy)]
pub(super) struct Frame {
    pub margin: u32,
    pub x_label_area: u32,
    pub y_label_area: u32,
}

impl Frame {
    /// Room for `y_ticks`' widest label (plus the axis description if any) on the left
    /// and one line of tick labels (plus description) below.
    pub fn new(
        sizes: &TextSizes,
        y_ticks: &[String],
        x_desc: bool,
        y_desc: bool,
    ) -> Result<Self, PlotError> {
        let widest = y_ticks
            .iter()
            .try_fold(0, |w, t| text_size(t, sizes.tick).map(|(tw, _)| w.max(tw)))?;
        let (_, tick_h) = text_size("0", sizes.tick)?;
        let (_, desc_h) = text_size("Xy", sizes.label)?;
        let gap = 2 * TICK_PX + 4;
        let desc = |on: bool| if on { desc_h + 6 } else { 0 };
        Ok(Frame {
            // Leaves room for the half of the last x tick label that overhangs the frame.
            margin: (sizes.tick * 1.2) as u32,
            x_label_area: gap + tick_h + desc(x_desc),
            y_label_area: gap + widest + desc(y_desc),
        })
    }

    /// Plotting-area size inside an `area_px` drawing area.
    pub fn plot_px(&self, area_px: (u32, u32)) -> (u32, u32) {
        let m = 2 * self.margin;
        (
            area_px.0.saturating_sub(m + self.y_label_area),
            area_px.1.saturating_sub(m + self.x_label_area),
        )
    }
}

/// The formatted tick labels of an axis.
pub(super) fn tick_labels(axis: &Axis) -> Vec<String> {
    let format = axis.formatter();
    axis.tick_values()
        .into_iter()
        .map(|v| format.format(v))
        .collect()
}

/// Legend box geometry, mirroring what plotters draws for `configure_series_labels`.
pub(super) struct LegendBox {
    /// Number of labelled series; zero means no legend is drawn.
    pub entries: usize,
    pub font: f64,
    /// Width left of each label; the series mark plus a gap before the text.
    pub swatch: u32,
    /// Width of the series mark drawn at the start of the swatch.
    pub mark: i32,
    pub padding: u32,
    pub size: (i32, i32),
}

impl LegendBox {
    pub fn new(labels: &[&str], font: f64) -> Result<Self, PlotError> {
        let swatch = (font * 2.6) as u32;
        let mark = (font * 2.0) as i32;
        let padding = (font * 0.5) as u32;
        let mut width = 0;
        let mut line_h = 0;
        for label in labels {
            let (w, h) = text_size(label, font)?;
            width = width.max(w);
            line_h = line_h.max(h);
        }
        // plotters spaces lines 1.25 line-heights apart.
        let rows = labels.len().saturating_sub(1) as f64;
        let height = (rows * 1.25 * f64::from(line_h)) as u32 + line_h;
        Ok(LegendBox {
            entries: labels.len(),
            font,
            swatch,
            mark,
            padding,
            size: (
                (width + swatch + 2 * padding) as i32,
                (height + 2 * padding) as i32,
            ),
        })
    }

    /// The plotting-area corner where the box covers the fewest of `points_px`
    /// (pixel positions relative to the plotting area's top-left corner).
    pub fn least_covered_corner(
        &self,
        points_px: impl IntoIterator<Item = (i32, i32)>,
        area_px: (u32, u32),
    ) -> SeriesLabelPosition {
        // plotters insets the legend 5 px from the chosen corner.
        const INSET: i32 = 5;
        let (w, h) = self.size;
        let right = area_px.0 as i32 - w - INSET;
        let bottom = area_px.1 as i32 - h - INSET;
        let corners = [
            (SeriesLabelPosition::UpperRight, right, INSET),
            (SeriesLabelPosition::UpperLeft, INSET, INSET),
            (SeriesLabelPosition::LowerRight, right, bottom),
            (SeriesLabelPosition::LowerLeft, INSET, bottom),
        ];
        let mut covered = [0usize; 4];
        for (px, py) in points_px {
            for (count, &(_, x0, y0)) in covered.iter_mut().zip(&corners) {
                if (x0..=x0 + w).contains(&px) && (y0..=y0 + h).contains(&py) {
                    *count += 1;
                }
            }
        }
        // First minimum, so ties prefer the conventional upper-right spot.
        let best = (0..4).min_by_key(|&i| covered[i]).unwrap_or(0);
        corners[best].0.clone()
    }
}
