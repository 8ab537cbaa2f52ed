//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod katex;
pub mod polyseries;

use std::path::PathBuf;

use eomderive::lang::{parse, Model, Source};

/// The example loss files, sorted by name.
pub fn examples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "expr"))
        .collect();
    v.sort();
    assert!(v.len() >= 6, "expected at least six examples");
    v
}

/// The example file with this short name (`tanh_net`).
pub fn example(name: &str) -> PathBuf {
    examples()
        .into_iter()
        .find(|p| stem(p) == name)
        .unwrap_or_else(|| panic!("no example {name}"))
}

/// The short name of an example (`tanh_net`).
pub fn stem(p: &std::path::Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Parses an example file.
pub fn load(p: &std::path::Path) -> Model {
    let bytes = std::fs::read(p).unwrap();
    let name = format!("examples/{}", p.file_name().unwrap().to_string_lossy());
    parse(&Source::from_bytes(&name, bytes).unwrap()).unwrap()
}

/// An example's source, named by its stem (`tanh_net`).
pub fn source(p: &std::path::Path) -> Source {
    Source::from_bytes(&stem(p), std::fs::read(p).unwrap()).unwrap()
}

/// An example derived to `order`, its formulas in `form`.
pub fn derive_example_form(
    p: &std::path::Path,
    order: usize,
    form: eomderive::Form,
) -> eomderive::Derivation {
    let options = eomderive::Options {
        order,
        form,
        ..Default::default()
    };
    eomderive::derive(&source(p), &options).unwrap()
}

/// An example derived to `order` with default options otherwise.
pub fn derive_example(p: &std::path::Path, order: usize) -> eomderive::Derivation {
    let options = eomderive::Options {
        order,
        ..Default::default()
    };
    eomderive::derive(&source(p), &options).unwrap()
}

/// An example derived to `order` for its file's optimizer, except that an SGD example is
/// derived for GD: for the tests of one-field tree routes (SGD's coloured trees have their
/// own independent route, tests/sgd_independent.rs).
pub fn derive_example_one_field(p: &std::path::Path, order: usize) -> eomderive::Derivation {
    let d = derive_example(p, order);
    match d.optimizer.batches {
        Some(_) => derive_example_gd(p, order),
        None => d,
    }
}

/// An example derived to `order` for plain GD, whatever optimizer its file names.
pub fn derive_example_gd(p: &std::path::Path, order: usize) -> eomderive::Derivation {
    let options = eomderive::Options {
        order,
        method: Some(eomderive::series::Method::Gd),
        ..Default::default()
    };
    eomderive::derive(&source(p), &options).unwrap()
}

/// A loss written inline, derived to `order` with default options otherwise.
pub fn derive_inline(text: &str, order: usize) -> eomderive::Derivation {
    let options = eomderive::Options {
        order,
        ..Default::default()
    };
    eomderive::derive(&Source::inline(text), &options).unwrap()
}

/// Runs the command line from the crate root: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_eomderive"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The example's initial point as floats.
pub fn initial(m: &Model) -> Vec<f64> {
    m.initial_point()
        .expect("examples give every parameter a value")
        .iter()
        .map(eomderive::numeric::to_f64)
        .collect()
}

/// A deterministic point near `x`: each coordinate moved by up to `scale`.
pub fn perturbed(x: &[f64], seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    x.iter()
        .map(|v| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
            v + scale * (2.0 * u - 1.0)
        })
        .collect()
}

/// insta settings writing snapshots to the top-level `snapshots/` folder.
pub fn snapshot_settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    s.set_prepend_module_to_snapshot(false);
    s
}

/// Relative closeness with an absolute floor for values near zero.
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * (1.0 + a.abs().max(b.abs()))
}
