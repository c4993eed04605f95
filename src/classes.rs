//! Class coverage, the study's Flowers protocol: a classifier fitted on a labelled target
//! labels generated images, and a class counts as covered when it gets at least M of N
//! samples (10 of 10 000 in the study).
//!
//! The classifier is a linear softmax probe on image features (Inception's at the paper's
//! scale): standardised features, weights fitted by full-batch Adam on the mean cross-entropy
//! with a small L2 penalty, in f64, from zeros — deterministic. A seeded share of the labelled
//! images is held out, and the probe keeps its accuracy on them.

use crate::features::{Extraction, ExtractorKind, Features, ImageSource};
use crate::io::write_atomic;
use crate::{Error, Result};
use faer::Mat;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// How a probe is fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitOptions {
    /// Share of the images held out to measure the accuracy.
    pub holdout: f64,
    /// Seed of the held-out draw.
    pub seed: u64,
    /// Full-batch Adam steps.
    pub iterations: usize,
    /// L2 penalty on the weights.
    pub l2: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            holdout: 0.2,
            seed: 0,
            iterations: 300,
            l2: 1e-4,
        }
    }
}

/// A linear softmax classifier on features of one extractor.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassProbe {
    extractor: ExtractorKind,
    classes: usize,
    dim: usize,
    /// Per-feature mean and scale of the training images.
    mean: Vec<f64>,
    scale: Vec<f64>,
    /// [classes, dim], row-major, on standardised features.
    weight: Vec<f64>,
    bias: Vec<f64>,
    accuracy: f64,
    trained_on: usize,
    held_out: usize,
}

impl ClassProbe {
    /// Fits a probe on `features` (of `extractor`) labelled 0…K−1.
    pub fn fit(
        extractor: ExtractorKind,
        features: &Features,
        labels: &[u32],
        options: &FitOptions,
    ) -> Result<ClassProbe> {
        if labels.len() != features.n {
            return Err(Error::invalid(format!(
                "{} labels for {} images",
                labels.len(),
                features.n
            )));
        }
        if !(0.0..1.0).contains(&options.holdout) {
            return Err(Error::invalid(format!(
                "the held-out share must lie in [0, 1), got {}",
                options.holdout
            )));
        }
        let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
        if classes < 2 {
            return Err(Error::invalid(
                "a class probe needs images of at least two classes",
            ));
        }
        let mut order: Vec<usize> = (0..features.n).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(options.seed));
        let held_out = ((features.n as f64) * options.holdout).round() as usize;
        let (test, train) = order.split_at(held_out.min(features.n - 1));
        let dim = features.dim;
        let row = |i: usize| &features.data[i * dim..(i + 1) * dim];
        let (mut mean, mut scale) = (vec![0.0; dim], vec![0.0; dim]);
        for &i in train {
            for (m, &v) in mean.iter_mut().zip(row(i)) {
                *m += v as f64 / train.len() as f64;
            }
        }
        for &i in train {
            for ((s, m), &v) in scale.iter_mut().zip(&mean).zip(row(i)) {
                *s += (v as f64 - m).powi(2) / train.len() as f64;
            }
        }
        // Constant features get unit scale: they stay 0 after centring.
        for s in &mut scale {
            *s = if *s > 1e-12 { s.sqrt() } else { 1.0 };
        }
        let mut probe = ClassProbe {
            extractor,
            classes,
            dim,
            mean,
            scale,
            weight: vec![0.0; classes * dim],
            bias: vec![0.0; classes],
            accuracy: 0.0,
            trained_on: train.len(),
            held_out: test.len(),
        };
        let x = probe.standardised(features, train);
        let y: Vec<usize> = train.iter().map(|&i| labels[i] as usize).collect();
        probe.descend(&x, &y, options);
        let measured = if test.is_empty() { train } else { test };
        let predicted = probe.predict_rows(&probe.standardised(features, measured));
        let right = measured
            .iter()
            .zip(&predicted)
            .filter(|(&i, &p)| labels[i] == p)
            .count();
        probe.accuracy = right as f64 / measured.len() as f64;
        Ok(probe)
    }

    /// Rows `rows` of `features`, standardised: [rows, dim].
    fn standardised(&self, features: &Features, rows: &[usize]) -> Mat<f64> {
        let d = self.dim;
        Mat::from_fn(rows.len(), d, |r, j| {
            (features.data[rows[r] * d + j] as f64 - self.mean[j]) / self.scale[j]
        })
    }

    /// Logits [rows, classes] of standardised rows.
    fn logits(&self, x: &Mat<f64>) -> Mat<f64> {
        let w = Mat::from_fn(self.dim, self.classes, |j, k| self.weight[k * self.dim + j]);
        let mut z = x * &w;
        for r in 0..z.nrows() {
            for k in 0..self.classes {
                z[(r, k)] += self.bias[k];
            }
        }
        z
    }

    /// Full-batch Adam on the mean cross-entropy + l2/2 · |W|².
    fn descend(&mut self, x: &Mat<f64>, y: &[usize], options: &FitOptions) {
        const LR: f64 = 0.05;
        const BETAS: (f64, f64) = (0.9, 0.999);
        let (n, d, k) = (x.nrows(), self.dim, self.classes);
        let params = k * d + k;
        let (mut m, mut v) = (vec![0.0; params], vec![0.0; params]);
        for step in 1..=options.iterations {
            // Softmax probabilities minus the one-hot labels, over n.
            let mut delta = self.logits(x);
            for r in 0..n {
                let top = (0..k)
                    .map(|c| delta[(r, c)])
                    .fold(f64::NEG_INFINITY, f64::max);
                let mut sum = 0.0;
                for c in 0..k {
                    let e = (delta[(r, c)] - top).exp();
                    delta[(r, c)] = e;
                    sum += e;
                }
                for c in 0..k {
                    delta[(r, c)] =
                        (delta[(r, c)] / sum - f64::from(u8::from(y[r] == c))) / n as f64;
                }
            }
            let grad_w = delta.transpose() * x; // [k, d]
            let mut grad = Vec::with_capacity(params);
            for c in 0..k {
                for j in 0..d {
                    grad.push(grad_w[(c, j)] + options.l2 * self.weight[c * d + j]);
                }
            }
            for c in 0..k {
                grad.push((0..n).map(|r| delta[(r, c)]).sum());
            }
            let (c1, c2) = (
                1.0 - BETAS.0.powi(step as i32),
                1.0 - BETAS.1.powi(step as i32),
            );
            for (i, g) in grad.into_iter().enumerate() {
                m[i] = BETAS.0 * m[i] + (1.0 - BETAS.0) * g;
                v[i] = BETAS.1 * v[i] + (1.0 - BETAS.1) * g * g;
                let change = LR * (m[i] / c1) / ((v[i] / c2).sqrt() + 1e-8);
                if i < k * d {
                    self.weight[i] -= change;
                } else {
                    self.bias[i - k * d] -= change;
                }
            }
        }
    }

    fn predict_rows(&self, x: &Mat<f64>) -> Vec<u32> {
        let z = self.logits(x);
        (0..z.nrows())
            .map(|r| {
                // The first of equal maxima, as argmax conventions go.
                (0..self.classes).fold(0, |best, c| if z[(r, c)] > z[(r, best)] { c } else { best })
                    as u32
            })
            .collect()
    }

    /// The class of every image of `features`.
    pub fn predict(&self, features: &Features) -> Result<Vec<u32>> {
        if features.dim != self.dim {
            return Err(Error::invalid(format!(
                "features of dimension {}, but the probe was fitted on {} features ({})",
                features.dim,
                self.extractor.name(),
                self.dim
            )));
        }
        let rows: Vec<usize> = (0..features.n).collect();
        Ok(self.predict_rows(&self.standardised(features, &rows)))
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Held-out accuracy (on the training images when none were held out).
    pub fn accuracy(&self) -> f64 {
        self.accuracy
    }

    pub fn extractor(&self) -> ExtractorKind {
        self.extractor
    }

    /// (images trained on, images held out).
    pub fn split(&self) -> (usize, usize) {
        (self.trained_on, self.held_out)
    }

    /// Writes the probe as safetensors (f64 tensors; extractor, classes, accuracy and split as
    /// metadata), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = |v: &[f64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let (w, b, mean, scale) = (
            bytes(&self.weight),
            bytes(&self.bias),
            bytes(&self.mean),
            bytes(&self.scale),
        );
        fn view(data: &[u8], shape: Vec<usize>) -> TensorView<'_> {
            TensorView::new(Dtype::F64, shape, data).expect("sizes match their shapes")
        }
        let tensors = vec![
            ("weight", view(&w, vec![self.classes, self.dim])),
            ("bias", view(&b, vec![self.classes])),
            ("mean", view(&mean, vec![self.dim])),
            ("scale", view(&scale, vec![self.dim])),
        ];
        let metadata = HashMap::from([
            ("whichgan".to_owned(), "class-probe".to_owned()),
            ("extractor".to_owned(), self.extractor.name().to_owned()),
            ("accuracy".to_owned(), self.accuracy.to_string()),
            ("trained_on".to_owned(), self.trained_on.to_string()),
            ("held_out".to_owned(), self.held_out.to_string()),
        ]);
        let data = safetensors::serialize(tensors, Some(metadata))
            .map_err(|e| Error::in_file(path, e.to_string()))?;
        write_atomic(path, &data)
    }

    /// Reads a probe [`save`](Self::save) wrote.
    pub fn load(path: &Path) -> Result<ClassProbe> {
        crate::io::check_readable_file(path)?;
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let bad = |what: String| Error::in_file(path, format!("not a class probe: {what}"));
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        if meta.get("whichgan").map(String::as_str) != Some("class-probe") {
            return Err(bad("no class-probe metadata".into()));
        }
        let field = |key: &str| meta.get(key).ok_or_else(|| bad(format!("no '{key}'")));
        let extractor: ExtractorKind = field("extractor")?.parse()?;
        let number = |key: &str| -> Result<f64> {
            field(key)?
                .parse()
                .map_err(|_| bad(format!("'{key}' is not a number")))
        };
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
        let read = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
            let t = tensors
                .tensor(name)
                .map_err(|_| bad(format!("no tensor '{name}'")))?;
            if t.dtype() != Dtype::F64 {
                return Err(bad(format!("'{name}' is not f64")));
            }
            let values = t
                .data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect();
            Ok((t.shape().to_vec(), values))
        };
        let (shape, weight) = read("weight")?;
        let [classes, dim] = shape[..] else {
            return Err(bad(format!("weight of shape {shape:?}")));
        };
        let (bias, mean, scale) = (read("bias")?, read("mean")?, read("scale")?);
        if bias.0 != [classes] || mean.0 != [dim] || scale.0 != [dim] || classes < 2 {
            return Err(bad("tensor shapes do not fit together".into()));
        }
        if dim != extractor.dim() {
            return Err(bad(format!(
                "{dim} features per image, but {} gives {}",
                extractor.name(),
                extractor.dim()
            )));
        }
        Ok(ClassProbe {
            extractor,
            classes,
            dim,
            mean: mean.1,
            scale: scale.1,
            weight,
            bias: bias.1,
            accuracy: number("accuracy")?,
            trained_on: number("trained_on")? as usize,
            held_out: number("held_out")? as usize,
        })
    }
}

/// Fits a probe on a labelled dataset's images, embedded by `extraction`.
pub fn fit_on_dataset(
    extraction: &Extraction,
    data: &Path,
    options: &FitOptions,
) -> Result<ClassProbe> {
    let dataset = crate::dataset::ImageDataset::open(data)?;
    let Some(labels) = dataset.labels()? else {
        return Err(Error::in_file(
            data,
            "has no class labels (dataset.json \"labels\")",
        ));
    };
    let labels: Vec<u32> = dataset
        .names()
        .iter()
        .map(|name| {
            labels
                .get(name)
                .copied()
                .ok_or_else(|| Error::in_file(data, format!("no label for {name}")))
        })
        .collect::<Result<_>>()?;
    let hidden = indicatif::ProgressBar::hidden();
    let (features, _) = extraction.features(&ImageSource::Data(data.to_owned()), &hidden)?;
    ClassProbe::fit(extraction.extractor.kind(), &features, &labels, options)
        .map_err(|e| e.located_in(data))
}

/// The classes a set of images covers: those with at least `min_count` of them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClassCoverage {
    /// Images per class.
    pub histogram: Vec<usize>,
    pub n: usize,
    pub min_count: usize,
    pub covered: usize,
}

impl ClassCoverage {
    /// Counts `predicted` classes (each below `classes`).
    pub fn count(predicted: &[u32], classes: usize, min_count: usize) -> ClassCoverage {
        let mut histogram = vec![0; classes];
        for &c in predicted {
            histogram[c as usize] += 1;
        }
        let covered = histogram.iter().filter(|&&h| h >= min_count).count();
        ClassCoverage {
            histogram,
            n: predicted.len(),
            min_count,
            covered,
        }
    }
}

/// The classes `probe` finds among the images of `source` (embedded as it was fitted).
pub fn cover(
    probe: &ClassProbe,
    extraction: &Extraction,
    source: &ImageSource,
    min_count: usize,
) -> Result<ClassCoverage> {
    if extraction.extractor.kind() != probe.extractor() {
        return Err(Error::invalid(format!(
            "the probe was fitted on {} features, not {}",
            probe.extractor().name(),
            extraction.extractor.kind().name()
        )));
    }
    let hidden = indicatif::ProgressBar::hidden();
    let (features, _) = extraction.features(source, &hidden)?;
    let predicted = probe.predict(&features)?;
    Ok(ClassCoverage::count(&predicted, probe.classes(), min_count))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three well separated classes in the first two of `dim` features (the others 0).
    fn separable(n: usize, dim: usize) -> (Features, Vec<u32>) {
        let centres = [(0.0, 0.0), (5.0, 0.0), (0.0, 5.0)];
        let mut data = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let c = i % 3;
            let jitter = ((i * 7919) % 100) as f32 / 100.0 - 0.5;
            data.push(centres[c].0 + jitter);
            data.push(centres[c].1 - jitter);
            data.extend(std::iter::repeat_n(0.0, dim - 2));
            labels.push(c as u32);
        }
        let f = Features {
            n,
            dim,
            data,
            skipped: Vec::new(),
        };
        (f, labels)
    }

    #[test]
    fn a_probe_separates_separable_classes() {
        let (f, labels) = separable(90, 2);
        let probe =
            ClassProbe::fit(ExtractorKind::Pixels, &f, &labels, &FitOptions::default()).unwrap();
        assert_eq!(probe.accuracy(), 1.0);
        assert_eq!(probe.split(), (72, 18));
        assert_eq!(probe.predict(&f).unwrap(), labels);
        let again =
            ClassProbe::fit(ExtractorKind::Pixels, &f, &labels, &FitOptions::default()).unwrap();
        assert_eq!(probe, again, "fitting is deterministic");
        let wrong = Features {
            n: 1,
            dim: 3,
            data: vec![0.0; 3],
            skipped: Vec::new(),
        };
        assert!(probe.predict(&wrong).is_err());
    }

    #[test]
    fn coverage_counts_classes_with_enough_samples() {
        // Class 0: 9 samples, class 1: 10, class 2: 11, class 3: none.
        let predicted: Vec<u32> = [(0, 9), (1, 10), (2, 11)]
            .iter()
            .flat_map(|&(c, k)| std::iter::repeat_n(c, k))
            .collect();
        let c = ClassCoverage::count(&predicted, 4, 10);
        assert_eq!(c.histogram, [9, 10, 11, 0]);
        assert_eq!((c.covered, c.n), (2, 30));
        assert_eq!(ClassCoverage::count(&predicted, 4, 9).covered, 3);
    }

    #[test]
    fn a_saved_probe_reads_back_equal() {
        let (f, labels) = separable(30, crate::features::pixels::DIM);
        let probe =
            ClassProbe::fit(ExtractorKind::Pixels, &f, &labels, &FitOptions::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.safetensors");
        probe.save(&path).unwrap();
        assert_eq!(ClassProbe::load(&path).unwrap(), probe);
        // The pixel embedding has 256 features: a 2-D probe claiming it is refused on reading.
        let (f, labels) = separable(30, 2);
        ClassProbe::fit(ExtractorKind::Pixels, &f, &labels, &FitOptions::default())
            .unwrap()
            .save(&path)
            .unwrap();
        let e = ClassProbe::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("2 features per image, but pixels gives 256"),
            "{e}"
        );
        std::fs::write(&path, b"not a probe").unwrap();
        assert!(ClassProbe::load(&path)
            .unwrap_err()
            .to_string()
            .contains("not a class probe"));
    }
}
