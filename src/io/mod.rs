//! Files in and out: point sets and features (`.csv`, `.npy`), pytorch-fid statistics (`.npz`
//! with `mu` and `sigma`), network weights (safetensors, PyTorch checkpoints); atomic writes for
//! every output file, PNG image grids, and JSONL logs appended a line at a time.

mod atomic;
mod image;
mod jsonl;
mod npy;
mod table;
mod torch_pickle;
pub mod versioned;
mod weights;
mod zip_entry;

pub use atomic::{
    check_out_dir, create_writable_dir, is_temporary, remove_stale_temporaries, temporary_beside,
    write_atomic,
};
pub use image::write_png_grid;
pub use jsonl::{append_jsonl, truncate_jsonl};
pub use npy::{read_npy, read_npz_stats, write_npy_f32, NpyArray};
pub use table::{write_csv, Table};
pub use torch_pickle::{
    read_network_arguments, read_network_pickle, read_torch_tensors, NetworkArguments,
    NetworkPickle, TorchTensor,
};
pub use weights::{read_tensor_file, Weights};
pub use zip_entry::{read_zip_entry, ZIP_ENTRY_LIMIT};

use crate::{Error, Result};
use std::path::Path;

/// A set of `n` points in `d` dimensions, stored row-major in f64.
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    n: usize,
    d: usize,
    data: Vec<f64>,
}

impl Points {
    /// Wraps row-major data; `data.len()` must be `n * d` and every value finite.
    pub fn new(n: usize, d: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != n * d {
            return Err(Error::invalid(format!(
                "{} values cannot form {n} points of dimension {d}",
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(format!(
                "point {} coordinate {} is not finite ({})",
                i / d.max(1),
                i % d.max(1),
                data[i]
            )));
        }
        Ok(Points { n, d, data })
    }

    /// Builds a point set from rows of equal length.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let d = rows.first().map_or(0, Vec::len);
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != d) {
            return Err(Error::invalid(format!(
                "row {i} has {} values, the first row has {d}",
                r.len()
            )));
        }
        Points::new(rows.len(), d, rows.concat())
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn dim(&self) -> usize {
        self.d
    }

    /// Row-major values, `len() * dim()` of them.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// The first `m` points.
    pub fn head(&self, m: usize) -> Points {
        let m = m.min(self.n);
        Points {
            n: m,
            d: self.d,
            data: self.data[..m * self.d].to_vec(),
        }
    }

    /// The points at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Points {
        let mut data = Vec::with_capacity(indices.len() * self.d);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Points {
            n: indices.len(),
            d: self.d,
            data,
        }
    }
}

/// Reads a point set from `.csv` (header row, numeric cells) or `.npy` (f32/f64, 2-D `[N, D]`).
///
/// Errors name the file and, for CSV, the line and column; an empty set, a non-finite value or
/// an unsupported array is an error.
pub fn load_points(path: &Path) -> Result<Points> {
    check_readable_file(path)?;
    match extension(path).as_deref() {
        Some("csv") => Table::read(path)?.points(),
        Some("npy") => read_npy(path)?.into_points(path),
        _ => Err(Error::in_file(
            path,
            "unsupported file type (expected .csv or .npy)",
        )),
    }
}

/// Lower-cased extension of `path`, if any.
pub fn extension(path: &Path) -> Option<String> {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

/// Fails with a clear message when `path` is missing or is not a regular file: a folder, a
/// FIFO (reading it would wait forever for a writer) or a device (`/dev/zero` never ends).
/// Symbolic links are followed.
pub fn check_readable_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::in_file(path, "is a directory, expected a file")),
        Ok(m) if !m.is_file() => Err(Error::in_file(
            path,
            "is not a regular file (a FIFO, socket or device), expected a file",
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::in_file(path, "no such file"))
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The metadata of a safetensors file, read from its header without its tensors; `None` for
/// any other file.
pub fn safetensors_metadata(path: &Path) -> Option<std::collections::HashMap<String, String>> {
    use std::io::Read;
    // Opening a FIFO would wait for a writer: only regular files are looked into.
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let mut file = std::fs::File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    // safetensors bounds its header at 100 MB; a larger length, or one beyond the file's end,
    // is not such a file.
    let len = u64::from_le_bytes(len);
    if len > 100_000_000 || len > size.saturating_sub(8) {
        return None;
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    serde_json::from_value(header.get("__metadata__")?.clone()).ok()
}
