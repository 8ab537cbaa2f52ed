//! The loss language lowers correctly: every feature gives the same loss, values and gradient
//! as the same loss written out by hand with scalar parameters and explicit sums; numbers are
//! exact; parameters are named and ordered as documented; `--at` points parse.

use eomderive::expr::Diff;
use eomderive::lang::{parse_point, parse_str, Model, Settings};
use eomderive::numeric::Program;
use eomderive::series::{BatchOrder, Method, Optimizer};
use eomderive::{derive, lang::Source, render, Options};
use num_bigint::BigInt;
use num_rational::BigRational;

fn q(n: i64, d: i64) -> BigRational {
    BigRational::new(BigInt::from(n), BigInt::from(d))
}

fn model(src: &str) -> Model {
    parse_str(src).unwrap_or_else(|e| panic!("{src:?} should parse, but:\n{e}"))
}

/// The loss followed by its gradient at `x`.
fn loss_and_gradient(m: &Model, x: &[f64]) -> Vec<f64> {
    let mut g = m.graph.clone();
    let grad = Diff::new(m.params.len()).gradient(&mut g, m.loss);
    let mut roots = vec![m.loss];
    roots.extend(grad);
    Program::compile(&g, &roots)
        .eval(x)
        .unwrap_or_else(|e| panic!("undefined at {x:?}: {e}"))
}

/// A small deterministic generator (splitmix64), so the points are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Three pseudo-random points of dimension `n` with coordinates in `lo..hi`.
fn points(n: usize, lo: f64, hi: f64, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = Rng(seed);
    (0..3)
        .map(|_| (0..n).map(|_| lo + (hi - lo) * rng.next()).collect())
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    a.is_finite() && b.is_finite() && (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
}

/// Asserts that two losses have as many parameters and agree in value and gradient (to 1e-12
/// relative) at three pseudo-random points with coordinates in `lo..hi`. Returns the first model.
fn same_in(feature: &str, by_hand: &str, lo: f64, hi: f64) -> Model {
    let a = model(feature);
    let b = model(by_hand);
    assert_eq!(
        a.params.len(),
        b.params.len(),
        "parameter counts differ: {:?} vs {:?}",
        a.params,
        b.params
    );
    for x in points(a.params.len(), lo, hi, 0x5eed ^ feature.len() as u64) {
        let va = loss_and_gradient(&a, &x);
        let vb = loss_and_gradient(&b, &x);
        assert_eq!(va.len(), a.params.len() + 1);
        for (k, (p, r)) in va.iter().zip(&vb).enumerate() {
            let what = if k == 0 {
                "loss".to_string()
            } else {
                format!("d/d{}", a.params[k - 1])
            };
            assert!(
                close(*p, *r),
                "{what} differs at {x:?}: {p} vs {r}\n--- feature:\n{feature}\n--- by hand:\n{by_hand}"
            );
        }
    }
    a
}

/// [`same_in`] with coordinates in -1.5..1.5.
fn same(feature: &str, by_hand: &str) -> Model {
    same_in(feature, by_hand, -1.5, 1.5)
}

/// The comparison is not vacuous: a change in the ninth digit is caught, in the gradient too.
#[test]
#[should_panic(expected = "loss differs")]
fn comparison_catches_a_different_loss() {
    same("u^2 + v", "param u, v\nloss = u^2 + v*(1 + 1e-9)");
}

#[test]
#[should_panic(expected = "d/dv differs")]
fn comparison_catches_a_different_gradient() {
    // The losses agree to 1e-15 relative, the derivatives by v differ by 1e-9.
    same(
        "1e6 + u^2 + v",
        "param u, v\nloss = 1e6 + u^2 + v*(1 + 1e-9)",
    );
}

fn initial(m: &Model) -> Vec<Option<BigRational>> {
    m.initial.clone()
}

// ---------------------------------------------------------------------------------------------
// Arrays

#[test]
fn vector_and_matrix_params_expand_row_major() {
    let m = same(
        "param w[3]
         param W[2,3]
         loss = w[1]*W[1,1] + w[2]*W[1,2]^2 + w[3]*W[1,3]^3 + W[2,1]*W[2,2] - W[2,3]/(2 + w[1]^2)",
        "param w1, w2, w3
         param W11, W12, W13, W21, W22, W23
         loss = w1*W11 + w2*W12^2 + w3*W13^3 + W21*W22 - W23/(2 + w1^2)",
    );
    assert_eq!(
        m.params,
        ["w[1]", "w[2]", "w[3]", "W[1,1]", "W[1,2]", "W[1,3]", "W[2,1]", "W[2,2]", "W[2,3]"]
    );
    assert_eq!(m.param_index("W[2,1]"), Some(6));
}

#[test]
fn matrix_initial_values_are_row_major() {
    let m = model("param W[2,3] = [[1, 2, 3], [4, 5, 6]]\nloss = sum(i, sum(j, W[i,j]^2))");
    let want: Vec<Option<BigRational>> = (1..=6).map(|k| Some(q(k, 1))).collect();
    assert_eq!(initial(&m), want);
    // Without a declared size the shape comes from the value.
    let m = model("param W = [[1, 2, 3], [4, 5, 6]]\nloss = W[2,1]");
    assert_eq!(m.params[3], "W[2,1]");
    assert_eq!(initial(&m), want);
}

#[test]
fn vector_and_matrix_data_expand_row_major() {
    let m = same(
        "data x[3] = [0.5, -1, 2]
         data X[2,3] = [[1, 2, 3], [4, 5, 6]]
         param u, v
         loss = (u*x[1] + v*x[3] + x[2])^2 + X[1,2]*u*v + X[2,3]*v^2 - X[2,1]*u",
        "param u, v
         loss = (u*0.5 + v*2 - 1)^2 + 2*u*v + 6*v^2 - 4*u",
    );
    assert_eq!(m.params, ["u", "v"], "data are not parameters");
}

#[test]
fn several_params_on_one_line() {
    let m = same(
        "param u = 0.3, v = -1.2, w[2] = [1, 2.5], c
         loss = u*v + w[1]*c^2 - w[2]*u",
        "param u = 0.3
         param v = -1.2
         param w1 = 1
         param w2 = 2.5
         param c
         loss = u*v + w1*c^2 - w2*u",
    );
    assert_eq!(m.params, ["u", "v", "w[1]", "w[2]", "c"]);
    assert_eq!(
        initial(&m),
        [
            Some(q(3, 10)),
            Some(q(-6, 5)),
            Some(q(1, 1)),
            Some(q(5, 2)),
            None
        ]
    );
    // Data too.
    same(
        "data a = 2, b[2] = [3, 4]\nparam u\nloss = a*u + b[1]*u^2 + b[2]",
        "param u\nloss = 2*u + 3*u^2 + 4",
    );
}

// ---------------------------------------------------------------------------------------------
// Reductions

const REDUCTIONS_BY_HAND: &str = "param w1, w2, w3
    loss = (w1*0.5 - w2 + w3*2) + (w1^2 + w2^2 + w3^2)/3 + (w1 + 0.5)*(w2 - 1)*(w3 + 2) \
           + log(exp(w1*0.5) + exp(-w2) + exp(w3*2))";

#[test]
fn reductions_with_inferred_ranges() {
    same(
        "param w[3]
         data x[3] = [0.5, -1, 2]
         loss = sum(i, w[i]*x[i]) + mean(i, w[i]^2) + prod(i, w[i] + x[i]) \
                + logsumexp(i, w[i]*x[i])",
        REDUCTIONS_BY_HAND,
    );
}

#[test]
fn reductions_with_explicit_ranges() {
    same(
        "param w[3]
         data x[3] = [0.5, -1, 2]
         loss = sum(i in 1..3, w[i]*x[i]) + mean(j in 1..3, w[j]^2) \
                + prod(k in 1..3, w[k] + x[k]) + logsumexp(i in 1..3, w[i]*x[i])",
        REDUCTIONS_BY_HAND,
    );
    // Sub-ranges, ranges not starting at 1, and bodies that index nothing.
    same(
        "param w[3], u
         loss = sum(k in 2..3, w[k]) + sum(i in 1..4, u^i) + prod(i in 0..2, u + i) \
                + mean(i in 2..2, w[i]*u) + logsumexp(i in 1..2, i*u)",
        "param w1, w2, w3, u
         loss = (w2 + w3) + (u + u^2 + u^3 + u^4) + u*(u + 1)*(u + 2) + w2*u \
                + log(exp(u) + exp(2*u))",
    );
}

#[test]
fn nested_reductions() {
    same(
        "param W[2,3]
         data x[3] = [1, -2, 0.5]
         loss = sum(i, sum(j, W[i,j]*x[j])^2) + prod(i, mean(j, W[i,j])) \
                + logsumexp(i, sum(j, W[i,j]))",
        "param W11, W12, W13, W21, W22, W23
         loss = (W11 - 2*W12 + 0.5*W13)^2 + (W21 - 2*W22 + 0.5*W23)^2 \
                + ((W11 + W12 + W13)/3)*((W21 + W22 + W23)/3) \
                + log(exp(W11 + W12 + W13) + exp(W21 + W22 + W23))",
    );
    // Both indices of one array, crossed.
    same(
        "param A[2,2]\nloss = sum(i, sum(j, A[i,j]*A[j,i]))",
        "param a11, a12, a21, a22\nloss = a11^2 + 2*a12*a21 + a22^2",
    );
    // An inner index that shadows an outer one.
    same(
        "param w[2], v[3]\nloss = sum(i, w[i]*sum(i, v[i]))",
        "param w1, w2, v1, v2, v3\nloss = (w1 + w2)*(v1 + v2 + v3)",
    );
}

// ---------------------------------------------------------------------------------------------
// let

#[test]
fn indexed_lets_with_one_and_two_indices() {
    let m = same(
        "param W[2,3]
         data x[3] = [1, -2, 0.5]
         let z[i] = sum(j, W[i,j]*x[j])
         let M[i,j] = W[i,j]*x[j]
         let a[i] = tanh(z[i])
         let s = sum(i, a[i]^2)
         loss = s + sum(i, sum(j, M[i,j]^2)) - z[2]*M[1,3]",
        "param W11, W12, W13, W21, W22, W23
         loss = tanh(W11 - 2*W12 + 0.5*W13)^2 + tanh(W21 - 2*W22 + 0.5*W23)^2 \
                + W11^2 + (2*W12)^2 + (0.5*W13)^2 + W21^2 + (2*W22)^2 + (0.5*W23)^2 \
                - (W21 - 2*W22 + 0.5*W23)*(0.5*W13)",
    );
    let names: Vec<&str> = m.names.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "z[1]", "z[2]", "M[1,1]", "M[1,2]", "M[1,3]", "M[2,1]", "M[2,2]", "M[2,3]", "a[1]",
            "a[2]", "s"
        ]
    );
}

#[test]
fn let_used_in_another_let() {
    same(
        "param u, v
         let a = u*v - 1
         let b = a^2 + u
         let c = exp(b) * a
         loss = c + b/2",
        "param u, v
         loss = exp((u*v - 1)^2 + u)*(u*v - 1) + ((u*v - 1)^2 + u)/2",
    );
    // A two-layer network as in DESIGN.md §3.
    same(
        "data x = [0.5, -1.0, 2.0]
         data y = [0.2, 0.4, -0.3]
         param a[2], b[2]
         let out[i] = sum(j, a[j] * tanh(b[j] * x[i]))
         loss = mean(i, (out[i] - y[i])^2) / 2",
        "param a1, a2, b1, b2
         loss = ((a1*tanh(b1*0.5) + a2*tanh(b2*0.5) - 0.2)^2 \
                 + (a1*tanh(-b1) + a2*tanh(-b2) - 0.4)^2 \
                 + (a1*tanh(2*b1) + a2*tanh(2*b2) + 0.3)^2) / 6",
    );
}

// ---------------------------------------------------------------------------------------------
// Functions

#[test]
fn norm_dot_and_pow() {
    same_in(
        "param w[3]
         data x[3] = [0.5, -1, 2]
         param u
         loss = norm(w) + dot(w, x)*pow(u, 3) + pow(u^2 + 1, 0.5) + pow(2, u) + dot(w, w) \
                + pow(u, w[1])",
        "param w1, w2, w3, u
         loss = sqrt(w1^2 + w2^2 + w3^2) + (0.5*w1 - w2 + 2*w3)*u^3 + (u^2 + 1)^0.5 + 2^u \
                + (w1^2 + w2^2 + w3^2) + u^w1",
        0.2,
        1.5,
    );
}

type Reference = (&'static str, fn(f64) -> f64, fn(f64) -> f64);

#[test]
fn every_function_matches_its_definition() {
    let table: [Reference; 10] = [
        ("exp", f64::exp, f64::exp),
        ("log", f64::ln, |x| 1.0 / x),
        ("sqrt", f64::sqrt, |x| 0.5 / x.sqrt()),
        ("sin", f64::sin, f64::cos),
        ("cos", f64::cos, |x| -x.sin()),
        ("tan", f64::tan, |x| 1.0 / (x.cos() * x.cos())),
        ("tanh", f64::tanh, |x| 1.0 - x.tanh() * x.tanh()),
        (
            "sigmoid",
            |x| 1.0 / (1.0 + (-x).exp()),
            |x| {
                let s = 1.0 / (1.0 + (-x).exp());
                s * (1.0 - s)
            },
        ),
        (
            "softplus",
            |x| (1.0 + x.exp()).ln(),
            |x| 1.0 / (1.0 + (-x).exp()),
        ),
        ("log1p", f64::ln_1p, |x| 1.0 / (1.0 + x)),
    ];
    for (name, f, df) in table {
        let m = model(&format!("{name}(u)"));
        assert_eq!(m.params, ["u"], "{name}");
        for x in points(1, 0.2, 1.4, name.len() as u64) {
            let v = loss_and_gradient(&m, &x);
            let u = x[0];
            assert!(close(v[0], f(u)), "{name}({u}) = {} not {}", v[0], f(u));
            assert!(close(v[1], df(u)), "{name}'({u}) = {} not {}", v[1], df(u));
        }
    }
}

#[test]
fn functions_agree_with_their_expansions() {
    let pairs = [
        ("sigmoid(u*v)", "1/(1 + exp(-(u*v)))"),
        ("softplus(u - v)", "log(1 + exp(u - v))"),
        ("log1p(u^2*v^2)", "log(1 + u^2*v^2)"),
        ("tan(u*v)", "sin(u*v)/cos(u*v)"),
        ("tanh(u + v)", "(exp(2*(u + v)) - 1)/(exp(2*(u + v)) + 1)"),
        ("sqrt(u^2 + v^2)", "(u^2 + v^2)^0.5"),
        ("exp(log(u^2 + 1) * v)", "(u^2 + 1)^v"),
        ("pow(u, v^2)", "u^(v^2)"),
    ];
    for (feature, by_hand) in pairs {
        same_in(feature, by_hand, 0.2, 1.2);
    }
    // Composition, all in one loss.
    same_in(
        "param u, v
         loss = exp(sin(u*v)) + log(cos(u)^2 + sqrt(v)) + tanh(sigmoid(u) - softplus(v)) \
                + log1p(tan(u/2)^2)",
        "param u, v
         loss = exp(sin(u*v)) + log(cos(u)^2 + v^0.5) \
                + tanh(1/(1 + exp(-u)) - log(1 + exp(v))) + log(1 + (sin(u/2)/cos(u/2))^2)",
        0.2,
        1.2,
    );
}

// ---------------------------------------------------------------------------------------------
// Indices

#[test]
fn index_arithmetic() {
    same(
        "param w[4]
         param W[3,3]
         loss = sum(i in 1..3, (w[i+1] - w[i])^2) + sum(i in 1..2, w[2*i]*w[2*i - 1]) \
                + sum(i, W[i, 4 - i]) + w[-1 + 2] + W[1+1, (1+1)*1]",
        "param w1, w2, w3, w4
         param W11, W12, W13, W21, W22, W23, W31, W32, W33
         loss = (w2 - w1)^2 + (w3 - w2)^2 + (w4 - w3)^2 + w2*w1 + w4*w3 \
                + W13 + W22 + W31 + w1 + W22",
    );
}

#[test]
fn reduction_index_used_as_a_number() {
    same(
        "param w[3]
         loss = sum(i in 1..3, i*w[i]) + sum(i, i^2*w[i]^2) + prod(k in 1..3, w[k] + k/2) \
                - mean(i, w[i]/i)",
        "param w1, w2, w3
         loss = 1*w1 + 2*w2 + 3*w3 + w1^2 + 4*w2^2 + 9*w3^2 + (w1 + 0.5)*(w2 + 1)*(w3 + 1.5) \
                - (w1 + w2/2 + w3/3)/3",
    );
    // Also the index of a `let`.
    same(
        "param w[3]\nlet z[i] = i*w[i] - 1\nlet Z[i,j] = (i + 2*j)*w[i]*w[j]\nloss = sum(i, z[i]^2) + sum(i, sum(j, Z[i,j]))",
        "param w1, w2, w3
         loss = (w1 - 1)^2 + (2*w2 - 1)^2 + (3*w3 - 1)^2 \
                + 3*(w1 + 2*w2 + 3*w3)*(w1 + w2 + w3)",
    );
}

#[test]
fn scalar_broadcast() {
    let m = same(
        "param w[2] = 0.5
         data x[2,2] = 3
         loss = sum(i, sum(j, x[i,j]*w[i]*w[j]))",
        "param w1 = 0.5, w2 = 0.5\nloss = 3*(w1 + w2)^2",
    );
    assert_eq!(initial(&m), [Some(q(1, 2)), Some(q(1, 2))]);
    let m = model("param w[3] = 0.5\nloss = sum(i, w[i])");
    assert_eq!(initial(&m), vec![Some(q(1, 2)); 3]);
    let m = model("param W[2,2] = 1/3\nloss = sum(i, W[i,i])");
    assert_eq!(initial(&m), vec![Some(q(1, 3)); 4]);
}

// ---------------------------------------------------------------------------------------------
// Bare expressions and layout

#[test]
fn bare_expression_form() {
    let m = same("(v*u - 1)^2", "param v, u\nloss = (v*u - 1)^2");
    assert_eq!(m.params, ["v", "u"]);
    assert_eq!(initial(&m), [None, None]);
    // Function names and reduction indices are not parameters.
    let m = same(
        "exp(b)*a + sum(i in 1..2, i*c) - b^2",
        "param b, a, c\nloss = exp(b)*a + 3*c - b^2",
    );
    assert_eq!(m.params, ["b", "a", "c"]);
    let m = model("x_1 * alpha2 + _y");
    assert_eq!(m.params, ["x_1", "alpha2", "_y"]);
}

#[test]
fn comments_separators_blank_lines_crlf_and_multiline_arrays() {
    let clean = "param w[2] = [0.5, -1]
param u = 1
data x[2,2] = [[1, 2], [3, 4]]
loss = u*sum(i, w[i]^2) + sum(i, sum(j, x[i,j]*w[i]*w[j]))";
    let messy = "# a loss with everything\n\
                 \n\
                 param w[2] = [   # one entry a line\n\
                 \x20 0.5,   # first\n\
                 \n\
                 \x20 -1,\n\
                 ]; param u = 1  # trailing comment\n\
                 \n\
                 ;;\n\
                 data x[2,2] = [[1, 2],\n\
                 \x20 [3, 4]]\n\
                 \t\n\
                 loss = u*sum(i, w[i]^2) + sum(i, sum(j, x[i,j]*w[i]*w[j]))  # the end\n\
                 \n";
    let one_line = "param w[2] = [0.5, -1]; param u = 1; data x[2,2] = [[1, 2], [3, 4]]; \
                    loss = u*sum(i, w[i]^2) + sum(i, sum(j, x[i,j]*w[i]*w[j]));";
    let crlf = messy.replace('\n', "\r\n");
    let want = model(clean);
    for text in [messy, one_line, crlf.as_str()] {
        let m = same(text, clean);
        assert_eq!(m.params, want.params, "{text:?}");
        assert_eq!(m.initial, want.initial, "{text:?}");
    }
    // CRLF in a bare expression and in a file without a final newline.
    same("(u*v - 1)^2\r\n", "param u, v\nloss = (u*v - 1)^2");
    same("param u\r\nloss = u^2", "param u\nloss = u^2");
}

// ---------------------------------------------------------------------------------------------
// Exactness

#[test]
fn decimals_are_exact() {
    let m = model(
        "param a = 0.6, b = 1e-3, c = 1/3, d = 2.5E+2, e = .5, f = 1.25e-1, g = 0.1 + 0.2
         loss = a + b + c + d + e + f + g",
    );
    assert_eq!(
        initial(&m),
        [
            Some(q(3, 5)),
            Some(q(1, 1000)),
            Some(q(1, 3)),
            Some(q(250, 1)),
            Some(q(1, 2)),
            Some(q(1, 8)),
            Some(q(3, 10)),
        ]
    );
    // The extremes of the exponent.
    let m = model("param a = 1e-10000, b = 1E+10000, c = 0.5e-10000\nloss = a*b*c");
    let p = num_traits::pow(BigRational::from_integer(10.into()), 10_000);
    assert_eq!(
        initial(&m),
        [Some(p.recip()), Some(p.clone()), Some(p.recip() / q(2, 1))]
    );
    // 0.6, 1e-3 and 1/3 stay exact in the printed formulas too: as written in the program
    // form, combined exactly in the readable one (-2/3 + 3/5 = -1/15, 1/9 + 1/1000).
    for (form, wants) in [
        (eomderive::Form::Program, &["1/3", "3/5", "1/1000"][..]),
        (
            eomderive::Form::Readable,
            &["loss = u^2 - u/15 + 1009/9000"][..],
        ),
    ] {
        let d = derive(
            &Source::inline("param u\nloss = (u - 1/3)^2 + 0.6*u + 1e-3"),
            &Options {
                order: 1,
                form,
                ..Options::default()
            },
        )
        .unwrap();
        let text = render::text(&d);
        for want in wants {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
        for bad in ["0.333", "0.6", "0.001", "e-3"] {
            assert!(!text.contains(bad), "{bad} in:\n{text}");
        }
    }
}

#[test]
fn powers_and_unary_minus() {
    let m = model(
        "data x = 3
         param a = -x^2, b = 2^3^2, c = 2^-1, d = -2^-2, e = (-2)^2, f = --2, g = 2*-3^2
         loss = a + b + c + d + e + f + g",
    );
    assert_eq!(
        initial(&m),
        [
            Some(q(-9, 1)),
            Some(q(512, 1)),
            Some(q(1, 2)),
            Some(q(-1, 4)),
            Some(q(4, 1)),
            Some(q(2, 1)),
            Some(q(-18, 1)),
        ]
    );
    // -u^2 is -(u^2), and ^ groups to the right, on parameters too.
    same("-u^2", "param u\nloss = -(u^2)");
    same_in("u^v^2", "param u, v\nloss = u^(v^2)", 0.2, 1.5);
    same("u^-2 + 0*u", "param u\nloss = 1/u^2");
    let m = model("-u^2");
    let v = loss_and_gradient(&m, &[-1.5]);
    assert_eq!(v, [-2.25, 3.0]);
}

#[test]
fn parameter_order_names_and_initial_values() {
    let m = model(
        "param b
         param W[2,2] = [[1, -2], [0.5, 1/4]]
         data x[2] = [1, 2]
         param a = -0.25, v[2]
         let z = a*b
         param c = 7
         loss = z + sum(i, sum(j, W[i,j]*x[j]*v[i])) + c",
    );
    assert_eq!(
        m.params,
        ["b", "W[1,1]", "W[1,2]", "W[2,1]", "W[2,2]", "a", "v[1]", "v[2]", "c"]
    );
    assert_eq!(
        initial(&m),
        [
            None,
            Some(q(1, 1)),
            Some(q(-2, 1)),
            Some(q(1, 2)),
            Some(q(1, 4)),
            Some(q(-1, 4)),
            None,
            None,
            Some(q(7, 1)),
        ]
    );
    assert!(m.initial_point().is_none());
    for (k, p) in m.params.iter().enumerate() {
        assert_eq!(m.param_index(p), Some(k));
    }
    // Parameter i is variable i: the derivative by `c` is 1, by `a` is b.
    let x: Vec<f64> = (1..=9).map(f64::from).collect();
    let v = loss_and_gradient(&m, &x);
    assert_eq!(v[9], 1.0);
    assert_eq!(v[6], x[0]);
}

// ---------------------------------------------------------------------------------------------
// --at

fn at_model() -> Model {
    model(
        "param u = 0.3
         param W[2,2] = [[1, 2], [3, 4]]
         param v
         loss = u*v + sum(i, sum(j, W[i,j]^2))",
    )
}

#[test]
fn at_overrides_and_fills_in_values() {
    let m = at_model();
    let p = parse_point(&m, Some("v=2")).unwrap();
    let want: Vec<BigRational> = [q(3, 10), q(1, 1), q(2, 1), q(3, 1), q(4, 1), q(2, 1)].into();
    assert_eq!(p, want);
    let p = parse_point(&m, Some("W[1,2]=0.5, v=1/3,u=-1e-2")).unwrap();
    assert_eq!(p, [q(-1, 100), q(1, 1), q(1, 2), q(3, 1), q(4, 1), q(1, 3)]);
    // Spaces inside the brackets, a leading +, and a fraction of decimals.
    let p = parse_point(&m, Some(" W[2, 1] = +0.25 , v = -1.5/0.5 ")).unwrap();
    assert_eq!(p, [q(3, 10), q(1, 1), q(2, 1), q(1, 4), q(4, 1), q(-3, 1)]);
    // Without --at the file's values must be complete.
    let complete = model("param u = 1/3, w[2] = [1, 2]\nloss = u*w[1]*w[2]");
    assert_eq!(
        parse_point(&complete, None).unwrap(),
        [q(1, 3), q(1, 1), q(2, 1)]
    );
}

#[test]
fn at_errors() {
    let m = at_model();
    let err = |at: Option<&str>| {
        let e = parse_point(&m, at).expect_err("should fail");
        assert_eq!(e.exit_code(), 2);
        e.to_string()
    };
    let e = err(None);
    assert!(e.contains("no value for v"), "{e}");
    let e = err(Some("u=1"));
    assert!(e.contains("no value for v"), "{e}");
    let e = err(Some("v=1,q=2"));
    assert!(e.contains("`q` is not a parameter"), "{e}");
    assert!(e.contains("--at:1:5"), "{e}");
    let e = err(Some("v=1,W[3,1]=2"));
    assert!(e.contains("`W[3,1]` is not a parameter"), "{e}");
    let e = err(Some("vv=1"));
    assert!(e.contains("did you mean `v`?"), "{e}");
    let e = err(Some("v=abc"));
    assert!(
        e.contains("`abc` is not a number") && e.contains("--at:1:3"),
        "{e}"
    );
    for bad in [
        "v=", "v=1/0", "v=1e", "v=0x10", "v=inf", "v=NaN", "v=1..2", "v",
    ] {
        let e = err(Some(bad));
        assert!(
            e.contains("is not a number") || e.contains("expected NAME=VALUE"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn a_statement_continues_across_lines_inside_brackets() {
    let split = "param u = 0.3, v = -1.2\n\
                 loss = ((u*v - 1)^2 / 2    # the residual, (with a bracket in a comment\n\
                 \x20      + pow(u - v,\n\
                 \x20            2))\n";
    let one_line = "param u = 0.3, v = -1.2\nloss = ((u*v - 1)^2 / 2 + pow(u - v, 2))";
    let (a, b) = (parse_str(split).unwrap(), parse_str(one_line).unwrap());
    let x = [0.3, -1.2];
    let fa = Program::compile(&a.graph, &[a.loss]).eval(&x).unwrap();
    let fb = Program::compile(&b.graph, &[b.loss]).eval(&x).unwrap();
    assert_eq!(fa, fb);
    // Outside brackets a line break still ends the statement, and errors keep their lines.
    let e = parse_str("param u\nloss = (u +\n  foo(u))").unwrap_err();
    let loc = e.location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (3, 3), "{e}");
    let e = parse_str("param u\nloss = u\n + 1").unwrap_err();
    assert!(
        e.help
            .as_deref()
            .unwrap_or("")
            .contains("inside parentheses"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Settings: `optimizer`, `momentum`, `rho_ratio`

#[test]
fn optimizer_lines_name_every_method() {
    for method in Method::ALL {
        let m = model(&format!(
            "param u = 1\n# the method\noptimizer = {}\nloss = u^4",
            method.name()
        ));
        assert_eq!(m.settings.optimizer, Some((method, 3)), "{method}");
        assert_eq!(
            (&m.settings.momentum, &m.settings.rho_ratio),
            (&None, &None)
        );
    }
    // `;` separates statements on one line; the line is the one the statement is on.
    let m = model("param u; optimizer = heavy-ball; loss = u^2");
    assert_eq!(m.settings.optimizer, Some((Method::HeavyBall, 1)));
    let m = model("param u\r\n\r\noptimizer = nesterov   # with a comment\r\nloss = u^2\r\n");
    assert_eq!(m.settings.optimizer, Some((Method::Nesterov, 3)));
}

#[test]
fn momentum_and_rho_ratio_are_exact() {
    let m = model("param u\noptimizer = heavy-ball\nmomentum = 0.9\nloss = u^2");
    assert_eq!(m.settings.optimizer, Some((Method::HeavyBall, 2)));
    assert_eq!(m.settings.momentum, Some((q(9, 10), 3)));
    assert_eq!(m.settings.rho_ratio, None);
    // Constant expressions, data included, are folded exactly; 0 is a momentum.
    for (text, value) in [
        ("1/3", q(1, 3)),
        ("1 - 1e-3", q(999, 1000)),
        ("0", q(0, 1)),
        ("b^2", q(1, 4)),
    ] {
        let m = model(&format!(
            "data b = 0.5\nparam u\nmomentum = {text}\noptimizer = nesterov\nloss = u^2"
        ));
        assert_eq!(m.settings.momentum, Some((value, 3)), "momentum = {text}");
        assert_eq!(m.settings.optimizer, Some((Method::Nesterov, 4)));
    }
    // The rho ratio may have any sign.
    for (text, value) in [("2", q(2, 1)), ("-0.5", q(-1, 2)), ("1/10 + 1/5", q(3, 10))] {
        let m = model(&format!(
            "param u\noptimizer = sam\n\nrho_ratio = {text}\nloss = u^2"
        ));
        assert_eq!(m.settings.rho_ratio, Some((value, 4)), "rho_ratio = {text}");
        assert_eq!(m.settings.optimizer, Some((Method::Sam, 2)));
        assert_eq!(m.settings.momentum, None);
    }
}

#[test]
fn parameters_without_an_optimizer_line_are_kept_for_the_command_line() {
    let m = model("param u\nmomentum = 0.5\nrho_ratio = 3\nloss = u^2");
    assert_eq!(
        m.settings,
        Settings {
            optimizer: None,
            momentum: Some((q(1, 2), 2)),
            rho_ratio: Some((q(3, 1), 3)),
            batches: None,
            batch_order: None,
        }
    );
}

#[test]
fn files_without_settings_have_none() {
    let m = model("param u = 0.3, v = -1.2\nweight_decay = 0.01\nloss = (u*v - 1)^2/2");
    assert_eq!(m.settings, Settings::default());
    let m = model("(u*v - 1)^2/2");
    assert_eq!(m.params, ["u", "v"]);
    assert_eq!(m.settings, Settings::default());
    for name in [
        "factorization",
        "linear_regression",
        "logistic",
        "softmax_wd",
        "tanh_net",
    ] {
        let path = format!("{}/examples/{name}.expr", env!("CARGO_MANIFEST_DIR"));
        let m = eomderive::lang::parse(&Source::from_argument(&path).unwrap()).unwrap();
        assert_eq!(m.settings, Settings::default(), "{name}");
    }
}

#[test]
fn settings_leave_the_loss_alone() {
    let m = same(
        "optimizer = sam\nrho_ratio = 2\nparam u, v\nloss = (u*v - 1)^2/2",
        "param u, v\nloss = (u*v - 1)^2/2",
    );
    assert_eq!(m.params, ["u", "v"]);
    same(
        "param u, v\noptimizer = heavy-ball; momentum = 0.9\nloss = (u*v - 1)^2/2",
        "(u*v - 1)^2/2",
    );
}

#[test]
fn setting_words_are_still_names() {
    // Only the first word of a statement followed by `=` is a setting.
    let m = same(
        "param momentum = 0.9, optimizer, rho_ratio\nloss = momentum^2 + optimizer*rho_ratio",
        "param a, b, c\nloss = a^2 + b*c",
    );
    assert_eq!(m.params, ["momentum", "optimizer", "rho_ratio"]);
    assert_eq!(initial(&m), [Some(q(9, 10)), None, None]);
    assert_eq!(m.settings, Settings::default());
    // In a bare expression too.
    let m = model("(momentum*optimizer - rho_ratio)^2");
    assert_eq!(m.params, ["momentum", "optimizer", "rho_ratio"]);
    assert_eq!(m.settings, Settings::default());
    // A setting line beside a parameter of the same name, and names that only start like one.
    let m = model(
        "param momentum = 0.2, momentum2\ndata optimizers = 3\nmomentum = 0.5\nloss = momentum^2 + optimizers*momentum2",
    );
    assert_eq!(m.params, ["momentum", "momentum2"]);
    assert_eq!(m.settings.momentum, Some((q(1, 2), 3)));
    let m = same(
        "param u\nlet rho_ratio = u^2\nloss = rho_ratio + u",
        "u^2 + u",
    );
    assert!(m.settings.rho_ratio.is_none());
}

// ---------------------------------------------------------------------------------------------
// SGD: `batches`, `batch_order`, the examples of `loss = mean(i, …)` and the minibatch losses

#[test]
fn batches_and_batch_order_lines() {
    let m = model(
        "data x[4] = [1, 2, 3, 4]\nparam w\noptimizer = sgd\n\nbatches = 2\nbatch_order = cyclic\nloss = mean(i, (w - x[i])^2)",
    );
    assert_eq!(m.settings.optimizer, Some((Method::Sgd, 3)));
    assert_eq!(m.settings.batches, Some((2, 5)));
    assert_eq!(m.settings.batch_order, Some((BatchOrder::Cyclic, 6)));
    assert_eq!(
        (&m.settings.momentum, &m.settings.rho_ratio),
        (&None, &None)
    );
    // Constant expressions fold to a whole number; `;` separates statements on one line.
    for (text, value) in [
        ("4", 4),
        ("2*2", 4),
        ("8/2", 4),
        ("4.0", 4),
        ("1", 1),
        ("n + 1", 4),
    ] {
        let m = model(&format!(
            "data n = 3\nparam w; batches = {text}; batch_order = shuffled\nloss = w^2"
        ));
        assert_eq!(m.settings.batches, Some((value, 2)), "batches = {text}");
        assert_eq!(m.settings.batch_order, Some((BatchOrder::Shuffled, 2)));
        assert_eq!(m.settings.optimizer, None);
    }
    // Either may come alone, without an optimizer line (kept for the command line).
    let m = model("param w\nbatch_order = cyclic\nloss = w^2");
    assert_eq!(
        m.settings,
        Settings {
            batch_order: Some((BatchOrder::Cyclic, 2)),
            ..Settings::default()
        }
    );
    let m = model("param w\r\nbatches = 3   # three batches\r\nloss = w^2\r\n");
    assert_eq!(
        m.settings,
        Settings {
            batches: Some((3, 2)),
            ..Settings::default()
        }
    );
}

#[test]
fn batch_setting_words_are_still_names() {
    let m = same(
        "param batches = 2, batch_order\nloss = batches^2 + batch_order",
        "param a, b\nloss = a^2 + b",
    );
    assert_eq!(m.params, ["batches", "batch_order"]);
    assert_eq!(m.settings, Settings::default());
    let m = model("(batches - batch_order)^2");
    assert_eq!(m.params, ["batches", "batch_order"]);
    let m = model("param batches = 1\nbatches = 2\nloss = batches^2");
    assert_eq!(m.settings.batches, Some((2, 2)));
    assert_eq!(initial(&m), [Some(q(1, 1))]);
}

/// Linear regression with four examples and its per-example terms by hand.
const REGRESSION: &str = "data x[4] = [1, 2, -1, 0.5]\ndata y[4] = [0.5, 1, 0, -2]\nparam w = 0.3, b = -0.1\nloss = mean(i, (w*x[i] + b - y[i])^2)";
const XS: [f64; 4] = [1.0, 2.0, -1.0, 0.5];
const YS: [f64; 4] = [0.5, 1.0, 0.0, -2.0];

fn example_by_hand(i: usize, p: &[f64]) -> f64 {
    (p[0] * XS[i] + p[1] - YS[i]).powi(2)
}

fn eval(m: &Model, ids: &[eomderive::expr::Id], p: &[f64]) -> Vec<f64> {
    Program::compile(&m.graph, ids).eval(p).unwrap()
}

/// Equal to 1e-12, relative to 1 or the larger.
fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn a_top_level_mean_records_its_examples() {
    let m = model(REGRESSION);
    let ex = m.examples.clone().expect("a mean over examples");
    assert_eq!(ex.len(), 4);
    let mut rng = Rng(7);
    for _ in 0..5 {
        let p = [rng.next() * 4.0 - 2.0, rng.next() * 4.0 - 2.0];
        let got = eval(&m, &ex, &p);
        for (i, v) in got.iter().enumerate() {
            assert!(near(*v, example_by_hand(i, &p)), "ℓ_{}: {v}", i + 1);
        }
        let loss = eval(&m, &[m.loss], &p)[0];
        assert!(near(loss, got.iter().sum::<f64>() / 4.0), "{loss}");
    }
    // The loss is the mean of these very nodes: building it again adds nothing.
    let mut g = m.graph.clone();
    let before = g.len();
    let sum = ex[1..].iter().fold(ex[0], |acc, &t| g.add(acc, t));
    let four = g.int(4);
    assert_eq!(g.div(sum, four), m.loss);
    assert_eq!(g.len(), before);
    // Where the loss expression is, for later errors.
    let at = m.loss_at.as_ref().unwrap();
    assert_eq!((at.line, at.column), (4, 8));
    assert_eq!(at.line_text, "loss = mean(i, (w*x[i] + b - y[i])^2)");
    assert_eq!(at.width, "mean(i, (w*x[i] + b - y[i])^2)".len());
}

#[test]
fn examples_with_an_explicit_range_and_through_lets() {
    let m = model("param u\nloss = mean(i in 1..3, (u - i)^2)");
    let ex = m.examples.clone().unwrap();
    assert_eq!(eval(&m, &ex, &[0.5]), vec![0.25, 2.25, 6.25]);
    // An indexed `let`: the examples are its entries.
    let m = model(
        "data x = [0.5, -1, 2]\nparam a = 0.3\nlet out[i] = tanh(a*x[i])\nloss = mean(k, out[k]^2)",
    );
    let ex = m.examples.clone().unwrap();
    assert_eq!(ex.len(), 3);
    let got = eval(&m, &ex, &[0.3]);
    for (v, x) in got.iter().zip([0.5f64, -1.0, 2.0]) {
        assert!(near(*v, (0.3 * x).tanh().powi(2)));
    }
    // A weight decay line does not enter the examples.
    let m = model("param u = 1\nweight_decay = 0.5\nloss = mean(i in 1..2, u*i)");
    let ex = m.examples.clone().unwrap();
    assert_eq!(eval(&m, &ex, &[2.0]), vec![2.0, 4.0]);
    assert_eq!(eval(&m, &[m.loss], &[2.0]), vec![3.0 + 1.0]);
}

#[test]
fn other_losses_have_no_examples() {
    for src in [
        "data x = [1, 2]\nparam w\nloss = mean(i, (w*x[i])^2) / 2",
        "data x = [1, 2]\nparam w\nloss = sum(i, (w*x[i])^2)",
        "data x = [1, 2]\nparam w\nloss = w^2 + mean(i, w*x[i])",
        "data x = [1, 2]\nparam w\nlet l = mean(i, w*x[i])\nloss = l",
        "param u, v\nloss = (u*v - 1)^2",
        // A bare expression has none, even a mean.
        "mean(i in 1..3, u*i)^1",
        "mean(i in 1..3, u*i)",
    ] {
        let m = model(src);
        assert_eq!(m.examples, None, "{src}");
        assert!(m.loss_at.is_some(), "{src}");
    }
    let at = model("u*v^2 - 1").loss_at.unwrap();
    assert_eq!(
        (at.source_name.as_str(), at.line, at.column, at.width),
        ("<inline>", 1, 1, 9)
    );
}

#[test]
fn batch_losses_are_the_block_means() {
    let mut m = model(REGRESSION);
    let f = m.batch_losses(2).unwrap();
    assert_eq!(f.len(), 2);
    let mut rng = Rng(11);
    for _ in 0..5 {
        let p = [rng.next() * 4.0 - 2.0, rng.next() * 4.0 - 2.0];
        let got = eval(&m, &f, &p);
        let by_hand = [
            (example_by_hand(0, &p) + example_by_hand(1, &p)) / 2.0,
            (example_by_hand(2, &p) + example_by_hand(3, &p)) / 2.0,
        ];
        assert!(
            near(got[0], by_hand[0]) && near(got[1], by_hand[1]),
            "{got:?} {by_hand:?}"
        );
        let loss = eval(&m, &[m.loss], &p)[0];
        assert!(near((got[0] + got[1]) / 2.0, loss));
    }
    // At the file's point: ℓ = (0.3 x − 0.1 − y)² = 0.09, 0.25, 0.16, 4.2025.
    let got = eval(&m, &f, &[0.3, -0.1]);
    assert!(near(got[0], (0.09 + 0.25) / 2.0), "{got:?}");
    assert!(near(got[1], (0.16 + 4.2025) / 2.0), "{got:?}");
    // One example a batch: the examples themselves.
    let f4 = m.batch_losses(4).unwrap();
    assert_eq!(Some(f4), m.examples.clone());
    // One batch: the loss itself, the same node.
    assert_eq!(m.batch_losses(1).unwrap(), vec![m.loss]);
}

#[test]
fn batch_losses_carry_the_weight_decay() {
    let text = REGRESSION.replace("param w", "weight_decay = 0.2\nparam w");
    let mut m = model(&text);
    let f = m.batch_losses(2).unwrap();
    let p = [0.7, -1.3];
    let decay = 0.1 * (0.7f64.powi(2) + 1.3f64.powi(2));
    let got = eval(&m, &f, &p);
    assert!(near(
        got[0],
        (example_by_hand(0, &p) + example_by_hand(1, &p)) / 2.0 + decay
    ));
    assert!(near(
        got[1],
        (example_by_hand(2, &p) + example_by_hand(3, &p)) / 2.0 + decay
    ));
    let loss = eval(&m, &[m.loss], &p)[0];
    assert!(near((got[0] + got[1]) / 2.0, loss), "{got:?} {loss}");
    assert_eq!(m.batch_losses(1).unwrap(), vec![m.loss]);
    // A weight decay set later (the command line's) as well.
    let mut m = model(REGRESSION);
    m.set_weight_decay(Some(q(1, 5)));
    let f = m.batch_losses(4).unwrap();
    let got = eval(&m, &f, &p);
    for (i, v) in got.iter().enumerate() {
        assert!(near(*v, example_by_hand(i, &p) + decay), "{i}: {v}");
    }
    let loss = eval(&m, &[m.loss], &p)[0];
    assert!(near(got.iter().sum::<f64>() / 4.0, loss));
}

#[test]
fn batch_losses_grow_the_graph_little() {
    // 100 examples of a network in 10 batches: a handful of nodes per batch.
    let text = "data x[100] = 1\nparam a = 0.3, b = 0.1\nloss = mean(i, (tanh(a*x[i]*i) - b)^2)";
    let mut m = model(text);
    let before = m.graph.len();
    m.batch_losses(10).unwrap();
    assert!(
        m.graph.len() - before <= 10 * 12,
        "{} → {}",
        before,
        m.graph.len()
    );
}

#[test]
fn sgd_settings_combine_with_the_flags() {
    use eomderive::{resolve_optimizer, Options};
    let file = model("data x[4] = [1, 2, 3, 4]\nparam w\noptimizer = sgd\nbatches = 4\nbatch_order = cyclic\nloss = mean(i, (w - x[i])^2)").settings;
    // The file alone.
    assert_eq!(
        resolve_optimizer(&Options::default(), &file).unwrap(),
        Optimizer::sgd(4, BatchOrder::Cyclic)
    );
    // The flags win.
    let flags = Options {
        batches: Some(2),
        batch_order: Some(BatchOrder::Shuffled),
        ..Options::default()
    };
    assert_eq!(
        resolve_optimizer(&flags, &file).unwrap(),
        Optimizer::sgd(2, BatchOrder::Shuffled)
    );
    // The order defaults to shuffled.
    let sgd = Options {
        method: Some(Method::Sgd),
        batches: Some(3),
        ..Options::default()
    };
    assert_eq!(
        resolve_optimizer(&sgd, &Settings::default()).unwrap(),
        Optimizer::sgd(3, BatchOrder::Shuffled)
    );
    // --optimizer sgd with the file's batches.
    let only_batches = Settings {
        batches: Some((5, 2)),
        ..Settings::default()
    };
    let flag = Options {
        method: Some(Method::Sgd),
        ..Options::default()
    };
    assert_eq!(
        resolve_optimizer(&flag, &only_batches).unwrap(),
        Optimizer::sgd(5, BatchOrder::Shuffled)
    );
    // Another method on the command line sets the file's batch lines aside.
    for method in [Method::Gd, Method::HeavyBall, Method::Sam] {
        let o = Options {
            method: Some(method),
            ..Options::default()
        };
        let got = resolve_optimizer(&o, &file).unwrap();
        assert_eq!((got.method, got.batches), (method, None));
    }
}
