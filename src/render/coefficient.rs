//! Coefficients that depend on an optimizer's parameter, written the way a paper writes them:
//! the rational content in front, the numerator polynomial in ascending powers, the
//! denominator as a power of (1 − β): `(1 + β)/(2(1 - β)³)`, `\frac{1 + \beta}{2(1 - \beta)^{3}}`,
//! `(1 + beta)/(2*(1 - beta)^3)` (a string SymPy parses).

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed};

use super::latex::latex_rational;
use super::trees::superscript;
use crate::series::{Method, MethodSeries, Optimizer, Parameter, RatFn, TreeId};

/// Where a coefficient is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// Plain text with Unicode (`β`, `³`).
    Text,
    /// LaTeX.
    Latex,
    /// A SymPy expression (`beta`, `^`, `*`).
    Sympy,
}

/// The parameter's symbol in a syntax: β / `\beta` / `beta` for the momentum, r for SAM.
pub(crate) fn symbol(method: Method, syntax: Syntax) -> &'static str {
    match (method.parameter(), syntax) {
        (Some(Parameter::Momentum), Syntax::Text) => "β",
        (Some(Parameter::Momentum), Syntax::Latex) => r"\beta",
        (Some(Parameter::Momentum), Syntax::Sympy) => "beta",
        _ => "r",
    }
}

/// A coefficient as (negative, its magnitude written out, or `None` when the magnitude is 1),
/// for a term `c X` of a sum.
pub(crate) fn split(c: &RatFn, method: Method, syntax: Syntax) -> (bool, Option<String>) {
    let (content, q, pole) = c.factored();
    let negative = content.is_negative();
    let a = content.abs();
    if q.len() <= 1 && pole == 0 {
        // A number.
        if a.is_one() {
            return (negative, None);
        }
        let s = match syntax {
            Syntax::Latex => latex_rational(&a),
            _ => a.to_string(),
        };
        return (negative, Some(s));
    }
    let x = symbol(method, syntax);
    // A common power of the symbol goes in front: β(1 + β), not (β + β²).
    let low = q
        .iter()
        .take_while(|c| num_traits::Zero::is_zero(*c))
        .count();
    let terms = q.iter().filter(|c| !num_traits::Zero::is_zero(*c)).count();
    let poly = if low > 0 && terms > 1 {
        let mut unit = vec![BigInt::from(0); low];
        unit.push(BigInt::one());
        let inner = polynomial(&q[low..], x, syntax);
        let mul = if syntax == Syntax::Sympy { "*" } else { "" };
        return finish(
            negative,
            &a,
            format!("{}{mul}({inner})", polynomial(&unit, x, syntax)),
            1,
            pole,
            x,
            syntax,
        );
    } else {
        polynomial(&q, x, syntax)
    };
    finish(negative, &a, poly, terms, pole, x, syntax)
}

/// The magnitude from its parts: |content| = a, the numerator polynomial (`terms` terms),
/// and the power of (1 − x).
fn finish(
    negative: bool,
    a: &BigRational,
    poly: String,
    terms: usize,
    pole: i32,
    x: &str,
    syntax: Syntax,
) -> (bool, Option<String>) {
    let (numer, denom) = (a.numer().clone(), a.denom().clone());
    let one_minus = match (pole, syntax) {
        (0, _) => String::new(),
        (1, Syntax::Latex) if a.denom().is_one() => format!("1 - {x}"),
        (1, _) => format!("(1 - {x})"),
        (e, Syntax::Text) => format!("(1 - {x}){}", superscript(e as usize)),
        (e, Syntax::Latex) => format!("(1 - {x})^{{{e}}}"),
        (e, Syntax::Sympy) => format!("(1 - {x})^{e}"),
    };
    let times = if syntax == Syntax::Sympy { "*" } else { "" };
    let has_denominator = !denom.is_one() || pole > 0;
    if syntax == Syntax::Latex && has_denominator {
        let top = match (numer.is_one(), terms > 1) {
            (true, _) => poly,
            (false, true) => format!("{numer}({poly})"),
            (false, false) => format!("{numer} {poly}"),
        };
        let bottom = match (denom.is_one(), pole > 0) {
            (true, _) => one_minus,
            (false, true) => format!("{denom}{one_minus}"),
            (false, false) => denom.to_string(),
        };
        return (negative, Some(format!(r"\frac{{{top}}}{{{bottom}}}")));
    }
    let wrapped = if terms > 1 { format!("({poly})") } else { poly };
    let top = if numer.is_one() {
        wrapped
    } else {
        let space = if syntax == Syntax::Text && terms == 1 {
            " "
        } else {
            times
        };
        format!("{numer}{space}{wrapped}")
    };
    let bottom = match (denom.is_one(), pole > 0) {
        (true, false) => return (negative, Some(top)),
        (true, true) => one_minus,
        (false, false) => denom.to_string(),
        (false, true) => format!("({denom}{times}{one_minus})"),
    };
    (negative, Some(format!("{top}/{bottom}")))
}

/// Σ q_k x^k in ascending powers, signs between the terms.
fn polynomial(q: &[BigInt], x: &str, syntax: Syntax) -> String {
    let mut out = String::new();
    for (k, c) in q.iter().enumerate() {
        if num_traits::Zero::is_zero(c) {
            continue;
        }
        let power = match (k, syntax) {
            (0, _) => String::new(),
            (1, _) => x.to_string(),
            (k, Syntax::Text) => format!("{x}{}", superscript(k)),
            (k, Syntax::Latex) => format!("{x}^{{{k}}}"),
            (k, Syntax::Sympy) => format!("{x}^{k}"),
        };
        let a = c.abs();
        let body = match (k, a.is_one(), syntax) {
            (0, _, _) => a.to_string(),
            (_, true, _) => power,
            (_, false, Syntax::Sympy) => format!("{a}*{power}"),
            (_, false, _) => format!("{a}{power}"),
        };
        match (out.is_empty(), c.is_negative()) {
            (true, true) => out.push('-'),
            (true, false) => {}
            (false, true) => out.push_str(" - "),
            (false, false) => out.push_str(" + "),
        }
        out.push_str(&body);
    }
    out
}

/// A coefficient whole, sign included (`-(1 - β + 2β²)/(2(1 - β)³)`, `1/12`).
pub(crate) fn whole(c: &RatFn, method: Method, syntax: Syntax) -> String {
    match split(c, method, syntax) {
        (false, None) => "1".into(),
        (true, None) => "-1".into(),
        (false, Some(m)) => m,
        (true, Some(m)) => format!("-{m}"),
    }
}

/// How the optimizer is named in a report's header: `heavy-ball, β = 9/10`,
/// `heavy-ball (momentum β)`, `sam, ρ = r η with r = 1`, `extragradient`.
pub(crate) fn describe(optimizer: &Optimizer, syntax: Syntax) -> String {
    let m = optimizer.method;
    let x = symbol(m, syntax);
    if let Some(b) = optimizer.batches {
        let s = if b.count == 1 { "" } else { "es" };
        return format!("{m} ({} batch{s}, {} order)", b.count, b.order);
    }
    match (m.parameter(), &optimizer.parameter) {
        (None, _) => m.name().into(),
        (Some(Parameter::Momentum), Some(v)) => format!("{m}, {x} = {v}"),
        (Some(Parameter::Momentum), None) => format!("{m} (momentum {x})"),
        (Some(Parameter::RhoRatio), Some(v)) => format!("{m}, ρ = r η with r = {v}"),
        (Some(Parameter::RhoRatio), None) => format!("{m} (ρ = r η)"),
    }
}

/// One ξ_k of a generic table written out, Σ c G(τ): each coefficient as [`split`] gives it
/// times the tree's elementary differential, in text or LaTeX.
pub(crate) fn tree_sum(series: &MethodSeries, terms: &[(TreeId, RatFn)], syntax: Syntax) -> String {
    let parts: Vec<_> = terms
        .iter()
        .map(|(t, c)| {
            let (negative, magnitude) = split(c, series.method, syntax);
            let tree = match syntax {
                Syntax::Latex => super::trees::latex(&series.forest, *t),
                _ => super::trees::text(&series.forest, *t),
            };
            (negative, magnitude, tree)
        })
        .collect();
    super::signed_parts(&parts)
}

/// A method's radius of convergence in ηλ, as a formula (DESIGN.md §2.4).
pub(crate) fn radius_formula(method: Method) -> &'static str {
    match method {
        Method::Gd | Method::Extragradient | Method::Sgd => "1",
        Method::HeavyBall => "(1 - √β)²",
        Method::Nesterov => "((1 - β)/(1 + β))²",
        Method::Sam => "|nearest root of 1 - x - r x²|",
    }
}

/// The optimizer a [`MethodSeries`] describes.
pub(crate) fn optimizer_of(series: &MethodSeries) -> Optimizer {
    Optimizer::new(series.method, series.parameter.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frac(num: &[i64], den: i64, e: i32) -> RatFn {
        let mut p = RatFn::zero();
        let mut power = RatFn::one();
        for &a in num {
            p = p + power.clone() * RatFn::constant(BigRational::from_integer(a.into()));
            power = power * RatFn::symbol();
        }
        p.scale(&BigRational::new(1.into(), den.into()))
            .over_one_minus(e)
    }

    #[test]
    fn coefficients_read_as_in_a_paper() {
        let hb = Method::HeavyBall;
        let c = frac(&[1, 1], 2, 3);
        assert_eq!(whole(&c, hb, Syntax::Text), "(1 + β)/(2(1 - β)³)");
        assert_eq!(
            whole(&c, hb, Syntax::Latex),
            r"\frac{1 + \beta}{2(1 - \beta)^{3}}"
        );
        assert_eq!(whole(&c, hb, Syntax::Sympy), "(1 + beta)/(2*(1 - beta)^3)");
        let n = frac(&[-1, 1, -2], 2, 3);
        assert_eq!(whole(&n, hb, Syntax::Text), "-(1 - β + 2β²)/(2(1 - β)³)");
        assert_eq!(whole(&frac(&[1], 1, 1), hb, Syntax::Text), "1/(1 - β)");
        assert_eq!(
            whole(&frac(&[1, 6, 6], 12, 0), Method::Sam, Syntax::Text),
            "(1 + 6r + 6r²)/12"
        );
        assert_eq!(
            whole(&frac(&[0, 3], 1, 0), Method::Sam, Syntax::Text),
            "3 r"
        );
        assert_eq!(
            whole(&frac(&[-1], 12, 0), Method::Gd, Syntax::Text),
            "-1/12"
        );
        assert_eq!(
            whole(&frac(&[0, 2], 1, 2), hb, Syntax::Sympy),
            "2*beta/(1 - beta)^2"
        );
        let b = frac(&[0, 1, 1], 2, 7);
        assert_eq!(whole(&b, hb, Syntax::Text), "β(1 + β)/(2(1 - β)⁷)");
        assert_eq!(
            whole(&b, hb, Syntax::Sympy),
            "beta*(1 + beta)/(2*(1 - beta)^7)"
        );
        assert_eq!(
            whole(&frac(&[1], 1, 1), hb, Syntax::Latex),
            r"\frac{1}{1 - \beta}"
        );
    }
}
