//! `whichgan bench metrics`: W1 against POT, precision/recall/density/coverage against prdc and
//! the playground's torch code, FID against numpy and pytorch-fid.

use super::{ratio, time, Bench};
use crate::report::Report;
use clap::ValueEnum;
use std::path::Path;
use whichgan::io::load_points;
use whichgan::metrics::frechet::{frechet_distance, GaussianStats};
use whichgan::metrics::knn::prdc;
use whichgan::metrics::w1::wasserstein1;
use whichgan::Result;

/// The benchmarks of `bench metrics`.
#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub(super) enum MetricBench {
    W1,
    Prdc,
    Fid,
}

impl Bench {
    pub(super) fn metrics(
        &self,
        data: &Path,
        only: &[MetricBench],
        skip_prdc_package: bool,
        json: bool,
    ) -> Result<()> {
        let bench = self;
        if !data.join("feats_10000x2048_b.npy").exists() {
            eprintln!("generating benchmark inputs in {} …", data.display());
            bench.python_json("make_data.py", &[data.as_os_str()], false)?;
        }
        let wanted = |bench: MetricBench| only.is_empty() || only.contains(&bench);
        if wanted(MetricBench::W1) {
            for n in [2048, 4096] {
                bench.w1(data, n)?.print(json);
            }
        }
        if wanted(MetricBench::Prdc) {
            bench.prdc(data, skip_prdc_package)?.print(json);
        }
        if wanted(MetricBench::Fid) {
            bench.fid(data)?.print(json);
        }
        Ok(())
    }

    fn w1(&self, data: &Path, n: usize) -> Result<Report> {
        let (a, b) = (
            data.join(format!("cloud_{n}_a.npy")),
            data.join(format!("cloud_{n}_b.npy")),
        );
        let (pa, pb) = (load_points(&a)?, load_points(&b)?);
        let (ours, w1) = time(self.runs, || {
            Ok(wasserstein1(pa.as_slice(), pb.as_slice(), pa.dim()))
        })?;
        let runs = self.runs.to_string();
        let reference = self.python_json(
            "ref_w1.py",
            &[
                a.as_os_str(),
                b.as_os_str(),
                "--runs".as_ref(),
                runs.as_ref(),
            ],
            true,
        )?;
        let ref_s = reference["median_s"].as_f64().unwrap_or(f64::NAN);
        Ok(Report::new()
            .with("bench", format!("w1 exact, {n} vs {n} 2-D points"))
            .with("ours_s", ours)
            .with("pot_s", ref_s)
            .with("speedup_vs_pot", ratio(ref_s, ours))
            .with("w1", w1)
            .with("w1_pot", reference["w1"].clone()))
    }

    fn prdc(&self, data: &Path, skip_package: bool) -> Result<Report> {
        let (a, b) = (
            data.join("feats_10000x2048_a.npy"),
            data.join("feats_10000x2048_b.npy"),
        );
        let (real, fake) = (load_points(&a)?, load_points(&b)?);
        let (ours, m) = time(1, || prdc(&real, &fake, 5))?;
        let mut args = vec![
            a.as_os_str(),
            b.as_os_str(),
            "--runs".as_ref(),
            "1".as_ref(),
        ];
        if skip_package {
            args.push("--skip-prdc".as_ref());
        }
        let reference = self.python_json("ref_prdc.py", &args, true)?;
        let torch_s = reference["torch_playground"]["median_s"]
            .as_f64()
            .unwrap_or(f64::NAN);
        let mut report = Report::new()
            .with(
                "bench",
                "precision/recall/density/coverage, 10000 x 2048-D, k = 5",
            )
            .with("ours_s", ours)
            .with("torch_playground_s", torch_s)
            .with("speedup_vs_torch_playground", ratio(torch_s, ours))
            .with("precision", m.precision)
            .with("recall", m.recall)
            .with("density", m.density)
            .with("coverage", m.coverage)
            .with(
                "torch_precision",
                reference["torch_playground"]["precision"].clone(),
            )
            .with(
                "torch_recall",
                reference["torch_playground"]["recall"].clone(),
            );
        if let Some(p) = reference["prdc"].as_object() {
            let prdc_s = p["median_s"].as_f64().unwrap_or(f64::NAN);
            report = report
                .with("prdc_s", prdc_s)
                .with("speedup_vs_prdc", ratio(prdc_s, ours))
                .with("prdc_density", p["density"].clone())
                .with("prdc_coverage", p["coverage"].clone());
        }
        Ok(report)
    }
    fn fid(&self, data: &Path) -> Result<Report> {
        let (a, b) = (
            data.join("feats_10000x2048_a.npy"),
            data.join("feats_10000x2048_b.npy"),
        );
        let (pa, pb) = (load_points(&a)?, load_points(&b)?);
        let (stats_s, (sa, sb)) = time(self.runs.min(3), || {
            Ok((
                GaussianStats::from_points(&pa)?,
                GaussianStats::from_points(&pb)?,
            ))
        })?;
        let (distance_s, fid) = time(self.runs.min(3), || frechet_distance(&sa, &sb))?;
        let reference = self.python_json(
            "ref_fid.py",
            &[
                a.as_os_str(),
                b.as_os_str(),
                "--runs".as_ref(),
                "1".as_ref(),
            ],
            true,
        )?;
        let ref_stats = reference["stats_median_s"].as_f64().unwrap_or(f64::NAN);
        let ref_distance = reference["distance_median_s"].as_f64().unwrap_or(f64::NAN);
        let fid_ref = reference["fid"].as_f64().unwrap_or(f64::NAN);
        Ok(Report::new()
            .with("bench", "FID, 2 x 10000 x 2048 features")
            .with("ours_stats_s", stats_s)
            .with("numpy_stats_s", ref_stats)
            .with("speedup_stats_vs_numpy", ratio(ref_stats, stats_s))
            .with("ours_distance_s", distance_s)
            .with("pytorch_fid_distance_s", ref_distance)
            .with(
                "speedup_distance_vs_pytorch_fid",
                ratio(ref_distance, distance_s),
            )
            .with("fid", fid)
            .with("fid_pytorch_fid", fid_ref)
            .with("relative_difference", (fid - fid_ref).abs() / fid_ref.abs()))
    }
}
