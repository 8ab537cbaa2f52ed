//! The lowered model: scalar parameters, the loss as a shared expression graph, the initial point.

use num_rational::BigRational;

use crate::expr::{Graph, Id};

/// A loss lowered to scalar form.
///
/// Parameters are expanded to scalars in declaration order, row-major within an array, and
/// named `w[1]`, `W[1,2]`; parameter `i` is the variable `VarId(i)` of [`Model::graph`].
///
/// ```
/// let m = eomderive::lang::parse_str("param w[2] = [1, 2]\nloss = sum(i, w[i]^2)").unwrap();
/// assert_eq!(m.params, ["w[1]", "w[2]"]);
/// assert_eq!(m.initial_point().unwrap().len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct Model {
    /// The shared expression graph holding the loss (and, later, its derivatives).
    pub graph: Graph,
    /// Expanded scalar parameter names.
    pub params: Vec<String>,
    /// The loss.
    pub loss: Id,
    /// The initial value of each parameter, where the file gives one.
    pub initial: Vec<Option<BigRational>>,
    /// The `let` names, one per scalar entry (`out[2]`), with the node each one denotes, in
    /// declaration order. Renderers use them to name shared subexpressions.
    pub names: Vec<(String, Id)>,
    /// λ of a `weight_decay = λ` line: gradient descent trains the loss plus (λ/2)‖θ‖².
    /// [`crate::derive`] adds that term (see [`crate::Options::weight_decay`]).
    pub weight_decay: Option<BigRational>,
}

impl Model {
    /// The initial point when the file gives every parameter a value.
    pub fn initial_point(&self) -> Option<Vec<BigRational>> {
        self.initial.iter().cloned().collect()
    }

    /// The index of a scalar parameter by its expanded name (`w[2]`).
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p == name)
    }
}
