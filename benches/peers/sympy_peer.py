#!/usr/bin/env python3
"""Peer benchmark: the eomderive derivation done in SymPy and in SymEngine.

What it measures
----------------
For each loss f(θ) below and each order K, the script derives the counter
terms ξ_1..ξ_K of gradient descent's equation of motion the same way eomderive
does, but with a general-purpose computer algebra system:

* g = ∇f, H = ∇²f; the modified field is F = Σ_k η^k F_k with F_0 = −g and
  F_k = −ξ_k; L_A B := (DB)·A (Jacobian of the vector field B times A).
* For m ≥ 1
      F_m = − Σ_{j=2}^{m+1} (1/j!) Σ_{k_1+…+k_j = m+1−j, k_i ≥ 0}
                L_{F_{k_1}} L_{F_{k_2}} ⋯ L_{F_{k_{j−1}}} F_{k_j}
  with L_{F_{k_1}} outermost.  Vector fields are lists of expressions; L_A B is
  a Jacobian-vector product; every L-product L_{F_{k_1}} ⋯ F_{k_j} and every
  Jacobian is memoised by its index tuple (k_1, …, k_j), so shared tails are
  built once.
* The ξ_1..ξ_K (all components together) then go through common-subexpression
  elimination: ``sympy.cse`` for SymPy, ``symengine.cse`` for SymEngine.

Per (loss, K, engine) it reports

* seconds: wall-clock time of recursion + cse (taking the gradient g is part
  of the recursion; building the loss expression is not), best of ``--repeat`` runs, each run in a fresh forked
  process (so SymPy's cache does not carry over between runs).  A case has a
  time budget (``--budget``, default 60 s) for the derivation time of all its
  runs together (the fork and building the loss also count against it, the
  untimed counting and evaluation afterwards do not); a first run that
  exceeds it is killed and reported as ``timeout >Ns``, and higher K for that
  loss and engine are then skipped.
* ops: arithmetic operations and function calls of the cse'd program: an
  n-term sum counts n−1, an n-factor product n−1, an integer power 1, a
  negation 1 (a product with −1 is an ordinary 2-factor product: 1), a
  division 1 (x/y is Mul(x, Pow(y, −1)) in both engines and counts 1 in all,
  not 2), each function call 1 (exp, log, tanh, sqrt, a non-integer power).
  Each cse replacement is counted once; constants and symbols cost nothing.

Self-checks (an AssertionError ends the script):

* on a 2×2 quadratic f = ½θᵀAθ, ξ_k = A^{k+1}θ/(k+1) exactly for k ≤ 3, in
  every engine selected;
* on each loss, ξ_1 = ½Hg at the initial point (H, g taken separately with
  SymPy), and ξ_2, ξ_3 match their closed forms
  ξ_2 = (1/12)∇³f(g,g) + (1/3)HHg,
  ξ_3 = (1/12)∇³f(Hg,g) + (1/12)H∇³f(g,g) + (1/4)HHHg  where computed;
* SymPy and SymEngine give the same ξ values to 1e-10 relative (relative to
  the largest component of that ξ_k).  The values are computed by evaluating
  the cse'd program itself, so these checks cover cse too.

Running
-------
    pip install -r benches/peers/requirements.txt      # sympy, symengine
    python3 benches/peers/sympy_peer.py [--orders 1,2,3,4] [--losses name,...]
        [--budget 60] [--repeat 3] [--engines sympy,symengine]
        [--json out.json] [--values]

It prints a Markdown table (loss, K, engine, seconds, ops); ``--values`` also
prints {loss: {k: [floats]}} as JSON (ξ_k at the initial point) for comparing
with eomderive's numbers; ``--json`` writes every measurement to a file.
Timings depend on the machine: note its core count when quoting them (the
derivation itself is single-threaded).
"""

import argparse
import json
import math
import multiprocessing
import os
import platform
import sys
import time
from fractions import Fraction

sys.setrecursionlimit(100_000)

# --------------------------------------------------------------------------
# Engines: the handful of operations the derivation needs, for each CAS.
# --------------------------------------------------------------------------


class Engine:
    """A thin, uniform face over SymPy or SymEngine."""

    def __init__(self, name):
        self.name = name
        if name == "sympy":
            import sympy as m

            self.rat = lambda q: m.Rational(q.numerator, q.denominator)
            self.to_float = lambda e, env: float(
                e.xreplace({s: m.Float(v) for s, v in env.items()})
            )
        elif name == "symengine":
            import symengine as m

            self.rat = lambda q: m.Integer(q.numerator) / m.Integer(q.denominator)
            self.to_float = lambda e, env: float(e.subs(env))
        else:
            raise ValueError(f"unknown engine {name!r}")
        self.m = m
        self.exp, self.log, self.tanh, self.sqrt = m.exp, m.log, m.tanh, m.sqrt
        self.diff, self.cse, self.expand = m.diff, m.cse, m.expand
        self.zero = m.Integer(0)

    def symbols(self, names):
        return [self.m.Symbol(n) for n in names]

    def add(self, terms):
        return self.m.Add(*terms)


# --------------------------------------------------------------------------
# The losses.  Data are exact rationals (0.6 -> 3/5); the initial point is
# only used to evaluate ξ numerically.
# --------------------------------------------------------------------------


def Q(s):
    """Exact rational from a decimal literal, e.g. Q('-0.7') == -7/10."""
    return Fraction(str(s))


def mean(E, terms):
    return E.rat(Fraction(1, len(terms))) * E.add(terms)


def linear(E, row, w):
    """Σ_j row_j w_j with exact data row."""
    return E.add([E.rat(Q(x)) * wj for x, wj in zip(row, w)])


def loss_factorization(E):
    u, v = E.symbols(["u", "v"])
    f = (u * v - 1) ** 2 / 2
    return f, [u, v], [0.3, -1.2]


def loss_linear_regression(E):
    X = [["1.0", "0.5"], ["0.2", "-1.0"], ["-0.7", "0.3"], ["1.5", "1.1"]]
    y = ["0.9", "-0.4", "0.1", "1.8"]
    w = E.symbols(["w1", "w2"])
    r = [linear(E, X[i], w) - E.rat(Q(y[i])) for i in range(len(y))]
    f = mean(E, [ri**2 for ri in r]) / 2
    return f, w, [0.1, -0.2]


def loss_logistic(E):
    X = [["1.0", "2.0"], ["-1.5", "0.5"], ["0.3", "-1.0"], ["2.0", "1.0"]]
    y = [1, -1, -1, 1]
    w1, w2, b = E.symbols(["w1", "w2", "b"])
    softplus = lambda x: E.log(1 + E.exp(x))
    f = mean(
        E, [softplus(-y[i] * (linear(E, X[i], [w1, w2]) + b)) for i in range(len(y))]
    )
    return f, [w1, w2, b], [0.2, -0.1, 0.05]


def loss_tanh_net(E):
    x = ["0.5", "-1.0", "2.0"]
    y = ["0.2", "0.4", "-0.3"]
    a1, a2, b1, b2 = E.symbols(["a1", "a2", "b1", "b2"])
    a, b = [a1, a2], [b1, b2]
    out = [
        E.add([a[j] * E.tanh(b[j] * E.rat(Q(xi))) for j in range(2)]) for xi in x
    ]
    f = mean(E, [(out[i] - E.rat(Q(y[i]))) ** 2 for i in range(len(x))]) / 2
    return f, [a1, a2, b1, b2], [0.3, -0.2, 0.8, 0.5]


def loss_scale_invariant(E):
    X = [["1.0", "0.0", "0.5"], ["0.2", "1.0", "-0.3"], ["-0.4", "0.6", "1.0"]]
    y = ["0.5", "-0.2", "0.8"]
    w1, w2, w3, s = E.symbols(["w1", "w2", "w3", "s"])
    w = [w1, w2, w3]
    norm = E.sqrt(w1**2 + w2**2 + w3**2)
    z = [s * linear(E, X[i], w) / norm for i in range(3)]
    f = mean(E, [(z[i] - E.rat(Q(y[i]))) ** 2 for i in range(3)]) / 2
    return f, [w1, w2, w3, s], [0.6, -0.3, 0.9, 1.2]


def loss_softmax(E):
    X = [["1.0", "-0.5"], ["0.3", "0.8"], ["-1.2", "0.4"]]
    Y = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    names = [f"W{c}{j}" for c in (1, 2, 3) for j in (1, 2)]  # row-major W[c,j]
    params = E.symbols(names)
    W = [params[0:2], params[2:4], params[4:6]]
    z = [[linear(E, X[i], W[c]) for c in range(3)] for i in range(3)]
    terms = [
        E.log(E.add([E.exp(z[i][c]) for c in range(3)]))
        - E.add([Y[i][c] * z[i][c] for c in range(3)])
        for i in range(3)
    ]
    f = mean(E, terms)
    return f, params, [0.1, -0.2, 0.0, 0.3, -0.1, 0.1]


LOSSES = {
    "factorization": loss_factorization,
    "linear_regression": loss_linear_regression,
    "logistic": loss_logistic,
    "tanh_net": loss_tanh_net,
    "scale_invariant": loss_scale_invariant,
    "softmax": loss_softmax,
}

# --------------------------------------------------------------------------
# The derivation.
# --------------------------------------------------------------------------


def compositions(total, parts, least=0):
    """All (k_1, …, k_parts) with k_i ≥ least and Σ k_i = total, in lexicographic order."""
    if parts == 1:
        if total >= least:
            yield (total,)
        return
    for first in range(least, total - least * (parts - 1) + 1):
        for rest in compositions(total - first, parts - 1, least):
            yield (first,) + rest


def counter_terms(E, f, params, K):
    """ξ_1..ξ_K of f as lists of expressions, by the F_m recursion above."""
    n = len(params)
    F = {0: [-E.diff(f, p) for p in params]}  # F_0 = −g
    products = {}  # (k_1, …, k_j) -> L_{F_{k_1}} ⋯ L_{F_{k_{j−1}}} F_{k_j}
    jacobians = {}  # (k_1, …, k_j) -> Jacobian of that product

    def product(t):
        if len(t) == 1:
            return F[t[0]]
        if t not in products:
            J = jacobian(t[1:])  # L_A B = (DB)·A with B the inner product
            A = F[t[0]]
            products[t] = [E.add([J[i][j] * A[j] for j in range(n)]) for i in range(n)]
        return products[t]

    def jacobian(t):
        if t not in jacobians:
            jacobians[t] = [[E.diff(b, p) for p in params] for b in product(t)]
        return jacobians[t]

    for m in range(1, K + 1):
        xi_m = [[] for _ in range(n)]  # ξ_m = −F_m = Σ_j (1/j!) Σ_comp product
        for j in range(2, m + 2):
            inner = [[] for _ in range(n)]
            for t in compositions(m + 1 - j, j):
                v = product(t)
                for i in range(n):
                    inner[i].append(v[i])
            c = E.rat(Fraction(1, math.factorial(j)))
            for i in range(n):
                xi_m[i].append(c * E.add(inner[i]))
        F[m] = [-E.add(terms) for terms in xi_m]
    return [[-e for e in F[k]] for k in range(1, K + 1)]


# --------------------------------------------------------------------------
# Operation count and evaluation of a cse'd program (works on both engines'
# trees: both use Add / Mul / Pow / function nodes; SymEngine writes exp(x)
# as Pow(E, x), which is a non-integer power and so a call, as in SymPy).
# --------------------------------------------------------------------------


def _int_exponent(e):
    """The exponent of a Pow node as an int, or None if it is not an integer."""
    x = e.args[1]
    return int(x) if x.is_Integer else None


def count_ops(e):
    """Operations in one expression tree, by the rules in the module docstring."""
    if not e.args or e.is_Number:  # symbol or constant
        return 0
    if e.is_Add:
        return len(e.args) - 1 + sum(count_ops(a) for a in e.args)
    if e.is_Mul:
        ops = len(e.args) - 1
        numerator = False
        for a in e.args:
            k = _int_exponent(a) if a.is_Pow else None
            if k is not None and k < 0:
                # a divisor: the division replaces the multiplication, and a
                # power other than −1 costs one more for the power itself
                ops += count_ops(a.args[0]) + (1 if k != -1 else 0)
            else:
                numerator = True
                ops += count_ops(a)
        return ops + (0 if numerator else 1)  # 1/(x*y) needs its "1/"
    if e.is_Pow:
        # integer power: 1; reciprocal 1/x: 1 (a division); other: a call
        return 1 + sum(count_ops(a) for a in e.args)
    # function call (exp, log, tanh, …)
    return 1 + sum(count_ops(a) for a in e.args)


def program_ops(replacements, reduced):
    return sum(count_ops(e) for _, e in replacements) + sum(count_ops(e) for e in reduced)


def rel_diff(a, b):
    """The largest difference of two vectors, relative to their largest entry."""
    scale = max([abs(x) for x in a] + [abs(x) for x in b] + [1e-300])
    return max(abs(x - y) for x, y in zip(a, b)) / scale


def evaluate_program(E, replacements, reduced, params, point):
    """Evaluate a cse'd program at a point, replacement by replacement."""
    env = dict(zip(params, point))
    # pass each expression only its own free symbols: handing the whole,
    # growing environment to every substitution would make this quadratic
    at = lambda e: E.to_float(e, {s: env[s] for s in e.free_symbols})
    for s, e in replacements:
        env[s] = at(e)
    return [at(e) for e in reduced]


# --------------------------------------------------------------------------
# One timed case, run in a child process.
# --------------------------------------------------------------------------


def derive_case(engine, loss, K, timed=lambda seconds: None):
    """Build, derive, cse; return seconds, ops and the ξ values at the point.

    `timed(seconds)` is called as soon as the timed part is over, before the
    (untimed) operation count and evaluation.
    """
    E = Engine(engine)
    f, params, point = LOSSES[loss](E)  # untimed: symbols, data, the loss
    t0 = time.perf_counter()
    xis = counter_terms(E, f, params, K)
    flat = [e for xi in xis for e in xi]
    replacements, reduced = E.cse(flat)
    seconds = time.perf_counter() - t0
    timed(seconds)
    ops = program_ops(replacements, reduced)
    vals = evaluate_program(E, replacements, reduced, params, point)
    n = len(params)
    values = {k + 1: vals[k * n : (k + 1) * n] for k in range(K)}
    return {"seconds": seconds, "ops": ops, "cse_replacements": len(replacements),
            "values": values}


def _child(conn, derive, args):
    try:
        result = derive(*args, lambda s: conn.send(("timed", s)))
        conn.send(("ok", result))
    except BaseException as exc:  # report, don't hang the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def run_forked(derive, args, label, timeout):
    """`derive(*args, on_timed)` in a fresh forked process; None if it ran out of time.

    Only the derivation (up to the child's "timed" message, sent through `on_timed`) is
    held to `timeout`; counting and evaluating the finished program are not.  Shared with
    sympy_optimizers.py.
    """
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, derive, args))
    proc.start()
    child.close()
    try:
        if not parent.poll(max(timeout, 0.0)):
            proc.kill()  # only this run's own process
            return None
        status, payload = parent.recv()
        if status == "timed":
            status, payload = parent.recv()
    except EOFError:
        status, payload = "error", f"child exited with code {proc.exitcode}"
    finally:
        proc.join()
    if status != "ok":
        raise RuntimeError(f"{label}: {payload}")
    return payload


def run_once(engine, loss, K, timeout):
    """One run in a fresh forked process; None if it ran out of time."""
    return run_forked(derive_case, (engine, loss, K), f"{engine}/{loss}/K={K}", timeout)


def best_of(once, budget, repeat):
    """Best of up to `repeat` runs of `once(seconds_left)` (a record with "seconds", or None
    when it ran out of time) whose times fit in `budget` seconds, with every run's time under
    "runs"; {"timeout": True} when not one fitted."""
    runs = []
    while len(runs) < repeat:
        left = budget - sum(r["seconds"] for r in runs)
        if runs and runs[-1]["seconds"] > left:
            break  # another run would not fit in the budget
        r = once(left)
        if r is None:
            break
        runs.append(r)
    if not runs:
        return {"timeout": True}
    best = min(runs, key=lambda r: r["seconds"])
    return dict(best, timeout=False, runs=[r["seconds"] for r in runs])


def run_case(engine, loss, K, budget, repeat):
    """Best of up to `repeat` runs whose derivation times fit in `budget` seconds."""
    best = best_of(lambda left: run_once(engine, loss, K, left), budget, repeat)
    if best["timeout"]:
        return best
    return {"timeout": False, "seconds": best["seconds"], "ops": best["ops"],
            "cse_replacements": best["cse_replacements"],
            "runs": best["runs"], "values": best["values"]}


# --------------------------------------------------------------------------
# Self-checks.
# --------------------------------------------------------------------------


def check_quadratic(engine):
    """ξ_k = A^{k+1}θ/(k+1) exactly for f = ½θᵀAθ on a 2×2 A, k ≤ 3."""
    E = Engine(engine)
    th = E.symbols(["t1", "t2"])
    A = [[E.rat(Fraction(2)), E.rat(Fraction(1, 2))],
         [E.rat(Fraction(1, 2)), E.rat(Fraction(3))]]
    f = E.add([A[i][j] * th[i] * th[j] for i in range(2) for j in range(2)]) / 2
    xis = counter_terms(E, f, th, 3)
    power = list(th)  # A^{k+1} θ, built up one multiplication at a time
    power = [E.add([A[i][j] * power[j] for j in range(2)]) for i in range(2)]
    for k in range(1, 4):
        power = [E.add([A[i][j] * power[j] for j in range(2)]) for i in range(2)]
        for i in range(2):
            diff = E.expand(xis[k - 1][i] - power[i] / (k + 1))
            assert diff == 0, f"{engine}: quadratic ξ_{k}[{i}] is off by {diff}"


def close(a, b, tol=1e-10):
    """Vectors a, b agree to tol relative to their largest component."""
    scale = max([abs(x) for x in a] + [abs(x) for x in b] + [1e-300])
    return all(abs(x - y) <= tol * scale for x, y in zip(a, b))


def closed_forms(loss, kmax):
    """ξ_1..ξ_min(3,kmax) at the initial point from their closed forms (SymPy)."""
    import sympy

    E = Engine("sympy")
    f, params, point = LOSSES[loss](E)
    n = len(params)
    at = {p: sympy.Float(v) for p, v in zip(params, point)}
    num = lambda e: float(e.xreplace(at))
    gs = [sympy.diff(f, p) for p in params]
    Hs = [[sympy.diff(gi, p) for p in params] for gi in gs]
    g = [num(e) for e in gs]
    H = [[num(e) for e in row] for row in Hs]
    mv = lambda M, v: [sum(M[i][j] * v[j] for j in range(n)) for i in range(n)]
    Hg = mv(H, g)
    forms = {1: [x / 2 for x in Hg]}
    if kmax >= 2:
        T = [[[num(sympy.diff(Hs[i][j], params[k])) for k in range(n)]
              for j in range(n)] for i in range(n)]
        T2 = lambda a, b: [sum(T[i][j][k] * a[j] * b[k] for j in range(n)
                               for k in range(n)) for i in range(n)]
        Tgg, HHg = T2(g, g), mv(H, Hg)
        forms[2] = [Tgg[i] / 12 + HHg[i] / 3 for i in range(n)]
        if kmax >= 3:
            THgg, HTgg, HHHg = T2(Hg, g), mv(H, Tgg), mv(H, HHg)
            forms[3] = [THgg[i] / 12 + HTgg[i] / 12 + HHHg[i] / 4 for i in range(n)]
    return forms


# --------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--orders", default="1,2,3,4", help="orders K, comma-separated")
    ap.add_argument("--losses", default=",".join(LOSSES), help="losses, comma-separated")
    ap.add_argument("--budget", type=float, default=60.0,
                    help="wall-clock seconds per case, all runs together (default 60)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case, best kept")
    ap.add_argument("--engines", default="sympy,symengine")
    ap.add_argument("--json", metavar="FILE", help="write all measurements here")
    ap.add_argument("--values", action="store_true",
                    help="print ξ_k at the initial point as JSON {loss: {k: [...]}}")
    args = ap.parse_args()

    orders = sorted({int(k) for k in args.orders.split(",")})
    losses = args.losses.split(",")
    engines = args.engines.split(",")
    for name in losses:
        if name not in LOSSES:
            ap.error(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")
    if min(orders) < 1:
        ap.error("orders start at 1")
    for engine in engines:
        Engine(engine)  # fail early on an unknown or missing engine
        check_quadratic(engine)

    results = []  # one record per (loss, K, engine)
    print("| loss | K | engine | seconds | ops |")
    print("| --- | ---: | --- | ---: | ---: |")
    for loss in losses:
        for engine in engines:
            timed_out_at = None
            for K in orders:
                rec = {"loss": loss, "K": K, "engine": engine, "budget": args.budget}
                if timed_out_at is not None:
                    rec.update(timeout=True, skipped=True)
                    secs = f"timeout >{args.budget:g}s (skipped: K={timed_out_at} timed out)"
                else:
                    rec.update(run_case(engine, loss, K, args.budget, args.repeat))
                    if rec["timeout"]:
                        timed_out_at = K
                        secs = f"timeout >{args.budget:g}s"
                    else:
                        secs = f"{rec['seconds']:.3f}"
                ops = "" if rec["timeout"] else str(rec["ops"])
                print(f"| {loss} | {K} | {engine} | {secs} | {ops} |", flush=True)
                results.append(rec)

    # ξ_k values per loss and engine, from the largest K that finished.
    values = {}  # loss -> engine -> k -> [floats]
    for rec in results:
        if not rec["timeout"]:
            values.setdefault(rec["loss"], {}).setdefault(rec["engine"], {}).update(
                rec["values"])

    failures = []
    for loss, by_engine in values.items():
        kmax = max(max(v) for v in by_engine.values())
        forms = closed_forms(loss, kmax)
        for engine, vals in by_engine.items():
            for k, want in forms.items():
                if k in vals and not close(vals[k], want, 1e-9):
                    failures.append(f"{loss}/{engine}: ξ_{k} {vals[k]} != closed form {want}")
        if len(by_engine) > 1:
            (e1, v1), (e2, v2) = list(by_engine.items())[:2]
            for k in sorted(set(v1) & set(v2)):
                if not close(v1[k], v2[k]):
                    failures.append(f"{loss}: ξ_{k} {e1} {v1[k]} != {e2} {v2[k]}")

    if args.values:
        merged = {}
        for loss, by_engine in values.items():
            out = {}
            for engine in reversed(engines):  # the first engine listed wins
                out.update(by_engine.get(engine, {}))
            merged[loss] = {str(k): out[k] for k in sorted(out)}
        print()
        print(json.dumps(merged, indent=2))

    if args.json:
        import sympy

        try:
            import symengine
            se_version = symengine.__version__
        except ImportError:
            se_version = None
        meta = {"python": platform.python_version(), "sympy": sympy.__version__,
                "symengine": se_version, "cores": os.cpu_count(),
                "machine": platform.machine(), "budget": args.budget,
                "repeat": args.repeat}
        write_results(args.json, meta, results)

    assert not failures, "self-check failed:\n" + "\n".join(failures)
    print(f"\nself-checks passed (quadratic, closed forms up to ξ_3, "
          f"{'engine agreement' if len(engines) > 1 else 'single engine'})",
          file=sys.stderr)


def write_results(path, meta, results):
    """Writes a peer run as JSON: the machine and versions, then each example's record
    (value dictionaries keyed by strings)."""
    for rec in results:
        if "values" in rec:
            rec["values"] = {str(k): v for k, v in rec["values"].items()}
    with open(path, "w") as fh:
        json.dump({"meta": meta, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
