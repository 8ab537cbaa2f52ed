//! Plain-text reports.

use std::fmt::Write;

use super::{component_label, signed_terms, significant, trees, Printer};
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
    if let Some(l) = &m.weight_decay {
        let _ = writeln!(
            s,
            "  (with weight decay λ = {l}: the loss includes λ/2 ‖θ‖²)"
        );
    }
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
    if let Some(a) = &d.analysis {
        super::analysis::text(&mut s, a, &m.params, d.xi.len(), m.weight_decay.as_ref());
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
    local_table(s, c);
    for t in &c.tracked {
        tracked_table(s, c, t);
    }
}

/// The local error of one step, predicted by ξ_{K+1} against measured: one row per order K
/// and learning rate.
fn local_table(s: &mut String, c: &crate::numeric::Check) {
    let top = c.slopes.len().saturating_sub(1);
    let missing = format!(
        "(order {top} needs ξ_{}: derive with --order {} to predict it)",
        top + 1,
        top + 1
    );
    if c.local.is_empty() {
        let _ = writeln!(s, "{missing}");
        return;
    }
    let _ = writeln!(
        s,
        "local error of one step, predicted η^{{K+2}}‖ξ_{{K+1}}‖ against measured, along GD \
         (means over t = 0, η_0, …, {}η_0; η_0 = {}):",
        c.steps.saturating_sub(1),
        c.lr
    );
    let _ = writeln!(
        s,
        "  {:<4} {:>10} {:>11} {:>11} {:>12}",
        "K", "η", "predicted", "measured", "discrepancy"
    );
    let mut notes = Vec::new();
    for r in &c.local {
        let sci = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2e}"));
        let (predicted, measured, mut discrepancy) = if r.failure.is_some() {
            ("-".to_string(), "failed".to_string(), "-".to_string())
        } else {
            (sci(r.predicted), sci(r.measured), sci(r.discrepancy))
        };
        if r.at_floor {
            discrepancy.push('*');
        }
        if let Some(f) = &r.failure {
            notes.push(format!("K = {}, η = {}: {f}", r.order, r.lr));
        }
        let _ = writeln!(
            s,
            "  {:<4} {:>10} {predicted:>11} {measured:>11} {discrepancy:>12}",
            r.order,
            r.lr.to_string()
        );
    }
    let _ = writeln!(
        s,
        "  discrepancy: the largest ‖measured − predicted‖ / ‖measured‖ along GD, expected O(η)"
    );
    if c.local.iter().any(|r| r.at_floor) {
        let _ = writeln!(
            s,
            "  * at the rounding floor somewhere along GD: that discrepancy measures rounding"
        );
    }
    for n in notes {
        let _ = writeln!(s, "  {n}");
    }
    if !c.local.iter().any(|r| r.order == top) {
        let _ = writeln!(s, "  {missing}");
    }
}

/// A tracked quantity at about five steps of the run (0, N/4, N/2, 3N/4, N), along GD and
/// each order of the EoM, then the largest deviation from GD per order.
fn tracked_table(s: &mut String, c: &crate::numeric::Check, t: &crate::numeric::Tracked) {
    let kind = match t.kind {
        crate::numeric::ObservableKind::SquaredNorm => "squared norm",
        crate::numeric::ObservableKind::Sum => "sum",
    };
    let _ = writeln!(
        s,
        "{} ({kind} of {} parameters) along the run at η = {}, by GD step:",
        t.label,
        t.indices.len(),
        c.lr
    );
    let n = t.gd.len().saturating_sub(1);
    let mut steps: Vec<usize> = (0..=4).map(|q| q * n / 4).collect();
    steps.dedup();
    let name = |k: usize| {
        if k == 0 {
            "GF (K=0)".to_string()
        } else {
            format!("K={k}")
        }
    };
    let mut header = format!("  {:<9}", "step");
    for &i in &steps {
        header.push_str(&format!(" {i:>14}"));
    }
    let _ = writeln!(s, "{header}");
    let mut line = |label: String, values: &[Option<f64>]| {
        let mut l = format!("  {label:<9}");
        for &i in &steps {
            let cell = values
                .get(i)
                .copied()
                .flatten()
                .map_or("-".to_string(), |v| significant(v, 8));
            l.push_str(&format!(" {cell:>14}"));
        }
        let _ = writeln!(s, "{l}");
    };
    line("GD".into(), &t.gd);
    for (k, values) in t.eom.iter().enumerate() {
        line(name(k), values);
    }
    let deviations: Vec<String> = t
        .max_deviation
        .iter()
        .enumerate()
        .map(|(k, d)| {
            let d = d.map_or("-".to_string(), |d| format!("{d:.2e}"));
            format!("{} {d}", name(k).replace(" (K=0)", ""))
        })
        .collect();
    let _ = writeln!(
        s,
        "  largest |EoM − GD| along the run: {}",
        deviations.join(", ")
    );
}
