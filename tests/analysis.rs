//! The analyses against independent numbers: the invariance laws derived on trees against the
//! loss's own counter terms, potentials against finite differences, asymmetry witnesses
//! against finite differences, and the invariances found against what each example is.

mod common;

use common::{derive_inline, examples, stem};
use eomderive::analysis::{Decided, Invariance, Kind};
use eomderive::lang::Source;
use eomderive::numeric::{taylor_directional, Program};
use eomderive::series::{Law, Method, Optimizer, Scalar, Vector};
use eomderive::{derive, Derivation, Options};

fn derive_with(text: &str, order: usize, decay: Option<&str>) -> Derivation {
    derive_for(text, order, decay, &Optimizer::gd())
}

fn derive_for(text: &str, order: usize, decay: Option<&str>, optimizer: &Optimizer) -> Derivation {
    let options = Options {
        order,
        weight_decay: decay.map(|l| eomderive::lang::parse_exact(l).unwrap()),
        ..Options::for_optimizer(optimizer)
    };
    derive(&Source::inline(text), &options).unwrap()
}

/// The vector of a law at x, from the compiled gradient of the loss without weight decay.
fn vector(gradient: &Program, x: &[f64], v: &Vector) -> Vec<f64> {
    match v {
        Vector::Theta => x.to_vec(),
        Vector::D(children) => {
            let dirs: Vec<Vec<f64>> = children.iter().map(|c| vector(gradient, x, c)).collect();
            let refs: Vec<&[f64]> = dirs.iter().map(Vec::as_slice).collect();
            taylor_directional(gradient, x, &refs).unwrap()
        }
    }
}

/// Σ over the law's terms at x, each monomial η^e λ^l weighted by `eta_weight(e)` λ^l: the
/// η^k part of a rate (weight 1 at e = k, else 0), or a GD step's value (weight η^e).
fn law_value(
    law: &Law,
    eta_weight: impl Fn(u32) -> f64,
    inv: &Invariance,
    gradient: &Program,
    x: &[f64],
    lambda: f64,
) -> f64 {
    let mut total = 0.0;
    for (s, poly) in &law.terms {
        let value = match s {
            Scalar::NormSq => inv.group.iter().map(|&i| x[i] * x[i]).sum(),
            Scalar::Sum => inv.group.iter().map(|&i| x[i]).sum(),
            Scalar::Pair(a, b) => {
                let (a, b) = (vector(gradient, x, a), vector(gradient, x, b));
                inv.group.iter().map(|&i| a[i] * b[i]).sum::<f64>()
            }
        };
        for ((e, l), c) in poly {
            total +=
                eomderive::numeric::to_f64(c) * eta_weight(*e) * lambda.powi(*l as i32) * value;
        }
    }
    total
}

/// For every invariance found: the law's η^k part equals −2 θ_A·ξ_k (scale) or −1_A·ξ_k
/// (translation) computed from the loss's own counter terms (ξ_0 = c ∇F, c the optimizer's
/// leading coefficient), at three points.
fn check_laws(d: &Derivation, base: &Derivation, lambda: f64) -> usize {
    let a = d.analysis.as_ref().unwrap();
    let gradient = Program::compile(&base.model.graph, &base.gradient);
    let mut roots = d.gradient.clone();
    roots.extend(d.xi.iter().flatten());
    let terms = Program::compile(&d.model.graph, &roots);
    let n = d.gradient.len();
    let x0 = d.evaluation.as_ref().unwrap().point.clone();
    let mut checked = 0;
    for inv in &a.invariances {
        for (p, x) in eomderive::numeric::sample_points(&x0, 3, 5)
            .into_iter()
            .enumerate()
        {
            let values = terms.eval(&x).unwrap();
            for k in 0..=d.xi.len() {
                let xi = &values[k * n..(k + 1) * n];
                let c = if k == 0 {
                    eomderive::numeric::to_f64(&d.leading)
                } else {
                    1.0
                };
                let expected: f64 = c * match inv.kind {
                    Kind::Scale => -2.0 * inv.group.iter().map(|&i| x[i] * xi[i]).sum::<f64>(),
                    Kind::Translation => -inv.group.iter().map(|&i| xi[i]).sum::<f64>(),
                };
                let only_k = |e: u32| if e == k as u32 { 1.0 } else { 0.0 };
                let got = law_value(&inv.law, only_k, inv, &gradient, &x, lambda);
                let scale = xi.iter().map(|v| v.abs()).sum::<f64>()
                    * (1.0 + x.iter().map(|v| v.abs()).sum::<f64>());
                assert!(
                    (got - expected).abs() <= 1e-9 * scale,
                    "{} of {}, η^{k}, point {p}: law {got:e}, from ξ_{k} {expected:e}",
                    if inv.kind == Kind::Scale {
                        "scale"
                    } else {
                        "translation"
                    },
                    inv.name
                );
                checked += 1;
            }
        }
    }
    checked
}

const NORMALIZED: &str = "data X[3,3] = [[1.0, 0.0, 0.5], [0.2, 1.0, -0.3], [-0.4, 0.6, 1.0]]
data y = [0.5, -0.2, 0.8]
param w[3] = [0.6, -0.3, 0.9]
param s = 1.2
let z[i] = s * sum(j, X[i,j] * w[j]) / norm(w)
loss = mean(i, (z[i] - y[i])^2) / 2";

const SOFTMAX: &str = "data X[3,2] = [[1.0, -0.5], [0.3, 0.8], [-1.2, 0.4]]
data Y[3,3] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
param W[3,2] = [[0.4, -0.2], [0.0, 0.3], [-0.1, 0.6]]
let z[i,c] = sum(j, X[i,j] * W[c,j])
loss = mean(i, logsumexp(c, z[i,c]) - sum(c, Y[i,c] * z[i,c]))";

/// Scale invariant in the whole parameter vector (θ = θ_A: the reduction of θ inside
/// derivatives is exercised).
const WHOLE: &str = "param u = 0.8, v = -0.5
loss = (u^2 - v^2)/(u^2 + v^2) + u*v/(u^2 + v^2)";

#[test]
fn invariance_laws_match_the_counter_terms() {
    let mut checked = 0;
    for (text, lambda) in [
        (NORMALIZED, None),
        (NORMALIZED, Some("0.05")),
        (SOFTMAX, None),
        (SOFTMAX, Some("1/10")),
        (WHOLE, None),
        (WHOLE, Some("0.2")),
    ] {
        let d = derive_with(text, 3, lambda);
        let base = derive_with(text, 1, None);
        let found = d.analysis.as_ref().unwrap().invariances.len();
        assert!(found >= 1, "{text}: no invariance found");
        let l = lambda.map_or(0.0, |l| {
            eomderive::numeric::to_f64(&eomderive::lang::parse_exact(l).unwrap())
        });
        checked += check_laws(&d, &base, l);
    }
    assert!(checked > 100, "only {checked} comparisons");
}

/// The same for the other optimizers: their laws are derived on trees from their own series
/// (with the leading coefficient on the leaf), and held here to their own counter terms.
#[test]
fn invariance_laws_of_every_optimizer_match_its_counter_terms() {
    let half = Some(num_rational::BigRational::new(1.into(), 2.into()));
    let mut checked = 0;
    for optimizer in [
        Optimizer::new(Method::HeavyBall, half.clone()),
        Optimizer::new(Method::Nesterov, half),
        Optimizer::new(Method::Extragradient, None),
        Optimizer::new(Method::Sam, None),
    ] {
        for (text, lambda) in [
            (NORMALIZED, None),
            (NORMALIZED, Some("0.05")),
            (SOFTMAX, Some("1/10")),
            (WHOLE, None),
        ] {
            let d = derive_for(text, 2, lambda, &optimizer);
            let base = derive_with(text, 1, None);
            assert!(!d.analysis.as_ref().unwrap().invariances.is_empty());
            let l = lambda.map_or(0.0, |l| {
                eomderive::numeric::to_f64(&eomderive::lang::parse_exact(l).unwrap())
            });
            checked += check_laws(&d, &base, l);
        }
    }
    assert!(checked > 100, "only {checked} comparisons");
}

/// The derived GD step law (‖θ_A‖²_{n+1} = (1 − ηλ)²‖θ_A‖²_n + η²‖g_A‖²_n, 1_A·θ_{n+1} =
/// (1 − ηλ) 1_A·θ_n) against real GD iterates on the loss with weight decay.
#[test]
fn gd_step_laws_match_gd_iterates() {
    let mut checked = 0;
    for (text, lambda) in [(NORMALIZED, "0.05"), (SOFTMAX, "1/10"), (WHOLE, "0.2")] {
        let d = derive_with(text, 1, Some(lambda));
        let base = derive_with(text, 1, None);
        let l = eomderive::numeric::to_f64(&eomderive::lang::parse_exact(lambda).unwrap());
        let gradient = Program::compile(&base.model.graph, &base.gradient);
        let mut roots = vec![d.model.loss];
        roots.extend(&d.gradient);
        let descent = eomderive::numeric::VectorField::compile(&d.model.graph, &roots);
        let x0 = nalgebra::DVector::from_vec(d.evaluation.as_ref().unwrap().point.clone());
        let eta = 0.3;
        let gd = eomderive::numeric::gradient_descent(&descent, &x0, eta, 5).unwrap();
        for inv in &d.analysis.as_ref().unwrap().invariances {
            let own = match inv.kind {
                Kind::Scale => Scalar::NormSq,
                Kind::Translation => Scalar::Sum,
            };
            let quantity = Law {
                terms: [(
                    own,
                    [((0, 0), num_rational::BigRational::from_integer(1.into()))].into(),
                )]
                .into(),
            };
            for pair in gd.windows(2) {
                let (now, next) = (pair[0].as_slice(), pair[1].as_slice());
                let predicted = law_value(
                    inv.step.as_ref().expect("GD has a step law"),
                    |e| eta.powi(e as i32),
                    inv,
                    &gradient,
                    now,
                    l,
                );
                let actual = law_value(&quantity, |_| 1.0, inv, &gradient, next, l);
                assert!(
                    (predicted - actual).abs() <= 1e-12 * (1.0 + actual.abs()),
                    "{} {}: law {predicted} vs GD {actual}",
                    if inv.kind == Kind::Scale {
                        "scale"
                    } else {
                        "translation"
                    },
                    inv.name
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 25, "only {checked} steps compared");
}

fn names(d: &Derivation) -> Vec<String> {
    d.analysis
        .as_ref()
        .unwrap()
        .invariances
        .iter()
        .map(|i| format!("{:?} {}", i.kind, i.name))
        .collect()
}

#[test]
fn invariances_of_the_examples() {
    for path in examples() {
        let d = common::derive_example(&path, 2);
        let found = names(&d);
        let expected: &[&str] = match stem(&path).as_str() {
            "scale_invariant" => &["Scale w"],
            "softmax" | "softmax_wd" => {
                &["Translation W", "Translation W[·,1]", "Translation W[·,2]"]
            }
            "normalized_layer_wd" => &["Scale V", "Scale V[1,·]", "Scale V[2,·]"],
            _ => &[],
        };
        assert_eq!(found, expected, "{}", stem(&path));
    }
    // Scale invariance of everything, and its absence once one term breaks it.
    assert_eq!(names(&derive_inline(WHOLE, 1)), ["Scale θ"]);
    assert!(names(&derive_inline(
        "param u = 0.8, v = -0.5\nloss = (u^2 - v^2)/(u^2 + v^2) + u/10",
        1
    ))
    .is_empty());
    // Translation in a group decided symbolically: the gradient sums to zero as written.
    let d = derive_inline("param w[2] = [0.3, 0.1]\nloss = (w[1] - w[2])^2/2", 1);
    let inv = &d.analysis.as_ref().unwrap().invariances;
    assert_eq!(inv.len(), 1);
    assert_eq!(
        (inv[0].kind, inv[0].decided),
        (Kind::Translation, Decided::Symbolically)
    );
}

/// ∇Φ by central differences of the potential (built from the loss's gradient numerically):
/// ¼‖g‖² for GD, c‖g‖²/2 for an optimizer whose ξ_1 is c H g.
#[test]
fn xi_1_is_the_gradient_of_a_quarter_gradient_norm_squared() {
    for path in examples() {
        let d = common::derive_example(&path, 1);
        if d.optimizer.batches.is_some() {
            continue; // SGD's ξ_1 is tests/sgd.rs's (Smith et al.'s regulariser)
        }
        let f = &d.analysis.as_ref().unwrap().fields[0];
        assert!(
            f.generic && f.gradient && f.decided == Decided::Exactly,
            "{}",
            stem(&path)
        );
        let g = Program::compile(&d.model.graph, &d.gradient);
        let xi = Program::compile(&d.model.graph, &d.xi[0]);
        let x = d.evaluation.as_ref().unwrap().point.clone();
        // ξ_1 = c H g = ∇(c ‖g‖²/2), c = 1/2 for GD and the optimizer's own otherwise.
        let table = eomderive::series::optimizer_series(&d.optimizer, 1).unwrap();
        let c = eomderive::numeric::to_f64(&table.xi[0][0].1);
        let phi = |x: &[f64]| c * g.eval(x).unwrap().iter().map(|v| v * v).sum::<f64>() / 2.0;
        let want = xi.eval(&x).unwrap();
        for i in 0..x.len() {
            let h = 1e-5 * (1.0 + x[i].abs());
            let (mut p, mut m) = (x.clone(), x.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (phi(&p) - phi(&m)) / (2.0 * h);
            assert!(
                (fd - want[i]).abs() <= 1e-6 * (1.0 + want[i].abs()),
                "{} ξ_1[{i}]: {fd} vs {}",
                stem(&path),
                want[i]
            );
        }
    }
}

#[test]
fn potentials_of_special_losses() {
    // Quadratic: ξ_k = A^{k+1}θ/(k+1) = ∇(gᵀ H^{k-1} g / (2(k+1))), decided symbolically.
    let d = derive_inline("(3*u + v - 1)^2/2 + (u - 2*v)^2/4", 4);
    let text = eomderive::render::text(&d);
    for line in [
        "ξ_2 = ∇(1/6 gᵀ H g) (symbolically)",
        "ξ_3 = ∇(1/8 gᵀ H H g) (symbolically)",
        "ξ_4 = ∇(1/10 gᵀ H H H g) (symbolically)",
        "f̃ = f + η (1/4 ‖g‖²) + η² (1/6 gᵀ H g) + η³ (1/8 gᵀ H H g) + η⁴ (1/10 gᵀ H H H g)",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    // One parameter, f = u⁴/4: ξ_2 = 1/12 f''' f'² + 1/3 f''² f' = 7/2 u⁷ = 7/48 ∇(f'² f'').
    let d = derive_inline("u^4/4", 2);
    let f = &d.analysis.as_ref().unwrap().fields[1];
    assert!(f.gradient && !f.generic);
    assert!(eomderive::render::text(&d).contains("ξ_2 = ∇(7/48 gᵀ H g)"));
}

#[test]
fn asymmetry_witnesses_are_real() {
    for path in examples() {
        let d = common::derive_example(&path, 2);
        check_witness(&d, 2, &stem(&path));
    }
    // Twenty parameters: the pair is sought among the 16 coordinates that carry the most of
    // vᵀJu − uᵀJv, not along all n columns; it must still be a real asymmetry.
    let src = "data X[3,4] = [[0.5, -1.0, 0.3, 0.8], [1.2, 0.4, -0.7, 0.1], [-0.3, 0.9, 0.6, -1.1]]
data y[3] = [0.2, -0.4, 0.5]
param W[4,4] = [[0.3, -0.2, 0.1, 0.4], [-0.5, 0.2, 0.3, -0.1], [0.2, 0.6, -0.3, 0.1], [0.1, -0.4, 0.5, 0.2]]
param a[4] = [0.5, -0.3, 0.2, 0.4]
let hid[n,j] = tanh(sum(k, W[j,k]*X[n,k]))
loss = mean(n, (sum(j, a[j]*hid[n,j]) - y[n])^2)/2";
    let d = derive_inline(src, 3);
    assert_eq!(d.model.params.len(), 20);
    for k in [2, 3] {
        let f = &d.analysis.as_ref().unwrap().fields[k - 1];
        assert!(f.asymmetry.is_some(), "ξ_{k} of the 20-parameter net");
        check_witness(&d, k, "20-parameter net");
    }
}

/// ξ_k's witness (if any) against central differences of the compiled ξ_k, independent of
/// the forward-mode Jacobian; a gradient field needs none, a non-gradient one has one.
fn check_witness(d: &eomderive::Derivation, k: usize, label: &str) {
    let f = &d.analysis.as_ref().unwrap().fields[k - 1];
    let Some(w) = &f.asymmetry else {
        assert!(f.gradient, "{label}: no witness for a non-gradient ξ_{k}");
        return;
    };
    assert!(!f.gradient);
    let xi = Program::compile(&d.model.graph, &d.xi[k - 1]);
    let partial = |i: usize, j: usize| {
        let h = 1e-5 * (1.0 + w.point[j].abs());
        let (mut p, mut m) = (w.point.clone(), w.point.clone());
        p[j] += h;
        m[j] -= h;
        (xi.eval(&p).unwrap()[i] - xi.eval(&m).unwrap()[i]) / (2.0 * h)
    };
    let (dij, dji) = (partial(w.i, w.j), partial(w.j, w.i));
    let tol = 1e-8 * (1.0 + dij.abs() + dji.abs());
    assert!(
        (dij - w.d_ij).abs() < tol && (dji - w.d_ji).abs() < tol,
        "{label}: ξ_{k} {dij} vs {}, {dji} vs {}",
        w.d_ij,
        w.d_ji
    );
    assert!((dij - dji).abs() > 100.0 * tol, "{label}: {dij} vs {dji}");
}

#[test]
fn only_xi_1_is_a_gradient_for_every_loss() {
    let mut s = eomderive::generic(7).unwrap();
    let generic: Vec<bool> = (1..=7)
        .map(|k| eomderive::series::generic_potential(&mut s, k).is_some())
        .collect();
    assert_eq!(generic, [true, false, false, false, false, false, false]);
}

#[test]
fn weight_decay_from_the_file_or_the_flag() {
    let file = "param u = 1\nloss = u^2/2\nweight_decay = 1/10";
    let d = derive_inline(file, 2);
    assert_eq!(d.model.weight_decay.as_ref().unwrap().to_string(), "1/10");
    // f = (1 + λ) u²/2: ξ_k = (1 + λ)^{k+1} u/(k+1).
    let xi = &d.evaluation.as_ref().unwrap().xi;
    assert!((xi[0][0] - 1.1f64.powi(2) / 2.0).abs() < 1e-15);
    assert!((xi[1][0] - 1.1f64.powi(3) / 3.0).abs() < 1e-15);
    // The flag overrides the file; 0 turns it off.
    let d = derive_with(file, 1, Some("0"));
    assert!(d.model.weight_decay.is_none());
    assert!((d.evaluation.as_ref().unwrap().xi[0][0] - 0.5).abs() < 1e-15);
}

#[test]
fn json_carries_the_analyses() {
    let path = common::example("normalized_layer_wd");
    let d = common::derive_example(&path, 2);
    let j: serde_json::Value = serde_json::from_str(&eomderive::render::json(&d)).unwrap();
    assert_eq!(j["weight_decay"], "1/100");
    let fields = j["gradient_fields"].as_array().unwrap();
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[0]["potential"]["text"], "1/4 ‖g‖²");
    assert_eq!(fields[0]["decided"]["how"], "exactly");
    assert_eq!(fields[1]["gradient"], false);
    assert!(fields[1]["asymmetry"]["component"].is_string());
    assert_eq!(j["modified_loss"]["order"], 1);
    let inv = &j["invariances"][1];
    assert_eq!(inv["kind"], "scale");
    assert_eq!(inv["name"], "V[1,·]");
    assert_eq!(
        inv["group"],
        serde_json::json!(["V[1,1]", "V[1,2]", "V[1,3]"])
    );
    let law = inv["law"].as_str().unwrap();
    assert!(
        law.starts_with("d‖V[1,·]‖²/dt = -(2λ + ηλ² + 2/3 η²λ³) ‖V[1,·]‖²"),
        "{law}"
    );
    assert!(inv["gd"].as_str().unwrap().contains("(1 - ηλ)²"));
}
