//! The loss-specific counter terms against independent routes: the quadratic closed form
//! (exactly, as rationals) and the tree form evaluated with the loss's derivative tensors.
//! Snapshots of ξ_1..ξ_3 per example record the formulas themselves.

mod common;

use eomderive::hash::HashMap;

use common::{examples, initial, snapshot_settings, stem};
use eomderive::expr::{Diff, Id, VarId};
use eomderive::numeric::Program;
use eomderive::{derive, render, Options};
use num_rational::BigRational;
use num_traits::Zero;

fn q(n: i64, d: i64) -> BigRational {
    BigRational::new(n.into(), d.into())
}

fn matmul(a: &[Vec<BigRational>], b: &[Vec<BigRational>]) -> Vec<Vec<BigRational>> {
    let n = a.len();
    (0..n)
        .map(|i| {
            (0..n)
                .map(|j| (0..n).fold(BigRational::zero(), |s, k| s + &a[i][k] * &b[k][j]))
                .collect()
        })
        .collect()
}

/// f = ½ θᵀAθ gives ξ_k = A^{k+1} θ / (k+1), exactly. ξ_k is linear in θ, so its matrix is
/// read off exactly by substituting the unit vectors for θ and folding the constants.
#[test]
#[allow(clippy::needless_range_loop)] // j is both a unit vector's index and a matrix column
fn quadratic_loss_matches_the_closed_form_exactly() {
    let a = [
        [q(2, 1), q(-1, 2), q(1, 3)],
        [q(-1, 2), q(3, 2), q(1, 5)],
        [q(1, 3), q(1, 5), q(1, 1)],
    ];
    let rows: Vec<String> = a
        .iter()
        .map(|r| {
            format!(
                "[{}]",
                r.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    let text = format!(
        "data A[3,3] = [{}]\nparam x[3]\nloss = sum(i, sum(j, x[i] * A[i,j] * x[j])) / 2",
        rows.join(", ")
    );
    let order = 6;
    let mut d = common::derive_inline(&text, order);
    let a: Vec<Vec<BigRational>> = a.iter().map(|r| r.to_vec()).collect();
    let mut power = a.clone(); // A^{k+1}, starting at k = 0
    for k in 1..=order {
        power = matmul(&power, &a);
        for j in 0..3 {
            // θ = e_j
            let subst: HashMap<VarId, Id> = (0..3)
                .map(|v| (VarId(v as u32), d.model.graph.int(i64::from(v == j))))
                .collect();
            let column = d
                .model
                .graph
                .substitute(&d.xi[k - 1], &subst, &mut HashMap::default());
            for (i, &c) in column.iter().enumerate() {
                let got = d
                    .model
                    .graph
                    .as_num(c)
                    .expect("folds to a constant")
                    .clone();
                let want = &power[i][j] / BigRational::from_integer((k as i64 + 1).into());
                assert_eq!(got, want, "ξ_{k}[{i}] coefficient of θ_{j}");
            }
        }
    }
}

/// ∂^m g_i / ∂θ_{j_1}…∂θ_{j_m} at x, for every index tuple, flattened row-major (i first).
fn derivative_tensor(m: &eomderive::lang::Model, x: &[f64], order: usize) -> Vec<f64> {
    let n = m.params.len();
    let mut model = m.clone();
    let mut d = Diff::new(n);
    let grad = d.gradient(&mut model.graph, model.loss);
    let zero = model.graph.int(0);
    let one = model.graph.int(1);
    let unit = |j: usize| -> Vec<Id> { (0..n).map(|k| if k == j { one } else { zero }).collect() };
    let mut tensor = vec![0.0; n.pow(order as u32 + 1)];
    // Every tuple (j_1..j_m) in row-major order; symmetric, but computing all is simplest.
    for flat in 0..n.pow(order as u32) {
        let mut idx = Vec::with_capacity(order);
        let mut r = flat;
        for _ in 0..order {
            idx.push(r % n);
            r /= n;
        }
        idx.reverse();
        let dirs: Vec<Vec<Id>> = idx.iter().map(|&j| unit(j)).collect();
        let v = d.gradient_directional(&mut model.graph, &grad, &dirs);
        let vals = Program::compile(&model.graph, &v).eval(x).unwrap();
        for (i, val) in vals.into_iter().enumerate() {
            tensor[i * n.pow(order as u32) + flat] = val;
        }
    }
    tensor
}

/// G(τ) at x by contracting derivative tensors with the children's values.
fn elementary(
    s: &eomderive::series::GenericSeries,
    t: eomderive::series::TreeId,
    tensors: &[Vec<f64>],
    n: usize,
) -> Vec<f64> {
    let children = s.forest.children(t);
    let m = children.len();
    let vs: Vec<Vec<f64>> = children
        .iter()
        .map(|&c| elementary(s, c, tensors, n))
        .collect();
    let t = &tensors[m];
    (0..n)
        .map(|i| {
            (0..n.pow(m as u32))
                .map(|flat| {
                    let mut r = flat;
                    let mut prod = t[i * n.pow(m as u32) + flat];
                    for k in (0..m).rev() {
                        prod *= vs[k][r % n];
                        r /= n;
                    }
                    prod
                })
                .sum()
        })
        .collect()
}

#[test]
fn loss_specific_terms_equal_the_tree_form_with_derivative_tensors() {
    let order = 4;
    for path in examples() {
        let m = common::load(&path);
        let x = initial(&m);
        let n = m.params.len();
        let tensors: Vec<Vec<f64>> = (0..=order).map(|k| derivative_tensor(&m, &x, k)).collect();
        let d = common::derive_example_one_field(&path, order);
        // The table of the file's optimizer (GD's unless it names another).
        let s = eomderive::series::optimizer_series(&d.optimizer, order).unwrap();
        let ev = d.evaluation.unwrap();
        for k in 1..=order {
            let mut want = vec![0.0; n];
            for (t, c) in &s.xi[k - 1] {
                let g = elementary(&s, *t, &tensors, n);
                let c = eomderive::numeric::to_f64(c);
                for i in 0..n {
                    want[i] += c * g[i];
                }
            }
            let norm = want.iter().map(|v| v * v).sum::<f64>().sqrt();
            let err = want
                .iter()
                .zip(&ev.xi[k - 1])
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                err <= 1e-12 * norm.max(1e-300),
                "{}: ξ_{k} = {:?}, tree form {want:?} (relative error {})",
                stem(&path),
                ev.xi[k - 1],
                err / norm
            );
        }
    }
}

#[test]
fn counter_term_snapshots_text_and_latex() {
    for path in examples() {
        let d = common::derive_example(&path, 3);
        snapshot_settings().bind(|| {
            insta::assert_snapshot!(format!("xi_text_{}", stem(&path)), render::text(&d));
            insta::assert_snapshot!(format!("xi_latex_{}", stem(&path)), render::latex(&d));
        });
    }
}

#[test]
fn first_order_term_is_half_hessian_times_gradient() {
    // ξ_1 = ½ H g = ¼ ∇‖g‖²: the implicit-gradient-regularisation term, checked on every
    // example against the gradient of ¼‖g‖² built separately.
    for path in examples() {
        let mut m = common::load(&path);
        let n = m.params.len();
        let mut diff = Diff::new(n);
        let g = diff.gradient(&mut m.graph, m.loss);
        let squares: Vec<Id> = g.iter().map(|&c| m.graph.powi(c, 2)).collect();
        let norm2 = m.graph.sum(squares);
        let quarter = m.graph.num(q(1, 4));
        let reg = m.graph.mul(quarter, norm2);
        let grad_reg = Diff::new(n).gradient(&mut m.graph, reg);
        let x = initial(&m);
        let want = Program::compile(&m.graph, &grad_reg).eval(&x).unwrap();
        let d = common::derive_example_gd(&path, 1);
        let got = &d.evaluation.unwrap().xi[0];
        for i in 0..n {
            assert!(
                common::close(got[i], want[i], 1e-12),
                "{}: {got:?} vs {want:?}",
                stem(&path)
            );
        }
    }
}

/// Equality saturation changes the form, never the values, and never grows the program.
#[test]
fn egg_simplification_keeps_values_and_never_grows() {
    for path in examples() {
        let src = common::source(&path);
        let fast = derive(
            &src,
            &Options {
                order: 3,
                ..Default::default()
            },
        )
        .unwrap();
        let egg = derive(
            &src,
            &Options {
                order: 3,
                simplify: eomderive::Simplify::Egg,
                ..Default::default()
            },
        )
        .unwrap();
        let outcome = egg.simplification.clone().unwrap();
        assert!(
            outcome.ops_after <= outcome.ops_before,
            "{}: {outcome:?}",
            stem(&path)
        );
        assert!(
            egg.ops <= fast.ops,
            "{}: egg {} > fast {}",
            stem(&path),
            egg.ops,
            fast.ops
        );
        let (a, b) = (fast.evaluation.unwrap(), egg.evaluation.unwrap());
        for (x, y) in a.xi.iter().flatten().zip(b.xi.iter().flatten()) {
            assert!(common::close(*x, *y, 1e-12), "{}: {x} vs {y}", stem(&path));
        }
        for (x, y) in a.gradient.iter().zip(&b.gradient) {
            assert!(common::close(*x, *y, 1e-12), "{}: {x} vs {y}", stem(&path));
        }
    }
}
