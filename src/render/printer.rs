//! Expressions with shared subexpressions named once, in plain text or LaTeX.

use crate::hash::{HashMap, HashSet};
use std::collections::hash_map::Entry;
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
    /// Written for a reader ([`Printer::reader`]): constants as `x/2`, `\frac{1}{2} x`.
    reader: bool,
    /// Where each section's names end in `order` ([`Printer::reader_sections`]).
    ends: Vec<usize>,
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
        let shared_nodes = crate::expr::readable::shared(graph, roots);
        let in_cone: HashSet<Id> = cone.iter().copied().collect();
        let mut names: HashMap<Id, String> = HashMap::default();
        for (name, id) in lets {
            if in_cone.contains(id) && !egg::Language::is_leaf(graph.get(*id)) {
                names.entry(*id).or_insert_with(|| name.clone());
            }
        }
        let prefix = temp_prefix(params, lets, cone.len());
        let mut order = Vec::new();
        let mut k = 0;
        for &id in &cone {
            let shared = shared_nodes.contains(&id);
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
            ends: vec![order.len()],
            order,
            reader: false,
        }
    }

    /// A printer for a reader: a subexpression gets a name only when it is a `let` of the
    /// file, or when it occurs more than once in the printed formulas (counted as a reader
    /// sees them, every occurrence of the written-out tree) and naming it saves more printed
    /// operations than [`BINDING_PRICE`]. Larger subexpressions are considered first, so a
    /// name is never given to a part of something already named. Constants are written where
    /// a person writes them: `(u*v - 1)*(2*u - v)/2`.
    ///
    /// ```
    /// use eomderive::render::Printer;
    /// let m = eomderive::lang::parse_str("(u*v - 1)^2 + (u*v - 1)/2").unwrap();
    /// let p = Printer::reader(&m.graph, &m.params, &[], &[m.loss]);
    /// assert_eq!(p.expr(m.loss), "(u*v - 1)^2 + (u*v - 1)/2"); // two operations: not worth a name
    /// assert!(p.bindings().is_empty());
    /// ```
    pub fn reader(
        graph: &'a Graph,
        params: &'a [String],
        lets: &[(String, Id)],
        roots: &[Id],
    ) -> Printer<'a> {
        Printer::reader_sections(graph, params, lets, &[roots])
    }

    /// [`Printer::reader`] for formulas printed in sections (the loss and gradient, then the
    /// counter terms): each section's names are chosen from its own formulas, so a part that
    /// recurs only across sections is written out, and a name once given stays given.
    /// [`Printer::section_bindings`] lists the names each section introduces.
    pub fn reader_sections(
        graph: &'a Graph,
        params: &'a [String],
        lets: &[(String, Id)],
        sections: &[&[Id]],
    ) -> Printer<'a> {
        let mut forced: Vec<Id> = lets.iter().map(|(_, id)| *id).collect();
        let mut named: HashSet<Id> = HashSet::default();
        for roots in sections {
            for id in crate::expr::readable::names(graph, roots, &forced) {
                if named.insert(id) {
                    forced.push(id);
                }
            }
        }
        // A name is defined in the first section that uses it, directly or through another
        // name's definition, and after the names its own definition uses (ids are in
        // dependency order).
        let mut order: Vec<Id> = Vec::new();
        let mut ends = Vec::new();
        for roots in sections {
            let mut here: Vec<Id> = graph
                .cone(roots)
                .into_iter()
                .filter(|id| named.contains(id) && !order.contains(id))
                .collect();
            here.sort();
            order.extend(here);
            ends.push(order.len());
        }
        let mut names: HashMap<Id, String> = HashMap::default();
        for (name, id) in lets {
            if order.contains(id) {
                names.entry(*id).or_insert_with(|| name.clone());
            }
        }
        let prefix = temp_prefix(params, lets, order.len());
        let mut k = 0;
        for &id in &order {
            names.entry(id).or_insert_with(|| {
                k += 1;
                format!("{prefix}{k}")
            });
        }
        Printer {
            graph,
            params,
            names,
            order,
            reader: true,
            ends,
        }
    }

    /// The bindings section `i` of [`Printer::reader_sections`] introduces, in the given
    /// style (all of them for a printer with one section).
    pub fn section_bindings(&self, style: Style, i: usize) -> Vec<(String, String)> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let end = self.ends.get(i).copied().unwrap_or(self.order.len());
        self.order[start.min(end)..end]
            .iter()
            .map(|&id| self.binding(style, id))
            .collect()
    }

    fn binding(&self, style: Style, id: Id) -> (String, String) {
        let mut s = String::new();
        self.write_node(style, &mut s, id, 0);
        (self.name(style, &self.names[&id]), s)
    }

    /// The printed size of the formulas for `roots` with this printer's names: the
    /// operations of every expression as written plus those of every binding's definition
    /// ([`crate::expr::readable::printed_ops`]).
    pub fn printed_ops(&self, roots: &[Id]) -> u64 {
        let named: HashSet<Id> = self.order.iter().copied().collect();
        crate::expr::readable::printed_ops(self.graph, roots, &named)
    }

    /// Whether `id` is written as a name (a binding or a `let`).
    pub fn is_named(&self, id: Id) -> bool {
        self.names.contains_key(&id)
    }

    /// The named subexpressions in dependency order, as `(name, definition)` in text.
    pub fn bindings(&self) -> Vec<(String, String)> {
        self.styled_bindings(Style::Text)
    }

    /// The named subexpressions in dependency order, in the given style.
    pub fn styled_bindings(&self, style: Style) -> Vec<(String, String)> {
        self.order
            .iter()
            .map(|&id| self.binding(style, id))
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
        let mut s = String::new();
        self.push_name(style, &mut s, name);
        s
    }

    fn write(&self, style: Style, out: &mut String, id: Id, min_prec: u8) {
        match self.names.get(&id) {
            Some(n) => self.push_name(style, out, n),
            None => self.write_node(style, out, id, min_prec),
        }
    }

    /// [`Printer::name`] appended to `out` (text names as they are, without a copy).
    fn push_name(&self, style: Style, out: &mut String, name: &str) {
        match style {
            Style::Text => out.push_str(name),
            Style::Latex => out.push_str(&latex_name(name)),
        }
    }

    fn write_node(&self, style: Style, out: &mut String, id: Id, min_prec: u8) {
        let op = self.graph.get(id);
        let p = precedence(style, op);
        let paren = p < min_prec;
        let latex = style == Style::Latex;
        let start = out.len();
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
            Op::Var(VarId(v)) => self.push_name(style, out, &self.params[*v as usize]),
            Op::Add(_) | Op::Sub(_) => {
                // The left spine of a long sum iteratively: a sum of 20 000 terms is 20 000
                // nested nodes, too deep to recurse on.
                let mut spine = Vec::new();
                let mut left = id;
                while let (Op::Add([a, b]) | Op::Sub([a, b]), false) = (
                    self.graph.get(left),
                    left != id && self.names.contains_key(&left),
                ) {
                    let minus = matches!(self.graph.get(left), Op::Sub(_));
                    spine.push((minus, *b));
                    left = *a;
                }
                self.write(style, out, left, 1);
                for (minus, b) in spine.into_iter().rev() {
                    out.push_str(if minus { " - " } else { " + " });
                    self.write(style, out, b, if minus { 2 } else { 1 });
                }
            }
            Op::Mul([a, b]) => {
                // Products associate, so a product needs no parentheses on either side; a
                // constant on the right (rare: they are kept on the left) is bracketed.
                let right = if self.graph.as_num(*b).is_some() {
                    5
                } else {
                    2
                };
                if latex && self.reader {
                    // Juxtaposition, as a paper writes a product; a thin space only where
                    // two numbers would run together.
                    self.write(style, out, *a, 2);
                    let mut rhs = String::new();
                    self.write(style, &mut rhs, *b, right);
                    let letters = out.len()
                        - out
                            .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                            .len();
                    let command = letters > 0 && out[..out.len() - letters].ends_with('\\');
                    if out.ends_with(|c: char| c.is_ascii_digit())
                        && rhs.starts_with(|c: char| c.is_ascii_digit())
                    {
                        out.push_str(r"\,");
                    } else if command && rhs.starts_with(|c: char| c.is_ascii_alphabetic()) {
                        out.push(' '); // \eta u, not \etau
                    }
                    out.push_str(&rhs);
                } else if latex {
                    self.binary(style, out, *a, r"\,", *b, 2, right)
                } else {
                    self.binary(style, out, *a, "*", *b, 2, right)
                }
            }
            Op::Div([a, b]) if latex && self.reader && self.is_product_over_integer(*a, *b) => {
                // (u v - 1)(…)/2 as a paper writes it: \frac{1}{2} (u v - 1)(…).
                let q = self.graph.as_num(*b).unwrap();
                let (p, rest) = match *self.graph.get(*a) {
                    Op::Mul([c, x])
                        if self.graph.as_num(c).is_some() && !self.names.contains_key(a) =>
                    {
                        (self.graph.as_num(c).unwrap().to_string(), x)
                    }
                    _ => ("1".to_string(), *a),
                };
                let _ = write!(out, r"\frac{{{p}}}{{{q}}} ");
                self.write(style, out, rest, 2);
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
                // -a*b/c is (-a)*b/c in the loss language: a reader needs no parentheses.
                out.push('-');
                self.write(style, out, *a, if latex || self.reader { 2 } else { 4 });
            }
            Op::Call(f, [a]) => {
                if latex {
                    let (open, close) = latex_call(*f);
                    let mut arg = String::new();
                    self.write(style, &mut arg, *a, 0);
                    if self.reader && !arg.contains(r"\frac") {
                        out.push_str(&open.replace(r"\left(", "("));
                        out.push_str(&arg);
                        out.push_str(&close.replace(r"\right)", ")"));
                    } else {
                        out.push_str(open);
                        out.push_str(&arg);
                        out.push_str(close);
                    }
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
            // A reader's parentheses grow only around what is tall.
            if latex && self.reader && !out[start..].contains(r"\frac") {
                let inner = out[start + r"\left(".len()..out.len() - r"\right)".len()].to_string();
                out.truncate(start);
                out.push('(');
                out.push_str(&inner);
                out.push(')');
            }
        }
    }

    /// `a / b` with `b` a positive integer and `a` a product: written `\frac{1}{b} a`.
    fn is_product_over_integer(&self, a: Id, b: Id) -> bool {
        let integer = self
            .graph
            .as_num(b)
            .is_some_and(|q| q.is_integer() && q.is_positive());
        integer && !self.names.contains_key(&a) && matches!(self.graph.get(a), Op::Mul(_))
    }

    #[allow(clippy::too_many_arguments)]
    fn binary(&self, style: Style, out: &mut String, a: Id, op: &str, b: Id, pa: u8, pb: u8) {
        self.write(style, out, a, pa);
        out.push_str(op);
        self.write(style, out, b, pb);
    }
}

/// The prefix of binding names (`t1`, `t2`, …) that no parameter or `let` among the first
/// `count` names would clash with.
fn temp_prefix(params: &[String], lets: &[(String, Id)], count: usize) -> &'static str {
    // A prefix is taken when some name is that prefix and a number 1..=count: one pass over
    // the names, not one per temporary.
    let names = || params.iter().chain(lets.iter().map(|(l, _)| l));
    let clashes = |prefix: &str| {
        names().any(|n| {
            n.strip_prefix(prefix)
                .filter(|k| !k.starts_with('0'))
                .and_then(|k| k.parse::<usize>().ok())
                .is_some_and(|k| (1..=count).contains(&k))
        })
    };
    ["t", "t_", "tmp", "tmp_"]
        .into_iter()
        .find(|p| !clashes(p))
        .unwrap_or("tmp_")
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
    if base == "η" {
        return r"\eta".into();
    }
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
