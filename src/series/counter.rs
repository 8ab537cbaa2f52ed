//! The counter-term recursion: exact tree coefficients of `ξ_1, …, ξ_order`.
//!
//! # Method
//!
//! The defining recursion (see the module docs of [`crate::series`]) sums
//! nested Lie derivatives over compositions and costs far too much at high
//! order. This module computes the same numbers from an equivalent
//! characterisation that needs one small pass per tree.
//!
//! Write the `i`-th gradient-descent iterate as a formal series
//! `θ_i = θ + Σ_τ η^{|τ|} c_τ(i) G(τ)`. From `θ_{i+1} = θ_i − η g(θ_i)` and
//! the Taylor expansion of `g` around `θ`, a tree `τ = [τ_1 … τ_m]` gets
//! `c_τ(i+1) = c_τ(i) − Π_k c_{τ_k}(i) / Π μ!` (`μ` = multiplicities of
//! equal children), `c_τ(0) = 0`; the leaf gets `c_•(i) = −i`.
//!
//! The time-`tη` flow of the modified field `F` has coefficients that are
//! polynomials `c_τ(t)` of degree `≤ |τ|` in `t` (the coefficient of `η^n`
//! in `Σ_j (tη)^j/j! (L_F)^{j−1} F`). At integer `t = i` that flow is
//! `i` steps of gradient descent, so these polynomials take the values above,
//! and `d/dt` at `t = 0` gives `η F`. Hence the coefficient of `G(τ)` in
//! `ξ_{|τ|−1} = −F_{|τ|−1}` is `−c_τ'(0)`, and the derivative at `0` of the
//! interpolant through `t = 0, …, n` (with `c_τ(0) = 0`, `n = |τ|`) is
//! `Σ_{i=1}^{n} (−1)^{i+1} C(n,i)/i · c_τ(i)`.
//!
//! Scaling by the symmetry factor `s(τ) = Π_k s(τ_k) · Π μ!` makes
//! everything integral: `C_τ = s(τ) c_τ` obeys
//! `C_τ(i+1) = C_τ(i) − Π_k C_{τ_k}(i)` with `C_•(i) = −i`.
//! The tests check this against a direct transcription of the Lie-derivative
//! recursion.

use std::fmt;

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Zero};

use super::tree::{Forest, TreeId};

/// Largest supported order (`ξ_16`, trees with 17 nodes).
///
/// Why 16: the integer recursion runs in `i128`, and for trees with
/// `n ≤ 17` nodes every intermediate value is provably small enough
/// (`|C_τ(i)| ≤ i^{|τ|} ≤ 17^17 < 2^70`; the weighted sum is below `2^114`).
/// Beyond that, cost is the limit: the number of trees grows about 2.7-fold
/// per order (634 847 trees with 17 nodes), and order 16 already takes
/// about 3.5 s and 0.7 GB in release mode (order 13: about 0.1 s).
pub const MAX_ORDER: usize = 16;

/// Why [`counter_terms`] refused an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeriesError {
    /// Order 0 was requested; the counter terms start at `ξ_1`.
    ZeroOrder,
    /// The requested order exceeds [`MAX_ORDER`].
    OrderTooLarge {
        /// The order that was asked for.
        requested: usize,
        /// The largest order of this route ([`MAX_ORDER`] for GD).
        limit: usize,
        /// The limit's name (`MAX_ORDER`).
        name: &'static str,
    },
}

impl fmt::Display for SeriesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeriesError::ZeroOrder => write!(
                f,
                "order 0 is invalid: counter terms start at xi_1 (order must be 1..={MAX_ORDER})"
            ),
            SeriesError::OrderTooLarge {
                requested,
                limit,
                name,
            } => write!(
                f,
                "order {requested} exceeds the limit {name} = {limit} (order must be 1..={limit})"
            ),
        }
    }
}

impl std::error::Error for SeriesError {}

/// The counter terms `ξ_1, …, ξ_order` as exact combinations of trees.
#[derive(Clone, Debug)]
pub struct GenericSeries {
    /// Arena holding every tree that appears in `xi`.
    pub forest: Forest,
    /// c in the leading term F_0 = −c g: 1 for GD, 1/(1 − β) for the momentum methods.
    pub leading: BigRational,
    /// `xi[k-1]` lists the terms of `ξ_k` (trees with `k+1` nodes) with
    /// their coefficients, zero coefficients dropped, in canonical order.
    pub xi: Vec<Vec<(TreeId, BigRational)>>,
}

/// Computes `ξ_1, …, ξ_order` for gradient descent `θ ← θ − η ∇f(θ)`.
///
/// Errors for `order == 0` or `order > MAX_ORDER`.
///
/// ```
/// use eomderive::series::counter_terms;
/// use num_rational::BigRational;
///
/// let s = counter_terms(2).unwrap();
/// let (tree, coeff) = &s.xi[0][0];
/// assert_eq!(s.forest.bracket(*tree), "[•]"); // ξ_1 = ½ H g
/// assert_eq!(*coeff, BigRational::new(1.into(), 2.into()));
/// let xi2: Vec<String> = s.xi[1].iter().map(|(t, _)| s.forest.bracket(*t)).collect();
/// assert_eq!(xi2, ["[••]", "[[•]]"]); // (1/12) T(g,g) + (1/3) H H g
/// ```
pub fn counter_terms(order: usize) -> Result<GenericSeries, SeriesError> {
    if order == 0 {
        return Err(SeriesError::ZeroOrder);
    }
    if order > MAX_ORDER {
        return Err(SeriesError::OrderTooLarge {
            requested: order,
            limit: MAX_ORDER,
            name: "MAX_ORDER",
        });
    }
    let max_nodes = order + 1;
    let mut forest = Forest::new();
    let levels: Vec<Vec<TreeId>> = (1..=max_nodes).map(|n| forest.trees_of_order(n)).collect();

    // Per tree: symmetry factor and scaled iterate coefficients C_τ(0..=max_nodes).
    // Children are interned before parents, so index order is topological.
    let mut sym = vec![0i128; forest.len()];
    let mut values: Vec<Vec<i128>> = vec![Vec::new(); forest.len()];
    for t in levels.iter().flatten().copied() {
        let children = forest.children(t);
        let mut s = 1i128;
        let mut run = 0i128;
        for (k, &c) in children.iter().enumerate() {
            run = if k > 0 && children[k - 1] == c {
                run + 1
            } else {
                1
            };
            s = checked(s.checked_mul(sym[c.index()] * run));
        }
        let mut v = vec![0i128; max_nodes + 1];
        for i in 0..max_nodes {
            let product = children
                .iter()
                .fold(1i128, |p, &c| checked(p.checked_mul(values[c.index()][i])));
            v[i + 1] = checked(v[i].checked_sub(product));
        }
        sym[t.index()] = s;
        values[t.index()] = v;
    }

    let xi = levels[1..]
        .iter()
        .map(|level| {
            level
                .iter()
                .map(|&t| {
                    (
                        t,
                        coefficient(forest.size(t), sym[t.index()], &values[t.index()]),
                    )
                })
                .filter(|(_, c)| !c.is_zero())
                .collect()
        })
        .collect();
    Ok(GenericSeries {
        forest,
        leading: BigRational::one(),
        xi,
    })
}

/// `−c_τ'(0)` for a tree with `n` nodes, symmetry factor `sym` and scaled
/// iterate coefficients `values` (see the module docs).
fn coefficient(n: usize, sym: i128, values: &[i128]) -> BigRational {
    let l = (1..=n as i128).fold(1i128, |l, i| l.lcm(&i));
    let mut sum = 0i128;
    let mut binom = 1i128; // C(n, i), updated incrementally
    for (i, &c) in values.iter().enumerate().take(n + 1).skip(1) {
        let i = i as i128;
        binom = binom * (n as i128 - i + 1) / i;
        let term = checked((l / i * binom).checked_mul(c));
        sum = if i % 2 == 1 { sum + term } else { sum - term };
    }
    BigRational::new(BigInt::from(-sum), BigInt::from(l * sym))
}

fn checked(x: Option<i128>) -> i128 {
    x.expect("i128 overflow: impossible for orders up to MAX_ORDER")
}
