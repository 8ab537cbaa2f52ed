//! The forms a person reads: the same expressions extracted for a reader instead of for the
//! compiler (DESIGN.md §5: "what a reader reads is another extraction").
//!
//! Both forms start from one normal form ([`Normal`]): every expression as a Laurent
//! polynomial over ℚ ([`Poly`]) in *atoms*, the parameters and what the normal form cannot
//! open (a function call of a normalised argument, the reciprocal of a sum, a symbolic power).
//! Odd and even functions are written with a positive leading argument (`tanh(-b) = -tanh(b)`),
//! so one quantity is one atom.
//!
//! - [`expanded`]: each expression as its sum of monomials, arguments expanded too.
//! - [`readable`]: the same polynomial factored over ℚ the way `factor` would print it, as far
//!   as the loss itself shows the factors: the content and the common monomial (a common
//!   denominator included) come out first, then trial division by the loss's own
//!   subexpressions (the residual `u v - 1` of a factorisation loss, the logits of a
//!   classifier). What stays is a collected sum, terms by falling degree. egg then collects
//!   common factors inside those sums where that shortens what is printed
//!   ([`super::collect`]).
//!
//! Both are bounded by [`FormLimits`] and say so ([`TooLarge`]) instead of running on; the
//! caller then prints the program form.

use crate::hash::{HashMap, HashSet};
use std::rc::Rc;

use egg::Language as _;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::poly::{Atom, Monomial, Poly};
use super::{Func, Graph, Id, Op, VarId};

/// Bounds on building a form. Term counts, not time, so results are deterministic.
#[derive(Debug, Clone, Copy)]
pub struct FormLimits {
    /// Most terms of any one polynomial of the normal form.
    pub terms: usize,
    /// Most term operations (products of two terms, additions of a term, division steps)
    /// for one form of one derivation.
    pub work: usize,
    /// Candidate factors with at most this many terms are tried by division.
    pub factor_terms: usize,
    /// Most operations of the program a form is built from: past it, the formulas are too
    /// long to read whatever their form, and building one would cost more than deriving it.
    pub program_ops: usize,
}

impl Default for FormLimits {
    fn default() -> FormLimits {
        FormLimits {
            terms: 20_000,
            work: 40_000_000,
            program_ops: 20_000,
            factor_terms: 16,
        }
    }
}

/// A form that would pass its [`FormLimits`]: what it was building when it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// `"a sum of more than 20000 terms"`, `"more than 40000000 term operations"`.
    pub what: String,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

/// Expressions rebuilt in another form, in the same graph.
#[derive(Debug, Clone)]
pub struct Rewritten {
    /// The roots asked for, in order.
    pub roots: Vec<Id>,
    /// The loss file's `let` names, at the nodes their values became in this form (a printer
    /// names them wherever they occur).
    pub lets: Vec<(String, Id)>,
}

/// Each root as a sum of monomials in the parameters and the loss's functions.
///
/// ```
/// use eomderive::expr::readable::{expanded, FormLimits};
/// let mut m = eomderive::lang::parse_str("(u*v - 1)^2/2").unwrap();
/// let r = expanded(&mut m.graph, &[m.loss], &[], 2, &FormLimits::default()).unwrap();
/// let p = eomderive::render::Printer::new(&m.graph, &m.params, &[], &r.roots);
/// assert_eq!(p.expr(r.roots[0]), "u^2*v^2/2 - u*v + 1/2");
/// ```
pub fn expanded(
    graph: &mut Graph,
    roots: &[Id],
    lets: &[(String, Id)],
    params: usize,
    limits: &FormLimits,
) -> Result<Rewritten, TooLarge> {
    small_enough(graph, roots, limits)?;
    rewrite(
        graph,
        roots,
        lets,
        &[],
        params,
        limits,
        false,
        HashSet::default(),
    )
}

/// Each root factored and collected for a reader; `sources` are the expressions whose
/// subexpressions are tried as factors (the loss).
///
/// Two normal forms compete, and the one a reader reads least of wins (the fewest
/// [`printed_ops`] with the names [`names`] would give, plus [`BINDING_PRICE`] per name; on
/// a tie the first):
///
/// 1. *whole*: every root one polynomial, factored, as `factor` prints it. Only for losses
///    that are polynomials or quotients of the parameters (multiplied out, σ(z)(1 - σ(z))
///    loses its shape), and within a budget proportional to the program's size, so an
///    expansion that swells is abandoned early.
/// 2. *local*: cut at every subexpression the program shares and every sum that is
///    multiplied, divided, raised or called; each cut a polynomial of its own over the cuts
///    below it, so that like terms are collected and nothing is multiplied out.
///
/// ```
/// use eomderive::expr::readable::{readable, FormLimits};
/// let mut m = eomderive::lang::parse_str("(u*v - 1)^2*u").unwrap();
/// let d = eomderive::expr::Diff::new(2).gradient(&mut m.graph, m.loss);
/// let r = readable(&mut m.graph, &d, &[], &[m.loss], 2, &FormLimits::default()).unwrap();
/// let p = eomderive::render::Printer::reader(&m.graph, &m.params, &[], &r.roots);
/// assert_eq!(p.expr(r.roots[1]), "2*u^2*(u*v - 1)");
/// ```
pub fn readable(
    graph: &mut Graph,
    roots: &[Id],
    lets: &[(String, Id)],
    sources: &[Id],
    params: usize,
    limits: &FormLimits,
) -> Result<Rewritten, TooLarge> {
    let program = small_enough(graph, roots, limits)?;
    let shared_cuts = shared(graph, roots);
    // Work in proportion to the program, so that no form costs much more than deriving it.
    let within = |terms: usize, work: usize| FormLimits {
        terms: limits.terms.min(terms * program + 64),
        work: limits.work.min(work * program + 1_000),
        ..*limits
    };
    let local_cuts = local(graph, roots, &shared_cuts);
    let let_ids: Vec<Id> = lets.iter().map(|(_, id)| *id).collect();
    let mut best: Option<(u64, Rewritten)> = None;
    let mut refused = None;
    // Multiplied out, σ(z)(1 - σ(z)) becomes σ(z) - σ(z)^2 and the derivative's structure
    // is lost: the whole form is for polynomials and quotients of the parameters.
    let rational = graph.cone(roots).into_iter().all(|id| match graph.get(id) {
        Op::Call(..) => false,
        Op::Pow([_, e]) => graph.as_num(*e).is_some_and(|e| e.is_integer()),
        _ => true,
    });
    let mut variants = vec![(local_cuts, within(4, 100))];
    if rational {
        variants.insert(0, (HashSet::default(), within(8, 100)));
    }
    for (cuts, limits) in variants {
        match rewrite(graph, roots, lets, sources, params, &limits, true, cuts) {
            Ok(r) => {
                let named: Vec<Id> = names(graph, &r.roots, &let_ids);
                let size = printed_ops(graph, &r.roots, &named.iter().copied().collect())
                    + BINDING_PRICE * named.len() as u64;
                if best.as_ref().is_none_or(|(b, _)| size < *b) {
                    best = Some((size, r));
                }
            }
            Err(e) => refused = Some(e),
        }
    }
    match best {
        Some((_, r)) => Ok(r),
        None => Err(refused.expect("a form was tried")),
    }
}

/// The program's operation count, or why it is too long for any form but itself.
fn small_enough(graph: &Graph, roots: &[Id], limits: &FormLimits) -> Result<usize, TooLarge> {
    let ops = graph.op_count(roots);
    if ops > limits.program_ops {
        return Err(TooLarge {
            what: format!(
                "a program of at most {} operations (this one has {ops})",
                limits.program_ops
            ),
        });
    }
    Ok(ops)
}

/// The subexpressions the program form shares among `roots` (used more than once): cut there,
/// the readable form keeps the program's sharing.
pub fn shared(graph: &Graph, roots: &[Id]) -> HashSet<Id> {
    let cone = graph.cone(roots);
    let mut uses: HashMap<Id, usize> = HashMap::default();
    for &id in roots.iter().chain(
        cone.iter()
            .flat_map(|&id| egg::Language::children(graph.get(id)).iter()),
    ) {
        *uses.entry(id).or_default() += 1;
    }
    cone.into_iter()
        .filter(|&id| uses[&id] > 1 && !egg::Language::is_leaf(graph.get(id)))
        .collect()
}

/// `shared` and every sum that is an operand of a product, quotient, power or call.
fn local(graph: &Graph, roots: &[Id], shared: &HashSet<Id>) -> HashSet<Id> {
    let mut cuts = shared.clone();
    for id in graph.cone(roots) {
        let op = graph.get(id);
        if matches!(op, Op::Add(_) | Op::Sub(_) | Op::Neg(_)) {
            continue;
        }
        for &c in op.children() {
            if matches!(graph.get(c), Op::Add(_) | Op::Sub(_)) {
                cuts.insert(c);
            }
        }
    }
    cuts
}

#[allow(clippy::too_many_arguments)]
fn rewrite(
    graph: &mut Graph,
    roots: &[Id],
    lets: &[(String, Id)],
    sources: &[Id],
    params: usize,
    limits: &FormLimits,
    factor: bool,
    cuts: HashSet<Id>,
) -> Result<Rewritten, TooLarge> {
    let mut normal = Normal::new(params, cuts, *limits);
    let mut all: Vec<Id> = roots.to_vec();
    all.extend(lets.iter().map(|(_, id)| *id));
    let source_cone = if factor {
        factor_sources(graph, sources, limits.factor_terms)
    } else {
        Vec::new()
    };
    all.extend(&source_cone);
    normal.run(graph, &all)?;
    let mut candidates = Vec::new();
    if factor {
        let mut seen = HashSet::default();
        for &id in source_cone.iter().chain(lets.iter().map(|(_, id)| id)) {
            let p = normal.get(id);
            if p.len() < 2 || p.len() > limits.factor_terms {
                continue;
            }
            let (_, _, q) = p.primitive();
            if q.len() >= 2 && seen.insert(q.clone()) {
                candidates.push(q);
            }
        }
        // Smallest first, so a product of known factors comes apart into all of them.
        candidates.sort_by_key(|q| q.len());
    }
    let candidates: Vec<(Poly, HashSet<Atom>)> = candidates
        .into_iter()
        .map(|q| {
            let a = atoms_of(&q);
            (q, a)
        })
        .collect();
    let polys: Vec<Rc<Poly>> = roots.iter().map(|&r| normal.get(r)).collect();
    let let_polys: Vec<Rc<Poly>> = lets.iter().map(|(_, id)| normal.get(*id)).collect();
    let mut b = Builder {
        graph,
        normal: &normal,
        atoms: HashMap::default(),
        memo: HashMap::default(),
        candidates,
        factor,
        work: normal.work,
        limits: *limits,
        depth: 0,
    };
    let new_roots = polys
        .iter()
        .map(|p| b.build(p))
        .collect::<Result<Vec<Id>, TooLarge>>()?;
    let new_lets = let_polys
        .iter()
        .map(|p| b.build(p))
        .collect::<Result<Vec<Id>, TooLarge>>()?;
    Ok(Rewritten {
        roots: new_roots,
        lets: lets.iter().map(|(n, _)| n.clone()).zip(new_lets).collect(),
    })
}

/// The sums of `sources` small enough to be tried as factors: written out, at most
/// `4 terms` operations (the residual `w*x[i] + b - y[i]` of one example, not the loss).
fn factor_sources(graph: &Graph, sources: &[Id], terms: usize) -> Vec<Id> {
    let cone = graph.cone(sources);
    let mut size: HashMap<Id, usize> =
        HashMap::with_capacity_and_hasher(cone.len(), Default::default());
    let mut out = Vec::new();
    for &id in &cone {
        let op = graph.get(id);
        let s = op
            .children()
            .iter()
            .fold(1usize, |s, c| s.saturating_add(size[c]));
        size.insert(id, s);
        if matches!(op, Op::Add(_) | Op::Sub(_)) && s <= 4 * terms {
            out.push(id);
        }
    }
    out
}

/// A cut sum of at most this many terms is opened in its parents instead: a single term
/// (a monomial) is no sum.
const MIN_CUT_TERMS: usize = 1;

/// What an atom stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AtomKind {
    Var(VarId),
    Call(Func, Poly),
    /// 1 / p, p a sum with coprime integer coefficients and a positive leading one.
    Recip(Poly),
    /// base ^ exponent, the exponent not an integer.
    Pow(Poly, Poly),
    /// A sum kept whole (a cut of the program): coprime integer coefficients, oriented by
    /// [`Normal::orient`], printed from its own normal form.
    Sum(Poly),
}

/// The normal form of every node of a cone, with the atoms it introduced.
struct Normal {
    atoms: Vec<AtomKind>,
    index: HashMap<AtomKind, Atom>,
    /// The normal form of each node as its parents see it (a cut node is its atom).
    memo: HashMap<Id, Rc<Poly>>,
    /// The normal form of each cut node itself, over the cuts below it.
    defs: HashMap<Id, Rc<Poly>>,
    cuts: HashSet<Id>,
    limits: FormLimits,
    work: usize,
}

impl Normal {
    fn new(params: usize, cuts: HashSet<Id>, limits: FormLimits) -> Normal {
        let mut n = Normal {
            atoms: Vec::new(),
            index: HashMap::default(),
            memo: HashMap::default(),
            defs: HashMap::default(),
            cuts,
            limits,
            work: 0,
        };
        // The parameters first, in their order: they lead every monomial order.
        for v in 0..params {
            n.atom(AtomKind::Var(VarId(v as u32)));
        }
        n
    }

    /// The normal form of a node itself (for a cut node, its definition).
    fn get(&self, id: Id) -> Rc<Poly> {
        self.defs.get(&id).unwrap_or(&self.memo[&id]).clone()
    }

    fn atom(&mut self, kind: AtomKind) -> Poly {
        let next = self.atoms.len() as Atom;
        let a = *self.index.entry(kind.clone()).or_insert(next);
        if a == next {
            self.atoms.push(kind);
        }
        Poly::atom(a)
    }

    /// `p = c m q` as [`Poly::primitive`] splits it, except that a binomial of a negative
    /// constant and a term of the loss's functions is turned round, so that `1 - σ(z)` and
    /// `1 - tanh(z)^2` read as they are written.
    fn orient(&self, p: &Poly) -> (BigRational, Monomial, Poly) {
        let (c, m, q) = p.primitive();
        let turn = q.len() == 2
            && q.terms().any(|(t, k)| t.is_one() && k.is_negative())
            && q.terms().any(|(t, _)| {
                t.factors()
                    .iter()
                    .any(|&(a, _)| matches!(self.atoms[a as usize], AtomKind::Call(..)))
            });
        if turn {
            (-c, m, q.neg())
        } else {
            (c, m, q)
        }
    }

    /// `p` with every term c m S (S a cut sum to the first power, m the rest) opened where
    /// m S has a term that `p` has too: `x - (y - x)` is `2x - y`.
    fn open_sums(&self, p: Poly) -> Poly {
        // An opened sum may bring in sums of its own that meet `p`: a few rounds.
        let mut p = p;
        for _ in 0..8 {
            let (q, opened) = self.open_sums_once(p);
            p = q;
            if !opened {
                break;
            }
        }
        p
    }

    fn open_sums_once(&self, p: Poly) -> (Poly, bool) {
        let mut any = false;
        let linear: Vec<(Monomial, BigRational, Atom)> = p
            .terms()
            .filter_map(|(m, c)| {
                let sums: Vec<Atom> = m
                    .factors()
                    .iter()
                    .filter(|&&(a, e)| e == 1 && matches!(self.atoms[a as usize], AtomKind::Sum(_)))
                    .map(|&(a, _)| a)
                    .collect();
                (sums.len() == 1).then(|| (m.clone(), c, sums[0]))
            })
            .collect();
        let opened: Vec<Poly> = linear
            .iter()
            .map(|(m, c, a)| {
                let AtomKind::Sum(q) = &self.atoms[*a as usize] else {
                    unreachable!()
                };
                q.mul_term(&m.div(&Monomial::atom(*a, 1)), c)
            })
            .collect();
        let mut p = p;
        for (i, ((m, c, _), o)) in linear.iter().zip(&opened).enumerate() {
            // At least half its terms meet a term of `p` or of another opened sum
            // (2 (5u + 2v) + (3u + v)); fewer, and opening only multiplies out.
            let meets = o
                .terms()
                .filter(|(t, _)| {
                    p.terms().any(|(n, _)| n == *t)
                        || opened
                            .iter()
                            .enumerate()
                            .any(|(j, x)| j != i && x.terms().any(|(n, _)| n == *t))
                })
                .count();
            if 2 * meets >= o.len() {
                p = p.sub(&Poly::term(m.clone(), c.clone())).add(o);
                any = true;
            }
        }
        (p, any)
    }

    /// A constant and a power of one function call, `1 - σ(x)` or `1 - tanh(x)^2`: the
    /// shape of a derivative identity, kept open so that it meets the call's other uses.
    fn identity(&self, p: &Poly) -> bool {
        p.len() == 2
            && p.terms().any(|(m, _)| m.is_one())
            && p.terms().any(|(m, _)| {
                matches!(m.factors(), [(a, _)] if matches!(self.atoms[*a as usize], AtomKind::Call(..)))
            })
    }

    fn charge(&mut self, work: usize) -> Result<(), TooLarge> {
        self.work = self.work.saturating_add(work);
        if self.work > self.limits.work {
            return Err(TooLarge {
                what: format!("more than {} term operations", self.limits.work),
            });
        }
        Ok(())
    }

    fn check(&self, p: Poly) -> Result<Poly, TooLarge> {
        if p.len() > self.limits.terms || p.size() > 8 * self.limits.terms {
            return Err(TooLarge {
                what: format!("a sum of more than {} terms", self.limits.terms),
            });
        }
        Ok(p)
    }

    fn mul(&mut self, a: &Poly, b: &Poly) -> Result<Poly, TooLarge> {
        self.charge(a.mul_cost(b))?;
        self.check(a.mul(b))
    }

    fn run(&mut self, graph: &Graph, roots: &[Id]) -> Result<(), TooLarge> {
        let cone = graph.cone(roots);
        // A sum used once, by another sum, is part of that sum's spine: it is never needed
        // alone, and the spine is summed at once (a chain of n binary additions would build
        // every partial sum, n²/2 terms).
        let mut uses: HashMap<Id, usize> = HashMap::default();
        let mut parent_sum: HashMap<Id, bool> = HashMap::default();
        for &r in roots {
            *uses.entry(r).or_default() += 1;
        }
        for &id in &cone {
            let op = graph.get(id);
            let is_sum = matches!(op, Op::Add(_) | Op::Sub(_));
            for &c in op.children() {
                *uses.entry(c).or_default() += 1;
                parent_sum.insert(c, is_sum);
            }
        }
        let interior: HashSet<Id> = cone
            .iter()
            .copied()
            .filter(|id| {
                matches!(graph.get(*id), Op::Add(_) | Op::Sub(_))
                    && uses.get(id) == Some(&1)
                    && parent_sum.get(id) == Some(&true)
                    && !self.cuts.contains(id)
                    && !self.memo.contains_key(id)
            })
            .collect();
        for id in cone {
            if self.memo.contains_key(&id) || interior.contains(&id) {
                continue;
            }
            let p = match graph.get(id) {
                Op::Add(_) | Op::Sub(_) => self.spine(graph, id, &interior)?,
                _ => self.node(graph, id)?,
            };
            let p = Rc::new(self.open_sums(p));
            // A call stays open: its normal form is the canonical atom (`1 - σ(x)` for
            // `σ(-x)`), which must meet the other uses of that atom.
            let call = matches!(graph.get(id), Op::Call(..));
            let (c, m, q) = self.orient(&p);
            if self.cuts.contains(&id) && q.len() > MIN_CUT_TERMS && !call && !self.identity(&p) {
                // The cut stands for its primitive sum; the content and common monomial stay
                // with the parents, where they combine with theirs.
                self.defs.insert(id, p);
                let a = self.atom(AtomKind::Sum(q));
                self.memo.insert(id, Rc::new(a.mul_term(&m, &c)));
            } else {
                self.memo.insert(id, p);
            }
        }
        Ok(())
    }

    /// A sum with its interior sums (see [`Normal::run`]) opened, summed at once.
    fn spine(&mut self, graph: &Graph, id: Id, interior: &HashSet<Id>) -> Result<Poly, TooLarge> {
        let mut parts: Vec<(bool, Id)> = Vec::new();
        let mut stack = vec![(false, id)];
        while let Some((negate, x)) = stack.pop() {
            match graph.get(x) {
                Op::Add([a, b]) if x == id || interior.contains(&x) => {
                    stack.push((negate, *b));
                    stack.push((negate, *a));
                }
                Op::Sub([a, b]) if x == id || interior.contains(&x) => {
                    stack.push((!negate, *b));
                    stack.push((negate, *a));
                }
                _ => parts.push((negate, x)),
            }
        }
        let polys: Vec<(bool, Rc<Poly>)> = parts
            .into_iter()
            .map(|(negate, x)| (negate, self.memo[&x].clone()))
            .collect();
        self.charge(polys.iter().map(|(_, p)| p.size()).sum())?;
        self.check(Poly::sum(polys.iter().map(|(n, p)| (*n, &**p))))
    }

    fn node(&mut self, graph: &Graph, id: Id) -> Result<Poly, TooLarge> {
        let m = |c: &Id| self.memo[c].clone();
        Ok(match graph.get(id).clone() {
            Op::Num(r) => Poly::constant(r.value().clone()),
            Op::Var(v) => self.atom(AtomKind::Var(v)),
            Op::Add([a, b]) => {
                let (a, b) = (m(&a), m(&b));
                self.charge(a.size() + b.size())?;
                self.check(a.add(&b))?
            }
            Op::Sub([a, b]) => {
                let (a, b) = (m(&a), m(&b));
                self.charge(a.size() + b.size())?;
                self.check(a.sub(&b))?
            }
            Op::Neg(a) => m(&a).neg(),
            Op::Mul([a, b]) => {
                let (a, b) = (m(&a), m(&b));
                self.mul(&a, &b)?
            }
            Op::Div([a, b]) => {
                let (a, b) = (m(&a), m(&b));
                self.divide(&a, &b)?
            }
            Op::Pow([a, b]) => {
                let (a, b) = (m(&a), m(&b));
                match b.as_constant().filter(|e| e.is_integer()) {
                    Some(e) => match e.to_integer().to_i32() {
                        Some(n) if n.unsigned_abs() <= 64 => self.power(&a, n)?,
                        _ => self.atom(AtomKind::Pow((*a).clone(), (*b).clone())),
                    },
                    None => self.atom(AtomKind::Pow((*a).clone(), (*b).clone())),
                }
            }
            Op::Call(f, [a]) => {
                let a = m(&a);
                self.call(f, &a)
            }
        })
    }

    /// a / b: by the monomial exactly, by a sum exactly when it divides, else through the
    /// reciprocal atom of b's primitive part.
    fn divide(&mut self, a: &Poly, b: &Poly) -> Result<Poly, TooLarge> {
        if b.is_zero() {
            let r = self.atom(AtomKind::Recip(Poly::zero()));
            return self.mul(a, &r);
        }
        let (c, m, q) = b.primitive();
        let a = a.mul_term(&m.pow(-1), &c.recip());
        if q.len() == 1 {
            return Ok(a);
        }
        let mut used = 0;
        let exact = a.div_exact_counted(&q, 4 * a.len() * q.len() + 64, &mut used);
        self.charge(used)?;
        if let Some(exact) = exact {
            return Ok(exact);
        }
        let r = self.atom(AtomKind::Recip(q));
        self.mul(&a, &r)
    }

    fn power(&mut self, a: &Poly, n: i32) -> Result<Poly, TooLarge> {
        if let Some((m, c)) = a.as_term() {
            if !(c.is_zero() && n < 0) {
                let c = num_traits::pow(c.clone(), n.unsigned_abs() as usize);
                let c = if n < 0 { c.recip() } else { c };
                return Ok(Poly::term(m.pow(n), c));
            }
        }
        if n < 0 {
            let (c, m, q) = a.primitive();
            let r = self.atom(AtomKind::Recip(q));
            let inv = self.power(&r, -n)?;
            let k = num_traits::pow(c.recip(), n.unsigned_abs() as usize);
            return Ok(inv.mul_term(&m.pow(n), &k));
        }
        let mut out = Poly::int(1);
        for _ in 0..n {
            out = self.mul(&out, a)?;
        }
        Ok(out)
    }

    /// f(a), with odd and even functions turned to a positive leading argument.
    fn call(&mut self, f: Func, a: &Poly) -> Poly {
        let negative = a.leads_negative();
        if negative {
            let minus = a.neg();
            match f {
                Func::Tanh | Func::Sin | Func::Tan => {
                    return self.atom(AtomKind::Call(f, minus)).neg();
                }
                Func::Cos => return self.atom(AtomKind::Call(f, minus)),
                // σ(-x) = 1 - σ(x). (softplus(-x) = softplus(x) - x would hide the loss as
                // written for nothing: its derivatives are σ's.)
                Func::Sigmoid => {
                    return Poly::int(1).sub(&self.atom(AtomKind::Call(f, minus)));
                }
                _ => {}
            }
        }
        self.atom(AtomKind::Call(f, a.clone()))
    }
}

/// Builds polynomials back into graph nodes, laid out for printing.
struct Builder<'a> {
    graph: &'a mut Graph,
    normal: &'a Normal,
    atoms: HashMap<Atom, Id>,
    memo: HashMap<Poly, Id>,
    /// Primitive sums tried as factors, smallest first, with their atoms.
    candidates: Vec<(Poly, HashSet<Atom>)>,
    factor: bool,
    work: usize,
    limits: FormLimits,
    /// Nesting of [`Builder::build`] calls.
    depth: usize,
}

/// Most nesting of atoms in atoms a form writes out.
const MAX_NESTING: usize = 600;

impl Builder<'_> {
    fn build(&mut self, p: &Poly) -> Result<Id, TooLarge> {
        if let Some(&id) = self.memo.get(p) {
            return Ok(id);
        }
        // Atoms inside atoms (calls of calls) recurse; the language nests 256 levels, a
        // power tower u^u^…^u as deep as it is long.
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(TooLarge {
                what: format!("functions nested more than {MAX_NESTING} deep"),
            });
        }
        let id = if self.factor {
            self.factored(p)
        } else {
            self.sum(p)
                .map(|(negative, node)| self.signed(negative, node))
        };
        self.depth -= 1;
        let id = id?;
        self.memo.insert(p.clone(), id);
        Ok(id)
    }

    fn signed(&mut self, negative: bool, node: Id) -> Id {
        if negative {
            self.graph.intern(Op::Neg(node))
        } else {
            node
        }
    }

    /// c m F_1^k_1 … Q: content and monomial content, the candidate factors that divide,
    /// and the cofactor.
    fn factored(&mut self, p: &Poly) -> Result<Id, TooLarge> {
        if p.len() <= 1 {
            let (negative, node) = self.sum(p)?;
            return Ok(self.signed(negative, node));
        }
        let together = self.together(p)?;
        let p = together.as_ref().unwrap_or(p);
        let (c, m, mut q) = p.primitive();
        let mut factors: Vec<(Poly, i32)> = Vec::new();
        let have = atoms_of(&q);
        let candidates = std::mem::take(&mut self.candidates);
        for (f, atoms) in &candidates {
            if f.len() > q.len() || !atoms.is_subset(&have) || *f == q {
                continue;
            }
            let mut k = 0;
            loop {
                let mut used = 0;
                let d = q.div_exact_counted(f, 4 * q.len() * f.len() + 64, &mut used);
                self.work = self.work.saturating_add(used);
                if self.work > self.limits.work {
                    return Err(TooLarge {
                        what: format!("more than {} term operations", self.limits.work),
                    });
                }
                match d {
                    Some(d) if !d.is_zero() => {
                        q = d;
                        k += 1;
                    }
                    _ => break,
                }
            }
            if k > 0 {
                factors.push((f.clone(), k));
            }
            if q.len() == 1 {
                break;
            }
        }
        self.candidates = candidates;
        // q is primitive with a positive leading term (Gauss), possibly a constant or a
        // monomial once every factor is out.
        let (qc, qm, q) = if q.len() == 1 {
            let (m, c) = q.as_term().unwrap();
            (c.clone(), m.clone(), Poly::int(1))
        } else {
            (BigRational::one(), Monomial::one(), q)
        };
        let mut c = c * qc;
        let m = m.mul(&qm);
        let mut numer = Vec::new();
        let mut denom = Vec::new();
        self.monomial(&m, &mut numer, &mut denom)?;
        for (f, k) in &factors {
            let (sign, _, f) = self.normal.orient(f);
            if sign.is_negative() && k % 2 == 1 {
                c = -c;
            }
            let s = self.sum_node(&f)?;
            numer.push(self.power_node(s, *k));
        }
        if q.len() > 1 {
            let (sign, _, mut q) = self.normal.orient(&q);
            if sign.is_negative() {
                c = -c;
            }
            // The content comes out unless leaving it in writes 3 digits fewer: (2u^2 v + v^3 - u)/2,
            // but x^2 - x/15 + 1009/9000 rather than (9000x^2 - 600x + 1009)/9000.
            let inside = q.scale(&c.abs());
            if digits(&inside) + 2 < digits(&q) + digits_of(&c) {
                c = if c.is_negative() {
                    -BigRational::one()
                } else {
                    BigRational::one()
                };
                q = inside;
            }
            numer.push(self.sum_node(&q)?);
        }
        let (negative, node) = self.fraction(&c, numer, denom);
        Ok(self.signed(negative, node))
    }

    /// `p` over its common denominator, when its terms have different powers of a
    /// reciprocal 1/P: Σ c m / P^e = (Σ c m P^(E - e)) / P^E, with the factors P that then
    /// divide the numerator cancelled. `None` when there is nothing to combine or the
    /// numerator would be more than twice as long as `p`.
    fn together(&mut self, p: &Poly) -> Result<Option<Poly>, TooLarge> {
        let mut spread: Vec<(Atom, i32)> = Vec::new();
        for (a, kind) in self.normal.atoms.iter().enumerate() {
            if !matches!(kind, AtomKind::Recip(_)) {
                continue;
            }
            let a = a as Atom;
            let e: Vec<i32> = p.terms().map(|(m, _)| m.exponent(a)).collect();
            let (lo, hi) = (*e.iter().min().unwrap(), *e.iter().max().unwrap());
            if lo != hi && lo >= 0 {
                spread.push((a, hi));
            }
        }
        if spread.is_empty() {
            return Ok(None);
        }
        let mut numer = Poly::zero();
        for (m, c) in p.terms() {
            let mut t = Poly::term(m.clone(), c);
            for &(a, hi) in &spread {
                let e = m.exponent(a);
                t = t.mul_term(&Monomial::atom(a, -e), &BigRational::one());
                let AtomKind::Recip(q) = &self.normal.atoms[a as usize] else {
                    unreachable!()
                };
                for _ in e..hi {
                    self.charge(t.len() * q.len())?;
                    t = t.mul(q);
                }
            }
            self.charge(t.len() + numer.len())?;
            numer = numer.add(&t);
            if numer.len() > 2 * p.len() + 4 {
                return Ok(None);
            }
        }
        let mut denom = Monomial::one();
        for &(a, hi) in &spread {
            let AtomKind::Recip(q) = &self.normal.atoms[a as usize] else {
                unreachable!()
            };
            let mut e = hi;
            while e > 0 {
                let mut used = 0;
                let d = numer.div_exact_counted(q, 4 * numer.len() * q.len() + 64, &mut used);
                self.charge(used)?;
                match d {
                    Some(d) => {
                        numer = d;
                        e -= 1;
                    }
                    None => break,
                }
            }
            denom = denom.mul(&Monomial::atom(a, e));
        }
        Ok(Some(numer.mul_term(&denom, &BigRational::one())))
    }

    fn charge(&mut self, work: usize) -> Result<(), TooLarge> {
        self.work = self.work.saturating_add(work);
        if self.work > self.limits.work {
            return Err(TooLarge {
                what: format!("more than {} term operations", self.limits.work),
            });
        }
        Ok(())
    }

    /// A primitive sum as a node (never negative: its leading coefficient is positive).
    fn sum_node(&mut self, p: &Poly) -> Result<Id, TooLarge> {
        let (negative, node) = self.sum(p)?;
        Ok(self.signed(negative, node))
    }

    /// Σ c m, terms by falling degree, then lexicographically; `(negative, node)` where the
    /// sum as a whole is `-node` when its first term is negative and the sum has one term.
    fn sum(&mut self, p: &Poly) -> Result<(bool, Id), TooLarge> {
        let mut terms: Vec<(&Monomial, BigRational)> = p.terms().collect();
        if terms.is_empty() {
            return Ok((false, self.graph.int(0)));
        }
        terms.sort_by(|(a, _), (b, _)| b.degree().cmp(&a.degree()).then(b.cmp(a)));
        // A sum is not written with a leading minus while it has a positive term: `1 - σ`.
        if let Some(i) = terms.iter().position(|(_, c)| c.is_positive()) {
            let t = terms.remove(i);
            terms.insert(0, t);
        }
        let mut acc: Option<Id> = None;
        let mut first_negative = false;
        for (m, c) in terms {
            let mut numer = Vec::new();
            let mut denom = Vec::new();
            self.monomial(m, &mut numer, &mut denom)?;
            let (negative, node) = self.fraction(&c, numer, denom);
            acc = Some(match acc {
                None => {
                    first_negative = negative;
                    node
                }
                Some(s) => {
                    let s = if first_negative {
                        first_negative = false;
                        self.graph.intern(Op::Neg(s))
                    } else {
                        s
                    };
                    if negative {
                        self.graph.intern(Op::Sub([s, node]))
                    } else {
                        self.graph.intern(Op::Add([s, node]))
                    }
                }
            });
        }
        Ok((first_negative, acc.unwrap()))
    }

    /// The atoms of m, split into numerator and denominator factors.
    fn monomial(
        &mut self,
        m: &Monomial,
        numer: &mut Vec<Id>,
        denom: &mut Vec<Id>,
    ) -> Result<(), TooLarge> {
        for &(a, e) in m.factors() {
            let (node, reciprocal) = self.atom(a)?;
            let e = if reciprocal { -e } else { e };
            let x = self.power_node(node, e.abs());
            if e > 0 {
                numer.push(x);
            } else {
                denom.push(x);
            }
        }
        Ok(())
    }

    fn power_node(&mut self, x: Id, k: i32) -> Id {
        if k == 1 {
            x
        } else {
            let k = self.graph.int(i64::from(k));
            self.graph.intern(Op::Pow([x, k]))
        }
    }

    /// |c| · Π numer / Π denom, with the integers of c leading the numerator and the
    /// denominator; `negative` when c < 0.
    fn fraction(&mut self, c: &BigRational, numer: Vec<Id>, denom: Vec<Id>) -> (bool, Id) {
        let a = c.abs();
        let mut top = Vec::with_capacity(numer.len() + 1);
        if !a.numer().is_one() || numer.is_empty() {
            top.push(self.graph.num(BigRational::from_integer(a.numer().clone())));
        }
        top.extend(numer);
        let mut bottom = Vec::with_capacity(denom.len() + 1);
        if !a.denom().is_one() {
            bottom.push(self.graph.num(BigRational::from_integer(a.denom().clone())));
        }
        bottom.extend(denom);
        let top = self.product(top);
        let node = if bottom.is_empty() {
            top
        } else {
            let bottom = self.product(bottom);
            self.graph.intern(Op::Div([top, bottom]))
        };
        (c.is_negative(), node)
    }

    fn product(&mut self, factors: Vec<Id>) -> Id {
        let mut it = factors.into_iter();
        let first = it.next().expect("a product of at least one factor");
        it.fold(first, |acc, x| self.graph.intern(Op::Mul([acc, x])))
    }

    /// The node of an atom, and whether it stands for a reciprocal (1/node).
    fn atom(&mut self, a: Atom) -> Result<(Id, bool), TooLarge> {
        let kind = &self.normal.atoms[a as usize];
        let reciprocal = matches!(kind, AtomKind::Recip(_));
        if let Some(&id) = self.atoms.get(&a) {
            return Ok((id, reciprocal));
        }
        let id = match kind.clone() {
            AtomKind::Var(v) => self.graph.var(v),
            AtomKind::Call(f, p) => {
                let x = self.build(&p)?;
                self.graph.intern(Op::Call(f, [x]))
            }
            AtomKind::Recip(p) => self.sum_node(&p)?,
            AtomKind::Pow(b, e) => {
                let (b, e) = (self.build(&b)?, self.build(&e)?);
                self.graph.intern(Op::Pow([b, e]))
            }
            AtomKind::Sum(p) => self.build(&p)?,
        };
        self.atoms.insert(a, id);
        Ok((id, reciprocal))
    }
}

/// A binding saves (uses − 1) × size printed operations; a reader pays about this many for
/// each name to look up, so a binding must save more.
pub const BINDING_PRICE: u64 = 6;

/// Subexpressions with fewer operations than this read better inline (`u*v - 1`).
pub const MIN_BINDING_SIZE: u64 = 2;

/// The subexpressions of `roots` a reader is given a name for, in dependency order: every
/// `let` of the file that occurs (`lets`), and every other subexpression that is written out
/// more than once and whose name saves more than [`BINDING_PRICE`] printed operations, with
/// at least [`MIN_BINDING_SIZE`] of its own. Occurrences are counted as a reader sees them,
/// in the formulas written out, and larger subexpressions are named first; then names that
/// stand for little once the names inside them are used (`t5 = t1^3`) are dropped again.
///
/// ```
/// use eomderive::expr::readable::names;
/// let m = eomderive::lang::parse_str("tanh(u*v + u - 1)^3 + tanh(u*v + u - 1) + 1/tanh(u*v + u - 1)").unwrap();
/// let named = names(&m.graph, &[m.loss], &[]);
/// assert_eq!(named.len(), 1); // tanh(u*v + u - 1): 4 operations, written 3 times
/// let m = eomderive::lang::parse_str("tanh(u*v)^2 + tanh(u*v)").unwrap();
/// assert!(names(&m.graph, &[m.loss], &[]).is_empty()); // 2 operations twice: inline
/// ```
pub fn names(graph: &Graph, roots: &[Id], lets: &[Id]) -> Vec<Id> {
    let cone = graph.cone(roots);
    let leaf = |id: Id| egg::Language::is_leaf(graph.get(id));
    let in_cone: HashSet<Id> = cone.iter().copied().collect();
    let lets: HashSet<Id> = lets
        .iter()
        .copied()
        .filter(|id| in_cone.contains(id) && !leaf(*id))
        .collect();
    let worth = |uses: u64, size: u64| {
        uses >= 2 && size >= MIN_BINDING_SIZE && (uses - 1).saturating_mul(size) > BINDING_PRICE
    };
    // Tree sizes with nothing named, children first.
    let mut size: HashMap<Id, u64> =
        HashMap::with_capacity_and_hasher(cone.len(), Default::default());
    for &id in &cone {
        let s = egg::Language::children(graph.get(id))
            .iter()
            .fold(u64::from(!leaf(id)), |s, c| s.saturating_add(size[c]));
        size.insert(id, s);
    }
    // Parents first, so a large shared part takes its name before its parts are counted.
    let mut bound: HashSet<Id> = HashSet::default();
    let mut uses: HashMap<Id, u64> = HashMap::default();
    for &r in roots {
        *uses.entry(r).or_default() += 1;
    }
    for &id in cone.iter().rev() {
        let n = uses.get(&id).copied().unwrap_or(0);
        let named = lets.contains(&id) || (worth(n, size[&id]) && !small(graph, id));
        if named {
            bound.insert(id);
        }
        let passed = if named { 1 } else { n };
        for &c in egg::Language::children(graph.get(id)) {
            let e = uses.entry(c).or_default();
            *e = e.saturating_add(passed);
        }
    }
    for _ in 0..4 {
        let uses = written(graph, roots, &cone, &bound);
        let mut own: HashMap<Id, u64> =
            HashMap::with_capacity_and_hasher(cone.len(), Default::default());
        let mut dropped = false;
        for &id in &cone {
            let s = egg::Language::children(graph.get(id))
                .iter()
                .filter(|c| !bound.contains(c))
                .fold(u64::from(!leaf(id)), |s, c| s.saturating_add(own[c]));
            own.insert(id, s);
            let n = uses.get(&id).copied().unwrap_or(0);
            if bound.contains(&id) && !lets.contains(&id) && !worth(n, s) {
                bound.remove(&id);
                dropped = true;
            }
        }
        if !dropped {
            break;
        }
    }
    cone.into_iter().filter(|id| bound.contains(id)).collect()
}

/// How often each node of `cone` is written out when the `bound` nodes are named: a named
/// node's children once (in its definition), any other node's once per use of it.
fn written(graph: &Graph, roots: &[Id], cone: &[Id], bound: &HashSet<Id>) -> HashMap<Id, u64> {
    let mut uses: HashMap<Id, u64> = HashMap::default();
    for &r in roots {
        *uses.entry(r).or_default() += 1;
    }
    for &id in cone.iter().rev() {
        let n = uses.get(&id).copied().unwrap_or(0);
        let passed = if bound.contains(&id) { 1 } else { n };
        for &c in egg::Language::children(graph.get(id)) {
            let e = uses.entry(c).or_default();
            *e = e.saturating_add(passed);
        }
    }
    uses
}

/// A negated leaf is not worth a name.
fn small(g: &Graph, id: Id) -> bool {
    match g.get(id) {
        Op::Neg(a) => egg::Language::is_leaf(g.get(*a)),
        _ => false,
    }
}

/// The printed size of `roots` with the `named` nodes written as names: the operations of
/// every expression as written out plus those of each name's definition, once (the measure
/// the readable form minimises).
///
/// ```
/// use eomderive::hash::HashSet;
/// use eomderive::expr::readable::printed_ops;
/// let m = eomderive::lang::parse_str("(u*v - 1)^2 + (u*v - 1)").unwrap();
/// assert_eq!(printed_ops(&m.graph, &[m.loss], &HashSet::default()), 6);
/// ```
pub fn printed_ops(graph: &Graph, roots: &[Id], named: &HashSet<Id>) -> u64 {
    let uses = written(graph, roots, &graph.cone(roots), named);
    uses.iter()
        .filter(|(id, _)| !egg::Language::is_leaf(graph.get(**id)))
        .map(|(id, &n)| if named.contains(id) { 1 } else { n })
        .fold(0u64, u64::saturating_add)
}

/// The digits written for the coefficients of `p` (numerators and denominators, 1s left out).
fn digits(p: &Poly) -> usize {
    p.terms().map(|(_, c)| digits_of(&c)).sum()
}

/// The digits written for a coefficient: none for ±1, else those of |p| and of q unless 1.
fn digits_of(c: &BigRational) -> usize {
    let n = c.numer().abs();
    let d = c.denom();
    let len = |x: &num_bigint::BigInt| x.to_string().len();
    let top = if n.is_one() { 0 } else { len(&n) };
    let bottom = if d.is_one() { 0 } else { len(d) };
    top + bottom
}

/// The atoms occurring in `p` (a factor of `p` has no others).
fn atoms_of(p: &Poly) -> HashSet<Atom> {
    p.terms()
        .flat_map(|(m, _)| m.factors().iter().map(|&(a, _)| a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numeric::Program;
    use crate::render::Printer;

    /// The gradient of `src` in the readable and expanded forms, as text, after checking
    /// that both have the program's values at a point.
    fn forms(src: &str, at: &[f64]) -> (String, String) {
        let mut m = crate::lang::parse_str(src).unwrap();
        let n = m.params.len();
        let d = super::super::Diff::new(n).gradient(&mut m.graph, m.loss);
        let l = FormLimits::default();
        let r = readable(&mut m.graph, &d, &[], &[m.loss], n, &l).unwrap();
        let e = expanded(&mut m.graph, &d, &[], n, &l).unwrap();
        let value = |roots: &[Id]| Program::compile(&m.graph, roots).eval(at).unwrap();
        let want = value(&d);
        for got in [value(&r.roots), value(&e.roots)] {
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
        let p = Printer::reader(&m.graph, &m.params, &[], &r.roots);
        let q = Printer::reader(&m.graph, &m.params, &[], &e.roots);
        (p.expr(r.roots[0]), q.expr(e.roots[0]))
    }

    #[test]
    fn odd_functions_take_a_positive_argument() {
        // tanh(-u)^2 + tanh(u) is T² + T in T = tanh(u): one atom.
        let (r, e) = forms("tanh(-u)^2 + tanh(u)", &[0.3]);
        assert!(
            !r.contains("tanh(-u)") && !e.contains("tanh(-u)"),
            "{r} / {e}"
        );
        // (2T + 1)(1 - T²) = (T + 1)(1 - T)(2T + 1): the loss's own T + 1 comes out.
        assert!(r.contains("(tanh(u) + 1)"), "{r}");
    }

    #[test]
    fn one_minus_sigmoid_reads_as_written() {
        // d/du softplus(-u) = -σ(-u) = σ(u) - 1, written -(1 - σ(u)).
        let (r, _) = forms("softplus(-u)", &[0.7]);
        assert_eq!(r, "-(1 - sigmoid(u))");
    }

    #[test]
    fn factors_of_the_loss_come_out() {
        let (r, e) = forms("(u*v - 1)^2/2", &[0.3, -1.2]);
        assert_eq!(r, "v*(u*v - 1)");
        assert_eq!(e, "u*v^2 - v");
    }

    #[test]
    fn common_denominators_come_out() {
        // d/du (u/(1 + u^2)) = (1 - u²)/(1 + u²)².
        let (r, _) = forms("u/(1 + u^2)", &[0.4]);
        assert_eq!(r, "-(u^2 - 1)/(u^2 + 1)^2");
    }

    #[test]
    fn a_form_past_its_limit_says_so() {
        let mut m = crate::lang::parse_str("(u + v + 1)^40").unwrap();
        let l = FormLimits {
            terms: 100,
            ..FormLimits::default()
        };
        let e = expanded(&mut m.graph, &[m.loss], &[], 2, &l).unwrap_err();
        assert_eq!(e.what, "a sum of more than 100 terms");
    }
}
#[cfg(test)]
mod open_sums_test {
    use super::*;

    #[test]
    fn a_cut_sum_opens_where_its_terms_meet_the_parents() {
        let mut n = Normal::new(2, HashSet::default(), FormLimits::default());
        let (u, v) = (Poly::atom(0), Poly::atom(1));
        let q = u.sub(&v.mul(&v));
        let s = n.atom(AtomKind::Sum(q));
        let p = v.mul(&v).neg().sub(&s); // -v^2 - (u - v^2) = -u
        let o = n.open_sums(p);
        assert_eq!(o, u.neg());
    }
}
