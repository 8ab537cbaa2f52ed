//! JSON output (DESIGN.md §4.2): one object whose fields are a stable contract.

use serde::Serialize;
use serde_json::{Map, Value};

use super::coefficient::{self, Syntax};
use super::{trees, Printer, Style};
use crate::numeric::ObservableKind;
use crate::series::{GenericSeries, Method, MethodSeries, Optimizer};
use crate::{Derivation, Form};

#[derive(Serialize, Clone)]
struct Binding {
    name: String,
    expr: String,
    latex: String,
}

#[derive(Serialize, Clone)]
struct CounterTerm {
    k: usize,
    components: Vec<String>,
    latex: Vec<String>,
}

#[derive(Serialize)]
struct Evaluation {
    at: Map<String, Value>,
    loss: f64,
    gradient: Vec<f64>,
    xi: Vec<Vec<f64>>,
}

#[derive(Serialize)]
struct Stats {
    ops: usize,
    derive_seconds: f64,
    simplify: Simplification,
    /// Operations of the printed formulas as written, names' definitions once.
    printed_ops: u64,
    /// Wall time of building the printed form.
    form_seconds: f64,
    /// `printed_ops` of the program form.
    program_printed_ops: u64,
    /// Wall time of each stage of the derivation, in seconds.
    stages: Map<String, Value>,
    /// Nodes of the expression graph at the end (what the memory limit counts).
    nodes: usize,
}

/// The program form, always present: what the numeric layer compiles.
#[derive(Serialize, Clone)]
struct ProgramJson {
    loss: String,
    gradient: Vec<String>,
    counter_terms: Vec<CounterTerm>,
    bindings: Vec<Binding>,
}

#[derive(Serialize)]
struct Simplification {
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ops_before: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_by: Option<String>,
}

#[derive(Serialize)]
struct Output {
    #[serde(skip_serializing_if = "Option::is_none")]
    optimizer: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leading: Option<Leading>,
    params: Vec<String>,
    order: usize,
    /// The form of `loss`, `gradient`, `counter_terms` and `bindings`.
    form: &'static str,
    /// Why the form asked for was not used.
    #[serde(skip_serializing_if = "Option::is_none")]
    form_note: Option<String>,
    loss: String,
    gradient: Vec<String>,
    counter_terms: Vec<CounterTerm>,
    bindings: Vec<Binding>,
    program: ProgramJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluation: Option<Evaluation>,
    /// For an optimizer other than GD: its radius in ηλ, λ_max at the point and the η past
    /// which the series diverges there.
    #[serde(skip_serializing_if = "Option::is_none")]
    radius: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight_decay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gradient_fields: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    modified_loss: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invariances: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<CheckJson>,
    stats: Stats,
}

#[derive(Serialize)]
struct CheckJson {
    lr: f64,
    /// The η asked for, when it was past the method's radius and the check ran at `lr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_lr: Option<f64>,
    steps: usize,
    horizon: f64,
    rows: Vec<CheckRowJson>,
    slopes: Vec<Option<f64>>,
    /// Local error of one step, predicted by ξ_{K+1} against measured.
    local: Vec<LocalRowJson>,
    /// Quantities followed along GD and the EoM at the largest η.
    tracked: Vec<TrackedJson>,
    /// A two-step method from θ_{−1} = θ_0 against the top order's EoM (the check itself starts
    /// on the EoM's trajectory).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cold_start: Vec<CheckRowJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cold_slope: Option<f64>,
    /// Shuffled SGD: real random reshuffling's mean after one epoch against the EoM.
    #[serde(skip_serializing_if = "Option::is_none")]
    monte_carlo: Option<Value>,
}

fn row_json(r: &crate::numeric::CheckRow) -> CheckRowJson {
    CheckRowJson {
        order: r.order,
        lr: r.lr,
        steps: r.steps,
        error: r.error,
        at_floor: r.at_floor,
        failure: r.failure.clone(),
    }
}

#[derive(Serialize)]
struct LocalRowJson {
    order: usize,
    lr: f64,
    /// Mean η^{K+2}‖ξ_{K+1}‖ along GD; null on failure.
    predicted: Option<f64>,
    /// Mean ‖flow_K − GD step‖ along GD; null on failure.
    measured: Option<f64>,
    /// Largest ‖measured − predicted‖ / ‖measured‖; null on failure.
    discrepancy: Option<f64>,
    at_floor: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
}

#[derive(Serialize)]
struct TrackedJson {
    quantity: String,
    /// `squared_norm` or `sum`.
    kind: &'static str,
    /// The parameters of the group, by name.
    group: Vec<String>,
    /// The value at GD steps 0..N (null from where GD failed).
    gd: Vec<Option<f64>>,
    eom: Vec<TrackedOrderJson>,
    /// Per order K = 0..: the largest |EoM − GD| along the run.
    max_deviation: Vec<Option<f64>>,
}

#[derive(Serialize)]
struct TrackedOrderJson {
    order: usize,
    /// The value at times nη, n = 0..N (null from where the integrator failed).
    values: Vec<Option<f64>>,
}

#[derive(Serialize)]
struct CheckRowJson {
    order: usize,
    lr: f64,
    steps: usize,
    /// null when it could not be computed (see `failure`).
    error: Option<f64>,
    at_floor: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
}

/// ξ_1..ξ_K as printed by `p`.
fn counter_terms(p: &Printer, xi: &[Vec<crate::expr::Id>]) -> Vec<CounterTerm> {
    xi.iter()
        .enumerate()
        .map(|(k, xi)| CounterTerm {
            k: k + 1,
            components: xi.iter().map(|&c| p.expr(c)).collect(),
            latex: xi.iter().map(|&c| p.styled(Style::Latex, c)).collect(),
        })
        .collect()
}

/// The loss, gradient, counter terms and bindings as `p` prints them.
fn formulas(
    p: &Printer,
    loss: crate::expr::Id,
    gradient: &[crate::expr::Id],
    xi: &[Vec<crate::expr::Id>],
) -> ProgramJson {
    ProgramJson {
        loss: p.expr(loss),
        gradient: gradient.iter().map(|&g| p.expr(g)).collect(),
        counter_terms: counter_terms(p, xi),
        bindings: bindings(p),
    }
}

/// The names `p` gives, in text and LaTeX.
fn bindings(p: &Printer) -> Vec<Binding> {
    p.bindings()
        .into_iter()
        .zip(p.styled_bindings(Style::Latex))
        .map(|((name, expr), (_, latex))| Binding { name, expr, latex })
        .collect()
}

/// A derivation as one JSON object (pretty-printed, newline-terminated).
///
/// Expressions are strings in the loss language (and LaTeX); `bindings` defines the shared
/// subexpressions they refer to, each in terms of earlier ones.
pub fn json(d: &Derivation) -> String {
    let m = &d.model;
    let f = &d.printed;
    let p = super::text::printer(d);
    let printed = formulas(&p, f.loss, &f.gradient, &f.xi);
    let printed_ops = p.printed_ops(&super::text::roots(d));
    // The program form printed a second time only when it is not what was printed.
    let (program, program_printed_ops) = if f.form == Form::Program {
        (printed.clone(), printed_ops)
    } else {
        let (program, program_roots) = super::text::program_printer(d);
        let json = formulas(&program, m.loss, &d.gradient, &d.xi);
        (json, program.printed_ops(&program_roots))
    };
    let analysis = d.analysis.as_ref().map(|a| {
        super::analysis::json(
            a,
            &m.params,
            d.xi.len(),
            super::analysis::formula(d).as_ref(),
        )
    });
    let (gradient_fields, modified_loss, invariances) = match analysis {
        Some((f, ml, i)) => (Some(f), Some(ml), Some(i)),
        None => (None, None, None),
    };
    let gd = d.optimizer.is_gd();
    let out = Output {
        optimizer: (!gd).then(|| optimizer_json(&d.optimizer, Syntax::Sympy)),
        leading: (!gd).then(|| {
            let c = -d.leading.clone();
            Leading {
                coefficient: c.to_string(),
                text: format!("{c} ∇f"),
                latex: format!(r"{} \nabla f", super::latex::latex_rational(&c)),
            }
        }),
        weight_decay: m.weight_decay.as_ref().map(|l| l.to_string()),
        gradient_fields,
        modified_loss,
        invariances,
        params: m.params.clone(),
        order: d.xi.len(),
        form: f.form.name(),
        form_note: f.fallback.clone(),
        loss: printed.loss,
        gradient: printed.gradient,
        counter_terms: printed.counter_terms,
        bindings: printed.bindings,
        program,
        radius: d.radius.map(|r| {
            serde_json::json!({"radius": r.radius, "lambda_max": r.lambda_max, "max_lr": r.max_lr, "asymptotic_lr": r.asymptotic_lr})
        }),
        evaluation: d.evaluation.as_ref().map(|ev| Evaluation {
            at: m
                .params
                .iter()
                .zip(&ev.point)
                .map(|(n, &v)| (n.clone(), Value::from(v)))
                .collect(),
            loss: ev.loss,
            gradient: ev.gradient.clone(),
            xi: ev.xi.clone(),
        }),
        check: d.check.as_ref().map(|c| CheckJson {
            lr: c.lr,
            requested_lr: c.requested_lr,
            steps: c.steps,
            horizon: c.horizon,
            rows: c.rows.iter().map(row_json).collect(),
            slopes: c.slopes.clone(),
            local: c
                .local
                .iter()
                .map(|r| LocalRowJson {
                    order: r.order,
                    lr: r.lr,
                    predicted: r.predicted,
                    measured: r.measured,
                    discrepancy: r.discrepancy,
                    at_floor: r.at_floor,
                    failure: r.failure.clone(),
                })
                .collect(),
            tracked: c
                .tracked
                .iter()
                .map(|t| TrackedJson {
                    quantity: t.label.clone(),
                    kind: match t.kind {
                        ObservableKind::SquaredNorm => "squared_norm",
                        ObservableKind::Sum => "sum",
                    },
                    group: t
                        .indices
                        .iter()
                        .map(|&i| m.params.get(i).cloned().unwrap_or_else(|| format!("#{i}")))
                        .collect(),
                    gd: t.gd.clone(),
                    eom: t
                        .eom
                        .iter()
                        .enumerate()
                        .map(|(order, values)| TrackedOrderJson {
                            order,
                            values: values.clone(),
                        })
                        .collect(),
                    max_deviation: t.max_deviation.clone(),
                })
                .collect(),
            cold_start: c.cold_start.iter().map(row_json).collect(),
            cold_slope: c.cold_slope,
            monte_carlo: c.monte_carlo.as_ref().map(|mc| {
                serde_json::json!({
                    "samples": mc.samples,
                    "slopes": mc.slopes,
                    "rows": mc.rows.iter().map(|r| serde_json::json!({
                        "order": r.order,
                        "lr": r.lr,
                        "error": r.error,
                        "standard_error": r.standard_error,
                        "resolved": r.resolved,
                    })).collect::<Vec<_>>(),
                })
            }),
        }),
        stats: Stats {
            ops: d.ops,
            derive_seconds: d.elapsed.as_secs_f64(),
            printed_ops,
            nodes: m.graph.len(),
            form_seconds: f.elapsed.as_secs_f64(),
            program_printed_ops,
            stages: d
                .stages
                .iter()
                .map(|(name, t)| (name.to_string(), serde_json::json!(t.as_secs_f64())))
                .collect(),
            simplify: match &d.simplification {
                None => Simplification {
                    mode: "fast",
                    ops_before: None,
                    stopped_by: None,
                },
                Some(o) => Simplification {
                    mode: "egg",
                    ops_before: Some(o.ops_before),
                    stopped_by: Some(o.stopped_by.clone()),
                },
            },
        },
    };
    to_string(&out)
}

#[derive(Serialize)]
struct GenericTerm {
    coefficient: String,
    tree: String,
    text: String,
    latex: String,
}

#[derive(Serialize)]
struct GenericOrder {
    k: usize,
    terms: Vec<GenericTerm>,
}

#[derive(Serialize)]
struct GenericOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    optimizer: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    leading: Option<Leading>,
    order: usize,
    generic: Vec<GenericOrder>,
    /// For a momentum method: ξ̃_k = (1 − β)^{k+1} ξ_k, the terms in the time of the effective
    /// learning rate η/(1 − β) (dθ/dτ = −g − Σ η_eff^k ξ̃_k).
    #[serde(skip_serializing_if = "Option::is_none")]
    effective_lr: Option<Vec<GenericOrder>>,
}

/// F_0 = coefficient · g (DESIGN.md §2.4), for an optimizer other than GD.
#[derive(Serialize)]
struct Leading {
    coefficient: String,
    text: String,
    latex: String,
}

/// The loss-independent counter terms as JSON: per ξ_k, each tree's exact coefficient, its
/// bracket form (`[•]` = H g) and its elementary differential in text and LaTeX.
///
/// ```
/// let s = eomderive::generic(1).unwrap();
/// let v: serde_json::Value = serde_json::from_str(&eomderive::render::generic_json(&s)).unwrap();
/// assert_eq!(v["generic"][0]["terms"][0]["coefficient"], "1/2");
/// assert_eq!(v["generic"][0]["terms"][0]["tree"], "[•]");
/// ```
pub fn generic_json(series: &GenericSeries) -> String {
    method_json(&MethodSeries::from_numbers(
        Method::Gd,
        None,
        series.clone(),
    ))
}

/// The loss-independent counter terms of any optimizer as JSON: [`generic_json`]'s fields,
/// and for a method other than GD `optimizer` (its name and parameter, `beta` or `r` when
/// symbolic) and `leading` (F_0 = coefficient · g); coefficients are SymPy expressions in
/// `beta` or `r`.
///
/// ```
/// use eomderive::series::{Method, Optimizer};
/// let s = eomderive::generic_optimizer(&Optimizer::new(Method::HeavyBall, None), 1).unwrap();
/// let v: serde_json::Value = serde_json::from_str(&eomderive::render::method_json(&s)).unwrap();
/// assert_eq!(v["optimizer"]["momentum"], "beta");
/// assert_eq!(v["leading"]["coefficient"], "-1/(1 - beta)");
/// assert_eq!(v["generic"][0]["terms"][0]["coefficient"], "(1 + beta)/(2*(1 - beta)^3)");
/// ```
pub fn method_json(series: &MethodSeries) -> String {
    let m = series.method;
    let gd = m == Method::Gd;
    let optimizer = coefficient::optimizer_of(series);
    let out = GenericOutput {
        optimizer: (!gd).then(|| optimizer_json(&optimizer, Syntax::Sympy)),
        leading: (!gd).then(|| {
            let minus = -series.leading.clone();
            Leading {
                coefficient: coefficient::whole(&minus, m, Syntax::Sympy),
                text: format!("{} g", coefficient::whole(&minus, m, Syntax::Text)),
                latex: format!(r"{} \nabla f", coefficient::whole(&minus, m, Syntax::Latex)),
            }
        }),
        order: series.xi.len(),
        generic: orders(series),
        effective_lr: series.in_effective_time().map(|e| orders(&e)),
    };
    to_string(&out)
}

/// Per ξ_k, each tree's coefficient (a SymPy expression), bracket, text and LaTeX.
fn orders(series: &MethodSeries) -> Vec<GenericOrder> {
    let m = series.method;
    series
        .xi
        .iter()
        .enumerate()
        .map(|(k, terms)| GenericOrder {
            k: k + 1,
            terms: terms
                .iter()
                .map(|(t, c)| GenericTerm {
                    coefficient: coefficient::whole(c, m, Syntax::Sympy),
                    tree: series.forest.bracket(*t),
                    text: trees::text(&series.forest, *t),
                    latex: trees::latex(&series.forest, *t),
                })
                .collect(),
        })
        .collect()
}

/// `{"name": "heavy-ball", "momentum": "9/10"}`; the symbol (`beta`, `r`) when symbolic.
fn optimizer_json(optimizer: &Optimizer, syntax: Syntax) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), Value::from(optimizer.method.name()));
    if let Some(b) = optimizer.batches {
        o.insert("batches".into(), Value::from(b.count));
        o.insert("order".into(), Value::from(b.order.name()));
    }
    if let Some(p) = optimizer.method.parameter() {
        let value = match &optimizer.parameter {
            Some(v) => v.to_string(),
            None => coefficient::symbol(optimizer.method, syntax).to_string(),
        };
        o.insert(p.flag().replace('-', "_"), Value::from(value));
    }
    Value::Object(o)
}

fn to_string(v: &impl Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("plain data serialises");
    s.push('\n');
    s
}
