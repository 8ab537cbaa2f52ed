//! Vector fields compiled to closures on nalgebra vectors: the gradient, each counter term, and
//! the truncated equation of motion −(g + η ξ_1 + … + η^K ξ_K).

use std::cell::RefCell;
use std::sync::OnceLock;

use nalgebra::DVector;

use super::jit::JitProgram;
use super::{DomainError, Program};
use crate::expr::{Graph, Id};

/// A compiled vector field θ ↦ F(θ) with one component per parameter.
///
/// ```
/// use eomderive::numeric::VectorField;
/// use nalgebra::DVector;
/// let m = eomderive::lang::parse_str("(u*v - 1)^2/2").unwrap();
/// let mut g = m.graph.clone();
/// let grad = eomderive::expr::Diff::new(2).gradient(&mut g, m.loss);
/// let field = VectorField::compile(&g, &grad);
/// let v = field.eval(&DVector::from_vec(vec![1.0, 2.0])).unwrap();
/// assert_eq!(v.as_slice(), &[2.0, 1.0]); // (uv - 1) (v, u)
/// ```
#[derive(Debug)]
pub struct VectorField {
    program: Program,
    /// The program's fast path as native code, when it was compiled.
    jit: Option<JitProgram>,
    scratch: RefCell<Vec<f64>>,
}

/// Programs shorter than this are interpreted (compiling them would not pay).
const JIT_MIN_LEN: usize = 16;

/// True unless the environment variable `EOMDERIVE_NO_JIT` is set to something other than
/// `0` or empty (read once).
fn jit_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        std::env::var_os("EOMDERIVE_NO_JIT").is_none_or(|v| v.is_empty() || v == "0")
    })
}

impl VectorField {
    /// Compiles the components (sharing every common subexpression). Programs of 16
    /// operations or more are compiled to native code too (unless the environment variable
    /// `EOMDERIVE_NO_JIT=1` is set, or native compilation fails); results are the same.
    pub fn compile(graph: &Graph, components: &[Id]) -> VectorField {
        let program = Program::compile(graph, components);
        let jit = if jit_enabled() && program.len() >= JIT_MIN_LEN {
            JitProgram::compile(&program)
        } else {
            None
        };
        VectorField {
            program,
            jit,
            scratch: RefCell::new(Vec::new()),
        }
    }

    /// Like [`VectorField::compile`], but always interpreted (no native code).
    pub fn interpreted(graph: &Graph, components: &[Id]) -> VectorField {
        VectorField {
            program: Program::compile(graph, components),
            jit: None,
            scratch: RefCell::new(Vec::new()),
        }
    }

    /// True when evaluation runs native code.
    #[cfg(test)]
    pub(crate) fn is_native(&self) -> bool {
        self.jit.is_some()
    }

    /// Number of operations evaluated per call.
    pub fn len(&self) -> usize {
        self.program.len()
    }

    /// True for a field with no operations.
    pub fn is_empty(&self) -> bool {
        self.program.is_empty()
    }

    /// F(θ), or the reason it is undefined there.
    pub fn eval(&self, x: &DVector<f64>) -> Result<DVector<f64>, DomainError> {
        let mut out = DVector::zeros(self.program.outputs());
        self.eval_into(x.as_slice(), out.as_mut_slice())?;
        Ok(out)
    }

    /// F(θ) written into `out`, without allocating; on an error `out` is left as it was.
    pub fn eval_into(&self, x: &[f64], out: &mut [f64]) -> Result<(), DomainError> {
        match &self.jit {
            Some(jit) => jit.eval_into(&self.program, x, &self.scratch, out),
            None => self
                .program
                .eval_into(x, &mut self.scratch.borrow_mut(), out),
        }
    }
}

/// The right-hand side of the equation of motion truncated after ξ_K,
/// dθ/dt = −(g + η ξ_1 + … + η^K ξ_K), compiled once as one program for g and ξ_1..ξ_K.
///
/// ```
/// use eomderive::numeric::Eom;
/// use nalgebra::DVector;
/// let d = eomderive::derive(&eomderive::lang::Source::inline("u^2/2"), &Default::default()).unwrap();
/// // f = u²/2: g = u, ξ_k = u/(k+1), so F = −u (1 + η/2 + η²/3).
/// let eom = Eom::compile(&d.model.graph, &d.gradient, &d.xi);
/// let f = eom.rhs(&DVector::from_vec(vec![1.0]), 0.5, 2).unwrap();
/// assert!((f[0] + (1.0 + 0.25 + 0.25 / 3.0)).abs() < 1e-15);
/// ```
#[derive(Debug)]
pub struct Eom {
    field: VectorField,
    n: usize,
    order: usize,
    /// c in F_0 = −c g.
    leading: f64,
    /// η per unit of the step the check runs (1/m for SGD's epochs, 1 otherwise).
    lr_scale: f64,
    values: RefCell<Vec<f64>>,
}

impl Eom {
    /// Compiles g and ξ_1..ξ_K (`xi.len()` = K) into one program.
    pub fn compile(graph: &Graph, gradient: &[Id], xi: &[Vec<Id>]) -> Eom {
        let mut roots = gradient.to_vec();
        roots.extend(xi.iter().flatten());
        Eom {
            field: VectorField::compile(graph, &roots),
            n: gradient.len(),
            order: xi.len(),
            leading: 1.0,
            lr_scale: 1.0,
            values: RefCell::new(Vec::new()),
        }
    }

    /// The same EoM with leading term −c g (c = 1/(1 − β) for the momentum methods; 1, the
    /// default, for GD): dθ/dt = −(c g + η ξ_1 + … + η^K ξ_K).
    pub fn with_leading(self, c: f64) -> Eom {
        Eom { leading: c, ..self }
    }

    /// The same EoM in the time step of an SGD epoch of m batch steps, h = mη: ξ_k becomes
    /// ξ_k / m^k, so that [`Eom::rhs`] at h and [`Eom::terms`] are in h's units
    /// (dθ/dt = −(g + (h/m) ξ_1 + (h/m)² ξ_2 + …)).
    ///
    /// ```
    /// use eomderive::numeric::Eom;
    /// use nalgebra::DVector;
    /// let d = eomderive::derive(&eomderive::lang::Source::inline("u^2/2"), &Default::default()).unwrap();
    /// let eom = Eom::compile(&d.model.graph, &d.gradient, &d.xi).per_epoch(2);
    /// let f = eom.rhs(&DVector::from_vec(vec![1.0]), 1.0, 1).unwrap(); // −u(1 + ½·½)
    /// assert!((f[0] + 1.25).abs() < 1e-15);
    /// ```
    pub fn per_epoch(self, batches: usize) -> Eom {
        Eom {
            lr_scale: 1.0 / batches as f64,
            ..self
        }
    }

    /// The highest counter term compiled.
    pub fn order(&self) -> usize {
        self.order
    }

    /// The terms themselves at θ: `[g, ξ_1, …, ξ_K]` (K = [`Eom::order`]).
    ///
    /// ```
    /// use eomderive::numeric::Eom;
    /// use nalgebra::DVector;
    /// let d = eomderive::derive(&eomderive::lang::Source::inline("u^2/2"), &Default::default()).unwrap();
    /// let t = Eom::compile(&d.model.graph, &d.gradient, &d.xi).terms(&DVector::from_vec(vec![3.0])).unwrap();
    /// assert_eq!((t[0][0], t[1][0], t[2][0]), (3.0, 1.5, 1.0)); // ξ_k = u/(k+1)
    /// ```
    pub fn terms(&self, x: &DVector<f64>) -> Result<Vec<DVector<f64>>, DomainError> {
        let mut values = self.values.borrow_mut();
        values.resize(self.n * (self.order + 1), 0.0);
        self.field.eval_into(x.as_slice(), &mut values)?;
        let mut scale = 1.0;
        Ok(values
            .chunks(self.n.max(1))
            .take(self.order + 1)
            .map(|c| {
                let v = DVector::from_column_slice(&c[..self.n]) * scale;
                scale *= self.lr_scale;
                v
            })
            .collect())
    }

    /// −(g + η ξ_1 + … + η^K ξ_K) at θ, for K ≤ [`Eom::order`] (K = 0 is gradient flow).
    pub fn rhs(&self, x: &DVector<f64>, eta: f64, k: usize) -> Result<DVector<f64>, DomainError> {
        assert!(k <= self.order, "order {k} was not compiled");
        let mut values = self.values.borrow_mut();
        values.resize(self.n * (self.order + 1), 0.0);
        self.field.eval_into(x.as_slice(), &mut values)?;
        let mut out = DVector::zeros(self.n);
        let mut power = 1.0;
        for j in 0..=k {
            let weight = if j == 0 { self.leading } else { power };
            for i in 0..self.n {
                out[i] -= weight * values[j * self.n + i];
            }
            power *= eta * self.lr_scale;
        }
        Ok(out)
    }
}
