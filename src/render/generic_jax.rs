//! The generic (tree) form as emitted code: a standalone Python module that computes ξ_1..ξ_K
//! for any JAX loss by nested `jax.jvp` of `jax.grad(loss_fn)` (DESIGN.md §4.5).

use std::fmt::Write as _;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::trees;
use crate::series::{Forest, GenericSeries, TreeId};

/// The generic counter terms as a standalone JAX module (Python source, UTF-8).
///
/// The module defines
///
/// - `ORDER = K`, `LEADING` (c in F_0 = −c ∇f; 1 for GD) and `TERMS` (per order, each term's
///   tree in bracket notation, its elementary differential and its exact coefficient);
/// - `xi(loss_fn, params, order=ORDER)`: `[ξ_1, …, ξ_order]` at `params`, each a pytree shaped
///   like `params` (any pytree of float arrays; it is flattened with
///   `jax.flatten_util.ravel_pytree`);
/// - `eom_rhs(loss_fn, eta, order=ORDER)`: the truncated equation of motion's right-hand side
///   `params ↦ −c ∇f − Σ_{k ≤ order} η^k ξ_k` (order 0 is gradient flow), for an ODE solver.
///
/// Both are jit-able (`jax.jit(lambda p: xi(loss_fn, p))`). The body is straight-line code:
/// every tree that a term or a larger tree needs is computed once per call, as
/// `Gi = _d(g, theta, Gj, …)`, the m-th directional derivative of the gradient by m nested
/// `jax.jvp`s, with a comment naming the tree (`# [•] : H g`); trees whose coefficient is zero
/// are named in a comment and not computed. Coefficients are the exact fractions, written as a
/// Python division of integers (correctly rounded to float64, which the module enables).
///
/// Any [`GenericSeries`] works: GD's table ([`crate::generic`]) or an optimizer's with its
/// parameter given ([`crate::series::optimizer_series`]), whose `leading` becomes `LEADING`.
/// The text grows linearly with the number of trees (A000081: 286 trees with 10 nodes) and a
/// node with m children costs m nested jvps, so orders above about 6 are impractical in JAX.
///
/// ```
/// let s = eomderive::generic(2).unwrap();
/// let py = eomderive::render::generic_jax(&s);
/// assert!(py.contains("ORDER = 2\n"));
/// assert!(py.contains("def xi(loss_fn, params, order=ORDER):"));
/// assert!(py.contains("def eom_rhs(loss_fn, eta, order=ORDER):"));
/// assert!(py.contains("G1 = _d(g, theta, G0)  # [•] : H g"));
/// assert!(py.contains("G2 = _d(g, theta, G0, G0)  # [••] : ∇³f(g, g)"));
/// assert!(py.contains("(1 / 12) * G2"));
/// assert_eq!(py, eomderive::render::generic_jax(&s)); // deterministic
/// ```
pub fn generic_jax(series: &GenericSeries) -> String {
    let forest = &series.forest;
    let order = series.xi.len();

    // Every tree a term needs, found by walking down from the terms.
    let mut needed = vec![false; forest.len()];
    let mut stack: Vec<TreeId> = series.xi.iter().flatten().map(|&(t, _)| t).collect();
    let mut computed: Vec<TreeId> = Vec::new();
    while let Some(t) = stack.pop() {
        if std::mem::replace(&mut needed[t.index()], true) {
            continue;
        }
        let children = forest.children(t);
        if !children.is_empty() {
            computed.push(t);
        }
        stack.extend_from_slice(children);
    }
    // Computed in order of size (children first), canonical order within a size; the leaf
    // (there is one leaf in a forest of canonical trees) is G0, the gradient.
    computed.sort_by(|&a, &b| {
        forest
            .size(a)
            .cmp(&forest.size(b))
            .then(forest.canonical_cmp(a, b))
    });
    let mut name = vec![0; forest.len()];
    for (k, &t) in computed.iter().enumerate() {
        name[t.index()] = k + 1;
    }

    // Every tree of each order, zero coefficients included, for the comments and header.
    let mut all = forest.clone();
    let every: Vec<Vec<TreeId>> = (1..=order).map(|k| all.trees_of_order(k + 1)).collect();

    let mut s = String::new();
    header(&mut s, series, &every);
    prelude(&mut s, series, &all);

    // The straight-line body.
    s.push_str(
        "\n\ndef _terms(g, theta, order):\n    \
         \"\"\"(∇f, [ξ_1, …, ξ_order]) at the flat point theta; g is the flat gradient.\"\"\"\n    \
         G0 = g(theta)  # • : g\n    \
         xi = []\n",
    );
    for (k, terms) in series.xi.iter().enumerate() {
        let k = k + 1;
        let _ = writeln!(
            s,
            "    if order < {k}:\n        return G0, xi\n    \
             # ξ_{k}: trees with {} nodes, {} of {} with a nonzero coefficient",
            k + 1,
            terms.len(),
            every[k - 1].len()
        );
        for &t in computed.iter().filter(|&&t| forest.size(t) == k + 1) {
            let args: Vec<String> = std::iter::once("theta".to_string())
                .chain(
                    forest
                        .children(t)
                        .iter()
                        .map(|c| format!("G{}", name[c.index()])),
                )
                .collect();
            let role = if terms.iter().any(|&(u, _)| u == t) {
                ""
            } else {
                " (coefficient 0 here; needed by larger trees)"
            };
            let _ = writeln!(
                s,
                "    G{} = _d(g, {})  # {} : {}{role}",
                name[t.index()],
                args.join(", "),
                forest.bracket(t),
                trees::text(forest, t)
            );
        }
        for &t in &every[k - 1] {
            if !needed.get(t.index()).copied().unwrap_or(false) {
                let _ = writeln!(
                    s,
                    "    # {} : {} has coefficient 0",
                    all.bracket(t),
                    trees::text(&all, t)
                );
            }
        }
        if terms.is_empty() {
            s.push_str("    xi.append(jnp.zeros_like(theta))\n");
        } else {
            s.push_str("    xi.append(\n");
            for (i, (t, c)) in terms.iter().enumerate() {
                let sign = match (i, c.is_negative()) {
                    (0, true) => "-",
                    (0, false) => "",
                    (_, true) => "- ",
                    (_, false) => "+ ",
                };
                let magnitude = c.abs();
                let factor = if magnitude.is_one() {
                    String::new()
                } else {
                    format!("{} * ", py_float(&magnitude))
                };
                let _ = writeln!(s, "        {sign}{factor}G{}", name[t.index()]);
            }
            s.push_str("    )\n");
        }
    }
    s.push_str("    return G0, xi\n");
    s.push_str(API);
    s
}

/// The comment block at the top: what, from where, how many trees, how to use.
fn header(s: &mut String, series: &GenericSeries, every: &[Vec<TreeId>]) {
    let order = series.xi.len();
    let rhs = if series.leading.is_one() {
        "-∇f".to_string()
    } else {
        format!("-({}) ∇f", series.leading)
    };
    let _ = writeln!(
        s,
        "# Generated by eomderive {} from its generic (tree) table, order {order}.",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        s,
        "# The counter terms ξ_1..ξ_{order} of the equation of motion (DESIGN.md §2.1, §2.2, §4.5)"
    );
    let _ = writeln!(s, "#     dθ/dt = {rhs}{}", eom_tail(order));
    s.push_str(
        "# ξ_k = Σ_τ c(τ) G(τ) over the rooted trees τ with k+1 nodes, c(τ) exact: G(leaf) = g = ∇f,\n\
         # and a node with m children is ∇^m g = ∇^{m+1} f applied to its children's G, computed\n\
         # below by m nested jax.jvp of jax.grad(loss_fn), each distinct tree once per call.\n",
    );
    s.push_str("# Trees per order (all / with a nonzero coefficient):");
    for (k, (terms, all)) in series.xi.iter().zip(every).enumerate() {
        let _ = write!(s, " ξ_{}: {}/{}", k + 1, all.len(), terms.len());
        s.push(if k + 1 < order { ',' } else { '.' });
    }
    s.push('\n');
    s.push_str(
        "#\n\
         # Usage (params: any pytree of float arrays; loss_fn(params) -> scalar):\n\
         #     import jax, this_module as eom\n\
         #     xis = eom.xi(loss_fn, params)            # [ξ_1, …, ξ_K], each shaped like params\n\
         #     xis = jax.jit(lambda p: eom.xi(loss_fn, p))(params)\n\
         #     rhs = eom.eom_rhs(loss_fn, eta, order=2)  # params -> dθ/dt, truncated after ξ_2\n",
    );
}

/// ` - η ξ_1 - η^2 ξ_2 - … - η^K ξ_K`, every term written out up to K = 3.
fn eom_tail(order: usize) -> String {
    let term = |k: usize| match k {
        1 => " - η ξ_1".to_string(),
        k => format!(" - η^{k} ξ_{k}"),
    };
    if order <= 3 {
        (1..=order).map(term).collect()
    } else {
        format!("{}{} - …{}", term(1), term(2), term(order))
    }
}

/// Docstring, imports, constants and the directional-derivative helper.
fn prelude(s: &mut String, series: &GenericSeries, forest: &Forest) {
    let order = series.xi.len();
    s.push_str(
        "\"\"\"Counter terms of the equation of motion, loss-independent, in JAX (emitted by eomderive).\"\"\"\n\n\
         import jax\n\n\
         jax.config.update(\"jax_enable_x64\", True)\n\n\
         import jax.numpy as jnp  # noqa: E402\n\
         from jax.flatten_util import ravel_pytree  # noqa: E402\n\n",
    );
    let _ = writeln!(s, "ORDER = {order}");
    let _ = writeln!(
        s,
        "LEADING = {}  # c in F_0 = -c ∇f ({})",
        py_float(&series.leading),
        series.leading
    );
    s.push_str("# TERMS[k-1]: the terms of ξ_k as (tree, elementary differential, coefficient).\n");
    s.push_str("TERMS = (\n");
    for terms in &series.xi {
        s.push_str("    (\n");
        for (t, c) in terms {
            let _ = writeln!(
                s,
                "        ({:?}, {:?}, {:?}),",
                forest.bracket(*t),
                trees::text(forest, *t),
                c.to_string()
            );
        }
        s.push_str("    ),\n");
    }
    s.push_str(")\n");
    s.push_str(
        "\n\n\
         def _along(h, v):\n    \
         \"\"\"x ↦ Dh(x)[v], the directional derivative of h along the fixed vector v.\"\"\"\n    \
         return lambda x: jax.jvp(h, (x,), (v,))[1]\n\
         \n\n\
         def _d(g, theta, *vs):\n    \
         \"\"\"∇^m g(theta)[v_1, …, v_m] = ∇^{m+1} f(theta)[v_1, …, v_m]: m nested jvps of g.\"\"\"\n    \
         h = g\n    \
         for v in vs:\n        \
         h = _along(h, v)\n    \
         return h(theta)\n",
    );
}

/// The public functions, after the body.
const API: &str = r#"

def _check_order(order):
    if not isinstance(order, int) or not 0 <= order <= ORDER:
        raise ValueError(f"order must be an int in 0..{ORDER} (got {order!r})")


def _flat(loss_fn, params):
    """The flat point, the flat gradient θ ↦ ∇(loss_fn ∘ unravel)(θ), and unravel."""
    theta, unravel = ravel_pytree(params)
    return theta, jax.grad(lambda t: loss_fn(unravel(t))), unravel


def xi(loss_fn, params, order=ORDER):
    """[ξ_1, …, ξ_order] at params, each a pytree shaped like params.

    loss_fn maps params (any pytree of float arrays) to a scalar; order ≤ ORDER.
    """
    _check_order(order)
    theta, g, unravel = _flat(loss_fn, params)
    return [unravel(v) for v in _terms(g, theta, order)[1]]


def eom_rhs(loss_fn, eta, order=ORDER):
    """The truncated EoM's right-hand side params ↦ -LEADING ∇f - Σ_{k ≤ order} η^k ξ_k.

    order 0 is gradient flow (times LEADING); the result is shaped like params.
    """
    _check_order(order)

    def rhs(params):
        theta, g, unravel = _flat(loss_fn, params)
        grad, xis = _terms(g, theta, order)
        out = -LEADING * grad
        for k, v in enumerate(xis, start=1):
            out = out - eta**k * v
        return unravel(out)

    return rhs
"#;

/// An exact rational as a Python float expression: `2.0`, `(1 / 12)`, `(-7 / 3)`. Python's
/// division of integers rounds correctly, whatever their size.
fn py_float(c: &BigRational) -> String {
    let (n, d) = (c.numer(), c.denom());
    let small = |x: &BigInt| x.abs() < BigInt::from(1u64 << 53);
    if d.is_one() && small(n) {
        return format!("{}.0", n.to_i64().unwrap_or_default());
    }
    if c.is_zero() {
        return "0.0".into();
    }
    format!("({n} / {d})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{optimizer_series, Method, Optimizer};

    /// The lines of ξ_k's section (from its `# ξ_k:` comment to the next `if order <` or the
    /// final return).
    fn section(py: &str, k: usize) -> Vec<&str> {
        let start = format!("    # ξ_{k}: trees with");
        py.lines()
            .skip_while(|l| !l.starts_with(&start))
            .take_while(|l| !l.starts_with("    if order <") && !l.starts_with("    return"))
            .collect()
    }

    /// The number of children of a tree's root, read from its bracket (`[[•]•]` has 2).
    fn root_arity(bracket: &str) -> usize {
        let inner: Vec<char> = bracket.chars().collect();
        let mut depth = 0;
        let mut count = 0;
        for &c in &inner[1..inner.len() - 1] {
            match c {
                '[' => {
                    if depth == 0 {
                        count += 1;
                    }
                    depth += 1;
                }
                ']' => depth -= 1,
                '•' if depth == 0 => count += 1,
                _ => {}
            }
        }
        count
    }

    #[test]
    fn names_every_tree_once_and_computes_each_needed_tree_once() {
        // A000081: rooted trees with n = 2..=6 nodes.
        let trees = [1, 2, 4, 9, 20];
        for order in 1..=5 {
            let s = crate::generic(order).unwrap();
            let py = generic_jax(&s);
            assert_eq!(py, generic_jax(&s), "not deterministic");
            assert!(py.contains(&format!("\nORDER = {order}\n")));
            let mut defined = vec!["G0".to_string()];
            for k in 1..=order {
                let lines = section(&py, k);
                assert!(!lines.is_empty(), "no section for ξ_{k}");
                // Every tree with k+1 nodes is named exactly once, in a `_d` line or as zero.
                let named: Vec<&str> = lines
                    .iter()
                    .filter_map(|l| l.split("# ").nth(1))
                    .filter(|c| c.starts_with('['))
                    .map(|c| c.split(" : ").next().unwrap())
                    .collect();
                assert_eq!(named.len(), trees[k - 1], "ξ_{k}: {named:?}");
                let mut sorted = named.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), named.len(), "ξ_{k} names a tree twice");
                for (t, _) in &s.xi[k - 1] {
                    assert!(named.contains(&s.forest.bracket(*t).as_str()));
                }
                // Each `_d` line applies as many jvps as its tree's root has children, to
                // vectors computed on earlier lines.
                for l in lines.iter().filter(|l| l.contains(" = _d(g, theta")) {
                    let (lhs, rest) = l.trim().split_once(" = _d(g, theta").unwrap();
                    let (args, comment) = rest.split_once(")  # ").unwrap();
                    let args: Vec<&str> = args.split(", ").skip(1).collect();
                    let bracket = comment.split(" : ").next().unwrap();
                    assert_eq!(args.len(), root_arity(bracket), "{l}");
                    assert_eq!(bracket.matches(['[', '•']).count(), k + 1, "{l}");
                    for a in &args {
                        assert!(
                            defined.iter().any(|d| d == a),
                            "{a} used before defined: {l}"
                        );
                    }
                    assert!(!defined.iter().any(|d| d == lhs), "{lhs} computed twice");
                    defined.push(lhs.to_string());
                }
                // ξ_k sums its nonzero terms, one line each.
                let sum_lines = lines
                    .iter()
                    .skip_while(|l| !l.starts_with("    xi.append("))
                    .skip(1)
                    .take_while(|l| l.trim() != ")")
                    .count();
                assert_eq!(sum_lines, s.xi[k - 1].len(), "ξ_{k}");
            }
            // Every distinct tree with 2..=order+1 nodes is computed at most once; at order 3
            // all 7 of them are needed (∇⁴f(g, g, g) only as a subtree of order-4 trees, so
            // not at order 3: 6), at order 4 all 16.
            let expect = match order {
                1 => Some(2),
                2 => Some(4),
                3 => Some(7),
                4 => Some(17),
                _ => None,
            };
            if let Some(n) = expect {
                assert_eq!(defined.len(), n, "order {order}: {defined:?}");
            }
        }
    }

    #[test]
    fn the_header_writes_each_term_once() {
        let line = |order: usize| {
            let py = generic_jax(&crate::generic(order).unwrap());
            py.lines()
                .find(|l| l.contains("dθ/dt"))
                .unwrap()
                .to_string()
        };
        assert_eq!(line(1), "#     dθ/dt = -∇f - η ξ_1");
        assert_eq!(line(2), "#     dθ/dt = -∇f - η ξ_1 - η^2 ξ_2");
        assert_eq!(line(3), "#     dθ/dt = -∇f - η ξ_1 - η^2 ξ_2 - η^3 ξ_3");
        assert_eq!(line(4), "#     dθ/dt = -∇f - η ξ_1 - η^2 ξ_2 - … - η^4 ξ_4");
        assert_eq!(line(8), "#     dθ/dt = -∇f - η ξ_1 - η^2 ξ_2 - … - η^8 ξ_8");
    }

    #[test]
    fn coefficients_are_exact_fractions() {
        let py = generic_jax(&crate::generic(4).unwrap());
        assert!(py.contains("        -(1 / 720) * G8\n        - (1 / 120) * G9\n"));
        assert!(py.contains("(\"[[[•]]]\", \"H H H g\", \"1/4\"),"));
        assert!(py.contains("LEADING = 1.0  #"));
        assert!(!py.contains("# [•••] : ∇⁴f(g, g, g) has coefficient 0"));
        let three = generic_jax(&crate::generic(3).unwrap());
        assert!(three.contains("# [•••] : ∇⁴f(g, g, g) has coefficient 0\n"));
        assert_eq!(py_float(&BigRational::new(4.into(), 2.into())), "2.0");
        let big = BigRational::from_integer(BigInt::from(1u64 << 60));
        assert_eq!(py_float(&big), format!("({} / 1)", 1u64 << 60));
        assert_eq!(
            py_float(&BigRational::new((-7).into(), 3.into())),
            "(-7 / 3)"
        );
    }

    #[test]
    fn an_optimizer_table_keeps_its_leading_coefficient() {
        let half = BigRational::new(1.into(), 2.into());
        let hb = Optimizer::new(Method::HeavyBall, Some(half));
        let py = generic_jax(&optimizer_series(&hb, 2).unwrap());
        assert!(py.contains("LEADING = 2.0  # c in F_0 = -c ∇f (2)"), "{py}");
        assert!(
            py.contains("#     dθ/dt = -(2) ∇f - η ξ_1 - η^2 ξ_2\n"),
            "{py}"
        );
        // ξ_1 = (1 + β)/(2(1 − β)³) H g = 6 H g.
        assert!(py.contains("    xi.append(\n        6.0 * G1\n    )\n"));
    }
}
