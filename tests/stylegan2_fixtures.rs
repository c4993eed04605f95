//! The StyleGAN2 networks against the official PyTorch implementation's outputs on the fixture
//! weights (tests/fixtures/stylegan2, set A): ws, truncation, images with constant and no
//! noise, style mixing with a batch of one, discriminator logits and the block outputs. Each
//! tensor must agree within 1e-4 of its largest magnitude (plus 1e-6).

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;
use whichgan::stylegan2::{Discriminator, Generator, NoiseMode, Weights};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stylegan2")
        .join(name)
}

fn io() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(fixture("io.safetensors"), &Device::Cpu).unwrap()
}

fn generator() -> Generator {
    Generator::load(
        &Weights::from_safetensors(&fixture("G.safetensors"), None, &Device::Cpu).unwrap(),
    )
    .unwrap()
}

fn discriminator() -> Discriminator {
    Discriminator::load(
        &Weights::from_safetensors(&fixture("D.safetensors"), None, &Device::Cpu).unwrap(),
        4,
    )
    .unwrap()
}

/// Largest |got − want| relative to max |want|.
fn rel_err(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.dims(), want.dims());
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
    let io = io();
    let d = discriminator();
    let (logits, grad) = d.forward_with_input_grad(&io["real"]).unwrap();
    check("d_real (with gradient)", &logits, &io["d_real"]);
    check("grad_real", &grad, &io["grad_real"]);
    let r1 = whichgan::stylegan2::discriminator::r1_penalty(&grad).unwrap();
    check("r1_penalty", &r1, &io["r1_penalty"]);
    let gamma = 10.0;
    let loss_r1 = (r1 * (gamma / 2.0)).unwrap().mean_all().unwrap();
    check("loss_r1", &loss_r1, &io["loss_r1"]);
}

#[test]
fn generator_loss_matches_the_reference() {
    let io = io();
    let (g, d) = (generator(), discriminator());
    let logits = d
        .forward(&g.forward(&io["z"], 1.0, NoiseMode::Const).unwrap())
        .unwrap();
    // Non-saturating loss: softplus(−logit) = log(1 + e^{−logit}).
    let loss = (logits.neg().unwrap().exp().unwrap() + 1.0)
        .unwrap()
        .log()
        .unwrap()
        .mean_all()
        .unwrap();
    check("loss_G", &loss, &io["loss_G"]);
}
