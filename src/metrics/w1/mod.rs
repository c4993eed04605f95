//! Exact Wasserstein-1 (earth mover's) distance between two point clouds.
//!
//! The transport problem is solved exactly by a primal network simplex on a sparse, growing
//! set of candidate pairs; a dense reduced-cost scan over all pairs certifies optimality.
//!
//! Files: this one sets up the problem and runs the solve loop; `candidates` builds the
//! starting candidate pairs (multiscale start, k-d cells, spatial sort); `pricing` holds the
//! dense scans over all pairs (reduced costs, violations); `simplex` the network simplex.

mod candidates;
mod pricing;
mod simplex;
#[cfg(test)]
mod tests;

use candidates::{coarse_start, spatially_sorted};
use pricing::{smallest_reduced_costs, violations, Cloud};
use simplex::{NetworkSimplex, NONE};

/// Candidate partners per point and direction that seed the sparse problem.
const CANDIDATES_PER_POINT: usize = 8;
/// Problems with more points than this on either side first solve a coarsened problem.
const COARSEN_ABOVE: usize = 256;
/// Optimality tolerance on reduced costs, relative to the bounding-box diagonal (the cost
/// scale). It only has to absorb rounding noise in the potentials (observed ≈ 1e-14 of the
/// scale); the returned W1 exceeds the exact optimum by at most this much times the scale.
const REL_TOL: f64 = 1e-13;

/// Coordinates beyond which [`wasserstein1`] solves a scaled-down copy of the clouds.
const LARGE_COORDINATE: f64 = 1e100;

/// Exact W1 between the empirical measures of `a` (n_a × dim, row-major) and `b` (n_b × dim),
/// uniform weights 1/n_a and 1/n_b, Euclidean ground cost. Returns the optimal transport cost.
///
/// # Algorithm
/// With g = gcd(n_a, n_b), scaling the weights by n_a·n_b/g makes every a-point supply the
/// integer n_b/g and every b-point demand n_a/g: an integral transportation problem with total
/// flow F = n_a·n_b/g, and W1 = Σ c_ij x_ij / F. It is solved as follows:
///
/// 1. Multiscale start (more than 256 points on a side): both clouds are merged into cells
///    of at most 8 nearby points (k-d median cuts) and the cell problem is solved
///    recursively. The point pairs of cell pairs that exchange mass admit a near-optimal flow,
///    and the cell potentials, copied to the points, rank each point's likely partners.
/// 2. A primal network simplex (spanning-tree basis with parent/depth/thread arrays,
///    candidate-list pricing, strongly feasible leaving-arc rule against cycling) is run on
///    these candidate pairs. Artificial arcs through a root node, costlier than any pair, give
///    a feasible starting basis even where the candidates cannot carry the flow.
/// 3. A dense scan prices all n_a·n_b pairs against the simplex potentials π (bounding boxes
///    of point blocks and a sqrt-free test skip most of them); pairs with reduced cost
///    c_ij + π_i − π_j < −tol are added and step 2 resumes from the current basis.
///
/// # Why it is exact
/// The loop ends only when the dense scan finds no pair below −tol: then π is a dual solution
/// of the *complete* problem, feasible up to tol, and complementary to the current integral
/// flow, so that flow is optimal up to tol per unit of mass: the W1 error is at most
/// tol = 1e-13 × the bounding-box diagonal (a margin for rounding noise only). Routing flow
/// through the root costs more than any direct pair, so the artificial arcs end up empty. The
/// value is summed from the integer flows and directly evaluated distances, not from π. The
/// multiscale start only affects speed. The result is deterministic: parallel scans (rayon's
/// global pool) return their findings in point order, and everything else is sequential.
///
/// Memory is O((n_a + n_b)·dim + number of candidate pairs); no n_a × n_b matrix is stored.
/// The dense scans cost O(n_a·n_b·dim) each in the worst case (high dimension, where the
/// bounding boxes prune little); a handful of rounds is typical.
pub fn wasserstein1(a: &[f64], b: &[f64], dim: usize) -> f64 {
    debug_assert!(dim >= 1, "dim must be at least 1");
    debug_assert!(
        !a.is_empty() && !b.is_empty(),
        "point clouds must be non-empty"
    );
    debug_assert!(
        a.len().is_multiple_of(dim) && b.len().is_multiple_of(dim),
        "lengths must be multiples of dim"
    );
    debug_assert!(
        a.iter().chain(b).all(|x| x.is_finite()),
        "coordinates must be finite"
    );
    // Squared coordinate differences overflow beyond ~1e154. W1 scales with the points, so
    // such clouds are solved scaled down by a power of two (exactly) and the value scaled back.
    let largest = a.iter().chain(b).fold(0.0f64, |m, x| m.max(x.abs()));
    if largest > LARGE_COORDINATE {
        let factor = 2f64.powi(largest.log2().ceil() as i32 - 10);
        let shrink = |x: &[f64]| x.iter().map(|v| v / factor).collect::<Vec<_>>();
        return wasserstein1(&shrink(a), &shrink(b), dim) * factor;
    }
    let n_a = a.len() / dim;
    let n_b = b.len() / dim;
    debug_assert!(
        n_a + n_b < NONE as usize,
        "too many points for 32-bit node indices"
    );

    // Upper bound on every pair cost; zero means that all points coincide.
    let scale = bounding_box_diagonal(a, b, dim);
    if scale == 0.0 {
        return 0.0;
    }
    // W1 ignores the order of the points. Sorted along a k-d partition, consecutive points
    // are close, so the dense scans can skip whole blocks of them by their bounding boxes.
    let a = spatially_sorted(a, dim);
    let b = spatially_sorted(b, dim);
    let g = gcd(n_a, n_b);
    let supply = vec![(n_b / g) as i64; n_a];
    let demand = vec![(n_a / g) as i64; n_b];
    let total_flow = (n_a * (n_b / g)) as f64;
    let problem = Problem {
        a: &a,
        b: &b,
        dim,
        supply: &supply,
        demand: &demand,
        scale,
        tol: REL_TOL * scale,
    };
    solve_transport(&problem).cost / total_flow
}

/// A balanced transportation problem between two weighted clouds (Σ supply = Σ demand > 0).
struct Problem<'a> {
    a: &'a [f64],
    b: &'a [f64],
    dim: usize,
    supply: &'a [i64],
    demand: &'a [i64],
    /// At least the largest pair cost: the cost of the artificial arcs.
    scale: f64,
    tol: f64,
}

/// Optimal value, the pairs (i, j) that carry flow, and the optimal potentials.
struct Solution {
    cost: f64,
    support: Vec<(u32, u32)>,
    pi_a: Vec<f64>,
    pi_b: Vec<f64>,
}

/// Solves a transportation problem exactly (see [`wasserstein1`] for the method).
fn solve_transport(p: &Problem) -> Solution {
    let (n_a, n_b) = (p.supply.len(), p.demand.len());
    let a = Cloud::new(p.a, p.dim);
    let b = Cloud::new(p.b, p.dim);

    let (mut pairs, guess_a, guess_b) = if n_a.max(n_b) > COARSEN_ABOVE {
        coarse_start(p)
    } else {
        (Vec::new(), vec![0.0; n_a], vec![0.0; n_b])
    };
    // Each point's partners with the smallest reduced costs under the guessed potentials
    // (plain nearest neighbours without a guess).
    let neg_guess_a: Vec<f64> = guess_a.iter().map(|x| -x).collect();
    let neg_guess_b: Vec<f64> = guess_b.iter().map(|x| -x).collect();
    let k = CANDIDATES_PER_POINT;
    let by_row = smallest_reduced_costs(&a, &b, &guess_a, &guess_b, k);
    let by_column = smallest_reduced_costs(&b, &a, &neg_guess_b, &neg_guess_a, k);
    for (i, js) in by_row.iter().enumerate() {
        pairs.extend(js.iter().map(|&j| (i as u32, j)));
    }
    for (j, is) in by_column.iter().enumerate() {
        pairs.extend(is.iter().map(|&i| (i, j as u32)));
    }
    pairs.sort_unstable();
    pairs.dedup();

    let mut simplex = NetworkSimplex::new(p.supply, p.demand, p.scale, p.tol);
    loop {
        for &(i, j) in &pairs {
            let (i, j) = (i as usize, j as usize);
            let cost = distance(point(p.a, p.dim, i), point(p.b, p.dim, j));
            simplex.add_arc(i, n_a + j, cost);
        }
        simplex.refresh_potentials();
        simplex.optimize();
        let (pi_a, pi_b) = simplex.pi[..n_a + n_b].split_at(n_a);
        pairs.clear();
        for (i, js) in violations(&a, &b, pi_a, pi_b, p.tol).iter().enumerate() {
            pairs.extend(js.iter().map(|&j| (i as u32, j)));
        }
        if pairs.is_empty() {
            break;
        }
    }
    let cost = simplex.transport_cost();
    let support = simplex.support(n_a);
    let mut pi_a = simplex.pi;
    pi_a.truncate(n_a + n_b);
    let pi_b = pi_a.split_off(n_a);
    Solution {
        cost,
        support,
        pi_a,
        pi_b,
    }
}

fn gcd(mut x: usize, mut y: usize) -> usize {
    while y != 0 {
        (x, y) = (y, x % y);
    }
    x
}

fn point(cloud: &[f64], dim: usize, i: usize) -> &[f64] {
    &cloud[i * dim..(i + 1) * dim]
}

/// Euclidean distance: the one definition of a pair cost. [`Cloud::squared_distances`]
/// performs the same operations in the same order, so both agree bit for bit.
fn distance(p: &[f64], q: &[f64]) -> f64 {
    p.iter()
        .zip(q)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

fn bounding_box_diagonal(a: &[f64], b: &[f64], dim: usize) -> f64 {
    let mut min = vec![f64::INFINITY; dim];
    let mut max = vec![f64::NEG_INFINITY; dim];
    for p in a.chunks_exact(dim).chain(b.chunks_exact(dim)) {
        for k in 0..dim {
            min[k] = min[k].min(p[k]);
            max[k] = max[k].max(p[k]);
        }
    }
    min.iter()
        .zip(&max)
        .map(|(l, h)| (h - l) * (h - l))
        .sum::<f64>()
        .sqrt()
}
