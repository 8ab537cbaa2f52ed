//! The command line: the generic form, orders and their limits, and the JSON contract.

mod common;

use common::run;

#[test]
fn generic_text_is_the_design_table() {
    let (code, out, err) = run(&["--generic", "--order", "3"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "ξ_1 = 1/2 H g\n\
         ξ_2 = 1/12 ∇³f(g, g) + 1/3 H H g\n\
         ξ_3 = 1/12 ∇³f(H g, g) + 1/12 H ∇³f(g, g) + 1/4 H H H g\n"
    );
}

#[test]
fn generic_json_contract() {
    let (code, out, _) = run(&["--generic", "--order", "13", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["order"], 13);
    let xi = v["generic"].as_array().unwrap();
    assert_eq!(xi.len(), 13);
    assert_eq!(xi[0]["k"], 1);
    assert_eq!(xi[0]["terms"][0]["coefficient"], "1/2");
    assert_eq!(xi[0]["terms"][0]["tree"], "[•]");
    assert_eq!(xi[0]["terms"][0]["text"], "H g");
    // ξ_13 has one term per tree with 14 nodes whose coefficient is not zero.
    let n13 = xi[12]["terms"].as_array().unwrap().len();
    assert!(n13 > 30_000 && n13 <= 32_973, "{n13}");
}

#[test]
fn default_order_is_two_and_json_has_the_contract_fields() {
    let (code, out, err) = run(&["examples/factorization.expr", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["params"], serde_json::json!(["u", "v"]));
    assert_eq!(v["order"], 2);
    let ct = v["counter_terms"].as_array().unwrap();
    assert_eq!(ct.len(), 2);
    assert_eq!(ct[1]["k"], 2);
    assert_eq!(ct[1]["components"].as_array().unwrap().len(), 2);
    assert_eq!(ct[1]["latex"].as_array().unwrap().len(), 2);
    let ev = &v["evaluation"];
    assert_eq!(ev["at"]["u"], 0.3);
    assert_eq!(ev["xi"].as_array().unwrap().len(), 2);
    assert!(v["stats"]["ops"].as_u64().unwrap() > 0);
    assert!(v["stats"]["derive_seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn text_and_latex_are_deterministic() {
    for format in ["text", "latex"] {
        let a = run(&["examples/softmax.expr", "--order", "3", "--format", format]).1;
        let b = run(&["examples/softmax.expr", "--order", "3", "--format", format]).1;
        assert_eq!(a, b, "{format}");
    }
}

#[test]
fn bad_orders_are_usage_errors() {
    for (args, phrase) in [
        (vec!["u^2", "--order", "0"], "at least 1"),
        (vec!["u^2", "--order", "2.5"], "whole number"),
        (vec!["u^2", "--order", "-1"], "whole number"),
        (vec!["u^2", "--order", "99"], "limit"),
        (vec!["--generic", "--order", "17"], "MAX_ORDER = 16"),
        (vec!["--generic", "--order", "0"], "at least 1"),
        (vec!["--generic", "u^2"], "takes no LOSS"),
        (vec![], "no LOSS"),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}");
        assert!(err.contains(phrase), "{args:?}: {err}");
    }
}

#[test]
fn egg_reports_how_saturation_stopped() {
    let (code, out, err) = run(&[
        "examples/tanh_net.expr",
        "--simplify",
        "egg",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let s = &v["stats"]["simplify"];
    assert_eq!(s["mode"], "egg");
    assert!(["saturated", "node limit", "iteration limit", "time limit"]
        .contains(&s["stopped_by"].as_str().unwrap()));
    assert!(s["ops_before"].as_u64().unwrap() >= v["stats"]["ops"].as_u64().unwrap());
    let (_, text, _) = run(&["examples/tanh_net.expr", "--simplify", "egg"]);
    assert!(text.contains("simplified with egg:"), "{text}");
}

#[test]
fn a_derivation_past_its_node_budget_stops_with_a_clear_error() {
    let src = eomderive::lang::Source::inline("tanh(u*v - 1)^2 + sigmoid(u)*v");
    let options = eomderive::Options {
        order: 6,
        max_nodes: 2_000,
        ..Default::default()
    };
    let e = eomderive::derive(&src, &options).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.message.contains("limit of 2000 expression nodes"), "{e}");
    assert!(
        e.help.as_deref().unwrap_or("").contains("lower order"),
        "{e}"
    );
}

/// The check of the tanh network at orders 0..3, η = 0.2, 10 steps.
const TANH_CHECK: [&str; 8] = [
    "examples/tanh_net.expr",
    "--order",
    "3",
    "--check",
    "--lr",
    "0.2",
    "--steps",
    "10",
];

#[test]
fn check_prints_a_table_json_and_a_plot() {
    let svg = std::env::temp_dir().join(format!("eomderive-check-{}.svg", std::process::id()));
    let svg_s = svg.to_string_lossy().into_owned();
    let (code, out, err) =
        run(&[&TANH_CHECK[..], &["--plot", &svg_s, "--format", "json"]].concat());
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c = &v["check"];
    assert_eq!(c["lr"], 0.2);
    assert_eq!(c["steps"], 10);
    assert_eq!(c["horizon"].as_f64().unwrap(), 2.0);
    assert_eq!(c["rows"].as_array().unwrap().len(), 16); // K = 0..3 × η, η/2, η/4, η/8
    let slopes: Vec<f64> = c["slopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect();
    for (k, s) in slopes.iter().enumerate() {
        assert!((s - (k as f64 + 1.0)).abs() < 0.15, "K={k}: {s}");
    }
    let picture = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_file(&svg).unwrap();
    assert!(picture.starts_with("<svg") && picture.trim_end().ends_with("</svg>"));
    assert_eq!(
        picture.matches("<polyline").count(),
        8,
        "4 orders in each panel"
    );
    assert!(!picture.contains("NaN") && !picture.contains("inf"));
    // The text table has one line per order, with the slope.
    let (_, text, _) = run(&TANH_CHECK);
    assert!(text.contains("check against gradient descent"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with('3') && l.trim_end().ends_with("4.00")),
        "{text}"
    );
}

#[test]
fn check_needs_a_point_and_a_positive_rate() {
    let (code, _, err) = run(&["(u*v - 1)^2", "--check"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs a starting point"), "{err}");
    let (code, _, err) = run(&["examples/factorization.expr", "--check", "--lr", "-0.1"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("positive learning rate"), "{err}");
}

static STAGES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn record(stage: &str) {
    STAGES.lock().unwrap().push(stage.to_string());
}

#[test]
fn the_derivation_reports_its_stages_in_order() {
    let options = eomderive::Options {
        order: 2,
        simplify: eomderive::Simplify::Egg,
        progress: Some(record),
        ..Default::default()
    };
    let src = eomderive::lang::Source::inline("param u = 1, v = 2\nloss = (u*v - 1)^2");
    eomderive::derive(&src, &options).unwrap();
    assert_eq!(
        *STAGES.lock().unwrap(),
        [
            "parsing",
            "gradient",
            "counter terms",
            "simplifying",
            "equality saturation",
            "evaluating",
            "analysing",
            "writing the formulas"
        ]
    );
}
