//! The check against gradient descent (DESIGN.md §4.3): run GD, integrate the truncated
//! equation of motion over the same horizon, and measure how the distance shrinks with η.
//! Also, along GD: the local error of one step predicted by the first neglected counter term
//! (DESIGN.md §2.3) against the measured one, and tracked quantities such as ‖θ_A‖² or 1_A·θ
//! along GD and along the EoM at each order.

use nalgebra::DVector;

use super::{integrate, DomainError, Eom, OdeError, Stepper, Tolerances, VectorField};

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
    /// The highest truncation order K checked (`None`: every term the [`Eom`] holds). An
    /// `Eom` with one term more than this predicts the local error of order K too.
    pub order: Option<usize>,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            lr: 0.05,
            steps: 40,
            halvings: 3,
            tolerances: Tolerances::default(),
            order: None,
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

/// The local error of one step, predicted against measured, for the EoM truncated after ξ_K
/// at one learning rate (DESIGN.md §2.3).
///
/// At N GD iterates θ_i (N = [`CheckOptions::steps`] at every η), the measured error is
/// m_i = flow_K(θ_i, η) − θ_{i+1}, the EoM truncated after ξ_K integrated for time η from θ_i
/// minus the next GD iterate; the predicted one is p_i = η^{K+2} ξ_{K+1}(θ_i), its leading
/// term. Their relative discrepancy shrinks like η.
///
/// The iterates are taken at the same times at every η: t = 0, η_0, …, (N−1) η_0 with η_0
/// the largest η, i.e. every 2^j-th iterate of the run at η_0/2^j. (The first N iterates of
/// each run would cover a horizon that shrinks with η, and the largest discrepancy along it
/// would then shrink faster than η wherever the discrepancy's coefficient varies along the
/// path.)
#[derive(Debug, Clone, PartialEq)]
pub struct LocalRow {
    /// K: 0 is gradient flow, whose local error is predicted by ξ_1.
    pub order: usize,
    /// η.
    pub lr: f64,
    /// Mean over the N iterates of ‖p_i‖ = η^{K+2} ‖ξ_{K+1}(θ_i)‖.
    pub predicted: Option<f64>,
    /// Mean over the N iterates of ‖m_i‖.
    pub measured: Option<f64>,
    /// max_i ‖m_i − p_i‖ / ‖m_i‖ over the iterates with m_i ≠ 0 (expected O(η)).
    pub discrepancy: Option<f64>,
    /// Some measured error, or its difference from the prediction, is at the floating-point
    /// and integrator floor, so the discrepancy measures rounding, not the prediction (the
    /// measured and predicted means may still be read).
    pub at_floor: bool,
    /// Why there are no numbers: GD diverged or left the domain before the last iterate
    /// needed, a term could not be evaluated, or the integrator failed.
    pub failure: Option<String>,
}

/// What an [`Observable`] computes from the parameters in its group A.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservableKind {
    /// ‖θ_A‖², conserved by gradient flow when the loss is scale-invariant in θ_A.
    SquaredNorm,
    /// 1_A·θ, the sum of the group's parameters, conserved by GD and the EoM at every order
    /// when the loss is translation-invariant in θ_A.
    Sum,
}

/// A scalar function of the parameters to follow along GD and the EoM.
#[derive(Debug, Clone, PartialEq)]
pub struct Observable {
    /// How it is shown (`‖w‖²`).
    pub label: String,
    /// The group A: indices into the parameter vector (0-based, in declaration order).
    pub indices: Vec<usize>,
    /// What is computed from the group.
    pub kind: ObservableKind,
}

impl Observable {
    /// The value at θ; `None` when an index is out of range or the value is not finite.
    ///
    /// ```
    /// use eomderive::numeric::{Observable, ObservableKind};
    /// use nalgebra::DVector;
    /// let theta = DVector::from_vec(vec![3.0, 4.0, 5.0]);
    /// let norm = Observable { label: "‖w‖²".into(), indices: vec![0, 1], kind: ObservableKind::SquaredNorm };
    /// assert_eq!(norm.value(&theta), Some(25.0));
    /// let sum = Observable { kind: ObservableKind::Sum, ..norm };
    /// assert_eq!(sum.value(&theta), Some(7.0));
    /// assert_eq!(Observable { indices: vec![3], ..sum }.value(&theta), None);
    /// ```
    pub fn value(&self, theta: &DVector<f64>) -> Option<f64> {
        let mut total = 0.0;
        for &i in &self.indices {
            let v = *theta.get(i)?;
            total += match self.kind {
                ObservableKind::SquaredNorm => v * v,
                ObservableKind::Sum => v,
            };
        }
        total.is_finite().then_some(total)
    }
}

/// An [`Observable`] along GD and along the EoM at each order, at the largest η.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    /// The observable's label.
    pub label: String,
    /// What is computed.
    pub kind: ObservableKind,
    /// The observable's group (parameter indices).
    pub indices: Vec<usize>,
    /// The value at the GD iterates θ_0..θ_N (`None` from where GD failed).
    pub gd: Vec<Option<f64>>,
    /// `eom[K][n]`: the value along the EoM truncated after ξ_K at time nη, n = 0..N, for
    /// K = 0..=order (K = 0 is gradient flow); `None` from where the integrator failed.
    pub eom: Vec<Vec<Option<f64>>>,
    /// Per order, max_n |eom[K][n] − gd[n]|; `None` unless both are defined at every step.
    pub max_deviation: Vec<Option<f64>>,
}

/// The whole check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// The optimizer whose iterates were run (`gd`, `heavy-ball`, …).
    pub optimizer: &'static str,
    /// Its parameter (β, r), if it has one.
    pub parameter: Option<f64>,
    /// The largest η.
    pub lr: f64,
    /// The η asked for, when the check ran at a smaller one ([`Check::lr`]) because the asked
    /// one was past the method's radius (see [`super::Radius`]).
    pub requested_lr: Option<f64>,
    /// GD steps at that η.
    pub steps: usize,
    /// T = steps · lr.
    pub horizon: f64,
    /// One row per order K = 0..=order and learning rate, orders outermost.
    pub rows: Vec<CheckRow>,
    /// Fitted d log(error) / d log(η) per order (expected K + 1), when two or more errors
    /// above the floor exist.
    pub slopes: Vec<Option<f64>>,
    /// For the largest η: the error after each GD step n = 1..N, per order (for plots);
    /// `None` where GD or the integrator failed.
    pub trajectories: Vec<Vec<Option<f64>>>,
    /// Predicted against measured local error, one row per K = 0..order−1 (ξ_{K+1} must have
    /// been derived) and learning rate, orders outermost.
    pub local: Vec<LocalRow>,
    /// The observables asked for, along GD and the EoM at the largest η.
    pub tracked: Vec<Tracked>,
    /// For a method that reads past iterates (heavy-ball, Nesterov): the run was started on
    /// the EoM's trajectory (θ_{−1} from its backward flow); these rows are the usual
    /// zero-velocity start θ_{−1} = θ_0 instead, against the EoM of the top order, one per η
    /// (an O(η) offset that no order removes). Empty for one-step methods.
    pub cold_start: Vec<CheckRow>,
    /// The fitted slope of [`Check::cold_start`] (about 1).
    pub cold_slope: Option<f64>,
    /// For SGD: the batches and their order (the rows' iterates are then every m-th SGD
    /// step: cyclic epochs, or the epoch averaged over every order).
    pub batches: Option<(usize, crate::series::BatchOrder)>,
    /// For shuffled SGD: real random reshuffling's mean iterate after one epoch against the
    /// EoM (see [`super::reshuffling`]).
    pub monte_carlo: Option<super::MonteCarlo>,
}

/// The EoM truncated after ξ_K integrated step by step: the states at times 0, η, …, nη.
struct Path {
    /// `states[n]` at time nη; all N + 1 of them unless the integrator failed.
    states: Vec<DVector<f64>>,
    failure: Option<String>,
}

fn flow_path(
    eom: &Eom,
    k: usize,
    eta: f64,
    x0: &DVector<f64>,
    steps: usize,
    tol: &Tolerances,
) -> Path {
    let mut states = Vec::with_capacity(steps + 1);
    states.push(x0.clone());
    for _ in 0..steps {
        let y = states.last().expect("x0 is there");
        match flow(eom, k, eta, y, eta, tol) {
            Ok(next) => states.push(next),
            Err(failure) => {
                return Path {
                    states,
                    failure: Some(failure),
                }
            }
        }
    }
    Path {
        states,
        failure: None,
    }
}

/// Runs GD and the truncated EoM for K = 0..=`eom.order()` (or to [`CheckOptions::order`])
/// and η, η/2, …, η/2^halvings.
/// `descent` computes the loss followed by its gradient (see [`gradient_descent`]).
///
/// Besides the distances at the horizon ([`Check::rows`], [`Check::slopes`]), it measures the
/// local error of one step against its prediction η^{K+2} ξ_{K+1} ([`Check::local`]) and
/// follows each of `observables` along GD and the EoM at the largest η ([`Check::tracked`]).
///
/// ```
/// use eomderive::numeric::{check, CheckOptions, Eom, Observable, ObservableKind, VectorField};
/// use nalgebra::DVector;
/// // f = (u − v)²/2 is translation-invariant in (u, v): u + v is conserved at every order.
/// let d = eomderive::derive(&eomderive::lang::Source::inline("(u - v)^2/2"), &Default::default()).unwrap();
/// let g = &d.model.graph;
/// let eom = Eom::compile(g, &d.gradient, &d.xi);
/// let descent = VectorField::compile(g, &[&[d.model.loss][..], &d.gradient[..]].concat());
/// let sum = Observable { label: "u + v".into(), indices: vec![0, 1], kind: ObservableKind::Sum };
/// let x0 = DVector::from_vec(vec![1.0, -0.5]);
/// let options = CheckOptions { lr: 0.1, steps: 8, ..Default::default() };
/// let c = check(&eom, &descent, &x0, &options, &[sum]);
/// assert!(c.tracked[0].max_deviation.iter().all(|d| d.unwrap() < 1e-12));
/// assert_eq!(c.local.len(), 2 * 4); // K = 0, 1 (ξ_1, ξ_2 predict them) at η, η/2, η/4, η/8
/// // Checking orders 0..1 only, ξ_2 predicts order 1's local error as well:
/// let c = check(&eom, &descent, &x0, &CheckOptions { order: Some(1), ..options }, &[]);
/// assert_eq!((c.slopes.len(), c.local.len()), (2, 2 * 4));
/// ```
pub fn check(
    eom: &Eom,
    descent: &VectorField,
    x0: &DVector<f64>,
    options: &CheckOptions,
    observables: &[Observable],
) -> Check {
    check_method(eom, descent, &Stepper::gd(), x0, options, observables)
}

/// [`check`] for any optimizer: its own iterates (`stepper`) against its EoM (`eom`, with
/// its leading coefficient). A method that reads past iterates starts on the EoM's
/// trajectory: θ_{−j} is the EoM of the highest order compiled integrated backwards for time
/// jη, so that the run is on the slow manifold from the start; the zero-velocity start is run
/// beside it ([`Check::cold_start`]).
///
/// ```
/// use eomderive::numeric::{check_method, CheckOptions, Eom, Stepper, VectorField};
/// use eomderive::series::{Method, Optimizer};
/// use eomderive::{derive, lang::Source, Options};
/// use nalgebra::DVector;
/// use num_rational::BigRational;
/// let half = BigRational::new(1.into(), 2.into());
/// let hb = Options { method: Some(Method::HeavyBall), momentum: Some(half), order: 2, analyze: false, ..Options::default() };
/// let d = derive(&Source::inline("param u = 1\nloss = u^4/4"), &hb).unwrap();
/// let eom = Eom::compile(&d.model.graph, &d.gradient, &d.xi).with_leading(2.0); // 1/(1 − β)
/// let descent = VectorField::compile(&d.model.graph, &[d.model.loss, d.gradient[0]]);
/// let stepper = Stepper::new(&d.optimizer);
/// // λ = 3u² = 3 and heavy-ball's radius is (1 − √β)² = 0.086: η well inside 0.029.
/// let options = CheckOptions { lr: 0.004, steps: 20, ..Default::default() };
/// let c = check_method(&eom, &descent, &stepper, &DVector::from_vec(vec![1.0]), &options, &[]);
/// assert!((c.slopes[1].unwrap() - 2.0).abs() < 0.15);
/// assert!((c.cold_slope.unwrap() - 1.0).abs() < 0.15); // θ_{−1} = θ_0 leaves an O(η) offset
/// ```
pub fn check_method(
    eom: &Eom,
    descent: &VectorField,
    stepper: &Stepper,
    x0: &DVector<f64>,
    options: &CheckOptions,
    observables: &[Observable],
) -> Check {
    let horizon = options.lr * options.steps as f64;
    let tol = &options.tolerances;
    let top = options.order.map_or(eom.order(), |k| k.min(eom.order()));
    let lrs: Vec<(f64, usize)> = (0..=options.halvings)
        .map(|j| (options.lr / f64::powi(2.0, j as i32), options.steps << j))
        .collect();
    let gd_runs: Vec<Descent> = lrs
        .iter()
        .map(|&(eta, n)| match warm_start(eom, stepper, x0, eta, tol) {
            Ok(start) => descend(descent, stepper, &start, eta, n),
            Err(why) => Descent {
                iterates: vec![x0.clone()],
                failure: Some(format!(
                    "could not be started on the EoM's trajectory: {why}"
                )),
            },
        })
        .collect();
    // At the largest η the EoM is integrated step by step, to follow it along the way.
    let (eta0, n0) = lrs[0];
    let paths: Vec<Path> = (0..=top)
        .map(|k| flow_path(eom, k, eta0, x0, n0, tol))
        .collect();
    let mut rows = Vec::new();
    for (k, path) in paths.iter().enumerate() {
        for (j, &(eta, n)) in lrs.iter().enumerate() {
            let mut row = CheckRow {
                order: k,
                lr: eta,
                steps: n,
                error: None,
                at_floor: false,
                failure: None,
            };
            let run = &gd_runs[j];
            match &run.failure {
                Some(why) => row.failure = Some(format!("{} {why}", label(stepper))),
                None => {
                    let gd = &run.iterates;
                    if j == 0 {
                        match &path.failure {
                            Some(f) => row.failure = Some(f.clone()),
                            None => row.error = Some((&path.states[n] - &gd[n]).norm()),
                        }
                    } else {
                        match flow(eom, k, eta, x0, horizon, tol) {
                            Ok(y) => row.error = Some((&y - &gd[n]).norm()),
                            Err(failure) => row.failure = Some(failure),
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
    let trajectories = paths
        .iter()
        .map(|p| {
            (1..=n0)
                .map(|n| Some((p.states.get(n)? - gd_runs[0].iterates.get(n)?).norm()))
                .collect()
        })
        .collect();
    let slopes = (0..=top)
        .map(|k| rows_slope(rows.iter().filter(|r| r.order == k)))
        .collect();
    // K's local error is predicted by ξ_{K+1}, so by the terms the Eom holds beyond K.
    let local = (0..eom.order().min(top + 1))
        .flat_map(|k| {
            let runs = lrs.iter().zip(&gd_runs).enumerate();
            runs.map(move |(j, (&(eta, _), run))| (k, eta, 1 << j, run))
        })
        .map(|(k, eta, stride, run)| {
            let who = label(stepper);
            local_row(eom, run, &who, eta, k, options.steps, stride, tol)
        })
        .collect();
    let tracked = observables
        .iter()
        .map(|o| track(o, &gd_runs[0].iterates, &paths, n0))
        .collect();
    let cold_start: Vec<CheckRow> = if stepper.history() > 1 {
        lrs.iter()
            .map(|&(eta, n)| {
                let start = vec![x0.clone(); stepper.history()];
                let run = descend(descent, stepper, &start, eta, n);
                let mut row = CheckRow {
                    order: top,
                    lr: eta,
                    steps: n,
                    error: None,
                    at_floor: false,
                    failure: None,
                };
                match (&run.failure, flow(eom, top, eta, x0, horizon, tol)) {
                    (Some(why), _) => row.failure = Some(format!("{} {why}", label(stepper))),
                    (None, Err(f)) => row.failure = Some(f),
                    (None, Ok(y)) => {
                        let e = (&y - &run.iterates[n]).norm();
                        row.at_floor = e <= floor(&run.iterates[n], n);
                        row.error = Some(e);
                    }
                }
                row
            })
            .collect()
    } else {
        Vec::new()
    };
    let cold_slope = rows_slope(cold_start.iter());
    Check {
        optimizer: stepper.name,
        parameter: stepper.parameter,
        lr: options.lr,
        requested_lr: None,
        steps: options.steps,
        horizon,
        rows,
        slopes,
        trajectories,
        local,
        tracked,
        cold_start,
        cold_slope,
        batches: None,
        monte_carlo: None,
    }
}

/// "GD", or the optimizer's name, for failure messages.
fn label(stepper: &Stepper) -> String {
    match stepper.name {
        "gd" => "GD".into(),
        name => name.into(),
    }
}

/// [θ_0, θ_{−1}, …] on the trajectory of the EoM of the highest order compiled: θ_{−j} is its
/// flow for time −jη. Just [θ_0] for a one-step method.
fn warm_start(
    eom: &Eom,
    stepper: &Stepper,
    x0: &DVector<f64>,
    eta: f64,
    tol: &Tolerances,
) -> Result<Vec<DVector<f64>>, String> {
    let mut start = vec![x0.clone()];
    for _ in 1..stepper.history() {
        let last = start.last().expect("θ_0 is there");
        start.push(flow(eom, eom.order(), eta, last, -eta, tol)?);
    }
    Ok(start)
}

/// Predicted against measured local error at `steps` iterates of one GD run, every
/// `stride`-th one from θ_0 (the same times at every η, see [`LocalRow`]).
#[allow(clippy::too_many_arguments)]
fn local_row(
    eom: &Eom,
    run: &Descent,
    who: &str,
    eta: f64,
    k: usize,
    steps: usize,
    stride: usize,
    tol: &Tolerances,
) -> LocalRow {
    let mut row = LocalRow {
        order: k,
        lr: eta,
        predicted: None,
        measured: None,
        discrepancy: None,
        at_floor: false,
        failure: None,
    };
    // The last iterate needed is θ_{(N−1)·stride + 1}.
    if steps == 0 || run.iterates.len() < (steps - 1) * stride + 2 {
        row.failure = Some(format!(
            "{who} {}",
            run.failure.as_deref().unwrap_or("took too few steps")
        ));
        return row;
    }
    let weight = eta.powi(k as i32 + 2);
    let (mut predicted, mut measured) = (0.0, 0.0);
    let mut discrepancy: Option<f64> = None;
    for i in (0..steps).map(|n| n * stride) {
        let (theta, next) = (&run.iterates[i], &run.iterates[i + 1]);
        let xi = match eom.terms(theta) {
            Ok(mut t) => t.swap_remove(k + 1),
            Err(e) => {
                row.failure = Some(format!("a counter term is undefined along GD: {e}"));
                return row;
            }
        };
        let after = match flow(eom, k, eta, theta, eta, tol) {
            Ok(y) => y,
            Err(failure) => {
                row.failure = Some(failure);
                return row;
            }
        };
        let m = after - next;
        let p = xi * weight;
        let (m_norm, p_norm) = (m.norm(), p.norm());
        if !(m_norm.is_finite() && p_norm.is_finite()) {
            row.failure = Some("the local error is not finite".into());
            return row;
        }
        measured += m_norm;
        predicted += p_norm;
        // Rounding and the integrator blur m_i by about floor(θ, 1): the discrepancy means
        // something only where both m_i and m_i − p_i stand above that.
        let miss = (m - p).norm();
        let blur = floor(next, 1);
        row.at_floor |= m_norm <= blur || miss <= blur;
        if m_norm > 0.0 {
            let d = miss / m_norm;
            if d.is_finite() {
                discrepancy = Some(discrepancy.map_or(d, |x| x.max(d)));
            }
        }
    }
    let n = steps as f64;
    row.predicted = Some(predicted / n);
    row.measured = Some(measured / n);
    row.discrepancy = discrepancy;
    row
}

/// One observable along GD and the step-by-step EoM paths.
fn track(o: &Observable, gd: &[DVector<f64>], paths: &[Path], steps: usize) -> Tracked {
    let along = |states: &[DVector<f64>]| -> Vec<Option<f64>> {
        (0..=steps)
            .map(|n| states.get(n).and_then(|x| o.value(x)))
            .collect()
    };
    let gd_values = along(gd);
    let eom: Vec<Vec<Option<f64>>> = paths.iter().map(|p| along(&p.states)).collect();
    let max_deviation = eom
        .iter()
        .map(|values| {
            values
                .iter()
                .zip(&gd_values)
                .try_fold(0.0f64, |m, (e, g)| {
                    Some(m.max((e.as_ref()? - g.as_ref()?).abs()))
                })
                .filter(|m| m.is_finite())
        })
        .collect();
    Tracked {
        label: o.label.clone(),
        kind: o.kind,
        indices: o.indices.clone(),
        gd: gd_values,
        eom,
        max_deviation,
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
    let y = flow(eom, k, eta, x0, eta, tolerances)?;
    Ok((&y - &gd[1]).norm())
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
    let run = descend(
        descent,
        &Stepper::gd(),
        std::slice::from_ref(x0),
        eta,
        steps,
    );
    match run.failure {
        Some(why) => Err(why),
        None => Ok(run.iterates),
    }
}

/// A GD run, complete or not.
struct Descent {
    /// The iterates from θ_0 whose loss is defined: all N + 1 unless GD failed.
    iterates: Vec<DVector<f64>>,
    /// Why GD stopped early.
    failure: Option<String>,
}

fn descend(
    descent: &VectorField,
    stepper: &Stepper,
    start: &[DVector<f64>],
    eta: f64,
    steps: usize,
) -> Descent {
    let (iterates, failure) = stepper.iterate(descent, start, eta, steps);
    Descent { iterates, failure }
}

/// Errors below this are rounding: about N steps of relative error ε on ‖θ‖, with margin.
fn floor(theta: &DVector<f64>, steps: usize) -> f64 {
    100.0 * f64::EPSILON * (steps as f64).sqrt().max(1.0) * (1.0 + theta.norm())
}

/// The fitted d log(error)/d log(η) of rows, those at the floor or without an error left out.
fn rows_slope<'a>(rows: impl Iterator<Item = &'a CheckRow>) -> Option<f64> {
    let points: Vec<(f64, f64)> = rows
        .filter(|r| !r.at_floor)
        .filter_map(|r| r.error.filter(|e| *e > 0.0).map(|e| (r.lr.ln(), e.ln())))
        .collect();
    fit_slope(&points)
}

/// Least-squares slope of y against x.
pub(super) fn fit_slope(points: &[(f64, f64)]) -> Option<f64> {
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

/// θ(t) under the EoM truncated after ξ_K at learning rate η, from θ(0) = `from`, or why the
/// integration failed.
pub(super) fn flow(
    eom: &Eom,
    k: usize,
    eta: f64,
    from: &DVector<f64>,
    t: f64,
    tol: &Tolerances,
) -> Result<DVector<f64>, String> {
    integrate(|y: &DVector<f64>| eom.rhs(y, eta, k), from, t, tol)
        .map(|r| r.y)
        .map_err(|e| describe(&e))
}

fn describe(e: &OdeError<DomainError>) -> String {
    match e {
        OdeError::Field { error, .. } => format!("the EoM left the loss's domain: {error}"),
        other => other.to_string(),
    }
}
