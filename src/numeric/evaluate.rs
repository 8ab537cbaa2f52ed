//! Loss and gradient values at a point.

use num_rational::BigRational;

use super::{to_f64, DomainError, Program};
use crate::expr::{Graph, Id};

/// The loss and its gradient evaluated at a point.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The point, one value per parameter.
    pub point: Vec<f64>,
    /// f(θ).
    pub loss: f64,
    /// ∇f(θ).
    pub gradient: Vec<f64>,
    /// `xi[k-1]` = ξ_k(θ).
    pub xi: Vec<Vec<f64>>,
}

/// Evaluates the loss, its gradient and the counter terms at the exact `point` (rounded once
/// to `f64`), in one program that shares everything common to them.
pub fn evaluate(
    graph: &Graph,
    loss: Id,
    gradient: &[Id],
    xi: &[Vec<Id>],
    point: &[BigRational],
) -> Result<Evaluation, DomainError> {
    let x: Vec<f64> = point.iter().map(to_f64).collect();
    let mut roots = vec![loss];
    roots.extend_from_slice(gradient);
    roots.extend(xi.iter().flatten());
    let values = Program::compile(graph, &roots).eval(&x)?;
    let n = gradient.len();
    Ok(Evaluation {
        loss: values[0],
        gradient: values[1..=n].to_vec(),
        xi: values[n + 1..]
            .chunks(n.max(1))
            .map(<[f64]>::to_vec)
            .collect(),
        point: x,
    })
}
