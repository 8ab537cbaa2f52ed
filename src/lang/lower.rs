//! Lowering: syntax tree → [`Model`]. Arrays expand to scalars, reductions and indexed `let`s
//! are unrolled with their index bound to each value in turn, and every scalar goes through the
//! graph's smart constructors, so identical subexpressions are one node.

use crate::hash::HashMap;

use num_rational::BigRational;
use num_traits::{Signed, ToPrimitive};

use super::ast::{self, Arg, BinOp, Decl, Expr, File, Name, Span, Stmt, Value};
use super::{did_you_mean, edit_distance, is_transposition, Model, Settings, Source};
use crate::error::{Error, ErrorKind, Location, Result};
use crate::expr::{Func, Graph, Id, VarId};
use crate::series::{BatchOrder, Method, Parameter};

/// Largest range a reduction or indexed `let` may run over.
const MAX_RANGE: i64 = 1_000_000;
/// Most scalar entries (array entries, `let` entries, reduction terms) one loss unrolls to, so
/// that `param W[1000000,1000000]` or nested reductions over huge ranges fail at once.
const MAX_UNROLLED: usize = 10_000_000;
/// Largest exact constant built by folding, in bits of numerator plus denominator (`1e10000`
/// has 33 220), so that `((2^64)^64)^64` or `prod(i in 1..100000, 1e100)` fail at once.
const MAX_CONSTANT_BITS: u64 = 1 << 17;

/// Functions the language knows besides [`Func`]: reductions and vector helpers.
const REDUCTIONS: [&str; 4] = ["sum", "mean", "prod", "logsumexp"];
const OTHER_FUNCTIONS: [&str; 3] = ["pow", "norm", "dot"];
/// Names refused because the counter terms need a smooth loss.
const NON_SMOOTH: [&str; 10] = [
    "abs",
    "relu",
    "max",
    "min",
    "sign",
    "floor",
    "ceil",
    "round",
    "step",
    "heaviside",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Param,
    Data,
    Let,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Param => "param",
            Kind::Data => "data",
            Kind::Let => "let",
        }
    }
}

/// A declared name: its shape (empty for a scalar) and its scalar entries, row-major.
#[derive(Debug, Clone)]
struct Symbol {
    kind: Kind,
    dims: Vec<usize>,
    items: Vec<Id>,
    span: Span,
}

struct Lowerer<'s> {
    src: &'s Source,
    g: Graph,
    symbols: HashMap<String, Symbol>,
    /// Declared names in order, for suggestions.
    order: Vec<String>,
    params: Vec<String>,
    initial: Vec<Option<BigRational>>,
    names: Vec<(String, Id)>,
    /// Index variables in scope, innermost last.
    bound: Vec<(String, i64)>,
    loss: Option<(Id, Span)>,
    /// `weight_decay = λ`, with where it was given.
    decay: Option<(BigRational, Span)>,
    /// `optimizer = NAME`, with where it was given.
    optimizer: Option<(Method, Span)>,
    /// `momentum = β`, with where it was given.
    momentum: Option<(BigRational, Span)>,
    /// `rho_ratio = r`, with where it was given.
    rho_ratio: Option<(BigRational, Span)>,
    /// `batches = m`, with where it was given.
    batches: Option<(usize, Span)>,
    /// `batch_order = NAME`, with where it was given.
    batch_order: Option<(BatchOrder, Span)>,
    /// The loss expression's place (not the whole `loss = …` statement's).
    loss_expr: Option<Span>,
    /// The per-example terms ℓ_1..ℓ_N when the loss is `mean(i, …)` at its top level.
    examples: Option<Vec<Id>>,
    /// Scalar entries and reduction terms unrolled so far (see [`MAX_UNROLLED`]).
    unrolled: usize,
    /// How many times the expression being lowered is unrolled by the reductions and indexed
    /// `let` around it (1 outside them).
    repeat: usize,
}

/// The statement keywords, which cannot name anything. (`optimizer`, `momentum`, `rho_ratio`,
/// `batches` and `batch_order` start a statement too, but only when followed by `=`: they are
/// not reserved.)
const KEYWORDS: [&str; 5] = ["param", "data", "let", "loss", "weight_decay"];

pub fn lower(src: &Source) -> Result<Model> {
    let file = ast::parse(&src.text).map_err(|e| {
        let wants_name = e.message.contains("a name");
        let err = src.error(ErrorKind::Parse, e.span.start, e.span.end, e.message);
        // A line that starts with an operator was probably meant to continue the one above.
        let line_start = src.text[..e.span.start].rfind('\n').map_or(0, |i| i + 1);
        let continues = line_start > 0
            && src.text[line_start..e.span.start].trim().is_empty()
            && src.text[e.span.start..].starts_with(['+', '-', '*', '/', '^']);
        let word: String = src.text[e.span.start..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if continues {
            err.with_help("a statement ends with its line; to continue it on the next line, put the line break inside parentheses")
        } else if KEYWORDS.contains(&word.as_str()) && wants_name {
            err.with_help(format!("`{word}` is a keyword; choose another name"))
        } else if err.message.contains("a batch order name") {
            err.with_help("write `batch_order = cyclic` or `batch_order = shuffled`")
        } else if err.message.contains("an optimizer name") {
            err.with_help(format!(
                "write one of the names {} (e.g. `optimizer = heavy-ball`)",
                method_names()
            ))
        } else {
            err
        }
    })?;
    let mut l = Lowerer {
        src,
        g: Graph::new(),
        symbols: HashMap::default(),
        order: Vec::new(),
        params: Vec::new(),
        initial: Vec::new(),
        names: Vec::new(),
        bound: Vec::new(),
        loss: None,
        decay: None,
        optimizer: None,
        momentum: None,
        rho_ratio: None,
        batches: None,
        batch_order: None,
        loss_expr: None,
        examples: None,
        unrolled: 0,
        repeat: 1,
    };
    match file {
        File::Program(stmts) => {
            for s in &stmts {
                l.stmt(s)?;
            }
            l.check_settings()?;
        }
        File::Bare(e) => {
            let mut free = Vec::new();
            free_names(&e, &mut Vec::new(), &mut free)?.map_or(Ok(()), |n: Name| {
                Err(l
                    .err(n.span, format!("`{}` is indexed but not declared", n.text))
                    .with_help(format!(
                        "declare arrays in a loss file: `param {}[n]` then `loss = ...`",
                        n.text
                    )))
            })?;
            for n in free {
                l.declare_param_scalar(&n);
            }
            let id = l.expr(&e)?;
            l.loss = Some((id, e.span()));
            l.loss_expr = Some(e.span());
        }
    }
    let Some((loss, _)) = l.loss else {
        let end = src.text.trim_end().len();
        return Err(src
            .error(
                ErrorKind::Semantic,
                end,
                end,
                "there is no `loss = ...` line".into(),
            )
            .with_help("add one line `loss = <expression>`"));
    };
    if l.params.is_empty() {
        return Err(src
            .error(
                ErrorKind::Semantic,
                0,
                0,
                "the loss has no parameters to train".into(),
            )
            .with_help("declare them with `param`, e.g. `param u = 0.3`"));
    }
    let mut model = Model {
        graph: l.g,
        params: l.params,
        loss,
        unregularized: loss,
        initial: l.initial,
        names: l.names,
        weight_decay: None,
        settings: Settings {
            optimizer: l.optimizer.map(|(m, s)| (m, line_of(src, s))),
            momentum: l.momentum.map(|(v, s)| (v, line_of(src, s))),
            rho_ratio: l.rho_ratio.map(|(v, s)| (v, line_of(src, s))),
            batches: l.batches.map(|(v, s)| (v, line_of(src, s))),
            batch_order: l.batch_order.map(|(v, s)| (v, line_of(src, s))),
        },
        examples: l.examples,
        loss_at: l
            .loss_expr
            .map(|s| Location::from_span(&src.name, &src.text, s.start, s.end)),
    };
    model.set_weight_decay(l.decay.map(|(v, _)| v));
    Ok(model)
}

/// The 1-based line `span` starts on.
fn line_of(src: &Source, span: Span) -> usize {
    src.text[..span.start].matches('\n').count() + 1
}

/// The optimizer names, comma-separated, in the command line's order.
fn method_names() -> String {
    Method::ALL.map(Method::name).join(", ")
}

/// The method a mistyped optimizer name probably meant: one that starts with it, else the
/// closest within edit distance 2 (a swap of two adjacent letters counts 1). Case is ignored.
///
/// ```
/// use eomderive::{lang::close_method, series::Method};
/// assert_eq!(close_method("heavy_ball"), Some(Method::HeavyBall));
/// assert_eq!(close_method("nest"), Some(Method::Nesterov));
/// assert_eq!(close_method("lbfgs"), None);
/// ```
pub fn close_method(word: &str) -> Option<Method> {
    let word = word.to_lowercase();
    if word.is_empty() {
        return None;
    }
    Method::ALL
        .into_iter()
        .filter_map(|m| {
            let name = m.name();
            let prefix = name.starts_with(&word);
            let d = if is_transposition(&word, name) {
                1
            } else {
                edit_distance(&word, name)
            };
            (prefix || d <= 2).then_some((!prefix, d, m))
        })
        .min_by_key(|&(not_prefix, d, _)| (not_prefix, d))
        .map(|(.., m)| m)
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Collects the free identifiers of a bare expression in order of first appearance. Returns an
/// indexed name if there is one (bare expressions cannot declare arrays).
fn free_names(e: &Expr, bound: &mut Vec<String>, out: &mut Vec<Name>) -> Result<Option<Name>> {
    Ok(match e {
        Expr::Num(..) => None,
        Expr::Name(n) => {
            if !bound.contains(&n.text) && !out.iter().any(|o| o.text == n.text) {
                out.push(n.clone());
            }
            None
        }
        Expr::Index(n, ..) => Some(n.clone()),
        Expr::Neg(a, _) => free_names(a, bound, out)?,
        Expr::Binary(_, a, b, _) => match free_names(a, bound, out)? {
            Some(n) => Some(n),
            None => free_names(b, bound, out)?,
        },
        Expr::Call(f, args, _) => {
            let binder = if REDUCTIONS.contains(&f.text.as_str()) {
                match args.first() {
                    Some(Arg::Expr(Expr::Name(n))) | Some(Arg::Binder(n, ..)) => {
                        Some(n.text.clone())
                    }
                    _ => None,
                }
            } else {
                None
            };
            let skip = usize::from(binder.is_some());
            if let Some(b) = &binder {
                bound.push(b.clone());
            }
            let mut found = None;
            for a in &args[skip..] {
                if let Arg::Expr(x) = a {
                    if let Some(n) = free_names(x, bound, out)? {
                        found = Some(n);
                        break;
                    }
                }
            }
            if binder.is_some() {
                bound.pop();
            }
            found
        }
    })
}

impl Lowerer<'_> {
    fn err(&self, span: Span, message: String) -> Error {
        self.src
            .error(ErrorKind::Semantic, span.start, span.end, message)
    }

    /// Counts `n` more unrolled scalars, failing past [`MAX_UNROLLED`] in all or (counting the
    /// enclosing reductions) in this one place.
    fn unroll(&mut self, n: usize, span: Span) -> Result<()> {
        self.unrolled = self.unrolled.saturating_add(n);
        if self.unrolled > MAX_UNROLLED || self.repeat.saturating_mul(n) > MAX_UNROLLED {
            return Err(self
                .src
                .error(
                    ErrorKind::Limit,
                    span.start,
                    span.end,
                    format!(
                        "the loss unrolls to more than {MAX_UNROLLED} array entries and reduction terms"
                    ),
                )
                .with_help("use smaller arrays or ranges"));
        }
        Ok(())
    }

    /// `id`, unless it is a constant too large to compute with (see [`MAX_CONSTANT_BITS`]).
    fn small(&self, id: Id, span: Span) -> Result<Id> {
        if let Some(r) = self.g.as_num(id) {
            if r.numer().bits() + r.denom().bits() > MAX_CONSTANT_BITS {
                return Err(self.src.error(
                    ErrorKind::Limit,
                    span.start,
                    span.end,
                    format!(
                        "this constant is too large to compute exactly (more than {MAX_CONSTANT_BITS} bits)"
                    ),
                ));
            }
        }
        Ok(id)
    }

    /// The sum of `terms`, checking the size of folded constants as it goes.
    fn sum(&mut self, terms: Vec<Id>, span: Span) -> Result<Id> {
        self.fold(terms, 0, Graph::add, span)
    }

    /// The product of `factors`, checking the size of folded constants as it goes.
    fn product(&mut self, factors: Vec<Id>, span: Span) -> Result<Id> {
        self.fold(factors, 1, Graph::mul, span)
    }

    /// `items` combined left to right with `op` (`empty` for none), each partial result
    /// checked by [`Lowerer::small`].
    fn fold(
        &mut self,
        items: Vec<Id>,
        empty: i64,
        op: fn(&mut Graph, Id, Id) -> Id,
        span: Span,
    ) -> Result<Id> {
        let mut acc: Option<Id> = None;
        for t in items {
            acc = Some(match acc {
                None => t,
                Some(a) => {
                    let r = op(&mut self.g, a, t);
                    self.small(r, span)?
                }
            });
        }
        Ok(acc.unwrap_or_else(|| self.g.int(empty)))
    }

    fn stmt(&mut self, s: &Stmt) -> Result<()> {
        match s {
            Stmt::Param(decls) => decls.iter().try_for_each(|d| self.decl(d, Kind::Param)),
            Stmt::Data(decls) => decls.iter().try_for_each(|d| self.decl(d, Kind::Data)),
            Stmt::Let {
                name,
                indices,
                body,
            } => self.let_stmt(name, indices, body),
            Stmt::Loss { body, span } => {
                if let Some((_, first)) = self.loss {
                    let line = self.src.text[..first.start].matches('\n').count() + 1;
                    return Err(self
                        .err(
                            *span,
                            format!("a second `loss` line (the first is on line {line})"),
                        )
                        .with_help(
                            "a file has exactly one loss; combine the terms into one expression",
                        ));
                }
                // `loss = mean(i, ℓ)`: its terms are the examples SGD splits into batches, and
                // the loss is the same node as lowering the mean the ordinary way.
                let id = match body {
                    Expr::Call(f, args, at) if f.text == "mean" => {
                        let terms = self.reduction_terms(f, args, *at)?;
                        self.examples = Some(terms.clone());
                        self.reduce(f, terms, *at)?
                    }
                    _ => self.expr(body)?,
                };
                self.loss = Some((id, *span));
                self.loss_expr = Some(body.span());
                Ok(())
            }
            Stmt::Decay { body, span } => {
                if let Some((_, first)) = &self.decay {
                    let line = self.src.text[..first.start].matches('\n').count() + 1;
                    return Err(self.err(
                        *span,
                        format!("a second `weight_decay` line (the first is on line {line})"),
                    ));
                }
                let id = self.expr(body)?;
                let value = match self.g.as_num(id) {
                    Some(v) if !v.is_negative() => v.clone(),
                    Some(v) => {
                        return Err(self
                            .err(body.span(), format!("the weight decay is negative ({v})"))
                            .with_help("λ must be 0 or more: GD then trains loss + (λ/2)‖θ‖²"))
                    }
                    None => {
                        return Err(self
                            .err(body.span(), "the weight decay must be a constant".into())
                            .with_help("write a number, e.g. `weight_decay = 0.01`; it may not depend on parameters"))
                    }
                };
                self.decay = Some((value, *span));
                Ok(())
            }
            Stmt::Optimizer { name, span } => {
                self.once("optimizer", self.optimizer.as_ref().map(|(_, s)| *s), *span)?;
                let method = self.method(name)?;
                self.optimizer = Some((method, *span));
                Ok(())
            }
            Stmt::Momentum { body, span } => {
                self.once("momentum", self.momentum.as_ref().map(|(_, s)| *s), *span)?;
                let value = self.parameter_value(body, Parameter::Momentum)?;
                self.momentum = Some((value, *span));
                Ok(())
            }
            Stmt::RhoRatio { body, span } => {
                self.once("rho_ratio", self.rho_ratio.as_ref().map(|(_, s)| *s), *span)?;
                let value = self.parameter_value(body, Parameter::RhoRatio)?;
                self.rho_ratio = Some((value, *span));
                Ok(())
            }
            Stmt::Batches { body, span } => {
                self.once("batches", self.batches.as_ref().map(|(_, s)| *s), *span)?;
                let value = self.batch_count(body)?;
                self.batches = Some((value, *span));
                Ok(())
            }
            Stmt::BatchOrder { name, span } => {
                self.once(
                    "batch_order",
                    self.batch_order.as_ref().map(|(_, s)| *s),
                    *span,
                )?;
                let order = self.order(name)?;
                self.batch_order = Some((order, *span));
                Ok(())
            }
        }
    }

    /// The value of a `batches` line: a constant whole number, 1 or more.
    fn batch_count(&mut self, body: &Expr) -> Result<usize> {
        let id = self.expr(body)?;
        let Some(value) = self.g.as_num(id).cloned() else {
            return Err(self
                .err(
                    body.span(),
                    "the number of batches must be a constant".into(),
                )
                .with_help(
                    "write a whole number, e.g. `batches = 4`; it may not depend on parameters",
                ));
        };
        let whole = value.is_integer() && value >= BigRational::from_integer(1.into());
        match value.to_integer().to_usize() {
            Some(m) if whole => Ok(m),
            _ => Err(self
                .err(
                    body.span(),
                    format!("the number of batches must be a whole number, 1 or more (got {value})"),
                )
                .with_help(
                    "write e.g. `batches = 4`: SGD splits the examples of `loss = mean(i, …)` into that many equal batches",
                )),
        }
    }

    /// The order a `batch_order` line names.
    fn order(&self, name: &Name) -> Result<BatchOrder> {
        if let Some(o) = BatchOrder::from_name(&name.text) {
            return Ok(o);
        }
        let err = self.err(
            name.span,
            format!(
                "unknown batch order `{}` (the orders are cyclic and shuffled)",
                name.text
            ),
        );
        let lower = name.text.to_lowercase();
        Err(match did_you_mean(&lower, ["cyclic", "shuffled"]) {
            Some(o) => err.with_help(format!("did you mean `{o}`?")),
            None => err.with_help("write `batch_order = cyclic` or `batch_order = shuffled`"),
        })
    }

    /// Refuses a second `word` line at `span` when there was one at `first`.
    fn once(&self, word: &str, first: Option<Span>, span: Span) -> Result<()> {
        let Some(first) = first else {
            return Ok(());
        };
        Err(self
            .err(
                span,
                format!(
                    "a second `{word}` line (the first is on line {})",
                    line_of(self.src, first)
                ),
            )
            .with_help(format!("give `{word}` once: remove one of the two lines")))
    }

    /// The method an `optimizer` line names.
    fn method(&self, name: &Name) -> Result<Method> {
        if let Some(m) = Method::from_name(&name.text) {
            return Ok(m);
        }
        let err = self.err(
            name.span,
            format!(
                "unknown optimizer `{}` (the optimizers are {})",
                name.text,
                method_names()
            ),
        );
        Err(match close_method(&name.text) {
            Some(m) => err.with_help(format!("did you mean `{m}`?")),
            None => err.with_help("write one of them, e.g. `optimizer = heavy-ball`"),
        })
    }

    /// The value of a `momentum` or `rho_ratio` line: an exact constant that
    /// [`Parameter::refuse`] accepts.
    fn parameter_value(&mut self, body: &Expr, p: Parameter) -> Result<BigRational> {
        let (what, example, range) = match p {
            Parameter::Momentum => (
                "the momentum",
                "momentum = 0.9",
                "write a β with 0 ≤ β < 1, e.g. `momentum = 0.9`",
            ),
            Parameter::RhoRatio => (
                "the rho ratio (SAM's ρ/η)",
                "rho_ratio = 1",
                "write another r, e.g. `rho_ratio = 1`",
            ),
        };
        let id = self.expr(body)?;
        let Some(value) = self.g.as_num(id).cloned() else {
            return Err(self
                .err(body.span(), format!("{what} must be a constant"))
                .with_help(format!(
                    "write a number, e.g. `{example}`; it may not depend on parameters"
                )));
        };
        if let Some(why) = p.refuse(&value) {
            return Err(self.err(body.span(), why).with_help(range));
        }
        Ok(value)
    }

    /// A `momentum`, `rho_ratio`, `batches` or `batch_order` line must suit the file's
    /// `optimizer` line, if it has one (without it, the method comes from the command line, and
    /// the library checks the pair).
    fn check_settings(&self) -> Result<()> {
        let Some((method, at)) = self.optimizer else {
            return Ok(());
        };
        let takers = |p: Option<Parameter>| -> Vec<&'static str> {
            Method::ALL
                .into_iter()
                .filter(|m| match p {
                    Some(p) => m.parameter() == Some(p),
                    None => *m == Method::Sgd,
                })
                .map(Method::name)
                .collect()
        };
        // Each setting line with the methods it applies to (a parameter's, or SGD's batches).
        let lines = [
            (
                "momentum",
                self.momentum.as_ref().map(|(_, s)| *s),
                Some(Parameter::Momentum),
            ),
            (
                "rho_ratio",
                self.rho_ratio.as_ref().map(|(_, s)| *s),
                Some(Parameter::RhoRatio),
            ),
            ("batches", self.batches.as_ref().map(|(_, s)| *s), None),
            (
                "batch_order",
                self.batch_order.as_ref().map(|(_, s)| *s),
                None,
            ),
        ];
        // The first line (in the file) that does not suit it.
        let misplaced = lines
            .into_iter()
            .filter_map(|(word, span, p)| span.map(|s| (s, word, takers(p))))
            .filter(|(_, _, takers)| !takers.contains(&method.name()))
            .min_by_key(|(span, ..)| span.start);
        let Some((span, word, takers)) = misplaced else {
            return Ok(());
        };
        let choices: Vec<String> = takers
            .iter()
            .map(|m| format!("`optimizer = {m}`"))
            .collect();
        Err(self
            .err(
                span,
                format!(
                    "`{word}` applies to {} only; this file's optimizer is {method} (line {})",
                    and_list(&takers),
                    line_of(self.src, at)
                ),
            )
            .with_help(format!(
                "remove the `{word}` line, or choose {}",
                choices.join(" or ")
            )))
    }

    fn check_new_name(&self, name: &Name) -> Result<()> {
        if let Some(prev) = self.symbols.get(&name.text) {
            let line = self.src.text[..prev.span.start].matches('\n').count() + 1;
            return Err(self.err(
                name.span,
                format!(
                    "`{}` is already declared (as {} on line {line})",
                    name.text,
                    prev.kind.word()
                ),
            ));
        }
        if REDUCTIONS.contains(&name.text.as_str())
            || OTHER_FUNCTIONS.contains(&name.text.as_str())
            || Func::from_name(&name.text).is_some()
        {
            return Err(self.err(
                name.span,
                format!(
                    "`{}` is the name of a function; choose another name",
                    name.text
                ),
            ));
        }
        Ok(())
    }

    fn declare(&mut self, name: &Name, sym: Symbol) {
        self.order.push(name.text.clone());
        self.symbols.insert(name.text.clone(), sym);
    }

    fn declare_param_scalar(&mut self, name: &Name) {
        let id = self.g.var(VarId(self.params.len() as u32));
        self.params.push(name.text.clone());
        self.initial.push(None);
        self.declare(
            name,
            Symbol {
                kind: Kind::Param,
                dims: vec![],
                items: vec![id],
                span: name.span,
            },
        );
    }

    fn decl(&mut self, d: &Decl, kind: Kind) -> Result<()> {
        self.check_new_name(&d.name)?;
        let values = match &d.value {
            Some(v) => Some(self.value(v)?),
            None => None,
        };
        let dims = match (&d.dims, &values) {
            (Some((dims, span)), Some((vdims, vspan, _))) => {
                if dims.len() > 2 {
                    return Err(self.err(*span, "arrays have one or two indices".into()));
                }
                if !vdims.is_empty() && vdims != dims {
                    return Err(self
                        .err(
                            *vspan,
                            format!(
                                "`{}` is declared {} but its value has shape {}",
                                d.name.text,
                                shape(dims),
                                shape(vdims)
                            ),
                        )
                        .with_help("give as many values as the declared size, or one value for all entries"));
                }
                dims.clone()
            }
            (Some((dims, span)), None) => {
                if dims.len() > 2 {
                    return Err(self.err(*span, "arrays have one or two indices".into()));
                }
                dims.clone()
            }
            (None, Some((vdims, vspan, _))) => {
                if vdims.len() > 2 {
                    return Err(self.err(*vspan, "arrays have one or two indices".into()));
                }
                vdims.clone()
            }
            (None, None) => vec![],
        };
        let count: usize = dims.iter().product();
        let where_ = d.dims.as_ref().map_or(d.name.span, |(_, s)| *s);
        self.unroll(count, where_)?;
        let values: Option<Vec<BigRational>> = values.map(|(vdims, _, vals)| {
            if vdims.is_empty() {
                vec![vals[0].clone(); count]
            } else {
                vals
            }
        });
        let items = match kind {
            Kind::Param => {
                let suffixes = index_suffixes(&dims);
                let mut items = Vec::with_capacity(count);
                for (k, suffix) in suffixes.into_iter().enumerate() {
                    items.push(self.g.var(VarId(self.params.len() as u32)));
                    self.params.push(format!("{}{}", d.name.text, suffix));
                    self.initial.push(values.as_ref().map(|v| v[k].clone()));
                }
                items
            }
            _ => {
                let Some(values) = values else {
                    return Err(self
                        .err(d.name.span, format!("data `{}` needs a value", d.name.text))
                        .with_help(format!("write `data {} = ...`", d.name.text)));
                };
                values.into_iter().map(|v| self.g.num(v)).collect()
            }
        };
        self.declare(
            &d.name,
            Symbol {
                kind,
                dims,
                items,
                span: d.name.span,
            },
        );
        Ok(())
    }

    /// A declaration value: its shape, span and entries (row-major).
    fn value(&mut self, v: &Value) -> Result<(Vec<usize>, Span, Vec<BigRational>)> {
        match v {
            Value::Scalar(e) => {
                let id = self.expr(e)?;
                match self.g.as_num(id) {
                    Some(r) => Ok((vec![], e.span(), vec![r.clone()])),
                    None => Err(self.err(
                        e.span(),
                        "a declared value must be a constant (numbers, data and arithmetic)".into(),
                    )),
                }
            }
            Value::Array(items, span) => {
                let mut inner_shape: Option<Vec<usize>> = None;
                let mut all = Vec::new();
                for item in items {
                    let (s, sp, vals) = self.value(item)?;
                    match &inner_shape {
                        None => inner_shape = Some(s),
                        Some(prev) if *prev != s => {
                            return Err(self.err(
                                sp,
                                format!(
                                    "ragged array: this entry has shape {} but the first has {}",
                                    shape(&s),
                                    shape(prev)
                                ),
                            ))
                        }
                        _ => {}
                    }
                    all.extend(vals);
                }
                let mut dims = vec![items.len()];
                dims.extend(inner_shape.unwrap_or_default());
                Ok((dims, *span, all))
            }
        }
    }

    fn let_stmt(&mut self, name: &Name, indices: &[Name], body: &Expr) -> Result<()> {
        self.check_new_name(name)?;
        if indices.len() > 2 {
            return Err(self.err(indices[2].span, "a `let` has at most two indices".into()));
        }
        let mut ranges = Vec::new();
        for (k, ix) in indices.iter().enumerate() {
            if indices[..k].iter().any(|p| p.text == ix.text) {
                return Err(self.err(ix.span, format!("index `{}` appears twice", ix.text)));
            }
            if self.symbols.contains_key(&ix.text) {
                return Err(self.err(
                    ix.span,
                    format!(
                        "index `{}` has the name of a declared {}",
                        ix.text,
                        self.symbols[&ix.text].kind.word()
                    ),
                ));
            }
            let n = self.infer_range(&ix.text, ix.span, body)?;
            ranges.push(n);
        }
        let dims: Vec<usize> = ranges.clone();
        let count: usize = dims.iter().product();
        self.unroll(count, name.span)?;
        let outer = std::mem::replace(&mut self.repeat, count);
        let result = self.let_entries(name, indices, body, &dims);
        self.repeat = outer;
        let items = result?;
        self.declare(
            name,
            Symbol {
                kind: Kind::Let,
                dims,
                items,
                span: name.span,
            },
        );
        Ok(())
    }

    /// The entries of an indexed `let`, row-major.
    fn let_entries(
        &mut self,
        name: &Name,
        indices: &[Name],
        body: &Expr,
        dims: &[usize],
    ) -> Result<Vec<Id>> {
        let suffixes = index_suffixes(dims);
        let mut items = Vec::with_capacity(suffixes.len());
        for (k, suffix) in suffixes.into_iter().enumerate() {
            // Row-major position k → index values.
            let mut rest = k;
            let mut values = vec![0i64; dims.len()];
            for (d, n) in dims.iter().enumerate().rev() {
                values[d] = (rest % n) as i64 + 1;
                rest /= n;
            }
            for (ix, v) in indices.iter().zip(&values) {
                self.bound.push((ix.text.clone(), *v));
            }
            let id = self.expr(body);
            self.bound.truncate(self.bound.len() - indices.len());
            let id = id?;
            self.names.push((format!("{}{}", name.text, suffix), id));
            items.push(id);
        }
        Ok(items)
    }

    /// The range 1..n of index `var` from the arrays that `body` indexes with it directly.
    fn infer_range(&self, var: &str, var_span: Span, body: &Expr) -> Result<usize> {
        let mut uses: Vec<(usize, String, Span)> = Vec::new();
        self.collect_uses(var, body, &mut uses);
        let Some((n, first, _)) = uses.first().cloned() else {
            return Err(self
                .err(
                    var_span,
                    format!("cannot infer the range of index `{var}`: no array is indexed by it"),
                )
                .with_help(format!(
                    "give the range explicitly, e.g. `sum({var} in 1..3, ...)`"
                )));
        };
        if let Some((m, other, span)) = uses.iter().find(|u| u.0 != n) {
            return Err(self.err(
                *span,
                format!("index `{var}` runs over {n} entries of `{first}` but over {m} entries of `{other}`"),
            ).with_help("index arrays of the same length with one index, or give the range with `in 1..n`"));
        }
        Ok(n)
    }

    fn collect_uses(&self, var: &str, e: &Expr, out: &mut Vec<(usize, String, Span)>) {
        match e {
            Expr::Num(..) | Expr::Name(_) => {}
            Expr::Neg(a, _) => self.collect_uses(var, a, out),
            Expr::Binary(_, a, b, _) => {
                self.collect_uses(var, a, out);
                self.collect_uses(var, b, out);
            }
            Expr::Index(n, idx, _) => {
                for (p, ix) in idx.iter().enumerate() {
                    match ix {
                        Expr::Name(v) if v.text == var => {
                            if let Some(sym) = self.symbols.get(&n.text) {
                                if let Some(&d) = sym.dims.get(p) {
                                    out.push((d, n.text.clone(), v.span));
                                }
                            }
                        }
                        other => self.collect_uses(var, other, out),
                    }
                }
            }
            Expr::Call(f, args, _) => {
                let rebinds = REDUCTIONS.contains(&f.text.as_str())
                    && matches!(args.first(),
                        Some(Arg::Expr(Expr::Name(n))) | Some(Arg::Binder(n, ..)) if n.text == var);
                if !rebinds {
                    for a in args {
                        if let Arg::Expr(x) = a {
                            self.collect_uses(var, x, out);
                        }
                    }
                }
            }
        }
    }

    fn expr(&mut self, e: &Expr) -> Result<Id> {
        match e {
            Expr::Num(r, span) => {
                let id = self.g.num(r.clone());
                self.small(id, *span)
            }
            Expr::Name(n) => self.scalar_name(n),
            Expr::Index(n, idx, span) => self.index(n, idx, *span),
            Expr::Neg(a, _) => {
                let a = self.expr(a)?;
                Ok(self.g.neg(a))
            }
            Expr::Binary(op, a, b, span) => {
                let x = self.expr(a)?;
                let y = self.expr(b)?;
                let id = match op {
                    BinOp::Add => self.g.add(x, y),
                    BinOp::Sub => self.g.sub(x, y),
                    BinOp::Mul => self.g.mul(x, y),
                    BinOp::Div => {
                        if self.g.get(y).is_zero() {
                            return Err(self.err(b.span(), "division by zero".into()));
                        }
                        self.g.div(x, y)
                    }
                    BinOp::Pow => {
                        if self.g.get(x).is_zero() && self.g.get(y).is_negative_num() {
                            return Err(self.err(e.span(), "0 raised to a negative power".into()));
                        }
                        self.g.pow(x, y)
                    }
                };
                self.small(id, *span)
            }
            Expr::Call(f, args, span) => self.call(f, args, *span),
        }
    }

    fn scalar_name(&mut self, n: &Name) -> Result<Id> {
        if let Some((_, v)) = self.bound.iter().rev().find(|(b, _)| *b == n.text) {
            return Ok(self.g.int(*v));
        }
        match self.symbols.get(&n.text) {
            Some(sym) if sym.dims.is_empty() => Ok(sym.items[0]),
            Some(sym) => {
                let idx = vec!["i"; sym.dims.len()].join(",");
                Err(self
                    .err(
                        n.span,
                        format!(
                            "`{}` is an array of shape {}, used here as a number",
                            n.text,
                            shape(&sym.dims)
                        ),
                    )
                    .with_help(format!(
                        "index it (`{0}[{idx}]`) or reduce it (`sum(i, {0}[{idx}])`)",
                        n.text
                    )))
            }
            None => Err(self.undeclared(n)),
        }
    }

    fn undeclared(&self, n: &Name) -> Error {
        let mut e = self.err(n.span, format!("`{}` is not declared", n.text));
        let names = self
            .order
            .iter()
            .map(String::as_str)
            .chain(self.bound.iter().map(|(b, _)| b.as_str()));
        e = match did_you_mean(&n.text, names) {
            Some(s) => e.with_help(format!("did you mean `{s}`?")),
            None => e.with_help(format!(
                "declare it before use, e.g. `param {0}` or `data {0} = ...`",
                n.text
            )),
        };
        e
    }

    fn index(&mut self, n: &Name, idx: &[Expr], span: Span) -> Result<Id> {
        let Some(sym) = self.symbols.get(&n.text) else {
            return Err(self.undeclared(n));
        };
        if sym.dims.len() != idx.len() {
            let what = if sym.dims.is_empty() {
                format!("`{}` is a scalar and takes no index", n.text)
            } else {
                format!(
                    "`{}` has shape {} and takes {} index{}, not {}",
                    n.text,
                    shape(&sym.dims),
                    sym.dims.len(),
                    if sym.dims.len() == 1 { "" } else { "es" },
                    idx.len()
                )
            };
            return Err(self.err(span, what));
        }
        let dims = sym.dims.clone();
        let mut flat = 0usize;
        for (ix, &d) in idx.iter().zip(&dims) {
            let v = self.index_value(ix)?;
            if v < 1 || v > d as i64 {
                return Err(self
                    .err(
                        ix.span(),
                        format!(
                            "index {v} is out of range for `{}`, whose indices run 1..{d}",
                            n.text
                        ),
                    )
                    .with_help("indices start at 1"));
            }
            flat = flat * d + (v as usize - 1);
        }
        Ok(self.symbols[&n.text].items[flat])
    }

    /// An index: an integer built from literals and bound index variables with + - *.
    fn index_value(&mut self, e: &Expr) -> Result<i64> {
        let bad = |s: &Self| {
            s.err(
                e.span(),
                "an index must be an integer or an index variable (`i`, `i+1`)".into(),
            )
        };
        match e {
            Expr::Num(r, _) => {
                if r.is_integer() {
                    r.to_integer().to_i64().ok_or_else(|| bad(self))
                } else {
                    Err(bad(self))
                }
            }
            Expr::Name(n) => match self.bound.iter().rev().find(|(b, _)| *b == n.text) {
                Some((_, v)) => Ok(*v),
                None if self.symbols.contains_key(&n.text) => Err(bad(self)),
                None => Err(self.undeclared(n)),
            },
            Expr::Neg(a, _) => self.index_value(a)?.checked_neg().ok_or_else(|| bad(self)),
            Expr::Binary(op @ (BinOp::Add | BinOp::Sub | BinOp::Mul), a, b, _) => {
                let (x, y) = (self.index_value(a)?, self.index_value(b)?);
                match op {
                    BinOp::Add => x.checked_add(y),
                    BinOp::Sub => x.checked_sub(y),
                    _ => x.checked_mul(y),
                }
                .ok_or_else(|| bad(self))
            }
            _ => Err(bad(self)),
        }
    }

    fn call(&mut self, f: &Name, args: &[Arg], span: Span) -> Result<Id> {
        let fname = f.text.as_str();
        if REDUCTIONS.contains(&fname) {
            return self.reduction(f, args, span);
        }
        if let Some(Arg::Binder(_, _, _, s)) = args.iter().find(|a| matches!(a, Arg::Binder(..))) {
            return Err(self.err(
                *s,
                format!("`{fname}` is not a reduction and takes no `i in a..b`"),
            ));
        }
        let exprs: Vec<&Expr> = args
            .iter()
            .map(|a| match a {
                Arg::Expr(e) => e,
                Arg::Binder(..) => unreachable!(),
            })
            .collect();
        let arity = |want: usize, me: &Self| -> Result<()> {
            if exprs.len() == want {
                Ok(())
            } else {
                Err(me.err(
                    span,
                    format!(
                        "`{fname}` takes {want} argument{}, found {}",
                        if want == 1 { "" } else { "s" },
                        exprs.len()
                    ),
                ))
            }
        };
        if let Some(func) = Func::from_name(fname) {
            arity(1, self)?;
            let a = self.expr(exprs[0])?;
            return Ok(self.g.call(func, a));
        }
        match fname {
            "pow" => {
                arity(2, self)?;
                let a = self.expr(exprs[0])?;
                let b = self.expr(exprs[1])?;
                let p = self.g.pow(a, b);
                self.small(p, span)
            }
            "norm" => {
                arity(1, self)?;
                let items = self.whole_array(exprs[0], "norm")?;
                let squares: Vec<Id> = items.iter().map(|&x| self.g.powi(x, 2)).collect();
                let s = self.sum(squares, span)?;
                Ok(self.g.call(Func::Sqrt, s))
            }
            "dot" => {
                arity(2, self)?;
                let a = self.whole_array(exprs[0], "dot")?;
                let b = self.whole_array(exprs[1], "dot")?;
                if a.len() != b.len() {
                    return Err(self.err(
                        span,
                        format!("`dot` needs vectors of one length, found {} and {}", a.len(), b.len()),
                    ));
                }
                let terms: Vec<Id> = a.iter().zip(&b).map(|(&x, &y)| self.g.mul(x, y)).collect();
                self.sum(terms, span)
            }
            _ if NON_SMOOTH.contains(&fname) => Err(self
                .err(f.span, format!("`{fname}` is not smooth, and the counter terms need derivatives of every order"))
                .with_help("use a smooth stand-in, e.g. softplus(x) for relu(x) or sqrt(x^2 + 1e-6) for abs(x)")),
            _ => {
                let known: Vec<&str> = Func::ALL
                    .iter()
                    .map(|f| f.name())
                    .chain(REDUCTIONS)
                    .chain(OTHER_FUNCTIONS)
                    .collect();
                let help = match did_you_mean(fname, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the functions are {}", known.join(", ")),
                };
                Err(self.err(f.span, format!("unknown function `{fname}`")).with_help(help))
            }
        }
    }

    /// The entries of an array named as a whole (`norm(w)`, `dot(a, b)`).
    fn whole_array(&self, e: &Expr, f: &str) -> Result<Vec<Id>> {
        match e {
            Expr::Name(n) => match self.symbols.get(&n.text) {
                Some(sym) if !sym.dims.is_empty() => Ok(sym.items.clone()),
                Some(_) => Err(self.err(
                    n.span,
                    format!("`{f}` needs an array, and `{}` is a scalar", n.text),
                )),
                None => Err(self.undeclared(n)),
            },
            _ => Err(self.err(
                e.span(),
                format!("`{f}` takes the name of an array, e.g. `{f}(w)`"),
            )),
        }
    }

    fn reduction(&mut self, f: &Name, args: &[Arg], span: Span) -> Result<Id> {
        let terms = self.reduction_terms(f, args, span)?;
        self.reduce(f, terms, span)
    }

    /// The terms of a reduction: its body with the index bound to each value in turn.
    fn reduction_terms(&mut self, f: &Name, args: &[Arg], span: Span) -> Result<Vec<Id>> {
        let usage = || format!("write `{0}(i, expr)` or `{0}(i in 1..n, expr)`", f.text);
        if args.len() != 2 {
            return Err(self
                .err(
                    span,
                    format!("`{}` takes an index and an expression", f.text),
                )
                .with_help(usage()));
        }
        let Arg::Expr(body) = &args[1] else {
            return Err(self.err(
                span,
                format!("`{}`'s second argument must be an expression", f.text),
            ));
        };
        let (var, lo, hi) = match &args[0] {
            Arg::Binder(v, lo, hi, s) => {
                if lo > hi {
                    return Err(self.err(*s, format!("the range {lo}..{hi} is empty")));
                }
                (v.clone(), *lo, *hi)
            }
            Arg::Expr(Expr::Name(v)) => {
                if self.symbols.contains_key(&v.text) {
                    return Err(self
                        .err(
                            v.span,
                            format!(
                                "`{}` is declared as {} and cannot be a reduction index",
                                v.text,
                                self.symbols[&v.text].kind.word()
                            ),
                        )
                        .with_help("use a fresh name such as `i` or `k` for the index"));
                }
                (
                    v.clone(),
                    1,
                    self.infer_range(&v.text, v.span, body)? as i64,
                )
            }
            Arg::Expr(other) => {
                return Err(self
                    .err(
                        other.span(),
                        format!("`{}` needs an index name first", f.text),
                    )
                    .with_help(usage()))
            }
        };
        // lo <= hi and both are >= 0, so this cannot overflow (hi - lo + 1 can).
        if hi - lo >= MAX_RANGE {
            return Err(self.err(
                span,
                format!("a reduction runs over at most {MAX_RANGE} values"),
            ));
        }
        let count = (hi - lo + 1) as usize;
        self.unroll(count, span)?;
        let outer = self.repeat;
        self.repeat = outer.saturating_mul(count);
        let mut terms = Vec::with_capacity(count);
        for k in lo..=hi {
            self.bound.push((var.text.clone(), k));
            let t = self.expr(body);
            self.bound.pop();
            match t {
                Ok(t) => terms.push(t),
                Err(e) => {
                    self.repeat = outer;
                    return Err(e);
                }
            }
        }
        self.repeat = outer;
        Ok(terms)
    }

    /// Combines a reduction's terms: their sum, mean, product or log-sum-exp.
    fn reduce(&mut self, f: &Name, terms: Vec<Id>, span: Span) -> Result<Id> {
        let n = terms.len() as i64;
        Ok(match f.text.as_str() {
            "sum" => self.sum(terms, span)?,
            "mean" => {
                let s = self.sum(terms, span)?;
                let n = self.g.int(n);
                let m = self.g.div(s, n);
                self.small(m, span)?
            }
            "prod" => self.product(terms, span)?,
            _ => {
                let exps: Vec<Id> = terms
                    .into_iter()
                    .map(|t| self.g.call(Func::Exp, t))
                    .collect();
                let s = self.sum(exps, span)?;
                self.g.call(Func::Log, s)
            }
        })
    }
}

/// `[3]`, `[2,3]`, or `a scalar`.
fn shape(dims: &[usize]) -> String {
    if dims.is_empty() {
        "scalar".into()
    } else {
        format!(
            "[{}]",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(",")
        )
    }
}

/// The name suffixes of an array's entries in row-major order: `""` for a scalar, `[1]`…, `[1,1]`….
fn index_suffixes(dims: &[usize]) -> Vec<String> {
    match dims {
        [] => vec![String::new()],
        [n] => (1..=*n).map(|i| format!("[{i}]")).collect(),
        [n, m] => (1..=*n)
            .flat_map(|i| (1..=*m).map(move |j| format!("[{i},{j}]")))
            .collect(),
        _ => unreachable!("arrays have at most two indices"),
    }
}
