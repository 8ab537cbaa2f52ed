//! Potentials in tree form: which counter terms are gradients for every loss.
//!
//! A *tree scalar* is a free (unrooted) tree σ contracted fully, a node of degree d standing
//! for ∇^d f: the edge is g·g, the path of three nodes gᵀ H g. Its gradient adds the free index
//! to each node in turn, ∇S_σ = Σ_{v ∈ σ} G(σ rooted at v), a sum of elementary differentials.
//! Elementary differentials of distinct rooted trees are independent for a general loss, and
//! each rooted tree belongs to exactly one free tree, so ξ_k = Σ_τ c(τ) G(τ) is the gradient of
//! a combination Σ a_σ S_σ exactly when, within each free tree σ, c(τ) is a_σ times the number
//! of nodes of σ whose rooting gives τ. That decides, exactly and once for all losses, whether
//! ξ_k is a gradient field (ξ_1 is: ξ_1 = ∇ ¼‖g‖²; ξ_2 is not).
//!
//! A tree scalar is written `g·G(τ)`: τ is σ with one leaf removed, rooted where the leaf hung.

use crate::hash::HashMap;

use num_rational::BigRational;
use num_traits::Zero;

use super::{Forest, GenericSeries, TreeId};

/// One rooted tree τ per free tree with `nodes` nodes (`nodes ≥ 2`), standing for the scalar
/// g·G(τ), in canonical order of τ.
///
/// ```
/// let mut f = eomderive::series::Forest::new();
/// let s = eomderive::series::scalar_trees(&mut f, 4);
/// let b: Vec<String> = s.iter().map(|&t| f.bracket(t)).collect();
/// assert_eq!(b, ["[••]", "[[•]]"]); // T(g,g,g) and gᵀ H H g: the star and the path
/// ```
pub fn scalar_trees(forest: &mut Forest, nodes: usize) -> Vec<TreeId> {
    if nodes < 2 {
        return Vec::new();
    }
    let mut seen: Vec<Vec<TreeId>> = Vec::new();
    let mut out = Vec::new();
    for tau in forest.trees_of_order(nodes - 1) {
        let key = free_key(forest, tau);
        if !seen.contains(&key) {
            seen.push(key);
            out.push(tau);
        }
    }
    out
}

/// The rooted tree of g·G(τ) at τ's root: τ with one more leaf child.
fn with_leaf(forest: &mut Forest, tau: TreeId) -> TreeId {
    let mut children = forest.children(tau).to_vec();
    children.push(forest.leaf());
    forest.node(children)
}

/// Identifies the free tree of g·G(τ): its rootings, sorted.
fn free_key(forest: &mut Forest, tau: TreeId) -> Vec<TreeId> {
    let rooted = with_leaf(forest, tau);
    let mut r = forest.rootings(rooted);
    r.sort();
    r
}

/// ∇(g·G(τ)) as a sum of elementary differentials: each rooting of the free tree once, equal
/// rootings added (canonical order).
///
/// ```
/// let mut f = eomderive::series::Forest::new();
/// let g = f.leaf();
/// let grad = eomderive::series::scalar_gradient(&mut f, g); // ∇(g·g) = 2 H g
/// assert_eq!(grad.len(), 1);
/// assert_eq!((f.bracket(grad[0].0), grad[0].1), ("[•]".to_string(), 2));
/// ```
pub fn scalar_gradient(forest: &mut Forest, tau: TreeId) -> Vec<(TreeId, u32)> {
    let rooted = with_leaf(forest, tau);
    let mut counts: Vec<(TreeId, u32)> = Vec::new();
    for r in forest.rootings(rooted) {
        match counts.iter_mut().find(|(t, _)| *t == r) {
            Some((_, m)) => *m += 1,
            None => counts.push((r, 1)),
        }
    }
    counts.sort_by(|a, b| forest.canonical_cmp(a.0, b.0));
    counts
}

/// ξ_k as the gradient of tree scalars, Σ a_σ g·G(τ_σ), when it is one for every loss (see the
/// module docs); `None` when it is not. Terms with a zero coefficient are left out.
///
/// ```
/// let mut s = eomderive::generic(2).unwrap();
/// let phi = eomderive::series::generic_potential(&mut s, 1).unwrap();
/// assert_eq!(phi.len(), 1);
/// assert_eq!(s.forest.bracket(phi[0].0), "•"); // ξ_1 = ∇ (1/4) g·g
/// assert_eq!(phi[0].1.to_string(), "1/4");
/// assert!(eomderive::series::generic_potential(&mut s, 2).is_none()); // ξ_2 is not
/// ```
pub fn generic_potential(
    series: &mut GenericSeries,
    k: usize,
) -> Option<Vec<(TreeId, BigRational)>> {
    let coefficients: HashMap<TreeId, BigRational> = series.xi[k - 1].iter().cloned().collect();
    let forest = &mut series.forest;
    let mut covered = 0;
    let mut potential = Vec::new();
    for tau in scalar_trees(forest, k + 1) {
        let gradient = scalar_gradient(forest, tau);
        let zero = BigRational::zero();
        let c = |t: &TreeId| coefficients.get(t).unwrap_or(&zero).clone();
        let (first, m) = &gradient[0];
        let a = c(first) / BigRational::from_integer((*m).into());
        if gradient
            .iter()
            .any(|(t, m)| c(t) != a.clone() * BigRational::from_integer((*m).into()))
        {
            return None;
        }
        covered += gradient
            .iter()
            .filter(|(t, _)| coefficients.contains_key(t))
            .count();
        if !a.is_zero() {
            potential.push((tau, a));
        }
    }
    // Every tree of ξ_k belongs to some free tree, so all are accounted for.
    debug_assert_eq!(covered, coefficients.len());
    Some(potential)
}
