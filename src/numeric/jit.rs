//! Native code for a [`Program`]'s fast path, compiled with Cranelift.
//!
//! The compiled code does exactly what the fast interpreter loop in [`Program::eval_into`]
//! does, operation for operation: it writes every non-constant slot (the constants are
//! pre-placed from the program's template), so [`Program::finish`] can scan all slots and fall
//! back to the checked interpreter, which names the culprit of any non-finite value.
//!
//! Arithmetic is native IEEE f64 (add, sub, mul, div, neg, sqrt: correctly rounded, hence
//! bit-identical to Rust's); `powi`, `powf` and the other functions call small `extern "C"`
//! Rust functions with the same numerics as the interpreter ([`super::program::call`]).

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, SigRef, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Module};

use super::program::{call, Fast};
use super::{DomainError, Program};
use crate::expr::Func;

/// The native function for one chunk of the program: reads `x`, writes `slots`.
type ChunkFn = unsafe extern "C" fn(x: *const f64, slots: *mut f64);

/// Instructions per native function: bounds the compile time of very large programs (register
/// allocation is superlinear in function size); chunks pass values through the slots.
const CHUNK: usize = 4096;

/// How far back (in instructions) a value may be taken from a register rather than reloaded
/// from its slot; keeps register pressure and live ranges small.
const WINDOW: usize = 48;

/// A program's fast path compiled to native code. Owns the code memory (freed on drop).
pub(crate) struct JitProgram {
    module: Option<JITModule>,
    chunks: Vec<ChunkFn>,
    /// Slots (== the program's template length).
    slots: usize,
    /// Parameters read (1 + the largest parameter index).
    params: usize,
}

impl fmt::Debug for JitProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JitProgram")
            .field("chunks", &self.chunks.len())
            .field("slots", &self.slots)
            .field("params", &self.params)
            .finish()
    }
}

impl Drop for JitProgram {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            self.chunks.clear();
            // SAFETY: the function pointers into this module live only in `self.chunks` (never
            // handed out), which is now empty, and no call can be running: we hold `&mut self`.
            unsafe { module.free_memory() };
        }
    }
}

impl JitProgram {
    /// Compiles `program`'s fast path; `None` if the host or the program is not supported or
    /// anything in code generation fails (the caller keeps the interpreter).
    pub(crate) fn compile(program: &Program) -> Option<JitProgram> {
        catch_unwind(AssertUnwindSafe(|| compile(program)))
            .ok()
            .flatten()
    }

    /// Like [`Program::eval_into`], running the native code instead of the fast loop; the same
    /// finiteness scan and checked fallback follow.
    pub(crate) fn eval_into(
        &self,
        program: &Program,
        x: &[f64],
        scratch: &mut Vec<f64>,
        out: &mut [f64],
    ) -> Result<(), DomainError> {
        let template = program.fast_parts().1;
        if template.len() != self.slots || x.len() < self.params {
            // Not the program this was compiled from, or too few parameters: the interpreter
            // (which panics on a short `x`, as before).
            return program.eval_into(x, scratch, out);
        }
        // The caller passes the program this was compiled from (`VectorField` owns both); a
        // different one of the same length would give wrong values, never unsafety: the
        // native code's memory accesses depend only on `self.slots` and `self.params`.
        if scratch.len() != self.slots {
            scratch.clear();
            scratch.extend_from_slice(template);
        }
        let v = &mut scratch[..];
        for &chunk in &self.chunks {
            // SAFETY: the compiled code reads `x[i]` only for i < self.params <= x.len() and
            // reads/writes `slots[s]` only for s < self.slots == v.len() (both checked above;
            // `compile` derived `params` and `slots` from the very offsets it emitted). The two
            // slices do not overlap (`v` is borrowed mutably), outlive the call, and are f64
            // aligned. The module owning the code lives as long as `self` (freed in `drop`).
            // The code calls only the `extern "C"` functions at the end of this file, which
            // neither panic nor unwind.
            unsafe { chunk(x.as_ptr(), v.as_mut_ptr()) };
        }
        if all_finite(v) {
            let roots = program.parts().2;
            for (o, &r) in out.iter_mut().zip(roots) {
                *o = v[r];
            }
            return Ok(());
        }
        program.finish(x, v, out)
    }
}

/// True when no value is infinite or NaN (exponent bits all ones). Same answer as
/// `v.iter().all(|t| t.is_finite())`, but exits only every 64 values, so the inner loop
/// vectorizes (on tanh_net's ~1000 slots: 580 → 436 ns per evaluation overall).
fn all_finite(v: &[f64]) -> bool {
    const EXP: u64 = 0x7ff0_0000_0000_0000;
    let mut bad = 0u64;
    for chunk in v.chunks(64) {
        for t in chunk {
            bad |= u64::from(t.to_bits() & EXP == EXP);
        }
        if bad != 0 {
            return false;
        }
    }
    true
}

fn compile(program: &Program) -> Option<JitProgram> {
    let (fast, template) = program.fast_parts();
    // Byte offsets are 32-bit immediates.
    if template.len() >= (i32::MAX as usize) / 8 {
        return None;
    }
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").ok()?;
    flags.set("use_colocated_libcalls", "false").ok()?;
    flags.set("is_pic", "false").ok()?;
    if !cfg!(debug_assertions) {
        flags.set("enable_verifier", "false").ok()?;
    }
    let isa = cranelift_native::builder()
        .ok()?
        .finish(settings::Flags::new(flags))
        .ok()?;
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let ptr = module.target_config().pointer_type();

    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(ptr));
    sig.params.push(AbiParam::new(ptr));
    let mut unary = module.make_signature();
    unary.params.push(AbiParam::new(types::F64));
    unary.returns.push(AbiParam::new(types::F64));
    let mut binary = unary.clone();
    binary.params.push(AbiParam::new(types::F64));
    let mut with_int = unary.clone();
    with_int.params.push(AbiParam::new(types::I32));

    let mut konst = vec![true; template.len()];
    for ins in fast {
        konst[dst(ins) as usize] = false;
    }

    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut ids = Vec::new();
    let mut params = 0usize;
    for part in fast.chunks(CHUNK) {
        let id = module.declare_anonymous_function(&sig).ok()?;
        ctx.func.signature = sig.clone();
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let sigs = Sigs {
            unary: b.import_signature(unary.clone()),
            binary: b.import_signature(binary.clone()),
            with_int: b.import_signature(with_int.clone()),
        };
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let (xp, sp) = (b.block_params(block)[0], b.block_params(block)[1]);
        let mut e = Emitter {
            b,
            xp,
            sp,
            ptr,
            template,
            konst: &konst,
            sigs,
            regs: std::collections::HashMap::new(),
            step: 0,
            epoch: 0,
        };
        for ins in part {
            if let Fast::Var(_, i) = *ins {
                params = params.max(i as usize + 1);
            }
            e.emit(ins);
        }
        let mut b = e.b;
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(module.target_config());
        module.define_function(id, &mut ctx).ok()?;
        module.clear_context(&mut ctx);
        ids.push(id);
    }
    module.finalize_definitions().ok()?;
    let chunks = ids
        .iter()
        .map(|&id| {
            let code = module.get_finalized_function(id);
            // SAFETY: `code` is the entry of a function just compiled with signature `sig`:
            // two pointer arguments, no result, the host's default calling convention, which
            // is the C one.
            unsafe { std::mem::transmute::<*const u8, ChunkFn>(code) }
        })
        .collect();
    Some(JitProgram {
        module: Some(module),
        chunks,
        slots: template.len(),
        params,
    })
}

struct Sigs {
    unary: SigRef,
    binary: SigRef,
    with_int: SigRef,
}

/// Emits one chunk's instructions.
struct Emitter<'a, 'b> {
    b: FunctionBuilder<'b>,
    xp: Value,
    sp: Value,
    ptr: types::Type,
    template: &'a [f64],
    /// Slots that are constants (pre-placed, never written).
    konst: &'a [bool],
    sigs: Sigs,
    /// Slot -> (its value, the step it was computed at, the call epoch it was computed in).
    regs: std::collections::HashMap<u32, (Value, usize, usize)>,
    step: usize,
    /// Incremented at each call: values from before a call are reloaded from their slots
    /// (every register holding a float is clobbered by a call), not spilled.
    epoch: usize,
}

impl Emitter<'_, '_> {
    fn flags() -> MemFlagsData {
        MemFlagsData::trusted()
    }

    fn offset(s: u32) -> i32 {
        (s as usize * 8) as i32
    }

    /// The value of slot `s`: a recent register, else a load (a constant: an immediate).
    fn get(&mut self, s: u32) -> Value {
        match self.regs.get(&s) {
            Some(&(v, at, epoch)) if epoch == self.epoch && self.step - at <= WINDOW => v,
            // Written in this chunk, but too far back or before a call: reload it.
            Some(_) => self.load(s),
            None if self.konst[s as usize] => self.b.ins().f64const(self.template[s as usize]),
            // Written by an earlier chunk.
            None => self.load(s),
        }
    }

    fn load(&mut self, s: u32) -> Value {
        self.b
            .ins()
            .load(types::F64, Self::flags(), self.sp, Self::offset(s))
    }

    fn set(&mut self, d: u32, v: Value) {
        self.b
            .ins()
            .store(Self::flags(), v, self.sp, Self::offset(d));
        self.regs.insert(d, (v, self.step, self.epoch));
    }

    fn call(&mut self, f: usize, sig: SigRef, args: &[Value]) -> Value {
        let callee = self.b.ins().iconst(self.ptr, f as i64);
        let inst = self.b.ins().call_indirect(sig, callee, args);
        self.epoch += 1;
        self.b.inst_results(inst)[0]
    }

    fn emit(&mut self, ins: &Fast) {
        self.step += 1;
        let (d, v) = match *ins {
            Fast::Var(d, i) => {
                let v = self
                    .b
                    .ins()
                    .load(types::F64, Self::flags(), self.xp, Self::offset(i));
                (d, v)
            }
            Fast::Add(d, a, b) => {
                let (a, b) = (self.get(a), self.get(b));
                (d, self.b.ins().fadd(a, b))
            }
            Fast::Sub(d, a, b) => {
                let (a, b) = (self.get(a), self.get(b));
                (d, self.b.ins().fsub(a, b))
            }
            Fast::Mul(d, a, b) => {
                let (a, b) = (self.get(a), self.get(b));
                (d, self.b.ins().fmul(a, b))
            }
            Fast::Div(d, a, b) => {
                let (a, b) = (self.get(a), self.get(b));
                (d, self.b.ins().fdiv(a, b))
            }
            Fast::MulC(d, a, c) => {
                let a = self.get(a);
                let c = self.b.ins().f64const(c);
                (d, self.b.ins().fmul(a, c))
            }
            Fast::AddC(d, a, c) => {
                let a = self.get(a);
                let c = self.b.ins().f64const(c);
                (d, self.b.ins().fadd(a, c))
            }
            Fast::Square(d, a) => {
                let a = self.get(a);
                (d, self.b.ins().fmul(a, a))
            }
            Fast::Powi(d, a, n) => {
                let a = self.get(a);
                let n = self.b.ins().iconst(types::I32, i64::from(n));
                let sig = self.sigs.with_int;
                (d, self.call(jit_powi as *const () as usize, sig, &[a, n]))
            }
            Fast::Pow(d, a, b) => {
                let (a, b) = (self.get(a), self.get(b));
                let sig = self.sigs.binary;
                (d, self.call(jit_pow as *const () as usize, sig, &[a, b]))
            }
            Fast::Neg(d, a) => {
                let a = self.get(a);
                (d, self.b.ins().fneg(a))
            }
            // sqrt is correctly rounded, NaN below zero and −0 at −0, as the interpreter's.
            Fast::Call(d, Func::Sqrt, a) => {
                let a = self.get(a);
                (d, self.b.ins().sqrt(a))
            }
            Fast::Call(d, f, a) => {
                let a = self.get(a);
                let sig = self.sigs.unary;
                (d, self.call(func_ptr(f), sig, &[a]))
            }
        };
        self.set(d, v);
    }
}

/// The slot an instruction writes.
fn dst(ins: &Fast) -> u32 {
    match *ins {
        Fast::Var(d, _)
        | Fast::Add(d, _, _)
        | Fast::Sub(d, _, _)
        | Fast::Mul(d, _, _)
        | Fast::Div(d, _, _)
        | Fast::MulC(d, _, _)
        | Fast::AddC(d, _, _)
        | Fast::Square(d, _)
        | Fast::Powi(d, _, _)
        | Fast::Pow(d, _, _)
        | Fast::Neg(d, _)
        | Fast::Call(d, _, _) => d,
    }
}

extern "C" fn jit_powi(a: f64, n: i32) -> f64 {
    a.powi(n)
}

extern "C" fn jit_pow(a: f64, b: f64) -> f64 {
    if a < 0.0 {
        f64::NAN
    } else {
        a.powf(b)
    }
}

macro_rules! funcs {
    ($($name:ident => $f:expr),* $(,)?) => {
        $(extern "C" fn $name(x: f64) -> f64 {
            call($f, x).unwrap_or(f64::NAN)
        })*
    };
}

funcs! {
    jit_exp => Func::Exp,
    jit_log => Func::Log,
    jit_sqrt => Func::Sqrt,
    jit_sin => Func::Sin,
    jit_cos => Func::Cos,
    jit_tan => Func::Tan,
    jit_tanh => Func::Tanh,
    jit_sigmoid => Func::Sigmoid,
    jit_softplus => Func::Softplus,
    jit_log1p => Func::Log1p,
}

fn func_ptr(f: Func) -> usize {
    let p: extern "C" fn(f64) -> f64 = match f {
        Func::Exp => jit_exp,
        Func::Log => jit_log,
        Func::Sqrt => jit_sqrt,
        Func::Sin => jit_sin,
        Func::Cos => jit_cos,
        Func::Tan => jit_tan,
        Func::Tanh => jit_tanh,
        Func::Sigmoid => jit_sigmoid,
        Func::Softplus => jit_softplus,
        Func::Log1p => jit_log1p,
    };
    p as usize
}

#[cfg(test)]
mod tests {
    use super::JitProgram;
    use crate::expr::{Diff, Graph, Id};
    use crate::lang::{parse_str, Source};
    use crate::numeric::{DomainError, Program, VectorField};
    use crate::{derive, Options};

    fn jit_disabled() -> bool {
        std::env::var_os("EOMDERIVE_NO_JIT").is_some_and(|v| !v.is_empty() && v != "0")
    }

    /// Both paths at `x`: the interpreter's and the native code's results (or errors).
    type Both = (Result<Vec<f64>, DomainError>, Result<Vec<f64>, DomainError>);

    fn both(p: &Program, jit: &JitProgram, x: &[f64]) -> Both {
        let run = |native: bool| {
            let mut out = vec![f64::NAN; p.outputs()];
            let mut scratch = Vec::new();
            let r = if native {
                jit.eval_into(p, x, &mut scratch, &mut out)
            } else {
                p.eval_into(x, &mut scratch, &mut out)
            };
            r.map(|()| out)
        };
        (run(false), run(true))
    }

    fn assert_same(a: &[f64], b: &[f64], what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (s, t)) in a.iter().zip(b).enumerate() {
            assert_eq!(s.to_bits(), t.to_bits(), "{what}: output {i}: {s} vs {t}");
        }
    }

    fn points(x0: &[f64]) -> Vec<Vec<f64>> {
        let mut pts = vec![x0.to_vec()];
        for k in 1..=4 {
            pts.push(
                x0.iter()
                    .enumerate()
                    .map(|(i, &v)| v + 0.37 * k as f64 * ((i as f64 + 1.0) * 1.3).sin())
                    .collect(),
            );
        }
        pts
    }

    fn examples() -> Vec<(String, Source)> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "expr"))
            .collect();
        paths.sort();
        assert!(!paths.is_empty());
        paths
            .into_iter()
            .map(|p| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                let src = Source::from_bytes(&name, std::fs::read(&p).unwrap()).unwrap();
                (name, src)
            })
            .collect()
    }

    fn roots(d: &crate::Derivation) -> Vec<Id> {
        let mut r = d.gradient.clone();
        r.extend(d.xi.iter().flatten());
        r
    }

    #[test]
    fn examples_agree_bit_for_bit() {
        for (name, src) in examples() {
            let d = derive(
                &src,
                &Options {
                    order: 3,
                    ..Default::default()
                },
            )
            .unwrap();
            let roots = roots(&d);
            let native = VectorField::compile(&d.model.graph, &roots);
            let interp = VectorField::interpreted(&d.model.graph, &roots);
            assert_eq!(native.is_native(), !jit_disabled(), "{name}");
            assert!(!interp.is_native());
            let program = Program::compile(&d.model.graph, &roots);
            let jit = JitProgram::compile(&program).expect("compiles");
            for x in points(&d.evaluation.as_ref().unwrap().point) {
                let mut a = vec![0.0; roots.len()];
                let mut b = vec![0.0; roots.len()];
                let ra = interp.eval_into(&x, &mut a);
                let rb = native.eval_into(&x, &mut b);
                assert_eq!(ra, rb, "{name} at {x:?}");
                if ra.is_ok() {
                    assert_same(&a, &b, &name);
                }
                // Twice, with the scratch reused.
                assert_eq!(native.eval_into(&x, &mut b), ra);
                if ra.is_ok() {
                    assert_same(&a, &b, &name);
                }
                let (p, q) = both(&program, &jit, &x);
                assert_eq!(p, q, "{name} at {x:?}");
                if let (Ok(p), Ok(q)) = (&p, &q) {
                    assert_same(p, q, &name);
                }
            }
        }
    }

    /// Every operation and function, including non-integer and negative powers.
    #[test]
    fn every_operation_agrees() {
        let m = parse_str(
            "exp(u) * log(v) + sqrt(w) * sin(u) - cos(v) / tan(w) + tanh(u)^3 \
             + sigmoid(v) * softplus(w) + sigmoid(-v) * softplus(-w) + log1p(u^2) \
             + v^1.5 + u^(-2) + w^u - (-u) * 3 + u / 4 + v / 3 + u^7",
        )
        .unwrap();
        let mut g: Graph = m.graph.clone();
        let mut roots = vec![m.loss];
        roots.extend(Diff::new(3).gradient(&mut g, m.loss));
        let p = Program::compile(&g, &roots);
        let jit = JitProgram::compile(&p).expect("compiles");
        for x in [
            [0.3, 1.7, 0.9],
            [-1.2, 0.4, 2.5],
            [2.0, 30.0, 0.01],
            [-0.7, 1e-3, 1.4],
            [1e-150, 2.0, 1.0],
        ] {
            let (a, b) = both(&p, &jit, &x);
            assert_eq!(a, b, "at {x:?}");
            if let (Ok(a), Ok(b)) = (&a, &b) {
                assert_same(a, b, &format!("{x:?}"));
            }
        }
    }

    #[test]
    fn domain_errors_are_the_interpreters() {
        let cases = [
            ("log(u - 1) * v + exp(v) * u", [0.5, 1.0], "log of -0.5"),
            ("sqrt(u) + v", [-4.0, 1.0], "square root of -4"),
            ("log1p(u) * v", [-2.0, 1.0], "log1p of -2"),
            ("u / (v - 2)", [1.0, 2.0], "division by zero"),
            (
                "u^1.5 + v",
                [-1.0, 2.0],
                "-1 raised to the non-integer power 1.5",
            ),
            ("exp(u * v)", [30.0, 30.0], "overflow"),
        ];
        for (text, x, what) in cases {
            let m = parse_str(text).unwrap();
            let mut g = m.graph.clone();
            let mut roots = vec![m.loss];
            roots.extend(Diff::new(2).gradient(&mut g, m.loss));
            let p = Program::compile(&g, &roots);
            let jit = JitProgram::compile(&p).expect("compiles");
            let (a, b) = both(&p, &jit, &x);
            let (ea, eb) = (a.unwrap_err(), b.unwrap_err());
            assert_eq!(ea, eb, "{text}");
            assert!(eb.what.contains(what), "{text}: {}", eb.what);
        }
        // Through a VectorField large enough to be compiled.
        let m = parse_str("log(u) * (v^3 + w^3) + tanh(u * v * w) * (u + v + w)^4").unwrap();
        let mut g = m.graph.clone();
        let grad = Diff::new(3).gradient(&mut g, m.loss);
        let native = VectorField::compile(&g, &grad);
        let interp = VectorField::interpreted(&g, &grad);
        assert!(native.len() >= 16);
        assert_eq!(native.is_native(), !jit_disabled());
        let mut out = vec![0.0; 3];
        let e = native.eval_into(&[-0.5, 1.0, 2.0], &mut out).unwrap_err();
        assert_eq!(e.what, "log of -0.5");
        assert_eq!(Err(e), interp.eval_into(&[-0.5, 1.0, 2.0], &mut out));
        // And fine again afterwards.
        let mut good = vec![0.0; 3];
        native.eval_into(&[0.5, 1.0, 2.0], &mut out).unwrap();
        interp.eval_into(&[0.5, 1.0, 2.0], &mut good).unwrap();
        assert_same(&out, &good, "after an error");
    }

    #[test]
    fn large_program_compiles_and_agrees() {
        let (name, src) = examples()
            .into_iter()
            .find(|(n, _)| n == "tanh_net")
            .unwrap();
        let d = derive(
            &src,
            &Options {
                order: 6,
                ..Default::default()
            },
        )
        .unwrap();
        let roots = roots(&d);
        let p = Program::compile(&d.model.graph, &roots);
        assert!(p.len() > 10_000, "{name}: {} ops", p.len());
        let start = std::time::Instant::now();
        let jit = JitProgram::compile(&p).expect("compiles");
        let took = start.elapsed();
        assert!(jit.chunks.len() > 1);
        eprintln!("{name} order 6: {} ops compiled in {took:?}", p.len());
        for x in points(&d.evaluation.as_ref().unwrap().point) {
            let (a, b) = both(&p, &jit, &x);
            assert_eq!(a, b);
            if let (Ok(a), Ok(b)) = (&a, &b) {
                assert_same(a, b, &name);
            }
        }
    }

    #[test]
    fn short_parameter_vector_panics_like_the_interpreter() {
        let m = parse_str("(u * v - 1)^2 * exp(u) + tanh(v)^3 * u^4").unwrap();
        let mut g = m.graph.clone();
        let grad = Diff::new(2).gradient(&mut g, m.loss);
        let p = Program::compile(&g, &grad);
        let jit = JitProgram::compile(&p).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| both(&p, &jit, &[1.0])));
        assert!(r.is_err());
    }

    #[test]
    fn vector_field_is_send() {
        fn send<T: Send>() {}
        send::<VectorField>();
    }
}
