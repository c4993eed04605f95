//! The training set as the trainer's real data: every image decoded once and kept as 8-bit
//! values, batches drawn uniformly with replacement from the training stream, optionally with
//! x-flipped copies (`--mirror`), scaled to [−1, 1] as the reference does (v / 127.5 − 1), and
//! for conditional training with their one-hot class labels.

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
    /// Each image's class, and the number of classes, for conditional training.
    labels: Option<(Vec<u32>, usize)>,
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
            labels: None,
        })
    }

    /// The set with its images' class labels (`dataset.json`), for conditional training: the
    /// classes are 0…K−1 with K one more than the largest label.
    pub fn with_labels(mut self, dataset: &ImageDataset) -> Result<Self> {
        let Some(by_name) = dataset.labels()? else {
            return Err(Error::in_file(
                dataset.path(),
                "has no class labels (dataset.json \"labels\"), which conditional training \
                 (`cond`) needs",
            ));
        };
        let labels: Vec<u32> = dataset
            .names()
            .iter()
            .map(|name| {
                by_name
                    .get(name)
                    .copied()
                    .ok_or_else(|| Error::in_file(dataset.path(), format!("no label for {name}")))
            })
            .collect::<Result<_>>()?;
        let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
        self.labels = Some((labels, classes));
        Ok(self)
    }

    /// Classes of a labelled set (0 without labels).
    pub fn classes(&self) -> usize {
        self.labels.as_ref().map_or(0, |(_, k)| *k)
    }

    /// One-hot labels [k, classes] of images `indices` (mirrored copies share their image's).
    fn one_hot(&self, indices: &[usize]) -> Result<Option<Tensor>> {
        let Some((labels, classes)) = &self.labels else {
            return Ok(None);
        };
        let mut data = vec![0f32; indices.len() * classes];
        for (row, &index) in indices.iter().enumerate() {
            data[row * classes + labels[index % self.n] as usize] = 1.0;
        }
        Ok(Some(Tensor::from_vec(
            data,
            (indices.len(), *classes),
            &self.device,
        )?))
    }

    fn draw(&self, rng: &mut ChaCha8Rng, batch: usize) -> Vec<usize> {
        let copies = if self.mirror { 2 } else { 1 };
        (0..batch)
            .map(|_| rng.random_range(0..self.n * copies))
            .collect()
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
        let indices = self.draw(rng, batch);
        self.images(&indices)
    }

    fn sample_labelled(
        &mut self,
        rng: &mut ChaCha8Rng,
        batch: usize,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let indices = self.draw(rng, batch);
        Ok((self.images(&indices)?, self.one_hot(&indices)?))
    }

    /// The labels of random training images, as the reference draws `gen_c`.
    fn sample_labels(&mut self, rng: &mut ChaCha8Rng, n: usize) -> Result<Option<Tensor>> {
        if self.labels.is_none() {
            return Ok(None);
        }
        let indices = self.draw(rng, n);
        self.one_hot(&indices)
    }
}
