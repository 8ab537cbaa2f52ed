//! Limits known before the work (`--max-memory`, [`eomderive::budget`]): the forecast of the
//! graph's growth against what the derivation then builds, refusals that name the largest
//! order that fits (and that order then runs), and bad sizes.

mod common;

use common::{example, examples, load, run};
use eomderive::budget::{parse_size, Forecast, BYTES_PER_NODE};
use eomderive::expr::Diff;
use eomderive::series::{self, Before};

/// The forecast of each order, made before it, against the nodes it then added: on every
/// example to order 6, never less than a fifth nor more than eight times the truth once three
/// orders are known (the first orders are charged by tree counts, and are small).
#[test]
fn the_forecast_follows_the_growth_of_every_example() {
    let mut compared = 0;
    for path in examples() {
        let mut m = load(&path);
        if m.settings.batches.is_some() {
            continue; // SGD instantiates coloured trees: the same watcher, other tables
        }
        let mut diff = Diff::new(m.params.len());
        let gradient = diff.gradient(&mut m.graph, m.loss);
        let table = series::counter_terms(6).unwrap();
        // (k, nodes ξ_k is forecast to add), and the nodes after each order as measured.
        let mut forecasts: Vec<(usize, f64)> = Vec::new();
        let mut nodes: Vec<usize> = Vec::new();
        let mut watch = |before: Before| {
            let f = Forecast::new(&before);
            let now = *before.nodes.last().unwrap() as f64;
            forecasts.push((before.order, f.orders[0].1 - now));
            nodes = before.nodes.to_vec();
            Ok(())
        };
        series::instantiate_watched(
            &table.forest,
            &table.xi,
            &mut m.graph,
            &mut diff,
            &[gradient],
            usize::MAX,
            &mut watch,
        )
        .unwrap();
        nodes.push(m.graph.len());
        for (k, predicted) in forecasts.into_iter().filter(|f| f.0 >= 4) {
            let truth = ((nodes[k] - nodes[k - 1]) as f64).max(1.0);
            let ratio = predicted / truth;
            assert!(
                (0.2..=8.0).contains(&ratio),
                "{}: ξ_{k} forecast {predicted:.0} nodes, added {truth:.0}",
                path.display()
            );
            compared += 1;
        }
    }
    assert!(compared >= 20, "only {compared} forecasts compared");
}

/// Growth that doubles the running total every order is extrapolated exactly once two
/// orders are known, and the time left follows the last order's time per node.
#[test]
fn geometric_growth_is_extrapolated_exactly() {
    // ξ_1..ξ_k add 10, 20, 40, 80, 160 nodes in all.
    let nodes = [100, 110, 120, 140, 180, 260];
    let seconds = [0.1, 0.1, 0.2, 0.4, 0.8]; // 0.01 s per node
    let f = Forecast::new(&Before {
        order: 6,
        orders: 7,
        nodes: &nodes,
        seconds: &seconds,
    });
    assert_eq!(f.orders.len(), 2);
    assert!((f.orders[0].1 - 420.0).abs() < 1e-9, "{:?}", f.orders);
    assert!((f.orders[1].1 - 740.0).abs() < 1e-9, "{:?}", f.orders);
    assert!((f.seconds() - (1.6 + 3.2)).abs() < 1e-9, "{}", f.seconds());
}

/// tanh_net at order 12 under 64 MiB is refused before the work, naming the largest order
/// that fits; that order then runs under the same limit.
#[test]
fn a_derivation_past_its_memory_is_refused_naming_what_fits() {
    let path = example("tanh_net");
    let p = path.to_str().unwrap();
    let (code, _, err) = run(&[
        p,
        "--order",
        "12",
        "--max-memory",
        "64M",
        "--form",
        "program",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("ξ_12 would need about"), "{err}");
    assert!(
        err.contains("past the memory limit of 64 MiB (--max-memory)"),
        "{err}"
    );
    // The order named runs under the same limit, or, forecast again with more orders known,
    // is refused naming a lower one; within a few rounds one runs, inside the limit.
    let mut err = err;
    for _ in 0..4 {
        let fits: usize = err
            .split("the largest order that fits is ")
            .nth(1)
            .and_then(|r| r.split(':').next())
            .and_then(|k| k.trim().parse().ok())
            .unwrap_or_else(|| panic!("no order named: {err}"));
        assert!((3..12).contains(&fits), "{err}");
        let k = fits.to_string();
        let args = [
            p,
            "--order",
            &k,
            "--max-memory",
            "64M",
            "--form",
            "program",
            "--format",
            "json",
        ];
        let (code, out, e) = run(&args);
        if code == 0 {
            let json: serde_json::Value = serde_json::from_str(&out).unwrap();
            let nodes = json["stats"]["nodes"].as_u64().unwrap();
            // The graph the forecast counted stays within the limit it was checked against.
            assert!(nodes * BYTES_PER_NODE <= 64 << 20, "{nodes} nodes");
            return;
        }
        assert!(e.contains("would need about"), "{e}");
        err = e;
    }
    panic!("no order ran under 64M: {err}");
}

#[test]
fn bad_sizes_are_usage_errors() {
    for (size, says) in [
        ("lots", "is not a size"),
        ("3X", "unknown unit `X`"),
        ("0", "at least one byte"),
        ("-1G", "at least one byte"),
    ] {
        let flag = format!("--max-memory={size}");
        let (code, _, err) = run(&["u^4/4", &flag]);
        assert_eq!(code, 2, "{size}: {err}");
        assert!(err.contains(says), "{size}: {err}");
    }
    assert_eq!(parse_size("4G"), Ok(4 << 30));
    assert_eq!(parse_size("300MB"), Ok(300 << 20));
    assert_eq!(parse_size("2e9"), Ok(2_000_000_000));
}
