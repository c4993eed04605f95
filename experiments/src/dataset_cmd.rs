//! `whichgan dataset synth|pack`: datasets in the official zip layout.

use crate::features_cmd::image_bar;
use crate::outputs::check_output_files;
use crate::report::Report;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use whichgan::dataset::{pack, write_synth_counted, Resize, SynthSpec};
use whichgan::{Error, Result};

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    whichgan dataset synth --images 2000 --classes 10 --resolution 32 --out shapes.zip\n  \
    whichgan dataset pack flowers/ flowers-256.zip --resize 256\n  \
    whichgan dataset pack by-class/ labelled.zip --labels-from-folders")]
pub struct DatasetArgs {
    #[command(subcommand)]
    what: DatasetWhat,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum DatasetWhat {
    /// A procedural dataset of coloured shapes with known classes (labels in dataset.json).
    #[command(
        after_help = "Class k is one (shape, colour) pair — disc, square, triangle, ring, cross × \
        8 colours — at a random position, size and tint; image i depends only on (seed, i).\n\n\
        Example:\n  whichgan dataset synth --images 2000 --classes 10 --resolution 32 --out shapes.zip"
    )]
    Synth {
        /// Number of images.
        #[arg(long, default_value_t = 1000)]
        images: usize,
        /// Number of classes (at most 40).
        #[arg(long, default_value_t = 10)]
        classes: usize,
        /// The first of the 40 (shape, colour) classes to draw from (labels still count from
        /// 0): datasets of disjoint classes for transfer studies.
        #[arg(long, default_value_t = 0)]
        first_class: usize,
        /// Image side in pixels: a power of two of at least 8, as training needs.
        #[arg(long, default_value_t = 32)]
        resolution: u32,
        /// Seed of the draws; image i depends only on (seed, i).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output .zip.
        #[arg(long)]
        out: PathBuf,
    },
    /// Pack an image folder (or zip) into a training dataset zip (official dataset_tool layout).
    #[command(after_help = "Examples:\n  \
        whichgan dataset pack flowers/ flowers-256.zip --resize 256\n  \
        whichgan dataset pack by-class/ labelled.zip --labels-from-folders")]
    Pack {
        /// Folder of PNG/JPEG images (searched recursively) or a zip.
        source: PathBuf,
        /// Output .zip.
        out: PathBuf,
        /// Centre-crop each image to a square and resize it to R × R (Lanczos-3).
        #[arg(long, value_name = "R")]
        resize: Option<u32>,
        /// Skip images that cannot be decoded (counted) instead of stopping.
        #[arg(long)]
        skip_bad: bool,
        /// Class labels from the top-level sub-folder of each image (a source with labels in
        /// its dataset.json keeps those instead).
        #[arg(long)]
        labels_from_folders: bool,
    },
}

pub fn run(args: DatasetArgs) -> Result<()> {
    match args.what {
        DatasetWhat::Synth {
            images,
            classes,
            first_class,
            resolution,
            seed,
            out,
        } => {
            // Training builds its networks for power-of-two sides only; a dataset it cannot
            // use is refused here rather than at the start of a training run.
            if !(resolution >= 8 && resolution.is_power_of_two()) {
                return Err(Error::invalid(format!(
                    "--resolution must be a power of two of at least 8 (8, 16, 32, …), \
                     as training needs; got {resolution}"
                )));
            }
            check_output_files(&[("--out", &out)], &[])?;
            let bar = image_bar("synth");
            let n = write_synth_counted(
                &SynthSpec {
                    images,
                    classes,
                    first_class,
                    resolution,
                    seed,
                },
                &out,
                &bar,
            )?;
            bar.finish_and_clear();
            Report::new()
                .with("images", n)
                .with("classes", classes)
                .with("resolution", resolution)
                .with("out", out.display().to_string())
                .print(args.json);
        }
        DatasetWhat::Pack {
            source,
            out,
            resize,
            skip_bad,
            labels_from_folders,
        } => {
            if resize == Some(0) {
                return Err(Error::invalid("--resize must be at least 1"));
            }
            check_output_files(&[("OUT", &out)], &[("SOURCE", &source)])?;
            let resize = resize.map_or(Resize::None, Resize::CenterCrop);
            let bar = image_bar("pack");
            let summary = pack(&source, &out, resize, skip_bad, labels_from_folders, &bar)?;
            bar.finish_and_clear();
            Report::new()
                .with("images", summary.images)
                .with("skipped", summary.skipped)
                .with("resolution", summary.resolution.0)
                .with("classes", summary.classes)
                .with("out", out.display().to_string())
                .print(args.json);
        }
    }
    Ok(())
}
