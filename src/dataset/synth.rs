//! A procedural image dataset with known classes, so that tests and demos need no downloads:
//! class k is one shape in one colour (K ≤ 40 distinct pairs), drawn at a random position and
//! size, with a random tint, on a dark background with faint noise. Image i depends only on
//! (seed, i), so datasets of different sizes share their first images.

use super::writer::DatasetWriter;
use crate::{Error, Result};
use image::{Rgb, RgbImage};
use indicatif::ProgressBar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// The shapes, in class order.
pub const SHAPES: [&str; 5] = ["disc", "square", "triangle", "ring", "cross"];
/// The colours (RGB), in class order.
pub const COLOURS: [[f32; 3]; 8] = [
    [230.0, 40.0, 40.0],
    [40.0, 200.0, 60.0],
    [50.0, 80.0, 235.0],
    [235.0, 220.0, 40.0],
    [40.0, 220.0, 220.0],
    [220.0, 50.0, 220.0],
    [240.0, 240.0, 240.0],
    [240.0, 140.0, 30.0],
];
/// The most classes with distinct (shape, colour).
pub const MAX_CLASSES: usize = SHAPES.len() * COLOURS.len();

/// Options of a synthetic dataset.
#[derive(Debug, Clone, Copy)]
pub struct SynthSpec {
    pub images: usize,
    /// Classes `first_class`…`first_class + classes − 1`, labelled from 0.
    pub classes: usize,
    pub first_class: usize,
    pub resolution: u32,
    pub seed: u64,
}

/// (shape, colour) of class k: consecutive classes differ in both.
pub fn class_look(k: usize) -> (usize, usize) {
    let (row, shape) = (k / SHAPES.len(), k % SHAPES.len());
    (shape, (row + shape) % COLOURS.len())
}

/// Whether the point (x, y) (centred, in units of the shape's radius) is inside the shape.
fn inside(shape: usize, x: f32, y: f32) -> bool {
    match shape {
        0 => x * x + y * y <= 1.0,
        1 => x.abs() <= 0.8 && y.abs() <= 0.8,
        // Apex up at y = −1, base at y = 0.8.
        2 => y <= 0.8 && y >= -1.0 + 2.0 * x.abs(),
        3 => (0.45..=1.0).contains(&(x * x + y * y)),
        _ => (x.abs() <= 0.3 && y.abs() <= 1.0) || (y.abs() <= 0.3 && x.abs() <= 1.0),
    }
}

/// Image `index` of the dataset and its class.
pub fn synth_image(spec: &SynthSpec, index: usize) -> (RgbImage, u32) {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    rng.set_stream(index as u64);
    let class = rng.random_range(0..spec.classes);
    let (shape, colour) = class_look(spec.first_class + class);
    let r = spec.resolution as f32;
    let radius = r * rng.random_range(0.18..0.32);
    let cx = rng.random_range(radius..r - radius);
    let cy = rng.random_range(radius..r - radius);
    let tint: f32 = rng.random_range(0.8..1.0);
    let background: f32 = rng.random_range(10.0..40.0);
    let mut img = RgbImage::new(spec.resolution, spec.resolution);
    for (px, py, pixel) in img.enumerate_pixels_mut() {
        let noise: f32 = rng.random_range(-6.0..6.0);
        let (x, y) = (
            (px as f32 + 0.5 - cx) / radius,
            (py as f32 + 0.5 - cy) / radius,
        );
        let value = |c: usize| {
            let v = if inside(shape, x, y) {
                COLOURS[colour][c] * tint
            } else {
                background
            };
            (v + noise).clamp(0.0, 255.0) as u8
        };
        *pixel = Rgb([value(0), value(1), value(2)]);
    }
    (img, class as u32)
}

/// Writes the dataset as a zip in the official layout, with class labels.
pub fn write_synth(spec: &SynthSpec, out: &Path) -> Result<usize> {
    write_synth_counted(spec, out, &ProgressBar::hidden())
}

/// [`write_synth`], counting the images on `bar`.
pub fn write_synth_counted(spec: &SynthSpec, out: &Path, bar: &ProgressBar) -> Result<usize> {
    let most = MAX_CLASSES.saturating_sub(spec.first_class);
    if spec.classes == 0 || spec.classes > most {
        return Err(Error::invalid(format!(
            "classes must lie in 1…{most} from class {} (there are {MAX_CLASSES}), got {}",
            spec.first_class, spec.classes
        )));
    }
    if spec.images == 0 || spec.resolution < 8 {
        return Err(Error::invalid(format!(
            "need at least one image of at least 8×8 pixels (got {} of {}×{})",
            spec.images, spec.resolution, spec.resolution
        )));
    }
    let mut writer = DatasetWriter::create(out)?;
    bar.set_length(spec.images as u64);
    for i in 0..spec.images {
        let (img, class) = synth_image(spec, i);
        writer.push(&img, Some(class))?;
        bar.inc(1);
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_have_distinct_looks() {
        let looks: std::collections::HashSet<_> = (0..MAX_CLASSES).map(class_look).collect();
        assert_eq!(looks.len(), MAX_CLASSES);
    }

    #[test]
    fn images_depend_only_on_seed_and_index() {
        let a = SynthSpec {
            images: 10,
            classes: 4,
            first_class: 0,
            resolution: 16,
            seed: 3,
        };
        let b = SynthSpec { images: 99, ..a };
        assert_eq!(synth_image(&a, 7), synth_image(&b, 7));
        assert_ne!(synth_image(&a, 7).0, synth_image(&a, 8).0);
    }
}
