//! Every LaTeX string eomderive writes is rendered by a real renderer, KaTeX (through node),
//! which fails on anything it cannot parse. KaTeX is installed into tests/katex/node_modules
//! from the committed lock file the first time this runs (needs node and npm).

mod common;

use common::{examples, stem};
use eomderive::{generic, render};

#[test]
fn katex_renders_every_latex_output() {
    let mut items: Vec<serde_json::Value> = Vec::new();
    let mut push =
        |name: String, tex: String| items.push(serde_json::json!({"name": name, "tex": tex}));
    push(
        "generic order 6".into(),
        render::generic_latex(&generic(6).unwrap()),
    );
    for order in [
        eomderive::series::BatchOrder::Cyclic,
        eomderive::series::BatchOrder::Shuffled,
    ] {
        for m in [None, Some(3)] {
            let s = eomderive::generic_sgd(order, m, 3).unwrap();
            push(format!("generic sgd {order} {m:?}"), render::sgd_latex(&s));
            let j: serde_json::Value = serde_json::from_str(&render::sgd_json(&s)).unwrap();
            for t in j["generic"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|o| o["terms"].as_array().unwrap())
            {
                push(
                    format!("sgd term {}", t["text"]),
                    t["latex"].as_str().unwrap().into(),
                );
            }
        }
    }
    for m in eomderive::series::Method::ALL {
        if m == eomderive::series::Method::Sgd {
            continue; // above
        }
        let symbolic = eomderive::series::Optimizer::new(m, None);
        let s = eomderive::generic_optimizer(&symbolic, 4).unwrap();
        push(format!("generic {m} order 4"), render::method_latex(&s));
        let j: serde_json::Value = serde_json::from_str(&render::method_json(&s)).unwrap();
        if m != eomderive::series::Method::Gd {
            push(
                format!("{m} leading"),
                j["leading"]["latex"].as_str().unwrap().into(),
            );
        }
    }
    let g: serde_json::Value =
        serde_json::from_str(&render::generic_json(&generic(4).unwrap())).unwrap();
    for order in g["generic"].as_array().unwrap() {
        for t in order["terms"].as_array().unwrap() {
            push(
                format!("generic tree {}", t["tree"]),
                t["latex"].as_str().unwrap().to_string(),
            );
        }
    }
    for path in examples() {
        // The other forms: the program to order 3, the expanded form to order 1 where it
        // stays under 200 kB (softmax's runs to megabytes, more than node's KaTeX holds at
        // once; its notation is the same as the others').
        for (form, order) in [
            (eomderive::Form::Expanded, 1),
            (eomderive::Form::Program, 3),
        ] {
            let d = common::derive_example_form(&path, order, form);
            let tex = render::latex(&d);
            if tex.len() < 200_000 {
                push(format!("{} {form} document", stem(&path)), tex);
            }
        }
        let d = common::derive_example(&path, 3);
        push(format!("{} document", stem(&path)), render::latex(&d));
        let j: serde_json::Value = serde_json::from_str(&render::json(&d)).unwrap();
        for ct in j["counter_terms"].as_array().unwrap() {
            for (i, tex) in ct["latex"].as_array().unwrap().iter().enumerate() {
                push(
                    format!("{} xi_{}[{i}]", stem(&path), ct["k"]),
                    tex.as_str().unwrap().into(),
                );
            }
        }
        for f in j["gradient_fields"].as_array().unwrap() {
            if let Some(p) = f["potential"]["latex"].as_str() {
                push(format!("{} potential {}", stem(&path), f["k"]), p.into());
            }
        }
        if let Some(m) = j["modified_loss"]["latex"].as_str() {
            push(format!("{} modified loss", stem(&path)), m.into());
        }
        for inv in j["invariances"].as_array().unwrap() {
            for (key, tex) in inv["latex"].as_object().unwrap() {
                push(
                    format!("{} {} {key}", stem(&path), inv["name"]),
                    tex.as_str().unwrap().into(),
                );
            }
        }
        for b in j["bindings"].as_array().unwrap() {
            push(
                format!("{} binding {}", stem(&path), b["name"]),
                b["latex"].as_str().unwrap().into(),
            );
        }
    }
    // Every function and name shape the printer knows.
    let all = "param u = 0.3, v = 0.4\nparam w[2] = [0.1, 0.2]\nparam eta_b = 0.5\n\
               loss = exp(u) + log(v) + sqrt(v) + sin(u) + cos(u) + tan(u) + tanh(u) + sigmoid(u) \
               + softplus(u) + log1p(v) + u^v + w[1]/w[2] - eta_b^(1/3)";
    let d = common::derive_inline(all, 1);
    push("all functions".into(), render::latex(&d));

    common::katex::render_all("latex_strings", &items);
}
