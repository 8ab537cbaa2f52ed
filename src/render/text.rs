//! Infix text: expressions in the loss language's own syntax (so any printed expression can be
//! pasted back into a loss file), with shared subexpressions named once in a `where` list.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt::Write;

use num_traits::Signed;

use crate::expr::{Graph, Id, Op, VarId};
use crate::Report;

/// Prints the expressions of a graph, naming the subexpressions that several of them share.
///
/// A node is given a name (a *binding*) when it is not a leaf and is used more than once by
/// the printed expressions, or when the loss file named it with `let`. Bindings are listed in
/// dependency order, so each refers only to earlier ones.
///
/// ```
/// use eomderive::render::Printer;
/// let m = eomderive::lang::parse_str("(u*v - 1)^2").unwrap();
/// let p = Printer::new(&m.graph, &m.params, &[], &[m.loss]);
/// assert_eq!(p.expr(m.loss), "(u*v - 1)^2");
/// assert!(p.bindings().is_empty());
/// ```
pub struct Printer<'a> {
    graph: &'a Graph,
    params: &'a [String],
    names: HashMap<Id, String>,
    order: Vec<Id>,
}

impl<'a> Printer<'a> {
    /// A printer for `roots`, with parameter names and `let` names from the model.
    pub fn new(
        graph: &'a Graph,
        params: &'a [String],
        lets: &[(String, Id)],
        roots: &[Id],
    ) -> Printer<'a> {
        let cone = graph.cone(roots);
        let mut uses: HashMap<Id, usize> = HashMap::new();
        for &r in roots {
            *uses.entry(r).or_default() += 1;
        }
        for &id in &cone {
            for &c in egg::Language::children(graph.get(id)) {
                *uses.entry(c).or_default() += 1;
            }
        }
        let in_cone: std::collections::HashSet<Id> = cone.iter().copied().collect();
        let mut names: HashMap<Id, String> = HashMap::new();
        for (name, id) in lets {
            if in_cone.contains(id) && !egg::Language::is_leaf(graph.get(*id)) {
                names.entry(*id).or_insert_with(|| name.clone());
            }
        }
        let taken = |n: &str| params.iter().any(|p| p == n) || lets.iter().any(|(l, _)| l == n);
        let prefix = ["t", "t_", "tmp", "tmp_"]
            .into_iter()
            .find(|p| !(1..=cone.len()).any(|k| taken(&format!("{p}{k}"))))
            .unwrap_or("tmp_");
        let mut order = Vec::new();
        let mut k = 0;
        for &id in &cone {
            let shared =
                uses.get(&id).copied().unwrap_or(0) > 1 && !egg::Language::is_leaf(graph.get(id));
            let named = match names.entry(id) {
                Entry::Occupied(_) => true,
                Entry::Vacant(slot) if shared && !is_small(graph, id) => {
                    k += 1;
                    slot.insert(format!("{prefix}{k}"));
                    true
                }
                Entry::Vacant(_) => false,
            };
            if named {
                order.push(id);
            }
        }
        Printer {
            graph,
            params,
            names,
            order,
        }
    }

    /// The named subexpressions, in dependency order: `(name, definition)`.
    pub fn bindings(&self) -> Vec<(String, String)> {
        self.order
            .iter()
            .map(|&id| (self.names[&id].clone(), self.body(id, 0)))
            .collect()
    }

    /// An expression, referring to bindings by name.
    pub fn expr(&self, id: Id) -> String {
        let mut s = String::new();
        self.write(&mut s, id, 0);
        s
    }

    /// The definition of a node, not its own binding name.
    fn body(&self, id: Id, min_prec: u8) -> String {
        let mut s = String::new();
        self.write_node(&mut s, id, min_prec);
        s
    }

    fn write(&self, out: &mut String, id: Id, min_prec: u8) {
        if let Some(n) = self.names.get(&id) {
            out.push_str(n);
        } else {
            self.write_node(out, id, min_prec);
        }
    }

    fn write_node(&self, out: &mut String, id: Id, min_prec: u8) {
        let op = self.graph.get(id);
        let p = precedence(op);
        let paren = p < min_prec;
        if paren {
            out.push('(');
        }
        match op {
            Op::Num(r) => {
                let _ = write!(out, "{}", r.value());
            }
            Op::Var(VarId(v)) => out.push_str(&self.params[*v as usize]),
            Op::Add([a, b]) => self.binary(out, *a, " + ", *b, 1, 1),
            Op::Sub([a, b]) => self.binary(out, *a, " - ", *b, 1, 2),
            Op::Mul([a, b]) => self.binary(out, *a, "*", *b, 2, 3),
            Op::Div([a, b]) => self.binary(out, *a, "/", *b, 2, 4),
            Op::Pow([a, b]) => self.binary(out, *a, "^", *b, 5, 3),
            Op::Neg(a) => {
                out.push('-');
                self.write(out, *a, 4);
            }
            Op::Call(f, [a]) => {
                out.push_str(f.name());
                out.push('(');
                self.write(out, *a, 0);
                out.push(')');
            }
        }
        if paren {
            out.push(')');
        }
    }

    fn binary(&self, out: &mut String, a: Id, op: &str, b: Id, pa: u8, pb: u8) {
        self.write(out, a, pa);
        out.push_str(op);
        self.write(out, b, pb);
    }
}

/// Leaves and negated leaves are not worth a name of their own.
fn is_small(g: &Graph, id: Id) -> bool {
    match g.get(id) {
        Op::Neg(a) => egg::Language::is_leaf(g.get(*a)),
        _ => false,
    }
}

/// Binding strength: 1 sums, 2 products, 3 unary minus, 4 powers, 5 atoms. A negative
/// constant binds like unary minus and a fraction like a division.
fn precedence(op: &Op) -> u8 {
    match op {
        Op::Add(_) | Op::Sub(_) => 1,
        Op::Mul(_) | Op::Div(_) => 2,
        Op::Neg(_) => 3,
        Op::Pow(_) => 4,
        Op::Num(r) if r.value().is_negative() => 3,
        Op::Num(r) if !r.value().is_integer() => 2,
        _ => 5,
    }
}

/// The whole report as plain text.
pub fn text(report: &Report) -> String {
    let m = &report.model;
    let mut roots = vec![m.loss];
    roots.extend(&report.gradient);
    let p = Printer::new(&m.graph, &m.params, &m.names, &roots);
    let mut s = String::new();
    let _ = writeln!(s, "parameters: {}", m.params.join(", "));
    let _ = writeln!(s, "loss = {}", p.expr(m.loss));
    let _ = writeln!(s, "gradient:");
    for (name, g) in m.params.iter().zip(&report.gradient) {
        let _ = writeln!(s, "  ∂f/∂{name} = {}", p.expr(*g));
    }
    let bindings = p.bindings();
    if !bindings.is_empty() {
        let _ = writeln!(s, "where");
        for (n, b) in bindings {
            let _ = writeln!(s, "  {n} = {b}");
        }
    }
    if let Some(ev) = &report.evaluation {
        let at: Vec<String> = m
            .params
            .iter()
            .zip(&ev.point)
            .map(|(n, v)| format!("{n} = {v}"))
            .collect();
        let _ = writeln!(s, "at {}:", at.join(", "));
        let _ = writeln!(s, "  loss = {}", ev.loss);
        let g: Vec<String> = ev.gradient.iter().map(f64::to_string).collect();
        let _ = writeln!(s, "  gradient = [{}]", g.join(", "));
    }
    s
}
