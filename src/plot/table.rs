//! A table as a figure: a header row and rows of text cells, each body cell shaded by a value
//! (for tables people scan for their best and worst entries, such as the study's selection
//! failures).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axes::{text, text_size};
use super::draw::titled;
use super::output::{register_embedded_font, write_figure, Figure};
use super::PlotError;

/// Text size of the cells.
const FONT: f64 = 18.0;
/// Padding around a cell's text.
const PAD: u32 = 12;

/// A table: `header` above `rows`, each body cell's background shaded from white (shade 0)
/// to a saturated red (shade 1).
pub struct Table<'a> {
    pub title: &'a str,
    pub header: &'a [String],
    pub rows: &'a [Vec<String>],
    /// One shade in [0, 1] per body cell (same shape as `rows`).
    pub shades: &'a [Vec<f64>],
}

/// Draws `table` and writes `<stem>.png` and `<stem>.svg` atomically. Errors when a row's
/// width differs from the header's or its shades do not match it.
pub fn table(stem: &Path, table: &Table) -> Result<(), PlotError> {
    let width = table.header.len();
    for (i, row) in table.rows.iter().enumerate() {
        let shades = table.shades.get(i).map_or(0, Vec::len);
        if row.len() != width || shades != width {
            return Err(PlotError(format!(
                "table row {i} has {} cells and {shades} shades for {width} columns",
                row.len()
            )));
        }
    }
    register_embedded_font()?;
    let mut widths = vec![0u32; width];
    for row in std::iter::once(table.header).chain(table.rows.iter().map(Vec::as_slice)) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(text_size(cell, FONT)?.0 + 2 * PAD);
        }
    }
    let row_px = text_size("Mg", FONT)?.1 + 2 * PAD;
    write_figure(
        stem,
        &TableFigure {
            table,
            widths,
            row_px,
        },
    )
}

struct TableFigure<'a> {
    table: &'a Table<'a>,
    widths: Vec<u32>,
    row_px: u32,
}

/// Space above the table for its title.
const TITLE_PX: u32 = 48;

impl Figure for TableFigure<'_> {
    fn size(&self) -> (u32, u32) {
        let w = self.widths.iter().sum::<u32>() + 2 * PAD;
        let h = TITLE_PX + (self.table.rows.len() as u32 + 1) * self.row_px + 2 * PAD;
        (
            w.max(text_size(self.table.title, FONT * 1.2).unwrap_or((0, 0)).0 + 2 * PAD),
            h,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let area = titled(root, self.table.title, FONT * 1.2)?;
        let rows = std::iter::once((self.table.header, None)).chain(
            self.table
                .rows
                .iter()
                .zip(self.table.shades)
                .map(|(r, s)| (r.as_slice(), Some(s.as_slice()))),
        );
        for (i, (cells, shades)) in rows.enumerate() {
            let top = (PAD + i as u32 * self.row_px) as i32;
            let mut left = PAD as i32;
            for (j, cell) in cells.iter().enumerate() {
                let w = self.widths[j] as i32;
                let corners = [(left, top), (left + w, top + self.row_px as i32)];
                let fill = match shades {
                    Some(s) => {
                        let t = s[j].clamp(0.0, 1.0);
                        let fade = (255.0 * (1.0 - 0.6 * t)) as u8;
                        RGBColor(255, fade, fade)
                    }
                    None => RGBColor(230, 230, 230),
                };
                area.draw(&Rectangle::new(corners, fill.filled()))?;
                area.draw(&Rectangle::new(corners, BLACK.stroke_width(1)))?;
                area.draw(&Text::new(
                    cell.clone(),
                    (left + PAD as i32, top + PAD as i32),
                    text(FONT),
                ))?;
                left += w;
            }
        }
        Ok(())
    }
}
