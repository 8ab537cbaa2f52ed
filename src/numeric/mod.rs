//! The numeric layer, the only place floating point appears: expressions compiled to
//! straight-line programs that keep the graph's sharing, and their evaluation with domain checks.

mod check;
mod epoch;
mod evaluate;
mod field;
mod jit;
mod ode;
mod probe;
mod program;
mod stepper;
mod taylor;

pub use check::{
    check, check_method, gradient_descent, local_error, Check, CheckOptions, CheckRow, LocalRow,
    Observable, ObservableKind, Tracked,
};
pub use epoch::{reshuffling, Epochs, MonteCarlo, MonteCarloRow, MAX_AVERAGED_BATCHES};
pub use evaluate::{evaluate, Evaluation};
pub use field::{Eom, VectorField};
pub use ode::{integrate, Integration, OdeError, Tolerances};
pub use probe::{jacobian, least_squares, rationalize, sample, sample_points};
pub use program::{DomainError, Program};
pub use stepper::{series_radius, Radius, Stepper};
pub use taylor::{taylor_directional, tree_xi};

use num_rational::BigRational;
use num_traits::ToPrimitive;

/// The nearest `f64` to an exact rational (±inf when out of range).
///
/// ```
/// use num_rational::BigRational;
/// let third = BigRational::new(1.into(), 3.into());
/// assert_eq!(eomderive::numeric::to_f64(&third), 1.0 / 3.0);
/// ```
pub fn to_f64(r: &BigRational) -> f64 {
    r.to_f64().unwrap_or(f64::NAN)
}
