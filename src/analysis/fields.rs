//! Is ξ_k a gradient field? Exactly on trees when it is one for every loss (ξ_1); otherwise by
//! the symmetry of its Jacobian on this loss, with a potential sought among tree scalars.

use num_rational::BigRational;
use num_traits::{One, Zero};

use super::{
    points, zero_symbolically, Decided, Input, LARGE_PROGRAM, LARGE_WITNESS_COLUMNS, SEED,
};
use crate::expr::Id;
use crate::numeric::{
    least_squares, rationalize, sample, sample_points, taylor_directional, Program,
};
use crate::series::{self, GenericSeries, TreeId};

/// What is known about one counter term ξ_k.
#[derive(Debug, Clone)]
pub struct Field {
    /// k.
    pub k: usize,
    /// ξ_k is the gradient of a potential (its Jacobian is symmetric).
    pub gradient: bool,
    /// How `gradient` was decided.
    pub decided: Decided,
    /// ξ_k is a gradient for every loss (decided on trees).
    pub generic: bool,
    /// ξ_k = ∇Φ_k, when a potential was found.
    pub potential: Option<Potential>,
    /// Where the Jacobian is not symmetric, when ξ_k is not a gradient.
    pub asymmetry: Option<Asymmetry>,
}

/// Φ_k = Σ c · g·G(τ) (tree scalars, see [`crate::series::scalar_trees`]) with ξ_k = ∇Φ_k;
/// for shuffled SGD's ξ_1, Φ_1 = (1/(4m)) Σ_a ‖∇f_a‖² (Smith, Dherin, Barrett & De 2021).
#[derive(Debug, Clone)]
pub struct Potential {
    /// (τ, c): the scalar g·G(τ) with coefficient c; τ lives in [`super::Analysis::forest`].
    pub terms: Vec<(TreeId, BigRational)>,
    /// `Some(m)`: the potential is (1/(4m)) Σ_a ‖∇f_a‖² over the m batches, which is
    /// ¼‖∇f‖² + (1/(4m)) Σ_a ‖∇f_a − ∇f‖² (and `terms` is empty).
    pub batches: Option<usize>,
    /// How ξ_k = ∇Φ_k was verified.
    pub decided: Decided,
    /// Φ_k itself as an expression of the parameters (in the derivation's graph), when it
    /// could be written out.
    pub scalar: Option<Id>,
}

/// A witness that ξ_k has no potential: ∂ξ_k[i]/∂θ_j ≠ ∂ξ_k[j]/∂θ_i at `point`.
#[derive(Debug, Clone, PartialEq)]
pub struct Asymmetry {
    /// Component i.
    pub i: usize,
    /// Parameter j.
    pub j: usize,
    /// Where.
    pub point: Vec<f64>,
    /// ∂ξ_k[i]/∂θ_j there.
    pub d_ij: f64,
    /// ∂ξ_k[j]/∂θ_i there.
    pub d_ji: f64,
}

/// A Jacobian whose largest asymmetry, relative to its largest entry, is below this is
/// symmetric to rounding error.
const TOLERANCE: f64 = 1e-8;

/// Symbolic Jacobians are attempted while n × (size of ξ_k) stays below this.
const SYMBOLIC_BUDGET: usize = 400_000;

pub(super) fn decide(input: &mut Input) -> Vec<Field> {
    let n = input.params.len();
    let sgd = input.batches.is_some();
    (1..=input.xi.len())
        .map(|k| {
            let generic = if sgd {
                None
            } else {
                series::generic_potential(&mut input.series, k)
            };
            // Shuffled SGD's ξ_1 is (1/(2m)) Σ_a H_a g_a on coloured trees, for every loss:
            // the gradient of (1/(4m)) Σ_a ‖g_a‖², which is then verified on this loss.
            if k == 1 && shuffled_first_order_is_smith(input) {
                // A potential that is exact on trees and fails on the loss is a defect of
                // this program, not a property of the loss: it says so (see field_line).
                return Field {
                    k,
                    gradient: true,
                    decided: Decided::Exactly,
                    generic: true,
                    potential: batch_potential(input),
                    asymmetry: None,
                };
            }
            if let Some(terms) = generic {
                return Field {
                    k,
                    gradient: true,
                    decided: Decided::Exactly,
                    generic: true,
                    potential: Some(Potential {
                        terms,
                        batches: None,
                        decided: Decided::Exactly,
                        scalar: None,
                    }),
                    asymmetry: None,
                };
            }
            let xi = input.xi[k - 1].clone();
            // A numeric witness settles "no" cheaply; a "yes" is then upgraded to symbolic
            // when the antisymmetric part of the Jacobian simplifies to zero.
            let (gradient, decided, asymmetry) = if n == 1 {
                (true, Decided::Symbolically, None)
            } else {
                match symmetry_numerically(input, &xi) {
                    (true, _, _) if symmetric_symbolically(input, &xi) => {
                        (true, Decided::Symbolically, None)
                    }
                    numeric => numeric,
                }
            };
            let potential = match (gradient, &input.batches) {
                (false, _) => None,
                (true, None) => potential(input, k),
                // The tree scalars of ∇f are not the basis of SGD's potentials.
                (true, Some(_)) => None,
            };
            Field {
                k,
                gradient,
                decided,
                generic: false,
                potential,
                asymmetry,
            }
        })
        .collect()
}

/// ∂ξ_i/∂θ_j − ∂ξ_j/∂θ_i simplifies to 0 for every pair.
fn symmetric_symbolically(input: &mut Input, xi: &[Id]) -> bool {
    let n = xi.len();
    if input.graph.cone(xi).len() * n > SYMBOLIC_BUDGET {
        return false;
    }
    let zero = input.graph.int(0);
    let one = input.graph.int(1);
    let columns: Vec<Vec<Id>> = (0..n)
        .map(|j| {
            let mut e = vec![zero; n];
            e[j] = one;
            input.diff.directional(input.graph, xi, &e)
        })
        .collect();
    // columns[j][i] = ∂ξ_i/∂θ_j.
    let pairs = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j)));
    let differences: Vec<Id> = pairs
        .map(|(i, j)| input.graph.sub(columns[j][i], columns[i][j]))
        .collect();
    zero_symbolically(input.graph, &differences, n)
}

/// Tests the Jacobian J of ξ_k at sample points: uᵀ J v = vᵀ J u for all u, v exactly when J
/// is symmetric, and two random directions test that at the cost of two directional
/// derivatives, whatever the number of parameters. Where it fails, the full Jacobian there
/// names the most asymmetric pair.
fn symmetry_numerically(input: &mut Input, xi: &[Id]) -> (bool, Decided, Option<Asymmetry>) {
    let program = Program::compile(input.graph, xi);
    let zeros = vec![0.0; xi.len()];
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    let norm = |a: &[f64]| dot(a, a).sqrt();
    let samples = sample(&program, &input.center, points(&program), SEED);
    let mut points = 0;
    for (p, (x, _)) in samples.into_iter().enumerate() {
        let dirs = sample_points(&zeros, 2, SEED + 10 + p as u64);
        let (u, v) = (&dirs[0], &dirs[1]);
        let (Ok(ju), Ok(jv)) = (
            taylor_directional(&program, &x, &[u]),
            taylor_directional(&program, &x, &[v]),
        ) else {
            continue;
        };
        points += 1;
        let gap = (dot(v, &ju) - dot(u, &jv)).abs();
        let size = norm(&ju) * norm(v) + norm(&jv) * norm(u);
        if gap <= TOLERANCE * size.max(1e-300) {
            continue;
        }
        let witness = witness(&program, x, u, v, &ju, &jv);
        return (false, Decided::Numerically { points }, witness);
    }
    (true, Decided::Numerically { points }, None)
}

/// Most Jacobian columns computed to name an asymmetric pair: each costs a directional
/// derivative of ξ_k, so the search costs a fixed number of evaluations whatever n is.
const WITNESS_COLUMNS: usize = 16;

/// The most asymmetric pair (i, j) among the [`WITNESS_COLUMNS`] coordinates that carry the
/// most of vᵀJu − uᵀJv = Σ_i (v_i (Ju)_i − u_i (Jv)_i) (all coordinates when there are no
/// more): their columns give both J_ij and J_ji. `None` when the pair lies outside them.
fn witness(
    program: &Program,
    x: Vec<f64>,
    u: &[f64],
    v: &[f64],
    ju: &[f64],
    jv: &[f64],
) -> Option<Asymmetry> {
    let n = x.len();
    let columns = if program.len() > LARGE_PROGRAM {
        LARGE_WITNESS_COLUMNS
    } else {
        WITNESS_COLUMNS
    };
    if columns == 0 {
        return None;
    }
    let mut rows: Vec<usize> = (0..n).collect();
    if n > columns {
        let weight = |i: usize| (v[i] * ju[i] - u[i] * jv[i]).abs();
        rows.sort_by(|&a, &b| weight(b).total_cmp(&weight(a)).then(a.cmp(&b)));
        rows.truncate(columns);
        rows.sort();
    }
    let mut columns = Vec::with_capacity(rows.len());
    for &j in &rows {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        columns.push(taylor_directional(program, &x, &[&e]).ok()?);
    }
    // columns[b][i] = ∂ξ_i/∂θ_rows[b].
    let pairs = (0..rows.len()).flat_map(|a| (a + 1..rows.len()).map(move |b| (a, b)));
    let gap = |&(a, b): &(usize, usize)| (columns[b][rows[a]] - columns[a][rows[b]]).abs();
    let (a, b) = pairs.max_by(|p, q| gap(p).total_cmp(&gap(q)))?;
    let size = columns.iter().flatten().fold(0.0f64, |m, c| m.max(c.abs()));
    if gap(&(a, b)) <= TOLERANCE * size.max(1e-300) {
        return None;
    }
    Some(Asymmetry {
        i: rows[a],
        j: rows[b],
        d_ij: columns[b][rows[a]],
        d_ji: columns[a][rows[b]],
        point: x,
    })
}

/// A potential among the tree scalars with k + 1 nodes: fitted at random points, its
/// coefficients recognised as small rationals, then verified (symbolically when the
/// difference simplifies to zero, otherwise at fresh points).
fn potential(input: &mut Input, k: usize) -> Option<Potential> {
    let n = input.params.len();
    let forest = &mut input.series.forest;
    let scalars = series::scalar_trees(forest, k + 1);
    let gradients: Vec<Vec<(TreeId, BigRational)>> = scalars
        .iter()
        .map(|&t| {
            series::scalar_gradient(forest, t)
                .into_iter()
                .map(|(r, m)| (r, BigRational::from_integer(m.into())))
                .collect()
        })
        .collect();
    let columns = GenericSeries {
        forest: forest.clone(),
        leading: BigRational::one(),
        xi: gradients,
    };
    let columns = series::instantiate(
        &columns,
        input.graph,
        input.diff,
        input.gradient,
        crate::MAX_NODES,
    )
    .ok()?;
    let xi = &input.xi[k - 1];
    let mut roots = xi.clone();
    roots.extend(columns.iter().flatten());
    let program = Program::compile(input.graph, &roots);
    let fit = |seed: u64| -> Option<(Vec<Vec<f64>>, Vec<f64>)> {
        let samples = sample(&program, &input.center, points(&program), seed);
        if samples.len() < 2 {
            return None;
        }
        let target = samples.iter().flat_map(|(_, v)| v[..n].to_vec()).collect();
        let cols = (0..columns.len())
            .map(|c| {
                samples
                    .iter()
                    .flat_map(|(_, v)| v[n * (c + 1)..n * (c + 2)].to_vec())
                    .collect()
            })
            .collect();
        Some((cols, target))
    };
    let (cols, target) = fit(SEED)?;
    let (a, residual) = least_squares(&cols, &target)?;
    if residual > 1e-8 {
        return None;
    }
    let coefficients: Vec<BigRational> = a
        .iter()
        .map(|&x| {
            if x.abs() < 1e-12 {
                Some(BigRational::zero())
            } else {
                rationalize(x, 100_000, 1e-9)
            }
        })
        .collect::<Option<_>>()?;
    // Verify the exact combination.
    let mut differences = Vec::with_capacity(n);
    for (i, &x) in xi.iter().enumerate() {
        let mut terms = vec![input.graph.neg(x)];
        for (c, col) in coefficients.iter().zip(&columns) {
            if !c.is_zero() {
                let c = input.graph.num(c.clone());
                terms.push(input.graph.mul(c, col[i]));
            }
        }
        differences.push(input.graph.sum(terms));
    }
    let decided = if zero_symbolically(input.graph, &differences, n) {
        Decided::Symbolically
    } else {
        let (cols, target) = fit(SEED + 1)?;
        let exact: Vec<f64> = coefficients.iter().map(crate::numeric::to_f64).collect();
        let points = target.len() / n.max(1);
        let mut gap = 0.0f64;
        for (r, t) in target.iter().enumerate() {
            let v: f64 = exact.iter().zip(&cols).map(|(c, col)| c * col[r]).sum();
            gap = gap.max((v - t).abs());
        }
        let size = target.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if gap > 1e-9 * size.max(1e-300) {
            return None;
        }
        Decided::Numerically { points }
    };
    Some(Potential {
        terms: scalars
            .into_iter()
            .zip(coefficients)
            .filter(|(_, c)| !c.is_zero())
            .collect(),
        batches: None,
        decided,
        scalar: None,
    })
}

/// Whether this is an SGD epoch whose ξ_1 is Smith et al.'s on coloured trees (shuffled).
fn shuffled_first_order_is_smith(input: &Input) -> bool {
    input
        .batches
        .is_some_and(|b| series::sgd_series(b.order, 1).is_ok_and(|s| s.first_order_is_smith()))
}

/// Smith et al.'s potential of shuffled SGD's ξ_1, (1/(4m)) Σ_a ‖∇f_a‖², verified against
/// the derived ξ_1 (symbolically when the difference simplifies to zero, else at sample
/// points): an independent route, a scalar differentiated rather than trees instantiated.
fn batch_potential(input: &mut Input) -> Option<Potential> {
    let batches = input.batches?;
    let m = batches.gradients.len();
    let n = input.params.len();
    let g = &mut *input.graph;
    let squares: Vec<Id> = batches
        .gradients
        .iter()
        .flatten()
        .map(|&x| g.powi(x, 2))
        .collect();
    let sum = g.sum(squares);
    let scale = g.num(BigRational::new(1.into(), (4 * m as i64).into()));
    let phi = g.mul(scale, sum);
    let grad = input.diff.gradient(input.graph, phi);
    let differences: Vec<Id> = input.xi[0]
        .iter()
        .zip(&grad)
        .map(|(&x, &y)| input.graph.sub(x, y))
        .collect();
    let decided = if zero_symbolically(input.graph, &differences, n) {
        Decided::Symbolically
    } else {
        let program = Program::compile(input.graph, &differences);
        let reference = Program::compile(input.graph, &input.xi[0]);
        let samples = sample(&program, &input.center, points(&program), SEED + 3);
        if samples.is_empty() {
            return None;
        }
        for (x, v) in &samples {
            let size = reference
                .eval(x)
                .ok()?
                .iter()
                .fold(0.0f64, |a, b| a.max(b.abs()));
            if v.iter().any(|d| d.abs() > 1e-9 * size.max(1e-300)) {
                return None;
            }
        }
        Decided::Numerically {
            points: samples.len(),
        }
    };
    Some(Potential {
        terms: Vec::new(),
        batches: Some(m),
        decided,
        scalar: Some(phi),
    })
}
