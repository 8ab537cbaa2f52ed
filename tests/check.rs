//! The counter terms against gradient descent itself: the distance between the truncated EoM
//! and GD must shrink as η^{K+1} over a fixed horizon, and as η^{K+2} over one step.

mod common;

use common::{examples, initial, stem};
use eomderive::lang::Source;
use eomderive::numeric::{local_error, CheckOptions, Eom, Tolerances, VectorField};
use eomderive::{check, derive, Options};
use nalgebra::DVector;

/// (example, η) chosen so that every order's errors sit between the floor and the
/// asymptotic regime.
const LEARNING_RATES: [(&str, f64); 6] = [
    ("factorization", 0.02),
    ("linear_regression", 0.1),
    ("logistic", 0.2),
    ("scale_invariant", 0.1),
    ("softmax", 0.2),
    ("tanh_net", 0.2),
];

/// The loss followed by its gradient, as gradient descent takes it.
fn descent(d: &eomderive::Derivation) -> VectorField {
    let mut roots = vec![d.model.loss];
    roots.extend(&d.gradient);
    VectorField::compile(&d.model.graph, &roots)
}

fn lr_for(name: &str) -> f64 {
    LEARNING_RATES
        .iter()
        .find(|(n, _)| *n == name)
        .expect("every example has an η")
        .1
}

#[test]
fn global_error_shrinks_as_eta_to_the_k_plus_one() {
    for path in examples() {
        let name = stem(&path);
        let d = common::derive_example(&path, 3);
        let options = CheckOptions {
            lr: lr_for(&name),
            steps: 10,
            ..Default::default()
        };
        let c = check(&d, &options).unwrap();
        for (k, slope) in c.slopes.iter().enumerate() {
            let errors: Vec<_> = c
                .rows
                .iter()
                .filter(|r| r.order == k)
                .map(|r| r.error)
                .collect();
            let slope = slope.unwrap_or_else(|| panic!("{name}: no slope for K={k}: {errors:?}"));
            assert!(
                (slope - (k as f64 + 1.0)).abs() <= 0.15,
                "{name}: K={k} slope {slope:.3}, errors {errors:?}"
            );
            assert!(
                c.rows.iter().filter(|r| r.order == k).all(|r| !r.at_floor),
                "{name}: K={k} at floor"
            );
        }
    }
}

#[test]
fn local_error_shrinks_as_eta_to_the_k_plus_two() {
    for path in examples() {
        let name = stem(&path);
        let d = common::derive_example(&path, 3);
        let eom = Eom::compile(&d.model.graph, &d.gradient, &d.xi);
        let grad = descent(&d);
        let x0 = DVector::from_vec(initial(&d.model));
        let base = 4.0 * lr_for(&name);
        for k in 0..=3 {
            let pts: Vec<(f64, f64)> = (0..4)
                .map(|j| {
                    let eta = base / f64::powi(2.0, j);
                    let e = local_error(&eom, &grad, &x0, eta, k, &Tolerances::default()).unwrap();
                    (eta.ln(), e.ln())
                })
                .collect();
            // Slope between the two smallest step sizes (the asymptotic end).
            let slope = (pts[3].1 - pts[2].1) / (pts[3].0 - pts[2].0);
            assert!(
                (slope - (k as f64 + 2.0)).abs() <= 0.25,
                "{name}: K={k} local slope {slope:.3} ({pts:?})"
            );
        }
    }
}

/// f = ½ θᵀAθ with ‖ηA‖ ≤ 0.1: the series converges, and order 12 reproduces 50 GD steps.
#[test]
fn quadratic_order_twelve_reproduces_gd() {
    let text = "data A[3,3] = [[2, -0.5, 0.3], [-0.5, 1.5, 0.2], [0.3, 0.2, 1]]\n\
                param x[3] = [1, -0.5, 0.8]\n\
                loss = sum(i, sum(j, x[i] * A[i,j] * x[j])) / 2";
    let d = common::derive_inline(text, 12);
    // The largest eigenvalue of A is below 2.5, so η = 0.04 keeps ‖ηA‖ ≤ 0.1.
    let eta = 0.04;
    let eom = Eom::compile(&d.model.graph, &d.gradient, &d.xi);
    let grad = descent(&d);
    let x0 = DVector::from_vec(initial(&d.model));
    let gd = eomderive::numeric::gradient_descent(&grad, &x0, eta, 50).unwrap();
    let r = eomderive::numeric::integrate(
        |y: &DVector<f64>| eom.rhs(y, eta, 12),
        &x0,
        50.0 * eta,
        &Tolerances::default(),
    )
    .unwrap();
    let rel = (&r.y - &gd[50]).norm() / gd[50].norm();
    assert!(rel <= 1e-10, "relative distance {rel:e}");
    // Gradient flow, for contrast, is far off.
    let gf = eomderive::numeric::integrate(
        |y: &DVector<f64>| eom.rhs(y, eta, 0),
        &x0,
        50.0 * eta,
        &Tolerances::default(),
    )
    .unwrap();
    assert!((&gf.y - &gd[50]).norm() / gd[50].norm() > 1e-3);
}

#[test]
fn diverging_gd_is_reported_not_numbers() {
    // f = u^4/4 from u = 3 with η = 1 diverges within a few steps.
    let d = common::derive_inline("param u = 3\nloss = u^4/4", 1);
    let c = check(
        &d,
        &CheckOptions {
            lr: 1.0,
            steps: 20,
            halvings: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let first = &c.rows[0];
    assert!(first.error.is_none());
    assert!(
        first
            .failure
            .as_deref()
            .unwrap()
            .contains("diverged at step"),
        "{first:?}"
    );
    // The text and JSON show the failure, never NaN or inf.
    let mut d = d;
    d.check = Some(c);
    for out in [eomderive::render::text(&d), eomderive::render::json(&d)] {
        assert!(!out.contains("NaN") && !out.contains("inf"), "{out}");
        assert!(out.contains("diverged at step"), "{out}");
    }
}

#[test]
fn leaving_the_domain_is_reported_with_its_step() {
    // log(u) with GD stepping u below zero: u' = u - η/u from u = 0.5, η = 0.3 → -0.1, where
    // the gradient 1/u is defined but the loss is not.
    let d = derive(
        &Source::inline("param u = 0.5\nloss = log(u)"),
        &Options {
            order: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let c = check(
        &d,
        &CheckOptions {
            lr: 0.3,
            steps: 5,
            halvings: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let f = c.rows[0].failure.as_deref().unwrap();
    assert!(f.contains("log of -0.09") && f.contains("at step 1"), "{f}");
}
