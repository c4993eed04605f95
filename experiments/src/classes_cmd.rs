//! `whichgan classes fit|cover`: class coverage of generated images, the study's Flowers
//! protocol.

use crate::features_cmd::{ExtractionArgs, ExtractorArg};
use crate::outputs::check_output_files;
use crate::report::Report;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use whichgan::classes::{cover, fit_on_dataset, ClassProbe, FitOptions};
use whichgan::features::{ExtractorKind, ImageSource};
use whichgan::io::write_atomic;
use whichgan::run::generator::conv_clamp;
use whichgan::{Error, Result};

#[derive(Args)]
pub struct ClassesArgs {
    #[command(subcommand)]
    what: ClassesWhat,
}

#[derive(Subcommand)]
enum ClassesWhat {
    /// Fit a linear softmax probe on a labelled dataset's features; prints its held-out accuracy.
    #[command(after_help = "Examples:\n  \
        whichgan classes fit --data flowers-256.zip --extractor inception \\\n      \
        --weights pt_inception.pth --out flowers-probe.safetensors\n  \
        whichgan dataset synth --images 2000 --classes 10 --resolution 32 --out shapes.zip\n  \
        whichgan classes fit --data shapes.zip --extractor pixels --out shapes-probe.safetensors\n\n\
        Labels come from the dataset's dataset.json (`dataset pack --labels-from-folders` \
        writes them). Features are standardised; the probe is fitted by full-batch Adam on the \
        cross-entropy, deterministically; --holdout of the images (drawn with --seed) measure \
        its accuracy, stored with it.")]
    Fit {
        /// A labelled image folder or dataset .zip.
        #[arg(long)]
        data: PathBuf,
        /// The features the probe classifies.
        #[arg(long, value_enum)]
        extractor: ExtractorArg,
        /// The extractor's weights (none for pixels).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Share of the images held out to measure the accuracy.
        #[arg(long, default_value_t = 0.2)]
        holdout: f64,
        /// Seed of the held-out draw.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The probe (.safetensors).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        common: ExtractionArgs,
    },
    /// Count the classes a generator (or a set of images) covers: classes with ≥ --min images.
    #[command(after_help = "Examples:\n  \
        whichgan classes cover --probe flowers-probe.safetensors --weights pt_inception.pth \\\n      \
        --ckpt runs/flowers/network-snapshot-001000.safetensors --out classes.csv\n  \
        whichgan classes cover --probe shapes-probe.safetensors --images samples.npy --min 5 --out classes.csv\n\n\
        A checkpoint's G_ema draws --n images (seeds 0…n−1, ψ = 1, 8-bit quantised, as the \
        metrics do). The per-class histogram goes to --out (CSV: class,count).")]
    Cover {
        /// A probe written by `classes fit`.
        #[arg(long)]
        probe: PathBuf,
        /// A generator checkpoint to sample.
        #[arg(long, conflicts_with_all = ["images", "data"], required_unless_present_any = ["images", "data"])]
        ckpt: Option<PathBuf>,
        /// Images [N, C, H, W] in [0, 1] as .npy.
        #[arg(long, conflicts_with = "data")]
        images: Option<PathBuf>,
        /// An image folder or dataset .zip.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Images drawn from --ckpt.
        #[arg(long, default_value_t = 10_000)]
        n: usize,
        /// A class counts as covered with at least this many images.
        #[arg(long, default_value_t = 10)]
        min: usize,
        /// The probe's extractor weights (none for pixels).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// The per-class histogram (.csv).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        common: ExtractionArgs,
    },
}

pub fn run(args: ClassesArgs) -> Result<()> {
    match args.what {
        ClassesWhat::Fit {
            data,
            extractor,
            weights,
            holdout,
            seed,
            out,
            common,
        } => {
            check_output_files(&[("--out", &out)], &[("--data", &data)])?;
            if !(0.0..1.0).contains(&holdout) {
                return Err(Error::invalid(format!(
                    "--holdout must lie in [0, 1), got {holdout}"
                )));
            }
            let kind = ExtractorKind::from(extractor);
            let extraction = common.extraction(kind, weights.as_deref())?;
            let options = FitOptions {
                holdout,
                seed,
                ..FitOptions::default()
            };
            let probe = fit_on_dataset(&extraction, &data, &options)?;
            probe.save(&out)?;
            let (trained, held) = probe.split();
            Report::new()
                .with("accuracy", probe.accuracy())
                .with("classes", probe.classes())
                .with("trained_on", trained)
                .with("held_out", held)
                .with("extractor", kind.name())
                .with("out", out.display().to_string())
                .print(common.json);
            Ok(())
        }
        ClassesWhat::Cover {
            probe,
            ckpt,
            images,
            data,
            n,
            min,
            weights,
            out,
            common,
        } => {
            let inputs: Vec<(&str, &Path)> = [
                ("--probe", Some(&probe)),
                ("--ckpt", ckpt.as_ref()),
                ("--images", images.as_ref()),
                ("--data", data.as_ref()),
            ]
            .into_iter()
            .filter_map(|(o, p)| Some((o, p?.as_path())))
            .collect();
            check_output_files(&[("--out", &out)], &inputs)?;
            if n == 0 || min == 0 {
                return Err(Error::invalid("--n and --min must be at least 1"));
            }
            let p = ClassProbe::load(&probe)?;
            let extraction = common.extraction(p.extractor(), weights.as_deref())?;
            let source = match (ckpt, images, data) {
                (Some(c), _, _) => ImageSource::Generator {
                    conv_clamp: conv_clamp(&c, None)?,
                    checkpoint: c,
                    n,
                },
                (_, Some(i), _) => ImageSource::Images(i),
                (_, _, Some(d)) => ImageSource::Data(d),
                _ => return Err(Error::invalid("give --ckpt, --images or --data")),
            };
            let coverage = cover(&p, &extraction, &source, min)?;
            let mut csv = String::from("class,count\n");
            for (class, count) in coverage.histogram.iter().enumerate() {
                csv.push_str(&format!("{class},{count}\n"));
            }
            write_atomic(&out, csv.as_bytes())?;
            Report::new()
                .with("classes_covered", coverage.covered)
                .with("classes", p.classes())
                .with("n", coverage.n)
                .with("min_count", coverage.min_count)
                .with("out", out.display().to_string())
                .print(common.json);
            Ok(())
        }
    }
}
