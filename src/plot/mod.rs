//! Figures for the GAN research toolkit: grids of scatter/gradient-field panels, line
//! charts, value-coloured scatter panels with a colour bar, and shaded tables.
//!
//! Every figure is written as both `<stem>.png` and `<stem>.svg`, atomically (see
//! [`panels`]). Text uses DejaVu Sans embedded in the binary, so rendering needs no
//! system fonts. The only dependency is `plotters`, built without its system-font
//! features:
//!
//! ```toml
//! plotters = { version = "0.3.7", default-features = false, features = ["bitmap_backend", "bitmap_encoder", "svg_backend", "ab_glyph", "line_series", "colormaps", "full_palette"] }
//! ```
//!
//! Files: one per figure kind (`panels`, `lines`, `colored`, `table`), each holding its public inputs,
//! their checks and the drawing; `draw` holds the drawing helpers the kinds share, `axes` the
//! axis ranges, ticks and text sizes, `output` the embedded font and the atomic PNG + SVG
//! writing, `error` the error type and the input checks every kind uses.

mod axes;
mod colored;
mod draw;
mod error;
mod lines;
mod output;
mod panels;
mod table;
#[cfg(test)]
mod tests;

pub use colored::{colored_scatter, ColoredPanel};
pub use error::PlotError;
pub use lines::{line_grid, lines, Curve, LineChart};
pub use output::figure_files;
pub use panels::{panels, Arrows, Panel, Scatter};
pub use table::{table, Table};

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
