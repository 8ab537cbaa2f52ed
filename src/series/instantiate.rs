//! The generic series instantiated on a loss: each tree becomes a vector of shared expressions.

use std::collections::HashMap;

use super::{GenericSeries, TreeId};
use crate::expr::{Diff, Graph, Id};

/// ξ_1..ξ_K of a loss as expressions: `result[k-1][i]` is component `i` of ξ_k.
///
/// Each tree's elementary differential is built once and shared: a leaf is the gradient, and
/// a node with children τ_1..τ_m is ∇^m g applied to the children's vectors, computed by
/// [`Diff::gradient_directional`], whose lower derivatives are memoised across trees.
///
/// ```
/// use eomderive::{expr::Diff, lang::parse_str, numeric::Program, series};
/// // f = u^3/3: g = u^2, H = 2u, so ξ_1 = ½ H g = u^3.
/// let mut m = parse_str("u^3/3").unwrap();
/// let mut d = Diff::new(1);
/// let g = d.gradient(&mut m.graph, m.loss);
/// let s = series::counter_terms(1).unwrap();
/// let xi = series::instantiate(&s, &mut m.graph, &mut d, &g);
/// assert_eq!(Program::compile(&m.graph, &xi[0]).eval(&[2.0]).unwrap(), vec![8.0]);
/// ```
pub fn instantiate(
    series: &GenericSeries,
    graph: &mut Graph,
    diff: &mut Diff,
    gradient: &[Id],
) -> Vec<Vec<Id>> {
    let mut memo: HashMap<TreeId, Vec<Id>> = HashMap::new();
    series
        .xi
        .iter()
        .map(|terms| {
            let mut sums: Vec<Vec<Id>> = vec![Vec::with_capacity(terms.len()); gradient.len()];
            for (tree, coefficient) in terms {
                let v = elementary(series, *tree, graph, diff, gradient, &mut memo);
                let c = graph.num(coefficient.clone());
                for (sum, x) in sums.iter_mut().zip(v) {
                    sum.push(graph.mul(c, x));
                }
            }
            sums.into_iter().map(|s| graph.sum(s)).collect()
        })
        .collect()
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
