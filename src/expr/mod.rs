//! The expression language: a hash-consed DAG of scalar expressions over the parameters, with
//! exact rational constants ([`Graph`]), structural differentiation with memoised sub-results
//! ([`Diff`]), and the egg [`Op`] language the simplifier works on.

mod affine;
mod diff;
mod extract;
mod graph;
mod op;
pub mod poly;
pub mod readable;
mod rules;
mod simplify;

pub use affine::affine_collapse;
pub(crate) use affine::affine_rebuild;
pub use diff::Diff;
pub use graph::Graph;
pub use op::{Func, Op, Rational, VarId};
pub use simplify::{simplify, ConstFold, Limits, Outcome};

/// A node of a [`Graph`]: the egg id type, an index into the graph's node list.
pub type Id = egg::Id;
