//! An independent numeric route to the counter terms: the tree form evaluated with
//! forward-mode Taylor arithmetic on the compiled gradient, with no symbolic ξ at all.
//!
//! ∇^m g(v_1, …, v_m) is the coefficient of ε_1⋯ε_m in g(θ + ε_1 v_1 + … + ε_m v_m), computed
//! in the algebra of numbers a + Σ_S a_S ε^S with ε_i² = 0 (2^m coefficients). Each function's
//! derivatives come from its own closed forms here, not from the symbolic differentiator.

use super::program::{call, Instr};
use super::{to_f64, DomainError, Program};
use crate::expr::Func;
use crate::series::{GenericSeries, TreeId};

/// A number with `m` nilpotent infinitesimals: coefficient `c[S]` of ε^S for each bit set S.
#[derive(Debug, Clone, PartialEq)]
struct Hyper {
    c: Vec<f64>,
}

impl Hyper {
    fn constant(x: f64, size: usize) -> Hyper {
        let mut c = vec![0.0; size];
        c[0] = x;
        Hyper { c }
    }

    fn add(&self, o: &Hyper, sign: f64) -> Hyper {
        Hyper {
            c: self.c.iter().zip(&o.c).map(|(a, b)| a + sign * b).collect(),
        }
    }

    fn scale(&self, k: f64) -> Hyper {
        Hyper {
            c: self.c.iter().map(|a| a * k).collect(),
        }
    }

    fn mul(&self, o: &Hyper) -> Hyper {
        let n = self.c.len();
        let mut c = vec![0.0; n];
        for (s, cs) in c.iter_mut().enumerate() {
            // Σ over subsets t of s: a[t] b[s \ t].
            let mut t = s;
            loop {
                *cs += self.c[t] * o.c[s & !t];
                if t == 0 {
                    break;
                }
                t = (t - 1) & s;
            }
        }
        Hyper { c }
    }

    /// φ(self) from φ's derivatives at the real part: Σ_k φ^(k)(x0)/k! δ^k.
    fn apply(&self, derivs: &[f64]) -> Hyper {
        let n = self.c.len();
        let mut delta = self.clone();
        delta.c[0] = 0.0;
        let mut out = Hyper::constant(derivs[0], n);
        let mut power = Hyper::constant(1.0, n);
        let mut factorial = 1.0;
        for (k, d) in derivs.iter().enumerate().skip(1) {
            power = power.mul(&delta);
            factorial *= k as f64;
            out = out.add(&power, d / factorial);
        }
        out
    }
}

/// φ, φ', …, φ^(m) at x for the elementary functions.
fn derivatives(f: Func, x: f64, m: usize) -> Result<Vec<f64>, String> {
    let v0 = call(f, x)?;
    let falling = |p: f64, k: usize| (0..k).fold(1.0, |a, j| a * (p - j as f64));
    // Derivatives of y(x) where y' = q(y) for a polynomial q: track each derivative as a
    // polynomial in y (coefficients, lowest first).
    let by_polynomial = |y: f64, q: &[f64]| -> Vec<f64> {
        let mut p = vec![0.0, 1.0];
        let mut out = vec![y];
        for _ in 0..m {
            let dp: Vec<f64> = (1..p.len()).map(|i| i as f64 * p[i]).collect();
            let mut next = vec![0.0; dp.len() + q.len()];
            for (i, a) in dp.iter().enumerate() {
                for (j, b) in q.iter().enumerate() {
                    next[i + j] += a * b;
                }
            }
            p = next;
            out.push(p.iter().rev().fold(0.0, |acc, c| acc * y + c));
        }
        out
    };
    Ok(match f {
        Func::Exp => vec![v0; m + 1],
        Func::Log | Func::Log1p => {
            let base = if f == Func::Log { x } else { 1.0 + x };
            (0..=m)
                .map(|k| {
                    if k == 0 {
                        v0
                    } else {
                        falling(-1.0, k - 1) * base.powi(-(k as i32))
                    }
                })
                .collect()
        }
        Func::Sqrt => (0..=m)
            .map(|k| falling(0.5, k) * x.powf(0.5 - k as f64))
            .collect(),
        Func::Sin | Func::Cos => {
            let (s, c) = x.sin_cos();
            let cycle = [s, c, -s, -c];
            let start = if f == Func::Sin { 0 } else { 1 };
            (0..=m).map(|k| cycle[(start + k) % 4]).collect()
        }
        Func::Tan => by_polynomial(v0, &[1.0, 0.0, 1.0]),
        Func::Tanh => by_polynomial(v0, &[1.0, 0.0, -1.0]),
        Func::Sigmoid => by_polynomial(v0, &[0.0, 1.0, -1.0]),
        Func::Softplus => {
            let s = call(Func::Sigmoid, x)?;
            let mut d = vec![v0];
            d.extend(by_polynomial(s, &[0.0, 1.0, -1.0]).into_iter().take(m));
            d
        }
    })
}

/// Evaluates a program on Taylor numbers; `x[i]` is parameter i.
fn eval(program: &Program, x: &[Hyper]) -> Result<Vec<Hyper>, DomainError> {
    let (code, nodes, roots) = program.parts();
    let size = x[0].c.len();
    let m = size.trailing_zeros() as usize;
    let mut v: Vec<Hyper> = Vec::with_capacity(code.len());
    for (k, ins) in code.iter().enumerate() {
        let bad = |what: String| DomainError {
            node: nodes[k],
            what,
        };
        let r = match *ins {
            Instr::Const(c) => Hyper::constant(c, size),
            Instr::Var(i) => x[i].clone(),
            Instr::Add(a, b) => v[a].add(&v[b], 1.0),
            Instr::Sub(a, b) => v[a].add(&v[b], -1.0),
            Instr::Mul(a, b) => v[a].mul(&v[b]),
            Instr::Neg(a) => v[a].scale(-1.0),
            Instr::Div(a, b) => {
                let y = v[b].c[0];
                if y == 0.0 {
                    return Err(bad("division by zero".into()));
                }
                let recip: Vec<f64> = (0..=m)
                    .map(|j| (0..j).fold(1.0, |p, i| p * -((i + 1) as f64)) / y.powi(j as i32 + 1))
                    .collect();
                v[a].mul(&v[b].apply(&recip))
            }
            Instr::Powi(a, n) => {
                let y = v[a].c[0];
                if y == 0.0 && n < 0 {
                    return Err(bad("0 raised to a negative power".into()));
                }
                let d: Vec<f64> = (0..=m)
                    .map(|j| {
                        let f = (0..j).fold(1.0, |p, i| p * (n as f64 - i as f64));
                        if f == 0.0 {
                            0.0
                        } else {
                            f * y.powi(n - j as i32)
                        }
                    })
                    .collect();
                v[a].apply(&d)
            }
            Instr::Pow(a, b) => {
                // a^b = exp(b log a)
                let la = v[a].apply(&derivatives(Func::Log, v[a].c[0], m).map_err(bad)?);
                let e = v[b].mul(&la);
                e.apply(&derivatives(Func::Exp, e.c[0], m).map_err(bad)?)
            }
            Instr::Call(f, a) => v[a].apply(&derivatives(f, v[a].c[0], m).map_err(bad)?),
        };
        v.push(r);
    }
    Ok(roots.iter().map(|&r| v[r].clone()).collect())
}

/// ∇^m g(v_1, …, v_m) at `x` for the compiled gradient `g`, by Taylor arithmetic.
///
/// ```
/// use eomderive::numeric::{taylor_directional, Program};
/// let mut m = eomderive::lang::parse_str("u^4/4").unwrap();
/// let g = eomderive::expr::Diff::new(1).gradient(&mut m.graph, m.loss);
/// let p = Program::compile(&m.graph, &g);
/// // g = u³: ∇²g(v, w) = 6 u v w.
/// let t = taylor_directional(&p, &[2.0], &[&[1.0], &[3.0]]).unwrap();
/// assert!((t[0] - 36.0).abs() < 1e-12);
/// ```
pub fn taylor_directional(
    gradient: &Program,
    x: &[f64],
    dirs: &[&[f64]],
) -> Result<Vec<f64>, DomainError> {
    let m = dirs.len();
    let size = 1 << m;
    let point: Vec<Hyper> = (0..x.len())
        .map(|i| {
            let mut h = Hyper::constant(x[i], size);
            for (k, d) in dirs.iter().enumerate() {
                h.c[1 << k] = d[i];
            }
            h
        })
        .collect();
    Ok(eval(gradient, &point)?
        .into_iter()
        .map(|h| h.c[size - 1])
        .collect())
}

/// ξ_1..ξ_K at `x` from the tree form: Σ_τ c(τ) G(τ), each elementary differential by
/// [`taylor_directional`] on the compiled gradient.
pub fn tree_xi(
    series: &GenericSeries,
    gradient: &Program,
    x: &[f64],
) -> Result<Vec<Vec<f64>>, DomainError> {
    let mut memo: crate::hash::HashMap<TreeId, Vec<f64>> = Default::default();
    let mut result = Vec::with_capacity(series.xi.len());
    for terms in &series.xi {
        let mut xi = vec![0.0; x.len()];
        for (t, c) in terms {
            let g = elementary(series, *t, gradient, x, &mut memo)?;
            let c = to_f64(c);
            for (a, b) in xi.iter_mut().zip(g) {
                *a += c * b;
            }
        }
        result.push(xi);
    }
    Ok(result)
}

fn elementary(
    series: &GenericSeries,
    t: TreeId,
    gradient: &Program,
    x: &[f64],
    memo: &mut crate::hash::HashMap<TreeId, Vec<f64>>,
) -> Result<Vec<f64>, DomainError> {
    if let Some(v) = memo.get(&t) {
        return Ok(v.clone());
    }
    let children: Vec<Vec<f64>> = series
        .forest
        .children(t)
        .iter()
        .map(|&c| elementary(series, c, gradient, x, memo))
        .collect::<Result<_, _>>()?;
    let dirs: Vec<&[f64]> = children.iter().map(Vec::as_slice).collect();
    let v = taylor_directional(gradient, x, &dirs)?;
    memo.insert(t, v.clone());
    Ok(v)
}
