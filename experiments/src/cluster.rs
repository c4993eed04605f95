//! `--slurm` on the grid commands (`toy figure3`, `toy reproduce`, `study run`) and `whichgan
//! jobs status`: a grid's shards as a Slurm job array, collected by a dependent job.

use crate::report::Report;
use clap::Args;
use std::path::{Path, PathBuf};
use whichgan::run::slurm::{
    array_script, collect_script, resubmit, status, submit, Grid, ShardState, SlurmOptions,
};
use whichgan::{Error, Result};

/// How a grid goes to Slurm.
#[derive(Args)]
pub struct SlurmArgs {
    /// Submit the grid to Slurm instead of running it: one array task per shard, each this same
    /// command with --shard i/N, and a job that collects their results once all succeeded.
    #[arg(long)]
    pub slurm: bool,
    /// Shards (array tasks) [default: the command's].
    #[arg(long, requires = "slurm")]
    pub shards: Option<usize>,
    /// Partition of the tasks.
    #[arg(long, requires = "slurm")]
    partition: Option<String>,
    /// Time limit of a task, as sbatch takes it (e.g. 2-00:00:00).
    #[arg(long, requires = "slurm")]
    time: Option<String>,
    /// GPUs per task.
    #[arg(long, requires = "slurm")]
    gpus_per_task: Option<u32>,
    /// CPUs per task.
    #[arg(long, requires = "slurm")]
    cpus_per_task: Option<u32>,
    /// Memory per task, as sbatch takes it (e.g. 32G).
    #[arg(long, requires = "slurm")]
    mem: Option<String>,
    /// Account charged.
    #[arg(long, requires = "slurm")]
    account: Option<String>,
    /// At most this many tasks at once.
    #[arg(long, requires = "slurm")]
    max_parallel: Option<usize>,
    /// A further #SBATCH line, repeatable (e.g. --sbatch=--qos=long).
    #[arg(
        long = "sbatch",
        value_name = "LINE",
        requires = "slurm",
        allow_hyphen_values = true
    )]
    extra: Vec<String>,
    /// Print the scripts instead of submitting them.
    #[arg(long, requires = "slurm")]
    dry_run: bool,
}

impl SlurmArgs {
    fn options(&self) -> SlurmOptions {
        SlurmOptions {
            partition: self.partition.clone(),
            time: self.time.clone(),
            gpus_per_task: self.gpus_per_task,
            cpus_per_task: self.cpus_per_task,
            mem: self.mem.clone(),
            account: self.account.clone(),
            max_parallel: self.max_parallel,
            extra: self.extra.clone(),
        }
    }

    /// The shard count: `--shards`, else `default`, at most `jobs` (the grid's size).
    pub fn shard_count(&self, default: usize, jobs: usize) -> Result<usize> {
        let n = self.shards.unwrap_or(default.min(jobs)).max(1);
        if self.shards == Some(0) || n > jobs {
            return Err(Error::setting(
                "shards",
                self.shards.map(|s| s.to_string()),
                format!("must lie in 1…{jobs} (the grid's jobs)"),
            ));
        }
        Ok(n)
    }

    /// Submits `grid` (or prints its scripts with `--dry-run`) and reports the job ids.
    pub fn submit(&self, grid: Grid, json: bool) -> Result<()> {
        let options = self.options();
        if self.dry_run {
            let all: Vec<usize> = (0..grid.shards).collect();
            print!(
                "{}\n{}",
                array_script(&grid, &options, &all),
                collect_script(&grid, &options)
            );
            return Ok(());
        }
        let out = grid.out.clone();
        let s = submit(grid, options)?;
        Report::new()
            .with("array_job", s.shard_jobs[0].clone())
            .with("collect_job", s.collect_job.clone())
            .with("shards", s.grid.shards)
            .with("status", format!("whichgan jobs status {}", out.display()))
            .print(json);
        Ok(())
    }
}

/// This program, for the scripts the cluster runs.
pub fn this_program() -> Result<String> {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .map_err(|e| Error::invalid(format!("cannot find this program's path: {e}")))
}

/// `path` made absolute (the tasks run in another folder).
pub fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(path, e))
}

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    whichgan toy figure3 --out sweep/ --slurm --shards 10 --partition cpu --time 2:00:00\n  \
    whichgan jobs status sweep/\n  \
    whichgan jobs status sweep/ --resubmit\n\n\
    A shard is done when its task succeeded (it writes OUT/slurm/done/shard-i last); pending, \
    running and failed come from the scheduler (scontrol). --resubmit sends the failed shards \
    again with a new collect job; their tasks resume where the killed ones stopped.")]
pub struct JobsArgs {
    /// The output folder of a grid submitted with --slurm.
    dir: PathBuf,
    /// Submit the failed shards again (and a new collect job).
    #[arg(long)]
    resubmit: bool,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long)]
    json: bool,
}

/// `whichgan jobs status DIR [--resubmit]`.
pub fn jobs_status(args: JobsArgs) -> Result<()> {
    let resubmitted = if args.resubmit {
        resubmit(&args.dir)?
    } else {
        Vec::new()
    };
    let (submission, states, collect) = status(&args.dir)?;
    let of = |state: ShardState| -> Vec<usize> {
        (0..states.len()).filter(|&i| states[i] == state).collect()
    };
    let list = |v: Vec<usize>| serde_json::json!(v);
    Report::new()
        .with("shards", submission.grid.shards)
        .with("done", list(of(ShardState::Done)))
        .with("pending", list(of(ShardState::Pending)))
        .with("running", list(of(ShardState::Running)))
        .with("failed", list(of(ShardState::Failed)))
        .with("resubmitted", list(resubmitted))
        .with("collect_job", submission.collect_job.clone())
        .with("collect_state", collect.unwrap_or_else(|| "unknown".into()))
        .print(args.json);
    Ok(())
}
