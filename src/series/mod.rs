//! Generic (tree) form of the equation-of-motion counter terms of gradient
//! descent.
//!
//! Gradient descent `θ ← θ − η g(θ)`, `g = ∇f`, follows to all orders the
//! modified flow `dθ/dt = F(θ) = Σ_{k≥0} η^k F_k(θ)` with `F_0 = −g` and
//! `F_k = −ξ_k`. With `L_A B := (DB)·A`, matching the time-`η` flow
//! `θ + Σ_{j≥1} η^j/j! (L_F)^{j−1} F` with `θ − η g` gives, for `m ≥ 1`,
//!
//! ```text
//! F_m = − Σ_{j=2}^{m+1} 1/j! Σ_{k_1+…+k_j = m+1−j} L_{F_{k_1}} ⋯ L_{F_{k_{j−1}}} F_{k_j}.
//! ```
//!
//! Each `ξ_k` is a sum over rooted trees with `k+1` nodes of an exact
//! rational coefficient times the elementary differential of the tree: a
//! leaf is `g`, a node with `m` children is `∇^m g = ∇^{m+1} f` applied to
//! its children's vectors. Each distinct tree appears once (no symmetry
//! factor normalisation). For example, with `H = ∇²f`, `T = ∇³f`:
//!
//! ```text
//! ξ_1 = ½ H g                                   ½ [•]
//! ξ_2 = 1/12 T(g,g) + 1/3 H H g                 1/12 [••] + 1/3 [[•]]
//! ξ_3 = 1/12 T(Hg,g) + 1/12 H T(g,g) + 1/4 HHHg
//! ```
//!
//! [`Forest`] interns and enumerates trees; [`counter_terms`] computes the
//! coefficients.

mod coloured;
mod counter;
mod instantiate;
mod laws;
mod method;
mod potential;
mod ratfn;
mod sgd;
mod tree;

pub use coloured::{ColouredForest, ColouredId};
pub use counter::{counter_terms, GenericSeries, SeriesError, MAX_ORDER};
pub use instantiate::{
    instantiate, instantiate_trees, instantiate_watched, Before, Shapes, TooLarge,
};
pub use laws::{gd_step_law, invariance_law, Law, Poly, Probe, Scalar, Vector};
pub use method::{
    method_series, optimizer_series, BatchOrder, Coefficient, Method, MethodSeries, Minibatch,
    Optimizer, Parameter, Scheme, Stage, METHOD_MAX_ORDER, SYMBOLIC_MAX_ORDER,
};
pub use potential::{generic_potential, scalar_gradient, scalar_trees};
pub use ratfn::RatFn;
pub use sgd::{permutations, sgd_series, SgdSeries, SGD_MAX_ORDER};
pub use tree::{Forest, TreeId};
