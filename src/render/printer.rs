//! Expressions with shared subexpressions named once, in plain text or LaTeX.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use num_traits::Signed;

use crate::expr::{Func, Graph, Id, Op, VarId};

/// The syntax an expression is printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The loss language itself (`u*v - 1`), so a printed expression can be pasted back.
    Text,
    /// LaTeX math (`u\,v - 1`), for papers.
    Latex,
}

/// Prints the expressions of a graph, naming the subexpressions that several of them share.
///
/// A node is given a name (a *binding*) when it is not a leaf and is used more than once by
/// the printed expressions, or when the loss file named it with `let`. Bindings are listed in
/// dependency order, so each refers only to earlier ones.
///
/// ```
/// use eomderive::render::{Printer, Style};
/// let m = eomderive::lang::parse_str("(u*v - 1)^2").unwrap();
/// let p = Printer::new(&m.graph, &m.params, &[], &[m.loss]);
/// assert_eq!(p.expr(m.loss), "(u*v - 1)^2");
/// assert_eq!(p.styled(Style::Latex, m.loss), r"\left(u\,v - 1\right)^{2}");
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
        let in_cone: HashSet<Id> = cone.iter().copied().collect();
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

    /// The named subexpressions in dependency order, as `(name, definition)` in text.
    pub fn bindings(&self) -> Vec<(String, String)> {
        self.styled_bindings(Style::Text)
    }

    /// The named subexpressions in dependency order, in the given style.
    pub fn styled_bindings(&self, style: Style) -> Vec<(String, String)> {
        self.order
            .iter()
            .map(|&id| {
                let mut s = String::new();
                self.write_node(style, &mut s, id, 0);
                (self.name(style, &self.names[&id]), s)
            })
            .collect()
    }

    /// An expression in text, referring to bindings by name.
    pub fn expr(&self, id: Id) -> String {
        self.styled(Style::Text, id)
    }

    /// An expression in the given style, referring to bindings by name.
    pub fn styled(&self, style: Style, id: Id) -> String {
        let mut s = String::new();
        self.write(style, &mut s, id, 0);
        s
    }

    /// A name (parameter or binding) in the given style.
    pub fn name(&self, style: Style, name: &str) -> String {
        match style {
            Style::Text => name.to_string(),
            Style::Latex => latex_name(name),
        }
    }

    fn write(&self, style: Style, out: &mut String, id: Id, min_prec: u8) {
        match self.names.get(&id) {
            Some(n) => out.push_str(&self.name(style, n)),
            None => self.write_node(style, out, id, min_prec),
        }
    }

    fn write_node(&self, style: Style, out: &mut String, id: Id, min_prec: u8) {
        let op = self.graph.get(id);
        let p = precedence(style, op);
        let paren = p < min_prec;
        let latex = style == Style::Latex;
        if paren {
            out.push_str(if latex { r"\left(" } else { "(" });
        }
        match op {
            Op::Num(r) => {
                let r = r.value();
                if latex && !r.is_integer() {
                    // Written whole: an integer or `-\frac{p}{q}`.
                    let sign = if r.is_negative() { "-" } else { "" };
                    let _ = write!(out, r"{sign}\frac{{{}}}{{{}}}", r.numer().abs(), r.denom());
                } else {
                    let _ = write!(out, "{r}");
                }
            }
            Op::Var(VarId(v)) => out.push_str(&self.name(style, &self.params[*v as usize])),
            Op::Add([a, b]) => self.binary(style, out, *a, " + ", *b, 1, 1),
            Op::Sub([a, b]) => self.binary(style, out, *a, " - ", *b, 1, 2),
            Op::Mul([a, b]) => {
                // Products associate, so a product needs no parentheses on either side; a
                // constant on the right (rare: they are kept on the left) is bracketed.
                let right = if self.graph.as_num(*b).is_some() {
                    5
                } else {
                    2
                };
                if latex {
                    self.binary(style, out, *a, r"\,", *b, 2, right)
                } else {
                    self.binary(style, out, *a, "*", *b, 2, right)
                }
            }
            Op::Div([a, b]) => {
                if latex {
                    out.push_str(r"\frac{");
                    self.write(style, out, *a, 0);
                    out.push_str("}{");
                    self.write(style, out, *b, 0);
                    out.push('}');
                } else {
                    self.binary(style, out, *a, "/", *b, 2, 4)
                }
            }
            Op::Pow([a, b]) => {
                if latex {
                    self.write(style, out, *a, 5);
                    out.push_str("^{");
                    self.write(style, out, *b, 0);
                    out.push('}');
                } else {
                    self.binary(style, out, *a, "^", *b, 5, 3)
                }
            }
            Op::Neg(a) => {
                out.push('-');
                self.write(style, out, *a, if latex { 2 } else { 4 });
            }
            Op::Call(f, [a]) => {
                if latex {
                    let (open, close) = latex_call(*f);
                    out.push_str(open);
                    self.write(style, out, *a, 0);
                    out.push_str(close);
                } else {
                    out.push_str(f.name());
                    out.push('(');
                    self.write(style, out, *a, 0);
                    out.push(')');
                }
            }
        }
        if paren {
            out.push_str(if latex { r"\right)" } else { ")" });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn binary(&self, style: Style, out: &mut String, a: Id, op: &str, b: Id, pa: u8, pb: u8) {
        self.write(style, out, a, pa);
        out.push_str(op);
        self.write(style, out, b, pb);
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
/// constant binds like unary minus and a fraction like a division (in LaTeX, `\frac` and
/// function calls are atoms except as the base of a power).
fn precedence(style: Style, op: &Op) -> u8 {
    match op {
        Op::Add(_) | Op::Sub(_) => 1,
        Op::Mul(_) => 2,
        Op::Div(_) => {
            if style == Style::Latex {
                4
            } else {
                2
            }
        }
        Op::Neg(_) => 3,
        Op::Pow(_) => 4,
        Op::Num(r) if r.value().is_negative() => 3,
        Op::Num(r) if !r.value().is_integer() => {
            if style == Style::Latex {
                4
            } else {
                2
            }
        }
        _ => 5,
    }
}

fn latex_call(f: Func) -> (&'static str, &'static str) {
    match f {
        Func::Exp => (r"\exp\left(", r"\right)"),
        Func::Log => (r"\log\left(", r"\right)"),
        Func::Sqrt => (r"\sqrt{", "}"),
        Func::Sin => (r"\sin\left(", r"\right)"),
        Func::Cos => (r"\cos\left(", r"\right)"),
        Func::Tan => (r"\tan\left(", r"\right)"),
        Func::Tanh => (r"\tanh\left(", r"\right)"),
        Func::Sigmoid => (r"\sigma\left(", r"\right)"),
        Func::Softplus => (r"\operatorname{softplus}\left(", r"\right)"),
        Func::Log1p => (r"\operatorname{log1p}\left(", r"\right)"),
    }
}

const GREEK: [&str; 24] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
    "omega", "Omega",
];

/// `w[1]` → `w_{1}`, `W[1,2]` → `W_{1,2}`, `t3` → `t_{3}`, `out[2]` → `\mathit{out}_{2}`,
/// `eta` → `\eta`.
fn latex_name(name: &str) -> String {
    let (base, index) = match name.split_once('[') {
        Some((b, rest)) => (b, Some(rest.trim_end_matches(']'))),
        None => {
            // A trailing number is a subscript: t12 → t_{12}.
            let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            if digits > 0 && digits < name.len() {
                let (b, d) = name.split_at(name.len() - digits);
                (b.trim_end_matches('_'), Some(d))
            } else {
                (name, None)
            }
        }
    };
    let base = if base.chars().count() == 1 {
        base.to_string()
    } else if GREEK.contains(&base) {
        format!(r"\{base}")
    } else {
        format!(r"\mathit{{{}}}", base.replace('_', r"\_"))
    };
    match index {
        Some(i) => format!("{base}_{{{i}}}"),
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::latex_name;

    #[test]
    fn latex_names() {
        assert_eq!(latex_name("w[1]"), "w_{1}");
        assert_eq!(latex_name("W[1,2]"), "W_{1,2}");
        assert_eq!(latex_name("t12"), "t_{12}");
        assert_eq!(latex_name("t_3"), "t_{3}");
        assert_eq!(latex_name("out[2]"), r"\mathit{out}_{2}");
        assert_eq!(latex_name("eta"), r"\eta");
        assert_eq!(latex_name("w_out"), r"\mathit{w\_out}");
    }
}
