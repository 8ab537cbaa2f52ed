//! The check against gradient descent (DESIGN.md §4.3): run GD, integrate the truncated
//! equation of motion over the same horizon, and measure how the distance shrinks with η.

use nalgebra::DVector;

use super::{integrate, DomainError, Eom, OdeError, Tolerances, VectorField};

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// The largest learning rate η.
    pub lr: f64,
    /// GD steps at η; the horizon is T = steps · η.
    pub steps: usize,
    /// How many times η is halved (3: η, η/2, η/4, η/8), keeping T fixed.
    pub halvings: usize,
    /// Integrator tolerances.
    pub tolerances: Tolerances,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            lr: 0.05,
            steps: 40,
            halvings: 3,
            tolerances: Tolerances::default(),
        }
    }
}

/// The distance between the EoM truncated after ξ_K and GD, at one learning rate.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    /// K: 0 is gradient flow.
    pub order: usize,
    /// η.
    pub lr: f64,
    /// GD steps N (T = N η).
    pub steps: usize,
    /// ‖θ_EoM(T) − θ_GD,N‖, when both could be computed.
    pub error: Option<f64>,
    /// The error is at the floating-point and integrator floor, so it says nothing about the
    /// order (it is left out of the slope).
    pub at_floor: bool,
    /// Why there is no error: GD diverged or left the domain, or the integrator failed.
    pub failure: Option<String>,
}

/// The whole check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The largest η.
    pub lr: f64,
    /// GD steps at that η.
    pub steps: usize,
    /// T = steps · lr.
    pub horizon: f64,
    /// One row per order K = 0..=order and learning rate, orders outermost.
    pub rows: Vec<CheckRow>,
    /// Fitted d log(error) / d log(η) per order (expected K + 1), when two or more errors
    /// above the floor exist.
    pub slopes: Vec<Option<f64>>,
    /// For the largest η: the error after each GD step n = 1..N, per order (for plots).
    pub trajectories: Vec<Vec<Option<f64>>>,
}

/// Runs GD and the truncated EoM for K = 0..=`eom.order()` and η, η/2, …, η/2^halvings.
/// `descent` computes the loss followed by its gradient (see [`gradient_descent`]).
pub fn check(eom: &Eom, descent: &VectorField, x0: &DVector<f64>, options: &CheckOptions) -> Check {
    let horizon = options.lr * options.steps as f64;
    let mut rows = Vec::new();
    let mut trajectories = Vec::new();
    let lrs: Vec<(f64, usize)> = (0..=options.halvings)
        .map(|j| (options.lr / f64::powi(2.0, j as i32), options.steps << j))
        .collect();
    let gd_runs: Vec<Result<Vec<DVector<f64>>, String>> = lrs
        .iter()
        .map(|&(eta, n)| gradient_descent(descent, x0, eta, n))
        .collect();
    for k in 0..=eom.order() {
        for (j, &(eta, n)) in lrs.iter().enumerate() {
            let mut row = CheckRow {
                order: k,
                lr: eta,
                steps: n,
                error: None,
                at_floor: false,
                failure: None,
            };
            match &gd_runs[j] {
                Err(why) => row.failure = Some(format!("GD {why}")),
                Ok(gd) => {
                    let field = |y: &DVector<f64>| eom.rhs(y, eta, k);
                    if j == 0 {
                        // Step by step, to record the error along the way.
                        let mut y = x0.clone();
                        let mut along = Vec::with_capacity(n);
                        let mut failed = None;
                        for target in &gd[1..=n] {
                            match integrate(field, &y, eta, &options.tolerances) {
                                Ok(r) => {
                                    y = r.y;
                                    along.push(Some((&y - target).norm()));
                                }
                                Err(e) => {
                                    failed = Some(describe(&e));
                                    along.resize(n, None);
                                    break;
                                }
                            }
                        }
                        match failed {
                            Some(f) => row.failure = Some(f),
                            None => row.error = Some((&y - &gd[n]).norm()),
                        }
                        trajectories.push(along);
                    } else {
                        match integrate(field, x0, horizon, &options.tolerances) {
                            Ok(r) => row.error = Some((&r.y - &gd[n]).norm()),
                            Err(e) => row.failure = Some(describe(&e)),
                        }
                    }
                    if let Some(e) = row.error {
                        row.at_floor = e <= floor(&gd[n], n);
                    }
                }
            }
            rows.push(row);
        }
    }
    let slopes = (0..=eom.order())
        .map(|k| {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.order == k && !r.at_floor)
                .filter_map(|r| r.error.filter(|e| *e > 0.0).map(|e| (r.lr.ln(), e.ln())))
                .collect();
            fit_slope(&points)
        })
        .collect();
    Check {
        lr: options.lr,
        steps: options.steps,
        horizon,
        rows,
        slopes,
        trajectories,
    }
}

/// One step of the EoM truncated after ξ_K against one GD step, from `x0`: the local error,
/// which should shrink as η^{K+2}.
pub fn local_error(
    eom: &Eom,
    descent: &VectorField,
    x0: &DVector<f64>,
    eta: f64,
    k: usize,
    tolerances: &Tolerances,
) -> Result<f64, String> {
    let gd = gradient_descent(descent, x0, eta, 1).map_err(|e| format!("GD {e}"))?;
    let r = integrate(|y: &DVector<f64>| eom.rhs(y, eta, k), x0, eta, tolerances)
        .map_err(|e| describe(&e))?;
    Ok((&r.y - &gd[1]).norm())
}

/// The GD iterates θ_0..θ_N, or why they stopped: an iterate where the loss is undefined
/// (`left the loss's domain at step n: log of -0.1`) or divergence (`diverged at step n`).
/// `descent` computes the loss followed by its gradient, so every iterate's loss is checked.
pub fn gradient_descent(
    descent: &VectorField,
    x0: &DVector<f64>,
    eta: f64,
    steps: usize,
) -> Result<Vec<DVector<f64>>, String> {
    let limit = 1e12 * (1.0 + x0.norm());
    let n = x0.len();
    let mut values = vec![0.0; n + 1];
    let mut out = Vec::with_capacity(steps + 1);
    out.push(x0.clone());
    for step in 0..steps {
        let x = &out[step];
        descent
            .eval_into(x.as_slice(), &mut values)
            .map_err(|e| format!("left the loss's domain at step {step}: {e}"))?;
        let next = DVector::from_iterator(n, (0..n).map(|i| x[i] - eta * values[i + 1]));
        if !next.iter().all(|v| v.is_finite()) || next.norm() > limit {
            return Err(format!("diverged at step {}", step + 1));
        }
        out.push(next);
    }
    // The last iterate's loss must be defined too.
    descent
        .eval_into(out[steps].as_slice(), &mut values)
        .map_err(|e| format!("left the loss's domain at step {steps}: {e}"))?;
    Ok(out)
}

/// Errors below this are rounding: about N steps of relative error ε on ‖θ‖, with margin.
fn floor(theta: &DVector<f64>, steps: usize) -> f64 {
    100.0 * f64::EPSILON * (steps as f64).sqrt().max(1.0) * (1.0 + theta.norm())
}

/// Least-squares slope of y against x.
fn fit_slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    (sxx > 0.0).then(|| sxy / sxx)
}

fn describe(e: &OdeError<DomainError>) -> String {
    match e {
        OdeError::Field { error, .. } => format!("the EoM left the loss's domain: {error}"),
        other => other.to_string(),
    }
}
