//! JSON output (DESIGN.md §4.2): one object whose fields are a stable contract.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Printer;
use crate::Report;

#[derive(Serialize)]
struct Binding {
    name: String,
    expr: String,
}

#[derive(Serialize)]
struct Evaluation {
    at: Map<String, Value>,
    loss: f64,
    gradient: Vec<f64>,
}

#[derive(Serialize)]
struct Output {
    params: Vec<String>,
    loss: String,
    gradient: Vec<String>,
    bindings: Vec<Binding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluation: Option<Evaluation>,
}

/// The whole report as one JSON object (pretty-printed, newline-terminated).
///
/// Expressions are strings in the loss language; names in `bindings` are shared
/// subexpressions they refer to, each defined in terms of earlier ones.
pub fn json(report: &Report) -> String {
    let m = &report.model;
    let mut roots = vec![m.loss];
    roots.extend(&report.gradient);
    let p = Printer::new(&m.graph, &m.params, &m.names, &roots);
    let out = Output {
        params: m.params.clone(),
        loss: p.expr(m.loss),
        gradient: report.gradient.iter().map(|&g| p.expr(g)).collect(),
        bindings: p
            .bindings()
            .into_iter()
            .map(|(name, expr)| Binding { name, expr })
            .collect(),
        evaluation: report.evaluation.as_ref().map(|ev| Evaluation {
            at: m
                .params
                .iter()
                .zip(&ev.point)
                .map(|(n, &v)| (n.clone(), Value::from(v)))
                .collect(),
            loss: ev.loss,
            gradient: ev.gradient.clone(),
        }),
    };
    let mut s = serde_json::to_string_pretty(&out).expect("plain data serialises");
    s.push('\n');
    s
}
