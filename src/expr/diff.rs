//! Structural differentiation on the expression graph, with memoised sub-results.
//!
//! Everything here is built from one table, the local partial derivative of a node with respect
//! to each of its children ([`Diff::partial`]). Forward mode (directional derivatives) and reverse
//! mode (the gradient) both sum `partial × derivative of child`, so the two agree by construction
//! and every sub-result is a shared node of the graph.

use crate::hash::HashMap;

use num_rational::BigRational;

use super::{Func, Graph, Id, Op, VarId};

/// Variables at or above this index are placeholders for directions (see
/// [`Diff::gradient_directional`]); parameters sit below it.
const PLACEHOLDER_BASE: u32 = 1 << 30;

/// Memo tables for differentiating the expressions of one [`Graph`] in `n` parameters.
///
/// ```
/// use eomderive::expr::{Diff, Graph, VarId};
/// let mut g = Graph::new();
/// let (u, v) = (g.var(VarId(0)), g.var(VarId(1)));
/// let uv = g.mul(u, v);
/// let mut d = Diff::new(2);
/// let grad = d.gradient(&mut g, uv);
/// assert_eq!(grad, vec![v, u]);
/// ```
#[derive(Debug, Clone)]
pub struct Diff {
    n: usize,
    partials: HashMap<(Id, usize), Id>,
    directions: HashMap<Vec<Id>, usize>,
    forward: HashMap<(Id, usize), Id>,
    /// `placeholder_derivs[m]` = ∇^m g[P_1, …, P_m] for the gradient of a given loss.
    placeholder_derivs: HashMap<Vec<Id>, Vec<Vec<Id>>>,
}

impl Diff {
    /// Memo tables for a model with `n_params` parameters (variables `0..n_params`).
    pub fn new(n_params: usize) -> Diff {
        Diff {
            n: n_params,
            partials: HashMap::default(),
            directions: HashMap::default(),
            forward: HashMap::default(),
            placeholder_derivs: HashMap::default(),
        }
    }

    /// The number of parameters.
    pub fn n_params(&self) -> usize {
        self.n
    }

    /// ∂node/∂(its child number `i`), as a node.
    pub fn partial(&mut self, g: &mut Graph, node: Id, i: usize) -> Id {
        if let Some(&p) = self.partials.get(&(node, i)) {
            return p;
        }
        let p = local_partial(g, node, i);
        self.partials.insert((node, i), p);
        p
    }

    /// The gradient of `f` with respect to the parameters, by reverse accumulation: each node's
    /// adjoint is built once and shared by everything below it.
    pub fn gradient(&mut self, g: &mut Graph, f: Id) -> Vec<Id> {
        let zero = g.int(0);
        let mut grad = vec![zero; self.n];
        let mut contributions: HashMap<Id, Vec<Id>> = HashMap::default();
        let one = g.int(1);
        contributions.insert(f, vec![one]);
        for id in g.cone(&[f]).into_iter().rev() {
            let Some(parts) = contributions.remove(&id) else {
                continue;
            };
            let adjoint = g.sum(parts);
            if g.get(adjoint).is_zero() {
                continue;
            }
            let children = egg::Language::children(g.get(id)).to_vec();
            if let Op::Var(VarId(v)) = *g.get(id) {
                if (v as usize) < self.n {
                    grad[v as usize] = adjoint;
                }
            }
            for (i, c) in children.into_iter().enumerate() {
                if g.as_num(c).is_some() {
                    continue;
                }
                let p = self.partial(g, id, i);
                let term = g.mul(adjoint, p);
                contributions.entry(c).or_default().push(term);
            }
        }
        grad
    }

    /// The directional derivative Σ_j ∂e/∂θ_j · seeds\[j\] of each root, by forward
    /// accumulation. Variables without a seed (beyond `seeds.len()`) are held fixed.
    pub fn directional(&mut self, g: &mut Graph, roots: &[Id], seeds: &[Id]) -> Vec<Id> {
        let next = self.directions.len();
        let key = *self.directions.entry(seeds.to_vec()).or_insert(next);
        let zero = g.int(0);
        for id in g.cone(roots) {
            if self.forward.contains_key(&(id, key)) {
                continue;
            }
            let d = match *g.get(id) {
                Op::Var(VarId(v)) => seeds.get(v as usize).copied().unwrap_or(zero),
                Op::Num(_) => zero,
                _ => {
                    let children = egg::Language::children(g.get(id)).to_vec();
                    let mut terms = Vec::with_capacity(children.len());
                    for (i, c) in children.into_iter().enumerate() {
                        let dc = self.forward[&(c, key)];
                        if !g.get(dc).is_zero() {
                            let p = self.partial(g, id, i);
                            terms.push(g.mul(p, dc));
                        }
                    }
                    g.sum(terms)
                }
            };
            self.forward.insert((id, key), d);
        }
        roots.iter().map(|r| self.forward[&(*r, key)]).collect()
    }

    /// The Hessian of the loss whose gradient is `grad`, row by row (symmetric).
    pub fn hessian(&mut self, g: &mut Graph, grad: &[Id]) -> Vec<Vec<Id>> {
        let zero = g.int(0);
        let one = g.int(1);
        (0..self.n)
            .map(|j| {
                let mut e = vec![zero; self.n];
                e[j] = one;
                self.directional(g, grad, &e)
            })
            .collect()
    }

    /// ∇^m g(v_1, …, v_m): the m-th derivative of the vector field `grad` applied to the
    /// direction vectors `dirs`, which may themselves depend on the parameters (they are
    /// treated as fixed vectors, as the multilinear form requires). With no directions it is
    /// `grad` itself.
    ///
    /// Internally the derivative is taken once along placeholder variables P_1..P_m, memoised
    /// per `m`, and the directions are substituted for the placeholders.
    ///
    /// ```
    /// use eomderive::expr::{Diff, Graph, VarId};
    /// // f = u^3/3: g = u^2, ∇g(v) = 2 u v, ∇²g(v, w) = 2 v w.
    /// let mut g = Graph::new();
    /// let u = g.var(VarId(0));
    /// let three = g.int(3);
    /// let cube = g.pow(u, three);
    /// let f = g.div(cube, three);
    /// let mut d = Diff::new(1);
    /// let grad = d.gradient(&mut g, f);
    /// let t = d.gradient_directional(&mut g, &grad, &[vec![u], vec![u]]);
    /// let value = eomderive::numeric::Program::compile(&g, &t).eval(&[3.0]).unwrap();
    /// assert_eq!(value, vec![18.0]); // 2 u u at u = 3
    /// ```
    pub fn gradient_directional(
        &mut self,
        g: &mut Graph,
        grad: &[Id],
        dirs: &[Vec<Id>],
    ) -> Vec<Id> {
        let m = dirs.len();
        let mut derivs = self
            .placeholder_derivs
            .remove(grad)
            .unwrap_or_else(|| vec![grad.to_vec()]);
        while derivs.len() <= m {
            let slot = derivs.len() - 1;
            let seeds: Vec<Id> = (0..self.n)
                .map(|j| g.var(self.placeholder(slot, j)))
                .collect();
            let next = self.directional(g, derivs.last().unwrap(), &seeds);
            derivs.push(next);
        }
        let roots = derivs[m].clone();
        self.placeholder_derivs.insert(grad.to_vec(), derivs);
        if m == 0 {
            return roots;
        }
        let mut subst = HashMap::default();
        for (slot, v) in dirs.iter().enumerate() {
            assert_eq!(v.len(), self.n, "direction {slot} has the wrong length");
            for (j, &x) in v.iter().enumerate() {
                subst.insert(self.placeholder(slot, j), x);
            }
        }
        g.substitute(&roots, &subst, &mut HashMap::default())
    }

    fn placeholder(&self, slot: usize, j: usize) -> VarId {
        VarId(PLACEHOLDER_BASE + (slot * self.n + j) as u32)
    }
}

/// ∂node/∂child_i built from the node itself where that shares work (e.g. exp' = exp).
fn local_partial(g: &mut Graph, node: Id, i: usize) -> Id {
    let half = || BigRational::new(1.into(), 2.into());
    match g.get(node).clone() {
        Op::Add(_) => g.int(1),
        Op::Sub(_) => g.int(if i == 0 { 1 } else { -1 }),
        Op::Mul([a, b]) => {
            if i == 0 {
                b
            } else {
                a
            }
        }
        Op::Div([_, b]) => {
            if i == 0 {
                let one = g.int(1);
                g.div(one, b)
            } else {
                let q = g.div(node, b);
                g.neg(q)
            }
        }
        Op::Pow([a, b]) => {
            if i == 0 {
                // b a^(b-1)
                let one = g.int(1);
                let bm1 = g.sub(b, one);
                let p = g.pow(a, bm1);
                g.mul(b, p)
            } else {
                let l = g.call(Func::Log, a);
                g.mul(node, l)
            }
        }
        Op::Neg(_) => g.int(-1),
        Op::Call(f, [a]) => match f {
            Func::Exp => node,
            Func::Log => {
                let one = g.int(1);
                g.div(one, a)
            }
            Func::Sqrt => {
                let h = g.num(half());
                g.div(h, node)
            }
            Func::Sin => g.call(Func::Cos, a),
            Func::Cos => {
                let s = g.call(Func::Sin, a);
                g.neg(s)
            }
            Func::Tan => {
                let one = g.int(1);
                let sq = g.powi(node, 2);
                g.add(one, sq)
            }
            Func::Tanh => {
                let one = g.int(1);
                let sq = g.powi(node, 2);
                g.sub(one, sq)
            }
            Func::Sigmoid => {
                let one = g.int(1);
                let c = g.sub(one, node);
                g.mul(node, c)
            }
            Func::Softplus => g.call(Func::Sigmoid, a),
            Func::Log1p => {
                let one = g.int(1);
                let d = g.add(one, a);
                g.div(one, d)
            }
        },
        Op::Num(_) | Op::Var(_) => unreachable!("leaves have no children"),
    }
}
