"""The finite-difference checker: it passes true gradients, and catches broken ones loudly."""

from __future__ import annotations

import re
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

from symbackprop.codegen import numpy_code as codegen
from symbackprop.engine.derive import derive
from symbackprop.engine.gradcheck import GradientCheckError, central_difference, check_gradients

ROOT = Path(__file__).resolve().parents[2]


def _quadratic():
    A = np.array([[2.0, 0.5], [0.5, 1.0]])
    params = {"W1": np.array([[0.3, -0.7]]), "b1": np.array([0.25])}

    def loss(p):
        w = p["W1"][0]
        return float(w @ A @ w + np.sin(p["b1"][0]))

    grads = {"W1": (2 * A @ params["W1"][0])[None, :], "b1": np.cos(params["b1"])}
    return loss, params, grads


def test_true_gradients_pass_and_every_entry_is_checked():
    loss, params, grads = _quadratic()
    assert check_gradients(loss, params, grads) == 3


def test_central_difference_is_fourth_order_and_restores_the_entry():
    x = np.array([0.4])
    value = central_difference(lambda: np.exp(x[0]), x, (0,), 1e-2)
    assert x[0] == 0.4
    assert abs(value - np.exp(0.4)) < 1e-9  # a second-order difference errs by ~2.5e-5 here


def test_failure_report_names_parameter_index_values_errors_and_tolerance():
    loss, params, grads = _quadratic()
    grads["W1"] = grads["W1"].copy()
    grads["W1"][0, 1] *= -1
    with pytest.raises(GradientCheckError) as info:
        check_gradients(loss, params, grads)
    report = str(info.value)
    line = next(row for row in report.splitlines() if row.strip().startswith("W1[0, 1]"))
    true = 2 * (0.5 * 0.3 + 1.0 * -0.7)
    assert repr(-true) in line  # the analytic value as given
    assert "finite difference " in line and "absolute error" in line and "relative error" in line
    assert re.search(r"tolerance \d\.\d+e-\d+ \(= 1e-10 \+ 1e-07 \* \|finite difference\|\)", line)
    assert "1 of 3" in report


@pytest.mark.parametrize("where", ["analytic", "loss"])
def test_nan_never_passes(where):
    loss, params, grads = _quadratic()
    if where == "analytic":
        grads["b1"] = np.array([np.nan])
    else:
        original = loss
        loss = lambda p: original(p) if p["b1"][0] == 0.25 else float("nan")
    with pytest.raises(GradientCheckError, match="nan"):
        check_gradients(loss, params, grads)


def test_shape_mismatch_is_reported():
    loss, params, grads = _quadratic()
    grads["W1"] = grads["W1"].ravel()
    with pytest.raises(GradientCheckError, match="shape"):
        check_gradients(loss, params, grads)


def _generated(tmp_path: Path, name: str, source: str):
    import importlib.util

    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"broken_{name}_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("breakage", ["sign flip of the output delta", "dropped activation factor",
                                      "dropped factor in a scalar formula"])
def test_a_broken_generated_gradient_fails_the_check(tmp_path, breakage):
    d = derive(ROOT / "examples" / "seed_2_3_1.yaml", verify=False)
    target = "scalar" if "scalar" in breakage else "numpy"
    source = codegen.code_outputs(d, Namespace(target=target))["model.py"].decode()
    if breakage == "sign flip of the output delta":
        broken = source.replace("(a2 - T)", "(T - a2)")
    elif breakage == "dropped activation factor":
        broken = source.replace("delta1 *= ", "delta1 *= 1 or ")
    else:
        broken = re.sub(r"(dW1_2_1 = )(\w+)\*(\w+)", r"\1\2", source)
    assert broken != source
    intact = _generated(tmp_path, "intact", source)
    model = _generated(tmp_path, "broken", broken)
    rng = np.random.default_rng(0)
    params = {k: v + rng.normal(0, 0.3, v.shape) for k, v in intact.init_params(1).items()}
    X, T = rng.normal(size=(3, 2)), rng.uniform(0.1, 0.9, size=(3, 1))
    check_gradients(lambda p: intact.loss(p, X, T), params, intact.gradients(params, X, T))
    with pytest.raises(GradientCheckError):
        check_gradients(lambda p: model.loss(p, X, T), params, model.gradients(params, X, T))
