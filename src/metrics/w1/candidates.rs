//! Starting candidate pairs for the W1 solver: the multiscale start (the problem coarsened to
//! cells of nearby points, solved recursively) and the k-d partition behind both the cells and
//! the spatial sort of the clouds.

use super::{point, solve_transport, Problem};

/// Maximum number of points merged into one cell of the coarsened problem.
const CELL_SIZE: usize = 8;

/// Solves the problem coarsened to cells (cell weight = total weight, position = weighted
/// centroid). Returns all point pairs of cell pairs that exchange mass, which admit a feasible
/// flow close to the optimum, and per point its cell's potential: an approximation of the
/// optimal potentials, which for W1 are 1-Lipschitz and so vary little within a cell.
pub(super) fn coarse_start(p: &Problem) -> (Vec<(u32, u32)>, Vec<f64>, Vec<f64>) {
    let cells_a = Cells::new(p.a, p.dim, p.supply);
    let cells_b = Cells::new(p.b, p.dim, p.demand);
    let coarse = solve_transport(&Problem {
        a: &cells_a.centroids,
        b: &cells_b.centroids,
        dim: p.dim,
        supply: &cells_a.weights,
        demand: &cells_b.weights,
        scale: p.scale,
        tol: p.tol,
    });
    let mut pairs = Vec::new();
    for &(cell_a, cell_b) in &coarse.support {
        for &i in cells_a.members(cell_a) {
            pairs.extend(cells_b.members(cell_b).iter().map(|&j| (i, j)));
        }
    }
    (
        pairs,
        cells_a.spread(&coarse.pi_a),
        cells_b.spread(&coarse.pi_b),
    )
}

/// A partition of a weighted cloud into cells of at most [`CELL_SIZE`] nearby points.
struct Cells {
    /// Point indices grouped by cell; cell c is `order[start[c]..start[c + 1]]`.
    order: Vec<u32>,
    start: Vec<usize>,
    /// Weighted centroid of each cell (row-major).
    centroids: Vec<f64>,
    /// Total weight of each cell.
    weights: Vec<i64>,
}

impl Cells {
    fn new(cloud: &[f64], dim: usize, weight: &[i64]) -> Self {
        let (order, start) = kd_partition(cloud, dim, CELL_SIZE);
        let mut centroids = Vec::with_capacity((start.len() - 1) * dim);
        let mut weights = Vec::with_capacity(start.len() - 1);
        for bounds in start.windows(2) {
            let members = &order[bounds[0]..bounds[1]];
            let total: i64 = members.iter().map(|&i| weight[i as usize]).sum();
            let mut centroid = vec![0.0; dim];
            for &i in members {
                let w = weight[i as usize] as f64 / total as f64;
                for (c, x) in centroid.iter_mut().zip(point(cloud, dim, i as usize)) {
                    *c += w * x;
                }
            }
            centroids.extend(centroid);
            weights.push(total);
        }
        Cells {
            order,
            start,
            centroids,
            weights,
        }
    }

    fn members(&self, cell: u32) -> &[u32] {
        &self.order[self.start[cell as usize]..self.start[cell as usize + 1]]
    }

    /// Per point, the value of its cell.
    fn spread(&self, cell_values: &[f64]) -> Vec<f64> {
        let mut values = vec![0.0; self.order.len()];
        for (cell, &value) in cell_values.iter().enumerate() {
            for &i in self.members(cell as u32) {
                values[i as usize] = value;
            }
        }
        values
    }
}

/// Recursive median cuts across the widest coordinate until parts have at most `leaf` points
/// (any dimension). Returns the point indices grouped by part, parts in depth-first order (so
/// nearby parts are mostly adjacent), and the part boundaries in that list.
fn kd_partition(cloud: &[f64], dim: usize, leaf: usize) -> (Vec<u32>, Vec<usize>) {
    let n = cloud.len() / dim;
    let coord = |i: u32, k: usize| cloud[i as usize * dim + k];
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut start = vec![0];
    // Depth-first with the lower half on top of the stack, so parts finish in list order.
    let mut stack = vec![(0, n)];
    while let Some((lo, hi)) = stack.pop() {
        let members = &mut order[lo..hi];
        if members.len() <= leaf {
            start.push(hi);
            continue;
        }
        let extent = |k: usize| {
            let (min, max) = members
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), &i| {
                    (min.min(coord(i, k)), max.max(coord(i, k)))
                });
            max - min
        };
        let mut widest = 0;
        let mut widest_extent = extent(0);
        for k in 1..dim {
            let e = extent(k);
            if e > widest_extent {
                (widest, widest_extent) = (k, e);
            }
        }
        let mid = members.len() / 2;
        members.select_nth_unstable_by(mid, |&i, &j| {
            coord(i, widest)
                .total_cmp(&coord(j, widest))
                .then(i.cmp(&j))
        });
        stack.push((lo + mid, hi));
        stack.push((lo, lo + mid));
    }
    (order, start)
}

/// The cloud's points reordered along a k-d partition (nearby points mostly adjacent).
pub(super) fn spatially_sorted(cloud: &[f64], dim: usize) -> Vec<f64> {
    let (order, _) = kd_partition(cloud, dim, 1);
    order
        .iter()
        .flat_map(|&i| point(cloud, dim, i as usize))
        .copied()
        .collect()
}
