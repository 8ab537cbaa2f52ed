//! The counter terms of the optimizers (DESIGN.md §2.4) on trees: the closed forms of ξ_1 and
//! ξ_2 for a symbolic parameter, GD's integer route against the scheme route, β = 0 against GD,
//! and every chain coefficient to ξ_8 against an independent route: on a quadratic the chain
//! trees sum to log r(ηλ)/η, with r the method's slow root, expanded here as a power series.

use eomderive::series::{
    counter_terms, method_series, optimizer_series, GenericSeries, Method, MethodSeries, Optimizer,
    RatFn,
};
use num_rational::BigRational;
use num_traits::{One, Zero};

fn q(n: i64, d: i64) -> BigRational {
    BigRational::new(n.into(), d.into())
}

fn c(n: i64) -> RatFn {
    RatFn::constant(q(n, 1))
}

/// The coefficient of the tree with this bracket in ξ_k (0 if absent).
fn coeff(s: &MethodSeries, k: usize, bracket: &str) -> RatFn {
    s.xi[k - 1]
        .iter()
        .find(|(t, _)| s.forest.bracket(*t) == bracket)
        .map_or_else(RatFn::zero, |(_, c)| c.normalized())
}

/// ξ_k of a numeric series as (bracket, coefficient).
fn table(s: &GenericSeries) -> Vec<Vec<(String, BigRational)>> {
    s.xi.iter()
        .map(|terms| {
            terms
                .iter()
                .map(|(t, c)| (s.forest.bracket(*t), c.clone()))
                .collect()
        })
        .collect()
}

/// p(β) / (den (1 − β)^e) from the numerator's integer coefficients.
fn frac(num: &[i64], den: i64, e: i32) -> RatFn {
    let beta = RatFn::symbol();
    let mut p = RatFn::zero();
    let mut power = RatFn::one();
    for &a in num {
        p = p + power.clone() * c(a);
        power = power * beta.clone();
    }
    p.scale(&q(1, den)).over_one_minus(e).normalized()
}

#[test]
fn heavy_ball_matches_the_closed_forms() {
    let s = method_series(Method::HeavyBall, 2).unwrap();
    assert_eq!(s.leading.normalized(), frac(&[1], 1, 1)); // F_0 = −g/(1 − β)
    assert_eq!(coeff(&s, 1, "[•]"), frac(&[1, 1], 2, 3));
    assert_eq!(coeff(&s, 2, "[[•]]"), frac(&[1, 4, 1], 3, 5));
    assert_eq!(coeff(&s, 2, "[••]"), frac(&[1, 10, 1], 12, 5));
}

#[test]
fn nesterov_matches_the_closed_form() {
    let s = method_series(Method::Nesterov, 1).unwrap();
    assert_eq!(s.leading.normalized(), frac(&[1], 1, 1));
    assert_eq!(coeff(&s, 1, "[•]"), frac(&[1, -1, 2], 2, 3));
}

#[test]
fn extragradient_and_sam_match_the_closed_forms() {
    let e = method_series(Method::Extragradient, 2).unwrap();
    assert!(e.leading.normalized() == RatFn::one());
    assert_eq!(coeff(&e, 1, "[•]"), RatFn::constant(q(-1, 2)));
    // SAM, ρ = rη: F = −g − (ρ + η/2) Hg − (ρ²/2 + ρη/2 + η²/12) T(g,g) − (ρη + η²/3) HHg.
    let s = method_series(Method::Sam, 2).unwrap();
    let r = RatFn::symbol();
    let half = RatFn::constant(q(1, 2));
    assert_eq!(coeff(&s, 1, "[•]"), (r.clone() + half.clone()).normalized());
    let t = r.clone() * r.clone() * half.clone() + r.clone() * half + RatFn::constant(q(1, 12));
    assert_eq!(coeff(&s, 2, "[••]"), t.normalized());
    assert_eq!(
        coeff(&s, 2, "[[•]]"),
        (r + RatFn::constant(q(1, 3))).normalized()
    );
    // r = −1 is extragradient, to ξ_4.
    let sam = method_series(Method::Sam, 4).unwrap().at(Some(&q(-1, 1)));
    let eg = method_series(Method::Extragradient, 4).unwrap().at(None);
    assert_eq!(table(&sam), table(&eg));
}

#[test]
fn gd_by_its_scheme_is_the_integer_route() {
    for order in 1..=8 {
        let scheme = method_series(Method::Gd, order).unwrap().at(None);
        let integer = counter_terms(order).unwrap();
        assert_eq!(table(&scheme), table(&integer), "order {order}");
        assert_eq!(scheme.leading, BigRational::one());
    }
}

#[test]
fn momentum_zero_is_gd() {
    let gd = table(&counter_terms(6).unwrap());
    for m in [Method::HeavyBall, Method::Nesterov] {
        let s = method_series(m, 6).unwrap().at(Some(&BigRational::zero()));
        assert_eq!(table(&s), gd, "{m}");
        assert_eq!(s.leading, BigRational::one());
    }
    let sam = method_series(Method::Sam, 6)
        .unwrap()
        .at(Some(&BigRational::zero()));
    assert_eq!(table(&sam), gd);
}

// Power series in x over ℚ, truncated after x^N.
const N: usize = 9;
type Series = Vec<BigRational>;

fn mul(a: &Series, b: &Series) -> Series {
    let mut out = vec![BigRational::zero(); N + 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate().take(N + 1 - i) {
            out[i + j] += x * y;
        }
    }
    out
}

fn poly(coefficients: &[BigRational]) -> Series {
    let mut s = vec![BigRational::zero(); N + 1];
    for (k, c) in coefficients.iter().enumerate() {
        s[k] = c.clone();
    }
    s
}

/// log(1 + u) for u = O(x).
fn log1p(u: &Series) -> Series {
    let mut out = vec![BigRational::zero(); N + 1];
    let mut power = poly(&[BigRational::one()]);
    for j in 1..=N {
        power = mul(&power, u);
        let sign = if j % 2 == 1 { 1 } else { -1 };
        for (o, p) in out.iter_mut().zip(&power) {
            *o += p * q(sign, j as i64);
        }
    }
    out
}

/// The root r(x) → 1 of a r² + b(x) r + c(x) = 0 with a = 1, by matching powers of x.
fn slow_root(b: &Series, c0: &Series) -> Series {
    let mut r = poly(&[BigRational::one()]);
    // d/dr (r² + b r + c) at x = 0, r = 1.
    let slope = q(2, 1) + &b[0];
    for k in 1..=N {
        let p = mul(&r, &r);
        let residual = &p[k] + &mul(b, &r)[k] + &c0[k];
        r[k] = -residual / &slope;
    }
    r
}

#[test]
fn chains_sum_to_the_log_of_the_slow_root() {
    for beta in [q(0, 1), q(1, 2), q(9, 10), q(-1, 3)] {
        let one = BigRational::one();
        // Heavy-ball: r² − (1 + β − x) r + β; Nesterov: r² − (1 + β)(1 − x) r + β(1 − x).
        let hb = slow_root(
            &poly(&[-(&one + &beta), one.clone()]),
            &poly(std::slice::from_ref(&beta)),
        );
        let ne = slow_root(
            &poly(&[-(&one + &beta), &one + &beta]),
            &poly(&[beta.clone(), -beta.clone()]),
        );
        for (m, root) in [(Method::HeavyBall, hb), (Method::Nesterov, ne)] {
            chains_match(m, Some(&beta), &root);
        }
    }
    // One-step methods: the root is the step's factor, 1 − x + x² (extragradient) and
    // 1 − x − r x² (SAM).
    chains_match(
        Method::Extragradient,
        None,
        &poly(&[q(1, 1), q(-1, 1), q(1, 1)]),
    );
    for r in [q(1, 1), q(1, 3), q(-2, 1)] {
        chains_match(
            Method::Sam,
            Some(&r),
            &poly(&[q(1, 1), q(-1, 1), -r.clone()]),
        );
    }
}

/// On f = λθ²/2 the chain with n nodes is λ^n θ, so F = Σ_n a_n η^{n−1} λ^n θ, and a step of
/// the flow on the slow manifold multiplies θ by r(ηλ): Σ_n a_n x^n = log r(x).
fn chains_match(m: Method, at: Option<&BigRational>, root: &Series) {
    let mut u = root.clone();
    u[0] -= BigRational::one();
    let log = log1p(&u);
    let mut s = optimizer_series(&Optimizer::new(m, at.cloned()), N - 1).unwrap();
    assert_eq!(-s.leading.clone(), log[1], "{m} leading");
    let mut chain = s.forest.leaf();
    for (n, want) in log.iter().enumerate().skip(2) {
        // Interned already: node() finds it.
        chain = s.forest.node(vec![chain]);
        let got = s.xi[n - 2]
            .iter()
            .find(|(t, _)| *t == chain)
            .map_or_else(BigRational::zero, |(_, c)| -c.clone());
        assert_eq!(&got, want, "{m} at {at:?}: chain of {n} nodes");
    }
}

#[test]
fn the_symbolic_and_the_numeric_solve_agree() {
    for m in Method::ALL {
        let symbolic = method_series(m, 5).unwrap();
        for v in [q(0, 1), q(1, 2), q(9, 10), q(-1, 3)] {
            let at = m.parameter().map(|_| v.clone());
            let numeric = optimizer_series(&Optimizer::new(m, at.clone()), 5).unwrap();
            let evaluated = symbolic.at(at.as_ref());
            assert_eq!(table(&numeric), table(&evaluated), "{m} at {v}");
            assert_eq!(numeric.leading, evaluated.leading);
            // The leaf's solved coefficient is 1/M_1, the scheme's drift inverted.
            assert_eq!(
                numeric.leading,
                Optimizer::new(m, at.clone()).leading(),
                "{m}"
            );
        }
    }
}
