//! The lowered model: scalar parameters, the loss as a shared expression graph, the initial point.

use num_rational::BigRational;

use num_traits::Zero;

use crate::error::{Error, ErrorKind, Location, Result};
use crate::expr::{Graph, Id, VarId};
use crate::series::{BatchOrder, Method};

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
    /// The loss gradient descent trains: the loss as written plus (λ/2)‖θ‖² with weight decay.
    pub loss: Id,
    /// The loss as written, without weight decay (the same node as `loss` without it).
    pub unregularized: Id,
    /// The initial value of each parameter, where the file gives one.
    pub initial: Vec<Option<BigRational>>,
    /// The `let` names, one per scalar entry (`out[2]`), with the node each one denotes, in
    /// declaration order. Renderers use them to name shared subexpressions.
    pub names: Vec<(String, Id)>,
    /// λ of weight decay, when `loss` includes (λ/2)‖θ‖² (a `weight_decay = λ` line, or
    /// [`Model::set_weight_decay`]).
    pub weight_decay: Option<BigRational>,
    /// Optimizer settings written in the file; the command line's flags win over them.
    pub settings: Settings,
    /// The per-example terms ℓ_1..ℓ_N when the loss line is `loss = mean(i, ℓ)` (the mean at
    /// the top of the loss expression), each the body with `i` bound to one value; `None`
    /// for any other loss, and for a bare expression. They are nodes of the loss's own
    /// graph: the mean of them is [`Model::unregularized`]. SGD splits them into batches
    /// ([`Model::batch_losses`]).
    ///
    /// ```
    /// let text = "data x[3] = [1, 2, 3]\nparam w\nloss = mean(i, (w*x[i] - 1)^2)";
    /// let m = eomderive::lang::parse_str(text).unwrap();
    /// assert_eq!(m.examples.as_ref().map(Vec::len), Some(3));
    /// let m = eomderive::lang::parse_str("param w\nloss = mean(i in 1..3, w^i) + w").unwrap();
    /// assert_eq!(m.examples, None);
    /// ```
    pub examples: Option<Vec<Id>>,
    /// Where the loss expression is in the source (after `loss =`, or the whole of a bare
    /// expression), for errors about the loss found after parsing.
    ///
    /// ```
    /// let m = eomderive::lang::parse_str("param w\nloss = mean(i in 1..2, w*i)").unwrap();
    /// let at = m.loss_at.unwrap();
    /// assert_eq!((at.line, at.column, at.width), (2, 8, 20));
    /// ```
    pub loss_at: Option<Location>,
}

/// `optimizer = …`, `momentum = …`, `rho_ratio = …`, `batches = …`, `batch_order = …` lines,
/// each with the 1-based line it is on.
///
/// Each is `None` when the file has no such line (a bare expression has none). The lowering
/// checks each value on its own (a known method, 0 ≤ β < 1, a whole number of batches ≥ 1,
/// a known batch order) and against the file's `optimizer` line when there is one; without
/// it, a `momentum`, `rho_ratio`, `batches` or `batch_order` line is kept for whichever method
/// the command line chooses, and the library checks the combination then.
///
/// ```
/// use eomderive::series::Method;
/// use num_rational::BigRational;
/// let text = "param u\noptimizer = heavy-ball\nmomentum = 0.5\nloss = u^2";
/// let m = eomderive::lang::parse_str(text).unwrap();
/// assert_eq!(m.settings.optimizer, Some((Method::HeavyBall, 2)));
/// assert_eq!(m.settings.momentum, Some((BigRational::new(1.into(), 2.into()), 3)));
/// assert_eq!(m.settings.rho_ratio, None);
///
/// use eomderive::series::BatchOrder;
/// let text = "data x[4] = [1, 2, 3, 4]\nparam w\noptimizer = sgd\nbatches = 2\nbatch_order = cyclic\nloss = mean(i, (w - x[i])^2)";
/// let m = eomderive::lang::parse_str(text).unwrap();
/// assert_eq!(m.settings.batches, Some((2, 4)));
/// assert_eq!(m.settings.batch_order, Some((BatchOrder::Cyclic, 5)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// `optimizer = NAME`: the method (`gd`, `heavy-ball`, `nesterov`, `extragradient`, `sam`,
    /// `sgd`) and its line.
    pub optimizer: Option<(Method, usize)>,
    /// `momentum = β`: β of heavy-ball and Nesterov, exact and in [0, 1), and its line.
    pub momentum: Option<(BigRational, usize)>,
    /// `rho_ratio = r`: SAM's r = ρ/η (any sign), exact, and its line.
    pub rho_ratio: Option<(BigRational, usize)>,
    /// `batches = m`: SGD's number of minibatches (m ≥ 1), and its line.
    pub batches: Option<(usize, usize)>,
    /// `batch_order = cyclic` or `shuffled`: the order SGD visits its batches in, and its line.
    pub batch_order: Option<(BatchOrder, usize)>,
}

impl Model {
    /// The initial point when the file gives every parameter a value.
    pub fn initial_point(&self) -> Option<Vec<BigRational>> {
        self.initial.iter().cloned().collect()
    }

    /// Sets the weight decay: `loss` becomes the unregularised loss plus (λ/2)‖θ‖² (just the
    /// unregularised loss for `None` or λ = 0).
    ///
    /// ```
    /// let mut m = eomderive::lang::parse_str("param u = 1\nloss = u^4").unwrap();
    /// m.set_weight_decay(Some(num_rational::BigRational::new(1.into(), 10.into())));
    /// let p = eomderive::numeric::Program::compile(&m.graph, &[m.loss]);
    /// assert_eq!(p.eval(&[2.0]).unwrap(), vec![16.2]);
    /// ```
    pub fn set_weight_decay(&mut self, lambda: Option<BigRational>) {
        self.weight_decay = lambda.filter(|l| !l.is_zero());
        self.loss = self.regularized(self.unregularized);
    }

    /// `f` plus (λ/2)‖θ‖² with the model's weight decay λ, or `f` without one.
    fn regularized(&mut self, f: Id) -> Id {
        let Some(l) = &self.weight_decay else {
            return f;
        };
        let g = &mut self.graph;
        let half = g.num(l / BigRational::from_integer(2.into()));
        let squares: Vec<Id> = (0..self.params.len())
            .map(|i| {
                let v = g.var(VarId(i as u32));
                g.powi(v, 2)
            })
            .collect();
        let norm = g.sum(squares);
        let decay = g.mul(half, norm);
        g.add(f, decay)
    }

    /// The minibatch losses f_1..f_m of SGD: the [`Model::examples`] ℓ_1..ℓ_N split into `m`
    /// consecutive blocks of B = N/m, f_k = (1/B) Σ_{i in block k} ℓ_i, each plus (λ/2)‖θ‖²
    /// with weight decay, so that their mean is [`Model::loss`]. One batch is the loss itself
    /// (the same node); `m = N` gives one example a batch.
    ///
    /// Errors, located at the loss: `m = 0`; a loss that is not `loss = mean(i, …)`; and `N`
    /// not a multiple of `m` (unequal batches are refused; the help lists the divisors of N).
    ///
    /// ```
    /// let text = "data x[4] = [1, 2, 3, 4]\nparam w\nloss = mean(i, (w - x[i])^2)";
    /// let mut m = eomderive::lang::parse_str(text).unwrap();
    /// let f = m.batch_losses(2).unwrap();
    /// let p = eomderive::numeric::Program::compile(&m.graph, &f);
    /// // At w = 0: ((1 + 4)/2, (9 + 16)/2).
    /// assert_eq!(p.eval(&[0.0]).unwrap(), vec![2.5, 12.5]);
    /// assert_eq!(m.batch_losses(1).unwrap(), vec![m.loss]);
    /// let e = m.batch_losses(3).unwrap_err();
    /// assert_eq!(e.message, "4 examples do not split into 3 equal batches (4 = 1·3 + 1)");
    /// assert_eq!(e.help.as_deref(), Some("choose a number of batches that divides 4: --batches 1, 2 or 4"));
    /// ```
    pub fn batch_losses(&mut self, m: usize) -> Result<Vec<Id>> {
        let located = |e: Error, at: &Option<Location>| match at {
            Some(loc) => e.at(loc.clone()),
            None => e,
        };
        if m == 0 {
            return Err(located(
                Error::new(ErrorKind::Usage, "SGD needs at least 1 batch (got 0)").with_help(
                    "give --batches m (or a `batches = m` line) with m ≥ 1; 1 batch is plain GD",
                ),
                &self.loss_at,
            ));
        }
        let Some(examples) = self.examples.clone() else {
            return Err(located(
                Error::new(
                    ErrorKind::Semantic,
                    "SGD splits the examples of `loss = mean(i, …)` into batches; this loss is not a mean over examples",
                )
                .with_help("write the loss as `loss = mean(i, per-example term)`, e.g. `loss = mean(i, (w*x[i] - y[i])^2)`"),
                &self.loss_at,
            ));
        };
        let n = examples.len();
        if n % m != 0 {
            let divisors: Vec<String> = (1..=n)
                .filter(|d| n % d == 0)
                .map(|d| d.to_string())
                .collect();
            let shown = match divisors.as_slice() {
                [one] => one.clone(),
                [rest @ .., last] if rest.len() <= 8 => format!("{} or {last}", rest.join(", ")),
                [rest @ .., last] => format!("{}, … or {last}", rest[..8].join(", ")),
                [] => unreachable!("N ≥ 1 has the divisor 1"),
            };
            return Err(located(
                Error::new(
                    ErrorKind::Usage,
                    format!(
                        "{n} examples do not split into {m} equal batches ({n} = {}·{m} + {})",
                        n / m,
                        n % m
                    ),
                )
                .with_help(format!(
                    "choose a number of batches that divides {n}: --batches {shown}"
                )),
                &self.loss_at,
            ));
        }
        let size = n / m;
        let mut batches = Vec::with_capacity(m);
        for block in examples.chunks(size) {
            // Built as the lowering builds a mean (summed left to right, then divided), so
            // that one batch is the loss's own node.
            let g = &mut self.graph;
            let mut terms = block.iter().copied();
            let first = terms.next().expect("a batch has at least one example");
            let sum = terms.fold(first, |acc, t| g.add(acc, t));
            let b = g.int(size as i64);
            let mean = g.div(sum, b);
            batches.push(self.regularized(mean));
        }
        Ok(batches)
    }

    /// The index of a scalar parameter by its expanded name (`w[2]`).
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p == name)
    }
}
