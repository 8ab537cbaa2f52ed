//! Exact coefficients that depend on one method parameter s (momentum β, SAM's ratio r):
//! rational functions p(s) / (1 − s)^e with p over ℚ.
//!
//! Every coefficient of the optimizers of [`crate::series::Optimizer`] has this shape: the
//! tree-by-tree solve divides only by integers and by the method's drift 1 − β. Keeping the
//! denominator as a power of (1 − s) makes arithmetic closed, exact and cheap, and gives the
//! form a paper prints, (1 + β)/(2(1 − β)³).

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

/// p(s) / (1 − s)^e, with `e` any integer (a negative `e` is a factor (1 − s)^{−e} of the
/// numerator).
///
/// ```
/// use eomderive::series::RatFn;
/// use num_rational::BigRational;
/// let beta = RatFn::symbol();
/// // (1 + β)/(2 (1 − β)³)
/// let x = (RatFn::one() + beta.clone()).scale(&BigRational::new(1.into(), 2.into())).over_one_minus(3);
/// assert_eq!(x.eval(&BigRational::new(1.into(), 2.into())), Some(BigRational::from_integer(6.into())));
/// assert_eq!(x.normalized().pole(), 3);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatFn {
    /// Integer coefficients of den · p, ascending powers of s, without trailing zeros; their
    /// content and `den` are coprime (so equal (p, e) have equal fields).
    num: Vec<BigInt>,
    /// The common denominator of p's coefficients, positive.
    den: BigInt,
    /// e.
    pole: i32,
}

impl RatFn {
    /// 0.
    pub fn zero() -> RatFn {
        RatFn {
            num: Vec::new(),
            den: BigInt::one(),
            pole: 0,
        }
    }

    /// 1.
    pub fn one() -> RatFn {
        RatFn::constant(BigRational::one())
    }

    /// A constant.
    pub fn constant(c: BigRational) -> RatFn {
        RatFn::from_parts(vec![c.numer().clone()], c.denom().clone(), 0)
    }

    /// The parameter s itself.
    pub fn symbol() -> RatFn {
        RatFn::from_parts(vec![BigInt::zero(), BigInt::one()], BigInt::one(), 0)
    }

    /// num/den over (1 − s)^pole, brought to the canonical fields.
    fn from_parts(mut num: Vec<BigInt>, mut den: BigInt, pole: i32) -> RatFn {
        while num.last().is_some_and(Zero::is_zero) {
            num.pop();
        }
        if num.is_empty() {
            return RatFn::zero();
        }
        if den.is_negative() {
            den = -den;
            num.iter_mut().for_each(|c| *c = -&*c);
        }
        let g = num.iter().fold(den.clone(), |g, c| g.gcd(c));
        if !g.is_one() {
            num.iter_mut().for_each(|c| *c /= &g);
            den /= &g;
        }
        RatFn { num, den, pole }
    }

    /// Whether this is 0.
    pub fn is_zero(&self) -> bool {
        self.num.is_empty()
    }

    /// Whether this does not depend on s.
    pub fn is_constant(&self) -> bool {
        let n = self.normalized();
        n.pole == 0 && n.num.len() <= 1
    }

    /// The numerator's coefficients, ascending powers of s.
    pub fn numerator(&self) -> Vec<BigRational> {
        self.num
            .iter()
            .map(|c| BigRational::new(c.clone(), self.den.clone()))
            .collect()
    }

    /// e, the power of (1 − s) in the denominator.
    pub fn pole(&self) -> i32 {
        self.pole
    }

    /// This times a constant.
    pub fn scale(&self, c: &BigRational) -> RatFn {
        RatFn::from_parts(
            self.num.iter().map(|a| a * c.numer()).collect(),
            &self.den * c.denom(),
            self.pole,
        )
    }

    /// This divided by (1 − s)^k.
    pub fn over_one_minus(&self, k: i32) -> RatFn {
        if self.is_zero() {
            return RatFn::zero();
        }
        RatFn {
            pole: self.pole + k,
            ..self.clone()
        }
    }

    /// The same value with the numerator's factors (1 − s) cancelled and no (1 − s) left in
    /// the numerator (e ≥ 0 unless p vanishes at 1).
    pub fn normalized(&self) -> RatFn {
        let mut r = self.reduced();
        while r.pole < 0 {
            r.num = times_one_minus(&r.num);
            r.pole += 1;
        }
        RatFn::from_parts(r.num, r.den, r.pole)
    }

    /// The value as c (1 − s)^k, when it is one (`(c, k)`): the shape of a method's drift.
    ///
    /// ```
    /// use eomderive::series::RatFn;
    /// let one_minus = RatFn::one() - RatFn::symbol();
    /// let two = num_rational::BigRational::from_integer(2.into());
    /// assert_eq!(one_minus.scale(&two).monomial(), Some((two, 1)));
    /// assert_eq!(RatFn::symbol().monomial(), None);
    /// ```
    pub fn monomial(&self) -> Option<(BigRational, i32)> {
        let r = self.reduced();
        (r.num.len() == 1).then(|| (BigRational::new(r.num[0].clone(), r.den.clone()), -r.pole))
    }

    /// Cancels every factor (1 − s) of the numerator into e (which may become negative).
    fn reduced(&self) -> RatFn {
        let mut num = self.num.clone();
        let mut pole = self.pole;
        while !num.is_empty() && num.iter().sum::<BigInt>().is_zero() {
            // p(s) = (1 − s) q(s): synthetic division by (s − 1), then q = −quotient.
            let mut quotient = vec![BigInt::zero(); num.len() - 1];
            let mut carry = BigInt::zero();
            for k in (1..num.len()).rev() {
                carry += &num[k];
                quotient[k - 1] = -carry.clone();
            }
            num = quotient;
            pole -= 1;
        }
        RatFn::from_parts(num, self.den.clone(), pole)
    }

    /// The value at s = `at`; `None` at s = 1 when e > 0.
    pub fn eval(&self, at: &BigRational) -> Option<BigRational> {
        let n = self.normalized();
        let p = n.num.iter().rev().fold(BigRational::zero(), |acc, c| {
            acc * at + BigRational::from_integer(c.clone())
        }) / BigRational::from_integer(n.den.clone());
        let base = BigRational::one() - at;
        if n.pole > 0 && base.is_zero() {
            return None;
        }
        Some(p / pow(&base, n.pole))
    }

    /// The numerator as `c · q(s)` with `q` a primitive integer polynomial whose lowest
    /// nonzero coefficient is positive (what a paper pulls out in front), with e: `(c, q, e)`
    /// of the normalized value.
    ///
    /// ```
    /// use eomderive::series::RatFn;
    /// let beta = RatFn::symbol();
    /// // (3 + 3β)/(6(1 − β)) = (1/2)(1 + β)/(1 − β)
    /// let x = (RatFn::one() + beta).scale(&num_rational::BigRational::new(3.into(), 6.into())).over_one_minus(1);
    /// let (c, q, e) = x.factored();
    /// assert_eq!((c.to_string(), e), ("1/2".to_string(), 1));
    /// assert_eq!(q, vec![1.into(), 1.into()]);
    /// ```
    pub fn factored(&self) -> (BigRational, Vec<BigInt>, i32) {
        let n = self.normalized();
        if n.num.is_empty() {
            return (BigRational::zero(), Vec::new(), 0);
        }
        let mut gcd = n.num.iter().fold(BigInt::zero(), |g, c| g.gcd(c));
        if n.num
            .iter()
            .find(|c| !c.is_zero())
            .is_some_and(|c| c.is_negative())
        {
            gcd = -gcd;
        }
        let q = n.num.iter().map(|c| c / &gcd).collect();
        (BigRational::new(gcd, n.den), q, n.pole)
    }
}

fn times_one_minus(p: &[BigInt]) -> Vec<BigInt> {
    let mut out = vec![BigInt::zero(); p.len() + 1];
    for (k, c) in p.iter().enumerate() {
        out[k] += c;
        out[k + 1] -= c;
    }
    out
}

fn pow(base: &BigRational, e: i32) -> BigRational {
    let mut r = BigRational::one();
    for _ in 0..e.unsigned_abs() {
        r *= base;
    }
    if e < 0 {
        r.recip()
    } else {
        r
    }
}

impl std::ops::Add for RatFn {
    type Output = RatFn;
    fn add(self, other: RatFn) -> RatFn {
        &self + &other
    }
}

impl std::ops::Add<&RatFn> for &RatFn {
    type Output = RatFn;
    fn add(self, other: &RatFn) -> RatFn {
        if self.is_zero() {
            return other.clone();
        }
        if other.is_zero() {
            return self.clone();
        }
        // The same power of (1 − s) and the same denominator, then the numerators add.
        let pole = self.pole.max(other.pole);
        let den = self.den.lcm(&other.den);
        let lift = |x: &RatFn| {
            let mut num = x.num.clone();
            for _ in x.pole..pole {
                num = times_one_minus(&num);
            }
            let f = &den / &x.den;
            if !f.is_one() {
                num.iter_mut().for_each(|c| *c *= &f);
            }
            num
        };
        let (mut a, b) = (lift(self), lift(other));
        if a.len() < b.len() {
            a.resize(b.len(), BigInt::zero());
        }
        for (x, y) in a.iter_mut().zip(b) {
            *x += y;
        }
        RatFn::from_parts(a, den, pole)
    }
}

impl std::ops::Neg for RatFn {
    type Output = RatFn;
    fn neg(self) -> RatFn {
        RatFn {
            num: self.num.into_iter().map(|c| -c).collect(),
            ..self
        }
    }
}

impl std::ops::Sub for RatFn {
    type Output = RatFn;
    fn sub(self, other: RatFn) -> RatFn {
        &self + &(-other)
    }
}

impl std::ops::Mul<&RatFn> for &RatFn {
    type Output = RatFn;
    fn mul(self, other: &RatFn) -> RatFn {
        if self.is_zero() || other.is_zero() {
            return RatFn::zero();
        }
        let mut num = vec![BigInt::zero(); self.num.len() + other.num.len() - 1];
        for (i, a) in self.num.iter().enumerate() {
            if a.is_zero() {
                continue;
            }
            for (j, b) in other.num.iter().enumerate() {
                num[i + j] += a * b;
            }
        }
        RatFn::from_parts(num, &self.den * &other.den, self.pole + other.pole)
    }
}

impl std::ops::Mul for RatFn {
    type Output = RatFn;
    fn mul(self, other: RatFn) -> RatFn {
        &self * &other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    #[test]
    fn arithmetic_agrees_with_values() {
        let s = RatFn::symbol();
        let a = (RatFn::one() + s.clone()).over_one_minus(2);
        let b = (s.clone() * s.clone() - RatFn::constant(q(1, 3))).over_one_minus(-1);
        for at in [q(0, 1), q(1, 2), q(-3, 7), q(9, 10)] {
            let (x, y) = (a.eval(&at).unwrap(), b.eval(&at).unwrap());
            assert_eq!((&a + &b).eval(&at).unwrap(), &x + &y);
            assert_eq!((&a * &b).eval(&at).unwrap(), &x * &y);
            assert_eq!((a.clone() - b.clone()).eval(&at).unwrap(), &x - &y);
        }
    }

    #[test]
    fn normal_form_cancels_one_minus_s() {
        let s = RatFn::symbol();
        // (1 − s²)/(1 − s)³ = (1 + s)/(1 − s)²
        let x = (RatFn::one() - s.clone() * s.clone()).over_one_minus(3);
        let n = x.normalized();
        assert_eq!(n.pole(), 2);
        assert_eq!(n.numerator(), vec![q(1, 1), q(1, 1)]);
        assert!((RatFn::one() - s.clone()).over_one_minus(1).is_constant());
        assert_eq!(RatFn::one().over_one_minus(1).eval(&q(1, 1)), None);
    }
}
