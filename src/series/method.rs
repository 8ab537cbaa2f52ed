//! Optimizers as data, and their counter terms solved tree by tree (DESIGN.md §2.4).
//!
//! # A method is a scheme
//!
//! Every optimizer here is one [`Scheme`]: stages
//! `Y_s = Σ_j base_{s,j} θ_{n−j} + η Σ_{r<s} grad_{s,r} g(Y_r)` and the step
//! `θ_{n+1} = Σ_j keep_j θ_{n−j} + η Σ_s weight_s g(Y_s)`. Gradient descent keeps θ_n and adds
//! −η g(θ_n); heavy-ball keeps (1 + β)θ_n − βθ_{n−1}; Nesterov evaluates the gradient at
//! (1 + β)θ_n − βθ_{n−1}; extragradient and SAM are two-stage explicit Runge–Kutta methods.
//! The same scheme, with its coefficients as floats, is what `numeric` runs in the check.
//!
//! # Solving it tree by tree
//!
//! On the trajectory of the modified equation dθ/dt = F(θ), θ_n = Φ_{nη}(θ_0), and the flow
//! is a B-series `Φ_{iη}(θ) = θ + Σ_τ η^{|τ|} P_τ(i) G(τ)` whose coefficients are polynomials
//! in i of degree ≤ |τ| with P_τ(0) = 0 (G(τ): the elementary differential of the gradient,
//! each distinct tree once, as in [`counter_terms`](super::counter_terms)). Expanding
//! g(θ + δ) = Σ_m ∇^m g(δ, …, δ)/m! for δ = Σ_τ η^{|τ|} d_τ G(τ) gives the coefficient of
//! G([τ_1 … τ_m]) in g(θ + δ) as Π_k d_{τ_k} / Π μ! (μ: multiplicities of equal children),
//! which involves only smaller trees. So the scheme becomes, tree by tree, the linear
//! recurrence
//!
//! ```text
//! P_τ(i+1) − Σ_j keep_j P_τ(i−j) = Σ_s weight_s Π_k Y_{s,τ_k}(i) / Π μ!
//! ```
//!
//! with a right side known from smaller trees. Its operator lowers the degree by one with
//! leading factor d·M_1, M_1 = 1 + Σ_j j·keep_j (1 − β for the momentum methods, 1 for
//! one-step methods), so the polynomial solution with P_τ(0) = 0 exists and is unique: the
//! trajectory on the slow manifold for a two-step method, the iterates for a one-step one.
//! d/dt at t = 0 is η F, so the coefficient of G(τ) in F is P_τ'(0), the coefficient of i.
//! The arithmetic is exact in ℚ(β) (see [`RatFn`]); nothing about the answer is assumed.

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;

use num_rational::BigRational;
use num_traits::{One, Zero};

use super::counter::{GenericSeries, SeriesError};
use super::ratfn::RatFn;
use super::tree::{Forest, TreeId};

/// Largest order derived for an optimizer other than GD at a given parameter value (GD's
/// integer route goes to [`super::MAX_ORDER`]): ξ_10 takes one to three seconds.
pub const METHOD_MAX_ORDER: usize = 10;

/// Largest order derived with the parameter kept as a symbol ([`method_series`]): ξ_8 takes
/// 0.03–0.3 s (BENCHMARKS.md).
pub const SYMBOLIC_MAX_ORDER: usize = 8;

/// The family of step maps (DESIGN.md §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// θ' = θ − η g(θ).
    Gd,
    /// θ_{n+1} = θ_n − η g(θ_n) + β(θ_n − θ_{n−1}).
    HeavyBall,
    /// θ_{n+1} = θ_n + β(θ_n − θ_{n−1}) − η g(θ_n + β(θ_n − θ_{n−1})) (Sutskever's form).
    Nesterov,
    /// θ' = θ − η g(θ − η g(θ)).
    Extragradient,
    /// θ' = θ − η g(θ + ρ g(θ)), unnormalised, with ρ = r η.
    Sam,
    /// Minibatch SGD: θ ← θ − η ∇f_k(θ) on batch k, m steps an epoch (DESIGN.md §2.5). Its
    /// counter terms are the epoch's, on coloured trees ([`super::sgd`]); one step is GD's
    /// scheme on one batch.
    Sgd,
}

/// What a method's one parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parameter {
    /// β ∈ [0, 1), `--momentum`.
    Momentum,
    /// r = ρ/η, `--rho-ratio`.
    RhoRatio,
}

impl Parameter {
    /// The flag that sets it (`momentum`, `rho-ratio`).
    pub fn flag(self) -> &'static str {
        match self {
            Parameter::Momentum => "momentum",
            Parameter::RhoRatio => "rho-ratio",
        }
    }

    /// Its default value: β = 9/10, r = 1.
    pub fn default_value(self) -> BigRational {
        match self {
            Parameter::Momentum => BigRational::new(9.into(), 10.into()),
            Parameter::RhoRatio => BigRational::one(),
        }
    }

    /// Why `value` is not allowed, if it is not.
    pub fn refuse(self, value: &BigRational) -> Option<String> {
        match self {
            Parameter::Momentum
                if *value < BigRational::zero() || *value >= BigRational::one() =>
            {
                Some(format!(
                    "the momentum must be in [0, 1) (got {value}); β = 1 never forgets a step and has no equation of motion"
                ))
            }
            // 1 − β below 10⁻¹², and the leading coefficient 1/(1 − β) and the series' radius
            // (1 − √β)² are beyond what the numeric layer's floats can carry.
            Parameter::Momentum
                if BigRational::one() - value < BigRational::new(1.into(), 10i64.pow(12).into()) =>
            {
                Some(format!(
                    "the momentum {value} is too close to 1: 1 - β must be at least 1e-12 (the series in η then converges only for η λ below (1 - √β)², about 1e-25)"
                ))
            }
            _ => None,
        }
    }
}

impl Method {
    /// Every method, in the order the command line lists them.
    pub const ALL: [Method; 6] = [
        Method::Gd,
        Method::HeavyBall,
        Method::Nesterov,
        Method::Extragradient,
        Method::Sam,
        Method::Sgd,
    ];

    /// The name on the command line and in JSON (`heavy-ball`).
    pub fn name(self) -> &'static str {
        match self {
            Method::Gd => "gd",
            Method::HeavyBall => "heavy-ball",
            Method::Nesterov => "nesterov",
            Method::Extragradient => "extragradient",
            Method::Sam => "sam",
            Method::Sgd => "sgd",
        }
    }

    /// The method of this name.
    ///
    /// ```
    /// use eomderive::series::Method;
    /// assert_eq!(Method::from_name("nesterov"), Some(Method::Nesterov));
    /// assert_eq!(Method::from_name("adam"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Its parameter, if it has one.
    pub fn parameter(self) -> Option<Parameter> {
        match self {
            Method::HeavyBall | Method::Nesterov => Some(Parameter::Momentum),
            Method::Sam => Some(Parameter::RhoRatio),
            Method::Gd | Method::Extragradient | Method::Sgd => None,
        }
    }

    /// How many past iterates a step reads (2 for the momentum methods).
    pub fn history(self) -> usize {
        match self {
            Method::HeavyBall | Method::Nesterov => 2,
            _ => 1,
        }
    }

    /// The scheme, with the parameter as the symbol s of [`RatFn`].
    ///
    /// ```
    /// use eomderive::series::{Method, RatFn};
    /// let hb = Method::HeavyBall.scheme();
    /// let beta = RatFn::symbol();
    /// assert_eq!(hb.keep, vec![RatFn::one() + beta.clone(), -beta]); // (1 + β)θ_n − βθ_{n−1}
    /// assert_eq!(hb.drift(), RatFn::one() - RatFn::symbol()); // M_1 = 1 − β
    /// ```
    pub fn scheme(self) -> Scheme<RatFn> {
        let (one, zero, s) = (RatFn::one(), RatFn::zero(), RatFn::symbol());
        let stage = |base: Vec<RatFn>, gradients: Vec<RatFn>| Stage { base, gradients };
        match self {
            // One SGD step is a GD step on one batch.
            Method::Gd | Method::Sgd => Scheme {
                keep: vec![one.clone()],
                stages: vec![stage(vec![one], vec![])],
                weights: vec![-RatFn::one()],
            },
            Method::HeavyBall => Scheme {
                keep: vec![one.clone() + s.clone(), -s],
                stages: vec![stage(vec![one, zero], vec![])],
                weights: vec![-RatFn::one()],
            },
            Method::Nesterov => Scheme {
                keep: vec![one.clone() + s.clone(), -s.clone()],
                stages: vec![stage(vec![one + s.clone(), -s], vec![])],
                weights: vec![-RatFn::one()],
            },
            Method::Extragradient => Scheme {
                keep: vec![one.clone()],
                stages: vec![
                    stage(vec![one.clone()], vec![]),
                    stage(vec![one], vec![-RatFn::one()]),
                ],
                weights: vec![zero, -RatFn::one()],
            },
            Method::Sam => Scheme {
                keep: vec![one.clone()],
                stages: vec![stage(vec![one.clone()], vec![]), stage(vec![one], vec![s])],
                weights: vec![zero, -RatFn::one()],
            },
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A method with its parameter: what `Options` carries and what the reports describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Optimizer {
    /// The step map.
    pub method: Method,
    /// β or r when given; `None`: symbolic in the generic form, the default value
    /// ([`Parameter::default_value`]) for a loss.
    pub parameter: Option<BigRational>,
    /// For SGD: how many batches an epoch has and in which order it visits them.
    pub batches: Option<Minibatch>,
}

/// An SGD epoch: m batches, visited in a fixed or a freshly shuffled order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Minibatch {
    /// m ≥ 1.
    pub count: usize,
    /// Cyclic or shuffled.
    pub order: BatchOrder,
}

/// The order in which an epoch visits the batches (DESIGN.md §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BatchOrder {
    /// 1, 2, …, m in every epoch.
    Cyclic,
    /// A uniformly random order each epoch (random reshuffling); the equation of motion is that
    /// of the expected iterate.
    #[default]
    Shuffled,
}

impl BatchOrder {
    /// The name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            BatchOrder::Cyclic => "cyclic",
            BatchOrder::Shuffled => "shuffled",
        }
    }

    /// The order of this name.
    ///
    /// ```
    /// use eomderive::series::BatchOrder;
    /// assert_eq!(BatchOrder::from_name("cyclic"), Some(BatchOrder::Cyclic));
    /// assert_eq!(BatchOrder::from_name("random"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<BatchOrder> {
        [BatchOrder::Cyclic, BatchOrder::Shuffled]
            .into_iter()
            .find(|o| o.name() == name)
    }
}

impl fmt::Display for BatchOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Default for Optimizer {
    fn default() -> Optimizer {
        Optimizer::gd()
    }
}

impl Optimizer {
    /// Plain gradient descent.
    pub fn gd() -> Optimizer {
        Optimizer {
            method: Method::Gd,
            parameter: None,
            batches: None,
        }
    }

    /// Minibatch SGD with `count` batches visited in `order`.
    ///
    /// ```
    /// use eomderive::series::{BatchOrder, Method, Optimizer};
    /// let sgd = Optimizer::sgd(4, BatchOrder::Shuffled);
    /// assert_eq!((sgd.method, sgd.batches.unwrap().count), (Method::Sgd, 4));
    /// ```
    pub fn sgd(count: usize, order: BatchOrder) -> Optimizer {
        Optimizer {
            method: Method::Sgd,
            parameter: None,
            batches: Some(Minibatch { count, order }),
        }
    }

    /// A method with its parameter (ignored by a method without one).
    pub fn new(method: Method, parameter: Option<BigRational>) -> Optimizer {
        Optimizer {
            method,
            parameter: parameter.filter(|_| method.parameter().is_some()),
            batches: None,
        }
    }

    /// Whether this is plain gradient descent.
    pub fn is_gd(&self) -> bool {
        self.method == Method::Gd
    }

    /// The parameter's value: the one given, or its default; `None` for a method without one.
    pub fn value(&self) -> Option<BigRational> {
        let p = self.method.parameter()?;
        Some(self.parameter.clone().unwrap_or_else(|| p.default_value()))
    }

    /// c in the leading term F_0 = −c g: 1/M_1, the inverse of the scheme's drift (1 for GD,
    /// 1/(1 − β) for the momentum methods). The tree solve finds the same number as the
    /// coefficient of the leaf ([`GenericSeries::leading`]); the tests hold the two equal.
    ///
    /// ```
    /// use eomderive::series::{Method, Optimizer};
    /// let hb = Optimizer::new(Method::HeavyBall, None); // β = 9/10 by default
    /// assert_eq!(hb.leading().to_string(), "10");
    /// ```
    pub fn leading(&self) -> BigRational {
        self.scheme().drift().recip()
    }

    /// The scheme with the parameter's value in place of the symbol.
    ///
    /// ```
    /// use eomderive::series::{Method, Optimizer};
    /// use num_rational::BigRational;
    /// let hb = Optimizer::new(Method::HeavyBall, Some(BigRational::new(1.into(), 2.into())));
    /// let s = hb.scheme();
    /// assert_eq!(s.keep, vec![BigRational::new(3.into(), 2.into()), BigRational::new((-1).into(), 2.into())]);
    /// ```
    pub fn scheme(&self) -> Scheme<BigRational> {
        let at = self.value().unwrap_or_else(BigRational::zero);
        self.method.scheme().map(|c| {
            c.eval(&at)
                .expect("the scheme's coefficients are polynomials")
        })
    }
}

/// A stage: Y = Σ_j base_j θ_{n−j} + η Σ_r gradients_r g(Y_r) over the earlier stages r.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage<C> {
    /// Coefficients of θ_n, θ_{n−1}, …
    pub base: Vec<C>,
    /// Coefficients of η g(Y_r) for the earlier stages.
    pub gradients: Vec<C>,
}

/// One step of a method: θ_{n+1} = Σ_j keep_j θ_{n−j} + η Σ_s weights_s g(Y_s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheme<C> {
    /// Coefficients of θ_n, θ_{n−1}, … (they sum to 1).
    pub keep: Vec<C>,
    /// The stages, in order.
    pub stages: Vec<Stage<C>>,
    /// Coefficients of η g(Y_s).
    pub weights: Vec<C>,
}

impl<C> Scheme<C> {
    /// The same scheme with every coefficient mapped.
    pub fn map<D>(&self, mut f: impl FnMut(&C) -> D) -> Scheme<D> {
        Scheme {
            keep: self.keep.iter().map(&mut f).collect(),
            stages: self
                .stages
                .iter()
                .map(|s| Stage {
                    base: s.base.iter().map(&mut f).collect(),
                    gradients: s.gradients.iter().map(&mut f).collect(),
                })
                .collect(),
            weights: self.weights.iter().map(&mut f).collect(),
        }
    }

    /// How many past iterates a step reads.
    pub fn history(&self) -> usize {
        self.keep.len()
    }
}

impl<C: Coefficient> Scheme<C> {
    /// M_1 = 1 + Σ_j j keep_j: how much slower than GD the method moves per unit of force
    /// (F_0 = −g / M_1), and the factor of its one-step defect: a step from the exact
    /// trajectory misses the EoM truncated after ξ_K by M_1 η^{K+2} ξ_{K+1} + O(η^{K+3}).
    pub fn drift(&self) -> C {
        self.keep
            .iter()
            .enumerate()
            .fold(one::<C>(), |acc, (j, k)| {
                acc.plus(&k.scale(&BigRational::from_integer(j.into())))
            })
    }
}

/// ξ_1..ξ_K of a method as trees whose coefficients are exact functions of its parameter.
#[derive(Debug, Clone)]
pub struct MethodSeries {
    /// The method.
    pub method: Method,
    /// The parameter's value the coefficients were evaluated at (then they are constants);
    /// `None`: symbolic in the parameter, or a method without one.
    pub parameter: Option<BigRational>,
    /// Arena holding every tree in `xi`.
    pub forest: Forest,
    /// c with F_0 = −c g (1/(1 − β) for the momentum methods).
    pub leading: RatFn,
    /// `xi[k-1]`: the terms of ξ_k (trees with k+1 nodes), zero coefficients dropped, in
    /// canonical order.
    pub xi: Vec<Vec<(TreeId, RatFn)>>,
}

impl MethodSeries {
    /// The same equation of motion in the time of the effective learning rate: with M_1 the
    /// drift (F_0 = −g/M_1; M_1 = 1 − β for the momentum methods), η_eff = η/M_1 and
    /// τ = t/M_1 = n η_eff, dθ/dτ = −g − Σ_k η_eff^k ξ̃_k with ξ̃_k = M_1^{k+1} ξ_k: the form in
    /// which momentum's terms are compared with GD's (Ghosh et al., ICLR 2023).
    /// `None` for a method whose drift is 1 (the form would be the same).
    ///
    /// ```
    /// use eomderive::series::{method_series, Method, RatFn};
    /// let s = method_series(Method::HeavyBall, 1).unwrap().in_effective_time().unwrap();
    /// // (1 + β)/(2(1 − β)): GD's ½ times (1 + β)/(1 − β).
    /// let half = num_rational::BigRational::new(1.into(), 2.into());
    /// let want = (RatFn::one() + RatFn::symbol()).scale(&half).over_one_minus(1);
    /// assert_eq!(s.xi[0][0].1, want.normalized());
    /// assert_eq!(s.leading, RatFn::one());
    /// ```
    pub fn in_effective_time(&self) -> Option<MethodSeries> {
        let (c, k) = self.method.scheme().drift().monomial()?;
        if k == 0 && c == BigRational::one() {
            return None;
        }
        // M_1^{j}: c^j (1 − s)^{jk}, or its value when the parameter is given.
        let power = |j: i32| -> RatFn {
            let symbolic = RatFn::constant(pow(&c, j)).over_one_minus(-j * k);
            match &self.parameter {
                None => symbolic,
                Some(v) => RatFn::constant(symbolic.eval(v).expect("a polynomial in s")),
            }
        };
        Some(MethodSeries {
            method: self.method,
            parameter: self.parameter.clone(),
            forest: self.forest.clone(),
            leading: (&self.leading * &power(1)).normalized(),
            xi: self
                .xi
                .iter()
                .enumerate()
                .map(|(i, terms)| {
                    let m = power(i as i32 + 2);
                    terms
                        .iter()
                        .map(|(t, x)| (*t, (x * &m).normalized()))
                        .collect()
                })
                .collect(),
        })
    }

    /// Numeric coefficients (at `parameter`) in the symbolic form's type, so that one
    /// renderer prints both.
    pub fn from_numbers(
        method: Method,
        parameter: Option<BigRational>,
        series: GenericSeries,
    ) -> MethodSeries {
        MethodSeries {
            method,
            parameter,
            forest: series.forest,
            leading: RatFn::constant(series.leading),
            xi: series
                .xi
                .into_iter()
                .map(|terms| {
                    terms
                        .into_iter()
                        .map(|(t, c)| (t, RatFn::constant(c)))
                        .collect()
                })
                .collect(),
        }
    }

    /// The coefficients at the parameter's value (`None`: the method has no parameter, or
    /// s = 0), zeros dropped.
    ///
    /// # Panics
    /// At s = 1 for a momentum method, where the series has a pole ([`Parameter::refuse`]
    /// says so before).
    pub fn at(&self, value: Option<&BigRational>) -> GenericSeries {
        let zero = BigRational::zero();
        let at = value.unwrap_or(&zero);
        let eval = |c: &RatFn| c.eval(at).expect("β = 1 is refused before");
        GenericSeries {
            forest: self.forest.clone(),
            leading: eval(&self.leading),
            xi: self
                .xi
                .iter()
                .map(|terms| {
                    terms
                        .iter()
                        .map(|(t, c)| (*t, eval(c)))
                        .filter(|(_, c)| !c.is_zero())
                        .collect()
                })
                .collect(),
        }
    }
}

/// What the tree-by-tree solve computes with: exact functions of the parameter ([`RatFn`]),
/// or exact numbers at its value (`BigRational`, much faster).
pub trait Coefficient: Clone {
    /// A constant.
    fn from_rational(c: BigRational) -> Self;
    /// Whether this is 0.
    fn vanishes(&self) -> bool;
    /// self + other.
    fn plus(&self, other: &Self) -> Self;
    /// self · other.
    fn times(&self, other: &Self) -> Self;
    /// self · c.
    fn scale(&self, c: &BigRational) -> Self;
}

impl Coefficient for RatFn {
    fn from_rational(c: BigRational) -> Self {
        RatFn::constant(c)
    }
    fn vanishes(&self) -> bool {
        RatFn::is_zero(self)
    }
    fn plus(&self, other: &Self) -> Self {
        self + other
    }
    fn times(&self, other: &Self) -> Self {
        self * other
    }
    fn scale(&self, c: &BigRational) -> Self {
        RatFn::scale(self, c)
    }
}

impl Coefficient for BigRational {
    fn from_rational(c: BigRational) -> Self {
        c
    }
    fn vanishes(&self) -> bool {
        Zero::is_zero(self)
    }
    fn plus(&self, other: &Self) -> Self {
        self + other
    }
    fn times(&self, other: &Self) -> Self {
        self * other
    }
    fn scale(&self, c: &BigRational) -> Self {
        self * c
    }
}

pub(super) fn zero<C: Coefficient>() -> C {
    C::from_rational(BigRational::zero())
}

pub(super) fn one<C: Coefficient>() -> C {
    C::from_rational(BigRational::one())
}

/// A polynomial in i, ascending powers.
pub(super) type IPoly<C> = Vec<C>;

/// The counter terms ξ_1..ξ_order of a method, exact in its parameter (see the module docs).
///
/// ```
/// use eomderive::series::{method_series, Method, RatFn};
/// let s = method_series(Method::HeavyBall, 1).unwrap();
/// let beta = RatFn::symbol();
/// let one = RatFn::one();
/// // F_0 = −g/(1 − β); ξ_1 = (1 + β)/(2(1 − β)³) H g
/// assert_eq!(s.leading.normalized(), one.over_one_minus(1));
/// let half = num_rational::BigRational::new(1.into(), 2.into());
/// let xi1 = (RatFn::one() + beta).scale(&half).over_one_minus(3);
/// assert_eq!(s.xi[0][0].1.normalized(), xi1);
/// ```
pub fn method_series(method: Method, order: usize) -> Result<MethodSeries, SeriesError> {
    check_order(order, SYMBOLIC_MAX_ORDER, "SYMBOLIC_MAX_ORDER")?;
    let scheme = method.scheme();
    let (c, k) = scheme
        .drift()
        .monomial()
        .expect("every method's drift M_1 is c (1 − s)^k");
    let inverse = c.recip();
    let divide = move |x: &RatFn| x.scale(&inverse).over_one_minus(k).normalized();
    let (forest, leading, xi) = solve(&scheme, &divide, order);
    let clean = |x: RatFn| x.normalized();
    Ok(MethodSeries {
        method,
        parameter: None,
        forest,
        leading: clean(leading),
        xi: xi
            .into_iter()
            .map(|terms| terms.into_iter().map(|(t, c)| (t, clean(c))).collect())
            .collect(),
    })
}

/// The counter terms ξ_1..ξ_order of an optimizer at its parameter's value, computed in exact
/// numbers (the same solve as [`method_series`], without the symbol).
///
/// ```
/// use eomderive::series::{method_series, optimizer_series, Method, Optimizer};
/// use num_rational::BigRational;
/// let beta = BigRational::new(9.into(), 10.into());
/// let hb = Optimizer::new(Method::HeavyBall, Some(beta.clone()));
/// let numeric = optimizer_series(&hb, 3).unwrap();
/// let symbolic = method_series(Method::HeavyBall, 3).unwrap().at(Some(&beta));
/// assert_eq!(numeric.xi, symbolic.xi);
/// assert_eq!(numeric.leading, BigRational::from_integer(10.into())); // 1/(1 − β)
/// ```
pub fn optimizer_series(optimizer: &Optimizer, order: usize) -> Result<GenericSeries, SeriesError> {
    check_order(order, METHOD_MAX_ORDER, "METHOD_MAX_ORDER")?;
    // The table depends only on the method, its parameter and the order, and a process often
    // asks for the same one again (the check derives order K+1 after K; a study derives many
    // losses): solved tables are kept, a few dozen at most.
    type Key = (Method, Option<BigRational>, usize);
    static SOLVED: Mutex<Vec<(Key, GenericSeries)>> = Mutex::new(Vec::new());
    let key: Key = (optimizer.method, optimizer.value(), order);
    if let Some((_, s)) = SOLVED
        .lock()
        .ok()
        .and_then(|solved| solved.iter().find(|(k, _)| *k == key).cloned())
    {
        return Ok(s);
    }
    let s = solve_numbers(optimizer, order);
    if let Ok(mut solved) = SOLVED.lock() {
        if solved.len() >= 32 {
            solved.remove(0);
        }
        solved.push((key, s.clone()));
    }
    Ok(s)
}

fn solve_numbers(optimizer: &Optimizer, order: usize) -> GenericSeries {
    let scheme = optimizer.scheme();
    let inverse = scheme.drift().recip();
    let divide = move |x: &BigRational| x * &inverse;
    let (forest, leading, xi) = solve(&scheme, &divide, order);
    GenericSeries {
        forest,
        leading,
        xi,
    }
}

pub(super) fn check_order(
    order: usize,
    limit: usize,
    name: &'static str,
) -> Result<(), SeriesError> {
    if order == 0 {
        return Err(SeriesError::ZeroOrder);
    }
    if order > limit {
        return Err(SeriesError::OrderTooLarge {
            requested: order,
            limit,
            name,
        });
    }
    Ok(())
}

/// Per term: the tree and ξ's coefficient.
type Terms<C> = Vec<Vec<(TreeId, C)>>;

/// The tree-by-tree solve (module docs): the forest, c of F_0 = −c g, and ξ_1..ξ_order.
/// `divide` divides by the drift M_1.
fn solve<C: Coefficient>(
    scheme: &Scheme<C>,
    divide: &dyn Fn(&C) -> C,
    order: usize,
) -> (Forest, C, Terms<C>) {
    let mut lhs = Operator {
        moments: Vec::new(),
        keep: scheme.keep.clone(),
        divide,
    };
    let mut forest = Forest::new();
    let levels: Vec<Vec<TreeId>> = (1..=order + 1).map(|n| forest.trees_of_order(n)).collect();
    // Per tree (by arena index): the stages' Y_{s,τ}, and F's coefficient P_τ'(0).
    let mut y: Vec<Vec<IPoly<C>>> = vec![Vec::new(); forest.len()];
    let mut field: Vec<C> = vec![zero::<C>(); forest.len()];
    for &t in levels.iter().flatten() {
        let children = forest.children(t).to_vec();
        // g(Y_s)'s coefficient of G(τ), for each stage.
        let forces: Vec<IPoly<C>> = (0..scheme.stages.len())
            .map(|s| taylor_coefficient(&children, |c: TreeId| Cow::Borrowed(&y[c.index()][s])))
            .collect();
        let mut rhs: IPoly<C> = Vec::new();
        for (w, force) in scheme.weights.iter().zip(&forces) {
            rhs = add(&rhs, &scaled(force, w));
        }
        let p = lhs.solve(&rhs);
        let mut stages: Vec<IPoly<C>> = Vec::with_capacity(scheme.stages.len());
        for stage in &scheme.stages {
            let mut v: IPoly<C> = Vec::new();
            for (j, b) in stage.base.iter().enumerate() {
                if !b.vanishes() {
                    v = add(&v, &scaled(&shift(&p, -(j as i64)), b));
                }
            }
            for (r, c) in stage.gradients.iter().enumerate() {
                v = add(&v, &scaled(&forces[r], c));
            }
            stages.push(v);
        }
        field[t.index()] = p.get(1).cloned().unwrap_or_else(zero::<C>);
        y[t.index()] = stages;
    }
    let minus_one = -BigRational::one();
    let leaf = forest.leaf();
    let leading = field[leaf.index()].scale(&minus_one);
    let xi = levels[1..]
        .iter()
        .map(|level| {
            level
                .iter()
                .map(|&t| (t, field[t.index()].scale(&minus_one)))
                .filter(|(_, c)| !c.vanishes())
                .collect()
        })
        .collect();
    (forest, leading, xi)
}

/// The coefficient of G([τ_1 … τ_m]) in g(θ + δ): Π_k d_{τ_k} / Π μ!, the children sorted so
/// that equal ones are adjacent (they are, in a [`Forest`] and in a
/// [`ColouredForest`](super::ColouredForest)). `d` gives a child's coefficient in δ, borrowed
/// where it is stored, owned where it is computed.
pub(super) fn taylor_coefficient<'a, T: Copy + PartialEq, C: Coefficient + 'a>(
    children: &[T],
    mut d: impl FnMut(T) -> Cow<'a, IPoly<C>>,
) -> IPoly<C> {
    let mut product: IPoly<C> = vec![one::<C>()];
    let mut denominator = BigRational::one();
    let mut run = 0u64;
    for (k, &c) in children.iter().enumerate() {
        run = if k > 0 && children[k - 1] == c {
            run + 1
        } else {
            1
        };
        denominator *= BigRational::from_integer(run.into());
        product = multiply(&product, &d(c));
    }
    let inverse = denominator.recip();
    product.iter().map(|c| c.scale(&inverse)).collect()
}

/// L P(i) = P(i+1) − Σ_j keep_j P(i−j) on polynomials in i.
pub(super) struct Operator<'a, C> {
    /// M_m = 1 − Σ_j keep_j (−j)^m for m ≥ 1 (index m − 1).
    pub(super) moments: Vec<C>,
    pub(super) keep: Vec<C>,
    /// Division by M_1.
    pub(super) divide: &'a dyn Fn(&C) -> C,
}

impl<C: Coefficient> Operator<'_, C> {
    /// The polynomial P with P(0) = 0 and L P = rhs.
    ///
    /// L i^d = Σ_{m<d} C(d, m) M_{d−m} i^m, so the coefficient of i^m in L P is
    /// Σ_{d>m} p_d C(d, m) M_{d−m}; solved from the top degree down, dividing by (m+1) M_1.
    pub(super) fn solve(&mut self, rhs: &IPoly<C>) -> IPoly<C> {
        let degree = rhs.len(); // deg P = deg rhs + 1
        let mut p: IPoly<C> = vec![zero::<C>(); degree + 1];
        for m in (0..degree).rev() {
            let mut r = rhs[m].clone();
            for (d, pd) in p.iter().enumerate().skip(m + 2) {
                if !pd.vanishes() {
                    let weight = -BigRational::from_integer(binomial(d, m).into());
                    r = r.plus(
                        &pd.times(&moment(&mut self.moments, &self.keep, d - m))
                            .scale(&weight),
                    );
                }
            }
            let scale = BigRational::new(1.into(), (m as i64 + 1).into());
            p[m + 1] = (self.divide)(&r.scale(&scale));
        }
        trim(p)
    }
}

/// M_m = 1 − Σ_j keep_j (−j)^m, memoised in `moments` (index m − 1).
fn moment<C: Coefficient>(moments: &mut Vec<C>, keep: &[C], m: usize) -> C {
    while moments.len() < m {
        let k = moments.len() as u32 + 1;
        let sum = keep.iter().enumerate().fold(zero::<C>(), |acc, (j, c)| {
            acc.plus(&c.scale(&BigRational::from_integer((-(j as i64)).pow(k).into())))
        });
        moments.push(one::<C>().plus(&sum.scale(&-BigRational::one())));
    }
    moments[m - 1].clone()
}

fn pow(c: &BigRational, j: i32) -> BigRational {
    (0..j).fold(BigRational::one(), |acc, _| acc * c)
}

fn binomial(n: usize, k: usize) -> i64 {
    (0..k).fold(1i64, |b, i| b * (n - i) as i64 / (i as i64 + 1))
}

fn trim<C: Coefficient>(mut p: IPoly<C>) -> IPoly<C> {
    while p.last().is_some_and(C::vanishes) {
        p.pop();
    }
    p
}

pub(super) fn add<C: Coefficient>(a: &IPoly<C>, b: &IPoly<C>) -> IPoly<C> {
    let n = a.len().max(b.len());
    trim(
        (0..n)
            .map(|k| match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => x.plus(y),
                (Some(x), None) | (None, Some(x)) => x.clone(),
                (None, None) => zero::<C>(),
            })
            .collect(),
    )
}

pub(super) fn scaled<C: Coefficient>(a: &IPoly<C>, c: &C) -> IPoly<C> {
    if c.vanishes() {
        return Vec::new();
    }
    trim(a.iter().map(|x| x.times(c)).collect())
}

pub(super) fn multiply<C: Coefficient>(a: &IPoly<C>, b: &IPoly<C>) -> IPoly<C> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let mut out = vec![zero::<C>(); a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        if x.vanishes() {
            continue;
        }
        for (j, y) in b.iter().enumerate() {
            if !y.vanishes() {
                out[i + j] = out[i + j].plus(&x.times(y));
            }
        }
    }
    trim(out)
}

/// P(i + o).
fn shift<C: Coefficient>(p: &IPoly<C>, o: i64) -> IPoly<C> {
    if o == 0 {
        return p.clone();
    }
    let mut out = vec![zero::<C>(); p.len()];
    for (d, c) in p.iter().enumerate() {
        if c.vanishes() {
            continue;
        }
        // (i + o)^d = Σ_m C(d, m) o^{d−m} i^m
        for (m, slot) in out.iter_mut().enumerate().take(d + 1) {
            let w = BigRational::from_integer((binomial(d, m) * o.pow((d - m) as u32)).into());
            *slot = slot.plus(&c.scale(&w));
        }
    }
    trim(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_and_solve_invert_the_recurrence() {
        // GD: P(i+1) − P(i) = 2i + 1 has P = i² (P(0) = 0).
        let divide = |x: &RatFn| x.clone();
        let mut l = Operator {
            moments: Vec::new(),
            keep: vec![RatFn::one()],
            divide: &divide,
        };
        let c = |n: i64| RatFn::constant(BigRational::from_integer(n.into()));
        let p = l.solve(&vec![c(1), c(2)]);
        assert_eq!(p, vec![c(0), c(0), c(1)]);
        assert_eq!(shift(&p, -1), vec![c(1), c(-2), c(1)]);
    }
}
