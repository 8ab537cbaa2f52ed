//! Emitted code (`--emit`): the emitter's own time against the program's size, to show it is
//! linear. The loss is `sum(i, w[i]^2)/2 + sum(i, w[i]^4)/4` over n parameters at order 2
//! (the program form), derived once per n; only `render::emit` is timed.
//!
//! `cargo bench --bench emit` prints a Markdown table (medians on this machine); BENCHMARKS.md
//! records the figures. ns/op staying flat as n grows tenfold is the linearity.

mod timing;

use std::time::Duration;

use eomderive::lang::Source;
use eomderive::render::{self, Target};
use eomderive::{derive, Form, Options};

fn main() {
    println!("| n | ops | target | emit (ms) | ns/op | bytes |");
    println!("|---|---|---|---|---|---|");
    for n in [1_000, 3_000, 10_000, 30_000] {
        let text = format!("param w[{n}]\nloss = sum(i, w[i]^2)/2 + sum(i, w[i]^4)/4\n");
        let source = Source::inline(&text);
        let options = Options {
            order: 2,
            form: Form::Program,
            analyze: false,
            ..Options::default()
        };
        let d = derive(&source, &options).unwrap();
        for target in Target::ALL {
            let mut bytes = 0;
            let t = timing::median(Duration::from_secs(2), || {
                bytes = render::emit(&d, target, Some(&source)).len();
            });
            println!(
                "| {n} | {} | {target} | {:.1} | {:.0} | {bytes} |",
                d.ops,
                t.as_secs_f64() * 1e3,
                t.as_secs_f64() * 1e9 / d.ops as f64
            );
        }
    }
}
