//! StyleGAN2-ADA on the shared trainer, CPU, a tiny configuration (16 × 16 synthetic shapes,
//! 64/32/16 channels): training stays finite, ADA's p moves the right way, resume is exact,
//! Freeze-D holds its layers, a fine-tune loads every tensor of the official fixture
//! checkpoint, and path-length regularisation reads the gradient with respect to w.

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use whichgan::dataset::{write_synth, ImageDataset, SynthSpec};
use whichgan::run::stylegan2::{
    new_trainer, AugMode, AugOptions, RunSpec, StyleGan2Trainer, MODEL,
};
use whichgan::stylegan2::presets::Preset;
use whichgan::stylegan2::trainable::PathLength;
use whichgan::stylegan2::{NoiseMode, TrainingSet};
use whichgan::train::GeneratorPenalty;

fn dataset(dir: &Path, resolution: u32) -> TrainingSet {
    whichgan::runtime::setup(whichgan::runtime::Parallelism::WithinOperations);
    let zip = dir.join(format!("shapes{resolution}.zip"));
    let spec = SynthSpec {
        images: 24,
        classes: 4,
        first_class: 0,
        resolution,
        seed: 3,
    };
    write_synth(&spec, &zip).unwrap();
    TrainingSet::load(
        &ImageDataset::open(&zip).unwrap(),
        true,
        &Device::Cpu,
        |_| {},
    )
    .unwrap()
}

fn tiny_spec(aug: AugMode, p: f64) -> RunSpec {
    let mut preset = Preset::new("auto", 16).unwrap();
    (preset.batch, preset.batch_gpu) = (4, 4);
    preset.channel_base = 256;
    preset.channel_max = 64;
    preset.z_dim = 32;
    preset.gamma = 1.0;
    RunSpec {
        preset,
        seed: 7,
        mirror: true,
        aug: AugOptions {
            mode: aug,
            pipe: "bgc".into(),
            p,
        },
        freezed: 0,
        start: None,
        cond: false,
    }
}

/// A run of one tick (4 images) on `dir`'s 16 × 16 shapes, a snapshot at its end.
fn one_tick_run(dir: &Path, spec: RunSpec, out: PathBuf) -> whichgan::run::stylegan2::RunOptions {
    whichgan::run::stylegan2::RunOptions {
        spec,
        data: dir.join("shapes16.zip"),
        out,
        kimg: 0.004,
        tick_kimg: 0.004,
        snap_kimg: 0.004,
        resume: None,
        metrics: None,
        grid: 1,
        device: Device::Cpu,
        progress: false,
        overwrite: false,
    }
}

fn trainer(spec: &RunSpec) -> StyleGan2Trainer {
    whichgan::runtime::setup(whichgan::runtime::Parallelism::WithinOperations);
    new_trainer(spec, 16, 0, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Every tensor of the trainer's checkpoint, by name.
fn state(t: &StyleGan2Trainer) -> Vec<(String, Vec<f32>)> {
    let mut v: Vec<_> = t
        .checkpoint(MODEL)
        .unwrap()
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), values(t)))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn trains_without_nan_and_updates_g_d_and_the_average() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = dataset(dir.path(), 16);
    let mut t = trainer(&tiny_spec(
        AugMode::Ada {
            target: 0.6,
            speed_kimg: 500.0,
        },
        0.2,
    ));
    let before = state(&t);
    for _ in 0..20 {
        let r = t.cycle(&mut data).unwrap();
        assert!(r.d_loss.is_finite() && r.g_loss.is_finite(), "{r:?}");
    }
    let after = state(&t);
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        assert!(
            b.iter().all(|v| v.is_finite()),
            "{name} has non-finite values"
        );
        let moved = a != b;
        // Noise images never change; everything trained does, and so does w_avg.
        assert_eq!(moved, !name.ends_with("noise_const"), "{name}");
    }
    // G_ema copies G's buffers (w_avg) rather than blending them.
    let ckpt = t.checkpoint(MODEL).unwrap();
    assert_eq!(
        values(&ckpt.tensors["G.mapping.w_avg"]),
        values(&ckpt.tensors["G_ema.mapping.w_avg"])
    );
    assert_eq!(t.images_seen(), 80);
}

#[test]
fn ada_raises_p_when_d_overfits_and_lowers_it_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = dataset(dir.path(), 16);
    let spec = tiny_spec(
        AugMode::Ada {
            target: 0.6,
            speed_kimg: 500.0,
        },
        0.3,
    );
    for (bias, raised) in [(100.0f32, true), (-100.0, false)] {
        let mut t = trainer(&spec);
        // D's output bias fixes the sign of every logit: all "real" (overfitting, E[sign] = 1
        // > 0.6) or all "fake".
        let params = whichgan::train::Network::parameters(t.d());
        let (_, out_bias) = params.iter().find(|(n, _)| n == "b4.out.bias").unwrap();
        out_bias
            .set(&Tensor::new(&[bias], &Device::Cpu).unwrap())
            .unwrap();
        for _ in 0..8 {
            t.cycle(&mut data).unwrap();
        }
        let aug = t.augment_state().unwrap();
        let p = aug["p"].as_f64().unwrap();
        // Two adjustments of 4 D steps × 4 images each: p ± 2 · 16 / 500 000.
        let expected = 0.3 + if raised { 1.0 } else { -1.0 } * 32.0 / 500_000.0;
        assert!((p - expected).abs() < 1e-6, "bias {bias}: p {p}");
        assert_eq!(aug["rt"].as_f64().unwrap(), if raised { 1.0 } else { -1.0 });
    }
}

/// Batches of 4 in rounds of 2 (each phase's gradients summed over two passes).
#[test]
fn resumed_run_in_rounds_equals_the_uninterrupted_one() {
    resume_equals_uninterrupted(2);
}

/// One pass per batch, on the generic operations a GPU runs (non-fused modulation, candle's
/// convolutions).
#[test]
fn resumed_run_equals_the_uninterrupted_one_on_the_generic_operations() {
    whichgan::backend::with_generic_ops(|| resume_equals_uninterrupted(4));
}

fn resume_equals_uninterrupted(batch_gpu: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = tiny_spec(
        AugMode::Ada {
            target: 0.6,
            speed_kimg: 1.0,
        },
        0.1,
    );
    spec.preset.batch_gpu = batch_gpu;
    let mut data = dataset(dir.path(), 16);
    let mut straight = trainer(&spec);
    for _ in 0..18 {
        straight.cycle(&mut data).unwrap();
    }
    // Interrupted after 9 cycles (between path-length steps; R1 due again at D step 16).
    let mut first = trainer(&spec);
    for _ in 0..9 {
        first.cycle(&mut data).unwrap();
    }
    let path = dir.path().join("ckpt.safetensors");
    first.checkpoint(MODEL).unwrap().save(&path).unwrap();
    let ckpt = whichgan::train::Checkpoint::load(&path, &Device::Cpu).unwrap();
    let mut resumed = trainer(&spec);
    resumed.resume(&ckpt, MODEL).unwrap();
    for _ in 0..9 {
        resumed.cycle(&mut data).unwrap();
    }
    assert_eq!(state(&straight), state(&resumed));
    let (a, b) = (
        straight.checkpoint(MODEL).unwrap().meta,
        resumed.checkpoint(MODEL).unwrap().meta,
    );
    assert_eq!(a, b);
    assert!(a.augment.unwrap()["p"].as_f64().unwrap() != 0.1);
    assert!(a.g_penalty.unwrap()["pl_mean"].as_f64().unwrap() > 0.0);
    // Resuming without the augmentation is refused.
    let mut other = trainer(&tiny_spec(AugMode::NoAug, 0.0));
    assert!(other.resume(&ckpt, MODEL).is_err());
}

#[test]
fn freeze_d_keeps_the_frozen_layers_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = dataset(dir.path(), 16);
    let mut spec = tiny_spec(AugMode::NoAug, 0.0);
    spec.freezed = 2;
    let mut t = trainer(&spec);
    assert_eq!(
        &t.d().layer_names()[..3],
        ["b16.fromrgb", "b16.conv0", "b16.conv1"]
    );
    let before = state(&t);
    for _ in 0..4 {
        t.cycle(&mut data).unwrap();
    }
    let after = state(&t);
    let frozen = |n: &str| n.starts_with("D.b16.fromrgb.") || n.starts_with("D.b16.conv0.");
    let mut d_tensors = 0;
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        if name.starts_with("D.") {
            d_tensors += 1;
            assert_eq!(a == b, frozen(name), "{name}");
        }
    }
    assert_eq!(d_tensors, t.d().named_params().len());
    assert_eq!(whichgan::train::Network::buffers(t.d()).len(), 4);
    // The optimiser holds no state for frozen layers.
    assert!(after
        .iter()
        .all(|(n, _)| !n.starts_with("opt_D.m.b16.conv0")));
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stylegan2")
        .join(name)
}

#[test]
fn fine_tune_from_the_fixture_checkpoint_loads_every_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = dataset(dir.path(), 32);
    let mut spec = tiny_spec(
        AugMode::Ada {
            target: 0.6,
            speed_kimg: 100.0,
        },
        0.0,
    );
    spec.start = Some(fixture("checkpoint.pt").display().to_string());
    let mut t = new_trainer(&spec, 32, 0, &Device::Cpu).unwrap();
    let file = whichgan::io::read_tensor_file(&fixture("checkpoint.pt"), &Device::Cpu).unwrap();
    let ckpt = t.checkpoint(MODEL).unwrap();
    let mut compared = 0;
    for (name, want) in &file {
        if name.ends_with("resample_filter") {
            continue;
        }
        let got = ckpt
            .tensors
            .get(name)
            .unwrap_or_else(|| panic!("{name} not loaded"));
        assert_eq!(values(got), values(want), "{name}");
        compared += 1;
    }
    // Every network tensor of the trainer came from the file.
    let networks = ckpt
        .tensors
        .keys()
        .filter(|n| n.starts_with("G.") || n.starts_with("G_ema.") || n.starts_with("D."))
        .count();
    assert_eq!(compared, networks);
    for _ in 0..2 {
        let r = t.cycle(&mut data).unwrap();
        assert!(r.d_loss.is_finite() && r.g_loss.is_finite());
    }
    // A resolution other than the dataset's is refused.
    let err = new_trainer(&spec, 16, 0, &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("32×32"), "{err}");
}

#[test]
fn path_length_reads_the_gradient_with_respect_to_w_and_reaches_the_mapping() {
    let spec = tiny_spec(AugMode::NoAug, 0.0);
    let mut t = trainer(&spec);
    let g = t.g_mut();
    g.style_mixing = 0.0;
    let z = Tensor::randn(0f32, 1.0, (2, 32), &Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (img, ws) = g.training_pass(&z, None, &mut rng, true).unwrap();
    let ws = ws.unwrap();
    let y = Tensor::randn(0f32, 1.0, img.shape(), &Device::Cpu).unwrap();
    let grads = (&img * &y).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = grads.get(ws.as_tensor()).unwrap().clone();
    // The same derivative taken at a free variable holding the same ws, same noise.
    let noise_seed = {
        let mut replay = ChaCha8Rng::seed_from_u64(1);
        rand::Rng::random::<u64>(&mut replay)
    };
    let free = candle_core::Var::from_tensor(&ws.as_tensor().copy().unwrap()).unwrap();
    let img = g
        .synthesis
        .forward(free.as_tensor(), NoiseMode::Random { seed: noise_seed })
        .unwrap();
    let direct = (&img * &y).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(values(&grad), values(direct.get(free.as_tensor()).unwrap()));
    // The penalty reaches the mapping network (through w) and the synthesis weights.
    let mut pl = PathLength::official(2.0);
    pl.mean = 0.5;
    let penalty = pl.penalty(t.g_mut(), &mut rng, 4, None).unwrap();
    let grads = penalty.backward().unwrap();
    for name in ["mapping.fc0.weight", "synthesis.b16.conv1.weight"] {
        let params: HashMap<_, _> = t.g().named_params().iter().cloned().collect();
        let g = grads.get(params[name].as_tensor()).unwrap();
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm > 0.0 && norm.is_finite(), "{name}: {norm}");
    }
    assert!(pl.mean != 0.5);
}

#[test]
fn images_smaller_than_8_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<f32> = (0..48).map(|i| i as f32 / 24.0 - 1.0).collect();
    for name in ["a.png", "b.png"] {
        whichgan::io::write_png_grid(&dir.path().join(name), [1, 3, 4, 4], &pixels).unwrap();
    }
    let dataset = ImageDataset::open(dir.path()).unwrap();
    let err = TrainingSet::load(&dataset, false, &Device::Cpu, |_| {})
        .err()
        .expect("4 × 4 images refused")
        .to_string();
    assert!(
        err.contains("images are 4×4") && err.contains("at least 8"),
        "{err}"
    );
}

#[test]
fn fixed_p_0_builds_no_augmentation_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = tiny_spec(AugMode::Fixed, 0.0);
    let mut data = dataset(dir.path(), 16);
    let mut first = trainer(&spec);
    assert!(first.augment_state().is_none());
    first.cycle(&mut data).unwrap();
    let ckpt = first.checkpoint(MODEL).unwrap();
    let mut resumed = trainer(&spec);
    resumed.resume(&ckpt, MODEL).unwrap();
    assert_eq!(state(&first), state(&resumed));
    // A fixed p above 0 augments.
    assert!(trainer(&tiny_spec(AugMode::Fixed, 0.2))
        .augment_state()
        .is_some());
}

/// A run refused for its metric weights or its grid leaves an existing output folder as it
/// was, even with --overwrite, and creates no new one.
#[test]
fn refused_runs_leave_the_output_folder_alone() {
    use whichgan::run::stylegan2::{train_run, MetricOptions, RunOptions};
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 16);
    let bad_weights = dir.path().join("bad.npy");
    std::fs::write(&bad_weights, b"not weights").unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir(&out).unwrap();
    let old = ["network-snapshot-000001.safetensors", "fakes000001.png"];
    for name in old {
        std::fs::write(out.join(name), b"an earlier run").unwrap();
    }
    let options = |out: &Path, grid: usize, metrics: bool| RunOptions {
        metrics: metrics.then(|| MetricOptions {
            inception: bad_weights.clone(),
            vgg16: None,
            n: 8,
        }),
        grid,
        overwrite: true,
        ..one_tick_run(dir.path(), tiny_spec(AugMode::NoAug, 0.0), out.to_owned())
    };
    let refused = |options: RunOptions| train_run(&options).err().unwrap().to_string();
    let err = refused(options(&out, 4, true));
    assert!(err.contains("bad.npy"), "{err}");
    let err = train_run(&options(&out, 0, false)).err().unwrap();
    assert!(
        matches!(
            err,
            whichgan::Error::Setting {
                setting: "grid",
                ..
            }
        ),
        "{err}"
    );
    for name in old {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            b"an earlier run",
            "{name}"
        );
    }
    let new = dir.path().join("new");
    let err = refused(options(&new, 4, true));
    assert!(err.contains("bad.npy"), "{err}");
    assert!(!new.exists());
}

/// Snapshot metrics rebuild G_ema with the clamp the run trained with; a clamp the user gives
/// wins.
#[test]
fn a_snapshot_tells_its_conv_clamp() {
    use whichgan::run::generator::conv_clamp;
    use whichgan::run::stylegan2::train_run;
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 16);
    let mut spec = tiny_spec(AugMode::NoAug, 0.0);
    spec.preset.conv_clamp = Some(3.5);
    let opts = one_tick_run(dir.path(), spec, dir.path().join("run"));
    let snapshot = train_run(&opts).unwrap().last_snapshot;
    assert_eq!(conv_clamp(&snapshot, None).unwrap(), Some(3.5));
    assert_eq!(conv_clamp(&snapshot, Some(256.0)).unwrap(), Some(256.0));
    // A checkpoint without a run's state (here the trainer's own) has none.
    let bare = dir.path().join("bare.safetensors");
    trainer(&tiny_spec(AugMode::NoAug, 0.0))
        .checkpoint(MODEL)
        .unwrap()
        .save(&bare)
        .unwrap();
    assert_eq!(conv_clamp(&bare, None).unwrap(), None);
}

/// `--resume` with a snapshot of the run in the output folder continues it; with any other
/// file it fine-tunes, as the reference does: no EMA ramp-up, ADA five times faster.
#[test]
fn resume_continues_a_snapshot_of_the_run_and_fine_tunes_from_other_files() {
    use whichgan::run::stylegan2::{train_run, RunStart};
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), 16);
    let out = dir.path().join("run");
    let opts = one_tick_run(dir.path(), tiny_spec(AugMode::NoAug, 0.0), out.clone());
    let snapshot = train_run(&opts).unwrap().last_snapshot;
    let new = RunStart::new(None, &out).unwrap();
    assert_eq!((new.resume.clone(), new.pretrained.clone()), (None, None));
    let continued = RunStart::new(Some(&snapshot), &out).unwrap();
    assert_eq!(continued.resume.as_deref(), Some(snapshot.as_path()));
    assert_eq!(continued.pretrained, None);
    // The same file seen from another output folder (existing or not) is a pretrained
    // checkpoint.
    let existing = dir.path().join("other");
    std::fs::create_dir(&existing).unwrap();
    for elsewhere in [existing, dir.path().join("not-yet")] {
        let start = RunStart::new(Some(&snapshot), &elsewhere).unwrap();
        assert_eq!(start.resume, None);
        assert_eq!(start.pretrained, Some(snapshot.display().to_string()));
    }
    let fine_tune = RunStart::new(Some(&snapshot), &dir.path().join("other")).unwrap();
    let mut preset = Preset::new("auto", 16).unwrap();
    assert!(preset.ema_rampup.is_some());
    fine_tune.adjust(&mut preset);
    assert_eq!(preset.ema_rampup, None);
    let speed = |start: &RunStart| match start.ada(0.6) {
        AugMode::Ada { speed_kimg, .. } => speed_kimg,
        other => panic!("{other:?}"),
    };
    assert_eq!((speed(&new), speed(&fine_tune)), (500.0, 100.0));
    assert!(RunStart::new(Some(&dir.path().join("missing.pt")), &out).is_err());
}
