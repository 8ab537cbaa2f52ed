//! The lowered model: scalar parameters, the loss as a shared expression graph, the initial point.

use num_rational::BigRational;

use num_traits::Zero;

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
}

/// `optimizer = …`, `momentum = …`, `rho_ratio = …` lines, each with the 1-based line it is on.
///
/// Each is `None` when the file has no such line (a bare expression has none). The lowering
/// checks each value on its own (a known method, 0 ≤ β < 1) and against the file's `optimizer`
/// line when there is one; without it, a `momentum` or `rho_ratio` line is kept for whichever
/// method the command line chooses, and the library checks the combination then.
///
/// ```
/// use eomderive::series::Method;
/// use num_rational::BigRational;
/// let text = "param u\noptimizer = heavy-ball\nmomentum = 0.5\nloss = u^2";
/// let m = eomderive::lang::parse_str(text).unwrap();
/// assert_eq!(m.settings.optimizer, Some((Method::HeavyBall, 2)));
/// assert_eq!(m.settings.momentum, Some((BigRational::new(1.into(), 2.into()), 3)));
/// assert_eq!(m.settings.rho_ratio, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// `optimizer = NAME`: the method (`gd`, `heavy-ball`, `nesterov`, `extragradient`, `sam`)
    /// and its line.
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
        self.loss = match &self.weight_decay {
            None => self.unregularized,
            Some(l) => {
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
                g.add(self.unregularized, decay)
            }
        };
    }

    /// The index of a scalar parameter by its expanded name (`w[2]`).
    pub fn param_index(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p == name)
    }
}
