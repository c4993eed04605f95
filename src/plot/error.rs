//! The plot library's error type, and the input checks every figure kind runs before it
//! draws anything (so a rejected input writes no file).

use std::fmt;
use std::path::Path;

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
/// Below this, titles, tick labels and legends no longer fit a panel.
const MIN_PANEL_PX: u32 = 120;

pub(super) fn check_grid(count: usize, panel_px: u32) -> Result<(), PlotError> {
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

/// Errors naming `what` and the offending item if any coordinate is NaN or infinite
/// (either would poison the axis ranges).
pub(super) fn check_finite<const N: usize>(
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
