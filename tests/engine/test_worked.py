"""The worked example (engine/worked.py) against independent truths.

* Matt Mazur, "A Step by Step Backpropagation Example" (2015),
  https://mattmazur.com/2015/03/17/a-step-by-step-backpropagation-example/ : the figures as
  printed there, each to every printed digit. Mazur does not update the biases, so only the
  weights are compared with his updated values (our biases are checked by finite differences).
  The page itself could not be opened from where this was written; the figures below are the
  widely quoted ones, cross-checked against several independent re-implementations that print
  or assert them (test suites in Rust, Java, Lua, Swift, Elixir and a Markdown retelling).
* The generated model.py (forward, loss, gradients, init_params, one train_step), generated
  into tmp_path from the same spec.
* Central finite differences of the loss (NumericNetwork evaluates the forward pass only).
* The textbook first steps of momentum and Adam from a zero state.
"""

import importlib.util
from argparse import Namespace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from symbackprop import codegen
from symbackprop.engine.derive import derive
from symbackprop.engine.numeric import NumericNetwork
from symbackprop.engine.worked import worked_example
from symbackprop.spec import from_dict, read_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MAZUR = EXAMPLES / "mazur_2_2_2.yaml"

# Mazur's figures as printed. His w1..w4 are W1 = [[w1, w2], [w3, w4]] (w1: i1 -> h1, w2: i2 -> h1,
# w3: i1 -> h2, w4: i2 -> h2) and w5..w8 are W2 = [[w5, w6], [w7, w8]] (w5: h1 -> o1, w6: h2 -> o1, ...).
PUBLISHED = {
    "net_h1": ("z", 1, 0, "0.3775"),
    "out_h1": ("a", 1, 0, "0.593269992"),
    "out_h2": ("a", 1, 1, "0.596884378"),
    "net_o1": ("z", 2, 0, "1.105905967"),
    "out_o1": ("a", 2, 0, "0.75136507"),
    "out_o2": ("a", 2, 1, "0.772928465"),
    "dE_total/dw5": ("grads", "W2", (0, 0), "0.082167041"),
    "dE_total/dw1": ("grads", "W1", (0, 0), "0.000438568"),
    "w5+": ("updated", "W2", (0, 0), "0.35891648"),
    "w6+": ("updated", "W2", (0, 1), "0.408666186"),
    "w7+": ("updated", "W2", (1, 0), "0.511301270"),
    "w8+": ("updated", "W2", (1, 1), "0.561370121"),
    "w1+": ("updated", "W1", (0, 0), "0.149780716"),
    "w2+": ("updated", "W1", (0, 1), "0.19956143"),
    "w3+": ("updated", "W1", (1, 0), "0.24975114"),
    "w4+": ("updated", "W1", (1, 1), "0.29950229"),
}
PUBLISHED_E_TOTAL = "0.298371109"


def agrees_to_printed_digits(value: float, printed: str) -> bool:
    """True when ``value`` rounds to ``printed`` in its last printed decimal place."""
    places = -Decimal(printed).as_tuple().exponent
    return abs(Decimal(repr(value)) - Decimal(printed)) <= Decimal(5) * Decimal(10) ** -(places + 1)


@pytest.fixture(scope="module")
def mazur():
    d = derive(MAZUR, verify=False)
    return d, worked_example(d)


def test_mazur_spec_is_the_published_network(mazur):
    d, w = mazur
    net = d.network
    assert (net.name, net.architecture, net.loss.name) == ("mazur-2-2-2", "2-2-2", "half_sse")
    assert [layer.activation.name for layer in net.layers] == ["sigmoid", "sigmoid"]
    assert (net.optimizer.name, w.learning_rate) == ("sgd", 0.5)
    assert w.x.tolist() == [0.05, 0.10] and w.t.tolist() == [0.01, 0.99]
    assert w.params["W1"].tolist() == [[0.15, 0.20], [0.25, 0.30]]
    assert w.params["W2"].tolist() == [[0.40, 0.45], [0.50, 0.55]]
    assert w.params["b1"].tolist() == [0.35, 0.35] and w.params["b2"].tolist() == [0.60, 0.60]


def test_mazur_total_error_to_every_printed_digit(mazur):
    _, w = mazur
    assert agrees_to_printed_digits(w.loss, PUBLISHED_E_TOTAL), (w.loss, PUBLISHED_E_TOTAL)
    # E_total = sum of 1/2 (target - out)^2, written out independently of the registry
    assert w.loss == pytest.approx(sum(0.5 * (t - o) ** 2 for t, o in zip(w.t, w.a[2])), rel=1e-15)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_mazur_published_figure(mazur, name):
    _, w = mazur
    kind, key, index, printed = PUBLISHED[name]
    value = float(getattr(w, kind)[key][index])
    assert agrees_to_printed_digits(value, printed), f"{name}: ours {value!r}, published {printed}"


def test_mazur_biases_take_the_gradient_step(mazur):
    """Mazur leaves b1, b2 alone; the spec's SGD updates them: b <- b - 0.5 * delta."""
    _, w = mazur
    for l in (1, 2):
        np.testing.assert_allclose(w.updated[f"b{l}"], w.params[f"b{l}"] - 0.5 * w.delta[l], rtol=1e-15)


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_model(d, folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in codegen.code_outputs(d, Namespace(target="numpy")).items():
        (folder / name).write_bytes(data)
    return import_file(folder / "model.py", f"worked_model_{abs(hash(str(folder)))}")


def spec_with_example(path: Path, example: dict):
    data = read_file(path)
    data["example"] = example
    return from_dict(data)


SEEDED = {
    "xor": (EXAMPLES / "xor.yaml", {"x": [1.0, 0.0], "t": [1.0], "seed": 0}),
    "classifier": (EXAMPLES / "classifier_4_5_3.yaml", {"x": [0.5, -1.0, 2.0, 0.25], "t": [0, 0, 1], "seed": 1}),
    "deep_mixed": (EXAMPLES / "deep_mixed.toml", {"x": [0.3, -0.7, 1.1], "t": [0.2, -0.4], "seed": 2}),
}


def cases():
    yield "mazur", MAZUR, None
    for name, (path, example) in SEEDED.items():
        yield name, path, example


@pytest.fixture(scope="module", params=[c[0] for c in cases()])
def case(request):
    name, path, example = next(c for c in cases() if c[0] == request.param)
    d = derive(path if example is None else spec_with_example(path, example), verify=False)
    return name, d, worked_example(d)


def test_matches_the_generated_model(case, tmp_path):
    name, d, w = case
    model = generated_model(d, tmp_path / name)
    X, T = w.x[None, :], w.t[None, :]
    if d.network.example.seed is not None:
        reference = model.init_params(d.network.example.seed)
        assert reference.keys() == w.params.keys()
        for key in reference:
            np.testing.assert_array_equal(w.params[key], reference[key])
    params = {k: v.copy() for k, v in w.params.items()}
    Y, cache = model.forward(params, X)
    np.testing.assert_allclose(np.asarray(Y)[0], w.a[d.L], rtol=1e-12, atol=1e-15)
    for l in range(1, d.L + 1):
        for kind, values in (("z", w.z), ("a", w.a)):
            if f"{kind}{l}" in cache:
                np.testing.assert_allclose(np.asarray(cache[f"{kind}{l}"])[0], values[l], rtol=1e-12, atol=1e-15)
    assert model.loss(params, X, T) == pytest.approx(w.loss, rel=1e-12, abs=1e-15)
    grads = model.gradients(params, X, T)
    assert grads.keys() == w.grads.keys()
    for key in grads:
        np.testing.assert_allclose(w.grads[key], grads[key], rtol=1e-10, atol=1e-14, err_msg=key)
    state = model.init_state(params)
    model.train_step(params, X, T, state)
    for key, value in params.items():
        np.testing.assert_allclose(w.updated[key], value, rtol=1e-10, atol=1e-14, err_msg=key)


def test_gradients_and_deltas_match_finite_differences(case):
    _, d, w = case
    numeric = NumericNetwork(d.network)
    h = 1e-6
    for key, value in w.params.items():
        fd = np.empty_like(value)
        for index in np.ndindex(value.shape):
            shifted = {k: v.copy() for k, v in w.params.items()}
            shifted[key][index] = value[index] + h
            up = numeric.loss(shifted, w.x, w.t)
            shifted[key][index] = value[index] - h
            fd[index] = (up - numeric.loss(shifted, w.x, w.t)) / (2 * h)
        np.testing.assert_allclose(w.grads[key], fd, rtol=1e-6, atol=1e-9, err_msg=key)
        l = int(key[1:])
        if key.startswith("b"):  # dE/db = delta
            np.testing.assert_allclose(w.delta[l], fd, rtol=1e-6, atol=1e-9)
        else:  # dE/dW = delta a^T
            np.testing.assert_allclose(np.outer(w.delta[l], w.a[l - 1]), fd, rtol=1e-6, atol=1e-9)
    assert w.loss == pytest.approx(numeric.loss(w.params, w.x, w.t), rel=1e-14)


def test_optimizer_first_step_is_the_textbook_one(case):
    _, d, w = case
    opt = d.network.optimizer
    for key, p in w.params.items():
        g = w.grads[key]
        if opt.name in ("sgd", "momentum"):  # momentum from v = 0: v = -lr g, p + v
            expected = p - opt.learning_rate * g
        else:  # Adam from m = v = 0: m_hat = g, v_hat = g^2
            expected = p - opt.learning_rate * g / (np.abs(g) + opt.epsilon)
        np.testing.assert_allclose(w.updated[key], expected, rtol=1e-12, atol=1e-15, err_msg=key)


@pytest.mark.parametrize("optimizer", [{"name": "momentum", "learning_rate": 0.3, "momentum": 0.8},
                                       {"name": "adam", "learning_rate": 0.01}])
def test_momentum_and_adam_first_step(optimizer, tmp_path):
    data = read_file(MAZUR)
    data["optimizer"] = optimizer
    d = derive(from_dict(data), verify=False)
    w = worked_example(d)
    lr = optimizer["learning_rate"]
    for key, p in w.params.items():
        g = w.grads[key]
        expected = p - lr * g if optimizer["name"] == "momentum" else p - lr * g / (np.abs(g) + 1e-8)
        np.testing.assert_allclose(w.updated[key], expected, rtol=1e-12, err_msg=key)
    model = generated_model(d, tmp_path / optimizer["name"])
    params = {k: v.copy() for k, v in w.params.items()}
    model.train_step(params, w.x[None, :], w.t[None, :], model.init_state(params))
    for key, value in params.items():
        np.testing.assert_allclose(w.updated[key], value, rtol=1e-10, err_msg=key)


def test_no_example_gives_none():
    assert worked_example(derive(EXAMPLES / "seed_2_3_1.yaml", verify=False)) is None


def test_seed_draws_init_params_for_relu_layers_too():
    """The He gain (2 / fan-in) for ReLU layers, as model.py draws them: spread follows the fan-in."""
    net = spec_with_example(EXAMPLES / "deep_mixed.toml", {"x": [0, 0, 0], "t": [0, 0], "seed": 5})
    w = worked_example(derive(net, verify=False))
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(w.params["W1"], rng.standard_normal((4, 3)) * np.sqrt(2.0 / 3))
    np.testing.assert_array_equal(w.params["b1"], np.zeros(4))
    np.testing.assert_array_equal(w.params["W2"], rng.standard_normal((3, 4)) * np.sqrt(1.0 / 4))
    assert "b3" not in w.params
