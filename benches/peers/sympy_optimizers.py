#!/usr/bin/env python3
"""Peer benchmark: the EoM counter terms of heavy-ball, Nesterov, extragradient
and SAM, derived by hand in SymPy, timed for orders 1..4.

What it derives
---------------
Time is t = nη; the equation of motion of an optimizer is dθ/dt = F(θ) =
Σ_{k≥0} η^k F_k(θ), its counter terms are ξ_k = −F_k (k ≥ 1) and F_0 is the
leading term (DESIGN.md §2.4).  Φ_s is the time-s flow of F,

    Φ_s(θ) − θ = Σ_{j≥1} s^j/j! (L_F)^{j−1} F,      L_A B := (DB)·A,

and F solves, as a formal power series in η,

    heavy-ball     Φ_η(θ) − θ + β(Φ_{−η}(θ) − θ) = −η g(θ)
    nesterov       Φ_η(θ) − θ + β(Φ_{−η}(θ) − θ) = −η g(θ + β(θ − Φ_{−η}(θ)))
    extragradient  Φ_η(θ) − θ                    = −η g(θ − η g(θ))
    sam (ρ = rη)   Φ_η(θ) − θ                    = −η g(θ + rη g(θ))

The "by hand" route: F = Σ η^k F_k with unknown fields F_k, found order by
order.  The coefficient of η^p in Φ_{±η}(θ) − θ is

    Σ_{j=1}^{p} (±1)^j/j! Σ_{k_1+…+k_j = p−j} L_{F_{k_1}} ⋯ L_{F_{k_{j−1}}} F_{k_j}

(products memoised by their index tuple, as in sympy_peer.py), and g at a
shifted point θ + s, s = Σ_{p≥1} η^p s_p, is Taylor-expanded,

    [g(θ + s)]_m = Σ_{n=1}^{m} (1/n!) Σ_{p_1+…+p_n = m, p_i ≥ 1} ∇^n g[s_{p_1}, …, s_{p_n}]

(partial derivatives of g memoised by multi-index).  Nesterov's shift is
s_p = −β [Φ_{−η}(θ) − θ]_p, SAM's s = rη g, extragradient's s = −η g.  At
η^{m+1} the only unknown is F_m, from the j = 1 term of the flows: its
coefficient is 1 − β for the two-step methods (1 from Φ_η, −β from βΦ_{−η})
and 1 for the one-step methods, so

    F_m = ( −[g(θ + s)]_m − Σ_{j=2}^{m+1} c_j/j! Σ_{k_1+…+k_j = m+1−j} L_{F_{k_1}} ⋯ F_{k_j} ) / a,

c_j = 1 + (−1)^j β, a = 1 − β (two-step); c_j = 1, a = 1 (one-step).  β and
r are sympy Symbols (the generic checks, ``--symbolic``) or the Rationals 9/10
and 1 (the timed runs by default).

What it measures
----------------
Per (optimizer, loss, K), for the loss files examples/{factorization,
linear_regression,logistic,tanh_net,scale_invariant}.expr (transcribed by
hand below, parameters in declaration order, at the files' initial points):

* sympy s: wall-clock time of the derivation of ξ_1..ξ_K (g = ∇f included,
  building the loss not) plus ``sympy.cse`` of all their components, best of
  ``--repeat`` runs, each in a fresh forked process (of a process warmed up
  by one small untimed derivation, so SymPy's one-off setup is not timed).  A
  case has a time budget (``--budget``, default 60 s) for all its runs
  together; a first run over it is killed and reported as ``timeout >Ns``,
  and higher K for that optimizer and loss are skipped.  β = 9/10
  (heavy-ball, nesterov), r = 1 (sam).  The optimizer/loss chains run
  ``--jobs`` at a time (default 2; ``--jobs 1`` gives the quietest timings);
  the default run took 12½ minutes on a busy two-core machine, about half of
  it the twelve cases that run out of budget (logistic and tanh_net at K = 4,
  scale_invariant at K = 3).  Progress goes to standard error.
* sympy ops: operations of the cse'd program (sympy_peer.py's count: an
  n-term sum or product n−1, a power or a division 1, a call 1).
* eomderive s: eomderive's own ``stats.derive_seconds`` (best of ``--repeat``
  runs of ``target/release/eomderive <file> --order K --optimizer <name>
  [--momentum 9/10 | --rho-ratio 1] --format json``), when the binary has
  ``--optimizer``; otherwise the comparison is skipped and said so.
* max rel diff: max over k ≤ K of max_i |ξ_k,i(SymPy) − ξ_k,i(eomderive)| /
  max_i |ξ_k,i| at the initial point.

Self-checks (an AssertionError ends the script; value checks are gathered
and asserted after the tables):

* generic coefficients: each method is run on a polynomial vector field in
  two variables with fixed pseudo-random integer coefficients, and ξ_k (k ≤
  ``--generic-order``, default 3) is solved exactly, at rational points, for
  its coefficients on the elementary differentials (trees; a node with m
  children is ∇^m g of its children) over Q(β, r) — an overdetermined system
  whose consistency is asserted too.  Asserted against DESIGN.md §2.4:
  heavy-ball F_0 = −g/(1−β), ξ_1 = (1+β)/(2(1−β)³) Hg, ξ_2 = (1+4β+β²)/(3(1−β)⁵)
  HHg + (1+10β+β²)/(12(1−β)⁵) T(g,g); Nesterov F_0 = −g/(1−β), ξ_1 =
  (1−β+2β²)/(2(1−β)³) Hg; extragradient ξ_1 = −½Hg; SAM ξ_1 = (r+½)Hg, ξ_2 =
  (r²/2+r/2+1/12) T(g,g) + (r+1/3) HHg; and GD's ξ_1..ξ_3 (§2.1), GD = heavy-ball
  at β = 0 = Nesterov at β = 0 = SAM at r = 0, extragradient = SAM at r = −1.
* quadratic: for g = θ in 1-D, F = log(r_+(η))/η θ exactly, r_+ the root of
  the method's characteristic polynomial that tends to 1 (heavy-ball r² −
  (1+β−x)r + β, Nesterov r² − (1−x)(1+β)r + (1−x)β, extragradient 1 − x + x²,
  SAM 1 − x − r x²); F_0..F_4 against the series of log r_+, symbolic β, r.
* residual: on the factorization loss the derived F_0..F_3 are put back into
  the defining relation, expanded literally (the whole F, L_F applied to it,
  g's argument substituted, as polynomials in u, v, η) and every coefficient
  up to η^4 must vanish, at β ∈ {9/10, 1/3} and r ∈ {1, −1/2}.
* on each loss, ξ_1..ξ_min(K,3) at the initial point against the tree forms
  above, evaluated with H, ∇³f, … taken separately (1e-9 relative); the values
  come from the cse'd program, so the check covers cse too.
* with an eomderive that has ``--optimizer``: its ``evaluation.gradient`` and
  ``evaluation.xi`` agree to 1e-9 relative (relative to the largest component
  of that ξ_k); with ``--generic --order 4 --optimizer <name> --format json``
  (β left symbolic; ``--rho-ratio 1`` for sam) its k = 1, 2, 3 tree
  coefficients (``tree`` in bracket notation, ``coefficient`` parsed with
  convert_xor) equal the ones derived here (k = 1, 2 are the closed forms
  above), after ``simplify``.  The JSON field ``leading`` is not read.

Running
-------
    pip install -r benches/peers/requirements.txt        # sympy
    python3 benches/peers/sympy_optimizers.py [--optimizers heavy-ball,nesterov,
        extragradient,sam[,gd]] [--losses name,...] [--orders 1,2,3,4]
        [--repeat 3] [--budget 60] [--jobs 2] [--symbolic] [--generic-order 3]
        [--eomderive PATH] [--json out.json]

    # a quick run (about half a minute, most of it the self-checks):
    python3 benches/peers/sympy_optimizers.py --losses factorization --orders 1,2

It prints the derived generic coefficients, then a Markdown table per
optimizer (loss, K, sympy s, sympy ops, eomderive s, max rel diff).
``--symbolic`` keeps β and r as Symbols in the timed derivation too (the
values are then taken at β = 9/10, r = 1).  ``gd`` (plain gradient descent,
eomderive run without ``--optimizer``) is a baseline outside the default
list; it is the derivation of sympy_peer.py done by this script's route.
Timings depend on the machine: note its core count and load when quoting
them (each derivation is single-threaded).
"""

import argparse
import itertools
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from random import Random

import sympy
from sympy.parsing.sympy_parser import (convert_xor, parse_expr,
                                        standard_transformations)

sys.setrecursionlimit(100_000)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

BETA = sympy.Symbol("beta")
R = sympy.Symbol("r")
BETA_VALUE = sympy.Rational(9, 10)
R_VALUE = sympy.Integer(1)

OPTIMIZERS = ["heavy-ball", "nesterov", "extragradient", "sam"]
KNOWN = ["gd"] + OPTIMIZERS  # gd: plain GD, the baseline (not in the default list)
TWO_STEP = {"heavy-ball", "nesterov"}

# The same operation count and forked runner as the GD peer (same folder).
from sympy_peer import LOSSES as PEER_LOSSES  # noqa: E402
from sympy_peer import (  # noqa: E402
    Engine, best_of, compositions, count_ops, program_ops, rel_diff, run_forked, write_results)


# --------------------------------------------------------------------------
# The losses: sympy_peer.py's transcriptions of examples/*.expr (decimal data as
# exact rationals, as eomderive reads them), built in SymPy.
# --------------------------------------------------------------------------

_SYMPY = Engine("sympy")

LOSSES = {
    name: (lambda name=name: PEER_LOSSES[name](_SYMPY))
    for name in ["factorization", "linear_regression", "logistic", "tanh_net",
                 "scale_invariant"]
}

# --------------------------------------------------------------------------
# The derivation.
# --------------------------------------------------------------------------


class Taylor:
    """Directional derivatives ∇^n g[v_1, …, v_n] of a vector field g."""

    def __init__(self, g, params):
        self.g, self.params = g, params
        self.partials = {}  # (i, sorted multi-index) -> ∂^… g_i

    def partial(self, i, idx):
        key = (i, idx)
        if key not in self.partials:
            if not idx:
                self.partials[key] = self.g[i]
            else:  # differentiate the partial with the last index dropped
                self.partials[key] = sympy.diff(self.partial(i, idx[:-1]),
                                                self.params[idx[-1]])
        return self.partials[key]

    def apply(self, vectors):
        """∇^n g[v_1, …, v_n] (n = len(vectors)) as a list of expressions."""
        n, N = len(self.params), len(vectors)
        out = []
        for i in range(n):
            terms = []
            if all(v is vectors[0] for v in vectors):  # one vector: by multisets
                v = vectors[0]
                for idx in itertools.combinations_with_replacement(range(n), N):
                    mult = math.factorial(N)
                    for c in Counter(idx).values():
                        mult //= math.factorial(c)
                    terms.append(mult * self.partial(i, idx)
                                 * sympy.Mul(*[v[j] for j in idx]))
            else:
                for idx in itertools.product(range(n), repeat=N):
                    terms.append(self.partial(i, tuple(sorted(idx)))
                                 * sympy.Mul(*[vectors[k][j] for k, j in enumerate(idx)]))
            out.append(sympy.Add(*terms))
        return out


def vsum(vectors, n):
    return [sympy.Add(*[v[i] for v in vectors]) for i in range(n)]


def vscale(c, v):
    return [c * x for x in v]


def derive(g, params, method, K, beta=BETA, r=R):
    """F_0..F_K (lists of expressions) of `method` for the vector field g."""
    n = len(params)
    F = {}
    products, jacobians = {}, {}
    sums = {}  # (j, total) -> Σ_{k_1+…+k_j = total} L_{F_{k_1}} ⋯ F_{k_j}
    taylor = Taylor(g, params)
    dg = {}  # sorted tuple of shift orders -> ∇^n g[s_{p_1}, …]
    shift = {}  # p -> s_p

    def product(t):
        if len(t) == 1:
            return F[t[0]]
        if t not in products:
            J = jacobian(t[1:])
            A = F[t[0]]
            products[t] = [sympy.Add(*[J[i][j] * A[j] for j in range(n)]) for i in range(n)]
        return products[t]

    def jacobian(t):
        if t not in jacobians:
            jacobians[t] = [[sympy.diff(b, p) for p in params] for b in product(t)]
        return jacobians[t]

    def lie_sum(j, total):
        if (j, total) not in sums:
            sums[(j, total)] = vsum([product(t) for t in compositions(total, j)], n)
        return sums[(j, total)]

    def flow(sign, p):
        """[Φ_{sign·η}(θ) − θ]_p, needs F_0..F_{p−1}."""
        return vsum([vscale(sympy.Rational(sign**j, math.factorial(j)), lie_sum(j, p - j))
                     for j in range(1, p + 1)], n)

    def s(p):  # the shift of g's argument, coefficient of η^p
        if p not in shift:
            if method == "nesterov":
                shift[p] = vscale(-beta, flow(-1, p))
            elif method in ("sam", "extragradient") and p == 1:
                shift[p] = vscale(r if method == "sam" else -1, g)
            else:
                shift[p] = [sympy.Integer(0)] * n
        return shift[p]

    def g_shifted(m):
        """[g(θ + s)]_m."""
        if m == 0:
            return g
        if method in ("gd", "heavy-ball"):
            return [sympy.Integer(0)] * n
        parts = []
        for N in range(1, m + 1):
            for ps in compositions(m, N, least=1):
                if method in ("sam", "extragradient") and any(p > 1 for p in ps):
                    continue  # s_p = 0 for p > 1
                key = tuple(sorted(ps))
                if key not in dg:
                    vectors = [s(p) for p in key]
                    if len(set(key)) == 1:
                        vectors = [vectors[0]] * N  # the same object: multisets
                    dg[key] = taylor.apply(vectors)
                parts.append(vscale(sympy.Rational(1, math.factorial(N)), dg[key]))
        return vsum(parts, n)

    two_step = method in TWO_STEP
    a = 1 - beta if two_step else 1
    for m in range(K + 1):
        rest = []
        for j in range(2, m + 2):
            c = (1 + (-1) ** j * beta) if two_step else 1
            rest.append(vscale(c / sympy.Integer(math.factorial(j)), lie_sum(j, m + 1 - j)))
        rest = vsum(rest, n)
        rhs = vscale(-1, g_shifted(m))
        F[m] = [(rhs[i] - rest[i]) / a for i in range(n)]
    return [F[k] for k in range(K + 1)]


def method_params(method, symbolic):
    if symbolic:
        return BETA, R
    return (BETA_VALUE if method in TWO_STEP else 0), (R_VALUE if method == "sam" else 0)


# --------------------------------------------------------------------------
# Evaluation.
# --------------------------------------------------------------------------

_MATH = {"exp": math.exp, "log": math.log, "tanh": math.tanh, "sinh": math.sinh,
         "cosh": math.cosh, "sin": math.sin, "cos": math.cos, "tan": math.tan}


def fnum(e, env, memo):
    """e as a float; env: Symbol -> float; memo shared across calls (a DAG walk)."""
    hit = memo.get(e)
    if hit is not None:
        return hit
    if e.is_Symbol:
        val = env[e]
    elif e.is_Number:
        val = float(e)
    elif e.is_Add:
        val = math.fsum(fnum(a, env, memo) for a in e.args)
    elif e.is_Mul:
        val = 1.0
        for a in e.args:
            val *= fnum(a, env, memo)
    elif e.is_Pow:
        b, x = e.args
        val = fnum(b, env, memo) ** (int(x) if x.is_Integer else fnum(x, env, memo))
    elif e.func.__name__ in _MATH:
        val = _MATH[e.func.__name__](fnum(e.args[0], env, memo))
    else:
        val = float(e.func(*[sympy.Float(fnum(a, env, memo)) for a in e.args]).evalf())
    memo[e] = val
    return val


def evaluate_program(replacements, reduced, env):
    env, memo = dict(env), {}
    for sym, e in replacements:
        env[sym] = fnum(e, env, memo)
    return [fnum(e, env, memo) for e in reduced]


class Exact:
    """Exact evaluation of polynomial expressions into Q(β, r)."""

    def __init__(self):
        self.K = sympy.QQ.frac_field(BETA, R)

    def __call__(self, e, env, memo):
        hit = memo.get(e)
        if hit is not None:
            return hit
        K = self.K
        if e in env:
            val = env[e]
        elif e.is_Number or e.is_Symbol:
            val = K.from_sympy(e)
        elif e.is_Add:
            val = K.zero
            for a in e.args:
                val = val + self(a, env, memo)
        elif e.is_Mul:
            val = K.one
            for a in e.args:
                val = val * self(a, env, memo)
        elif e.is_Pow and e.args[1].is_Integer:
            b, k = self(e.args[0], env, memo), int(e.args[1])
            val = b**k if k >= 0 else K.one / b ** (-k)
        else:
            raise ValueError(f"not a rational expression: {e}")
        memo[e] = val
        return val


# --------------------------------------------------------------------------
# Rooted trees and elementary differentials.
# --------------------------------------------------------------------------
# A tree is a sorted tuple of its children; the leaf (g) is ().


def trees(nodes):
    """All rooted trees with `nodes` nodes, canonical, sorted."""
    if nodes == 1:
        return [()]
    out = set()

    def forests(total, smallest):  # multisets of trees (non-decreasing)
        if total == 0:
            yield ()
            return
        for size in range(1, total + 1):
            for t in trees(size):
                if smallest is not None and t < smallest:
                    continue
                for rest in forests(total - size, t):
                    if not rest or rest[0] >= t:
                        yield (t,) + rest

    for forest in forests(nodes - 1, None):
        out.add(tuple(sorted(forest)))
    return sorted(out, key=tree_str)


def tree_str(t):
    return "•" if not t else "[" + "".join(tree_str(c) for c in t) + "]"


def parse_tree(text):
    """eomderive's bracket notation ([•] = Hg, [••] = T(g,g), …) -> tree."""
    text = "".join(ch for ch in text if not ch.isspace())
    pos = 0

    def node():
        nonlocal pos
        if text[pos] == "[":
            pos += 1
            children = []
            while text[pos] != "]":
                children.append(node())
            pos += 1
            return tuple(sorted(children))
        pos += 1  # a leaf, whatever its glyph
        return ()

    t = node()
    if pos != len(text):
        raise ValueError(f"trailing text in tree {text!r}")
    return t


def elementary(tree, g, taylor, memo):
    """The elementary differential of `tree` for the field g, as expressions."""
    if tree not in memo:
        memo[tree] = g if not tree else taylor.apply(
            [elementary(c, g, taylor, memo) for c in tree])
    return memo[tree]


TREE_NAMES = {"[•]": "Hg", "[••]": "T(g,g)", "[[•]]": "HHg", "[•••]": "∇³g(g,g,g)",
              "[•[•]]": "T(Hg,g)", "[[••]]": "HT(g,g)", "[[[•]]]": "HHHg"}

# --------------------------------------------------------------------------
# Generic coefficients: derive on a polynomial field, solve for the trees.
# --------------------------------------------------------------------------


def solve_exact(K, rows, rhs, unknowns):
    """Solve rows·c = rhs over the field K; assert the system is consistent
    and has a unique solution."""
    M = [list(row) + [b] for row, b in zip(rows, rhs)]
    pivots, r = [], 0
    for col in range(unknowns):
        p = next((i for i in range(r, len(M)) if M[i][col] != K.zero), None)
        assert p is not None, "the trees' elementary differentials are dependent here"
        M[r], M[p] = M[p], M[r]
        inv = K.one / M[r][col]
        M[r] = [x * inv for x in M[r]]
        for i in range(len(M)):
            if i != r and M[i][col] != K.zero:
                f = M[i][col]
                M[i] = [x - f * y for x, y in zip(M[i], M[r])]
        pivots.append(r)
        r += 1
    for i in range(r, len(M)):
        assert M[i][-1] == K.zero, "ξ_k is not a combination of the trees' differentials"
    return [M[i][-1] for i in pivots]


def generic_coefficients(methods, kmax):
    """{method: {k: {tree: coefficient}}} for k = 0..kmax, over Q(β, r)."""
    rng = Random(20240601)
    x, y = sympy.symbols("x y")
    params = [x, y]
    degree = kmax + 1
    monomials = [x**i * y**j for i in range(degree + 1) for j in range(degree + 1 - i)]
    g = [sympy.Add(*[rng.randint(-3, 3) * mono for mono in monomials]) for _ in range(2)]
    ntrees = len(trees(kmax + 1))
    npoints = ntrees // 2 + 3
    points = [(sympy.Rational(rng.randint(-9, 9), rng.randint(1, 7)),
               sympy.Rational(rng.randint(-9, 9), rng.randint(1, 7))) for _ in range(npoints)]
    exact = Exact()
    Kf = exact.K
    taylor = Taylor(g, params)
    memo_tree = {}
    # the elementary differentials at the points, exactly
    diffs = {}
    for k in range(kmax + 1):
        for t in trees(k + 1):
            comps = elementary(t, g, taylor, memo_tree)
            diffs[t] = []
            for pt in points:
                env = {x: Kf.from_sympy(pt[0]), y: Kf.from_sympy(pt[1])}
                memo = {}
                diffs[t].append([exact(c, env, memo) for c in comps])
    out = {}
    for method in methods:
        Fs = derive(g, params, method, kmax)
        out[method] = {}
        for k in range(kmax + 1):
            sign = -1 if k == 0 else 1  # F_0 itself; ξ_k = −F_k
            ts = trees(k + 1)
            rows, rhs = [], []
            for ip, pt in enumerate(points):
                env = {x: Kf.from_sympy(pt[0]), y: Kf.from_sympy(pt[1])}
                memo = {}
                vals = [exact(c, env, memo) for c in Fs[k]]
                for i in range(2):
                    rows.append([diffs[t][ip][i] for t in ts])
                    rhs.append(-vals[i] if sign == 1 else vals[i])
            coeffs = solve_exact(Kf, rows, rhs, len(ts))
            out[method][k] = {t: sympy.factor(Kf.to_sympy(c)) for t, c in zip(ts, coeffs)}
    return out


def closed_forms():
    """DESIGN.md §2.1/§2.4: {method: {k: {tree string: coefficient}}}; k = 0 is F_0."""
    b, r = BETA, R
    h = sympy.Rational(1, 2)
    return {
        "gd": {0: {"•": -1}, 1: {"[•]": h},
               2: {"[••]": sympy.Rational(1, 12), "[[•]]": sympy.Rational(1, 3)},
               3: {"[•••]": 0, "[•[•]]": sympy.Rational(1, 12),
                   "[[••]]": sympy.Rational(1, 12), "[[[•]]]": sympy.Rational(1, 4)}},
        "heavy-ball": {0: {"•": -1 / (1 - b)}, 1: {"[•]": (1 + b) / (2 * (1 - b) ** 3)},
                       2: {"[[•]]": (1 + 4 * b + b**2) / (3 * (1 - b) ** 5),
                           "[••]": (1 + 10 * b + b**2) / (12 * (1 - b) ** 5)}},
        "nesterov": {0: {"•": -1 / (1 - b)},
                     1: {"[•]": (1 - b + 2 * b**2) / (2 * (1 - b) ** 3)}},
        "extragradient": {0: {"•": -1}, 1: {"[•]": -h}},
        "sam": {0: {"•": -1}, 1: {"[•]": r + h},
                2: {"[••]": r**2 / 2 + r / 2 + sympy.Rational(1, 12),
                    "[[•]]": r + sympy.Rational(1, 3)}},
    }


def check_generic(kmax):
    """Derive and assert the generic coefficients; return them by tree string."""
    methods = ["gd"] + OPTIMIZERS
    got = generic_coefficients(methods, kmax)
    by_str = {m: {k: {tree_str(t): c for t, c in cs.items()} for k, cs in ks.items()}
              for m, ks in got.items()}
    same = lambda a, b: sympy.simplify(sympy.sympify(a) - sympy.sympify(b)) == 0
    for method, ks in closed_forms().items():
        for k, forms in ks.items():
            if k > kmax:
                continue
            for t, want in forms.items():
                have = by_str[method][k][t]
                assert same(have, want), f"{method} ξ_{k} {t}: derived {have}, DESIGN {want}"
            # trees the closed form does not list must not be there at all
            for t, have in by_str[method][k].items():
                if t not in forms and method in ("gd", "heavy-ball", "sam") and k <= 2:
                    assert same(have, 0), f"{method} ξ_{k} {t}: unexpected {have}"
    for k in range(kmax + 1):
        for t, c in by_str["gd"][k].items():
            for method, subs in (("heavy-ball", {BETA: 0}), ("nesterov", {BETA: 0}),
                                 ("sam", {R: 0})):
                assert same(by_str[method][k][t].subs(subs), c), f"{method}→gd ξ_{k} {t}"
            assert same(by_str["sam"][k][t].subs(R, -1), by_str["extragradient"][k][t]), \
                f"sam(r=−1) ≠ extragradient at ξ_{k} {t}"
    return by_str


# --------------------------------------------------------------------------
# Quadratic and residual checks.
# --------------------------------------------------------------------------


def check_quadratic(K=4):
    """1-D, g = θ: F = log(r_+(η))/η · θ with the method's slow root r_+."""
    th, x = sympy.symbols("theta x")
    gam = sympy.Symbol("gamma", positive=True)  # β = 1 − γ, 0 < γ
    b = 1 - gam
    roots = {
        "heavy-ball": ((1 + b - x) + sympy.sqrt((1 + b - x) ** 2 - 4 * b)) / 2,
        "nesterov": ((1 - x) * (1 + b)
                     + sympy.sqrt((1 - x) ** 2 * (1 + b) ** 2 - 4 * (1 - x) * b)) / 2,
        "extragradient": 1 - x + x**2,
        "sam": 1 - x - R * x**2,
        "gd": 1 - x,
    }
    for method, root in roots.items():
        assert sympy.simplify(root.subs(x, 0) - 1) == 0, method
        series = sympy.series(sympy.log(root), x, 0, K + 2).removeO()
        Fs = derive([th], [th], method, K)
        for k in range(K + 1):
            want = series.coeff(x, k + 1)
            have = sympy.cancel(Fs[k][0] / th).subs(BETA, b)
            assert sympy.simplify(have - want) == 0, \
                f"quadratic {method} F_{k}: derived {have}, log r_+ gives {want}"


def truncate(p, N):
    """p (a Poly whose last generator is η) without its terms above η^N."""
    return sympy.Poly.from_dict({m: c for m, c in p.as_dict().items() if m[-1] <= N},
                                *p.gens, domain=p.domain)


def poly_eval(e, env, zero, N):
    """The expression e (Add, Mul, integer Pow, numbers) with its symbols
    replaced by the Polys in env, truncated at η^N after every product."""
    if e in env:
        return env[e]
    if e.is_Number:
        return zero + e
    if e.is_Add:
        return sum((poly_eval(a, env, zero, N) for a in e.args), zero)
    if e.is_Mul:
        out = zero + 1
        for a in e.args:
            out = truncate(out * poly_eval(a, env, zero, N), N)
        return out
    if e.is_Pow and e.args[1].is_Integer and e.args[1] >= 0:
        base, out = poly_eval(e.args[0], env, zero, N), zero + 1
        for _ in range(int(e.args[1])):
            out = truncate(out * base, N)
        return out
    raise ValueError(f"not a polynomial: {e}")


def check_residual(K=3):
    """Put F_0..F_K back into the defining relation, expanded literally: the
    whole F = Σ η^k F_k, L_F applied to it, g's argument substituted, all as
    polynomials in (u, v, η) truncated above η^{K+1}; nothing must be left."""
    f, params, _ = LOSSES["factorization"]()
    eta = sympy.Symbol("eta")
    gens = tuple(params) + (eta,)
    g = [sympy.diff(f, p) for p in params]
    n, N = len(params), K + 1
    P = lambda e: sympy.Poly(sympy.expand(e), *gens, domain="QQ")
    zero = P(0)
    for method in OPTIMIZERS:
        for beta, r in ((sympy.Rational(9, 10), sympy.Integer(1)),
                        (sympy.Rational(1, 3), sympy.Rational(-1, 2))):
            Fs = derive(g, params, method, K, beta=beta, r=r)
            Ffull = [sum((P(eta**k * Fs[k][i]) for k in range(K + 1)), zero)
                     for i in range(n)]

            def flow(sign):
                """Φ_{sign·η}(θ) − θ = Σ_j (sign·η)^j/j! (L_F)^{j−1} F through η^N."""
                term, total = Ffull, [zero] * n
                for j in range(1, N + 1):
                    c = sympy.Rational(sign**j, math.factorial(j))
                    total = [t + truncate(P(c * eta**j) * v, N) for t, v in zip(total, term)]
                    if j < N:  # the next term is needed through η^{N−j−1} only
                        low = [truncate(x, N - j - 1) for x in Ffull]
                        term = [truncate(sum((truncate(v, N - j - 1).diff(p) * Fp
                                              for p, Fp in zip(params, low)), zero),
                                         N - j - 1) for v in term]
                return total

            fwd = flow(1)
            if method in TWO_STEP:
                bwd = flow(-1)
                lhs = [a + c * beta for a, c in zip(fwd, bwd)]
            else:
                lhs = fwd
            if method == "nesterov":
                shift = [c * (-beta) for c in bwd]
            elif method == "sam":
                shift = [P(r * eta * gi) for gi in g]
            elif method == "extragradient":
                shift = [P(-eta * gi) for gi in g]
            else:
                shift = [zero] * n
            env = {p: P(p) + s for p, s in zip(params, shift)}
            rhs = [truncate(P(-eta) * poly_eval(gi, env, zero, N), N) for gi in g]
            for i in range(n):
                res = truncate(lhs[i] - rhs[i], N)
                assert res.is_zero, \
                    f"residual {method} β={beta} r={r} component {i}: {res.as_expr()}"


# --------------------------------------------------------------------------
# One timed case, run in a child process.
# --------------------------------------------------------------------------


def derive_case(method, loss, K, symbolic, timed=lambda seconds: None):
    f, params, point = LOSSES[loss]()  # untimed: symbols, data, the loss
    beta, r = method_params(method, symbolic)
    t0 = time.perf_counter()
    g = [sympy.diff(f, p) for p in params]
    Fs = derive(g, params, method, K, beta=beta, r=r)
    flat = [-e for F in Fs[1:] for e in F]
    replacements, reduced = sympy.cse(flat)
    seconds = time.perf_counter() - t0
    timed(seconds)
    ops = program_ops(replacements, reduced)
    env = {p: v for p, v in zip(params, point)}
    env.update({BETA: float(BETA_VALUE), R: float(R_VALUE)})
    vals = evaluate_program(replacements, reduced, env)
    n = len(params)
    memo = {}
    F0 = [fnum(e, env, memo) for e in Fs[0]]
    return {"seconds": seconds, "ops": ops, "cse_replacements": len(replacements),
            "values": {k + 1: vals[k * n:(k + 1) * n] for k in range(K)}, "leading": F0}


def run_once(method, loss, K, symbolic, timeout):
    """One run in a fresh forked process; None if the derivation ran out of time."""
    return run_forked(derive_case, (method, loss, K, symbolic), f"{method}/{loss}/K={K}", timeout)


def run_case(method, loss, K, symbolic, budget, repeat):
    return best_of(lambda left: run_once(method, loss, K, symbolic, left), budget, repeat)


def run_chain(method, loss, orders, symbolic, budget, repeat, progress=None):
    """The cases K in `orders` of one optimizer and loss, in order; after a
    timeout the higher K are skipped."""
    recs, timed_out_at = [], None
    # warm up this process once (the forked runs inherit it): a first cse and
    # a first derivation pay one-off setup costs of SymPy's (~0.1 s) otherwise
    derive_case(method, "linear_regression", 1, symbolic)
    for K in orders:
        rec = {"optimizer": method, "loss": loss, "K": K, "budget": budget,
               "symbolic": symbolic}
        if timed_out_at is not None:
            rec.update(timeout=True, skipped=timed_out_at)
        else:
            rec.update(run_case(method, loss, K, symbolic, budget, repeat))
            if rec["timeout"]:
                timed_out_at = K
        if progress:
            progress(rec)
        recs.append(rec)
    return recs


def _chain_child(conn, *args):
    try:
        conn.send(("ok", run_chain(*args)))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


# Rough cost order, so that the slow chains start first when run in parallel.
WEIGHT = {"scale_invariant": 0, "tanh_net": 1, "logistic": 2, "factorization": 3,
          "linear_regression": 4}


def run_all(chains, orders, symbolic, budget, repeat, jobs):
    """{(method, loss): [rec per K]}, `jobs` chains at a time (each chain in a
    process of its own, each run in a fresh fork of that process)."""
    say = lambda rec: print(
        f"  {rec['optimizer']}/{rec['loss']}/K={rec['K']}: "
        + ("skipped" if rec.get("skipped") else "timeout" if rec["timeout"]
           else f"{rec['seconds']:.3f}s (runs {', '.join(f'{x:.3f}' for x in rec['runs'])})"),
        file=sys.stderr, flush=True)
    if jobs <= 1:
        return {c: run_chain(*c, orders, symbolic, budget, repeat, say) for c in chains}
    ctx = multiprocessing.get_context("fork")
    todo = sorted(chains, key=lambda c: WEIGHT.get(c[1], 5))
    running, out = {}, {}
    while todo or running:
        while todo and len(running) < jobs:
            c = todo.pop(0)
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_chain_child,
                               args=(child, *c, orders, symbolic, budget, repeat))
            proc.start()
            child.close()
            running[parent] = (c, proc)
        for conn in multiprocessing.connection.wait(list(running)):
            c, proc = running.pop(conn)
            try:
                status, payload = conn.recv()
            except EOFError:
                status, payload = "error", f"exited with code {proc.exitcode}"
            proc.join()
            if status != "ok":
                raise RuntimeError(f"{c[0]}/{c[1]}: {payload}")
            for rec in payload:
                say(rec)
            out[c] = payload
    return out


# --------------------------------------------------------------------------
# Closed-form values at a point (from the generic tree coefficients).
# --------------------------------------------------------------------------


def tree_values(loss, method, generic, kmax):
    """ξ_k (k ≤ kmax) at the initial point as Σ_τ c_τ G(τ), numerically."""
    f, params, point = LOSSES[loss]()
    beta, r = method_params(method, False)
    g = [sympy.diff(f, p) for p in params]
    env = dict(zip(params, point))
    taylor = Taylor(g, params)
    num = {}  # numeric partials

    class NumTaylor:  # ∇^n g[v…] with numeric vectors
        @staticmethod
        def apply(vectors):
            n, N = len(params), len(vectors)
            out = []
            for i in range(n):
                total = 0.0
                for idx in itertools.product(range(n), repeat=N):
                    key = (i, tuple(sorted(idx)))
                    if key not in num:
                        num[key] = fnum(taylor.partial(*key), env, {})
                    total += num[key] * math.prod(vectors[k][j] for k, j in enumerate(idx))
                out.append(total)
            return out

    gnum = [fnum(e, env, {}) for e in g]
    memo = {}
    out = {}
    for k in range(1, kmax + 1):
        vec = [0.0] * len(params)
        for t, c in generic[method][k].items():
            cval = float(sympy.sympify(c).subs({BETA: beta, R: r}))
            if cval == 0.0:
                continue
            G = elementary(parse_tree(t), gnum, NumTaylor, memo)
            vec = [v + cval * x for v, x in zip(vec, G)]
        out[k] = vec
    return out


# --------------------------------------------------------------------------
# eomderive.
# --------------------------------------------------------------------------


class Eomderive:
    def __init__(self, path, timeout):
        self.path, self.timeout = path, timeout
        self.unsupported = {}  # optimizer -> reason
        self.said = set()

    def note(self, text):
        if text not in self.said:
            self.said.add(text)
            print(text, flush=True)

    def run(self, args):
        """(status, parsed JSON or None, stderr) of one run."""
        if not os.access(self.path, os.X_OK):
            return None, None, f"binary not found at {self.path}"
        try:
            p = subprocess.run([self.path] + args, capture_output=True, text=True,
                               timeout=self.timeout)
        except subprocess.TimeoutExpired:
            return -1, None, f"timed out after {self.timeout:g}s"
        data = None
        if p.returncode == 0:
            try:
                data = json.loads(p.stdout)
            except json.JSONDecodeError as exc:
                return p.returncode, None, f"output is not JSON: {exc}"
        return p.returncode, data, p.stderr.strip()

    def skip_reason(self, status, err):
        if status is None:
            return f"eomderive: {err}, comparison skipped"
        if status == 2 and ("--optimizer" in err or "unexpected argument" in err):
            return "eomderive: no --optimizer support, comparison skipped"
        first = err.splitlines()[0] if err else ""
        return f"eomderive: exited with status {status} ({first}), comparison skipped"

    @staticmethod
    def flags(method):
        if method == "gd":  # eomderive's default; no --optimizer needed
            return []
        out = ["--optimizer", method]
        if method in TWO_STEP:
            out += ["--momentum", "9/10"]
        if method == "sam":
            out += ["--rho-ratio", "1"]
        return out

    def probe(self, method):
        """Say now (before a table starts) whether `method` can be compared."""
        self.case(method, "factorization", 1, 1)

    def case(self, method, loss, K, repeat):
        """{'gradient', 'xi', 'seconds'} or None (the reason printed once)."""
        if method in self.unsupported:
            return None
        best = None
        for _ in range(max(repeat, 1)):
            path = os.path.join(REPO, "examples", f"{loss}.expr")
            status, data, err = self.run([path, "--order", str(K)] + self.flags(method)
                                         + ["--format", "json"])
            if data is None:
                reason = self.skip_reason(status, err)
                if status is None or status == 2:
                    self.unsupported[method] = reason
                self.note(reason if status is None or status == 2 else
                          f"{reason} [{method}/{loss}/K={K}]")
                return None
            ev = data.get("evaluation") or {}
            secs = (data.get("stats") or {}).get("derive_seconds")
            rec = {"gradient": ev.get("gradient"), "xi": ev.get("xi"), "seconds": secs,
                   "params": data.get("params")}
            if best is None or (secs is not None and best["seconds"] is not None
                                and secs < best["seconds"]):
                best = rec
        return best

    def generic(self, method, kmax):
        """{k: {tree string: coefficient}} from --generic, or None."""
        args = ["--generic", "--order", str(max(kmax, 4))] + self.flags(method)
        if method in TWO_STEP:  # β stays symbolic
            args = [a for a in args if a not in ("--momentum", "9/10")]
        args += ["--format", "json"]
        status, data, err = self.run(args)
        if data is None:
            self.note(self.skip_reason(status, err).replace(
                "comparison skipped", f"generic comparison for {method} skipped"))
            return None
        local = {"beta": BETA, "β": BETA, "r": R}
        trans = standard_transformations + (convert_xor,)
        out = {}
        for entry in data.get("generic") or []:
            terms = {}
            for term in entry.get("terms", []):
                c = parse_expr(str(term["coefficient"]), local_dict=local,
                               transformations=trans)
                terms[tree_str(parse_tree(term["tree"]))] = c
            out[int(entry["k"])] = terms
        return out


def compare_generic(eom, generic, methods, kmax):
    for method in methods:
        theirs = eom.generic(method, kmax)
        if theirs is None:
            continue
        subs = {R: 1} if method == "sam" else {}  # run with --rho-ratio 1
        kmax = min(kmax, 3)
        missing = [k for k in range(1, kmax + 1) if k not in theirs]
        assert not missing, f"eomderive --generic {method}: no k = {missing} in its JSON"
        extra = set().union(*[sympy.sympify(c).free_symbols for k in range(1, kmax + 1)
                              for c in theirs[k].values()]) - {BETA}
        if extra:
            print(f"eomderive --generic {method}: coefficients in unknown symbols "
                  f"{sorted(map(str, extra))}, comparison skipped", flush=True)
            continue
        compared = 0
        for k in range(1, kmax + 1):
            mine = {t: sympy.sympify(c).subs(subs) for t, c in generic[method][k].items()}
            for t in set(mine) | set(theirs[k]):
                a, b = mine.get(t, 0), theirs[k].get(t, 0)
                assert sympy.simplify(a - b) == 0, \
                    f"eomderive --generic {method} ξ_{k} {t}: {b}, SymPy derives {a}"
                compared += 1
        print(f"eomderive --generic {method}: {compared} tree coefficients (k ≤ {kmax}) "
              f"agree with SymPy", flush=True)


# --------------------------------------------------------------------------
# Main.
# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--optimizers", default=",".join(OPTIMIZERS),
                    help="comma-separated, from " + ", ".join(KNOWN) + " (gd is plain GD, "
                    "the baseline, not in the default)")
    ap.add_argument("--losses", default=",".join(LOSSES), help="losses, comma-separated")
    ap.add_argument("--orders", default="1,2,3,4", help="orders K, comma-separated")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case, best kept")
    ap.add_argument("--budget", type=float, default=60.0,
                    help="wall-clock seconds per case, all runs together (default 60)")
    ap.add_argument("--symbolic", action="store_true",
                    help="keep β and r symbolic in the timed derivation too")
    ap.add_argument("--generic-order", type=int, default=3,
                    help="highest k of the generic tree coefficients derived (default 3)")
    ap.add_argument("--eomderive", default=os.path.join(REPO, "target", "release", "eomderive"))
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="optimizer/loss chains timed at the same time (default: 2, or 1 "
                    "on one core); 1 gives the quietest timings")
    ap.add_argument("--json", metavar="FILE", help="write all measurements here")
    args = ap.parse_args()

    methods = args.optimizers.split(",")
    losses = args.losses.split(",")
    orders = sorted({int(k) for k in args.orders.split(",")})
    for m in methods:
        if m not in KNOWN:
            ap.error(f"unknown optimizer {m!r}; known: {', '.join(KNOWN)}")
    for name in losses:
        if name not in LOSSES:
            ap.error(f"unknown loss {name!r}; known: {', '.join(LOSSES)}")
    if min(orders) < 1:
        ap.error("orders start at 1")
    if args.generic_order < 2:
        ap.error("--generic-order is at least 2 (the closed forms go to ξ_2)")

    t0 = time.perf_counter()
    generic = check_generic(args.generic_order)
    t_generic = time.perf_counter() - t0
    check_quadratic(4)
    check_residual(3)
    t_checks = time.perf_counter() - t0
    print(f"self-checks passed: generic coefficients to k = {args.generic_order} "
          f"({t_generic:.1f}s), quadratic log r_+ to F_4, residual to η^4 "
          f"(all {t_checks:.1f}s)\n")

    print("Generic coefficients derived here (ξ_k = Σ c·G(tree), F_0 = c·g):\n")
    print("| optimizer | k | tree | | coefficient |")
    print("| --- | ---: | --- | --- | --- |")
    for m in ["gd"] + [m for m in methods if m != "gd"]:
        for k, cs in generic[m].items():
            for t, c in cs.items():
                if c != 0:
                    print(f"| {m} | {k} | `{t}` | {TREE_NAMES.get(t, '')} | {c} |")
    print(flush=True)

    eom = Eomderive(args.eomderive, args.budget)
    compare_generic(eom, generic, methods, args.generic_order)

    print(f"timing {len(methods) * len(losses)} optimizer/loss chains, K = "
          f"{', '.join(map(str, orders))}, {args.jobs} at a time ...", file=sys.stderr,
          flush=True)
    t0 = time.perf_counter()
    timed = run_all([(m, l) for m in methods for l in losses], orders, args.symbolic,
                    args.budget, args.repeat, args.jobs)
    print(f"timing done in {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)

    results, failures = [], []
    for method in methods:
        par = {"heavy-ball": " β = 9/10", "nesterov": " β = 9/10", "sam": " ρ = 1·η",
               "extragradient": "", "gd": " (plain GD, the baseline)"}[method]
        mode = ""
        if args.symbolic:
            mode = " (β and r symbols in the derivation, values at β = 9/10, r = 1)"
            par = ""
        print()
        eom.probe(method)
        print(f"\n### {method}{par}{mode}\n")
        print("| loss | K | sympy s | sympy ops | eomderive s | max rel diff |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |", flush=True)
        for loss in losses:
            forms = None
            for rec in timed[(method, loss)]:
                K = rec["K"]
                ops, eos, diff = ("", "", "")
                if rec.get("skipped"):
                    secs = f"timeout >{args.budget:g}s (skipped: K={rec['skipped']} timed out)"
                elif rec["timeout"]:
                    secs = f"timeout >{args.budget:g}s"
                else:
                    secs = f"{rec['seconds']:.3f}"
                    ops = str(rec["ops"])
                    vals = rec["values"]
                    kf = min(K, args.generic_order)
                    if forms is None or max(forms) < kf:
                        forms = tree_values(loss, method, generic, kf)
                    for k in range(1, kf + 1):
                        d = rel_diff(vals[k], forms[k])
                        if not d <= 1e-9:
                            failures.append(f"{method}/{loss}/K={K}: ξ_{k} {vals[k]} != "
                                            f"tree form {forms[k]} (rel {d:.2e})")
                    theirs = eom.case(method, loss, K, args.repeat)
                    if theirs is not None:
                        rec["eomderive"] = theirs
                        eos = "" if theirs["seconds"] is None else f"{theirs['seconds']:.4f}"
                        f, params, point = LOSSES[loss]()
                        env = dict(zip(params, point))
                        gmine = [fnum(sympy.diff(f, p), env, {}) for p in params]
                        worst = rel_diff(gmine, theirs["gradient"] or [math.nan])
                        if not worst <= 1e-9:
                            failures.append(f"{method}/{loss}: eomderive gradient "
                                            f"{theirs['gradient']} != {gmine}")
                        xi = theirs["xi"] or []
                        if len(xi) != K:
                            failures.append(f"{method}/{loss}/K={K}: eomderive gave "
                                            f"{len(xi)} ξ vectors")
                        for k in range(1, min(K, len(xi)) + 1):
                            d = rel_diff(vals[k], xi[k - 1])
                            worst = max(worst, d)
                            if not d <= 1e-9:
                                failures.append(f"{method}/{loss}/K={K}: ξ_{k} SymPy "
                                                f"{vals[k]} != eomderive {xi[k - 1]} "
                                                f"(rel {d:.2e})")
                        rec["max_rel_diff"] = worst
                        diff = f"{worst:.1e}"
                print(f"| {loss} | {K} | {secs} | {ops} | {eos} | {diff} |", flush=True)
                results.append(rec)

    if args.json:
        meta = {"python": platform.python_version(), "sympy": sympy.__version__,
                "cores": os.cpu_count(), "machine": platform.machine(),
                "budget": args.budget, "repeat": args.repeat, "symbolic": args.symbolic}
        write_results(args.json, meta, results)

    assert not failures, "self-check failed:\n" + "\n".join(failures)
    print(f"\nvalue checks passed (ξ_k ≤ {args.generic_order} against the tree forms"
          f"{', and eomderive' if any('eomderive' in r for r in results) else ''})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
