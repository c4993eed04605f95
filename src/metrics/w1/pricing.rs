//! Dense scans of the W1 solver over all n_a·n_b pairs, pruned by bounding boxes of point
//! blocks: each point's partners of smallest reduced cost (the starting candidates) and the
//! optimality check that finds the pairs violating the current potentials.

use rayon::prelude::*;

/// Most violating pairs added per a-point in one dense pricing round: several per row let the
/// simplex fix many rows at once without flooding it with pairs that will never carry flow.
const ADDED_PER_ROW: usize = 16;
/// Points per block in the dense scans: the unit of their bounding-box pruning.
const BLOCK: usize = 64;

/// A point cloud prepared for brute-force scans: column-major coordinates (so that distance
/// rows vectorise) and bounding boxes of consecutive blocks of [`BLOCK`] points (so that a
/// whole block can be skipped when its box is too far away).
pub(super) struct Cloud<'a> {
    rows: &'a [f64],
    /// Coordinate k of point j at `k * n + j`.
    cols: Vec<f64>,
    dim: usize,
    n: usize,
    /// Per block, `dim` lower then `dim` upper coordinate bounds.
    boxes: Vec<f64>,
}

impl<'a> Cloud<'a> {
    pub(super) fn new(rows: &'a [f64], dim: usize) -> Self {
        let n = rows.len() / dim;
        let mut cols = vec![0.0; rows.len()];
        for (j, p) in rows.chunks_exact(dim).enumerate() {
            for (k, &x) in p.iter().enumerate() {
                cols[k * n + j] = x;
            }
        }
        let mut boxes = Vec::with_capacity(n.div_ceil(BLOCK) * 2 * dim);
        for block in rows.chunks(BLOCK * dim) {
            let mut min = vec![f64::INFINITY; dim];
            let mut max = vec![f64::NEG_INFINITY; dim];
            for p in block.chunks_exact(dim) {
                for k in 0..dim {
                    min[k] = min[k].min(p[k]);
                    max[k] = max[k].max(p[k]);
                }
            }
            boxes.extend(min);
            boxes.extend(max);
        }
        Cloud {
            rows,
            cols,
            dim,
            n,
            boxes,
        }
    }

    fn block_start(block: usize) -> usize {
        block * BLOCK
    }

    /// Squared distance from `p` to the bounding box of `block`. Rounding is monotone, so it
    /// never exceeds the [`Cloud::squared_distances`] value of a point in the block.
    fn box_gap2(&self, p: &[f64], block: usize) -> f64 {
        let bounds = &self.boxes[block * 2 * self.dim..(block + 1) * 2 * self.dim];
        let (min, max) = bounds.split_at(self.dim);
        let mut gap2 = 0.0;
        for ((&x, &lo), &hi) in p.iter().zip(min).zip(max) {
            let gap = if x < lo {
                lo - x
            } else if x > hi {
                x - hi
            } else {
                0.0
            };
            gap2 += gap * gap;
        }
        gap2
    }

    /// Squared distances from `p` to the points of `block`, returned as a prefix of `out`;
    /// bit-identical to the squares that [`distance`](super::distance) takes the root of.
    fn squared_distances<'o>(
        &self,
        p: &[f64],
        block: usize,
        out: &'o mut [f64; BLOCK],
    ) -> &'o [f64] {
        let start = Self::block_start(block);
        let len = BLOCK.min(self.n - start);
        let out = &mut out[..len];
        out.fill(0.0);
        for (k, &x) in p.iter().enumerate() {
            let column = &self.cols[k * self.n + start..k * self.n + start + len];
            for (d2, &y) in out.iter_mut().zip(column) {
                *d2 += (x - y) * (x - y);
            }
        }
        out
    }
}

/// Per block of `values` (aligned with the [`Cloud`] blocks), its largest value.
fn block_maxima(values: &[f64]) -> Vec<f64> {
    values
        .chunks(BLOCK)
        .map(|block| block.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x)))
        .collect()
}

/// For every point i of `from`: the indices j of the `k` points of `to` with the smallest
/// keys `c_ij + from_pot[i] − to_pot[j]` (ties to the smaller j), in increasing order. Blocks
/// are visited in order of a lower bound on their keys, until the bound exceeds the k-th best
/// key so far. Parallel over the points of `from`.
pub(super) fn smallest_reduced_costs(
    from: &Cloud,
    to: &Cloud,
    from_pot: &[f64],
    to_pot: &[f64],
    k: usize,
) -> Vec<Vec<u32>> {
    let block_max_pot = block_maxima(to_pot);
    from.rows
        .par_chunks(from.dim)
        .zip(from_pot)
        .map_init(
            || (Vec::new(), [0.0; BLOCK]),
            |(by_bound, buffer), (p, &pot)| {
                by_bound.clear();
                by_bound.extend(block_max_pot.iter().enumerate().map(|(block, &max_pot)| {
                    (to.box_gap2(p, block).sqrt() + pot - max_pot, block)
                }));
                by_bound.sort_unstable_by(|x: &(f64, usize), y| {
                    x.0.total_cmp(&y.0).then(x.1.cmp(&y.1))
                });
                let mut best = SmallestK::new(k);
                for &(bound, block) in by_bound.iter() {
                    if bound > best.threshold {
                        break;
                    }
                    let start = Cloud::block_start(block);
                    let d2 = to.squared_distances(p, block, buffer);
                    for (j, (&d2, &pot_j)) in (start..).zip(d2.iter().zip(&to_pot[start..])) {
                        // The key can only reach the threshold if d2 ≤ t² (t ≥ 0); this
                        // skips most square roots.
                        let t = best.threshold - pot + pot_j;
                        if t >= 0.0 && d2 <= t * t * (1.0 + 1e-9) {
                            best.offer(d2.sqrt() + pot - pot_j, j as u32);
                        }
                    }
                }
                best.into_indices()
            },
        )
        .collect()
}

/// The dense optimality check: for every a-point i, the (at most [`ADDED_PER_ROW`]) b-points
/// j with the most negative reduced costs c_ij + π_i − π_j < −tol, in increasing j. The
/// reduced cost is evaluated exactly as the simplex pricing does, so the simplex can pivot on
/// every pair returned. The block and pair filters before it are necessary conditions for a
/// violation (up to a small margin for rounding), so no violation is missed.
pub(super) fn violations(
    a: &Cloud,
    b: &Cloud,
    pi_a: &[f64],
    pi_b: &[f64],
    tol: f64,
) -> Vec<Vec<u32>> {
    let block_max_pi = block_maxima(pi_b);
    // c_ij + π_i − π_j < −tol  ⇔  c_ij < t := π_j − π_i − tol  ⇔  c_ij² < t² with t > 0.
    let may_violate = |d2: f64, t: f64| t > 0.0 && d2 < t * t * (1.0 + 1e-9);
    a.rows
        .par_chunks(a.dim)
        .zip(pi_a)
        .map_init(
            || [0.0; BLOCK],
            |buffer, (p, &pi_i)| {
                let mut worst = SmallestK::new(ADDED_PER_ROW);
                for (block, &max_pi) in block_max_pi.iter().enumerate() {
                    if !may_violate(b.box_gap2(p, block), max_pi - pi_i - tol) {
                        continue;
                    }
                    let start = Cloud::block_start(block);
                    let d2 = b.squared_distances(p, block, buffer);
                    for (j, (&d2, &pi_j)) in (start..).zip(d2.iter().zip(&pi_b[start..])) {
                        if may_violate(d2, pi_j - pi_i - tol) {
                            let reduced_cost = d2.sqrt() + pi_i - pi_j;
                            if reduced_cost < -tol {
                                worst.offer(reduced_cost, j as u32);
                            }
                        }
                    }
                }
                worst.into_indices()
            },
        )
        .collect()
}

/// Streaming selection of the `k` smallest (key, index) pairs, ordered by key then index.
/// Amortised O(1) per offer in any order: offers are buffered and cut back to the best k
/// whenever the buffer reaches 2k.
struct SmallestK {
    k: usize,
    /// The k-th smallest key so far (infinite until k were kept): larger keys cannot enter.
    threshold: f64,
    items: Vec<(f64, u32)>,
}

impl SmallestK {
    fn new(k: usize) -> Self {
        SmallestK {
            k,
            threshold: f64::INFINITY,
            items: Vec::with_capacity(2 * k),
        }
    }

    fn offer(&mut self, key: f64, index: u32) {
        if key <= self.threshold {
            self.items.push((key, index));
            if self.items.len() >= 2 * self.k {
                self.cut();
            }
        }
    }

    fn cut(&mut self) {
        if self.items.len() > self.k {
            self.items
                .select_nth_unstable_by(self.k, |x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
            self.items.truncate(self.k);
        }
        if self.k > 0 && self.items.len() == self.k {
            self.threshold = self.items.iter().fold(f64::NEG_INFINITY, |m, x| m.max(x.0));
        }
    }

    fn into_indices(mut self) -> Vec<u32> {
        self.cut();
        let mut indices: Vec<u32> = self.items.iter().map(|&(_, j)| j).collect();
        indices.sort_unstable();
        indices
    }
}
