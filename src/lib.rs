//! eomderive derives the counter terms ξ_1, ξ_2, … of gradient descent's equation of motion,
//! dθ/dt = −∇f − η ξ_1 − η² ξ_2 − …, exactly, for a loss written in a small language.
//!
//! The pipeline runs one way: text ([`lang`]) → model → derivatives ([`expr`]) → counter terms
//! ([`series`]) → renderers ([`render`]) and the numeric layer ([`numeric`]).
//!
//! ```
//! use eomderive::{analyze, lang::Source, Options};
//! let report = analyze(&Source::inline("(u*v - 1)^2/2"), &Options::default()).unwrap();
//! let text = eomderive::render::text(&report);
//! assert!(text.contains("∂f/∂u = t1*v"));
//! assert!(text.contains("t1 = u*v - 1"));
//! ```

pub mod error;
pub mod expr;
pub mod lang;
pub mod numeric;
pub mod render;
pub mod series;

pub use error::{Error, ErrorKind, Result};

use expr::{Diff, Id};
use lang::{Model, Source};

/// What to compute besides the derivation itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--at`: parameter values (`u=0.3,w[2]=-1`) overriding the file's initial values.
    pub at: Option<String>,
}

/// Everything derived for one loss, ready for the renderers.
#[derive(Debug, Clone)]
pub struct Report {
    /// The lowered loss; its graph also holds every derived expression below.
    pub model: Model,
    /// ∂f/∂θ_i for each parameter.
    pub gradient: Vec<Id>,
    /// Values at the requested point, or at the file's initial point when it is complete.
    pub evaluation: Option<numeric::Evaluation>,
}

/// Parses the loss, differentiates it and evaluates it where a point is known.
///
/// A loss given inline that does not parse is reported as such; see [`Source`].
pub fn analyze(source: &Source, options: &Options) -> Result<Report> {
    let mut model = lang::parse(source).map_err(|e| match e.kind {
        ErrorKind::Parse if source.is_inline() => Error {
            message: format!(
                "`{}` names no file, and is not a valid loss either: {}",
                source.text, e.message
            ),
            ..e
        },
        _ => e,
    })?;
    let mut diff = Diff::new(model.params.len());
    let gradient = diff.gradient(&mut model.graph, model.loss);
    let point = match (&options.at, model.initial_point()) {
        (None, None) => None,
        (at, _) => Some(lang::parse_point(&model, at.as_deref())?),
    };
    let evaluation = match point {
        None => None,
        Some(p) => Some(
            numeric::evaluate(&model.graph, model.loss, &gradient, &p)
                .map_err(|e| domain_error(&model, &gradient, e))?,
        ),
    };
    Ok(Report {
        model,
        gradient,
        evaluation,
    })
}

/// A domain error at a point, naming the subexpression that is undefined.
fn domain_error(model: &Model, gradient: &[Id], e: numeric::DomainError) -> Error {
    let in_loss = model.graph.cone(&[model.loss]).contains(&e.node);
    let p = render::Printer::new(&model.graph, &model.params, &[], &[e.node]);
    let mut sub = p.expr(e.node);
    if sub.chars().count() > 80 {
        sub = sub.chars().take(77).collect::<String>() + "...";
    }
    let whose = if in_loss || gradient.is_empty() {
        "the loss"
    } else {
        "the gradient of the loss"
    };
    Error::new(
        ErrorKind::Domain,
        format!("{whose} is undefined at this point: {} in `{sub}`", e.what),
    )
    .with_help("choose another point with --at, or change the initial values in the loss file")
}
