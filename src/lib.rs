//! eomderive derives the counter terms ξ_1, ξ_2, … of gradient descent's equation of motion,
//! dθ/dt = −∇f − η ξ_1 − η² ξ_2 − …, exactly, for a loss written in a small language.
//!
//! The pipeline runs one way: text ([`lang`]) → model → derivatives ([`expr`]) → counter terms
//! ([`series`], generic trees instantiated on the model) → simplified shared expressions →
//! renderers ([`render`]) and the numeric layer ([`numeric`]).
//!
//! ```
//! use eomderive::{derive, lang::Source, Options};
//! let d = derive(&Source::inline("(u*v - 1)^2/2"), &Options { order: 1, ..Options::default() }).unwrap();
//! let text = eomderive::render::text(&d);
//! assert!(text.contains("ξ_1[u] = (u*v - 1)*(2*u^2*v + v^3 - u)/2"));
//! assert_eq!(d.xi.len(), 1); // ξ_1, one expression per parameter
//! ```

pub mod analysis;
pub mod budget;
pub mod error;
pub mod expr;
pub mod hash;
pub mod lang;
pub mod numeric;
pub mod render;
pub mod series;

use std::time::{Duration, Instant};

use num_rational::BigRational;
use num_traits::Signed;

pub use error::{Error, ErrorKind, Result};

use expr::{Diff, Id, Op};
use lang::{Model, Settings, Source};
use series::{GenericSeries, Method, MethodSeries, Optimizer, Parameter};

/// Largest order derived for a specific loss, the same as the generic form's
/// ([`series::MAX_ORDER`]); what bounds a loss-specific derivation in practice is
/// [`MAX_NODES`].
pub const MAX_LOSS_ORDER: usize = 16;

/// Most expression nodes a derivation may build (about 1 GB) before it stops with an error.
pub const MAX_NODES: usize = 8_000_000;

/// Most coloured terms (trees with their batches) an SGD derivation instantiates, a few
/// seconds of work for a small network (BENCHMARKS.md); checked before it starts ([`series::SgdSeries::term_count`]).
pub const MAX_SGD_TERMS: u128 = 200_000;

/// What to derive and where to evaluate it.
#[derive(Debug, Clone)]
pub struct Options {
    /// Derive ξ_1..ξ_order (0: only the gradient).
    pub order: usize,
    /// `--at`: parameter values (`u=0.3,w[2]=-1`) overriding the file's initial values.
    pub at: Option<String>,
    /// How hard to simplify.
    pub simplify: Simplify,
    /// Bounds on equality saturation (with [`Simplify::Egg`]).
    pub limits: expr::Limits,
    /// Most expression nodes the derivation may build, besides the memory limit (none by
    /// default).
    pub max_nodes: usize,
    /// Most memory the derivation may use, in bytes (`--max-memory`; `None`: a quarter of the
    /// machine's, [`budget::default_memory`]). Checked before each counter term against a
    /// forecast of the rest ([`budget::Forecast`]), and as a node limit during the work.
    pub max_memory: Option<u64>,
    /// λ: train on the loss plus (λ/2)‖θ‖² (`--weight-decay`); overrides a `weight_decay`
    /// line of the loss file.
    pub weight_decay: Option<BigRational>,
    /// The optimizer whose equation of motion is derived (`--optimizer`); `None`: the loss
    /// file's `optimizer` line, else plain GD.
    pub method: Option<Method>,
    /// β of heavy-ball and Nesterov (`--momentum`), overriding a `momentum` line; the default
    /// is 9/10.
    pub momentum: Option<BigRational>,
    /// r of SAM, ρ = rη (`--rho-ratio`), overriding a `rho_ratio` line; the default is 1.
    pub rho_ratio: Option<BigRational>,
    /// m, the number of minibatches of SGD (`--batches`), overriding a `batches` line.
    pub batches: Option<usize>,
    /// The order SGD visits its batches in (`--batch-order`), overriding a `batch_order` line;
    /// the default is shuffled.
    pub batch_order: Option<series::BatchOrder>,
    /// Run the analyses ([`analysis`]): gradient fields, potentials, invariances.
    pub analyze: bool,
    /// Called with the name of each stage as the derivation reaches it (the command line shows
    /// them on a terminal when a derivation runs longer than a second).
    pub progress: Option<fn(&str)>,
    /// The form the formulas are printed in (`--form`; [`Derivation::printed`]).
    pub form: Form,
}

/// How the derived formulas are written (`--form`). Every form is the same values; the numeric
/// layer always compiles the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Form {
    /// For a reader: like terms collected, factors of the loss pulled out, few names
    /// ([`expr::readable::readable`]). The default.
    #[default]
    Readable,
    /// Every expression a sum of monomials in the parameters and the loss's functions
    /// ([`expr::readable::expanded`]).
    Expanded,
    /// The shared straight-line program the numeric layer compiles, every shared
    /// subexpression named once (what `stats.ops` counts).
    Program,
}

impl Form {
    /// Every form, in the order `--help` lists them.
    pub const ALL: [Form; 3] = [Form::Readable, Form::Expanded, Form::Program];

    /// The name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Form::Readable => "readable",
            Form::Expanded => "expanded",
            Form::Program => "program",
        }
    }

    /// The form with this name.
    ///
    /// ```
    /// assert_eq!(eomderive::Form::from_name("expanded"), Some(eomderive::Form::Expanded));
    /// assert_eq!(eomderive::Form::from_name("pretty"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Form> {
        Form::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl std::fmt::Display for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The loss, gradient and counter terms rebuilt in the form they are printed in (in the
/// derivation's graph; the program form's are the derivation's own).
#[derive(Debug, Clone)]
pub struct Printed {
    /// The form of the expressions below: the one asked for, or [`Form::Program`] when that
    /// passed its limit (see `fallback`).
    pub form: Form,
    /// The loss.
    pub loss: Id,
    /// ∂f/∂θ_i.
    pub gradient: Vec<Id>,
    /// `xi[k-1][i]`, as [`Derivation::xi`].
    pub xi: Vec<Vec<Id>>,
    /// The loss file's `let` names at their nodes in this form.
    pub lets: Vec<(String, Id)>,
    /// One line saying why the form asked for is not the one printed.
    pub fallback: Option<String>,
    /// The modified loss f̃ = f + η Φ_1 + … written out in the parameters and η (the
    /// variable numbered after the parameters), where the analyses found the potentials Φ_k
    /// (not in the program form).
    pub modified_loss: Option<Id>,
    /// Wall time of building this form.
    pub elapsed: Duration,
}

/// How the derived expressions are simplified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Simplify {
    /// Structural simplification only: folding and sharing as expressions are built, factoring
    /// by multilinearity, and the affine normal form. Milliseconds.
    #[default]
    Fast,
    /// Also equality saturation with egg (see [`expr::simplify`]): a few percent fewer
    /// operations, at tens to hundreds of milliseconds.
    Egg,
}

impl Options {
    /// The default options with this optimizer and its parameter.
    ///
    /// ```
    /// use eomderive::series::{Method, Optimizer};
    /// use num_rational::BigRational;
    /// let two = BigRational::from_integer(2.into());
    /// let o = eomderive::Options::for_optimizer(&Optimizer::new(Method::Sam, Some(two.clone())));
    /// assert_eq!((o.method, o.rho_ratio), (Some(Method::Sam), Some(two)));
    /// ```
    pub fn for_optimizer(optimizer: &Optimizer) -> Options {
        let parameter = |p| {
            (optimizer.method.parameter() == Some(p))
                .then(|| optimizer.parameter.clone())
                .flatten()
        };
        Options {
            method: Some(optimizer.method),
            momentum: parameter(Parameter::Momentum),
            rho_ratio: parameter(Parameter::RhoRatio),
            batches: optimizer.batches.map(|b| b.count),
            batch_order: optimizer.batches.map(|b| b.order),
            ..Options::default()
        }
    }
}

impl Default for Options {
    /// Order 2 and the file's initial point, as the command line does.
    fn default() -> Options {
        Options {
            order: 2,
            at: None,
            simplify: Simplify::Fast,
            limits: expr::Limits::default(),
            max_nodes: usize::MAX,
            max_memory: None,
            weight_decay: None,
            method: None,
            momentum: None,
            rho_ratio: None,
            batches: None,
            batch_order: None,
            analyze: true,
            progress: None,
            form: Form::Readable,
        }
    }
}

/// Everything derived for one loss, ready for the renderers and the numeric layer.
#[derive(Debug, Clone)]
pub struct Derivation {
    /// The lowered loss; its graph also holds every derived expression below.
    pub model: Model,
    /// The optimizer the counter terms describe, with its parameter's value.
    pub optimizer: Optimizer,
    /// c in the leading term F_0 = −c ∇f: 1 for GD, 1/(1 − β) for the momentum methods.
    pub leading: BigRational,
    /// ∂f/∂θ_i for each parameter (with weight decay, of the loss including (λ/2)‖θ‖²).
    pub gradient: Vec<Id>,
    /// For SGD, ∇f_a of each minibatch loss (with weight decay in each); empty otherwise.
    pub batches: Vec<Vec<Id>>,
    /// `xi[k-1][i]`: component `i` of the counter term ξ_k.
    pub xi: Vec<Vec<Id>>,
    /// Values at the requested point, or at the file's initial point when it is complete.
    pub evaluation: Option<numeric::Evaluation>,
    /// For an optimizer other than GD, at the evaluation point: how far its series in η
    /// reaches (DESIGN.md §2.4), from the Hessian there.
    pub radius: Option<numeric::Radius>,
    /// Size of the shared straight-line program computing ξ_1..ξ_K (DESIGN.md §4.2).
    pub ops: usize,
    /// What equality saturation did to the loss, gradient and counter terms together (with
    /// [`Simplify::Egg`]).
    pub simplification: Option<expr::Outcome>,
    /// Gradient fields, potentials and invariances (with [`Options::analyze`]).
    pub analysis: Option<analysis::Analysis>,
    /// The check against gradient descent, when one was run ([`check`]).
    pub check: Option<numeric::Check>,
    /// Wall time of the derivation: differentiation, counter terms and simplification (not
    /// parsing, evaluation, the printed form or rendering).
    pub elapsed: Duration,
    /// The formulas in the form the renderers print ([`Options::form`]).
    pub printed: Printed,
    /// Wall time of each stage, in the order they ran (parsing through the printed form).
    pub stages: Stages,
}

/// The wall time of each stage of a derivation, in the order they ran. Each stage is also
/// announced to [`Options::progress`] as it starts.
///
/// ```
/// let d = eomderive::derive(&eomderive::lang::Source::inline("u^4/4"), &Default::default()).unwrap();
/// let names: Vec<&str> = d.stages.iter().map(|(name, _)| name).collect();
/// assert_eq!(names[..3], ["parsing", "gradient", "counter terms"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Stages {
    done: Vec<(&'static str, Duration)>,
    current: Option<(&'static str, Instant)>,
    progress: Option<fn(&str)>,
}

impl Stages {
    fn new(progress: Option<fn(&str)>) -> Stages {
        Stages {
            progress,
            ..Stages::default()
        }
    }

    /// Ends the stage running (if any) and starts `name`.
    fn enter(&mut self, name: &'static str) {
        self.finish();
        if let Some(p) = self.progress {
            p(name);
        }
        self.current = Some((name, Instant::now()));
    }

    /// Ends the stage running.
    fn finish(&mut self) {
        if let Some((name, start)) = self.current.take() {
            self.done.push((name, start.elapsed()));
        }
    }

    /// Wall time from the start of stage `first` until now (the stages after it included).
    fn since(&self, first: &str) -> Duration {
        let done: Duration = self
            .done
            .iter()
            .skip_while(|(n, _)| *n != first)
            .map(|(_, d)| *d)
            .sum();
        done + self.current.map_or(Duration::ZERO, |(_, t)| t.elapsed())
    }

    /// Each finished stage with its wall time.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Duration)> + '_ {
        self.done.iter().copied()
    }

    /// The wall time of the stage `name` (zero when it did not run).
    pub fn get(&self, name: &str) -> Duration {
        self.done
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, d)| *d)
            .sum()
    }
}

/// Parses the loss, derives its gradient and counter terms ξ_1..ξ_order, and evaluates them
/// where a point is known.
///
/// Snapshot-testing a derived formula, as a project using eomderive would (with `insta`):
///
/// ```
/// use eomderive::{derive, lang::Source, render, Options};
/// // Without the analyses (gradient fields, invariances), to keep the report short.
/// let options = Options { order: 1, analyze: false, ..Options::default() };
/// let d = derive(&Source::inline("(u*v - 1)^2/2"), &options).unwrap();
/// // ξ_1 = ½ H g: with r = uv − 1, H g = (r² u + v r (u² + v²), r² v + u r (u² + v²)),
/// // which is r (2u²v + v³ − u) and r (u³ + 2uv² − v).
/// insta::assert_snapshot!(render::text(&d), @r"
/// parameters: u, v
/// loss = (u*v - 1)^2/2
/// gradient:
///   ∂f/∂u = v*(u*v - 1)
///   ∂f/∂v = u*(u*v - 1)
/// counter terms (dθ/dt = -∇f - η ξ_1 - η^2 ξ_2 - ...), order 1:
///   ξ_1[u] = (u*v - 1)*(2*u^2*v + v^3 - u)/2
///   ξ_1[v] = (u*v - 1)*(u^3 + 2*u*v^2 - v)/2
/// ");
/// ```
pub fn derive(source: &Source, options: &Options) -> Result<Derivation> {
    check_order(options.order)?;
    let mut stages = Stages::new(options.progress);
    stages.enter("parsing");
    let model = lang::parse(source).map_err(|e| {
        // A one-line argument that is not a valid loss may have been meant as a file name.
        let one_line = !source.text.contains(['\n', '\r']);
        match e.kind {
            ErrorKind::Parse if source.is_inline() && one_line => {
                let mut shown: String = source.text.chars().take(60).collect();
                if shown.len() < source.text.len() {
                    shown.push_str("...");
                }
                Error {
                    message: format!(
                        "`{shown}` names no file, and is not a valid loss either: {}",
                        e.message
                    ),
                    ..e
                }
            }
            _ => e,
        }
    })?;
    derive_staged(model, options, stages)
}

/// The error of a derivation stopped by its node or memory limit ([`budget`]).
fn too_large(e: series::TooLarge, max_nodes: usize, memory: u64, options: &Options) -> Error {
    let bytes = (e.nodes as u64).saturating_mul(budget::BYTES_PER_NODE);
    let by_memory = max_nodes < options.max_nodes;
    let limit = if by_memory {
        let whose = if options.max_memory.is_some() {
            "--max-memory"
        } else {
            "a quarter of this machine's memory; --max-memory sets it"
        };
        format!(
            "the memory limit of {} ({whose})",
            budget::show_size(memory)
        )
    } else {
        format!("the limit of {max_nodes} expression nodes")
    };
    let message = if e.predicted {
        format!(
            "ξ_{} would need about {} expression nodes ({}), past {limit}: forecast from the growth of the orders before, before the work",
            e.order,
            e.nodes,
            budget::show_size(bytes)
        )
    } else {
        format!(
            "the derivation outgrew {limit} while deriving ξ_{} ({} nodes, {})",
            e.order,
            e.nodes,
            budget::show_size(bytes)
        )
    };
    let help = match (e.fits, by_memory) {
        (0, true) => "not even ξ_1 fits: raise --max-memory".to_string(),
        (0, false) => "not even ξ_1 fits".to_string(),
        (k, true) => {
            format!("the largest order that fits is {k}: use --order {k}, or raise --max-memory")
        }
        (k, false) => format!("the largest order that fits is {k}: use --order {k}"),
    };
    Error::new(ErrorKind::Limit, message).with_help(help)
}

fn check_order(order: usize) -> Result<()> {
    if order > MAX_LOSS_ORDER {
        return Err(Error::new(
            ErrorKind::Limit,
            format!(
                "order {} is past the limit for a specific loss ({MAX_LOSS_ORDER})",
                order
            ),
        )
        .with_help(format!(
            "derive at most --order {MAX_LOSS_ORDER}; the loss-independent form goes to --generic --order {}",
            series::MAX_ORDER
        )));
    }
    Ok(())
}

/// [`derive`] for a loss already parsed (for instance to time the derivation alone).
///
/// ```
/// let m = eomderive::lang::parse_str("(u*v - 1)^2/2").unwrap();
/// let d = eomderive::derive_model(m, &eomderive::Options::default()).unwrap();
/// assert_eq!(d.xi.len(), 2);
/// ```
pub fn derive_model(model: Model, options: &Options) -> Result<Derivation> {
    derive_staged(model, options, Stages::new(options.progress))
}

fn derive_staged(mut model: Model, options: &Options, mut stages: Stages) -> Result<Derivation> {
    check_order(options.order)?;
    let optimizer = resolve_optimizer(options, &model.settings)?;
    if optimizer.batches.is_some() && options.order > series::SGD_MAX_ORDER {
        return Err(Error::new(
            ErrorKind::Limit,
            format!(
                "order {} is past the limit for sgd ({})",
                options.order,
                series::SGD_MAX_ORDER
            ),
        )
        .with_help(format!(
            "derive at most --order {} (ξ_5 would need the 120 orders of each of ~50 000 coloured trees)",
            series::SGD_MAX_ORDER
        )));
    }
    if !optimizer.is_gd() && options.order > series::METHOD_MAX_ORDER {
        return Err(Error::new(
            ErrorKind::Limit,
            format!(
                "order {} is past the limit for {} ({})",
                options.order,
                optimizer.method,
                series::METHOD_MAX_ORDER
            ),
        )
        .with_help(format!(
            "derive at most --order {}",
            series::METHOD_MAX_ORDER
        )));
    }
    if let Some(l) = &options.weight_decay {
        if l.is_negative() {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("the weight decay is negative ({l})"),
            )
            .with_help("λ must be 0 or more: GD then trains loss + (λ/2)‖θ‖²"));
        }
        model.set_weight_decay(Some(l.clone()));
    }
    stages.enter("gradient");
    let mut diff = Diff::new(model.params.len());
    let gradient = diff.gradient(&mut model.graph, model.loss);
    // SGD: the minibatch losses f_a (with the weight decay in each) and their gradients.
    let batches: Vec<Vec<Id>> = match optimizer.batches {
        None => Vec::new(),
        Some(b) => model
            .batch_losses(b.count)?
            .into_iter()
            .map(|f| diff.gradient(&mut model.graph, f))
            .collect(),
    };
    // Invariances are the loss's without weight decay.
    let base_gradient = match model.weight_decay {
        None => gradient.clone(),
        Some(_) => diff.gradient(&mut model.graph, model.unregularized),
    };
    // The one-field table (SGD's is coloured and solved below; it needs only the leading term).
    let trees = if options.order == 0 || optimizer.batches.is_some() {
        GenericSeries {
            forest: series::Forest::new(),
            leading: optimizer.leading(),
            xi: Vec::new(),
        }
    } else if optimizer.is_gd() {
        generic(options.order)?
    } else {
        series::optimizer_series(&optimizer, options.order).map_err(series_error)?
    };
    let leading = trees.leading.clone();
    let xi = if options.order == 0 {
        Vec::new()
    } else {
        stages.enter("counter terms");
        let memory = options.max_memory.unwrap_or_else(budget::default_memory);
        let max_nodes = options
            .max_nodes
            .min((memory / budget::BYTES_PER_NODE).min(usize::MAX as u64) as usize);
        let mut watch = |before: series::Before| {
            let forecast = budget::Forecast::new(&before);
            forecast.check(&before, max_nodes)?;
            if let Some(p) = options.progress {
                let left = forecast.seconds();
                let eta = if left >= 0.5 {
                    format!(", about {left:.1} s left")
                } else {
                    String::new()
                };
                p(&format!(
                    "counter terms: ξ_{} of {}{eta}",
                    before.order, before.orders
                ));
            }
            Ok(())
        };
        match optimizer.batches {
            None => series::instantiate_watched(
                &trees.forest,
                &trees.xi,
                &mut model.graph,
                &mut diff,
                std::slice::from_ref(&gradient),
                max_nodes,
                &mut watch,
            ),
            Some(b) => {
                if b.count > series::SgdSeries::MAX_BATCHES {
                    return Err(Error::new(
                        ErrorKind::Limit,
                        format!(
                            "{} batches are past the limit of {}",
                            b.count,
                            series::SgdSeries::MAX_BATCHES
                        ),
                    )
                    .with_help("use fewer batches (each batch is a colour of the coloured trees)"));
                }
                let table = series::sgd_series(b.order, options.order).map_err(series_error)?;
                let count = table.term_count(b.count);
                if count > MAX_SGD_TERMS {
                    return Err(Error::new(
                        ErrorKind::Limit,
                        format!(
                            "SGD with {} batches has {count} coloured terms up to ξ_{}, past the limit of {MAX_SGD_TERMS}",
                            b.count, options.order
                        ),
                    )
                    .with_help(
                        "use fewer batches or a lower --order (the generic form for every m, --generic --optimizer sgd, has no such limit)",
                    ));
                }
                // Colour m is the full gradient (shuffled sums rewritten over it, for_loss).
                let (forest, terms) = table.for_loss(b.count);
                let mut fields = batches.clone();
                fields.push(gradient.clone());
                series::instantiate_watched(&forest, &terms, &mut model.graph, &mut diff, &fields, max_nodes, &mut watch)
            }
        }
        .map_err(|e| too_large(e, max_nodes, memory, options))?
    };
    stages.enter("simplifying");
    // Simplify the loss, gradient and counter terms together, so that what they share stays
    // shared.
    let n = gradient.len();
    let mut roots = vec![model.loss];
    roots.extend(&gradient);
    roots.extend(xi.iter().flatten());
    let roots = expr::affine_collapse(&mut model.graph, &roots, n);
    let (roots, simplification) = match options.simplify {
        Simplify::Fast => (roots, None),
        Simplify::Egg => {
            stages.enter("equality saturation");
            let (r, outcome) = expr::simplify(&mut model.graph, &roots, &options.limits);
            (r, Some(outcome))
        }
    };
    model.loss = roots[0];
    let gradient = roots[1..=n].to_vec();
    let xi: Vec<Vec<Id>> = roots[n + 1..].chunks(n).map(<[Id]>::to_vec).collect();
    let all_xi: Vec<Id> = xi.iter().flatten().copied().collect();
    let ops = model.graph.op_count(&all_xi);
    let elapsed = stages.since("gradient");
    stages.enter("evaluating");
    let point = match (&options.at, model.initial_point()) {
        (None, None) => None,
        (at, _) => Some(lang::parse_point(&model, at.as_deref())?),
    };
    let evaluation = match point {
        None => None,
        Some(p) => Some(
            numeric::evaluate(&model.graph, model.loss, &gradient, &xi, &p)
                .map_err(|e| domain_error(&model, &gradient, e))?,
        ),
    };
    let radius = match (
        &evaluation,
        optimizer.is_gd() || optimizer.batches.is_some(),
    ) {
        (Some(ev), false) => numeric::Radius::at(&optimizer, &model.graph, &gradient, &ev.point),
        _ => None,
    };
    let analysis = options.analyze.then(|| {
        stages.enter("analysing");
        let center = match &evaluation {
            Some(e) => e.point.clone(),
            None => vec![0.0; gradient.len()],
        };
        analysis::analyze(analysis::Input {
            graph: &mut model.graph,
            diff: &mut diff,
            params: &model.params,
            base_gradient: &base_gradient,
            gradient: &gradient,
            xi: &xi,
            series: trees,
            method: optimizer.method,
            weight_decay: model.weight_decay.is_some(),
            batches: optimizer.batches.map(|b| analysis::Batches {
                gradients: &batches,
                order: b.order,
            }),
            center,
            scalars: options.form != Form::Program
                && ops <= expr::readable::FormLimits::default().program_ops,
        })
    });
    stages.enter("writing the formulas");
    let mut printed = printed_form(&mut model, &gradient, &xi, options.form);
    if let Some(a) = &analysis {
        let start = Instant::now();
        printed.modified_loss = modified_loss(&mut model, a, printed.form);
        printed.elapsed += start.elapsed();
    }
    Ok(Derivation {
        model,
        optimizer,
        leading,
        gradient,
        batches,
        xi,
        evaluation,
        radius,
        ops,
        simplification,
        analysis,
        check: None,
        elapsed,
        printed,
        stages: {
            stages.finish();
            stages
        },
    })
}

/// f + Σ_k η^k Φ_k / c (c the leading coefficient) in the printed form, each term on its own
/// (so the loss stays as it is written), for the first counter terms that have potentials.
fn modified_loss(model: &mut Model, a: &analysis::Analysis, form: Form) -> Option<Id> {
    let j = a.modified_loss_order();
    if j == 0 || form == Form::Program {
        return None;
    }
    let n = model.params.len();
    let g = &mut model.graph;
    let eta = g.var(expr::VarId(n as u32));
    let inv = g.num(a.leading.recip());
    let mut terms = vec![model.loss];
    for (k, f) in a.fields[..j].iter().enumerate() {
        let phi = f.potential.as_ref()?.scalar?;
        let e = g.powi(eta, k as i64 + 1);
        let t = g.mul(inv, phi);
        terms.push(g.mul(e, t));
    }
    let lets: Vec<(String, Id)> = Vec::new();
    let limits = expr::readable::FormLimits::default();
    let r = match form {
        Form::Expanded => expr::readable::expanded(g, &terms, &lets, n + 1, &limits),
        _ => expr::readable::readable(g, &terms, &lets, &[model.loss], n + 1, &limits),
    }
    .ok()?;
    let mut it = r.roots.into_iter();
    let first = it.next()?;
    Some(it.fold(first, |acc, t| match g.get(t).clone() {
        Op::Neg(x) => g.intern(Op::Sub([acc, x])),
        _ => g.intern(Op::Add([acc, t])),
    }))
}

/// The loss, gradient and counter terms in `form`, or in the program form with a line saying
/// why when the form would pass its limits ([`expr::readable::FormLimits`]).
fn printed_form(model: &mut Model, gradient: &[Id], xi: &[Vec<Id>], form: Form) -> Printed {
    let start = Instant::now();
    let n = gradient.len();
    let mut roots = vec![model.loss];
    roots.extend(gradient);
    roots.extend(xi.iter().flatten());
    let limits = expr::readable::FormLimits::default();
    let result = match form {
        Form::Program => None,
        Form::Readable => Some(expr::readable::readable(
            &mut model.graph,
            &roots,
            &model.names,
            &[model.loss],
            n,
            &limits,
        )),
        Form::Expanded => Some(expr::readable::expanded(
            &mut model.graph,
            &roots,
            &model.names,
            n,
            &limits,
        )),
    };
    let (form, roots, lets, fallback) = match result {
        None => (Form::Program, roots, model.names.clone(), None),
        Some(Ok(r)) => (form, r.roots, r.lets, None),
        Some(Err(e)) => (
            Form::Program,
            roots,
            model.names.clone(),
            Some(format!(
                "the {form} form would need {e}: printed as the program instead"
            )),
        ),
    };
    Printed {
        modified_loss: None,
        form,
        loss: roots[0],
        gradient: roots[1..=n].to_vec(),
        xi: roots[n + 1..]
            .chunks(n.max(1))
            .map(<[Id]>::to_vec)
            .collect(),
        lets,
        fallback,
        elapsed: start.elapsed(),
    }
}

/// Checks a derivation against gradient descent from its evaluation point (`--at` or the
/// file's values): GD against the EoM truncated after ξ_K for K = 0..order, at η, η/2, …
/// over a fixed horizon (DESIGN.md §4.3); one step's error against its prediction
/// η^{K+2} ξ_{K+1}; and, for each invariance the analyses found, its quantity (‖θ_A‖² or
/// 1_A·θ) along GD, gradient flow and each order.
///
/// ```
/// use eomderive::{check, derive, lang::Source, numeric::CheckOptions, Options};
/// let d = derive(&Source::inline("param u = 1\nloss = u^4/4"), &Options { order: 1, ..Default::default() }).unwrap();
/// let c = check(&d, &CheckOptions { lr: 0.05, steps: 10, ..Default::default() }).unwrap();
/// assert!((c.slopes[0].unwrap() - 1.0).abs() < 0.1); // gradient flow: O(η)
/// assert!((c.slopes[1].unwrap() - 2.0).abs() < 0.1); // with ξ_1: O(η²)
/// ```
pub fn check(derivation: &Derivation, options: &numeric::CheckOptions) -> Result<numeric::Check> {
    let Some(ev) = &derivation.evaluation else {
        return Err(
            Error::new(ErrorKind::Usage, "the check needs a starting point")
                .with_help("give every parameter a value in the loss file, or use --at"),
        );
    };
    if !(options.lr > 0.0 && options.lr.is_finite()) || options.steps == 0 {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "the check needs a positive learning rate and at least one step (got --lr {} --steps {})",
                options.lr, options.steps
            ),
        ));
    }
    // A method's series diverges past its radius (DESIGN.md §2.4): an η past half of it is
    // replaced by one well inside, and the report says so.
    let requested = options.lr;
    let lr = derivation
        .radius
        .map_or(requested, |r| r.check_lr(requested));
    let epoch = derivation.optimizer.batches;
    if let Some(b) = epoch {
        if !options.steps.is_multiple_of(b.count) {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "--steps {} is not a whole number of epochs of {} batches",
                    options.steps, b.count
                ),
            )
            .with_help(format!(
                "--steps counts SGD steps (the horizon is steps·η); give a multiple of {}, e.g. --steps {}",
                b.count,
                (options.steps / b.count).max(1) * b.count
            )));
        }
    }
    let options = &numeric::CheckOptions { lr, ..*options };
    let m = &derivation.model;
    // One counter term more than the derivation has predicts the top order's local error
    // (η^{K+2} ξ_{K+1}); without it (past the order limit, or past the node budget below) that
    // row is left out and the report says so.
    let order = derivation.xi.len();
    let next = (order < MAX_LOSS_ORDER)
        .then(|| {
            // A bounded budget: the next order usually needs a few times the nodes of this
            // one; one that would swell far beyond is not worth the prediction.
            let options = Options {
                order: order + 1,
                analyze: false,
                max_nodes: (8 * m.graph.len()).clamp(100_000, MAX_NODES),
                ..Options::for_optimizer(&derivation.optimizer)
            };
            derive_model(m.clone(), &options).ok()
        })
        .flatten();
    // The EoM is the derivation's own ξ_1..ξ_K (the check tests the printed expressions),
    // plus ξ_{K+1} from the extension, whose graph extends this one (graphs only grow, so
    // the derivation's ids stay valid in it).
    let mut xi = derivation.xi.clone();
    let graph = match &next {
        Some(n) => {
            xi.push(n.xi[order].clone());
            &n.model.graph
        }
        None => &m.graph,
    };
    let eom = numeric::Eom::compile(graph, &derivation.gradient, &xi)
        .with_leading(numeric::to_f64(&derivation.leading));
    let options = &numeric::CheckOptions {
        order: Some(order),
        ..*options
    };
    let mut roots = vec![m.loss];
    roots.extend(&derivation.gradient);
    let descent = numeric::VectorField::compile(&m.graph, &roots);
    let x0 = nalgebra::DVector::from_vec(ev.point.clone());
    if let Some(b) = epoch {
        return check_epochs(derivation, eom, &descent, &x0, b, options);
    }
    // Each invariance's quantity is tracked along GD, gradient flow and the EoM.
    let observables: Vec<numeric::Observable> = derivation
        .analysis
        .iter()
        .flat_map(|a| &a.invariances)
        .map(|inv| match inv.kind {
            analysis::Kind::Scale => numeric::Observable {
                label: format!("‖{}‖²", inv.name),
                indices: inv.group.clone(),
                kind: numeric::ObservableKind::SquaredNorm,
            },
            analysis::Kind::Translation => numeric::Observable {
                label: format!("1·{}", inv.name),
                indices: inv.group.clone(),
                kind: numeric::ObservableKind::Sum,
            },
        })
        .collect();
    let stepper = numeric::Stepper::new(&derivation.optimizer);
    let mut c = numeric::check_method(&eom, &descent, &stepper, &x0, options, &observables);
    c.requested_lr = (lr != requested).then_some(requested);
    Ok(c)
}

/// Random orders the Monte Carlo run of random reshuffling draws per η.
const RESHUFFLED_EPOCHS: usize = 4000;

/// [`check`] for SGD: an iterate is an epoch (cyclic, or averaged over every order), run as a
/// one-step method of step h = mη against the equation of motion in h (ξ_k/m^k); the rows
/// are reported in η and SGD steps. For a shuffled epoch, also the Monte Carlo run of real
/// random reshuffling.
fn check_epochs(
    derivation: &Derivation,
    eom: numeric::Eom,
    descent: &numeric::VectorField,
    x0: &nalgebra::DVector<f64>,
    batches: series::Minibatch,
    options: &numeric::CheckOptions,
) -> Result<numeric::Check> {
    let m = batches.count;
    let model = &derivation.model;
    let fields = derivation
        .batches
        .iter()
        .map(|g| {
            let mut roots = vec![model.loss];
            roots.extend(g);
            numeric::VectorField::compile(&model.graph, &roots)
        })
        .collect();
    let epochs = numeric::Epochs::new(fields, batches.order).map_err(|why| {
        Error::new(ErrorKind::Limit, format!("the check cannot run: {why}")).with_help(
            "check with fewer batches, or with --batch-order cyclic (the derivation itself has no such limit)",
        )
    })?;
    let (eta, steps) = (options.lr, options.steps);
    let per_epoch = numeric::CheckOptions {
        lr: eta * m as f64,
        steps: steps / m,
        ..*options
    };
    let monte_carlo = (batches.order == series::BatchOrder::Shuffled && m > 1)
        .then(|| numeric::reshuffling(&epochs, &eom, x0, eta, RESHUFFLED_EPOCHS, 20_261_201));
    let eom = eom.per_epoch(m);
    let stepper = numeric::Stepper::epochs(epochs);
    let mut c = numeric::check_method(&eom, descent, &stepper, x0, &per_epoch, &[]);
    // Back from epochs of h = mη to SGD steps of η.
    // η/2^j exactly, from the row's count of epochs (steps/m · 2^j).
    let halved = |epochs: usize| eta / (epochs / (steps / m)) as f64;
    c.lr = eta;
    c.steps = steps;
    for r in &mut c.rows {
        r.lr = halved(r.steps);
        r.steps *= m;
    }
    for r in &mut c.local {
        r.lr /= m as f64;
    }
    c.batches = Some((m, batches.order));
    c.monte_carlo = monte_carlo;
    Ok(c)
}

/// The loss-independent counter terms ξ_1..ξ_order as exact sums over trees.
///
/// ```
/// let s = eomderive::generic(3).unwrap();
/// assert_eq!(s.xi[2].len(), 3); // ξ_3 = 1/12 T(Hg, g) + 1/12 H T(g, g) + 1/4 H H H g
/// assert_eq!(eomderive::generic(0).unwrap_err().exit_code(), 2);
/// ```
pub fn generic(order: usize) -> Result<GenericSeries> {
    series::counter_terms(order).map_err(|e| {
        Error::new(ErrorKind::Limit, e.to_string()).with_help(format!(
            "choose --order between 1 and {}",
            series::MAX_ORDER
        ))
    })
}

/// The loss-independent counter terms of any optimizer as exact sums over trees: symbolic in
/// the method's parameter (β, r) unless its value is given, then exact numbers.
///
/// ```
/// use eomderive::series::{Method, Optimizer};
/// let hb = eomderive::generic_optimizer(&Optimizer::new(Method::HeavyBall, None), 2).unwrap();
/// assert!(hb.parameter.is_none() && !hb.xi[0][0].1.is_constant()); // (1 + β)/(2(1 − β)³)
/// let at = Optimizer::new(Method::HeavyBall, Some(num_rational::BigRational::new(1.into(), 2.into())));
/// let hb = eomderive::generic_optimizer(&at, 2).unwrap();
/// let zero = num_rational::BigRational::from_integer(0.into());
/// assert_eq!(hb.xi[0][0].1.eval(&zero).unwrap().to_string(), "6"); // (3/2)/(2/8)
/// ```
pub fn generic_optimizer(optimizer: &Optimizer, order: usize) -> Result<MethodSeries> {
    let method = optimizer.method;
    if method == Method::Sgd {
        return Err(Error::new(
            ErrorKind::Usage,
            "SGD's counter terms are sums over coloured trees, one colour per batch",
        )
        .with_help("use generic_sgd (the command line does with --generic --optimizer sgd)"));
    }
    match (&optimizer.parameter, method) {
        (_, Method::Gd) => Ok(MethodSeries::from_numbers(method, None, generic(order)?)),
        (Some(v), _) => {
            if let Some(why) = method.parameter().and_then(|p| p.refuse(v)) {
                return Err(Error::new(ErrorKind::Usage, why));
            }
            let s = series::optimizer_series(optimizer, order).map_err(series_error)?;
            Ok(MethodSeries::from_numbers(method, Some(v.clone()), s))
        }
        (None, _) => series::method_series(method, order).map_err(|e| {
            series_error(e).with_help(format!(
                "choose --order between 1 and {} with a symbolic parameter, or give its value (--{} …) for up to {}",
                series::SYMBOLIC_MAX_ORDER,
                method.parameter().map_or("momentum", Parameter::flag),
                series::METHOD_MAX_ORDER
            ))
        }),
    }
}

/// Minibatch SGD's loss-independent counter terms on coloured trees: for every number of
/// batches m (`batches: None`, each ξ_k with a factor 1/m), or for a given m (exact numbers;
/// m = 1 is GD's table).
///
/// ```
/// use eomderive::series::BatchOrder;
/// let s = eomderive::generic_sgd(BatchOrder::Shuffled, Some(2), 2).unwrap();
/// assert_eq!(s.xi[1].len(), 7); // ξ_2: one pattern of one batch, six of two
/// assert!(eomderive::generic_sgd(BatchOrder::Cyclic, Some(0), 1).is_err());
/// ```
pub fn generic_sgd(
    order: series::BatchOrder,
    batches: Option<usize>,
    k: usize,
) -> Result<series::SgdSeries> {
    if batches == Some(0) {
        return Err(
            Error::new(ErrorKind::Usage, "SGD needs at least 1 batch (got 0)")
                .with_help("give --batches m with m ≥ 1, or leave it out for the form for every m"),
        );
    }
    if batches.is_some_and(|m| m > series::SgdSeries::MAX_BATCHES) {
        return Err(Error::new(
            ErrorKind::Limit,
            format!(
                "more batches than the limit of {}",
                series::SgdSeries::MAX_BATCHES
            ),
        )
        .with_help("leave --batches out for the form for every m"));
    }
    let s = series::sgd_series(order, k).map_err(series_error)?;
    Ok(match batches {
        Some(m) => s.with_batches(m),
        None => s,
    })
}

/// The highest order of the generic JAX module ([`generic_jax_module`]): ξ_8 has 286 trees,
/// each up to 8 nested jvps deep.
pub const GENERIC_EMIT_MAX_ORDER: usize = 8;

/// GD's generic tree table to `order` as a JAX module (`--generic --emit jax`,
/// [`render::generic_jax`]); past [`GENERIC_EMIT_MAX_ORDER`], a limit error.
///
/// ```
/// let module = eomderive::generic_jax_module(2).unwrap();
/// assert!(module.contains("def xi(loss_fn, params"));
/// assert!(eomderive::generic_jax_module(9).is_err());
/// ```
pub fn generic_jax_module(order: usize) -> Result<String> {
    if order > GENERIC_EMIT_MAX_ORDER {
        return Err(Error::new(
            ErrorKind::Limit,
            format!("--generic --emit jax goes to order {GENERIC_EMIT_MAX_ORDER} (asked {order})"),
        )
        .with_help(format!(
            "a tree of ξ_K costs up to K nested jvps and ξ_K has A000081(K+1) trees; use --order {GENERIC_EMIT_MAX_ORDER} or less"
        )));
    }
    Ok(render::generic_jax(&generic(order)?))
}

fn series_error(e: series::SeriesError) -> Error {
    let limit = match &e {
        series::SeriesError::OrderTooLarge { limit, .. } => *limit,
        series::SeriesError::ZeroOrder => series::METHOD_MAX_ORDER,
    };
    Error::new(ErrorKind::Limit, e.to_string())
        .with_help(format!("choose --order between 1 and {limit}"))
}

/// The optimizer a derivation describes: the options' method and parameter, else the loss
/// file's `optimizer`, `momentum` and `rho_ratio` lines, else GD; the parameter's default where
/// neither gives it. A parameter that the method does not have, and a momentum outside
/// [0, 1), are errors that name where they were given (a file's parameter line is set aside
/// when the options choose a method without that parameter).
///
/// SGD takes its number of batches from `options.batches`, else the file's `batches` line
/// (one of them is required), and its order from `options.batch_order`, else the file's
/// `batch_order` line, else shuffled. Batches or a batch order with another method are
/// errors in the same way (a `batches` line alone does not choose SGD).
///
/// ```
/// use eomderive::{resolve_optimizer, lang::Settings, series::{BatchOrder, Method, Optimizer}, Options};
/// let o = resolve_optimizer(&Options { method: Some(Method::Nesterov), ..Options::default() }, &Settings::default()).unwrap();
/// assert_eq!(o.parameter.unwrap().to_string(), "9/10");
/// let bad = Options { momentum: Some(num_rational::BigRational::new(1.into(), 2.into())), ..Options::default() };
/// let e = resolve_optimizer(&bad, &Settings::default()).unwrap_err();
/// assert!(e.message.contains("--momentum applies to heavy-ball and nesterov"), "{}", e.message);
///
/// // SGD: the flag's batches win over the file's; the order defaults to shuffled.
/// let file = Settings { batches: Some((4, 3)), ..Settings::default() };
/// let sgd = Options { method: Some(Method::Sgd), batches: Some(2), ..Options::default() };
/// assert_eq!(resolve_optimizer(&sgd, &file).unwrap(), Optimizer::sgd(2, BatchOrder::Shuffled));
/// let e = resolve_optimizer(&Options::default(), &file).unwrap_err();
/// assert_eq!(e.message, "the `batches` line (line 3) applies to sgd only, and the optimizer is gd (plain gradient descent)");
/// ```
pub fn resolve_optimizer(options: &Options, settings: &Settings) -> Result<Optimizer> {
    let (method, method_line) = match (options.method, &settings.optimizer) {
        (Some(m), _) => (m, None),
        (None, Some((m, line))) => (*m, Some(*line)),
        (None, None) => (Method::Gd, None),
    };
    let chosen = match method_line {
        Some(line) => format!("the file's optimizer (line {line}) is {method}"),
        None if options.method.is_some() => format!("--optimizer is {method}"),
        None => "the optimizer is gd (plain gradient descent)".into(),
    };
    let mut value = None;
    for (p, flag, line) in [
        (Parameter::Momentum, &options.momentum, &settings.momentum),
        (Parameter::RhoRatio, &options.rho_ratio, &settings.rho_ratio),
    ] {
        let given = match (flag, line) {
            (Some(v), _) => Some((v.clone(), format!("--{}", p.flag()))),
            (None, Some((v, l))) => Some((
                v.clone(),
                format!("the `{}` line (line {l})", p.flag().replace('-', "_")),
            )),
            (None, None) => None,
        };
        let Some((v, whence)) = given else { continue };
        // A file's `momentum` line does not bind a method the command line chose instead.
        if flag.is_none() && options.method.is_some() && method.parameter() != Some(p) {
            continue;
        }
        if method.parameter() != Some(p) {
            let (applies, help) = match p {
                Parameter::Momentum => (
                    "heavy-ball and nesterov",
                    "choose --optimizer heavy-ball or nesterov, or drop the momentum",
                ),
                Parameter::RhoRatio => ("sam", "choose --optimizer sam, or drop the ratio"),
            };
            return Err(Error::new(
                ErrorKind::Usage,
                format!("{whence} applies to {applies} only, and {chosen}"),
            )
            .with_help(help));
        }
        if let Some(why) = p.refuse(&v) {
            return Err(Error::new(ErrorKind::Usage, format!("{whence}: {why}"))
                .with_help("β = 0 is plain GD; 0.9 and 0.99 are the usual choices"));
        }
        value = Some(v);
    }
    let value = value.or_else(|| method.parameter().map(Parameter::default_value));
    let batches = match (options.batches, settings.batches) {
        (Some(m), _) => Some((m, "--batches".to_string(), true)),
        (None, Some((m, l))) => Some((m, format!("the `batches` line (line {l})"), false)),
        (None, None) => None,
    };
    let order = match (options.batch_order, settings.batch_order) {
        (Some(o), _) => Some((o, "--batch-order".to_string(), true)),
        (None, Some((o, l))) => Some((o, format!("the `batch_order` line (line {l})"), false)),
        (None, None) => None,
    };
    if method == Method::Sgd {
        let Some((m, whence, _)) = batches else {
            let help = match method_line {
                Some(_) => "add a `batches = m` line (or give --batches m)",
                None => "add --batches m (or a `batches = m` line)",
            };
            return Err(Error::new(
                ErrorKind::Usage,
                format!("SGD needs the number of minibatches: {chosen}, and neither --batches nor a `batches` line gives it"),
            )
            .with_help(help));
        };
        if m == 0 {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "{whence}: the number of batches must be a whole number, 1 or more (got 0)"
                ),
            )
            .with_help("1 batch is plain GD; the examples split into m equal batches"));
        }
        return Ok(Optimizer::sgd(
            m,
            order.map_or_else(Default::default, |o| o.0),
        ));
    }
    for (whence, from_flag, flag, word) in [
        batches.map(|(_, w, f)| (w, f, "--batches", "batches")),
        order.map(|(_, w, f)| (w, f, "--batch-order", "batch_order")),
    ]
    .into_iter()
    .flatten()
    {
        // A file's `batches` line does not bind a method the command line chose instead.
        if !from_flag && options.method.is_some() {
            continue;
        }
        let help = if from_flag {
            format!("choose --optimizer sgd, or drop {flag}")
        } else if method_line.is_some() {
            format!("choose `optimizer = sgd`, or remove the `{word}` line")
        } else {
            // Neither the file nor the command line chose a method: the line alone does not
            // choose SGD.
            format!("add `optimizer = sgd` (a `{word}` line alone does not choose SGD), or remove the `{word}` line")
        };
        return Err(Error::new(
            ErrorKind::Usage,
            format!("{whence} applies to sgd only, and {chosen}"),
        )
        .with_help(help));
    }
    Ok(Optimizer::new(method, value))
}

/// A domain error at a point, naming the subexpression that is undefined.
fn domain_error(model: &Model, gradient: &[Id], e: numeric::DomainError) -> Error {
    let in_loss = model.graph.cone(&[model.loss]).contains(&e.node);
    let in_gradient = model.graph.cone(gradient).contains(&e.node);
    let p = render::Printer::new(&model.graph, &model.params, &[], &[e.node]);
    let mut sub = p.expr(e.node);
    if sub.chars().count() > 80 {
        sub = sub.chars().take(77).collect::<String>() + "...";
    }
    let whose = if in_loss {
        "the loss"
    } else if in_gradient {
        "the gradient of the loss"
    } else {
        "a counter term"
    };
    Error::new(
        ErrorKind::Domain,
        format!("{whose} is undefined at this point: {} in `{sub}`", e.what),
    )
    .with_help("choose another point with --at, or change the initial values in the loss file")
}
