//! `whichgan`: the command-line front end. It parses, calls the library, prints; nothing else.

mod bench;
mod convergence_cmd;
mod dataset_cmd;
mod device;
mod features_cmd;
mod metrics_cmd;
mod outputs;
mod report;
mod stylegan2_cmd;
mod toy_cmd;
mod train_cmd;
mod values;

use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "whichgan",
    version,
    about = "Which pretrained GAN is useful? Exact GAN metrics, the toy 2-D GAN lab and StyleGAN2 tools.",
    after_help = "Examples:\n  \
        whichgan metrics w1 target.csv samples.csv\n  \
        whichgan metrics prdc real.npy fake.npy --k 5 --json\n  \
        whichgan metrics fid real_feats.npy fake_feats.npy\n  \
        whichgan metrics corr sweep.csv --x recall --y min_w1\n  \
        whichgan toy train --data fat-circle:r=20,sigma=4 --steps 5000 --out runs/source1\n  \
        whichgan toy field --ckpt runs/source1/checkpoints/last.safetensors \\\n      \
        --target circle:size=20,sigma=0.25 --out field.png\n  \
        whichgan toy reproduce\n  \
        whichgan generate --ckpt ckpt.safetensors --seeds 0-15 --out grid.png\n  \
        whichgan features --extractor inception --weights pt_inception.pth --data flowers.zip --out f.npy\n  \
        whichgan select --target flowers.zip --source imagenet=imagenet-256-state.pt --inception pt_inception.pth --out sel/\n  \
        whichgan train --data flowers.zip --out runs/flowers --cfg paper256 --resume imagenet-256-state.pt\n  \
        whichgan convergence runs/flowers/log.jsonl --metric fid"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluation metrics on point or feature files (.csv with a header row, .npy [N, D]).
    Metrics(metrics_cmd::MetricsArgs),
    /// The toy 2-D GAN lab: train the MLP GAN, draw its gradient field, reproduce the study.
    Toy(toy_cmd::ToyArgs),
    /// Images from a StyleGAN2 checkpoint's generator (PNG grid or .npy).
    Generate(stylegan2_cmd::GenerateArgs),
    /// Logits (and input gradients) of a StyleGAN2 checkpoint's discriminator.
    Discriminate(stylegan2_cmd::DiscriminateArgs),
    /// Image features for metrics: FID Inception-v3 (2048-d) or VGG16 fc2 (4096-d).
    Features(features_cmd::FeaturesArgs),
    /// Rank candidate sources for a target by FID, KID, precision and recall; recommend one.
    Select(features_cmd::SelectArgs),
    /// Train or fine-tune StyleGAN2-ADA (snapshots, metrics, exact resume).
    Train(train_cmd::TrainArgs),
    /// Image datasets in the official zip layout: a synthetic one with classes, or your folder.
    Dataset(dataset_cmd::DatasetArgs),
    /// Convergence rate of training runs from their metric-vs-kimg logs.
    Convergence(convergence_cmd::ConvergenceArgs),
    /// Time the metrics side by side with the public reference implementations.
    Bench(bench::BenchArgs),
}

fn main() {
    quiet_broken_pipe();
    keep_freed_memory();
    short_spins_in_candles_pool();
    thread_count_read_once();
    element_wise_on_the_calling_thread_on_two_cores();
    let cli = Cli::try_parse().unwrap_or_else(|e| usage_error(e));
    let outcome = match cli.command {
        Command::Metrics(args) => metrics_cmd::run(args),
        Command::Toy(args) => {
            single_threaded_tensor_kernels();
            toy_cmd::run(args)
        }
        Command::Generate(args) => stylegan2_cmd::generate(args),
        Command::Discriminate(args) => stylegan2_cmd::discriminate(args),
        Command::Features(args) => {
            single_threaded_tensor_kernels();
            features_cmd::features(args)
        }
        Command::Select(args) => {
            single_threaded_tensor_kernels();
            features_cmd::select(args)
        }
        Command::Train(args) => train_cmd::run(args),
        Command::Dataset(args) => dataset_cmd::run(args),
        Command::Convergence(args) => convergence_cmd::run(args),
        Command::Bench(args) => bench::run(args),
    };
    if let Err(e) = outcome {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Help and version go out as clap prints them (exit 0); a usage error becomes the one
/// `error: …` line of every other failure (exit 2, clap's code for usage errors).
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let command = command_path(&e.to_string()).unwrap_or_else(|| "whichgan".into());
            eprintln!("error: '{command}' needs a subcommand (see '{command} --help')");
        }
        _ => {
            let text = e.to_string();
            let help = match command_path(&text) {
                Some(command) => format!("'{command} --help'"),
                None => "--help".to_owned(),
            };
            eprintln!("error: {} (see {help})", one_line(&text));
        }
    }
    std::process::exit(2)
}

/// clap's message on one line: its first line without the `error: ` prefix, the items of a
/// list it introduces (`… were not provided:` then one argument a line) and the possible
/// values it names further down. Usage and tips are left to `--help`.
fn one_line(text: &str) -> String {
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_owned();
    let rest: Vec<&str> = lines.map(str::trim).collect();
    if line.ends_with(':') {
        let items: Vec<&str> = rest.iter().copied().take_while(|l| !l.is_empty()).collect();
        line = format!("{} {}", line, items.join(", "));
    }
    if let Some(values) = rest.iter().find(|l| l.starts_with("[possible values:")) {
        line = format!("{line} {values}");
    }
    line
}

/// The command a usage error is about (`whichgan dataset synth`), from clap's usage line (which
/// some messages, such as those about a value, do not have).
fn command_path(text: &str) -> Option<String> {
    let usage = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))?;
    let words: Vec<&str> = usage
        .split_whitespace()
        .take_while(|w| !w.starts_with(['[', '<', '-']))
        .collect();
    Some(words.join(" "))
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`whichgan … | head`) would panic;
/// with the default action the process ends quietly, as command-line tools do.
fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to the default at start-up, before any thread.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// mimalloc returns freed memory to the OS after a delay (1 s by default). The image networks free and
/// re-allocate buffers of megabytes in every layer, and faulting their pages in again cost about
/// two thirds of a generator pass on CPU; keeping freed memory (purge delay −1) removes that.
fn keep_freed_memory() {
    // `mi_option_purge_delay`: entry 15 of mimalloc's option enum, in its v2 and v3 alike.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: mimalloc allows setting an option at any time; the index is that of its header.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    // mimalloc asks the kernel for transparent huge pages; the kernel then clears 2 MiB at each
    // first touch of a new region, which cost StyleGAN2 training about a third of its time
    // here (its own THP option is read before `main`). Disabling THP for the process avoids it.
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE only sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// candle splits large element-wise operations over a pool of its own whose threads spin
/// (25 000 rounds by default) waiting for the next one; the spinning competed with the
/// convolutions' threads for the cores and took a sixth of the CPU time of a StyleGAN2
/// discriminator pass on 2 cores. A short spin leaves the cores to the work (the pool reads the
/// variable when it starts, at the first such operation). A value set by the user is kept.
fn short_spins_in_candles_pool() {
    const SPIN: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    if std::env::var_os(SPIN).is_none() {
        std::env::set_var(SPIN, "500");
    }
}

/// Without `RAYON_NUM_THREADS` set, candle works its thread count out again at every matrix
/// product, reading the CPU topology from the system (a StyleGAN2 training cycle on 2 cores ran
/// ~7 % faster without that). The count it finds is set in the variable once, after rayon's
/// global pool has taken its own size, so both keep the sizes they would have had.
fn thread_count_read_once() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        rayon::current_num_threads();
        let threads = candle_core::utils::get_num_threads();
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
}

/// On two cores candle's element-wise kernels run on the calling thread: handing each one to its
/// pool and waking the pool's thread cost more than the second core gained (a StyleGAN2 training
/// cycle ran ~7 % faster without it). With more cores the pool stays. A value set by the user is
/// kept.
fn element_wise_on_the_calling_thread_on_two_cores() {
    const POOL: &str = "CANDLE_NUM_THREADS";
    if std::env::var_os(POOL).is_none() && rayon::current_num_threads() <= 2 {
        std::env::set_var(POOL, "1");
    }
}

/// candle's CPU kernels split even tiny matrix products over every core, which at the toy
/// networks' sizes costs more than it gains (one thread runs a training cycle about twice as
/// fast); sweeps get their parallelism by running several models at once instead, and the
/// feature extractors by embedding several images at once (its thread pool spins between
/// element-wise kernels: ~16 % of an Inception pass). candle reads
/// its thread count from `RAYON_NUM_THREADS` at each product, so the variable is set here, once,
/// before any work starts and after the global thread pool has taken its own size.
pub(crate) fn single_threaded_tensor_kernels() {
    rayon::current_num_threads();
    std::env::set_var("RAYON_NUM_THREADS", "1");
}
