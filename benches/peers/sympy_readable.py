#!/usr/bin/env python3
"""Peer benchmark: the readable form of ξ_1..ξ_3, eomderive against SymPy's factor + cse.

What it measures
----------------
Per example and order K (``--orders``, default 3), the counter terms
ξ_1..ξ_K as a person would read them, printed by each tool:

* SymPy: ξ_1..ξ_K derived by the sibling scripts' code (untimed; imported, not
  copied): sympy_peer.py's ``counter_terms`` for gradient descent (the six
  losses of its ``LOSSES``, and examples/softmax_wd.expr, its softmax plus
  (λ/2)‖θ‖², λ = 1/100; examples/normalized_layer_wd.expr likewise, only when
  asked for: SymPy takes 8 minutes to derive its ξ_3), sympy_optimizers.py's
  ``derive`` for examples/momentum.expr (heavy-ball, β = 9/10) and
  examples/sam.expr (ρ = 1·η), sympy_sgd.py's ``derive_xi`` for the three
  examples/sgd_*.expr — that derivation stops at ξ_2, so those rows have K ≤ 2.
  Then, timed: ``sympy.factor`` of every component, and one ``sympy.cse`` over
  all components of ξ_1..ξ_K together.  *SymPy s* is that factor + cse time,
  best of ``--repeat`` runs, each in a fresh fork of the process that derived ξ
  (sympy_peer.py's ``run_forked`` and ``best_of``: all runs of a case together
  are held to ``--budget`` seconds, default 120; a first run over it is killed
  and reported ``timeout >Ns (factored i/n)``, i of the n components factored
  by then, and higher K of that example are skipped).
* eomderive: ``target/release/eomderive examples/<name>.expr --order K
  --format json`` (cwd: the repository; the files set their own optimizer),
  best of ``--repeat`` runs.  It reports ``form`` (``readable``, or
  ``program`` with a ``form_note`` when the readable form fell back), the
  components of each ξ_k and the ``bindings`` they use; *form s* and *derive s*
  are its ``stats.form_seconds`` and ``stats.derive_seconds``, *program ops*
  its ``stats.ops`` (the straight-line program form, eomderive's own count).

*printed ops* is one count for both tools, taken on the printed text by
``printed_ops`` below (its docstring has the rules): SymPy's ``str()`` of every
cse replacement and reduced expression; eomderive's components of ξ_1..ξ_K and
the right-hand side of every binding (also those only the loss or gradient
use).  eomderive's own ``stats.printed_ops`` is shown beside it in brackets; it
also counts the printed loss and gradient (a note says so where it is not
this count plus theirs).

Value check (an AssertionError after the table ends the script): SymPy's
printed program and eomderive's printed components (bindings substituted) are
both evaluated from their text, at 30 digits, at the example's initial point;
each ξ_k must agree to ``--tol`` (default 1e-10) relative to its largest
component — so the two counts are of the same quantities.  Both are also held
to SymPy's ξ as derived (before factor, so also where factor + cse ran out of
time; in floating point, sympy_optimizers.py's ``fnum``) and eomderive's to its
own ``evaluation.xi``; its ``params`` and
``evaluation.at`` must be the transcriptions' parameters, in order, and point.

Running
-------
    pip install -r benches/peers/requirements.txt      # sympy
    cargo build --release
    python3 benches/peers/sympy_readable.py [--examples name,...] [--orders 1,2,3]
        [--budget 120] [--repeat 3] [--tol 1e-10] [--eomderive PATH] [--json out.json]

It prints a Markdown table (example, params, K, SymPy printed ops, eomderive
printed ops, eomderive program ops, SymPy s, eomderive form s and derive s,
eomderive's form); ``--json`` writes every record, with both tools' printed
text.  The default run takes about 35 minutes on two cores, most of it SymPy's
factor running out of budget and deriving softmax and scale_invariant.
Timings depend on the machine: note its core count when quoting them.
"""

import argparse
import json
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import time

import mpmath
import sympy

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import sympy_sgd  # noqa: E402
from sympy_optimizers import derive, fnum, method_params  # noqa: E402
from sympy_peer import (LOSSES, Q, Engine, best_of, counter_terms, rel_diff,  # noqa: E402
                        run_forked, write_results)

E = Engine("sympy")
DIGITS = 30  # evaluation precision of both tools' printed text

# --------------------------------------------------------------------------
# Printed operations, counted on text.
# --------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<op>\*\*|[-+*/^(),])|(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"
                    r"|(?P<name>[^\W\d]\w*(?:\[[^\]]*\])?))")


def tokens(text):
    """(kind, text) pairs: kind "op" (``** + - * / ^ ( ) ,``), "num", "name" (an indexed
    name such as ``W[2,1]`` is one name) or "call" (a name followed by ``(``)."""
    out, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot read {text[pos:pos + 20]!r} in {text[:80]!r}")
        kind = m.lastgroup
        out.append([kind, m.group(kind)])
        pos = m.end()
    for a, b in zip(out, out[1:]):
        if a[0] == "name" and b == ["op", "("]:
            a[0] = "call"
    return [tuple(t) for t in out]


def printed_ops(text):
    """Operations of one printed expression, counted on its text alone.

    Each binary ``+ - * / ^`` (``**`` is the power too) counts 1, each unary minus 1, each
    function call (a name followed by ``(``) 1.  Names (parameters, bindings, cse symbols,
    indexed names such as ``w[1]`` or ``W[2,1]``, whose comma is part of the name), numbers,
    parentheses and a unary plus cost nothing.  A ``+``/``-`` is unary at the start, after
    ``(``, after ``,`` and after another operator.  So a rational constant costs what its
    printing costs: ``x/2`` 1, ``1/2*x`` 2, ``-1/2`` 2.
    """
    ops, prev = 0, None
    for kind, tok in tokens(text):
        if kind == "call":
            ops += 1
        elif kind == "op" and tok in ("+", "-", "*", "/", "^", "**"):
            unary = tok in "+-" and (prev is None or (prev[0] == "op" and prev[1] != ")"))
            ops += 0 if (unary and tok == "+") else 1
        prev = (kind, tok)
    return ops


assert printed_ops("(u*v - 1)*(2*u^2*v + v^3 - u)/2") == 10
assert printed_ops("-x**2") == 2
assert printed_ops("x**(-1) + tanh(b[1]/2)") == 5
assert printed_ops("1/2*t5 - W[2,1]*sigmoid(-z[1, 3])") == 6
assert printed_ops("t1") == 0 and printed_ops("-3/4") == 2

# --------------------------------------------------------------------------
# Evaluating printed text (both tools' syntax: ^ or ** as power).
# --------------------------------------------------------------------------

_FUNCS = {"exp": mpmath.exp, "log": mpmath.log, "sqrt": mpmath.sqrt, "sin": mpmath.sin,
          "cos": mpmath.cos, "tan": mpmath.tan, "tanh": mpmath.tanh, "log1p": mpmath.log1p,
          "sigmoid": lambda x: 1 / (1 + mpmath.exp(-x)),
          "softplus": lambda x: mpmath.log1p(mpmath.exp(x))}


def evaluate(text, value):
    """The printed expression's value, `value(name)` giving each name's (mpf)."""
    src = []
    for kind, tok in tokens(text):
        if kind == "call":
            src.append(f"_f[{tok!r}]")
        elif kind == "name":
            src.append(f"_v({tok!r})")
        elif kind == "num":
            src.append(f"_m({tok!r})")
        else:
            src.append("**" if tok == "^" else tok)
    return eval(" ".join(src), {"_f": _FUNCS, "_v": value, "_m": mpmath.mpf})


def evaluate_all(roots, bindings, point):
    """Values of `roots` (texts); `bindings` {name: text}, `point` {name: number}."""
    env = {k: mpmath.mpf(str(v)) for k, v in point.items()}

    def value(name):
        if name not in env:
            env[name] = evaluate(bindings[name], value)
        return env[name]

    return [evaluate(r, value) for r in roots]


# --------------------------------------------------------------------------
# The examples: ξ_1..ξ_K in SymPy, by the sibling scripts' derivations.
# Each builder returns (ξ as a list of K lists, params, initial point).
# --------------------------------------------------------------------------


def gd(loss, weight_decay=0, point=None):
    def build(K):
        f, params, p0 = LOSSES[loss](E) if isinstance(loss, str) else loss()
        f += sympy.Rational(weight_decay) / 2 * sympy.Add(*[p**2 for p in params])
        return counter_terms(E, f, params, K), params, point or p0
    return build


def optimizer(loss, method):
    def build(K):
        f, params, point = loss()
        beta, r = method_params(method, False)
        Fs = derive([sympy.diff(f, p) for p in params], params, method, K, beta=beta, r=r)
        return [[-e for e in F] for F in Fs[1:]], params, point
    return build


def sgd(name):
    def build(K):
        terms, params, point, m, order = sympy_sgd.EXAMPLES[name]()
        fs = sympy_sgd.batch_losses(terms, m)
        xi1, xi2, *_ = sympy_sgd.derive_xi(fs, params, sympy_sgd.orders_of(m, order))
        return [xi1, xi2][:K], params, point
    return build


def loss_momentum():  # examples/momentum.expr (heavy-ball, β = 9/10 in the file)
    x, y = ["1.0", "-0.5", "2.0", "0.3"], ["0.8", "-0.3", "1.5", "0.1"]
    u1, u2, v1, v2 = sympy.symbols("u1 u2 v1 v2")
    s = v1 * u1 + v2 * u2
    f = sympy.Add(*[(s * Q(x[i]) - Q(y[i])) ** 2 for i in range(4)]) / 4 / 2
    return f, [u1, u2, v1, v2], [0.6, 0.2, 0.5, -0.4]


def loss_sam():  # examples/sam.expr (ρ = 1·η in the file)
    X = [["1.0", "0.5"], ["-0.5", "1.0"], ["0.8", "-1.2"], ["-1.0", "-0.3"]]
    y = [1, 0, 1, 0]
    w1, w2, b = sympy.symbols("w1 w2 b")
    z = [Q(r[0]) * w1 + Q(r[1]) * w2 + b for r in X]
    f = sympy.Add(*[sympy.log(1 + sympy.exp(z[i])) - y[i] * z[i] for i in range(4)]) / 4
    return f, [w1, w2, b], [0.2, -0.1, 0.05]


def loss_normalized_layer():  # examples/normalized_layer_wd.expr, without its weight decay
    x, y = ["1.0", "-0.5", "0.3"], Q("0.4")
    V = [sympy.symbols(f"V{i}1 V{i}2 V{i}3") for i in (1, 2)]
    a = sympy.symbols("a1 a2")
    h = [sympy.tanh(sympy.Add(*[V[i][j] * Q(x[j]) for j in range(3)])
                    / sympy.sqrt(sympy.Add(*[v**2 for v in V[i]]))) for i in range(2)]
    f = (a[0] * h[0] + a[1] * h[1] - y) ** 2 / 2
    return f, [*V[0], *V[1], *a], [0.8, -0.4, 0.2, 0.1, 0.7, -0.5, 0.5, -0.3]


EXAMPLES = {name: gd(name) for name in LOSSES}
EXAMPLES.update({
    "normalized_layer_wd": gd(loss_normalized_layer, Q("0.01")),
    "softmax_wd": gd("softmax", Q("0.01"), [0.4, -0.2, 0.0, 0.3, -0.1, 0.6]),
    "momentum": optimizer(loss_momentum, "heavy-ball"),
    "sam": optimizer(loss_sam, "sam"),
    **{name: sgd(name) for name in sympy_sgd.EXAMPLES},
})
MAX_ORDER = {name: 2 for name in sympy_sgd.EXAMPLES}  # sympy_sgd.py derives ξ_1, ξ_2
DEFAULT = [name for name in EXAMPLES if name != "normalized_layer_wd"]  # ξ_3: 8 min in SymPy

# --------------------------------------------------------------------------
# The two sides.
# --------------------------------------------------------------------------


_FACTORED = multiprocessing.get_context("fork").Value("i", 0)  # progress of a forked run


def factor_cse(flat, timed=lambda seconds: None):
    """Timed: factor each expression, then one cse over all; the program as text."""
    t0 = time.perf_counter()
    factored = []
    for e in flat:
        factored.append(sympy.factor(e))
        _FACTORED.value = len(factored)
    t1 = time.perf_counter()
    replacements, reduced = sympy.cse(factored)
    seconds = time.perf_counter() - t0
    timed(seconds)
    return {"seconds": seconds, "factor_seconds": t1 - t0,
            "replacements": [[str(s), str(e)] for s, e in replacements],
            "reduced": [str(e) for e in reduced]}


def sympy_case(name, xis, params, point, budget, repeat):
    """SymPy's factor + cse of ξ_1..ξ_K (`xis`), timed, counted and evaluated."""
    flat = [e for xi in xis for e in xi]

    def once(left):
        _FACTORED.value = 0
        return run_forked(factor_cse, (flat,), f"sympy/{name}", left)

    rec = best_of(once, budget, repeat)
    if rec["timeout"]:
        rec["factored"] = f"{_FACTORED.value}/{len(flat)}"
        return rec
    texts = [e for _, e in rec["replacements"]] + rec["reduced"]
    rec["printed_ops"] = sum(printed_ops(t) for t in texts)
    vals = evaluate_all(rec["reduced"], dict(rec["replacements"]),
                        {str(p): v for p, v in zip(params, point)})
    n = len(params)
    rec["values"] = {k + 1: [float(v) for v in vals[k * n:(k + 1) * n]]
                     for k in range(len(xis))}
    return rec


def eomderive_side(path, name, K, repeat, timeout):
    """A record of eomderive's readable form, or (None, why)."""
    runs = []
    for _ in range(max(repeat, 1)):
        cmd = [path, f"examples/{name}.expr", "--order", str(K), "--format", "json"]
        try:
            p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, str(exc)
        if p.returncode != 0:
            return None, f"exit status {p.returncode}: {p.stderr.strip()[:200]}"
        runs.append(json.loads(p.stdout))
    data = runs[0]
    if "form" not in data:
        return None, "its JSON has no `form` (a binary from before the readable form)"
    comps = [c for xi in sorted(data["counter_terms"], key=lambda c: c["k"])[:K]
             for c in xi["components"]]
    bindings = {b["name"]: b["expr"] for b in data.get("bindings", [])}
    stats = lambda key: min((r["stats"].get(key) for r in runs
                             if r["stats"].get(key) is not None), default=None)
    used, todo = set(), list(comps)  # bindings the components reach
    while todo:
        for kind, tok in tokens(todo.pop()):
            if kind == "name" and tok in bindings and tok not in used:
                used.add(tok)
                todo.append(bindings[tok])
    n = len(data["params"])
    vals = evaluate_all(comps, bindings, data["evaluation"]["at"])
    return {"form": data["form"], "form_note": data.get("form_note"),
            "params": data["params"], "at": data["evaluation"]["at"],
            "printed_ops": sum(printed_ops(t) for t in comps + list(bindings.values())),
            "printed_ops_reached": sum(printed_ops(t) for t in
                                       comps + [bindings[b] for b in used]),
            "own_printed_ops": data["stats"].get("printed_ops"),
            "printed_ops_with_loss": sum(printed_ops(t) for t in comps + list(bindings.values())
                                         + [data["loss"]] + data["gradient"]),
            "program_ops": data["stats"].get("ops"),
            "form_seconds": stats("form_seconds"), "derive_seconds": stats("derive_seconds"),
            "bindings": len(bindings), "bindings_reached": len(used),
            "components": comps, "binding_text": bindings,
            "values": {k + 1: [float(v) for v in vals[k * n:(k + 1) * n]] for k in range(K)},
            "own_values": {k + 1: x for k, x in enumerate(data["evaluation"]["xi"][:K])}}, None


def check(name, sy, eo, params, point, derived, tol):
    """Value and naming disagreements between the two sides, as messages; `derived` holds
    SymPy's ξ_1..ξ_K, as derived, at the initial `point` of `params`."""
    bad = []
    plain = lambda names: [re.sub(r"[\[\],\s]", "", str(s)) for s in names]
    if eo is not None and (plain(eo["params"]) != plain(params)
                           or [eo["at"][p] for p in eo["params"]] != point):
        bad.append(f"{name}: eomderive's params {eo['params']} at {eo['at']} are not SymPy's "
                   f"{params} at {point}")
    factored = sy.get("values", {})
    for k, derived in enumerate(derived, 1):
        pairs = [("SymPy factor+cse", factored.get(k), "SymPy's derived ξ", derived)]
        if eo is not None:
            mine = eo["values"][k]
            pairs += [("eomderive", mine, "its evaluation.xi", eo["own_values"][k]),
                      ("eomderive", mine, "SymPy's derived ξ", derived),
                      ("eomderive", mine, "SymPy factor+cse", factored.get(k))]
        for what, a, other, b in pairs:
            if a is not None and b is not None and not rel_diff(a, b) <= tol:
                bad.append(f"{name}: ξ_{k} {what} {a} != {other} {b} "
                           f"(rel {rel_diff(a, b):.1e})")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--examples", default=",".join(DEFAULT), help="comma-separated, from "
                    + ", ".join(EXAMPLES) + " (default: all but normalized_layer_wd)")
    ap.add_argument("--orders", default="3",
                    help="orders K, comma-separated (default 3; SGD rows at most 2)")
    ap.add_argument("--budget", type=float, default=120.0,
                    help="seconds per case, all its SymPy factor+cse runs together")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case, best kept")
    ap.add_argument("--tol", type=float, default=1e-10, help="relative value tolerance")
    ap.add_argument("--eomderive", default=os.path.join(REPO, "target", "release", "eomderive"))
    ap.add_argument("--json", metavar="FILE", help="write all records here")
    args = ap.parse_args()
    names = args.examples.split(",")
    for name in names:
        if name not in EXAMPLES:
            ap.error(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}")
    orders = sorted({int(k) for k in args.orders.split(",")})
    if min(orders) < 1:
        ap.error("orders start at 1")
    mpmath.mp.dps = DIGITS

    rows, results, failures, notes = [], [], [], []
    for name in names:
        cap = MAX_ORDER.get(name, max(orders))
        Ks = sorted({min(K, cap) for K in orders})
        print(f"{name}: deriving ξ_1..ξ_{Ks[-1]} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        xis, params, point = EXAMPLES[name](Ks[-1])  # untimed
        derive_seconds = time.perf_counter() - t0
        point, memo = [float(v) for v in point], {}
        env = dict(zip(params, point))
        derived = [[fnum(e, env, memo) for e in xi] for xi in xis]  # to check both sides
        timed_out = None
        for K in Ks:
            print(f"{name} (K = {K}) ...", file=sys.stderr, flush=True)
            if timed_out:
                sy = {"timeout": True, "skipped": timed_out}
                sy_s = f"timeout >{args.budget:g}s (skipped: K={timed_out} timed out)"
            else:
                sy = sympy_case(name, xis[:K], params, point, args.budget, args.repeat)
                sy_s = (f"timeout >{args.budget:g}s (factored {sy['factored']})"
                        if sy["timeout"] else f"{sy['seconds']:.3f}")
                timed_out = K if sy["timeout"] else None
            sy.update(derive_seconds=derive_seconds, derived_values=derived[:K])
            eo, why = eomderive_side(args.eomderive, name, K, args.repeat, args.budget)
            rec = {"example": name, "K": K, "budget": args.budget, "point": point,
                   "params": [str(p) for p in params], "sympy": sy, "eomderive": eo}
            failures += check(name, sy, eo, params, point, derived[:K], args.tol)
            sy_ops = "" if sy["timeout"] else str(sy["printed_ops"])
            eo_cols = [""] * 5
            if eo is None:
                notes.append(f"{name}, K = {K}: eomderive skipped: {why}")
            else:
                if eo["own_printed_ops"] != eo["printed_ops_with_loss"]:
                    notes.append(f"{name}, K = {K}: eomderive's stats.printed_ops "
                                 f"{eo['own_printed_ops']} != {eo['printed_ops_with_loss']} "
                                 "counted here with its loss and gradient")
                form = eo["form"] + (f" ({eo['form_note']})" if eo["form_note"] else "")
                fmt = lambda s: "" if s is None else f"{s:.4f}"
                eo_cols = [f"{eo['printed_ops']} ({eo['own_printed_ops']})",
                           str(eo["program_ops"]), fmt(eo["form_seconds"]),
                           fmt(eo["derive_seconds"]), form]
            rows.append(f"| {name} | {len(params)} | {K} | {sy_ops} | {eo_cols[0]} | "
                        f"{eo_cols[1]} | {sy_s} | {eo_cols[2]} | {eo_cols[3]} | {eo_cols[4]} |")
            results.append(rec)

    print("| example | params | K | SymPy factor+cse printed ops | eomderive printed ops "
          "(own count) | eomderive program ops | SymPy s | eomderive form s "
          "| eomderive derive s | eomderive form |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print("\n".join(rows))
    for note in notes:
        print(f"\n{note}")
    print(f"\n({os.cpu_count()} cores, Python {platform.python_version()}, SymPy "
          f"{sympy.__version__}; SymPy s: factor + cse, best of {args.repeat} forked runs, "
          f"budget {args.budget:g}s per case)")

    if args.json:
        meta = {"python": platform.python_version(), "sympy": sympy.__version__,
                "cores": os.cpu_count(), "machine": platform.machine(),
                "budget": args.budget, "repeat": args.repeat, "orders": orders}
        write_results(args.json, meta, results)  # json writes the ints keying "values" as strings

    assert not failures, "value check failed:\n" + "\n".join(failures)
    compared = list(dict.fromkeys(f"{r['example']}" for r in results if r["eomderive"]))
    print(f"value checks passed (to {args.tol:g}: {', '.join(compared) or 'none compared'})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
