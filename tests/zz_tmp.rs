use eomderive::{check, derive, lang::Source, numeric::CheckOptions, Options, render};
#[test]
fn smoke() {
    for (f, lr) in [("examples/sgd_regression.expr", 0.05), ("examples/sgd_logistic.expr", 0.2), ("examples/sgd_tanh_net.expr", 0.1)] {
        let src = Source::from_argument(f).unwrap();
        let t = std::time::Instant::now();
        let d = derive(&src, &Options { order: 3, ..Options::default() }).unwrap();
        eprintln!("{f}: derive {:?} ops {}", t.elapsed(), d.ops);
        if f.contains("regression") { eprintln!("{}", render::text(&d)); }
        let t = std::time::Instant::now();
        let c = check(&d, &CheckOptions { lr, steps: 24, ..Default::default() }).unwrap();
        eprintln!("check {:?} slopes {:?}", t.elapsed(), c.slopes);
        if let Some(mc) = &c.monte_carlo { for r in &mc.rows { eprintln!("  mc K={} lr={} err={:?} se={:?} {}", r.order, r.lr, r.error, r.standard_error, r.resolved); } }
    }
}
