//! Minibatch SGD on floats (DESIGN.md §2.5): epochs of m steps θ ← θ − η ∇f_a(θ), in the
//! cyclic order, averaged over every order (the expected iterate of random reshuffling), or
//! in random orders for a Monte Carlo estimate of that expectation.

use nalgebra::DVector;

use super::{Eom, Tolerances, VectorField};
use crate::series::BatchOrder;

/// Most batches whose m! orders the averaged epoch runs (720 orders of 6 steps).
pub const MAX_AVERAGED_BATCHES: usize = 6;

/// The batches of an SGD run, each compiled as its loss followed by its gradient.
#[derive(Debug)]
pub struct Epochs {
    fields: Vec<VectorField>,
    /// Cyclic or shuffled.
    pub order: BatchOrder,
    /// The orders an epoch runs: one for cyclic order, all m! for shuffled.
    orders: Vec<Vec<usize>>,
}

impl Epochs {
    /// The epochs of these batches; a shuffled epoch of more than [`MAX_AVERAGED_BATCHES`]
    /// batches is refused (its average has m! terms).
    ///
    /// ```
    /// use eomderive::numeric::{Epochs, VectorField};
    /// use eomderive::series::BatchOrder;
    /// use nalgebra::DVector;
    /// // f_1 = u²/2, f_2 = u²: the epoch is (1 − 2η)(1 − η) u in either order.
    /// let m = eomderive::lang::parse_str("u^2/2").unwrap();
    /// let mut g = m.graph.clone();
    /// let u = g.var(eomderive::expr::VarId(0));
    /// let f2 = g.powi(u, 2);
    /// let mut d = eomderive::expr::Diff::new(1);
    /// let g1 = d.gradient(&mut g, m.loss);
    /// let g2 = d.gradient(&mut g, f2);
    /// let fields = vec![VectorField::compile(&g, &[m.loss, g1[0]]), VectorField::compile(&g, &[f2, g2[0]])];
    /// let e = Epochs::new(fields, BatchOrder::Shuffled).unwrap();
    /// let x = e.epoch(&DVector::from_vec(vec![1.0]), 0.1).unwrap();
    /// assert!((x[0] - 0.72).abs() < 1e-15);
    /// ```
    pub fn new(fields: Vec<VectorField>, order: BatchOrder) -> Result<Epochs, String> {
        let m = fields.len();
        let orders = match order {
            BatchOrder::Cyclic => vec![(0..m).collect()],
            BatchOrder::Shuffled if m > MAX_AVERAGED_BATCHES => {
                return Err(format!(
                    "the averaged epoch of {m} batches has {m}! orders; the check averages at most {MAX_AVERAGED_BATCHES} batches"
                ))
            }
            BatchOrder::Shuffled => crate::series::permutations(m),
        };
        Ok(Epochs {
            fields,
            order,
            orders,
        })
    }

    /// m.
    pub fn batches(&self) -> usize {
        self.fields.len()
    }

    /// One epoch from `x` with step η: cyclic, or the mean over every order.
    pub fn epoch(&self, x: &DVector<f64>, eta: f64) -> Result<DVector<f64>, String> {
        let mut sum = DVector::zeros(x.len());
        for order in &self.orders {
            sum += self.run(x, eta, order)?;
        }
        Ok(sum / self.orders.len() as f64)
    }

    /// The m steps in one order.
    pub fn run(&self, x: &DVector<f64>, eta: f64, order: &[usize]) -> Result<DVector<f64>, String> {
        let n = x.len();
        let mut values = vec![0.0; n + 1];
        let mut y = x.clone();
        for (s, &a) in order.iter().enumerate() {
            self.fields[a]
                .eval_into(y.as_slice(), &mut values)
                .map_err(|e| {
                    format!(
                        "left batch {}'s domain at step {} of an epoch: {e}",
                        a + 1,
                        s + 1
                    )
                })?;
            for i in 0..n {
                y[i] -= eta * values[i + 1];
            }
        }
        Ok(y)
    }
}

/// Monte Carlo evidence that the mean iterate of random reshuffling follows the equation of
/// motion: after one epoch from θ_0, the mean of `samples` reshuffled epochs against the EoM
/// truncated after ξ_K (time mη), with the mean's standard error.
#[derive(Debug, Clone, PartialEq)]
pub struct MonteCarlo {
    /// Reshuffled epochs per η.
    pub samples: usize,
    /// One row per η and K = 0, 1.
    pub rows: Vec<MonteCarloRow>,
    /// Fitted slopes of K = 0's and K = 1's errors against η over the rows above the noise,
    /// from the largest η down (expected 2 and 3: one epoch's local error); `None` with fewer
    /// than three such rows.
    pub slopes: [Option<f64>; 2],
}

/// One η and truncation order of a [`MonteCarlo`] run.
#[derive(Debug, Clone, PartialEq)]
pub struct MonteCarloRow {
    /// K.
    pub order: usize,
    /// η.
    pub lr: f64,
    /// ‖mean − θ_EoM(mη)‖, or `None` where it failed.
    pub error: Option<f64>,
    /// The standard error of the mean, √(Σ‖θ_s − mean‖²/(S(S−1))).
    pub standard_error: Option<f64>,
    /// The error stands out of the noise: with the noise's own share removed,
    /// √(error² − standard error²), it is more than three standard errors. When it is not,
    /// resolving it would take about (3 · standard error / error)² times the samples.
    pub resolved: bool,
}

/// Runs the Monte Carlo comparison at η, η/2, η/4, η/8 (random orders from a fixed seed).
pub fn reshuffling(
    epochs: &Epochs,
    eom: &Eom,
    x0: &DVector<f64>,
    lr: f64,
    samples: usize,
    seed: u64,
) -> MonteCarlo {
    let m = epochs.batches();
    let mut rng = seed | 1;
    let mut next = move || {
        // xorshift64*: deterministic and dependency-free.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let tol = Tolerances::default();
    let mut rows = Vec::new();
    for j in 0..4 {
        let eta = lr / f64::powi(2.0, j);
        let mut runs: Vec<DVector<f64>> = Vec::with_capacity(samples);
        let mut failed = false;
        for _ in 0..samples {
            let mut order: Vec<usize> = (0..m).collect();
            for i in (1..m).rev() {
                order.swap(i, (next() % (i as u64 + 1)) as usize);
            }
            match epochs.run(x0, eta, &order) {
                Ok(y) => runs.push(y),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        let mean = (!failed && !runs.is_empty()).then(|| {
            let sum = runs.iter().fold(DVector::zeros(x0.len()), |a, y| a + y);
            sum / runs.len() as f64
        });
        let se = mean.as_ref().map(|mu| {
            let s = runs.len() as f64;
            let var: f64 = runs.iter().map(|y| (y - mu).norm_squared()).sum();
            (var / (s * (s - 1.0)).max(1.0)).sqrt()
        });
        for k in 0..=1.min(eom.order()) {
            let flow = super::check::flow(eom, k, eta, x0, m as f64 * eta, &tol).ok();
            let error = match (&mean, &flow) {
                (Some(mu), Some(f)) => Some((mu - f).norm()),
                _ => None,
            };
            // ‖mean − θ‖² carries the noise's own E‖mean − E mean‖² = SE² on top of the bias.
            let resolved = matches!((error, se), (Some(e), Some(s)) if (e * e - s * s).max(0.0).sqrt() > 3.0 * s);
            rows.push(MonteCarloRow {
                order: k,
                lr: eta,
                error,
                standard_error: se,
                resolved,
            });
        }
    }
    // Over the resolved rows from the largest η down to the first one lost in the noise, and
    // only with three of them or more.
    let slope = |k: usize| {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.order == k)
            .take_while(|r| r.resolved)
            .filter_map(|r| Some((r.lr.ln(), r.error?.ln())))
            .collect();
        (points.len() >= 3)
            .then(|| super::check::fit_slope(&points))
            .flatten()
    };
    let slopes = [slope(0), slope(1)];
    MonteCarlo {
        samples,
        rows,
        slopes,
    }
}
