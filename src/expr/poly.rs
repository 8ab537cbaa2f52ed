//! Sparse Laurent polynomials over ℚ in numbered atoms: the normal form behind the readable and
//! expanded forms ([`super::readable`]). An atom is a parameter or anything the normal form
//! cannot open (a function call, the reciprocal of a sum); its meaning is kept by whoever
//! numbers the atoms.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use num_bigint::BigInt;
use num_integer::Integer;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// The number of an atom.
pub type Atom = u32;

/// A monomial Π a^e: atoms in increasing order, exponents non-zero (negative exponents are
/// denominators). Ordered lexicographically with atom 0 the most significant: `u² > u v⁵ > v`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Monomial(Vec<(Atom, i32)>);

impl Monomial {
    /// The monomial 1.
    pub fn one() -> Monomial {
        Monomial(Vec::new())
    }

    /// The atom `a` to the power `e` (1 when `e` is 0).
    pub fn atom(a: Atom, e: i32) -> Monomial {
        Monomial(if e == 0 { Vec::new() } else { vec![(a, e)] })
    }

    /// The (atom, exponent) pairs, atoms increasing.
    pub fn factors(&self) -> &[(Atom, i32)] {
        &self.0
    }

    /// True for the monomial 1.
    pub fn is_one(&self) -> bool {
        self.0.is_empty()
    }

    /// The sum of the exponents.
    pub fn degree(&self) -> i64 {
        self.0.iter().map(|&(_, e)| i64::from(e)).sum()
    }

    /// The exponent of atom `a`.
    pub fn exponent(&self, a: Atom) -> i32 {
        self.0
            .binary_search_by_key(&a, |&(x, _)| x)
            .map_or(0, |i| self.0[i].1)
    }

    /// Combines exponents atom by atom: `f(e_self, e_other)` with 0 for a missing atom.
    fn zip(&self, other: &Monomial, f: impl Fn(i32, i32) -> i32) -> Monomial {
        let (a, b) = (&self.0, &other.0);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let (atom, x, y) = match (a.get(i), b.get(j)) {
                (Some(&(p, x)), Some(&(q, _))) if p < q => {
                    i += 1;
                    (p, x, 0)
                }
                (Some(&(p, _)), Some(&(q, y))) if q < p => {
                    j += 1;
                    (q, 0, y)
                }
                (Some(&(p, x)), Some(&(_, y))) => {
                    i += 1;
                    j += 1;
                    (p, x, y)
                }
                (Some(&(p, x)), None) => {
                    i += 1;
                    (p, x, 0)
                }
                (None, Some(&(q, y))) => {
                    j += 1;
                    (q, 0, y)
                }
                (None, None) => unreachable!(),
            };
            let e = f(x, y);
            if e != 0 {
                out.push((atom, e));
            }
        }
        Monomial(out)
    }

    /// The product.
    pub fn mul(&self, other: &Monomial) -> Monomial {
        self.zip(other, |x, y| x + y)
    }

    /// The quotient.
    pub fn div(&self, other: &Monomial) -> Monomial {
        self.zip(other, |x, y| x - y)
    }

    /// The largest monomial dividing both: the smaller exponent of each atom.
    pub fn gcd(&self, other: &Monomial) -> Monomial {
        self.zip(other, i32::min)
    }

    /// This monomial to the power `n`.
    pub fn pow(&self, n: i32) -> Monomial {
        Monomial(self.0.iter().map(|&(a, e)| (a, e * n)).collect())
    }

    /// True when `self` divides `other` as polynomials (every exponent at most `other`'s).
    fn divides(&self, other: &Monomial) -> bool {
        self.0.iter().all(|&(a, e)| other.exponent(a) >= e)
    }
}

impl Ord for Monomial {
    fn cmp(&self, other: &Monomial) -> Ordering {
        // The first atom (smallest number) whose exponents differ decides; larger wins.
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j) = (0, 0);
        loop {
            match (a.get(i), b.get(j)) {
                (None, None) => return Ordering::Equal,
                (Some(&(_, x)), None) => return x.cmp(&0),
                (None, Some(&(_, y))) => return 0.cmp(&y),
                (Some(&(p, x)), Some(&(q, y))) => match p.cmp(&q) {
                    Ordering::Less => return x.cmp(&0),
                    Ordering::Greater => return 0.cmp(&y),
                    Ordering::Equal if x != y => return x.cmp(&y),
                    Ordering::Equal => {
                        i += 1;
                        j += 1;
                    }
                },
            }
        }
    }
}

impl PartialOrd for Monomial {
    fn partial_cmp(&self, other: &Monomial) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A coefficient: a fraction of machine integers while it fits (nearly always: data of a
/// few digits), a `BigRational` past that. Normalised (lowest terms, positive denominator,
/// `Big` only when `Small` cannot hold it), so equal values are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Coef {
    Small(i64, i64),
    Big(BigRational),
}

fn gcd_u128(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Coef {
    fn from_big(r: &BigRational) -> Coef {
        match (r.numer().to_i64(), r.denom().to_i64()) {
            (Some(n), Some(d)) if n != i64::MIN => Coef::Small(n, d),
            _ => Coef::Big(r.clone()),
        }
    }

    fn big(&self) -> BigRational {
        match self {
            Coef::Small(n, d) => BigRational::new_raw((*n).into(), (*d).into()),
            Coef::Big(r) => r.clone(),
        }
    }

    /// n/d in lowest terms (d ≠ 0), small when it fits.
    fn ratio(n: i128, d: i128) -> Coef {
        let g = gcd_u128(n.unsigned_abs(), d.unsigned_abs()) as i128;
        let (mut n, mut d) = (n / g, d / g);
        if d < 0 {
            (n, d) = (-n, -d);
        }
        match (i64::try_from(n), i64::try_from(d)) {
            (Ok(n), Ok(d)) if n != i64::MIN => Coef::Small(n, d),
            _ => Coef::Big(BigRational::new_raw(n.into(), d.into())),
        }
    }

    fn is_zero(&self) -> bool {
        matches!(self, Coef::Small(0, _))
    }

    fn add(&self, o: &Coef) -> Coef {
        match (self, o) {
            (Coef::Small(a, b), Coef::Small(c, d)) => {
                let (a, b, c, d) = (*a as i128, *b as i128, *c as i128, *d as i128);
                match (a.checked_mul(d), c.checked_mul(b)) {
                    (Some(x), Some(y)) => Coef::ratio(x + y, b * d),
                    _ => Coef::from_big(&(self.big() + o.big())),
                }
            }
            _ => Coef::from_big(&(self.big() + o.big())),
        }
    }

    fn mul(&self, o: &Coef) -> Coef {
        match (self, o) {
            (Coef::Small(a, b), Coef::Small(c, d)) => {
                Coef::ratio(*a as i128 * *c as i128, *b as i128 * *d as i128)
            }
            _ => Coef::from_big(&(self.big() * o.big())),
        }
    }

    fn neg(&self) -> Coef {
        match self {
            Coef::Small(n, d) => Coef::Small(-n, *d),
            Coef::Big(r) => Coef::from_big(&-r),
        }
    }

    fn recip(&self) -> Coef {
        match self {
            Coef::Small(n, d) => Coef::ratio(*d as i128, *n as i128),
            Coef::Big(r) => Coef::from_big(&r.recip()),
        }
    }
}

/// A sparse polynomial Σ c m with exact rational coefficients, no zero terms.
///
/// ```
/// use eomderive::expr::poly::{Monomial, Poly};
/// let (u, v) = (Poly::atom(0), Poly::atom(1));
/// let r = u.mul(&v).sub(&Poly::int(1)); // u v - 1
/// let p = r.mul(&r).mul(&u);            // u (u v - 1)²
/// assert_eq!(p.len(), 3);
/// assert_eq!(p.div_exact(&r, 100), Some(r.mul(&u)));
/// assert_eq!(p.div_exact(&u.sub(&v), 100), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Poly {
    terms: BTreeMap<Monomial, Coef>,
}

impl Poly {
    /// The polynomial 0.
    pub fn zero() -> Poly {
        Poly::default()
    }

    /// A constant.
    pub fn constant(c: BigRational) -> Poly {
        Poly::term(Monomial::one(), c)
    }

    /// An integer constant.
    pub fn int(n: i64) -> Poly {
        Poly::constant(BigRational::from_integer(n.into()))
    }

    /// One atom.
    pub fn atom(a: Atom) -> Poly {
        Poly::term(Monomial::atom(a, 1), BigRational::one())
    }

    /// c m.
    pub fn term(m: Monomial, c: BigRational) -> Poly {
        Poly::coef_term(m, Coef::from_big(&c))
    }

    fn coef_term(m: Monomial, c: Coef) -> Poly {
        let mut terms = BTreeMap::new();
        if !c.is_zero() {
            terms.insert(m, c);
        }
        Poly { terms }
    }

    /// The number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// True for 0.
    pub fn is_zero(&self) -> bool {
        self.terms.is_empty()
    }

    /// True for 0 (no terms).
    pub fn is_empty(&self) -> bool {
        self.is_zero()
    }

    /// The terms, smallest monomial first.
    pub fn terms(&self) -> impl DoubleEndedIterator<Item = (&Monomial, BigRational)> {
        self.terms.iter().map(|(m, c)| (m, c.big()))
    }

    /// The value, when this is a constant.
    pub fn as_constant(&self) -> Option<BigRational> {
        match self.terms.len() {
            0 => Some(BigRational::zero()),
            1 => self.terms.get(&Monomial::one()).map(Coef::big),
            _ => None,
        }
    }

    /// The single term, when there is one.
    pub fn as_term(&self) -> Option<(&Monomial, BigRational)> {
        (self.terms.len() == 1).then(|| self.terms().next().unwrap())
    }

    /// The leading (largest) term.
    pub fn leading(&self) -> Option<(&Monomial, BigRational)> {
        self.terms().next_back()
    }

    /// Whether the leading coefficient is negative.
    pub fn leads_negative(&self) -> bool {
        match self.terms.values().next_back() {
            Some(Coef::Small(n, _)) => *n < 0,
            Some(Coef::Big(r)) => r.is_negative(),
            None => false,
        }
    }

    fn add_term(&mut self, m: Monomial, c: Coef) {
        if c.is_zero() {
            return;
        }
        match self.terms.entry(m) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(c);
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let sum = e.get().add(&c);
                if sum.is_zero() {
                    e.remove();
                } else {
                    *e.get_mut() = sum;
                }
            }
        }
    }

    /// The sum.
    pub fn add(&self, other: &Poly) -> Poly {
        let (mut big, small) = if self.len() >= other.len() {
            (self.clone(), other)
        } else {
            (other.clone(), self)
        };
        for (m, c) in &small.terms {
            big.add_term(m.clone(), c.clone());
        }
        big
    }

    /// Σ ±p over many polynomials at once (`true`: subtracted), in time about the number of
    /// terms times its logarithm: a sum of n parts added one by one would copy the partial
    /// sums, n²/2 terms.
    ///
    /// ```
    /// use eomderive::expr::poly::Poly;
    /// let (a, b) = (Poly::atom(0), Poly::atom(1));
    /// let s = Poly::sum([(false, &a), (false, &b), (true, &a)]);
    /// assert_eq!(s, b);
    /// ```
    pub fn sum<'a>(parts: impl IntoIterator<Item = (bool, &'a Poly)>) -> Poly {
        let mut out = Poly::zero();
        for (negate, p) in parts {
            for (m, c) in &p.terms {
                out.add_term(m.clone(), if negate { c.neg() } else { c.clone() });
            }
        }
        out
    }

    /// The difference.
    pub fn sub(&self, other: &Poly) -> Poly {
        self.add(&other.neg())
    }

    /// The negation.
    pub fn neg(&self) -> Poly {
        Poly {
            terms: self
                .terms
                .iter()
                .map(|(m, x)| (m.clone(), x.neg()))
                .collect(),
        }
    }

    /// c times this.
    pub fn scale(&self, c: &BigRational) -> Poly {
        self.mul_term(&Monomial::one(), c)
    }

    /// c m times this.
    pub fn mul_term(&self, m: &Monomial, c: &BigRational) -> Poly {
        self.mul_coef(m, &Coef::from_big(c))
    }

    fn mul_coef(&self, m: &Monomial, c: &Coef) -> Poly {
        if c.is_zero() {
            return Poly::zero();
        }
        Poly {
            terms: self
                .terms
                .iter()
                .map(|(x, k)| (x.mul(m), k.mul(c)))
                .collect(),
        }
    }

    /// The product.
    pub fn mul(&self, other: &Poly) -> Poly {
        if self.len() == 1 {
            let (m, c) = self.terms.iter().next().unwrap();
            return other.mul_coef(m, c);
        }
        if other.len() == 1 {
            let (m, c) = other.terms.iter().next().unwrap();
            return self.mul_coef(m, c);
        }
        let mut products: Vec<(Monomial, Coef)> = Vec::with_capacity(self.len() * other.len());
        for (m, c) in &other.terms {
            for (x, k) in &self.terms {
                products.push((x.mul(m), k.mul(c)));
            }
        }
        products.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut terms: Vec<(Monomial, Coef)> = Vec::with_capacity(products.len());
        for (m, c) in products {
            match terms.last_mut() {
                Some((last, sum)) if *last == m => *sum = sum.add(&c),
                _ => terms.push((m, c)),
            }
        }
        Poly {
            terms: terms.into_iter().filter(|(_, c)| !c.is_zero()).collect(),
        }
    }

    /// The number of terms plus the number of atoms written in them: the memory a
    /// polynomial takes, in units.
    pub fn size(&self) -> usize {
        self.terms.keys().map(|m| 1 + m.0.len()).sum()
    }

    /// What `mul` costs, in the units of [`Poly::size`]: every product of two terms, as long
    /// as the two monomials together.
    pub fn mul_cost(&self, other: &Poly) -> usize {
        other
            .len()
            .saturating_mul(self.size())
            .saturating_add(self.len().saturating_mul(other.size()))
    }

    /// The largest monomial dividing every term (exponents may be negative: a common
    /// denominator); 1 for 0.
    pub fn monomial_content(&self) -> Monomial {
        let mut it = self.terms.keys();
        let Some(first) = it.next() else {
            return Monomial::one();
        };
        it.fold(first.clone(), |g, m| g.gcd(m))
    }

    /// The positive rational c such that this over c has coprime integer coefficients; 1 for 0.
    pub fn content(&self) -> BigRational {
        if self.is_zero() {
            return BigRational::one();
        }
        let (mut n, mut d) = (0u128, 1u128);
        let mut small = true;
        for c in self.terms.values() {
            match c {
                Coef::Small(a, b) => {
                    n = gcd_u128(n, a.unsigned_abs() as u128);
                    let b = b.unsigned_abs() as u128;
                    match (d / gcd_u128(d, b)).checked_mul(b) {
                        Some(l) if l <= i64::MAX as u128 => d = l,
                        _ => small = false,
                    }
                }
                Coef::Big(_) => small = false,
            }
            if !small {
                break;
            }
        }
        if small {
            return BigRational::new((n as i64).into(), (d as i64).into());
        }
        let mut num = BigInt::zero();
        let mut den = BigInt::one();
        for c in self.terms.values() {
            let c = c.big();
            num = num.gcd(c.numer());
            den = den.lcm(c.denom());
        }
        BigRational::new(num, den)
    }

    /// `self / q` when `q` divides `self` exactly, within `budget` term operations.
    pub fn div_exact(&self, q: &Poly, budget: usize) -> Option<Poly> {
        self.div_exact_counted(q, budget, &mut 0)
    }

    /// [`Poly::div_exact`], adding the term operations it used to `used`.
    pub fn div_exact_counted(&self, q: &Poly, budget: usize, used: &mut usize) -> Option<Poly> {
        *used += 2;
        let (mq, cq) = q.terms.iter().next_back()?;
        if q.len() == 1 {
            let inv = cq.recip();
            return Some(Poly {
                terms: self
                    .terms
                    .iter()
                    .map(|(m, c)| (m.div(mq), c.mul(&inv)))
                    .collect(),
            });
        }
        // Shift both to true polynomials; the division algorithm then terminates.
        let (sp, sq) = (self.monomial_content(), q.monomial_content());
        // In a monomial order the largest and the smallest terms of a product are the
        // products of the factors' own: most candidates fail here, before any work.
        let shifted = |p: &Poly, s: &Monomial, last: bool| {
            let t = if last {
                p.terms.keys().next_back()
            } else {
                p.terms.keys().next()
            };
            t.map(|m| m.div(s)).unwrap_or_default()
        };
        for last in [true, false] {
            if !shifted(q, &sq, last).divides(&shifted(self, &sp, last)) {
                return None;
            }
        }
        *used += self.len() + q.len();
        let one = Coef::Small(1, 1);
        let mut r = self.mul_coef(&sp.pow(-1), &one);
        let q = q.mul_coef(&sq.pow(-1), &one);
        let (lm, lc) = q
            .terms
            .iter()
            .next_back()
            .map(|(m, c)| (m.clone(), c.recip()))?;
        let mut quotient = Poly::zero();
        let mut steps = 0;
        while let Some((m, c)) = r
            .terms
            .iter()
            .next_back()
            .map(|(m, c)| (m.clone(), c.clone()))
        {
            if !lm.divides(&m) || steps >= budget {
                return None;
            }
            steps += q.len();
            *used += q.len();
            let tm = m.div(&lm);
            let tc = c.mul(&lc);
            let minus = tc.neg();
            for (x, k) in &q.terms {
                r.add_term(x.mul(&tm), k.mul(&minus));
            }
            quotient.add_term(tm, tc);
        }
        Some(quotient.mul_coef(&sp.div(&sq), &one))
    }

    /// Splits off the content and the monomial content: `self = c m p` with `p` having coprime
    /// integer coefficients, no monomial factor, and a positive leading coefficient.
    pub fn primitive(&self) -> (BigRational, Monomial, Poly) {
        let mut c = self.content();
        if self.leads_negative() {
            c = -c;
        }
        let m = self.monomial_content();
        let p = self.mul_term(&m.pow(-1), &c.recip());
        (c, m, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    #[test]
    fn lex_order() {
        let u2 = Monomial::atom(0, 2);
        let uv5 = Monomial::atom(0, 1).mul(&Monomial::atom(1, 5));
        let v = Monomial::atom(1, 1);
        assert!(u2 > uv5 && uv5 > v && v > Monomial::one());
        assert!(Monomial::one() > Monomial::atom(1, -1));
    }

    #[test]
    fn primitive_parts() {
        // -(3/2) u⁻¹ v (2 u² - 4 v) = -3 u v + 6 u⁻¹ v²
        let p = Poly::term(Monomial::atom(0, 1).mul(&Monomial::atom(1, 1)), r(-3, 1)).add(
            &Poly::term(Monomial::atom(0, -1).mul(&Monomial::atom(1, 2)), r(6, 1)),
        );
        let (c, m, q) = p.primitive();
        assert_eq!(c, r(-3, 1));
        assert_eq!(m, Monomial::atom(0, -1).mul(&Monomial::atom(1, 1)));
        assert_eq!(q.len(), 2);
        assert_eq!(q.mul_term(&m, &c), p);
    }

    #[test]
    fn exact_division_in_laurent_terms() {
        let (u, v) = (Poly::atom(0), Poly::atom(1));
        let f = u.add(&v.scale(&r(1, 2))); // u + v/2
        let g = u.sub(&v).mul(&u.mul_term(&Monomial::atom(1, -2), &r(3, 1)));
        let p = f.mul(&g);
        assert_eq!(p.div_exact(&f, 1000), Some(g.clone()));
        assert_eq!(p.div_exact(&g, 1000), Some(f.clone()));
        assert_eq!(p.add(&Poly::int(1)).div_exact(&f, 1000), None);
        assert_eq!(p.div_exact(&f, 1), None); // out of budget
    }
}
