//! The generic series instantiated on a loss: each tree becomes a vector of shared expressions.

use std::collections::HashMap;

use num_rational::BigRational;

use super::{GenericSeries, TreeId};
use crate::expr::{Diff, Graph, Id};

/// ξ_1..ξ_K of a loss as expressions: `result[k-1][i]` is component `i` of ξ_k; an error when
/// the graph grows past `max_nodes` nodes (checked after each derivative).
///
/// A leaf is the gradient, and a node with children τ_1..τ_m is ∇^m g applied to the children's
/// vectors, computed by [`Diff::gradient_directional`], whose lower derivatives are memoised
/// across trees. Each ξ_k is factored by multilinearity (see `combination`), which needs far
/// fewer derivatives than one per tree.
///
/// ```
/// use eomderive::{expr::Diff, lang::parse_str, numeric::Program, series};
/// // f = u^3/3: g = u^2, H = 2u, so ξ_1 = ½ H g = u^3.
/// let mut m = parse_str("u^3/3").unwrap();
/// let mut d = Diff::new(1);
/// let g = d.gradient(&mut m.graph, m.loss);
/// let s = series::counter_terms(1).unwrap();
/// let xi = series::instantiate(&s, &mut m.graph, &mut d, &g, 1_000_000).unwrap();
/// assert_eq!(Program::compile(&m.graph, &xi[0]).eval(&[2.0]).unwrap(), vec![8.0]);
/// ```
pub fn instantiate(
    series: &GenericSeries,
    graph: &mut Graph,
    diff: &mut Diff,
    gradient: &[Id],
    max_nodes: usize,
) -> Result<Vec<Vec<Id>>, TooLarge> {
    let mut memo: HashMap<TreeId, Vec<Id>> = HashMap::new();
    let mut xi = Vec::with_capacity(series.xi.len());
    for (k, terms) in series.xi.iter().enumerate() {
        let mut within = |g: &Graph| g.len() <= max_nodes;
        match combination(series, terms, graph, diff, gradient, &mut memo, &mut within) {
            Some(v) => xi.push(v),
            None => {
                return Err(TooLarge {
                    order: k + 1,
                    nodes: graph.len(),
                })
            }
        }
    }
    Ok(xi)
}

/// The expression graph outgrew its budget while deriving ξ_order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// The counter term being derived.
    pub order: usize,
    /// Nodes in the graph when the derivation stopped.
    pub nodes: usize,
}

/// Trees that differ only in their last child: (the other children, the last children with
/// their coefficients, the first tree seen).
type Group = (Vec<TreeId>, Vec<(TreeId, BigRational)>, TreeId);

/// Σ c_τ G(τ) for a linear combination of trees, factored by multilinearity so that trees
/// sharing a root arity and all children but the last need one derivative, applied to the
/// combination of their last children: Σ c ∇^m g(a, …, b_i) = ∇^m g(a, …, Σ c b_i). The
/// combination of last children is factored the same way, recursively.
fn combination(
    series: &GenericSeries,
    terms: &[(TreeId, BigRational)],
    graph: &mut Graph,
    diff: &mut Diff,
    gradient: &[Id],
    memo: &mut HashMap<TreeId, Vec<Id>>,
    within: &mut dyn FnMut(&Graph) -> bool,
) -> Option<Vec<Id>> {
    let n = gradient.len();
    let mut sums: Vec<Vec<Id>> = vec![Vec::new(); n];
    // Groups keyed by all children but the last, in first-seen order (deterministic). A tree
    // alone in its group is used whole, so that its memoised value is shared with every other
    // place that needs it (lower orders, other trees).
    let mut groups: Vec<Group> = Vec::new();
    for (tree, c) in terms {
        let children = series.forest.children(*tree);
        let (last, rest) = children
            .split_last()
            .map_or((*tree, &[][..]), |(l, r)| (*l, r));
        let key = if children.is_empty() {
            None
        } else {
            Some(rest)
        };
        match groups
            .iter_mut()
            .find(|(k, _, t)| Some(&k[..]) == key && !series.forest.children(*t).is_empty())
        {
            Some((_, members, _)) => members.push((last, c.clone())),
            None => groups.push((rest.to_vec(), vec![(last, c.clone())], *tree)),
        }
    }
    for (rest, members, first) in groups {
        if members.len() == 1 {
            let v = elementary(series, first, graph, diff, gradient, memo);
            let c = graph.num(members[0].1.clone());
            for (s, x) in sums.iter_mut().zip(v) {
                s.push(graph.mul(c, x));
            }
            if !within(graph) {
                return None;
            }
            continue;
        }
        let mut dirs: Vec<Vec<Id>> = rest
            .iter()
            .map(|&t| elementary(series, t, graph, diff, gradient, memo))
            .collect();
        dirs.push(combination(
            series, &members, graph, diff, gradient, memo, within,
        )?);
        let v = diff.gradient_directional(graph, gradient, &dirs);
        for (s, x) in sums.iter_mut().zip(v) {
            s.push(x);
        }
        if !within(graph) {
            return None;
        }
    }
    Some(sums.into_iter().map(|s| graph.sum(s)).collect())
}
/// The elementary differential G(τ) of the gradient, memoised per tree.
fn elementary(
    series: &GenericSeries,
    tree: TreeId,
    graph: &mut Graph,
    diff: &mut Diff,
    gradient: &[Id],
    memo: &mut HashMap<TreeId, Vec<Id>>,
) -> Vec<Id> {
    if let Some(v) = memo.get(&tree) {
        return v.clone();
    }
    let children: Vec<TreeId> = series.forest.children(tree).to_vec();
    let dirs: Vec<Vec<Id>> = children
        .iter()
        .map(|&c| elementary(series, c, graph, diff, gradient, memo))
        .collect();
    let v = diff.gradient_directional(graph, gradient, &dirs);
    memo.insert(tree, v.clone());
    v
}
