//! Straight-line programs: one instruction per shared node, evaluated in order.

use crate::hash::HashMap;
use std::fmt;

use super::to_f64;
use crate::expr::{Func, Graph, Id, Op, VarId};

/// One instruction: an operation on earlier slots.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Instr {
    Const(f64),
    Var(usize),
    Add(usize, usize),
    Sub(usize, usize),
    Mul(usize, usize),
    Div(usize, usize),
    Powi(usize, i32),
    Pow(usize, usize),
    Neg(usize),
    Call(Func, usize),
}

/// The fast path's instructions: constants live in their slots from the start (they are never
/// executed), products and sums with a constant carry it inline, squares are products, and
/// slots are 32-bit. Each writes the slot `dst`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fast {
    Var(u32, u32),
    Add(u32, u32, u32),
    Sub(u32, u32, u32),
    Mul(u32, u32, u32),
    Div(u32, u32, u32),
    MulC(u32, u32, f64),
    AddC(u32, u32, f64),
    Square(u32, u32),
    Powi(u32, u32, i32),
    Pow(u32, u32, u32),
    Neg(u32, u32),
    Call(u32, Func, u32),
}

/// The loss (or one of its derived expressions) is undefined at the point evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainError {
    /// The graph node whose value is undefined.
    pub node: Id,
    /// What happened, e.g. `log of -0.5`.
    pub what: String,
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

/// A compiled straight-line program computing some roots of a [`Graph`] from the parameters.
///
/// ```
/// use eomderive::expr::{Graph, VarId, Func};
/// use eomderive::numeric::Program;
/// let mut g = Graph::new();
/// let u = g.var(VarId(0));
/// let l = g.call(Func::Log, u);
/// let p = Program::compile(&g, &[l]);
/// assert!((p.eval(&[std::f64::consts::E]).unwrap()[0] - 1.0).abs() < 1e-15);
/// assert_eq!(p.eval(&[-1.0]).unwrap_err().what, "log of -1");
/// ```
#[derive(Debug, Clone)]
pub struct Program {
    code: Vec<Instr>,
    nodes: Vec<Id>,
    roots: Vec<usize>,
    fast: Vec<Fast>,
    /// Slot values before a run: the constants in place, zeros elsewhere.
    template: Vec<f64>,
    /// The slots whose finiteness implies that of every slot (see [`Program::eval_into`]).
    guards: Vec<u32>,
}

impl Program {
    /// Compiles the cone of `roots`; each shared node becomes one instruction.
    pub fn compile(g: &Graph, roots: &[Id]) -> Program {
        let cone = g.cone(roots);
        let mut slot: HashMap<Id, usize> =
            HashMap::with_capacity_and_hasher(cone.len(), Default::default());
        let mut code = Vec::with_capacity(cone.len());
        for &id in &cone {
            let s = |c: &Id| slot[c];
            let instr = match g.get(id) {
                Op::Num(r) => Instr::Const(to_f64(r.value())),
                Op::Var(VarId(v)) => Instr::Var(*v as usize),
                Op::Add([a, b]) => Instr::Add(s(a), s(b)),
                Op::Sub([a, b]) => Instr::Sub(s(a), s(b)),
                Op::Mul([a, b]) => Instr::Mul(s(a), s(b)),
                Op::Div([a, b]) => Instr::Div(s(a), s(b)),
                Op::Pow([a, b]) => match small_integer(g, *b) {
                    Some(n) => Instr::Powi(s(a), n),
                    None => Instr::Pow(s(a), s(b)),
                },
                Op::Neg(a) => Instr::Neg(s(a)),
                Op::Call(f, [a]) => Instr::Call(*f, s(a)),
            };
            slot.insert(id, code.len());
            code.push(instr);
        }
        let (fast, template) = fast_code(&code);
        let roots: Vec<usize> = roots.iter().map(|r| slot[r]).collect();
        let guards = guards(&code, &roots);
        Program {
            roots,
            code,
            nodes: cone,
            fast,
            template,
            guards,
        }
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.code.len()
    }

    /// True for a program with no instructions.
    pub fn is_empty(&self) -> bool {
        self.code.is_empty()
    }

    /// The instructions, the node each computes, and the slots of the roots.
    pub(crate) fn parts(&self) -> (&[Instr], &[Id], &[usize]) {
        (&self.code, &self.nodes, &self.roots)
    }

    /// Number of roots (outputs).
    pub fn outputs(&self) -> usize {
        self.roots.len()
    }

    /// Evaluates the roots at `x` into `out`, reusing `scratch` (one slot per instruction).
    ///
    /// Same result as [`Program::eval`], the values bit for bit or the same error, but faster:
    /// the hot loop runs unchecked, where a domain error leaves a NaN or an infinity behind
    /// (log of a negative: NaN; division by zero: ±inf; `0^0`: NaN here), and at the end only
    /// a few *guard* slots are tested. When one is not finite, the checked [`Program::eval`]
    /// runs to name the culprit. `out` is written only on success: no NaN or infinity ever
    /// reaches the caller as a value.
    ///
    /// Why the guards suffice. Every slot feeds some root. An operation with a NaN or infinite
    /// operand has a non-finite result (NaN propagates; ±inf stays infinite or turns NaN),
    /// except at a few *absorbing* operands, where a finite result can come out: a divisor
    /// (x / inf = 0), the argument of exp, tanh, sigmoid and softplus (exp(−inf) = 0,
    /// tanh(inf) = 1), the base of a power with an exponent ≤ 0 (inf^-2 = 0), either side of a
    /// general power (1^NaN = 1). The guards are those operands, the roots, and any constant
    /// that is not finite. Following the uses of a non-finite slot towards a root then meets a
    /// guard or ends at a non-finite root. The native code ([`super::jit`]) tests the same
    /// guards.
    pub fn eval_into(
        &self,
        x: &[f64],
        scratch: &mut Vec<f64>,
        out: &mut [f64],
    ) -> Result<(), DomainError> {
        if scratch.len() != self.template.len() {
            scratch.clear();
            scratch.extend_from_slice(&self.template);
        }
        let v = &mut scratch[..];
        for ins in &self.fast {
            match *ins {
                Fast::Var(d, i) => v[d as usize] = x[i as usize],
                Fast::Add(d, a, b) => v[d as usize] = v[a as usize] + v[b as usize],
                Fast::Sub(d, a, b) => v[d as usize] = v[a as usize] - v[b as usize],
                Fast::Mul(d, a, b) => v[d as usize] = v[a as usize] * v[b as usize],
                Fast::Div(d, a, b) => v[d as usize] = v[a as usize] / v[b as usize],
                Fast::MulC(d, a, c) => v[d as usize] = v[a as usize] * c,
                Fast::AddC(d, a, c) => v[d as usize] = v[a as usize] + c,
                Fast::Square(d, a) => v[d as usize] = v[a as usize] * v[a as usize],
                Fast::Powi(d, a, n) => v[d as usize] = v[a as usize].powi(n),
                Fast::Pow(d, a, b) => v[d as usize] = pow_or_nan(v[a as usize], v[b as usize]),
                Fast::Neg(d, a) => v[d as usize] = -v[a as usize],
                Fast::Call(d, f, a) => v[d as usize] = call(f, v[a as usize]).unwrap_or(f64::NAN),
            }
        }
        if self.guards.iter().all(|&g| v[g as usize].is_finite()) {
            for (o, &r) in out.iter_mut().zip(&self.roots) {
                *o = v[r];
            }
            return Ok(());
        }
        self.checked_into(x, out)
    }

    /// The fast code, the slot values before a run (constants in place) and the guard slots,
    /// for the JIT.
    pub(crate) fn fast_parts(&self) -> (&[Fast], &[f64], &[u32]) {
        (&self.fast, &self.template, &self.guards)
    }

    /// The end of a fast run (here or in the JIT) that found a guard not finite: the checked
    /// [`Program::eval`]'s error. (Should the checked run succeed after all, its values are
    /// written to `out`; by the argument in [`Program::eval_into`] it does not.)
    pub(crate) fn checked_into(&self, x: &[f64], out: &mut [f64]) -> Result<(), DomainError> {
        let values = self.eval(x)?;
        for (o, r) in out.iter_mut().zip(values) {
            *o = r;
        }
        Ok(())
    }

    /// Evaluates the roots at `x` (one value per parameter). A value that is undefined
    /// (log of a negative, division by zero, overflow) is an error naming its node; no NaN or
    /// infinity is ever returned.
    pub fn eval(&self, x: &[f64]) -> Result<Vec<f64>, DomainError> {
        let mut v = vec![0.0f64; self.code.len()];
        for (k, ins) in self.code.iter().enumerate() {
            let bad = |what: String| DomainError {
                node: self.nodes[k],
                what,
            };
            let r = match *ins {
                Instr::Const(c) => c,
                Instr::Var(i) => x[i],
                Instr::Add(a, b) => v[a] + v[b],
                Instr::Sub(a, b) => v[a] - v[b],
                Instr::Mul(a, b) => v[a] * v[b],
                Instr::Div(a, b) => {
                    if v[b] == 0.0 {
                        return Err(bad("division by zero".into()));
                    }
                    v[a] / v[b]
                }
                Instr::Powi(a, n) => {
                    if v[a] == 0.0 && n < 0 {
                        return Err(bad("0 raised to a negative power".into()));
                    }
                    v[a].powi(n)
                }
                // Keep these conditions in step with `pow_or_nan`.
                Instr::Pow(a, b) => {
                    if v[a] < 0.0 {
                        return Err(bad(format!(
                            "{} raised to the non-integer power {}",
                            v[a], v[b]
                        )));
                    }
                    if v[a] == 0.0 && v[b] <= 0.0 {
                        return Err(bad(format!("0 raised to the power {}", v[b])));
                    }
                    v[a].powf(v[b])
                }
                Instr::Neg(a) => -v[a],
                Instr::Call(f, a) => call(f, v[a]).map_err(bad)?,
            };
            if !r.is_finite() {
                return Err(bad(if x.iter().all(|t| t.is_finite()) {
                    "overflow (the value is too large for floating point)".into()
                } else {
                    "a parameter value is not finite".into()
                }));
            }
            v[k] = r;
        }
        Ok(self.roots.iter().map(|&r| v[r]).collect())
    }
}

/// The fast-path code and the initial slot values for a checked program.
fn fast_code(code: &[Instr]) -> (Vec<Fast>, Vec<f64>) {
    let mut template = vec![0.0; code.len()];
    let konst = |i: usize| match code[i] {
        Instr::Const(c) => Some(c),
        _ => None,
    };
    let mut fast = Vec::with_capacity(code.len());
    for (d, ins) in code.iter().enumerate() {
        let d32 = d as u32;
        let w = |i: usize| i as u32;
        fast.push(match *ins {
            Instr::Const(c) => {
                template[d] = c;
                continue;
            }
            Instr::Var(i) => Fast::Var(d32, w(i)),
            Instr::Add(a, b) => match (konst(a), konst(b)) {
                (Some(c), _) => Fast::AddC(d32, w(b), c),
                (_, Some(c)) => Fast::AddC(d32, w(a), c),
                _ => Fast::Add(d32, w(a), w(b)),
            },
            Instr::Sub(a, b) => match konst(b) {
                Some(c) => Fast::AddC(d32, w(a), -c),
                None => Fast::Sub(d32, w(a), w(b)),
            },
            Instr::Mul(a, b) => match (konst(a), konst(b)) {
                (Some(c), _) => Fast::MulC(d32, w(b), c),
                (_, Some(c)) => Fast::MulC(d32, w(a), c),
                _ if a == b => Fast::Square(d32, w(a)),
                _ => Fast::Mul(d32, w(a), w(b)),
            },
            Instr::Div(a, b) => match konst(b) {
                // Exact only for powers of two; otherwise keep the division (results must not
                // depend on this path).
                Some(c) if is_power_of_two(c) => Fast::MulC(d32, w(a), 1.0 / c),
                _ => Fast::Div(d32, w(a), w(b)),
            },
            Instr::Powi(a, 2) => Fast::Square(d32, w(a)),
            Instr::Powi(a, n) => Fast::Powi(d32, w(a), n),
            Instr::Pow(a, b) => Fast::Pow(d32, w(a), w(b)),
            Instr::Neg(a) => Fast::Neg(d32, w(a)),
            Instr::Call(f, a) => Fast::Call(d32, f, w(a)),
        });
    }
    (fast, template)
}

/// The guard slots of a program (see [`Program::eval_into`]): the roots, the absorbing operands
/// (those at which a non-finite value can give a finite result) and non-finite constants;
/// finite constants never need a guard. A slot nothing reads that is not a root (there are
/// none: a program is the cone of its roots) would be a guard too.
fn guards(code: &[Instr], roots: &[usize]) -> Vec<u32> {
    let mut guard = vec![false; code.len()];
    let mut read = vec![false; code.len()];
    let mut operand = |a: usize, absorbing: bool| {
        read[a] = true;
        guard[a] |= absorbing;
    };
    for ins in code {
        match *ins {
            Instr::Const(_) | Instr::Var(_) => {}
            Instr::Add(a, b) | Instr::Sub(a, b) | Instr::Mul(a, b) => {
                operand(a, false);
                operand(b, false);
            }
            Instr::Div(a, b) => {
                operand(a, false);
                operand(b, true);
            }
            Instr::Powi(a, n) => operand(a, n <= 0),
            Instr::Pow(a, b) => {
                operand(a, true);
                operand(b, true);
            }
            Instr::Neg(a) => operand(a, false),
            Instr::Call(f, a) => operand(a, absorbs(f)),
        }
    }
    for &r in roots {
        guard[r] = true;
    }
    (0..code.len())
        .filter(|&s| match code[s] {
            Instr::Const(c) => !c.is_finite(),
            _ => guard[s] || !read[s],
        })
        .map(|s| s as u32)
        .collect()
}

/// True when `f` can map a non-finite argument to a finite value (the others keep it
/// non-finite: log, log1p and sqrt of ±inf are inf or NaN, sin, cos and tan of ±inf NaN).
fn absorbs(f: Func) -> bool {
    match f {
        // exp(−inf) = 0, tanh(±inf) = ±1, sigmoid(±inf) = 1 or 0, softplus(−inf) = 0.
        Func::Exp | Func::Tanh | Func::Sigmoid | Func::Softplus => true,
        Func::Log | Func::Sqrt | Func::Sin | Func::Cos | Func::Tan | Func::Log1p => false,
    }
}

/// The fast path's general power: `a^b`, but NaN where the checked [`Program::eval`] reports
/// a domain error, a negative base or `0^b` with b ≤ 0 (where `powf` gives 1 at b = 0, which
/// would go unnoticed, and inf below).
pub(crate) fn pow_or_nan(a: f64, b: f64) -> f64 {
    if a < 0.0 || (a == 0.0 && b <= 0.0) {
        f64::NAN
    } else {
        a.powf(b)
    }
}

/// ±2^k with both 2^k and 2^-k normal, so that x / c == x * (1/c) exactly for every x.
fn is_power_of_two(c: f64) -> bool {
    c.is_normal() && c.recip().is_normal() && c.abs().to_bits() & ((1 << 52) - 1) == 0
}

fn small_integer(g: &Graph, id: Id) -> Option<i32> {
    let r = g.as_num(id)?;
    if !r.is_integer() {
        return None;
    }
    num_traits::ToPrimitive::to_i32(&r.to_integer()).filter(|n| n.abs() <= 1 << 16)
}

pub(crate) fn call(f: Func, x: f64) -> Result<f64, String> {
    Ok(match f {
        Func::Exp => x.exp(),
        Func::Log => {
            if x <= 0.0 {
                return Err(format!("log of {x}"));
            }
            x.ln()
        }
        Func::Sqrt => {
            if x < 0.0 {
                return Err(format!("square root of {x}"));
            }
            x.sqrt()
        }
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Tan => x.tan(),
        Func::Tanh => x.tanh(),
        Func::Sigmoid => {
            if x >= 0.0 {
                1.0 / (1.0 + (-x).exp())
            } else {
                let e = x.exp();
                e / (1.0 + e)
            }
        }
        Func::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        Func::Log1p => {
            if x <= -1.0 {
                return Err(format!("log1p of {x}"));
            }
            x.ln_1p()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::is_power_of_two;

    #[test]
    fn powers_of_two_are_the_exact_reciprocals() {
        for c in [1.0, 2.0, 0.5, -4.0, 1024.0, 2f64.powi(-20)] {
            assert!(is_power_of_two(c), "{c}");
        }
        for c in [
            0.0,
            3.0,
            0.1,
            -6.0,
            f64::INFINITY,
            f64::NAN,
            f64::MIN_POSITIVE / 2.0,
        ] {
            assert!(!is_power_of_two(c), "{c}");
        }
    }
}
