//! The Figure 3 measurements of a checkpoint against independent brute-force computations:
//! k-NN recall and precision by exhaustive search, ∇D similarity by central finite differences
//! of D in f64; and how the two protocols count a checkpoint's updates.

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use whichgan::metrics::knn_expanded::precision_recall_f32_expanded;
use whichgan::train::DiscriminatorModel;
use whichgan_toy::nets::{MlpDiscriminator, MlpGenerator};
use whichgan_toy::study::pretrain::pretrain;
use whichgan_toy::study::probe::{checkpoint_probe, K};
use whichgan_toy::study::{target, Preset, Protocol, Source};
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
    // The float32 pair is that metric's on the same draws (tested against torch in `knn`).
    let points = |p: &[[f64; 2]]| whichgan::Points::new(p.len(), 2, p.concat()).unwrap();
    let (precision_f32, recall_f32) =
        precision_recall_f32_expanded(&points(&real), &points(&fake), K).unwrap();
    assert_eq!(
        (probe.precision_f32_expanded, probe.recall_f32_expanded),
        (precision_f32, recall_f32)
    );

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

/// The playground's loop (a G update after D steps 1, 5, 9, …; its counter read before the
/// increment) labels s the networks after s + 1 G and 4s + 1 D updates: the same run's state
/// that the `updates` protocol labels s + 1.
#[test]
fn the_playground_protocol_labels_a_checkpoint_one_update_later() {
    let preset = Preset {
        pretrain_steps: 4,
        checkpoint_every: 1,
        sweep_eval_every: 2,
        ..Preset::by_name("fast").unwrap().clone()
    };
    let bar = indicatif::ProgressBar::hidden();
    let run = |protocol| pretrain(Source::One, 3, &preset, Some(protocol), &bar).unwrap();
    let (updates, playground) = (run(Protocol::Updates), run(Protocol::Playground));
    let labels = |p: &whichgan_toy::study::pretrain::Pretrained| -> Vec<u64> {
        p.snapshots.iter().map(|(s, _)| *s).collect()
    };
    assert_eq!(labels(&updates), [0, 1, 2, 3, 4]);
    assert_eq!(labels(&playground), [0, 1, 2, 3, 4]);
    for (label, ckpt) in &updates.snapshots {
        let d_steps = if *label == 0 { 0 } else { 4 * label - 3 };
        assert_eq!((ckpt.meta.g_steps, ckpt.meta.d_steps), (*label, d_steps));
    }
    for (label, ckpt) in &playground.snapshots {
        assert_eq!(
            (ckpt.meta.g_steps, ckpt.meta.d_steps),
            (label + 1, 4 * label + 1)
        );
        if *label < 4 {
            let later = &updates.snapshots[*label as usize + 1].1;
            for (name, t) in &ckpt.tensors {
                let same = t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
                    == later.tensors[name]
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap();
                assert!(same, "{name} of playground checkpoint {label}");
            }
        }
    }
    assert_eq!(
        playground.last.meta.g_steps, 5,
        "one update beyond the budget"
    );
    assert_eq!(updates.last.meta.g_steps, 4);
}

fn pearson_by_hand(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    sxy / (sxx * syy).sqrt()
}

/// The README section on the playground's own runs: r per seed over the fine-tunes whose W1 is
/// finite, in each arithmetic, the NaN fine-tunes counted, and the pretraining figure drawn.
#[test]
fn the_reference_section_correlates_each_seed_without_diverged_fine_tunes() {
    use whichgan_toy::study::reference::section;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    assert!(section(out).unwrap().is_none(), "no reference/, no section");
    let reference = out.join("reference");
    let ours = out.join("figure3-protocols/playground");
    std::fs::create_dir_all(&reference).unwrap();
    std::fs::create_dir_all(&ours).unwrap();
    // Seed 0: the playground's float32 recall, its exact recall, and W1 (one NaN).
    let recall_f32 = [0.0, 0.3, 0.5, 0.8, 0.9];
    let recall_exact = [0.0, 0.2, 0.5, 0.7, 0.9];
    let sim = [-0.9, -0.2, 0.1, 0.3, 0.2];
    let min_w1 = [18.0, 14.0, 12.5, f64::NAN, 6.0];
    let mut text = String::from(
        "seed,checkpoint,recall,precision,recall_exact,precision_exact,grad_sim_notebook,\
         grad_sim_samples,w1_step_0,min_w1\n",
    );
    for i in 0..5 {
        text += &format!(
            "0,{},{},0.5,{},0.4,{},1000,{},{}\n",
            50 * i,
            recall_f32[i],
            recall_exact[i],
            sim[i],
            min_w1[i],
            min_w1[i]
        );
    }
    std::fs::write(reference.join("figure3-seed-0.csv"), text).unwrap();
    std::fs::write(
        reference.join("pretrain-w1-seed-0.csv"),
        "seed,step,w1_g,w1_g_ema\n0,0,20.0,20.1\n0,250,15.0,15.5\n",
    )
    .unwrap();
    std::fs::write(
        reference.join("ours-pretrain-w1-seed-0.csv"),
        "g_step,w1_g,w1_g_ema\n250,16.0,16.2\n500,12.0,12.5\n",
    )
    .unwrap();
    // Ours: our column names (recall is exact there).
    let mut text = String::from(
        "seed,checkpoint,checkpoint_updates,recall,precision,recall_f32_expanded,\
         precision_f32_expanded,grad_sim_notebook,grad_sim_descent,grad_sim_samples,w1_step_0,\
         min_w1\n",
    );
    let ours_w1 = [19.0, 15.0, 9.0, 8.0];
    let ours_recall = [0.1, 0.2, 0.6, 0.5];
    for i in 0..4 {
        text += &format!(
            "0,{},{},{},0.3,{},0.3,0.1,-0.1,1000,{},{}\n",
            50 * i,
            50 * i + 1,
            ours_recall[i],
            ours_recall[i],
            ours_w1[i],
            ours_w1[i]
        );
    }
    std::fs::write(ours.join("figure3.csv"), text).unwrap();

    let md = section(out).unwrap().unwrap();
    let finite = [0, 1, 2, 4];
    let pick = |v: &[f64]| finite.map(|i| v[i]).to_vec();
    let r_f32 = pearson_by_hand(&pick(&recall_f32), &pick(&min_w1));
    let r_exact = pearson_by_hand(&pick(&recall_exact), &pick(&min_w1));
    let r_sim = pearson_by_hand(&pick(&sim), &pick(&min_w1));
    let row = |name: &str| {
        md.lines()
            .find(|l| l.starts_with("| The public playground") && l.contains(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{md}"))
            .to_owned()
    };
    assert!(row("recall (float32 expanded)").contains(&format!("| {r_f32:.3} |")));
    assert!(row("recall (exact)").contains(&format!("| {r_exact:.3} |")));
    assert!(row("∇D similarity").contains(&format!("| {r_sim:.3} |")));
    // A constant measure has no r.
    assert!(row("precision (exact)").contains("NaN"));
    let r_ours = pearson_by_hand(&ours_recall, &ours_w1);
    assert!(md.contains(&format!(
        "This project, `--protocol playground` (1 seeds × 4 checkpoints) | recall (exact) | {r_ours:.3}"
    )));
    assert!(
        md.contains("seed 0: 1"),
        "the NaN fine-tune is counted:\n{md}"
    );
    assert!(md.contains("**Verdict.**"));
    assert!(
        md.contains("largest difference between float32 and exact recall at any checkpoint: 0.100")
    );
    for ext in ["png", "svg"] {
        assert!(out
            .join(format!("figure3-reference-pretraining.{ext}"))
            .is_file());
    }
}
