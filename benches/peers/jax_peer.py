#!/usr/bin/env python3
"""Peer benchmark: eomderive's counter terms ξ_1..ξ_3 computed with JAX autodiff.

What it measures
----------------
For each of the eight example losses (``examples/<loss>.expr``, transcribed by
hand below) the script builds one jitted JAX function θ ↦ (ξ_1, ξ_2, ξ_3),
stacked into a 3×n float64 array, from the closed forms (g = ∇f, H = ∇²f)

    ξ_1 = ½ H g
    ξ_2 = (1/12) ∇³f(g, g) + (1/3) H H g
    ξ_3 = (1/12) ∇³f(H g, g) + (1/12) H ∇³f(g, g) + (1/4) H H H g

where H v is a forward-over-reverse product (``jax.jvp`` of ``jax.grad(f)``)
and ∇³f(u, v) is a jvp of θ ↦ H(θ) u along v, with u held fixed.  No
symbolic derivation is involved: this is what a user of an autodiff framework
would write instead of using eomderive's generated code.

Per loss it reports

* JAX per call (µs): one Python call of the jitted function on a device array,
  followed by ``block_until_ready``; the median over ``--repeat`` × 1000
  individually timed calls.  This is dominated by JAX's dispatch overhead.
  By default JAX's CPU client dispatches asynchronously: a call that is not
  trivially cheap is handed to a worker thread and ``block_until_ready`` waits
  for it, so on a small, busy machine the per-call times are bimodal (a
  thread wake-up costs tens of µs) and the median can jump between runs.
  ``--sync-dispatch`` sets ``jax_cpu_enable_async_dispatch = False`` (before
  the backend starts), which runs each call on the calling thread; the JSON
  also keeps the 10th and 90th percentiles.
* JAX in-graph (µs/eval): one jitted ``lax.fori_loop`` of 1000 evaluations at
  the points θ + 1e-9·i (i = 0..999), summed into an accumulator that is
  returned, so XLA can neither hoist the body out of the loop nor drop it;
  the time of one call of that loop / 1000, median over ``--repeat`` × 10
  calls.  It includes the loop's own per-iteration cost (reported separately
  in the JSON as ``loop_overhead_us``, measured with a body that only adds
  the shifted point) and 1/1000 of one dispatch.
* max rel. diff: max over k of ‖ξ_k(JAX) − ξ_k(eomderive)‖₂ / ‖ξ_k(eomderive)‖₂
  at the loss's initial point.  eomderive's values come from
  ``cargo run --release --quiet -- examples/<loss>.expr --order 3 --format json``
  (field ``evaluation.xi``), run from the repository root, or from
  ``--eomderive-json DIR`` holding ``<loss>.json`` files made that way.  The
  script also checks that eomderive evaluated at the same point, with the
  same parameter order, as the transcription here.

Compilation is excluded from all timings (every function is compiled and run
once before timing).  Everything is float64 on the CPU backend.

Self-checks: before anything else, on a 2×2 quadratic f = ½θᵀAθ the JAX
closed forms must give ξ_k = A^{k+1}θ/(k+1) to 1e-13 (an AssertionError ends
the script); every loss must agree with eomderive to 1e-10 relative
(``--tol``), and its eomderive run must succeed and use the same point and
parameter order; otherwise the table shows ``nan`` or the large difference,
the reasons go to stderr (and the JSON's ``failures``), and the exit status
is 1.

Running
-------
    pip install -r benches/peers/requirements-jax.txt     # jax, jaxlib (CPU)
    python3 benches/peers/jax_peer.py [--losses name,...] [--repeat 5]
        [--json out.json] [--eomderive-json DIR] [--tol 1e-10]
        [--sync-dispatch]

It prints a Markdown table (loss, JAX per call, JAX in-graph, max rel. diff
vs eomderive) and, with ``--json``, writes all measurements to a file.

On some processors the environment sets OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE, which can make numpy slow.  If so, unset them for this
command only, e.g.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 benches/peers/jax_peer.py

The script itself never changes the environment.  Timings depend on the
machine and on what else runs on it: quote its core count with them, and
keep the machine otherwise idle (with async dispatch a call uses a second
thread, so on 2 cores a concurrent build shows up directly in the per-call
column).
"""

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")

import jax.numpy as jnp  # noqa: E402  (must follow the x64 switch)
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
JAXLIB_VERSION = importlib.metadata.version("jaxlib")
LOOP_EVALS = 1000  # evaluations per in-graph loop
CALLS_PER_ROUND = 1000  # individually timed calls per --repeat round (per call)
LOOPS_PER_ROUND = 10  # loop calls per --repeat round (in-graph)


# --------------------------------------------------------------------------
# The eight losses: (f, initial point θ0, parameter names in eomderive's order).
# --------------------------------------------------------------------------


def _factorization():
    def f(th):
        u, v = th[0], th[1]
        return (u * v - 1.0) ** 2 / 2.0

    return f, [0.3, -1.2], ["u", "v"]


def _linear_regression():
    X = jnp.array([[1.0, 0.5], [0.2, -1.0], [-0.7, 0.3], [1.5, 1.1]])
    y = jnp.array([0.9, -0.4, 0.1, 1.8])

    def f(w):
        r = X @ w - y
        return jnp.mean(r**2) / 2.0

    return f, [0.1, -0.2], ["w[1]", "w[2]"]


def _logistic():
    X = jnp.array([[1.0, 2.0], [-1.5, 0.5], [0.3, -1.0], [2.0, 1.0]])
    y = jnp.array([1.0, -1.0, -1.0, 1.0])

    def f(th):
        w, b = th[:2], th[2]
        return jnp.mean(jax.nn.softplus(-y * (X @ w + b)))

    return f, [0.2, -0.1, 0.05], ["w[1]", "w[2]", "b"]


def _tanh_net():
    x = jnp.array([0.5, -1.0, 2.0])
    y = jnp.array([0.2, 0.4, -0.3])

    def f(th):
        a, b = th[:2], th[2:]
        out = jnp.tanh(x[:, None] * b[None, :]) @ a
        return jnp.mean((out - y) ** 2) / 2.0

    return f, [0.3, -0.2, 0.8, 0.5], ["a[1]", "a[2]", "b[1]", "b[2]"]


def _scale_invariant():
    X = jnp.array([[1.0, 0.0, 0.5], [0.2, 1.0, -0.3], [-0.4, 0.6, 1.0]])
    y = jnp.array([0.5, -0.2, 0.8])

    def f(th):
        w, s = th[:3], th[3]
        z = s * (X @ w) / jnp.sqrt(jnp.sum(w**2))
        return jnp.mean((z - y) ** 2) / 2.0

    return f, [0.6, -0.3, 0.9, 1.2], ["w[1]", "w[2]", "w[3]", "s"]


def _softmax():
    X = jnp.array([[1.0, -0.5], [0.3, 0.8], [-1.2, 0.4]])
    Y = jnp.eye(3)

    def f(th):
        W = th.reshape(3, 2)  # W[c, j], row-major
        z = X @ W.T  # z[i, c]
        return jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.sum(Y * z, axis=1))

    names = [f"W[{c},{j}]" for c in (1, 2, 3) for j in (1, 2)]
    return f, [0.1, -0.2, 0.0, 0.3, -0.1, 0.1], names


def _normalized_layer_wd():
    x = jnp.array([1.0, -0.5, 0.3])
    y = 0.4
    lam = 0.01  # weight_decay = 0.01 in the file: + (λ/2)‖θ‖²

    def f(th):
        V, a = th[:6].reshape(2, 3), th[6:]  # V[i, j], row-major, then a
        n = jnp.sqrt(jnp.sum(V**2, axis=1))
        h = jnp.tanh((V @ x) / n)
        return (jnp.sum(a * h) - y) ** 2 / 2.0 + lam / 2.0 * jnp.sum(th**2)

    names = [f"V[{i},{j}]" for i in (1, 2) for j in (1, 2, 3)] + ["a[1]", "a[2]"]
    return f, [0.8, -0.4, 0.2, 0.1, 0.7, -0.5, 0.5, -0.3], names


def _softmax_wd():
    X = jnp.array([[1.0, -0.5], [0.3, 0.8], [-1.2, 0.4]])
    Y = jnp.eye(3)
    lam = 0.01

    def f(th):
        W = th.reshape(3, 2)
        z = X @ W.T
        data = jnp.mean(jax.nn.logsumexp(z, axis=1) - jnp.sum(Y * z, axis=1))
        return data + lam / 2.0 * jnp.sum(th**2)

    names = [f"W[{c},{j}]" for c in (1, 2, 3) for j in (1, 2)]
    return f, [0.4, -0.2, 0.0, 0.3, -0.1, 0.6], names


LOSSES = {
    "factorization": _factorization,
    "linear_regression": _linear_regression,
    "logistic": _logistic,
    "tanh_net": _tanh_net,
    "scale_invariant": _scale_invariant,
    "softmax": _softmax,
    "normalized_layer_wd": _normalized_layer_wd,
    "softmax_wd": _softmax_wd,
}


# --------------------------------------------------------------------------
# Counter terms from the closed forms, by nested forward-over-reverse AD.
# --------------------------------------------------------------------------


def counter_terms(f):
    """Return θ ↦ stack(ξ_1, ξ_2, ξ_3) (not jitted) for the loss f."""
    grad = jax.grad(f)

    def hess(th, v):  # H(θ) v
        return jax.jvp(grad, (th,), (v,))[1]

    def third(th, u, v):  # ∇³f(θ)(u, v): derivative of θ ↦ H(θ) u along v
        return jax.jvp(lambda t: hess(t, u), (th,), (v,))[1]

    def xi(th):
        g = grad(th)
        hg = hess(th, g)
        hhg = hess(th, hg)
        hhhg = hess(th, hhg)
        tgg = third(th, g, g)
        xi1 = 0.5 * hg
        xi2 = tgg / 12.0 + hhg / 3.0
        xi3 = third(th, hg, g) / 12.0 + hess(th, tgg) / 12.0 + hhhg / 4.0
        return jnp.stack([xi1, xi2, xi3])

    return xi


def in_graph_loop(xi, n):
    """Jitted θ ↦ Σ_{i<LOOP_EVALS} ξ(θ + 1e-9·i), and the same loop with a trivial body."""

    def run(body_fn):
        def loop(th):
            def body(i, acc):
                return acc + body_fn(th + 1e-9 * i.astype(th.dtype))

            return lax.fori_loop(0, LOOP_EVALS, body, jnp.zeros((3, n), th.dtype))

        return jax.jit(loop)

    return run(xi), run(lambda t: jnp.broadcast_to(t, (3, n)))


# --------------------------------------------------------------------------
# Checks.
# --------------------------------------------------------------------------


def self_check_quadratic():
    """On f = ½θᵀAθ: ξ_k = A^{k+1} θ / (k+1) for k = 1, 2, 3."""
    A = jnp.array([[2.0, 0.5], [0.5, 1.0]])
    th = jnp.array([0.7, -0.4])
    got = np.asarray(jax.jit(counter_terms(lambda t: 0.5 * t @ A @ t))(th))
    An = np.asarray(A)
    for k in (1, 2, 3):
        want = np.linalg.matrix_power(An, k + 1) @ np.asarray(th) / (k + 1)
        err = np.linalg.norm(got[k - 1] - want) / np.linalg.norm(want)
        assert err < 1e-13, f"quadratic self-check: ξ_{k} off by {err:.2e}"


def eomderive_result(name, json_dir):
    """eomderive's JSON output for examples/<name>.expr at order 3."""
    if json_dir is not None:
        with open(Path(json_dir) / f"{name}.json") as fh:
            return json.load(fh)
    cmd = ["cargo", "run", "--release", "--quiet", "--",
           f"examples/{name}.expr", "--order", "3", "--format", "json"]
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        tail = " | ".join(out.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"`{' '.join(cmd)}` exited {out.returncode}: {tail}")
    return json.loads(out.stdout)


def compare(name, theta0, names, jax_xi, eo):
    """Max over k of the norm-wise relative difference; checks point and order first."""
    if eo["params"] != names:
        raise AssertionError(f"eomderive params {eo['params']} != {names}")
    at = [eo["evaluation"]["at"][p] for p in names]
    if not np.allclose(at, theta0, rtol=0, atol=1e-15):
        raise AssertionError(f"eomderive evaluated at {at}, not {theta0}")
    ref = np.array(eo["evaluation"]["xi"], dtype=np.float64)
    if ref.shape != jax_xi.shape:
        raise AssertionError(f"shapes {ref.shape} vs {jax_xi.shape}")
    return max(
        float(np.linalg.norm(jax_xi[k] - ref[k]) / np.linalg.norm(ref[k]))
        for k in range(ref.shape[0])
    )


# --------------------------------------------------------------------------
# Timing.
# --------------------------------------------------------------------------


def time_per_call(fn, x, repeat):
    fn(x).block_until_ready()  # compile + warm up
    for _ in range(200):
        fn(x).block_until_ready()
    samples = []
    clock = time.perf_counter_ns
    for _ in range(repeat * CALLS_PER_ROUND):
        t0 = clock()
        fn(x).block_until_ready()
        samples.append(clock() - t0)
    q = statistics.quantiles(samples, n=10)
    return statistics.median(samples) / 1e3, q[0] / 1e3, q[-1] / 1e3  # µs


def time_loop(loop, x, repeat):
    loop(x).block_until_ready()  # compile + warm up
    loop(x).block_until_ready()
    samples = []
    for _ in range(repeat * LOOPS_PER_ROUND):
        t0 = time.perf_counter_ns()
        loop(x).block_until_ready()
        samples.append(time.perf_counter_ns() - t0)
    per_eval = [s / 1e3 / LOOP_EVALS for s in samples]  # µs per evaluation
    return statistics.median(per_eval), min(per_eval)


# --------------------------------------------------------------------------


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--losses", default=",".join(LOSSES),
                    help="comma-separated subset of: " + ", ".join(LOSSES))
    ap.add_argument("--repeat", type=int, default=5,
                    help=f"timing rounds: {CALLS_PER_ROUND} timed calls and "
                         f"{LOOPS_PER_ROUND} loop runs per round (default 5)")
    ap.add_argument("--json", metavar="OUT", help="write all measurements here")
    ap.add_argument("--eomderive-json", metavar="DIR",
                    help="read DIR/<loss>.json instead of running cargo")
    ap.add_argument("--tol", type=float, default=1e-10,
                    help="max allowed relative difference (default 1e-10)")
    ap.add_argument("--sync-dispatch", action="store_true",
                    help="set jax_cpu_enable_async_dispatch=False (see the docstring)")
    args = ap.parse_args(argv)
    if args.sync_dispatch:  # must precede the first computation
        jax.config.update("jax_cpu_enable_async_dispatch", False)

    names = [s.strip() for s in args.losses.split(",") if s.strip()]
    unknown = [n for n in names if n not in LOSSES]
    if unknown:
        ap.error(f"unknown loss(es): {', '.join(unknown)}")
    if args.repeat < 1:
        ap.error("--repeat must be ≥ 1")

    self_check_quadratic()

    results = []
    failures = []
    for name in names:
        f, theta0, pnames = LOSSES[name]()
        n = len(theta0)
        x = jax.device_put(jnp.array(theta0, dtype=jnp.float64))
        xi = counter_terms(f)
        xi_jit = jax.jit(xi)
        loop, empty_loop = in_graph_loop(xi, n)

        values = np.asarray(xi_jit(x))
        assert values.dtype == np.float64
        try:
            rel = compare(name, theta0, pnames, values, eomderive_result(name, args.eomderive_json))
        except (AssertionError, RuntimeError, OSError, KeyError, ValueError) as e:
            failures.append(f"{name}: {e}")
            rel = float("nan")
        else:
            if not rel <= args.tol:
                failures.append(f"{name}: max rel. diff {rel:.2e} > {args.tol:.0e}")

        per_call, per_call_p10, per_call_p90 = time_per_call(xi_jit, x, args.repeat)
        in_graph, in_graph_min = time_loop(loop, x, args.repeat)
        overhead, _ = time_loop(empty_loop, x, args.repeat)
        results.append({
            "loss": name,
            "n_params": n,
            "per_call_us": per_call,
            "per_call_us_p10": per_call_p10,
            "per_call_us_p90": per_call_p90,
            "in_graph_us_per_eval": in_graph,
            "in_graph_us_per_eval_min": in_graph_min,
            "loop_overhead_us": overhead,
            "max_rel_diff": rel,
            "xi_jax": values.tolist(),
        })
        print(f"# {name}: done", file=sys.stderr, flush=True)

    print("| loss | JAX per call (µs) | JAX in-graph (µs/eval) | max rel. diff vs eomderive |")
    print("| --- | ---: | ---: | ---: |")
    for r in results:
        print(f"| {r['loss']} | {r['per_call_us']:.2f} | {r['in_graph_us_per_eval']:.3f} "
              f"| {r['max_rel_diff']:.1e} |")
    print()
    print(f"jax {jax.__version__}, jaxlib {JAXLIB_VERSION}, backend "
          f"{jax.default_backend()}, float64, "
          f"{'sync' if args.sync_dispatch else 'async (default)'} dispatch; "
          f"{os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}; per call: median of "
          f"{args.repeat * CALLS_PER_ROUND} calls; in-graph: median of "
          f"{args.repeat * LOOPS_PER_ROUND} loops of {LOOP_EVALS} evaluations")
    print("(in-graph includes the loop's own cost: "
          + ", ".join(f"{r['loss']} {1e3 * r['loop_overhead_us']:.0f} ns" for r in results)
          + " per iteration with an empty body)")

    if args.json:
        meta = {
            "jax": jax.__version__,
            "jaxlib": JAXLIB_VERSION,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "backend": jax.default_backend(),
            "cores": os.cpu_count(),
            "machine": platform.machine(),
            "repeat": args.repeat,
            "async_dispatch": not args.sync_dispatch,
            "calls_per_round": CALLS_PER_ROUND,
            "loops_per_round": LOOPS_PER_ROUND,
            "loop_evals": LOOP_EVALS,
            "tol": args.tol,
        }
        with open(args.json, "w") as fh:
            json.dump({"meta": meta, "results": results, "failures": failures}, fh, indent=2)

    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
