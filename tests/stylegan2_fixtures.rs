//! The StyleGAN2 networks against the official PyTorch implementation's outputs on the fixture
//! weights (tests/fixtures/stylegan2, set A): ws, truncation, images with constant and no
//! noise, style mixing with a batch of one, discriminator logits and the block outputs. Each
//! tensor must agree within 1e-4 of its largest magnitude (plus 1e-6).
//!
//! The networks run on the CPU; `WHICHGAN_TEST_DEVICE=cuda:N` runs them on that GPU instead (a
//! test binary built with `--features cuda`); the comparisons are made on the CPU. On the CPU
//! the main checks run twice: with the fused CPU kernels and with the generic operations.

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use whichgan::stylegan2::weights::load_network;
use whichgan::stylegan2::{Discriminator, Generator, NoiseMode};

#[path = "common/device.rs"]
mod device;
use device::test_device;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stylegan2")
        .join(name)
}

/// The reference inputs and outputs, on the test device.
fn io() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture("io.safetensors"), &test_device()).unwrap()
}

fn generator() -> Generator {
    Generator::load(&load_network(&fixture("G.safetensors"), "G", &test_device()).unwrap()).unwrap()
}

fn discriminator() -> Discriminator {
    Discriminator::load(
        &load_network(&fixture("D.safetensors"), "D", &test_device()).unwrap(),
        4,
    )
    .unwrap()
}

/// Runs `check` with the crate's CPU kernels, then with the generic operations a GPU runs
/// (the same on a GPU).
fn on_both_paths(check: fn()) {
    check();
    whichgan::backend::with_generic_ops(check);
}

/// Largest |got − want| relative to max |want|.
fn rel_err(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.dims(), want.dims());
    let (got, want) = (
        &got.to_device(&Device::Cpu).unwrap(),
        &want.to_device(&Device::Cpu).unwrap(),
    );
    let scalar = |t: Tensor| t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
    let diff = scalar((got - want).unwrap().abs().unwrap().max_all().unwrap());
    let scale = scalar(want.abs().unwrap().max_all().unwrap());
    diff / scale.max(1e-300)
}

fn check(name: &str, got: &Tensor, want: &Tensor) {
    let err = rel_err(got, want);
    eprintln!("{name}: relative error {err:.2e}");
    assert!(err <= 1e-4, "{name}: relative error {err:.3e}");
}

#[test]
fn architecture_is_read_from_the_weights() {
    let g = generator();
    assert_eq!((g.mapping.z_dim, g.mapping.w_dim), (64, 64));
    assert_eq!(g.synthesis.num_ws, 8);
    assert_eq!(
        (g.synthesis.resolution(), g.synthesis.img_channels),
        (32, 3)
    );
    let d = discriminator();
    assert_eq!((d.resolution, d.img_channels), (32, 3));
}

#[test]
fn mapping_and_truncation_match_the_reference() {
    let io = io();
    let g = generator();
    let ws = g.mapping.forward(&io["z"], 8, 1.0).unwrap();
    check("ws", &ws, &io["ws"]);
    let ws07 = g.mapping.forward(&io["z"], 8, 0.7).unwrap();
    check("ws_psi07", &ws07, &io["ws_psi07"]);
}

#[test]
fn images_match_the_reference() {
    on_both_paths(images_match_the_reference_on_this_path);
}

fn images_match_the_reference_on_this_path() {
    let io = io();
    let g = generator();
    for (name, psi, noise) in [
        ("img_psi1", 1.0, NoiseMode::Const),
        ("img_psi07", 0.7, NoiseMode::Const),
        ("img_nonoise", 1.0, NoiseMode::None),
    ] {
        let img = g.forward(&io["z"], psi, noise).unwrap();
        check(name, &img, &io[name]);
    }
    let mixed = g
        .synthesis
        .forward(&io["ws_mixed"], NoiseMode::Const)
        .unwrap();
    check("img_mixed", &mixed, &io["img_mixed"]);
    // Large styles: nothing is clamped without conv_clamp.
    let big = (&io["ws"] * 200.0).unwrap();
    let probe = g.synthesis.forward(&big, NoiseMode::Const).unwrap();
    check("probe_img_ws_x200", &probe, &io["probe_img_ws_x200"]);
}

#[test]
fn discriminator_logits_match_the_reference() {
    on_both_paths(discriminator_logits_match_the_reference_on_this_path);
}

fn discriminator_logits_match_the_reference_on_this_path() {
    let io = io();
    let d = discriminator();
    check("d_real", &d.forward(&io["real"]).unwrap(), &io["d_real"]);
    check(
        "d_fake",
        &d.forward(&io["img_psi1"]).unwrap(),
        &io["d_fake"],
    );
    let big = (&io["real"] * 1000.0).unwrap();
    check(
        "probe_d_real_x1000",
        &d.forward(&big).unwrap(),
        &io["probe_d_real_x1000"],
    );
}

#[test]
fn input_gradient_and_r1_match_the_reference() {
    on_both_paths(input_gradient_and_r1_match_the_reference_on_this_path);
}

fn input_gradient_and_r1_match_the_reference_on_this_path() {
    // The input gradient stays differentiable (R1's parameter gradients).
    let io = io();
    let d = discriminator();
    let (logits, grad) = d.forward_with_input_grad(&io["real"], None).unwrap();
    check("d_real (with gradient)", &logits, &io["d_real"]);
    check("grad_real", &grad, &io["grad_real"]);
    // The R1 term as training computes it: γ/2 · mean over samples of ‖∇‖², γ = 10.
    let loss_r1 = whichgan::train::r1(&grad, 10.0, 1).unwrap();
    check("loss_r1", &loss_r1, &io["loss_r1"]);
    // Second order: R1's gradients with respect to D's weights.
    let grads = loss_r1.backward().unwrap();
    for name in ["b32.fromrgb.weight", "b16.conv0.weight", "b4.out.weight"] {
        let got = grads
            .get(param(d.named_params(), name))
            .expect("a gradient");
        let key = format!("grad_r1__{}", name.replace('.', "__"));
        check_gradient(&key, got, &io[&key]);
    }
}

#[test]
fn generator_loss_matches_the_reference() {
    on_both_paths(generator_loss_matches_the_reference_on_this_path);
}

fn generator_loss_matches_the_reference_on_this_path() {
    let io = io();
    let (g, d) = (generator(), discriminator());
    // D's parameters held fixed, as a G step runs it: gradients reach G and not D.
    let logits = d
        .forward_with(
            &g.forward(&io["z"], 1.0, NoiseMode::Const).unwrap(),
            whichgan::stylegan2::layers::Params::Fixed,
        )
        .unwrap();
    // Non-saturating loss: softplus(−logit) = log(1 + e^{−logit}).
    let loss = (logits.neg().unwrap().exp().unwrap() + 1.0)
        .unwrap()
        .log()
        .unwrap()
        .mean_all()
        .unwrap();
    check("loss_G", &loss, &io["loss_G"]);
    let grads = loss.backward().unwrap();
    for name in ["mapping.fc0.weight", "synthesis.b4.conv1.affine.weight"] {
        let got = grads
            .get(param(g.named_params(), name))
            .expect("a gradient");
        let key = format!("grad_G__{}", name.replace('.', "__"));
        check_gradient(&key, got, &io[&key]);
    }
    for (name, var) in d.named_params() {
        assert!(grads.get(var).is_none(), "D's {name} got a gradient");
    }
}

#[test]
fn conv_clamp_bounds_the_layer_outputs() {
    let io = io();
    let mut g = generator();
    g.synthesis.conv_clamp = Some(0.05);
    let img = g.forward(&io["z"], 1.0, NoiseMode::Const).unwrap();
    // Each block's ToRGB output is clamped to ±0.05 and up-sampling averages (its weights per
    // output sum to 1), so four blocks stay within ±0.2; unclamped, the images reach ±5.
    let max = |t: &Tensor| {
        t.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64
    };
    assert!(max(&img) <= 0.2 + 1e-6, "{}", max(&img));
    assert!(max(&io["img_psi1"]) > 1.0);
    let mut d = discriminator();
    d.conv_clamp = Some(0.01);
    assert!(rel_err(&d.forward(&io["real"]).unwrap(), &io["d_real"]) > 1e-2);
}

#[test]
fn pytorch_checkpoint_loads_to_identical_outputs() {
    let io = io();
    let pt = fixture("checkpoint.pt");
    for net in ["G", "G_ema"] {
        let g = Generator::load(&load_network(&pt, net, &test_device()).unwrap()).unwrap();
        let img = g.forward(&io["z"], 1.0, NoiseMode::Const).unwrap();
        let from_safetensors = generator()
            .forward(&io["z"], 1.0, NoiseMode::Const)
            .unwrap();
        assert_eq!(rel_err(&img, &from_safetensors), 0.0, "{net}");
    }
    let d = Discriminator::load(&load_network(&pt, "D", &test_device()).unwrap(), 4).unwrap();
    assert_eq!(
        rel_err(
            &d.forward(&io["real"]).unwrap(),
            &discriminator().forward(&io["real"]).unwrap()
        ),
        0.0
    );
}

/// The parameter named `name` of a network.
fn param<'a>(params: &'a [(String, candle_core::Var)], name: &str) -> &'a candle_core::Var {
    &params
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

/// |a − e| ≤ 1e-3·max|e| (the fixture's tolerance for gradients).
fn check_gradient(name: &str, got: &Tensor, want: &Tensor) {
    let err = rel_err(got, want);
    eprintln!("{name}: max |Δ| / max |ref| = {err:.1e}");
    assert!(err <= 1e-3, "{name}: {err:e}");
}
