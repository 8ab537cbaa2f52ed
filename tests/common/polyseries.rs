//! Exact multivariate polynomials over ℚ and power series in η with polynomial coefficients,
//! for `tests/sgd_independent.rs`: an independent route to the counter terms that shares no code
//! with eomderive (only `num-rational`).
//!
//! A [`Poly`] is a polynomial in at most [`NVARS`] parameters (variable 0 is the first parameter).
//! A [`VSeries`] is a truncated series Σ_{j ≤ N} η^j θ_j whose coefficients θ_j are vectors of
//! polynomials (a vector field on parameter space for each power of η).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::{Add, AddAssign, Mul, Neg, Sub};

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// The most variables a polynomial may have.
pub const NVARS: usize = 2;

/// A monomial: the exponent of each variable.
pub type Mono = [u32; NVARS];

/// The integer `n` as a rational.
pub fn int(n: i64) -> BigRational {
    BigRational::from_integer(BigInt::from(n))
}

/// `p/q` as a rational.
pub fn rat(p: i64, q: i64) -> BigRational {
    BigRational::new(BigInt::from(p), BigInt::from(q))
}

/// A decimal literal (`-1.25`, `2`, `0.5`) as an exact rational.
pub fn decimal(s: &str) -> BigRational {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits: BigInt = format!("{whole}{frac}").parse().expect("a decimal literal");
    let scale = num_traits::pow(BigInt::from(10), frac.len());
    let r = BigRational::new(digits, scale);
    if neg {
        -r
    } else {
        r
    }
}

/// A rational as an f64 (exact for the dyadic values used in the tests).
pub fn to_f64(r: &BigRational) -> f64 {
    r.to_f64().expect("a finite rational")
}

/// An exact polynomial: monomial → nonzero coefficient.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Poly {
    terms: BTreeMap<Mono, BigRational>,
}

impl Poly {
    pub fn zero() -> Poly {
        Poly::default()
    }

    pub fn constant(c: BigRational) -> Poly {
        let mut p = Poly::zero();
        p.add_term([0; NVARS], c);
        p
    }

    /// The variable `i`.
    pub fn var(i: usize) -> Poly {
        let mut m = [0; NVARS];
        m[i] = 1;
        let mut p = Poly::zero();
        p.add_term(m, BigRational::one());
        p
    }

    pub fn is_zero(&self) -> bool {
        self.terms.is_empty()
    }

    /// Adds `c` times the monomial `m`, dropping the term when it cancels.
    fn add_term(&mut self, m: Mono, c: BigRational) {
        if c.is_zero() {
            return;
        }
        match self.terms.entry(m) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(c);
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                *e.get_mut() += c;
                if e.get().is_zero() {
                    e.remove();
                }
            }
        }
    }

    pub fn scale(&self, c: &BigRational) -> Poly {
        if c.is_zero() {
            return Poly::zero();
        }
        Poly {
            terms: self.terms.iter().map(|(m, a)| (*m, a * c)).collect(),
        }
    }

    pub fn pow(&self, e: u32) -> Poly {
        let mut r = Poly::constant(BigRational::one());
        for _ in 0..e {
            r = &r * self;
        }
        r
    }

    /// ∂/∂(variable i).
    pub fn deriv(&self, i: usize) -> Poly {
        let mut p = Poly::zero();
        for (m, c) in &self.terms {
            if m[i] > 0 {
                let mut d = *m;
                d[i] -= 1;
                p.add_term(d, c * int(m[i] as i64));
            }
        }
        p
    }

    /// The value at a rational point (one coordinate per variable the polynomial uses).
    pub fn eval(&self, x: &[BigRational]) -> BigRational {
        let mut s = BigRational::zero();
        for (m, c) in &self.terms {
            let mut t = c.clone();
            for (i, &e) in m.iter().enumerate() {
                if e > 0 {
                    t *= num_traits::pow(x[i].clone(), e as usize);
                }
            }
            s += t;
        }
        s
    }

    /// Total degree (0 for the zero polynomial).
    pub fn degree(&self) -> u32 {
        self.terms.keys().map(|m| m.iter().sum()).max().unwrap_or(0)
    }

    /// The largest exponent of variable `i`.
    fn max_exp(&self, i: usize) -> u32 {
        self.terms.keys().map(|m| m[i]).max().unwrap_or(0)
    }

    /// Written out with these variable names, highest total degree first (`-1/2*w^3 + w`).
    pub fn show(&self, names: &[&str]) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut terms: Vec<(&Mono, &BigRational)> = self.terms.iter().collect();
        terms.sort_by(|a, b| {
            let da: u32 = a.0.iter().sum();
            let db: u32 = b.0.iter().sum();
            db.cmp(&da).then(b.0.cmp(a.0))
        });
        let mut s = String::new();
        for (k, (m, c)) in terms.into_iter().enumerate() {
            let neg = c.is_negative();
            if k == 0 {
                if neg {
                    s.push('-');
                }
            } else {
                s.push_str(if neg { " - " } else { " + " });
            }
            let a = c.abs();
            let mut factors: Vec<String> = Vec::new();
            for (i, &e) in m.iter().enumerate() {
                match e {
                    0 => {}
                    1 => factors.push(names[i].to_string()),
                    _ => factors.push(format!("{}^{e}", names[i])),
                }
            }
            if !a.is_one() || factors.is_empty() {
                factors.insert(0, a.to_string());
            }
            let _ = write!(s, "{}", factors.join("*"));
        }
        s
    }
}

impl Add for &Poly {
    type Output = Poly;
    fn add(self, o: &Poly) -> Poly {
        let mut r = self.clone();
        r += o;
        r
    }
}

impl AddAssign<&Poly> for Poly {
    fn add_assign(&mut self, o: &Poly) {
        for (m, c) in &o.terms {
            self.add_term(*m, c.clone());
        }
    }
}

impl Sub for &Poly {
    type Output = Poly;
    fn sub(self, o: &Poly) -> Poly {
        let mut r = self.clone();
        for (m, c) in &o.terms {
            r.add_term(*m, -c);
        }
        r
    }
}

impl Neg for &Poly {
    type Output = Poly;
    fn neg(self) -> Poly {
        self.scale(&-BigRational::one())
    }
}

impl Mul for &Poly {
    type Output = Poly;
    fn mul(self, o: &Poly) -> Poly {
        let mut r = Poly::zero();
        for (ma, ca) in &self.terms {
            for (mb, cb) in &o.terms {
                let mut m = *ma;
                for i in 0..NVARS {
                    m[i] += mb[i];
                }
                r.add_term(m, ca * cb);
            }
        }
        r
    }
}

/// A vector of polynomials: a polynomial vector field on an n-dimensional parameter space.
pub type Vector = Vec<Poly>;

pub fn vadd(a: &[Poly], b: &[Poly]) -> Vector {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

pub fn vsub(a: &[Poly], b: &[Poly]) -> Vector {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

pub fn vscale(a: &[Poly], c: &BigRational) -> Vector {
    a.iter().map(|x| x.scale(c)).collect()
}

/// The gradient of a polynomial in `n` variables.
pub fn gradient(f: &Poly, n: usize) -> Vector {
    (0..n).map(|i| f.deriv(i)).collect()
}

/// (DB)·A: the Jacobian of the field B applied to the field A (L_A B of DESIGN §2.1).
pub fn jac_apply(b: &[Poly], a: &[Poly]) -> Vector {
    b.iter()
        .map(|bi| {
            let mut s = Poly::zero();
            for (l, al) in a.iter().enumerate() {
                s += &(&bi.deriv(l) * al);
            }
            s
        })
        .collect()
}

/// ∇²f·a.
pub fn hess_apply(f: &Poly, a: &[Poly]) -> Vector {
    jac_apply(&gradient(f, a.len()), a)
}

/// ∇³f(a, b): component i is Σ_{j,k} ∂_i∂_j∂_k f a_j b_k.
pub fn third_apply(f: &Poly, a: &[Poly], b: &[Poly]) -> Vector {
    let n = a.len();
    (0..n)
        .map(|i| {
            let fi = f.deriv(i);
            let mut s = Poly::zero();
            for (j, aj) in a.iter().enumerate() {
                let fij = fi.deriv(j);
                for (k, bk) in b.iter().enumerate() {
                    s += &(&(&fij.deriv(k) * aj) * bk);
                }
            }
            s
        })
        .collect()
}

/// Σ_{j ≤ N} η^j c_j with vector coefficients: `coeffs[j][i]` is component i of c_j, N = `coeffs.len() - 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VSeries {
    pub coeffs: Vec<Vector>,
}

impl VSeries {
    /// The zero series of dimension n, truncated at η^order.
    pub fn zero(n: usize, order: usize) -> VSeries {
        VSeries {
            coeffs: vec![vec![Poly::zero(); n]; order + 1],
        }
    }

    /// θ itself (the identity map), truncated at η^order.
    pub fn identity(n: usize, order: usize) -> VSeries {
        let mut s = VSeries::zero(n, order);
        s.coeffs[0] = (0..n).map(Poly::var).collect();
        s
    }

    pub fn order(&self) -> usize {
        self.coeffs.len() - 1
    }

    pub fn dim(&self) -> usize {
        self.coeffs[0].len()
    }

    pub fn add(&self, o: &VSeries) -> VSeries {
        VSeries {
            coeffs: self
                .coeffs
                .iter()
                .zip(&o.coeffs)
                .map(|(a, b)| vadd(a, b))
                .collect(),
        }
    }

    pub fn scale(&self, c: &BigRational) -> VSeries {
        VSeries {
            coeffs: self.coeffs.iter().map(|a| vscale(a, c)).collect(),
        }
    }

    /// η^k times this series, truncated at the same order.
    pub fn shift(&self, k: usize) -> VSeries {
        let n = self.dim();
        let mut s = VSeries::zero(n, self.order());
        for j in k..=self.order() {
            s.coeffs[j] = self.coeffs[j - k].clone();
        }
        s
    }

    /// The same series truncated at η^order (padded with zeros if longer).
    pub fn truncate(&self, order: usize) -> VSeries {
        let n = self.dim();
        VSeries {
            coeffs: (0..=order)
                .map(|j| {
                    self.coeffs
                        .get(j)
                        .cloned()
                        .unwrap_or_else(|| vec![Poly::zero(); n])
                })
                .collect(),
        }
    }
}

/// The product of two scalar series, truncated at η^order.
fn smul(a: &[Poly], b: &[Poly], order: usize) -> Vec<Poly> {
    let mut out = vec![Poly::zero(); order + 1];
    for (i, x) in a.iter().enumerate().take(order + 1) {
        if x.is_zero() {
            continue;
        }
        for (j, y) in b.iter().enumerate().take(order + 1 - i) {
            if !y.is_zero() {
                out[i + j] += &(x * y);
            }
        }
    }
    out
}

/// p(θ(η)) truncated at η^order: the polynomial p composed with the series θ.
pub fn compose(p: &Poly, theta: &VSeries, order: usize) -> Vec<Poly> {
    let n = theta.dim();
    assert!(n <= NVARS);
    let comp = |i: usize| -> Vec<Poly> {
        (0..=order)
            .map(|j| {
                theta
                    .coeffs
                    .get(j)
                    .map_or_else(Poly::zero, |c| c[i].clone())
            })
            .collect()
    };
    // pows[i][e]: the series θ_i(η)^e.
    let mut pows: Vec<Vec<Vec<Poly>>> = Vec::new();
    for i in 0..NVARS {
        let mut one = vec![Poly::zero(); order + 1];
        one[0] = Poly::constant(BigRational::one());
        let mut v = vec![one];
        let e_max = p.max_exp(i);
        if e_max > 0 {
            assert!(i < n, "the polynomial uses a variable the series lacks");
            let x = comp(i);
            for e in 1..=e_max as usize {
                let next = smul(&v[e - 1], &x, order);
                v.push(next);
            }
        }
        pows.push(v);
    }
    // Group by the exponent of variable 0: Σ_{e0} θ_0^{e0} · (Σ c θ_1^{e1} …).
    let mut by_first: BTreeMap<u32, Vec<(&Mono, &BigRational)>> = BTreeMap::new();
    for (m, c) in &p.terms {
        by_first.entry(m[0]).or_default().push((m, c));
    }
    let mut out = vec![Poly::zero(); order + 1];
    for (e0, group) in by_first {
        let mut inner = vec![Poly::zero(); order + 1];
        for (m, c) in group {
            let mut t = vec![Poly::zero(); order + 1];
            t[0] = Poly::constant(c.clone());
            for (i, pw) in pows.iter().enumerate().skip(1) {
                if m[i] > 0 {
                    t = smul(&t, &pw[m[i] as usize], order);
                }
            }
            for (a, b) in inner.iter_mut().zip(&t) {
                *a += b;
            }
        }
        let term = smul(&pows[0][e0 as usize], &inner, order);
        for (a, b) in out.iter_mut().zip(&term) {
            *a += b;
        }
    }
    out
}

/// A vector field composed with a series: component i is field[i](θ(η)), truncated at η^order.
pub fn compose_vector(field: &[Poly], theta: &VSeries, order: usize) -> VSeries {
    let comps: Vec<Vec<Poly>> = field.iter().map(|p| compose(p, theta, order)).collect();
    VSeries {
        coeffs: (0..=order)
            .map(|j| comps.iter().map(|c| c[j].clone()).collect())
            .collect(),
    }
}

/// L_A B = (DB)·A for series A, B in η (the Jacobian taken in θ, coefficient by coefficient),
/// truncated at η^order.
pub fn lie(a: &VSeries, b: &VSeries, order: usize) -> VSeries {
    let n = a.dim();
    let mut out = VSeries::zero(n, order);
    for (q, bq) in b.coeffs.iter().enumerate().take(order + 1) {
        for (p, ap) in a.coeffs.iter().enumerate().take(order + 1 - q) {
            let t = jac_apply(bq, ap);
            out.coeffs[p + q] = vadd(&out.coeffs[p + q], &t);
        }
    }
    out
}
