"""The registry: SymPy derivatives, convenient forms, kinks, ranges, custom formulas."""

import importlib.util
import math

import numpy as np
import pytest
import sympy as sp

from symbackprop.errors import ExpressionError
from symbackprop.registry import ops

ELEMENTWISE = [n for n in ops.ACTIVATION_NAMES if not ops.activation(n).vector]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_convenient_derivative_equals_sympy_derivative(name):
    act = ops.activation(name)
    x = ops.X
    convenient = act.convenient.subs(ops.Y, act.expr)
    truth = sp.diff(act.expr, x)  # computed here, independently of the entry
    if convenient.has(sp.Piecewise) or truth.has(sp.Piecewise):
        for point in (-2, -sp.Rational(1, 3), sp.Rational(1, 2), 3):
            assert sp.simplify(convenient.subs(x, point) - truth.subs(x, point)) == 0
    else:
        assert sp.simplify(convenient - truth) == 0
    f = sp.lambdify(x, act.expr)
    d = sp.lambdify(x, convenient)
    for v in (-1.7, -0.3, 0.4, 2.2):  # and numerically, by central differences
        assert abs((f(v + 1e-6) - f(v - 1e-6)) / 2e-6 - d(v)) < 1e-6


def test_textbook_forms():
    y = ops.Y
    assert ops.activation("sigmoid").convenient == y * (1 - y)
    assert ops.activation("tanh").convenient == 1 - y**2


@pytest.mark.parametrize("name,at_zero", [("relu", 0), ("leaky_relu", sp.Rational(1, 100)), ("elu", 1)])
def test_kink_convention_is_stated_and_used(name, at_zero):
    act = ops.activation(name)
    assert act.kink and "0" in act.kink
    assert act.derivative.subs(ops.X, 0) == at_zero
    assert act.derivative_at(sp.Integer(0), act.at(sp.Integer(0))) == at_zero


def test_parameters_are_exact():
    act = ops.activation("leaky_relu", alpha=0.2)
    assert act.expr.subs(ops.X, -1) == -sp.Rational(1, 5)
    with pytest.raises(TypeError):
        ops.activation("sigmoid", alpha=1)
    with pytest.raises(TypeError):
        ops.activation("elu", beta=1)


def test_custom_activation_is_differentiated_by_sympy():
    act = ops.custom_activation("x*sigmoid(x)")
    x = ops.X
    assert sp.simplify(act.derivative - sp.diff(x / (1 + sp.exp(-x)), x)) == 0
    assert act.name == "custom"


@pytest.mark.parametrize("text", [
    "__import__('os').system('echo hacked')", "x.__class__", "open('/etc/passwd')", "lambda: 1",
    "[x for x in ()]", "9**9**9", "x if x else 1", "y + 1", "", "(" * 300 + "x" + ")" * 300, "x; 1",
    "exp(x, 2)", "'text'", "True + x",
])
def test_unsafe_or_bad_formulas_are_rejected(text):
    with pytest.raises(ExpressionError):
        ops.custom_activation(text)


def test_formula_without_x_is_rejected():
    with pytest.raises(ExpressionError, match="does not depend on x"):
        ops.custom_activation("3")


def test_loss_ranges():
    pairs = set(ops.allowed_pairs())
    assert ("sigmoid", "binary_cross_entropy") in pairs
    assert ("softmax", "categorical_cross_entropy") in pairs
    assert ("identity", "binary_cross_entropy") not in pairs
    assert ("sigmoid", "categorical_cross_entropy") not in pairs


def test_losses_match_their_definitions_numerically():
    a = sp.symbols("a1:4", real=True)
    t = sp.symbols("t1:4", real=True)
    av, tv = np.array([0.2, 0.5, 0.3]), np.array([0.0, 1.0, 0.0])
    expected = {
        "half_sse": 0.5 * np.sum((av - tv) ** 2),
        "sse": np.sum((av - tv) ** 2),
        "mse": np.mean((av - tv) ** 2),
        "binary_cross_entropy": -np.sum(tv * np.log(av) + (1 - tv) * np.log(1 - av)),
        "categorical_cross_entropy": -np.sum(tv * np.log(av)),
    }
    for name, value in expected.items():
        e = ops.LOSSES[name](a, t)
        got = float(e.subs(dict(zip(a, av))).subs(dict(zip(t, tv))))
        assert got == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("name", sorted(n for n in ops.NUMPY_ACTIVATIONS if n != "softmax") + ["identity"])
def test_max_constant_is_where_the_activation_is_a_maximum(name):
    """Activation.max_constant: ReLU is max(x, 0) (SymPy's Max against the registry's Piecewise, on both
    sides of the kink and at it); no other activation is a maximum with a constant."""
    act = ops.activation(name)
    c = act.max_constant
    if name != "relu":
        assert c is None
        return
    assert c == 0
    for x in (sp.Integer(-3), -sp.Rational(1, 2), sp.Integer(0), sp.Rational(1, 3), sp.Integer(5)):
        assert act.at(x) == sp.Max(x, c)


@pytest.mark.parametrize("name", sorted(n for n in ops.NUMPY_ACTIVATIONS if n != "softmax") + ["identity"])
def test_step_condition_is_where_the_derivative_is_one(name):
    """Activation.step_condition: ReLU's f' is the 0/1 step of x > 0 (SymPy's derivative of its own
    expression, left of the kink as the registry defines it); every other activation has none."""
    act = ops.activation(name)
    cond = act.step_condition
    if name != "relu":
        assert cond is None
        return
    for x in (sp.Integer(-3), -sp.Rational(1, 2), sp.Integer(0), sp.Rational(1, 3), sp.Integer(5)):
        assert act.derivative_at(x) == (1 if bool(cond.subs(ops.X, x)) else 0)
        if x != 0:
            assert sp.diff(act.expr, ops.X).subs(ops.X, x) == act.derivative_at(x)


def test_numpy_softmax_into_either_layout_is_the_softmax(tmp_path):
    """The registry's NumPy softmax, into a C- or Fortran-ordered out (the transposed path) and without out,
    equals exp(z - max) / sum exp(z - max) computed row by row with math.exp and math.fsum, in float64
    and float32, also at |z| = 1e4 and for a single row or a single class."""
    path = tmp_path / "registry_softmax.py"
    path.write_text("import numpy as np\n\n\n" + ops.NUMPY_ACTIVATIONS["softmax"].source + "\n")
    spec = importlib.util.spec_from_file_location("registry_softmax", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    softmax = module.softmax
    rng = np.random.default_rng(5)
    cases = [rng.normal(0, 5, size=(256, 10)), rng.normal(0, 1, size=(16, 3)), np.array([[1e4, -1e4, 0.0, 3.0]]),
             np.array([[-1e4], [2.0], [1e4]]), rng.normal(0, 1, size=(5, 1, 4))]
    cases[0][3] = [1e4, -1e4, 1e4, 0, 0, 0, 0, 0, 0, -1e4]
    for z64 in cases:
        rows = z64.reshape(-1, z64.shape[-1])
        expected = np.array([[math.exp(v - max(row)) / math.fsum(math.exp(w - max(row)) for w in row) for v in row]
                             for row in rows]).reshape(z64.shape)
        for dtype, rtol in ((np.float64, 1e-13), (np.float32, 1e-5)):
            z = z64.astype(dtype)
            got = {"no out": softmax(z)}
            if z.ndim == 2:
                got["C out"] = softmax(z, out=np.empty(z.shape, dtype))
                fortran = np.empty(z.shape, dtype, order="F")
                assert softmax(z, out=fortran) is fortran
                got["Fortran out"] = fortran
            for what, value in got.items():
                assert value.dtype == dtype, what
                np.testing.assert_allclose(value, expected, rtol=rtol, atol=1e-300, err_msg=f"{what} {dtype}")


SIGN_KEEPING = {"identity", "relu", "leaky_relu", "elu", "tanh", "silu"}  # f(x) <= 0 exactly for x <= 0


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_keeps_sign_is_where_f_is_nonpositive_exactly_for_nonpositive_x(name):
    """Activation.keeps_sign (SymPy's solveset) against the activation's value at exact points on both
    sides of 0 and at it, and against the list above (sigmoid and softplus are positive everywhere)."""
    act = ops.activation(name)
    assert act.keeps_sign == (name in SIGN_KEEPING)
    points = [sp.Integer(-7), -sp.Rational(1, 3), -sp.Rational(1, 10**6), sp.Integer(0),
              sp.Rational(1, 10**6), sp.Rational(2, 3), sp.Integer(9)]
    agrees = all(bool(act.at(x) <= 0) == bool(x <= 0) for x in points)
    assert agrees == act.keeps_sign
    alpha = ops.activation("leaky_relu", alpha=0.2)
    assert alpha.keeps_sign and not ops.custom_activation("x + 1").keeps_sign
