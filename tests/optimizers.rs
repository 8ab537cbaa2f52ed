//! Every optimizer of DESIGN.md §2.4 end to end: the check against its own iterates on every
//! example, the loss-specific terms against the defining relation by numeric flows (a route
//! that shares nothing with the tree solve), β = 0 against GD, the reports and JSON, and the
//! errors for bad flags.

mod common;

use common::{examples, run, source, stem};
use eomderive::numeric::{integrate, CheckOptions, Eom, Tolerances, VectorField};
use eomderive::series::{Method, Optimizer};
use eomderive::{check, derive, lang::Source, Options};
use nalgebra::DVector;
use num_rational::BigRational;

fn q(n: i64, d: i64) -> BigRational {
    BigRational::new(n.into(), d.into())
}

fn options(method: Method, parameter: Option<BigRational>, order: usize) -> Options {
    Options {
        order,
        ..Options::for_optimizer(&Optimizer::new(method, parameter))
    }
}

/// The optimizers checked on every example: momentum β = 1/2 and the default 9/10, SAM's
/// default r = 1.
fn optimizers() -> Vec<(Method, Option<BigRational>)> {
    vec![
        (Method::HeavyBall, Some(q(1, 2))),
        (Method::HeavyBall, None),
        (Method::Nesterov, Some(q(1, 2))),
        (Method::Nesterov, None),
        (Method::Extragradient, None),
        (Method::Sam, None),
    ]
}

#[test]
fn every_optimizer_tracks_its_own_iterates_on_every_example() {
    for path in examples() {
        let name = stem(&path);
        for (method, parameter) in optimizers() {
            let d = derive(&source(&path), &options(method, parameter.clone(), 3)).unwrap();
            // The momentum methods ask for more than their radius allows: the check lowers η.
            let lr = match (method.history(), name.as_str()) {
                (2, _) => 0.1,
                (_, "factorization") => 0.02,
                _ => 0.05,
            };
            let c = check(
                &d,
                &CheckOptions {
                    lr,
                    steps: 10,
                    ..Default::default()
                },
            )
            .unwrap();
            let what = format!("{name}, {method} {parameter:?} at η = {}", c.lr);
            assert_eq!(c.optimizer, method.name());
            for (k, slope) in c.slopes.iter().enumerate() {
                let slope = slope.unwrap_or_else(|| panic!("{what}: no slope for K = {k}"));
                assert!(
                    (slope - (k as f64 + 1.0)).abs() <= 0.15,
                    "{what}: K = {k} slope {slope:.3}"
                );
            }
            if method.history() == 2 {
                let r = d.radius.expect("a momentum method reports its radius");
                assert!(c.lr <= 0.5 * r.max_lr, "{what}: η inside the radius");
                // Lowered exactly when the asked η was past half the asymptotic range.
                assert_eq!(
                    c.requested_lr,
                    (lr > 0.5 * r.asymptotic_lr).then_some(lr),
                    "{what}"
                );
                // The zero-velocity start: an O(η) offset, far above the warm start's error.
                assert_eq!(c.cold_start.len(), 4);
                for (cold, warm) in c
                    .cold_start
                    .iter()
                    .zip(c.rows.iter().filter(|r| r.order == 3))
                {
                    assert!(cold.error.unwrap() > 100.0 * warm.error.unwrap(), "{what}");
                }
                if parameter.is_some() {
                    let s = c.cold_slope.unwrap();
                    assert!((s - 1.0).abs() < 0.2, "{what}: cold slope {s}");
                }
            } else {
                assert!(c.cold_start.is_empty());
            }
        }
    }
}

/// One step of each method from θ with history θ_{−1}, written out here from DESIGN.md §2.4
/// (not from the scheme the library solves).
fn step(
    method: Method,
    p: f64,
    eta: f64,
    g: &dyn Fn(&DVector<f64>) -> DVector<f64>,
    theta: &DVector<f64>,
    before: &DVector<f64>,
) -> DVector<f64> {
    match method {
        Method::Gd => theta - g(theta) * eta,
        Method::HeavyBall => theta - g(theta) * eta + (theta - before) * p,
        Method::Nesterov => {
            let look = theta + (theta - before) * p;
            theta + (theta - before) * p - g(&look) * eta
        }
        Method::Extragradient => theta - g(&(theta - g(theta) * eta)) * eta,
        Method::Sam => theta - g(&(theta + g(theta) * (p * eta))) * eta,
        // One SGD step on the whole loss (a single batch) is a GD step; the minibatch steps
        // need the batch losses, which this helper does not have.
        Method::Sgd => theta - g(theta) * eta,
    }
}

/// The EoM truncated after ξ_K is the optimizer's modified equation to that order: with Φ_s
/// its flow, the defect of one step from the trajectory (the defining relation of §2.4),
/// R = Φ_η(θ) − step(θ, Φ_{−η}(θ)), is M_1 η^{K+2} ξ_{K+1}(θ) + O(η^{K+3}), M_1 = 1/c the
/// drift (1 − β for the momentum methods). Measured by integrating the flows numerically on a
/// loss of two parameters, at three points, for K = 0..4: the relative discrepancy between
/// R and its prediction shrinks like η, which holds only if ξ_1..ξ_5 are all right (a 1 %
/// error in one tree's coefficient leaves a discrepancy that does not shrink).
#[test]
fn the_truncated_eom_satisfies_the_defining_relation_to_its_order() {
    let loss = "param u = 0.7, v = -0.4\nloss = log(1 + exp(u - 2*v)) / 5 + (u*v - 0.3)^2/10 + cos(u + v)/8";
    let tol = Tolerances {
        rtol: 1e-15,
        atol: 1e-17,
        ..Tolerances::default()
    };
    for (method, p) in [
        (Method::HeavyBall, q(1, 4)),
        (Method::Nesterov, q(1, 4)),
        (Method::Extragradient, q(0, 1)),
        (Method::Sam, q(1, 2)),
        (Method::Gd, q(0, 1)),
    ] {
        let parameter = method.parameter().map(|_| p.clone());
        let d = derive(&Source::inline(loss), &options(method, parameter, 5)).unwrap();
        let graph = &d.model.graph;
        let c = eomderive::numeric::to_f64(&d.leading);
        let eom = Eom::compile(graph, &d.gradient, &d.xi).with_leading(c);
        let gradient = VectorField::compile(graph, &d.gradient);
        let g = |x: &DVector<f64>| gradient.eval(x).unwrap();
        let point = d.evaluation.as_ref().unwrap().point.clone();
        let p = eomderive::numeric::to_f64(&p);
        // Three points: a wrong coefficient shows unless its tree's differential vanishes at
        // all of them.
        for seed in 0..3 {
            let x0 = DVector::from_vec(common::perturbed(&point, seed, 0.3 * seed as f64));
            let terms = eom.terms(&x0).unwrap();
            for k in 0..=4 {
                let flow = |t: f64, eta: f64| {
                    integrate(|y: &DVector<f64>| eom.rhs(y, eta, k), &x0, t, &tol)
                        .unwrap()
                        .y
                };
                let discrepancy = |eta: f64| {
                    let (ahead, behind) = (flow(eta, eta), flow(-eta, eta));
                    let r = ahead - step(method, p, eta, &g, &x0, &behind);
                    let predicted = &terms[k + 1] * (eta.powi(k as i32 + 2) / c);
                    (r - &predicted).norm() / predicted.norm()
                };
                let (large, small) = (discrepancy(0.05), discrepancy(0.025));
                let slope = (large / small).ln() / 2f64.ln();
                assert!(
                    small < 0.05 && (0.5..=1.6).contains(&slope),
                    "{method} at {x0:?}: K = {k}: discrepancy {large:.2e} at η = 0.05, {small:.2e} at 0.025 (slope {slope:.2})"
                );
            }
        }
    }
}

#[test]
fn momentum_zero_gives_gds_counter_terms() {
    for path in examples() {
        let gd = common::derive_example_gd(&path, 3);
        for m in [Method::HeavyBall, Method::Nesterov] {
            let d = derive(&source(&path), &options(m, Some(q(0, 1)), 3)).unwrap();
            let (a, b) = (
                gd.evaluation.as_ref().unwrap(),
                d.evaluation.as_ref().unwrap(),
            );
            assert_eq!(a.xi, b.xi, "{}: {m}", stem(&path));
            assert_eq!(d.leading, BigRational::from_integer(1.into()));
        }
    }
}

#[test]
fn reports_name_the_optimizer() {
    let (code, out, err) = run(&["(u*v - 1)^2/2", "--order", "1", "--optimizer", "heavy-ball"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("optimizer: heavy-ball, β = 9/10"), "{out}");
    assert!(out.contains("dθ/dt = -10 ∇f - η ξ_1"), "{out}");
    // ξ_1 = (1 + β)/(2(1 − β)³) H g = 950 H g, a gradient: the modified loss divides by 10.
    assert!(
        out.contains("ξ_1 = ∇(475 ‖g‖²) (exactly, for every loss)"),
        "{out}"
    );
    assert!(
        out.contains("dθ/dt = -10 ∇f̃ + O(η²) with f̃ = f + η (95/2 ‖g‖²)"),
        "{out}"
    );

    let (code, out, _) = run(&[
        "examples/scale_invariant.expr",
        "--optimizer",
        "nesterov",
        "--momentum",
        "0.5",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["optimizer"]["name"], "nesterov");
    assert_eq!(v["optimizer"]["momentum"], "1/2");
    assert_eq!(v["leading"]["coefficient"], "-2");
    let r = &v["radius"];
    let (radius, lambda, max_lr) = (
        r["radius"].as_f64().unwrap(),
        r["lambda_max"].as_f64().unwrap(),
        r["max_lr"].as_f64().unwrap(),
    );
    assert!((radius - 1.0 / 9.0).abs() < 1e-15 && (max_lr * lambda - radius).abs() < 1e-15);
    // A scale-invariant loss: the discrete law is not GD's, and the report says so.
    let law = &v["invariances"][0];
    assert!(law.to_string().contains("no closed one-step law"), "{law}");

    // GD's reports carry none of these fields.
    let (_, out, _) = run(&["(u*v - 1)^2/2", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["optimizer", "leading", "radius"] {
        assert!(v.get(key).is_none(), "{key}");
    }
}

#[test]
fn the_generic_form_keeps_the_parameter_as_a_symbol() {
    let (code, out, _) = run(&["--generic", "--order", "2", "--optimizer", "heavy-ball"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "optimizer: heavy-ball (momentum β), dθ/dt = -1/(1 - β) g - η ξ_1 - η^2 ξ_2 - ...\n\
         ξ_1 = (1 + β)/(2(1 - β)³) H g\n\
         ξ_2 = (1 + 10β + β²)/(12(1 - β)⁵) ∇³f(g, g) + (1 + 4β + β²)/(3(1 - β)⁵) H H g\n\
         in the time of the effective learning rate η_eff = η/(1 - β) (τ = n η_eff): \
         dθ/dτ = -g - η_eff ξ̃_1 - η_eff^2 ξ̃_2 - ...\n  \
         ξ̃_1 = (1 + β)/(2(1 - β)) H g\n  \
         ξ̃_2 = (1 + 10β + β²)/(12(1 - β)²) ∇³f(g, g) + (1 + 4β + β²)/(3(1 - β)²) H H g\n"
    );
    // GD's regulariser times (1 + β)/(1 − β), as DESIGN §2.4 says; JSON carries the same.
    let (_, out, _) = run(&[
        "--generic",
        "--order",
        "1",
        "--optimizer",
        "heavy-ball",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["effective_lr"][0]["terms"][0]["coefficient"],
        "(1 + beta)/(2*(1 - beta))"
    );
    let (_, out, _) = run(&[
        "--generic",
        "--order",
        "1",
        "--optimizer",
        "sam",
        "--format",
        "json",
    ]);
    assert!(!out.contains("effective_lr"));
    let (_, out, _) = run(&[
        "--generic",
        "--order",
        "1",
        "--optimizer",
        "heavy-ball",
        "--momentum",
        "0.9",
    ]);
    assert!(out.contains("ξ_1 = 950 H g"), "{out}");
    let (_, out, _) = run(&[
        "--generic",
        "--order",
        "2",
        "--optimizer",
        "sam",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["optimizer"]["rho_ratio"], "r");
    assert_eq!(v["generic"][0]["terms"][0]["coefficient"], "(1 + 2*r)/2");
    let (_, out, _) = run(&[
        "--generic",
        "--order",
        "1",
        "--optimizer",
        "nesterov",
        "--format",
        "latex",
    ]);
    assert!(
        out.contains(r"\frac{1 - \beta + 2\beta^{2}}{2(1 - \beta)^{3}}"),
        "{out}"
    );
}

#[test]
fn bad_optimizer_flags_are_usage_errors() {
    for (args, phrase) in [
        (
            vec!["u^2", "--optimizer", "heavyball"],
            "did you mean `heavy-ball`?",
        ),
        (
            vec!["u^2", "--optimizer", "adam"],
            "gd, heavy-ball, nesterov, extragradient, sam",
        ),
        (
            vec!["u^2", "--optimizer", "heavy-ball", "--momentum", "1"],
            "[0, 1)",
        ),
        (
            vec!["u^2", "--optimizer", "nesterov", "--momentum", "-0.1"],
            "[0, 1)",
        ),
        (
            vec!["u^2", "--optimizer", "heavy-ball", "--momentum", "fast"],
            "not a number",
        ),
        (
            vec!["u^2", "--momentum", "0.5"],
            "applies to heavy-ball and nesterov only",
        ),
        (
            vec!["u^2", "--optimizer", "sam", "--momentum", "0.5"],
            "--optimizer is sam",
        ),
        (
            vec!["u^2", "--optimizer", "heavy-ball", "--rho-ratio", "1"],
            "applies to sam only",
        ),
        (
            vec!["u^2", "--optimizer", "sam", "--rho-ratio", "x"],
            "not a number",
        ),
        (
            vec![
                "--generic",
                "--optimizer",
                "extragradient",
                "--momentum",
                "0.5",
            ],
            "applies to heavy-ball",
        ),
        (
            vec!["--generic", "--optimizer", "nesterov", "--order", "9"],
            "SYMBOLIC_MAX_ORDER = 8",
        ),
        (
            vec!["u^2", "--optimizer", "sam", "--order", "11"],
            "past the limit",
        ),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.contains(phrase), "{args:?}: {err}");
    }
}

#[test]
fn a_diverging_optimizer_is_reported_in_its_rows() {
    // f = −u⁴/4 from u = 3: the flow blows up at t = 1/18, so a horizon of 0.2 is past it.
    let d = derive(
        &Source::inline("param u = 3\nloss = -u^4/4"),
        &options(Method::HeavyBall, Some(q(1, 2)), 1),
    )
    .unwrap();
    let c = check(
        &d,
        &CheckOptions {
            lr: 0.0005,
            steps: 400,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(c.requested_lr.is_none(), "η = 0.0005 is inside the radius");
    let failed: Vec<_> = c.rows.iter().filter_map(|r| r.failure.clone()).collect();
    assert!(!failed.is_empty());
    assert!(
        failed
            .iter()
            .any(|f| f.contains("heavy-ball diverged at step")),
        "{failed:?}"
    );
    assert!(c
        .rows
        .iter()
        .all(|r| r.error.is_none() || r.failure.is_none()));
    let text = eomderive::render::text(&eomderive::Derivation {
        check: Some(c),
        ..d
    });
    assert!(text.contains("failed"), "{text}");
}

#[test]
fn the_checks_json_carries_the_zero_velocity_start() {
    let (code, out, err) = run(&[
        "examples/momentum.expr",
        "--order",
        "2",
        "--check",
        "--steps",
        "10",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v["check"];
    assert_eq!(c["requested_lr"], 0.05);
    assert!(c["lr"].as_f64().unwrap() < 0.5 * v["radius"]["max_lr"].as_f64().unwrap());
    assert_eq!(c["cold_start"].as_array().unwrap().len(), 4);
    assert!((c["cold_slope"].as_f64().unwrap() - 1.0).abs() < 0.2);
    for (k, s) in c["slopes"].as_array().unwrap().iter().enumerate() {
        assert!((s.as_f64().unwrap() - (k as f64 + 1.0)).abs() < 0.15, "{s}");
    }
}

#[test]
fn sam_with_a_large_ratio_is_checked_where_its_series_is_asymptotic() {
    for r in [q(-1000, 1), q(40, 1), q(-1, 4)] {
        let d = derive(
            &Source::inline("param u = 1\nloss = u^2/2 + u^4/12"),
            &options(Method::Sam, Some(r.clone()), 2),
        )
        .unwrap();
        let c = check(&d, &CheckOptions::default()).unwrap();
        for (k, s) in c.slopes.iter().enumerate() {
            let s = s.unwrap();
            assert!(
                (s - (k as f64 + 1.0)).abs() <= 0.15,
                "r = {r}: K = {k} slope {s}"
            );
        }
    }
}

/// The generic tables of every optimizer to ξ_4, symbolic, as reviewed snapshots: ξ_1 and ξ_2
/// are DESIGN §2.4's closed forms (tests/optimizer_series.rs), ξ_1..ξ_3 agree with the SymPy
/// derivation of benches/peers/sympy_optimizers.py, and ξ_4 passes the defining-relation test
/// above.
#[test]
fn generic_tables_of_every_optimizer() {
    for m in [
        Method::HeavyBall,
        Method::Nesterov,
        Method::Extragradient,
        Method::Sam,
    ] {
        let s = eomderive::generic_optimizer(&Optimizer::new(m, None), 4).unwrap();
        common::snapshot_settings().bind(|| {
            insta::assert_snapshot!(
                format!("generic_{}", m.name()),
                eomderive::render::method_text(&s)
            );
        });
    }
}

/// λ_max by power iteration (what the report and the check use) against the dense Hessian's
/// eigenvalues, on every example.
#[test]
fn the_radius_uses_the_largest_hessian_eigenvalue() {
    for path in examples() {
        let d = derive(&source(&path), &options(Method::HeavyBall, None, 1)).unwrap();
        let r = d.radius.unwrap();
        let x = &d.evaluation.as_ref().unwrap().point;
        let program = eomderive::numeric::Program::compile(&d.model.graph, &d.gradient);
        let h = eomderive::numeric::jacobian(&program, x).unwrap();
        let n = x.len();
        let m = nalgebra::DMatrix::from_fn(n, n, |i, j| 0.5 * (h[i][j] + h[j][i]));
        let dense = m
            .symmetric_eigenvalues()
            .iter()
            .fold(0.0f64, |a, v| a.max(v.abs()));
        assert!(
            (r.lambda_max - dense).abs() <= 1e-9 * dense,
            "{}: {} against {dense}",
            stem(&path),
            r.lambda_max
        );
        assert!((r.radius - 0.1f64.powi(2) / (1.0 + 0.9f64.sqrt()).powi(2)).abs() < 1e-15);
    }
}
