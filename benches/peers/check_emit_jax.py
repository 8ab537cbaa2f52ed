#!/usr/bin/env python3
"""Runs the JAX module eomderive emits (``--emit jax``) for every example and compares it
with eomderive's own evaluation (``--format json``: ``evaluation.gradient`` and
``evaluation.xi`` at the file's initial point).

For each example it checks, at the file's point (THETA0):

* ``eom_terms(THETA0)`` (jitted by the module) against the JSON's gradient and ξ_1..ξ_K,
  to 1e-12 relative to each vector's size;
* ``jax.jit(loss)`` and ``jax.grad(loss)`` (the gradient by automatic differentiation of
  the emitted loss, to 1e-10: another order of operations);
* a batch of shape (3, n) (θ0 three times) has the shapes (3, n) and (K, 3, n).

Usage (a Python with jax, e.g. ``pip install -r benches/peers/requirements-jax.txt``):

    cargo build --release
    python benches/peers/check_emit_jax.py [--bin target/release/eomderive] [--order 3]

Exits 1 and lists the failures when any example does not match.
"""

import argparse
import importlib.util
import json
import pathlib
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def close(got, want, rel):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = np.max(np.abs(want)) if want.size else 0.0
    return got.shape == want.shape and bool(
        np.all(np.abs(got - want) <= rel * (np.abs(want) + scale) + 1e-300)
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "eomderive"))
    ap.add_argument("--order", type=int, default=3)
    args = ap.parse_args()
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in sorted((ROOT / "examples").glob("*.expr")):
            name = path.stem
            order = ["--order", str(args.order)]
            report = json.loads(
                subprocess.run(
                    [args.bin, str(path), *order, "--format", "json"],
                    check=True, capture_output=True, text=True,
                ).stdout
            )
            module = pathlib.Path(tmp) / f"{name}.py"
            subprocess.run(
                [args.bin, str(path), *order, "--emit", "jax", "-o", str(module)],
                check=True,
            )
            spec = importlib.util.spec_from_file_location(name, module)
            m = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(m)
            ev = report["evaluation"]
            theta = jnp.asarray(m.THETA0)
            g, xi = m.eom_terms(theta)
            problems = []
            if list(m.PARAMS) != report["params"]:
                problems.append("PARAMS")
            if not close(theta, [ev["at"][p] for p in report["params"]], 0.0):
                problems.append("THETA0")
            if not close(g, ev["gradient"], 1e-12):
                problems.append("gradient")
            for k, want in enumerate(ev["xi"]):
                if not close(xi[k], want, 1e-12):
                    problems.append(f"xi_{k + 1}")
            if not close(jax.grad(m.loss)(theta), ev["gradient"], 1e-10):
                problems.append("jax.grad(loss)")
            if np.shape(jax.jit(m.loss)(theta)) != ():
                problems.append("jax.jit(loss) shape")
            gb, xib = jax.jit(m.eom_terms)(jnp.stack([theta] * 3))
            n, k = len(m.PARAMS), m.ORDER
            if gb.shape != (3, n) or xib.shape != (k, 3, n):
                problems.append(f"batch shapes {gb.shape} {xib.shape}")
            status = "ok" if not problems else "FAILED: " + ", ".join(problems)
            print(f"{name:22} n={n:3} K={k}  {status}")
            if problems:
                failures.append(name)
    print(f"{len(failures) == 0 and 'all' or len(failures)} "
          f"{'examples match' if not failures else 'examples failed: ' + ', '.join(failures)}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
