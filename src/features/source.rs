//! Where images come from when features are asked for: a dataset, an array of images, a
//! pretrained generator, or features computed before.

use super::{array_features, dataset_features, extract, quantise_generated, read_features};
use super::{ContentKey, Extractor, ExtractorKind, FeatureCache, Features};
use crate::dataset::{ImageDataset, Resize};
use crate::io::{read_npy, NpyArray};
use crate::stylegan2::sampling::{classes_in_turn, load_generator, seed_latents};
use crate::stylegan2::NoiseMode;
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};

/// Images read at a time while hashing a dataset for the cache key.
const KEY_CHUNK: usize = 256;

/// A set of images to embed, or their features.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// An image folder or a dataset zip.
    Data(PathBuf),
    /// A `.npy` of images [N, C, H, W] in [0, 1].
    Images(PathBuf),
    /// `n` samples of a checkpoint's `G_ema`, its layer outputs clamped at `conv_clamp`:
    /// latents of seeds 0…n−1 (as `whichgan generate`; a conditional G's classes in turn), ψ =
    /// 1, constant noise, quantised to 8 bits as the official metrics do.
    Generator {
        checkpoint: PathBuf,
        n: usize,
        conv_clamp: Option<f64>,
    },
    /// A `.npy` of features [N, D] computed before.
    Features(PathBuf),
}

impl ImageSource {
    /// Classifies a path: a folder or `.zip` is a dataset, a `.pt`/`.pth`/`.safetensors` a
    /// generator checkpoint (sampled `n_generated` times, clamped as `conv_clamp` says for
    /// it), a `.npy` images (4-D) or features (2-D).
    pub fn from_path(
        path: &Path,
        n_generated: usize,
        conv_clamp: impl Fn(&Path) -> Result<Option<f64>>,
    ) -> Result<Self> {
        if path.is_dir() {
            return Ok(ImageSource::Data(path.to_owned()));
        }
        match crate::io::extension(path).as_deref() {
            Some("zip") => Ok(ImageSource::Data(path.to_owned())),
            Some("pt" | "pth" | "safetensors" | "pkl") => Ok(ImageSource::Generator {
                checkpoint: path.to_owned(),
                n: n_generated,
                conv_clamp: conv_clamp(path)?,
            }),
            Some("npy") => {
                let shape = read_npy(path)?.shape;
                match shape.len() {
                    4 => Ok(ImageSource::Images(path.to_owned())),
                    2 => Ok(ImageSource::Features(path.to_owned())),
                    r => Err(Error::in_file(
                        path,
                        format!("a {r}-D array: expected images [N, C, H, W] or features [N, D]"),
                    )),
                }
            }
            _ if !path.exists() => Err(Error::in_file(path, "does not exist")),
            _ => Err(Error::in_file(
                path,
                "expected an image folder, a .zip dataset, a .npy of images or features, \
                 or a generator checkpoint (.pt, .pth, .safetensors, .pkl)",
            )),
        }
    }

    /// The path it was given as.
    pub fn path(&self) -> &Path {
        match self {
            ImageSource::Data(p) | ImageSource::Images(p) | ImageSource::Features(p) => p,
            ImageSource::Generator { checkpoint, .. } => checkpoint,
        }
    }
}

/// How features are computed: one extractor, its preprocessing options, and the cache.
pub struct Extraction {
    pub extractor: Extractor,
    /// Content hash of the extractor's weights file (empty without one).
    weights_key: String,
    pub resize: Resize,
    pub skip_bad: bool,
    pub batch: usize,
    pub device: Device,
    pub cache: Option<FeatureCache>,
}

impl Extraction {
    /// Loads the extractor from its weights file (none for the pixel embedding).
    pub fn new(kind: ExtractorKind, weights: Option<&Path>, device: &Device) -> Result<Self> {
        let (extractor, weights_key) = match (kind.has_weights(), weights) {
            (true, Some(path)) => {
                let extractor = Extractor::load(kind, path, device)?;
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                (extractor, ContentKey::new().part(&bytes).finish())
            }
            (false, None) => (Extractor::Pixels, String::new()),
            (true, None) => {
                return Err(Error::invalid(format!(
                    "the {} network needs its weights file",
                    kind.name()
                )))
            }
            (false, Some(path)) => {
                return Err(Error::in_file(
                    path,
                    format!("the {} embedding takes no weights", kind.name()),
                ))
            }
        };
        Ok(Extraction {
            extractor,
            weights_key,
            resize: Resize::None,
            skip_bad: false,
            batch: 8,
            device: device.clone(),
            cache: None,
        })
    }

    /// Features of `source` (from the cache when present); the flag says whether they were.
    pub fn features(&self, source: &ImageSource, bar: &ProgressBar) -> Result<(Features, bool)> {
        let kind = self.extractor.kind();
        if let ImageSource::Features(path) = source {
            return Ok((features_file(path, kind)?, false));
        }
        let key = match &self.cache {
            Some(cache) => {
                let key = self.key(source)?;
                if let Some(hit) = cache.get(&key).filter(|hit| hit.dim == kind.dim()) {
                    return Ok((hit, true));
                }
                Some(key)
            }
            None => None,
        };
        let features = match source {
            ImageSource::Data(path) => {
                let data = ImageDataset::open(path)?;
                bar.set_length(data.len() as u64);
                dataset_features(
                    &self.extractor,
                    &data,
                    self.resize,
                    self.skip_bad,
                    self.batch,
                    &self.device,
                    bar,
                )?
            }
            ImageSource::Images(path) => {
                let array = read_npy(path)?;
                let images = image_tensor(path, array, &self.device)?;
                bar.set_length(images.dim(0)? as u64);
                array_features(&self.extractor, &images, self.batch, bar)?
            }
            ImageSource::Generator {
                checkpoint,
                n,
                conv_clamp,
            } => {
                bar.set_length(*n as u64);
                self.generator_features(checkpoint, *n, *conv_clamp, bar)?
            }
            ImageSource::Features(_) => unreachable!("returned above"),
        };
        if let (Some(cache), Some(key)) = (&self.cache, key) {
            cache.put(&key, &features)?;
        }
        Ok((features, false))
    }

    /// The cache key: extractor, weights, preprocessing and the source's bytes.
    fn key(&self, source: &ImageSource) -> Result<String> {
        // The format number changes when what a cached entry holds changes (2: the skipped
        // images' names; generators scored with their run's conv_clamp), retiring older ones.
        let settings = format!(
            "format 2 {} {:?} skip_bad={}",
            self.extractor.kind().name(),
            self.resize,
            self.skip_bad
        );
        let mut key = ContentKey::new();
        key.part(settings.as_bytes())
            .part(self.weights_key.as_bytes());
        match source {
            ImageSource::Data(path) => {
                let data = ImageDataset::open(path)?;
                // In chunks, so that a large dataset is never in memory at once.
                for start in (0..data.len()).step_by(KEY_CHUNK) {
                    let range = start..(start + KEY_CHUNK).min(data.len());
                    let names = &data.names()[range.clone()];
                    for (name, bytes) in names.iter().zip(data.read_raw(range)?) {
                        key.part(name.as_bytes()).part(&bytes);
                    }
                }
            }
            ImageSource::Images(path) | ImageSource::Features(path) => {
                key.part(&std::fs::read(path).map_err(|e| Error::io(path, e))?);
            }
            ImageSource::Generator {
                checkpoint,
                n,
                conv_clamp,
            } => {
                let sampling = format!("G_ema seeds 0..{n} psi 1 noise const clamp {conv_clamp:?}");
                key.part(sampling.as_bytes());
                key.part(&std::fs::read(checkpoint).map_err(|e| Error::io(checkpoint, e))?);
            }
        }
        Ok(key.finish())
    }

    fn generator_features(
        &self,
        checkpoint: &Path,
        n: usize,
        conv_clamp: Option<f64>,
        bar: &ProgressBar,
    ) -> Result<Features> {
        let g = load_generator(checkpoint, "G_ema", conv_clamp, &self.device)?;
        let z_dim = g.mapping.z_dim;
        let labels = classes_in_turn(&g, n, &self.device)?;
        let (rows, data) = extract(&self.extractor, n, self.batch, bar, |start, len| {
            let seeds: Vec<u32> = (start as u32..(start + len) as u32).collect();
            let z = seed_latents(&seeds, z_dim, &self.device)?;
            let c = labels
                .as_ref()
                .map(|c| c.narrow(0, start, len))
                .transpose()?;
            let images = g.forward_labelled(&z, c.as_ref(), 1.0, NoiseMode::Const)?;
            Ok(Some(quantise_generated(&images)?))
        })?;
        Ok(Features {
            n: rows,
            dim: self.extractor.kind().dim(),
            data,
            skipped: Vec::new(),
        })
    }
}

/// A features file of `kind`'s dimension.
fn features_file(path: &Path, kind: ExtractorKind) -> Result<Features> {
    let f = read_features(path)?;
    if f.dim != kind.dim() {
        return Err(Error::in_file(
            path,
            format!(
                "features of dimension {}, expected {} for {}",
                f.dim,
                kind.dim(),
                kind.name()
            ),
        ));
    }
    Ok(f)
}

/// Images [N, C, H, W] in [0, 1] from a `.npy`.
fn image_tensor(path: &Path, array: NpyArray, device: &Device) -> Result<Tensor> {
    if array.shape.len() != 4 || array.shape[0] == 0 {
        return Err(Error::in_file(
            path,
            format!("expected images [N, C, H, W], got shape {:?}", array.shape),
        ));
    }
    if let Some(v) = array.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(Error::in_file(
            path,
            format!("image values must lie in [0, 1] (found {v}); generator output in [-1, 1] needs (x + 1) / 2"),
        ));
    }
    let data: Vec<f32> = array.data.iter().map(|&v| v as f32).collect();
    Ok(Tensor::from_vec(data, array.shape, device)?)
}
