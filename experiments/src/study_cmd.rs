//! `whichgan study run|report|init`: the image-scale study as one grid of jobs.

use crate::cluster::{absolute, this_program, SlurmArgs};
use crate::device::parse_device;
use crate::report::Report;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use whichgan::run::slurm::Grid;
use whichgan::run::Shard;
use whichgan::study::{run_study, write_report, Study, StudyFile, StudyOptions};
use whichgan::{Error, Result};

/// The built-in study files: (name, what it is, TOML).
const PRESETS: [(&str, &str, &str); 3] = [
    (
        "fast",
        "the tiny study's graph at toy sizes, for tests (minutes)",
        include_str!("../presets/study-fast.toml"),
    ),
    (
        "tiny",
        "all synthetic, sized for a 2-core CPU (under an hour)",
        include_str!("../presets/study-tiny.toml"),
    ),
    (
        "paper",
        "a template of the paper's setting to fill with your paths",
        include_str!("../presets/study-paper.toml"),
    ),
];

#[derive(Args)]
pub struct StudyArgs {
    #[command(subcommand)]
    what: StudyWhat,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum StudyWhat {
    /// Run the study's jobs: pretraining, selection scores, fine-tunes and their evaluation.
    #[command(after_help = "Examples:\n  \
        whichgan study run --preset fast --out study-fast/\n  \
        whichgan study init --preset paper my-study.toml   # edit its paths, then:\n  \
        whichgan study run my-study.toml --out study/ --device cuda:0\n  \
        whichgan study run my-study.toml --out study/ --jobs 2\n  \
        for i in 0 1 2 3; do whichgan study run my-study.toml --out study/ --shard $i/4 & done\n  \
        whichgan study run my-study.toml --out study/ --slurm --shards 16 --gpus-per-task 1 \\\n      \
        --time 3-00:00:00 --device cuda:0\n\n\
        Every job is skipped when done and resumed where a killed run left it. Shards may run \
        at once or one after another, on one machine or several sharing the folder: a job \
        another shard needs first is run by whoever gets to it, the others wait. A run of the \
        whole grid (no --shard) ends with `study report`'s files in OUT/report.")]
    Run {
        /// The study file (TOML; `study init` writes a documented one).
        study: Option<PathBuf>,
        /// A built-in study instead of a file: fast, tiny or paper (a template: see `study init`).
        #[arg(long, conflicts_with = "study")]
        preset: Option<String>,
        /// The study's folder.
        #[arg(long)]
        out: PathBuf,
        /// Run only every N-th job, starting at the i-th (0 ≤ i < N).
        #[arg(long, value_name = "i/N", conflicts_with_all = ["jobs", "slurm"])]
        shard: Option<String>,
        /// Run the grid as this many shards in parallel processes (logs in OUT/logs).
        #[arg(long, conflicts_with = "slurm")]
        jobs: Option<usize>,
        /// cpu (cuda:N in a CUDA build)
        #[arg(long, default_value = "cpu")]
        device: String,
        #[command(flatten)]
        slurm: Box<SlurmArgs>,
    },
    /// Tables, figures and a README checking the study's claims, from a finished study folder.
    #[command(after_help = "Example:\n  whichgan study report study/ --out plots/image-study")]
    Report {
        /// The study's folder.
        dir: PathBuf,
        /// Where to write (default: DIR/report).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a built-in study file to edit.
    #[command(after_help = "Example:\n  whichgan study init --preset paper my-study.toml")]
    Init {
        /// fast, tiny or paper.
        #[arg(long)]
        preset: String,
        /// The file to write.
        file: PathBuf,
    },
}

fn preset(name: &str) -> Result<&'static str> {
    PRESETS
        .iter()
        .find(|p| p.0 == name)
        .map(|p| p.2)
        .ok_or_else(|| {
            let names: Vec<String> = PRESETS
                .iter()
                .map(|p| format!("{} ({})", p.0, p.1))
                .collect();
            Error::invalid(format!(
                "no study preset '{name}': expected {}",
                names.join(", ")
            ))
        })
}

/// The study of a file or a preset (whose paths are relative to the working folder).
fn read_study(file: Option<&Path>, preset_name: Option<&str>) -> Result<Study> {
    match (file, preset_name) {
        (Some(path), _) => Study::read(path),
        (None, Some(name)) => {
            let text = preset(name)?;
            let label = PathBuf::from(format!("preset {name}"));
            let file = StudyFile::parse(text, &label)?;
            Study::check(&file, Path::new(".")).map_err(|e| e.located_in(&label))
        }
        (None, None) => Err(Error::invalid(
            "give a study file or `--preset` (see 'whichgan study run --help')",
        )),
    }
}

pub fn run(args: StudyArgs) -> Result<()> {
    match args.what {
        StudyWhat::Run {
            study,
            preset,
            out,
            shard,
            jobs,
            device,
            slurm,
        } => {
            let s = read_study(study.as_deref(), preset.as_deref())?;
            if slurm.slurm {
                let out = absolute(&out)?;
                let exe = this_program()?;
                let mut shard_command = vec![exe.clone(), "study".into(), "run".into()];
                match (&study, &preset) {
                    (Some(file), _) => shard_command.push(absolute(file)?.display().to_string()),
                    (None, Some(name)) => {
                        shard_command.extend(["--preset".to_owned(), name.clone()])
                    }
                    (None, None) => unreachable!("read_study needs one"),
                }
                let folder = out.display().to_string();
                shard_command.extend(["--out".into(), folder.clone(), "--device".into(), device]);
                shard_command.push("--json".into());
                let jobs = whichgan::study::jobs::grid(&s).len();
                let grid = Grid {
                    name: "whichgan-study".into(),
                    out: out.clone(),
                    shards: slurm.shard_count(32, jobs)?,
                    shard_command,
                    collect_command: vec![
                        exe,
                        "study".into(),
                        "report".into(),
                        folder,
                        "--json".into(),
                    ],
                };
                return slurm.submit(grid, args.json);
            }
            let device = parse_device(&device)?;
            let shard: Option<Shard> = shard.as_deref().map(str::parse).transpose()?;
            let mut report = Report::new().with("out", out.display().to_string());
            match jobs {
                Some(0) => return Err(Error::invalid("--jobs must be at least 1")),
                Some(j) => {
                    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
                    run_in_processes(j, &out)?;
                    report = report.with("shards", j);
                }
                None => {
                    let opts = StudyOptions {
                        out: out.clone(),
                        shard,
                        device,
                        progress: !args.json,
                    };
                    let json = args.json;
                    let outcome = run_study(&s, &opts, |line| {
                        if !json {
                            eprintln!("{line}");
                        }
                    })?;
                    report = report
                        .with("jobs", outcome.jobs)
                        .with("ran", outcome.ran.len())
                        .with("skipped", outcome.skipped);
                    if let Some(shard) = shard {
                        report.with("shard", shard.to_string()).print(args.json);
                        return Ok(());
                    }
                }
            }
            let written = write_report(&out, &out.join("report"))?;
            report
                .with("report", written.folder.display().to_string())
                .print(args.json);
            Ok(())
        }
        StudyWhat::Report { dir, out } => {
            let out = out.unwrap_or_else(|| dir.join("report"));
            let written = write_report(&dir, &out)?;
            Report::new()
                .with("report", written.folder.display().to_string())
                .with("files", written.files.join(", "))
                .print(args.json);
            Ok(())
        }
        StudyWhat::Init { preset: name, file } => {
            let text = preset(&name)?;
            crate::outputs::check_output_files(&[("FILE", &file)], &[])?;
            if file.exists() {
                return Err(Error::in_file(
                    &file,
                    "already exists; remove it or choose another name",
                ));
            }
            whichgan::io::write_atomic(&file, text.as_bytes())?;
            Report::new()
                .with("written", file.display().to_string())
                .print(args.json);
            Ok(())
        }
    }
}

/// Runs the grid as `count` shards, each this program with the same arguments and
/// `--shard i/count`, its output in OUT/logs/shard-i-of-count.log.
fn run_in_processes(count: usize, out: &Path) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::invalid(format!("cannot find this program: {e}")))?;
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| Error::io(&logs, e))?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut base = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if a == "--jobs" {
            skip = true;
            continue;
        }
        if a.starts_with("--jobs=") || a == "--json" {
            continue;
        }
        base.push(a);
    }
    let mut children = Vec::new();
    for i in 0..count {
        let log = logs.join(format!("shard-{i}-of-{count}.log"));
        let file = std::fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
        let err = file.try_clone().map_err(|e| Error::io(&log, e))?;
        let child = std::process::Command::new(&exe)
            .args(&base)
            .arg("--shard")
            .arg(format!("{i}/{count}"))
            .arg("--json")
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::invalid(format!("cannot start shard {i}/{count}: {e}")))?;
        children.push((i, log, child));
    }
    let mut failed = Vec::new();
    for (i, log, mut child) in children {
        let status = child.wait().map_err(|e| Error::io(&log, e))?;
        if !status.success() {
            failed.push(format!("{i}/{count} (see {})", log.display()));
        }
    }
    if !failed.is_empty() {
        return Err(Error::invalid(format!(
            "shards failed: {}",
            failed.join(", ")
        )));
    }
    Ok(())
}
