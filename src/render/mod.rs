//! Output formats: the only place that knows how results look as text, LaTeX and JSON.
//!
//! [`Printer`] names shared subexpressions once and prints expressions in either syntax;
//! [`trees`] prints elementary differentials; the `text`, `latex` and `json` functions lay out
//! a whole [`Derivation`](crate::Derivation) or [`GenericSeries`](crate::series::GenericSeries);
//! [`emit`] writes a derivation as Python, JAX or Rust source (`--emit`).
//! [`generic_jax`] emits the generic form as a JAX module.

mod analysis;
mod batches;
mod coefficient;
mod emit;
mod generic_jax;
mod json;
mod latex;
mod plot;
mod printer;
mod text;
pub mod trees;

pub use batches::{coloured_latex, coloured_text, sgd_json, sgd_latex, sgd_text};
pub use emit::{emit, Target, MAX_INLINE};
pub use generic_jax::generic_jax;
pub use json::{generic_json, json, method_json};
pub use latex::{generic_latex, latex, method_latex};
pub use plot::plot_svg;
pub use printer::{Printer, Style};
pub use text::{generic_text, method_text, text};

use num_rational::BigRational;
use num_traits::{One, Signed};

/// `c X` for a term of a sum: the coefficient in front of a product, `1` omitted, with the sign
/// separated so that terms can be joined with ` + ` / ` - `.
pub(crate) fn signed_terms(
    terms: &[(BigRational, String)],
    coef: impl Fn(&BigRational) -> String,
) -> String {
    let parts: Vec<(bool, Option<String>, String)> = terms
        .iter()
        .map(|(c, x)| {
            let a = c.abs();
            (c.is_negative(), (!a.is_one()).then(|| coef(&a)), x.clone())
        })
        .collect();
    signed_parts(&parts)
}

/// [`signed_terms`] for terms already split into (negative, magnitude unless 1, what it
/// multiplies).
pub(crate) fn signed_parts(terms: &[(bool, Option<String>, String)]) -> String {
    let mut out = String::new();
    for (k, (negative, magnitude, x)) in terms.iter().enumerate() {
        match (k, negative) {
            (0, true) => out.push('-'),
            (0, false) => {}
            (_, true) => out.push_str(" - "),
            (_, false) => out.push_str(" + "),
        }
        if let Some(m) = magnitude {
            out.push_str(m);
            out.push(' ');
        }
        out.push_str(x);
    }
    if out.is_empty() {
        out.push('0');
    }
    out
}

/// A value to `digits` significant digits, fixed-point where that stays short (magnitudes
/// 1e-4 to 1e6), else in exponent form: `1.2600000`, `0.00045014141`, `3.6200000e-7`.
pub(crate) fn significant(v: f64, digits: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor();
    if (-4.0..6.0).contains(&magnitude) {
        let decimals = (digits as f64 - 1.0 - magnitude).max(0.0) as usize;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.*e}", digits - 1)
    }
}

/// The display name of ξ_k's component for a parameter, in text.
pub(crate) fn component_label(k: usize, param: &str) -> String {
    format!("ξ_{k}[{param}]")
}

/// How a run's optimizer is called in tables and plots: `GD`, or its name (`heavy-ball`).
pub(crate) fn run_label(optimizer: &str) -> String {
    match optimizer {
        "gd" => "GD".into(),
        name => name.into(),
    }
}

/// The equation of motion's right-hand side as a header writes it:
/// `-∇f - η ξ_1 - η^2 ξ_2 - ...`, with the leading coefficient of a momentum method
/// (`-10 ∇f - …`).
pub(crate) fn eom_rhs(leading: &BigRational) -> String {
    let c = if leading.is_one() {
        String::new()
    } else {
        format!("{leading} ")
    };
    format!("-{c}∇f - η ξ_1 - η^2 ξ_2 - ...")
}
