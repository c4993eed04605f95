//! Every reader of files that come from elsewhere, fed mutated copies of a valid file: bits
//! flipped, bytes set to boundary values, cuts, repeated and dropped runs, inserted bytes. Each
//! input is read or refused with an error naming the file; a panic fails the test and keeps the
//! input (`FUZZ_KEEP` names a folder for it). The mutations are seeded, so a failure repeats;
//! `FUZZ_INPUTS` raises their number for long runs.

use std::path::{Path, PathBuf};
use whichgan::Result;

/// Inputs per reader (per seed file) in the test suite.
const INPUTS: usize = 2000;

fn inputs(default: usize) -> usize {
    std::env::var("FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

/// Reads `count` mutations of `seed` (written to `name` in a temporary folder) with `read`.
fn fuzz(name: &str, seed: &[u8], count: usize, read: impl Fn(&Path) -> Result<()>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let mut draws = Draws(name.bytes().fold(17, |h, c| h * 31 + c as u64));
    let (mut read_ok, mut refused) = (0, 0);
    for i in 0..count {
        let bytes = mutate(seed, &mut draws);
        std::fs::write(&path, &bytes).unwrap();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&path))) {
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
    eprintln!("{name}: {count} inputs, {read_ok} read, {refused} refused");
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(path),
    )
    .unwrap()
}

#[test]
fn text_and_array_readers() {
    let csv = b"x,y\n1.5,2\n-3,4e-2\n\n5,6\n".to_vec();
    fuzz("points.csv", &csv, inputs(INPUTS), |p| {
        whichgan::io::load_points(p).map(drop)
    });
    let dir = tempfile::tempdir().unwrap();
    let npy = dir.path().join("a.npy");
    let values: Vec<f32> = (0..15).map(|i| i as f32 / 3.0).collect();
    whichgan::io::write_npy_f32(&npy, &[5, 3], &values).unwrap();
    let npy = std::fs::read(&npy).unwrap();
    fuzz("points.npy", &npy, inputs(INPUTS), |p| {
        whichgan::io::load_points(p).map(drop)
    });
    fuzz("features.npy", &npy, inputs(INPUTS), |p| {
        whichgan::features::read_features(p).map(drop)
    });
    let log =
        b"{\"kimg\":4.0,\"fid\":30.5}\n{\"kimg\":8.0,\"fid\":20.25}\n{\"kimg\":12,\"fid\":18}\n";
    fuzz("log.jsonl", log, inputs(INPUTS), |p| {
        whichgan::metrics::convergence::read_curve(p, "fid").map(drop)
    });
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
    fuzz("stats.npz", &npz, inputs(INPUTS), |p| {
        whichgan::io::read_npz_stats(p).map(drop)
    });
}

#[test]
fn checkpoint_readers() {
    let device = candle_core::Device::Cpu;
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.safetensors");
    let tensors = std::collections::HashMap::from([
        (
            "G.a".to_owned(),
            candle_core::Tensor::ones((2, 3), candle_core::DType::F32, &device).unwrap(),
        ),
        (
            "D.b".to_owned(),
            candle_core::Tensor::zeros(4, candle_core::DType::F32, &device).unwrap(),
        ),
    ]);
    candle_core::safetensors::save(&tensors, &small).unwrap();
    let read = |p: &Path| whichgan::io::read_tensor_file(p, &device).map(drop);
    fuzz(
        "small.safetensors",
        &std::fs::read(&small).unwrap(),
        inputs(INPUTS),
        read,
    );
    // The large official files: fewer inputs, each parsed whole.
    fuzz(
        "checkpoint.pt",
        &fixture("stylegan2/checkpoint.pt"),
        inputs(INPUTS) / 10,
        read,
    );
    let pickle = fixture("pkl/setC/network-snapshot-000100.pkl");
    fuzz("network.pkl", &pickle, inputs(INPUTS) / 10, read);
    fuzz(
        "meta.safetensors",
        &std::fs::read(&small).unwrap(),
        inputs(INPUTS),
        |p| whichgan::stylegan2::network_info::NetworkInfo::read(p).map(drop),
    );
}

#[test]
fn datasets_study_files_and_probes() {
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
        inputs(INPUTS),
        |p| {
            let d = whichgan::dataset::ImageDataset::open(p)?;
            d.labels()?;
            let size = d.image_size(whichgan::dataset::Resize::None, true)?;
            d.load(0..d.len(), whichgan::dataset::Resize::None, size, true)
                .map(drop)
        },
    );
    let study = include_str!("../experiments/presets/study-fast.toml");
    fuzz("study.toml", study.as_bytes(), inputs(INPUTS), |p| {
        whichgan::study::Study::read(p).map(drop)
    });
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
    let path = dir.path().join("probe.safetensors");
    probe.save(&path).unwrap();
    fuzz(
        "probe.safetensors",
        &std::fs::read(&path).unwrap(),
        inputs(INPUTS),
        |p| whichgan::classes::ClassProbe::load(p).map(drop),
    );
}
