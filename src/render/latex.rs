//! LaTeX reports: one `aligned` block, ready for a paper.

use std::fmt::Write;

use super::coefficient::{self, Syntax};
use super::text::roots;
use super::{signed_parts, Printer, Style};
use crate::series::{GenericSeries, Method, MethodSeries};
use crate::Derivation;

/// A rational coefficient in LaTeX (`\frac{1}{12}`, `3`).
pub(crate) fn latex_rational(c: &num_rational::BigRational) -> String {
    if c.is_integer() {
        c.to_string()
    } else {
        format!(r"\frac{{{}}}{{{}}}", c.numer(), c.denom())
    }
}

/// A derivation as LaTeX: the gradient and ξ_k components, then the shared subexpressions.
pub fn latex(d: &Derivation) -> String {
    let m = &d.model;
    let p = Printer::new(&m.graph, &m.params, &m.names, &roots(d));
    let mut lines = Vec::new();
    for (name, g) in m.params.iter().zip(&d.gradient) {
        lines.push(format!(
            r"\partial_{{{}}} f &= {}",
            p.name(Style::Latex, name),
            p.styled(Style::Latex, *g)
        ));
    }
    for (k, xi) in d.xi.iter().enumerate() {
        for (name, c) in m.params.iter().zip(xi) {
            lines.push(format!(
                r"\xi_{{{},{}}} &= {}",
                k + 1,
                p.name(Style::Latex, name),
                p.styled(Style::Latex, *c)
            ));
        }
    }
    let bindings = p.styled_bindings(Style::Latex);
    if !bindings.is_empty() {
        lines.push(r"&\text{where}".into());
        for (n, b) in bindings {
            lines.push(format!("{n} &= {b}"));
        }
    }
    if let Some(a) = &d.analysis {
        lines.extend(super::analysis::latex_rows(a, d.xi.len()));
    }
    let mut s = String::new();
    let optimizer = if d.optimizer.is_gd() {
        String::new()
    } else {
        format!(
            "; optimizer: {}",
            coefficient::describe(&d.optimizer, Syntax::Text)
        )
    };
    let _ = writeln!(
        s,
        "% dθ/dt = {} ; parameters: {}{optimizer}",
        super::eom_rhs(&d.leading),
        m.params.join(", ")
    );
    let _ = writeln!(s, r"\begin{{aligned}}");
    let _ = writeln!(s, "{}", lines.join(" \\\\\n"));
    let _ = writeln!(s, r"\end{{aligned}}");
    s
}

/// The loss-independent counter terms in LaTeX, one `aligned` row per ξ_k.
///
/// ```
/// let s = eomderive::generic(1).unwrap();
/// assert!(eomderive::render::generic_latex(&s).contains(r"\xi_{1} &= \frac{1}{2} \nabla^{2} f\,\nabla f"));
/// ```
pub fn generic_latex(series: &GenericSeries) -> String {
    method_latex(&MethodSeries::from_numbers(
        Method::Gd,
        None,
        series.clone(),
    ))
}

/// The loss-independent counter terms of any optimizer in LaTeX: for a method other than GD
/// a first row with the leading term F_0, then one row per ξ_k, coefficients in the
/// parameter (`\frac{1 + \beta}{2(1 - \beta)^{3}}`).
///
/// ```
/// use eomderive::series::{Method, Optimizer};
/// let s = eomderive::generic_optimizer(&Optimizer::new(Method::HeavyBall, None), 1).unwrap();
/// let tex = eomderive::render::method_latex(&s);
/// assert!(tex.contains(r"F_{0} &= -\frac{1}{1 - \beta} \nabla f"), "{tex}");
/// assert!(tex.contains(r"\xi_{1} &= \frac{1 + \beta}{2(1 - \beta)^{3}} \nabla^{2} f\,\nabla f"), "{tex}");
/// ```
pub fn method_latex(series: &MethodSeries) -> String {
    let m = series.method;
    let mut rows: Vec<String> = Vec::new();
    if m != Method::Gd {
        let (_, c) = coefficient::split(&series.leading, m, Syntax::Latex);
        rows.push(format!(
            r"F_{{0}} &= {}",
            signed_parts(&[(true, c, r"\nabla f".into())])
        ));
    }
    rows.extend(series.xi.iter().enumerate().map(|(k, terms)| {
        format!(
            r"\xi_{{{}}} &= {}",
            k + 1,
            coefficient::tree_sum(series, terms, Syntax::Latex)
        )
    }));
    format!(
        "\\begin{{aligned}}\n{}\n\\end{{aligned}}\n",
        rows.join(" \\\\\n")
    )
}
