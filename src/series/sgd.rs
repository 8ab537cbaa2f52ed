//! Minibatch SGD: the counter terms of an epoch, on coloured trees (DESIGN.md §2.5).
//!
//! # The epoch as a scheme
//!
//! An epoch visits m batches, one GD step θ ← θ − η g_a(θ) each (g_a = ∇f_a, f the mean of
//! the f_a). On the trajectory of the equation of motion the epoch iterates are
//! θ_i = Φ_{i m η}(θ_0), a coloured B-series θ + Σ_τ η^{|τ|} P_τ(i) G(τ) whose coefficients
//! are polynomials in the epoch index i ([`ColouredForest`]: a node coloured a differentiates
//! g_a). The step on batch a sees the stage value Y = θ_i − η Σ (the batches before a) g_b(…),
//! and the coefficient of G(τ) in g_a(Y), for τ with root coloured a, is
//! Π_k y(τ_k) / Π μ! as for every other method ([`super::Scheme`]). A child's stage
//! coefficient is y(τ_k) = P_{τ_k} − [τ_k's root batch comes before a] F(τ_k), with F(τ_k)
//! the child's own force. So, tree by tree, the epoch is the recurrence
//!
//! ```text
//! P_τ(i+1) − P_τ(i) = −F(τ),   F(τ) = Π_k (P_{τ_k} − [col τ_k before col τ] F(τ_k)) / Π μ!
//! ```
//!
//! and the coefficient of G(τ) in the field is P_τ'(0)/m (an epoch is mη of time).
//!
//! # Why no m! and no m
//!
//! A tree only feels the steps of its own colours: zeroing every other batch changes neither
//! its force nor its coefficient. So F(τ) depends on the epoch's order only through the
//! relative order of τ's colours, and P_τ'(0) only on the tree with its colours renumbered
//! 0, 1, … in that order, its *pattern*. For a cyclic epoch that is one pattern per tree;
//! for a shuffled one (the epoch map averaged over all m! orders) the force is averaged over
//! the p! orders of the tree's p colours, and the coefficient is the same for every
//! renumbering. Neither depends on m: ξ_k = (1/m) Σ_patterns C Σ_colourings G, the colourings
//! running over the increasing (cyclic) or the distinct (shuffled) choices of p batches out
//! of m. The cost is set by the order (patterns of K+1 nodes, at most (K+1)! orders each),
//! never by m!.

use crate::hash::HashMap;
use std::borrow::Cow;

use num_rational::BigRational;
use num_traits::{One, Zero};

use super::coloured::{ColouredForest, ColouredId};
use super::counter::SeriesError;
use super::method::{add, check_order, scaled, taylor_coefficient, zero, IPoly, Operator};
use super::BatchOrder;

/// Largest order of SGD's counter terms: ξ_4 has 3 004 cyclic and 320 shuffled patterns of
/// five nodes (0.07 s and 0.27 s), and ξ_5 would need the 720 orders of each of thousands of
/// six-node patterns.
pub const SGD_MAX_ORDER: usize = 4;

/// ξ_1..ξ_K of minibatch SGD for every number of batches m: ξ_k = (1/m) Σ C · (the sum of
/// the pattern's elementary differential over its colourings by m batches).
///
/// ```
/// use eomderive::series::{sgd_series, BatchOrder};
/// let s = sgd_series(BatchOrder::Shuffled, 1).unwrap();
/// // Shuffled: ξ_1 = (1/m) · ½ Σ_a H_a g_a, and no term with two batches.
/// let [(t, c)] = &s.xi[0][..] else { panic!() };
/// assert_eq!((s.forest.colour_count(*t), c.to_string()), (1, "1/2".to_string()));
/// ```
#[derive(Debug, Clone)]
pub struct SgdSeries {
    /// Cyclic or shuffled.
    pub order: BatchOrder,
    /// Arena of the patterns (and, after [`SgdSeries::for_batches`], of coloured trees).
    pub forest: ColouredForest,
    /// `xi[k-1]`: the patterns of ξ_k (k+1 nodes, colours 0..p) with C, zeros dropped, in
    /// canonical order. For a shuffled epoch one pattern stands for all its renumberings.
    pub xi: Vec<Vec<(ColouredId, BigRational)>>,
    /// m when it is given ([`SgdSeries::with_batches`]); `None`: the form for every m.
    pub batches: Option<usize>,
}

/// ξ_1..ξ_order of minibatch SGD as patterns (module docs).
///
/// ```
/// use eomderive::series::{sgd_series, BatchOrder};
/// let s = sgd_series(BatchOrder::Cyclic, 1).unwrap();
/// // Cyclic: ½ Σ_a H_a g_a + ½ Σ_{a<b} (H_a g_b − H_b g_a), over m.
/// let c: Vec<String> = s.xi[0].iter().map(|(_, c)| c.to_string()).collect();
/// assert_eq!(c, ["1/2", "1/2", "-1/2"]);
/// ```
pub fn sgd_series(order: BatchOrder, k: usize) -> Result<SgdSeries, SeriesError> {
    check_order(k, SGD_MAX_ORDER, "SGD_MAX_ORDER")?;
    let mut forest = ColouredForest::new();
    let levels: Vec<Vec<ColouredId>> = (1..=k + 1).map(|n| forest.compact_trees(n)).collect();
    let identity = |x: &BigRational| x.clone();
    let mut epoch = Operator {
        moments: Vec::new(),
        keep: vec![BigRational::one()],
        divide: &identity,
    };
    // Per compact tree: P_τ, and its force in the identity order.
    let mut p: HashMap<ColouredId, IPoly<BigRational>> = HashMap::default();
    let mut force: HashMap<ColouredId, IPoly<BigRational>> = HashMap::default();
    let mut xi = Vec::with_capacity(k);
    for (n, level) in levels.iter().enumerate() {
        for &t in level {
            let f = tree_force(&mut forest, t, &p, &force);
            force.insert(t, f);
        }
        let mut terms = Vec::new();
        for &t in level {
            let rhs = match order {
                BatchOrder::Cyclic => force[&t].clone(),
                BatchOrder::Shuffled => {
                    let orders = renumberings(&mut forest, t);
                    let mut sum: IPoly<BigRational> = Vec::new();
                    for r in &orders {
                        sum = add(&sum, &force[r]);
                    }
                    let share = BigRational::new(1.into(), (orders.len() as i64).into());
                    scaled(&sum, &share)
                }
            };
            let minus: IPoly<BigRational> = rhs.iter().map(|c| -c).collect();
            let poly = epoch.solve(&minus);
            // ξ = −F: the coefficient C of ξ is −P'(0).
            let c = -poly.get(1).cloned().unwrap_or_else(zero::<BigRational>);
            p.insert(t, poly);
            if n == 0 {
                continue;
            }
            let representative = order == BatchOrder::Cyclic || canonical(&mut forest, t) == t;
            if representative && !c.is_zero() {
                terms.push((t, c));
            }
        }
        if n > 0 {
            xi.push(terms);
        }
    }
    Ok(SgdSeries {
        order,
        forest,
        xi,
        batches: None,
    })
}

/// F(τ) in the identity order: Π_k (P_{τ_k} − [col τ_k < col τ] F(τ_k)) / Π μ!.
fn tree_force(
    forest: &mut ColouredForest,
    t: ColouredId,
    p: &HashMap<ColouredId, IPoly<BigRational>>,
    force: &HashMap<ColouredId, IPoly<BigRational>>,
) -> IPoly<BigRational> {
    let children = forest.children(t).to_vec();
    let root = forest.colour(t);
    taylor_coefficient(&children, |c| {
        let pattern = forest.compact(c);
        let mut y = p[&pattern].clone();
        if forest.colour(c) < root {
            let minus: IPoly<BigRational> = force[&pattern].iter().map(|x| -x).collect();
            y = add(&y, &minus);
        }
        Cow::Owned(y)
    })
}

/// The tree under every renumbering of its colours 0..p (p! trees, repeats included).
fn renumberings(forest: &mut ColouredForest, t: ColouredId) -> Vec<ColouredId> {
    let p = forest.colour_count(t);
    permutations(p)
        .into_iter()
        .map(|perm| forest.relabel(t, &|c| perm[c as usize] as u16))
        .collect()
}

/// The renumbering with the smallest code: one representative per orbit.
fn canonical(forest: &mut ColouredForest, t: ColouredId) -> ColouredId {
    let all = renumberings(forest, t);
    *all.iter()
        .min_by(|&&a, &&b| forest.code(a).cmp(forest.code(b)))
        .expect("at least the identity")
}

/// All permutations of 0..p, in lexicographic order (also the orders the numeric layer
/// averages a shuffled epoch over).
///
/// ```
/// assert_eq!(eomderive::series::permutations(3).len(), 6);
/// assert_eq!(eomderive::series::permutations(2), [vec![0, 1], vec![1, 0]]);
/// ```
pub fn permutations(p: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut q: Vec<usize> = (0..p).collect();
    loop {
        out.push(q.clone());
        let Some(i) = (1..p).rev().find(|&i| q[i - 1] < q[i]) else {
            return out;
        };
        let j = (i..p)
            .rev()
            .find(|&j| q[j] > q[i - 1])
            .expect("q[i] qualifies");
        q.swap(i - 1, j);
        q[i..].reverse();
    }
}

/// How many increasing (cyclic, C(m, p)) or distinct (shuffled, m!/(m − p)!) choices of p
/// batches out of m there are, saturating.
fn choices(order: BatchOrder, p: usize, m: usize) -> u128 {
    let m = m as u128;
    let mut n: u128 = 1;
    for i in 0..p as u128 {
        if i >= m {
            return 0;
        }
        n = n.saturating_mul(m - i);
        if order == BatchOrder::Cyclic {
            n /= i + 1;
        }
    }
    n
}

/// Increasing (cyclic) or distinct (shuffled) choices of p batches out of m, in
/// lexicographic order.
///
/// # Panics
/// For m past [`SgdSeries::MAX_BATCHES`] (batches are 16-bit colours).
fn colourings(order: BatchOrder, p: usize, m: usize) -> Vec<Vec<u16>> {
    let mut out = Vec::new();
    let mut cur = Vec::with_capacity(p);
    let m = u16::try_from(m).expect("at most SgdSeries::MAX_BATCHES batches");
    fn go(order: BatchOrder, p: usize, m: u16, cur: &mut Vec<u16>, out: &mut Vec<Vec<u16>>) {
        if cur.len() == p {
            out.push(cur.clone());
            return;
        }
        let from = match (order, cur.last()) {
            (BatchOrder::Cyclic, Some(&l)) => l + 1,
            _ => 0,
        };
        for a in from..m {
            if order == BatchOrder::Shuffled && cur.contains(&a) {
                continue;
            }
            cur.push(a);
            go(order, p, m, cur, out);
            cur.pop();
        }
    }
    go(order, p, m, &mut cur, &mut out);
    out
}

impl SgdSeries {
    /// How many distinct coloured trees a pattern stands for with m batches: C(m, p) for a
    /// cyclic epoch, m!/(m − p)! over the pattern's colour symmetries for a shuffled one.
    pub fn colourings(&mut self, pattern: ColouredId, m: usize) -> u128 {
        let p = self.forest.colour_count(pattern);
        choices(self.order, p, m) / self.symmetry(pattern) as u128
    }

    /// How many renumberings of its colours map a pattern to itself (1 for a cyclic epoch,
    /// whose patterns keep their order): a sum over distinct batches counts each tree this
    /// many times.
    ///
    /// ```
    /// use eomderive::series::{sgd_series, BatchOrder};
    /// let mut s = sgd_series(BatchOrder::Shuffled, 2).unwrap();
    /// // ∇³f_a(g_b, g_c) is the same tree as ∇³f_a(g_c, g_b).
    /// let (b, c) = (s.forest.leaf(1), s.forest.leaf(2));
    /// let t = s.forest.node(0, vec![b, c]);
    /// assert_eq!(s.symmetry(t), 2);
    /// ```
    pub fn symmetry(&mut self, pattern: ColouredId) -> usize {
        if self.order == BatchOrder::Cyclic {
            return 1;
        }
        symmetry(&mut self.forest, pattern)
    }

    /// The same series for m batches: the patterns with more colours than m drop out.
    ///
    /// ```
    /// use eomderive::series::{sgd_series, BatchOrder};
    /// let s = sgd_series(BatchOrder::Cyclic, 1).unwrap().with_batches(1);
    /// assert_eq!((s.xi[0].len(), s.batches), (1, Some(1))); // ½ H g: gradient descent
    /// ```
    pub fn with_batches(mut self, m: usize) -> SgdSeries {
        for terms in &mut self.xi {
            terms.retain(|(t, _)| self.forest.colour_count(*t) <= m);
        }
        self.batches = Some(m);
        self
    }

    /// How many coloured trees [`SgdSeries::for_loss`] builds for m batches (an upper bound:
    /// equal ones are merged), saturating, computed without building them: what a derivation
    /// checks against its budget before the work.
    ///
    /// ```
    /// use eomderive::series::{sgd_series, BatchOrder};
    /// let s = sgd_series(BatchOrder::Cyclic, 1).unwrap();
    /// assert_eq!(s.term_count(4), 4 + 2 * 6); // Σ_a H_a g_a and two patterns over a < b
    /// assert_eq!(s.term_count(1_000_000), 1_000_000 + 2 * 499_999_500_000);
    /// ```
    pub fn term_count(&self, m: usize) -> u128 {
        let per_pattern = |t: ColouredId| -> u128 {
            let p = self.forest.colour_count(t);
            if self.order == BatchOrder::Cyclic {
                return choices(self.order, p, m);
            }
            if p > m {
                return 0;
            }
            match m <= DIRECT_UP_TO {
                true => choices(self.order, p, m),
                false => rewritten_count(&self.forest, t, m),
            }
        };
        self.xi
            .iter()
            .flatten()
            .map(|(t, _)| per_pattern(*t))
            .fold(0u128, u128::saturating_add)
    }

    /// Whether ξ_1 is Smith et al.'s (1/(2m)) Σ_a H_a g_a and nothing else: one pattern, a
    /// single batch's H g with C = ½ (true for a shuffled epoch; a cyclic one adds the
    /// antisymmetric Σ_{a<b} (H_a g_b − H_b g_a)). Its potential is then (1/(4m)) Σ_a ‖g_a‖².
    ///
    /// ```
    /// use eomderive::series::{sgd_series, BatchOrder};
    /// assert!(sgd_series(BatchOrder::Shuffled, 1).unwrap().first_order_is_smith());
    /// assert!(!sgd_series(BatchOrder::Cyclic, 1).unwrap().first_order_is_smith());
    /// ```
    pub fn first_order_is_smith(&self) -> bool {
        match self.xi.first().map(Vec::as_slice) {
            Some([(t, c)]) => {
                let children = self.forest.children(*t);
                self.forest.colour_count(*t) == 1
                    && children.len() == 1
                    && self.forest.children(children[0]).is_empty()
                    && *c == BigRational::new(1.into(), 2.into())
            }
            _ => false,
        }
    }

    /// Most batches a loss-specific derivation takes (batches are colours, 16-bit).
    pub const MAX_BATCHES: usize = u16::MAX as usize;

    /// The terms for m batches: every coloured tree with batches 0..m as colours and its
    /// coefficient C/m in ξ_k (patterns with more colours than m drop out), in canonical
    /// order. m = 1 gives gradient descent's table.
    ///
    /// ```
    /// use eomderive::series::{sgd_series, BatchOrder};
    /// let s = sgd_series(BatchOrder::Cyclic, 1).unwrap();
    /// let (forest, xi) = s.for_batches(2);
    /// // ¼(H_0 g_0 + H_1 g_1) + ¼ H_0 g_1 − ¼ H_1 g_0
    /// let c: Vec<String> = xi[0].iter().map(|(_, c)| c.to_string()).collect();
    /// assert_eq!(c, ["1/4", "1/4", "-1/4", "1/4"]);
    /// # let _ = forest;
    /// ```
    pub fn for_batches(&self, m: usize) -> (ColouredForest, Vec<Vec<(ColouredId, BigRational)>>) {
        let share = BigRational::new(1.into(), (m as i64).into());
        self.expand(|forest, t, c, out| {
            let p = forest.colour_count(t);
            for colouring in colourings(self.order, p, m) {
                let r = forest.relabel(t, &|x| colouring[x as usize]);
                // The trees of a symmetric pattern repeat: each is one term.
                out.insert(r, c * &share);
            }
        })
    }

    /// The terms a loss-specific derivation instantiates for m batches, colours 0..m being the
    /// batches' gradients g_a and colour m the full gradient g = (1/m) Σ_a g_a. A cyclic
    /// epoch's are [`SgdSeries::for_batches`]'s. A shuffled epoch's sums over distinct
    /// batches are rewritten by inclusion–exclusion over the set partitions π of a pattern's
    /// colours, Σ_{distinct} = Σ_π μ(π) Σ_{constant on π's blocks}, μ(π) = Π_B (−1)^{|B|−1}
    /// (|B|−1)!; in an unrestricted sum a batch that occurs at a single node sums to m g
    /// there. So only batches at two nodes or more are enumerated: m^{⌊(K+1)/2⌋} trees per
    /// pattern at order K instead of m!/(m − K − 1)!. Up to 3 batches the distinct trees
    /// themselves make the smaller program and are kept.
    ///
    /// ```
    /// use eomderive::series::{sgd_series, BatchOrder};
    /// // Shuffled ξ_1 = (1/(2m)) Σ_a H_a g_a: one tree per batch, nothing to rewrite.
    /// let (_, xi) = sgd_series(BatchOrder::Shuffled, 1).unwrap().for_loss(3);
    /// assert_eq!(xi[0].len(), 3);
    /// ```
    pub fn for_loss(&self, m: usize) -> (ColouredForest, Vec<Vec<(ColouredId, BigRational)>>) {
        if self.order == BatchOrder::Cyclic || m <= DIRECT_UP_TO {
            return self.for_batches(m);
        }
        let full = u16::try_from(m).expect("at most SgdSeries::MAX_BATCHES batches");
        let mm = BigRational::from_integer((m as i64).into());
        self.expand(|forest, t, c, out| {
            let p = forest.colour_count(t);
            if p > m {
                return; // no p distinct batches out of m
            }
            let sym = BigRational::from_integer((symmetry(forest, t) as i64).into());
            let coefficient = c / (&mm * sym);
            let nodes = count_nodes(forest, t);
            for blocks in set_partitions(p) {
                let (size, members) = block_sizes(&blocks, &nodes);
                // μ(π), and m for each block at a single node.
                let mut weight = coefficient.clone();
                for (&n, &k) in size.iter().zip(&members) {
                    let factorial: i64 = (1..k as i64).product();
                    let sign = if k % 2 == 0 { -1 } else { 1 };
                    weight *= BigRational::from_integer((sign * factorial).into());
                    if n == 1 {
                        weight *= &mm;
                    }
                }
                let multi: Vec<usize> = (0..size.len()).filter(|&b| size[b] >= 2).collect();
                // Every assignment of batches to the blocks at two nodes or more.
                let mut assignment = vec![0u16; multi.len()];
                loop {
                    let mut batch = vec![full; size.len()];
                    for (i, &b) in multi.iter().enumerate() {
                        batch[b] = assignment[i];
                    }
                    let r = forest.relabel(t, &|x| batch[blocks[x as usize]]);
                    *out.entry(r).or_insert_with(BigRational::zero) += &weight;
                    let mut i = 0;
                    while i < assignment.len() && assignment[i] + 1 == full {
                        assignment[i] = 0;
                        i += 1;
                    }
                    if i == assignment.len() {
                        break;
                    }
                    assignment[i] += 1;
                }
            }
        })
    }

    /// Per ξ_k, the coloured trees `each` makes of every pattern (in a copy of the forest),
    /// zeros dropped, in canonical order.
    fn expand(
        &self,
        mut each: impl FnMut(
            &mut ColouredForest,
            ColouredId,
            &BigRational,
            &mut HashMap<ColouredId, BigRational>,
        ),
    ) -> (ColouredForest, Vec<Vec<(ColouredId, BigRational)>>) {
        let mut forest = self.forest.clone();
        let xi = self
            .xi
            .iter()
            .map(|terms| {
                let mut out: HashMap<ColouredId, BigRational> = HashMap::default();
                for (t, c) in terms {
                    each(&mut forest, *t, c, &mut out);
                }
                let mut out: Vec<(ColouredId, BigRational)> =
                    out.into_iter().filter(|(_, c)| !c.is_zero()).collect();
                out.sort_by(|a, b| forest.code(a.0).cmp(forest.code(b.0)));
                out
            })
            .collect();
        (forest, xi)
    }
}

/// How many renumberings of its colours map a shuffled pattern to itself.
fn symmetry(forest: &mut ColouredForest, t: ColouredId) -> usize {
    renumberings(forest, t)
        .into_iter()
        .filter(|&r| r == t)
        .count()
}

/// Per block of a set partition of the colours: its nodes in the tree, and its colours.
fn block_sizes(blocks: &[usize], nodes: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let q = blocks.iter().max().map_or(0, |&b| b + 1);
    let (mut size, mut members) = (vec![0usize; q], vec![0usize; q]);
    for (colour, &b) in blocks.iter().enumerate() {
        size[b] += nodes[colour];
        members[b] += 1;
    }
    (size, members)
}

/// Up to this many batches a shuffled epoch's loss-specific terms are its distinct coloured
/// trees; beyond, the inclusion–exclusion rewrite of [`SgdSeries::for_loss`], whose program is
/// smaller from 4 batches on (a tanh net's ξ_3: 38 501 against 43 733 operations at m = 4,
/// 53 909 against 79 557 at m = 6; 19 409 against 16 015 at m = 2).
const DIRECT_UP_TO: usize = 3;

/// How many trees the inclusion–exclusion rewrite of a shuffled pattern builds for m
/// batches: m^r per set partition of its colours, r the blocks at two nodes or more.
fn rewritten_count(forest: &ColouredForest, t: ColouredId, m: usize) -> u128 {
    let nodes = count_nodes(forest, t);
    set_partitions(forest.colour_count(t))
        .iter()
        .map(|blocks| {
            let (size, _) = block_sizes(blocks, &nodes);
            let r = size.iter().filter(|&&n| n >= 2).count() as u32;
            (m as u128).saturating_pow(r)
        })
        .fold(0u128, u128::saturating_add)
}

/// How many nodes of each colour a tree has.
fn count_nodes(forest: &ColouredForest, t: ColouredId) -> Vec<usize> {
    fn go(forest: &ColouredForest, t: ColouredId, nodes: &mut [usize]) {
        nodes[forest.colour(t) as usize] += 1;
        for &c in forest.children(t) {
            go(forest, c, nodes);
        }
    }
    let mut nodes = vec![0usize; forest.colour_count(t)];
    go(forest, t, &mut nodes);
    nodes
}

/// Every set partition of 0..p, as the block of each element (restricted growth strings:
/// blocks numbered in order of first appearance).
fn set_partitions(p: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur = Vec::with_capacity(p);
    fn go(p: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == p {
            out.push(cur.clone());
            return;
        }
        let next = cur.iter().max().map_or(0, |&b| b + 1);
        for b in 0..=next {
            cur.push(b);
            go(p, cur, out);
            cur.pop();
        }
    }
    go(p, &mut cur, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::counter_terms;

    /// The symmetry that the printed sums over distinct batches divide by is the count of
    /// distinct trees each pattern stands for, counted on the interned trees themselves.
    #[test]
    fn symmetry_counts_the_distinct_trees_of_a_pattern() {
        let mut s = sgd_series(BatchOrder::Shuffled, 3).unwrap();
        let m = 5;
        let mut forest = s.forest.clone();
        for terms in s.xi.clone() {
            for (t, _) in terms {
                let p = forest.colour_count(t);
                let trees: std::collections::HashSet<ColouredId> = colourings(s.order, p, m)
                    .into_iter()
                    .map(|c| forest.relabel(t, &|x| c[x as usize]))
                    .collect();
                assert_eq!(trees.len() as u128, s.colourings(t, m));
            }
        }
    }

    /// The budget a derivation checks is never below what the expansion builds.
    #[test]
    fn term_count_bounds_the_expansion() {
        for order in [BatchOrder::Cyclic, BatchOrder::Shuffled] {
            let s = sgd_series(order, 3).unwrap();
            for m in [1, 2, 3, 4, 6] {
                let built: usize = s.for_loss(m).1.iter().map(Vec::len).sum();
                assert!(s.term_count(m) >= built as u128, "{order} m = {m}");
            }
        }
    }

    #[test]
    fn set_partitions_are_counted_by_bell_numbers() {
        let bell: Vec<usize> = (0..6).map(|p| set_partitions(p).len()).collect();
        assert_eq!(bell, [1, 1, 2, 5, 15, 52]);
    }

    /// One batch is gradient descent, order by order and tree by tree.
    #[test]
    fn one_batch_is_gradient_descent() {
        for order in [BatchOrder::Cyclic, BatchOrder::Shuffled] {
            let s = sgd_series(order, 4).unwrap();
            let gd = counter_terms(4).unwrap();
            let (forest, xi) = s.for_batches(1);
            for (k, terms) in xi.iter().enumerate() {
                let mut shapes = gd.forest.clone();
                let mut got: Vec<(crate::series::TreeId, BigRational)> = terms
                    .iter()
                    .map(|(t, c)| (forest.shape(*t, &mut shapes), c.clone()))
                    .collect();
                got.sort();
                let mut want = gd.xi[k].clone();
                want.sort();
                assert_eq!(got, want, "{order} ξ_{}", k + 1);
            }
        }
    }

    #[test]
    fn colourings_count_increasing_and_distinct_choices() {
        assert_eq!(colourings(BatchOrder::Cyclic, 2, 4).len(), 6);
        assert_eq!(colourings(BatchOrder::Shuffled, 2, 4).len(), 12);
        assert_eq!(colourings(BatchOrder::Shuffled, 3, 2).len(), 0);
        for (order, p, m) in [(BatchOrder::Cyclic, 3, 7), (BatchOrder::Shuffled, 3, 5)] {
            assert_eq!(choices(order, p, m), colourings(order, p, m).len() as u128);
        }
    }
}
