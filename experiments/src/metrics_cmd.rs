//! `whichgan metrics …`: one subcommand per metric.

use crate::report::Report;
use crate::values::at_least_one;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use whichgan::io::{extension, load_points, read_npz_stats, Table};
use whichgan::metrics::coverage::{mode_coverage, CoverageThresholds};
use whichgan::metrics::frechet::{frechet_distance, kid as kid_distance, GaussianStats, KidParams};
use whichgan::metrics::knn::{prdc_with, Backend};
use whichgan::metrics::{stats, w1};
use whichgan::{Error, Result};

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    whichgan metrics w1 target.csv samples.csv\n  \
    whichgan metrics prdc real.npy fake.npy --k 5 --json\n  \
    whichgan metrics fid real_feats.npy fake_feats.npy\n  \
    whichgan metrics corr sweep.csv --x recall --y min_w1\n  \
    whichgan metrics coverage samples.csv --centres centres.csv --sigma 0.25")]
pub struct MetricsArgs {
    #[command(subcommand)]
    metric: Metric,
    /// Print exactly one JSON object per result line on stdout, nothing else.
    #[arg(long, global = true)]
    json: bool,
}

/// The KID protocol's options (StyleGAN2-ADA's defaults).
#[derive(Args)]
pub struct KidArgs {
    /// Number of random subsets for KID.
    #[arg(long, default_value_t = KidParams::default().subsets)]
    kid_subsets: usize,
    /// Points per KID subset (capped at the smaller set).
    #[arg(long, default_value_t = KidParams::default().subset_size)]
    kid_subset_size: usize,
    /// Seed of the KID subset draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl KidArgs {
    pub fn params(&self) -> KidParams {
        KidParams {
            subsets: self.kid_subsets,
            subset_size: self.kid_subset_size,
            seed: self.seed,
        }
    }
}

#[derive(Subcommand)]
enum Metric {
    /// Exact Wasserstein-1 distance (Euclidean cost, uniform weights; sizes may differ).
    #[command(after_help = "Example:\n  whichgan metrics w1 target.csv samples.npy --json")]
    W1 {
        /// The first point set (.csv or .npy).
        a: PathBuf,
        /// The second point set (.csv or .npy).
        b: PathBuf,
    },
    /// k-NN precision, recall, density and coverage of FAKE against REAL.
    #[command(after_help = "Example:\n  whichgan metrics prdc real.npy fake.npy --k 5")]
    Prdc {
        /// The real points (.csv or .npy).
        real: PathBuf,
        /// The generated points (.csv or .npy).
        fake: PathBuf,
        /// Neighbour rank that sets each ball's radius.
        #[arg(long, default_value_t = 5)]
        k: usize,
        /// Neighbour search; every backend gives the same counts.
        #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
        backend: BackendArg,
    },
    /// FID (and KID) between two feature files, or pytorch-fid .npz statistics (FID only).
    #[command(after_help = "Examples:\n  \
        whichgan metrics fid real_feats.npy fake_feats.npy\n  \
        whichgan metrics fid fake_feats.npy flowers_stats.npz --json")]
    Fid {
        /// Features [N, D] (.npy or .csv) or pytorch-fid statistics (.npz with mu and sigma).
        a: PathBuf,
        /// The other side, in either form.
        b: PathBuf,
        #[command(flatten)]
        kid: KidArgs,
    },
    /// Pearson (with p and 95 % CI), Spearman and Kendall correlations of two CSV columns.
    #[command(
        after_help = "Example:\n  whichgan metrics corr sweep.csv --x recall --y min_w1 --by convention --json"
    )]
    Corr {
        /// A CSV file with a header row.
        file: PathBuf,
        /// Name of the first column.
        #[arg(long)]
        x: String,
        /// Name of the second column.
        #[arg(long)]
        y: String,
        /// Report one correlation per distinct value of this column.
        #[arg(long)]
        by: Option<String>,
    },
    /// Modes covered by samples of a mixture with known centres.
    #[command(
        after_help = "Example:\n  whichgan metrics coverage samples.csv --centres centres.csv --sigma 0.25"
    )]
    Coverage {
        /// The samples (.csv or .npy).
        samples: PathBuf,
        /// The mixture's mode centres (.csv or .npy).
        #[arg(long)]
        centres: PathBuf,
        /// Standard deviation of each mixture component.
        #[arg(long)]
        sigma: f64,
        /// A sample is high quality within this many sigmas of its nearest centre.
        #[arg(long, default_value_t = 3.0)]
        radius_sigmas: f64,
        /// A mode is covered with at least this many high-quality samples.
        #[arg(long, default_value_t = 10, value_parser = at_least_one)]
        min_samples: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    Auto,
    Tree,
    Dense,
}

pub fn run(args: MetricsArgs) -> Result<()> {
    match args.metric {
        Metric::W1 { a, b } => {
            let (pa, pb) = (load_points(&a)?, load_points(&b)?);
            same_dim(&a, pa.dim(), &b, pb.dim())?;
            let distance = w1::wasserstein1(pa.as_slice(), pb.as_slice(), pa.dim());
            Report::new()
                .with("w1", representable("W1", distance)?)
                .with("n_a", pa.len())
                .with("n_b", pb.len())
                .with("d", pa.dim())
                .print(args.json);
        }
        Metric::Prdc {
            real,
            fake,
            k,
            backend,
        } => {
            let (r, f) = (load_points(&real)?, load_points(&fake)?);
            same_dim(&real, r.dim(), &fake, f.dim())?;
            for (path, set) in [(&real, &r), (&fake, &f)] {
                if set.len() <= k {
                    return Err(Error::in_file(
                        path,
                        format!(
                            "{} points, but k = {k} needs at least k + 1 = {}",
                            set.len(),
                            k + 1
                        ),
                    ));
                }
            }
            let backend = match backend {
                BackendArg::Auto => Backend::Auto,
                BackendArg::Tree => Backend::Tree,
                BackendArg::Dense => Backend::Dense,
            };
            let m = prdc_with(&r, &f, k, backend)?;
            Report::new()
                .with("precision", m.precision)
                .with("recall", m.recall)
                .with("density", m.density)
                .with("coverage", m.coverage)
                .with("k", k)
                .with("n_real", r.len())
                .with("n_fake", f.len())
                .with("d", r.dim())
                .print(args.json);
        }
        Metric::Fid { a, b, kid } => {
            let (fa, fb) = (FidInput::load(&a)?, FidInput::load(&b)?);
            same_dim(&a, fa.stats.dim(), &b, fb.stats.dim())?;
            let fid = representable("FID", frechet_distance(&fa.stats, &fb.stats)?)?;
            let mut report = Report::new().with("fid", fid);
            if let (Some(pa), Some(pb)) = (&fa.points, &fb.points) {
                let kid = representable("KID", kid_distance(pa, pb, kid.params())?)?;
                report = report.with("kid", kid);
            }
            report
                .with("n_a", fa.points.as_ref().map(|p| p.len()))
                .with("n_b", fb.points.as_ref().map(|p| p.len()))
                .with("d", fa.stats.dim())
                .print(args.json);
        }
        Metric::Corr { file, x, y, by } => corr(&file, &x, &y, by.as_deref(), args.json)?,
        Metric::Coverage {
            samples,
            centres,
            sigma,
            radius_sigmas,
            min_samples,
        } => {
            for (option, value) in [("--sigma", sigma), ("--radius-sigmas", radius_sigmas)] {
                if !(value > 0.0 && value.is_finite()) {
                    return Err(Error::invalid(format!(
                        "{option} must be a positive finite number, got {value}"
                    )));
                }
            }
            let (s, c) = (load_points(&samples)?, load_points(&centres)?);
            same_dim(&samples, s.dim(), &centres, c.dim())?;
            let thresholds = CoverageThresholds {
                sigma,
                radius_sigmas,
                min_samples,
            };
            let m = mode_coverage(&s, &c, thresholds)?;
            Report::new()
                .with("modes_covered", m.modes_covered)
                .with("modes", m.modes)
                .with("high_quality", m.high_quality)
                .with("high_quality_share", m.high_quality_share())
                .with("per_mode", m.per_mode.clone())
                .with("samples", m.samples)
                .with("sigma", sigma)
                .with("radius_sigmas", radius_sigmas)
                .with("min_samples", min_samples)
                .print(args.json);
        }
    }
    Ok(())
}

/// `value`, or an error when it overflowed f64 (finite inputs near its largest values).
fn representable(metric: &str, value: f64) -> Result<f64> {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Error::invalid(format!(
            "{metric} overflows: the coordinates are too large to compute it in 64-bit floats; \
             scale the inputs down"
        )))
    }
}

fn same_dim(a: &Path, da: usize, b: &Path, db: usize) -> Result<()> {
    if da == db {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{} has dimension {da} but {} has dimension {db}",
        a.display(),
        b.display()
    )))
}

/// One side of an FID: features (statistics computed here, KID possible) or stored statistics.
struct FidInput {
    stats: GaussianStats,
    points: Option<whichgan::Points>,
}

impl FidInput {
    fn load(path: &Path) -> Result<Self> {
        if extension(path).as_deref() == Some("npz") {
            let (mu, sigma) = read_npz_stats(path)?;
            return Ok(FidInput {
                stats: GaussianStats::from_arrays(mu, sigma, path)?,
                points: None,
            });
        }
        let points = load_points(path)?;
        if points.len() < 2 {
            return Err(Error::in_file(
                path,
                format!("FID needs at least 2 rows, found {}", points.len()),
            ));
        }
        Ok(FidInput {
            stats: GaussianStats::from_points(&points)?,
            points: Some(points),
        })
    }
}

fn corr(file: &Path, x: &str, y: &str, by: Option<&str>, json: bool) -> Result<()> {
    let table = Table::read(file)?;
    let (xs, ys) = (table.numeric_column(x)?, table.numeric_column(y)?);
    // Groups in order of first appearance.
    let mut groups: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
    match by {
        None => groups.push((None, (0..table.len()).collect())),
        Some(column) => {
            let labels = table.text_column(column)?;
            let mut index: BTreeMap<&str, usize> = BTreeMap::new();
            for (row, label) in labels.into_iter().enumerate() {
                let g = *index.entry(label).or_insert_with(|| {
                    groups.push((Some(label), Vec::new()));
                    groups.len() - 1
                });
                groups[g].1.push(row);
            }
        }
    }
    // Every group is computed before any is printed, so that a failing group prints nothing.
    let mut reports = Vec::with_capacity(groups.len());
    for (label, rows) in groups {
        let gx: Vec<f64> = rows.iter().map(|&r| xs[r]).collect();
        let gy: Vec<f64> = rows.iter().map(|&r| ys[r]).collect();
        let c = stats::correlate(&gx, &gy).map_err(|e| {
            let group = label.map_or(String::new(), |l| format!(" (group {l})"));
            Error::in_file(file, format!("columns '{x}' and '{y}'{group}: {e}"))
        })?;
        let mut report = Report::new()
            .with("n", c.n)
            .with("pearson_r", c.pearson_r)
            .with("pearson_p", c.pearson_p)
            .with("pearson_ci95", json!([c.pearson_ci95.0, c.pearson_ci95.1]))
            .with("spearman_rho", c.spearman_rho)
            .with("spearman_p", c.spearman_p)
            .with("kendall_tau", c.kendall_tau)
            .with("kendall_p", c.kendall_p);
        if let (Some(column), Some(label)) = (by, label) {
            report = report.with(column, group_value(label));
        }
        reports.push(report);
    }
    for report in reports {
        if !json && by.is_some() {
            println!();
        }
        report.print(json);
    }
    Ok(())
}

/// A group label as JSON: a number when the column holds numbers, else the text.
fn group_value(label: &str) -> serde_json::Value {
    if let Ok(i) = label.parse::<i64>() {
        return i.into();
    }
    match label.parse::<f64>() {
        Ok(x) if x.is_finite() => x.into(),
        _ => label.into(),
    }
}
