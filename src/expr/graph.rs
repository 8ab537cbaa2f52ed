//! A hash-consed DAG of scalar expressions with light, local folding on construction.

use crate::hash::HashMap;

use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::{Func, Id, Op, VarId};

/// The largest integer exponent folded on constants (`c^n`); larger powers stay symbolic.
const MAX_FOLDED_EXPONENT: u32 = 64;

/// A shared expression graph. Every node is stored once ([`Graph::add`] returns the existing id
/// for a node already present), children always come before parents, and the smart constructors
/// fold constants and the identities `x+0`, `x*1`, `x*0`, `--x` as nodes are built.
///
/// ```
/// use eomderive::expr::{Graph, VarId};
/// let mut g = Graph::new();
/// let u = g.var(VarId(0));
/// let two = g.int(2);
/// let a = g.mul(two, u);
/// let b = g.mul(u, two);
/// assert_eq!(a, b); // product operands are ordered, so both are one node
/// let zero = g.int(0);
/// assert_eq!(g.add(a, zero), a);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: Vec<Op>,
    memo: HashMap<Op, Id>,
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Number of nodes stored.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when no node is stored.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node behind an id.
    pub fn get(&self, id: Id) -> &Op {
        &self.nodes[usize::from(id)]
    }

    /// All nodes, children before parents.
    pub fn nodes(&self) -> &[Op] {
        &self.nodes
    }

    /// The constant value of a node, if it is a constant.
    pub fn as_num(&self, id: Id) -> Option<&BigRational> {
        self.get(id).as_num()
    }

    /// Interns a node as it is (no folding). Children must already be in the graph.
    pub fn intern(&mut self, op: Op) -> Id {
        if let Some(&id) = self.memo.get(&op) {
            return id;
        }
        let id = Id::from(self.nodes.len());
        self.nodes.push(op.clone());
        self.memo.insert(op, id);
        id
    }

    /// Builds a node through the smart constructor that matches its operator.
    pub fn add_op(&mut self, op: Op) -> Id {
        match op {
            Op::Add([a, b]) => self.add(a, b),
            Op::Sub([a, b]) => self.sub(a, b),
            Op::Mul([a, b]) => self.mul(a, b),
            Op::Div([a, b]) => self.div(a, b),
            Op::Pow([a, b]) => self.pow(a, b),
            Op::Neg(a) => self.neg(a),
            Op::Call(f, [a]) => self.call(f, a),
            leaf => self.intern(leaf),
        }
    }

    /// A rational constant.
    pub fn num(&mut self, r: BigRational) -> Id {
        self.intern(Op::num(r))
    }

    /// An integer constant.
    pub fn int(&mut self, n: i64) -> Id {
        self.num(BigRational::from_integer(n.into()))
    }

    /// A variable.
    pub fn var(&mut self, v: VarId) -> Id {
        self.intern(Op::Var(v))
    }

    /// `a + b`.
    pub fn add(&mut self, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.as_num(a), self.as_num(b)) {
            return self.num(x + y);
        }
        if self.get(a).is_zero() {
            return b;
        }
        if self.get(b).is_zero() {
            return a;
        }
        if let Op::Neg(y) = *self.get(b) {
            return self.sub(a, y);
        }
        if let Op::Neg(x) = *self.get(a) {
            return self.sub(b, x);
        }
        if a == b {
            let two = self.int(2);
            return self.mul(two, a);
        }
        if let Some(m) = self.negated_term(b) {
            return self.sub(a, m);
        }
        if let Some(m) = self.negated_term(a) {
            return self.sub(b, m);
        }
        // Constants last; otherwise the order written, which keeps output readable (the
        // simplifier, not construction, deals with commutativity).
        let (a, b) = if self.as_num(a).is_some() {
            (b, a)
        } else {
            (a, b)
        };
        self.intern(Op::Add([a, b]))
    }

    /// `a - b`.
    pub fn sub(&mut self, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.as_num(a), self.as_num(b)) {
            return self.num(x - y);
        }
        if a == b {
            return self.int(0);
        }
        if self.get(b).is_zero() {
            return a;
        }
        if self.get(a).is_zero() {
            return self.neg(b);
        }
        if let Some(m) = self.negated_term(b) {
            return self.add(a, m);
        }
        self.intern(Op::Sub([a, b]))
    }

    /// For a term that is "minus something" (`-x`, a negative constant `-c`, or `-c * x`),
    /// the something; used to turn `a + (-m)` into `a - m`.
    fn negated_term(&mut self, t: Id) -> Option<Id> {
        match *self.get(t) {
            Op::Neg(x) => Some(x),
            Op::Num(ref r) if r.value().is_negative() => {
                let m = -r.value().clone();
                Some(self.num(m))
            }
            Op::Mul([c, x]) if self.get(c).is_negative_num() => {
                let m = -self.as_num(c).unwrap().clone();
                let m = self.num(m);
                Some(self.mul(m, x))
            }
            _ => None,
        }
    }

    /// `-a`.
    pub fn neg(&mut self, a: Id) -> Id {
        match self.get(a) {
            Op::Num(r) => {
                let r = -r.0.clone();
                self.num(r)
            }
            Op::Neg(x) => *x,
            &Op::Sub([x, y]) => self.sub(y, x),
            _ => self.intern(Op::Neg(a)),
        }
    }

    /// `a * b`.
    pub fn mul(&mut self, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.as_num(a), self.as_num(b)) {
            return self.num(x * y);
        }
        // Constants first, otherwise operands in id order, so that a*b and b*a are one node.
        let (a, b) = if self.as_num(b).is_some() || (self.as_num(a).is_none() && b < a) {
            (b, a)
        } else {
            (a, b)
        };
        if let Some(c) = self.as_num(a) {
            if c.is_zero() {
                return a;
            }
            if c.is_one() {
                return b;
            }
            if (-c).is_one() {
                return self.neg(b);
            }
            // c1 * (c2 * x) = (c1 c2) * x
            if let Op::Mul([p, q]) = *self.get(b) {
                if let Some(d) = self.as_num(p) {
                    let cd = c * d;
                    let cd = self.num(cd);
                    return self.mul(cd, q);
                }
            }
        }
        if let Op::Neg(x) = *self.get(a) {
            let m = self.mul(x, b);
            return self.neg(m);
        }
        if let Op::Neg(y) = *self.get(b) {
            let m = self.mul(a, y);
            return self.neg(m);
        }
        self.intern(Op::Mul([a, b]))
    }

    /// `a / b`. Division by the constant 0 is kept as a node (the numeric layer reports it).
    pub fn div(&mut self, a: Id, b: Id) -> Id {
        if let (Some(x), Some(y)) = (self.as_num(a), self.as_num(b)) {
            if !y.is_zero() {
                return self.num(x / y);
            }
        }
        if let Some(y) = self.as_num(b) {
            if y.is_one() {
                return a;
            }
        }
        if a == b && self.as_num(b).is_none() {
            return self.int(1);
        }
        if self.get(a).is_zero() && !self.get(b).is_zero() {
            return a;
        }
        if let Op::Neg(x) = *self.get(a) {
            let d = self.div(x, b);
            return self.neg(d);
        }
        // (x / c1) / c2 = x / (c1 c2)
        if let (Op::Div([x, c1]), Some(c2)) = (self.get(a).clone(), self.as_num(b)) {
            if let Some(c1) = self.as_num(c1) {
                let c = c1 * c2;
                let c = self.num(c);
                return self.div(x, c);
            }
        }
        self.intern(Op::Div([a, b]))
    }

    /// `a ^ b`.
    pub fn pow(&mut self, a: Id, b: Id) -> Id {
        if let Some(e) = self.as_num(b) {
            if e.is_zero() {
                return self.int(1);
            }
            if e.is_one() {
                return a;
            }
            if let Some(base) = self.as_num(a) {
                if let Some(r) = pow_rational(base, e) {
                    return self.num(r);
                }
            }
        }
        self.intern(Op::Pow([a, b]))
    }

    /// `a ^ n` for an integer `n`.
    pub fn powi(&mut self, a: Id, n: i64) -> Id {
        let n = self.int(n);
        self.pow(a, n)
    }

    /// `f(a)`, folding the values known exactly at 0 (`exp(0) = 1`, `tanh(0) = 0`, ...).
    pub fn call(&mut self, f: Func, a: Id) -> Id {
        if self.get(a).is_zero() {
            let v = match f {
                Func::Exp | Func::Cos => Some(1),
                Func::Sqrt | Func::Sin | Func::Tan | Func::Tanh | Func::Log1p => Some(0),
                _ => None,
            };
            if let Some(v) = v {
                return self.int(v);
            }
            if f == Func::Sigmoid {
                return self.num(BigRational::new(1.into(), 2.into()));
            }
        }
        if f == Func::Log && self.get(a).is_one() {
            return self.int(0);
        }
        self.intern(Op::Call(f, [a]))
    }

    /// Sum of many terms, left to right (0 for none).
    pub fn sum(&mut self, terms: impl IntoIterator<Item = Id>) -> Id {
        let mut acc: Option<Id> = None;
        for t in terms {
            acc = Some(match acc {
                None => t,
                Some(s) => self.add(s, t),
            });
        }
        acc.unwrap_or_else(|| self.int(0))
    }

    /// Product of many factors, left to right (1 for none).
    pub fn product(&mut self, factors: impl IntoIterator<Item = Id>) -> Id {
        let mut acc: Option<Id> = None;
        for t in factors {
            acc = Some(match acc {
                None => t,
                Some(s) => self.mul(s, t),
            });
        }
        acc.unwrap_or_else(|| self.int(1))
    }

    /// The nodes that `roots` depend on (roots included), in increasing id order, which is a
    /// topological order. Iterative, so arbitrarily deep graphs are fine.
    pub fn cone(&self, roots: &[Id]) -> Vec<Id> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<Id> = roots.to_vec();
        while let Some(id) = stack.pop() {
            let i = usize::from(id);
            if seen[i] {
                continue;
            }
            seen[i] = true;
            stack.extend(egg::Language::children(self.get(id)).iter().copied());
        }
        (0..self.nodes.len())
            .filter(|&i| seen[i])
            .map(Id::from)
            .collect()
    }

    /// The operation count of the shared straight-line program computing `roots`: every
    /// non-leaf node of their cone counts one (an n-term sum built from binary additions counts
    /// n−1; a power, a negation, a function call each count one).
    ///
    /// ```
    /// use eomderive::expr::{Graph, VarId, Func};
    /// let mut g = Graph::new();
    /// let (u, v) = (g.var(VarId(0)), g.var(VarId(1)));
    /// let uv = g.mul(u, v);
    /// let t = g.call(Func::Tanh, uv);
    /// let s = g.add(t, uv);
    /// assert_eq!(g.op_count(&[s, t]), 3); // u*v shared, tanh, +
    /// ```
    pub fn op_count(&self, roots: &[Id]) -> usize {
        self.cone(roots)
            .into_iter()
            .filter(|&id| !egg::Language::is_leaf(self.get(id)))
            .count()
    }

    /// Replaces variables by expressions (`subst[v]` for `Var(v)` where present), rebuilding
    /// the cone of `roots` through the smart constructors. `memo` caches results per node for
    /// one substitution and may be reused across calls with the same substitution.
    pub fn substitute(
        &mut self,
        roots: &[Id],
        subst: &HashMap<VarId, Id>,
        memo: &mut HashMap<Id, Id>,
    ) -> Vec<Id> {
        for id in self.cone(roots) {
            if memo.contains_key(&id) {
                continue;
            }
            let op = self.get(id).clone();
            let new = match op {
                Op::Var(v) => subst.get(&v).copied().unwrap_or(id),
                Op::Num(_) => id,
                mut op => {
                    let mut changed = false;
                    for c in egg::Language::children_mut(&mut op) {
                        let n = memo[c];
                        changed |= n != *c;
                        *c = n;
                    }
                    // A node none of whose children changed is itself: no lookup.
                    if changed {
                        self.add_op(op)
                    } else {
                        id
                    }
                }
            };
            memo.insert(id, new);
        }
        roots.iter().map(|r| memo[r]).collect()
    }

    /// The cone of `roots` as a standalone egg `RecExpr` and the positions of the roots in it.
    pub fn to_rec_expr(&self, roots: &[Id]) -> (egg::RecExpr<Op>, Vec<Id>) {
        let cone = self.cone(roots);
        let mut index = HashMap::with_capacity_and_hasher(cone.len(), Default::default());
        let mut rec = egg::RecExpr::default();
        for id in cone {
            let mut op = self.get(id).clone();
            for c in egg::Language::children_mut(&mut op) {
                *c = index[c];
            }
            index.insert(id, rec.add(op));
        }
        let roots = roots.iter().map(|r| index[r]).collect();
        (rec, roots)
    }
}

/// `base ^ e` when it is rational and small: an integer exponent of modest size.
fn pow_rational(base: &BigRational, e: &BigRational) -> Option<BigRational> {
    if !e.is_integer() {
        return None;
    }
    let n = e.to_integer();
    let k = n.abs().to_u32().filter(|&k| k <= MAX_FOLDED_EXPONENT)?;
    if base.is_zero() && n.is_negative() {
        return None;
    }
    let p = num_traits::pow(base.clone(), k as usize);
    Some(if n.is_negative() { p.recip() } else { p })
}
