//! The printed forms (`--form`): what building the readable and expanded forms costs next to
//! the derivation itself, and how much a reader reads, on every example at order 3.
//!
//! `cargo bench --bench forms` prints a Markdown table (medians of repeated runs on this
//! machine); BENCHMARKS.md records the figures. The bound: the readable form costs at
//! most 10× the program form's derivation.

mod timing;

use std::time::Duration;

use eomderive::lang::Source;
use eomderive::{derive, Form, Options};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let mut paths: Vec<_> = std::fs::read_dir("examples")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "expr"))
        .collect();
    paths.sort();
    println!("| example | derive (ms) | readable (ms) | × | expanded (ms) | printed ops: readable / program | names: readable / program |");
    println!("|---|---|---|---|---|---|---|");
    for path in paths {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let source = Source::from_argument(path.to_str().unwrap()).unwrap();
        let options = |form| Options {
            order: 3,
            analyze: false,
            form,
            ..Options::default()
        };
        let run = |form| {
            let mut derive_t = Vec::new();
            let mut form_t = Vec::new();
            let mut last = None;
            timing::median(Duration::from_secs(1), || {
                let d = derive(&source, &options(form)).unwrap();
                derive_t.push(d.elapsed);
                form_t.push(d.printed.elapsed);
                last = Some(d);
            });
            derive_t.sort();
            form_t.sort();
            (
                derive_t[derive_t.len() / 2],
                form_t[form_t.len() / 2],
                last.unwrap(),
            )
        };
        let (derive_time, _, program) = run(Form::Program);
        let (_, readable_time, readable) = run(Form::Readable);
        let (_, expanded_time, expanded) = run(Form::Expanded);
        let stats = |d: &eomderive::Derivation| {
            let j: serde_json::Value = serde_json::from_str(&eomderive::render::json(d)).unwrap();
            (
                j["stats"]["printed_ops"].as_u64().unwrap(),
                j["bindings"].as_array().unwrap().len(),
            )
        };
        let (r_ops, r_names) = stats(&readable);
        let (p_ops, p_names) = stats(&program);
        let expanded = match expanded.printed.form {
            Form::Expanded => format!("{:.2}", ms(expanded_time)),
            _ => format!("{:.2} (past its limit)", ms(expanded_time)),
        };
        println!(
            "| {name} | {:.2} | {:.2} | {:.1} | {expanded} | {r_ops} / {p_ops} | {r_names} / {p_names} |",
            ms(derive_time),
            ms(readable_time),
            readable_time.as_secs_f64() / derive_time.as_secs_f64(),
        );
    }
}
