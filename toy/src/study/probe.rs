//! Measurements of a generator (and discriminator) against the target: exact W1, mode
//! coverage, k-NN precision and recall, and the ∇D similarity of the study's Figure 3.

use crate::distributions::Distribution;
use crate::nets::{MlpDiscriminator, MlpGenerator};
use crate::train::{finite_points, points_tensor, sample_generator, EVAL_SAMPLES};
use candle_core::Device;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use whichgan::metrics::coverage::{mode_coverage, CoverageThresholds};
use whichgan::metrics::knn::prdc;
use whichgan::metrics::knn_expanded::precision_recall_f32_expanded;
use whichgan::metrics::w1::wasserstein1;
use whichgan::train::DiscriminatorModel;
use whichgan::{Error, Points, Result};

/// Neighbours of the k-NN precision and recall (the study's k).
pub const K: usize = 5;

/// Exact W1 between `EVAL_SAMPLES` target samples and as many samples of `g` (eval mode).
pub fn w1(g: &mut MlpGenerator, target: &Distribution, rng: &mut ChaCha8Rng) -> Result<f64> {
    let real = target.sample(rng, EVAL_SAMPLES).concat();
    let fake = finite_points(&sample_generator(g, rng, EVAL_SAMPLES)?)?;
    Ok(wasserstein1(&real, fake.as_slice(), 2))
}

/// Mode coverage, precision and recall of `n` samples of `g` against `n` target samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Target modes with at least 10 samples within 3σ.
    pub modes_covered: usize,
    /// Share of samples within 3σ of their nearest mode.
    pub high_quality: f64,
    pub precision: f64,
    pub recall: f64,
}

pub fn coverage(
    g: &mut MlpGenerator,
    target: &Distribution,
    rng: &mut ChaCha8Rng,
    n: usize,
) -> Result<Coverage> {
    let (centres, sigma) = mixture(target)?;
    let real = target.sample_points(rng, n);
    let fake = finite_points(&sample_generator(g, rng, n)?)?;
    let modes = mode_coverage(&fake, &centres, CoverageThresholds::new(sigma))?;
    let knn = prdc(&real, &fake, K)?;
    Ok(Coverage {
        modes_covered: modes.modes_covered,
        high_quality: modes.high_quality_share(),
        precision: knn.precision,
        recall: knn.recall,
    })
}

/// The arithmetic of a k-NN recall or precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arithmetic {
    /// Exact ball membership ([`whichgan::metrics::knn`]).
    #[default]
    Exact,
    /// The public playground's float32 |u|² − 2u·v + |v|²
    /// ([`whichgan::metrics::knn_expanded`]).
    F32Expanded,
}

impl Arithmetic {
    pub const NAMES: [&'static str; 2] = ["exact", "f32-expanded"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl CheckpointProbe {
    pub fn recall_in(&self, arithmetic: Arithmetic) -> f64 {
        match arithmetic {
            Arithmetic::Exact => self.recall,
            Arithmetic::F32Expanded => self.recall_f32_expanded,
        }
    }
}

impl std::str::FromStr for Arithmetic {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "exact" => Ok(Arithmetic::Exact),
            "f32-expanded" => Ok(Arithmetic::F32Expanded),
            _ => Err(Error::invalid(format!(
                "unknown arithmetic '{s}'; choose one of: {}",
                Self::NAMES.join(", ")
            ))),
        }
    }
}

/// What the study measures of a checkpoint before fine-tuning it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CheckpointProbe {
    /// Share of target samples inside the k-NN ball of some G sample (G samples as "fake").
    pub recall: f64,
    /// Share of G samples inside the k-NN ball of some target sample.
    pub precision: f64,
    /// `recall` and `precision` in the playground's float32 arithmetic.
    pub recall_f32_expanded: f64,
    pub precision_f32_expanded: f64,
    /// Mean cos(c(x) − x, +∇ₓL_G(x)) over G samples x, c(x) the nearest target centre and
    /// L_G = −log D: the public notebook's quantity (the ascent direction of the G loss).
    pub grad_sim_notebook: f64,
    /// Mean cos(c(x) − x, −∇ₓL_G(x)) = cos(c(x) − x, ∇ₓ log D(x)): the direction a G update
    /// moves x. Exactly −`grad_sim_notebook`.
    pub grad_sim_descent: f64,
    /// Samples with a usable gradient. As in the notebook's float32 arithmetic, a sample whose
    /// D(x) = σ(logit) rounds to exactly 1 or 0 has no gradient of −log D (its cosine is NaN
    /// there and dropped), nor has a sample where D is flat.
    pub grad_sim_samples: usize,
}

/// Recall, precision and ∇D similarity of G (eval mode) and D with `n` G samples and `n` fresh
/// target samples, as the study's notebook measures a checkpoint.
pub fn checkpoint_probe(
    g: &mut MlpGenerator,
    d: &MlpDiscriminator,
    target: &Distribution,
    rng: &mut ChaCha8Rng,
    n: usize,
) -> Result<CheckpointProbe> {
    let (centres, _) = mixture(target)?;
    let fake = sample_generator(g, rng, n)?;
    let real = target.sample_points(rng, n);
    let fake_points = finite_points(&fake)?;
    let knn = prdc(&real, &fake_points, K)?;
    let (precision_f32_expanded, recall_f32_expanded) =
        precision_recall_f32_expanded(&real, &fake_points, K)?;
    let (logits, logit_grad) =
        d.forward_with_input_grad(&points_tensor(&fake, &Device::Cpu)?, None)?;
    let (sum, count) = fake
        .iter()
        .zip(logits.to_vec1::<f32>()?)
        .zip(logit_grad.to_vec2::<f32>()?)
        .filter_map(|((x, logit), grad)| {
            // ∇ log D = (1 − D)∇logit: the direction of ∇logit, unless D saturates in f32.
            let d_of_x = 1.0 / (1.0 + (-logit).exp());
            if d_of_x == 1.0 || d_of_x == 0.0 {
                return None;
            }
            let c = nearest(x, centres.as_slice());
            cosine([c[0] - x[0], c[1] - x[1]], [grad[0] as f64, grad[1] as f64])
        })
        .fold((0.0, 0usize), |(s, n), cos| (s + cos, n + 1));
    // The descent direction ∇ log D; the notebook's is its negative.
    let descent = sum / count as f64;
    Ok(CheckpointProbe {
        recall: knn.recall,
        precision: knn.precision,
        recall_f32_expanded,
        precision_f32_expanded,
        grad_sim_notebook: -descent,
        grad_sim_descent: descent,
        grad_sim_samples: count,
    })
}

/// cos(a, b); `None` when either vector is zero.
fn cosine(a: [f64; 2], b: [f64; 2]) -> Option<f64> {
    let (na, nb) = (a[0].hypot(a[1]), b[0].hypot(b[1]));
    (na > 0.0 && nb > 0.0).then(|| (a[0] * b[0] + a[1] * b[1]) / (na * nb))
}

fn nearest(x: &[f64; 2], centres: &[f64]) -> [f64; 2] {
    centres
        .chunks_exact(2)
        .map(|c| [c[0], c[1]])
        .min_by(|a, b| dist2(a, x).total_cmp(&dist2(b, x)))
        .expect("a mixture has centres")
}

fn dist2(a: &[f64; 2], b: &[f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// Centres and σ of a mixture target.
fn mixture(target: &Distribution) -> Result<(Points, f64)> {
    match (target.centres(), target.sigma()) {
        (Some(c), Some(sigma)) => Ok((Points::new(c.len(), 2, c.concat())?, sigma)),
        _ => Err(Error::invalid(
            "mode coverage and ∇D similarity need a mixture target with known centres",
        )),
    }
}
