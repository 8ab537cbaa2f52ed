//! The generic series instantiated on a loss: each tree becomes a vector of shared expressions.

use crate::hash::HashMap;
use std::hash::Hash;

use num_rational::BigRational;

use super::{ColouredForest, ColouredId, Forest, GenericSeries, TreeId};
use crate::expr::{Diff, Graph, Id};

/// Trees whose elementary differentials can be built on a loss: each tree's children, and
/// which gradient its root differentiates (always the one gradient for [`Forest`], batch a's
/// for a node coloured a in a [`ColouredForest`]).
pub trait Shapes {
    /// A tree's handle.
    type Tree: Copy + Eq + Hash;
    /// Its children, equal ones adjacent.
    fn children(&self, t: Self::Tree) -> &[Self::Tree];
    /// The index of the gradient the root differentiates.
    fn field(&self, t: Self::Tree) -> usize;
}

impl Shapes for Forest {
    type Tree = TreeId;
    fn children(&self, t: TreeId) -> &[TreeId] {
        Forest::children(self, t)
    }
    fn field(&self, _: TreeId) -> usize {
        0
    }
}

impl Shapes for ColouredForest {
    type Tree = ColouredId;
    fn children(&self, t: ColouredId) -> &[ColouredId] {
        ColouredForest::children(self, t)
    }
    fn field(&self, t: ColouredId) -> usize {
        self.colour(t) as usize
    }
}

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
    let gradients = [gradient.to_vec()];
    instantiate_trees(
        &series.forest,
        &series.xi,
        graph,
        diff,
        &gradients,
        max_nodes,
    )
}

/// [`instantiate`] for any trees: `xi[k-1]` lists ξ_k's trees with their coefficients, and
/// `gradients[a]` is the gradient a root with [`Shapes::field`] a differentiates (batch a's
/// for SGD's coloured trees).
///
/// ```
/// use eomderive::{expr::Diff, lang::parse_str, numeric::Program, series};
/// // Two batches f_0 = u²/2, f_1 = u³/3: H_0 g_1 = 1·u² at u = 2 is 4.
/// let mut m = parse_str("u^2/2 + u^3/3").unwrap();
/// let mut d = Diff::new(1);
/// let u = m.graph.var(eomderive::expr::VarId(0));
/// let (f0, f1) = { let two = m.graph.int(2); let three = m.graph.int(3); let a = m.graph.powi(u, 2); let b = m.graph.powi(u, 3); (m.graph.div(a, two), m.graph.div(b, three)) };
/// let g = vec![d.gradient(&mut m.graph, f0), d.gradient(&mut m.graph, f1)];
/// let mut forest = series::ColouredForest::new();
/// let leaf = forest.leaf(1);
/// let t = forest.node(0, vec![leaf]);
/// let one = num_rational::BigRational::from_integer(1.into());
/// let xi = series::instantiate_trees(&forest, &[vec![(t, one)]], &mut m.graph, &mut d, &g, 1_000_000).unwrap();
/// assert_eq!(Program::compile(&m.graph, &xi[0]).eval(&[2.0]).unwrap(), vec![4.0]);
/// ```
pub fn instantiate_trees<S: Shapes>(
    shapes: &S,
    xi: &[Vec<(S::Tree, BigRational)>],
    graph: &mut Graph,
    diff: &mut Diff,
    gradients: &[Vec<Id>],
    max_nodes: usize,
) -> Result<Vec<Vec<Id>>, TooLarge> {
    instantiate_watched(shapes, xi, graph, diff, gradients, max_nodes, &mut |_| {
        Ok(())
    })
}

/// Where an instantiation stands before it derives ξ_order, for a watcher
/// ([`instantiate_watched`]) that predicts what is left and may stop it.
#[derive(Debug, Clone, Copy)]
pub struct Before<'a> {
    /// The counter term about to be derived.
    pub order: usize,
    /// The last counter term asked for.
    pub orders: usize,
    /// Graph nodes before ξ_1 (`nodes[0]`) and after each ξ_j derived so far (`nodes[j]`).
    pub nodes: &'a [usize],
    /// Seconds spent on each ξ_j derived so far (`seconds[j-1]`).
    pub seconds: &'a [f64],
}

/// [`instantiate_trees`] with a watcher called before each order: it sees the graph's growth
/// so far ([`Before`]) and may stop the derivation before the work it would not survive.
pub fn instantiate_watched<S: Shapes>(
    shapes: &S,
    xi: &[Vec<(S::Tree, BigRational)>],
    graph: &mut Graph,
    diff: &mut Diff,
    gradients: &[Vec<Id>],
    max_nodes: usize,
    watch: &mut dyn FnMut(Before) -> Result<(), TooLarge>,
) -> Result<Vec<Vec<Id>>, TooLarge> {
    let mut memo: HashMap<S::Tree, Vec<Id>> = HashMap::default();
    let mut out = Vec::with_capacity(xi.len());
    let mut nodes = vec![graph.len()];
    let mut seconds = Vec::new();
    for (k, terms) in xi.iter().enumerate() {
        watch(Before {
            order: k + 1,
            orders: xi.len(),
            nodes: &nodes,
            seconds: &seconds,
        })?;
        let start = std::time::Instant::now();
        let mut within = |g: &Graph| g.len() <= max_nodes;
        let mut cx = Context {
            shapes,
            graph: &mut *graph,
            diff: &mut *diff,
            gradients,
            memo: &mut memo,
        };
        match cx.combination(terms, &mut within) {
            Some(v) => out.push(v),
            None => {
                return Err(TooLarge {
                    order: k + 1,
                    nodes: graph.len(),
                    predicted: false,
                    fits: k,
                })
            }
        }
        nodes.push(graph.len());
        seconds.push(start.elapsed().as_secs_f64());
    }
    Ok(out)
}

/// The expression graph outgrew its budget while deriving ξ_order, or would have (a
/// watcher's prediction, before the work).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// The counter term being derived, or the one predicted not to fit.
    pub order: usize,
    /// Nodes in the graph when the derivation stopped, or predicted for `order`.
    pub nodes: usize,
    /// `nodes` is a prediction: the derivation stopped before the work.
    pub predicted: bool,
    /// The largest order known (or predicted) to fit.
    pub fits: usize,
}

/// Trees that differ only in their last child: (the root's field and the other children, the
/// last children with their coefficients, the first tree seen).
type Group<T> = ((usize, Vec<T>), Vec<(T, BigRational)>, T);

/// What building elementary differentials needs, borrowed for one ξ_k.
struct Context<'a, S: Shapes> {
    shapes: &'a S,
    graph: &'a mut Graph,
    diff: &'a mut Diff,
    gradients: &'a [Vec<Id>],
    memo: &'a mut HashMap<S::Tree, Vec<Id>>,
}

impl<S: Shapes> Context<'_, S> {
    /// Σ c_τ G(τ) for a linear combination of trees, factored by multilinearity so that trees
    /// sharing a root (arity and field) and all children but the last need one derivative,
    /// applied to the combination of their last children: Σ c ∇^m g(a, …, b_i) =
    /// ∇^m g(a, …, Σ c b_i). The combination of last children is factored the same way,
    /// recursively.
    fn combination(
        &mut self,
        terms: &[(S::Tree, BigRational)],
        within: &mut dyn FnMut(&Graph) -> bool,
    ) -> Option<Vec<Id>> {
        let n = self.gradients[0].len();
        let mut sums: Vec<Vec<Id>> = vec![Vec::new(); n];
        // Groups keyed by the root's field and all children but the last, in first-seen order
        // (deterministic). A tree alone in its group is used whole, so that its memoised value
        // is shared with every other place that needs it (lower orders, other trees).
        let mut groups: Vec<Group<S::Tree>> = Vec::new();
        // Where each (field, other children) group of non-leaves is in `groups`.
        let mut index: HashMap<(usize, Vec<S::Tree>), usize> = HashMap::default();
        for (tree, c) in terms {
            let children = self.shapes.children(*tree);
            let field = self.shapes.field(*tree);
            let Some((last, rest)) = children.split_last() else {
                groups.push(((field, Vec::new()), vec![(*tree, c.clone())], *tree));
                continue;
            };
            let key = (field, rest.to_vec());
            match index.get(&key) {
                Some(&g) => groups[g].1.push((*last, c.clone())),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, vec![(*last, c.clone())], *tree));
                }
            }
        }
        for ((field, rest), members, first) in groups {
            if members.len() == 1 {
                let v = self.elementary(first);
                let c = self.graph.num(members[0].1.clone());
                for (s, x) in sums.iter_mut().zip(v) {
                    s.push(self.graph.mul(c, x));
                }
                if !within(self.graph) {
                    return None;
                }
                continue;
            }
            let mut dirs: Vec<Vec<Id>> = rest.iter().map(|&t| self.elementary(t)).collect();
            dirs.push(self.combination(&members, within)?);
            let v = self
                .diff
                .gradient_directional(self.graph, &self.gradients[field], &dirs);
            for (s, x) in sums.iter_mut().zip(v) {
                s.push(x);
            }
            if !within(self.graph) {
                return None;
            }
        }
        Some(sums.into_iter().map(|s| self.graph.sum(s)).collect())
    }

    /// The elementary differential G(τ), memoised per tree.
    fn elementary(&mut self, tree: S::Tree) -> Vec<Id> {
        if let Some(v) = self.memo.get(&tree) {
            return v.clone();
        }
        let children: Vec<S::Tree> = self.shapes.children(tree).to_vec();
        let dirs: Vec<Vec<Id>> = children.iter().map(|&c| self.elementary(c)).collect();
        let field = self.shapes.field(tree);
        let v = self
            .diff
            .gradient_directional(self.graph, &self.gradients[field], &dirs);
        self.memo.insert(tree, v.clone());
        v
    }
}
