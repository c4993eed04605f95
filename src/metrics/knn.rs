//! k-NN precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al.
//! 2020).
//!
//! Each point's ball has as radius the distance to its k-th nearest neighbour in its own set
//! (the point itself not counted). A point is inside a ball when it is *strictly* closer than the
//! radius. With R the real and F the fake points:
//! - precision = share of F inside at least one ball of R;
//! - recall    = share of R inside at least one ball of F;
//! - density   = (1 / kM) Σ_F (number of balls of R containing it), M = |F|;
//! - coverage  = share of R whose ball contains at least one point of F.
//!
//! Every ball-membership decision is exact in f64 arithmetic on the input values
//! (d² = Σ (u − v)², compared with the radius² of the same form), so that the counts do not
//! depend on the backend: the fast paths only *screen* candidates and hand every decision that
//! lies within their rounding error back to the exact comparison.
//! - [`Backend::Tree`]: a k-d tree (low dimensions, ≤ 4);
//! - [`Backend::Dense`]: blocked f32 matrix products |u|² + |v|² − 2u·v with a rigorous bound on
//!   their rounding error (high dimensions).

use crate::{Error, Points, Result};
use faer::reborrow::{Reborrow, ReborrowMut};
use faer::{Mat, Par};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// The four k-NN metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prdc {
    pub precision: f64,
    pub recall: f64,
    pub density: f64,
    pub coverage: f64,
}

/// How neighbours are searched; the results are identical, only the speed differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// k-d tree for dimension ≤ [`MAX_TREE_DIM`], dense products above.
    Auto,
    Tree,
    Dense,
}

/// Highest dimension the k-d tree backend handles.
pub const MAX_TREE_DIM: usize = 4;

/// Precision, recall, density and coverage of `fake` against `real` with `k` neighbours.
pub fn prdc(real: &Points, fake: &Points, k: usize) -> Result<Prdc> {
    prdc_with(real, fake, k, Backend::Auto)
}

/// [`prdc`] with an explicit backend.
pub fn prdc_with(real: &Points, fake: &Points, k: usize, backend: Backend) -> Result<Prdc> {
    check_inputs(real, fake, k)?;
    let use_tree = match backend {
        Backend::Auto => real.dim() <= MAX_TREE_DIM,
        Backend::Tree if real.dim() > MAX_TREE_DIM => {
            return Err(Error::invalid(format!(
                "the k-d tree backend handles dimension ≤ {MAX_TREE_DIM}, the points have {}",
                real.dim()
            )))
        }
        Backend::Tree => true,
        Backend::Dense => false,
    };
    let relations = if use_tree {
        tree::relations(real, fake, k)
    } else {
        dense::relations(real, fake, k)
    };
    Ok(relations.summarise(k))
}

fn check_set(points: &Points, k: usize, name: &str) -> Result<()> {
    if k == 0 {
        return Err(Error::invalid("k must be at least 1"));
    }
    if points.len() < k + 1 {
        return Err(Error::invalid(format!(
            "{name} has {} points; k = {k} needs at least k + 1 = {}",
            points.len(),
            k + 1
        )));
    }
    Ok(())
}

/// Both sets hold more than `k ≥ 1` points of one dimension.
pub(super) fn check_inputs(real: &Points, fake: &Points, k: usize) -> Result<()> {
    check_set(real, k, "the real set")?;
    check_set(fake, k, "the fake set")?;
    if real.dim() != fake.dim() {
        return Err(Error::invalid(format!(
            "the real points have dimension {}, the fake points {}",
            real.dim(),
            fake.dim()
        )));
    }
    Ok(())
}

/// Exact squared Euclidean distance, the one definition every decision is made with.
#[inline]
fn sq_dist(u: &[f64], v: &[f64]) -> f64 {
    u.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum()
}

/// The (k+1)-th smallest exact squared distance from `point` to `candidates` (itself included
/// as the 0-th), i.e. the k-NN radius².
fn kth_exact(points: &Points, i: usize, candidates: impl Iterator<Item = usize>, k: usize) -> f64 {
    let mut d: Vec<f64> = candidates
        .map(|j| sq_dist(points.row(i), points.row(j)))
        .collect();
    let (_, kth, _) = d.select_nth_unstable_by(k, f64::total_cmp);
    *kth
}

/// Which points lie in which balls: everything the four metrics are counted from.
struct Relations {
    /// For each fake point, how many real balls contain it.
    fake_in_real_balls: Vec<u32>,
    /// For each real point, whether its ball contains a fake point.
    real_ball_has_fake: Vec<bool>,
    /// For each real point, whether it lies inside some fake ball.
    real_in_fake_ball: Vec<bool>,
}

impl Relations {
    fn summarise(&self, k: usize) -> Prdc {
        let n_fake = self.fake_in_real_balls.len() as f64;
        let n_real = self.real_ball_has_fake.len() as f64;
        let share = |flags: &[bool]| flags.iter().filter(|&&b| b).count() as f64 / n_real;
        let in_any = self.fake_in_real_balls.iter().filter(|&&c| c > 0).count() as f64;
        let total: u64 = self.fake_in_real_balls.iter().map(|&c| c as u64).sum();
        Prdc {
            precision: in_any / n_fake,
            recall: share(&self.real_in_fake_ball),
            density: total as f64 / (k as f64 * n_fake),
            coverage: share(&self.real_ball_has_fake),
        }
    }
}

mod tree {
    //! k-d tree backend: every query radius is widened a little so that the tree never misses a
    //! candidate through its own rounding, and the exact comparison decides.
    use super::*;
    use kiddo::{ImmutableKdTree, SquaredEuclidean};
    use std::num::NonZeroUsize;

    /// Relative widening of query radii; far above f64 rounding, far below any real gap.
    const WIDEN: f64 = 1e-9;

    fn widen(r2: f64) -> f64 {
        r2 * (1.0 + WIDEN) + f64::MIN_POSITIVE
    }

    pub(super) fn relations(real: &Points, fake: &Points, k: usize) -> Relations {
        match real.dim() {
            1 => relations_k::<1>(real, fake, k),
            2 => relations_k::<2>(real, fake, k),
            3 => relations_k::<3>(real, fake, k),
            4 => relations_k::<4>(real, fake, k),
            d => unreachable!("tree backend called with dimension {d}"),
        }
    }

    fn arrays<const K: usize>(points: &Points) -> Vec<[f64; K]> {
        (0..points.len())
            .map(|i| points.row(i).try_into().expect("dimension checked"))
            .collect()
    }

    fn build<const K: usize>(arrays: &[[f64; K]]) -> ImmutableKdTree<f64, K> {
        ImmutableKdTree::new_from_slice(arrays).expect("non-empty, finite points")
    }

    /// Indices of the tree's points within squared radius `r2` (widened) of `query`.
    fn within<const K: usize>(
        tree: &ImmutableKdTree<f64, K>,
        query: &[f64; K],
        r2: f64,
    ) -> Vec<usize> {
        tree.query(query)
            .within::<SquaredEuclidean<f64>>(widen(r2))
            .unsorted()
            .execute()
            .into_iter()
            .map(|hit| hit.item as usize)
            .collect()
    }

    fn radii_sq_k<const K: usize>(points: &Points, k: usize) -> Vec<f64> {
        let arrays = arrays::<K>(points);
        let tree = build(&arrays);
        let n = NonZeroUsize::new(k + 1).unwrap();
        (0..points.len())
            .into_par_iter()
            .map(|i| {
                let nearest = tree
                    .query(&arrays[i])
                    .nearest_n::<SquaredEuclidean<f64>>(n)
                    .execute();
                let screen = nearest.last().expect("k + 1 points").distance;
                kth_exact(points, i, within(&tree, &arrays[i], screen).into_iter(), k)
            })
            .collect()
    }

    fn relations_k<const K: usize>(real: &Points, fake: &Points, k: usize) -> Relations {
        let (real_arrays, fake_arrays) = (arrays::<K>(real), arrays::<K>(fake));
        let (real_tree, fake_tree) = (build(&real_arrays), build(&fake_arrays));
        let real_r2 = radii_sq_k::<K>(real, k);
        let fake_r2 = radii_sq_k::<K>(fake, k);

        // The fake points inside each real ball.
        let members: Vec<Vec<usize>> = (0..real.len())
            .into_par_iter()
            .map(|i| {
                within(&fake_tree, &real_arrays[i], real_r2[i])
                    .into_iter()
                    .filter(|&j| sq_dist(real.row(i), fake.row(j)) < real_r2[i])
                    .collect()
            })
            .collect();
        let mut fake_in_real_balls = vec![0u32; fake.len()];
        for &j in members.iter().flatten() {
            fake_in_real_balls[j] += 1;
        }
        let real_ball_has_fake = members.iter().map(|m| !m.is_empty()).collect();

        let real_in_fake_ball = AtomicFlags::new(real.len());
        (0..fake.len()).into_par_iter().for_each(|j| {
            for i in within(&real_tree, &fake_arrays[j], fake_r2[j]) {
                if sq_dist(real.row(i), fake.row(j)) < fake_r2[j] {
                    real_in_fake_ball.set(i);
                }
            }
        });
        Relations {
            fake_in_real_balls,
            real_ball_has_fake,
            real_in_fake_ball: real_in_fake_ball.into_vec(),
        }
    }
}

/// Flags set from several threads; the result does not depend on the order.
struct AtomicFlags(Vec<AtomicBool>);

impl AtomicFlags {
    fn new(n: usize) -> Self {
        AtomicFlags((0..n).map(|_| AtomicBool::new(false)).collect())
    }

    fn set(&self, i: usize) {
        self.0[i].store(true, Ordering::Relaxed);
    }

    fn into_vec(self) -> Vec<bool> {
        self.0.into_iter().map(AtomicBool::into_inner).collect()
    }
}

mod dense {
    //! Dense backend: squared distances from f32 matrix products, screened with a rigorous
    //! bound on their error; decisions inside the bound are made exactly.
    use super::*;

    /// Points per block of the distance matrix (columns of one matrix product).
    const BLOCK: usize = 1024;
    /// f32 unit roundoff.
    const EPS32: f64 = f32::EPSILON as f64 / 2.0;

    /// A point set prepared for products: centred (distances do not change, rounding shrinks),
    /// rounded to f32, stored column-major as a d × n matrix (one point per column).
    pub(super) struct Prepared<'a> {
        raw: &'a Points,
        cols: Mat<f32>,
        /// |x̃|² of the rounded centred point, in f64.
        norm_sq: Vec<f64>,
        norm: Vec<f64>,
    }

    impl<'a> Prepared<'a> {
        fn new(raw: &'a Points, centre: &[f64]) -> Self {
            let d = raw.dim();
            let cols = Mat::<f32>::from_fn(d, raw.len(), |r, c| (raw.row(c)[r] - centre[r]) as f32);
            let norm_sq: Vec<f64> = (0..raw.len())
                .map(|c| {
                    cols.col(c)
                        .iter()
                        .map(|&v| v as f64 * v as f64)
                        .sum::<f64>()
                })
                .collect();
            let norm = norm_sq.iter().map(|v| v.sqrt()).collect();
            Prepared {
                raw,
                cols,
                norm_sq,
                norm,
            }
        }
    }

    /// Bound on |approx d² − exact d²| is `coefficient(d) · (|x̃| + |ỹ|)²`: the f32 dot product
    /// errs by at most γ_d Σ|x̃_k ỹ_k| ≤ γ_d (|x̃| + |ỹ|)² / 4 (times 2 in d²), rounding the
    /// centred inputs to f32 moves d² by at most 2.01 ε (|x̃| + |ỹ|)², and the f64 assembly adds
    /// a few f64 ulps.
    fn coefficient(d: usize) -> f64 {
        let gamma = d as f64 * EPS32 / (1.0 - d as f64 * EPS32);
        gamma / 2.0 + 2.01 * EPS32 + 1e-13
    }

    fn centre(sets: &[&Points]) -> Vec<f64> {
        let d = sets[0].dim();
        let n: usize = sets.iter().map(|s| s.len()).sum();
        let mut c = vec![0.0; d];
        for s in sets {
            for i in 0..s.len() {
                for (acc, v) in c.iter_mut().zip(s.row(i)) {
                    *acc += v;
                }
            }
        }
        c.iter_mut().for_each(|v| *v /= n as f64);
        c
    }

    /// Calls `visit(j, approx_d2_column)` for every column point `j` of `cols`, where the
    /// column holds the screened squared distances from `j` to every point of `rows`.
    fn for_each_column(rows: &Prepared, cols: &Prepared, visit: impl Fn(usize, &[f64]) + Sync) {
        let n_rows = rows.raw.len();
        let mut gram = Mat::<f32>::zeros(n_rows, BLOCK.min(cols.raw.len()));
        for start in (0..cols.raw.len()).step_by(BLOCK) {
            let width = BLOCK.min(cols.raw.len() - start);
            let mut block = gram.as_mut().subcols_mut(0, width);
            faer::linalg::matmul::matmul(
                block.rb_mut(),
                faer::Accum::Replace,
                rows.cols.transpose(),
                cols.cols.subcols(start, width),
                1.0f32,
                Par::rayon(0),
            );
            let block = block.rb();
            (0..width).into_par_iter().for_each_init(
                || vec![0.0f64; n_rows],
                |approx, c| {
                    let j = start + c;
                    let dots = block.col(c);
                    for (i, a) in approx.iter_mut().enumerate() {
                        *a = rows.norm_sq[i] + cols.norm_sq[j] - 2.0 * dots[i] as f64;
                    }
                    visit(j, approx);
                },
            );
        }
    }

    /// Extra neighbours kept beyond the k + 1 nearest, so that the exact re-ranking almost
    /// always finds every candidate of the error band among them.
    const SLACK: usize = 8;
    /// Rows per parallel task when rows of a block update their own neighbour lists.
    const ROW_CHUNK: usize = 64;

    /// k-NN radii² within one set. The Gram matrix is symmetric, so only its lower block
    /// triangle is multiplied (half the work): block column J yields the distances of J's points
    /// to every later point, which update the neighbour lists of both.
    fn radii_prepared(p: &Prepared, k: usize) -> Vec<f64> {
        let n = p.raw.len();
        let keep = k + 1 + SLACK;
        let mut nearest: Vec<Nearest> = (0..n).map(|_| Nearest::new(keep)).collect();
        let approx = |i: usize, j: usize, dot: f32| p.norm_sq[i] + p.norm_sq[j] - 2.0 * dot as f64;
        let mut gram = Mat::<f32>::zeros(n, BLOCK.min(n));
        for start in (0..n).step_by(BLOCK) {
            let width = BLOCK.min(n - start);
            let rows = n - start;
            let mut block = gram.as_mut().submatrix_mut(0, 0, rows, width);
            // block[(r, c)] = x̃_{start+r} · x̃_{start+c}
            faer::linalg::matmul::matmul(
                block.rb_mut(),
                faer::Accum::Replace,
                p.cols.subcols(start, rows).transpose(),
                p.cols.subcols(start, width),
                1.0f32,
                Par::rayon(0),
            );
            let block = block.rb();
            let (in_block, later) = nearest[start..].split_at_mut(width);
            in_block.par_iter_mut().enumerate().for_each(|(c, list)| {
                let j = start + c;
                for (r, &dot) in block.col(c).iter().enumerate() {
                    list.offer(approx(start + r, j, dot), start + r);
                }
            });
            later
                .par_chunks_mut(ROW_CHUNK)
                .enumerate()
                .for_each(|(chunk, lists)| {
                    let first = width + chunk * ROW_CHUNK;
                    for c in 0..width {
                        let column = block.col(c);
                        for (t, list) in lists.iter_mut().enumerate() {
                            let r = first + t;
                            list.offer(approx(start + r, start + c, column[r]), start + c);
                        }
                    }
                });
        }
        let coef = coefficient(p.raw.dim());
        let max_norm = p.norm.iter().cloned().fold(0.0, f64::max);
        nearest
            .par_iter()
            .enumerate()
            .map(|(i, list)| {
                // Each approximate d² errs by at most the bound (`coefficient`), so every true
                // k-NN has approx ≤ the k-th approx + 2·bound.
                let band = list.values[k] + 2.0 * coef * (p.norm[i] + max_norm).powi(2);
                if list.may_miss_below(band) {
                    kth_exact(p.raw, i, 0..n, k)
                } else {
                    let candidates = list.values.iter().zip(&list.indices);
                    let candidates = candidates.filter(|(&v, _)| v <= band);
                    kth_exact(p.raw, i, candidates.map(|(_, &j)| j as usize), k)
                }
            })
            .collect()
    }

    /// The `capacity` smallest screened distances offered so far, ascending, with their points.
    struct Nearest {
        capacity: usize,
        values: Vec<f64>,
        indices: Vec<u32>,
    }

    impl Nearest {
        fn new(capacity: usize) -> Self {
            Nearest {
                capacity,
                values: Vec::with_capacity(capacity),
                indices: Vec::with_capacity(capacity),
            }
        }

        #[inline]
        fn offer(&mut self, value: f64, index: usize) {
            let full = self.values.len() == self.capacity;
            if full && value >= self.values[self.capacity - 1] {
                return;
            }
            let at = self.values.partition_point(|&v| v <= value);
            if full {
                self.values.pop();
                self.indices.pop();
            }
            self.values.insert(at, value);
            self.indices.insert(at, index as u32);
        }

        /// Whether a value ≤ `limit` may have been dropped for lack of room.
        fn may_miss_below(&self, limit: f64) -> bool {
            self.values.len() == self.capacity && self.values[self.capacity - 1] <= limit
        }
    }

    /// Decides `exact(i, j) < threshold` from the screened value, computing exactly only when
    /// the screen cannot tell.
    #[inline]
    fn inside(approx: f64, bound: f64, threshold: f64, exact: impl FnOnce() -> f64) -> bool {
        if approx + bound < threshold {
            true
        } else if approx - bound >= threshold {
            false
        } else {
            exact() < threshold
        }
    }

    pub(super) fn relations(real: &Points, fake: &Points, k: usize) -> Relations {
        let c = centre(&[real, fake]);
        let (r, f) = (Prepared::new(real, &c), Prepared::new(fake, &c));
        let real_r2 = radii_prepared(&r, k);
        let fake_r2 = radii_prepared(&f, k);
        let coef = coefficient(real.dim());

        let fake_counts: Vec<std::sync::atomic::AtomicU32> =
            (0..fake.len()).map(|_| Default::default()).collect();
        let real_ball_has_fake = AtomicFlags::new(real.len());
        let real_in_fake_ball = AtomicFlags::new(real.len());
        for_each_column(&r, &f, |j, approx| {
            let mut count = 0u32;
            for (i, &a) in approx.iter().enumerate() {
                let bound = coef * (r.norm[i] + f.norm[j]).powi(2);
                let exact = || sq_dist(real.row(i), fake.row(j));
                if inside(a, bound, real_r2[i], exact) {
                    count += 1;
                    real_ball_has_fake.set(i);
                }
                if inside(a, bound, fake_r2[j], exact) {
                    real_in_fake_ball.set(i);
                }
            }
            fake_counts[j].store(count, Ordering::Relaxed);
        });
        Relations {
            fake_in_real_balls: fake_counts.into_iter().map(|c| c.into_inner()).collect(),
            real_ball_has_fake: real_ball_has_fake.into_vec(),
            real_in_fake_ball: real_in_fake_ball.into_vec(),
        }
    }
}
