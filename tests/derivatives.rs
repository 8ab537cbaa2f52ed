//! The symbolic gradient, Hessian and higher directional derivatives against central finite
//! differences, on every example at two points.

mod common;

use common::{close, examples, initial, load, perturbed, stem};
use eomderive::expr::{Diff, Id};
use eomderive::numeric::Program;
use num_rational::BigRational;

/// Central difference of `f` along coordinate `j` (a vector function).
fn fd(f: &Program, x: &[f64], j: usize, h: f64) -> Vec<f64> {
    let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
    xp[j] += h;
    xm[j] -= h;
    let (fp, fm) = (f.eval(&xp).unwrap(), f.eval(&xm).unwrap());
    fp.iter()
        .zip(&fm)
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect()
}

fn points(x0: &[f64]) -> [Vec<f64>; 2] {
    [x0.to_vec(), perturbed(x0, 7, 0.3)]
}

#[test]
fn gradient_matches_finite_differences() {
    for path in examples() {
        let mut m = load(&path);
        let grad = Diff::new(m.params.len()).gradient(&mut m.graph, m.loss);
        let f = Program::compile(&m.graph, &[m.loss]);
        let g = Program::compile(&m.graph, &grad);
        for x in points(&initial(&m)) {
            let exact = g.eval(&x).unwrap();
            for (j, e) in exact.iter().enumerate() {
                let approx = fd(&f, &x, j, 1e-5)[0];
                assert!(
                    close(*e, approx, 1e-7),
                    "{}: ∂f/∂{} = {e}, finite difference {approx}",
                    stem(&path),
                    m.params[j]
                );
            }
        }
    }
}

#[test]
fn hessian_matches_finite_differences_and_is_symmetric() {
    for path in examples() {
        let mut m = load(&path);
        let n = m.params.len();
        let mut d = Diff::new(n);
        let grad = d.gradient(&mut m.graph, m.loss);
        let hess = d.hessian(&mut m.graph, &grad);
        let g = Program::compile(&m.graph, &grad);
        let flat: Vec<Id> = hess.iter().flatten().copied().collect();
        let h = Program::compile(&m.graph, &flat);
        for x in points(&initial(&m)) {
            let exact = h.eval(&x).unwrap();
            for j in 0..n {
                let col = fd(&g, &x, j, 1e-5);
                for i in 0..n {
                    let e = exact[j * n + i];
                    assert!(
                        close(e, col[i], 1e-7),
                        "{}: H[{i},{j}] = {e}, finite difference {}",
                        stem(&path),
                        col[i]
                    );
                    assert!(
                        close(e, exact[i * n + j], 1e-12),
                        "{}: H not symmetric",
                        stem(&path)
                    );
                }
            }
        }
    }
}

/// ∇^m g(v_1, …, v_m) for m = 1..3, two ways: with directions that depend on θ (g and H g,
/// as the counter terms use them), and with the same directions frozen as constants, whose
/// finite difference along v_m must equal the next derivative.
#[test]
fn higher_directional_derivatives_match_finite_differences() {
    for path in examples() {
        let mut m = load(&path);
        let n = m.params.len();
        let mut d = Diff::new(n);
        let grad = d.gradient(&mut m.graph, m.loss);
        let x = initial(&m);
        let hg = d.gradient_directional(&mut m.graph, &grad, std::slice::from_ref(&grad));
        let dirs = [grad.clone(), hg.clone(), grad.clone()];
        // The directions' values at x, frozen as exact constants of the graph.
        let frozen: Vec<Vec<Id>> = dirs
            .iter()
            .map(|v| {
                let vals = Program::compile(&m.graph, v).eval(&x).unwrap();
                vals.iter()
                    .map(|&f| m.graph.num(BigRational::from_float(f).unwrap()))
                    .collect()
            })
            .collect();
        for order in 1..=3 {
            let live = d.gradient_directional(&mut m.graph, &grad, &dirs[..order]);
            let fixed = d.gradient_directional(&mut m.graph, &grad, &frozen[..order]);
            let lower = d.gradient_directional(&mut m.graph, &grad, &frozen[..order - 1]);
            let live = Program::compile(&m.graph, &live).eval(&x).unwrap();
            let fixed = Program::compile(&m.graph, &fixed).eval(&x).unwrap();
            let lower = Program::compile(&m.graph, &lower);
            let v: Vec<f64> = Program::compile(&m.graph, &dirs[order - 1])
                .eval(&x)
                .unwrap();
            let h = 1e-4 / (1.0 + v.iter().map(|a| a.abs()).fold(0.0, f64::max));
            let at = |s: f64| -> Vec<f64> { x.iter().zip(&v).map(|(a, b)| a + s * b).collect() };
            let (p, q) = (lower.eval(&at(h)).unwrap(), lower.eval(&at(-h)).unwrap());
            for i in 0..n {
                let approx = (p[i] - q[i]) / (2.0 * h);
                assert!(
                    close(live[i], fixed[i], 1e-12),
                    "{}: order {order}",
                    stem(&path)
                );
                assert!(
                    close(fixed[i], approx, 1e-6),
                    "{}: ∇^{order}g[{i}] = {}, finite difference {approx}",
                    stem(&path),
                    fixed[i]
                );
            }
        }
    }
}
