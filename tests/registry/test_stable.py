"""Stable printing of custom activations: no overflow where a stable form exists, an honest range where not.

The truth is numeric and independent of the rewrite: the original SymPy expression
evaluated in 50-digit mpmath arithmetic at moderate |z|, and plain finiteness in
float32 and float64 at large |z|.
"""

import subprocess
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp

from symbackprop import derive
from symbackprop.codegen.numpy_code import array_printer, generated_test, numpy_model
from symbackprop.registry import ops
from symbackprop.registry.stable import finite_limit, softplus, stabilize

MISH = "x*tanh(log(1+exp(x)))"


def _numpy(expr):
    from symbackprop.registry.stable import _stable_sigmoid

    return sp.lambdify([ops.X], stabilize(expr), modules=[{"sigmoid": _stable_sigmoid,
                                                            "softplus": lambda u: np.logaddexp(0, u)}, "numpy"])


@pytest.mark.parametrize("formula", [MISH, "log(1+exp(x))", "x*sigmoid(x)", "x/(1+exp(-x))", "tanh(x)**2"])
def test_stable_form_is_finite_to_1e4_and_equal_to_the_expression(formula):
    act = ops.custom_activation(formula)
    for expr in (act.expr, act.derivative):
        assert not stabilize(expr).has(sp.exp), stabilize(expr)
        fn = _numpy(expr)
        z = np.array([-1e4, -700.0, -40.0, 40.0, 700.0, 1e4])
        for dtype in (np.float32, np.float64):
            with np.errstate(over="raise", invalid="raise", divide="raise"):
                assert np.all(np.isfinite(fn(z.astype(dtype))))
        for u in (-3.5, -0.25, 0.0, 0.75, 2.0, 6.0):  # against the original expression in 50 digits
            exact = sp.N(expr.subs(ops.X, sp.Rational(u)), 50)
            assert abs(float(fn(np.float64(u))) - float(exact)) <= 1e-12 * (1 + abs(float(exact)))
    assert finite_limit(ops.X, act.expr, act.derivative) == 1e4


def test_softplus_is_printed_as_logaddexp():
    act = ops.custom_activation("log(1+exp(x))")
    assert stabilize(act.expr) == softplus(ops.X)
    assert array_printer().doprint(stabilize(act.expr)) == "np.logaddexp(0, x)"


def test_no_stable_form_gives_the_measured_range():
    act = ops.custom_activation("exp(x)")
    limit = finite_limit(ops.X, act.expr, act.derivative)
    with mpmath.workdps(30):
        float32_overflow = float(mpmath.log(np.finfo(np.float32).max))
    assert abs(limit - float32_overflow) < 0.1  # exp overflows float32 first, at log(3.4e38) = 88.72


def _net(formula):
    return {"name": "custom", "inputs": 2, "layers": [{"units": 3, "activation": {"expr": formula}},
                                                      {"units": 1, "activation": "sigmoid"}], "loss": "half_sse"}


@pytest.mark.parametrize("formula,limit", [(MISH, "1e+04"), ("exp(x)", "88.64")])
def test_generated_stability_test_runs_and_tells_the_truth(tmp_path, formula, limit):
    d = derive(_net(formula), verify=False)
    model, test = numpy_model(d), generated_test(d)
    assert f"STABILITY_LIMIT = {limit}" in test and "pytest.skip" not in test
    assert ("Warning:" in model) == (limit != "1e+04")
    (tmp_path / "model.py").write_text(model)
    (tmp_path / "test_model.py").write_text(test)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_model.py"],
                         check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "5 passed" in run.stdout, run.stdout[-3000:]
