//! k-NN precision and recall in the float32 arithmetic of the study's public playground, for
//! comparing with its numbers; [`super::knn`] is the exact definition.
//!
//! The playground computes squared distances on float32 values as
//! `max((|u|² − 2u·v) + |v|², 0)`, the real point as `u`, with the norms summed in order and the
//! dot product accumulated with fused multiply-adds (what PyTorch's CPU matrix product does in
//! 2-D; checked bit for bit against it). Near a point of norm ~20 that expression carries an
//! error of ~1e-4, as large as the squared k-NN radius of a generator collapsed onto a few
//! points, so such a generator can get a recall that exact arithmetic would not give it. A
//! point's radius² is the (k+1)-th smallest entry of its row against its own set, its own
//! (rounded, not necessarily zero) distance included; "inside" is strictly below the radius².

use crate::{Points, Result};

/// Precision and recall of `fake` against `real` with `k` neighbours, in the playground's
/// float32 arithmetic.
pub fn precision_recall_f32_expanded(real: &Points, fake: &Points, k: usize) -> Result<(f64, f64)> {
    super::knn::check_inputs(real, fake, k)?;
    let (real, fake) = (Rows::new(real), Rows::new(fake));
    let (real_radii, fake_radii) = (real.radii(k), fake.radii(k));
    let mut fake_in_real_ball = vec![false; fake.len()];
    let mut real_in_fake_ball = vec![false; real.len()];
    for (i, inside) in real_in_fake_ball.iter_mut().enumerate() {
        for (j, covered) in fake_in_real_ball.iter_mut().enumerate() {
            let d = real.sq_dist(i, &fake, j);
            *inside |= d < fake_radii[j];
            *covered |= d < real_radii[i];
        }
    }
    let share = |flags: &[bool]| flags.iter().filter(|&&b| b).count() as f64 / flags.len() as f64;
    Ok((share(&fake_in_real_ball), share(&real_in_fake_ball)))
}

/// Points rounded to float32, with their squared norms.
struct Rows {
    dim: usize,
    values: Vec<f32>,
    norms: Vec<f32>,
}

impl Rows {
    fn new(points: &Points) -> Rows {
        let values: Vec<f32> = points.as_slice().iter().map(|&v| v as f32).collect();
        let norms = values
            .chunks_exact(points.dim())
            .map(|row| row.iter().fold(0.0f32, |sum, &x| sum + x * x))
            .collect();
        Rows {
            dim: points.dim(),
            values,
            norms,
        }
    }

    fn len(&self) -> usize {
        self.norms.len()
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dim..(i + 1) * self.dim]
    }

    /// `max((|u|² − 2u·v) + |v|², 0)` for u = row `i` of `self` and v = row `j` of `other`.
    fn sq_dist(&self, i: usize, other: &Rows, j: usize) -> f32 {
        let (u, v) = (self.row(i), other.row(j));
        let dot = u[1..]
            .iter()
            .zip(&v[1..])
            .fold(u[0] * v[0], |acc, (&a, &b)| a.mul_add(b, acc));
        ((self.norms[i] - 2.0 * dot) + other.norms[j]).max(0.0)
    }

    /// Each point's k-NN radius² in its own set.
    fn radii(&self, k: usize) -> Vec<f32> {
        (0..self.len())
            .map(|i| {
                let mut row: Vec<f32> = (0..self.len()).map(|j| self.sq_dist(i, self, j)).collect();
                *row.select_nth_unstable_by(k, f32::total_cmp).1
            })
            .collect()
    }
}
