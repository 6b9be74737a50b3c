"""Stable printed forms of activation expressions (symbackprop/registry/stable.py), case by case.

Truths: the original expression evaluated by mpmath with 30 digits (no overflow there), and the float32
overflow threshold log(max float32) from NumPy's finfo.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symbackprop.registry.stable import _is_one_plus_exp_minus, _safe_denominator, finite_limit, stabilize

x = sp.Symbol("x", real=True)
CASES = {
    "logistic": sp.exp(x) / (1 + sp.exp(x)),
    "logistic, other form": 1 / (1 + sp.exp(-x)),
    "softplus": sp.log(1 + sp.exp(x)),
    "tanh by exps": (sp.exp(x) - sp.exp(-x)) / (sp.exp(x) + sp.exp(-x)),
    "silu": x / (1 + sp.exp(-x)),
    "softplus derivative": sp.exp(x) / (sp.exp(x) + 1) ** 2,
}
MODULES = [{"sigmoid": lambda u: np.where(u >= 0, 1 / (1 + np.exp(-np.abs(u))),
                                          np.exp(-np.abs(u)) / (1 + np.exp(-np.abs(u)))),
            "softplus": lambda u: np.logaddexp(0, u)}, "numpy"]


@pytest.mark.parametrize("name", CASES)
def test_stable_form_equals_the_expression_and_stays_finite(name):
    expr = CASES[name]
    fn = sp.lambdify([x], stabilize(expr), modules=MODULES)
    for value in (-1e4, -700.0, -30.0, -0.5, 0.0, 2.0, 30.0, 700.0, 1e4):
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            got = float(fn(np.float64(value)))
        want = float(sp.N(expr.subs(x, sp.Float(value, 30)), 30))
        assert np.isfinite(got), (name, value)
        # absolute 1e-12: s (1 - s) loses relative precision in the tails (1 - s cancels), not absolute
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (name, value)


def test_an_expression_without_a_stable_form_is_measured():
    """exp(x) overflows in float32 beyond log(max float32) ~ 88.72, which finite_limit reports."""
    threshold = float(np.log(np.finfo(np.float32).max))
    limit = finite_limit(x, sp.exp(x))
    assert threshold - 0.5 < limit <= threshold
    assert finite_limit(x, CASES["logistic"], CASES["softplus"]) == 1e4


def test_safe_denominator():
    s, y = sp.Symbol("s", positive=True), sp.Symbol("y")
    assert _safe_denominator(sp.Integer(3), s)
    assert _safe_denominator(s + 2, s)
    assert not _safe_denominator(s, s)  # vanishes at s = 0
    assert not _safe_denominator(2 * s - 1, s)  # vanishes at s = 1/2
    assert not _safe_denominator(s + y, s)  # depends on another symbol
    assert not _safe_denominator(sp.sqrt(s) + 1 - s, s)  # not a polynomial in s


def test_one_plus_exp_minus():
    assert _is_one_plus_exp_minus(1 + sp.exp(-x))
    assert _is_one_plus_exp_minus(sp.exp(x) + 1)
    assert not _is_one_plus_exp_minus(2 + sp.exp(-x))
    assert not _is_one_plus_exp_minus(1 + x)
    assert not _is_one_plus_exp_minus(1 + x + sp.exp(x))
