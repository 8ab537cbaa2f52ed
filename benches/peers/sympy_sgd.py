#!/usr/bin/env python3
"""Peer benchmark: the counter terms ξ_1, ξ_2 of minibatch SGD, derived by hand in SymPy.

Reproduce the table (BENCHMARKS.md):

    cargo build --release
    python3 benches/peers/sympy_sgd.py

What it derives
---------------
Minibatch SGD as in DESIGN.md §2.5: the loss f is a mean over examples, split
into m consecutive equal blocks; f_a is the mean over block a, g_a = ∇f_a,
H_a = ∇²f_a, T_a = ∇³f_a.  A step on batch a is θ ← θ − η g_a(θ); an epoch is
m steps, time T = mη.  The three examples/sgd_*.expr losses are transcribed by
hand below (parameters in declaration order, decimal data as exact rationals,
as eomderive reads them):

    sgd_regression   shuffled, m = 4  (8 examples, parameters w, b)
    sgd_logistic     cyclic,   m = 3  (6 examples, parameters w[1], w[2])
    sgd_tanh_net     shuffled, m = 2  (4 examples, parameters a[1], a[2], b[1], b[2])

The derivation uses nothing from eomderive:

1. The epoch map, as a series in η.  After j steps θ_j = θ + δ_j with
   δ_j = η d1_j + η² d2_j + η³ d3_j + O(η⁴), δ_0 = 0, and the step on batch a,
   Taylor-expanded at θ (g_a(θ + δ) = g_a + H_a δ + ½ T_a(δ, δ) + …), gives

       d1_j = d1_{j−1} − g_a
       d2_j = d2_{j−1} − H_a d1_{j−1}
       d3_j = d3_{j−1} − H_a d2_{j−1} − ½ T_a(d1_{j−1}, d1_{j−1})

   (vectors of SymPy expressions in the parameters; H_a v and T_a(v, v) are
   built from the partial derivatives of g_a, memoised).  Cyclic: the one
   order 1, 2, …, m.  Shuffled: D_p = the mean of d_p over all m! orders
   (prefixes shared, so each partial epoch is built once).
2. The flow.  F = −g − η ξ_1 − η² ξ_2 has the time-T flow
   Φ_T(θ) − θ = T F + T²/2 (DF)F + T³/6 ((D²F)(F, F) + (DF)(DF)F) + O(T⁴).
   With T = mη, order by order in η against D_1, D_2, D_3:

       η¹:  −m g = D_1                                   (asserted, exactly)
       η²:  −m ξ_1 + (m²/2) H g = D_2
            ⇒ ξ_1 = (m/2) H g − D_2/m
       η³:  −m ξ_2 + (m²/2) (H ξ_1 + (Dξ_1) g) − (m³/6) (T(g, g) + H H g) = D_3
            ⇒ ξ_2 = (m/2) (H ξ_1 + (Dξ_1) g) − (m²/6) (T(g, g) + H H g) − D_3/m

   where g, H, T are those of f (so that (DF)F at order η is
   (−H)(−ξ_1) + (−Dξ_1)(−g)); Dξ_1 is the Jacobian of the derived ξ_1,
   differentiated symbolically.
3. ``sympy.cse`` of all components of ξ_1 and ξ_2 together.

What it measures
----------------
* sympy s: wall-clock seconds of steps 1–3 (the batch gradients included,
  building the loss expressions not), best of ``--repeat`` runs, each in a
  fresh forked process (sympy_peer.py's ``run_forked``), all runs of a case
  together held to ``--budget`` seconds (default 60); a first run over it is
  killed and the case is reported as ``timeout >Ns``.
* sympy ops: sympy_peer.py's ``count_ops`` of the cse'd program (an n-term sum
  or product n−1, a power or division 1, a call 1), against eomderive's
  ``stats.ops`` (its shared program for ξ_1, ξ_2).
* eomderive s: ``stats.derive_seconds`` of
  ``target/release/eomderive examples/<name>.expr --order 2 --format json``
  (the files set optimizer = sgd, batches, batch_order themselves), best of
  ``--repeat`` runs; ratio = sympy s / eomderive s.
* max rel diff: max over k = 1, 2 of max_i |ξ_k,i(SymPy) − ξ_k,i(eomderive)|
  / max_i |ξ_k,i| at the file's initial point; SymPy's values come from the
  cse'd program evaluated at 40 significant digits.  Also compared: the
  gradient, and that eomderive's JSON reports the same optimizer, number of
  batches and batch order.  Anything above ``--tol`` (default 1e-12) fails the
  script after the table, naming example, order and component.

Self-checks (an AssertionError ends the script):

* step 2's η¹ identity D_1 = −m g holds exactly (after expand);
* ξ_1 against its first-order closed forms (DESIGN.md §2.5), evaluated from
  H_a, g_a separately: shuffled (1/(2m)) Σ_a H_a g_a; cyclic
  (1/(2m)) [Σ_a H_a g_a + Σ_{j<k} (H_j g_k − H_k g_j)];
* the epoch-map series itself: the mean over the orders used of m literal SGD
  steps, run at 60 digits at η = 10⁻³ and 5·10⁻⁴, minus η D_1 + η² D_2 + η³ D_3
  must shrink like η⁴ (ratio ≈ 16) and be far below the η³ term;
* with m = 1 (the whole loss one batch, i.e. GD) the same code gives GD's
  ξ_1 = ½Hg and ξ_2 = (1/12) T(g, g) + (1/3) HHg.

Running
-------
    pip install -r benches/peers/requirements.txt      # sympy
    python3 benches/peers/sympy_sgd.py [--examples sgd_regression,...]
        [--budget 60] [--repeat 3] [--tol 1e-12] [--eomderive PATH] [--json FILE]

Timings depend on the machine: note its core count and load when quoting them
(each derivation is single-threaded).
"""

import argparse
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time

import sympy

sys.setrecursionlimit(100_000)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

# The same operation count and forked runner as the GD peer (same folder).
from sympy_peer import best_of, program_ops, rel_diff, run_forked, write_results  # noqa: E402

DIGITS = 40  # evaluation precision of SymPy's program


def Q(s):
    """Exact rational from a decimal literal, e.g. Q('-0.7') == -7/10."""
    return sympy.Rational(str(s))


def mean(terms):
    return sympy.Add(*terms) / len(terms)


# --------------------------------------------------------------------------
# The examples, transcribed from examples/sgd_*.expr: the per-example terms
# ℓ_i (in file order), the number of batches and the batch order.
# --------------------------------------------------------------------------


def ex_regression():
    # data x = [...]; data y = [...]; param w = 0.2, b = -0.1
    # loss = mean(i, (w*x[i] + b - y[i])^2/2); batches = 4, shuffled
    x = ["0.5", "-1.0", "2.0", "1.5", "-0.3", "0.8", "-1.6", "1.1"]
    y = ["0.9", "-1.3", "2.6", "1.2", "0.1", "0.7", "-2.2", "1.5"]
    w, b = sympy.symbols("w b")
    terms = [(w * Q(x[i]) + b - Q(y[i])) ** 2 / 2 for i in range(8)]
    return terms, [w, b], ["0.2", "-0.1"], 4, "shuffled"


def ex_logistic():
    # z[i] = w[1]*x1[i] + w[2]*x2[i]; loss = mean(i, softplus(z[i]) - y[i]*z[i])
    # batches = 3, cyclic
    x1 = ["1.0", "-0.5", "2.0", "-1.5", "0.3", "1.2"]
    x2 = ["0.4", "1.1", "-0.7", "-0.2", "1.6", "-1.0"]
    y = [1, 0, 1, 0, 1, 0]
    w1, w2 = sympy.symbols("w[1] w[2]")
    z = [w1 * Q(x1[i]) + w2 * Q(x2[i]) for i in range(6)]
    softplus = lambda t: sympy.log(1 + sympy.exp(t))
    terms = [softplus(z[i]) - y[i] * z[i] for i in range(6)]
    return terms, [w1, w2], ["0.3", "-0.4"], 3, "cyclic"


def ex_tanh_net():
    # out[i] = sum(j, a[j]*tanh(b[j]*x[i])); loss = mean(i, (out[i] - y[i])^2/2)
    # batches = 2, shuffled (eomderive's default batch order)
    x = ["0.5", "-1.0", "2.0", "1.2"]
    y = ["0.2", "0.4", "-0.3", "0.1"]
    a1, a2, b1, b2 = sympy.symbols("a[1] a[2] b[1] b[2]")
    a, b = [a1, a2], [b1, b2]
    out = [sympy.Add(*[a[j] * sympy.tanh(b[j] * Q(xi)) for j in range(2)]) for xi in x]
    terms = [(out[i] - Q(y[i])) ** 2 / 2 for i in range(4)]
    return terms, [a1, a2, b1, b2], ["0.3", "-0.2", "0.8", "0.5"], 2, "shuffled"


EXAMPLES = {
    "sgd_regression": ex_regression,
    "sgd_logistic": ex_logistic,
    "sgd_tanh_net": ex_tanh_net,
}


def batch_losses(terms, m):
    """f_1..f_m: the means over m consecutive equal blocks of the terms."""
    assert len(terms) % m == 0, "examples must split into equal blocks"
    size = len(terms) // m
    return [mean(terms[a * size:(a + 1) * size]) for a in range(m)]


def orders_of(m, order):
    if order == "cyclic":
        return [tuple(range(m))]
    assert order == "shuffled"
    return list(itertools.permutations(range(m)))


# --------------------------------------------------------------------------
# The derivation.
# --------------------------------------------------------------------------


class Field:
    """g = ∇φ of a scalar φ with its partial derivatives, memoised by multi-index."""

    def __init__(self, phi, params):
        self.params = params
        self.n = len(params)
        self.partials = {}  # (i, sorted index tuple) -> ∂_idx g_i
        self.g = [sympy.diff(phi, p) for p in params]

    def partial(self, i, idx):
        key = (i, idx)
        if key not in self.partials:
            if not idx:
                self.partials[key] = self.g[i]
            else:
                self.partials[key] = sympy.diff(self.partial(i, idx[:-1]),
                                                self.params[idx[-1]])
        return self.partials[key]

    def H(self, v):
        """H v."""
        n = self.n
        return [sympy.Add(*[self.partial(i, (j,)) * v[j] for j in range(n)])
                for i in range(n)]

    def T(self, u, v):
        """∇³φ(u, v) = Σ_jk ∂_j ∂_k g_i u_j v_k."""
        n = self.n
        return [sympy.Add(*[self.partial(i, tuple(sorted((j, k)))) * u[j] * v[k]
                            for j in range(n) for k in range(n)]) for i in range(n)]


def vadd(*vs):
    return [sympy.Add(*xs) for xs in zip(*vs)]


def vscale(c, v):
    return [c * x for x in v]


def epoch_series(fields, orders, n):
    """D_1, D_2, D_3: the η, η², η³ coefficients of the (order-averaged) epoch map − θ."""
    zero = [sympy.Integer(0)] * n
    memo = {(): (zero, zero, zero)}  # prefix of batch indices -> (d1, d2, d3)

    def state(prefix):
        if prefix not in memo:
            d1, d2, d3 = state(prefix[:-1])
            fa = fields[prefix[-1]]
            memo[prefix] = (
                vadd(d1, vscale(-1, fa.g)),
                vadd(d2, vscale(-1, fa.H(d1))),
                vadd(d3, vscale(-1, fa.H(d2)), vscale(sympy.Rational(-1, 2), fa.T(d1, d1))),
            )
        return memo[prefix]

    finals = [state(o) for o in orders]
    c = sympy.Rational(1, len(orders))
    return [vscale(c, vadd(*[fin[p] for fin in finals])) for p in range(3)]


def derive_xi(f_batches, params, orders):
    """ξ_1, ξ_2 (lists of expressions) and D_1..D_3 from the batch losses."""
    n, m = len(params), len(f_batches)
    fields = [Field(fa, params) for fa in f_batches]
    full = Field(sympy.Add(*f_batches) / m, params)  # f = mean of the f_a
    D1, D2, D3 = epoch_series(fields, orders, n)
    g = full.g
    Hg = full.H(g)
    xi1 = vadd(vscale(sympy.Rational(m, 2), Hg), vscale(sympy.Rational(-1, m), D2))
    Dxi1_g = [sympy.Add(*[sympy.diff(xi1[i], params[j]) * g[j] for j in range(n)])
              for i in range(n)]
    xi2 = vadd(vscale(sympy.Rational(m, 2), vadd(full.H(xi1), Dxi1_g)),
               vscale(sympy.Rational(-m * m, 6), vadd(full.T(g, g), full.H(Hg))),
               vscale(sympy.Rational(-1, m), D3))
    return xi1, xi2, (D1, D2, D3), full, fields


# --------------------------------------------------------------------------
# Evaluation (high precision).
# --------------------------------------------------------------------------


def point_env(params, point, digits=DIGITS):
    return {p: sympy.Float(v, digits) for p, v in zip(params, point)}


def num(e, env, digits=DIGITS):
    return sympy.Float(e.xreplace({s: env[s] for s in e.free_symbols}).evalf(digits), digits)


def evaluate_program(replacements, reduced, env):
    env = dict(env)
    for s, e in replacements:
        env[s] = num(e, env)
    return [float(num(e, env)) for e in reduced]


# --------------------------------------------------------------------------
# One timed case (in a forked child) and the self-checks.
# --------------------------------------------------------------------------


def derive_case(name, timed=lambda seconds: None):
    terms, params, point, m, order = EXAMPLES[name]()
    f_batches = batch_losses(terms, m)  # untimed: building the loss
    orders = orders_of(m, order)
    t0 = time.perf_counter()
    xi1, xi2, _, _, _ = derive_xi(f_batches, params, orders)
    replacements, reduced = sympy.cse(xi1 + xi2)
    seconds = time.perf_counter() - t0
    timed(seconds)
    ops = program_ops(replacements, reduced)
    vals = evaluate_program(replacements, reduced, point_env(params, point))
    n = len(params)
    return {"seconds": seconds, "ops": ops, "cse_replacements": len(replacements),
            "values": {1: vals[:n], 2: vals[n:]}}


def run_case(name, budget, repeat):
    return best_of(lambda left: run_forked(derive_case, (name,), f"sgd/{name}", left),
                   budget, repeat)


def self_check(name):
    """The checks listed in the docstring, for one example (untimed, in this process)."""
    terms, params, point, m, order = EXAMPLES[name]()
    n = len(params)
    f_batches = batch_losses(terms, m)
    orders = orders_of(m, order)
    xi1, xi2, (D1, D2, D3), full, fields = derive_xi(f_batches, params, orders)
    # η¹: D_1 = −m g exactly
    for i in range(n):
        assert sympy.expand(D1[i] + m * full.g[i]) == 0, f"{name}: D_1 != -m g"
    env = point_env(params, point)
    val = lambda v: [num(e, env) for e in v]
    # ξ_1 against the first-order closed forms
    gs = [val(fa.g) for fa in fields]
    Hg = lambda a, b: val(fields[a].H(fields[b].g))  # H_a g_b
    closed = vadd(*[Hg(a, a) for a in range(m)])
    if order == "cyclic":
        for j in range(m):
            for k in range(j + 1, m):
                closed = vadd(closed, Hg(j, k), vscale(-1, Hg(k, j)))
    closed = [c / (2 * m) for c in closed]
    d = rel_diff(val(xi1), closed)
    assert d <= 1e-30, f"{name}: ξ_1 {val(xi1)} != closed form {closed} (rel {d:.1e})"
    # the epoch series against literal SGD steps at 60 digits
    digits = 60
    penv = point_env(params, point, digits)
    gfun = [sympy.lambdify(params, fa.g, modules="mpmath") for fa in fields]
    import mpmath
    mpmath.mp.dps = digits
    theta0 = [mpmath.mpf(str(v)) for v in point]
    Ds = [[num(e, penv, digits) for e in D] for D in (D1, D2, D3)]
    Ds = [[mpmath.mpf(str(x)) for x in D] for D in Ds]
    resid = []
    for eta in (mpmath.mpf("1e-3"), mpmath.mpf("5e-4")):
        acc = [mpmath.mpf(0)] * n
        for o in orders:
            th = list(theta0)
            for a in o:
                ga = gfun[a](*th)
                th = [t - eta * gi for t, gi in zip(th, ga)]
            acc = [s + t for s, t in zip(acc, th)]
        epoch = [s / len(orders) for s in acc]
        r = [epoch[i] - theta0[i] - eta * Ds[0][i] - eta**2 * Ds[1][i] - eta**3 * Ds[2][i]
             for i in range(n)]
        third = max(abs(eta**3 * x) for x in Ds[2])
        resid.append((max(abs(x) for x in r), third))
    (r1, t1), (r2, _) = resid
    assert r1 < 1e-2 * t1, f"{name}: epoch series residual {r1} vs η³ term {t1}"
    ratio = r1 / r2
    assert 12 < ratio < 20, f"{name}: epoch residual ratio {ratio} (expected ≈ 16)"
    return float(ratio)


def check_gd():
    """m = 1 is GD: ξ_1 = ½Hg, ξ_2 = (1/12)T(g,g) + (1/3)HHg (checked on tanh_net)."""
    terms, params, point, _, _ = ex_tanh_net()
    f = mean(terms)
    xi1, xi2, _, full, _ = derive_xi([f], params, [(0,)])
    g, env = full.g, point_env(params, point)
    val = lambda v: [num(e, env) for e in v]
    Hg = full.H(g)
    want1 = vscale(sympy.Rational(1, 2), Hg)
    want2 = vadd(vscale(sympy.Rational(1, 12), full.T(g, g)),
                 vscale(sympy.Rational(1, 3), full.H(Hg)))
    for k, (a, b) in enumerate([(xi1, want1), (xi2, want2)], 1):
        d = rel_diff(val(a), val(b))
        assert d <= 1e-30, f"GD (m = 1): ξ_{k} {val(a)} != {val(b)}"


# --------------------------------------------------------------------------
# eomderive.
# --------------------------------------------------------------------------


def eomderive_case(path, name, repeat, timeout):
    """Best-of-`repeat` JSON of eomderive on examples/<name>.expr, or (None, reason)."""
    if not os.access(path, os.X_OK):
        return None, f"binary not found at {path} (cargo build --release)"
    best = None
    for _ in range(max(repeat, 1)):
        args = [path, os.path.join(REPO, "examples", f"{name}.expr"), "--order", "2",
                "--format", "json"]
        try:
            p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"timed out after {timeout:g}s"
        if p.returncode != 0:
            first = p.stderr.strip().splitlines()[:1]
            return None, f"exit status {p.returncode} ({first[0] if first else ''})"
        data = json.loads(p.stdout)
        secs = (data.get("stats") or {}).get("derive_seconds")
        if best is None or (secs is not None and secs < best["stats"]["derive_seconds"]):
            best = data
    return best, None


# --------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", default=",".join(EXAMPLES),
                    help="comma-separated, from " + ", ".join(EXAMPLES))
    ap.add_argument("--budget", type=float, default=60.0,
                    help="seconds per example, all SymPy runs together (default 60)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case, best kept")
    ap.add_argument("--tol", type=float, default=1e-12,
                    help="largest relative difference accepted (default 1e-12)")
    ap.add_argument("--eomderive", default=os.path.join(REPO, "target", "release", "eomderive"))
    ap.add_argument("--json", metavar="FILE", help="write all measurements here")
    args = ap.parse_args()
    names = args.examples.split(",")
    for name in names:
        if name not in EXAMPLES:
            ap.error(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}")

    t_start = time.perf_counter()
    check_gd()
    ratios = {name: self_check(name) for name in names}
    print("self-checks passed: D_1 = -m g exactly; ξ_1 = first-order closed forms; "
          "epoch series vs literal SGD steps (residual ratio at η halved: "
          + ", ".join(f"{k} {v:.1f}" for k, v in ratios.items())
          + "); m = 1 gives GD's ξ_1, ξ_2 "
          f"({time.perf_counter() - t_start:.1f}s)\n", flush=True)

    failures, results, notes = [], [], []
    rows = []
    for name in names:
        terms, params, point, m, order = EXAMPLES[name]()
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        rec = run_case(name, args.budget, args.repeat)
        rec.update(example=name, m=m, batch_order=order)
        data, why = eomderive_case(args.eomderive, name, args.repeat, args.budget)
        eo_s = eo_ops = ratio = diff = ""
        if data is None:
            notes.append(f"{name}: eomderive {why}; comparison skipped")
        else:
            opt = data.get("optimizer") or {}
            if (opt.get("name"), opt.get("batches"), opt.get("order")) != ("sgd", m, order):
                failures.append(f"{name}: eomderive ran optimizer {opt}, expected sgd with "
                                f"{m} batches, {order}")
            if data.get("params") != [str(p) for p in params]:
                failures.append(f"{name}: eomderive params {data.get('params')} != "
                                f"{[str(p) for p in params]}")
            secs = data["stats"]["derive_seconds"]
            eo_s, eo_ops = f"{secs:.4f}", str(data["stats"].get("ops", ""))
            rec["eomderive"] = {"seconds": secs, "ops": data["stats"].get("ops"),
                                "xi": data["evaluation"]["xi"],
                                "gradient": data["evaluation"]["gradient"]}
        if rec["timeout"]:
            sy_s, sy_ops = f"timeout >{args.budget:g}s", ""
        else:
            sy_s, sy_ops = f"{rec['seconds']:.3f}", str(rec["ops"])
            if data is not None:
                ratio = f"{rec['seconds'] / secs:.0f}×" if secs else ""
                ev = data["evaluation"]
                env = point_env(params, point)
                gmine = [float(num(sympy.diff(mean(terms), p), env)) for p in params]
                worst = rel_diff(gmine, ev["gradient"])
                if not worst <= args.tol:
                    failures.append(f"{name}: gradient SymPy {gmine} != eomderive "
                                    f"{ev['gradient']} (rel {worst:.2e})")
                for k in (1, 2):
                    mine, theirs = rec["values"][k], ev["xi"][k - 1]
                    d = rel_diff(mine, theirs)
                    rec[f"rel_diff_xi{k}"] = d
                    worst = max(worst, d)
                    if not d <= args.tol:
                        scale = max(abs(x) for x in mine + theirs)
                        for i, (a, b) in enumerate(zip(mine, theirs)):
                            if abs(a - b) > args.tol * scale:
                                failures.append(
                                    f"{name}: ξ_{k}[{params[i]}] SymPy {a!r} != eomderive "
                                    f"{b!r} (rel {abs(a - b) / scale:.2e})")
                rec["max_rel_diff"] = worst
                diff = f"{worst:.1e}"
        rows.append(f"| {name} | {m} ({order}) | 2 | {sy_s} | {eo_s} | {ratio} | {diff} "
                    f"| {sy_ops} | {eo_ops} |")
        results.append(rec)

    print("| example | m | order | SymPy s | eomderive s | ratio | max rel diff "
          "| SymPy ops | eomderive ops |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(row)
    for note in notes:
        print(f"\n{note}")
    print(f"\n({os.cpu_count()} cores, Python {platform.python_version()}, SymPy "
          f"{sympy.__version__}; SymPy s best of {args.repeat} forked runs, derivation + cse; "
          f"eomderive s its stats.derive_seconds, best of {args.repeat}; total "
          f"{time.perf_counter() - t_start:.0f}s)", flush=True)

    if args.json:
        meta = {"python": platform.python_version(), "sympy": sympy.__version__,
                "cores": os.cpu_count(), "machine": platform.machine(),
                "budget": args.budget, "repeat": args.repeat}
        write_results(args.json, meta, results)

    assert not failures, "value check failed:\n" + "\n".join(failures)
    compared = [r["example"] for r in results if "max_rel_diff" in r]
    print(f"value checks passed (gradient, ξ_1, ξ_2 against eomderive to {args.tol:g}: "
          f"{', '.join(compared) or 'none compared'})", file=sys.stderr)


if __name__ == "__main__":
    main()
