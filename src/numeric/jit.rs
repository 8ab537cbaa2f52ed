//! Native code for a [`Program`]'s fast path, compiled with Cranelift.
//!
//! The compiled code computes what the fast interpreter loop in [`Program::eval_into`]
//! computes, operation for operation, but as SSA values: they live in registers (and in stack
//! slots where the register allocator spills them), not in a memory array. Only values that one
//! chunk of a very large program passes to a later chunk go through the scratch slots.
//!
//! Finiteness is checked as the interpreter checks it, on the program's guard slots only (the
//! roots and the few operands at which a NaN or infinity could vanish; see
//! [`Program::eval_into`]): each guard g adds g − g (+0 when finite, NaN otherwise) into an
//! accumulator, which each chunk returns. The last chunk writes the roots to `out` only when
//! the accumulator is not NaN; otherwise the checked interpreter runs to name the culprit.
//!
//! Arithmetic is native IEEE f64 (add, sub, mul, div, neg, sqrt: correctly rounded, hence
//! bit-identical to Rust's); `powi`, `powf` and the other functions call small `extern "C"`
//! Rust functions with the same numerics as the interpreter ([`super::program::call`]).

use std::cell::RefCell;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, AbiParam, InstBuilder, MemFlagsData, SigRef, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Module};

use super::program::{call, pow_or_nan, Fast};
use super::{DomainError, Program};
use crate::expr::Func;

/// The native function for one chunk of the program: reads `x` (and, but for the first
/// chunk, `slots`), writes the `slots` later chunks read, and returns `acc` (taken as 0 by the
/// first chunk) plus its guards' g − g. The last chunk also writes the roots to `out` when the
/// result is not NaN.
type ChunkFn = unsafe extern "C" fn(x: *const f64, slots: *mut f64, out: *mut f64, acc: f64) -> f64;

/// Instructions per native function: bounds the compile time of very large programs (register
/// allocation is superlinear in function size); chunks pass values through the slots. On
/// tanh_net at order 6 (15 794 instructions), 1024 compiles about 40 % faster than 4096, and the
/// code runs as fast.
const CHUNK: usize = 1024;

/// Independent accumulators for the guards, so that their additions do not form one long
/// dependency chain.
const LANES: usize = 4;

/// A program's fast path compiled to native code. Owns the code memory (freed on drop).
pub(crate) struct JitProgram {
    module: Option<JITModule>,
    chunks: Vec<ChunkFn>,
    /// Instructions of the program compiled (to recognise it).
    len: usize,
    /// Scratch slots the chunks pass values through: 0 for a single chunk, else the program's
    /// slot count.
    slots: usize,
    /// Parameters read (1 + the largest parameter index).
    params: usize,
    /// Roots written to `out`.
    outputs: usize,
}

impl fmt::Debug for JitProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JitProgram")
            .field("chunks", &self.chunks.len())
            .field("slots", &self.slots)
            .field("params", &self.params)
            .field("outputs", &self.outputs)
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
        Self::compile_chunked(program, CHUNK)
    }

    /// [`JitProgram::compile`] with `chunk` instructions per native function.
    fn compile_chunked(program: &Program, chunk: usize) -> Option<JitProgram> {
        catch_unwind(AssertUnwindSafe(|| compile(program, chunk.max(1))))
            .ok()
            .flatten()
    }

    /// Like [`Program::eval_into`] (same values bit for bit, same errors; `out` written only
    /// on success), running the native code instead of the fast loop. `scratch` is borrowed
    /// only by a program of several chunks (or by the interpreter, for a call the native code
    /// does not fit: too few parameters, which panics there, or a short `out`).
    #[inline]
    pub(crate) fn eval_into(
        &self,
        program: &Program,
        x: &[f64],
        scratch: &RefCell<Vec<f64>>,
        out: &mut [f64],
    ) -> Result<(), DomainError> {
        if program.len() != self.len || x.len() < self.params || out.len() < self.outputs {
            // Not the program this was compiled from, or a call it does not fit.
            return program.eval_into(x, &mut scratch.borrow_mut(), out);
        }
        // The caller passes the program this was compiled from (`VectorField` owns both); a
        // different one of the same length would give wrong values, never unsafety: the
        // native code's memory accesses depend only on `self.slots`, `self.params` and
        // `self.outputs`.
        let acc = if self.slots == 0 {
            let mut none = [0.0f64; 0];
            self.run(x, &mut none, out)
        } else {
            let mut slots = scratch.borrow_mut();
            if slots.len() < self.slots {
                slots.resize(self.slots, 0.0);
            }
            self.run(x, &mut slots, out)
        };
        if acc.is_nan() {
            return program.checked_into(x, out);
        }
        Ok(())
    }

    /// Runs the chunks in order; the guards' sum (NaN when one is not finite).
    #[inline]
    fn run(&self, x: &[f64], slots: &mut [f64], out: &mut [f64]) -> f64 {
        assert!(x.len() >= self.params && slots.len() >= self.slots && out.len() >= self.outputs);
        let mut acc = 0.0;
        for &chunk in &self.chunks {
            // SAFETY: the compiled code reads `x[i]` only for i < self.params <= x.len(),
            // reads and writes `slots[s]` only for s < self.slots <= slots.len() (none at all
            // when self.slots == 0, so a dangling pointer is fine), and writes `out[i]` only for
            // i < self.outputs <= out.len() (asserted above; `compile` derived the three bounds
            // from the very offsets it emitted). The three slices do not overlap (`slots` and
            // `out` are borrowed mutably), outlive the call, and are f64 aligned. The module
            // owning the code lives as long as `self` (freed in `drop`). The code calls only
            // the `extern "C"` functions at the end of this file, which neither panic nor
            // unwind.
            acc = unsafe { chunk(x.as_ptr(), slots.as_mut_ptr(), out.as_mut_ptr(), acc) };
        }
        acc
    }
}

fn compile(program: &Program, chunk: usize) -> Option<JitProgram> {
    let (fast, template, guards) = program.fast_parts();
    let roots = program.parts().2;
    // Byte offsets are 32-bit immediates.
    if template.len().max(roots.len()) >= (i32::MAX as usize) / 8 {
        return None;
    }
    let mut flags = settings::builder();
    // The programs come folded and with every common subexpression shared: Cranelift's
    // mid-end optimisations find nothing to improve (measured: the same speed), and skipping
    // them saves 10–20 % of the compile time.
    flags.set("opt_level", "none").ok()?;
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
    for _ in 0..3 {
        sig.params.push(AbiParam::new(ptr));
    }
    sig.params.push(AbiParam::new(types::F64));
    sig.returns.push(AbiParam::new(types::F64));
    let mut unary = module.make_signature();
    unary.params.push(AbiParam::new(types::F64));
    unary.returns.push(AbiParam::new(types::F64));
    let mut binary = unary.clone();
    binary.params.push(AbiParam::new(types::F64));
    let mut with_int = unary.clone();
    with_int.params.push(AbiParam::new(types::I32));

    // Which chunk writes each slot (constants: none), and which slots a later chunk reads
    // (the roots count as read by the last chunk, which writes `out`).
    let parts: Vec<&[Fast]> = if fast.is_empty() {
        vec![&[]]
    } else {
        fast.chunks(chunk).collect()
    };
    let last = parts.len() - 1;
    let mut written = vec![None; template.len()];
    for (k, part) in parts.iter().enumerate() {
        for ins in *part {
            written[dst(ins) as usize] = Some(k);
        }
    }
    let mut passed = vec![false; template.len()];
    let mut pass = |s: u32, reader: usize| {
        if written[s as usize].is_some_and(|w| w < reader) {
            passed[s as usize] = true;
        }
    };
    for (k, part) in parts.iter().enumerate() {
        for ins in *part {
            for s in operands(ins).into_iter().flatten() {
                pass(s, k);
            }
        }
    }
    for &r in roots {
        pass(r as u32, last);
    }
    let mut guard = vec![false; template.len()];
    for &g in guards {
        guard[g as usize] = true;
    }
    // Constants that are guards (not finite): checked by the first chunk.
    let const_guards: Vec<u32> = guards
        .iter()
        .copied()
        .filter(|&g| written[g as usize].is_none())
        .collect();

    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let mut ids = Vec::new();
    let mut params = 0usize;
    for (k, part) in parts.iter().enumerate() {
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
        let p = b.block_params(block).to_vec();
        let mut e = Emitter {
            b,
            xp: p[0],
            sp: p[1],
            ptr,
            template,
            written: &written,
            passed: &passed,
            guard: &guard,
            sigs,
            vals: vec![None; template.len()],
            lanes: [None; LANES],
            terms: 0,
        };
        if k == 0 {
            for &g in &const_guards {
                let v = e.get(g);
                e.check(v);
            }
        }
        for ins in *part {
            if let Fast::Var(_, i) = *ins {
                params = params.max(i as usize + 1);
            }
            e.emit(ins);
        }
        // The first chunk's incoming accumulator is always 0: ignored.
        let acc = e.total((k > 0).then_some(p[3]));
        if k == last {
            e.write_out(acc, p[2], roots);
        } else {
            e.b.ins().return_(&[acc]);
        }
        let mut b = e.b;
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
            // three pointer arguments and an f64, an f64 result, the host's default calling
            // convention, which is the C one.
            unsafe { std::mem::transmute::<*const u8, ChunkFn>(code) }
        })
        .collect();
    Some(JitProgram {
        module: Some(module),
        chunks,
        len: program.len(),
        slots: if last == 0 { 0 } else { template.len() },
        params,
        outputs: roots.len(),
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
    /// The chunk that writes each slot; `None` for the constants (pre-placed, never written).
    written: &'a [Option<usize>],
    /// Slots a later chunk reads: stored to the scratch slots.
    passed: &'a [bool],
    guard: &'a [bool],
    sigs: Sigs,
    /// Each slot's value in this chunk, once computed, loaded or materialised.
    vals: Vec<Option<Value>>,
    /// The guard accumulators (lane `terms % LANES` takes the next term).
    lanes: [Option<Value>; LANES],
    terms: usize,
}

impl Emitter<'_, '_> {
    fn flags() -> MemFlagsData {
        MemFlagsData::trusted()
    }

    fn offset(s: u32) -> i32 {
        (s as usize * 8) as i32
    }

    /// The value of slot `s`: computed in this chunk, a constant (an immediate), or passed
    /// from an earlier chunk (loaded once).
    fn get(&mut self, s: u32) -> Value {
        if let Some(v) = self.vals[s as usize] {
            return v;
        }
        let v = match self.written[s as usize] {
            None => self.b.ins().f64const(self.template[s as usize]),
            Some(_) => self
                .b
                .ins()
                .load(types::F64, Self::flags(), self.sp, Self::offset(s)),
        };
        self.vals[s as usize] = Some(v);
        v
    }

    fn set(&mut self, d: u32, v: Value) {
        self.vals[d as usize] = Some(v);
        if self.passed[d as usize] {
            self.b
                .ins()
                .store(Self::flags(), v, self.sp, Self::offset(d));
        }
        if self.guard[d as usize] {
            self.check(v);
        }
    }

    /// Adds v − v (+0, or NaN when v is not finite) into the next accumulator.
    fn check(&mut self, v: Value) {
        let t = self.b.ins().fsub(v, v);
        let lane = self.terms % LANES;
        self.terms += 1;
        self.lanes[lane] = Some(match self.lanes[lane] {
            Some(acc) => self.b.ins().fadd(acc, t),
            None => t,
        });
    }

    /// `acc` (if any) plus every accumulator.
    fn total(&mut self, acc: Option<Value>) -> Value {
        let mut sum = acc;
        for lane in self.lanes.into_iter().flatten() {
            sum = Some(match sum {
                Some(s) => self.b.ins().fadd(s, lane),
                None => lane,
            });
        }
        sum.unwrap_or_else(|| self.b.ins().f64const(0.0))
    }

    /// Returns `acc`, first writing the roots to `out` when it is not NaN.
    fn write_out(&mut self, acc: Value, out: Value, roots: &[usize]) {
        let (write, done) = (self.b.create_block(), self.b.create_block());
        let ok = self.b.ins().fcmp(FloatCC::Ordered, acc, acc);
        self.b.ins().brif(ok, write, &[], done, &[]);
        self.b.switch_to_block(write);
        for (i, &r) in roots.iter().enumerate() {
            let v = self.get(r as u32);
            self.b
                .ins()
                .store(Self::flags(), v, out, Self::offset(i as u32));
        }
        self.b.ins().return_(&[acc]);
        self.b.switch_to_block(done);
        self.b.ins().return_(&[acc]);
    }

    fn call(&mut self, f: usize, sig: SigRef, args: &[Value]) -> Value {
        let callee = self.b.ins().iconst(self.ptr, f as i64);
        let inst = self.b.ins().call_indirect(sig, callee, args);
        self.b.inst_results(inst)[0]
    }

    fn emit(&mut self, ins: &Fast) {
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

/// The slots an instruction reads.
fn operands(ins: &Fast) -> [Option<u32>; 2] {
    match *ins {
        Fast::Var(..) => [None, None],
        Fast::Add(_, a, b)
        | Fast::Sub(_, a, b)
        | Fast::Mul(_, a, b)
        | Fast::Div(_, a, b)
        | Fast::Pow(_, a, b) => [Some(a), Some(b)],
        Fast::MulC(_, a, _)
        | Fast::AddC(_, a, _)
        | Fast::Square(_, a)
        | Fast::Powi(_, a, _)
        | Fast::Neg(_, a)
        | Fast::Call(_, _, a) => [Some(a), None],
    }
}

extern "C" fn jit_powi(a: f64, n: i32) -> f64 {
    a.powi(n)
}

extern "C" fn jit_pow(a: f64, b: f64) -> f64 {
    pow_or_nan(a, b)
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
            let scratch = std::cell::RefCell::new(Vec::new());
            let r = if native {
                jit.eval_into(p, x, &scratch, &mut out)
            } else {
                p.eval_into(x, &mut scratch.borrow_mut(), &mut out)
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
            // Small chunks: values (roots among them) passed between native functions.
            let chunked = JitProgram::compile_chunked(&program, 7).expect("compiles");
            assert!(chunked.chunks.len() > 2);
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
                for jit in [&jit, &chunked] {
                    let (p, q) = both(&program, jit, &x);
                    assert_eq!(p, q, "{name} at {x:?}");
                    if let (Ok(p), Ok(q)) = (&p, &q) {
                        assert_same(p, q, &name);
                    }
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

    /// A NaN or infinity that a later operation turns finite again (1/inf = 0, tanh(inf) = 1,
    /// 1^NaN = 1, …) is still an error on both fast paths, the checked interpreter's, and
    /// leaves `out` alone.
    #[test]
    fn vanishing_non_finite_values_are_errors() {
        let cases = [
            ("tanh(exp(u)) + v", [1000.0, 1.0], "overflow"),
            ("v / exp(u) + v", [1.0, 1000.0], "overflow"),
            ("exp(-exp(u)) * v", [1000.0, 1.0], "overflow"),
            ("sigmoid(exp(u)) * v", [1000.0, 1.0], "overflow"),
            ("softplus(-exp(u)) * v", [1000.0, 1.0], "overflow"),
            ("exp(u)^(-2) * v", [1000.0, 1.0], "overflow"),
            ("tanh(1 / (u - 1)) * v", [1.0, 2.0], "division by zero"),
            ("v^(log(u)) + v", [1.0, -1.0], "log of -1"),
            ("u^v + v", [0.0, 0.0], "0 raised to the power 0"),
            ("tanh(u) * v", [f64::INFINITY, 1.0], "not finite"),
        ];
        // (The parameters are numbered in order of appearance.)
        for (text, x, what) in cases {
            let m = parse_str(text).unwrap();
            let p = Program::compile(&m.graph, &[m.loss]);
            let jit = JitProgram::compile(&p).expect("compiles");
            let chunked = JitProgram::compile_chunked(&p, 2).expect("compiles");
            let checked = p.eval(&x).expect_err(text);
            assert!(checked.what.contains(what), "{text}: {}", checked.what);
            let (a, b) = both(&p, &jit, &x);
            assert_eq!(a, Err(checked.clone()), "{text}");
            assert_eq!(b, Err(checked.clone()), "{text}");
            assert_eq!(both(&p, &chunked, &x).1, Err(checked), "{text}");
            let mut out = [7.0];
            let scratch = std::cell::RefCell::new(Vec::new());
            assert!(jit.eval_into(&p, &x, &scratch, &mut out).is_err());
            assert!(p
                .eval_into(&x, &mut scratch.borrow_mut(), &mut out)
                .is_err());
            assert_eq!(out, [7.0], "{text}");
        }
    }

    /// At extreme points, the fast paths (checking only the guards) give exactly what the
    /// checked interpreter gives (checking every value): the same values or the same error.
    #[test]
    fn fast_paths_are_the_checked_interpreter_at_extreme_points() {
        let texts = [
            "exp(u) * log(v) + sqrt(w) * sin(u) - cos(v) / tan(w) + tanh(u)^3",
            "sigmoid(v * u) * softplus(w * v) + sigmoid(-v) * softplus(-w) + log1p(u^2)",
            "v^1.5 + u^(-2) + w^u - (-u) * 3 + u / 3 + v / 4 + u^7 + 1 / (u * v - w)",
            "tanh(exp(u * v)) * w + exp(-exp(w)) + (u + v)^(-3) * w + v / exp(w * u)",
        ];
        let special = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            1e300,
            -1e300,
            1e-300,
            800.0,
            f64::INFINITY,
            f64::NAN,
        ];
        for text in texts {
            let m = parse_str(text).unwrap();
            let mut g = m.graph.clone();
            let mut roots = vec![m.loss];
            roots.extend(Diff::new(3).gradient(&mut g, m.loss));
            let p = Program::compile(&g, &roots);
            let jit = JitProgram::compile(&p).expect("compiles");
            let chunked = JitProgram::compile_chunked(&p, 5).expect("compiles");
            let n = m.params.len();
            let mut errors = 0;
            for k in 0..special.len().pow(n as u32) {
                let x: Vec<f64> = (0..n)
                    .map(|i| special[k / special.len().pow(i as u32) % special.len()])
                    .collect();
                let checked = p.eval(&x);
                let (a, b) = both(&p, &jit, &x);
                assert_eq!(a, b, "{text} at {x:?}");
                assert_eq!(a, both(&p, &chunked, &x).1, "{text} at {x:?}");
                match (&checked, &a) {
                    (Ok(c), Ok(a)) => assert_same(c, a, text),
                    (Err(c), Err(a)) => {
                        assert_eq!(c, a, "{text} at {x:?}");
                        errors += 1;
                    }
                    _ => panic!("{text} at {x:?}: checked {checked:?}, fast {a:?}"),
                }
            }
            // Both outcomes occur.
            assert!(errors > 0 && errors < special.len().pow(n as u32), "{text}");
        }
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
        // b[1]·x[3] overflows, and tanh of it is 1: an error all the same, across chunks.
        let (a, b) = both(&p, &jit, &[0.3, -0.2, 1e308, 0.5]);
        assert_eq!(a, b);
        assert!(b.unwrap_err().what.contains("overflow"));
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
