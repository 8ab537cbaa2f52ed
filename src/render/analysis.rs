//! The analyses (gradient fields, the modified loss, invariances and their laws) in text,
//! LaTeX and as JSON values.

use std::collections::BTreeMap;
use std::fmt::Write;

use num_rational::BigRational;
use num_traits::{One, Signed};
use serde_json::{json, Value};

use super::latex::latex_rational;
use super::trees::superscript;
use super::{signed_terms, significant, Style};
use crate::analysis::{Analysis, Decided, Field, Invariance, Kind, Potential};
use crate::series::{Forest, Law, Method, Poly, Scalar, TreeId, Vector};

/// A value to six significant digits, trailing zeros dropped: `-9.09824`, `0.000450141`.
fn number(x: f64) -> String {
    let s = significant(x, 6);
    match s.split_once('e') {
        None if s.contains('.') => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        _ => s,
    }
}

/// How a fact was decided, as the output says it.
fn decided(d: Decided) -> String {
    match d {
        Decided::Exactly => "exactly, for every loss".into(),
        Decided::Symbolically => "symbolically".into(),
        Decided::Numerically { points } => format!("numerically, at {points} sample points"),
    }
}

fn decided_json(d: Decided) -> Value {
    match d {
        Decided::Exactly => json!({"how": "exactly"}),
        Decided::Symbolically => json!({"how": "symbolically"}),
        Decided::Numerically { points } => json!({"how": "numerically", "points": points}),
    }
}

/// `x^k` as a superscript power (`η²`, or `\eta^{2}`), empty for k = 0.
fn power(style: Style, x: &str, k: u32) -> String {
    match (style, k) {
        (_, 0) => String::new(),
        (_, 1) => x.to_string(),
        (Style::Text, k) => format!("{x}{}", superscript(k as usize)),
        (Style::Latex, k) => format!("{x}^{{{k}}}"),
    }
}

fn eta(style: Style) -> &'static str {
    match style {
        Style::Text => "η",
        Style::Latex => r"\eta",
    }
}

fn lambda(style: Style) -> &'static str {
    match style {
        Style::Text => "λ",
        Style::Latex => r"\lambda",
    }
}

fn rational(style: Style, c: &BigRational) -> String {
    match style {
        Style::Text => c.to_string(),
        Style::Latex => latex_rational(c),
    }
}

/// A vector of a law: θ, g, H v, ∇^{m+1}f(v, w, …).
fn vector(style: Style, v: &Vector) -> String {
    match (style, v) {
        (Style::Text, Vector::Theta) => "θ".into(),
        (Style::Latex, Vector::Theta) => r"\theta".into(),
        (Style::Text, Vector::D(c)) if c.is_empty() => "g".into(),
        (Style::Latex, Vector::D(c)) if c.is_empty() => r"\nabla f".into(),
        (Style::Text, Vector::D(c)) if c.len() == 1 => format!("H {}", vector(style, &c[0])),
        (Style::Latex, Vector::D(c)) if c.len() == 1 => {
            format!(r"\nabla^{{2}} f\,{}", vector(style, &c[0]))
        }
        (Style::Text, Vector::D(c)) => format!(
            "∇{}f({})",
            superscript(c.len() + 1),
            c.iter()
                .map(|x| vector(style, x))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Style::Latex, Vector::D(c)) => format!(
            r"\nabla^{{{}}} f[{}]",
            c.len() + 1,
            c.iter()
                .map(|x| vector(style, x))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The group's name in a formula.
fn group(style: Style, inv: &Invariance) -> String {
    match style {
        Style::Text => inv.name.clone(),
        Style::Latex => latex_group(&inv.name),
    }
}

fn latex_group(name: &str) -> String {
    let name = name.replace('·', r"\cdot");
    match name.split_once('[') {
        Some((base, rest)) if name != "θ" => {
            format!(r"{}_{{{}}}", base, rest.trim_end_matches(']'))
        }
        _ if name == "θ" => r"\theta".into(),
        _ => name,
    }
}

/// v restricted to the group: `g_w`, `(H g)_w`; unchanged for every parameter.
fn projected(style: Style, v: &Vector, inv: &Invariance) -> String {
    let text = vector(style, v);
    if inv.whole {
        return text;
    }
    let sub = match style {
        Style::Text => format!("_{}", inv.name),
        Style::Latex => format!("_{{{}}}", latex_group(&inv.name)),
    };
    // `g_w` in text; in LaTeX `(\nabla f)_{w}`, since `\nabla f_{w}` would read as ∇(f_w).
    let simple =
        matches!(v, Vector::Theta) || (style == Style::Text && *v == Vector::D(Vec::new()));
    if simple {
        format!("{text}{sub}")
    } else {
        format!("({text}){sub}")
    }
}

fn scalar(style: Style, s: &Scalar, inv: &Invariance) -> String {
    let a = group(style, inv);
    match (style, s) {
        (Style::Text, Scalar::NormSq) => format!("‖{a}‖²"),
        (Style::Latex, Scalar::NormSq) => format!(r"\lVert {a}\rVert^{{2}}"),
        (Style::Text, Scalar::Sum) => format!("1·{a}"),
        (Style::Latex, Scalar::Sum) => format!(r"\mathbf{{1}}\cdot {a}"),
        (Style::Text, Scalar::Pair(x, y)) if x == y => format!("‖{}‖²", projected(style, x, inv)),
        (Style::Latex, Scalar::Pair(x, y)) if x == y => {
            format!(r"\lVert {}\rVert^{{2}}", projected(style, x, inv))
        }
        (Style::Text, Scalar::Pair(x, y)) => {
            format!("{}ᵀ {}", projected(style, x, inv), vector(style, y))
        }
        (Style::Latex, Scalar::Pair(x, y)) => format!(
            r"{}^{{\top}} {}",
            projected(style, x, inv),
            vector(style, y)
        ),
    }
}

/// A monomial c η^a λ^b without its sign: `2/3 η²λ³`, `ηλ²`, `2`.
fn monomial(style: Style, a: u32, b: u32, c: &BigRational) -> String {
    let sep = if style == Style::Text { "" } else { " " };
    let vars = [power(style, eta(style), a), power(style, lambda(style), b)]
        .into_iter()
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(sep);
    let m = c.abs();
    match (m.is_one(), vars.is_empty()) {
        (true, true) => "1".into(),
        (true, false) => vars,
        (false, true) => rational(style, &m),
        (false, false) if style == Style::Text && m.is_integer() => format!("{m}{vars}"),
        (false, false) => format!("{} {vars}", rational(style, &m)),
    }
}

/// The coefficient of one scalar, up to η^order: (negative, text); several monomials are
/// parenthesised, with a common minus sign taken out (`-(2λ + ηλ²)`).
fn coefficient(style: Style, p: &Poly, order: u32) -> Option<(bool, String)> {
    let mut terms: Vec<(&(u32, u32), &BigRational)> =
        p.iter().filter(|((a, _), _)| *a <= order).collect();
    terms.sort_by_key(|((a, b), _)| (*a, *b));
    if terms.is_empty() {
        return None;
    }
    let all_negative = terms.iter().all(|(_, c)| c.is_negative());
    if terms.len() == 1 {
        let ((a, b), c) = terms[0];
        let m = monomial(style, *a, *b, c);
        return Some((c.is_negative(), if m == "1" { String::new() } else { m }));
    }
    let mut out = String::new();
    for (i, ((a, b), c)) in terms.iter().enumerate() {
        let negative = c.is_negative() != all_negative;
        let sign = match (i, negative) {
            (0, true) => "-",
            (0, false) => "",
            (_, true) => " - ",
            (_, false) => " + ",
        };
        let _ = write!(out, "{sign}{}", monomial(style, *a, *b, c));
    }
    Some((all_negative, format!("({out})")))
}

/// The right-hand side of a law up to η^order, one coefficient per scalar, with
/// `+ O(η^{order+1})` when `tail`.
fn series(style: Style, law: &Law, order: u32, inv: &Invariance, tail: bool) -> String {
    let mut s = String::new();
    for (scalar_, p) in &law.terms {
        let Some((negative, c)) = coefficient(style, p, order) else {
            continue;
        };
        let sign = match (s.is_empty(), negative) {
            (true, true) => "-",
            (true, false) => "",
            (false, true) => " - ",
            (false, false) => " + ",
        };
        let sep = if c.is_empty() { "" } else { " " };
        let _ = write!(s, "{sign}{c}{sep}{}", scalar(style, scalar_, inv));
    }
    if s.is_empty() {
        s.push('0');
    }
    if tail {
        let _ = write!(s, " + O({})", power(style, eta(style), order + 1));
    }
    s
}

/// The quantity: `‖w‖²` or `1·w`.
fn quantity(style: Style, inv: &Invariance) -> String {
    scalar(
        style,
        match inv.kind {
            Kind::Scale => &Scalar::NormSq,
            Kind::Translation => &Scalar::Sum,
        },
        inv,
    )
}

/// The GD step law, `‖w‖²_{n+1} = (1 - ηλ)² ‖w‖²_n + η² ‖g_w‖²_n`.
fn step(style: Style, inv: &Invariance, law: &crate::series::Law) -> String {
    // The value at iterate n: `‖w‖²_n`, `{\lVert w\rVert^{2}}_{n}`.
    let at = |t: String, n: &str| match style {
        Style::Text if n.len() == 1 => format!("{t}_{n}"),
        Style::Text => format!("{t}_{{{n}}}"),
        Style::Latex => format!("{{{t}}}_{{{n}}}"),
    };
    let rhs: Vec<String> = law
        .terms
        .iter()
        .map(|(s, p)| {
            let text = at(scalar(style, s, inv), "n");
            match gd_factor(style, p) {
                f if f.is_empty() => text,
                f => format!("{f} {text}"),
            }
        })
        .collect();
    format!("{} = {}", at(quantity(style, inv), "n+1"), rhs.join(" + "))
}

/// A GD coefficient (polynomial in η, λ): `(1 - ηλ)²`, `η²`, or the polynomial written out.
fn gd_factor(style: Style, p: &BTreeMap<(u32, u32), BigRational>) -> String {
    let one = BigRational::one();
    let (e, l) = (eta(style), lambda(style));
    let sep = if style == Style::Text { "" } else { " " };
    // (1 − ηλ)^m for m = 1, 2.
    for m in 1..=2u32 {
        let binom = |j: u32| if m == 2 && j == 1 { 2 } else { 1 };
        let expected: BTreeMap<(u32, u32), BigRational> = (0..=m)
            .map(|j| {
                let c =
                    BigRational::from_integer((binom(j) * if j % 2 == 1 { -1 } else { 1 }).into());
                ((j, j), c)
            })
            .collect();
        if *p == expected {
            let sq = if m == 2 {
                power(style, ")", 2)
            } else {
                ")".into()
            };
            return format!("(1 - {e}{sep}{l}{sq}");
        }
    }
    if p.len() == 1 {
        let ((a, b), c) = p.iter().next().unwrap();
        let mono = format!("{}{}", power(style, e, *a), power(style, l, *b));
        return match (c == &one, mono.is_empty()) {
            (true, _) => mono,
            (false, true) => rational(style, c),
            (false, false) => format!("{} {mono}", rational(style, c)),
        };
    }
    let terms: Vec<String> = p
        .iter()
        .map(|((a, b), c)| {
            format!(
                "{} {}{}",
                rational(style, c),
                power(style, e, *a),
                power(style, l, *b)
            )
        })
        .collect();
    format!("({})", terms.join(" + "))
}

/// Gradient flow's solution when its law is d q/dt = c λ q: `e^{-2λt}`.
fn flow_solution(style: Style, inv: &Invariance) -> Option<String> {
    let terms = inv.law.at_order(0);
    let own = match inv.kind {
        Kind::Scale => Scalar::NormSq,
        Kind::Translation => Scalar::Sum,
    };
    let [(s, p)] = terms.as_slice() else {
        return None;
    };
    if *s != own || p.len() != 1 {
        return None;
    }
    let (k, c) = p.iter().next().unwrap();
    let sign = if c.is_negative() { "-" } else { "" };
    let rate = format!("{sign}{}", monomial(style, 0, *k, c));
    let q = quantity(style, inv);
    Some(match style {
        Style::Text => format!("{q}(t) = e^({rate}t) {q}(0)"),
        Style::Latex => format!(r"{q}(t) = e^{{{rate} t}}\, {q}(0)"),
    })
}

/// True when the law is d q/dt = −Σ_k λ^{k+1} η^k/(k+1) q for every order derived: the
/// series of (1/η) ln(1 − ηλ), which reproduces GD's factor 1 − ηλ exactly.
fn is_log_series(inv: &Invariance, order: u32) -> bool {
    inv.kind == Kind::Translation
        && !inv.law.is_zero()
        && (0..=order).all(|k| {
            let t = inv.law.at_order(k);
            let want = -BigRational::new(1.into(), (k as i64 + 1).into());
            t.len() == 1
                && t[0].0 == Scalar::Sum
                && t[0].1.len() == 1
                && t[0].1.get(&(k + 1)) == Some(&want)
        })
}

/// The law lines of one invariance, text or LaTeX: (label, formula).
fn law_lines(
    style: Style,
    inv: &Invariance,
    order: u32,
    method: Method,
) -> Vec<(&'static str, String)> {
    let q = quantity(style, inv);
    let d = |rhs: String| match style {
        Style::Text if inv.kind == Kind::Translation => format!("d({q})/dt = {rhs}"),
        Style::Text => format!("d{q}/dt = {rhs}"),
        Style::Latex => format!(r"\frac{{d}}{{dt}} {q} = {rhs}"),
    };
    let mut lines = Vec::new();
    let mut gf = d(series(style, &inv.law, 0, inv, false));
    if let Some(sol) = flow_solution(style, inv) {
        gf = match style {
            Style::Text => format!("{gf}, so {sol}"),
            Style::Latex => format!(r"{gf},\quad {sol}"),
        };
    }
    lines.push(("gradient flow", gf));
    let mut eom = d(series(style, &inv.law, order, inv, !inv.law.is_zero()));
    if inv.law.is_zero() {
        eom = match style {
            Style::Text => format!("{eom} at every order"),
            Style::Latex => format!(r"{eom}\ \text{{at every order}}"),
        };
    } else if is_log_series(inv, order) {
        eom = match style {
            Style::Text => {
                format!("{eom}: the series of (1/η) ln(1 - ηλ) {q}, GD's factor exactly")
            }
            Style::Latex => format!(r"{eom}\ \to\ \tfrac{{1}}{{\eta}} \ln(1 - \eta\lambda)\, {q}"),
        };
    }
    lines.push(("EoM", eom));
    match &inv.step {
        Some(law) => lines.push(("GD", step(style, inv, law))),
        None => {
            let why = match method.history() {
                1 => "no closed one-step law (the step takes the gradient at a second point)",
                _ => "no closed one-step law (the step reads the velocity θ_n - θ_{n-1})",
            };
            let why = match style {
                Style::Text => format!("{why}; --check tracks it along the real iterates"),
                Style::Latex => format!(r"\text{{{}}}", why.replace('_', r"\_")),
            };
            lines.push((method.name(), why));
        }
    }
    lines
}

/// A tree scalar g·G(τ): `‖g‖²`, `gᵀ H g`, `∇³f(g, g, g)`.
fn tree_scalar(style: Style, forest: &Forest, t: TreeId) -> String {
    let children = forest.children(t);
    let v = |c: TreeId| match style {
        Style::Text => super::trees::text(forest, c),
        Style::Latex => super::trees::latex(forest, c),
    };
    match (style, children.len()) {
        (Style::Text, 0) => "‖g‖²".into(),
        (Style::Latex, 0) => r"\lVert\nabla f\rVert^{2}".into(),
        (Style::Text, 1) => format!("gᵀ H {}", v(children[0])),
        (Style::Latex, 1) => format!(r"(\nabla f)^{{\top}} \nabla^{{2}} f\,{}", v(children[0])),
        (Style::Text, m) => format!(
            "∇{}f(g, {})",
            superscript(m + 1),
            children
                .iter()
                .map(|&c| v(c))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (Style::Latex, m) => format!(
            r"\nabla^{{{}}} f[\nabla f, {}]",
            m + 1,
            children
                .iter()
                .map(|&c| v(c))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Σ c · scalar, or `0`.
fn potential(style: Style, forest: &Forest, terms: &[(TreeId, BigRational)]) -> String {
    let terms: Vec<(BigRational, String)> = terms
        .iter()
        .map(|(t, c)| (c.clone(), tree_scalar(style, forest, *t)))
        .collect();
    signed_terms(&terms, |c| rational(style, c))
}

/// Φ_k written out: tree scalars, or SGD's (1/(4m)) Σ_a ‖g_a‖² over c (the leading
/// coefficient, 1 for SGD).
fn potential_of(style: Style, a: &Analysis, p: &Potential, c: &BigRational) -> String {
    match p.batches {
        Some(m) => {
            let q = BigRational::new(1.into(), (4 * m as i64).into()) / c;
            match style {
                Style::Text => format!("{} Σ_a ‖g_a‖²", rational(style, &q)),
                Style::Latex => format!(
                    r"{} \sum_{{a}} \lVert \nabla f_{{a}} \rVert^{{2}}",
                    rational(style, &q)
                ),
            }
        }
        None => {
            let terms: Vec<(TreeId, BigRational)> =
                p.terms.iter().map(|(t, x)| (*t, x / c)).collect();
            potential(style, &a.forest, &terms)
        }
    }
}

/// Shuffled SGD's first-order modified loss in Smith et al.'s terms: GD's regulariser and
/// what the batches add, (η/4)‖g‖² + (η/(4m)) Σ_a ‖g_a − g‖².
fn batch_regulariser(style: Style, m: usize) -> String {
    let q = BigRational::new(1.into(), (4 * m as i64).into());
    match style {
        Style::Text => format!("f + η/4 ‖g‖² + η/{} Σ_a ‖g_a - g‖²", q.denom()),
        Style::Latex => format!(
            r"f + \frac{{\eta}}{{4}} \lVert \nabla f \rVert^{{2}} + \frac{{\eta}}{{{}}} \sum_{{a}} \lVert \nabla f_{{a}} - \nabla f \rVert^{{2}}",
            q.denom()
        ),
    }
}

/// The modified loss f + η Φ_1 + … + η^j Φ_j for the first j counter terms with potentials.
fn modified_loss(style: Style, a: &Analysis) -> Option<String> {
    let j = a.modified_loss_order();
    if j == 0 {
        return None;
    }
    let mut s = "f".to_string();
    for f in &a.fields[..j] {
        let p = f.potential.as_ref().unwrap();
        if let Some(m) = p.batches {
            s = batch_regulariser(style, m);
            continue;
        }
        if p.terms.is_empty() {
            continue;
        }
        // dθ/dt = −c ∇f − Σ η^k ∇Φ_k = −c ∇(f + Σ η^k Φ_k / c).
        let e = power(style, eta(style), f.k as u32);
        let _ = write!(s, " + {e} ({})", potential_of(style, a, p, &a.leading));
    }
    Some(s)
}

/// `-∇f̃` of the modified loss's flow, with the leading coefficient of a momentum method
/// (`-10 ∇f̃`).
fn minus_gradient(style: Style, a: &Analysis) -> String {
    let c = if a.leading.is_one() {
        String::new()
    } else {
        format!("{} ", rational(style, &a.leading))
    };
    match style {
        Style::Text => format!("-{c}∇f̃"),
        Style::Latex => format!(r"-{c}\nabla\tilde f"),
    }
}

fn field_line(style: Style, a: &Analysis, f: &Field, params: &[String]) -> String {
    let k = f.k;
    let mut s = String::new();
    match (&f.potential, f.gradient) {
        (Some(p), _) => {
            let how = match (p.batches, f.generic) {
                (Some(_), true) => format!(
                    "exactly, for every loss: the coloured table's ξ_1 is (1/(2m)) Σ_a H_a g_a; verified on this loss {}",
                    decided(p.decided)
                ),
                _ => decided(p.decided),
            };
            let _ = write!(
                s,
                "ξ_{k} = ∇({}) ({how})",
                potential_of(style, a, p, &BigRational::one()),
            );
            if p.batches.is_some() {
                let _ = write!(
                    s,
                    "; Smith, Dherin, Barrett & De (2021): the mean iterate of random reshuffling follows −∇ of the modified loss below"
                );
            } else if !f.generic {
                let _ = write!(
                    s,
                    "; a gradient for this loss, not for a general one (Jacobian symmetric {})",
                    decided(f.decided)
                );
            }
        }
        (None, true) if f.generic => {
            let _ = write!(
                s,
                "ξ_{k} is a gradient field for every loss (exactly, on coloured trees: (1/(2m)) Σ_a H_a g_a), \
                 but its potential (1/(4m)) Σ_a ‖g_a‖² did not verify on this loss: this is a defect of eomderive, please report it"
            );
        }
        (None, true) => {
            let _ = write!(
                s,
                "ξ_{k} is a gradient field for this loss (Jacobian symmetric {}), but its potential is not a combination of tree scalars",
                decided(f.decided)
            );
        }
        (None, false) => {
            // One point where the Jacobian is not symmetric settles it; the witness follows.
            let how = match f.decided {
                Decided::Numerically { .. } => "numerically".to_string(),
                d => decided(d),
            };
            let _ = write!(
                s,
                "ξ_{k} is not a gradient field: its Jacobian is not symmetric ({how})"
            );
            if let Some(w) = &f.asymmetry {
                let at: Vec<String> = params
                    .iter()
                    .zip(&w.point)
                    .map(|(n, v)| format!("{n} = {}", number(*v)))
                    .collect();
                let _ = write!(
                    s,
                    ": ∂ξ_{k}[{}]/∂{} = {} but ∂ξ_{k}[{}]/∂{} = {} at {}",
                    params[w.i],
                    params[w.j],
                    number(w.d_ij),
                    params[w.j],
                    params[w.i],
                    number(w.d_ji),
                    at.join(", ")
                );
            } else {
                s.push_str(
                    " (vᵀJu ≠ uᵀJv for random directions u, v; no pair named within the analyses' budget)",
                );
            }
        }
    }
    s
}

/// The modified loss written out in the parameters and η, in both syntaxes.
pub(crate) struct Formula {
    pub text: String,
    pub latex: String,
}

/// [`Formula`] of a derivation whose printed form has it, when it reads without names.
pub(crate) fn formula(d: &crate::Derivation) -> Option<Formula> {
    let id = d.printed.modified_loss?;
    let m = &d.model;
    let mut params = m.params.clone();
    params.push("η".into());
    let p = super::Printer::reader(&m.graph, &params, &[], &[id]);
    if !p.bindings().is_empty() {
        return None;
    }
    Some(Formula {
        text: p.expr(id),
        latex: p.styled(Style::Latex, id),
    })
}

/// The analyses as text lines (appended to the text report).
pub(crate) fn text(
    out: &mut String,
    a: &Analysis,
    params: &[String],
    order: usize,
    decay: Option<&BigRational>,
    formula: Option<&Formula>,
) {
    if !a.fields.is_empty() {
        let _ = writeln!(out, "gradient fields (g = ∇f, H = ∇²f):");
        for f in &a.fields {
            let _ = writeln!(out, "  {}", field_line(Style::Text, a, f, params));
        }
        if let Some(m) = modified_loss(Style::Text, a) {
            let j = a.modified_loss_order();
            let _ = writeln!(
                out,
                "  modified loss: dθ/dt = {} + O({}) with f̃ = {m}",
                minus_gradient(Style::Text, a),
                power(Style::Text, "η", j as u32 + 1)
            );
            if let Some(f) = formula {
                let _ = writeln!(out, "    f̃ = {}", f.text);
            }
            if a.fields
                .first()
                .is_some_and(|f| f.potential.as_ref().is_some_and(|p| p.batches.is_some()))
            {
                let _ = writeln!(
                    out,
                    "    (η/4 ‖g‖² is GD's implicit regulariser; η/(4m) Σ_a ‖g_a - g‖², the variance of the minibatch gradients, is what SGD with random reshuffling adds)"
                );
            }
        }
    }
    if a.method == crate::series::Method::Sgd {
        let _ = writeln!(
            out,
            "invariances: not analysed for SGD (their laws are derived for one-batch methods)"
        );
        return;
    }
    if a.invariances.is_empty() {
        let _ = writeln!(
            out,
            "invariances: none found (scale or translation, of θ, arrays, rows or columns)"
        );
        return;
    }
    let _ = writeln!(out, "invariances:");
    for inv in &a.invariances {
        let what = match inv.kind {
            Kind::Scale => format!(
                "scale invariance of {} (f(c {0}) = f({0}) for c > 0; {0}·∇f = 0)",
                inv.name
            ),
            Kind::Translation => format!(
                "translation invariance of {} (f({0} + c 1) = f({0}); 1·∇f = 0 over {0})",
                inv.name
            ),
        };
        let _ = writeln!(out, "  {what}, {}", decided(inv.decided));
        if let Some(l) = decay {
            let _ = writeln!(
                out,
                "    with weight decay λ = {l} (g is the gradient without it)"
            );
        }
        for (label, line) in law_lines(Style::Text, inv, order as u32, a.method) {
            let _ = writeln!(out, "    {label:<13} {line}");
        }
    }
}

/// The analyses as rows of the LaTeX report's `aligned` block.
pub(crate) fn latex_rows(a: &Analysis, order: usize, formula: Option<&Formula>) -> Vec<String> {
    let mut rows = Vec::new();
    if let Some(m) = modified_loss(Style::Latex, a) {
        rows.push(format!(
            r"&\text{{modified loss (the EoM is }}{} + O({})\text{{)}}",
            minus_gradient(Style::Latex, a),
            power(Style::Latex, r"\eta", a.modified_loss_order() as u32 + 1)
        ));
        rows.push(format!(r"\tilde f &= {m}"));
        if let Some(f) = formula {
            rows.push(format!("&= {}", f.latex));
        }
    }
    for inv in &a.invariances {
        let kind = match inv.kind {
            Kind::Scale => "scale",
            Kind::Translation => "translation",
        };
        rows.push(format!(
            r"&\text{{{kind} invariance of }} {}",
            latex_group(&inv.name)
        ));
        for (label, line) in law_lines(Style::Latex, inv, order as u32, a.method) {
            rows.push(format!(r"&\text{{{label}: }} {line}"));
        }
    }
    rows
}

/// The analyses' JSON fields: `gradient_fields`, `modified_loss`, `invariances`.
pub(crate) fn json(
    a: &Analysis,
    params: &[String],
    order: usize,
    formula: Option<&Formula>,
) -> (Value, Value, Value) {
    let fields = a
        .fields
        .iter()
        .map(|f| {
            let mut o = json!({
                "k": f.k,
                "gradient": f.gradient,
                "generic": f.generic,
                "decided": decided_json(f.decided),
            });
            if let Some(p) = &f.potential {
                o["potential"] = json!({
                    "text": potential_of(Style::Text, a, p, &BigRational::one()),
                    "latex": potential_of(Style::Latex, a, p, &BigRational::one()),
                    "decided": decided_json(p.decided),
                });
            }
            if let Some(w) = &f.asymmetry {
                let at: serde_json::Map<String, Value> = params
                    .iter()
                    .zip(&w.point)
                    .map(|(n, v)| (n.clone(), json!(v)))
                    .collect();
                o["asymmetry"] = json!({
                    "component": params[w.i],
                    "parameter": params[w.j],
                    "at": at,
                    "d_component_d_parameter": w.d_ij,
                    "d_parameter_d_component": w.d_ji,
                });
            }
            o
        })
        .collect::<Vec<_>>();
    let modified = match modified_loss(Style::Text, a) {
        Some(t) => {
            let mut o = json!({
                "order": a.modified_loss_order(),
                "text": t,
                "latex": modified_loss(Style::Latex, a),
            });
            if let Some(f) = formula {
                o["formula"] = json!({"text": f.text, "latex": f.latex});
            }
            o
        }
        None => Value::Null,
    };
    let invariances = a
        .invariances
        .iter()
        .map(|inv| {
            let lines = law_lines(Style::Text, inv, order as u32, a.method);
            let latex = law_lines(Style::Latex, inv, order as u32, a.method);
            json!({
                "kind": match inv.kind { Kind::Scale => "scale", Kind::Translation => "translation" },
                "name": inv.name,
                "group": inv.group.iter().map(|&i| params[i].clone()).collect::<Vec<_>>(),
                "decided": decided_json(inv.decided),
                "law": lines[1].1,
                "gradient_flow": lines[0].1,
                "gd": lines[2].1,
                "latex": {"gradient_flow": latex[0].1, "law": latex[1].1, "gd": latex[2].1},
            })
        })
        .collect::<Vec<_>>();
    (Value::Array(fields), modified, Value::Array(invariances))
}
