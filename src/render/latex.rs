//! LaTeX reports: one `aligned` block, ready for a paper.

use std::fmt::Write;

use super::coefficient::{self, Syntax};
use super::{signed_parts, Style};
use crate::series::{GenericSeries, Method, MethodSeries};
use crate::Derivation;

/// Plain words inside `\text{}`: LaTeX's special characters escaped.
fn latex_text(s: &str) -> String {
    s.replace('\\', r"\textbackslash{}")
        .replace('_', r"\_")
        .replace('%', r"\%")
        .replace('#', r"\#")
        .replace('&', r"\&")
}

/// A rational coefficient in LaTeX (`\frac{1}{12}`, `3`).
pub(crate) fn latex_rational(c: &num_rational::BigRational) -> String {
    if c.is_integer() {
        c.to_string()
    } else {
        format!(r"\frac{{{}}}{{{}}}", c.numer(), c.denom())
    }
}

/// Vectors of up to this many components are written as one `pmatrix` per ξ_k ...
const MAX_VECTOR_PARAMS: usize = 4;

/// ... when no entry is longer than this (characters of LaTeX, about a third of a page
/// line); longer ones get an aligned row each.
const MAX_VECTOR_ENTRY: usize = 72;

/// A derivation as LaTeX: the gradient and ξ_k, then the shared subexpressions. With up to
/// [`MAX_VECTOR_PARAMS`] parameters and short entries, the gradient and each ξ_k are one
/// column vector over θ = (θ_1, …)ᵀ; otherwise a row per component.
pub fn latex(d: &Derivation) -> String {
    let m = &d.model;
    let f = &d.printed;
    let p = super::text::printer(d);
    let mut lines = Vec::new();
    let entries = |v: &[crate::expr::Id]| -> Vec<String> {
        v.iter().map(|&c| p.styled(Style::Latex, c)).collect()
    };
    let vectors = m.params.len() <= MAX_VECTOR_PARAMS
        && m.params.len() > 1
        && std::iter::once(&f.gradient)
            .chain(&f.xi)
            .all(|v| entries(v).iter().all(|e| e.len() <= MAX_VECTOR_ENTRY));
    let names: Vec<String> = m.params.iter().map(|n| p.name(Style::Latex, n)).collect();
    let head_bindings = |lines: &mut Vec<String>| {
        let bindings = super::text::section_bindings(d, &p, Style::Latex, 0);
        if !bindings.is_empty() {
            lines.push(r"&\text{where}".into());
            for (n, b) in bindings {
                lines.push(format!("{n} &= {b}"));
            }
        }
    };
    if vectors {
        let column =
            |e: Vec<String>| format!(r"\begin{{pmatrix}} {} \end{{pmatrix}}", e.join(r" \\ "));
        lines.push(format!(
            r"\theta &= \left({}\right)^{{\top}}",
            names.join(", ")
        ));
        lines.push(format!(r"\nabla f &= {}", column(entries(&f.gradient))));
        head_bindings(&mut lines);
        for (k, xi) in f.xi.iter().enumerate() {
            lines.push(format!(r"\xi_{{{}}} &= {}", k + 1, column(entries(xi))));
        }
    } else {
        for (name, g) in names.iter().zip(&f.gradient) {
            lines.push(format!(
                r"\partial_{{{name}}} f &= {}",
                p.styled(Style::Latex, *g)
            ));
        }
        head_bindings(&mut lines);
        for (k, xi) in f.xi.iter().enumerate() {
            for (name, c) in names.iter().zip(xi) {
                lines.push(format!(
                    r"\xi_{{{},{name}}} &= {}",
                    k + 1,
                    p.styled(Style::Latex, *c)
                ));
            }
        }
    }
    let bindings = super::text::section_bindings(d, &p, Style::Latex, 1);
    if !bindings.is_empty() {
        lines.push(r"&\text{where}".into());
        for (n, b) in bindings {
            lines.push(format!("{n} &= {b}"));
        }
    }
    if let Some(why) = &f.fallback {
        lines.push(format!(r"&\text{{({})}}", latex_text(why)));
    }
    if let Some(a) = &d.analysis {
        let formula = super::analysis::formula(d);
        lines.extend(super::analysis::latex_rows(a, d.xi.len(), formula.as_ref()));
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
