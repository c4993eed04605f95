//! The primal network simplex that solves the W1 transportation problem on a sparse set of
//! candidate pairs: spanning-tree basis (parent/depth/thread arrays), candidate-list pricing
//! and the strongly feasible leaving-arc rule.

/// Length of the simplex pricing candidate list.
const LIST_SIZE: usize = 64;
/// Pivots made from one candidate list before it is refilled by a fresh scan.
const MINOR_PIVOTS: usize = 32;
/// Marks "no node" in the spanning-tree arrays.
pub(super) const NONE: u32 = u32::MAX;

/// Primal network simplex for a transportation problem, with a spanning-tree basis.
///
/// Nodes: a-points `0..n_a` (supplies), b-points `n_a..n_a + n_b` (demands) and a root. Arc
/// `x < n_a + n_b` is the artificial arc between node x and the root; later arcs are candidate
/// pairs a → b. Arcs are uncapacitated, so non-tree arcs carry no flow. The reduced cost of an
/// arc u → v is c + π_u − π_v, zero on tree arcs.
pub(super) struct NetworkSimplex {
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
    pub(super) pi: Vec<f64>,
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
    pub(super) fn new(supply: &[i64], demand: &[i64], artificial_cost: f64, tol: f64) -> Self {
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

    pub(super) fn add_arc(&mut self, u: usize, v: usize, cost: f64) {
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
    pub(super) fn refresh_potentials(&mut self) {
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
    pub(super) fn optimize(&mut self) {
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
    pub(super) fn support(&self, n_a: usize) -> Vec<(u32, u32)> {
        let real = self.root as usize..self.src.len();
        real.filter(|&e| self.flow[e] > 0)
            .map(|e| (self.src[e], self.dst[e] - n_a as u32))
            .collect()
    }

    /// Σ flow × cost over all arcs, with compensated summation (Neumaier).
    pub(super) fn transport_cost(&self) -> f64 {
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
