//! Emitted code (`--emit`, DESIGN.md §4.5): the loss, its gradient and the counter terms
//! ξ_1..ξ_K of a [`Derivation`] as a standalone source file in Python (NumPy), JAX or Rust.
//!
//! The file computes the program form, the shared straight-line program the numeric layer
//! compiles: one statement per shared subexpression (`t1`, `t2`, …, or the loss file's `let`
//! name), the rest written inline, and long inline expressions cut into statements of at
//! most [`MAX_INLINE`] operations so that no statement is deep (Python's compiler and rustc
//! recurse on expression depth). Every decision is made in one pass over the program in
//! dependency order, so emission is linear in the program's size.
//!
//! Constants are exact rationals in the graph; the file has each one's nearest `f64`
//! ([`crate::numeric::to_f64`], what the numeric layer computes with), written so that it
//! reads back to the same `f64`.

use std::collections::HashSet;
use std::fmt::Write;

use crate::expr::{Func, Graph, Id, Op, VarId};
use crate::lang::Source;
use crate::Derivation;

/// The most operations an inline expression holds before a part of it becomes a statement of
/// its own.
pub const MAX_INLINE: usize = 12;

/// A language `--emit` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A Python module using NumPy only, vectorised over leading axes.
    Python,
    /// A Python module using `jax.numpy` (float64 enabled), `eom_terms` jitted.
    Jax,
    /// A Rust module without dependencies.
    Rust,
}

impl Target {
    /// Every target, in the order `--help` lists them.
    pub const ALL: [Target; 3] = [Target::Python, Target::Jax, Target::Rust];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Target::Python => "python",
            Target::Jax => "jax",
            Target::Rust => "rust",
        }
    }

    /// The target with this name.
    ///
    /// ```
    /// use eomderive::render::Target;
    /// assert_eq!(Target::from_name("jax"), Some(Target::Jax));
    /// assert_eq!(Target::from_name("julia"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A derivation as a source file in `target`: `PARAMS` (the expanded parameter names, θ's
/// order), `THETA0` (the file's initial point, when every parameter has a value), `ORDER`,
/// `LEADING` (c in dθ/dt = −c ∇f − η ξ_1 − …), `loss(theta)` and `eom_terms(theta)` giving
/// the gradient and ξ_1..ξ_K. A header comment says what it was derived from; `source`, when
/// given, is the loss text it quotes.
///
/// - Python/NumPy and JAX: `theta` has shape (..., n); `loss(theta)` has shape (...),
///   `eom_terms(theta)` returns `(g, xi)` of shapes (..., n) and (K, ..., n).
/// - Rust: `pub fn loss(theta: &[f64; N]) -> f64` and
///   `pub fn eom_terms(theta: &[f64; N], g: &mut [f64; N], xi: &mut [[f64; N]; K])`.
///
/// Values where the loss is undefined come out as NaN or infinities (the file does not check
/// domains, unlike [`crate::numeric::Program::eval`]).
///
/// ```
/// use eomderive::{derive, lang::Source, render, Options};
/// let source = Source::inline("(u*v - 1)^2/2");
/// let d = derive(&source, &Options { order: 1, analyze: false, ..Options::default() }).unwrap();
/// let py = render::emit(&d, render::Target::Python, Some(&source));
/// assert!(py.contains("PARAMS = (\"u\", \"v\")"));
/// assert!(py.contains("def eom_terms(theta):"));
/// let rs = render::emit(&d, render::Target::Rust, Some(&source));
/// assert!(rs.contains("pub fn eom_terms(theta: &[f64; 2], g: &mut [f64; 2], xi: &mut [[f64; 2]; 1])"));
/// ```
pub fn emit(d: &Derivation, target: Target, source: Option<&Source>) -> String {
    let m = &d.model;
    let idents = Idents::new(&m.params, &m.names);
    let syntax = match target {
        Target::Python => Syntax::Numpy,
        Target::Jax => Syntax::Jax,
        Target::Rust => Syntax::Rust,
    };
    let mut outputs = d.gradient.clone();
    outputs.extend(d.xi.iter().flatten());
    let loss = Straight::new(&m.graph, &idents, &[m.loss], syntax);
    let terms = Straight::new(&m.graph, &idents, &outputs, syntax);
    let mut funcs = loss.funcs.clone();
    funcs.extend(&terms.funcs);
    let mut s = String::new();
    header(&mut s, d, target, source);
    match target {
        Target::Python | Target::Jax => python(&mut s, d, syntax, &idents, &loss, &terms, &funcs),
        Target::Rust => rust(&mut s, d, &idents, &loss, &terms, &funcs),
    }
    s
}

/// The header comment: what the file computes and what it was derived from.
fn header(s: &mut String, d: &Derivation, target: Target, source: Option<&Source>) {
    let c = match target {
        Target::Rust => "//",
        _ => "#",
    };
    let k = d.xi.len();
    let _ = writeln!(
        s,
        "{c} Generated by eomderive {} (--emit {target}). Do not edit: derive it again.",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(s, "{c}");
    let _ = writeln!(
        s,
        "{c} The counter terms {} of the equation of motion of the optimizer below,",
        span(k)
    );
    let _ = writeln!(
        s,
        "{c}     dθ/dt = {}  (θ_n ≈ θ(nη)),",
        super::eom_rhs(&d.leading)
    );
    let _ = writeln!(
        s,
        "{c} with the loss f and its gradient ∇f, computed by the shared straight-line program."
    );
    let _ = writeln!(s, "{c}");
    let optimizer = super::coefficient::describe(&d.optimizer, super::coefficient::Syntax::Text);
    let optimizer = if d.optimizer.is_gd() {
        "gd (plain gradient descent)".to_string()
    } else {
        optimizer
    };
    let _ = writeln!(s, "{c} optimizer:    {optimizer}");
    let _ = writeln!(s, "{c} leading:      dθ/dt = -{} ∇f - ...", d.leading);
    match &d.model.weight_decay {
        Some(l) => {
            let _ = writeln!(
                s,
                "{c} weight decay: λ = {l} (the loss and ∇f include λ/2 ‖θ‖²)"
            );
        }
        None => {
            let _ = writeln!(s, "{c} weight decay: none");
        }
    }
    let _ = writeln!(s, "{c} order:        {k}");
    let _ = writeln!(s, "{c} parameters:   {}", d.model.params.len());
    let _ = writeln!(
        s,
        "{c} ops:          {} (of the shared program for {})",
        d.ops,
        span(k)
    );
    if let Some(src) = source {
        let _ = writeln!(s, "{c} loss source:  {}", comment_safe(&src.name));
        let _ = writeln!(s, "{c}");
        for line in src.text.lines() {
            let line = comment_safe(line.trim_end());
            if line.is_empty() {
                let _ = writeln!(s, "{c}");
            } else {
                let _ = writeln!(s, "{c}     {line}");
            }
        }
    }
    let _ = writeln!(s);
}

/// `ξ_1..ξ_K` (`ξ_1` for K = 1).
fn span(k: usize) -> String {
    match k {
        0 => "(none: order 0)".into(),
        1 => "ξ_1".into(),
        _ => format!("ξ_1..ξ_{k}"),
    }
}

/// A line made safe for a comment: control characters and the bidirectional overrides that
/// rustc refuses in comments become `?`.
fn comment_safe(line: &str) -> String {
    line.chars()
        .map(|ch| {
            let bidi = matches!(ch, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            if (ch.is_control() && ch != '\t') || bidi {
                '?'
            } else {
                ch
            }
        })
        .collect()
}

/// The expression syntax of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Numpy,
    Jax,
    Rust,
}

impl Syntax {
    fn np(self) -> &'static str {
        match self {
            Syntax::Jax => "jnp",
            _ => "np",
        }
    }
}

/// Names every target reserves: keywords of Python and Rust, and the names the emitted code
/// uses itself.
const RESERVED: &[&str] = &[
    // Python
    "False",
    "None",
    "True",
    "and",
    "as",
    "assert",
    "async",
    "await",
    "break",
    "class",
    "continue",
    "def",
    "del",
    "elif",
    "else",
    "except",
    "finally",
    "for",
    "from",
    "global",
    "if",
    "import",
    "in",
    "is",
    "lambda",
    "nonlocal",
    "not",
    "or",
    "pass",
    "raise",
    "return",
    "try",
    "while",
    "with",
    "yield",
    "match",
    "case",
    "type",
    "_",
    // Rust
    "abstract",
    "become",
    "box",
    "const",
    "crate",
    "do",
    "dyn",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "gen",
    "impl",
    "let",
    "loop",
    "macro",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "pub",
    "ref",
    "self",
    "Self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "union",
    "f64",
    "f32",
    "i32",
    "usize",
    "std",
    "core",
    // the emitted code's own names
    "np",
    "jnp",
    "jax",
    "theta",
    "g",
    "xi",
    "loss",
    "eom_terms",
    "PARAMS",
    "THETA0",
    "ORDER",
    "LEADING",
    "sigmoid",
    "softplus",
    "_full",
    "_stack",
    "_sigmoid",
    "_softplus",
];

/// The identifiers of the parameters and `let` names in the emitted code, and the prefix of
/// temporaries.
struct Idents {
    /// Per parameter: `w[1]` → `w_1`.
    params: Vec<String>,
    /// Per `let` entry, in the model's order: (identifier, the name as written, node).
    lets: Vec<(String, String, Id)>,
    /// `t` unless a parameter or `let` is called `t3`; then `t_`, `tmp`, ….
    temp: &'static str,
}

impl Idents {
    fn new(params: &[String], lets: &[(String, Id)]) -> Idents {
        let mut used: HashSet<String> = RESERVED.iter().map(|s| s.to_string()).collect();
        let mut take = |name: &str| {
            let mut id: String = name
                .chars()
                .filter_map(|c| match c {
                    '[' | ',' => Some('_'),
                    c if c.is_ascii_alphanumeric() || c == '_' => Some(c),
                    _ => None,
                })
                .collect();
            if id.is_empty() || id.starts_with(|c: char| c.is_ascii_digit()) {
                id.insert(0, '_');
            }
            while used.contains(&id) {
                id.push('_');
            }
            used.insert(id.clone());
            id
        };
        let params: Vec<String> = params.iter().map(|p| take(p)).collect();
        let lets: Vec<(String, String, Id)> = lets
            .iter()
            .map(|(name, id)| (take(name), name.clone(), *id))
            .collect();
        let temp_like = |prefix: &str| {
            used.iter().any(|n| {
                n.strip_prefix(prefix).is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
                })
            })
        };
        let temp = ["t", "t_", "tmp", "tmp_", "tmp__"]
            .into_iter()
            .find(|p| !temp_like(p))
            .unwrap_or("tmp___");
        Idents { params, lets, temp }
    }
}

/// How a node of the program is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Written out where it is used.
    Inline,
    /// A statement of its own, named by entry `i` of [`Straight::names`].
    Named(u32),
}

/// The straight-line program for some roots: which nodes are statements, and their text.
struct Straight<'a> {
    graph: &'a Graph,
    idents: &'a Idents,
    syntax: Syntax,
    /// Indexed by node id (only the roots' cone is meaningful).
    kind: Vec<Kind>,
    names: Vec<String>,
    /// The statements in dependency order: (name, expression, the `let` name as written when
    /// the name is one).
    statements: Vec<(String, String, Option<String>)>,
    /// Each root written as an expression (a name, or inline).
    roots: Vec<String>,
    /// The parameters read, in θ's order.
    params: Vec<usize>,
    /// The functions called (for the helpers a target needs).
    funcs: HashSet<Func>,
}

impl<'a> Straight<'a> {
    fn new(graph: &'a Graph, idents: &'a Idents, roots: &[Id], syntax: Syntax) -> Straight<'a> {
        let cone = graph.cone(roots);
        let mut uses = vec![0u32; graph.len()];
        for &r in roots {
            uses[usize::from(r)] += 1;
        }
        for &id in &cone {
            for &c in egg::Language::children(graph.get(id)) {
                uses[usize::from(c)] = uses[usize::from(c)].saturating_add(1);
            }
        }
        // The `let` name of a node: the first one given.
        let mut let_name: Vec<Option<u32>> = vec![None; graph.len()];
        for (k, (_, _, id)) in idents.lets.iter().enumerate() {
            let slot = &mut let_name[usize::from(*id)];
            if slot.is_none() {
                *slot = Some(k as u32);
            }
        }
        // In dependency order: a node is a statement when it is shared or named by the file;
        // otherwise inline, unless its inline size passes MAX_INLINE, when its inline operands
        // become statements.
        let mut named = vec![false; graph.len()];
        let mut cost = vec![0usize; graph.len()];
        let mut params = Vec::new();
        let mut funcs = HashSet::new();
        for &id in &cone {
            let i = usize::from(id);
            let op = graph.get(id);
            match op {
                Op::Var(VarId(v)) => {
                    params.push(*v as usize);
                    continue;
                }
                Op::Num(_) => continue,
                Op::Call(f, _) => {
                    funcs.insert(*f);
                }
                _ => {}
            }
            let small = matches!(op, Op::Neg(a) if egg::Language::is_leaf(graph.get(*a)));
            if let_name[i].is_some() || (uses[i] > 1 && !small) {
                named[i] = true;
            }
            let children = egg::Language::children(op);
            let inline = |c: &Id| {
                let c = usize::from(*c);
                if named[c] {
                    0
                } else {
                    cost[c]
                }
            };
            let mut total = 1 + children.iter().map(inline).sum::<usize>();
            if total > MAX_INLINE {
                for &c in children {
                    let c = usize::from(c);
                    if cost[c] > 0 {
                        named[c] = true;
                    }
                }
                total = 1;
            }
            cost[i] = total;
        }
        params.sort_unstable();
        params.dedup();
        let mut kind = vec![Kind::Inline; graph.len()];
        let mut names = Vec::new();
        let mut temps = 0usize;
        for &id in &cone {
            let i = usize::from(id);
            if named[i] {
                kind[i] = Kind::Named(names.len() as u32);
                names.push(match let_name[i] {
                    Some(k) => idents.lets[k as usize].0.clone(),
                    None => {
                        temps += 1;
                        format!("{}{temps}", idents.temp)
                    }
                });
            }
        }
        let mut s = Straight {
            graph,
            idents,
            syntax,
            kind,
            names,
            statements: Vec::new(),
            roots: Vec::new(),
            params,
            funcs,
        };
        let mut statements = Vec::with_capacity(s.names.len());
        for &id in &cone {
            if let Kind::Named(k) = s.kind[usize::from(id)] {
                let mut e = String::new();
                s.write_node(&mut e, id);
                let written = let_name[usize::from(id)]
                    .map(|k| idents.lets[k as usize].1.clone())
                    .filter(|w| *w != s.names[k as usize]);
                statements.push((s.names[k as usize].clone(), e, written));
            }
        }
        s.statements = statements;
        s.roots = roots
            .iter()
            .map(|&r| {
                let mut e = String::new();
                s.write(&mut e, r, 0);
                e
            })
            .collect();
        s
    }

    /// Binding strength of a node as written: 1 sums, 2 products, 3 unary minus (and negative
    /// literals), 4 Python's `**`, 5 atoms, calls and (in Rust) method calls.
    fn prec(&self, id: Id) -> u8 {
        if matches!(self.kind[usize::from(id)], Kind::Named(_)) {
            return 5;
        }
        match self.graph.get(id) {
            Op::Add(_) | Op::Sub(_) => 1,
            Op::Mul(_) | Op::Div(_) => 2,
            Op::Neg(_) => 3,
            Op::Num(r) => {
                let v = crate::numeric::to_f64(r.value());
                if v < 0.0 {
                    3
                } else {
                    5
                }
            }
            Op::Pow([a, b]) => {
                let python_power = self.syntax != Syntax::Rust
                    && small_integer(self.graph, *b).is_some()
                    && self.graph.as_num(*a).is_none();
                if python_power {
                    4
                } else {
                    5
                }
            }
            Op::Var(_) | Op::Call(..) => 5,
        }
    }

    /// `id` as an operand that needs binding strength `min`.
    fn write(&self, out: &mut String, id: Id, min: u8) {
        if let Kind::Named(k) = self.kind[usize::from(id)] {
            out.push_str(&self.names[k as usize]);
            return;
        }
        let paren = self.prec(id) < min;
        if paren {
            out.push('(');
        }
        self.write_node(out, id);
        if paren {
            out.push(')');
        }
    }

    /// The receiver of a Rust method call: literals get their type (`2.0_f64`).
    fn receiver(&self, out: &mut String, id: Id) {
        match (self.kind[usize::from(id)], self.graph.get(id)) {
            (Kind::Inline, Op::Num(r)) => {
                let v = crate::numeric::to_f64(r.value());
                let lit = float(v, Syntax::Rust);
                if lit.starts_with("f64::") {
                    let _ = write!(out, "({lit})");
                } else if v < 0.0 {
                    let _ = write!(out, "({lit}_f64)");
                } else {
                    let _ = write!(out, "{lit}_f64");
                }
            }
            _ => self.write(out, id, 5),
        }
    }

    /// The node itself (never its name).
    fn write_node(&self, out: &mut String, id: Id) {
        let rust = self.syntax == Syntax::Rust;
        match self.graph.get(id) {
            Op::Num(r) => out.push_str(&float(crate::numeric::to_f64(r.value()), self.syntax)),
            Op::Var(VarId(v)) => match self.idents.params.get(*v as usize) {
                Some(p) => out.push_str(p),
                None => {
                    let _ = write!(out, "v{v}");
                }
            },
            Op::Add([a, b]) => self.binary(out, *a, " + ", *b, 1),
            Op::Sub([a, b]) => self.binary(out, *a, " - ", *b, 1),
            Op::Mul([a, b]) => self.binary(out, *a, "*", *b, 2),
            Op::Div([a, b]) => self.binary(out, *a, "/", *b, 2),
            Op::Neg(a) => {
                out.push('-');
                self.write(out, *a, 4);
            }
            Op::Pow([a, b]) => match (small_integer(self.graph, *b), rust) {
                (Some(n), true) => {
                    self.receiver(out, *a);
                    let _ = write!(out, ".powi({n})");
                }
                (Some(n), false) if self.graph.as_num(*a).is_none() => {
                    self.write(out, *a, 5);
                    let _ = write!(out, "**{n}");
                }
                (None, true) => {
                    self.receiver(out, *a);
                    out.push_str(".powf(");
                    self.write(out, *b, 0);
                    out.push(')');
                }
                (_, false) => {
                    let _ = write!(out, "{}.power(", self.syntax.np());
                    self.write(out, *a, 0);
                    out.push_str(", ");
                    self.write(out, *b, 0);
                    out.push(')');
                }
            },
            Op::Call(f, [a]) => {
                if rust {
                    match f {
                        Func::Sigmoid | Func::Softplus => {
                            let _ = write!(out, "{}(", f.name());
                            self.write(out, *a, 0);
                            out.push(')');
                        }
                        _ => {
                            self.receiver(out, *a);
                            let _ = write!(out, ".{}()", rust_method(*f));
                        }
                    }
                } else {
                    out.push_str(&python_function(*f, self.syntax));
                    out.push('(');
                    self.write(out, *a, 0);
                    out.push(')');
                }
            }
        }
    }

    /// `a op b` for a left-associative operator of strength `p`: the right operand needs more
    /// (`a - (b + c)`, `a/(b*c)`), which also keeps the graph's order of floating-point
    /// operations.
    fn binary(&self, out: &mut String, a: Id, op: &str, b: Id, p: u8) {
        self.write(out, a, p);
        out.push_str(op);
        self.write(out, b, p + 1);
    }
}

/// The integer exponent the numeric layer raises with `powi` (keep in step with
/// `numeric::program`): an integer constant of magnitude at most 2^16.
fn small_integer(g: &Graph, id: Id) -> Option<i32> {
    let r = g.as_num(id)?;
    if !r.is_integer() {
        return None;
    }
    num_traits::ToPrimitive::to_i32(&r.to_integer()).filter(|n| n.abs() <= 1 << 16)
}

/// A float literal that reads back to `v` (Rust's shortest round-trip form, which Python
/// reads too: `0.1`, `2.0`, `1e-7`).
fn float(v: f64, syntax: Syntax) -> String {
    let np = syntax.np();
    if v.is_nan() {
        return match syntax {
            Syntax::Rust => "f64::NAN".into(),
            _ => format!("{np}.nan"),
        };
    }
    if v.is_infinite() {
        let sign = if v < 0.0 { "-" } else { "" };
        return match syntax {
            Syntax::Rust => format!("{sign}f64::INFINITY"),
            _ => format!("{sign}{np}.inf"),
        };
    }
    format!("{v:?}")
}

fn rust_method(f: Func) -> &'static str {
    match f {
        Func::Exp => "exp",
        Func::Log => "ln",
        Func::Sqrt => "sqrt",
        Func::Sin => "sin",
        Func::Cos => "cos",
        Func::Tan => "tan",
        Func::Tanh => "tanh",
        Func::Sigmoid => "sigmoid",
        Func::Softplus => "softplus",
        Func::Log1p => "ln_1p",
    }
}

fn python_function(f: Func, syntax: Syntax) -> String {
    let np = syntax.np();
    match (f, syntax) {
        (Func::Sigmoid, Syntax::Jax) => "jax.nn.sigmoid".into(),
        (Func::Softplus, Syntax::Jax) => "jax.nn.softplus".into(),
        (Func::Sigmoid, _) => "_sigmoid".into(),
        (Func::Softplus, _) => "_softplus".into(),
        (f, _) => format!("{np}.{}", f.name()),
    }
}

/// A Python string literal (the names are ASCII; anything else is escaped).
fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// `items` joined with `, ` in lines of at most about 88 characters after `indent`.
fn wrapped(items: &[String], indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for it in items {
        if !line.is_empty() && line.len() + it.len() + 2 > 88 - indent.len() {
            let _ = writeln!(out, "{indent}{}", line.trim_end());
            line.clear();
        }
        line.push_str(it);
        line.push_str(", ");
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{}", line.trim_end());
    }
    out
}

/// The labels of the outputs of `eom_terms`: `∂f/∂w[1]`, then `ξ_k[w[1]]`.
fn output_labels(d: &Derivation) -> Vec<String> {
    let p = &d.model.params;
    let mut labels: Vec<String> = p.iter().map(|n| format!("∂f/∂{n}")).collect();
    for k in 1..=d.xi.len() {
        labels.extend(p.iter().map(|n| super::component_label(k, n)));
    }
    labels
}

/// The body statements of a Python function: the parameters read, then the statements.
fn python_body(s: &mut String, p: &Straight, idents: &Idents) {
    for &i in &p.params {
        let _ = writeln!(s, "    {} = theta[..., {i}]", idents.params[i]);
    }
    for (name, e, written) in &p.statements {
        match written {
            Some(w) => {
                let _ = writeln!(s, "    {name} = {e}  # {w}");
            }
            None => {
                let _ = writeln!(s, "    {name} = {e}");
            }
        }
    }
}

fn python(
    s: &mut String,
    d: &Derivation,
    syntax: Syntax,
    idents: &Idents,
    loss: &Straight,
    terms: &Straight,
    funcs: &HashSet<Func>,
) {
    let np = syntax.np();
    let n = d.model.params.len();
    let k = d.xi.len();
    let jax = syntax == Syntax::Jax;
    let lib = if jax { "JAX" } else { "NumPy" };
    let _ = writeln!(
        s,
        "\"\"\"The loss, its gradient and the counter terms {} ({lib}), derived by eomderive.\n\n\
         `theta` is an array of shape (..., {n}), its last axis in the order of PARAMS:\n\
         loss(theta) has shape (...); eom_terms(theta) returns (g, xi) with g = ∇f of shape\n\
         (..., {n}) and xi of shape ({k}, ..., {n}), xi[k - 1] = ξ_k.\n\"\"\"\n",
        span(k)
    );
    if jax {
        let _ = writeln!(s, "import jax\nimport jax.numpy as jnp\n");
        let _ = writeln!(s, "jax.config.update(\"jax_enable_x64\", True)\n");
    } else {
        let _ = writeln!(s, "import numpy as np\n");
    }
    let names: Vec<String> = d.model.params.iter().map(|p| py_str(p)).collect();
    let _ = writeln!(
        s,
        "# The scalar parameters, in the order of theta's last axis."
    );
    match n {
        0 => s.push_str("PARAMS = ()\n"),
        1 => {
            let _ = writeln!(s, "PARAMS = ({},)", names[0]);
        }
        _ if names.iter().map(|x| x.len() + 2).sum::<usize>() < 70 => {
            let _ = writeln!(s, "PARAMS = ({})", names.join(", "));
        }
        _ => {
            let _ = write!(s, "PARAMS = (\n{})\n", wrapped(&names, "    "));
        }
    }
    let _ = writeln!(
        s,
        "# The loss file's initial point (None unless it gives every parameter)."
    );
    match d.model.initial_point() {
        None => s.push_str("THETA0 = None\n"),
        Some(p) => {
            let values: Vec<String> = p
                .iter()
                .map(|r| float(crate::numeric::to_f64(r), syntax))
                .collect();
            if values.iter().map(|x| x.len() + 2).sum::<usize>() < 60 {
                let _ = writeln!(s, "THETA0 = {np}.array([{}])", values.join(", "));
            } else {
                let _ = write!(s, "THETA0 = {np}.array([\n{}])\n", wrapped(&values, "    "));
            }
        }
    }
    let _ = writeln!(s, "# dθ/dt = -LEADING ∇f - η ξ_1 - ... - η^ORDER ξ_ORDER");
    let _ = writeln!(s, "ORDER = {k}");
    let _ = writeln!(
        s,
        "LEADING = {}\n\n",
        float(crate::numeric::to_f64(&d.leading), syntax)
    );

    // loss
    let _ = writeln!(s, "def loss(theta):");
    let _ = writeln!(
        s,
        "    \"\"\"f(theta) for theta of shape (..., {n}); the result has shape (...).\"\"\""
    );
    let _ = writeln!(s, "    theta = {np}.asarray(theta, dtype={np}.float64)");
    python_body(s, loss, idents);
    let _ = writeln!(s, "    return _full({}, theta)\n\n", loss.roots[0]);

    // eom_terms
    if jax {
        let _ = writeln!(s, "@jax.jit");
    }
    let _ = writeln!(s, "def eom_terms(theta):");
    let _ = writeln!(
        s,
        "    \"\"\"(g, xi): ∇f of shape (..., {n}) and {} of shape ({k}, ..., {n}).\"\"\"",
        span(k)
    );
    let _ = writeln!(s, "    theta = {np}.asarray(theta, dtype={np}.float64)");
    python_body(s, terms, idents);
    let labels = output_labels(d);
    let list = |s: &mut String, range: std::ops::Range<usize>, indent: &str| {
        for j in range {
            let _ = writeln!(s, "{indent}{},  # {}", terms.roots[j], labels[j]);
        }
    };
    if n == 0 {
        let _ = writeln!(s, "    g = {np}.zeros(theta.shape)");
        let _ = writeln!(s, "    xi = {np}.zeros(({k},) + theta.shape)");
    } else {
        let _ = writeln!(s, "    g = _stack([");
        list(s, 0..n, "        ");
        let _ = writeln!(s, "    ], theta)");
        if k == 0 {
            let _ = writeln!(s, "    xi = {np}.zeros((0,) + theta.shape)");
        } else {
            let _ = writeln!(s, "    xi = {np}.stack([");
            for j in 1..=k {
                let _ = writeln!(s, "        _stack([  # ξ_{j}");
                list(s, j * n..(j + 1) * n, "            ");
                let _ = writeln!(s, "        ], theta),");
            }
            let _ = writeln!(s, "    ])");
        }
    }
    let _ = writeln!(s, "    return g, xi\n\n");

    // helpers
    let _ = writeln!(s, "def _full(x, theta):");
    let _ = writeln!(
        s,
        "    \"\"\"x broadcast to theta's leading shape (a constant stays an array).\"\"\""
    );
    let _ = writeln!(s, "    return {np}.zeros(theta.shape[:-1]) + x\n\n");
    let _ = writeln!(s, "def _stack(parts, theta):");
    let _ = writeln!(
        s,
        "    \"\"\"The components along a new last axis, each broadcast to theta's leading shape.\"\"\""
    );
    let _ = writeln!(s, "    shape = theta.shape[:-1]");
    let _ = writeln!(
        s,
        "    return {np}.stack([{np}.broadcast_to(p, shape) for p in parts], axis=-1)"
    );
    if !jax && funcs.contains(&Func::Sigmoid) {
        let _ = writeln!(s, "\n\ndef _sigmoid(x):");
        let _ = writeln!(
            s,
            "    \"\"\"1/(1 + exp(-x)) without overflow (eomderive's own formula).\"\"\""
        );
        let _ = writeln!(s, "    e = np.exp(-np.abs(x))");
        let _ = writeln!(
            s,
            "    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))"
        );
    }
    if !jax && funcs.contains(&Func::Softplus) {
        let _ = writeln!(s, "\n\ndef _softplus(x):");
        let _ = writeln!(
            s,
            "    \"\"\"log(1 + exp(x)) without overflow (eomderive's own formula).\"\"\""
        );
        let _ = writeln!(
            s,
            "    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))"
        );
    }
}

fn rust(
    s: &mut String,
    d: &Derivation,
    idents: &Idents,
    loss: &Straight,
    terms: &Straight,
    funcs: &HashSet<Func>,
) {
    let n = d.model.params.len();
    let k = d.xi.len();
    s.push_str("#![allow(non_snake_case, unused_variables, clippy::all)]\n\n");
    let names: Vec<String> = d.model.params.iter().map(|p| format!("{p:?}")).collect();
    let _ = writeln!(s, "/// The scalar parameters, in θ's order.");
    if names.iter().map(|x| x.len() + 2).sum::<usize>() < 60 {
        let _ = writeln!(s, "pub const PARAMS: [&str; {n}] = [{}];", names.join(", "));
    } else {
        let _ = write!(
            s,
            "pub const PARAMS: [&str; {n}] = [\n{}];\n",
            wrapped(&names, "    ")
        );
    }
    let _ = writeln!(
        s,
        "/// The loss file's initial point (`None` unless it gives every parameter)."
    );
    match d.model.initial_point() {
        None => {
            let _ = writeln!(s, "pub const THETA0: Option<[f64; {n}]> = None;");
        }
        Some(p) => {
            let values: Vec<String> = p
                .iter()
                .map(|r| float(crate::numeric::to_f64(r), Syntax::Rust))
                .collect();
            if values.iter().map(|x| x.len() + 2).sum::<usize>() < 50 {
                let _ = writeln!(
                    s,
                    "pub const THETA0: Option<[f64; {n}]> = Some([{}]);",
                    values.join(", ")
                );
            } else {
                let _ = write!(
                    s,
                    "pub const THETA0: Option<[f64; {n}]> = Some([\n{}]);\n",
                    wrapped(&values, "    ")
                );
            }
        }
    }
    let _ = writeln!(s, "/// K: the counter terms are ξ_1..ξ_K.");
    let _ = writeln!(s, "pub const ORDER: usize = {k};");
    let _ = writeln!(s, "/// c in dθ/dt = -c ∇f - η ξ_1 - η² ξ_2 - ….");
    let _ = writeln!(
        s,
        "pub const LEADING: f64 = {};\n",
        float(crate::numeric::to_f64(&d.leading), Syntax::Rust)
    );
    let body = |s: &mut String, p: &Straight| {
        for &i in &p.params {
            let _ = writeln!(s, "    let {} = theta[{i}];", idents.params[i]);
        }
        for (name, e, written) in &p.statements {
            match written {
                Some(w) => {
                    let _ = writeln!(s, "    let {name} = {e}; // {w}");
                }
                None => {
                    let _ = writeln!(s, "    let {name} = {e};");
                }
            }
        }
    };
    let _ = writeln!(s, "/// The loss f(θ).");
    let _ = writeln!(s, "pub fn loss(theta: &[f64; {n}]) -> f64 {{");
    body(s, loss);
    let _ = writeln!(s, "    {}\n}}\n", loss.roots[0]);
    let _ = writeln!(
        s,
        "/// Writes the gradient ∇f(θ) to `g` and ξ_k(θ) to `xi[k - 1]`, k = 1..{k}."
    );
    let _ = writeln!(
        s,
        "pub fn eom_terms(theta: &[f64; {n}], g: &mut [f64; {n}], xi: &mut [[f64; {n}]; {k}]) {{"
    );
    body(s, terms);
    let labels = output_labels(d);
    for (j, (e, label)) in terms.roots.iter().zip(&labels).enumerate() {
        if j < n {
            let _ = writeln!(s, "    g[{j}] = {e}; // {label}");
        } else {
            let _ = writeln!(s, "    xi[{}][{}] = {e}; // {label}", j / n - 1, j % n);
        }
    }
    s.push_str("}\n");
    if funcs.contains(&Func::Sigmoid) {
        s.push_str(
            "\n/// 1/(1 + e^(-x)) without overflow (eomderive's own formula).\n\
             fn sigmoid(x: f64) -> f64 {\n    \
             if x >= 0.0 {\n        1.0 / (1.0 + (-x).exp())\n    } else {\n        \
             let e = x.exp();\n        e / (1.0 + e)\n    }\n}\n",
        );
    }
    if funcs.contains(&Func::Softplus) {
        s.push_str(
            "\n/// log(1 + e^x) without overflow (eomderive's own formula).\n\
             fn softplus(x: f64) -> f64 {\n    x.max(0.0) + (-x.abs()).exp().ln_1p()\n}\n",
        );
    }
}
