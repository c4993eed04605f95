//! NumPy `.npy` arrays (float32/float64, C or Fortran order) and `.npz` archives of them.
//!
//! Hand-written because the format is tiny and the project wants errors that say exactly what
//! is wrong with a file (dtype, rank, truncation) rather than a generic parse failure.

use super::Points;
use crate::{Error, Result};
use std::io::Read;
use std::path::Path;

const MAGIC: &[u8] = b"\x93NUMPY";

/// An array read from a `.npy` file, converted to f64, in row-major (C) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl NpyArray {
    /// Interprets a 2-D array `[N, D]` as N points; `path` is only used in error messages.
    pub fn into_points(self, path: &Path) -> Result<Points> {
        match self.shape[..] {
            [n, d] => {
                if n == 0 || d == 0 {
                    return Err(Error::in_file(
                        path,
                        format!("array of shape ({n}, {d}) holds no points"),
                    ));
                }
                check_finite(path, "", &self.data, d)?;
                Points::new(n, d, self.data)
            }
            _ => Err(Error::in_file(
                path,
                format!(
                    "expected a 2-D array [N, D], got shape {}",
                    shape_text(&self.shape)
                ),
            )),
        }
    }
}

/// Reads a `.npy` file; one that does not open with the magic bytes is refused before the
/// rest of it is read.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    super::check_readable_file(path)?;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAGIC.len() as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if !bytes.is_empty() && bytes != MAGIC {
        return Err(Error::in_file(path, NOT_NPY));
    }
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    parse_npy(&bytes).map_err(|m| Error::in_file(path, m))
}

const NOT_NPY: &str = "not a .npy file (bad magic bytes)";

/// Reads the `mu` (1-D, length D) and `sigma` (D × D) arrays of a pytorch-fid statistics file.
pub fn read_npz_stats(path: &Path) -> Result<(NpyArray, NpyArray)> {
    super::check_readable_file(path)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| Error::in_file(path, format!("not a readable .npz (zip) archive: {e}")))?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let mut take = |key: &str| -> Result<NpyArray> {
        let entry = format!("{key}.npy");
        if !names.contains(&entry) {
            return Err(Error::in_file(
                path,
                format!(
                    "no '{key}' array in the .npz (it holds: {})",
                    names.join(", ")
                ),
            ));
        }
        let bytes = super::read_zip_entry(&mut archive, &entry, super::ZIP_ENTRY_LIMIT)
            .map_err(|m| Error::in_file(path, m))?;
        let array =
            parse_npy(&bytes).map_err(|m| Error::in_file(path, format!("'{entry}': {m}")))?;
        let columns = if array.shape.len() == 2 {
            array.shape[1]
        } else {
            1
        };
        check_finite(path, &format!("'{entry}': "), &array.data, columns)?;
        Ok(array)
    };
    let mu = take("mu")?;
    let sigma = take("sigma")?;
    Ok((mu, sigma))
}

/// `prefix` names the array inside the file (an .npz entry), or is empty.
fn check_finite(path: &Path, prefix: &str, data: &[f64], d: usize) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(Error::in_file(
            path,
            format!(
                "{prefix}value at row {}, column {} is not finite ({})",
                i / d + 1,
                i % d + 1,
                data[i]
            ),
        )),
    }
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Parses the bytes of a `.npy` file; the error is a message without the file name.
fn parse_npy(bytes: &[u8]) -> std::result::Result<NpyArray, String> {
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(NOT_NPY.into());
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let header = bytes
        .get(header_start..header_start + header_len)
        .ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    check_header_keys(header)?;
    let descr = dict_value(header, "descr").ok_or("header has no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order").ok_or("header has no 'fortran_order'")?;
    let fortran = match fortran {
        "True" => true,
        "False" => false,
        other => return Err(format!("bad fortran_order '{other}'")),
    };
    let shape = parse_shape(dict_value(header, "shape").ok_or("header has no 'shape'")?)?;

    let width = match descr {
        "<f4" | "=f4" => 4,
        "<f8" | "=f8" => 8,
        other => {
            return Err(format!(
                "dtype '{other}' is not supported (expected little-endian float32 '<f4' or float64 '<f8')"
            ))
        }
    };
    let too_large = || format!("shape {} is too large", shape_text(&shape));
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(too_large)?;
    let needed = count.checked_mul(width).ok_or_else(too_large)?;
    let body = &bytes[header_start + header_len..];
    if body.len() < needed {
        return Err(format!(
            "truncated: shape {} needs {needed} bytes of data, the file has {}",
            shape_text(&shape),
            body.len()
        ));
    }
    let values: Vec<f64> = if width == 4 {
        body[..count * 4]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect()
    } else {
        body[..count * 8]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let data = if fortran && shape.len() == 2 {
        let (n, d) = (shape[0], shape[1]);
        let mut c_order = vec![0.0; count];
        for j in 0..d {
            for i in 0..n {
                c_order[i * d + j] = values[j * n + i];
            }
        }
        c_order
    } else if fortran && shape.len() > 2 {
        return Err("Fortran-ordered arrays of more than 2 dimensions are not supported".into());
    } else {
        values
    };
    Ok(NpyArray { shape, data })
}

/// The header is a Python dict literal of exactly the keys `descr`, `fortran_order` and
/// `shape`, as numpy requires; anything else around or between them is refused.
fn check_header_keys(header: &str) -> std::result::Result<(), String> {
    let bad = || format!("header is not a dict of descr, fortran_order and shape: {header:?}");
    let body = header
        .trim_end()
        .strip_prefix('{')
        .and_then(|h| h.strip_suffix('}'))
        .ok_or_else(bad)?;
    let mut keys = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let (key, after) = quoted(rest).ok_or_else(bad)?;
        let value = after.trim_start().strip_prefix(':').ok_or_else(bad)?;
        let value = value.trim_start();
        // A shape tuple holds commas; other values end at the next comma.
        let end = if value.starts_with('(') {
            value.find(')').ok_or_else(bad)? + 1
        } else {
            value.find(',').unwrap_or(value.len())
        };
        if value[..end].trim().is_empty() {
            return Err(bad());
        }
        keys.push(key);
        let after = value[end..].trim_start();
        rest = match after.strip_prefix(',') {
            Some(next) => next.trim_start(),
            None if after.is_empty() => after,
            None => return Err(bad()),
        };
    }
    keys.sort_unstable();
    if keys != ["descr", "fortran_order", "shape"] {
        return Err(bad());
    }
    Ok(())
}

/// A key in single or double quotes at the start of `text`, and the text after it.
fn quoted(text: &str) -> Option<(&str, &str)> {
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let end = text[1..].find(quote)? + 1;
    Some((&text[1..end], &text[end + 1..]))
}

/// The raw text of `key`'s value in the header's Python dict literal.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}'])?
    };
    Some(rest[..end].trim())
}

fn parse_shape(text: &str) -> std::result::Result<Vec<usize>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("bad shape '{text}'"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| format!("bad shape '{text}'")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy_bytes(descr: &str, shape: &str, fortran: bool, body: &[u8]) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    fn f32_body(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn reads_c_and_fortran_order() {
        let c = parse_npy(&npy_bytes(
            "<f4",
            "(2, 3)",
            false,
            &f32_body(&[1., 2., 3., 4., 5., 6.]),
        ))
        .unwrap();
        assert_eq!(c.shape, vec![2, 3]);
        assert_eq!(c.data, vec![1., 2., 3., 4., 5., 6.]);
        let f = parse_npy(&npy_bytes(
            "<f4",
            "(2, 3)",
            true,
            &f32_body(&[1., 4., 2., 5., 3., 6.]),
        ))
        .unwrap();
        assert_eq!(f.data, c.data);
    }

    #[test]
    fn one_dimensional_shape() {
        let a = parse_npy(&npy_bytes("<f8", "(2,)", false, &[0u8; 16])).unwrap();
        assert_eq!(a.shape, vec![2]);
    }

    #[test]
    fn rejects_bad_dtype_and_truncation() {
        let e = parse_npy(&npy_bytes("<i8", "(1, 1)", false, &[0u8; 8])).unwrap_err();
        assert!(e.contains("'<i8' is not supported"), "{e}");
        let e = parse_npy(&npy_bytes("<f8", "(2, 2)", false, &[0u8; 24])).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
        assert!(parse_npy(b"hello world").unwrap_err().contains("magic"));
        let huge = format!("({}, 4)", usize::MAX / 2);
        let e = parse_npy(&npy_bytes("<f8", &huge, false, &[0u8; 8])).unwrap_err();
        assert!(e.contains("too large"), "{e}");
    }

    #[test]
    fn header_garbage_is_refused() {
        let body = f32_body(&[1.0, 2.0]);
        let with_header = |h: &str| {
            let mut out = MAGIC.to_vec();
            out.extend_from_slice(&[1, 0]);
            out.extend_from_slice(&(h.len() as u16).to_le_bytes());
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(&body);
            out
        };
        let good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
        assert_eq!(parse_npy(&with_header(good)).unwrap().data, vec![1.0, 2.0]);
        for garbage in [
            "junk {'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } trailing",
            "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'descr': '<f4'}",
            "{'descr': '<f4', 'fortran_order': , 'shape': (2,)}",
        ] {
            let e = parse_npy(&with_header(garbage)).unwrap_err();
            assert!(e.contains("header is not a dict"), "{garbage}: {e}");
        }
    }

    #[test]
    fn special_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.npy");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_npy(&zero).unwrap_err().to_string();
        assert!(e.contains("is not a regular file"), "{e}");
        let fifo = dir.path().join("fifo.npy");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = read_npy(&fifo).unwrap_err().to_string();
            assert!(e.contains("is not a regular file"), "{e}");
        }
        let big = dir.path().join("big.npy");
        std::fs::write(&big, vec![0u8; 1 << 20]).unwrap();
        let e = read_npy(&big).unwrap_err().to_string();
        assert!(e.ends_with("not a .npy file (bad magic bytes)"), "{e}");
    }

    #[test]
    fn a_non_finite_npz_value_is_placed_by_row_and_column() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("whichgan-npz-{}.npz", std::process::id()));
        let mut sigma = vec![1f32; 6];
        sigma[5] = f32::NAN; // row 2, column 3
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
        for (name, shape, data) in [("mu", "(3,)", vec![0f32; 3]), ("sigma", "(2, 3)", sigma)] {
            zip.start_file(
                format!("{name}.npy"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            zip.write_all(&npy_bytes("<f4", shape, false, &f32_body(&data)))
                .unwrap();
        }
        zip.finish().unwrap();
        let e = read_npz_stats(&path).unwrap_err().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(e.contains("'sigma.npy': value at row 2, column 3"), "{e}");
    }
}

/// Writes a little-endian float32 `.npy` array (C order) atomically.
pub fn write_npy_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape_text = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.div_ceil(64) * 64 - unpadded));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 4 * data.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    super::write_atomic(path, &bytes)
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn written_arrays_read_back() {
        let dir = std::env::temp_dir().join(format!("npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for shape in [vec![3], vec![2, 3], vec![1, 2, 1, 3]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
            let path = dir.join("a.npy");
            write_npy_f32(&path, &shape, &data).unwrap();
            let back = read_npy(&path).unwrap();
            assert_eq!(back.shape, shape);
            assert_eq!(
                back.data,
                data.iter().map(|&v| v as f64).collect::<Vec<_>>()
            );
            let len = std::fs::metadata(&path).unwrap().len() as usize;
            assert_eq!((len - 4 * n) % 64, 0, "header padded to 64 bytes");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
