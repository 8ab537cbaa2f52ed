//! Minibatch SGD (DESIGN.md §2.5): the coloured tree table (independent of m), and the
//! loss-specific derivation for m = 2, 4, 8 batches at orders 1..3, whose cost must not grow
//! as m!.
//!
//! `cargo bench --bench sgd` prints Markdown tables (median wall clock of repeated runs, this
//! machine); BENCHMARKS.md records the figures.

mod timing;

use std::time::Duration;

use timing::median;

use eomderive::series::{sgd_series, BatchOrder};
use eomderive::{derive_model, lang, Options};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A tanh network with 8 examples (so that 2, 4 and 8 batches divide them).
const NET: &str = "data x = [0.5, -1.0, 2.0, 1.2, -0.4, 0.9, -1.7, 0.3]
data y = [0.2, 0.4, -0.3, 0.1, 0.5, -0.2, 0.3, 0.0]
param a[2] = [0.3, -0.2]
param b[2] = [0.8, 0.5]
let out[i] = sum(j, a[j] * tanh(b[j] * x[i]))
loss = mean(i, (out[i] - y[i])^2/2)";

/// A linear regression on 64 examples with a quartic term (data from a fixed formula), for
/// many batches.
fn regression64() -> String {
    let x: Vec<String> = (0..64)
        .map(|i| format!("{}", ((i * 37) % 29) as f64 / 10.0 - 1.4))
        .collect();
    let y: Vec<String> = (0..64)
        .map(|i| format!("{}", ((i * 17) % 23) as f64 / 10.0 - 1.1))
        .collect();
    format!(
        "data x = [{}]\ndata y = [{}]\nparam w = 0.2, b = -0.1\nloss = mean(i, (w*x[i] + b - y[i])^2/2 + w^4*x[i]^2/4)",
        x.join(", "),
        y.join(", ")
    )
}

fn main() {
    println!("| order | K | patterns in ξ_K | table (ms) |");
    println!("|---|---|---|---|");
    for order in [BatchOrder::Cyclic, BatchOrder::Shuffled] {
        for k in 1..=4 {
            let t = median(Duration::from_secs(1), || {
                std::hint::black_box(sgd_series(order, k).unwrap());
            });
            let s = sgd_series(order, k).unwrap();
            println!("| {order} | {k} | {} | {:.2} |", s.xi[k - 1].len(), ms(t));
        }
    }
    println!();
    println!("| loss | order | m | m! | K=1 (ms) | K=2 (ms) | K=3 (ms) | ops at K=3 |");
    println!("|---|---|---|---|---|---|---|---|");
    let regression = std::fs::read_to_string("examples/sgd_regression.expr").unwrap();
    for (name, text) in [
        ("sgd_regression", regression.as_str()),
        ("tanh net, 8 examples", NET),
    ] {
        let model = lang::parse_str(text).unwrap();
        for order in [BatchOrder::Cyclic, BatchOrder::Shuffled] {
            for m in [2usize, 4, 8] {
                let mut cells = Vec::new();
                let mut ops = 0;
                for k in 1..=3 {
                    let options = Options {
                        order: k,
                        method: Some(eomderive::series::Method::Sgd),
                        batches: Some(m),
                        batch_order: Some(order),
                        analyze: false,
                        ..Options::default()
                    };
                    let t = median(Duration::from_secs(1), || {
                        std::hint::black_box(derive_model(model.clone(), &options).unwrap());
                    });
                    ops = derive_model(model.clone(), &options).unwrap().ops;
                    cells.push(format!("{:.1}", ms(t)));
                }
                let factorial: usize = (1..=m).product();
                println!(
                    "| {name} | {order} | {m} | {factorial} | {} | {ops} |",
                    cells.join(" | ")
                );
            }
        }
    }
    // Many batches: the shuffled rewrite enumerates m^2 trees per pattern at K = 3, where
    // the distinct trees would be m^4/4!.
    println!();
    println!("| loss | order | m | K=3 (ms) | coloured terms | ops |");
    println!("|---|---|---|---|---|---|");
    let model = lang::parse_str(&regression64()).unwrap();
    for (order, m) in [
        (BatchOrder::Cyclic, 16),
        (BatchOrder::Shuffled, 16),
        (BatchOrder::Shuffled, 32),
        (BatchOrder::Shuffled, 64),
    ] {
        let options = Options {
            order: 3,
            method: Some(eomderive::series::Method::Sgd),
            batches: Some(m),
            batch_order: Some(order),
            analyze: false,
            ..Options::default()
        };
        let t = median(Duration::from_secs(2), || {
            std::hint::black_box(derive_model(model.clone(), &options).unwrap());
        });
        let ops = derive_model(model.clone(), &options).unwrap().ops;
        let terms = sgd_series(order, 3).unwrap().term_count(m);
        println!(
            "| regression, 64 examples | {order} | {m} | {:.0} | {terms} | {ops} |",
            ms(t)
        );
    }
}
