//! The emitted generic JAX module (`render::generic_jax`), run by a Python with JAX.
//!
//! These tests need `EOMDERIVE_JAX_PYTHON`, a Python interpreter that can `import jax`
//! (`.ci/run` makes one: `target/pyvenv`, from `.ci/requirements.txt`). Without it each test
//! fails under CI (`CI` set) and otherwise says so on standard error and passes without
//! checking anything:
//!
//!     EOMDERIVE_JAX_PYTHON=target/pyvenv/bin/python cargo test --release --test generic_jax
//!
//! What they check, each independently of eomderive's symbolic route where one exists:
//! the quadratic closed form ξ_k = A^{k+1}θ/(k+1) (DESIGN.md §2.3) for a random SPD A,
//! heavy-ball's ξ_1, ξ_2 on a quadratic from its closed forms (§2.4), non-quadratic losses
//! written directly in JAX against eomderive's loss-specific values, pytrees in and out,
//! `jax.jit`, and `eom_rhs`; and, through the command line, the generic module against every
//! GD example's own emitted JAX module (`EX --emit jax`).

mod common;

use std::path::PathBuf;
use std::process::Command;

use eomderive::lang::Source;
use eomderive::series::{optimizer_series, GenericSeries, Method, Optimizer};
use eomderive::Options;
use num_rational::BigRational;
use serde_json::{json, Value};

/// The Python with JAX, or `None` after saying on stderr that the test is skipped; under CI
/// (`CI` set) a missing one fails the test.
fn python(test: &str) -> Option<String> {
    match std::env::var("EOMDERIVE_JAX_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ if std::env::var_os("CI").is_some() => panic!(
            "{test}: no python with jax under CI: set EOMDERIVE_JAX_PYTHON (.ci/run makes a venv)"
        ),
        _ => {
            // Written to the process's stderr directly, past the test harness's capture, so
            // that a skip is seen.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: set EOMDERIVE_JAX_PYTHON to a python with jax installed \
                 (e.g. `.ci/run`'s venv target/pyvenv, from .ci/requirements.txt) to run it"
            );
            None
        }
    }
}

/// The driver: imports the emitted module, evaluates the case given as JSON on stdin and
/// prints the results as JSON.
const DRIVER: &str = r#"
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("gen", sys.argv[1])
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)
import jax, jax.numpy as jnp

case = json.load(sys.stdin)
kind = case["loss"]
if kind == "quadratic":
    A = jnp.asarray(case["A"])
    loss = lambda t: 0.5 * t @ A @ t
elif kind == "factorization":
    loss = lambda t: (t[0] * t[1] - 1.0) ** 2 / 2.0
elif kind == "mixed":
    def loss(t):
        u, v, w = t[0], t[1], t[2]
        return jnp.log(1.0 + jnp.exp(u * v - w)) + jnp.sin(u) * w**2 / 2.0 + jnp.tanh(v + w) ** 2
else:
    raise SystemExit("unknown loss " + kind)

theta = jnp.asarray(case["theta"], dtype=jnp.float64)
out = {"order": gen.ORDER, "leading": gen.LEADING}
out["xi"] = [list(map(float, x)) for x in gen.xi(loss, theta)]
out["jit"] = [list(map(float, x)) for x in jax.jit(lambda p: gen.xi(loss, p))(theta)]
out["xi_low"] = [list(map(float, x)) for x in gen.xi(loss, theta, order=1)]
eta = case["eta"]
out["rhs"] = {str(k): list(map(float, jax.jit(gen.eom_rhs(loss, eta, order=k))(theta)))
              for k in range(gen.ORDER + 1)}
if kind == "factorization":
    # The same loss on pytrees: a dict of scalars, and a dict holding an array and a list.
    d = gen.xi(lambda p: (p["u"] * p["v"] - 1.0) ** 2 / 2.0, {"u": theta[0], "v": theta[1]})
    out["dict"] = [{k: float(v) for k, v in x.items()} for x in d]
    nested = {"a": jnp.stack([theta[0]]), "b": [theta[1]]}
    n = jax.jit(lambda p: gen.xi(lambda q: (q["a"][0] * q["b"][0] - 1.0) ** 2 / 2.0, p))(nested)
    out["nested"] = [{"a_shape": list(x["a"].shape), "a": float(x["a"][0]),
                      "b_len": len(x["b"]), "b": float(x["b"][0])} for x in n]
    rhs = gen.eom_rhs(lambda p: (p["u"] * p["v"] - 1.0) ** 2 / 2.0, eta)({"u": theta[0], "v": theta[1]})
    out["dict_rhs"] = {k: float(v) for k, v in rhs.items()}
print(json.dumps(out))
"#;

/// Emits `series` as a module, runs the driver on `case`, returns its JSON.
fn run(python: &str, label: &str, series: &GenericSeries, case: Value) -> Value {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("generic_jax");
    std::fs::create_dir_all(&dir).unwrap();
    let module = dir.join(format!("{label}.py"));
    std::fs::write(&module, eomderive::render::generic_jax(series)).unwrap();
    let driver = dir.join("driver.py");
    std::fs::write(&driver, DRIVER).unwrap();
    let module = module.to_string_lossy().into_owned();
    run_driver(python, &driver, &[&module], &case, label)
}

/// Runs a Python driver script with `args`, `case` as JSON on its standard input, and parses
/// the JSON it prints; fails the test, with the driver's standard error, when it fails.
fn run_driver(
    python: &str,
    driver: &std::path::Path,
    args: &[&str],
    case: &Value,
    label: &str,
) -> Value {
    let mut child = Command::new(python)
        .arg(driver)
        .args(args)
        .env("JAX_PLATFORMS", "cpu")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run EOMDERIVE_JAX_PYTHON={python}: {e}"));
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(case.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the driver failed on {label}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn vector(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn vectors(v: &Value) -> Vec<Vec<f64>> {
    v.as_array().unwrap().iter().map(vector).collect()
}

/// |got − want| ≤ tol · max(1, |want|) entry by entry.
fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: got {g:e}, want {w:e} (difference {:e})",
            (g - w).abs()
        );
    }
}

/// A fixed-seed xorshift in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
}

fn mat_vec(a: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
    a.iter()
        .map(|row| row.iter().zip(x).map(|(r, v)| r * v).sum())
        .collect()
}

/// A random SPD matrix B Bᵀ/n + I/2 (eigenvalues about 0.5..3) and a random point.
fn spd(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rng = Rng(seed);
    let b: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..n).map(|_| rng.next()).collect())
        .collect();
    let a = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    let s: f64 = (0..n).map(|k| b[i][k] * b[j][k]).sum();
                    s / n as f64 * 3.0 + if i == j { 0.5 } else { 0.0 }
                })
                .collect()
        })
        .collect();
    let theta = (0..n).map(|_| rng.next()).collect();
    (a, theta)
}

/// A^p θ.
fn power(a: &[Vec<f64>], theta: &[f64], p: usize) -> Vec<f64> {
    (0..p).fold(theta.to_vec(), |v, _| mat_vec(a, &v))
}

#[test]
fn quadratic_closed_form_orders_1_to_4() {
    let Some(py) = python("quadratic_closed_form_orders_1_to_4") else {
        return;
    };
    let (a, theta) = spd(6, 0x9e37_79b9_7f4a_7c15);
    let eta: f64 = 0.1;
    let out = run(
        &py,
        "gd4",
        &eomderive::generic(4).unwrap(),
        json!({"loss": "quadratic", "A": a, "theta": theta, "eta": eta}),
    );
    assert_eq!(out["order"], 4);
    let xi = vectors(&out["xi"]);
    assert_eq!(xi.len(), 4);
    let mut rhs = power(&a, &theta, 1).iter().map(|x| -x).collect::<Vec<_>>();
    assert_close(&vector(&out["rhs"]["0"]), &rhs, 1e-12, "eom_rhs order 0");
    for k in 1..=4 {
        // ξ_k = A^{k+1} θ / (k+1), DESIGN.md §2.3.
        let want: Vec<f64> = power(&a, &theta, k + 1)
            .iter()
            .map(|x| x / (k + 1) as f64)
            .collect();
        assert!(want.iter().map(|x| x.abs()).fold(0.0, f64::max) > 0.1);
        assert_close(&xi[k - 1], &want, 1e-10, &format!("ξ_{k}"));
        assert_close(
            &vectors(&out["jit"])[k - 1],
            &want,
            1e-10,
            &format!("jit ξ_{k}"),
        );
        for (r, w) in rhs.iter_mut().zip(&want) {
            *r -= eta.powi(k as i32) * w;
        }
        assert_close(
            &vector(&out["rhs"][k.to_string()]),
            &rhs,
            1e-10,
            &format!("eom_rhs order {k}"),
        );
    }
    // order=1 computes only ξ_1.
    let low = vectors(&out["xi_low"]);
    assert_eq!(low.len(), 1);
    assert_close(&low[0], &xi[0], 1e-14, "xi(order=1)");
}

#[test]
fn heavy_ball_table_on_a_quadratic() {
    let Some(py) = python("heavy_ball_table_on_a_quadratic") else {
        return;
    };
    // β = 1/2: F_0 = −2 g, ξ_1 = (1+β)/(2(1−β)³) H g = 6 A²θ,
    // ξ_2 = (1+4β+β²)/(3(1−β)⁵) H² g = 104/3 A³θ (T = 0), DESIGN.md §2.4.
    let half = BigRational::new(1.into(), 2.into());
    let series = optimizer_series(&Optimizer::new(Method::HeavyBall, Some(half)), 2).unwrap();
    let (a, theta) = spd(4, 12345);
    let out = run(
        &py,
        "hb2",
        &series,
        json!({"loss": "quadratic", "A": a, "theta": theta, "eta": 0.01}),
    );
    assert_eq!(out["leading"].as_f64(), Some(2.0));
    let xi = vectors(&out["xi"]);
    let scale =
        |p: usize, c: f64| -> Vec<f64> { power(&a, &theta, p).iter().map(|x| c * x).collect() };
    assert_close(&xi[0], &scale(2, 6.0), 1e-10, "heavy-ball ξ_1");
    assert_close(&xi[1], &scale(3, 104.0 / 3.0), 1e-10, "heavy-ball ξ_2");
    assert_close(
        &vector(&out["rhs"]["0"]),
        &scale(1, -2.0),
        1e-12,
        "heavy-ball F_0",
    );
}

/// eomderive's loss-specific ξ_1..ξ_order of `loss` at `at`.
fn loss_specific(loss: &str, at: &str, order: usize) -> Vec<Vec<f64>> {
    let options = Options {
        order,
        at: Some(at.into()),
        analyze: false,
        ..Options::default()
    };
    let d = eomderive::derive(&Source::inline(loss), &options).unwrap();
    d.evaluation.unwrap().xi
}

#[test]
fn factorization_loss_and_pytrees_agree_with_the_loss_specific_values() {
    let Some(py) = python("factorization_loss_and_pytrees_agree_with_the_loss_specific_values")
    else {
        return;
    };
    let want = loss_specific("(u*v - 1)^2/2", "u=0.3,v=-1.2", 3);
    let eta: f64 = 0.05;
    let out = run(
        &py,
        "gd3",
        &eomderive::generic(3).unwrap(),
        json!({"loss": "factorization", "theta": [0.3, -1.2], "eta": eta}),
    );
    let xi = vectors(&out["xi"]);
    assert_eq!(xi.len(), 3);
    for k in 0..3 {
        assert_close(&xi[k], &want[k], 1e-10, &format!("ξ_{}", k + 1));
        assert_close(
            &vectors(&out["jit"])[k],
            &want[k],
            1e-10,
            &format!("jit ξ_{}", k + 1),
        );
        // A dict of scalars in, dicts out, with the same values.
        let d = &out["dict"][k];
        assert_eq!(d.as_object().unwrap().len(), 2);
        let got = [d["u"].as_f64().unwrap(), d["v"].as_f64().unwrap()];
        assert_close(&got, &want[k], 1e-10, &format!("dict ξ_{}", k + 1));
        // {"a": array of shape (1,), "b": [scalar]} keeps its shapes.
        let n = &out["nested"][k];
        assert_eq!(n["a_shape"], json!([1]));
        assert_eq!(n["b_len"], 1);
        let got = [n["a"].as_f64().unwrap(), n["b"].as_f64().unwrap()];
        assert_close(&got, &want[k], 1e-10, &format!("nested ξ_{}", k + 1));
    }
    // eom_rhs on the dict: −g − Σ η^k ξ_k, with g = (v(uv − 1), u(uv − 1)).
    let (u, v) = (0.3f64, -1.2f64);
    let r = u * v - 1.0;
    let mut rhs = [-v * r, -u * r];
    for (k, x) in want.iter().enumerate() {
        for i in 0..2 {
            rhs[i] -= eta.powi(k as i32 + 1) * x[i];
        }
    }
    let d = &out["dict_rhs"];
    let got = [d["u"].as_f64().unwrap(), d["v"].as_f64().unwrap()];
    assert_close(&got, &rhs, 1e-12, "dict eom_rhs");
}

#[test]
fn transcendental_loss_order_4_agrees_with_the_loss_specific_values() {
    let Some(py) = python("transcendental_loss_order_4_agrees_with_the_loss_specific_values")
    else {
        return;
    };
    let loss = "log(1 + exp(u*v - w)) + sin(u)*w^2/2 + tanh(v + w)^2";
    let want = loss_specific(loss, "u=0.7,v=-0.4,w=0.9", 4);
    let out = run(
        &py,
        "gd4_mixed",
        &eomderive::generic(4).unwrap(),
        json!({"loss": "mixed", "theta": [0.7, -0.4, 0.9], "eta": 0.1}),
    );
    let xi = vectors(&out["xi"]);
    assert_eq!(xi.len(), 4);
    for k in 0..4 {
        // Every ξ_k is far from zero here, so agreement is not vacuous.
        assert!(want[k].iter().any(|x| x.abs() > 1e-3), "ξ_{}", k + 1);
        assert_close(&xi[k], &want[k], 1e-10, &format!("ξ_{}", k + 1));
        assert_close(
            &vectors(&out["jit"])[k],
            &want[k],
            1e-10,
            &format!("jit ξ_{}", k + 1),
        );
    }
}

/// Imports every example's own module (`EX --emit jax`) and the generic one, and prints, per
/// example and point, the generic ξ_1..ξ_K and `eom_rhs` next to the loss-specific ones.
const EXAMPLES_DRIVER: &str = r#"
import importlib.util, json, sys
import numpy as np

def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

case = json.load(sys.stdin)
gen = load("gen", case["generic"])
import jax.numpy as jnp
eta = case["eta"]
vec = lambda x: [float(v) for v in np.asarray(x).reshape(-1)]
out = {"order": gen.ORDER, "leading": gen.LEADING, "examples": []}
for ex in case["examples"]:
    spec = load("spec_" + ex["name"], ex["path"])
    theta0 = np.asarray(spec.THETA0, dtype=np.float64)
    rng = np.random.default_rng(20240611)
    points = [theta0, theta0 + 0.05 * rng.uniform(-1, 1, theta0.shape)]
    res = {"name": ex["name"], "order": spec.ORDER, "leading": spec.LEADING, "points": []}
    for theta in points:
        g, xis = spec.eom_terms(jnp.asarray(theta))
        want_rhs = -spec.LEADING * np.asarray(g) - sum(
            eta ** (k + 1) * np.asarray(xis[k]) for k in range(spec.ORDER))
        res["points"].append({
            "xi": [vec(x) for x in gen.xi(spec.loss, jnp.asarray(theta))],
            "want_xi": [vec(x) for x in xis],
            "rhs": vec(gen.eom_rhs(spec.loss, eta)(jnp.asarray(theta))),
            "want_rhs": vec(want_rhs),
        })
    out["examples"].append(res)
print(json.dumps(out))
"#;

/// Runs the built eomderive with `args`, which must succeed.
fn eomderive_cli(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_eomderive"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "eomderive {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// |got − want| ≤ tol · max_i |want_i| + 1e-300, entry by entry: relative to the vector's
/// largest component, so that a small component beside large ones is not held to more digits
/// than the computation has.
fn assert_close_to_scale(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g.is_finite() && (g - w).abs() <= tol * scale + 1e-300,
            "{what}[{i}]: got {g:e}, want {w:e} (difference {:e}, scale {scale:e})",
            (g - w).abs()
        );
    }
}

/// The done-when of the generic module: on every example trained by plain GD (weight decay
/// included, which the emitted `loss` carries), `--generic --order 3 --emit jax` applied to
/// the example's own emitted `loss` gives the example's loss-specific ξ_1..ξ_3 and EoM
/// right-hand side to 1e-10, at the file's point and one point near it.
#[test]
fn generic_module_agrees_with_every_gd_examples_emitted_values() {
    let Some(py) = python("generic_module_agrees_with_every_gd_examples_emitted_values") else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("generic_jax_examples");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let generic_path = dir.join("gen.py");
    eomderive_cli(&[
        "--generic",
        "--order",
        "3",
        "--emit",
        "jax",
        "-o",
        generic_path.to_str().unwrap(),
    ]);
    let mut examples = Vec::new();
    for path in common::examples() {
        let settings = common::load(&path).settings;
        let gd = settings.optimizer.is_none_or(|(m, _)| m == Method::Gd);
        if !gd || settings.batches.is_some() {
            continue;
        }
        let name = common::stem(&path).replace('-', "_");
        let spec = dir.join(format!("spec_{name}.py"));
        eomderive_cli(&[
            path.to_str().unwrap(),
            "--order",
            "3",
            "--emit",
            "jax",
            "-o",
            spec.to_str().unwrap(),
        ]);
        examples.push(json!({"name": name, "path": spec}));
    }
    // Every example but heavy-ball's, SAM's and the three SGD ones.
    assert!(examples.len() >= 8, "{} GD examples", examples.len());
    let eta = 0.1;
    let case = json!({"generic": generic_path, "examples": examples, "eta": eta});
    let driver = dir.join("driver.py");
    std::fs::write(&driver, EXAMPLES_DRIVER).unwrap();
    let out = run_driver(&py, &driver, &[], &case, "the examples");
    assert_eq!(out["order"], 3);
    assert_eq!(out["leading"].as_f64(), Some(1.0));
    let results = out["examples"].as_array().unwrap();
    assert_eq!(results.len(), examples.len());
    for r in results {
        let name = r["name"].as_str().unwrap();
        assert_eq!(r["order"], 3, "{name}");
        assert_eq!(r["leading"].as_f64(), Some(1.0), "{name}");
        for (j, p) in r["points"].as_array().unwrap().iter().enumerate() {
            let (xi, want) = (vectors(&p["xi"]), vectors(&p["want_xi"]));
            assert_eq!(xi.len(), 3, "{name}");
            assert_eq!(want.len(), 3, "{name}");
            for k in 0..3 {
                let what = format!("{name} point {j} ξ_{}", k + 1);
                // Not vacuous: every ξ_k is nonzero at these points.
                assert!(want[k].iter().any(|x| x.abs() > 1e-12), "{what} is zero");
                assert_close_to_scale(&xi[k], &want[k], 1e-10, &what);
            }
            assert_close_to_scale(
                &vector(&p["rhs"]),
                &vector(&p["want_rhs"]),
                1e-10,
                &format!("{name} point {j} eom_rhs"),
            );
        }
    }
}
