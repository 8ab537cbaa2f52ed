#!/usr/bin/env python3
"""Check: eomderive's generic JAX module agrees with its loss-specific values on every GD example.

For every example loss of gradient descent (``examples/*.expr`` without an ``optimizer = …``
or ``batches = …`` line; weight decay is GD on the regularised loss and is included), the
generic module's ``xi(loss, THETA0)`` (ξ_1..ξ_K by nested jvp of ``jax.grad(loss)``, written by
``eomderive --generic --order K --emit jax``) is compared with eomderive's own values of the
same ξ_k at the same point: max |a − b| ≤ tol · max |b| per vector (default 1e-10).

The loss comes from one of two places (``--loss-from``):

* ``emit`` (the default): ``eomderive EX --order K --emit jax -o spec.py``, whose ``loss(theta)``
  is the loss as JAX and whose ``eom_terms(THETA0)`` gives eomderive's (g, ξ) (the generated
  loss-specific code). Both the gradient and ξ_1..ξ_K are compared; the script also compares
  ``eom_terms`` with ``eomderive EX --order K --format json`` (``evaluation``), the values of
  eomderive's own evaluator.
* ``peer``: the hand transcriptions of the eight losses in ``benches/peers/jax_peer.py``
  (``LOSSES``), compared with ``eomderive EX --order K --format json`` (``evaluation.xi`` at
  the file's initial point, checked to be the transcription's point and parameter order).
  Needs no ``--emit`` at all; an example without a transcription is reported as missing.

``--generic-module PATH`` uses an already written generic module instead of running
``eomderive --generic --order K --emit jax`` (e.g. one from
``eomderive --generic --order 3 --emit jax -o gen.py``).

Running
-------
    pip install -r benches/peers/requirements-jax.txt
    cargo build --release
    python3 benches/peers/check_generic_jax.py --eomderive target/release/eomderive
        [--order 3] [--tol 1e-10] [--loss-from emit|peer] [--generic-module gen.py]
        [--keep DIR]

It prints one line per example and a summary; the exit status is 1 when any example
disagrees or fails, 0 otherwise.
"""

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

SETTING = re.compile(r"^\s*(optimizer|batches)\s*=", re.MULTILINE)


def gd_examples(directory):
    """The example files of plain GD (no optimizer or batches line), sorted."""
    out = []
    for p in sorted(Path(directory).glob("*.expr")):
        text = "\n".join(line.split("#", 1)[0] for line in p.read_text().splitlines())
        if not SETTING.search(text):
            out.append(p)
    return out


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def worst(got, want):
    """max |a − b| / max |b| over the entries (absolute where b is all zero); shapes must agree."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    if got.shape != want.shape:
        raise AssertionError(f"shape {got.shape} != {want.shape}")
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    return float(np.max(np.abs(got - want), initial=0.0)) / (scale if scale > 0 else 1.0)


def json_evaluation(binary, example, order):
    out = json.loads(run([binary, str(example), "--order", str(order), "--format", "json"]))
    ev = out.get("evaluation")
    if ev is None:
        raise RuntimeError("eomderive gives no evaluation (no initial point in the file)")
    return out["params"], ev


def check_emit(binary, example, order, gen, workdir):
    spec_path = workdir / f"spec_{example.stem}.py"
    run([binary, str(example), "--order", str(order), "--emit", "jax", "-o", str(spec_path)])
    spec = load_module(spec_path, f"spec_{example.stem}")
    if spec.THETA0 is None:
        raise RuntimeError("the emitted module has THETA0 = None")
    theta0 = jnp.asarray(spec.THETA0, dtype=jnp.float64)
    g_spec, xi_spec = spec.eom_terms(theta0)
    xi_spec = np.asarray(xi_spec)
    if xi_spec.shape[0] != order:
        raise AssertionError(f"eom_terms gives {xi_spec.shape[0]} terms, not {order}")
    xi_gen = np.stack([np.asarray(x) for x in jax.jit(lambda p: gen.xi(spec.loss, p))(theta0)])
    diffs = {"g": worst(jax.grad(spec.loss)(theta0), g_spec)}
    for k in range(order):
        diffs[f"xi_{k + 1}"] = worst(xi_gen[k], xi_spec[k])
    # The emitted loss-specific code against eomderive's own evaluator, at the same point.
    params, ev = json_evaluation(binary, example, order)
    if list(spec.PARAMS) != params:
        raise AssertionError(f"PARAMS {list(spec.PARAMS)} != eomderive's {params}")
    if worst(theta0, [ev["at"][p] for p in params]) > 0:
        raise AssertionError("THETA0 is not eomderive's evaluation point")
    diffs["spec_vs_json"] = worst(xi_spec, ev["xi"])
    return diffs


def check_peer(binary, example, order, gen, peer):
    if example.stem not in peer.LOSSES:
        raise RuntimeError("no hand transcription in jax_peer.py")
    f, theta0, names = peer.LOSSES[example.stem]()
    params, ev = json_evaluation(binary, example, order)
    if params != names:
        raise AssertionError(f"parameter order {names} != eomderive's {params}")
    if worst(theta0, [ev["at"][p] for p in params]) > 0:
        raise AssertionError("the transcription's point is not eomderive's evaluation point")
    theta0 = jnp.asarray(theta0, dtype=jnp.float64)
    xi_gen = jax.jit(lambda p: gen.xi(f, p))(theta0)
    diffs = {"g": worst(jax.grad(f)(theta0), ev["gradient"])}
    for k in range(order):
        diffs[f"xi_{k + 1}"] = worst(xi_gen[k], ev["xi"][k])
    return diffs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eomderive", default=str(REPO_ROOT / "target/release/eomderive"),
                    help="the eomderive binary (default: target/release/eomderive)")
    ap.add_argument("--order", type=int, default=3)
    ap.add_argument("--tol", type=float, default=1e-10)
    ap.add_argument("--loss-from", choices=["emit", "peer"], default="emit")
    ap.add_argument("--generic-module", help="a generic module already written (skip --emit)")
    ap.add_argument("--examples", default=str(REPO_ROOT / "examples"))
    ap.add_argument("--keep", help="write the emitted modules here instead of a temporary dir")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.generic_module:
            gen_path = Path(args.generic_module)
        else:
            gen_path = workdir / "gen.py"
            run([args.eomderive, "--generic", "--order", str(args.order), "--emit", "jax",
                 "-o", str(gen_path)])
        gen = load_module(gen_path, "gen")
        if gen.ORDER < args.order:
            print(f"the generic module has ORDER = {gen.ORDER} < {args.order}", file=sys.stderr)
            return 1
        peer = None
        if args.loss_from == "peer":
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import jax_peer as peer  # noqa: E402

        failures = 0
        examples = gd_examples(args.examples)
        print(f"generic module {gen_path.name} (ORDER {gen.ORDER}), losses from "
              f"{args.loss_from}, order {args.order}, tol {args.tol:g}")
        for ex in examples:
            try:
                if args.loss_from == "emit":
                    diffs = check_emit(args.eomderive, ex, args.order, gen, workdir)
                else:
                    diffs = check_peer(args.eomderive, ex, args.order, gen, peer)
            except Exception as e:  # noqa: BLE001 - report and go on with the next example
                failures += 1
                print(f"FAIL {ex.stem}: {type(e).__name__}: {e}")
                continue
            bad = {k: v for k, v in diffs.items() if not v <= args.tol}
            status = "ok  " if not bad else "FAIL"
            failures += bool(bad)
            shown = ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
            print(f"{status} {ex.stem}: {shown}")
        print(f"{len(examples) - failures} of {len(examples)} GD examples agree to {args.tol:g}")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
