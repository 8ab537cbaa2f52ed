//! Adaptive integration of autonomous ODEs, dy/dt = f(y), by the Dormand–Prince 8(5,3)
//! method (DOP853) with embedded error estimation and step-size control.
//!
//! Used to check equations of motion: the flow of dθ/dt = F(θ) over a horizon is compared with
//! gradient-descent iterates at relative errors down to 1e-12, so the default tolerances are
//! near the limit of `f64` (rtol 1e-13, atol 1e-15).
//!
//! The method (Hairer, Nørsett & Wanner, *Solving Ordinary Differential Equations I*, 2nd ed.,
//! §II.10) takes 12 stages per step, the 12th at the end of the step, plus one evaluation at
//! the accepted point that becomes the next step's first stage ("first same as last"). The
//! solution is advanced with the 8th-order weights; the local error is estimated from two
//! embedded formulas, of orders 5 and 3, combined as
//! `err = |h|·‖e5‖² / sqrt(‖e5‖² + 0.01·‖e3‖²)` (norms scaled by the tolerances), which behaves
//! like an 8th-order estimate and stays reliable when steps are large.

use std::fmt;

use nalgebra::DVector;

/// Absolute and relative tolerances, and limits.
///
/// A component `i` of the local error is measured against
/// `atol + rtol·max(|y_i(t)|, |y_i(t+h)|)`; a step is accepted when the root-mean-square of the
/// scaled error is at most 1.
#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    /// Relative tolerance. Values below `10·f64::EPSILON` (about 2.2e-15) are raised to it:
    /// tighter is not reachable in `f64`.
    pub rtol: f64,
    /// Absolute tolerance, for components near zero. Negative values are taken as 0.
    pub atol: f64,
    /// Most steps attempted (accepted plus rejected) before giving up with
    /// [`OdeError::TooManySteps`].
    pub max_steps: usize,
    /// Smallest step, as a fraction of `|t_end|`, that the step-size control may choose before
    /// giving up with [`OdeError::StepTooSmall`] (a last step shortened to land on `t_end` is
    /// exempt).
    pub min_step: f64,
}

impl Default for Tolerances {
    /// rtol 1e-13, atol 1e-15, at most 1 000 000 steps, smallest step 1e-14·|t_end|.
    fn default() -> Self {
        Tolerances {
            rtol: 1e-13,
            atol: 1e-15,
            max_steps: 1_000_000,
            min_step: 1e-14,
        }
    }
}

/// The result of [`integrate`]: the state at `t_end` and statistics.
#[derive(Debug, Clone)]
pub struct Integration {
    /// The state y(t_end). Every component is finite.
    pub y: DVector<f64>,
    /// Accepted steps.
    pub steps: usize,
    /// Rejected step attempts (error too large, or a stage that was not finite).
    pub rejected: usize,
    /// Calls to the vector field.
    pub evaluations: usize,
}

/// Why integration failed. The vector field's own error type `E` is carried through.
#[derive(Debug, Clone, PartialEq)]
pub enum OdeError<E> {
    /// The vector field returned an error, at time `t` (the time of the stage being evaluated,
    /// which may belong to a step that would have been rejected).
    Field {
        /// Time of the failing evaluation.
        t: f64,
        /// The field's error.
        error: E,
    },
    /// The step size control needed a step smaller than the limit (`min_step·|t_end|`, or one
    /// too small to change `t`): typically the solution blows up near `t`, or the problem is too
    /// stiff for an explicit method.
    StepTooSmall {
        /// Time reached.
        t: f64,
        /// The step that was too small.
        h: f64,
    },
    /// More than `max_steps` steps were attempted.
    TooManySteps {
        /// Time reached.
        t: f64,
        /// Steps attempted (accepted plus rejected).
        steps: usize,
    },
    /// A NaN or an infinity appeared: in the initial state, in the vector field at the
    /// initial state, or in every retry of a step with ever smaller step sizes at time `t`;
    /// also when `t_end` itself is not finite (then `t` is 0).
    NotFinite {
        /// Time reached.
        t: f64,
    },
}

impl<E: fmt::Display> fmt::Display for OdeError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OdeError::Field { t, error } => {
                write!(
                    f,
                    "the vector field could not be evaluated at t = {t}: {error}"
                )
            }
            OdeError::StepTooSmall { t, h } => write!(
                f,
                "the integrator could not meet its tolerance at t = {t} (step {h:.1e})"
            ),
            OdeError::TooManySteps { t, steps } => write!(
                f,
                "the integrator gave up at t = {t} after {steps} steps, its limit"
            ),
            OdeError::NotFinite { t } => write!(
                f,
                "the solution is not finite at t = {t} (a NaN or an infinity appeared)"
            ),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for OdeError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OdeError::Field { error, .. } => Some(error),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The Dormand–Prince 8(5,3) tableau (Hairer, Nørsett & Wanner, Solving ODEs I, §II.10), at the
// precision it is published with. Zero-based: stage i uses A[i][j] for j < i.

/// Number of stages per step (the 13th evaluation, at the accepted point, is the next step's
/// first stage).
const STAGES: usize = 12;

#[allow(clippy::excessive_precision)]
const C: [f64; STAGES] = [
    0.0,
    0.526001519587677318785587544488e-1,
    0.789002279381515978178381316732e-1,
    0.118350341907227396726757197510,
    0.281649658092772603273242802490,
    0.333333333333333333333333333333,
    0.25,
    0.307692307692307692307692307692,
    0.651282051282051282051282051282,
    0.6,
    0.857142857142857142857142857142,
    1.0,
];

#[allow(clippy::excessive_precision)]
const A: [[f64; STAGES - 1]; STAGES] = [
    [0.0; STAGES - 1],
    [
        5.26001519587677318785587544488e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        1.97250569845378994544595329183e-2,
        5.91751709536136983633785987549e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        2.95875854768068491816892993775e-2,
        0.0,
        8.87627564304205475450678981324e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        2.41365134159266685502369798665e-1,
        0.0,
        -8.84549479328286085344864962717e-1,
        9.24834003261792003115737966543e-1,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        3.7037037037037037037037037037e-2,
        0.0,
        0.0,
        1.70828608729473871279604482173e-1,
        1.25467687566822425016691814123e-1,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        3.7109375e-2,
        0.0,
        0.0,
        1.70252211019544039314978060272e-1,
        6.02165389804559606850219397283e-2,
        -1.7578125e-2,
        0.0,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        3.70920001185047927108779319836e-2,
        0.0,
        0.0,
        1.70383925712239993810214054705e-1,
        1.07262030446373284651809199168e-1,
        -1.53194377486244017527936158236e-2,
        8.27378916381402288758473766002e-3,
        0.0,
        0.0,
        0.0,
        0.0,
    ],
    [
        6.24110958716075717114429577812e-1,
        0.0,
        0.0,
        -3.36089262944694129406857109825,
        -8.68219346841726006818189891453e-1,
        2.75920996994467083049415600797e1,
        2.01540675504778934086186788979e1,
        -4.34898841810699588477366255144e1,
        0.0,
        0.0,
        0.0,
    ],
    [
        4.77662536438264365890433908527e-1,
        0.0,
        0.0,
        -2.48811461997166764192642586468,
        -5.90290826836842996371446475743e-1,
        2.12300514481811942347288949897e1,
        1.52792336328824235832596922938e1,
        -3.32882109689848629194453265587e1,
        -2.03312017085086261358222928593e-2,
        0.0,
        0.0,
    ],
    [
        -9.3714243008598732571704021658e-1,
        0.0,
        0.0,
        5.18637242884406370830023853209,
        1.09143734899672957818500254654,
        -8.14978701074692612513997267357,
        -1.85200656599969598641566180701e1,
        2.27394870993505042818970056734e1,
        2.49360555267965238987089396762,
        -3.0467644718982195003823669022,
        0.0,
    ],
    [
        2.27331014751653820792359768449,
        0.0,
        0.0,
        -1.05344954667372501984066689879e1,
        -2.00087205822486249909675718444,
        -1.79589318631187989172765950534e1,
        2.79488845294199600508499808837e1,
        -2.85899827713502369474065508674,
        -8.87285693353062954433549289258,
        1.23605671757943030647266201528e1,
        6.43392746015763530355970484046e-1,
    ],
];

/// Weights of the 8th-order solution.
#[allow(clippy::excessive_precision)]
const B: [f64; STAGES] = [
    5.42937341165687622380535766363e-2,
    0.0,
    0.0,
    0.0,
    0.0,
    4.45031289275240888144113950566,
    1.89151789931450038304281599044,
    -5.8012039600105847814672114227,
    3.1116436695781989440891606237e-1,
    -1.52160949662516078556178806805e-1,
    2.01365400804030348374776537501e-1,
    4.47106157277725905176885569043e-2,
];

/// Weights of the 8th-order minus the 5th-order solution: the 5th-order error estimate.
#[allow(clippy::excessive_precision)]
const E5: [f64; STAGES] = [
    0.1312004499419488073250102996e-1,
    0.0,
    0.0,
    0.0,
    0.0,
    -0.1225156446376204440720569753e1,
    -0.4957589496572501915214079952,
    0.1664377182454986536961530415e1,
    -0.3503288487499736816886487290,
    0.3341791187130174790297318841,
    0.8192320648511571246570742613e-1,
    -0.2235530786388629525884427845e-1,
];

/// Weights of the 3rd-order solution (stages 1, 9 and 12); the 3rd-order error estimate is
/// the 8th-order solution minus it.
#[allow(clippy::excessive_precision)]
const B3: [f64; STAGES] = [
    0.244094488188976377952755905512,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.733846688281611857341361741547,
    0.0,
    0.0,
    0.220588235294117647058823529412e-1,
];

/// Order of the solution, which sets the exponent of the step-size control.
const ORDER: i32 = 8;
/// Step factor applied to the optimal step, to make the next acceptance likely.
const SAFETY: f64 = 0.9;
/// Smallest factor by which one step may shrink the step.
const SHRINK_MIN: f64 = 0.333;
/// Largest factor by which one step may grow the step.
const GROW_MAX: f64 = 6.0;
/// Factor applied to the step when a stage was not finite.
const SHRINK_NOT_FINITE: f64 = 0.25;

// ---------------------------------------------------------------------------------------------

/// Why a step's stages could not be computed.
enum StageFailure<E> {
    /// The field failed at stage `stage`.
    Field { stage: usize, error: E },
    /// A stage's state or the field's value there was not finite.
    NotFinite,
}

/// The stage derivatives of one step and a scratch vector.
struct Workspace {
    k: Vec<DVector<f64>>,
    scratch: DVector<f64>,
}

impl Workspace {
    fn new(n: usize) -> Self {
        Workspace {
            k: vec![DVector::zeros(n); STAGES],
            scratch: DVector::zeros(n),
        }
    }

    /// `scratch = y + h·Σ_j w_j k_j`.
    fn combine(&mut self, y: &DVector<f64>, h: f64, w: &[f64]) {
        self.scratch.copy_from(y);
        for (wj, kj) in w.iter().zip(&self.k) {
            if *wj != 0.0 {
                self.scratch.axpy(h * wj, kj, 1.0);
            }
        }
    }

    /// `Σ_j w_j k_{j,i}` for one component `i`.
    fn weighted(&self, w: &[f64; STAGES], i: usize) -> f64 {
        w.iter()
            .zip(&self.k)
            .filter(|(wj, _)| **wj != 0.0)
            .map(|(wj, kj)| wj * kj[i])
            .sum()
    }
}

/// Calls the field, counts the call, and checks the value's dimension and finiteness.
fn call<E>(
    f: &mut impl FnMut(&DVector<f64>) -> Result<DVector<f64>, E>,
    y: &DVector<f64>,
    evaluations: &mut usize,
) -> Result<Result<DVector<f64>, ()>, E> {
    *evaluations += 1;
    let dy = f(y)?;
    assert_eq!(
        dy.len(),
        y.len(),
        "the vector field returned {} components for a state of {}",
        dy.len(),
        y.len()
    );
    Ok(if dy.iter().all(|v| v.is_finite()) {
        Ok(dy)
    } else {
        Err(())
    })
}

/// Computes stages 2..=12 of a step of size `h` from `y`, given `ws.k[0] = f(y)`.
fn stages<E>(
    f: &mut impl FnMut(&DVector<f64>) -> Result<DVector<f64>, E>,
    y: &DVector<f64>,
    h: f64,
    ws: &mut Workspace,
    evaluations: &mut usize,
) -> Result<(), StageFailure<E>> {
    for stage in 1..STAGES {
        ws.combine(y, h, &A[stage][..stage]);
        if !ws.scratch.iter().all(|v| v.is_finite()) {
            return Err(StageFailure::NotFinite);
        }
        match call(f, &ws.scratch, evaluations) {
            Err(error) => return Err(StageFailure::Field { stage, error }),
            Ok(Err(())) => return Err(StageFailure::NotFinite),
            Ok(Ok(k)) => ws.k[stage] = k,
        }
    }
    Ok(())
}

/// The scaled error of a step from `y` to `y_new` of size `h` whose stages are in `ws`:
/// a step is acceptable when it is at most 1.
fn error_norm(
    y: &DVector<f64>,
    y_new: &DVector<f64>,
    h: f64,
    ws: &Workspace,
    rtol: f64,
    atol: f64,
) -> f64 {
    let (mut e5, mut e3) = (0.0, 0.0);
    for i in 0..y.len() {
        let scale = atol + rtol * y[i].abs().max(y_new[i].abs());
        let d5 = ws.weighted(&E5, i);
        let d3 = ws.weighted(&B, i) - ws.weighted(&B3, i);
        e5 += ratio(d5, scale).powi(2);
        e3 += ratio(d3, scale).powi(2);
    }
    if !e5.is_finite() || !e3.is_finite() {
        // An error against a zero tolerance (atol = 0 and a component that is exactly 0).
        return f64::INFINITY;
    }
    let denominator = e5 + 0.01 * e3;
    if denominator == 0.0 {
        return 0.0;
    }
    h.abs() * e5 / (y.len() as f64 * denominator).sqrt()
}

/// `a / b` with 0/0 = 0 (a zero error against a zero tolerance).
fn ratio(a: f64, b: f64) -> f64 {
    if a == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// Initial step size: the step for which an Euler step's estimated error, scaled by the
/// tolerances, is about 0.01^(1/order) (Hairer, Nørsett & Wanner, §II.4). Costs one evaluation.
fn initial_step<E>(
    f: &mut impl FnMut(&DVector<f64>) -> Result<DVector<f64>, E>,
    y0: &DVector<f64>,
    f0: &DVector<f64>,
    t_end: f64,
    rtol: f64,
    atol: f64,
    evaluations: &mut usize,
) -> Result<f64, E> {
    let n = y0.len() as f64;
    let scaled_norm = |v: &DVector<f64>| -> f64 {
        let sum: f64 = v
            .iter()
            .zip(y0.iter())
            .map(|(vi, yi)| ratio(*vi, atol + rtol * yi.abs()).powi(2))
            .sum();
        (sum / n).sqrt()
    };
    let span = t_end.abs();
    let d0 = scaled_norm(y0);
    let d1 = scaled_norm(f0);
    let mut h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    };
    h0 = h0.min(span);
    let y1 = y0 + f0 * (h0 * t_end.signum());
    let d2 = if y1.iter().all(|v| v.is_finite()) {
        match call(f, &y1, evaluations)? {
            Ok(f1) => scaled_norm(&(f1 - f0)) / h0,
            Err(()) => f64::INFINITY,
        }
    } else {
        f64::INFINITY
    };
    let d = d1.max(d2);
    let h1 = if d <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d).powf(1.0 / f64::from(ORDER + 1))
    };
    let h = (100.0 * h0).min(h1).min(span);
    // A non-finite trial point gives h1 = 0; the step control recovers from a tiny first step.
    Ok(if h > 0.0 { h } else { span * 1e-6 })
}

/// Integrates dy/dt = f(y) from `y0` at t = 0 to `t_end`, with Dormand–Prince 8(5,3) and
/// adaptive steps; the last step lands exactly on `t_end`.
///
/// `t_end` may be negative (integration backwards in time); `t_end = 0` returns `y0` without
/// evaluating `f`. The result never contains a NaN or an infinity: a non-finite stage is
/// retried with a smaller step, and [`OdeError::NotFinite`] is returned when that does not
/// help (or `y0` or `f(y0)` is not finite). An error from `f` stops the integration at once
/// with [`OdeError::Field`].
///
/// # Panics
/// When `f` returns a vector whose length differs from its argument's.
///
/// # Example
/// ```
/// use eomderive::numeric::{integrate, Tolerances};
/// use nalgebra::DVector;
///
/// // dy/dt = −y, y(0) = 1, so y(1) = e^{−1}.
/// let field = |y: &DVector<f64>| -> Result<DVector<f64>, String> { Ok(-y) };
/// let run = integrate(field, &DVector::from_element(1, 1.0), 1.0, &Tolerances::default()).unwrap();
/// let exact = (-1.0f64).exp();
/// assert!((run.y[0] - exact).abs() <= 1e-13 * exact);
/// assert!(run.steps > 0 && run.evaluations > run.steps);
/// ```
pub fn integrate<E>(
    mut f: impl FnMut(&DVector<f64>) -> Result<DVector<f64>, E>,
    y0: &DVector<f64>,
    t_end: f64,
    tol: &Tolerances,
) -> Result<Integration, OdeError<E>> {
    if !t_end.is_finite() || !y0.iter().all(|v| v.is_finite()) {
        return Err(OdeError::NotFinite { t: 0.0 });
    }
    let mut out = Integration {
        y: y0.clone(),
        steps: 0,
        rejected: 0,
        evaluations: 0,
    };
    if t_end == 0.0 || y0.is_empty() {
        return Ok(out);
    }
    let rtol = tol.rtol.max(10.0 * f64::EPSILON);
    let atol = tol.atol.max(0.0);
    let min_step = tol.min_step.max(0.0) * t_end.abs();
    let direction = t_end.signum();
    let field_error = |t: f64| move |error: E| OdeError::Field { t, error };

    let mut ws = Workspace::new(y0.len());
    ws.k[0] = call(&mut f, y0, &mut out.evaluations)
        .map_err(field_error(0.0))?
        .map_err(|()| OdeError::NotFinite { t: 0.0 })?;
    let mut h = initial_step(
        &mut f,
        y0,
        &ws.k[0],
        t_end,
        rtol,
        atol,
        &mut out.evaluations,
    )
    .map_err(field_error(0.0))?;
    let mut t = 0.0;
    let mut y = y0.clone();
    let mut last_rejected = false;
    let mut last_not_finite = false;

    loop {
        // `h` is the magnitude the control asks for; the last step is shortened (or stretched
        // by up to 1%) to land on t_end.
        if h < min_step {
            return Err(if last_not_finite {
                OdeError::NotFinite { t }
            } else {
                OdeError::StepTooSmall {
                    t,
                    h: h * direction,
                }
            });
        }
        let remaining = t_end - t;
        let is_last = h * 1.01 >= remaining.abs();
        let step = if is_last { remaining } else { h * direction };
        if !is_last && t + step == t {
            return Err(if last_not_finite {
                OdeError::NotFinite { t }
            } else {
                OdeError::StepTooSmall { t, h: step }
            });
        }
        if out.steps + out.rejected >= tol.max_steps {
            return Err(OdeError::TooManySteps {
                t,
                steps: out.steps + out.rejected,
            });
        }

        // One attempt: stages, solution, error, and f at the new point.
        let attempt = match stages(&mut f, &y, step, &mut ws, &mut out.evaluations) {
            Err(StageFailure::Field { stage, error }) => {
                return Err(OdeError::Field {
                    t: t + C[stage] * step,
                    error,
                })
            }
            Err(StageFailure::NotFinite) => None,
            Ok(()) => {
                ws.combine(&y, step, &B);
                let y_new = ws.scratch.clone();
                let err = error_norm(&y, &y_new, step, &ws, rtol, atol);
                if !y_new.iter().all(|v| v.is_finite()) || err.is_nan() {
                    None
                } else {
                    Some((y_new, err))
                }
            }
        };
        let Some((y_new, err)) = attempt else {
            out.rejected += 1;
            last_rejected = true;
            last_not_finite = true;
            h = step.abs() * SHRINK_NOT_FINITE;
            continue;
        };

        // Optimal step for the next attempt, from err ~ C·h^(order+1) → aim at err = 1.
        let factor = if err == 0.0 {
            GROW_MAX
        } else {
            (SAFETY * err.powf(-1.0 / f64::from(ORDER))).clamp(SHRINK_MIN, GROW_MAX)
        };
        if err > 1.0 {
            out.rejected += 1;
            last_rejected = true;
            last_not_finite = false;
            h = step.abs() * factor.min(1.0);
            continue;
        }

        let t_new = if is_last { t_end } else { t + step };
        match call(&mut f, &y_new, &mut out.evaluations) {
            Err(error) => return Err(OdeError::Field { t: t_new, error }),
            Ok(Err(())) => {
                out.rejected += 1;
                last_rejected = true;
                last_not_finite = true;
                h = step.abs() * SHRINK_NOT_FINITE;
                continue;
            }
            Ok(Ok(k)) => ws.k[0] = k,
        }
        out.steps += 1;
        t = t_new;
        y = y_new;
        if is_last {
            out.y = y;
            return Ok(out);
        }
        // No growth right after a rejection.
        h = step.abs()
            * if last_rejected {
                factor.min(1.0)
            } else {
                factor
            };
        last_rejected = false;
        last_not_finite = false;
    }
}

/// Fixed steps with the same tableau: `n` steps of size `t_end / n`. For the order tests.
#[cfg(test)]
fn integrate_fixed<E>(
    mut f: impl FnMut(&DVector<f64>) -> Result<DVector<f64>, E>,
    y0: &DVector<f64>,
    t_end: f64,
    n: usize,
) -> DVector<f64> {
    let h = t_end / n as f64;
    let mut ws = Workspace::new(y0.len());
    let mut evaluations = 0;
    let mut y = y0.clone();
    for _ in 0..n {
        ws.k[0] = f(&y).unwrap_or_else(|_| panic!("the field failed"));
        assert!(
            stages(&mut f, &y, h, &mut ws, &mut evaluations).is_ok(),
            "a stage failed"
        );
        ws.combine(&y, h, &B);
        y.copy_from(&ws.scratch);
    }
    y
}

/// One step of size `h` from `y`: the 8th-order solution and the two embedded error vectors,
/// `h·(b − b̂5)·k` and `h·(b − b̂3)·k`. For the tests of the error estimators.
#[cfg(test)]
fn one_step<E>(
    mut f: impl FnMut(&DVector<f64>) -> Result<DVector<f64>, E>,
    y: &DVector<f64>,
    h: f64,
) -> (DVector<f64>, DVector<f64>, DVector<f64>) {
    let mut ws = Workspace::new(y.len());
    let mut evaluations = 0;
    ws.k[0] = f(y).unwrap_or_else(|_| panic!("the field failed"));
    assert!(
        stages(&mut f, y, h, &mut ws, &mut evaluations).is_ok(),
        "a stage failed"
    );
    ws.combine(y, h, &B);
    let y_new = ws.scratch.clone();
    let e5 = DVector::from_fn(y.len(), |i, _| h * ws.weighted(&E5, i));
    let e3 = DVector::from_fn(y.len(), |i, _| {
        h * (ws.weighted(&B, i) - ws.weighted(&B3, i))
    });
    (y_new, e5, e3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::f64::consts::PI;

    type Field = fn(&DVector<f64>) -> Result<DVector<f64>, Infallible>;

    fn v(values: &[f64]) -> DVector<f64> {
        DVector::from_column_slice(values)
    }

    fn run(f: Field, y0: &[f64], t_end: f64) -> Integration {
        integrate(f, &v(y0), t_end, &Tolerances::default()).unwrap()
    }

    fn rel_err(a: f64, b: f64) -> f64 {
        (a - b).abs() / b.abs()
    }

    fn sci(values: &[f64]) -> String {
        let parts: Vec<String> = values.iter().map(|x| format!("{x:.2e}")).collect();
        parts.join(", ")
    }

    /// Least-squares slope of log(err) against log(h).
    fn slope(hs: &[f64], errs: &[f64]) -> f64 {
        let xs: Vec<f64> = hs.iter().map(|h| h.ln()).collect();
        let ys: Vec<f64> = errs.iter().map(|e| e.ln()).collect();
        let n = xs.len() as f64;
        let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
        let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
        let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
        sxy / sxx
    }

    // The Kepler problem q'' = −q/|q|³: a smooth, genuinely nonlinear system (scalar or linear
    // problems test only some of the order conditions), whose solution for eccentricity `ecc`
    // follows from Kepler's equation u − ecc·sin u = t.
    fn kepler(y: &DVector<f64>) -> Result<DVector<f64>, Infallible> {
        let r3 = (y[0] * y[0] + y[1] * y[1]).powf(1.5);
        Ok(v(&[y[2], y[3], -y[0] / r3, -y[1] / r3]))
    }

    fn kepler_exact(t: f64, ecc: f64) -> DVector<f64> {
        let mut u = t;
        for _ in 0..100 {
            let du = (u - ecc * u.sin() - t) / (1.0 - ecc * u.cos());
            u -= du;
            if du.abs() < 1e-16 {
                break;
            }
        }
        let w = (1.0 - ecc * ecc).sqrt();
        let d = 1.0 - ecc * u.cos();
        v(&[u.cos() - ecc, w * u.sin(), -u.sin() / d, w * u.cos() / d])
    }

    // A rotation z' = (−z₂, z₁) seen through the polynomial change of variables
    // y = (z₁, z₂ + z₁²): a nonlinear system with a closed-form solution and tame derivatives.
    fn warped(y: &DVector<f64>) -> Result<DVector<f64>, Infallible> {
        let z2 = y[1] - y[0] * y[0];
        Ok(v(&[-z2, y[0] - 2.0 * y[0] * z2]))
    }

    fn warped_exact(t: f64) -> DVector<f64> {
        let (z1, z2) = (t.cos(), t.sin());
        v(&[z1, z2 + z1 * z1])
    }

    #[test]
    fn tableau_is_consistent() {
        // Row sums are the nodes.
        for i in 0..STAGES {
            let sum: f64 = A[i].iter().sum();
            assert!((sum - C[i]).abs() < 1e-14, "row {i}: {sum} vs {}", C[i]);
        }
        // Quadrature conditions Σ b_i c_i^k = 1/(k+1) for k < 8.
        for k in 0..8 {
            let sum: f64 = B.iter().zip(&C).map(|(b, c)| b * c.powi(k)).sum();
            let exact = 1.0 / f64::from(k + 1);
            assert!((sum - exact).abs() < 1e-14, "k = {k}: {sum} vs {exact}");
        }
        // Both embedded formulas are consistent: b − b̂5 sums to 0, b̂3 to 1.
        assert!(E5.iter().sum::<f64>().abs() < 1e-14);
        assert!((B3.iter().sum::<f64>() - 1.0).abs() < 1e-14);
    }

    #[test]
    fn exponential_decay() {
        let r = run(|y| Ok(-y), &[1.0], 1.0);
        let exact = (-1.0f64).exp();
        let e = rel_err(r.y[0], exact);
        println!("y' = -y: rel err {e:.2e}, {} steps", r.steps);
        assert!(e <= 1e-12, "{e}");
    }

    #[test]
    fn linear_growth_and_decay_rates() {
        // Over t ∈ [0, 1], so that decaying solutions stay well above atol.
        for &lambda in &[-4.0, -1.0, -0.5, 0.3, 1.0, 3.0] {
            let f = move |y: &DVector<f64>| -> Result<DVector<f64>, Infallible> { Ok(y * lambda) };
            let y0 = v(&[0.7, -1.3]);
            let r = integrate(f, &y0, 1.0, &Tolerances::default()).unwrap();
            let g = lambda.exp();
            for i in 0..2 {
                let e = rel_err(r.y[i], y0[i] * g);
                println!("λ = {lambda}: rel err {e:.2e} ({} steps)", r.steps);
                assert!(e <= 1e-12, "λ = {lambda}, component {i}: {e}");
            }
        }
    }

    #[test]
    fn backwards_in_time() {
        let r = run(|y| Ok(-y), &[1.0], -1.0);
        let e = rel_err(r.y[0], 1f64.exp());
        assert!(e <= 1e-12, "{e}");
    }

    #[test]
    fn harmonic_oscillator_over_several_periods() {
        let t_end = 10.0 * PI + 0.3; // five periods and a bit
        let r = run(|y| Ok(v(&[-y[1], y[0]])), &[1.0, 0.0], t_end);
        let exact = [t_end.cos(), t_end.sin()];
        let err = ((r.y[0] - exact[0]).powi(2) + (r.y[1] - exact[1]).powi(2)).sqrt();
        let norm_drift = (r.y.norm() - 1.0).abs();
        println!(
            "oscillator: err {err:.2e}, norm drift {norm_drift:.2e}, {} steps",
            r.steps
        );
        assert!(err <= 1e-11, "{err}");
        assert!(norm_drift <= 1e-12, "{norm_drift}");
    }

    #[test]
    fn riccati_up_to_near_blow_up() {
        // y' = y², y(0) = 1: y(t) = 1/(1 − t).
        let r = run(|y| Ok(y.map(|x| x * x)), &[1.0], 0.9);
        let e = rel_err(r.y[0], 10.0);
        println!("y' = y²: rel err {e:.2e}, {} steps", r.steps);
        assert!(e <= 1e-12, "{e}");
    }

    #[test]
    fn logistic_growth() {
        // y' = y(1 − y), y(0) = 0.1: y(t) = 1/(1 + 9 e^{−t}).
        let r = run(|y| Ok(y.map(|x| x * (1.0 - x))), &[0.1], 5.0);
        let exact = 1.0 / (1.0 + 9.0 * (-5.0f64).exp());
        let e = rel_err(r.y[0], exact);
        println!("logistic: rel err {e:.2e}, {} steps", r.steps);
        assert!(e <= 1e-12, "{e}");
    }

    #[test]
    fn kepler_orbit() {
        let t_end = 2.0 * PI * 3.0 + 1.0;
        let r = integrate(
            kepler,
            &kepler_exact(0.0, 0.5),
            t_end,
            &Tolerances::default(),
        )
        .unwrap();
        let e = (&r.y - kepler_exact(t_end, 0.5)).norm();
        println!(
            "Kepler e = 0.5: err {e:.2e}, {} steps, {} rejected",
            r.steps, r.rejected
        );
        assert!(e <= 1e-10, "{e}");
    }

    /// Global error of `n` fixed steps over [0, t_end] against `exact`, for three `n`.
    fn fixed_step_order(
        name: &str,
        f: Field,
        y0: &DVector<f64>,
        exact: &DVector<f64>,
        t_end: f64,
        ns: [usize; 3],
    ) -> f64 {
        let hs: Vec<f64> = ns.iter().map(|&n| t_end / n as f64).collect();
        let errs: Vec<f64> = ns
            .iter()
            .map(|&n| (integrate_fixed(f, y0, t_end, n) - exact).norm())
            .collect();
        let p = slope(&hs, &errs);
        println!(
            "{name}: fixed-step errors {} at h = {hs:.3?}: order {p:.2}",
            sci(&errs)
        );
        // Well above rounding, so that the slope measures truncation error.
        assert!(errs.iter().all(|&e| e > 1e-13), "{name}: {errs:?}");
        p
    }

    #[test]
    fn order_is_eight() {
        // Three nonlinear problems, so that the order conditions of nonlinear trees count too
        // (the 200 conditions themselves were checked in exact arithmetic when typing the table).
        let t = 2.0 * PI;
        let cases = [
            fixed_step_order(
                "warped rotation",
                warped,
                &warped_exact(0.0),
                &warped_exact(t),
                t,
                [16, 32, 64],
            ),
            fixed_step_order(
                "circular Kepler orbit",
                kepler,
                &kepler_exact(0.0, 0.0),
                &kepler_exact(t, 0.0),
                t,
                [8, 16, 32],
            ),
            fixed_step_order(
                "y' = y²",
                |y| Ok(y.map(|x| x * x)),
                &v(&[1.0]),
                &v(&[2.0]),
                0.5,
                [2, 4, 8],
            ),
        ];
        for p in cases {
            assert!((p - 8.0).abs() < 0.5, "fitted order {p}");
        }
    }

    #[test]
    fn embedded_estimates_have_their_orders() {
        // Over one step the 8th-order solution's local error is O(h⁹), and the two embedded
        // error estimates, h·(b − b̂)·k for the 5th- and 3rd-order weights b̂, are O(h⁶) and
        // O(h⁴). A mistyped estimator weight would leave an O(h) or O(h²) term.
        let y0 = warped_exact(1.0);
        let (mut local, mut est5, mut est3) = (vec![], vec![], vec![]);
        let hs = [0.8, 0.4, 0.2, 0.1];
        for &h in &hs {
            let (y, e5, e3) = one_step(warped, &y0, h);
            local.push((&y - warped_exact(1.0 + h)).norm());
            est5.push(e5.norm());
            est3.push(e3.norm());
        }
        let p9 = slope(&hs[..3], &local[..3]);
        let (p5, p3) = (slope(&hs[1..], &est5[1..]), slope(&hs[1..], &est3[1..]));
        println!(
            "local errors {} (order {p9:.2}); 5th-order estimates {} (order {p5:.2}); \
             3rd-order estimates {} (order {p3:.2})",
            sci(&local),
            sci(&est5),
            sci(&est3)
        );
        assert!((p9 - 9.0).abs() < 0.5, "local order {p9}");
        assert!((p5 - 6.0).abs() < 0.5, "5th-order estimate slope {p5}");
        assert!((p3 - 4.0).abs() < 0.5, "3rd-order estimate slope {p3}");
    }

    #[test]
    fn tolerance_controls_steps_and_error() {
        let t_end = 2.0 * PI * 2.0;
        let exact = kepler_exact(t_end, 0.5);
        let tight = integrate(
            kepler,
            &kepler_exact(0.0, 0.5),
            t_end,
            &Tolerances::default(),
        )
        .unwrap();
        let loose_tol = Tolerances {
            rtol: 1e-8,
            atol: 1e-10,
            ..Tolerances::default()
        };
        let loose = integrate(kepler, &kepler_exact(0.0, 0.5), t_end, &loose_tol).unwrap();
        let (e_tight, e_loose) = ((&tight.y - &exact).norm(), (&loose.y - &exact).norm());
        println!(
            "rtol 1e-13: {} steps, err {e_tight:.2e}; rtol 1e-8: {} steps, err {e_loose:.2e}",
            tight.steps, loose.steps
        );
        assert!(
            loose.steps * 2 < tight.steps,
            "{} vs {}",
            loose.steps,
            tight.steps
        );
        assert!(e_loose > 100.0 * e_tight, "{e_loose} vs {e_tight}");
        assert!(e_loose < 1e-5, "{e_loose}");
    }

    #[test]
    fn statistics_add_up() {
        let r = run(|y| Ok(v(&[-y[1], y[0]])), &[1.0, 0.0], 7.0);
        // f(y0), the initial-step probe, 11 stages per attempt and f at each accepted point.
        assert_eq!(r.evaluations, 2 + 12 * r.steps + 11 * r.rejected);
        assert!(r.steps > 5);
    }

    #[test]
    fn last_step_lands_on_t_end() {
        // y' = 1 carries the time along: y(T) is T up to the rounding of the sum of the steps.
        for t_end in [0.7, 3.3, 1e-3, -2.9] {
            for tol in [
                Tolerances::default(),
                Tolerances {
                    rtol: 1e-6,
                    atol: 1e-6,
                    ..Tolerances::default()
                },
            ] {
                let f = |_: &DVector<f64>| -> Result<DVector<f64>, Infallible> { Ok(v(&[1.0])) };
                let r = integrate(f, &v(&[0.0]), t_end, &tol).unwrap();
                assert!(
                    (r.y[0] - t_end).abs() <= 8.0 * f64::EPSILON * t_end.abs(),
                    "{} vs {t_end} ({} steps)",
                    r.y[0],
                    r.steps
                );
            }
        }
        // A field that records where it is evaluated: the last evaluation (first-same-as-last
        // at the accepted end point) sees y(T) = (T, 0) rotated, so its time coordinate is T.
        let mut seen = vec![];
        let f = |y: &DVector<f64>| -> Result<DVector<f64>, Infallible> {
            seen.push(y[2]);
            Ok(v(&[-y[1], y[0], 1.0]))
        };
        let r = integrate(f, &v(&[1.0, 0.0, 0.0]), 5.0, &Tolerances::default()).unwrap();
        assert_eq!(seen.last().copied(), Some(r.y[2]));
        assert!(
            (r.y[2] - 5.0).abs() <= 8.0 * f64::EPSILON * 5.0,
            "{}",
            r.y[2]
        );
    }

    #[test]
    fn zero_absolute_tolerance() {
        // With atol = 0, a component that stays exactly 0 has a zero error and must not stall.
        let tol = Tolerances {
            rtol: 1e-10,
            atol: 0.0,
            ..Tolerances::default()
        };
        let r = integrate(
            |y: &DVector<f64>| -> Result<_, Infallible> { Ok(-y) },
            &v(&[1.0, 0.0]),
            1.0,
            &tol,
        )
        .unwrap();
        assert_eq!(r.y[1], 0.0);
        assert!(rel_err(r.y[0], (-1.0f64).exp()) < 1e-9);
    }

    #[test]
    fn zero_horizon_returns_y0() {
        let mut calls = 0;
        let f = |y: &DVector<f64>| -> Result<DVector<f64>, Infallible> {
            calls += 1;
            Ok(y.clone())
        };
        let r = integrate(f, &v(&[1.5, -2.0]), 0.0, &Tolerances::default()).unwrap();
        assert_eq!(r.y, v(&[1.5, -2.0]));
        assert_eq!((r.steps, r.rejected, r.evaluations, calls), (0, 0, 0, 0));
    }

    #[test]
    fn field_error_is_carried_through() {
        // y' = 1 from 0: fails once y passes 0.5, i.e. near t = 0.5.
        let f = |y: &DVector<f64>| -> Result<DVector<f64>, String> {
            if y[0] > 0.5 {
                Err(format!("out of domain at {}", y[0]))
            } else {
                Ok(DVector::from_element(1, 1.0))
            }
        };
        match integrate(f, &v(&[0.0]), 1.0, &Tolerances::default()) {
            Err(OdeError::Field { t, error }) => {
                assert!(t > 0.49 && t <= 1.0, "{t}");
                assert!(error.starts_with("out of domain"), "{error}");
            }
            other => panic!("expected a field error, got {other:?}"),
        }
        // At the very first evaluation.
        let fail = |_: &DVector<f64>| -> Result<DVector<f64>, &str> { Err("no") };
        assert_eq!(
            integrate(fail, &v(&[0.0]), 1.0, &Tolerances::default()).unwrap_err(),
            OdeError::Field {
                t: 0.0,
                error: "no"
            }
        );
    }

    #[test]
    fn blow_up_is_an_error_not_a_nan() {
        // y' = y², y(0) = 1 blows up at t = 1.
        let f: Field = |y| Ok(y.map(|x| x * x));
        match integrate(f, &v(&[1.0]), 2.0, &Tolerances::default()) {
            Err(OdeError::StepTooSmall { t, h }) => {
                println!("blow-up: step too small at t = {t} (h = {h:e})");
                assert!((t - 1.0).abs() < 1e-6, "{t}");
            }
            Err(OdeError::NotFinite { t }) => {
                println!("blow-up: not finite at t = {t}");
                assert!((t - 1.0).abs() < 1e-6, "{t}");
            }
            other => panic!("expected a blow-up error, got {other:?}"),
        }
        // Faster blow-up, y' = y³ from y = 10 (blows up at t = 0.005), and with loose
        // tolerances, which take large steps into the singularity.
        let f: Field = |y| Ok(y.map(|x| x * x * x));
        let loose = Tolerances {
            rtol: 1e-3,
            atol: 1e-3,
            ..Tolerances::default()
        };
        let result = integrate(f, &v(&[10.0]), 1.0, &loose);
        assert!(
            matches!(
                result,
                Err(OdeError::StepTooSmall { .. } | OdeError::NotFinite { .. })
            ),
            "{result:?}"
        );
    }

    #[test]
    fn non_finite_field_is_not_returned() {
        // A field that returns NaN beyond y = 2 (y' = 1): no step can pass it.
        let f: Field = |y| {
            Ok(if y[0] > 2.0 {
                v(&[f64::NAN])
            } else {
                v(&[1.0])
            })
        };
        match integrate(f, &v(&[0.0]), 3.0, &Tolerances::default()) {
            Err(OdeError::NotFinite { t }) => assert!((t - 2.0).abs() < 1e-6, "{t}"),
            other => panic!("expected NotFinite, got {other:?}"),
        }
        // Non-finite inputs.
        let id: Field = |y| Ok(y.clone());
        assert_eq!(
            integrate(id, &v(&[f64::NAN]), 1.0, &Tolerances::default()).unwrap_err(),
            OdeError::NotFinite { t: 0.0 }
        );
        assert_eq!(
            integrate(id, &v(&[1.0]), f64::INFINITY, &Tolerances::default()).unwrap_err(),
            OdeError::NotFinite { t: 0.0 }
        );
        let inf_at_start: Field = |_| Ok(v(&[f64::INFINITY]));
        assert_eq!(
            integrate(inf_at_start, &v(&[1.0]), 1.0, &Tolerances::default()).unwrap_err(),
            OdeError::NotFinite { t: 0.0 }
        );
    }

    #[test]
    fn too_many_steps() {
        let tol = Tolerances {
            max_steps: 10,
            ..Tolerances::default()
        };
        match integrate(
            |y: &DVector<f64>| -> Result<_, Infallible> { Ok(v(&[-y[1], y[0]])) },
            &v(&[1.0, 0.0]),
            100.0,
            &tol,
        ) {
            Err(OdeError::TooManySteps { t, steps }) => {
                assert_eq!(steps, 10);
                assert!(t > 0.0 && t < 100.0, "{t}");
            }
            other => panic!("expected TooManySteps, got {other:?}"),
        }
    }

    #[test]
    fn messages_are_sentences() {
        let e: OdeError<String> = OdeError::StepTooSmall {
            t: 0.37,
            h: 2.1e-15,
        };
        assert_eq!(
            e.to_string(),
            "the integrator could not meet its tolerance at t = 0.37 (step 2.1e-15)"
        );
        let e: OdeError<String> = OdeError::Field {
            t: 0.5,
            error: "log of a negative number".into(),
        };
        assert_eq!(
            e.to_string(),
            "the vector field could not be evaluated at t = 0.5: log of a negative number"
        );
        let e: OdeError<String> = OdeError::TooManySteps { t: 3.0, steps: 10 };
        assert_eq!(
            e.to_string(),
            "the integrator gave up at t = 3 after 10 steps, its limit"
        );
        let e: OdeError<String> = OdeError::NotFinite { t: 1.25 };
        assert_eq!(
            e.to_string(),
            "the solution is not finite at t = 1.25 (a NaN or an infinity appeared)"
        );
    }
}
