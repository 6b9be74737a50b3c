"""The NumPy target's SGD fast path on Python floats (``sgd_step_floats``, numpy_code.float_step_context).

References: the array step of the same model.py (same parameters, same batch; its own tests check it against
finite differences, the closed form and autograd), finite differences of the generated loss
(``symbackprop.engine.gradcheck``) and HIPS autograd on a forward pass written here from the definitions.

Agreement rules, per parameter, on the step Δ = θ_before - θ_after:
float64: ``|Δ_float - Δ_array| <= 1e-12 |Δ_array| + 2 ulp(θ)`` (each path rounds θ - step once);
float32: the float path computes in float64 and rounds once, so it is within 1 float32 ulp of the array
path run in float64 on the same (float32) values, and within float32 rounding of the float32 array path.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import warnings
from argparse import Namespace

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from symbackprop.codegen import numpy_code as codegen
from symbackprop.engine import gradcheck
from symbackprop.engine.derive import derive
from symbackprop.registry import ops

ELEMENTWISE = [n for n in ops.ACTIVATION_NAMES if not ops.activation(n).vector]


def spec_of(hidden, out, loss, bias=True, sizes=(3, 3, 2), optimizer="sgd", lr=0.1):
    layers = [{"units": n, "activation": hidden, "bias": bias} for n in sizes[1:-1]]
    layers.append({"units": sizes[-1], "activation": out, "bias": bias})
    return {"name": f"float-{hidden}-{out}-{loss}", "inputs": sizes[0], "layers": layers, "loss": loss,
            "optimizer": {"name": optimizer, "learning_rate": lr}}


def model_of(spec, tmp_path, name="model"):
    d = derive(spec, verify=False)
    path = tmp_path / f"{name}.py"
    path.write_text(codegen.code_outputs(d, Namespace(target="numpy"))["model.py"].decode())
    module_spec = importlib.util.spec_from_file_location(f"float_{name}_{abs(hash(str(tmp_path)))}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return d, module


def point(model, d, rng, batch, dtype, scale=1.0):
    """Parameters in init_params' flat layout, set to random values; inputs and targets of the loss's kind."""
    params = model.init_params(0, dtype)
    for value in params.values():
        value[...] = rng.normal(0, scale, size=value.shape)
    sizes, kind = d.network.sizes, d.network.loss.target_kind
    X = rng.normal(0, 1, size=(batch, sizes[0])).astype(dtype)
    m = sizes[-1]
    T = (rng.dirichlet(np.ones(m), size=batch) if kind == "simplex" else
         rng.uniform(0.05, 0.95, size=(batch, m)) if kind == "unit" else rng.normal(0, 1, size=(batch, m)))
    return params, X, T.astype(dtype)


@contextlib.contextmanager
def float_step_calls(model):
    """A list that gets one entry per call of model.sgd_step_floats while the block runs."""
    calls, real = [], model.sgd_step_floats

    def spy(*args):
        calls.append(args)
        return real(*args)

    model.sgd_step_floats = spy
    try:
        yield calls
    finally:
        model.sgd_step_floats = real


def step(model, params, X, T, lr, path):
    """Δ = θ_before - θ_after of one train_step on a copy of params, by the float or the array path."""
    fresh = model.init_params(0, params["W1"].dtype)
    for key, value in params.items():
        np.copyto(fresh[key], value)
    state = model.init_state(fresh)
    theta = state["flat"][0]
    before = theta.copy()
    saved_rows, model.FLOAT_STEP_ROWS = model.FLOAT_STEP_ROWS, len(X) if path == "float" else 0
    try:
        with float_step_calls(model) as calls:
            model.train_step(fresh, X, T, state, learning_rate=lr)
    finally:
        model.FLOAT_STEP_ROWS = saved_rows
    assert bool(calls) == (path == "float")
    return before - theta, theta


def assert_steps_agree(got, want, theta, rtol, what):
    bad = ~(np.abs(got - want) <= rtol * np.abs(want) + 2 * np.spacing(np.abs(theta)))
    assert not bad.any(), f"{what}: entries {np.flatnonzero(bad).tolist()}: {got[bad]} vs {want[bad]}"


# ----------------------------------------------------------------------------- agreement with the array path


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("out,loss", ops.allowed_pairs(), ids=[f"{a}-{l}" for a, l in ops.allowed_pairs()])
def test_float_step_agrees_with_the_array_step(tmp_path, out, loss, bias):
    """Every activation/loss pair of the registry (the output activation also as the hidden one, tanh under
    softmax), with and without bias, batches of 1 and 4, float64 and float32."""
    hidden = out if out != "softmax" else "tanh"
    d, model = model_of(spec_of(hidden, out, loss, bias), tmp_path)
    assert model.FLOAT_STEP_ROWS == codegen.FLOAT_STEP_LIMIT // len(d.parameters) >= 4
    rng = np.random.default_rng(7)
    for batch in (1, 4):
        for _ in range(50):  # a point where the step moves the parameters (not every ReLU dead)
            params, X, T = point(model, d, rng, batch, np.float64)
            want, theta = step(model, params, X, T, 0.1, "array")
            if np.count_nonzero(np.abs(want) > 1e-6) >= want.size // 2:
                break
        got, _ = step(model, params, X, T, 0.1, "float")
        assert_steps_agree(got, want, theta, 1e-12, f"float64, batch {batch}")
        p32, X32, T32 = ({k: v.astype(np.float32) for k, v in params.items()}, X.astype(np.float32),
                         T.astype(np.float32))
        got32, theta32 = step(model, p32, X32, T32, 0.1, "float")
        exact, _ = step(model, {k: v.astype(np.float64) for k, v in p32.items()}, X32.astype(np.float64),
                        T32.astype(np.float64), 0.1, "array")  # the same float32 values, in float64
        start = np.concatenate([p32[k].ravel() for k in model.KEYS]).astype(np.float64)
        rounded = (start - exact).astype(np.float32)
        assert np.all(np.abs(theta32 - rounded) <= np.spacing(np.abs(rounded))), f"float32, batch {batch}"
        array32, _ = step(model, p32, X32, T32, 0.1, "array")
        assert_steps_agree(got32.astype(np.float64), array32.astype(np.float64), theta32, 1e-3,
                           f"float32 against the float32 array path, batch {batch}")


@pytest.mark.parametrize("hidden", ELEMENTWISE)
def test_every_activation_in_two_hidden_layers(tmp_path, hidden):
    """Two hidden layers of each activation (deltas through a hidden layer's derivative twice), softmax output."""
    spec = spec_of(hidden, "softmax", "categorical_cross_entropy", sizes=(2, 3, 3, 2))
    d, model = model_of(spec, tmp_path)
    params, X, T = point(model, d, np.random.default_rng(3), 4, np.float64)
    want, theta = step(model, params, X, T, 0.5, "array")
    got, _ = step(model, params, X, T, 0.5, "float")
    assert_steps_agree(got, want, theta, 1e-12, hidden)


# ----------------------------------------------------------------------------- independent oracles


def test_seed_net_step_matches_finite_differences_and_autograd(tmp_path):
    """The seeds' 2-3-1 sigmoid net with half SSE: Δ / learning_rate is the batch-mean gradient."""
    spec = {"inputs": 2, "layers": [{"units": 3, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
            "loss": "half_sse", "optimizer": {"name": "sgd", "learning_rate": 0.5}}
    d, model = model_of(spec, tmp_path)

    def loss(p, X, T):  # written here from the definitions
        a1 = 1 / (1 + anp.exp(-(anp.dot(X, p["W1"].T) + p["b1"])))
        a2 = 1 / (1 + anp.exp(-(anp.dot(a1, p["W2"].T) + p["b2"])))
        return anp.mean(0.5 * anp.sum((a2 - T) ** 2, axis=1))

    for batch in (1, 3):
        params, X, T = point(model, d, np.random.default_rng(batch), batch, np.float64)
        delta, _ = step(model, params, X, T, 1.0, "float")
        grads = {key: g.reshape(model.SHAPES[key]) for key, g in zip(model.KEYS, np.split(
            delta, np.cumsum([int(np.prod(model.SHAPES[k])) for k in model.KEYS])[:-1]))}
        copy = {k: v.copy() for k, v in params.items()}
        gradcheck.check_gradients(lambda p, X=X, T=T: model.loss(p, X, T), copy, grads, rtol=1e-7, atol=1e-12)
        reference = autograd.grad(loss)({k: v.copy() for k, v in params.items()}, X, T)
        for key in model.KEYS:
            np.testing.assert_allclose(grads[key], reference[key], rtol=1e-12, atol=1e-15, err_msg=key)


# ----------------------------------------------------------------------------- stability and fallbacks


@pytest.mark.parametrize("name", [n for n in ops.ACTIVATION_NAMES if n != "identity"])
def test_float_forms_equal_the_numpy_forms_at_extreme_inputs(tmp_path, name):
    """Each registry float form against the NumPy form of the same model.py, |z| up to 1e4, infinities
    included: equal to 1e-13 relative, never raising, finite wherever the NumPy form is."""
    out, loss = ("softmax", "categorical_cross_entropy") if name == "softmax" else (name, "half_sse")
    _, model = model_of(spec_of("tanh" if name == "softmax" else name, out, loss), tmp_path)
    act = ops.activation(name)
    kwargs = {k: float(v) for k, v in act.params}
    grid = [0.0, -0.0, 1e-300, -1e-300, 0.3, -0.3, 1.0, -1.0, 20.0, -20.0, 37.0, -37.0, 700.0, -700.0, 710.0, -710.0,
            800.0, -800.0, 1e4, -1e4, 1e300, -1e300, math.inf, -math.inf]
    floats = getattr(model, f"{name}_float")
    with np.errstate(all="ignore"):
        if name == "softmax":
            rows = [(z, 0.5, -z) for z in grid if math.isfinite(z)]
            want = model.softmax(np.array(rows))
            got = np.array([floats(*row) for row in rows])
        else:
            want = getattr(model, name)(np.array(grid), **kwargs)
            got = np.array([floats(z, **kwargs) for z in grid])
    assert np.array_equal(np.isfinite(got), np.isfinite(want)), (got, want)
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-13, atol=1e-300)
    assert np.array_equal(got[~finite], want[~finite], equal_nan=True)


@pytest.mark.parametrize("out,loss", [("sigmoid", "half_sse"), ("softmax", "categorical_cross_entropy"),
                                      ("sigmoid", "binary_cross_entropy"), ("softplus", "mse"), ("elu", "sse")])
@pytest.mark.parametrize("hidden", ELEMENTWISE)
def test_large_pre_activations_stay_finite(tmp_path, hidden, out, loss):
    """|z| about 1e4 in every layer: the float step runs (no math error, no fallback), its step is finite and
    equals the array step's, in float64 and float32."""
    d, model = model_of(spec_of(hidden, out, loss, sizes=(2, 3, 2)), tmp_path)
    for dtype in (np.float64, np.float32):
        params = model.init_params(0, dtype)
        scales = {1: 5e3, 2: 1e4 / 3 if ops.activation(hidden).output_range in ("unit", "open_pm1") else 1.0}
        for key, value in params.items():
            value[...] = np.where(np.arange(value.size).reshape(value.shape) % 2, 1, -1) * scales[int(key[1:])]
        X = np.ones((2, 2), dtype=dtype)
        T = point(model, d, np.random.default_rng(0), 2, dtype)[2]
        theta = np.concatenate([params[k].ravel() for k in model.KEYS])
        model.sgd_step_floats(theta, X, T, 0.1)  # raises on a math error: no fallback here
        assert np.all(np.isfinite(theta)) and theta.dtype == dtype
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want, _ = step(model, params, X, T, 0.1, "array")
        got, after = step(model, params, X, T, 0.1, "float")
        assert np.all(np.isfinite(got))
        if dtype == np.float64:
            assert_steps_agree(got, want, after, 1e-9, f"{hidden}/{out}")


def test_replaced_params_array_falls_back_to_the_array_step(tmp_path):
    """A params array that is no longer a view of the flat vector: train_step must not take the float path (it
    would miss the new array) and still takes the textbook SGD step."""
    d, model = model_of(spec_of("tanh", "sigmoid", "half_sse"), tmp_path)
    params, X, T = point(model, d, np.random.default_rng(5), 2, np.float64)
    start = {k: v.copy() for k, v in params.items()}
    grads = model.gradients(start, X, T)
    state = model.init_state(params)
    params["b2"] = params["b2"].copy()
    with float_step_calls(model) as calls:
        model.train_step(params, X, T, state, learning_rate=0.1)
    assert not calls
    for key in params:
        np.testing.assert_allclose(params[key], start[key] - 0.1 * grads[key], rtol=1e-13, atol=1e-16, err_msg=key)


def test_batches_above_the_limit_take_the_array_step(tmp_path):
    d, model = model_of(spec_of("sigmoid", "sigmoid", "half_sse"), tmp_path)
    rows = model.FLOAT_STEP_ROWS
    assert rows == codegen.FLOAT_STEP_LIMIT // len(d.parameters)
    for batch, expected in ((rows, True), (rows + 1, False)):
        params, X, T = point(model, d, np.random.default_rng(batch), batch, np.float64)
        state = model.init_state(params)
        with float_step_calls(model) as calls:
            model.train_step(params, X, T, state)
        assert bool(calls) == expected, batch


def test_math_error_falls_back_to_the_numpy_result(tmp_path):
    """A custom activation x**3 is finite to |z| = 1e4 and gets the float step; at |z| ~ 1e103 Python's ** raises
    OverflowError where NumPy gives inf: sgd_step_floats raises before writing theta, and train_step gives the
    array step's result (NumPy's infinities and NaNs)."""
    spec = {"inputs": 1, "layers": [{"units": 1, "activation": {"expr": "x**3"}}, {"units": 1, "activation": "identity"}],
            "loss": "half_sse", "optimizer": {"name": "sgd", "learning_rate": 0.1}}
    _, model = model_of(spec, tmp_path)
    assert "z1_1**3" in (tmp_path / "model.py").read_text()
    params = model.init_params(0)
    for value in params.values():
        value[...] = 1.0
    X, T = np.array([[1e103]]), np.array([[0.0]])
    theta = model.init_state(params)["flat"][0]
    before = theta.copy()
    with pytest.raises(OverflowError):
        model.sgd_step_floats(theta, X, T, 0.1)
    assert np.array_equal(theta, before)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want, _ = step(model, params, X, T, 0.1, "array")
        got, _ = step(model, params, X, T, 0.1, "float")  # the float path is entered and falls back
    assert np.array_equal(got, want, equal_nan=True) and not np.all(np.isfinite(want))


# ----------------------------------------------------------------------------- where it is emitted


def test_emitted_only_for_small_sgd_networks_with_float_forms(tmp_path):
    small = spec_of("sigmoid", "sigmoid", "half_sse")
    assert codegen.float_step_context(derive(small, verify=False)) is not None
    for optimizer in ("momentum", "adam"):
        assert codegen.float_step_context(derive({**small, "optimizer": {"name": optimizer}}, verify=False)) is None
    n_big = codegen.FLOAT_STEP_LIMIT // 2  # 2 n_big + 5 parameters
    big = spec_of("sigmoid", "sigmoid", "half_sse", sizes=(n_big, 2, 1))
    assert len(derive(big, verify=False).parameters) > codegen.FLOAT_STEP_LIMIT
    text = codegen.numpy_model(derive(big, verify=False))
    assert "sgd_step_floats" not in text and "import math" not in text
    unstable = {**small, "layers": [{"units": 3, "activation": {"expr": "exp(x)"}}, small["layers"][1]]}
    assert codegen.float_step_context(derive(unstable, verify=False)) is None  # overflows below |z| = 1e4
    code = codegen.numpy_model(derive(small, verify=False))
    assert "import math" in code and "def sgd_step_floats(theta, X, T, learning_rate=LEARNING_RATE):" in code
    assert "delta2_1 = " in code and "dW1_1_1 += delta1_1*x_1" in code  # the scalar target's formulas
    assert "np." not in code.split("def sgd_step_floats")[1].split("\ndef ")[0]


def test_every_activation_with_numpy_code_has_a_float_form():
    assert set(ops.FLOAT_ACTIVATIONS) == set(ops.NUMPY_ACTIVATIONS)
    for name, code in ops.FLOAT_ACTIVATIONS.items():
        assert code.source.startswith(f"def {name}_float(") and "np." not in code.source.split('"""')[-1], name
        assert set(code.needs) <= set(ops.FLOAT_ACTIVATIONS), name


def test_float_printer_prints_math_and_float_helpers():
    import sympy as sp

    from symbackprop.registry.stable import sigmoid, softplus

    x = sp.Symbol("x", real=True)
    printer = codegen.FloatPrinter()
    assert printer.doprint(sp.exp(x) + sp.log(x)) == "math.exp(x) + math.log(x)"
    assert printer.doprint(sigmoid(x) * softplus(x)) == "sigmoid_float(x)*softplus_float(x)"
    assert printer.used == {"sigmoid", "softplus"}
    assert printer.doprint(x ** sp.Rational(3, 2)) == "math.pow(x, 3/2)"
    assert printer.doprint(sp.Piecewise((0, x <= 0), (1, True))) == "(x > 0)"
    with pytest.raises(sp.printing.codeprinter.PrintMethodNotImplementedError):
        printer.doprint(sp.Function("unknown")(x))
