//! The numeric layer: time per evaluation of ξ_1..ξ_3 (one compiled program for all three) on
//! each example, and the whole `--check` run at orders 0..3.
//!
//! `cargo bench --bench numeric` prints a Markdown table (this machine, wall clock). Compare
//! with `benches/peers/jax_peer.py` (JAX per call and in-graph); BENCHMARKS.md has both.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use eomderive::numeric::{CheckOptions, VectorField};
use eomderive::{check, derive, Options};

fn main() {
    let paths = common::examples();
    println!(
        "| loss | ops (ξ_1..ξ_3) | native ns/eval | interpreted ns/eval | --check K=0..3 (ms) |"
    );
    println!("|---|---|---|---|---|");
    for path in paths {
        let name = common::stem(&path);
        let src = common::source(&path);
        let d = derive(
            &src,
            &Options {
                order: 3,
                ..Options::default()
            },
        )
        .unwrap();
        let roots: Vec<_> = d.xi.iter().flatten().copied().collect();
        let x0 = d.evaluation.as_ref().unwrap().point.clone();
        let time = |field: &VectorField| {
            let mut out = vec![0.0; roots.len()];
            // Points that move a little each call, so nothing is hoisted.
            let mut x = x0.clone();
            let calls = 200_000;
            let mut sink = 0.0;
            let start = Instant::now();
            for i in 0..calls {
                x[0] = x0[0] + 1e-9 * (i % 100) as f64;
                field.eval_into(&x, &mut out).unwrap();
                sink += out[0];
            }
            std::hint::black_box(sink);
            start.elapsed().as_secs_f64() / calls as f64 * 1e9
        };
        let native = time(&VectorField::compile(&d.model.graph, &roots));
        let interpreted = time(&VectorField::interpreted(&d.model.graph, &roots));
        let mut times = Vec::new();
        let begin = Instant::now();
        while times.len() < 5 || (begin.elapsed() < Duration::from_secs(2) && times.len() < 100) {
            let t = Instant::now();
            std::hint::black_box(check(&d, &CheckOptions::default()).unwrap());
            times.push(t.elapsed());
        }
        times.sort();
        let check_ms = times[times.len() / 2].as_secs_f64() * 1e3;
        println!(
            "| {name} | {} | {native:.0} | {interpreted:.0} | {check_ms:.1} |",
            d.ops
        );
    }
}
