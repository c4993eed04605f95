//! Images written as PNG grids.

use crate::{Error, Result};
use std::path::Path;

/// Writes images [N, C, H, W] (C = 1 or 3) with values in [−1, 1] as one PNG grid, ⌈√N⌉
/// columns, converted as the official `generate.py` does: `x · 127.5 + 128`, clamped to
/// [0, 255], truncated to a byte. Written atomically.
pub fn write_png_grid(path: &Path, shape: [usize; 4], data: &[f32]) -> Result<()> {
    let [n, c, h, w] = shape;
    if !(c == 1 || c == 3) || n == 0 || data.len() != n * c * h * w {
        return Err(Error::in_file(
            path,
            format!("cannot write {n} images of {c} channels as PNG (1 or 3 channels)"),
        ));
    }
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let mut canvas = image::RgbImage::new((cols * w) as u32, (rows * h) as u32);
    for i in 0..n {
        let (gy, gx) = (i / cols * h, i % cols * w);
        for y in 0..h {
            for x in 0..w {
                let value = |ch: usize| {
                    let v = data[((i * c + ch) * h + y) * w + x] * 127.5 + 128.0;
                    v.clamp(0.0, 255.0) as u8
                };
                let px = if c == 3 {
                    [value(0), value(1), value(2)]
                } else {
                    [value(0); 3]
                };
                canvas.put_pixel((gx + x) as u32, (gy + y) as u32, image::Rgb(px));
            }
        }
    }
    let mut bytes = Vec::new();
    canvas
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::in_file(path, format!("cannot encode PNG: {e}")))?;
    super::write_atomic(path, &bytes)
}
