//! The training set as the trainer's real data: every image decoded once and kept as 8-bit
//! values, batches drawn uniformly with replacement from the training stream, optionally with
//! x-flipped copies (`--mirror`), scaled to [−1, 1] as the reference does (v / 127.5 − 1).

use crate::dataset::{ImageDataset, Resize};
use crate::train::RealData;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Images decoded per read while loading.
const LOAD_CHUNK: usize = 256;

pub struct TrainingSet {
    /// [n, 3, size, size] values 0…255.
    pixels: Vec<u8>,
    n: usize,
    size: usize,
    mirror: bool,
    device: Device,
}

impl TrainingSet {
    /// Decodes every image of `dataset` (square, all one size); `progress` is called with the
    /// number decoded so far.
    pub fn load(
        dataset: &ImageDataset,
        mirror: bool,
        device: &Device,
        mut progress: impl FnMut(usize),
    ) -> Result<Self> {
        let (w, h) = dataset.image_size(Resize::None, false)?;
        // D's blocks halve the images down to 4×4, so the smallest trainable side is 8.
        if w != h || !w.is_power_of_two() || w < 8 {
            return Err(Error::in_file(
                dataset.path(),
                format!(
                    "images are {w}×{h}; training needs square images with a power-of-two \
                     side of at least 8 (whichgan dataset pack --resize R makes them)"
                ),
            ));
        }
        let mut pixels = Vec::with_capacity(dataset.len() * 3 * (w * h) as usize);
        for start in (0..dataset.len()).step_by(LOAD_CHUNK) {
            let end = (start + LOAD_CHUNK).min(dataset.len());
            let batch = dataset.load(start..end, Resize::None, (w, h), false)?;
            pixels.extend(batch.data.iter().map(|&v| (v * 255.0).round() as u8));
            progress(end);
        }
        Ok(TrainingSet {
            n: dataset.len(),
            pixels,
            size: w as usize,
            mirror,
            device: device.clone(),
        })
    }

    /// Images in the set (without mirrored copies).
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The side of the (square) images.
    pub fn resolution(&self) -> usize {
        self.size
    }

    /// Images `indices` as [k, 3, size, size] in [−1, 1] (indices ≥ len are the mirrored
    /// copies).
    pub fn images(&self, indices: &[usize]) -> Result<Tensor> {
        let plane = self.size * self.size;
        let mut out = Vec::with_capacity(indices.len() * 3 * plane);
        for &index in indices {
            let (i, flip) = (index % self.n, index >= self.n);
            let image = &self.pixels[i * 3 * plane..(i + 1) * 3 * plane];
            for row in image.chunks_exact(self.size) {
                let scale = |v: &u8| f32::from(*v) / 127.5 - 1.0;
                if flip {
                    out.extend(row.iter().rev().map(scale));
                } else {
                    out.extend(row.iter().map(scale));
                }
            }
        }
        let shape = (indices.len(), 3, self.size, self.size);
        Ok(Tensor::from_vec(out, shape, &self.device)?)
    }
}

impl RealData for TrainingSet {
    fn sample(&mut self, rng: &mut ChaCha8Rng, batch: usize) -> Result<Tensor> {
        let copies = if self.mirror { 2 } else { 1 };
        let indices: Vec<usize> = (0..batch)
            .map(|_| rng.random_range(0..self.n * copies))
            .collect();
        self.images(&indices)
    }
}
