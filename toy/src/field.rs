//! The discriminator's gradient field: where D's gradient pushes generated samples (the
//! study's Figure 1, for a real checkpoint).
//!
//! Convention: the field is the descent direction of the non-saturating generator loss,
//! −∇ₓ L_G(x) = ∇ₓ log D(x) with D = σ(logit): the direction in which a generator update moves
//! a sample at x. (The study's public notebook measured +∇ₓ L_G, the opposite direction.)

use crate::distributions::Distribution;
use crate::nets::MlpDiscriminator;
use crate::train::{load_toy_checkpoint, networks, points_tensor, sample_generator};
use candle_core::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use whichgan::plot::{self, Arrows, Panel, Scatter, PALETTE};
use whichgan::train::DiscriminatorModel;
use whichgan::Result;

/// ∇ₓ log D(x) at each point (see the module docs for the sign).
fn log_d_gradient(d: &MlpDiscriminator, points: &[[f64; 2]]) -> Result<Vec<[f64; 2]>> {
    let x = points_tensor(points, &Device::Cpu)?;
    let (logits, grad) = d.forward_with_input_grad(&x, None)?;
    // ∇ log σ(l) = (1 − σ(l)) ∇l
    let logits = logits.to_vec1::<f32>()?;
    let grad = grad.to_vec2::<f32>()?;
    Ok(logits
        .iter()
        .zip(grad)
        .map(|(&l, g)| {
            let weight = 1.0 / (1.0 + (l as f64).exp());
            [weight * g[0] as f64, weight * g[1] as f64]
        })
        .collect())
}

/// Unit vectors (zero vectors stay zero): arrows show direction; magnitudes differ by orders.
fn directions(v: &[[f64; 2]]) -> Vec<[f64; 2]> {
    v.iter()
        .map(|g| {
            let n = (g[0] * g[0] + g[1] * g[1]).sqrt();
            if n > 0.0 {
                [g[0] / n, g[1] / n]
            } else {
                [0.0, 0.0]
            }
        })
        .collect()
}

/// Draws G's samples, target samples and D's gradient field, from checkpoint `ckpt`, to
/// `<stem>.png` and `<stem>.svg`.
pub fn plot_field(ckpt_path: &Path, target: &Distribution, stem: &Path, seed: u64) -> Result<()> {
    let ckpt = load_toy_checkpoint(ckpt_path)?;
    let (mut g, d) = networks(&ckpt).map_err(|e| e.located_in(ckpt_path))?;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let real = target.sample(&mut rng, 2048);
    let fake = sample_generator(&mut g, &mut rng, 512)?;
    let (lo, hi) = bounds(real.iter().chain(&fake));
    let span = (hi[0] - lo[0]).max(hi[1] - lo[1]);
    const GRID: usize = 21;
    let step = span / (GRID - 1) as f64;
    let grid: Vec<[f64; 2]> = (0..GRID * GRID)
        .map(|k| {
            let (i, j) = (k % GRID, k / GRID);
            [lo[0] + i as f64 * step, lo[1] + j as f64 * step]
        })
        .collect();
    let grid_dirs = directions(&log_d_gradient(&d, &grid)?);
    let fake_dirs = directions(&log_d_gradient(&d, &fake)?);
    let panel = Panel {
        title: format!(
            "∇ₓ log D(x), G step {}: where G moves samples",
            ckpt.meta.g_steps
        ),
        scatters: vec![
            Scatter {
                label: "target",
                points: &real,
                color: PALETTE[0],
                alpha: 0.25,
                size: 2,
            },
            Scatter {
                label: "G samples",
                points: &fake,
                color: PALETTE[1],
                alpha: 0.6,
                size: 2,
            },
        ],
        arrows: vec![
            Arrows {
                label: "∇ₓ log D on a grid",
                origins: &grid,
                vectors: &grid_dirs,
                color: (120, 120, 120),
                scale: 0.8 * step,
            },
            Arrows {
                label: "∇ₓ log D at G samples",
                origins: &fake,
                vectors: &fake_dirs,
                color: PALETTE[3],
                scale: 0.5 * step,
            },
        ],
        limits: None,
        x_label: None,
        y_label: None,
    };
    plot::panels(stem, None, &[panel], 1, 800).map_err(|e| e.in_file(stem))
}

fn bounds<'a>(points: impl Iterator<Item = &'a [f64; 2]>) -> ([f64; 2], [f64; 2]) {
    let mut lo = [f64::INFINITY; 2];
    let mut hi = [f64::NEG_INFINITY; 2];
    for p in points {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    (lo, hi)
}
