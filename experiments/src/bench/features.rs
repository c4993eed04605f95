//! `whichgan bench features`: FID Inception features of PNG images against pytorch-fid on
//! PyTorch CPU, same weights; the features are compared too.

use super::{ratio, Bench};
use crate::report::Report;
use std::path::Path;
use std::time::Instant;
use whichgan::Result;

impl Bench {
    pub(super) fn features(
        &self,
        data: &Path,
        n: usize,
        res: usize,
        batch: usize,
    ) -> Result<Report> {
        use whichgan::dataset::Resize;
        use whichgan::features::{Extraction, ExtractorKind, ImageSource};
        // As `whichgan features` runs: images in parallel, one thread per tensor kernel.
        whichgan::runtime::setup(whichgan::runtime::Parallelism::AcrossTasks);
        whichgan::io::create_writable_dir(data)?;
        let weights = data.join("inception-formula.pth");
        if !weights.exists() {
            eprintln!(
                "writing formula Inception weights to {} …",
                weights.display()
            );
            self.python_json(
                "inception_torch.py",
                &["make-weights".as_ref(), weights.as_os_str()],
                false,
            )?;
        }
        let images = data.join(format!("images-{n}x{res}"));
        if !images.exists() {
            eprintln!("writing {n} PNG images to {} …", images.display());
            let (n_arg, res_arg) = (n.to_string(), res.to_string());
            self.python_json(
                "inception_torch.py",
                &[
                    "make-images".as_ref(),
                    images.as_os_str(),
                    "--n".as_ref(),
                    n_arg.as_ref(),
                    "--res".as_ref(),
                    res_arg.as_ref(),
                ],
                false,
            )?;
        }
        let threads = rayon::current_num_threads();
        let reference_out = data.join("inception-reference.npy");
        let threads_arg = threads.to_string();
        let reference = self.python_json(
            "inception_torch.py",
            &[
                "time".as_ref(),
                images.as_os_str(),
                "--weights".as_ref(),
                weights.as_os_str(),
                "--out".as_ref(),
                reference_out.as_os_str(),
                "--threads".as_ref(),
                threads_arg.as_ref(),
            ],
            true,
        )?;
        let torch_s = reference["seconds"].as_f64().unwrap_or(f64::NAN);
        let mut extraction = Extraction::new(
            ExtractorKind::Inception,
            Some(&weights),
            &candle_core::Device::Cpu,
        )?;
        extraction.batch = batch;
        let source = ImageSource::Data(images.clone());
        let bar = indicatif::ProgressBar::hidden();
        // Warm-up on one batch, as the reference does.
        let dataset = whichgan::dataset::ImageDataset::open(&images)?;
        let size = (res as u32, res as u32);
        let first = dataset.load(0..batch.min(n), Resize::None, size, false)?;
        let shape = (first.n, 3, first.height, first.width);
        let first = candle_core::Tensor::from_vec(first.data, shape, &candle_core::Device::Cpu)?;
        extraction.extractor.forward(&first)?;
        let start = Instant::now();
        let (ours, _) = extraction.features(&source, &bar)?;
        let ours_s = start.elapsed().as_secs_f64();
        let reference = whichgan::features::read_features(&reference_out)?;
        let scale = reference.data.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
        let max_diff = ours
            .data
            .iter()
            .zip(&reference.data)
            .map(|(a, b)| (a - b).abs() as f64)
            .fold(0.0, f64::max);
        Ok(Report::new()
            .with(
                "bench",
                format!("FID Inception features of {n} PNGs {res}x{res}, CPU, {threads} threads"),
            )
            .with("ours_s", ours_s)
            .with("pytorch_fid_s", torch_s)
            .with("speedup_vs_pytorch_fid", ratio(torch_s, ours_s))
            .with("ours_images_per_s", n as f64 / ours_s)
            .with("max_abs_diff_over_max_abs", max_diff / scale))
    }
}
