//! CSV tables: a header row of column names, then one record per row.

use super::Points;
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// A CSV file read whole, kept as text so that label columns (e.g. a `--by` group) stay usable;
/// numeric columns are parsed on request, with errors pointing at the offending cell.
#[derive(Debug, Clone)]
pub struct Table {
    path: PathBuf,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    /// 1-based line number of each row in the file, for error messages.
    lines: Vec<u64>,
}

impl Table {
    /// Reads `path`. Fails on a missing or empty file, a missing header, no data rows, or a row
    /// whose number of cells differs from the header's.
    pub fn read(path: &Path) -> Result<Self> {
        super::check_readable_file(path)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| csv_error(path, e))?;
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(str::to_owned)
            .collect();
        if columns.is_empty() || columns.iter().all(String::is_empty) {
            return Err(Error::in_file(
                path,
                "empty file (expected a header row, then numeric rows)",
            ));
        }
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(path, e))?;
            let line = record.position().map_or(0, |p| p.line());
            if record.len() == 1 && record[0].is_empty() {
                continue; // blank line
            }
            if record.len() != columns.len() {
                return Err(Error::at(
                    path,
                    line,
                    None,
                    format!(
                        "row has {} cells, the header has {}",
                        record.len(),
                        columns.len()
                    ),
                ));
            }
            rows.push(record.iter().map(str::to_owned).collect());
            lines.push(line);
        }
        if rows.is_empty() {
            return Err(Error::in_file(path, "no data rows after the header"));
        }
        Ok(Table {
            path: path.to_owned(),
            columns,
            rows,
            lines,
        })
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Index of column `name`, or an error listing the columns there are.
    fn column_index(&self, name: &str) -> Result<usize> {
        self.columns.iter().position(|c| c == name).ok_or_else(|| {
            Error::in_file(
                &self.path,
                format!(
                    "no column '{}' (columns: {})",
                    name.escape_debug(),
                    self.columns.join(", ").escape_debug()
                ),
            )
        })
    }

    /// The text cells of column `name`.
    pub fn text_column(&self, name: &str) -> Result<Vec<&str>> {
        let c = self.column_index(name)?;
        Ok(self.rows.iter().map(|r| r[c].as_str()).collect())
    }

    /// The cells of column `name` as finite numbers.
    pub fn numeric_column(&self, name: &str) -> Result<Vec<f64>> {
        let c = self.column_index(name)?;
        (0..self.rows.len()).map(|r| self.number(r, c)).collect()
    }

    /// Every column as numbers: one point per row.
    pub fn points(&self) -> Result<Points> {
        let d = self.columns.len();
        let mut data = Vec::with_capacity(self.rows.len() * d);
        for r in 0..self.rows.len() {
            for c in 0..d {
                data.push(self.number(r, c)?);
            }
        }
        Points::new(self.rows.len(), d, data)
    }

    fn number(&self, row: usize, col: usize) -> Result<f64> {
        let cell = &self.rows[row][col];
        let fail = |what: &str| {
            Error::at(
                &self.path,
                self.lines[row],
                Some(col + 1),
                format!("column '{}': {what}", self.columns[col].escape_debug()),
            )
        };
        let value: f64 = cell
            .parse()
            .map_err(|_| fail(&format!("'{}' is not a number", cell.escape_debug())))?;
        if !value.is_finite() {
            return Err(fail(&format!(
                "'{}' is not a finite number",
                cell.escape_debug()
            )));
        }
        Ok(value)
    }
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        csv::ErrorKind::Utf8 { err, .. } => Error::at(
            path,
            line.unwrap_or(0),
            Some(err.field() + 1),
            "cell is not valid UTF-8 text",
        ),
        other => Error::in_file(path, format!("malformed CSV: {other:?}")),
    }
}

/// Writes CSV rows (header first) atomically; a cell holding a comma, quote or line feed (a
/// user-given name) is quoted, every other cell is written as given.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .flexible(true)
        .from_writer(Vec::new());
    let encode = |e: csv::Error| Error::in_file(path, format!("cannot encode CSV: {e}"));
    writer.write_record(header).map_err(encode)?;
    for row in rows {
        writer.write_record(row).map_err(encode)?;
    }
    let text = writer
        .into_inner()
        .map_err(|e| encode(e.into_error().into()))?;
    super::write_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_cells_read_back_unchanged_even_with_commas_and_quotes() {
        let path = std::env::temp_dir().join(format!("whichgan-csv-{}.csv", std::process::id()));
        let names = ["plain", "a, b", "say \"hi\"", "two\nlines"];
        let rows: Vec<Vec<String>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| vec![n.to_string(), i.to_string()])
            .collect();
        write_csv(&path, &["source", "rank"], &rows).unwrap();
        let table = Table::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(table.text_column("source").unwrap(), names);
        assert_eq!(table.numeric_column("rank").unwrap(), [0.0, 1.0, 2.0, 3.0]);
    }
}
