//! Embedded font registration and atomic PNG + SVG output.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::PlotError;

/// DejaVu Sans, compiled into the binary because CI machines have no system fonts.
static DEJAVU_SANS: &[u8] = include_bytes!("DejaVuSans.ttf");

/// Registers the embedded font as "sans-serif", the family every plotters text style
/// defaults to. Runs once per process; later calls return the first outcome.
pub(super) fn register_embedded_font() -> Result<(), PlotError> {
    static OUTCOME: OnceLock<Result<(), String>> = OnceLock::new();
    OUTCOME
        .get_or_init(|| {
            // Bold/italic requests fall back to this regular face inside plotters.
            register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS)
                .map_err(|_| "the embedded DejaVuSans.ttf could not be parsed".to_string())
        })
        .clone()
        .map_err(PlotError)
}

/// A figure that can be drawn on any plotters backend, so one description yields both
/// the PNG and the SVG.
pub(super) trait Figure {
    /// Canvas size in pixels (width, height).
    fn size(&self) -> (u32, u32);
    /// Draws the whole figure onto `root`, which is already filled white.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>;
}

/// Writes `<stem>.png` and `<stem>.svg`. Both are rendered to hidden temporary files in
/// the target folder first and renamed only after both succeeded, so a failed render
/// never leaves a truncated figure behind (nor replaces an older good one).
pub(super) fn write_figure(stem: &Path, figure: &impl Figure) -> Result<(), PlotError> {
    let targets = figure_files(stem)?;
    if let Some(folder) = stem.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !folder.is_dir() {
            return Err(PlotError(format!(
                "folder {} does not exist",
                folder.display()
            )));
        }
    }
    let temps = targets.clone().map(|t| crate::io::temporary_beside(&t));
    let rendered = render_png(&temps[0], figure).and_then(|()| render_svg(&temps[1], figure));
    if let Err(err) = rendered {
        for temp in &temps {
            // The render already failed; a temp file that was never created is expected.
            let _ = fs::remove_file(temp);
        }
        return Err(err);
    }
    for (temp, target) in temps.iter().zip(&targets) {
        fs::rename(temp, target).map_err(|e| {
            let _ = fs::remove_file(temp);
            PlotError(format!("moving {} into place: {e}", target.display()))
        })?;
    }
    Ok(())
}

fn render_png(path: &Path, figure: &impl Figure) -> Result<(), PlotError> {
    let root = BitMapBackend::new(path, figure.size()).into_drawing_area();
    root.fill(&WHITE)?;
    figure.draw(&root)?;
    // Presenting explicitly surfaces encoder/IO errors that a drop would swallow.
    root.present()
        .map_err(|e| PlotError(format!("writing {}: {e}", path.display())))
}

fn render_svg(path: &Path, figure: &impl Figure) -> Result<(), PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, figure.size()).into_drawing_area();
        root.fill(&WHITE)?;
        figure.draw(&root)?;
        root.present()?;
    }
    fs::write(path, svg).map_err(|e| PlotError(format!("writing {}: {e}", path.display())))
}

/// The files a figure at `stem` is written to: `<stem>.png` and `<stem>.svg`.
pub fn figure_files(stem: &Path) -> Result<[PathBuf; 2], PlotError> {
    Ok([with_suffix(stem, ".png")?, with_suffix(stem, ".svg")?])
}

/// Appends an extension instead of replacing one, so a stem like `run.v2/loss` or
/// `epoch.10` keeps its dots.
fn with_suffix(stem: &Path, suffix: &str) -> Result<PathBuf, PlotError> {
    if stem.file_name().is_none() {
        return Err(PlotError(format!(
            "output stem {} has no file name",
            stem.display()
        )));
    }
    let mut path = OsString::from(stem.as_os_str());
    path.push(suffix);
    Ok(PathBuf::from(path))
}
