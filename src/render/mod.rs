//! Output formats: the only place that knows how results look as text, LaTeX and JSON.
//!
//! [`Printer`] names shared subexpressions once and prints expressions in either syntax;
//! [`trees`] prints elementary differentials; the `text`, `latex` and `json` functions lay out
//! a whole [`Derivation`](crate::Derivation) or [`GenericSeries`](crate::series::GenericSeries).

mod analysis;
mod json;
mod latex;
mod plot;
mod printer;
mod text;
pub mod trees;

pub use json::{generic_json, json};
pub use latex::{generic_latex, latex};
pub use plot::plot_svg;
pub use printer::{Printer, Style};
pub use text::{generic_text, text};

use num_rational::BigRational;
use num_traits::{One, Signed};

/// `c X` for a term of a sum: the coefficient in front of a product, `1` omitted, with the sign
/// separated so that terms can be joined with ` + ` / ` - `.
pub(crate) fn signed_terms(
    terms: &[(BigRational, String)],
    coef: impl Fn(&BigRational) -> String,
) -> String {
    let mut out = String::new();
    for (k, (c, x)) in terms.iter().enumerate() {
        let negative = c.is_negative();
        match (k, negative) {
            (0, true) => out.push('-'),
            (0, false) => {}
            (_, true) => out.push_str(" - "),
            (_, false) => out.push_str(" + "),
        }
        let a = c.abs();
        if !a.is_one() {
            out.push_str(&coef(&a));
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
