//! The counter terms against gradient descent itself: the distance between the truncated EoM
//! and GD must shrink as η^{K+1} over a fixed horizon, and as η^{K+2} over one step.

mod common;

use common::{examples, initial, stem};
use eomderive::check;
use eomderive::numeric::{
    local_error, CheckOptions, Eom, Observable, ObservableKind, Tolerances, VectorField,
};
use nalgebra::DVector;

/// (example, η) chosen so that every order's errors sit between the floor and the
/// asymptotic regime (the momentum example asks for more than its radius allows: the check
/// runs well inside it instead).
const LEARNING_RATES: [(&str, f64); 13] = [
    ("factorization", 0.02),
    ("linear_regression", 0.1),
    ("logistic", 0.2),
    ("momentum", 0.1),
    ("sam", 0.1),
    ("normalized_layer_wd", 0.2),
    ("scale_invariant", 0.1),
    ("softmax", 0.2),
    ("softmax_wd", 0.2),
    ("tanh_net", 0.2),
    ("sgd_regression", 0.05),
    ("sgd_logistic", 0.2),
    ("sgd_tanh_net", 0.1),
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

/// Every example derived to order 3 and checked at its η over 10 steps.
fn example_checks() -> Vec<(String, eomderive::numeric::Check)> {
    examples()
        .into_iter()
        .map(|path| {
            let name = stem(&path);
            let d = common::derive_example(&path, 3);
            // SGD's steps are whole epochs (of 2, 3 or 4 batches here).
            let steps = if d.optimizer.batches.is_some() {
                12
            } else {
                10
            };
            let options = CheckOptions {
                lr: lr_for(&name),
                steps,
                ..Default::default()
            };
            let c = check(&d, &options).unwrap();
            (name, c)
        })
        .collect()
}

#[test]
fn global_error_shrinks_as_eta_to_the_k_plus_one() {
    for (name, c) in example_checks() {
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
        // One GD step (`local_error`) against GD's EoM, whatever the file's optimizer.
        let gd = eomderive::Options {
            order: 3,
            method: Some(eomderive::series::Method::Gd),
            ..Default::default()
        };
        let d = eomderive::derive(&common::source(&path), &gd).unwrap();
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
    let d = common::derive_inline("param u = 0.5\nloss = log(u)", 1);
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

/// Indices of the parameters whose names satisfy `keep`, in order.
fn group(d: &eomderive::Derivation, keep: impl Fn(&str) -> bool) -> Vec<usize> {
    let m = &d.model;
    (0..m.params.len())
        .filter(|&i| keep(&m.params[i]))
        .collect()
}

/// The numeric check of a derivation from its file's initial point, with observables.
fn check_with(
    d: &eomderive::Derivation,
    lr: f64,
    steps: usize,
    halvings: usize,
    observables: &[Observable],
) -> eomderive::numeric::Check {
    let eom = Eom::compile(&d.model.graph, &d.gradient, &d.xi);
    let x0 = DVector::from_vec(initial(&d.model));
    let options = CheckOptions {
        lr,
        steps,
        halvings,
        ..Default::default()
    };
    eomderive::numeric::check(&eom, &descent(d), &x0, &options, observables)
}

/// DESIGN §2.3: the local error of the EoM truncated after ξ_K is η^{K+2} ξ_{K+1} + O(η^{K+3}),
/// so the measured error over the predicted tends to 1 and their relative discrepancy shrinks
/// like η.
#[test]
fn local_error_is_predicted_by_the_next_counter_term() {
    for (name, c) in example_checks() {
        // K = 0..3 (the check derives ξ_4 to predict K = 3), four η each.
        assert_eq!(c.local.len(), 4 * 4, "{name}");
        for k in 0..4 {
            let all: Vec<_> = c.local.iter().filter(|r| r.order == k).collect();
            assert_eq!(all[3].lr, all[0].lr / 8.0);
            for r in &all {
                assert!(r.failure.is_none(), "{name}: {r:?}");
                // K = 3 at η/8 may reach the rounding floor (errors ~1e-12); below, never.
                assert!(k == 3 || !r.at_floor, "{name}: {r:?}");
            }
            let rows: Vec<_> = all.into_iter().filter(|r| !r.at_floor).collect();
            assert!(
                rows.len() >= 3,
                "{name}: K={k} mostly at the floor: {rows:?}"
            );
            let (large, small) = (rows[0], rows[rows.len() - 1]);
            let slope = (large.discrepancy.unwrap() / small.discrepancy.unwrap()).ln()
                / (large.lr / small.lr).ln();
            assert!(
                (0.7..=1.3).contains(&slope),
                "{name}: K={k} discrepancy slope {slope:.3} ({rows:?})"
            );
            // The sign is right: a flipped prediction would leave a discrepancy near 2.
            assert!(small.discrepancy.unwrap() < 0.05, "{name}: {small:?}");
            let ratio = small.predicted.unwrap() / small.measured.unwrap();
            assert!(
                (ratio - 1.0).abs() <= 0.1,
                "{name}: K={k} predicted/measured {ratio:.4} at η = {}",
                small.lr
            );
        }
    }
}

/// DESIGN §2.3, scale invariance: with θ_A·g = 0, GD gives ‖θ_{A,n+1}‖² = ‖θ_{A,n}‖² +
/// η²‖g_{A,n}‖² exactly, GF conserves ‖θ_A‖², and each order of the EoM follows GD closer.
#[test]
fn scale_invariant_norm_grows_under_gd_and_is_conserved_by_gradient_flow() {
    let path = common::example("scale_invariant");
    let d = common::derive_example(&path, 3);
    let w = group(&d, |n| n.starts_with("w["));
    assert_eq!(w, vec![0, 1, 2]);
    let eom = Eom::compile(&d.model.graph, &d.gradient, &d.xi);
    let x0 = DVector::from_vec(initial(&d.model));
    let g0 = &eom.terms(&x0).unwrap()[0];
    let dot: f64 = w.iter().map(|&i| x0[i] * g0[i]).sum();
    assert!(dot.abs() <= 1e-14, "θ_w·g = {dot:e}: not scale-invariant");

    let (eta, steps) = (0.1, 20);
    let norm = Observable {
        label: "‖w‖²".into(),
        indices: w.clone(),
        kind: ObservableKind::SquaredNorm,
    };
    let c = check_with(&d, eta, steps, 0, &[norm]);
    let t = &c.tracked[0];
    assert_eq!((t.gd.len(), t.eom.len()), (steps + 1, 4));
    let gd: Vec<f64> = t.gd.iter().map(|v| v.unwrap()).collect();
    // The GD identity, with the gradient at each GD iterate.
    let iterates = eomderive::numeric::gradient_descent(&descent(&d), &x0, eta, steps).unwrap();
    for n in 0..steps {
        let g = &eom.terms(&iterates[n]).unwrap()[0];
        let g_w: f64 = w.iter().map(|&i| g[i] * g[i]).sum();
        let expected = gd[n] + eta * eta * g_w;
        let rel = (gd[n + 1] - expected).abs() / gd[n + 1];
        assert!(
            rel <= 1e-12,
            "step {n}: {} vs {expected}: {rel:e}",
            gd[n + 1]
        );
    }
    assert!(gd[steps] > gd[0] * (1.0 + 1e-4), "GD's ‖w‖² grows: {gd:?}");
    // Gradient flow conserves it.
    for (n, v) in t.eom[0].iter().enumerate() {
        let rel = (v.unwrap() - gd[0]).abs() / gd[0];
        assert!(rel <= 1e-9, "GF at step {n}: {v:?} vs {}: {rel:e}", gd[0]);
    }
    // Each order tracks GD's growth more closely.
    let dev: Vec<f64> = t.max_deviation.iter().map(|d| d.unwrap()).collect();
    for k in 1..4 {
        assert!(
            dev[k] * 5.0 < dev[k - 1],
            "max |EoM − GD| of ‖w‖² by order: {dev:?}"
        );
    }
}

/// DESIGN §2.3, translation invariance: softmax logits W[c, j] + a_j leave the loss unchanged
/// (Σ_c g_{c,j} = 0), so 1_A·θ is conserved by GD and the EoM at every order.
#[test]
fn softmax_logit_sums_are_conserved_by_gd_and_every_order() {
    let path = common::example("softmax");
    let d = common::derive_example(&path, 3);
    let eom = Eom::compile(&d.model.graph, &d.gradient, &d.xi);
    let x0 = DVector::from_vec(initial(&d.model));
    let g0 = &eom.terms(&x0).unwrap()[0];
    let observables: Vec<Observable> = (1..=2)
        .map(|j| {
            let column = group(&d, |n| {
                n.starts_with("W[") && n.ends_with(&format!(",{j}]"))
            });
            assert_eq!(column.len(), 3, "{:?}", d.model.params);
            let sum: f64 = column.iter().map(|&i| g0[i]).sum();
            let scale: f64 = column.iter().map(|&i| g0[i].abs()).sum();
            assert!(
                sum.abs() <= 1e-15,
                "Σ_c g[c,{j}] = {sum:e}: not translation-invariant"
            );
            assert!(scale > 1e-3, "the gradient itself is not zero: {scale}");
            Observable {
                label: format!("Σ_c W[c,{j}]"),
                indices: column,
                kind: ObservableKind::Sum,
            }
        })
        .collect();
    let c = check_with(&d, 0.2, 20, 0, &observables);
    for t in &c.tracked {
        let v0 = t.gd[0].unwrap();
        for (who, values) in std::iter::once(("GD".to_string(), &t.gd))
            .chain(t.eom.iter().enumerate().map(|(k, v)| (format!("K={k}"), v)))
        {
            for (n, v) in values.iter().enumerate() {
                let v = v.unwrap();
                assert!(
                    (v - v0).abs() <= 1e-9,
                    "{}: {who} at step {n}: {v} vs {v0}",
                    t.label
                );
            }
        }
        assert!(t.max_deviation.iter().all(|d| d.unwrap() <= 1e-9), "{t:?}");
    }
    // The parameters themselves move: conservation is not standing still.
    let gf_error = c.trajectories[0].last().unwrap().unwrap();
    assert!(gf_error > 1e-4, "GF is off GD by {gf_error}");
}

/// JSON, text and the plot carry the local errors and the tracked quantity, with numbers
/// everywhere a number belongs (never NaN or inf).
#[test]
fn local_errors_and_tracked_quantities_reach_every_format() {
    let path = common::example("scale_invariant");
    let mut d = common::derive_example(&path, 2);
    let norm = Observable {
        label: "‖w‖²".into(),
        indices: group(&d, |n| n.starts_with("w[")),
        kind: ObservableKind::SquaredNorm,
    };
    let c = check_with(&d, 0.1, 10, 3, &[norm]);
    let svg = eomderive::render::plot_svg(&c);
    d.check = Some(c);
    let json = eomderive::render::json(&d);
    assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let number = |x: &serde_json::Value| x.as_f64().is_some_and(f64::is_finite);
    let check = &v["check"];
    assert_eq!(check["rows"].as_array().unwrap().len(), 3 * 4);
    assert_eq!(check["slopes"].as_array().unwrap().len(), 3);
    let local = check["local"].as_array().unwrap();
    assert_eq!(local.len(), 2 * 4, "K = 0, 1 at four η");
    for r in local {
        for key in ["order", "lr", "predicted", "measured", "discrepancy"] {
            assert!(number(&r[key]), "{key} in {r}");
        }
        assert_eq!(r["at_floor"], false, "{r}");
        assert!(r.get("failure").is_none(), "{r}");
    }
    let tracked = check["tracked"].as_array().unwrap();
    assert_eq!(tracked.len(), 1);
    let t = &tracked[0];
    assert_eq!(t["quantity"], "‖w‖²");
    assert_eq!(t["kind"], "squared_norm");
    assert_eq!(t["group"], serde_json::json!(["w[1]", "w[2]", "w[3]"]));
    let gd = t["gd"].as_array().unwrap();
    assert_eq!(gd.len(), 11);
    assert!(gd.iter().all(number), "{t}");
    let eom = t["eom"].as_array().unwrap();
    assert_eq!(eom.len(), 3);
    for (k, o) in eom.iter().enumerate() {
        assert_eq!(o["order"], k);
        let values = o["values"].as_array().unwrap();
        assert_eq!(values.len(), 11);
        assert!(values.iter().all(number), "{o}");
    }
    let dev = t["max_deviation"].as_array().unwrap();
    assert_eq!(dev.len(), 3);
    assert!(dev.iter().all(number), "{t}");

    let text = eomderive::render::text(&d);
    assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    assert!(text.contains("local error of one step"), "{text}");
    assert!(
        text.contains("(order 2 needs ξ_3: derive with --order 3 to predict it)"),
        "{text}"
    );
    // Through the library, the check derives ξ_3 itself: order 2 has its rows, and no note.
    d.check = Some(
        eomderive::check(
            &d,
            &CheckOptions {
                lr: 0.1,
                steps: 10,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let text = eomderive::render::text(&d);
    assert!(text.contains("\n  2           0.1 "), "{text}");
    assert!(!text.contains("needs ξ_3"), "{text}");
    assert!(
        text.contains("‖w‖² (squared norm of 3 parameters)"),
        "{text}"
    );
    assert!(
        text.contains("largest |EoM − GD| along the run: GF "),
        "{text}"
    );
    for row in ["  GD ", "  GF (K=0) ", "  K=1 ", "  K=2 "] {
        let line = text
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{text}"));
        assert_eq!(
            line.split_whitespace().count(),
            row.split_whitespace().count() + 5,
            "{line}"
        );
    }

    // Three panels; the third has GD's 11 markers and one line per order.
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
    assert!(svg.contains(r#"width="1380""#), "three panels of 460");
    assert_eq!(svg.matches("<polyline").count(), 3 * 3);
    assert_eq!(svg.matches(r##"r="2.5" fill="#7f7f7f""##).count(), 11);
    assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    assert_eq!(svg.matches('<').count(), svg.matches('>').count());
}

/// When GD diverges, its tracked values stop (null, not NaN) and the local rows say why.
#[test]
fn diverging_gd_leaves_gaps_not_numbers_in_local_rows_and_tracked_values() {
    let mut d = common::derive_inline("param u = 3\nloss = u^4/4", 2);
    let square = Observable {
        label: "u²".into(),
        indices: vec![0],
        kind: ObservableKind::SquaredNorm,
    };
    let c = check_with(&d, 1.0, 20, 1, &[square]);
    for r in &c.local {
        assert!(r.predicted.is_none() && r.measured.is_none(), "{r:?}");
        assert!(
            r.failure
                .as_deref()
                .unwrap()
                .contains("GD diverged at step"),
            "{r:?}"
        );
    }
    let t = &c.tracked[0];
    assert_eq!(t.gd[0], Some(9.0));
    assert_eq!(t.gd[1], Some(24.0 * 24.0)); // u_1 = 3 − 27
    assert_eq!(t.gd[20], None);
    // Gradient flow from u = 3 is defined throughout: u(t)² = 9 / (1 + 18 t).
    for (n, v) in t.eom[0].iter().enumerate() {
        let exact = 9.0 / (1.0 + 18.0 * n as f64);
        assert!(
            (v.unwrap() - exact).abs() <= 1e-10 * exact,
            "n = {n}: {v:?}"
        );
    }
    assert!(t.max_deviation.iter().all(Option::is_none), "{t:?}");
    d.check = Some(c);
    let svg = eomderive::render::plot_svg(d.check.as_ref().unwrap());
    for out in [
        eomderive::render::text(&d),
        eomderive::render::json(&d),
        svg,
    ] {
        assert!(!out.contains("NaN") && !out.contains("inf"), "{out}");
    }
    assert!(eomderive::render::json(&d).contains("null"));
}

/// At a tiny η the highest order's local error, and its difference from the prediction, sink
/// to the rounding floor: those rows are flagged, the others are not.
#[test]
fn local_rows_at_the_rounding_floor_are_flagged() {
    let path = common::example("tanh_net");
    let d = common::derive_example(&path, 3);
    let c = check_with(&d, 0.005, 4, 1, &[]);
    for r in &c.local {
        assert!(r.failure.is_none() && r.discrepancy.is_some(), "{r:?}");
        match r.order {
            0 => assert!(!r.at_floor, "{r:?}"),
            2 => assert!(r.at_floor, "{r:?}"),
            _ => {}
        }
    }
}
