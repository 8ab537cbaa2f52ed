//! The paper's analyses of a derived equation of motion (DESIGN.md §2.3): which counter terms
//! are gradient fields (and their potentials: the modified loss), and which parameter groups
//! the loss is scale- or translation-invariant in (with the laws that follow).
//!
//! Each fact is decided exactly on trees where that is possible, symbolically on the loss's
//! simplified expressions where they reduce to zero, and otherwise numerically at random
//! points; [`Decided`] records which, and the output says it.

mod fields;
mod invariance;

pub use fields::{Asymmetry, Field, Potential};
pub use invariance::{Invariance, Kind};

use crate::expr::{Diff, Graph, Id};
use crate::series::{self, Forest, GenericSeries, Method};
use num_rational::BigRational;
use num_traits::One;

/// How a fact was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// On trees, exactly, for every loss.
    Exactly,
    /// On this loss's expressions, which simplified to zero (or needed no simplification).
    Symbolically,
    /// At this many random points, to rounding error.
    Numerically {
        /// Points where the claim was tested.
        points: usize,
    },
}

/// The analyses of one derivation.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The optimizer the counter terms describe.
    pub method: Method,
    /// c in the leading term F_0 = −c g (1 for GD): the modified loss is then
    /// dθ/dt = −c ∇f̃ with f̃ = f + η Φ_1/c + ….
    pub leading: BigRational,
    /// Trees the potentials refer to (see [`Potential::terms`]).
    pub forest: Forest,
    /// Per counter term ξ_1..ξ_K: whether it is a gradient field.
    pub fields: Vec<Field>,
    /// Invariances found, with their laws.
    pub invariances: Vec<Invariance>,
}

impl Analysis {
    /// The largest j such that ξ_1..ξ_j all have a known potential: the modified loss
    /// f + η Φ_1 + … + η^j Φ_j exists to that order.
    pub fn modified_loss_order(&self) -> usize {
        self.fields
            .iter()
            .take_while(|f| f.potential.is_some())
            .count()
    }
}

/// What the analyses need from a derivation.
pub(crate) struct Input<'a> {
    pub graph: &'a mut Graph,
    pub diff: &'a mut Diff,
    pub params: &'a [String],
    /// The gradient of the loss without weight decay (invariances are the loss's).
    pub base_gradient: &'a [Id],
    /// The gradient the counter terms were derived from.
    pub gradient: &'a [Id],
    pub xi: &'a [Vec<Id>],
    pub series: GenericSeries,
    /// The optimizer `series` belongs to.
    pub method: Method,
    pub weight_decay: bool,
    /// For SGD: the batch gradients, and the order of the epoch.
    pub batches: Option<Batches<'a>>,
    /// Where to sample: the evaluation point, or the origin.
    pub center: Vec<f64>,
    /// Write each potential Φ_k out on the loss ([`Potential::scalar`]): only where the
    /// modified loss will be printed (a readable or expanded form of a program small enough
    /// for one), since writing it out costs about a counter term's derivation.
    pub scalars: bool,
}

/// What the analyses of SGD's counter terms need besides the full gradient.
#[derive(Clone, Copy)]
pub(crate) struct Batches<'a> {
    /// ∇f_a per batch.
    pub gradients: &'a [Vec<Id>],
    /// Only a shuffled epoch's ξ_1 is a gradient for every loss.
    pub order: crate::series::BatchOrder,
}

/// Runs every analysis.
pub(crate) fn analyze(mut input: Input) -> Analysis {
    let mut fields = fields::decide(&mut input);
    for f in &mut fields {
        if let Some(p) = &mut f.potential {
            if p.scalar.is_none() && input.scalars {
                p.scalar = scalar(&mut input, &p.terms);
            }
        }
    }
    // The invariance laws are derived on one-field trees; SGD's are not (yet).
    let invariances = match input.batches {
        None => invariance::detect(&mut input),
        Some(_) => Vec::new(),
    };
    Analysis {
        method: input.method,
        leading: input.series.leading.clone(),
        forest: input.series.forest,
        fields,
        invariances,
    }
}

/// Σ c g·G(τ) over a potential's terms, written out on the loss (None past the node limit).
fn scalar(input: &mut Input, terms: &[(series::TreeId, BigRational)]) -> Option<Id> {
    let trees = GenericSeries {
        forest: input.series.forest.clone(),
        leading: BigRational::one(),
        xi: terms
            .iter()
            .map(|(t, _)| vec![(*t, BigRational::one())])
            .collect(),
    };
    let fields = series::instantiate(
        &trees,
        input.graph,
        input.diff,
        input.gradient,
        crate::MAX_NODES,
    )
    .ok()?;
    let g = &mut *input.graph;
    let mut sum = Vec::new();
    for ((_, c), field) in terms.iter().zip(&fields) {
        let dots: Vec<Id> = field
            .iter()
            .zip(input.gradient)
            .map(|(&x, &gi)| g.mul(gi, x))
            .collect();
        let dot = g.sum(dots);
        let c = g.num(c.clone());
        sum.push(g.mul(c, dot));
    }
    Some(g.sum(sum))
}

/// True when every root simplifies to the constant 0.
fn zero_symbolically(graph: &mut Graph, roots: &[Id], n_params: usize) -> bool {
    zeros_symbolically(graph, roots, n_params)
        .into_iter()
        .all(|z| z)
}

/// Per root: whether it simplifies to the constant 0 (one pass over all of them).
fn zeros_symbolically(graph: &mut Graph, roots: &[Id], n_params: usize) -> Vec<bool> {
    let collapsed = crate::expr::affine_rebuild(graph, roots, n_params);
    collapsed.iter().map(|&r| graph.get(r).is_zero()).collect()
}

/// Random points are drawn from this seed, so the output is deterministic.
const SEED: u64 = 20_261_129;

/// Sample points per numeric test.
const POINTS: usize = 6;

/// Past this many operations, a program is tested at [`LARGE_POINTS`] points and an
/// asymmetric Jacobian searched along [`LARGE_WITNESS_COLUMNS`] columns: each evaluation then
/// costs about a twentieth of deriving the program (BENCHMARKS.md, "Scaling"), so the analyses
/// stay a fraction of the derivation whatever its size.
const LARGE_PROGRAM: usize = 50_000;

/// Sample points per numeric test of a program past [`LARGE_PROGRAM`].
const LARGE_POINTS: usize = 3;

/// Jacobian columns searched for an asymmetric pair in a program past [`LARGE_PROGRAM`]:
/// none (each column costs a directional derivative, and naming the pair is a courtesy; the
/// random-direction test has settled the question).
const LARGE_WITNESS_COLUMNS: usize = 0;

/// The sample points a numeric test of `program` may use.
fn points(program: &crate::numeric::Program) -> usize {
    if program.len() > LARGE_PROGRAM {
        LARGE_POINTS
    } else {
        POINTS
    }
}
