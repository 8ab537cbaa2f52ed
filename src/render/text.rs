//! Plain-text reports.

use std::fmt::Write;

use super::{component_label, signed_terms, trees, Printer};
use crate::series::GenericSeries;
use crate::Derivation;

/// The roots every format prints, in order: the loss, the gradient, then ξ_1..ξ_K.
pub(crate) fn roots(d: &Derivation) -> Vec<crate::expr::Id> {
    let mut roots = vec![d.model.loss];
    roots.extend(&d.gradient);
    roots.extend(d.xi.iter().flatten());
    roots
}

/// A derivation as plain text: the loss, its gradient and the counter terms in the loss
/// language's own syntax, shared subexpressions after `where`, and values at the point.
pub fn text(d: &Derivation) -> String {
    let m = &d.model;
    let p = Printer::new(&m.graph, &m.params, &m.names, &roots(d));
    let mut s = String::new();
    let _ = writeln!(s, "parameters: {}", m.params.join(", "));
    let _ = writeln!(s, "loss = {}", p.expr(m.loss));
    let _ = writeln!(s, "gradient:");
    for (name, g) in m.params.iter().zip(&d.gradient) {
        let _ = writeln!(s, "  ∂f/∂{name} = {}", p.expr(*g));
    }
    if !d.xi.is_empty() {
        let _ = writeln!(
            s,
            "counter terms (dθ/dt = -∇f - η ξ_1 - η^2 ξ_2 - ...), order {}:",
            d.xi.len()
        );
        for (k, xi) in d.xi.iter().enumerate() {
            for (name, c) in m.params.iter().zip(xi) {
                let _ = writeln!(s, "  {} = {}", component_label(k + 1, name), p.expr(*c));
            }
        }
    }
    let bindings = p.bindings();
    if !bindings.is_empty() {
        let _ = writeln!(s, "where");
        for (n, b) in bindings {
            let _ = writeln!(s, "  {n} = {b}");
        }
    }
    if let Some(o) = &d.simplification {
        let _ = writeln!(
            s,
            "simplified with egg: {} -> {} operations (saturation stopped: {})",
            o.ops_before, o.ops_after, o.stopped_by
        );
    }
    if let Some(c) = &d.check {
        check_table(&mut s, c);
    }
    if let Some(ev) = &d.evaluation {
        let at: Vec<String> = m
            .params
            .iter()
            .zip(&ev.point)
            .map(|(n, v)| format!("{n} = {v}"))
            .collect();
        let list = |v: &[f64]| v.iter().map(f64::to_string).collect::<Vec<_>>().join(", ");
        let _ = writeln!(s, "at {}:", at.join(", "));
        let _ = writeln!(s, "  loss = {}", ev.loss);
        let _ = writeln!(s, "  gradient = [{}]", list(&ev.gradient));
        for (k, xi) in ev.xi.iter().enumerate() {
            let _ = writeln!(s, "  ξ_{} = [{}]", k + 1, list(xi));
        }
    }
    s
}

/// The loss-independent counter terms as sums of elementary differentials, one line per ξ_k.
///
/// ```
/// let s = eomderive::generic(2).unwrap();
/// assert_eq!(
///     eomderive::render::generic_text(&s),
///     "ξ_1 = 1/2 H g\nξ_2 = 1/12 ∇³f(g, g) + 1/3 H H g\n"
/// );
/// ```
pub fn generic_text(series: &GenericSeries) -> String {
    let mut s = String::new();
    for (k, terms) in series.xi.iter().enumerate() {
        let terms: Vec<_> = terms
            .iter()
            .map(|(t, c)| (c.clone(), trees::text(&series.forest, *t)))
            .collect();
        let _ = writeln!(
            s,
            "ξ_{} = {}",
            k + 1,
            signed_terms(&terms, |c| c.to_string())
        );
    }
    s
}

/// The check as a table: one row per order K, one column per learning rate, then the slope.
fn check_table(s: &mut String, c: &crate::numeric::Check) {
    let _ = writeln!(
        s,
        "check against gradient descent: ‖θ_EoM(T) - θ_GD‖ at T = {} ({} steps of η = {})",
        c.horizon, c.steps, c.lr
    );
    let lrs: Vec<f64> = c
        .rows
        .iter()
        .filter(|r| r.order == 0)
        .map(|r| r.lr)
        .collect();
    let mut header = format!("  {:<4}", "K");
    for lr in &lrs {
        header.push_str(&format!(" {:>12}", format!("η={lr}")));
    }
    let _ = writeln!(s, "{header}  slope (expected K+1)");
    let mut notes = Vec::new();
    for (k, slope) in c.slopes.iter().enumerate() {
        let mut line = format!("  {k:<4}");
        for r in c.rows.iter().filter(|r| r.order == k) {
            let cell = match (r.error, &r.failure) {
                (Some(e), _) if r.at_floor => format!("{e:.2e}*"),
                (Some(e), _) => format!("{e:.2e}"),
                (None, Some(f)) => {
                    notes.push(format!("K = {k}, η = {}: {f}", r.lr));
                    "failed".into()
                }
                (None, None) => "-".into(),
            };
            line.push_str(&format!(" {cell:>12}"));
        }
        let slope = slope.map_or("-".into(), |v| format!("{v:.2}"));
        let _ = writeln!(s, "{line}  {slope}");
    }
    if c.rows.iter().any(|r| r.at_floor) {
        let _ = writeln!(s, "  * at the rounding floor: left out of the slope");
    }
    for n in notes {
        let _ = writeln!(s, "  {n}");
    }
}
