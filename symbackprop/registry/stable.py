"""Numerically stable forms of activation expressions, and where a form stays finite.

SymPy writes ``tanh(log(u))`` as a rational function of ``u`` and keeps ``exp``
and ``log(1 + exp(u))`` as they are, all of which overflow for large |z| in
floating point.  :func:`stabilize` rewrites an expression so that the printed
code cannot overflow where that is possible: ``log(1 + exp(u))`` becomes
``softplus(u)`` (``logaddexp``), and ``exp(u)`` becomes ``s / (1 - s)`` with
``s = sigmoid(u)`` when the result's denominator cannot vanish for s in [0, 1].
:func:`finite_limit` measures, numerically and in both float32 and float64, the
largest |z| up to 1e4 for which the printed form stays finite: the truth that
generated code and documents state.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

LIMIT = 1e4
"""Pre-activations up to this magnitude must give finite values in generated code."""


class sigmoid(sp.Function):
    """sigma(u), printed as a call of the generated stable ``sigmoid``."""

    def fdiff(self, argindex=1):
        return self * (1 - self)


class softplus(sp.Function):
    """log(1 + exp(u)), printed as ``np.logaddexp(0, u)``."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])


def _softplus_form(expr: sp.Expr) -> sp.Expr:
    """``log(1 + exp(u))`` (in either order) as ``softplus(u)``."""
    def is_softplus(e) -> bool:
        return (isinstance(e, sp.log) and isinstance(e.args[0], sp.Add) and len(e.args[0].args) == 2
                and sp.Integer(1) in e.args[0].args and any(isinstance(a, sp.exp) for a in e.args[0].args))

    def rewrite(e):
        inner = next(a for a in e.args[0].args if isinstance(a, sp.exp))
        return softplus(inner.args[0])

    return expr.replace(is_softplus, rewrite)


def _safe_denominator(den: sp.Expr, s: sp.Symbol) -> bool:
    """True when ``den`` cannot vanish for s in [0, 1] (free of s, or a polynomial in s alone without a root there)."""
    if not den.has(s):
        return True
    if den.free_symbols != {s}:
        return False
    try:
        poly = sp.Poly(den, s)
    except sp.PolynomialError:
        return False
    return not any(0 <= root <= 1 for root in sp.real_roots(poly))


def stabilize(expr: sp.Expr) -> sp.Expr:
    """Rewrite ``expr`` into a form whose printed code cannot overflow, where one exists (see module doc)."""
    expr = _softplus_form(expr)
    for u in sorted({_exp_base(e) for e in expr.atoms(sp.exp)}, key=sp.default_sort_key):
        s = sp.Dummy("s", positive=True)
        ratio = {sp.exp(u): s / (1 - s), sp.exp(-u): (1 - s) / s}
        trial = sp.factor(sp.cancel(sp.together(expr.xreplace(ratio))))
        if _safe_denominator(sp.fraction(trial)[1], s) and not trial.has(sp.exp(u), sp.exp(-u)):
            expr = trial.xreplace({s: sigmoid(u)})
    return expr.replace(lambda e: e.is_Pow and e.exp == -1 and _is_one_plus_exp_minus(e.base),
                        lambda e: sigmoid(-e.base.args[1].args[0] if e.base.args[0] == 1 else
                                          -e.base.args[0].args[0]))


def _exp_base(e: sp.exp) -> sp.Expr:
    arg = e.args[0]
    return -arg if arg.could_extract_minus_sign() else arg


def _is_one_plus_exp_minus(base: sp.Expr) -> bool:
    if not isinstance(base, sp.Add) or len(base.args) != 2 or sp.Integer(1) not in base.args:
        return False
    other = base.args[1] if base.args[0] == 1 else base.args[0]
    return isinstance(other, sp.exp)


def _stable_sigmoid(u):
    e = np.exp(-np.abs(u))
    return np.where(u >= 0, 1 / (1 + e), e / (1 + e))


def finite_limit(x: sp.Symbol, *exprs: sp.Expr, limit: float = LIMIT) -> float:
    """The largest R <= ``limit`` such that every stabilized ``expr`` is finite for |x| <= R,
    in float32 and in float64 (probed on a grid that is dense near 0 and geometric beyond)."""
    grid = np.unique(np.concatenate([np.linspace(0, 50, 2001), np.geomspace(50, limit, 2000)]))
    grid = np.concatenate([-grid[::-1], grid])
    bad = np.zeros(grid.shape, dtype=bool)
    modules = [{"sigmoid": _stable_sigmoid, "softplus": lambda u: np.logaddexp(0, u)}, "numpy"]
    for expr in exprs:
        fn = sp.lambdify([x], stabilize(expr), modules=modules)
        for dtype in (np.float32, np.float64):
            with np.errstate(all="ignore"):
                values = np.broadcast_to(np.asarray(fn(grid.astype(dtype)), dtype=float), grid.shape)
            bad |= ~np.isfinite(values)
    if not bad.any():
        return float(limit)
    first = float(np.min(np.abs(grid[bad])))
    inside = np.abs(grid) < first
    return float(np.max(np.abs(grid[inside]))) if inside.any() else 0.0


def stability_limit(network) -> float:
    """The largest |z| (up to 1e4) at which every activation's printed form and its derivative stay finite
    in float32 and float64: 1e4 for the registry's entries (their code is written stable), measured for
    custom expressions."""
    from .ops import X

    limits = [finite_limit(X, layer.activation.expr, layer.activation.derivative)
              for layer in network.layers if layer.activation.name == "custom"]
    return min(limits, default=LIMIT)


def stability_note(network) -> str | None:
    """A warning for code and documents when a custom activation overflows below |z| = 1e4, else None."""
    limit = stability_limit(network)
    if limit >= LIMIT:
        return None
    return (f"a custom activation in this network has no overflow-free form: its generated code is finite for "
            f"|z| <= {limit:.4g} (float32 and float64), not up to |z| = 1e4")
