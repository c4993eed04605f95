//! Gradient penalties need the gradient of an input gradient: the discriminator's analytic
//! ∇ₓ logit must agree with finite differences, and so must the parameter gradient of the
//! WGAN-GP and R1 penalties built on it.

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use whichgan::train::{r1, wgan_gp, DiscriminatorModel, Network};
use whichgan_toy::nets::MlpDiscriminator;

fn discriminator() -> MlpDiscriminator {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    MlpDiscriminator::new(&mut rng, 8, &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
}

fn inputs() -> Tensor {
    let values: Vec<f64> = (0..16)
        .map(|i| ((i * 37 % 11) as f64 - 5.0) * 0.37)
        .collect();
    Tensor::from_vec(values, (8, 2), &Device::Cpu).unwrap()
}

#[test]
fn input_gradient_matches_finite_differences() {
    let d = discriminator();
    let x = inputs();
    let (_, grad) = d.forward_with_input_grad(&x, None).unwrap();
    let grad = grad.to_vec2::<f64>().unwrap();
    let h = 1e-6;
    let base = x.to_vec2::<f64>().unwrap();
    for i in 0..8 {
        for j in 0..2 {
            let shifted = |delta: f64| {
                let mut v = base.clone();
                v[i][j] += delta;
                let t = Tensor::new(v, &Device::Cpu).unwrap();
                d.forward(&t, None).unwrap().to_vec1::<f64>().unwrap()[i]
            };
            let fd = (shifted(h) - shifted(-h)) / (2.0 * h);
            assert!((fd - grad[i][j]).abs() < 1e-7 * (1.0 + fd.abs()), "{i},{j}");
        }
    }
}

/// Largest difference between back-propagated and central-difference gradients of `penalty`
/// over every entry of every parameter of D, relative to the largest gradient entry. A missing
/// gradient counts as zero (a ReLU network's input gradient does not depend on some biases).
fn check_penalty(penalty: impl Fn(&MlpDiscriminator) -> Tensor) -> f64 {
    let d = discriminator();
    let grads = penalty(&d).backward().unwrap();
    let h = 1e-6;
    let (mut scale, mut err) = (0.0f64, 0.0f64);
    for (_, var) in d.parameters() {
        let analytic = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            None => vec![0.0; var.as_tensor().elem_count()],
        };
        let original = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let shape = var.as_tensor().shape().clone();
        for k in 0..original.len() {
            let at = |delta: f64| {
                let mut v = original.clone();
                v[k] += delta;
                var.set(&Tensor::from_vec(v, shape.clone(), &Device::Cpu).unwrap())
                    .unwrap();
                penalty(&d).to_scalar::<f64>().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            scale = scale.max(fd.abs());
            err = err.max((fd - analytic[k]).abs());
        }
        var.set(&Tensor::from_vec(original, shape, &Device::Cpu).unwrap())
            .unwrap();
    }
    err / scale
}

#[test]
fn wgan_gp_parameter_gradient_matches_finite_differences() {
    let err = check_penalty(|d| {
        let (logits, grad) = d.forward_with_input_grad(&inputs(), None).unwrap();
        wgan_gp(&logits, &grad, 10.0).unwrap()
    });
    eprintln!("relative error {err:.1e}");
    assert!(err < 1e-6, "relative error {err:e}");
}

#[test]
fn r1_parameter_gradient_matches_finite_differences() {
    let err = check_penalty(|d| {
        let (_, grad) = d.forward_with_input_grad(&inputs(), None).unwrap();
        r1(&grad, 10.0, 16).unwrap()
    });
    eprintln!("relative error {err:.1e}");
    assert!(err < 1e-6, "relative error {err:e}");
}
