//! Grids of jobs on a Slurm cluster: one array task per shard, each running the same `whichgan`
//! command as a local run with `--shard i/N` added, and a collect job that runs once every task
//! has succeeded (`afterok`) — a merge or a report. A task marks its shard done (atomically)
//! only when its command succeeded; [`status`] reads those marks and the scheduler, and
//! [`resubmit`] sends only the unfinished shards again, with a new collect job.
//!
//! Files, in `<out>/slurm/`: `array.sh` and `collect.sh` (the submitted scripts), `grid.json`
//! (what was submitted: the commands, the options, the job ids), `done/shard-<i>` (written by a
//! task that succeeded), `logs/` (the jobs' output).

use crate::io::write_atomic;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How the array tasks are scheduled (`sbatch` options).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlurmOptions {
    pub partition: Option<String>,
    /// Wall-time limit of a task (`--time`, e.g. `2-00:00:00`).
    pub time: Option<String>,
    pub gpus_per_task: Option<u32>,
    pub cpus_per_task: Option<u32>,
    /// Memory per task (`--mem`, e.g. `32G`).
    pub mem: Option<String>,
    pub account: Option<String>,
    /// At most this many tasks at once (`--array=…%N`).
    pub max_parallel: Option<usize>,
    /// Further `#SBATCH` lines, as given (`--qos=long`, `--constraint=a100`, …).
    pub extra: Vec<String>,
}

/// A grid as submitted: its shard command, its collect command and where it writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// The job name on the cluster.
    pub name: String,
    /// The output folder (absolute; the tasks run elsewhere).
    pub out: PathBuf,
    pub shards: usize,
    /// The program and arguments each task runs, `--shard i/N` appended.
    pub shard_command: Vec<String>,
    /// The program and arguments the collect job runs.
    pub collect_command: Vec<String>,
}

/// What was submitted, kept in `grid.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub grid: Grid,
    pub options: SlurmOptions,
    /// The array job each shard was last submitted in (a resubmission changes some).
    pub shard_jobs: Vec<String>,
    /// The collect job of the latest submission.
    pub collect_job: String,
}

impl Submission {
    /// The scheduler's name of shard `i`'s task: `<array job>_<i>`.
    pub fn task(&self, shard: usize) -> String {
        format!("{}_{shard}", self.shard_jobs[shard])
    }
}

/// Where a shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardState {
    Done,
    Pending,
    Running,
    /// Ended without success (failed, cancelled, timed out, killed) or unknown to the
    /// scheduler and not done.
    Failed,
}

fn folder(out: &Path) -> PathBuf {
    out.join("slurm")
}

fn done_mark(out: &Path, shard: usize) -> PathBuf {
    folder(out).join("done").join(format!("shard-{shard}"))
}

/// A word for a shell script: quoted unless plainly safe.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn command_line(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn sbatch_lines(name: &str, options: &SlurmOptions) -> String {
    let mut lines = vec![format!("#SBATCH --job-name={}", shell_word(name))];
    let mut option = |flag: &str, value: Option<String>| {
        if let Some(v) = value {
            lines.push(format!("#SBATCH --{flag}={v}"));
        }
    };
    option("partition", options.partition.clone());
    option("time", options.time.clone());
    option(
        "gpus-per-task",
        options.gpus_per_task.map(|g| g.to_string()),
    );
    option(
        "cpus-per-task",
        options.cpus_per_task.map(|c| c.to_string()),
    );
    option("mem", options.mem.clone());
    option("account", options.account.clone());
    for extra in &options.extra {
        let line = extra.trim().trim_start_matches("#SBATCH").trim();
        lines.push(format!("#SBATCH {line}"));
    }
    lines.join("\n")
}

/// Sorted indices as sbatch's `--array` list: runs as ranges (`0-3,5,7-9`).
fn index_list(indices: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        parts.push(match j > i {
            true => format!("{}-{}", indices[i], indices[j]),
            false => indices[i].to_string(),
        });
        i = j + 1;
    }
    parts.join(",")
}

/// The array script of `shards` (sorted indices into the grid's shards).
pub fn array_script(grid: &Grid, options: &SlurmOptions, shards: &[usize]) -> String {
    let throttle = options
        .max_parallel
        .map(|m| format!("%{m}"))
        .unwrap_or_default();
    let dir = folder(&grid.out);
    let done = dir.join("done");
    format!(
        "#!/bin/bash\n\
         # One task per shard of the grid: the same command as a local run, with its shard.\n\
         {sbatch}\n\
         #SBATCH --array={indices}{throttle}\n\
         #SBATCH --output={logs}/shard-%a-%A.out\n\
         #SBATCH --requeue\n\
         set -euo pipefail\n\
         i=$SLURM_ARRAY_TASK_ID\n\
         {command} --shard \"$i/{n}\"\n\
         # Done only when the command succeeded, and atomically.\n\
         mkdir -p {done}\n\
         echo \"$SLURM_JOB_ID\" > {done}/.shard-\"$i\".tmp\n\
         mv {done}/.shard-\"$i\".tmp {done}/shard-\"$i\"\n",
        sbatch = sbatch_lines(&grid.name, options),
        indices = index_list(shards),
        logs = shell_word(&dir.join("logs").display().to_string()),
        command = command_line(&grid.shard_command),
        n = grid.shards,
        done = shell_word(&done.display().to_string()),
    )
}

/// The collect script, submitted to run after every task of the array succeeded.
pub fn collect_script(grid: &Grid, options: &SlurmOptions) -> String {
    let dir = folder(&grid.out);
    let collect = SlurmOptions {
        gpus_per_task: None,
        max_parallel: None,
        ..options.clone()
    };
    format!(
        "#!/bin/bash\n\
         # Runs once every shard succeeded: joins their results.\n\
         {sbatch}\n\
         #SBATCH --output={logs}/collect-%j.out\n\
         set -euo pipefail\n\
         {command}\n",
        sbatch = sbatch_lines(&format!("{}-collect", grid.name), &collect),
        logs = shell_word(&dir.join("logs").display().to_string()),
        command = command_line(&grid.collect_command),
    )
}

/// Runs a Slurm command, its stdout trimmed.
fn slurm(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        Error::invalid(format!(
            "cannot run `{program}` ({e}): is this a Slurm cluster's login node?"
        ))
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(Error::invalid(format!(
            "{program} {} failed: {}",
            args.join(" "),
            err.trim().replace('\n', "; ")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Writes the scripts for `shards` and submits them: the array, then the collect job after it
/// and after the tasks in `also_after` (shards of an earlier array still in flight).
fn submit_shards(
    submission: &mut Submission,
    shards: &[usize],
    also_after: &[String],
) -> Result<()> {
    let dir = folder(&submission.grid.out);
    for sub in ["logs", "done"] {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
    }
    let array = dir.join("array.sh");
    let collect = dir.join("collect.sh");
    write_atomic(
        &array,
        array_script(&submission.grid, &submission.options, shards).as_bytes(),
    )?;
    write_atomic(
        &collect,
        collect_script(&submission.grid, &submission.options).as_bytes(),
    )?;
    let array_id = job_id(&slurm(
        "sbatch",
        &["--parsable", &array.display().to_string()],
    )?);
    for &shard in shards {
        submission.shard_jobs[shard] = array_id.clone();
    }
    let after: Vec<String> = std::iter::once(array_id)
        .chain(also_after.iter().cloned())
        .collect();
    let dependency = format!("--dependency=afterok:{}", after.join(":"));
    let collect_id = slurm(
        "sbatch",
        &["--parsable", &dependency, &collect.display().to_string()],
    )?;
    submission.collect_job = job_id(&collect_id);
    save(submission)
}

/// The job id in `sbatch --parsable`'s answer (`id` or `id;cluster`).
fn job_id(parsable: &str) -> String {
    parsable
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn save(submission: &Submission) -> Result<()> {
    let json = serde_json::to_string_pretty(submission).expect("a submission serialises");
    write_atomic(
        &folder(&submission.grid.out).join("grid.json"),
        json.as_bytes(),
    )
}

/// Reads what was submitted for the grid in `out`.
pub fn read_submission(out: &Path) -> Result<Submission> {
    let path = folder(out).join("grid.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::in_file(
            out,
            format!("holds no grid submitted to Slurm (slurm/grid.json: {e})"),
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Error::in_file(&path, format!("not a grid submission: {e}")))
}

/// Submits every shard of `grid` and its collect job; returns what was submitted.
pub fn submit(grid: Grid, options: SlurmOptions) -> Result<Submission> {
    if grid.shards == 0 {
        return Err(Error::setting(
            "shards",
            Some("0".into()),
            "must be at least 1",
        ));
    }
    // A grid submitted before: its marks would say shards of this one are done.
    let done = folder(&grid.out).join("done");
    if done.is_dir() {
        std::fs::remove_dir_all(&done).map_err(|e| Error::io(&done, e))?;
    }
    let mut submission = Submission {
        shard_jobs: vec![String::new(); grid.shards],
        grid,
        options,
        collect_job: String::new(),
    };
    let all: Vec<usize> = (0..submission.grid.shards).collect();
    submit_shards(&mut submission, &all, &[])?;
    Ok(submission)
}

/// The scheduler's state of a job or array task: Slurm's word (PENDING, RUNNING, COMPLETED,
/// FAILED, CANCELLED, …), or `None` when the scheduler does not know the job (any more).
fn job_state(job: &str) -> Option<String> {
    let text = slurm("scontrol", &["show", "job", job, "--oneliner"]).ok()?;
    let state = text
        .split_whitespace()
        .find_map(|f| f.strip_prefix("JobState="))?;
    Some(state.to_owned())
}

/// Every shard's state, and the collect job's (Slurm's word, when it knows the job).
pub fn status(out: &Path) -> Result<(Submission, Vec<ShardState>, Option<String>)> {
    let submission = read_submission(out)?;
    let states = (0..submission.grid.shards)
        .map(|shard| {
            if done_mark(out, shard).is_file() {
                return ShardState::Done;
            }
            match job_state(&submission.task(shard)).as_deref() {
                Some("PENDING" | "REQUEUED" | "CONFIGURING") => ShardState::Pending,
                Some("RUNNING" | "COMPLETING" | "SUSPENDED") => ShardState::Running,
                // A task writes its mark before it ends: one that ended since the mark was
                // looked at has it now.
                _ if done_mark(out, shard).is_file() => ShardState::Done,
                _ => ShardState::Failed,
            }
        })
        .collect();
    let collect = job_state(&submission.collect_job);
    Ok((submission, states, collect))
}

/// Submits again the shards that are neither done nor queued nor running, with a new collect
/// job that waits for them; the shards still queued or running keep their jobs, which the new
/// collect job waits for too. Returns the shards submitted.
pub fn resubmit(out: &Path) -> Result<Vec<usize>> {
    let (mut submission, states, _) = status(out)?;
    let failed: Vec<usize> = (0..states.len())
        .filter(|&i| states[i] == ShardState::Failed)
        .collect();
    if failed.is_empty() {
        return Ok(failed);
    }
    let still: Vec<String> = (0..states.len())
        .filter(|&i| matches!(states[i], ShardState::Pending | ShardState::Running))
        .map(|i| submission.task(i))
        .collect();
    // The old collect job waits for tasks that will never succeed: it goes.
    let _ = slurm("scancel", &[&submission.collect_job]);
    submit_shards(&mut submission, &failed, &still)?;
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Grid {
        Grid {
            name: "whichgan-figure3".into(),
            out: PathBuf::from("/data/sweep"),
            shards: 4,
            shard_command: ["/opt/whichgan", "toy", "figure3", "--out", "/data/sweep"]
                .map(String::from)
                .to_vec(),
            collect_command: [
                "/opt/whichgan",
                "toy",
                "merge",
                "/data/sweep",
                "--out",
                "/data/it's",
            ]
            .map(String::from)
            .to_vec(),
        }
    }

    #[test]
    fn the_scripts_hold_the_options_and_the_same_command() {
        let options = SlurmOptions {
            partition: Some("gpu".into()),
            time: Some("1-00:00:00".into()),
            gpus_per_task: Some(1),
            cpus_per_task: Some(8),
            mem: Some("32G".into()),
            account: Some("lab".into()),
            max_parallel: Some(2),
            extra: vec!["--qos=long".into(), "#SBATCH --constraint=a100".into()],
        };
        let array = array_script(&grid(), &options, &[0, 2, 3]);
        for line in [
            "#SBATCH --job-name=whichgan-figure3",
            "#SBATCH --partition=gpu",
            "#SBATCH --time=1-00:00:00",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --cpus-per-task=8",
            "#SBATCH --mem=32G",
            "#SBATCH --account=lab",
            "#SBATCH --qos=long",
            "#SBATCH --constraint=a100",
            "#SBATCH --array=0,2-3%2",
            "/opt/whichgan toy figure3 --out /data/sweep --shard \"$i/4\"",
            "mv /data/sweep/slurm/done/.shard-\"$i\".tmp /data/sweep/slurm/done/shard-\"$i\"",
        ] {
            assert!(array.lines().any(|l| l == line), "{line} not in:\n{array}");
        }
        assert_eq!(index_list(&[0, 1, 2, 3, 5, 7, 8]), "0-3,5,7-8");
        let collect = collect_script(&grid(), &options);
        assert!(collect.contains("/opt/whichgan toy merge /data/sweep --out '/data/it'\\''s'\n"));
        assert!(collect.contains("#SBATCH --job-name=whichgan-figure3-collect"));
        assert!(!collect.contains("--gpus-per-task") && !collect.contains("--array"));
    }
}
