//! GAN losses on discriminator logits, and gradient penalties.
//!
//! The toy playground's discriminator ends in a sigmoid: its "vanilla" and "js" losses are the
//! usual log-losses of that probability, and its "wasserstein" and "hinge" losses are applied
//! to the probability too. The logit form here computes the same quantities stably.

use crate::{Error, Result};
use candle_core::Tensor;

/// Adversarial loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Non-saturating: D −log σ(r) − log(1 − σ(f)), G −log σ(f).
    Vanilla,
    /// Saturating (minimax): D as vanilla, G log(1 − σ(f)).
    Js,
    /// On p = σ(logit): D −p(r) + p(f), G −p(f).
    Wasserstein,
    /// On p = σ(logit): D relu(1 − p(r)) + relu(1 + p(f)), G −p(f).
    Hinge,
}

impl std::str::FromStr for Loss {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "vanilla" => Ok(Loss::Vanilla),
            "js" => Ok(Loss::Js),
            "wasserstein" => Ok(Loss::Wasserstein),
            "hinge" => Ok(Loss::Hinge),
            _ => Err(Error::invalid(format!(
                "unknown loss '{s}' (known: vanilla, js, wasserstein, hinge)"
            ))),
        }
    }
}

/// softplus(x) = log(1 + eˣ), computed without overflow.
pub(crate) fn softplus(x: &Tensor) -> Result<Tensor> {
    let positive = x.relu()?;
    let tail = x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    Ok((positive + tail)?)
}

fn sigmoid(x: &Tensor) -> Result<Tensor> {
    Ok(candle_nn::ops::sigmoid(x)?)
}

impl Loss {
    /// DiscriminatorModel loss (mean over the batch) from the logits of real and fake samples:
    /// the sum of its [`Loss::discriminator_real`] and [`Loss::discriminator_fake`] terms.
    pub fn discriminator(self, real: &Tensor, fake: &Tensor) -> Result<Tensor> {
        Ok((self.discriminator_real(real)? + self.discriminator_fake(fake)?)?)
    }

    /// The discriminator loss's term of the real samples.
    pub fn discriminator_real(self, real: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Loss::Vanilla | Loss::Js => softplus(&real.neg()?)?.mean_all()?,
            Loss::Wasserstein => sigmoid(real)?.mean_all()?.neg()?,
            Loss::Hinge => sigmoid(real)?.neg()?.affine(1.0, 1.0)?.relu()?.mean_all()?,
        })
    }

    /// The discriminator loss's term of the fake samples.
    pub fn discriminator_fake(self, fake: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Loss::Vanilla | Loss::Js => softplus(fake)?.mean_all()?,
            Loss::Wasserstein => sigmoid(fake)?.mean_all()?,
            Loss::Hinge => sigmoid(fake)?.affine(1.0, 1.0)?.relu()?.mean_all()?,
        })
    }

    /// GeneratorModel loss (mean over the batch) from the logits of fake samples.
    pub fn generator(self, fake: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Loss::Vanilla => softplus(&fake.neg()?)?.mean_all()?,
            // log(1 − σ(f)) = −softplus(f)
            Loss::Js => softplus(fake)?.neg()?.mean_all()?,
            Loss::Wasserstein | Loss::Hinge => sigmoid(fake)?.neg()?.mean_all()?,
        })
    }
}

/// A gradient penalty added to the discriminator loss.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Penalty {
    None,
    /// WGAN-GP: λ·E[(‖∇ₓ p(x̂)‖ − 1)²] at x̂ = t·real + (1 − t)·fake, t ~ U(0, 1) per sample,
    /// on the probability p = σ(logit) as the playground's discriminator outputs it.
    WganGp {
        weight: f64,
    },
    /// R1: γ/2·E[‖∇ₓ logit(real)‖²]. With `every` 1 inside the D loss; otherwise as a
    /// separate update every `every` D steps, weighted by `every` (StyleGAN2's lazy
    /// regularisation; pair it with [`super::AdamConfig::for_lazy_interval`]).
    R1 {
        gamma: f64,
        every: usize,
    },
}

/// ‖g‖² per sample for a [batch, …] gradient (WGAN-GP adds its own floor before the square
/// root).
fn per_sample_sq_norm(grad: &Tensor) -> Result<Tensor> {
    Ok(grad.sqr()?.flatten_from(1)?.sum(1)?)
}

/// WGAN-GP term from the logits at the interpolates and their input gradient.
pub fn wgan_gp(logits: &Tensor, logit_grad: &Tensor, weight: f64) -> Result<Tensor> {
    // ∇ₓσ(l) = σ(l)(1 − σ(l))∇ₓl
    let p = sigmoid(logits)?;
    let slope = (&p * p.neg()?.affine(1.0, 1.0)?)?;
    let dims = logit_grad.dims().len();
    let slope = slope.reshape(
        std::iter::once(slope.dim(0)?)
            .chain(std::iter::repeat_n(1, dims - 1))
            .collect::<Vec<_>>(),
    )?;
    let grad = logit_grad.broadcast_mul(&slope)?;
    let norm = per_sample_sq_norm(&grad)?.affine(1.0, 1e-12)?.sqrt()?;
    Ok(norm
        .affine(1.0, -1.0)?
        .sqr()?
        .mean_all()?
        .affine(weight, 0.0)?)
}

/// R1 term (already scaled by γ/2 and the lazy interval).
pub fn r1(logit_grad: &Tensor, gamma: f64, every: usize) -> Result<Tensor> {
    let sq = per_sample_sq_norm(logit_grad)?.mean_all()?;
    Ok(sq.affine(gamma / 2.0 * every as f64, 0.0)?)
}
