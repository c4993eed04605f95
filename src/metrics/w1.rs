//! Exact Wasserstein-1 (earth mover's) distance between two point clouds.
//!
//! The transport problem is solved exactly by a primal network simplex on a sparse, growing
//! set of candidate pairs; a dense reduced-cost scan over all pairs certifies optimality.

use rayon::prelude::*;

/// Candidate partners per point and direction that seed the sparse problem.
const CANDIDATES_PER_POINT: usize = 8;
/// Most violating pairs added per a-point in one dense pricing round: several per row let the
/// simplex fix many rows at once without flooding it with pairs that will never carry flow.
const ADDED_PER_ROW: usize = 16;
/// Problems with more points than this on either side first solve a coarsened problem.
const COARSEN_ABOVE: usize = 256;
/// Maximum number of points merged into one cell of the coarsened problem.
const CELL_SIZE: usize = 8;
/// Points per block in the dense scans: the unit of their bounding-box pruning.
const BLOCK: usize = 64;
/// Length of the simplex pricing candidate list.
const LIST_SIZE: usize = 64;
/// Pivots made from one candidate list before it is refilled by a fresh scan.
const MINOR_PIVOTS: usize = 32;
/// Optimality tolerance on reduced costs, relative to the bounding-box diagonal (the cost
/// scale). It only has to absorb rounding noise in the potentials (observed ≈ 1e-14 of the
/// scale); the returned W1 exceeds the exact optimum by at most this much times the scale.
const REL_TOL: f64 = 1e-13;
/// Marks "no node" in the spanning-tree arrays.
const NONE: u32 = u32::MAX;

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

/// Solves the problem coarsened to cells (cell weight = total weight, position = weighted
/// centroid). Returns all point pairs of cell pairs that exchange mass, which admit a feasible
/// flow close to the optimum, and per point its cell's potential: an approximation of the
/// optimal potentials, which for W1 are 1-Lipschitz and so vary little within a cell.
fn coarse_start(p: &Problem) -> (Vec<(u32, u32)>, Vec<f64>, Vec<f64>) {
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
fn spatially_sorted(cloud: &[f64], dim: usize) -> Vec<f64> {
    let (order, _) = kd_partition(cloud, dim, 1);
    order
        .iter()
        .flat_map(|&i| point(cloud, dim, i as usize))
        .copied()
        .collect()
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

/// A point cloud prepared for brute-force scans: column-major coordinates (so that distance
/// rows vectorise) and bounding boxes of consecutive blocks of [`BLOCK`] points (so that a
/// whole block can be skipped when its box is too far away).
struct Cloud<'a> {
    rows: &'a [f64],
    /// Coordinate k of point j at `k * n + j`.
    cols: Vec<f64>,
    dim: usize,
    n: usize,
    /// Per block, `dim` lower then `dim` upper coordinate bounds.
    boxes: Vec<f64>,
}

impl<'a> Cloud<'a> {
    fn new(rows: &'a [f64], dim: usize) -> Self {
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
    /// bit-identical to the squares that [`distance`] takes the root of.
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
fn smallest_reduced_costs(
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
fn violations(a: &Cloud, b: &Cloud, pi_a: &[f64], pi_b: &[f64], tol: f64) -> Vec<Vec<u32>> {
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

/// Primal network simplex for a transportation problem, with a spanning-tree basis.
///
/// Nodes: a-points `0..n_a` (supplies), b-points `n_a..n_a + n_b` (demands) and a root. Arc
/// `x < n_a + n_b` is the artificial arc between node x and the root; later arcs are candidate
/// pairs a → b. Arcs are uncapacitated, so non-tree arcs carry no flow. The reduced cost of an
/// arc u → v is c + π_u − π_v, zero on tree arcs.
struct NetworkSimplex {
    src: Vec<u32>,
    dst: Vec<u32>,
    cost: Vec<f64>,
    flow: Vec<i64>,
    in_tree: Vec<bool>,
    /// Tree parent of each node (`NONE` for the root).
    parent: Vec<u32>,
    /// Tree arc joining each node to its parent.
    pred: Vec<u32>,
    /// Number of tree arcs from the root.
    depth: Vec<u32>,
    /// Preorder successor (cyclic); a subtree is the run from its root while depth is larger.
    thread: Vec<u32>,
    /// Preorder predecessor, to unlink a subtree's run in O(1).
    prev_thread: Vec<u32>,
    pi: Vec<f64>,
    root: u32,
    tol: f64,
    /// Where the next pricing scan starts.
    next_arc: usize,
    /// Eligible arcs found by the last pricing scan.
    candidates: Vec<u32>,
    /// Scratch buffer for the tree path that a pivot reverses.
    stem: Vec<u32>,
}

impl NetworkSimplex {
    /// Starting basis: every node hangs from the root by its artificial arc carrying its whole
    /// supply or demand (all positive). `artificial_cost` must exceed half of every pair cost
    /// so that, at the optimum of the complete problem, no flow goes through the root.
    fn new(supply: &[i64], demand: &[i64], artificial_cost: f64, tol: f64) -> Self {
        let nodes = supply.len() + demand.len();
        let root = nodes as u32;
        let mut simplex = NetworkSimplex {
            src: Vec::with_capacity(nodes),
            dst: Vec::with_capacity(nodes),
            cost: vec![artificial_cost; nodes],
            flow: Vec::with_capacity(nodes),
            in_tree: vec![true; nodes],
            parent: vec![root; nodes + 1],
            pred: (0..=root).collect(),
            depth: vec![1; nodes + 1],
            thread: (1..=root).chain([0]).collect(),
            prev_thread: [root].into_iter().chain(0..root).collect(),
            pi: vec![0.0; nodes + 1],
            root,
            tol,
            next_arc: 0,
            candidates: Vec::new(),
            stem: Vec::new(),
        };
        for (x, &s) in supply.iter().enumerate() {
            simplex.src.push(x as u32);
            simplex.dst.push(root);
            simplex.flow.push(s);
            simplex.pi[x] = -artificial_cost;
        }
        for (y, &d) in demand.iter().enumerate() {
            let x = supply.len() + y;
            simplex.src.push(root);
            simplex.dst.push(x as u32);
            simplex.flow.push(d);
            simplex.pi[x] = artificial_cost;
        }
        simplex.parent[nodes] = NONE;
        simplex.pred[nodes] = NONE;
        simplex.depth[nodes] = 0;
        simplex
    }

    fn add_arc(&mut self, u: usize, v: usize, cost: f64) {
        self.src.push(u as u32);
        self.dst.push(v as u32);
        self.cost.push(cost);
        self.flow.push(0);
        self.in_tree.push(false);
    }

    fn reduced_cost(&self, e: usize) -> f64 {
        self.cost[e] + self.pi[self.src[e] as usize] - self.pi[self.dst[e] as usize]
    }

    /// Recomputes every potential from the tree (parents before children in thread order),
    /// discarding rounding drift accumulated by incremental updates.
    fn refresh_potentials(&mut self) {
        let mut x = self.thread[self.root as usize];
        while x != self.root {
            let (xi, e) = (x as usize, self.pred[x as usize] as usize);
            let parent_pi = self.pi[self.parent[xi] as usize];
            // Tree arcs have zero reduced cost: c + π_src − π_dst = 0.
            self.pi[xi] = if self.src[e] == x {
                parent_pi - self.cost[e]
            } else {
                parent_pi + self.cost[e]
            };
            x = self.thread[xi];
        }
    }

    /// Pivots until no candidate arc has reduced cost below −tol. Pricing keeps a candidate
    /// list: one cyclic scan collects up to [`LIST_SIZE`] eligible arcs, then the most negative
    /// listed arc enters, again and again (pivots change few reduced costs, so the list stays
    /// useful), until the list runs dry or [`MINOR_PIVOTS`] pivots were made.
    fn optimize(&mut self) {
        while self.collect_candidates() {
            for _ in 0..MINOR_PIVOTS {
                let Some(e) = self.best_candidate() else {
                    break;
                };
                self.pivot(e);
            }
        }
    }

    /// Refills the candidate list, scanning cyclically from where the last scan stopped;
    /// false after a full pass found no arc with reduced cost below −tol.
    fn collect_candidates(&mut self) -> bool {
        self.candidates.clear();
        let m = self.src.len();
        let mut e = self.next_arc;
        for _ in 0..m {
            if !self.in_tree[e] && self.reduced_cost(e) < -self.tol {
                self.candidates.push(e as u32);
            }
            e = if e + 1 == m { 0 } else { e + 1 };
            if self.candidates.len() == LIST_SIZE {
                break;
            }
        }
        self.next_arc = e;
        !self.candidates.is_empty()
    }

    /// The listed arc with the most negative reduced cost; drops arcs no longer eligible.
    fn best_candidate(&mut self) -> Option<usize> {
        let mut best = None;
        let mut best_rc = -self.tol;
        let mut k = 0;
        while k < self.candidates.len() {
            let e = self.candidates[k] as usize;
            let rc = self.reduced_cost(e);
            if self.in_tree[e] || rc >= -self.tol {
                self.candidates.swap_remove(k);
                continue;
            }
            if rc < best_rc {
                best_rc = rc;
                best = Some(e);
            }
            k += 1;
        }
        best
    }

    /// Deepest common ancestor of `u` and `v`.
    fn join_node(&self, mut u: u32, mut v: u32) -> u32 {
        while u != v {
            let (du, dv) = (self.depth[u as usize], self.depth[v as usize]);
            if du >= dv {
                u = self.parent[u as usize];
            }
            if dv >= du {
                v = self.parent[v as usize];
            }
        }
        u
    }

    /// Brings arc `e_in` (u → v) into the basis: pushes flow around the cycle it closes and
    /// removes the blocking arc chosen so that the tree stays strongly feasible (every
    /// zero-flow tree arc can still pass flow towards the root), which rules out cycling.
    fn pivot(&mut self, e_in: usize) {
        let (u, v) = (self.src[e_in], self.dst[e_in]);
        let rc = self.reduced_cost(e_in);
        let join = self.join_node(u, v);

        // The cycle runs join → … → u → v → … → join. Blocking arcs are those traversed
        // against their direction. Ties go to the last one met along the cycle from the join:
        // on the u-path the one nearest u (strict <), on the v-path the one nearest the join
        // (<=, and the v-path beats the u-path).
        let mut delta = i64::MAX;
        let mut leaving_node = NONE;
        let mut leaving_on_u_path = true;
        let mut w = u;
        while w != join {
            let e = self.pred[w as usize] as usize;
            if self.src[e] == w && self.flow[e] < delta {
                delta = self.flow[e];
                leaving_node = w;
            }
            w = self.parent[w as usize];
        }
        let mut w = v;
        while w != join {
            let e = self.pred[w as usize] as usize;
            if self.dst[e] == w && self.flow[e] <= delta {
                delta = self.flow[e];
                leaving_node = w;
                leaving_on_u_path = false;
            }
            w = self.parent[w as usize];
        }
        debug_assert!(
            leaving_node != NONE,
            "every cycle has a blocking arc: b-points have no outgoing arcs"
        );

        if delta > 0 {
            self.flow[e_in] += delta;
            for (start, forward_if_src) in [(u, false), (v, true)] {
                let mut w = start;
                while w != join {
                    let e = self.pred[w as usize] as usize;
                    if (self.src[e] == w) == forward_if_src {
                        self.flow[e] += delta;
                    } else {
                        self.flow[e] -= delta;
                    }
                    w = self.parent[w as usize];
                }
            }
        }

        // The subtree below the leaving arc is re-hung from the entering arc; its potentials
        // shift so that the entering arc gets zero reduced cost.
        if leaving_on_u_path {
            self.regraft(u, leaving_node, v, e_in, -rc);
        } else {
            self.regraft(v, leaving_node, u, e_in, rc);
        }
    }

    /// Cuts the subtree rooted at `top` off its parent, re-roots it at its node `new_root`
    /// (reversing the stem path new_root … top), attaches it below `new_parent` by `e_in`, and
    /// shifts its potentials by `shift`. One walk over the subtree does all the updates.
    fn regraft(&mut self, new_root: u32, top: u32, new_parent: u32, e_in: usize, shift: f64) {
        self.stem.clear();
        let mut w = new_root;
        loop {
            self.stem.push(w);
            if w == top {
                break;
            }
            w = self.parent[w as usize];
        }

        // New preorder of the subtree: for each stem node s_i in turn, s_i followed by its old
        // subtree minus that of s_{i-1} (placed just before). In the old thread that is s_i,
        // a run up to s_{i-1}, then a run from the first node after s_{i-1}'s subtree; the
        // runs are spliced together while walking them.
        let before_subtree = self.prev_thread[top as usize];
        let parent_depth = self.depth[new_parent as usize] as i64;
        let mut tail = NONE;
        let mut after_previous = NONE;
        for i in 0..self.stem.len() {
            let s = self.stem[i];
            let old_depth = self.depth[s as usize];
            let depth_change = parent_depth + 1 + i as i64 - old_depth as i64;
            if tail != NONE {
                self.link(tail, s);
            }
            self.move_node(s, depth_change, shift);
            let mut last = s;
            let mut y = self.thread[s as usize];
            let mut jumped = false;
            loop {
                if i > 0 && y == self.stem[i - 1] {
                    y = after_previous;
                    jumped = true;
                    continue;
                }
                if self.depth[y as usize] <= old_depth {
                    break;
                }
                if jumped {
                    self.link(last, y);
                    jumped = false;
                }
                self.move_node(y, depth_change, shift);
                last = y;
                y = self.thread[y as usize];
            }
            after_previous = y;
            tail = last;
        }
        let after_subtree = after_previous;

        let e_out = self.pred[top as usize] as usize;
        for i in (1..self.stem.len()).rev() {
            let (s, child) = (self.stem[i] as usize, self.stem[i - 1]);
            self.pred[s] = self.pred[child as usize];
            self.parent[s] = child;
        }
        self.parent[new_root as usize] = new_parent;
        self.pred[new_root as usize] = e_in as u32;
        self.in_tree[e_out] = false;
        self.in_tree[e_in] = true;

        // Unlink the subtree's old run, then splice the new one right after the new parent.
        self.link(before_subtree, after_subtree);
        let after_parent = self.thread[new_parent as usize];
        self.link(new_parent, new_root);
        self.link(tail, after_parent);
    }

    fn move_node(&mut self, x: u32, depth_change: i64, shift: f64) {
        let x = x as usize;
        self.depth[x] = (self.depth[x] as i64 + depth_change) as u32;
        self.pi[x] += shift;
    }

    fn link(&mut self, x: u32, y: u32) {
        self.thread[x as usize] = y;
        self.prev_thread[y as usize] = x;
    }

    /// Candidate pairs (a-index, b-index) that carry flow.
    fn support(&self, n_a: usize) -> Vec<(u32, u32)> {
        let real = self.root as usize..self.src.len();
        real.filter(|&e| self.flow[e] > 0)
            .map(|e| (self.src[e], self.dst[e] - n_a as u32))
            .collect()
    }

    /// Σ flow × cost over all arcs, with compensated summation (Neumaier).
    fn transport_cost(&self) -> f64 {
        debug_assert!(
            self.flow[..self.root as usize].iter().all(|&f| f == 0),
            "artificial arcs must be empty at the optimum"
        );
        let (mut sum, mut compensation) = (0.0f64, 0.0f64);
        for (&f, &c) in self.flow.iter().zip(&self.cost) {
            if f != 0 {
                let term = f as f64 * c;
                let t = sum + term;
                compensation += if sum.abs() >= term.abs() {
                    (sum - t) + term
                } else {
                    (term - t) + sum
                };
                sum = t;
            }
        }
        sum + compensation
    }
}

#[cfg(test)]
mod tests {
    use super::wasserstein1;

    /// splitmix64: a tiny deterministic generator, enough for test inputs.
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Standard normal (Box–Muller).
        fn normal(&mut self) -> f64 {
            let u = 1.0 - self.uniform();
            let v = self.uniform();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next_u64() % n as u64) as usize
        }

        fn normal_cloud(&mut self, n: usize, dim: usize, shift: f64) -> Vec<f64> {
            (0..n * dim).map(|_| self.normal() + shift).collect()
        }

        fn uniform_cloud(&mut self, n: usize, dim: usize) -> Vec<f64> {
            (0..n * dim).map(|_| self.uniform()).collect()
        }

        fn permuted(&mut self, cloud: &[f64], dim: usize) -> Vec<f64> {
            let mut rows: Vec<&[f64]> = cloud.chunks(dim).collect();
            for i in (1..rows.len()).rev() {
                rows.swap(i, self.below(i + 1));
            }
            rows.concat()
        }
    }

    fn dist(p: &[f64], q: &[f64]) -> f64 {
        p.iter()
            .zip(q)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt()
    }

    fn assert_close(got: f64, want: f64, rel: f64) {
        let err = (got - want).abs();
        assert!(
            err <= rel * want.abs().max(1e-300) || err <= 1e-14,
            "got {got:e}, want {want:e} (error {err:e})"
        );
    }

    /// Reference W1 in 1-D: ∫₀¹ |F_a⁻¹(t) − F_b⁻¹(t)| dt over the quantile functions, which
    /// are step functions with jumps at multiples of 1/n_a and 1/n_b (in integer units of
    /// 1/(n_a·n_b), so the breakpoints are exact).
    fn w1_1d_quantiles(a: &[f64], b: &[f64]) -> f64 {
        let mut a = a.to_vec();
        let mut b = b.to_vec();
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (n_a, n_b) = (a.len(), b.len());
        let (mut i, mut j, mut t, mut total) = (0, 0, 0, 0.0);
        while i < n_a && j < n_b {
            let next = ((i + 1) * n_b).min((j + 1) * n_a);
            total += (next - t) as f64 * (a[i] - b[j]).abs();
            t = next;
            if t == (i + 1) * n_b {
                i += 1;
            }
            if t == (j + 1) * n_a {
                j += 1;
            }
        }
        total / (n_a * n_b) as f64
    }

    /// Reference W1 by brute force: each a-point replicated n_b/g times and each b-point n_a/g
    /// times (an assignment problem with the same optimum), minimised over all permutations.
    fn w1_brute_force(a: &[f64], b: &[f64], dim: usize) -> f64 {
        let (n_a, n_b) = (a.len() / dim, b.len() / dim);
        let g = (1..=n_a.min(n_b))
            .rev()
            .find(|g| n_a % g == 0 && n_b % g == 0)
            .unwrap();
        let rows: Vec<&[f64]> = a.chunks(dim).flat_map(|p| vec![p; n_b / g]).collect();
        let cols: Vec<&[f64]> = b.chunks(dim).flat_map(|p| vec![p; n_a / g]).collect();
        let n = rows.len();
        assert!(n <= 8, "brute force limited to 8 points per side");
        let cost: Vec<Vec<f64>> = rows
            .iter()
            .map(|p| cols.iter().map(|q| dist(p, q)).collect())
            .collect();
        // Heap's algorithm over all permutations of the columns.
        let mut perm: Vec<usize> = (0..n).collect();
        let value = |perm: &[usize]| (0..n).map(|i| cost[i][perm[i]]).sum::<f64>();
        let mut best = value(&perm);
        let mut counters = vec![0; n];
        let mut i = 1;
        while i < n {
            if counters[i] < i {
                let k = if i % 2 == 0 { 0 } else { counters[i] };
                perm.swap(k, i);
                best = best.min(value(&perm));
                counters[i] += 1;
                i = 1;
            } else {
                counters[i] = 0;
                i += 1;
            }
        }
        best / n as f64
    }

    #[test]
    fn matches_brute_force_on_small_clouds() {
        let sizes = [
            (1, 1),
            (1, 5),
            (4, 1),
            (2, 2),
            (3, 3),
            (5, 5),
            (6, 6),
            (7, 7),
            (2, 4),
            (4, 2),
            (2, 6),
            (4, 8),
            (8, 4),
            (2, 3),
            (3, 2),
            (3, 6),
            (6, 3),
        ];
        let mut rng = Rng(1);
        for dim in [2, 3] {
            for &(n_a, n_b) in &sizes {
                for _ in 0..12 {
                    let a = rng.normal_cloud(n_a, dim, 0.0);
                    let b = rng.normal_cloud(n_b, dim, 0.5);
                    let want = w1_brute_force(&a, &b, dim);
                    assert_close(wasserstein1(&a, &b, dim), want, 1e-12);
                }
            }
        }
    }

    #[test]
    fn matches_brute_force_with_duplicate_points() {
        let mut rng = Rng(2);
        for _ in 0..30 {
            // Points on a 3×3 integer grid: many exact duplicates and equal costs.
            let mut grid_cloud =
                |n| -> Vec<f64> { (0..2 * n).map(|_| rng.below(3) as f64).collect() };
            let (a, b) = (grid_cloud(6), grid_cloud(6));
            assert_close(wasserstein1(&a, &b, 2), w1_brute_force(&a, &b, 2), 1e-12);
            let (a, b) = (grid_cloud(4), grid_cloud(2));
            assert_close(wasserstein1(&a, &b, 2), w1_brute_force(&a, &b, 2), 1e-12);
        }
    }

    #[test]
    fn matches_1d_quantile_formula() {
        let mut rng = Rng(3);
        for &(n_a, n_b) in &[
            (1, 1),
            (5, 5),
            (64, 64),
            (10, 7),
            (30, 45),
            (300, 300),
            (700, 1000),
        ] {
            let a = rng.normal_cloud(n_a, 1, 0.0);
            let b: Vec<f64> = rng
                .normal_cloud(n_b, 1, 0.3)
                .iter()
                .map(|x| 2.0 * x)
                .collect();
            assert_close(wasserstein1(&a, &b, 1), w1_1d_quantiles(&a, &b), 1e-12);
        }
        // Equal sizes: the mean gap between sorted samples.
        let a = rng.uniform_cloud(500, 1);
        let b = rng.uniform_cloud(500, 1);
        let (mut sa, mut sb) = (a.clone(), b.clone());
        sa.sort_by(f64::total_cmp);
        sb.sort_by(f64::total_cmp);
        let want = sa.iter().zip(&sb).map(|(x, y)| (x - y).abs()).sum::<f64>() / 500.0;
        assert_close(wasserstein1(&a, &b, 1), want, 1e-12);
    }

    #[test]
    fn single_point_on_one_side_is_mean_distance() {
        let mut rng = Rng(4);
        for &(n, dim) in &[(1, 2), (9, 2), (50, 3), (400, 2), (20, 5)] {
            let cloud = rng.normal_cloud(n, dim, 0.0);
            let single = rng.normal_cloud(1, dim, 1.0);
            let want = cloud.chunks(dim).map(|p| dist(p, &single)).sum::<f64>() / n as f64;
            assert_close(wasserstein1(&cloud, &single, dim), want, 1e-12);
            assert_close(wasserstein1(&single, &cloud, dim), want, 1e-12);
        }
    }

    #[test]
    fn identical_points_give_zero() {
        let a = [1.5, -2.0].repeat(7);
        let b = [1.5, -2.0].repeat(3);
        assert_eq!(wasserstein1(&a, &b, 2), 0.0);
        assert_eq!(wasserstein1(&[4.0], &[4.0], 1), 0.0);
    }

    #[test]
    fn permuted_copy_gives_zero() {
        let mut rng = Rng(5);
        for &(n, dim) in &[(10, 2), (100, 3), (600, 2), (300, 5)] {
            let a = rng.normal_cloud(n, dim, 0.0);
            let b = rng.permuted(&a, dim);
            assert!(wasserstein1(&a, &b, dim) <= 1e-12);
        }
    }

    #[test]
    fn translation_moves_by_its_length() {
        // W1(μ, μ shifted by v) = |v|: the shift is a plan of that cost, and the 1-Lipschitz
        // potential x ↦ x·v/|v| proves that nothing cheaper exists.
        let mut rng = Rng(6);
        for &(n, dim) in &[(40, 2), (600, 2), (300, 3)] {
            let a = rng.uniform_cloud(n, dim);
            let v: Vec<f64> = (0..dim).map(|k| 0.3 + 0.1 * k as f64).collect();
            let shifted: Vec<f64> = a.iter().enumerate().map(|(i, x)| x + v[i % dim]).collect();
            let b = rng.permuted(&shifted, dim);
            let length = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert_close(wasserstein1(&a, &b, dim), length, 1e-12);
        }
    }

    #[test]
    fn is_symmetric() {
        let mut rng = Rng(7);
        for &(n_a, n_b, dim) in &[
            (30, 30, 2),
            (25, 40, 2),
            (300, 500, 2),
            (64, 48, 5),
            (40, 40, 1),
        ] {
            let a = rng.normal_cloud(n_a, dim, 0.0);
            let b = rng.uniform_cloud(n_b, dim);
            assert_close(wasserstein1(&a, &b, dim), wasserstein1(&b, &a, dim), 1e-12);
        }
    }

    #[test]
    fn satisfies_triangle_inequality() {
        let mut rng = Rng(8);
        for &(n_a, n_b, n_c, dim) in &[
            (10, 10, 10, 2),
            (12, 20, 15, 2),
            (40, 25, 60, 3),
            (300, 280, 350, 2),
            (50, 50, 30, 5),
        ] {
            let a = rng.normal_cloud(n_a, dim, 0.0);
            let b = rng.uniform_cloud(n_b, dim);
            let c = rng.normal_cloud(n_c, dim, 1.0);
            let (ab, bc, ac) = (
                wasserstein1(&a, &b, dim),
                wasserstein1(&b, &c, dim),
                wasserstein1(&a, &c, dim),
            );
            assert!(ac <= (ab + bc) * (1.0 + 1e-12), "{ac} > {ab} + {bc}");
        }
    }

    #[test]
    fn is_deterministic_and_works_in_high_dimension() {
        let mut rng = Rng(9);
        let a = rng.normal_cloud(300, 64, 0.0);
        let b = rng.normal_cloud(200, 64, 0.1);
        let first = wasserstein1(&a, &b, 64);
        assert_eq!(first.to_bits(), wasserstein1(&a, &b, 64).to_bits());
        assert!(first > 0.0);
    }
}
