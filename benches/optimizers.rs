//! The optimizers' derivations (DESIGN.md §2.4): the generic tables with the parameter as a
//! symbol and at a value, and the loss-specific derivation of each optimizer against GD's.
//!
//! `cargo bench --bench optimizers` prints Markdown tables (median wall clock of repeated
//! runs, this machine). BENCHMARKS.md records the figures. `cargo bench --bench optimizers
//! tanh` restricts the loss table to examples whose name contains `tanh`.

#[path = "../tests/common/mod.rs"]
mod common;
mod timing;

use std::time::Duration;

use timing::median;

use eomderive::series::{method_series, optimizer_series, Method, Optimizer};
use eomderive::{derive_model, Options};
use num_rational::BigRational;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    if filter.is_none() {
        println!("| method | K | symbolic (ms) | at a value (ms) | terms |");
        println!("|---|---|---|---|---|");
        // SGD has its own bench (benches/sgd.rs): its table is on coloured trees.
        for m in Method::ALL.into_iter().filter(|&m| m != Method::Sgd) {
            for order in [3, 4, 6, 8] {
                let budget = Duration::from_secs(2);
                let symbolic = median(budget, || {
                    std::hint::black_box(method_series(m, order).unwrap());
                });
                // Solved tables are kept per process, so each timed run asks for a new
                // parameter value; a method without one has nothing symbolic to drop.
                let numeric = m.parameter().map(|_| {
                    let mut value = 0;
                    median(budget, || {
                        value += 1;
                        let p = BigRational::new(value.into(), (value + 7).into());
                        let o = Optimizer::new(m, Some(p));
                        std::hint::black_box(optimizer_series(&o, order).unwrap());
                    })
                });
                let terms: usize = method_series(m, order)
                    .unwrap()
                    .xi
                    .iter()
                    .map(Vec::len)
                    .sum();
                let numeric = numeric.map_or("(no parameter)".into(), |t| format!("{:.2}", ms(t)));
                println!(
                    "| {m} | {order} | {:.2} | {numeric} | {terms} |",
                    ms(symbolic)
                );
            }
        }
        println!();
    }
    let methods = [
        Method::Gd,
        Method::HeavyBall,
        Method::Nesterov,
        Method::Extragradient,
        Method::Sam,
    ];
    let mut header = "| loss | K |".to_string();
    let mut rule = "|---|---|".to_string();
    for m in methods {
        header.push_str(&format!(" {m} (ms) | {m} ops |"));
        rule.push_str("---|---|");
    }
    header.push_str(" largest ratio to GD |");
    rule.push_str("---|");
    println!("{header}\n{rule}");
    for path in common::examples() {
        let name = common::stem(&path);
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let model = eomderive::lang::parse(&common::source(&path)).unwrap();
        for order in 1..=3 {
            let mut line = format!("| {name} | {order} |");
            let mut gd_time = 0.0;
            let mut worst: f64 = 0.0;
            for m in methods {
                let options = Options {
                    order,
                    analyze: false,
                    ..Options::for_optimizer(&Optimizer::new(m, None))
                };
                let ops = derive_model(model.clone(), &options).unwrap().ops;
                let t = ms(median(Duration::from_secs(1), || {
                    std::hint::black_box(derive_model(model.clone(), &options).unwrap());
                }));
                if m == Method::Gd {
                    gd_time = t;
                } else {
                    worst = worst.max(t / gd_time);
                }
                line.push_str(&format!(" {t:.3} | {ops} |"));
            }
            println!("{line} {worst:.2} |");
        }
    }
}
