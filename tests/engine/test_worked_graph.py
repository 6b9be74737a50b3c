"""The worked example of a layer graph (engine/worked_graph.py) against independent truths.

* The generated model.py (init_params, draw_masks, forward, loss, gradients, one train_step
  with the running statistics), generated into tmp_path from the same spec.
* Central finite differences of a forward pass written here from the textbook definitions
  (dense, batch and layer normalization, inverted dropout, residual; the losses as printed
  in the spec's documentation), independent of the registry's code: the loss, every
  layer's upstream gradient G = dE/dY, every dense error term dE/dZ, every parameter gradient.
* The textbook first steps of SGD, momentum and Adam from a zero state, and the running
  statistics' rule r <- momentum r + (1 - momentum) batch from mean 0 and variance 1.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from symbackprop.codegen.graph_code import graph_outputs
from symbackprop.engine.layergraph import LayerDerivation
from symbackprop.engine.worked_graph import draw_masks, graph_worked_example
from symbackprop.spec import from_dict, load, read_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def dense(units, activation, **kw):
    return {"units": units, "activation": activation, **kw}


MIXED = {"inputs": 4, "layers": [dense(5, "relu"), {"type": "batchnorm", "epsilon": 1e-3, "momentum": 0.8},
                                 {"type": "dropout", "rate": 0.4}, dense(5, "tanh"),
                                 {"type": "layernorm", "epsilon": 1e-5}, {"type": "residual", "from": 1},
                                 dense(3, "softmax")],
         "loss": "categorical_cross_entropy", "regularization": {"l2": 0.01},
         "optimizer": {"name": "adam", "learning_rate": 0.01},
         "example": {"x": [[0.5, -1.0, 2.0, 0.3], [1.0, 0.2, -0.4, 0.8], [-0.7, 0.9, 0.1, -1.2]],
                     "t": [[0, 0, 1], [1, 0, 0], [0, 1, 0]], "seed": 3}}


def with_example(path: Path, example: dict) -> dict:
    data = read_file(path)
    data["example"] = example
    return data


CASES = {
    "batchnorm": lambda: read_file(EXAMPLES / "batchnorm.yaml"),
    "dropout": lambda: read_file(EXAMPLES / "dropout.yaml"),
    "mixed_seed": lambda: MIXED,
    "residual_momentum": lambda: with_example(EXAMPLES / "residual.yaml", {
        "x": [[0.2, -0.5, 1.0], [1.1, 0.4, -0.3]], "t": [[0.5, -0.5], [1.0, 0.0]], "seed": 5}),
    "weight_decay_one_sample": lambda: with_example(EXAMPLES / "weight_decay.yaml", {
        "x": [0.3, -0.8], "t": [0.9], "seed": 1}),
    "layernorm_weights": lambda: {
        "inputs": 2, "layers": [dense(3, "sigmoid"), {"type": "layernorm"}, dense(2, "identity", bias=False)],
        "loss": "mse", "optimizer": {"name": "momentum", "learning_rate": 0.1},
        "example": {"x": [[0.5, -0.25], [1.0, 2.0]], "t": [[1.0, 0.0], [0.0, 1.0]],
                    "weights": {"W1": [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]], "b1": [0.0, 0.1, -0.1],
                                "gamma2": [1.0, 0.5, 2.0], "beta2": [0.1, 0.0, -0.1],
                                "W3": [[0.2, -0.3, 0.4], [0.5, 0.6, -0.7]]}}},
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    net = from_dict(CASES[request.param]())
    d = LayerDerivation(net)
    return request.param, d, graph_worked_example(d)


# ----------------------------------------------------------------------------- textbook forward pass

ACT = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
       "identity": lambda z: z, "softmax": lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)}
LOSS = {  # per sample, as the spec documentation defines each loss
    "half_sse": lambda a, t: 0.5 * ((a - t) ** 2).sum(axis=1),
    "mse": lambda a, t: ((a - t) ** 2).mean(axis=1),
    "binary_cross_entropy": lambda a, t: -(t * np.log(a) + (1 - t) * np.log(1 - a)).sum(axis=1),
    "categorical_cross_entropy": lambda a, t: -(t * np.log(a)).sum(axis=1),
}


def textbook_loss(net, params, X, T, masks, bump=None):
    """E = mean per-sample loss + lambda/2 sum W^2; ``bump = (layer, "y" or "z", index, h)`` adds h to one entry."""
    def bumped(values, layer, what):
        if bump is not None and bump[:2] == (layer, what):
            values = values.copy()
            values[bump[2]] += bump[3]
        return values

    outs = [X]
    for node in net.nodes:
        l, o, x = node.index, node.opts, outs[node.inputs[0]]
        if node.kind.name == "dense":
            z = bumped(x @ params[f"W{l}"].T + params.get(f"b{l}", 0.0), l, "z")
            y = ACT[o["activation"].name](z)
        elif node.kind.name == "batchnorm":
            mu, var = x.mean(axis=0), ((x - x.mean(axis=0)) ** 2).mean(axis=0)
            y = params[f"gamma{l}"] * (x - mu) / np.sqrt(var + o["epsilon"]) + params[f"beta{l}"]
        elif node.kind.name == "layernorm":
            mu = x.mean(axis=1, keepdims=True)
            var = ((x - mu) ** 2).mean(axis=1, keepdims=True)
            y = params[f"gamma{l}"] * (x - mu) / np.sqrt(var + o["epsilon"]) + params[f"beta{l}"]
        elif node.kind.name == "dropout":
            y = x * masks[l] / (1 - o["rate"])
        else:
            y = x + outs[o["from"]]
        outs.append(bumped(y, l, "y"))
    decay = 0.5 * net.l2 * sum((params[f"W{n.index}"] ** 2).sum() for n in net.nodes if n.kind.name == "dense")
    return float(LOSS[net.loss.name](outs[-1], T).mean() + decay)


def central(f, shape, h=1e-6):
    out = np.zeros(shape)
    for idx in np.ndindex(*shape):
        out[idx] = (f(idx, h) - f(idx, -h)) / (2 * h)
    return out


# ----------------------------------------------------------------------------- finite differences


def test_loss_is_the_textbook_loss(case):
    _, d, ex = case
    assert ex.loss == pytest.approx(textbook_loss(d.network, ex.params, ex.X, ex.T, ex.masks), rel=1e-12)
    assert ex.data_loss + ex.decay == ex.loss
    assert ex.per_sample.shape == (ex.batch,)


def test_every_upstream_gradient_and_delta_by_finite_differences(case):
    _, d, ex = case
    net = d.network
    for numbers in ex.layers:
        l = numbers.node.index
        fd = central(lambda idx, h, l=l: textbook_loss(net, ex.params, ex.X, ex.T, ex.masks, (l, "y", idx, h)),
                     numbers.G.shape)
        np.testing.assert_allclose(numbers.G, fd, rtol=1e-6, atol=1e-9, err_msg=f"G of layer {l}")
        if numbers.node.kind.name == "dense":
            fd = central(lambda idx, h, l=l: textbook_loss(net, ex.params, ex.X, ex.T, ex.masks,
                                                            (l, "z", idx, h)),
                         numbers.delta.shape)
            np.testing.assert_allclose(numbers.delta, fd, rtol=1e-6, atol=1e-9, err_msg=f"delta of layer {l}")
        else:
            assert numbers.delta is None


def test_a_layer_read_twice_gets_the_sum_of_both_parts(case):
    """The part a residual sends back is its own G (it adds its inputs); the parts add up to G."""
    _, d, ex = case
    by_index = {n.node.index: n for n in ex.layers}
    for numbers in ex.layers:
        readers = [r.index for r in d.network.consumers(numbers.node.index)]
        assert [r for r, _ in numbers.parts] == (readers if len(readers) > 1 else [])
        if numbers.parts:
            np.testing.assert_allclose(sum(part for _, part in numbers.parts), numbers.G, rtol=1e-14, atol=1e-16)
            for reader, part in numbers.parts:
                if by_index[reader].node.kind.name == "residual":
                    np.testing.assert_array_equal(part, by_index[reader].G)
    if d.network.name == "residual":
        assert by_index[1].parts


def test_every_parameter_gradient_by_finite_differences(case):
    _, d, ex = case
    net = d.network

    def at(name):
        def f(idx, h):
            p = {k: v.copy() for k, v in ex.params.items()}
            p[name][idx] += h
            return textbook_loss(net, p, ex.X, ex.T, ex.masks)
        return f

    assert list(ex.grads) == [name for name, *_ in net.parameter_shapes()]
    for name, values in ex.params.items():
        np.testing.assert_allclose(ex.grads[name], central(at(name), values.shape), rtol=1e-6, atol=1e-9,
                                   err_msg=name)
    per_layer = {name: g for numbers in ex.layers for name, g in numbers.grads}
    assert per_layer.keys() == ex.grads.keys()


def test_forward_numbers_are_the_textbook_quantities(case):
    _, _d, ex = case
    outs = {0: ex.X}
    for numbers in ex.layers:
        node, fwd = numbers.node, dict(numbers.forward)
        x = outs[node.inputs[0]]
        if node.kind.name == "batchnorm":
            np.testing.assert_allclose(fwd["mu"], x.mean(axis=0), rtol=1e-13)
            np.testing.assert_allclose(fwd["var"], ((x - x.mean(axis=0)) ** 2).mean(axis=0), rtol=1e-12)
            np.testing.assert_allclose(fwd["xhat"], (x - fwd["mu"]) / np.sqrt(fwd["var"] + node.opts["epsilon"]),
                                       rtol=1e-12)
        if node.kind.name == "layernorm":
            var = x.var(axis=1)
            np.testing.assert_allclose(fwd["sigma"], np.sqrt(var + node.opts["epsilon"]), rtol=1e-12)
        if node.kind.name == "dense":
            W, b = ex.params[f"W{node.index}"], ex.params.get(f"b{node.index}", 0.0)
            np.testing.assert_allclose(fwd["z"], x @ W.T + b, rtol=1e-13)
        outs[node.index] = numbers.output


def test_one_optimizer_step_from_a_zero_state(case):
    _, d, ex = case
    opt = d.network.optimizer
    for name, p in ex.params.items():
        g = ex.grads[name]
        if opt.name in ("sgd", "momentum"):  # v = 0 * mu - lr g
            want = p - opt.learning_rate * g
        else:  # m_hat = g, v_hat = g^2 on the first step
            want = p - opt.learning_rate * g / (np.abs(g) + opt.epsilon)
        np.testing.assert_allclose(ex.updated[name], want, rtol=1e-12, atol=1e-15, err_msg=name)


# ----------------------------------------------------------------------------- the generated model.py


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model(case, tmp_path_factory):
    name, d, _ = case
    folder = tmp_path_factory.mktemp(f"worked_graph_{name}")
    for file, data in graph_outputs(d).items():
        (folder / file).write_bytes(data)
    return import_file(folder / "model.py", f"worked_graph_model_{name}")


def model_masks(ex):
    return {f"mask{i}": m for i, m in ex.masks.items()}


def test_starting_parameters_and_masks_are_model_py_s(case, model):
    _, d, ex = case
    spec_ex = d.network.example
    if spec_ex.weights is None:
        for name, values in model.init_params(spec_ex.seed).items():
            np.testing.assert_array_equal(ex.params[name], values, err_msg=name)
    if ex.masks_drawn:
        drawn = model.draw_masks(np.random.default_rng(spec_ex.seed), ex.batch)
        assert drawn.keys() == model_masks(ex).keys()
        for key, values in drawn.items():
            np.testing.assert_array_equal(model_masks(ex)[key], values, err_msg=key)


def test_forward_loss_and_gradients_agree_with_model_py(case, model):
    _, _d, ex = case
    masks = model_masks(ex) or None
    out, cache = model.forward(ex.params, ex.X, masks)
    np.testing.assert_allclose(out, ex.layers[-1].output, rtol=1e-12, atol=1e-15)
    for numbers in ex.layers:
        for name, values in numbers.forward:
            key = f"{name}{numbers.node.index}"
            if key in cache:
                np.testing.assert_allclose(np.reshape(cache[key], np.shape(values)), values, rtol=1e-12, atol=1e-15,
                                           err_msg=key)
    assert model.loss(ex.params, ex.X, ex.T, masks) == pytest.approx(ex.loss, rel=1e-12)
    grads = model.gradients(ex.params, ex.X, ex.T, masks)
    for name, g in ex.grads.items():
        np.testing.assert_allclose(g, grads[name], rtol=1e-10, atol=1e-14, err_msg=name)


def test_one_train_step_and_running_statistics_agree_with_model_py(case, model):
    _, _d, ex = case
    params = {k: v.copy() for k, v in ex.params.items()}
    running = model.init_running()
    model.train_step(params, ex.X, ex.T, model_masks(ex) or None, model.init_state(params), running)
    for name, values in ex.updated.items():
        np.testing.assert_allclose(params[name], values, rtol=1e-10, atol=1e-14, err_msg=name)
    assert running.keys() == ex.running.keys()
    for key, values in running.items():
        np.testing.assert_allclose(ex.running[key], values, rtol=1e-12, err_msg=key)


def test_running_statistics_move_once_from_mean_0_and_variance_1(case):
    _, _d, ex = case
    for numbers in ex.layers:
        if numbers.node.kind.name == "batchnorm":
            l, mom, fwd = numbers.node.index, numbers.node.opts["momentum"], dict(numbers.forward)
            np.testing.assert_allclose(ex.running[f"mean{l}"], (1 - mom) * fwd["mu"], rtol=1e-14)
            np.testing.assert_allclose(ex.running[f"var{l}"], mom + (1 - mom) * fwd["var"], rtol=1e-14)


# ----------------------------------------------------------------------------- the spec's forms


def test_no_example_gives_none():
    assert graph_worked_example(LayerDerivation(load(EXAMPLES / "layernorm.yaml"))) is None


def test_one_sample_is_a_batch_of_one():
    ex = graph_worked_example(LayerDerivation(from_dict(CASES["weight_decay_one_sample"]())))
    assert ex.X.shape == (1, 2) and ex.T.shape == (1, 1) and ex.decay > 0


def test_given_masks_are_used_as_given():
    d = LayerDerivation(from_dict(CASES["dropout"]()))
    ex = graph_worked_example(d)
    assert not ex.masks_drawn
    assert ex.masks[2].tolist() == [[1, 0, 1, 1], [1, 1, 0, 1]]
    # a dropped unit passes nothing forward and nothing back
    dropped = ex.masks[2] == 0
    assert np.all(ex.layers[1].output[dropped] == 0) and np.all(ex.layers[0].G[dropped] == 0)


def test_drawn_masks_are_zero_one_and_follow_the_seed():
    d = LayerDerivation(from_dict(MIXED))
    a, b = draw_masks(d, 3, 4), draw_masks(d, 4, 4)
    assert set(np.unique(a[3])) <= {0.0, 1.0} and a[3].shape == (4, 5)
    assert not np.array_equal(a[3], b[3])
