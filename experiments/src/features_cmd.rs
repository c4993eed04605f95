//! `whichgan features` and `whichgan select`: image features, and the checkpoint-selection
//! recipe on top of them.

use crate::device::parse_device;
use crate::metrics_cmd::KidArgs;
use crate::outputs::check_output_files;
use crate::report::Report;
use clap::builder::PossibleValuesParser;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::path::{Path, PathBuf};
use whichgan::dataset::Resize;
use whichgan::features::{
    read_features, Extraction, ExtractorKind, FeatureCache, Features, ImageSource,
};
use whichgan::io::{write_atomic, write_csv, write_npy_f32};
use whichgan::run::generator::conv_clamp;
use whichgan::select::{ranking, score, FeatureSets, Metric, SourceScores};
use whichgan::{Error, Result};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ExtractorArg {
    Inception,
    Vgg16,
    Pixels,
}

impl From<ExtractorArg> for ExtractorKind {
    fn from(a: ExtractorArg) -> Self {
        match a {
            ExtractorArg::Inception => ExtractorKind::Inception,
            ExtractorArg::Vgg16 => ExtractorKind::Vgg16,
            ExtractorArg::Pixels => ExtractorKind::Pixels,
        }
    }
}

/// How images are read and embedded; shared by the commands that embed images.
#[derive(Args)]
pub(crate) struct ExtractionArgs {
    /// Centre-crop every dataset image to a square and resize it to R × R (Lanczos), as the
    /// official dataset_tool's --transform=center-crop; default: all images must share a size.
    #[arg(long, value_name = "R")]
    resize: Option<u32>,
    /// Skip images that cannot be decoded (they are counted) instead of stopping.
    #[arg(long)]
    skip_bad: bool,
    /// Images per forward pass (on the CPU split over the cores).
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Folder of cached features (default: $XDG_CACHE_HOME/whichgan/features or
    /// ~/.cache/whichgan/features).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Neither read nor write cached features.
    #[arg(long)]
    no_cache: bool,
    /// cpu (cuda:N in a CUDA build)
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long)]
    pub(crate) json: bool,
}

impl ExtractionArgs {
    pub(crate) fn extraction(
        &self,
        kind: ExtractorKind,
        weights: Option<&Path>,
    ) -> Result<Extraction> {
        if self.batch == 0 {
            return Err(Error::invalid("--batch must be at least 1"));
        }
        if self.resize == Some(0) {
            return Err(Error::invalid("--resize must be at least 1"));
        }
        let device = parse_device(&self.device)?;
        let mut e = Extraction::new(kind, weights, &device)?;
        e.resize = self.resize.map_or(Resize::None, Resize::CenterCrop);
        e.skip_bad = self.skip_bad;
        e.batch = self.batch;
        e.cache = (!self.no_cache).then(|| FeatureCache::new(&self.cache_dir()));
        Ok(e)
    }

    fn cache_dir(&self) -> PathBuf {
        if let Some(dir) = &self.cache {
            return dir.clone();
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("whichgan").join("features")
    }
}

/// A progress bar over images on stderr (drawn only on a terminal).
pub(crate) fn image_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>16} {bar:30} {pos}/{len} images  [{elapsed} < {eta}]",
        )
        .expect("valid template"),
    );
    bar.set_prefix(label.to_owned());
    bar
}

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    whichgan features --extractor inception --weights pt_inception-2015-12-05-6726825d.pth \\\n      \
    --data flowers.zip --out flowers_inception.npy\n  \
    whichgan features --extractor vgg16 --weights vgg16.safetensors --images samples.npy --out vgg.npy\n  \
    whichgan features --extractor pixels --data shapes.zip --out pixels.npy\n\n\
    pixels: each image averaged to 8 × 8 per channel plus the magnitudes of its 8 × 8 lowest \
    spatial frequencies (256-d, no weights; sides must be multiples of 8), the feature space of \
    CPU-sized studies where no pretrained network is at hand.")]
pub struct FeaturesArgs {
    /// The network: FID Inception-v3 (2048-d), VGG16 fc2 (4096-d) or the weight-free pixel
    /// embedding (256-d).
    #[arg(long, value_enum)]
    extractor: ExtractorArg,
    /// Its weights (.pth/.pt or .safetensors with the reference key names; none for pixels).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// An image folder (searched recursively) or a dataset .zip.
    #[arg(long, conflicts_with = "images", required_unless_present = "images")]
    data: Option<PathBuf>,
    /// Images [N, C, H, W] in [0, 1] as .npy.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Output features [N, D] (.npy, float32).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    common: ExtractionArgs,
}

pub fn features(args: FeaturesArgs) -> Result<()> {
    if whichgan::io::extension(&args.out).as_deref() != Some("npy") {
        return Err(Error::in_file(&args.out, "the output must be a .npy file"));
    }
    let inputs: Vec<(&str, &Path)> = [("--data", &args.data), ("--images", &args.images)]
        .into_iter()
        .filter_map(|(option, path)| Some((option, path.as_deref()?)))
        .collect();
    check_output_files(&[("--out", &args.out)], &inputs)?;
    let kind = ExtractorKind::from(args.extractor);
    let source = match (&args.data, &args.images) {
        (Some(d), _) => ImageSource::Data(d.clone()),
        (_, Some(i)) => ImageSource::Images(i.clone()),
        _ => return Err(Error::invalid("give --data or --images")),
    };
    let extraction = args.common.extraction(kind, args.weights.as_deref())?;
    let bar = image_bar(kind.name());
    let start = std::time::Instant::now();
    let (f, cached) = extraction.features(&source, &bar)?;
    bar.finish_and_clear();
    write_npy_f32(&args.out, &[f.n, f.dim], &f.data)?;
    Report::new()
        .with("images", f.n)
        .with("dim", f.dim)
        .with("skipped", f.skipped.len())
        .with("cached", cached)
        .with("seconds", start.elapsed().as_secs_f64())
        .with("out", args.out.display().to_string())
        .print(args.common.json);
    Ok(())
}

#[derive(Args)]
#[command(after_help = "Setting 1 (real source images vs the target):\n  \
    whichgan select --target flowers.zip --source imagenet=imagenet_10k.zip --source ffhq=ffhq_10k/ \\\n      \
    --inception pt_inception-2015-12-05-6726825d.pth --vgg16 vgg16.safetensors --out select/\n\
Setting 2 (samples of each pretrained generator vs the target):\n  \
    whichgan select --target flowers.zip --source imagenet=imagenet-256-state.pt \\\n      \
    --source ffhq=ffhq-256.safetensors --n 5000 --inception pt_inception.pth --out select/\n\
Precomputed features: a .npy [N, 2048] counts as Inception features, [N, 4096] as VGG16;\n\
give a name twice (or --target twice) to supply both kinds.")]
pub struct SelectArgs {
    /// Target images: folder, dataset .zip, images .npy, or a features .npy (repeatable).
    #[arg(long, required = true)]
    target: Vec<PathBuf>,
    /// A candidate source NAME=PATH: real images (folder, .zip, .npy), a generator checkpoint
    /// (.pt, .pth, .safetensors), or features .npy. Repeat for each source.
    #[arg(long = "source", value_name = "NAME=PATH", required = true)]
    sources: Vec<String>,
    /// FID Inception weights (for FID and KID; also precision/recall without --vgg16).
    #[arg(long)]
    inception: Option<PathBuf>,
    /// VGG16 weights (precision and recall on fc2 features, as StyleGAN2-ADA's metric).
    #[arg(long)]
    vgg16: Option<PathBuf>,
    /// The metric that picks the recommended source.
    #[arg(long, default_value = "recall", ignore_case = true,
          value_parser = PossibleValuesParser::new(Metric::ALL.map(Metric::name)))]
    metric: String,
    /// Neighbours for precision and recall.
    #[arg(long, default_value_t = 3)]
    k: usize,
    /// Samples drawn from each generator checkpoint (seeds 0…n−1).
    #[arg(long, default_value_t = 10_000)]
    n: usize,
    #[command(flatten)]
    kid: KidArgs,
    /// Output folder: scores.csv and selection.md.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    common: ExtractionArgs,
}

/// The features of one image set, by kind.
#[derive(Default)]
struct Collected {
    inception: Option<Features>,
    vgg16: Option<Features>,
}

impl Collected {
    fn add(&mut self, kind: ExtractorKind, f: Features, what: &str) -> Result<()> {
        let slot = match kind {
            ExtractorKind::Inception => &mut self.inception,
            ExtractorKind::Vgg16 => &mut self.vgg16,
            ExtractorKind::Pixels => {
                return Err(Error::invalid(format!(
                    "{what}: pixel features (256-d) are not among select's (Inception, VGG16)"
                )))
            }
        };
        if slot.is_some() {
            return Err(Error::invalid(format!(
                "{what}: {} features given twice",
                kind.name()
            )));
        }
        *slot = Some(f);
        Ok(())
    }
}

/// Gathers every kind of features of one image set from its paths.
fn collect(
    label: &str,
    paths: &[&Path],
    extractions: &[Extraction],
    n: usize,
) -> Result<Collected> {
    let mut out = Collected::default();
    for path in paths {
        let source = ImageSource::from_path(path, n, |p| conv_clamp(p, None))?;
        if let ImageSource::Features(_) = source {
            let f = read_features(path)?;
            let kind = ExtractorKind::from_dim(f.dim).ok_or_else(|| {
                Error::in_file(
                    path,
                    format!(
                        "features of dimension {}: expected 2048 (Inception) or 4096 (VGG16)",
                        f.dim
                    ),
                )
            })?;
            out.add(kind, f, label)?;
            continue;
        }
        if extractions.is_empty() {
            return Err(Error::invalid(format!(
                "{label}: {} holds images; give --inception and/or --vgg16 weights",
                path.display()
            )));
        }
        for e in extractions {
            let kind = e.extractor.kind();
            let bar = image_bar(&format!("{label} {}", kind.name()));
            let (f, _) = e.features(&source, &bar)?;
            bar.finish_and_clear();
            if !f.skipped.is_empty() {
                eprintln!("{label}: skipped {} unreadable images", f.skipped.len());
            }
            out.add(kind, f, label)?;
        }
    }
    Ok(out)
}

pub fn select(args: SelectArgs) -> Result<()> {
    let metric: Metric = args.metric.to_ascii_lowercase().parse()?;
    if args.k == 0 {
        return Err(Error::invalid("--k must be at least 1"));
    }
    if args.n < 2 {
        return Err(Error::invalid("--n must be at least 2"));
    }
    let mut sources: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for spec in &args.sources {
        let (name, path) = spec
            .split_once('=')
            .filter(|(n, p)| !n.is_empty() && !p.is_empty())
            .ok_or_else(|| Error::invalid(format!("--source '{spec}': expected NAME=PATH")))?;
        match sources.iter_mut().find(|(n, _)| n == name) {
            Some((_, paths)) => paths.push(PathBuf::from(path)),
            None => sources.push((name.to_owned(), vec![PathBuf::from(path)])),
        }
    }
    check_output_folder(&args.out)?;
    let mut extractions = Vec::new();
    if let Some(w) = &args.inception {
        extractions.push(args.common.extraction(ExtractorKind::Inception, Some(w))?);
    }
    if let Some(w) = &args.vgg16 {
        extractions.push(args.common.extraction(ExtractorKind::Vgg16, Some(w))?);
    }
    let targets: Vec<&Path> = args.target.iter().map(PathBuf::as_path).collect();
    let target = collect("target", &targets, &extractions, args.n)?;
    // Precision and recall use VGG16 features when the target has them, else Inception's.
    let pr_kind = if target.vgg16.is_some() {
        ExtractorKind::Vgg16
    } else {
        ExtractorKind::Inception
    };
    let sets = |c: &Collected| -> Result<FeatureSets> {
        let pr = match pr_kind {
            ExtractorKind::Vgg16 => c.vgg16.as_ref(),
            _ => c.inception.as_ref(),
        };
        Ok(FeatureSets {
            inception: c.inception.as_ref().map(Features::points).transpose()?,
            pr: pr.map(Features::points).transpose()?,
        })
    };
    let target_sets = sets(&target)?;
    let kid_params = args.kid.params();
    let mut scores = Vec::new();
    for (name, paths) in &sources {
        let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
        let collected = collect(name, &paths, &extractions, args.n)?;
        let s = score(name, &target_sets, &sets(&collected)?, args.k, kid_params)?;
        if s.get(metric).is_none() {
            return Err(Error::invalid(format!(
                "source '{name}': no {} (its features and the target's do not match; \
                 give the weights or feature files that {} needs)",
                metric.name(),
                metric.name()
            )));
        }
        scores.push(s);
    }
    let order = ranking(&scores, metric);
    let recommended = &scores[order[0]];
    // Created only now: a run that fails earlier leaves no empty folder behind.
    whichgan::io::create_writable_dir(&args.out)?;
    write_scores(&args.out, &scores, metric, pr_kind, args.k)?;
    if args.common.json {
        let rows: Vec<_> = scores
            .iter()
            .map(|s| {
                json!({"source": s.name, "n": s.n, "fid": s.fid, "kid": s.kid,
                            "precision": s.precision, "recall": s.recall})
            })
            .collect();
        println!(
            "{}",
            json!({"recommended": recommended.name, "metric": metric.name(),
                   "pr_features": pr_kind.name(), "k": args.k, "sources": rows,
                   "out": args.out.display().to_string()})
        );
    } else {
        print!("{}", markdown(&scores, metric, pr_kind, args.k));
    }
    Ok(())
}

/// Checks, before any work, that `--out` can become the output folder: an existing folder that
/// takes files, or a new one whose nearest existing ancestor is a folder.
fn check_output_folder(out: &Path) -> Result<()> {
    if out.exists() {
        if !out.is_dir() {
            return Err(Error::in_file(
                out,
                "is a file; --out takes a folder (scores.csv and selection.md go in it)",
            ));
        }
        return whichgan::io::create_writable_dir(out);
    }
    let mut ancestor = out.parent();
    while let Some(dir) = ancestor.filter(|d| !d.as_os_str().is_empty()) {
        if dir.exists() {
            if !dir.is_dir() {
                return Err(Error::in_file(
                    out,
                    format!("{} is a file, not a folder", dir.display()),
                ));
            }
            break;
        }
        ancestor = dir.parent();
    }
    Ok(())
}

fn cell(v: Option<f64>) -> String {
    v.map_or_else(String::new, |x| format!("{x:.6}"))
}

/// 1-based rank of source `i` by `metric` (empty when it lacks the metric).
fn rank_of(scores: &[SourceScores], metric: Metric, i: usize) -> String {
    ranking(scores, metric)
        .iter()
        .position(|&j| j == i)
        .map_or_else(String::new, |r| (r + 1).to_string())
}

fn write_scores(
    dir: &Path,
    scores: &[SourceScores],
    metric: Metric,
    pr_kind: ExtractorKind,
    k: usize,
) -> Result<()> {
    let header = [
        "source",
        "n",
        "fid",
        "kid",
        "precision",
        "recall",
        "rank_fid",
        "rank_kid",
        "rank_precision",
        "rank_recall",
    ];
    let rows: Vec<Vec<String>> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut row = vec![
                s.name.clone(),
                s.n.to_string(),
                cell(s.fid),
                cell(s.kid),
                cell(s.precision),
                cell(s.recall),
            ];
            row.extend(Metric::ALL.iter().map(|&m| rank_of(scores, m, i)));
            row
        })
        .collect();
    write_csv(&dir.join("scores.csv"), &header, &rows)?;
    write_atomic(
        &dir.join("selection.md"),
        markdown(scores, metric, pr_kind, k).as_bytes(),
    )
}

/// The table people read: one row per source, best first by the chosen metric.
fn markdown(scores: &[SourceScores], metric: Metric, pr_kind: ExtractorKind, k: usize) -> String {
    let order = ranking(scores, metric);
    let mut s = format!(
        "Recommended source (best {}): **{}**\n\n\
         | rank | source | n | FID ↓ | KID ↓ | precision ↑ | recall ↑ |\n|---|---|---|---|---|---|---|\n",
        metric.name(),
        scores[order[0]].name
    );
    for (r, &i) in order.iter().enumerate() {
        let x = &scores[i];
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r + 1,
            x.name,
            x.n,
            cell(x.fid),
            cell(x.kid),
            cell(x.precision),
            cell(x.recall)
        );
    }
    s += &format!(
        "\nRanked by {}. Precision and recall: {} features, k = {k}, target as the real set.\n",
        metric.name(),
        pr_kind.name()
    );
    for m in Metric::ALL {
        let names: Vec<&str> = ranking(scores, m)
            .iter()
            .map(|&i| scores[i].name.as_str())
            .collect();
        if !names.is_empty() {
            s += &format!("- by {}: {}\n", m.name(), names.join(" > "));
        }
    }
    s
}
