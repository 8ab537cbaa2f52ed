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
}

/// Evaluates `loss` and `gradient` at the exact `point` (rounded once to `f64`).
pub fn evaluate(
    graph: &Graph,
    loss: Id,
    gradient: &[Id],
    point: &[BigRational],
) -> Result<Evaluation, DomainError> {
    let x: Vec<f64> = point.iter().map(to_f64).collect();
    let mut roots = vec![loss];
    roots.extend_from_slice(gradient);
    let values = Program::compile(graph, &roots).eval(&x)?;
    Ok(Evaluation {
        loss: values[0],
        gradient: values[1..].to_vec(),
        point: x,
    })
}
