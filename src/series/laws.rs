//! Conservation laws of invariant losses, derived on trees (DESIGN.md §2.3).
//!
//! A loss f invariant under scaling of a parameter group A (f(cθ_A) = f(θ) for c > 0) obeys
//! θ_A·g = 0 identically; differentiating that m times gives
//! ∇^{m+1}f(θ_A, v_1, …, v_m) = −Σ_i ∇^m f(v_1, …, P_A v_i, …, v_m), with P_A the projection on
//! A. Invariance under translation along 1_A gives ∇^{m+1}f(1_A, …) = 0 for every m. With
//! weight decay, GD trains F = f + (λ/2)‖θ‖², whose derivatives are ∇F = g + λθ, ∇²F = H + λI
//! and ∇^m F = ∇^m f beyond.
//!
//! [`invariance_law`] expands θ_A·ξ_k (or 1_A·ξ_k) for each tree of the counter terms of F,
//! reduces every contraction with θ_A (or 1_A) by these identities until none is left, and
//! collects what remains: d‖θ_A‖²/dt (or d(1_A·θ)/dt) along the equation of motion as a series
//! in η whose coefficients are polynomials in λ times scalars such as ‖g_A‖² or g_Aᵀ H g.
//! Nothing here knows the answer in advance; the tests compare it with §2.3 and with numbers.

use std::collections::BTreeMap;

use num_rational::BigRational;
use num_traits::{One, Zero};

use super::{Forest, GenericSeries, TreeId};

/// The invariance whose law is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// f(cθ_A) = f(θ); the conserved (or not) quantity is ‖θ_A‖². `whole`: A is every
    /// parameter (then P_A = I and θ_A = θ, which reduces more).
    Scale {
        /// A holds every parameter.
        whole: bool,
    },
    /// f(θ + c 1_A) = f(θ); the quantity is 1_A·θ.
    Translation,
}

/// A vector built from the loss's derivatives: θ itself, or ∇^m g = ∇^{m+1} f applied to m
/// vectors (`D(vec![])` is g). Children are sorted, so equal vectors are equal values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Vector {
    /// θ (from the weight-decay part λθ of ∇F).
    Theta,
    /// ∇^m g(children).
    D(Vec<Vector>),
}

/// A scalar the laws are written in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scalar {
    /// ‖θ_A‖².
    NormSq,
    /// 1_A·θ.
    Sum,
    /// aᵀ P_A b (a ≤ b): e.g. ‖g_A‖² = (g, g), g_Aᵀ H g = (g, H g).
    Pair(Vector, Vector),
}

/// A polynomial in η and λ: exponents (of η, of λ) → coefficient.
pub type Poly = BTreeMap<(u32, u32), BigRational>;

/// A quantity's law as Σ (polynomial in η, λ) · scalar, scalars in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Law {
    /// The terms, each scalar once, zero coefficients left out.
    pub terms: BTreeMap<Scalar, Poly>,
}

impl Law {
    fn add(&mut self, s: Scalar, eta: u32, lambda: u32, c: BigRational) {
        let poly = self.terms.entry(s.clone()).or_default();
        let entry = poly.entry((eta, lambda)).or_insert_with(BigRational::zero);
        *entry += c;
        if entry.is_zero() {
            poly.remove(&(eta, lambda));
            if poly.is_empty() {
                self.terms.remove(&s);
            }
        }
    }

    /// The terms with η to the power `k`, as (scalar, polynomial in λ by power).
    pub fn at_order(&self, k: u32) -> Vec<(Scalar, BTreeMap<u32, BigRational>)> {
        self.terms
            .iter()
            .filter_map(|(s, p)| {
                let lam: BTreeMap<u32, BigRational> = p
                    .iter()
                    .filter(|((e, _), _)| *e == k)
                    .map(|((_, l), c)| (*l, c.clone()))
                    .collect();
                (!lam.is_empty()).then(|| (s.clone(), lam))
            })
            .collect()
    }

    /// True when nothing is left: the quantity is conserved.
    pub fn is_zero(&self) -> bool {
        self.terms.is_empty()
    }
}

/// d q/dt along the equation of motion truncated after ξ_K (K = `series.xi.len()`), with
/// q = ‖θ_A‖² for [`Probe::Scale`] and q = 1_A·θ for [`Probe::Translation`]; the η^0 part is
/// gradient flow's. `weight_decay`: the loss is f + (λ/2)‖θ‖² with f invariant.
///
/// ```
/// use eomderive::series::{invariance_law, Probe, Scalar, Vector};
/// let mut s = eomderive::generic(2).unwrap();
/// let law = invariance_law(&mut s, Probe::Scale { whole: false }, false);
/// let g = Vector::D(vec![]);
/// let hg = Vector::D(vec![g.clone()]);
/// // d‖θ_A‖²/dt = η ‖g_A‖² + η² g_Aᵀ H g (+ O(η³)); gradient flow conserves it.
/// assert!(law.at_order(0).is_empty());
/// assert_eq!(law.at_order(1)[0].0, Scalar::Pair(g.clone(), g.clone()));
/// assert_eq!(law.at_order(2)[0].0, Scalar::Pair(g, hg));
/// assert_eq!(law.at_order(2)[0].1[&0].to_string(), "1");
/// ```
pub fn invariance_law(series: &mut GenericSeries, probe: Probe, weight_decay: bool) -> Law {
    let mut law = Law::default();
    // dq/dt = factor · p·(∇F + η ξ_1 + …), p = θ_A or 1_A.
    let factor = BigRational::from_integer(match probe {
        Probe::Scale { .. } => (-2).into(),
        Probe::Translation => (-1).into(),
    });
    let leaf = series.forest.leaf();
    let mut orders: Vec<Vec<(TreeId, BigRational)>> = vec![vec![(leaf, series.leading.clone())]];
    orders.extend(series.xi.iter().cloned());
    for (k, terms) in orders.iter().enumerate() {
        for (tree, c) in terms {
            for (lambda, v) in expand(&series.forest, *tree, weight_decay) {
                for (s, r) in reduce(probe, &v) {
                    law.add(s, k as u32, lambda, factor.clone() * c * r);
                }
            }
        }
    }
    law
}

/// One GD step on F: q_{n+1} in terms of the iterate n (the scalars at θ_n).
///
/// ```
/// use eomderive::series::{gd_step_law, Probe, Scalar};
/// // ‖θ_{A,n+1}‖² = (1 − ηλ)²‖θ_{A,n}‖² + η²‖g_{A,n}‖²
/// let law = gd_step_law(Probe::Scale { whole: false }, true);
/// let norm = &law.terms[&Scalar::NormSq];
/// assert_eq!(norm.len(), 3); // 1 − 2ηλ + η²λ²
/// assert_eq!(law.terms.len(), 2);
/// ```
pub fn gd_step_law(probe: Probe, weight_decay: bool) -> Law {
    let mut law = Law::default();
    let one = BigRational::one();
    let g = Vector::D(Vec::new());
    // θ_{n+1} = (1 − ηλ) θ − η g: coefficient (η power, λ power, value) of each vector.
    let mut parts = vec![(0, 0, one.clone(), Vector::Theta), (1, 0, -one.clone(), g)];
    if weight_decay {
        parts.push((1, 1, -one.clone(), Vector::Theta));
    }
    match probe {
        Probe::Translation => {
            for (e, l, c, v) in &parts {
                for (s, r) in reduce(probe, v) {
                    law.add(s, *e, *l, c * r);
                }
            }
        }
        Probe::Scale { .. } => {
            // ‖P_A θ'‖² = Σ_{a,b} c_a c_b v_aᵀ P_A v_b.
            for (e1, l1, c1, v1) in &parts {
                for (e2, l2, c2, v2) in &parts {
                    for (s, r) in pair(probe, v1.clone(), v2.clone()) {
                        law.add(s, e1 + e2, l1 + l2, c1 * c2 * r);
                    }
                }
            }
        }
    }
    law
}

/// G_F(τ) for F = f + (λ/2)‖θ‖², expanded: (power of λ, vector) pairs. A leaf is g or λθ, a
/// node with one child is H c or λ c, larger nodes are unchanged.
fn expand(forest: &Forest, tree: TreeId, weight_decay: bool) -> Vec<(u32, Vector)> {
    let children: Vec<Vec<(u32, Vector)>> = forest
        .children(tree)
        .iter()
        .map(|&c| expand(forest, c, weight_decay))
        .collect();
    let mut combos: Vec<(u32, Vec<Vector>)> = vec![(0, Vec::new())];
    for options in &children {
        combos = combos
            .iter()
            .flat_map(|(p, vs)| {
                options.iter().map(move |(q, v)| {
                    let mut vs = vs.clone();
                    vs.push(v.clone());
                    (p + q, vs)
                })
            })
            .collect();
    }
    let mut out = Vec::new();
    for (p, mut vs) in combos {
        if weight_decay && vs.len() <= 1 {
            // λθ for a leaf, λ c for a node with one child.
            out.push((p + 1, vs.first().cloned().unwrap_or(Vector::Theta)));
        }
        vs.sort();
        out.push((p, Vector::D(vs)));
    }
    out
}

/// p·v with every contraction against p reduced, as Σ coefficient · scalar.
fn reduce(probe: Probe, v: &Vector) -> Vec<(Scalar, BigRational)> {
    match (probe, v) {
        (Probe::Scale { .. }, Vector::Theta) => vec![(Scalar::NormSq, BigRational::one())],
        (Probe::Translation, Vector::Theta) => vec![(Scalar::Sum, BigRational::one())],
        // 1_A·∇^m g(…) = ∇^{m+1} f(1_A, …) = 0; θ_A·g = 0.
        (Probe::Translation, Vector::D(_)) => Vec::new(),
        (Probe::Scale { .. }, Vector::D(_)) => {
            let (c, v) = normalize(probe, v.clone());
            let Vector::D(children) = v else {
                return vec![(Scalar::NormSq, c)];
            };
            // θ_A·∇^m g(c_1..c_m) = −Σ_i ∇^m f(c_1, …, P_A c_i, …, c_m)
            //                     = −Σ_i ∇^{m−1} g(others)ᵀ P_A c_i.
            let mut out = Vec::new();
            for i in 0..children.len() {
                let mut others = children.clone();
                let ci = others.remove(i);
                for (s, r) in pair(probe, Vector::D(others), ci) {
                    out.push((s, -(c.clone() * r)));
                }
            }
            out
        }
    }
}

/// aᵀ P_A b, reduced when either side is θ (θᵀ P_A b = θ_A·b).
fn pair(probe: Probe, a: Vector, b: Vector) -> Vec<(Scalar, BigRational)> {
    match (&a, &b) {
        (Vector::Theta, Vector::Theta) => match probe {
            Probe::Scale { .. } => vec![(Scalar::NormSq, BigRational::one())],
            Probe::Translation => unreachable!("translation laws have no projections"),
        },
        (Vector::Theta, other) | (other, Vector::Theta) => reduce(probe, other),
        _ => {
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            vec![(Scalar::Pair(a, b), BigRational::one())]
        }
    }
}

/// With A every parameter (θ = θ_A), θ inside a derivative reduces too:
/// ∇^m g(θ, c_2, …, c_m) = −m ∇^{m−1} g(c_2, …, c_m). Returns (coefficient, vector).
fn normalize(probe: Probe, v: Vector) -> (BigRational, Vector) {
    let (Probe::Scale { whole: true }, Vector::D(children)) = (probe, &v) else {
        return (BigRational::one(), v);
    };
    let mut c = BigRational::one();
    let mut kept = Vec::new();
    let mut thetas = 0usize;
    for child in children {
        let (cc, child) = normalize(probe, child.clone());
        c *= cc;
        if child == Vector::Theta {
            thetas += 1;
        } else {
            kept.push(child);
        }
    }
    // Each θ removed from a node with m arguments contributes −m.
    for removed in 0..thetas {
        let m = kept.len() + thetas - removed;
        c *= BigRational::from_integer((-(m as i64)).into());
    }
    kept.sort();
    (c, Vector::D(kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    fn g() -> Vector {
        Vector::D(Vec::new())
    }

    #[test]
    fn scale_with_weight_decay_matches_design() {
        // DESIGN.md §2.3: d‖θ_A‖²/dt = −(2λ + ηλ²)‖θ_A‖² + η‖g_A‖² + O(η²).
        for whole in [false, true] {
            let mut s = crate::generic(1).unwrap();
            let law = invariance_law(&mut s, Probe::Scale { whole }, true);
            let norm = &law.terms[&Scalar::NormSq];
            assert_eq!(norm[&(0, 1)], r(-2, 1));
            assert_eq!(norm[&(1, 2)], r(-1, 1));
            assert_eq!(norm.len(), 2, "{norm:?}");
            assert_eq!(law.terms[&Scalar::Pair(g(), g())][&(1, 0)], r(1, 1));
        }
    }

    #[test]
    fn translation_sums_to_the_log_series() {
        let mut s = crate::generic(5).unwrap();
        let law = invariance_law(&mut s, Probe::Translation, true);
        assert_eq!(law.terms.len(), 1);
        let sum = &law.terms[&Scalar::Sum];
        for k in 0..=5u32 {
            assert_eq!(sum[&(k, k + 1)], r(-1, k as i64 + 1), "η^{k}");
        }
        let mut s = crate::generic(5).unwrap();
        assert!(invariance_law(&mut s, Probe::Translation, false).is_zero());
    }

    #[test]
    fn gd_step_without_decay() {
        let law = gd_step_law(Probe::Scale { whole: true }, false);
        assert_eq!(law.terms[&Scalar::NormSq][&(0, 0)], r(1, 1));
        assert_eq!(law.terms[&Scalar::Pair(g(), g())][&(2, 0)], r(1, 1));
        assert_eq!(law.terms.len(), 2);
        let law = gd_step_law(Probe::Translation, true);
        assert_eq!(law.terms[&Scalar::Sum].len(), 2); // (1 − ηλ)
    }
}
