//! The numeric layer: time per evaluation of ξ_1..ξ_3 (one compiled program for all three) on
//! each example, the time to compile that program (with native code), and the whole `--check`
//! run at orders 0..3.
//!
//! `cargo bench --bench numeric` prints a Markdown table (this machine, wall clock; every
//! figure is the median of several repetitions). `cargo bench --bench numeric -- softmax`
//! runs only the examples whose name contains `softmax`. Compare with
//! `benches/peers/jax_peer.py` (JAX per call and in-graph); BENCHMARKS.md has both.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use eomderive::check;
use eomderive::numeric::{CheckOptions, VectorField};

/// Repetitions of each evaluation timing (the median is reported).
const REPEATS: usize = 7;
/// Calls per repetition.
const CALLS: usize = 50_000;

/// The median of `f`'s results over repetitions: at least `min` of them, more (up to 100) while
/// under `budget`.
fn median(min: usize, budget: Duration, mut f: impl FnMut() -> f64) -> f64 {
    let mut t = Vec::new();
    let begin = Instant::now();
    while t.len() < min || (begin.elapsed() < budget && t.len() < 100) {
        t.push(f());
    }
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    println!(
        "| loss | ops (ξ_1..ξ_3) | native ns/eval | interpreted ns/eval | compile µs | --check K=0..3 (ms) |"
    );
    println!("|---|---|---|---|---|---|");
    for path in common::examples() {
        let name = common::stem(&path);
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let d = common::derive_example(&path, 3);
        let roots: Vec<_> = d.xi.iter().flatten().copied().collect();
        let x0 = d.evaluation.as_ref().unwrap().point.clone();
        // ns per call over CALLS calls at points that move a little each call, so nothing is
        // hoisted.
        let batch = |field: &VectorField| {
            let mut out = vec![0.0; roots.len()];
            let mut x = x0.clone();
            let mut sink = 0.0;
            let start = Instant::now();
            for i in 0..CALLS {
                x[0] = x0[0] + 1e-9 * (i % 100) as f64;
                field.eval_into(&x, &mut out).unwrap();
                sink += out[0];
            }
            std::hint::black_box(sink);
            start.elapsed().as_secs_f64() / CALLS as f64 * 1e9
        };
        let native = VectorField::compile(&d.model.graph, &roots);
        let interpreted = VectorField::interpreted(&d.model.graph, &roots);
        let native_ns = median(REPEATS, Duration::ZERO, || batch(&native));
        let interpreted_ns = median(REPEATS, Duration::ZERO, || batch(&interpreted));
        let compile_us = median(5, Duration::from_secs(1), || {
            let t = Instant::now();
            std::hint::black_box(VectorField::compile(&d.model.graph, &roots));
            t.elapsed().as_secs_f64() * 1e6
        });
        let check_ms = median(5, Duration::from_secs(2), || {
            let t = Instant::now();
            std::hint::black_box(check(&d, &CheckOptions::default()).unwrap());
            t.elapsed().as_secs_f64() * 1e3
        });
        println!(
            "| {name} | {} | {native_ns:.0} | {interpreted_ns:.0} | {compile_us:.0} | {check_ms:.1} |",
            d.ops
        );
    }
}
