//! The printed forms (`--form readable|expanded|program`): what a reader reads is the same
//! values as the program the numeric layer compiles, checked on the printed text itself,
//! and it reads the way a paper writes it.

mod common;

use std::collections::HashMap;

use common::{examples, run, stem};
use eomderive::lang::{parse, Source};
use eomderive::numeric::Program;
use eomderive::{derive, render, Derivation, Form, Options};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[test]
fn factorisation_first_order_reads_as_a_paper_writes_it() {
    let (code, out, err) = run(&["(u*v - 1)^2/2", "--order", "1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\n  ξ_1[u] = (u*v - 1)*(2*u^2*v + v^3 - u)/2\n"),
        "{out}"
    );
    assert!(
        out.contains("\n  ξ_1[v] = (u*v - 1)*(u^3 + 2*u*v^2 - v)/2\n"),
        "{out}"
    );
    assert!(!out.contains("where"), "no names at order 1:\n{out}");
    assert!(
        out.contains("f̃ = (u*v - 1)^2/2 + η*(u*v - 1)^2*(u^2 + v^2)/4\n"),
        "{out}"
    );
    let (_, tex, _) = run(&["(u*v - 1)^2/2", "--order", "1", "--format", "latex"]);
    assert!(
        tex.contains(r"\xi_{1} &= \begin{pmatrix} \frac{1}{2} (uv - 1)(2u^{2}v + v^{3} - u) \\ \frac{1}{2} (uv - 1)(u^{3} + 2uv^{2} - v) \end{pmatrix}"),
        "{tex}"
    );
    assert!(
        tex.contains(r"&= \frac{(uv - 1)^{2}}{2} + \frac{1}{4} \eta(uv - 1)^{2}(u^{2} + v^{2})"),
        "{tex}"
    );
    // The program form is still there for whoever wants it.
    let (_, program, _) = run(&["(u*v - 1)^2/2", "--order", "1", "--form", "program"]);
    assert!(program.contains("t1 = u*v - 1"), "{program}");
}

fn derive_form(source: &Source, order: usize, form: Form) -> Derivation {
    let options = Options {
        order,
        form,
        ..Options::default()
    };
    derive(source, &options).unwrap()
}

/// A printed name (`w[1]`, `W[2,1]`, `out[3]`, `t12`) as a plain identifier of the loss
/// language.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_index = false;
    for c in text.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("__");
            }
            ']' if in_index => in_index = false,
            ',' if in_index => out.push('_'),
            ' ' if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// Evaluates what the JSON of `d` prints (its `bindings` as `let`s, then each expression)
/// by parsing the text back: the printed strings themselves, not the graph behind them.
fn printed_values(d: &Derivation) -> Vec<Vec<f64>> {
    let j: serde_json::Value = serde_json::from_str(&render::json(d)).unwrap();
    let params: Vec<String> = d.model.params.iter().map(|p| plain(p)).collect();
    let mut head = format!("param {}\n", params.join(", "));
    for b in j["bindings"].as_array().unwrap() {
        let name = plain(b["name"].as_str().unwrap());
        head.push_str(&format!(
            "let {name} = {}\n",
            plain(b["expr"].as_str().unwrap())
        ));
    }
    let point = &d.evaluation.as_ref().unwrap().point;
    let value = |expr: &str| {
        let text = format!("{head}loss = {}\n", plain(expr));
        let m = parse(&Source::inline(&text))
            .unwrap_or_else(|e| panic!("{e}\nin the printed text:\n{text}"));
        assert_eq!(m.params, params);
        Program::compile(&m.graph, &[m.loss]).eval(point).unwrap()[0]
    };
    let mut rows = vec![j["gradient"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| value(g.as_str().unwrap()))
        .collect::<Vec<f64>>()];
    for ct in j["counter_terms"].as_array().unwrap() {
        rows.push(
            ct["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| value(c.as_str().unwrap()))
                .collect(),
        );
    }
    rows
}

fn assert_rows_close(got: &[Vec<f64>], want: &[Vec<f64>], what: &str) {
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let scale = w.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-300);
        for (a, b) in g.iter().zip(w) {
            assert!(
                (a - b).abs() <= 1e-10 * scale,
                "{what}, row {k}: printed {a} but the program gives {b}"
            );
        }
    }
}

#[test]
fn printed_text_parses_back_to_the_program_values() {
    for path in examples() {
        let source = common::source(&path);
        for form in Form::ALL {
            // The expanded forms of the networks are long: order 2 is enough to parse back.
            let order = if form == Form::Expanded { 2 } else { 3 };
            let d = derive_form(&source, order, form);
            let ev = d.evaluation.as_ref().unwrap();
            let mut want = vec![ev.gradient.clone()];
            want.extend(ev.xi.iter().cloned());
            assert_rows_close(
                &printed_values(&d),
                &want,
                &format!("{} ({form} form)", stem(&path)),
            );
        }
    }
}

#[test]
fn the_printed_form_leaves_the_numbers_alone() {
    // The numeric layer compiles the program form whatever is printed: bit for bit.
    for path in examples() {
        let source = common::source(&path);
        let program = derive_form(&source, 2, Form::Program);
        let readable = derive_form(&source, 2, Form::Readable);
        let (a, b) = (
            program.evaluation.unwrap(),
            readable.evaluation.as_ref().unwrap().clone(),
        );
        assert_eq!((a.gradient, a.xi), (b.gradient, b.xi), "{}", stem(&path));
        assert_eq!(program.ops, readable.ops);
    }
}

/// The terms of a sum as printed (`a - b + c` → a, b, c): through the operators as
/// written, stopping at names.
fn terms(
    p: &render::Printer,
    g: &eomderive::expr::Graph,
    id: eomderive::expr::Id,
    out: &mut Vec<eomderive::expr::Id>,
) {
    use eomderive::expr::Op;
    match *g.get(id) {
        _ if p.is_named(id) => out.push(id),
        Op::Add([a, b]) => {
            terms(p, g, a, out);
            terms(p, g, b, out); // a + (b + c) is printed a + b + c
        }
        Op::Sub([a, b]) => {
            terms(p, g, a, out);
            out.push(b); // a - (b + c) keeps its parentheses: a sum of its own
        }
        Op::Neg(a) => terms(p, g, a, out),
        _ => out.push(id),
    }
}

/// `c x`, `x / c` → x.
fn without_number(g: &eomderive::expr::Graph, id: eomderive::expr::Id) -> eomderive::expr::Id {
    use eomderive::expr::Op;
    match *g.get(id) {
        Op::Mul([c, x]) if g.as_num(c).is_some() => without_number(g, x),
        Op::Div([x, c]) if g.as_num(c).is_some() => without_number(g, x),
        Op::Neg(x) => without_number(g, x),
        _ => id,
    }
}

#[test]
fn readable_sums_have_no_repeated_terms_and_names_are_used_twice() {
    for path in examples() {
        let d = derive_form(&common::source(&path), 3, Form::Readable);
        assert_eq!(d.printed.form, Form::Readable, "{}", stem(&path));
        let g = &d.model.graph;
        let mut head = vec![d.printed.loss];
        head.extend(&d.printed.gradient);
        let xi: Vec<_> = d.printed.xi.iter().flatten().copied().collect();
        let printer =
            render::Printer::reader_sections(g, &d.model.params, &d.printed.lets, &[&head, &xi]);
        let mut roots = head.clone();
        roots.extend(&xi);
        for id in g.cone(&roots) {
            if !matches!(
                g.get(id),
                eomderive::expr::Op::Add(_) | eomderive::expr::Op::Sub(_)
            ) {
                continue;
            }
            let mut ts = Vec::new();
            match *g.get(id) {
                eomderive::expr::Op::Add([a, b]) | eomderive::expr::Op::Sub([a, b]) => {
                    terms(&printer, g, a, &mut ts);
                    if matches!(g.get(id), eomderive::expr::Op::Add(_)) {
                        terms(&printer, g, b, &mut ts);
                    } else {
                        ts.push(b);
                    }
                }
                _ => unreachable!(),
            }
            let mut seen = HashMap::new();
            for t in ts {
                let key = without_number(g, t);
                if let Some(other) = seen.insert(key, t) {
                    // Two terms with the same non-numeric part would be one collected term.
                    // (Both may be bare numbers only if folding failed.)
                    let p = render::Printer::reader(g, &d.model.params, &[], &[id]);
                    panic!(
                        "{}: a sum repeats a term ({} and {}, {t:?}) in {} {id:?}",
                        stem(&path),
                        p.expr(other),
                        p.expr(t),
                        p.expr(id)
                    );
                }
            }
        }
        // Every name a reader is given is used at least twice, except the file's lets.
        let j: serde_json::Value = serde_json::from_str(&render::json(&d)).unwrap();
        let mut texts: Vec<String> = vec![j["loss"].as_str().unwrap().into()];
        texts.extend(
            j["gradient"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string()),
        );
        for ct in j["counter_terms"].as_array().unwrap() {
            texts.extend(
                ct["components"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string()),
            );
        }
        let bindings = j["bindings"].as_array().unwrap();
        texts.extend(
            bindings
                .iter()
                .map(|b| b["expr"].as_str().unwrap().to_string()),
        );
        let lets: Vec<&str> = d.model.names.iter().map(|(n, _)| n.as_str()).collect();
        for b in bindings {
            let name = b["name"].as_str().unwrap();
            if lets.contains(&name) {
                continue;
            }
            let uses: usize = texts.iter().map(|t| count_word(t, name)).sum();
            assert!(uses >= 2, "{}: {name} is used {uses} times", stem(&path));
        }
    }
}

/// Occurrences of `name` as a whole name (`t1` in `t1*t12`, once).
fn count_word(text: &str, name: &str) -> usize {
    let is_name = |c: char| c.is_alphanumeric() || c == '_' || c == '[';
    text.match_indices(name)
        .filter(|(i, _)| {
            let before = text[..*i].chars().next_back();
            let after = text[i + name.len()..].chars().next();
            !before.is_some_and(is_name) && !after.is_some_and(|c| is_name(c) || c == ']')
        })
        .count()
}

#[test]
fn json_carries_the_form_and_always_the_program() {
    let (code, out, err) = run(&["(u*v - 1)^2/2", "--order", "2", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(j["form"], "readable");
    assert_eq!(
        j["counter_terms"][0]["components"][0],
        "(u*v - 1)*(2*u^2*v + v^3 - u)/2"
    );
    assert_eq!(j["program"]["bindings"][0]["expr"], "u*v - 1");
    assert_eq!(j["program"]["counter_terms"][0]["components"][0], "1/2*t5");
    assert!(j["stats"]["printed_ops"].as_u64().unwrap() > 0);
    assert!(j["stats"]["program_printed_ops"].as_u64().unwrap() > 0);
    assert_eq!(
        j["modified_loss"]["formula"]["text"],
        "(u*v - 1)^2/2 + η*(u*v - 1)^2*(u^2 + v^2)/4"
    );
    let (code, _, err) = run(&["(u*v - 1)^2/2", "--form", "pretty"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("possible values: readable, expanded, program"),
        "{err}"
    );
}

#[test]
fn a_form_past_its_limit_falls_back_and_says_so() {
    // 4 variables to the 60th: 39 711 monomials, past the 20 000 an expanded sum may have.
    let (code, out, err) = run(&["(u + v + w + 1)^60", "--order", "1", "--form", "expanded"]);
    assert_eq!(code, 0, "{err}");
    let notes: Vec<&str> = out.lines().filter(|l| l.starts_with("note:")).collect();
    assert_eq!(
        notes,
        ["note: the expanded form would need a sum of more than 20000 terms: printed as the program instead"]
    );
    assert!(out.contains("t1 = u + v + w + 1"), "{out}");
    let (_, json, _) = run(&[
        "(u + v + w + 1)^60",
        "--order",
        "1",
        "--form",
        "expanded",
        "--format",
        "json",
    ]);
    let j: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(j["form"], "program");
    assert!(j["form_note"].as_str().unwrap().contains("20000 terms"));
}

/// Small random losses in u and v: sums, products, quotients by positive denominators,
/// small powers and the smooth functions, so that every form is defined near the origin.
fn loss() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("u".to_string()),
        Just("v".to_string()),
        (1i32..5).prop_map(|n| n.to_string()),
        (1i32..5, 2i32..7).prop_map(|(p, q)| format!("{p}/{q}")),
    ];
    leaf.prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} + {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} - {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}*{b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}/(1 + ({b})^2))")),
            (inner.clone(), 2u32..4).prop_map(|(a, n)| format!("({a})^{n}")),
            (
                inner.clone(),
                prop_oneof![
                    Just("tanh"),
                    Just("sin"),
                    Just("cos"),
                    Just("sigmoid"),
                    Just("softplus")
                ]
            )
                .prop_map(|(a, f)| format!("{f}({a})")),
            inner.prop_map(|a| format!("(-{a})")),
        ]
    })
}

#[test]
fn random_losses_agree_in_every_form_and_their_latex_renders() {
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let latex = std::cell::RefCell::new(Vec::new());
    runner
        .run(&loss(), |text| {
            let text = format!("param u = 0.3, v = -0.4\nloss = {text}");
            let source = Source::inline(&text);
            let forms: Vec<Derivation> = Form::ALL
                .iter()
                .map(|&f| derive_form(&source, 2, f))
                .collect();
            let m = &forms[0].model;
            for d in &forms {
                for x in [[0.3, -0.4], [-0.7, 0.2], [0.11, 0.53]] {
                    let value = |p: &eomderive::Printed, graph| {
                        let mut roots = p.gradient.clone();
                        roots.extend(p.xi.iter().flatten());
                        Program::compile(graph, &roots).eval(&x).unwrap()
                    };
                    let want = value(&forms[2].printed, &forms[2].model.graph);
                    let got = value(&d.printed, &d.model.graph);
                    let scale = want.iter().fold(1.0f64, |s, w| s.max(w.abs()));
                    for (a, b) in got.iter().zip(&want) {
                        prop_assert!(
                            (a - b).abs() <= 1e-12 * scale,
                            "{} form of {text}: {a} vs {b} at {x:?}",
                            d.printed.form
                        );
                    }
                }
                latex.borrow_mut().push(serde_json::json!({
                    "name": format!("{} form of {text}", d.printed.form),
                    "tex": render::latex(d),
                }));
            }
            prop_assert_eq!(&m.params, &forms[1].model.params);
            Ok(())
        })
        .unwrap();
    common::katex::render_all("random_forms", &latex.into_inner());
}

#[test]
fn the_written_modified_loss_has_the_counter_terms_as_its_gradient() {
    // ξ_k = ∇Φ_k / c: the potentials the report writes out, differentiated by central
    // differences (not by the derivation), and f̃ printed with η as f + Σ η^k Φ_k / c.
    let mut checked = 0;
    for path in examples() {
        let d = derive_form(&common::source(&path), 2, Form::Readable);
        let (Some(a), Some(ev)) = (&d.analysis, &d.evaluation) else {
            continue;
        };
        let g = &d.model.graph;
        let c = eomderive::numeric::to_f64(&a.leading);
        let j = a.modified_loss_order();
        let mut phis = Vec::new();
        for (k, f) in a.fields[..j].iter().enumerate() {
            let Some(phi) = f.potential.as_ref().and_then(|p| p.scalar) else {
                continue;
            };
            let program = Program::compile(g, &[phi]);
            let x = &ev.point;
            let scale = ev.xi[k].iter().fold(1e-300f64, |m, v| m.max(v.abs()));
            for i in 0..x.len() {
                let h = 1e-5 * x[i].abs().max(1.0);
                let (mut up, mut down) = (x.clone(), x.clone());
                up[i] += h;
                down[i] -= h;
                let fd =
                    (program.eval(&up).unwrap()[0] - program.eval(&down).unwrap()[0]) / (2.0 * h);
                assert!(
                    (fd - ev.xi[k][i]).abs() <= 1e-6 * scale,
                    "{}: ∂Φ_{}/∂θ_{i} = {fd} by differences, ξ = {}",
                    stem(&path),
                    k + 1,
                    ev.xi[k][i]
                );
            }
            phis.push(program.eval(x).unwrap()[0]);
            checked += 1;
        }
        if let Some(tilde) = d.printed.modified_loss {
            let eta = 0.1;
            let mut at = ev.point.clone();
            at.push(eta);
            let got = Program::compile(g, &[tilde]).eval(&at).unwrap()[0];
            let want = ev.loss
                + phis
                    .iter()
                    .enumerate()
                    .map(|(k, p)| eta.powi(k as i32 + 1) * p / c)
                    .sum::<f64>();
            assert!(
                (got - want).abs() <= 1e-10 * want.abs().max(1.0),
                "{}: f̃ {got} vs {want}",
                stem(&path)
            );
        }
    }
    assert!(checked >= 10, "only {checked} potentials written out");
}
