//! `study run`: the jobs of the grid (or of one shard), each skipped when done, each resumed
//! where a killed process left it (training from its last snapshot).

use super::jobs::{grid, latest_snapshot, snapshots, Claim, Job, Layout};
use super::spec::{Data, SourceStart, Study, Target};
use crate::classes::{cover, fit_on_dataset, ClassProbe, FitOptions};
use crate::dataset::write_synth;
use crate::features::{Extraction, ExtractorKind, FeatureCache, ImageSource};
use crate::io::write_atomic;
use crate::run::generator::conv_clamp;
use crate::run::stylegan2::{train_run, Extractors, Scores, TrainSettings};
use crate::run::Shard;
use crate::select::FeatureSets;
use crate::{Error, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The study as first run in a folder: later runs there must be of the same study.
pub const STUDY_FILE: &str = "study.json";

/// How a study runs.
#[derive(Debug, Clone)]
pub struct StudyOptions {
    pub out: PathBuf,
    pub shard: Option<Shard>,
    pub device: Device,
    /// Progress bars of the training runs.
    pub progress: bool,
}

/// What one `study run` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    /// Jobs run by this process (its own and those it needed).
    pub ran: Vec<String>,
    /// Jobs of its share found done.
    pub skipped: usize,
    /// Jobs in its share.
    pub jobs: usize,
}

/// A source's scores against a target before any fine-tune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub source: String,
    pub target: String,
    /// Setting 1: the source's real images against the target's.
    pub real: Option<Scores>,
    /// Setting 2: samples of the source's generator against the target's images.
    pub generated: Option<Scores>,
}

/// Runs the study's jobs (one shard's, or all) in `opts.out`; `say` hears one line per job.
pub fn run_study(study: &Study, opts: &StudyOptions, mut say: impl FnMut(&str)) -> Result<Outcome> {
    record_study(study, &opts.out)?;
    let runner = Runner {
        study,
        layout: Layout {
            out: opts.out.clone(),
        },
        opts,
    };
    let mine: Vec<Job> = grid(study)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| opts.shard.is_none_or(|s| s.takes(*i)))
        .map(|(_, job)| job)
        .collect();
    let mut outcome = Outcome {
        jobs: mine.len(),
        ..Outcome::default()
    };
    for (i, job) in mine.iter().enumerate() {
        if runner.layout.is_done(job) {
            outcome.skipped += 1;
            continue;
        }
        say(&format!("[{}/{}] {}", i + 1, mine.len(), job.id()));
        runner.ensure(job, &mut outcome, &mut say)?;
    }
    Ok(outcome)
}

/// Writes the study's description into a new folder, or checks that it is the one there.
fn record_study(study: &Study, out: &Path) -> Result<()> {
    let path = out.join(STUDY_FILE);
    let json = serde_json::to_string_pretty(study).expect("a study serialises");
    match std::fs::read_to_string(&path) {
        Ok(was) => {
            let was: serde_json::Value = serde_json::from_str(&was)
                .map_err(|e| Error::in_file(&path, format!("not a study description: {e}")))?;
            let now: serde_json::Value = serde_json::from_str(&json).expect("just written");
            if was != now {
                return Err(Error::in_file(
                    &path,
                    format!(
                        "the folder holds another study (differing: {}); give a new `out` \
                         folder",
                        crate::run::state::differences(&was, &now)
                    ),
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
            write_atomic(&path, json.as_bytes())
        }
        Err(e) => Err(Error::io(&path, e)),
    }
}

struct Runner<'a> {
    study: &'a Study,
    layout: Layout,
    opts: &'a StudyOptions,
}

impl Runner<'_> {
    /// Runs `job` unless done, after what it needs; waits while another process runs it.
    fn ensure(&self, job: &Job, outcome: &mut Outcome, say: &mut dyn FnMut(&str)) -> Result<()> {
        for need in job.needs(self.study) {
            self.ensure(&need, outcome, say)?;
        }
        let claim = self.layout.claim(job, |holder| {
            say(&format!("  waiting for {} (run by {holder})", job.id()))
        })?;
        let Claim::Run(_lock) = claim else {
            return Ok(());
        };
        let started = Instant::now();
        self.execute(job)
            .map_err(|e| Error::invalid(format!("{}: {e}", job.id())))?;
        let seconds = started.elapsed().as_secs_f64();
        self.layout.mark_done(job, seconds)?;
        say(&format!("  {} done in {seconds:.0} s", job.id()));
        outcome.ran.push(job.id());
        Ok(())
    }

    fn execute(&self, job: &Job) -> Result<()> {
        let out = &self.layout.out;
        match job {
            Job::Dataset(name) => {
                let spec = self.made_spec(name)?;
                let path = out.join("datasets").join(format!("{name}.zip"));
                std::fs::create_dir_all(out.join("datasets"))
                    .map_err(|e| Error::io(&out.join("datasets"), e))?;
                write_synth(&spec, &path).map(|_| ())
            }
            Job::Pretrain(name) => {
                let source = self.study.source(name).expect("a job of the grid");
                let SourceStart::Pretrain {
                    data,
                    settings,
                    resolution,
                } = &source.start
                else {
                    unreachable!("pretraining jobs are made for pretrained sources")
                };
                let run = self.layout.pretrain_run(name);
                self.train(settings, &data.path(out), *resolution, &run, None)
            }
            Job::Probe(name) => {
                let target = self.study.target(name).expect("a job of the grid");
                self.fit_probe(target)
            }
            Job::Select { source, target } => self.select(source, target),
            Job::FineTune { start, target } => {
                let t = self.study.target(target).expect("a job of the grid");
                let run = self.layout.finetune_run(start, target);
                let from = self.layout.start_checkpoint(self.study, start)?;
                self.train(
                    &t.settings,
                    &t.data.path(out),
                    t.resolution,
                    &run,
                    from.as_deref(),
                )?;
                self.evaluate(t, start, &run)
            }
        }
    }

    fn made_spec(&self, name: &str) -> Result<crate::dataset::SynthSpec> {
        let all = self.study.targets.iter().map(|t| Some(&t.data)).chain(
            self.study.sources.iter().flat_map(|s| {
                let pretrain = match &s.start {
                    SourceStart::Pretrain { data, .. } => Some(data),
                    SourceStart::Checkpoint(_) => None,
                };
                [pretrain, s.real.as_ref()]
            }),
        );
        all.flatten()
            .find_map(|d| match d {
                Data::Made { name: n, spec } if n == name => Some(spec.spec()),
                _ => None,
            })
            .ok_or_else(|| Error::invalid(format!("the study makes no dataset '{name}'")))
    }

    /// Trains `run` (continuing its last snapshot when a killed process left one).
    fn train(
        &self,
        settings: &TrainSettings,
        data: &Path,
        resolution: usize,
        run: &Path,
        start: Option<&Path>,
    ) -> Result<()> {
        let latest = latest_snapshot(run)?;
        let resume = latest.as_deref().or(start);
        let mut options = settings.options(data, resolution, run, resume)?;
        options.device = self.opts.device.clone();
        options.progress = self.opts.progress;
        // A folder without a snapshot holds only what a killed start left.
        options.overwrite = latest.is_none();
        train_run(&options).map(|_| ())
    }

    fn extractors(&self, n: usize) -> Result<Extractors> {
        let vgg16 = match &self.study.metrics.vgg16 {
            Some(w) => Some(self.cached_extraction(ExtractorKind::Vgg16, Some(w))?),
            None => None,
        };
        Ok(Extractors::new(self.probe_extraction()?, vgg16, n))
    }

    /// The study's main embedding (FID, KID, and the class probes).
    fn probe_extraction(&self) -> Result<Extraction> {
        let m = &self.study.metrics;
        self.cached_extraction(m.kind(), m.inception.as_deref())
    }

    /// An extraction of `kind` whose features go into the study's one cache.
    fn cached_extraction(&self, kind: ExtractorKind, weights: Option<&Path>) -> Result<Extraction> {
        let mut e = Extraction::new(kind, weights, &self.opts.device)?;
        e.cache = Some(FeatureCache::new(&self.layout.feature_cache()));
        Ok(e)
    }

    fn fit_probe(&self, target: &Target) -> Result<()> {
        let data = target.data.path(&self.layout.out);
        let extraction = self.probe_extraction()?;
        let probe = fit_on_dataset(&extraction, &data, &FitOptions::default())?;
        let path = self.layout.probe(&target.name);
        std::fs::create_dir_all(path.parent().expect("in probes/"))
            .map_err(|e| Error::io(&path, e))?;
        probe.save(&path)
    }

    fn select(&self, source: &str, target: &str) -> Result<()> {
        let s = self.study.source(source).expect("a job of the grid");
        let t = self.study.target(target).expect("a job of the grid");
        let out = &self.layout.out;
        let generated_n = self.study.select_generated;
        let extractors = self.extractors(generated_n.max(2))?;
        let reals = extractors.feature_sets(&ImageSource::Data(t.data.path(out)))?;
        let k = self.study.metrics.k;
        let real = match (&s.real, self.study.select_real) {
            (Some(d), true) => {
                let theirs = extractors.feature_sets(&ImageSource::Data(d.path(out)))?;
                Some(Scores::of(&reals, &theirs, k)?)
            }
            _ => None,
        };
        let generated = if generated_n > 0 {
            let ckpt = self
                .layout
                .start_checkpoint(self.study, source)?
                .expect("a source has a checkpoint");
            let clamp = conv_clamp(&ckpt, None)?;
            let theirs = extractors.feature_sets(&extractors.generated(&ckpt, clamp))?;
            Some(Scores::of(&reals, &theirs, k)?)
        } else {
            None
        };
        let selection = Selection {
            source: source.to_owned(),
            target: target.to_owned(),
            real,
            generated,
        };
        let path = self.layout.selection(source, target);
        std::fs::create_dir_all(path.parent().expect("in selection/"))
            .map_err(|e| Error::io(&path, e))?;
        let json = serde_json::to_string_pretty(&selection).expect("scores serialise");
        write_atomic(&path, json.as_bytes())
    }

    /// Scores every snapshot of a fine-tune: FID, KID, precision, recall, classes covered.
    fn evaluate(&self, target: &Target, start: &str, run: &Path) -> Result<()> {
        let out = &self.layout.out;
        let m = &self.study.metrics;
        let extractors = self.extractors(m.n)?;
        let reals: FeatureSets =
            extractors.feature_sets(&ImageSource::Data(target.data.path(out)))?;
        let probe = match target.classes {
            true => Some((
                ClassProbe::load(&self.layout.probe(&target.name))?,
                self.probe_extraction()?,
            )),
            false => None,
        };
        let mut rows = Vec::new();
        for snapshot in snapshots(run)? {
            let clamp = conv_clamp(&snapshot, None)?;
            let fake = extractors.feature_sets(&extractors.generated(&snapshot, clamp))?;
            let scores = Scores::of(&reals, &fake, m.k)?;
            let covered = match &probe {
                Some((probe, extraction)) => {
                    let source = ImageSource::Generator {
                        checkpoint: snapshot.clone(),
                        n: m.classes_n,
                        conv_clamp: clamp,
                    };
                    Some(cover(probe, extraction, &source, m.classes_min)?.covered)
                }
                None => None,
            };
            rows.push(EvaluationRow {
                kimg: snapshot_kimg(&snapshot)?,
                fid: scores.fid,
                kid: scores.kid,
                precision: scores.precision,
                recall: scores.recall,
                classes_covered: covered,
            });
        }
        write_evaluation(&self.layout.evaluation(start, &target.name), &rows)
    }
}

/// One snapshot's scores, a line of a fine-tune's `evaluation.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRow {
    pub kimg: f64,
    pub fid: Option<f64>,
    pub kid: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub classes_covered: Option<usize>,
}

fn write_evaluation(path: &Path, rows: &[EvaluationRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.serialize(row)
            .map_err(|e| Error::in_file(path, e.to_string()))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::in_file(path, e.to_string()))?;
    write_atomic(path, &bytes)
}

/// A fine-tune's `evaluation.csv`.
pub fn read_evaluation(path: &Path) -> Result<Vec<EvaluationRow>> {
    let mut r = csv::Reader::from_path(path).map_err(|e| Error::in_file(path, e.to_string()))?;
    r.deserialize()
        .map(|row| row.map_err(|e| Error::in_file(path, e.to_string())))
        .collect()
}

/// The kimg of `network-snapshot-001234.500.safetensors`: 1234.5.
fn snapshot_kimg(path: &Path) -> Result<f64> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.strip_prefix("network-snapshot-")
        .and_then(|n| n.strip_suffix(".safetensors"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::in_file(path, "not a snapshot name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_give_their_kimg() {
        let kimg = |n: &str| snapshot_kimg(Path::new(n)).unwrap();
        assert_eq!(kimg("runs/network-snapshot-000012.safetensors"), 12.0);
        assert_eq!(kimg("network-snapshot-001234.500.safetensors"), 1234.5);
        assert!(snapshot_kimg(Path::new("fakes000012.png")).is_err());
    }
}
