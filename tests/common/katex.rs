//! KaTeX (through node) as the judge of LaTeX: it fails on anything it cannot parse. KaTeX
//! is installed into tests/katex/node_modules from the committed lock file the first time
//! this runs (needs node and npm).

use std::path::PathBuf;
use std::process::Command;

fn katex_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/katex")
}

fn ensure_katex() {
    if katex_dir().join("node_modules/katex").is_dir() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(katex_dir())
        .status()
        .expect("npm must be installed to check the LaTeX output with KaTeX");
    assert!(status.success(), "npm ci in tests/katex failed");
}

/// Renders every `{"name", "tex"}` item in display mode and fails the test, listing the
/// failures, unless all of them render. `label` names the scratch file.
pub fn render_all(label: &str, items: &[serde_json::Value]) {
    ensure_katex();
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{label}.json"));
    std::fs::write(&file, serde_json::to_string(items).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(katex_dir().join("check.js"))
        .arg(&file)
        .output()
        .expect("node must be installed to check the LaTeX output with KaTeX");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "KaTeX rejected some LaTeX:\n{report}");
    assert!(
        report.contains(&format!("{} passed, 0 failed", items.len())),
        "{report}"
    );
}
