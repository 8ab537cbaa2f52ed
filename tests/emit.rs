//! Emitted code (`--emit python|jax|rust`, DESIGN.md §4.5) is run, and its values compared
//! with eomderive's own (the compiled program of the derivation) on every example, at the
//! file's initial point and at points around it, to 1e-12 relative to each vector's size.
//!
//! - Rust: every example's module in one crate with a `main` that prints the values as f64
//!   bits, compiled with `rustc -O` (`$RUSTC` or `rustc`).
//! - NumPy: `$EOMDERIVE_PYTHON`, else `python3` when it has NumPy; when neither has it the
//!   test fails under CI (`CI` set) and is skipped with a message otherwise. `.ci/run` makes
//!   the venv.
//! - JAX: only with `$EOMDERIVE_JAX_PYTHON` (a Python with jax); without it the test fails
//!   under CI and is skipped with a message otherwise (`.ci/run`'s venv has jax too); also
//!   `jax.jit` of both functions and `jax.grad(loss)` against the gradient.
//!
//! And the command line's side: bad targets, `-o` to a place that cannot be written, a write
//! that fails half-way (the old file stays whole, nothing is left behind), `--generic --emit`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{examples, snapshot_settings, source, stem};
use eomderive::numeric::Program;
use eomderive::render::{self, Target};
use eomderive::{derive, Derivation, Form, Options};

const ORDER: usize = 2;
const REL: f64 = 1e-12;

/// An example derived as `--emit` derives it (program form, no analyses).
fn derived(path: &Path, order: usize) -> Derivation {
    let options = Options {
        order,
        form: Form::Program,
        analyze: false,
        ..Options::default()
    };
    derive(&source(path), &options).unwrap()
}

/// eomderive's own values at `x`: loss, gradient, ξ_1..ξ_K (None where undefined).
struct Values {
    loss: f64,
    g: Vec<f64>,
    xi: Vec<Vec<f64>>,
}

fn reference(d: &Derivation, x: &[f64]) -> Option<Values> {
    let m = &d.model;
    let mut roots = vec![m.loss];
    roots.extend(&d.gradient);
    roots.extend(d.xi.iter().flatten());
    let v = Program::compile(&m.graph, &roots).eval(x).ok()?;
    let n = d.gradient.len();
    Some(Values {
        loss: v[0],
        g: v[1..=n].to_vec(),
        xi: v[n + 1..].chunks(n).map(<[f64]>::to_vec).collect(),
    })
}

/// The file's initial point and three points around it where the loss is defined.
fn points(d: &Derivation) -> Vec<Vec<f64>> {
    let x0 = d
        .evaluation
        .as_ref()
        .expect("every example has a point")
        .point
        .clone();
    let mut pts = vec![x0.clone()];
    for j in 1..=3 {
        let p: Vec<f64> = x0
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.07 * j as f64 * (1.7 * i as f64 + 2.3 * j as f64).sin())
            .collect();
        if reference(d, &p).is_some() {
            pts.push(p);
        }
    }
    assert!(pts.len() >= 3, "too few points where the loss is defined");
    pts
}

/// `got` against `want` component by component, to REL of the component plus the vector's
/// largest component (an absolute floor for components that cancel to near zero).
fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= REL * (b.abs() + scale) + 1e-300,
            "{what}[{i}]: emitted {a:e}, eomderive {b:e} (difference {:e})",
            (a - b).abs()
        );
    }
}

fn check_values(got: &Values, want: &Values, what: &str) {
    assert_close(&[got.loss], &[want.loss], &format!("{what}: loss"));
    assert_close(&got.g, &want.g, &format!("{what}: gradient"));
    assert_eq!(
        got.xi.len(),
        want.xi.len(),
        "{what}: number of counter terms"
    );
    for (k, (a, b)) in got.xi.iter().zip(&want.xi).enumerate() {
        assert_close(a, b, &format!("{what}: ξ_{}", k + 1));
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd`, failing the test with its standard error unless it succeeds.
fn output(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Rust

#[test]
fn emitted_rust_computes_eomderives_values_on_every_example() {
    let dir = scratch("emit_rust");
    let mut main = String::from("#![allow(clippy::all)]\n");
    let mut cases = Vec::new();
    for path in examples() {
        let d = derived(&path, ORDER);
        let name = format!("ex_{}", stem(&path).replace('-', "_"));
        std::fs::write(
            dir.join(format!("{name}.rs")),
            render::emit(&d, Target::Rust, Some(&source(&path))),
        )
        .unwrap();
        let pts = points(&d);
        let (n, k) = (d.gradient.len(), d.xi.len());
        main.push_str(&format!("mod {name};\n"));
        let bits: Vec<String> = pts
            .iter()
            .map(|p| {
                let b: Vec<String> = p.iter().map(|v| format!("{}u64", v.to_bits())).collect();
                format!("[{}]", b.join(", "))
            })
            .collect();
        cases.push(format!(
            "    {{\n        use {name} as m;\n        \
             println!(\"params {name} {{}}\", m::PARAMS.join(\"|\"));\n        \
             println!(\"head {name} {{}} {{}} {{}}\", m::ORDER, m::LEADING.to_bits(), \
             m::THETA0.map_or(\"none\".to_string(), |t| t.iter().map(|v| v.to_bits().to_string()).collect::<Vec<_>>().join(\",\")));\n        \
             let points: [[u64; {n}]; {}] = [{}];\n        \
             for p in &points {{\n            \
             let theta: [f64; {n}] = p.map(f64::from_bits);\n            \
             let mut g = [0.0f64; {n}];\n            \
             let mut xi = [[0.0f64; {n}]; {k}];\n            \
             m::eom_terms(&theta, &mut g, &mut xi);\n            \
             let mut line = format!(\"value {name} {{}}\", m::loss(&theta).to_bits());\n            \
             for v in g.iter().chain(xi.iter().flatten()) {{ line.push_str(&format!(\" {{}}\", v.to_bits())); }}\n            \
             println!(\"{{line}}\");\n        }}\n    }}\n",
            pts.len(),
            bits.join(", ")
        ));
    }
    main.push_str("\nfn main() {\n");
    for c in &cases {
        main.push_str(c);
    }
    main.push_str("}\n");
    std::fs::write(dir.join("main.rs"), &main).unwrap();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let compiled = Command::new(&rustc)
        .args(["--edition", "2021", "-O", "main.rs", "-o", "emitted"])
        .current_dir(&dir)
        .output()
        .expect("rustc runs");
    let warnings = String::from_utf8_lossy(&compiled.stderr);
    assert!(compiled.status.success(), "rustc failed:\n{warnings}");
    assert!(
        !warnings.contains("warning"),
        "the emitted Rust has warnings:\n{warnings}"
    );
    let out = output(&mut Command::new(dir.join("emitted")), "the emitted Rust");
    let mut checked = 0;
    for path in examples() {
        let d = derived(&path, ORDER);
        let name = format!("ex_{}", stem(&path).replace('-', "_"));
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .filter(|w| w[1] == name)
            .collect();
        let params = lines.iter().find(|w| w[0] == "params").unwrap();
        assert_eq!(
            params[2..].join(" "),
            d.model.params.join("|"),
            "{name}: PARAMS"
        );
        let head = lines.iter().find(|w| w[0] == "head").unwrap();
        assert_eq!(
            head[2].parse::<usize>().unwrap(),
            d.xi.len(),
            "{name}: ORDER"
        );
        let leading = f64::from_bits(head[3].parse().unwrap());
        assert_eq!(
            leading,
            eomderive::numeric::to_f64(&d.leading),
            "{name}: LEADING"
        );
        let theta0: Vec<f64> = head[4]
            .split(',')
            .map(|b| f64::from_bits(b.parse().unwrap()))
            .collect();
        assert_eq!(
            theta0,
            d.evaluation.as_ref().unwrap().point,
            "{name}: THETA0"
        );
        let values: Vec<&Vec<&str>> = lines.iter().filter(|w| w[0] == "value").collect();
        let pts = points(&d);
        assert_eq!(values.len(), pts.len(), "{name}: one line per point");
        for (j, (w, p)) in values.iter().zip(&pts).enumerate() {
            let v: Vec<f64> = w[2..]
                .iter()
                .map(|b| f64::from_bits(b.parse().unwrap()))
                .collect();
            let n = d.gradient.len();
            let got = Values {
                loss: v[0],
                g: v[1..=n].to_vec(),
                xi: v[n + 1..].chunks(n).map(<[f64]>::to_vec).collect(),
            };
            check_values(
                &got,
                &reference(&d, p).unwrap(),
                &format!("rust {name} point {j}"),
            );
            checked += 1;
        }
    }
    assert!(checked >= 3 * examples().len());
}

// ---------------------------------------------------------------------------------------------
// Python: NumPy and JAX

/// The driver: imports each emitted module, evaluates it at each point one by one, then at
/// all of them at once (shape (B, n)) and twice over (shape (2, B, n)), checks the shapes,
/// and prints the values as f64 bits. With `jax`, also `jax.jit` of both functions and
/// `jax.grad(loss)` against the emitted gradient.
const DRIVER: &str = r#"
import importlib.util, json, struct, sys

def bits(x):
    return struct.unpack("<Q", struct.pack("<d", float(x)))[0]

def value(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]

spec = json.load(sys.stdin)
jax_mode = spec["jax"]
if jax_mode:
    import jax
    import jax.numpy as xp
else:
    import numpy as xp
import numpy as np

out = []
for item in spec["modules"]:
    s = importlib.util.spec_from_file_location(item["name"], item["path"])
    m = importlib.util.module_from_spec(s)
    s.loader.exec_module(m)
    pts = [[value(b) for b in p] for p in item["points"]]
    n, k, B = len(pts[0]), m.ORDER, len(pts)
    res = {
        "params": list(m.PARAMS),
        "order": m.ORDER,
        "leading": bits(m.LEADING),
        "theta0": None if m.THETA0 is None else [bits(x) for x in m.THETA0],
        "points": [],
    }
    def row(l, g, xi):
        return {"loss": bits(l), "g": [bits(x) for x in g], "xi": [[bits(x) for x in r] for r in xi]}
    for p in pts:
        theta = xp.array(p)
        l = m.loss(theta)
        g, xi = m.eom_terms(theta)
        assert np.shape(l) == (), ("loss shape", np.shape(l))
        assert g.shape == (n,), ("g shape", g.shape)
        assert xi.shape == (k, n), ("xi shape", xi.shape)
        res["points"].append(row(l, g, xi))
    batch = xp.array(pts)
    l = m.loss(batch)
    g, xi = m.eom_terms(batch)
    assert l.shape == (B,), ("batch loss shape", l.shape)
    assert g.shape == (B, n), ("batch g shape", g.shape)
    assert xi.shape == (k, B, n), ("batch xi shape", xi.shape)
    res["batch"] = [row(l[b], g[b], xi[:, b]) for b in range(B)]
    twice = xp.stack([batch, batch])
    g2, xi2 = m.eom_terms(twice)
    assert m.loss(twice).shape == (2, B), "loss of shape (2, B, n)"
    assert g2.shape == (2, B, n) and xi2.shape == (k, 2, B, n), ("(2, B, n) shapes", g2.shape, xi2.shape)
    ga, gb = np.asarray(g2[1]), np.asarray(g)
    assert np.all(np.abs(ga - gb) <= 1e-12 * (np.abs(gb) + np.max(np.abs(gb)))), "g of the second copy"
    if jax_mode:
        jl = jax.jit(m.loss)(batch[0])
        jg, jxi = jax.jit(m.eom_terms)(batch[0])
        gl = jax.grad(m.loss)(batch[0])
        res["jit"] = row(jl, jg, jxi)
        res["grad"] = [bits(x) for x in gl]
    out.append(res)
json.dump(out, sys.stdout)
"#;

/// A Python that can import `module`: `$var` when set (it must have it), else `python3` if
/// it has it; `None` (skip) otherwise, unless under CI.
fn python_with(var: &str, module: &str, required_in_ci: bool) -> Option<String> {
    let has = |py: &str| {
        Command::new(py)
            .args(["-c", &format!("import {module}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Ok(py) = std::env::var(var) {
        assert!(has(&py), "${var} = {py} cannot import {module}");
        return Some(py);
    }
    if module == "numpy" && has("python3") {
        return Some("python3".into());
    }
    if required_in_ci && std::env::var_os("CI").is_some() {
        panic!("no python with {module} under CI: set ${var} (.ci/run makes a venv)");
    }
    // Past the test harness's output capture, so that a skip is seen.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: no python with {module} (set ${var}; `.ci/run` makes a venv with it)"
    );
    None
}

fn bits_vec(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|b| f64::from_bits(b.as_u64().unwrap()))
        .collect()
}

fn python_values(v: &serde_json::Value) -> Values {
    Values {
        loss: f64::from_bits(v["loss"].as_u64().unwrap()),
        g: bits_vec(&v["g"]),
        xi: v["xi"].as_array().unwrap().iter().map(bits_vec).collect(),
    }
}

/// Emits every example for `target`, runs the driver with `python`, and compares.
fn check_python(python: &str, target: Target) {
    let jax = target == Target::Jax;
    let dir = scratch(&format!("emit_{target}"));
    let driver = dir.join("driver.py");
    std::fs::write(&driver, DRIVER).unwrap();
    let mut modules = Vec::new();
    let mut derivations = Vec::new();
    for path in examples() {
        let d = derived(&path, ORDER);
        let name = stem(&path).replace('-', "_");
        let file = dir.join(format!("{name}.py"));
        std::fs::write(&file, render::emit(&d, target, Some(&source(&path)))).unwrap();
        let pts: Vec<Vec<u64>> = points(&d)
            .iter()
            .map(|p| p.iter().map(|v| v.to_bits()).collect())
            .collect();
        modules.push(serde_json::json!({"name": name, "path": file, "points": pts}));
        derivations.push((name, d));
    }
    let spec = serde_json::json!({"jax": jax, "modules": modules}).to_string();
    let mut child = Command::new(python)
        .arg(&driver)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(spec.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the {target} driver failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), derivations.len());
    for (r, (name, d)) in results.iter().zip(&derivations) {
        let what = format!("{target} {name}");
        let params: Vec<&str> = r["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(params, d.model.params, "{what}: PARAMS");
        assert_eq!(
            r["order"].as_u64(),
            Some(d.xi.len() as u64),
            "{what}: ORDER"
        );
        assert_eq!(
            f64::from_bits(r["leading"].as_u64().unwrap()),
            eomderive::numeric::to_f64(&d.leading),
            "{what}: LEADING"
        );
        assert_eq!(
            bits_vec(&r["theta0"]),
            d.evaluation.as_ref().unwrap().point,
            "{what}: THETA0"
        );
        let pts = points(d);
        let single = r["points"].as_array().unwrap();
        let batch = r["batch"].as_array().unwrap();
        assert_eq!(single.len(), pts.len());
        for (j, p) in pts.iter().enumerate() {
            let want = reference(d, p).unwrap();
            check_values(
                &python_values(&single[j]),
                &want,
                &format!("{what} point {j}"),
            );
            check_values(
                &python_values(&batch[j]),
                &want,
                &format!("{what} batch row {j}"),
            );
        }
        if jax {
            let want = reference(d, &pts[0]).unwrap();
            check_values(&python_values(&r["jit"]), &want, &format!("{what} jax.jit"));
            // Automatic differentiation of the emitted loss runs in another order than
            // eomderive's gradient: a looser bound.
            let grad = bits_vec(&r["grad"]);
            let scale = want.g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (a, b) in grad.iter().zip(&want.g) {
                assert!(
                    (a - b).abs() <= 1e-10 * (b.abs() + scale),
                    "{what}: jax.grad(loss) {a:e} against the gradient {b:e}"
                );
            }
        }
    }
}

#[test]
fn emitted_numpy_computes_eomderives_values_on_every_example_and_batch() {
    if let Some(py) = python_with("EOMDERIVE_PYTHON", "numpy", true) {
        check_python(&py, Target::Python);
    }
}

#[test]
fn emitted_jax_computes_eomderives_values_jitted_and_differentiable() {
    if let Some(py) = python_with("EOMDERIVE_JAX_PYTHON", "jax", true) {
        check_python(&py, Target::Jax);
    }
}

// ---------------------------------------------------------------------------------------------
// What is emitted

#[test]
fn emitted_python_for_factorization_at_first_order() {
    let path = common::example("factorization");
    let d = derived(&path, 1);
    snapshot_settings().bind(|| {
        insta::assert_snapshot!(
            "emit_python_factorization",
            render::emit(&d, Target::Python, Some(&source(&path)))
        );
    });
}

#[test]
fn header_names_the_derivation_and_quotes_the_loss() {
    let path = common::example("softmax_wd");
    let d = derived(&path, 2);
    for target in Target::ALL {
        let s = render::emit(&d, target, Some(&source(&path)));
        let c = if target == Target::Rust { "//" } else { "#" };
        for want in [
            format!("{c} Generated by eomderive {}", env!("CARGO_PKG_VERSION")),
            format!("{c} optimizer:    gd (plain gradient descent)"),
            format!("{c} weight decay: λ = 1/100"),
            format!("{c} order:        2"),
            format!("{c} ops:          {} ", d.ops),
            format!("{c}     weight_decay = 0.01"),
        ] {
            assert!(s.contains(&want), "{target}: no `{want}` in\n{s}");
        }
        // The file's `let` names are kept: z[1,1] is z_1_1.
        assert!(s.contains("z_1_1 = "), "{target}: the let name z[1,1]");
    }
    let path = common::example("momentum");
    let s = render::emit(&derived(&path, 1), Target::Python, Some(&source(&path)));
    assert!(s.contains("# optimizer:    heavy-ball, β = 9/10"), "{s}");
    assert!(s.contains("LEADING = 10.0"), "{s}");
}

#[test]
fn long_expressions_are_cut_into_short_statements() {
    // A sum of 300 terms: statements of at most MAX_INLINE operations, never one deep line.
    let text = "param w[300]\nloss = sum(i, w[i]^4)/4 + sum(i, w[i]^2)/2";
    let src = eomderive::lang::Source::inline(text);
    let options = Options {
        order: 1,
        form: Form::Program,
        analyze: false,
        ..Options::default()
    };
    let d = derive(&src, &options).unwrap();
    for target in Target::ALL {
        let s = render::emit(&d, target, Some(&src));
        for line in s
            .lines()
            .filter(|l| l.contains(" = ") && !l.starts_with(['#', '/']))
        {
            let ops = line.matches([' ', '*', '/']).count();
            assert!(
                ops <= 3 * render::MAX_INLINE + 8,
                "{target}: a long statement: {line}"
            );
        }
        // Deterministic.
        assert_eq!(s, render::emit(&d, target, Some(&src)));
    }
}

#[test]
fn names_that_clash_with_python_or_rust_get_another_identifier() {
    // Parameters called like keywords, the emitted code's own names and its temporaries.
    let text = "param lambda = 0.5, theta = 0.2, t1 = 0.3, np = 0.4\nloss = (lambda*theta - t1)^2 * exp(np) + sigmoid(lambda*theta - t1)";
    let src = eomderive::lang::Source::inline(text);
    let d = derive(
        &src,
        &Options {
            order: 1,
            form: Form::Program,
            analyze: false,
            ..Options::default()
        },
    )
    .unwrap();
    let py = render::emit(&d, Target::Python, Some(&src));
    assert!(py.contains("lambda_ = theta[..., 0]"), "{py}");
    assert!(py.contains("theta_ = theta[..., 1]"), "{py}");
    assert!(py.contains("np_ = theta[..., 3]"), "{py}");
    // The parameter t1 keeps its name; the temporaries are t_1, t_2, ...
    assert!(py.contains("    t1 = theta[..., 2]"), "{py}");
    assert!(py.contains("    t_1 = "), "{py}");
    assert_eq!(
        py.matches("\n    t1 = ").count(),
        2,
        "t1 bound once in each function:\n{py}"
    );
    assert!(
        py.contains("PARAMS = (\"lambda\", \"theta\", \"t1\", \"np\")"),
        "{py}"
    );
}

// ---------------------------------------------------------------------------------------------
// The command line

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_eomderive"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn example_arg(name: &str) -> String {
    common::example(name).to_string_lossy().into_owned()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn emit_to_stdout_and_to_a_file_are_the_same_code() {
    let dir = scratch("emit_cli_file");
    let loss = example_arg("tanh_net");
    let printed = run(&[&loss, "--order", "2", "--emit", "rust"]);
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    assert!(printed.stdout.contains("pub fn eom_terms("));
    let file = dir.join("tanh_net.rs");
    let written = run(&[
        &loss,
        "--order",
        "2",
        "--emit",
        "rust",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(written.code, 0, "{}", written.stderr);
    assert_eq!(
        written.stdout, "",
        "with -o nothing goes to standard output"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), printed.stdout);
    assert_eq!(
        files_in(&dir),
        ["tanh_net.rs"],
        "no temporary file left behind"
    );
    // Without --emit, -o writes the report.
    let report = dir.join("report.json");
    let r = run(&[
        &loss,
        "--format",
        "json",
        "--output",
        report.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["order"], 2);
}

#[test]
fn unknown_target_is_a_usage_error_naming_the_targets() {
    let r = run(&[&example_arg("factorization"), "--emit", "julia"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("julia"), "{}", r.stderr);
    assert!(r.stderr.contains("python, jax, rust"), "{}", r.stderr);
}

#[test]
fn emit_with_a_report_flag_is_a_usage_error() {
    for flag in [&["--format", "json"][..], &["--check"][..]] {
        let mut args = vec![
            example_arg("factorization"),
            "--emit".into(),
            "python".into(),
        ];
        args.extend(flag.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&args);
        assert_eq!(r.code, 2, "{flag:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("--emit writes code instead"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn output_to_a_missing_directory_is_a_usage_error_and_writes_nothing() {
    let r = run(&[
        &example_arg("factorization"),
        "--emit",
        "python",
        "-o",
        "/nonexistent-dir/x.py",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("cannot write /nonexistent-dir/x.py: "),
        "{}",
        r.stderr
    );
    assert_eq!(r.stdout, "");
    assert!(!Path::new("/nonexistent-dir").exists());
}

#[test]
fn output_over_a_directory_is_a_usage_error_and_leaves_nothing_behind() {
    let dir = scratch("emit_cli_dir");
    std::fs::create_dir(dir.join("x.py")).unwrap();
    let target = dir.join("x.py");
    let r = run(&[
        &example_arg("factorization"),
        "--emit",
        "python",
        "-o",
        target.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("cannot write"), "{}", r.stderr);
    assert_eq!(files_in(&dir), ["x.py"]);
    assert!(target.is_dir());
}

#[test]
fn a_write_that_fails_half_way_leaves_the_old_file_whole() {
    // The file size limit (ulimit -f) stops the write after the first kilobyte or less;
    // SIGXFSZ ignored, so the write fails with EFBIG instead of killing the process.
    let dir = scratch("emit_cli_halfway");
    let file = dir.join("tanh_net.py");
    std::fs::write(&file, "old = True\n").unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_eomderive"))
        .args([
            &example_arg("tanh_net"),
            "--order",
            "2",
            "--emit",
            "python",
            "-o",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "old = True\n");
    assert_eq!(files_in(&dir), ["tanh_net.py"], "nothing left behind");
    // A derivation that fails writes nothing either.
    let r = run(&["(u*v - ", "--emit", "python", "-o", file.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "old = True\n");
}

#[test]
fn generic_emission_is_for_jax_only() {
    for target in ["python", "rust"] {
        let r = run(&["--generic", "--emit", target]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("the generic form is emitted for jax only"),
            "{}",
            r.stderr
        );
    }
    // JAX is wired (tests/generic_jax.rs runs the module): GD's table, up to order 8.
    let r = run(&["--generic", "--order", "2", "--emit", "jax"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("def xi(loss_fn, params, order=ORDER):"));
    let r = run(&["--generic", "--order", "9", "--emit", "jax"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("goes to order 8"), "{}", r.stderr);
    let r = run(&["--generic", "--optimizer", "heavy-ball", "--emit", "jax"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("gradient descent's tree table"),
        "{}",
        r.stderr
    );
}
