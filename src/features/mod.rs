//! Feature extractors for image metrics: pytorch-fid's FID Inception-v3 (2048-d pool
//! features, for FID and KID), VGG16 fc2 (4096-d, for precision and recall) and a weight-free
//! pixel embedding (256-d, for CPU-sized studies), on any candle device; and the extraction
//! of features from image datasets, arrays and generators, with a cache keyed by content.

mod cache;
pub mod inception;
mod layers;
pub mod pixels;
mod source;
pub mod vgg16;

pub use cache::{ContentKey, FeatureCache};
pub use inception::InceptionV3;
pub use source::{Extraction, ImageSource};
pub use vgg16::Vgg16;

use crate::dataset::{ImageDataset, Resize};
use crate::io::{read_tensor_file, Weights};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use std::path::Path;

/// Which network embeds the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractorKind {
    /// FID Inception-v3, 2048-d.
    Inception,
    /// VGG16 fc2, 4096-d.
    Vgg16,
    /// Images averaged to 8 × 8 and their lowest spatial frequencies, 256-d; no weights.
    Pixels,
}

impl ExtractorKind {
    pub fn name(self) -> &'static str {
        match self {
            ExtractorKind::Inception => "inception",
            ExtractorKind::Vgg16 => "vgg16",
            ExtractorKind::Pixels => "pixels",
        }
    }

    /// Whether the network needs a weights file.
    pub fn has_weights(self) -> bool {
        self != ExtractorKind::Pixels
    }

    pub fn dim(self) -> usize {
        match self {
            ExtractorKind::Inception => inception::DIM,
            ExtractorKind::Vgg16 => vgg16::DIM,
            ExtractorKind::Pixels => pixels::DIM,
        }
    }

    /// The extractor whose features have `dim` columns.
    pub fn from_dim(dim: usize) -> Option<Self> {
        [
            ExtractorKind::Inception,
            ExtractorKind::Vgg16,
            ExtractorKind::Pixels,
        ]
        .into_iter()
        .find(|k| k.dim() == dim)
    }

    /// A tensor every weights file of this network holds (to say what a wrong file is).
    fn first_key(self) -> &'static str {
        match self {
            ExtractorKind::Inception => "Conv2d_1a_3x3.conv.weight",
            ExtractorKind::Vgg16 => "features.0.weight",
            ExtractorKind::Pixels => unreachable!("the pixel embedding has no weights"),
        }
    }
}

impl std::str::FromStr for ExtractorKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "inception" => Ok(ExtractorKind::Inception),
            "vgg16" => Ok(ExtractorKind::Vgg16),
            "pixels" => Ok(ExtractorKind::Pixels),
            other => Err(Error::invalid(format!(
                "unknown extractor '{other}': expected inception, vgg16 or pixels"
            ))),
        }
    }
}

/// A loaded feature extractor.
#[derive(Debug, Clone)]
pub enum Extractor {
    Inception(Box<InceptionV3>),
    Vgg16(Box<Vgg16>),
    Pixels,
}

impl Extractor {
    /// Builds the network from its tensors.
    pub fn from_weights(kind: ExtractorKind, w: &Weights) -> Result<Self> {
        Ok(match kind {
            ExtractorKind::Inception => Extractor::Inception(Box::new(InceptionV3::load(w)?)),
            ExtractorKind::Vgg16 => Extractor::Vgg16(Box::new(Vgg16::load(w)?)),
            ExtractorKind::Pixels => Extractor::Pixels,
        })
    }

    /// Loads a weights file (PyTorch `.pth`/`.pt` in either `torch.save` layout, or
    /// safetensors) with the reference key names.
    pub fn load(kind: ExtractorKind, path: &Path, device: &Device) -> Result<Self> {
        if !kind.has_weights() {
            return Err(Error::in_file(
                path,
                format!("the {} embedding takes no weights", kind.name()),
            ));
        }
        let tensors = read_tensor_file(path, device)?;
        if !tensors.contains_key(kind.first_key()) {
            return Err(Error::in_file(
                path,
                format!(
                    "has no tensor '{}': not {} weights with the reference key names",
                    kind.first_key(),
                    kind.name()
                ),
            ));
        }
        Self::from_weights(kind, &Weights::new(tensors, path.display().to_string()))
    }

    pub fn kind(&self) -> ExtractorKind {
        match self {
            Extractor::Inception(_) => ExtractorKind::Inception,
            Extractor::Vgg16(_) => ExtractorKind::Vgg16,
            Extractor::Pixels => ExtractorKind::Pixels,
        }
    }

    /// Features [N, dim] of images [N, 3, H, W] (or [N, 1, H, W], repeated to RGB) in [0, 1].
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        let (_, c, _, _) = images.dims4()?;
        let images = match c {
            3 => images.clone(),
            1 => images.repeat((1, 3, 1, 1))?,
            _ => {
                return Err(Error::invalid(format!(
                    "images have {c} channels, expected 3 (RGB) or 1 (grey)"
                )))
            }
        };
        // On the CPU, the copies and element-wise kernels between the matrix products run on
        // one thread each; images in parallel keep every core busy.
        let n = images.dim(0)?;
        let threads = rayon::current_num_threads();
        if images.device().is_cpu() && threads > 1 && n > 1 {
            use rayon::prelude::*;
            let chunk = n.div_ceil(threads);
            let parts = (0..n)
                .step_by(chunk)
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|start| self.forward_rgb(&images.narrow(0, start, chunk.min(n - start))?))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Tensor::cat(&parts, 0)?);
        }
        self.forward_rgb(&images)
    }

    fn forward_rgb(&self, images: &Tensor) -> Result<Tensor> {
        match self {
            Extractor::Inception(net) => net.forward(images),
            Extractor::Vgg16(net) => net.forward(images),
            Extractor::Pixels => pixels::embed(images),
        }
    }
}

/// Features of a set of images, row-major [n, dim].
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub n: usize,
    pub dim: usize,
    pub data: Vec<f32>,
    /// Images skipped as unreadable (datasets read with skipping on).
    pub skipped: Vec<String>,
}

impl Features {
    /// As f64 points for the metrics.
    pub fn points(&self) -> Result<crate::Points> {
        crate::Points::new(
            self.n,
            self.dim,
            self.data.iter().map(|&v| v as f64).collect(),
        )
    }
}

/// Features [N, D] stored in a `.npy` file.
pub fn read_features(path: &Path) -> Result<Features> {
    let array = crate::io::read_npy(path)?;
    match array.shape[..] {
        [n, dim] if n > 0 && dim > 0 => Ok(Features {
            n,
            dim,
            data: array.data.iter().map(|&v| v as f32).collect(),
            skipped: Vec::new(),
        }),
        _ => Err(Error::in_file(
            path,
            format!("expected features [N, D], got shape {:?}", array.shape),
        )),
    }
}

/// Runs the extractor over `n` images produced batch by batch by `batch_images(start, len)`.
fn extract(
    extractor: &Extractor,
    n: usize,
    batch: usize,
    bar: &ProgressBar,
    mut batch_images: impl FnMut(usize, usize) -> Result<Option<Tensor>>,
) -> Result<(usize, Vec<f32>)> {
    if batch == 0 {
        return Err(Error::invalid("batch size must be at least 1"));
    }
    let mut data = Vec::new();
    let mut rows = 0;
    for start in (0..n).step_by(batch) {
        let len = batch.min(n - start);
        if let Some(images) = batch_images(start, len)? {
            let f = extractor.forward(&images)?;
            rows += f.dim(0)?;
            data.extend(f.flatten_all()?.to_vec1::<f32>()?);
        }
        bar.inc(len as u64);
    }
    Ok((rows, data))
}

/// Features of the images of a dataset.
pub fn dataset_features(
    extractor: &Extractor,
    data: &ImageDataset,
    resize: Resize,
    skip_bad: bool,
    batch: usize,
    device: &Device,
    bar: &ProgressBar,
) -> Result<Features> {
    let size = data.image_size(resize, skip_bad)?;
    let mut skipped = Vec::new();
    let (n, values) = extract(extractor, data.len(), batch, bar, |start, len| {
        let b = data.load(start..start + len, resize, size, skip_bad)?;
        skipped.extend(b.skipped);
        if b.n == 0 {
            return Ok(None);
        }
        Ok(Some(Tensor::from_vec(
            b.data,
            (b.n, 3, b.height, b.width),
            device,
        )?))
    })?;
    if n == 0 {
        return Err(Error::in_file(data.path(), "holds no readable image"));
    }
    Ok(Features {
        n,
        dim: extractor.kind().dim(),
        data: values,
        skipped,
    })
}

/// Features of images [N, C, H, W] in [0, 1].
pub fn array_features(
    extractor: &Extractor,
    images: &Tensor,
    batch: usize,
    bar: &ProgressBar,
) -> Result<Features> {
    let n = images.dim(0)?;
    let (rows, data) = extract(extractor, n, batch, bar, |start, len| {
        Ok(Some(images.narrow(0, start, len)?))
    })?;
    Ok(Features {
        n: rows,
        dim: extractor.kind().dim(),
        data,
        skipped: Vec::new(),
    })
}

/// Generator output in [−1, 1] as the 8-bit images the official metrics see, in [0, 1]:
/// x·127.5 + 128 clamped to 0…255 and truncated (the cast to uint8), divided by 255.
pub fn quantise_generated(images: &Tensor) -> Result<Tensor> {
    let bytes = ((images * 127.5)? + 128.0)?.clamp(0.0, 255.0)?.floor()?;
    // A true division (not a product with 1/255), as for decoded dataset images.
    let full = Tensor::new(255f32, images.device())?;
    Ok(bytes.broadcast_div(&full)?)
}
