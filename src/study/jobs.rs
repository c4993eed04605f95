//! The study's grid of jobs, where each writes, and how processes share them: a job is done
//! when its marker exists (written atomically last), and runs under a lock file so that two
//! processes never run it at once. A process that needs another shard's job runs it itself
//! when nobody holds it, else waits for it; a lock whose process died on this machine is taken
//! over. So any split of the grid (`--shard i/N`, in any order, at once or one after another)
//! ends with the same files.

use super::spec::{SourceStart, Study, SCRATCH};
use crate::{Error, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Make one of the study's synthetic datasets.
    Dataset(String),
    /// Pretrain a source.
    Pretrain(String),
    /// Fit a target's class probe.
    Probe(String),
    /// Score a source against a target before any fine-tune (selection settings 1 and 2).
    Select { source: String, target: String },
    /// Fine-tune from a source (or scratch) on a target, then evaluate its snapshots.
    FineTune { start: String, target: String },
}

impl Job {
    /// A name for files and messages (names hold no '.', see `spec::check_name`).
    pub fn id(&self) -> String {
        match self {
            Job::Dataset(d) => format!("dataset.{d}"),
            Job::Pretrain(s) => format!("pretrain.{s}"),
            Job::Probe(t) => format!("probe.{t}"),
            Job::Select { source, target } => format!("select.{source}.{target}"),
            Job::FineTune { start, target } => format!("finetune.{start}.{target}"),
        }
    }

    /// The jobs this one reads the outputs of.
    pub fn needs(&self, study: &Study) -> Vec<Job> {
        let made = |data: &super::spec::Data| match data {
            super::spec::Data::Made { name, .. } => Some(Job::Dataset(name.clone())),
            super::spec::Data::File(_) => None,
        };
        let target_data = |t: &str| study.target(t).and_then(|t| made(&t.data));
        let pretrained = |s: &str| match study.source(s).map(|s| &s.start) {
            Some(SourceStart::Pretrain { .. }) => Some(Job::Pretrain(s.to_owned())),
            _ => None,
        };
        let jobs = match self {
            Job::Dataset(_) => vec![],
            Job::Pretrain(s) => vec![study.source(s).and_then(|s| match &s.start {
                SourceStart::Pretrain { data, .. } => made(data),
                SourceStart::Checkpoint(_) => None,
            })],
            Job::Probe(t) => vec![target_data(t)],
            Job::Select { source, target } => vec![
                target_data(target),
                pretrained(source),
                study
                    .source(source)
                    .and_then(|s| s.real.as_ref())
                    .and_then(made),
            ],
            Job::FineTune { start, target } => vec![
                target_data(target),
                pretrained(start),
                study
                    .target(target)
                    .filter(|t| t.classes)
                    .map(|_| Job::Probe(target.clone())),
            ],
        };
        let mut jobs: Vec<Job> = jobs.into_iter().flatten().collect();
        jobs.dedup();
        jobs
    }
}

/// Every job of the study, each after those it needs: datasets, pretraining, probes,
/// selection scores, fine-tunes.
pub fn grid(study: &Study) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut push = |job: Job| {
        if !jobs.contains(&job) {
            jobs.push(job);
        }
    };
    for t in &study.targets {
        if let super::spec::Data::Made { name, .. } = &t.data {
            push(Job::Dataset(name.clone()));
        }
    }
    for s in &study.sources {
        for data in [s.real.as_ref(), pretrain_data(&s.start)]
            .into_iter()
            .flatten()
        {
            if let super::spec::Data::Made { name, .. } = data {
                push(Job::Dataset(name.clone()));
            }
        }
    }
    for s in &study.sources {
        if matches!(s.start, SourceStart::Pretrain { .. }) {
            push(Job::Pretrain(s.name.clone()));
        }
    }
    for t in study.targets.iter().filter(|t| t.classes) {
        push(Job::Probe(t.name.clone()));
    }
    for t in &study.targets {
        for s in &study.sources {
            push(Job::Select {
                source: s.name.clone(),
                target: t.name.clone(),
            });
        }
    }
    for t in &study.targets {
        for start in study.starts() {
            push(Job::FineTune {
                start: start.to_owned(),
                target: t.name.clone(),
            });
        }
    }
    jobs
}

fn pretrain_data(start: &SourceStart) -> Option<&super::spec::Data> {
    match start {
        SourceStart::Pretrain { data, .. } => Some(data),
        SourceStart::Checkpoint(_) => None,
    }
}

/// The folders of a study's outputs.
#[derive(Debug, Clone)]
pub struct Layout {
    pub out: PathBuf,
}

impl Layout {
    pub fn pretrain_run(&self, source: &str) -> PathBuf {
        self.out.join("pretrain").join(source)
    }

    pub fn finetune_run(&self, start: &str, target: &str) -> PathBuf {
        self.out.join("runs").join(target).join(start)
    }

    pub fn probe(&self, target: &str) -> PathBuf {
        self.out
            .join("probes")
            .join(format!("{target}.safetensors"))
    }

    pub fn selection(&self, source: &str, target: &str) -> PathBuf {
        self.out
            .join("selection")
            .join(target)
            .join(format!("{source}.json"))
    }

    /// A fine-tune's scores per snapshot.
    pub fn evaluation(&self, start: &str, target: &str) -> PathBuf {
        self.finetune_run(start, target).join("evaluation.csv")
    }

    pub fn feature_cache(&self) -> PathBuf {
        self.out.join("feature-cache")
    }

    fn jobs(&self) -> PathBuf {
        self.out.join("jobs")
    }

    pub fn done_marker(&self, job: &Job) -> PathBuf {
        self.jobs().join(format!("{}.done", job.id()))
    }

    fn lock(&self, job: &Job) -> PathBuf {
        self.jobs().join(format!("{}.lock", job.id()))
    }

    pub fn is_done(&self, job: &Job) -> bool {
        self.done_marker(job).is_file()
    }

    /// Marks `job` done (the last thing it writes), with the seconds it took.
    pub fn mark_done(&self, job: &Job, seconds: f64) -> Result<()> {
        crate::io::write_atomic(&self.done_marker(job), format!("{seconds:.1}\n").as_bytes())
    }

    /// The seconds a done job took (as its process measured them).
    pub fn seconds(&self, job: &Job) -> Option<f64> {
        std::fs::read_to_string(self.done_marker(job))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The starting network of a fine-tune: a pretrained source's last snapshot, a checkpoint
    /// or none (scratch).
    pub fn start_checkpoint(&self, study: &Study, start: &str) -> Result<Option<PathBuf>> {
        if start == SCRATCH {
            return Ok(None);
        }
        let source = study
            .source(start)
            .ok_or_else(|| Error::invalid(format!("the study has no source '{start}'")))?;
        match &source.start {
            SourceStart::Checkpoint(path) => Ok(Some(path.clone())),
            SourceStart::Pretrain { .. } => {
                let run = self.pretrain_run(start);
                latest_snapshot(&run)?
                    .map(Some)
                    .ok_or_else(|| Error::in_file(&run, "holds no snapshot of the pretraining"))
            }
        }
    }
}

/// The last `network-snapshot-*.safetensors` of a run folder (names sort by kimg).
pub fn latest_snapshot(run: &Path) -> Result<Option<PathBuf>> {
    Ok(snapshots(run)?.pop())
}

/// A run folder's snapshots in training order.
pub fn snapshots(run: &Path) -> Result<Vec<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(run) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(run, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("network-snapshot-") && name.ends_with(".safetensors") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// A held job lock, released when dropped.
pub struct JobLock {
    path: PathBuf,
}

impl Drop for JobLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What trying to take a job's lock found.
pub enum Claim {
    /// The lock is ours: run the job.
    Run(JobLock),
    /// The job was done meanwhile.
    Done,
}

/// How often a process waiting for another's job looks again.
const POLL: Duration = Duration::from_secs(2);

impl Layout {
    /// Takes `job`'s lock, waiting while a live process holds it; `waiting` is called once
    /// when a wait begins, with the holder.
    pub fn claim(&self, job: &Job, mut waiting: impl FnMut(&str)) -> Result<Claim> {
        let path = self.lock(job);
        let dir = self.jobs();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut announced = false;
        loop {
            if self.is_done(job) {
                return Ok(Claim::Done);
            }
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let me = format!("{} {}", host(), std::process::id());
                    file.write_all(me.as_bytes())
                        .map_err(|e| Error::io(&path, e))?;
                    // Done between the check above and the lock: nothing to run.
                    if self.is_done(job) {
                        drop(JobLock { path });
                        return Ok(Claim::Done);
                    }
                    return Ok(Claim::Run(JobLock { path }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let age = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .unwrap_or_default();
                    if holder_is_gone(&holder, age) {
                        // A process of this machine that died holding it (kill -9).
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if !announced {
                        waiting(holder.trim());
                        announced = true;
                    }
                    std::thread::sleep(POLL);
                }
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Whether a lock's holder ("host pid") was a process of this machine that no longer runs.
/// A lock left empty for a while is one whose writer died before writing it.
fn holder_is_gone(holder: &str, age: Duration) -> bool {
    let mut parts = holder.split_whitespace();
    let (Some(h), Some(pid)) = (parts.next(), parts.next()) else {
        return holder.trim().is_empty() && age > 5 * POLL;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let gone = unsafe { libc::kill(pid, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    h == host() && gone
}
