#!/usr/bin/env python3
"""Real-size demonstration: the generic EoM of GD on a 2 410-parameter tanh MLP (digits).

What it does
------------
A tanh MLP 64 → 32 → 10 with softmax cross-entropy (2 410 parameters) is trained full-batch
on the first ``--samples`` (default 256) images of scikit-learn's bundled ``load_digits``
(8×8 images shipped with the package: no download), pixels scaled to [0, 1]. For the learning
rates η, η/2, η/4, η/8 at the same horizon T = N η it runs GD (N, 2N, 4N, 8N steps) and
integrates the equation of motion truncated after ξ_K, K = 0 (gradient flow), 1, 2,

    dθ/dt = −∇f − η ξ_1 − η² ξ_2,

with the right-hand side ``eom_rhs(loss, η, order=K)`` of eomderive's generic JAX module
(``eomderive --generic --order 2 --emit jax``: ξ_k by nested jvp of ``jax.grad(loss)``, no
loss-specific derivation), by classical RK4 with ``--substeps`` steps per η (fixed step,
jit-compiled ``lax.fori_loop``). It reports ‖θ_EoM(T) − θ_GD,N‖₂ per order and η, the
fitted slope of log(error) against log(η) per order (expected K + 1, DESIGN.md §2.3), and
the wall times. The integrator's own error is measured by doubling the substeps at the
smallest η for K = 2 (Richardson: it must be far below the errors measured); η λ_max at θ_0
(by power iteration on Hessian-vector products) says how far GD is from instability (2) and
the series from its radius (1).

Running
-------
    pip install -r benches/peers/requirements-jax.txt      # jax, jaxlib, scikit-learn
    eomderive --generic --order 2 --emit jax -o gen2.py
    python3 benches/peers/digits_eom.py --module gen2.py [--lr 0.2] [--steps 16]
        [--substeps 16] [--samples 256] [--seed 0]

It prints a Markdown table ready for BENCHMARKS.md. Everything is float64 on the CPU.
"""

import argparse
import importlib.util
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

SIZES = (64, 32, 10)


def load_module(path):
    spec = importlib.util.spec_from_file_location("generic_eom", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_problem(samples, seed):
    """(loss on the flat θ, θ_0) for the MLP on the first `samples` digits."""
    digits = load_digits()
    X = jnp.asarray(digits.data[:samples] / 16.0)
    Y = jax.nn.one_hot(jnp.asarray(digits.target[:samples]), 10, dtype=jnp.float64)
    n_in, n_hidden, n_out = SIZES
    shapes = [(n_in, n_hidden), (n_hidden,), (n_hidden, n_out), (n_out,)]
    sizes = [math.prod(s) for s in shapes]
    offsets = np.cumsum([0] + sizes)

    def unpack(theta):
        return [theta[offsets[i]:offsets[i + 1]].reshape(s) for i, s in enumerate(shapes)]

    def loss(theta):
        W1, b1, W2, b2 = unpack(theta)
        logits = jnp.tanh(X @ W1 + b1) @ W2 + b2
        return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.sum(Y * logits, axis=1))

    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(n_in, n_hidden)) / math.sqrt(n_in), np.zeros(n_hidden),
             rng.normal(size=(n_hidden, n_out)) / math.sqrt(n_hidden), np.zeros(n_out)]
    theta0 = jnp.asarray(np.concatenate([p.ravel() for p in parts]))
    return loss, theta0


def lambda_max(loss, theta, iters=100):
    """The largest Hessian eigenvalue at theta, by power iteration on H v."""
    grad = jax.grad(loss)
    hvp = jax.jit(lambda v: jax.jvp(grad, (theta,), (v,))[1])
    v = jnp.ones_like(theta) / math.sqrt(theta.size)
    lam = 0.0
    for _ in range(iters):
        w = hvp(v)
        lam = float(jnp.vdot(v, w))
        v = w / jnp.linalg.norm(w)
    return lam


def gd_runner(loss):
    grad = jax.grad(loss)

    @jax.jit
    def run(theta, eta, n):
        return jax.lax.fori_loop(0, n, lambda i, t: t - eta * grad(t), theta)

    return run


def rk4_runner(module, loss, order):
    """θ(T) of the EoM truncated after ξ_order, n RK4 steps of size h (η and h traced)."""

    @jax.jit
    def run(theta, eta, h, n):
        f = module.eom_rhs(loss, eta, order=order)

        def step(i, t):
            k1 = f(t)
            k2 = f(t + 0.5 * h * k1)
            k3 = f(t + 0.5 * h * k2)
            k4 = f(t + h * k3)
            return t + (h / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)

        return jax.lax.fori_loop(0, n, step, theta)

    return run


def timed(fn, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t0


def slope(etas, errors):
    x, y = np.log(etas), np.log(errors)
    return float(np.polyfit(x, y, 1)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--module", help="the generic module (eomderive --generic --order 2 --emit jax)")
    src.add_argument("--eomderive", help="an eomderive binary to write that module with")
    ap.add_argument("--lr", type=float, default=0.2, help="the largest η (default 0.2)")
    ap.add_argument("--steps", type=int, default=16, help="GD steps N at the largest η (T = N η)")
    ap.add_argument("--substeps", type=int, default=16, help="RK4 steps per η (default 16)")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-order", type=int, default=2)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.module
        if path is None:
            path = str(Path(tmp) / "gen.py")
            subprocess.run([args.eomderive, "--generic", "--order", str(args.max_order),
                            "--emit", "jax", "-o", path], check=True)
        module = load_module(path)
    orders = list(range(0, min(args.max_order, module.ORDER) + 1))

    t_start = time.perf_counter()
    loss, theta0 = make_problem(args.samples, args.seed)
    lam = lambda_max(loss, theta0)
    etas = [args.lr / 2**j for j in range(4)]
    horizon = args.steps * args.lr
    print(f"MLP {'→'.join(map(str, SIZES))} tanh, softmax cross-entropy, {theta0.size} parameters, "
          f"{args.samples} digits; f(θ0) = {float(loss(theta0)):.6f}, λ_max(θ0) = {lam:.4f}")
    print(f"T = {horizon:g} ({args.steps} steps at η = {args.lr:g}); RK4 with {args.substeps} "
          f"steps per η; η λ_max = {args.lr * lam:.3f} at the largest η")

    gd = gd_runner(loss)
    rk4 = {k: rk4_runner(module, loss, k) for k in orders}
    # Compile everything once (not timed).
    jax.block_until_ready(gd(theta0, etas[0], 1))
    for k in orders:
        jax.block_until_ready(rk4[k](theta0, etas[0], etas[0] / args.substeps, 1))
    compile_s = time.perf_counter() - t_start

    errors = {k: [] for k in orders}
    times = {"gd": 0.0, **{k: 0.0 for k in orders}}
    for j, eta in enumerate(etas):
        n = args.steps * 2**j
        theta_gd, dt = timed(gd, theta0, eta, n)
        times["gd"] += dt
        for k in orders:
            theta_eom, dt = timed(rk4[k], theta0, eta, eta / args.substeps, n * args.substeps)
            times[k] += dt
            errors[k].append(float(jnp.linalg.norm(theta_eom - theta_gd)))
    # The integrator's own error at the smallest η, highest order: substeps doubled.
    eta, n = etas[-1], args.steps * 2 ** (len(etas) - 1)
    k = orders[-1]
    fine, _ = timed(rk4[k], theta0, eta, eta / (2 * args.substeps), 2 * n * args.substeps)
    coarse, _ = timed(rk4[k], theta0, eta, eta / args.substeps, n * args.substeps)
    rk4_err = float(jnp.linalg.norm(fine - coarse)) * 16.0 / 15.0
    theta_gd, _ = timed(gd, theta0, etas[-1], n)
    drift = float(jnp.linalg.norm(theta_gd - theta0))

    print()
    print("| order K | " + " | ".join(f"η = {e:g}" for e in etas)
          + " | fitted slope | last-pair slope |")
    print("|---|" + "---|" * (len(etas) + 2))
    for k in orders:
        cells = " | ".join(f"{e:.3e}" for e in errors[k])
        last = slope(etas[-2:], errors[k][-2:])
        print(f"| {k} | {cells} | {slope(etas, errors[k]):.2f} | {last:.2f} |")
    print()
    print(f"‖θ_GD(T) − θ0‖ = {drift:.4f}; RK4 error (substeps doubled, K = {k}, η = {etas[-1]:g}): "
          f"{rk4_err:.1e}")
    print(f"wall: compile {compile_s:.1f} s; GD {times['gd']:.2f} s; EoM RK4 "
          + ", ".join(f"K = {k} {times[k]:.1f} s" for k in orders)
          + f" (4 values of η); total {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
