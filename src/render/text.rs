//! Plain-text reports.

use std::fmt::Write;

use super::coefficient::{self, Syntax};
use super::{component_label, eom_rhs, run_label, signed_parts, significant, Printer};
use crate::series::{GenericSeries, Method, MethodSeries};
use crate::{Derivation, Form};

/// The roots every format prints, in order: the loss, the gradient, then ξ_1..ξ_K, in the
/// printed form ([`Derivation::printed`]).
pub(crate) fn roots(d: &Derivation) -> Vec<crate::expr::Id> {
    let f = &d.printed;
    let mut roots = vec![f.loss];
    roots.extend(&f.gradient);
    roots.extend(f.xi.iter().flatten());
    roots
}

/// The printer for the printed form: a reader's names for the readable and expanded forms,
/// every shared subexpression for the program.
pub(crate) fn printer(d: &Derivation) -> Printer<'_> {
    let m = &d.model;
    let f = &d.printed;
    match f.form {
        Form::Program => Printer::new(&m.graph, &m.params, &f.lets, &roots(d)),
        _ => {
            let mut head = vec![f.loss];
            head.extend(&f.gradient);
            let xi: Vec<crate::expr::Id> = f.xi.iter().flatten().copied().collect();
            Printer::reader_sections(&m.graph, &m.params, &f.lets, &[&head, &xi])
        }
    }
}

/// The bindings to print after the gradient (section 0) and after the counter terms
/// (section 1): the program form lists all of them at the end.
pub(crate) fn section_bindings(
    d: &Derivation,
    p: &Printer,
    style: super::Style,
    section: usize,
) -> Vec<(String, String)> {
    match (d.printed.form, section) {
        (Form::Program, 0) => Vec::new(),
        (Form::Program, _) => p.styled_bindings(style),
        (_, i) => p.section_bindings(style, i),
    }
}

/// `where` and one line per binding.
fn where_block(s: &mut String, bindings: Vec<(String, String)>) {
    if !bindings.is_empty() {
        let _ = writeln!(s, "where");
        for (n, b) in bindings {
            let _ = writeln!(s, "  {n} = {b}");
        }
    }
}

/// The program form's printer, whatever the printed form (JSON always carries it).
pub(crate) fn program_printer(d: &Derivation) -> (Printer<'_>, Vec<crate::expr::Id>) {
    let m = &d.model;
    let mut roots = vec![m.loss];
    roots.extend(&d.gradient);
    roots.extend(d.xi.iter().flatten());
    (Printer::new(&m.graph, &m.params, &m.names, &roots), roots)
}

/// A derivation as plain text: the loss, its gradient and the counter terms in the loss
/// language's own syntax, shared subexpressions after `where`, and values at the point.
pub fn text(d: &Derivation) -> String {
    let m = &d.model;
    let f = &d.printed;
    let p = printer(d);
    let mut s = String::new();
    let _ = writeln!(s, "parameters: {}", m.params.join(", "));
    if !d.optimizer.is_gd() {
        let _ = writeln!(
            s,
            "optimizer: {}",
            coefficient::describe(&d.optimizer, Syntax::Text)
        );
    }
    let _ = writeln!(s, "loss = {}", p.expr(f.loss));
    if let Some(l) = &m.weight_decay {
        let _ = writeln!(
            s,
            "  (with weight decay λ = {l}: the loss includes λ/2 ‖θ‖²)"
        );
    }
    let _ = writeln!(s, "gradient:");
    for (name, g) in m.params.iter().zip(&f.gradient) {
        let _ = writeln!(s, "  ∂f/∂{name} = {}", p.expr(*g));
    }
    where_block(&mut s, section_bindings(d, &p, super::Style::Text, 0));
    if !f.xi.is_empty() {
        let _ = writeln!(
            s,
            "counter terms (dθ/dt = {}), order {}:",
            eom_rhs(&d.leading),
            f.xi.len()
        );
        for (k, xi) in f.xi.iter().enumerate() {
            for (name, c) in m.params.iter().zip(xi) {
                let _ = writeln!(s, "  {} = {}", component_label(k + 1, name), p.expr(*c));
            }
        }
    }
    where_block(&mut s, section_bindings(d, &p, super::Style::Text, 1));
    if let Some(why) = &f.fallback {
        let _ = writeln!(s, "note: {why}");
    }
    if let Some(o) = &d.simplification {
        let _ = writeln!(
            s,
            "simplified with egg: {} -> {} operations (saturation stopped: {})",
            o.ops_before, o.ops_after, o.stopped_by
        );
    }
    if let Some(a) = &d.analysis {
        let formula = super::analysis::formula(d);
        super::analysis::text(
            &mut s,
            a,
            &m.params,
            d.xi.len(),
            m.weight_decay.as_ref(),
            formula.as_ref(),
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
    if let Some(r) = &d.radius {
        let _ = writeln!(
            s,
            "  the series in η converges for η λ_max < {} = {} ({}); λ_max = {} here (the largest |eigenvalue| of H), so for η < {}",
            coefficient::radius_formula(d.optimizer.method),
            significant(r.radius, 3),
            d.optimizer.method,
            significant(r.lambda_max, 3),
            significant(r.max_lr, 3)
        );
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
    method_text(&MethodSeries::from_numbers(
        Method::Gd,
        None,
        series.clone(),
    ))
}

/// The loss-independent counter terms of any optimizer, one line per ξ_k, after a line that
/// names the optimizer and gives the leading term (for GD, just [`generic_text`]'s lines); for
/// a momentum method, then the same terms in the time of the effective learning rate.
///
/// ```
/// use eomderive::series::{Method, Optimizer};
/// let s = eomderive::generic_optimizer(&Optimizer::new(Method::HeavyBall, None), 1).unwrap();
/// let text = eomderive::render::method_text(&s);
/// assert!(text.starts_with(
///     "optimizer: heavy-ball (momentum β), dθ/dt = -1/(1 - β) g - η ξ_1 - η^2 ξ_2 - ...\n\
///      ξ_1 = (1 + β)/(2(1 - β)³) H g\n"
/// ));
/// assert!(text.ends_with("  ξ̃_1 = (1 + β)/(2(1 - β)) H g\n"));
/// ```
pub fn method_text(series: &MethodSeries) -> String {
    let m = series.method;
    let mut s = String::new();
    if m != Method::Gd {
        let (_, c) = coefficient::split(&series.leading, m, Syntax::Text);
        let optimizer = coefficient::describe(&coefficient::optimizer_of(series), Syntax::Text);
        let _ = writeln!(
            s,
            "optimizer: {optimizer}, dθ/dt = {} - η ξ_1 - η^2 ξ_2 - ...",
            signed_parts(&[(true, c, "g".into())])
        );
    }
    // One line per ξ_k: `label(k) = Σ c τ`.
    let write = |s: &mut String, series: &MethodSeries, label: &dyn Fn(usize) -> String| {
        for (k, terms) in series.xi.iter().enumerate() {
            let sum = coefficient::tree_sum(series, terms, Syntax::Text);
            let _ = writeln!(s, "{} = {sum}", label(k + 1));
        }
    };
    write(&mut s, series, &|k| format!("ξ_{k}"));
    if let Some(e) = series.in_effective_time() {
        let _ = writeln!(
            s,
            "in the time of the effective learning rate η_eff = η/(1 - β) (τ = n η_eff): \
             dθ/dτ = -g - η_eff ξ̃_1 - η_eff^2 ξ̃_2 - ..."
        );
        write(&mut s, &e, &|k| format!("  ξ̃_{k}"));
    }
    s
}

/// The check as a table: one row per order K, one column per learning rate, then the slope.
fn check_table(s: &mut String, c: &crate::numeric::Check) {
    let run = run_label(c.optimizer);
    if c.optimizer == "gd" {
        let _ = writeln!(
            s,
            "check against gradient descent: ‖θ_EoM(T) - θ_GD‖ at T = {} ({} steps of η = {})",
            c.horizon, c.steps, c.lr
        );
    } else {
        let with = match (c.parameter, c.batches) {
            (_, Some((m, order))) => format!(" ({m} batches, {order} order)"),
            (Some(v), _) if c.optimizer == "sam" => format!(" (r = {v})"),
            (Some(v), _) => format!(" (β = {v})"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            s,
            "check against {run}{with} iterates: ‖θ_EoM(T) - θ_{run}‖ at T = {} ({} steps of η = {})",
            c.horizon, c.steps, c.lr
        );
        if let Some((m, order)) = c.batches {
            let what = match order {
                crate::series::BatchOrder::Cyclic => "the epochs of batches 1..m in order".to_string(),
                crate::series::BatchOrder::Shuffled => format!(
                    "the epoch map averaged over all {m}! orders (the expected iterate of random reshuffling), applied epoch after epoch"
                ),
            };
            let _ = writeln!(
                s,
                "  θ_{run} after each epoch of {m} steps: {what}; the local error below is one epoch's, predicted m η^{{K+2}} ξ_{{K+1}}"
            );
        }
        if !c.cold_start.is_empty() {
            let _ = writeln!(
                s,
                "  started on the EoM's trajectory: θ_{{-1}} is the EoM integrated back over one step\n  \
                 (from θ_{{-1}} = θ_0 the transient and its offset hide every order beyond the first: \
                 see the row `cold`)"
            );
        }
    }
    if let Some(asked) = c.requested_lr {
        let _ = writeln!(
            s,
            "  η = {asked} is past (or near) {run}'s radius of convergence here (see the last lines): \
             the check runs at η = {} instead",
            c.lr
        );
    }
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
    cold_table(s, c);
    local_table(s, c);
    if let Some(mc) = &c.monte_carlo {
        monte_carlo_table(s, mc);
    }
    for t in &c.tracked {
        tracked_table(s, c, t);
    }
}

/// Real random reshuffling: the mean of many reshuffled epochs against the EoM, with the
/// mean's standard error; an error within two standard errors is noise, and is said so.
fn monte_carlo_table(s: &mut String, mc: &crate::numeric::MonteCarlo) {
    let _ = writeln!(
        s,
        "random reshuffling (Monte Carlo, {} random orders per η): ‖mean θ after one epoch - θ_EoM(mη)‖ ± its standard error",
        mc.samples
    );
    let mut noise = Vec::new();
    for k in 0..=1 {
        let mut line = format!("  {k:<4}");
        for r in mc.rows.iter().filter(|r| r.order == k) {
            let cell = match (r.error, r.standard_error) {
                (Some(e), Some(se)) if r.resolved => format!("{e:.2e} ± {se:.1e}"),
                (Some(e), Some(se)) => {
                    noise.push((k, r.lr, e, se));
                    format!("<{:.1e} (noise)", 3.0 * se)
                }
                _ => "failed".into(),
            };
            line.push_str(&format!(" {cell:>20}"));
        }
        let slope = mc.slopes[k].map_or("-".into(), |v| format!("{v:.2}"));
        let why = match k {
            0 => "expected 2: one epoch of gradient flow misses the mean by m η² ξ_1",
            _ => "expected 3: with ξ_1 the mean is followed to O(η³) per epoch",
        };
        let _ = writeln!(s, "{line}  slope {slope} ({why})");
    }
    if let Some(&(k, lr, e, se)) = noise.first() {
        let more = ((3.0 * se / e.max(1e-300)).powi(2) * mc.samples as f64).ceil();
        let _ = writeln!(
            s,
            "  at K = {k}, η = {lr} the error does not stand out of the noise (three standard errors): resolving it would take about {more:.0} samples, more than this run's {}; the exact average over orders above is the check",
            mc.samples
        );
    }
}

/// A two-step method from the zero-velocity start θ_{−1} = θ_0, against the EoM of the top
/// order: the offset that start leaves.
fn cold_table(s: &mut String, c: &crate::numeric::Check) {
    let Some(first) = c.cold_start.first() else {
        return;
    };
    let mut line = "  cold".to_string();
    let cells: Vec<String> = c
        .cold_start
        .iter()
        .map(|r| match (r.error, &r.failure) {
            (Some(e), _) => format!("{e:.2e}"),
            (None, Some(_)) => "failed".into(),
            (None, None) => "-".into(),
        })
        .collect();
    let _ = writeln!(
        s,
        "  from the zero-velocity start θ_{{-1}} = θ_0 instead, against K = {}:",
        first.order
    );
    for cell in cells {
        line.push_str(&format!(" {cell:>12}"));
    }
    let slope = c.cold_slope.map_or("-".into(), |v| format!("{v:.2}"));
    let caption = match c.cold_slope {
        Some(v) if (v - 1.0).abs() <= 0.3 => {
            "an O(η) offset: what the usual start costs at every order"
        }
        _ => "not yet O(η): the transient β^n has not died out over the run; take more steps",
    };
    let _ = writeln!(s, "{line}  {slope} ({caption})");
    for r in &c.cold_start {
        if let Some(f) = &r.failure {
            let _ = writeln!(s, "  zero-velocity start, η = {}: {f}", r.lr);
        }
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
    match c.batches {
        // One step of the table is an epoch of m SGD steps.
        Some((m, _)) => writeln!(
            s,
            "local error of one epoch, predicted m η^{{K+2}}‖ξ_{{K+1}}‖ against measured, along {} \
             (means over t = 0, {m}η_0, …, {}η_0; η_0 = {}):",
            run_label(c.optimizer),
            c.steps.saturating_sub(m),
            c.lr
        ),
        None => writeln!(
            s,
            "local error of one step, predicted η^{{K+2}}‖ξ_{{K+1}}‖ against measured, along {} \
             (means over t = 0, η_0, …, {}η_0; η_0 = {}):",
            run_label(c.optimizer),
            c.steps.saturating_sub(1),
            c.lr
        ),
    }
    .expect("writing to a String");
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
        "  discrepancy: the largest ‖measured − predicted‖ / ‖measured‖ along {}, expected O(η)",
        run_label(c.optimizer)
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
        "{} ({kind} of {} parameters) along the run at η = {}, by {} step:",
        t.label,
        t.indices.len(),
        c.lr,
        run_label(c.optimizer)
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
    let run = run_label(c.optimizer);
    let width = run.chars().count().max(9);
    let mut header = format!("  {:<width$}", "step");
    for &i in &steps {
        header.push_str(&format!(" {i:>14}"));
    }
    let _ = writeln!(s, "{header}");
    let mut line = |label: String, values: &[Option<f64>]| {
        let mut l = format!("  {label:<width$}");
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
    line(run.clone(), &t.gd);
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
        "  largest |EoM − {run}| along the run: {}",
        deviations.join(", ")
    );
}
