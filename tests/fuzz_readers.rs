//! Every reader of files that come from elsewhere, fed mutated copies of a valid file: bits
//! flipped, bytes set to boundary values, cuts, repeated and dropped runs, inserted bytes. Each
//! input is read or refused with an error naming the file; a panic fails the test and keeps the
//! input (`FUZZ_KEEP` names a folder for it). The mutations are seeded, so a failure repeats.
//!
//! One test per reader, so that a long run (`experiments/bench/fuzz-long`) can give each its own
//! process and time: `FUZZ_INPUTS` raises the number of inputs, `FUZZ_SECONDS` runs each reader
//! for that long instead. Every reader prints its inputs, the slowest one's time and the
//! process's peak memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use whichgan::Result;

/// Inputs per reader in the test suite.
const INPUTS: usize = 2000;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// How long a reader is fuzzed: `count` inputs, or `FUZZ_SECONDS` of them.
enum Budget {
    Inputs(usize),
    Time(Duration),
}

impl Budget {
    /// `default` inputs unless the environment asks for more.
    fn from_env(default: usize) -> Budget {
        match env_number("FUZZ_SECONDS") {
            Some(s) => Budget::Time(Duration::from_secs(s)),
            None => Budget::Inputs(env_number("FUZZ_INPUTS").map_or(default, |n| n as usize)),
        }
    }

    fn goes_on(&self, done: usize, started: Instant) -> bool {
        match self {
            Budget::Inputs(n) => done < *n,
            Budget::Time(t) => started.elapsed() < *t,
        }
    }
}

/// The peak resident memory of this process so far, in MiB.
fn peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

/// A small deterministic generator (64-bit LCG, high bits).
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }
}

/// One to three mutations of `seed`.
fn mutate(seed: &[u8], draws: &mut Draws) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + draws.below(3) {
        if b.is_empty() {
            b.push(draws.next() as u8);
            continue;
        }
        let at = draws.below(b.len());
        match draws.below(6) {
            0 => b[at] ^= 1 << draws.below(8),
            1 => b[at] = [0x00, 0xff, 0x7f, 0x80, b'0', b'9'][draws.below(6)],
            2 => b.truncate(at),
            3 => {
                let len = draws.below(64).min(b.len() - at);
                let run = b[at..at + len].to_vec();
                b.splice(at..at, run);
            }
            4 => {
                let len = draws.below(64).min(b.len() - at);
                b.drain(at..at + len);
            }
            _ => {
                let bytes: Vec<u8> = (0..1 + draws.below(8))
                    .map(|_| draws.next() as u8)
                    .collect();
                b.splice(at..at, bytes);
            }
        }
    }
    b
}

/// Reads mutations of `seed` (written to `path`) with `read` for as long as `budget` says.
fn fuzz_at(path: &Path, seed: &[u8], budget: Budget, read: impl Fn(&Path) -> Result<()>) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut draws = Draws(name.bytes().fold(17, |h, c| h * 31 + c as u64));
    let (mut read_ok, mut refused) = (0, 0);
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    while budget.goes_on(read_ok + refused, started) {
        let i = read_ok + refused;
        let bytes = mutate(seed, &mut draws);
        std::fs::write(path, &bytes).unwrap();
        let began = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(path)));
        slowest = slowest.max(began.elapsed());
        match outcome {
            Ok(Ok(())) => read_ok += 1,
            Ok(Err(e)) => {
                let text = e.to_string();
                assert!(
                    !text.contains('\n'),
                    "{name} input {i}: a multi-line error: {text}"
                );
                refused += 1;
            }
            Err(_) => {
                let keep = std::env::var_os("FUZZ_KEEP")
                    .map(PathBuf::from)
                    .unwrap_or_else(std::env::temp_dir)
                    .join(format!("fuzz-{i}-{name}"));
                std::fs::write(&keep, &bytes).unwrap();
                panic!("{name}: input {i} made the reader panic (kept in {keep:?})");
            }
        }
    }
    eprintln!(
        "fuzz {name}: {} inputs in {:.0} s, {read_ok} read, {refused} refused; slowest {:.3} s; \
         seed {} bytes; peak memory {:.0} MiB",
        read_ok + refused,
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64(),
        seed.len(),
        peak_rss_mib()
    );
}

/// [`fuzz_at`] a file of its own in a temporary folder.
fn fuzz(name: &str, seed: &[u8], inputs: usize, read: impl Fn(&Path) -> Result<()>) {
    let dir = tempfile::tempdir().unwrap();
    fuzz_at(&dir.path().join(name), seed, Budget::from_env(inputs), read);
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(path),
    )
    .unwrap()
}

fn npy_seed() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("a.npy");
    let values: Vec<f32> = (0..15).map(|i| i as f32 / 3.0).collect();
    whichgan::io::write_npy_f32(&npy, &[5, 3], &values).unwrap();
    std::fs::read(&npy).unwrap()
}

#[test]
fn points_csv() {
    let csv = b"x,y\n1.5,2\n-3,4e-2\n\n5,6\n";
    fuzz("points.csv", csv, INPUTS, |p| {
        whichgan::io::load_points(p).map(drop)
    });
}

#[test]
fn points_npy() {
    fuzz("points.npy", &npy_seed(), INPUTS, |p| {
        whichgan::io::load_points(p).map(drop)
    });
}

#[test]
fn features_npy() {
    fuzz("features.npy", &npy_seed(), INPUTS, |p| {
        whichgan::features::read_features(p).map(drop)
    });
}

fn curve(p: &Path) -> Result<()> {
    whichgan::metrics::convergence::read_curve(p, "fid50k_full").map(drop)
}

#[test]
fn training_log_jsonl() {
    let log = b"{\"kimg\":4.0,\"fid50k_full\":30.5}\n{\"kimg\":8.0,\"fid50k_full\":20.25}\n\
                {\"kimg\":12,\"fid50k_full\":18}\n";
    fuzz("log.jsonl", log, INPUTS, curve);
}

#[test]
fn official_metric_jsonl() {
    // The lines the official training loop appends to metric-fid50k_full.jsonl.
    let log = br#"{"results": {"fid50k_full": 41.53}, "metric": "fid50k_full", "total_time": 95.2, "total_time_str": "1m 35s", "num_gpus": 1, "snapshot_pkl": "network-snapshot-000000.pkl", "timestamp": 1614124352.1}
{"results": {"fid50k_full": 20.7}, "metric": "fid50k_full", "total_time": 94.1, "total_time_str": "1m 34s", "num_gpus": 1, "snapshot_pkl": "network-snapshot-000200.pkl", "timestamp": 1614130010.7}
"#;
    fuzz("metric-fid50k_full.jsonl", log, INPUTS, curve);
}

#[test]
fn npz_statistics() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (mu, sigma) = (dir.path().join("mu.npy"), dir.path().join("sigma.npy"));
    whichgan::io::write_npy_f32(&mu, &[3], &[0.1, 0.2, 0.3]).unwrap();
    whichgan::io::write_npy_f32(&sigma, &[3, 3], &[1., 0., 0., 0., 1., 0., 0., 0., 1.]).unwrap();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, path) in [("mu.npy", &mu), ("sigma.npy", &sigma)] {
        zip.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&std::fs::read(path).unwrap()).unwrap();
    }
    let npz = zip.finish().unwrap().into_inner();
    fuzz("stats.npz", &npz, INPUTS, |p| {
        whichgan::io::read_npz_stats(p).map(drop)
    });
}

fn tensor_file(p: &Path) -> Result<()> {
    whichgan::io::read_tensor_file(p, &candle_core::Device::Cpu).map(drop)
}

/// A safetensors file of two small tensors, with `meta` as its metadata when given.
fn small_safetensors(meta: Option<(&str, &str)>) -> Vec<u8> {
    use candle_core::{DType, Device, Tensor};
    let tensors = [
        (
            "G.a",
            Tensor::ones((2, 3), DType::F32, &Device::Cpu).unwrap(),
        ),
        ("D.b", Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap()),
    ];
    let meta = meta.map(|(k, v)| std::collections::HashMap::from([(k.to_owned(), v.to_owned())]));
    safetensors::serialize(tensors.iter().map(|(k, t)| (*k, t)), meta).unwrap()
}

#[test]
fn safetensors_file() {
    fuzz(
        "small.safetensors",
        &small_safetensors(None),
        INPUTS,
        tensor_file,
    );
}

// The large official files: fewer inputs, each parsed whole.

#[test]
fn pytorch_zip_checkpoint() {
    let seed = fixture("stylegan2/checkpoint.pt");
    fuzz("checkpoint.pt", &seed, INPUTS / 10, tensor_file);
}

#[test]
fn pytorch_legacy_checkpoint() {
    fuzz(
        "legacy.pth",
        &fixture("torch/legacy.pth"),
        INPUTS,
        tensor_file,
    );
}

#[test]
fn network_pickle() {
    let seed = fixture("pkl/setC/network-snapshot-000100.pkl");
    fuzz("network.pkl", &seed, INPUTS / 10, tensor_file);
}

#[test]
fn network_info() {
    use whichgan::stylegan2::network_info::{NetworkInfo, METADATA_KEY};
    let info = NetworkInfo {
        resolution: Some(32),
        c_dim: Some(10),
        conv_clamp: Some(256.0),
        mbstd_group: Some(4),
        d_architecture: Some("resnet".into()),
        ..Default::default()
    };
    let info = serde_json::to_string(&info).unwrap();
    let seed = small_safetensors(Some((METADATA_KEY, &info)));
    fuzz("meta.safetensors", &seed, INPUTS, |p| {
        whichgan::stylegan2::network_info::NetworkInfo::read(p).map(drop)
    });
}

/// The metadata of a snapshot of `whichgan train` (a run of 16 images at 8 × 8).
const SNAPSHOT_META: &str = r#"{"model":"stylegan2","g_steps":4,"d_steps":4,"images_seen":16,"adam_steps_g":5,"adam_steps_d":5,"seed":0,"rng_word_pos":4637,"config":{"batch":4,"batch_gpu":4,"d_steps":1,"loss":"vanilla","penalty":{"r1":{"gamma":0.0004,"every":16}},"adam_g":{"lr":0.002,"beta1":0.0,"beta2":0.9919919678228657,"eps":1e-8},"adam_d":{"lr":0.0023529411764705885,"beta1":0.0,"beta2":0.9905854573074332,"eps":1e-8},"ema":{"HalfLife":{"kimg":10.0,"rampup":0.05}}},"augment":{"format":1,"p":0.0,"rt":-0.5,"signs_sum":0.0,"signs_count":0,"steps":4,"images_at_last_update":16},"g_penalty":{"format":1,"pl_mean":0.010641753673553467},"extra":{"format":1,"spec":{"preset":{"name":"auto","kimg":25000.0,"batch":4,"batch_gpu":4,"mbstd_group":4,"channel_base":256,"channel_max":32,"mapping_layers":2,"z_dim":16,"lr":0.0025,"gamma":0.0004,"ema_kimg":10.0,"ema_rampup":0.05,"pl_weight":2.0,"style_mixing":0.9,"d_resnet":true,"conv_clamp":256.0},"seed":0,"mirror":false,"aug":{"mode":{"Ada":{"target":0.6,"speed_kimg":500.0}},"pipe":"bgc","p":0.0},"freezed":0,"start":null,"cond":false},"next_tick":24,"next_snap":32}}"#;

#[test]
fn run_state_of_a_snapshot() {
    let seed = small_safetensors(Some(("whichgan", SNAPSHOT_META)));
    let read = |p: &Path| {
        whichgan::run::state::load::<whichgan::run::stylegan2::SnapshotState>(p).map(drop)
    };
    // The seed itself is read: the mutations start from a valid state.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snapshot.safetensors");
    std::fs::write(&path, &seed).unwrap();
    read(&path).unwrap();
    fuzz_at(&path, &seed, Budget::from_env(INPUTS), read);
}

/// Opens the dataset at `p` and loads all of its images and labels, as training does: once
/// skipping images that do not decode, once refusing them.
fn load_dataset(p: &Path) -> Result<()> {
    use whichgan::dataset::{ImageDataset, Resize};
    let d = ImageDataset::open(p)?;
    d.labels()?;
    for skip_bad in [true, false] {
        let size = d.image_size(Resize::None, skip_bad)?;
        d.load(0..d.len(), Resize::None, size, skip_bad)?;
    }
    Ok(())
}

#[test]
fn dataset_zip() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.zip");
    let spec = whichgan::dataset::SynthSpec {
        images: 3,
        classes: 2,
        first_class: 0,
        resolution: 8,
        seed: 0,
    };
    whichgan::dataset::write_synth(&spec, &data).unwrap();
    fuzz(
        "data.zip",
        &std::fs::read(&data).unwrap(),
        INPUTS,
        load_dataset,
    );
}

/// An 8 × 8 RGB image with a gradient, encoded as `format`.
fn encoded_image(format: image::ImageOutputFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8 * 30, y as u8 * 30, 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

/// A folder dataset of two images and their labels, one of its files (`mutated`) fuzzed.
fn fuzz_dataset_folder(extension: &str, image: &[u8], mutated: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (format!("a.{extension}"), format!("b.{extension}"));
    let json = format!(r#"{{"labels": [["{a}", 0], ["{b}", 1]]}}"#);
    std::fs::write(dir.path().join(&a), image).unwrap();
    std::fs::write(dir.path().join(&b), image).unwrap();
    std::fs::write(dir.path().join("dataset.json"), &json).unwrap();
    let seed = if mutated == "dataset.json" {
        json.into_bytes()
    } else {
        image.to_vec()
    };
    load_dataset(dir.path()).unwrap();
    fuzz_at(
        &dir.path().join(mutated),
        &seed,
        Budget::from_env(INPUTS),
        |_| load_dataset(dir.path()),
    );
}

#[test]
fn dataset_folder_png() {
    let png = encoded_image(image::ImageOutputFormat::Png);
    fuzz_dataset_folder("png", &png, "a.png");
}

#[test]
fn dataset_folder_jpeg() {
    let jpeg = encoded_image(image::ImageOutputFormat::Jpeg(90));
    fuzz_dataset_folder("jpg", &jpeg, "a.jpg");
}

#[test]
fn dataset_json() {
    let png = encoded_image(image::ImageOutputFormat::Png);
    fuzz_dataset_folder("png", &png, "dataset.json");
}

#[test]
fn study_file() {
    let study = include_str!("../experiments/presets/study-fast.toml");
    fuzz("study.toml", study.as_bytes(), INPUTS, |p| {
        whichgan::study::Study::read(p).map(drop)
    });
}

#[test]
fn class_probe() {
    let features = whichgan::features::Features {
        n: 6,
        dim: whichgan::features::pixels::DIM,
        data: (0..6 * whichgan::features::pixels::DIM)
            .map(|i| ((i * 7) % 11) as f32)
            .collect(),
        skipped: Vec::new(),
    };
    let probe = whichgan::classes::ClassProbe::fit(
        whichgan::features::ExtractorKind::Pixels,
        &features,
        &[0, 1, 2, 0, 1, 2],
        &Default::default(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.safetensors");
    probe.save(&path).unwrap();
    fuzz(
        "probe.safetensors",
        &std::fs::read(&path).unwrap(),
        INPUTS,
        |p| whichgan::classes::ClassProbe::load(p).map(drop),
    );
}
