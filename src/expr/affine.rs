//! The affine normal form: every subexpression that is affine in the parameters with exact
//! coefficients (Σ c_j θ_j + c_0) is rebuilt in that expanded form, so affine chains such as
//! the Hessian of a quadratic applied through the data collapse to a few operations. Used
//! only when the whole program gets smaller.

use crate::hash::HashMap;

use num_rational::{BigRational, Ratio};
use num_traits::{CheckedAdd, CheckedMul, CheckedSub, One, ToPrimitive, Zero};

use super::{Graph, Id, Op, VarId};

/// Most parameters an affine form may involve before it is left as it is.
const MAX_TERMS: usize = 64;

/// Coefficients are 64-bit rationals with checked arithmetic (fast, no allocation); a form
/// whose coefficients would overflow is simply not treated as affine.
type Q = Ratio<i64>;

#[derive(Clone, Debug, PartialEq)]
struct Affine {
    /// (parameter, coefficient), sorted by parameter, no zero coefficients.
    terms: Vec<(u32, Q)>,
    constant: Q,
}

impl Affine {
    fn constant(c: Q) -> Affine {
        Affine {
            terms: Vec::new(),
            constant: c,
        }
    }

    fn scale(&self, c: &Q) -> Option<Affine> {
        if c.is_zero() {
            return Some(Affine::constant(Q::zero()));
        }
        Some(Affine {
            terms: self
                .terms
                .iter()
                .map(|(v, x)| x.checked_mul(c).map(|y| (*v, y)))
                .collect::<Option<_>>()?,
            constant: self.constant.checked_mul(c)?,
        })
    }

    /// self + sign · other, for sign ±1.
    fn plus(&self, other: &Affine, negate: bool) -> Option<Affine> {
        let sign = |x: &Q| {
            if negate {
                Q::zero().checked_sub(x)
            } else {
                Some(*x)
            }
        };
        let (a, b) = (&self.terms, &other.terms);
        let mut terms = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            if j == b.len() || (i < a.len() && a[i].0 < b[j].0) {
                terms.push(a[i]);
                i += 1;
            } else if i == a.len() || b[j].0 < a[i].0 {
                terms.push((b[j].0, sign(&b[j].1)?));
                j += 1;
            } else {
                let c = a[i].1.checked_add(&sign(&b[j].1)?)?;
                if !c.is_zero() {
                    terms.push((a[i].0, c));
                }
                i += 1;
                j += 1;
            }
        }
        (terms.len() <= MAX_TERMS).then_some(())?;
        Some(Affine {
            terms,
            constant: self.constant.checked_add(&sign(&other.constant)?)?,
        })
    }

    fn as_constant(&self) -> Option<&Q> {
        self.terms.is_empty().then_some(&self.constant)
    }
}

fn small(r: &BigRational) -> Option<Q> {
    Some(Q::new(r.numer().to_i64()?, r.denom().to_i64()?))
}

fn big(q: &Q) -> BigRational {
    BigRational::new((*q.numer()).into(), (*q.denom()).into())
}

/// Rewrites `roots` with their affine subexpressions in expanded form; returns the new roots
/// if that makes the program smaller, otherwise the roots unchanged.
///
/// ```
/// use eomderive::expr::{affine_collapse, Graph, VarId};
/// let mut g = Graph::new();
/// let (u, v) = (g.var(VarId(0)), g.var(VarId(1)));
/// let three = g.int(3);
/// let a = g.add(u, v);       // u + v
/// let b = g.sub(a, v);       // (u + v) - v = u
/// let c = g.mul(three, b);   // 3u
/// let roots = affine_collapse(&mut g, &[c], 2);
/// assert_eq!(g.op_count(&roots), 1);
/// ```
pub fn affine_collapse(graph: &mut Graph, roots: &[Id], n_params: usize) -> Vec<Id> {
    let new_roots = affine_rebuild(graph, roots, n_params);
    if new_roots != roots && graph.op_count(&new_roots) < graph.op_count(roots) {
        new_roots
    } else {
        roots.to_vec()
    }
}

/// `roots` rebuilt with their affine subexpressions in expanded form, whether or not the
/// program gets smaller (the roots themselves when no affine part pays to expand). Deciding
/// whether many expressions are zero takes one call, not one each.
pub(crate) fn affine_rebuild(graph: &mut Graph, roots: &[Id], n_params: usize) -> Vec<Id> {
    let cone = graph.cone(roots);
    let mut forms: HashMap<Id, Affine> = HashMap::default();
    for &id in &cone {
        let f = |i: &Id| forms.get(i);
        let form = match graph.get(id) {
            Op::Num(r) => small(r.value()).map(Affine::constant),
            Op::Var(VarId(v)) if (*v as usize) < n_params => Some(Affine {
                terms: vec![(*v, Q::one())],
                constant: Q::zero(),
            }),
            Op::Add([a, b]) => f(a).zip(f(b)).and_then(|(x, y)| x.plus(y, false)),
            Op::Sub([a, b]) => f(a).zip(f(b)).and_then(|(x, y)| x.plus(y, true)),
            Op::Neg(a) => f(a).and_then(|x| x.scale(&Q::new(-1, 1))),
            Op::Mul([a, b]) => match (f(a), f(b)) {
                (Some(x), Some(y)) => match (x.as_constant(), y.as_constant()) {
                    (Some(c), _) => y.scale(c),
                    (_, Some(c)) => x.scale(c),
                    _ => None,
                },
                _ => None,
            },
            Op::Div([a, b]) => match (f(a), f(b).and_then(Affine::as_constant)) {
                (Some(x), Some(c)) if !c.is_zero() => x.scale(&c.recip()),
                _ => None,
            },
            _ => None,
        };
        if let Some(form) = form {
            forms.insert(id, form);
        }
    }
    // Only the outermost affine nodes are expanded: mark what the rebuilt program needs,
    // from the roots down, stopping at affine nodes.
    let mut needed: crate::hash::HashSet<Id> = roots.iter().copied().collect();
    for &id in cone.iter().rev() {
        if needed.contains(&id) && !forms.contains_key(&id) {
            needed.extend(egg::Language::children(graph.get(id)).iter().copied());
        }
    }
    // An affine node pays to expand only when written out as a tree it is larger than its
    // expanded form; when none does, the rebuild would give back the same program.
    let mut tree: HashMap<Id, usize> = HashMap::default();
    let mut pays = false;
    for &id in &cone {
        if !forms.contains_key(&id) {
            continue;
        }
        let op = graph.get(id);
        let size = egg::Language::children(op)
            .iter()
            .fold(usize::from(!egg::Language::is_leaf(op)), |s, c| {
                s.saturating_add(tree.get(c).copied().unwrap_or(0))
            });
        tree.insert(id, size);
        let form = &forms[&id];
        let expanded = 2 * form.terms.len() + usize::from(!form.constant.is_zero());
        pays |= needed.contains(&id) && size > expanded;
    }
    if !pays {
        return roots.to_vec();
    }
    let mut memo: HashMap<Id, Id> = HashMap::default();
    for &id in &cone {
        if !needed.contains(&id) {
            continue;
        }
        let new = match (forms.get(&id), graph.get(id).clone()) {
            (Some(form), op) if !egg::Language::is_leaf(&op) => expand(graph, form),
            (_, mut op) => {
                let mut changed = false;
                for c in egg::Language::children_mut(&mut op) {
                    let n = memo[c];
                    changed |= n != *c;
                    *c = n;
                }
                if changed {
                    graph.add_op(op)
                } else {
                    id
                }
            }
        };
        memo.insert(id, new);
    }
    roots.iter().map(|r| memo[r]).collect()
}

/// Σ c_j θ_j + c_0, terms in parameter order, built through the smart constructors.
fn expand(graph: &mut Graph, form: &Affine) -> Id {
    let mut terms = Vec::with_capacity(form.terms.len() + 1);
    for (v, c) in &form.terms {
        let x = graph.var(VarId(*v));
        let c = graph.num(big(c));
        terms.push(graph.mul(c, x));
    }
    let c0 = graph.num(big(&form.constant));
    terms.push(c0);
    graph.sum(terms)
}
