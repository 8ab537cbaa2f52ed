//! Minibatch SGD's counter terms by an independent, exact route (DESIGN.md §2.1, §2.5).
//!
//! Nothing here uses eomderive's `series` module. For a loss that is a polynomial in the
//! parameters with rational data, everything is computed exactly with the polynomials and
//! η-series of `tests/common/polyseries.rs` (over `BigRational`):
//!
//! 1. The examples ℓ_1..ℓ_N are split into m consecutive equal blocks; the batch loss f_k is the
//!    mean over block k (a polynomial) and g_k = ∇f_k its gradient.
//! 2. The epoch map for a visiting order σ is a truncated η-series of vector polynomials: start
//!    from the identity θ and apply θ ← θ − η g_{σ(1)}(θ), …, θ ← θ − η g_{σ(m)}(θ), each by
//!    substituting the series into the polynomial g_k (composition) and truncating in η.
//!    Cyclic: σ = 1..m. Shuffled: the mean of the epoch maps over all m! orders.
//! 3. The modified field F = F_0 + η F_1 + η² F_2 + … with F_0 = −g (g = ∇f, f the mean of all
//!    examples) is found by matching the time-T = mη flow of F,
//!    θ + Σ_j T^j/j! (L_F)^{j−1} F with L_A B = (DB)·A,
//!    against the epoch series order by order: F_k enters the η^{k+1} coefficient only through
//!    T·η^k F_k = m η^{k+1} F_k, so F_k = (epoch_{k+1} − flow_{k+1}|_{F_k=0}) / m. Then ξ_k = −F_k,
//!    and the whole flow is checked to equal the epoch series to the truncation order.
//!
//! The route checks itself (these tests run now): one batch gives GD's ξ_1, ξ_2, ξ_3 computed
//! from H and ∇³f of the polynomial f (DESIGN §2.1); ξ_1 matches §2.5's shuffled and cyclic
//! first-order formulas for m = 2 and m = 4; equal batches give GD's terms for both orders; the
//! ξ_2 polynomials of the one-parameter loss are pinned. Then eomderive's derivation is held to
//! it: ξ_1..ξ_3 for both orders, m = 2 and 4, evaluated in f64 at dyadic points, to 1e-12.

mod common;

use common::polyseries::{
    compose_vector, decimal, gradient, hess_apply, int, lie, rat, third_apply, to_f64, vadd,
    vscale, vsub, Poly, VSeries, Vector,
};
use eomderive::lang::Source;
use eomderive::numeric::Program;
use eomderive::series::{BatchOrder, Method};
use eomderive::{derive, Options};
use num_rational::BigRational;
use num_traits::One;

/// How an epoch visits the batches (this route's own name for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    Cyclic,
    Shuffled,
}

const VISITS: [Visit; 2] = [Visit::Cyclic, Visit::Shuffled];

impl Visit {
    fn batch_order(self) -> BatchOrder {
        match self {
            Visit::Cyclic => BatchOrder::Cyclic,
            Visit::Shuffled => BatchOrder::Shuffled,
        }
    }
}

/// A loss `mean(i, body)` that is a polynomial in its parameters, with its text and the same
/// example loss ℓ_i built as a polynomial.
struct Loss {
    /// (name, initial value).
    params: &'static [(&'static str, &'static str)],
    /// (name, decimal values), one value per example.
    data: &'static [(&'static str, &'static [&'static str])],
    /// The summand of the mean, in the loss language.
    body: &'static str,
    /// ℓ_i from the data values of example i (in the order of `data`).
    example: fn(&[BigRational]) -> Poly,
}

impl Loss {
    fn text(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(p, v)| format!("{p} = {v}"))
            .collect();
        let mut s = format!("param {}\n", params.join(", "));
        for (name, values) in self.data {
            s += &format!("data {name} = [{}]\n", values.join(", "));
        }
        s + &format!("loss = mean(i, {})\n", self.body)
    }

    fn n(&self) -> usize {
        self.params.len()
    }

    fn names(&self) -> Vec<&'static str> {
        self.params.iter().map(|p| p.0).collect()
    }

    fn examples(&self) -> Vec<Poly> {
        let count = self.data[0].1.len();
        (0..count)
            .map(|i| {
                let row: Vec<BigRational> = self.data.iter().map(|d| decimal(d.1[i])).collect();
                (self.example)(&row)
            })
            .collect()
    }

    /// f_1..f_m: the means over m consecutive equal blocks.
    fn batches(&self, m: usize) -> Vec<Poly> {
        let ex = self.examples();
        assert_eq!(
            ex.len() % m,
            0,
            "{} examples do not split into {m}",
            ex.len()
        );
        let size = ex.len() / m;
        ex.chunks(size)
            .map(|block| {
                let mut s = Poly::zero();
                for p in block {
                    s += p;
                }
                s.scale(&rat(1, size as i64))
            })
            .collect()
    }

    /// f, the mean of all examples.
    fn full(&self) -> Poly {
        self.batches(1).pop().unwrap()
    }
}

fn w() -> Poly {
    Poly::var(0)
}

fn v() -> Poly {
    Poly::var(1)
}

fn c(r: &BigRational) -> Poly {
    Poly::constant(r.clone())
}

/// x_i w³/3 + (w − y_i)²/2: one parameter, two examples (m = 2: one example per batch).
fn one_param_example(d: &[BigRational]) -> Poly {
    let (x, y) = (&d[0], &d[1]);
    let r = &w() - &c(y);
    &(&c(x) * &w().pow(3)).scale(&rat(1, 3)) + &(&r * &r).scale(&rat(1, 2))
}

const ONE_PARAM: Loss = Loss {
    params: &[("w", "0.5")],
    data: &[("x", &["1.0", "-2.0"]), ("y", &["0.5", "-1.0"])],
    body: "x[i]*w^3/3 + (w - y[i])^2/2",
    example: one_param_example,
};

/// The same with both examples equal.
const ONE_PARAM_EQUAL: Loss = Loss {
    params: &[("w", "0.5")],
    data: &[("x", &["1.0", "1.0"]), ("y", &["0.5", "0.5"])],
    body: "x[i]*w^3/3 + (w - y[i])^2/2",
    example: one_param_example,
};

/// (u v x_i − y_i)²/2 + u⁴ x_i/4: two parameters, four examples.
fn two_param_example(d: &[BigRational]) -> Poly {
    let (x, y) = (&d[0], &d[1]);
    let u = w();
    let r = &(&(&u * &v()) * &c(x)) - &c(y);
    &(&r * &r).scale(&rat(1, 2)) + &(&u.pow(4) * &c(x)).scale(&rat(1, 4))
}

const TWO_PARAM_BODY: &str = "(u*v*x[i] - y[i])^2/2 + u^4*x[i]/4";

const TWO_PARAM: Loss = Loss {
    params: &[("u", "0.3"), ("v", "-0.7")],
    data: &[
        ("x", &["0.5", "-1.0", "2.0", "1.5"]),
        ("y", &["1.0", "0.2", "-0.4", "0.8"]),
    ],
    body: TWO_PARAM_BODY,
    example: two_param_example,
};

/// Two equal halves (m = 2 gives equal batches of two examples).
const TWO_PARAM_EQUAL_HALVES: Loss = Loss {
    params: &[("u", "0.3"), ("v", "-0.7")],
    data: &[
        ("x", &["0.5", "-1.0", "0.5", "-1.0"]),
        ("y", &["1.0", "0.2", "1.0", "0.2"]),
    ],
    body: TWO_PARAM_BODY,
    example: two_param_example,
};

/// Four equal examples (every m gives equal batches).
const TWO_PARAM_EQUAL_ALL: Loss = Loss {
    params: &[("u", "0.3"), ("v", "-0.7")],
    data: &[
        ("x", &["-1.5", "-1.5", "-1.5", "-1.5"]),
        ("y", &["0.25", "0.25", "0.25", "0.25"]),
    ],
    body: TWO_PARAM_BODY,
    example: two_param_example,
};

/// One SGD step θ ← θ − η g(θ) on a series θ(η), truncated at η^order.
fn step(theta: &VSeries, grad: &[Poly], order: usize) -> VSeries {
    let g = compose_vector(grad, theta, order - 1);
    let mut out = theta.truncate(order);
    for j in 1..=order {
        out.coeffs[j] = vsub(&out.coeffs[j], &g.coeffs[j - 1]);
    }
    out
}

/// Σ, over the orders of the batches not yet `used`, of the rest of the epoch from `theta`: every
/// order's epoch map once the root call has `used` all false, shared prefixes stepped once.
fn sum_over_orders(
    theta: &VSeries,
    grads: &[Vector],
    used: &mut Vec<bool>,
    order: usize,
) -> VSeries {
    if used.iter().all(|&u| u) {
        return theta.clone();
    }
    let mut sum = VSeries::zero(theta.dim(), order);
    for k in 0..grads.len() {
        if !used[k] {
            used[k] = true;
            let next = step(theta, &grads[k], order);
            sum = sum.add(&sum_over_orders(&next, grads, used, order));
            used[k] = false;
        }
    }
    sum
}

/// The epoch map (cyclic) or its mean over all orders (shuffled), truncated at η^order.
fn epoch(grads: &[Vector], visit: Visit, order: usize) -> VSeries {
    let n = grads[0].len();
    let start = VSeries::identity(n, order);
    match visit {
        Visit::Cyclic => grads.iter().fold(start, |t, g| step(&t, g, order)),
        Visit::Shuffled => {
            let m = grads.len();
            let count: i64 = (1..=m as i64).product();
            sum_over_orders(&start, grads, &mut vec![false; m], order).scale(&rat(1, count))
        }
    }
}

/// The time-mη flow of F = Σ_k η^k F_k: θ + Σ_{j≥1} (mη)^j/j! (L_F)^{j−1} F, to η^order.
fn flow(field: &[Vector], m: usize, order: usize) -> VSeries {
    let n = field[0].len();
    let f = VSeries {
        coeffs: field.to_vec(),
    }
    .truncate(order);
    let mut out = VSeries::identity(n, order);
    let mut term = f.clone(); // (L_F)^{j−1} F
    let mut coef = BigRational::one(); // m^j / j!
    for j in 1..=order {
        coef = coef * int(m as i64) / int(j as i64);
        out = out.add(&term.shift(j).scale(&coef));
        if j < order {
            term = lie(&f, &term, order - j - 1).truncate(order);
        }
    }
    out
}

/// ξ_1..ξ_order of SGD on these batch losses (in n parameters), by matching the flow of F to
/// the epoch series. Checks that the flow of the result equals the epoch series to η^{order+1}.
fn sgd_xi(batches: &[Poly], n: usize, visit: Visit, order: usize) -> Vec<Vector> {
    let m = batches.len();
    let grads: Vec<Vector> = batches.iter().map(|f| gradient(f, n)).collect();
    let e = epoch(&grads, visit, order + 1);
    let mut g = vec![Poly::zero(); n];
    for gk in &grads {
        g = vadd(&g, gk);
    }
    let g = vscale(&g, &rat(1, m as i64));
    let mut field: Vec<Vector> = vec![vscale(&g, &int(-1))];
    for k in 1..=order {
        field.push(vec![Poly::zero(); n]);
        let phi = flow(&field, m, k + 1);
        field[k] = vscale(
            &vsub(&e.coeffs[k + 1], &phi.coeffs[k + 1]),
            &rat(1, m as i64),
        );
    }
    assert_eq!(
        flow(&field, m, order + 1),
        e,
        "{visit:?}, m = {m}: the flow of the solved field is not the epoch map"
    );
    field[1..].iter().map(|f| vscale(f, &int(-1))).collect()
}

/// GD's ξ_1, ξ_2, ξ_3 from DESIGN §2.1: ½Hg; (1/12)T(g,g) + (1/3)H²g;
/// (1/12)T(Hg,g) + (1/12)H T(g,g) + (1/4)H³g.
fn gd_xi(f: &Poly, n: usize) -> Vec<Vector> {
    let g = gradient(f, n);
    let h = |a: &[Poly]| hess_apply(f, a);
    let t = |a: &[Poly], b: &[Poly]| third_apply(f, a, b);
    let hg = h(&g);
    let hhg = h(&hg);
    let tgg = t(&g, &g);
    let xi1 = vscale(&hg, &rat(1, 2));
    let xi2 = vadd(&vscale(&tgg, &rat(1, 12)), &vscale(&hhg, &rat(1, 3)));
    let xi3 = vadd(
        &vadd(
            &vscale(&t(&hg, &g), &rat(1, 12)),
            &vscale(&h(&tgg), &rat(1, 12)),
        ),
        &vscale(&h(&hhg), &rat(1, 4)),
    );
    vec![xi1, xi2, xi3]
}

/// §2.5's ξ_1: (1/(2m)) Σ_a H_a g_a, plus Σ_{j<k} (H_j g_k − H_k g_j) for cyclic.
fn first_order_formula(batches: &[Poly], n: usize, visit: Visit) -> Vector {
    let m = batches.len();
    let grads: Vec<Vector> = batches.iter().map(|f| gradient(f, n)).collect();
    let mut s = vec![Poly::zero(); n];
    for (f, g) in batches.iter().zip(&grads) {
        s = vadd(&s, &hess_apply(f, g));
    }
    if visit == Visit::Cyclic {
        for j in 0..m {
            for k in j + 1..m {
                s = vadd(&s, &hess_apply(&batches[j], &grads[k]));
                s = vsub(&s, &hess_apply(&batches[k], &grads[j]));
            }
        }
    }
    vscale(&s, &rat(1, 2 * m as i64))
}

fn show(x: &[Poly], names: &[&str]) -> String {
    let parts: Vec<String> = x.iter().map(|p| p.show(names)).collect();
    format!("({})", parts.join(", "))
}

#[test]
fn one_batch_gives_gd() {
    for loss in [&ONE_PARAM, &TWO_PARAM] {
        let f = loss.full();
        let want = gd_xi(&f, loss.n());
        for visit in VISITS {
            let got = sgd_xi(&loss.batches(1), loss.n(), visit, 3);
            for k in 0..3 {
                assert_eq!(
                    got[k],
                    want[k],
                    "{visit:?}, m = 1, ξ_{}: {} ≠ GD's {}",
                    k + 1,
                    show(&got[k], &loss.names()),
                    show(&want[k], &loss.names())
                );
            }
        }
    }
}

#[test]
fn first_order_matches_the_known_formulas() {
    for (loss, m) in [(&ONE_PARAM, 2), (&TWO_PARAM, 2), (&TWO_PARAM, 4)] {
        let batches = loss.batches(m);
        for visit in VISITS {
            let got = sgd_xi(&batches, loss.n(), visit, 1);
            let want = first_order_formula(&batches, loss.n(), visit);
            assert_eq!(
                got[0],
                want,
                "{visit:?}, m = {m}, ξ_1: {} ≠ the formula's {}",
                show(&got[0], &loss.names()),
                show(&want, &loss.names())
            );
        }
    }
}

#[test]
fn equal_batches_give_gd() {
    for (loss, m, order) in [
        (&ONE_PARAM_EQUAL, 2, 3),
        (&TWO_PARAM_EQUAL_HALVES, 2, 3),
        (&TWO_PARAM_EQUAL_ALL, 4, 2),
    ] {
        let want = gd_xi(&loss.full(), loss.n());
        for visit in VISITS {
            let got = sgd_xi(&loss.batches(m), loss.n(), visit, order);
            for k in 0..order {
                assert_eq!(
                    got[k],
                    want[k],
                    "{visit:?}, m = {m}, equal batches, ξ_{}: {} ≠ GD's {}",
                    k + 1,
                    show(&got[k], &loss.names()),
                    show(&want[k], &loss.names())
                );
            }
        }
    }
}

/// The one-parameter loss's ξ_2 for m = 2, written out (f_1 = w³/3 + (w − 1/2)²/2,
/// f_2 = −2w³/3 + (w + 1)²/2).
#[test]
fn one_param_xi2_polynomials() {
    let names = ONE_PARAM.names();
    let batches = ONE_PARAM.batches(2);
    let cyclic = sgd_xi(&batches, 1, Visit::Cyclic, 2);
    let shuffled = sgd_xi(&batches, 1, Visit::Shuffled, 2);
    assert_eq!(
        cyclic[1][0].show(&names),
        "-27/4*w^4 + 6*w^3 + 5*w^2 - w - 1/16"
    );
    assert_eq!(
        shuffled[1][0].show(&names),
        "-21/4*w^4 + 15/2*w^3 + 2*w^2 - w - 1/16"
    );
}

/// The loss texts parse to the same loss and gradient as the polynomials (so a failure of the
/// comparison below is about ξ, not about the test's texts).
#[test]
fn texts_match_the_polynomials() {
    for loss in [
        &ONE_PARAM,
        &ONE_PARAM_EQUAL,
        &TWO_PARAM,
        &TWO_PARAM_EQUAL_HALVES,
        &TWO_PARAM_EQUAL_ALL,
    ] {
        let options = Options {
            order: 0,
            method: Some(Method::Gd),
            analyze: false,
            ..Options::default()
        };
        let d = derive(&Source::inline(&loss.text()), &options).unwrap();
        assert_eq!(d.model.params, loss.names());
        let f = loss.full();
        let g = gradient(&f, loss.n());
        let mut roots = vec![d.model.loss];
        roots.extend(&d.gradient);
        let program = Program::compile(&d.model.graph, &roots);
        for point in points(loss.n()) {
            let x: Vec<f64> = point.iter().map(to_f64).collect();
            let got = program.eval(&x).unwrap();
            let mut want = vec![to_f64(&f.eval(&point))];
            want.extend(g.iter().map(|p| to_f64(&p.eval(&point))));
            for (a, b) in got.iter().zip(&want) {
                assert!(close(*a, *b, 1e-14), "{}: {got:?} ≠ {want:?}", loss.text());
            }
        }
    }
}

/// Dyadic points (exact in f64).
fn points(n: usize) -> Vec<Vec<BigRational>> {
    let all = [
        [rat(1, 4), rat(-3, 4)],
        [rat(1, 2), rat(5, 8)],
        [rat(-1, 1), rat(3, 8)],
    ];
    all.iter().map(|p| p[..n].to_vec()).collect()
}

/// |a − b| within `rel` of the larger magnitude, with the floor `scale` (the size of the
/// vector the value belongs to) for components that cancel to near zero.
fn close_scaled(a: f64, b: f64, rel: f64, scale: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(scale) + 1e-300
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    close_scaled(a, b, rel, 1e-3)
}

/// Compares eomderive's SGD ξ_1..ξ_order with this route's at the dyadic points, for both orders.
fn compare_with_eomderive(loss: &Loss, m: usize, order: usize) {
    let names = loss.names();
    let mut failures = Vec::new();
    for visit in VISITS {
        let exact = sgd_xi(&loss.batches(m), loss.n(), visit, order);
        let options = Options {
            order,
            method: Some(Method::Sgd),
            batches: Some(m),
            batch_order: Some(visit.batch_order()),
            analyze: false,
            ..Options::default()
        };
        let d = derive(&Source::inline(&loss.text()), &options).unwrap();
        assert_eq!(d.model.params, names, "parameter order");
        assert_eq!(d.xi.len(), order, "{visit:?}: number of counter terms");
        for (k, want_k) in exact.iter().enumerate() {
            let program = Program::compile(&d.model.graph, &d.xi[k]);
            for point in points(loss.n()) {
                let x: Vec<f64> = point.iter().map(to_f64).collect();
                let got = program.eval(&x).unwrap();
                let want: Vec<f64> = want_k.iter().map(|p| to_f64(&p.eval(&point))).collect();
                let scale = want.iter().fold(1e-12f64, |s, v| s.max(v.abs()));
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    if !close_scaled(*a, *b, 1e-12, scale) {
                        failures.push(format!(
                            "{visit:?} m = {m}: ξ_{} component {} ({}) at {:?}: eomderive {a:e}, \
                             exact {b:e} (exact polynomial {})",
                            k + 1,
                            i,
                            names[i],
                            x,
                            want_k[i].show(&names)
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        loss.text(),
        failures.join("\n")
    );
}

#[test]
fn eomderive_sgd_one_param_two_batches() {
    compare_with_eomderive(&ONE_PARAM, 2, 3);
}

#[test]
fn eomderive_sgd_two_params_two_batches() {
    compare_with_eomderive(&TWO_PARAM, 2, 3);
}

#[test]
fn eomderive_sgd_two_params_four_batches() {
    compare_with_eomderive(&TWO_PARAM, 4, 3);
}

#[test]
fn polynomial_arithmetic() {
    // (u + v)² − u² − 2uv − v² = 0, ∂(u³)/∂u = 3u², and the written form.
    let s = &w() + &v();
    let z = &(&(&s * &s) - &w().pow(2)) - &(&(&w() * &v()).scale(&int(2)) + &v().pow(2));
    assert!(z.is_zero());
    assert_eq!(w().pow(3).deriv(0), w().pow(2).scale(&int(3)));
    assert_eq!(
        (&(&w().pow(2) * &v()).scale(&rat(-1, 2)) + &c(&decimal("1.5"))).show(&["u", "v"]),
        "-1/2*u^2*v + 3/2"
    );
}
