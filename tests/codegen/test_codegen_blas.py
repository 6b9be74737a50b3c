"""The NumPy target's SGD step with the largest weights updated inside SciPy's BLAS products
(``sgd_step_blas``, ``gemm_update``, ``blas_trial``; numpy_code.fused_weights).

Reference: HIPS autograd on a NumPy forward pass written from the definitions (test_codegen's
``autograd_gradients``), so one SGD step from a point must land on ``point - lr * gradient``.
Agreement: float64, ``1e-12`` relative plus ``1e-14`` absolute per parameter (each path rounds
``W - step`` once; the products sum in another order than autograd's); float32, float32 rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_codegen import assert_close, autograd_gradients, import_file, random_point

from symbackprop.codegen import numpy_code as codegen
from symbackprop.engine.derive import derive

pytest.importorskip("scipy.linalg.blas")

LR = 0.1


def spec_of(sizes, hidden, out, loss, bias=True, optimizer="sgd"):
    layers = [{"units": n, "activation": hidden, "bias": bias} for n in sizes[1:-1]]
    layers.append({"units": sizes[-1], "activation": out, "bias": bias})
    return {"name": "blas-" + "-".join(map(str, sizes)), "inputs": sizes[0], "layers": layers, "loss": loss,
            "optimizer": {"name": optimizer, "learning_rate": LR}}


def model_of(spec, tmp_path, monkeypatch, min_weights=None):
    if min_weights is not None:
        monkeypatch.setattr(codegen, "FUSED_MIN_WEIGHTS", min_weights)
    d = derive(spec, verify=False)
    path = tmp_path / f"model_{abs(hash((spec['name'], min_weights)))}.py"
    path.write_text(codegen.numpy_model(d))
    return d, import_file(path, path.stem + f"_{abs(hash(str(tmp_path)))}")


def set_point(params, point):
    for key, value in point.items():
        np.copyto(params[key], value)
    return params


def expected_step(d, point, X, T):
    grads = autograd_gradients(d.network, point, X, T)
    return {k: point[k] - LR * grads[k] for k in point}


def test_fused_weights_are_the_large_weights_of_sgd_networks():
    """W of units x inputs >= FUSED_MIN_WEIGHTS, for SGD only (momentum and Adam keep their update rules)."""
    n = codegen.FUSED_MIN_WEIGHTS
    big = spec_of((n // 64, 64, 3), "relu", "softmax", "categorical_cross_entropy")  # W1: 64 x n/64 = n weights
    assert codegen.fused_weights(derive(big, verify=False)) == ["W1"]
    under = spec_of((n // 64 - 1, 64, 3), "relu", "softmax", "categorical_cross_entropy")
    assert codegen.fused_weights(derive(under, verify=False)) == []
    for optimizer in ("momentum", "adam"):
        assert codegen.fused_weights(derive(dict(big, optimizer={"name": optimizer}), verify=False)) == []


def test_small_models_have_no_blas_step(tmp_path, monkeypatch):
    """The examples' sizes: nothing of SciPy in model.py."""
    _, model = model_of(spec_of((4, 5, 3), "tanh", "softmax", "categorical_cross_entropy"), tmp_path, monkeypatch)
    source = Path(model.__file__).read_text()
    assert "scipy" not in source and "sgd_step_blas" not in source and not hasattr(model, "GEMM")


CASES = [  # (sizes, hidden, output, loss, bias, FUSED_MIN_WEIGHTS)
    ((5, 4, 3), "sigmoid", "softmax", "categorical_cross_entropy", True, 1),  # every weight inside gemm
    ((5, 4, 3, 2), "tanh", "sigmoid", "binary_cross_entropy", False, 1),
    ((6, 7, 4, 2), "relu", "identity", "half_sse", True, 20),  # W1 and W2 inside gemm, W3 subtracted
    ((130, 512, 9), "relu", "softmax", "categorical_cross_entropy", True, None),  # W1: 66560; layer 1 feature-major
    ((6, 512, 520, 10), "relu", "softmax", "categorical_cross_entropy", True, None),  # W2: 266240 weights
]


@pytest.mark.parametrize("sizes, hidden, out, loss, bias, min_weights", CASES)
def test_blas_step_is_the_sgd_step(tmp_path, monkeypatch, sizes, hidden, out, loss, bias, min_weights):
    """sgd_step_blas lands on point - lr * autograd's gradient: on init_params' flat views, on C-ordered
    copies, on Fortran-ordered copies and on non-contiguous arrays (f2py updates a copy, written back); and
    train_step without SciPy (GEMM empty) gives the same step through the array step, in each layout."""
    d, model = model_of(spec_of(sizes, hidden, out, loss, bias), tmp_path, monkeypatch, min_weights)
    assert model.GEMM and codegen.fused_weights(d)
    rng = np.random.default_rng(7)
    point, X, T = random_point(d.network, rng, batch=5, margin=1e-6)
    expected = expected_step(d, point, X, T)
    layouts = {
        "flat views": lambda p: p,
        "C-ordered copies": lambda p: {k: np.ascontiguousarray(v) for k, v in p.items()},
        "Fortran-ordered copies": lambda p: {k: np.asfortranarray(v) for k, v in p.items()},
        "non-contiguous": lambda p: {k: np.repeat(v, 2, axis=-1)[..., ::2] for k, v in p.items()},
    }
    for what, layout in layouts.items():
        params = layout(set_point(model.init_params(0), point))
        if what == "non-contiguous":
            assert not any(v.flags.c_contiguous or v.flags.f_contiguous for v in params.values())
        arrays = dict(params)
        state = model.init_state(params)
        state["blas"] = True
        model.train_step(params, X, T, state)
        assert all(params[k] is arrays[k] for k in arrays), what  # updated in place
        assert_close(params, expected, f"sgd_step_blas, {what}", rtol=1e-12, atol=1e-14)
    monkeypatch.setattr(model, "GEMM", {})
    for what, layout in layouts.items():  # the array step, into gradient_buffers (C order where np.dot writes)
        params = layout(set_point(model.init_params(0), point))
        model.train_step(params, X, T, model.init_state(params))
        assert_close(params, expected, f"without SciPy, {what}", rtol=1e-12, atol=1e-14)


def test_blas_trial_times_both_steps_by_turns_then_keeps_one(tmp_path, monkeypatch):
    """The first 2 x BLAS_TRIALS steps alternate sgd_step_blas and sgd_step_array (each a correct SGD
    step: the trajectory equals the array step's), then state["blas"] holds the choice, which train_step follows."""
    d, model = model_of(spec_of((5, 4, 3), "tanh", "softmax", "categorical_cross_entropy"), tmp_path, monkeypatch, 1)
    calls = []
    for name in ("sgd_step_blas", "sgd_step_array"):
        original = getattr(model, name)
        monkeypatch.setattr(model, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    rng = np.random.default_rng(3)
    point, X, T = random_point(d.network, rng, batch=4)
    params = set_point(model.init_params(0), point)
    state = model.init_state(params)
    assert state["blas"] is None
    reference = set_point(model.init_params(0), point)
    reference_state = model.init_state(reference)
    reference_state["blas"] = False
    n = model.BLAS_TRIALS
    for step in range(2 * n + 3):
        model.train_step(params, X, T, state)
        model.train_step(reference, X, T, reference_state)
        assert_close(params, reference, f"step {step + 1}", rtol=1e-11, atol=1e-14)
        assert (state["blas"] is None) == (step < 2 * n - 1)
    own, references = calls[::2], calls[1::2]  # the reference's array steps interleave with this model's
    assert references == ["sgd_step_array"] * (2 * n + 3)
    assert own[:2 * n] == ["sgd_step_blas", "sgd_step_array"] * n, own
    assert len(state["blas_times"]["blas"]) == len(state["blas_times"]["array"]) == n
    chosen = "sgd_step_blas" if state["blas"] else "sgd_step_array"
    assert state["blas"] == (min(state["blas_times"]["blas"]) <= min(state["blas_times"]["array"]))
    assert own[2 * n:2 * n + 3] == [chosen] * 3


def test_float32_and_mixed_dtypes(tmp_path, monkeypatch):
    """float32 parameters and data: sgemm, within float32 rounding of the float64 step; float64 parameters
    with float32 data: dgemm on the data converted, the float64 step."""
    d, model = model_of(spec_of((6, 7, 3), "sigmoid", "softmax", "categorical_cross_entropy"), tmp_path,
                        monkeypatch, 1)
    rng = np.random.default_rng(11)
    point, X, _ = random_point(d.network, rng, batch=4)
    T = np.eye(3)[[0, 2, 1, 2]]  # one-hot: sums to 1 in float32 too (the delta a - t assumes it)
    point32 = {k: v.astype(np.float32) for k, v in point.items()}
    X32, T32 = X.astype(np.float32), T.astype(np.float32)
    expected = expected_step(d, {k: v.astype(np.float64) for k, v in point32.items()}, X32.astype(float),
                             T32.astype(float))
    params = set_point(model.init_params(0, np.float32), point32)
    state = model.init_state(params)
    state["blas"] = True
    model.train_step(params, X32, T32, state)
    assert all(v.dtype == np.float32 for v in params.values())
    assert_close(params, expected, "float32", rtol=2e-6, atol=2e-7)
    params = set_point(model.init_params(0, np.float64), point32)
    state = model.init_state(params)
    state["blas"] = True
    model.train_step(params, X32, T32, state)
    assert_close(params, expected, "float64 parameters, float32 data", rtol=1e-12, atol=1e-14)
