//! `whichgan toy …`: the 2-D GAN lab.

use crate::cluster::{absolute, this_program, SlurmArgs};
use crate::outputs::check_output_files;
use crate::report::Report;
use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use whichgan::io::create_writable_dir;
use whichgan::run::slurm::Grid;
use whichgan::train::{Loss, Penalty};
use whichgan::{Error, Result};
use whichgan_toy::field::plot_field;
use whichgan_toy::study::figure3::{self, Shard, SweepPlan};
use whichgan_toy::study::probe::Arithmetic;
use whichgan_toy::study::reproduce::reproduce;
use whichgan_toy::study::runs::TargetStudy;
use whichgan_toy::study::{ablation, coverage, figure2, Preset, Protocol, StudyOptions, PRESETS};
use whichgan_toy::train::{playground_config, train_run, Init, TrainOptions};
use whichgan_toy::Distribution;

#[derive(Args)]
#[command(after_help = "Examples:\n  \
    whichgan toy train --data fat-circle:r=20,sigma=4 --steps 5000 --out runs/source1\n  \
    whichgan toy field --ckpt runs/source1/checkpoints/last.safetensors \\\n    \
    --target circle:size=20,sigma=0.25 --out field.png\n  \
    whichgan toy figure2 --seeds 3 --out plots/\n  \
    whichgan toy reproduce --preset fast --out /tmp/quick")]
pub struct ToyArgs {
    #[command(subcommand)]
    command: ToyCommand,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum ToyCommand {
    /// Train the playground's MLP GAN on a 2-D distribution (exact W1 curve, checkpoints).
    #[command(after_help = "Distributions (SPEC):\n  \
        fat-circle:r=20,sigma=4          the study's Source-I\n  \
        circle:size=20,sigma=0.5,modes=3 the study's Source-II\n  \
        circle:size=20,sigma=0.25        the study's target\n  \
        grid:size=4,sigma=0.2   grid2d:size=3   spiral:rotations=5,r-step=0.2,r0=1\n  \
        csv:points.csv                   rows of a CSV file (columns x,y)\n\n\
        Examples:\n  \
        whichgan toy train --data fat-circle:r=20,sigma=4 --steps 5000 --out runs/source1\n  \
        whichgan toy train --data circle:size=20,sigma=0.25 --steps 1000 --out runs/ft \\\n    \
        --init runs/source1/checkpoints/last.safetensors\n  \
        whichgan toy train --data circle:size=20,sigma=0.25 --steps 1000 --out runs/ft --resume")]
    Train(TrainArgs),
    /// Draw a checkpoint's G samples, the target and D's gradient field (PNG + SVG).
    #[command(
        after_help = "Arrows show ∇ₓ log D(x) = −∇ₓ L_G(x): the direction in which a \
        generator update moves a sample at x (unit length; magnitudes differ by orders).\n\n\
        Example:\n  whichgan toy field --ckpt runs/source1/checkpoints/last.safetensors \\\n    \
        --target circle:size=20,sigma=0.25 --out field.png"
    )]
    Field {
        /// A toy training checkpoint.
        #[arg(long)]
        ckpt: PathBuf,
        /// Distribution whose samples are drawn under the field.
        #[arg(long)]
        target: String,
        /// Output image: NAME.png (or NAME.svg); NAME.png and NAME.svg are written.
        #[arg(long)]
        out: PathBuf,
        /// Seed of the drawn G and target samples.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Figure 2: train on the target from Source-I, from Source-II and from scratch.
    #[command(
        after_help = "Pretrains G and D on Source-I (fat circle) and Source-II (3 of the 10 \
        target modes), then trains on the target from each and from scratch, for every seed.\n\
        Writes figure2.csv and figure2.png/.svg.\n\n\
        Example:\n  whichgan toy figure2 --seeds 3 --out plots/"
    )]
    Figure2(StudyArgs),
    /// Figure 3: recall and ∇D similarity of a source run's checkpoints vs their fine-tuned W1
    #[command(
        after_help = "Measures every checkpoint of a Source-I run (recall against the \
        target, ∇D similarity in both signs), fine-tunes each on the target and correlates the \
        measurements with the minimum W1. Writes figure3.csv, figure3-correlations.csv and \
        figure3.png/.svg.\n\n\
        Spread a sweep over machines with --shard i/N (each job writes \
        figure3-shard-i-of-N.csv/.json) and join the shards with `whichgan toy merge`; or let \
        Slurm do both with --slurm (see `whichgan jobs status`).\n\n\
        --protocol playground counts steps as the public playground does (checkpoint s after \
        s + 1 G updates); --recall-arithmetic f32-expanded reports its float32 recall. The CSV \
        files hold both recalls; `toy reproduce` compares with the playground's own runs when \
        OUT/reference/ holds them.\n\n\
        Examples:\n  whichgan toy figure3 --out plots/\n  \
        whichgan toy figure3 --seeds 5 --protocol playground --recall-arithmetic f32-expanded \\\n    \
        --out plots/figure3-protocols/playground\n  \
        for i in 0 1 2 3; do whichgan toy figure3 --shard $i/4 --out sweep/; done\n  \
        whichgan toy merge sweep/ --out plots/\n  \
        whichgan toy figure3 --out sweep/ --slurm --shards 10 --partition cpu --time 1:00:00"
    )]
    Figure3 {
        #[command(flatten)]
        study: StudyArgs,
        #[command(flatten)]
        sweep: SweepArgs,
        /// Run only every N-th fine-tune, starting at the i-th (i/N, 0 ≤ i < N).
        #[arg(long, conflicts_with = "slurm")]
        shard: Option<String>,
        #[command(flatten)]
        slurm: SlurmArgs,
    },
    /// Join the shards of a `figure3 --shard` sweep into the single-run outputs.
    #[command(after_help = "Example:\n  whichgan toy merge sweep/ --out plots/")]
    Merge {
        /// Folders holding figure3-shard-*-of-*.csv/.json files.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Output folder.
        #[arg(long, default_value = "plots")]
        out: PathBuf,
        /// exact | f32-expanded: the recall and precision the figure uses (see `toy figure3`).
        #[arg(long, default_value = "exact",
              value_parser = PossibleValuesParser::new(Arithmetic::NAMES))]
        recall_arithmetic: String,
    },
    /// The G/D ablation: pretrained or random G × pretrained or random D, for each source.
    #[command(
        after_help = "Writes ablation.csv, ablation-ranking.csv and ablation.png/.svg.\n\n\
        Example:\n  whichgan toy ablation --seeds 3 --out plots/"
    )]
    Ablation(StudyArgs),
    /// Modes covered, precision and recall over fine-tuning from Source-I, Source-II, scratch.
    #[command(
        after_help = "A mode is covered with at least 10 samples within 3σ of its centre.\n\
        Writes coverage.csv and coverage.png/.svg.\n\n\
        Example:\n  whichgan toy coverage --out plots/"
    )]
    Coverage(StudyArgs),
    /// All four experiments, their figures and CSV files, and a README with the headline numbers.
    #[command(
        after_help = "Presets: paper (the study's budgets; ~10 min on 2 cores), fast (a \
        smoke test in under 2 min).\n\n\
        With --slurm the Figure 3 sweep runs as a job array (OUT/figure3-shards) and the \
        collect job runs the rest with --sweep-from.\n\n\
        Examples:\n  whichgan toy reproduce\n  whichgan toy reproduce --preset fast --out /tmp/quick\n  \
        whichgan toy reproduce --slurm --shards 8 --time 1:00:00"
    )]
    Reproduce {
        #[command(flatten)]
        study: StudyArgs,
        #[command(flatten)]
        sweep: SweepArgs,
        /// Take the Figure 3 sweep from the shards in this folder (`toy figure3 --shard`)
        /// instead of running it.
        #[arg(long, conflicts_with = "slurm")]
        sweep_from: Option<PathBuf>,
        #[command(flatten)]
        slurm: SlurmArgs,
    },
}

/// What every experiment takes.
#[derive(Args)]
struct StudyArgs {
    /// Budgets: paper (the study's) or fast (a quick check).
    #[arg(long, default_value = "paper", ignore_case = true,
          value_parser = PossibleValuesParser::new(PRESETS.map(|p| p.name)))]
    preset: String,
    /// The first seed; repeats use the next ones.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seeds to run: each experiment repeats its runs once per seed (default: the preset's —
    /// paper: 3 for figure2, ablation and coverage, 1 for the figure3 sweep).
    #[arg(long)]
    seeds: Option<u64>,
    /// Output folder (created if missing; the experiment's files in it are replaced).
    #[arg(long, default_value = "plots")]
    out: PathBuf,
    /// Runs trained at once (default: one per core).
    #[arg(long)]
    jobs: Option<usize>,
}

/// How the Figure 3 sweep counts steps and which recall it reports.
#[derive(Args)]
struct SweepArgs {
    /// updates: checkpoint s is after s G updates (0: the random initialisation), W1 after 0,
    /// 250, …; playground: the public code's counter, checkpoint s is after s + 1 updates, W1
    /// after 1, 251, ….
    #[arg(long, default_value = "updates",
          value_parser = PossibleValuesParser::new(Protocol::NAMES))]
    protocol: String,
    /// exact: k-NN recall and precision decided exactly; f32-expanded: in the public code's
    /// float32 |u|² − 2u·v + |v|². The figure and the headline use this one; the CSV files
    /// hold both.
    #[arg(long, default_value = "exact",
          value_parser = PossibleValuesParser::new(Arithmetic::NAMES))]
    recall_arithmetic: String,
}

impl SweepArgs {
    fn arguments(&self) -> Vec<String> {
        vec![
            "--protocol".to_owned(),
            self.protocol.clone(),
            "--recall-arithmetic".to_owned(),
            self.recall_arithmetic.clone(),
        ]
    }

    fn options(&self, study: &StudyArgs, json: bool) -> Result<StudyOptions> {
        Ok(StudyOptions {
            protocol: self.protocol.parse()?,
            recall_arithmetic: self.recall_arithmetic.parse()?,
            ..study.options(json)?
        })
    }
}

impl StudyArgs {
    /// These options as arguments of another `whichgan toy` command writing into `out`.
    fn arguments(&self, out: &Path) -> Vec<String> {
        let mut args = vec![
            "--preset".to_owned(),
            self.preset.clone(),
            "--seed".to_owned(),
            self.seed.to_string(),
        ];
        if let Some(n) = self.seeds {
            args.extend(["--seeds".to_owned(), n.to_string()]);
        }
        if let Some(j) = self.jobs {
            args.extend(["--jobs".to_owned(), j.to_string()]);
        }
        args.extend([
            "--out".to_owned(),
            out.display().to_string(),
            "--json".to_owned(),
        ]);
        args
    }

    /// The Figure 3 sweep as array tasks writing into `shards_out` (as many as `slurm` asks, 10
    /// by default, at most one per fine-tune), collected by `collect`.
    fn sweep_grid(
        &self,
        sweep: &SweepArgs,
        name: &str,
        slurm: &SlurmArgs,
        shards_out: &Path,
        collect: Vec<String>,
    ) -> Result<Grid> {
        let tasks = SweepPlan::new(&sweep.options(self, true)?)
            .tasks_of(None)
            .len();
        let shards = slurm.shard_count(10, tasks)?;
        let exe = this_program()?;
        let mut shard_command = vec![exe.clone(), "toy".into(), "figure3".into()];
        shard_command.extend(self.arguments(shards_out));
        shard_command.extend(sweep.arguments());
        Ok(Grid {
            name: name.to_owned(),
            out: shards_out.to_owned(),
            shards,
            shard_command,
            collect_command: std::iter::once(exe).chain(collect).collect(),
        })
    }

    fn options(&self, json: bool) -> Result<StudyOptions> {
        if self.seeds == Some(0) {
            return Err(Error::invalid("--seeds must be at least 1"));
        }
        let preset = Preset::by_name(&self.preset.to_ascii_lowercase())?;
        let seeds = self.seeds.unwrap_or(preset.seeds.max(preset.sweep_seeds));
        if self.seed.checked_add(seeds).is_none() {
            return Err(Error::invalid(
                "--seed is too large for the number of seeds",
            ));
        }
        Ok(StudyOptions {
            preset,
            seed: self.seed,
            seeds: self.seeds,
            protocol: Protocol::default(),
            recall_arithmetic: Arithmetic::default(),
            progress: !json,
        })
    }
}

#[derive(Args)]
struct TrainArgs {
    /// Target distribution spec (see below).
    #[arg(long)]
    data: String,
    /// G steps to train for (in total, counting those of a resumed run).
    #[arg(long)]
    steps: u64,
    /// Output folder: checkpoints/, w1.csv.
    #[arg(long)]
    out: PathBuf,
    /// Start G and D from this checkpoint (fresh optimiser state).
    #[arg(long, conflicts_with_all = ["init_g", "init_d"])]
    init: Option<PathBuf>,
    /// Start G (and its average) from this checkpoint.
    #[arg(long)]
    init_g: Option<PathBuf>,
    /// Start D from this checkpoint.
    #[arg(long)]
    init_d: Option<PathBuf>,
    /// vanilla | js | wasserstein | hinge
    #[arg(long, default_value = "vanilla")]
    loss: String,
    /// WGAN-GP weight λ (0: no penalty).
    #[arg(long, default_value_t = 0.0)]
    gp: f64,
    /// D steps per G step.
    #[arg(long, default_value_t = 4)]
    d_steps: usize,
    /// Seed of the networks' initialisation and of the training samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Network width (the study: 64).
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Numbered checkpoint every K G steps (0: only the last).
    #[arg(long, default_value_t = 500)]
    save_every: u64,
    /// Exact W1 (2048 vs 2048 samples) every K G steps (0: only at the end).
    #[arg(long, default_value_t = 250)]
    eval_every: u64,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Replace an existing run in --out.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
}

pub fn run(args: ToyArgs) -> Result<()> {
    match args.command {
        ToyCommand::Train(t) => train(t, args.json),
        ToyCommand::Field {
            ckpt,
            target,
            out,
            seed,
        } => {
            let target: Distribution = target.parse()?;
            let stem = figure_stem(&out)?;
            let [png, svg] = whichgan::plot::figure_files(&stem).map_err(|e| e.in_file(&stem))?;
            check_output_files(&[("--out", &png), ("--out", &svg)], &[])?;
            plot_field(&ckpt, &target, &stem, seed)?;
            Report::new()
                .with("png", png.display().to_string())
                .with("svg", svg.display().to_string())
                .print(args.json);
            Ok(())
        }
        ToyCommand::Figure2(study) => in_pool(study.jobs, || {
            let opts = study.options(args.json)?;
            create_writable_dir(&study.out)?;
            let summary =
                figure2::write(&study.out, &TargetStudy::run(&figure2::starts(), &opts)?)?;
            print_summary(&summary, args.json, &study.out);
            Ok(())
        }),
        ToyCommand::Figure3 {
            study,
            sweep,
            shard: _,
            slurm,
        } if slurm.slurm => {
            let out = absolute(&study.out)?;
            let collect = ["toy", "merge", &out.display().to_string(), "--out"]
                .iter()
                .map(|s| s.to_string())
                .chain([out.display().to_string(), "--json".into()])
                .chain([
                    "--recall-arithmetic".into(),
                    sweep.recall_arithmetic.clone(),
                ])
                .collect();
            let grid = study.sweep_grid(&sweep, "whichgan-figure3", &slurm, &out, collect)?;
            slurm.submit(grid, args.json)
        }
        ToyCommand::Figure3 {
            study,
            sweep,
            shard,
            ..
        } => in_pool(study.jobs, || {
            let opts = sweep.options(&study, args.json)?;
            let shard: Option<Shard> = shard.as_deref().map(str::parse).transpose()?;
            create_writable_dir(&study.out)?;
            let plan = SweepPlan::new(&opts);
            if let Some(s) = shard {
                let tasks = plan.tasks_of(None).len();
                if s.count > tasks {
                    return Err(Error::invalid(format!(
                        "--shard {}/{}: the sweep has only {tasks} fine-tunes",
                        s.index, s.count
                    )));
                }
            }
            let progress = shard.map(|s| figure3::progress_dir(&study.out, s));
            let rows = figure3::sweep(&opts, &plan, shard, progress.as_deref())?;
            match shard {
                Some(shard) => {
                    figure3::write_shard(&study.out, &plan, shard, &rows)?;
                    Report::new()
                        .with("shard", format!("{}/{}", shard.index, shard.count))
                        .with("fine_tunes", rows.len())
                        .with("out", study.out.display().to_string())
                        .print(args.json);
                }
                None => {
                    let summary =
                        figure3::write_results(&study.out, &plan, &rows, opts.recall_arithmetic)?;
                    print_summary(&summary, args.json, &study.out);
                }
            }
            Ok(())
        }),
        ToyCommand::Merge {
            shards,
            out,
            recall_arithmetic,
        } => {
            let (plan, rows) = figure3::merge(&shards)?;
            create_writable_dir(&out)?;
            let summary = figure3::write_results(&out, &plan, &rows, recall_arithmetic.parse()?)?;
            print_summary(&summary, args.json, &out);
            Ok(())
        }
        ToyCommand::Ablation(study) => in_pool(study.jobs, || {
            let opts = study.options(args.json)?;
            create_writable_dir(&study.out)?;
            let ranking =
                ablation::write(&study.out, &TargetStudy::run(&ablation::starts(), &opts)?)?;
            print_summary(&ranking, args.json, &study.out);
            Ok(())
        }),
        ToyCommand::Coverage(study) => in_pool(study.jobs, || {
            let opts = study.options(args.json)?;
            create_writable_dir(&study.out)?;
            let runs = TargetStudy::run(&coverage::starts(), &opts)?;
            let summary = coverage::write(&study.out, &runs, opts.preset.coverage_samples)?;
            print_summary(&summary, args.json, &study.out);
            Ok(())
        }),
        ToyCommand::Reproduce {
            study,
            sweep,
            slurm,
            ..
        } if slurm.slurm => {
            let out = absolute(&study.out)?;
            let shards_out = out.join("figure3-shards");
            let mut collect: Vec<String> = vec!["toy".into(), "reproduce".into()];
            collect.extend(study.arguments(&out));
            collect.extend(sweep.arguments());
            collect.extend(["--sweep-from".into(), shards_out.display().to_string()]);
            let grid =
                study.sweep_grid(&sweep, "whichgan-reproduce", &slurm, &shards_out, collect)?;
            slurm.submit(grid, args.json)
        }
        ToyCommand::Reproduce {
            study,
            sweep,
            sweep_from,
            ..
        } => in_pool(study.jobs, || {
            let opts = sweep.options(&study, args.json)?;
            let summary = reproduce(&study.out, &opts, sweep_from.as_deref())?;
            print_summary(&summary, args.json, &study.out);
            Ok(())
        }),
    }
}

/// The name a figure's .png and .svg share: `--out` without its .png or .svg. Only that
/// extension goes, since the figure writer appends `.png`/`.svg` to the name as it is
/// (`field.step.500` gives `field.step.500.png`); other extensions would be silently
/// replaced and are refused.
fn figure_stem(out: &Path) -> Result<PathBuf> {
    match out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
    {
        None => Ok(out.to_owned()),
        Some(e) if e == "png" || e == "svg" => Ok(out.with_extension("")),
        Some(e) => Err(Error::in_file(
            out,
            format!("a figure is written as .png and .svg, not .{e}; end --out in .png"),
        )),
    }
}

/// Runs `work` on a pool of `jobs` threads (default: the global pool, one per core).
fn in_pool(jobs: Option<usize>, work: impl FnOnce() -> Result<()> + Send) -> Result<()> {
    match jobs {
        None => work(),
        Some(0) => Err(Error::invalid("--jobs must be at least 1")),
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::invalid(format!("cannot start {n} threads: {e}")))?
            .install(work),
    }
}

/// An experiment's summary: one JSON object with `--json`, else indented JSON for people.
fn print_summary(summary: &impl serde::Serialize, json: bool, out: &Path) {
    let value = serde_json::to_value(summary).expect("summaries serialise");
    if json {
        println!("{value}");
    } else {
        println!(
            "{}\nwritten to {}",
            serde_json::to_string_pretty(&value).expect("summaries serialise"),
            out.display()
        );
    }
}

fn train(args: TrainArgs, json: bool) -> Result<()> {
    let data: Distribution = args.data.parse()?;
    let loss: Loss = args.loss.parse()?;
    if !(args.gp >= 0.0 && args.gp.is_finite()) {
        return Err(Error::invalid(format!("--gp must be ≥ 0, got {}", args.gp)));
    }
    if args.steps == 0 || args.d_steps == 0 || args.width == 0 {
        return Err(Error::invalid(
            "--steps, --d-steps and --width must be positive",
        ));
    }
    let penalty = if args.gp > 0.0 {
        Penalty::WganGp { weight: args.gp }
    } else {
        Penalty::None
    };
    let init = Init {
        g: args.init.clone().or(args.init_g),
        d: args.init.or(args.init_d),
    };
    let options = TrainOptions {
        data,
        data_spec: args.data.clone(),
        steps: args.steps,
        out: args.out,
        init,
        config: playground_config(loss, penalty, args.d_steps),
        width: args.width,
        seed: args.seed,
        save_every: args.save_every,
        eval_every: args.eval_every,
        resume: args.resume,
        overwrite: args.overwrite,
        progress: !json,
    };
    let summary = train_run(&options)?;
    Report::new()
        .with("steps", summary.steps)
        .with("final_w1", summary.final_w1)
        .with("min_w1", summary.min_w1)
        .with("checkpoint", summary.checkpoint.display().to_string())
        .with("resumed_from", summary.resumed_from)
        .print(json);
    Ok(())
}
