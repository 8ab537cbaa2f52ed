//! An optimizer's step map run on floats: the same [`Scheme`] that `series` solves tree by
//! tree, with its coefficients as `f64`.

use nalgebra::DVector;
use num_rational::BigRational;

use std::rc::Rc;

use super::{to_f64, Epochs, VectorField};
use crate::series::{Optimizer, Scheme};

/// The iterates of one optimizer, ready to run.
///
/// ```
/// use eomderive::numeric::{Stepper, VectorField};
/// use eomderive::series::{Method, Optimizer};
/// use nalgebra::DVector;
/// // f = u²/2 (g = u): heavy-ball with β = 1/2 from θ_{−1} = θ_0 = 1: 1, 0.9, 0.76, ...
/// let d = eomderive::derive(&eomderive::lang::Source::inline("u^2/2"), &Default::default()).unwrap();
/// let descent = VectorField::compile(&d.model.graph, &[d.model.loss, d.gradient[0]]);
/// let hb = Stepper::new(&Optimizer::new(Method::HeavyBall, Some(num_rational::BigRational::new(1.into(), 2.into()))));
/// let one = DVector::from_vec(vec![1.0]);
/// let run = hb.run(&descent, &[one.clone(), one], 0.1, 2).unwrap();
/// assert!((run[1][0] - 0.9).abs() < 1e-15 && (run[2][0] - 0.76).abs() < 1e-15);
/// ```
#[derive(Debug, Clone)]
pub struct Stepper {
    /// The optimizer's name (`heavy-ball`).
    pub name: &'static str,
    /// Its parameter's value, if it has one.
    pub parameter: Option<f64>,
    /// The scheme, in floats.
    pub scheme: Scheme<f64>,
    /// Stages that are θ_n itself (their gradient is the one computed with the loss).
    identity: Vec<bool>,
    /// For SGD: one iterate is an epoch of m steps of η/m each (so that an iterate is η of
    /// time, as for every other method; see [`Stepper::epochs`]).
    epochs: Option<Rc<Epochs>>,
}

impl Stepper {
    /// The stepper of an optimizer (with its parameter's value, or the default).
    pub fn new(optimizer: &Optimizer) -> Stepper {
        let exact = optimizer.scheme();
        let identity = exact
            .stages
            .iter()
            .map(|s| {
                s.gradients
                    .iter()
                    .all(|c| *c == BigRational::from_integer(0.into()))
                    && s.base
                        .iter()
                        .enumerate()
                        .all(|(j, c)| *c == BigRational::from_integer(i64::from(j == 0).into()))
            })
            .collect();
        Stepper {
            name: optimizer.method.name(),
            parameter: optimizer.value().as_ref().map(to_f64),
            scheme: exact.map(to_f64),
            identity,
            epochs: None,
        }
    }

    /// SGD's epochs as a one-step method: an iterate of step h is one epoch of m batch steps
    /// of h/m, so that the check's time per iterate is h (the equation of motion in h has
    /// ξ_k / m^k in place of ξ_k).
    pub fn epochs(epochs: Epochs) -> Stepper {
        Stepper {
            name: "sgd",
            epochs: Some(Rc::new(epochs)),
            ..Stepper::gd()
        }
    }

    /// Plain gradient descent.
    pub fn gd() -> Stepper {
        Stepper::new(&Optimizer::gd())
    }

    /// How many iterates a step reads (θ_n, θ_{n−1}, …).
    pub fn history(&self) -> usize {
        self.scheme.history()
    }

    /// The iterates θ_0..θ_N from `start` = [θ_0, θ_{−1}, …] (as many as [`Stepper::history`]),
    /// or why they stopped (see [`Stepper::iterate`]).
    pub fn run(
        &self,
        descent: &VectorField,
        start: &[DVector<f64>],
        eta: f64,
        steps: usize,
    ) -> Result<Vec<DVector<f64>>, String> {
        let (iterates, failure) = self.iterate(descent, start, eta, steps);
        match failure {
            Some(why) => Err(why),
            None => Ok(iterates),
        }
    }

    /// The iterates θ_0..θ_N whose loss is defined, and why they stopped early if they did:
    /// an iterate or a stage point where the loss is undefined
    /// (`left the loss's domain at step n: log of -0.1`) or divergence (`diverged at step n`).
    /// `descent` computes the loss followed by its gradient.
    pub fn iterate(
        &self,
        descent: &VectorField,
        start: &[DVector<f64>],
        eta: f64,
        steps: usize,
    ) -> (Vec<DVector<f64>>, Option<String>) {
        let x0 = &start[0];
        let limit = 1e12 * (1.0 + x0.norm());
        let n = x0.len();
        let h = self.history();
        let mut values = vec![0.0; n + 1];
        let mut stage_values = vec![0.0; n + 1];
        let mut iterates = Vec::with_capacity(steps + 1);
        iterates.push(x0.clone());
        // θ_{n−j} for j ≥ 1 before θ_0 is reached.
        let past = |iterates: &[DVector<f64>], step: usize, j: usize| -> DVector<f64> {
            if j <= step {
                iterates[step - j].clone()
            } else {
                start[(j - step).min(start.len() - 1)].clone()
            }
        };
        let mut forces: Vec<DVector<f64>> = Vec::with_capacity(self.scheme.stages.len());
        for step in 0..=steps {
            let x = &iterates[step];
            if let Err(e) = descent.eval_into(x.as_slice(), &mut values) {
                // The last iterate kept is the last one whose loss is defined.
                iterates.pop();
                return (
                    iterates,
                    Some(format!("left the loss's domain at step {step}: {e}")),
                );
            }
            if step == steps {
                break;
            }
            if let Some(e) = &self.epochs {
                let h = eta / e.batches() as f64;
                match e.epoch(x, h) {
                    Ok(next) if next.iter().all(|v| v.is_finite()) && next.norm() <= limit => {
                        iterates.push(next);
                        continue;
                    }
                    Ok(_) => return (iterates, Some(format!("diverged at epoch {}", step + 1))),
                    Err(why) => return (iterates, Some(format!("{why} (epoch {})", step + 1))),
                }
            }
            let history: Vec<DVector<f64>> = (0..h).map(|j| past(&iterates, step, j)).collect();
            forces.clear();
            for (s, stage) in self.scheme.stages.iter().enumerate() {
                if self.identity[s] {
                    forces.push(DVector::from_column_slice(&values[1..]));
                    continue;
                }
                let mut y = DVector::zeros(n);
                for (b, theta) in stage.base.iter().zip(&history) {
                    if *b != 0.0 {
                        y += theta * *b;
                    }
                }
                for (c, force) in stage.gradients.iter().zip(&forces) {
                    if *c != 0.0 {
                        y += force * (eta * c);
                    }
                }
                if let Err(e) = descent.eval_into(y.as_slice(), &mut stage_values) {
                    return (
                        iterates,
                        Some(format!(
                            "left the loss's domain at a gradient point of step {}: {e}",
                            step + 1
                        )),
                    );
                }
                forces.push(DVector::from_column_slice(&stage_values[1..]));
            }
            let next = DVector::from_iterator(
                n,
                (0..n).map(|i| {
                    // Summed from the first term (not from 0.0), so that GD's step is exactly
                    // θ − η g, sign of zero included.
                    let kept = sum(self.scheme.keep.iter().zip(&history).map(|(k, t)| k * t[i]));
                    let force = sum(self
                        .scheme
                        .weights
                        .iter()
                        .zip(&forces)
                        .map(|(w, f)| w * f[i]));
                    kept + eta * force
                }),
            );
            if !next.iter().all(|v| v.is_finite()) || next.norm() > limit {
                return (iterates, Some(format!("diverged at step {}", step + 1)));
            }
            iterates.push(next);
        }
        (iterates, None)
    }
}

fn sum(mut terms: impl Iterator<Item = f64>) -> f64 {
    let first = terms.next().unwrap_or(0.0);
    terms.fold(first, |acc, t| acc + t)
}

/// How far an optimizer's series in η reaches at a point (DESIGN.md §2.4): on a quadratic
/// with Hessian eigenvalue λ the EoM's series converges only for |ηλ| below the method's
/// radius, 1 for GD, (1 − √β)² for heavy-ball, ((1 − β)/(1 + β))² for Nesterov; past it every
/// added order makes the truncated EoM worse, though the optimizer itself may run fine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Radius {
    /// The method's radius in ηλ.
    pub radius: f64,
    /// λ_max: the largest |eigenvalue| of the Hessian at the point (by power iteration).
    pub lambda_max: f64,
    /// radius / λ_max: the η past which the series diverges there.
    pub max_lr: f64,
    /// The η below which successive orders shrink as they should there (the check runs
    /// under half of it): `max_lr`, except for SAM with |r| > 1, whose coefficients grow like
    /// |r|^{k/2} until ηλ ≈ 1/|r|, well inside its radius 1/√|r|.
    pub asymptotic_lr: f64,
}

impl Radius {
    /// The η the check runs at when `requested` is asked: `requested` itself inside half of
    /// [`Radius::asymptotic_lr`], else a round η at a quarter of it.
    ///
    /// ```
    /// use eomderive::numeric::Radius;
    /// let r = Radius { radius: 0.0026, lambda_max: 1.0, max_lr: 0.0026, asymptotic_lr: 0.0026 };
    /// assert_eq!(r.check_lr(0.001), 0.001);
    /// assert_eq!(r.check_lr(0.05), 0.0005); // 0.25 × 0.0026 = 0.00065, rounded down
    /// ```
    pub fn check_lr(&self, requested: f64) -> f64 {
        let scale = self.asymptotic_lr;
        if requested > 0.5 * scale && scale > 0.0 {
            round_down(0.25 * scale)
        } else {
            requested
        }
    }

    /// The radius at θ, from the Hessian there (power iteration on Hessian-vector products
    /// of the compiled gradient); `None` where the Hessian is undefined or not finite.
    ///
    /// ```
    /// use eomderive::numeric::Radius;
    /// use eomderive::series::{Method, Optimizer};
    /// let d = eomderive::derive(&eomderive::lang::Source::inline("2*u^2 + v^2/2"), &Default::default()).unwrap();
    /// let hb = Optimizer::new(Method::HeavyBall, Some(num_rational::BigRational::new(1.into(), 4.into())));
    /// let r = Radius::at(&hb, &d.model.graph, &d.gradient, &[0.3, 0.1]).unwrap();
    /// assert!((r.lambda_max - 4.0).abs() < 1e-12 && (r.radius - 0.25).abs() < 1e-15); // (1 − √β)²
    /// assert!((r.max_lr - 0.0625).abs() < 1e-15);
    /// ```
    pub fn at(
        optimizer: &Optimizer,
        graph: &crate::expr::Graph,
        gradient: &[crate::expr::Id],
        x: &[f64],
    ) -> Option<Radius> {
        let lambda_max = spectral_radius(&super::Program::compile(graph, gradient), x)?;
        let radius = series_radius(optimizer);
        let scale = match (optimizer.method, optimizer.value().as_ref().map(to_f64)) {
            (crate::series::Method::Sam, Some(r)) if r.abs() > 1.0 => radius.min(1.0 / r.abs()),
            _ => radius,
        };
        let per = |x: f64| {
            if lambda_max > 0.0 {
                x / lambda_max
            } else {
                f64::INFINITY
            }
        };
        Some(Radius {
            radius,
            lambda_max,
            max_lr: per(radius),
            asymptotic_lr: per(scale),
        })
    }
}

/// The largest |eigenvalue| of the Hessian at x, by power iteration on Hessian-vector
/// products (directional derivatives of the compiled gradient): a cost of a few dozen
/// gradient evaluations whatever the number of parameters. `None` where a product is undefined
/// or not finite.
fn spectral_radius(gradient: &super::Program, x: &[f64]) -> Option<f64> {
    let n = x.len();
    // A fixed start with no special direction (the same every run, so reports are
    // deterministic).
    let mut v: Vec<f64> = (0..n)
        .map(|i| 1.0 + 0.5 * ((i as f64) * 0.7 + 0.3).sin())
        .collect();
    let mut estimate = 0.0f64;
    for _ in 0..500 {
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return (norm == 0.0).then_some(0.0);
        }
        v.iter_mut().for_each(|a| *a /= norm);
        let w = super::taylor_directional(gradient, x, &[&v]).ok()?;
        let next = w.iter().map(|a| a * a).sum::<f64>().sqrt();
        if !next.is_finite() {
            return None;
        }
        let settled = (next - estimate).abs() <= 1e-13 * next;
        estimate = next;
        v = w;
        if settled {
            break;
        }
    }
    Some(estimate)
}

/// The radius in ηλ of an optimizer's series on a quadratic: the distance from 0 to the
/// nearest singularity of log r(x), r the method's slow root (see [`Radius`]).
///
/// ```
/// use eomderive::numeric::series_radius;
/// use eomderive::series::{Method, Optimizer};
/// let sam = Optimizer::new(Method::Sam, None); // r = 1: 1 − x − x² vanishes at (√5 − 1)/2
/// assert!((series_radius(&sam) - (5f64.sqrt() - 1.0) / 2.0).abs() < 1e-15);
/// assert_eq!(series_radius(&Optimizer::gd()), 1.0);
/// ```
pub fn series_radius(optimizer: &Optimizer) -> f64 {
    use crate::series::Method;
    let p = optimizer.value().as_ref().map_or(0.0, to_f64);
    match optimizer.method {
        Method::Gd | Method::Extragradient | Method::Sgd => 1.0,
        Method::HeavyBall => (1.0 - p.sqrt()).powi(2),
        Method::Nesterov => ((1.0 - p) / (1.0 + p)).powi(2),
        Method::Sam => {
            // The roots of r x² + x − 1 (the step's factor 1 − x − r x²).
            if p == 0.0 {
                return 1.0;
            }
            let disc = 1.0 + 4.0 * p;
            if disc >= 0.0 {
                let s = disc.sqrt();
                ((-1.0 + s) / (2.0 * p))
                    .abs()
                    .min(((-1.0 - s) / (2.0 * p)).abs())
            } else {
                // Complex pair: |x|² = c/a = −1/r.
                (-1.0 / p).sqrt()
            }
        }
    }
}

/// The largest 1, 2 or 5 × 10^k not above x (x > 0).
fn round_down(x: f64) -> f64 {
    let decade = 10f64.powf(x.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|m| m * decade)
        .find(|&v| v <= x)
        .unwrap_or(decade)
}
