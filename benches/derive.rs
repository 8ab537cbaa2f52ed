//! Derivation time and operation count per example and order, and the generic table.
//!
//! `cargo bench --bench derive` prints a Markdown table (median of repeated runs, wall clock,
//! this machine): the derivation of ξ_1..ξ_K from a parsed loss (gradient, counter terms,
//! simplification, and evaluation at the file's point), with `--simplify fast` and `egg`, and
//! separately the time the analyses add (gradient fields, potentials, invariances and laws).
//! Timing lives here, never in tests. BENCHMARKS.md records the figures.

#[path = "../tests/common/mod.rs"]
mod common;
mod timing;

use std::time::Duration;

use timing::median;

use eomderive::{derive, derive_model, generic, Options, Simplify};

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let dir = common::examples();
    println!(
        "| loss | K | fast: derive (ms) | fast: ops | egg: derive (ms) | egg: ops | egg stop | analyses (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for path in dir {
        let name = common::stem(&path);
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let src = common::source(&path);
        for order in 1..=4 {
            let fast = Options {
                order,
                analyze: false,
                ..Options::default()
            };
            let analysed = Options {
                analyze: true,
                ..fast.clone()
            };
            let egg = Options {
                simplify: Simplify::Egg,
                ..fast.clone()
            };
            let d_fast = derive(&src, &fast).unwrap();
            let d_egg = derive(&src, &egg).unwrap();
            // Parsing is not timed (the peers do not time building the loss either).
            let model = eomderive::lang::parse(&src).unwrap();
            let t_fast = median(Duration::from_secs(1), || {
                std::hint::black_box(derive_model(model.clone(), &fast).unwrap());
            });
            let t_egg = median(Duration::from_secs(2), || {
                std::hint::black_box(derive_model(model.clone(), &egg).unwrap());
            });
            let t_analysed = median(Duration::from_secs(1), || {
                std::hint::black_box(derive_model(model.clone(), &analysed).unwrap());
            });
            println!(
                "| {name} | {order} | {:.3} | {} | {:.1} | {} | {} | {:.2} |",
                t_fast.as_secs_f64() * 1e3,
                d_fast.ops,
                t_egg.as_secs_f64() * 1e3,
                d_egg.ops,
                d_egg.simplification.unwrap().stopped_by,
                (t_analysed.as_secs_f64() - t_fast.as_secs_f64()) * 1e3
            );
        }
    }
    if filter.is_none() {
        for order in [10, 13] {
            let t = median(Duration::from_secs(3), || {
                std::hint::black_box(generic(order).unwrap());
            });
            println!(
                "\ngeneric table to order {order}: {:.1} ms",
                t.as_secs_f64() * 1e3
            );
        }
    }
}
