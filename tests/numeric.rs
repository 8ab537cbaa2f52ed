//! The numeric layer: compiled vector fields against the checked interpreter, and the
//! symbolic counter terms against an independent route (tree form with Taylor arithmetic on
//! the compiled gradient, no symbolic ξ).

mod common;

use common::{examples, initial, perturbed, stem};
use eomderive::lang::Source;
use eomderive::numeric::{tree_xi, Eom, Program, VectorField};
use eomderive::{derive, Options};
use nalgebra::DVector;

#[test]
fn symbolic_counter_terms_equal_the_taylor_tree_route() {
    let order = 4;
    for path in examples() {
        let d = common::derive_example_one_field(&path, order);
        // The table of the file's optimizer (GD's unless it names another).
        let s = eomderive::series::optimizer_series(&d.optimizer, order).unwrap();
        let gradient = Program::compile(&d.model.graph, &d.gradient);
        let symbolic: Vec<Id> = d.xi.iter().flatten().copied().collect();
        let symbolic = Program::compile(&d.model.graph, &symbolic);
        let x0 = initial(&d.model);
        for x in [x0.clone(), perturbed(&x0, 3, 0.2)] {
            let want = tree_xi(&s, &gradient, &x).unwrap();
            let got = symbolic.eval(&x).unwrap();
            let n = x.len();
            for k in 0..order {
                let g = &got[k * n..(k + 1) * n];
                let norm = want[k].iter().map(|v| v * v).sum::<f64>().sqrt();
                let err = want[k]
                    .iter()
                    .zip(g)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(
                    err <= 1e-12 * norm,
                    "{}: ξ_{} symbolic {g:?}, Taylor route {:?}",
                    stem(&path),
                    k + 1,
                    want[k]
                );
            }
        }
    }
}

use eomderive::expr::Id;

#[test]
fn compiled_fields_match_the_checked_interpreter() {
    for path in examples() {
        let d = common::derive_example(&path, 3);
        let x = DVector::from_vec(initial(&d.model));
        let field = VectorField::compile(&d.model.graph, &d.gradient);
        let fast = field.eval(&x).unwrap();
        let checked = Program::compile(&d.model.graph, &d.gradient)
            .eval(x.as_slice())
            .unwrap();
        assert_eq!(fast.as_slice(), &checked[..], "{}", stem(&path));
        // The EoM right-hand side: −(g + η ξ_1 + η² ξ_2 + η³ ξ_3), assembled by hand.
        let eom = Eom::compile(&d.model.graph, &d.gradient, &d.xi);
        let ev = d.evaluation.unwrap();
        let eta = 0.1;
        for k in 0..=3 {
            let rhs = eom.rhs(&x, eta, k).unwrap();
            for i in 0..x.len() {
                let mut want = -ev.gradient[i];
                for j in 1..=k {
                    want -= eta.powi(j as i32) * ev.xi[j - 1][i];
                }
                assert!(common::close(rhs[i], want, 1e-14), "{} K={k}", stem(&path));
            }
        }
    }
}

#[test]
fn domain_errors_survive_the_fast_path() {
    let d = derive(
        &Source::inline("param u = 2\nloss = log(u) + sqrt(u)"),
        &Options::default(),
    )
    .unwrap();
    let field = VectorField::compile(&d.model.graph, &d.gradient);
    let e = field.eval(&DVector::from_vec(vec![-1.0])).unwrap_err();
    assert!(
        e.what.contains("log of -1") || e.what.contains("square root"),
        "{}",
        e.what
    );
    let e = field.eval(&DVector::from_vec(vec![0.0])).unwrap_err();
    assert!(!e.what.is_empty());
}
