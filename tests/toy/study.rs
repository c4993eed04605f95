//! The Figure 3 measurements of a checkpoint against independent brute-force computations:
//! k-NN recall and precision by exhaustive search, ∇D similarity by central finite differences
//! of D in f64.

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use whichgan::train::DiscriminatorModel;
use whichgan_toy::nets::{MlpDiscriminator, MlpGenerator};
use whichgan_toy::study::probe::{checkpoint_probe, K};
use whichgan_toy::study::target;
use whichgan_toy::train::sample_generator;

fn dist2(a: &[f64; 2], b: &[f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// Squared distance from each point to its k-th nearest other point of the same set.
fn radii2(points: &[[f64; 2]]) -> Vec<f64> {
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut d: Vec<f64> = points
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, q)| dist2(p, q))
                .collect();
            d.sort_by(f64::total_cmp);
            d[K - 1]
        })
        .collect()
}

/// Share of `points` inside some ball (centre in `balls`, radius² `radii`).
fn inside_share(points: &[[f64; 2]], balls: &[[f64; 2]], radii: &[f64]) -> f64 {
    let hits = points
        .iter()
        .filter(|p| balls.iter().zip(radii).any(|(b, r)| dist2(p, b) < *r))
        .count();
    hits as f64 / points.len() as f64
}

#[test]
fn checkpoint_probe_matches_brute_force() {
    let mut init = ChaCha8Rng::seed_from_u64(11);
    let mut g = MlpGenerator::new(&mut init, 16, &Device::Cpu).unwrap();
    let d = MlpDiscriminator::new(&mut init, 16, &Device::Cpu).unwrap();
    let target = target();
    let n = 300;
    let probe =
        checkpoint_probe(&mut g, &d, &target, &mut ChaCha8Rng::seed_from_u64(7), n).unwrap();

    // The same draws, in the same order: G samples, then target samples.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let fake = sample_generator(&mut g, &mut rng, n).unwrap();
    let real = target.sample(&mut rng, n);
    let recall = inside_share(&real, &fake, &radii2(&fake));
    let precision = inside_share(&fake, &real, &radii2(&real));
    assert_eq!(probe.recall, recall);
    assert_eq!(probe.precision, precision);

    // ∇ log σ(l) = (1 − σ(l)) ∇l points along ∇l, so the descent-sign similarity is the cosine
    // with the finite-difference gradient of the logit.
    let d64 = d.to_dtype(DType::F64).unwrap();
    let logit = |p: [f64; 2]| {
        let x = Tensor::new(&[p], &Device::Cpu).unwrap();
        d64.forward(&x, None).unwrap().to_vec1::<f64>().unwrap()[0]
    };
    let centres = target.centres().unwrap();
    let h = 1e-5;
    let mut cosines = Vec::new();
    for x in &fake {
        let grad = [
            (logit([x[0] + h, x[1]]) - logit([x[0] - h, x[1]])) / (2.0 * h),
            (logit([x[0], x[1] + h]) - logit([x[0], x[1] - h])) / (2.0 * h),
        ];
        let c = centres
            .iter()
            .min_by(|a, b| dist2(a, x).total_cmp(&dist2(b, x)))
            .unwrap();
        let to_c = [c[0] - x[0], c[1] - x[1]];
        let norm = to_c[0].hypot(to_c[1]) * grad[0].hypot(grad[1]);
        if norm > 0.0 {
            cosines.push((to_c[0] * grad[0] + to_c[1] * grad[1]) / norm);
        }
    }
    let mean = cosines.iter().sum::<f64>() / cosines.len() as f64;
    assert_eq!(probe.grad_sim_samples, cosines.len());
    assert!(
        (probe.grad_sim_descent - mean).abs() < 1e-5,
        "{} vs {mean}",
        probe.grad_sim_descent
    );
    assert_eq!(probe.grad_sim_notebook, -probe.grad_sim_descent);
}

#[test]
fn probe_needs_a_mixture_target() {
    let mut init = ChaCha8Rng::seed_from_u64(1);
    let mut g = MlpGenerator::new(&mut init, 8, &Device::Cpu).unwrap();
    let d = MlpDiscriminator::new(&mut init, 8, &Device::Cpu).unwrap();
    let fat: whichgan_toy::Distribution = "fat-circle:r=20,sigma=4".parse().unwrap();
    let err = checkpoint_probe(&mut g, &d, &fat, &mut ChaCha8Rng::seed_from_u64(0), 50)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mixture"), "{err}");
}
