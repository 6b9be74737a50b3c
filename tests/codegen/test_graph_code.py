"""Generated training code for graphs of layers (symbackprop.codegen.graph_code).

Truths: HIPS autograd on a forward pass written here in ``autograd.numpy`` (independent of
the registry's code), ``LayerDerivation.gradients`` and ``init_params`` (the engine the
code is generated from), ruff, and the generated tests run by pytest in a fresh process.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from argparse import Namespace

import autograd.numpy as anp
import numpy as np
import pytest
from autograd import grad

from symbackprop import codegen
from symbackprop.codegen.graph_code import graph_model, graph_outputs, graph_test
from symbackprop.engine.layergraph import LayerDerivation
from symbackprop.errors import SymbackpropError
from symbackprop.spec import load


def dense(units, activation, **kw):
    return {"units": units, "activation": activation, **kw}


SPECS = {
    "batchnorm": {"inputs": 3, "layers": [dense(4, "relu"), {"type": "batchnorm"}, dense(2, "sigmoid")],
                  "loss": "binary_cross_entropy"},
    "layernorm": {"inputs": 3, "layers": [dense(4, "tanh"), {"type": "layernorm", "epsilon": 1e-3},
                                          dense(3, "softmax")], "loss": "categorical_cross_entropy"},
    "dropout": {"inputs": 3, "layers": [dense(4, "sigmoid"), {"type": "dropout", "rate": 0.3},
                                        dense(2, "identity")], "loss": "half_sse"},
    "residual": {"inputs": 3, "layers": [dense(3, "tanh"), dense(3, "relu"), {"type": "residual", "from": 1},
                                         dense(2, "identity")], "loss": "mse"},
    "mixed": {"inputs": 4, "layers": [dense(5, "relu"), {"type": "batchnorm", "epsilon": 1.0e-5},
                                      {"type": "dropout", "rate": 0.5}, dense(5, "tanh"),
                                      {"type": "layernorm", "epsilon": 1.0e-5}, {"type": "residual", "from": 1},
                                      dense(3, "softmax")],
              "loss": "categorical_cross_entropy", "regularization": {"l2": 1.0e-4}},
    "residual_from_0": {"inputs": 3, "layers": [dense(3, "tanh"), {"type": "residual", "from": 0},
                                                dense(2, "softmax")], "loss": "categorical_cross_entropy"},
    "dense_l2": {"inputs": 3, "layers": [dense(4, "tanh"), dense(2, "sigmoid", bias=False)],
                 "loss": "binary_cross_entropy", "regularization": {"l2": 0.05},
                 "optimizer": {"name": "momentum", "learning_rate": 0.05}},
    "bn_dropout": {"inputs": 4, "layers": [dense(5, "relu"), {"type": "batchnorm", "momentum": 0.8},
                                           {"type": "dropout", "rate": 0.5}, dense(3, "softmax")],
                   "loss": "categorical_cross_entropy", "optimizer": {"name": "adam", "learning_rate": 0.01}},
    "activations": {"inputs": 3, "layers": [dense(4, "leaky_relu"), {"type": "batchnorm"}, dense(4, "elu"),
                                            {"type": "layernorm"}, dense(4, "softplus"), dense(4, "silu"),
                                            dense(3, "softmax")], "loss": "mse"},
    "inputs_first": {"inputs": 3, "layers": [{"type": "layernorm"}, {"type": "dropout", "rate": 0.2}, dense(3, "tanh"),
                                             {"type": "residual", "from": 0}, dense(2, "softmax")],
                     "loss": "categorical_cross_entropy"},
    "dropout_dense": {"inputs": 3, "layers": [{"type": "dropout", "rate": 0.4}, {"type": "residual", "from": 0},
                                              dense(2, "sigmoid")], "loss": "binary_cross_entropy"},
    "dropout_first": {"inputs": 3, "layers": [{"type": "dropout", "rate": 0.25}, {"type": "batchnorm"},
                                              dense(4, "relu", bias=False), {"type": "batchnorm"},
                                              dense(2, {"expr": "x*tanh(x)"})], "loss": "sse"},
}


def derivation(name) -> LayerDerivation:
    return LayerDerivation(load(SPECS[name]))


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Every spec's model.py, both targets, imported: {(spec, target): module}."""
    out = {}
    for name in SPECS:
        d = derivation(name)
        for target in ("numpy", "scalar"):
            folder = tmp_path_factory.mktemp(f"{name}-{target}")
            (folder / "model.py").write_text(graph_model(d, target))
            out[name, target] = load_module(folder / "model.py", f"graph_{name}_{target}")
    return out


# ----------------------------------------------------------------------------- independent oracle

ACTS = {
    "relu": lambda z: anp.maximum(z, 0.0),
    "leaky_relu": lambda z: anp.where(z > 0, z, 0.01 * z),
    "elu": lambda z: anp.where(z > 0, z, anp.exp(anp.minimum(z, 0.0)) - 1.0),
    "tanh": anp.tanh,
    "sigmoid": lambda z: 1.0 / (1.0 + anp.exp(-z)),
    "softplus": lambda z: anp.logaddexp(0.0, z),
    "silu": lambda z: z / (1.0 + anp.exp(-z)),
    "identity": lambda z: z,
    "custom": lambda z: z * anp.tanh(z),  # the only custom formula in SPECS
}


def oracle_outputs(net, params, X, masks, running=None):
    """The network written directly in autograd.numpy (training mode, or inference with ``running``)."""
    outs = [X]
    for node in net.nodes:
        x, i, o = outs[node.inputs[0]], node.index, node.opts
        kind = node.kind.name
        if kind == "dense":
            z = anp.dot(x, params[f"W{i}"].T) + (params[f"b{i}"] if o.get("bias", True) else 0.0)
            if o["activation"].name == "softmax":
                e = anp.exp(z - anp.max(z, axis=1, keepdims=True))
                y = e / anp.sum(e, axis=1, keepdims=True)
            else:
                y = ACTS[o["activation"].name](z)
        elif kind == "batchnorm":
            if running is None:
                mu = anp.mean(x, axis=0)
                var = anp.mean((x - mu) ** 2, axis=0)
            else:
                mu, var = running[f"mean{i}"], running[f"var{i}"]
            y = params[f"gamma{i}"] * (x - mu) / anp.sqrt(var + o["epsilon"]) + params[f"beta{i}"]
        elif kind == "layernorm":
            mu = anp.mean(x, axis=1, keepdims=True)
            var = anp.mean((x - mu) ** 2, axis=1, keepdims=True)
            y = params[f"gamma{i}"] * (x - mu) / anp.sqrt(var + o["epsilon"]) + params[f"beta{i}"]
        elif kind == "dropout":
            y = x if running is not None else x * masks[f"mask{i}"] / (1.0 - o["rate"])
        else:
            y = x + outs[node.inputs[1]]
        outs.append(y)
    return outs[-1]


def oracle_loss(net, params, X, T, masks):
    A = oracle_outputs(net, params, X, masks)
    name, m = net.loss.name, A.shape[1]
    per = {"categorical_cross_entropy": lambda: -anp.sum(T * anp.log(A), axis=1),
           "binary_cross_entropy": lambda: -anp.sum(T * anp.log(A) + (1 - T) * anp.log(1 - A), axis=1),
           "half_sse": lambda: 0.5 * anp.sum((A - T) ** 2, axis=1),
           "sse": lambda: anp.sum((A - T) ** 2, axis=1),
           "mse": lambda: anp.sum((A - T) ** 2, axis=1) / m}[name]()
    decay = sum(anp.sum(params[n] ** 2) for n, node, p, _ in net.parameter_shapes() if p.decay)
    return anp.mean(per) + 0.5 * net.l2 * decay


def point(d: LayerDerivation, batch=4, seed=0):
    """Spread parameters, X, T and fixed masks (model form and engine form)."""
    rng = np.random.default_rng(seed)
    net = d.network
    params = d.init_params(seed, spread=True)
    X = rng.normal(0.0, 1.0, (batch, net.inputs))
    m = net.output.units
    if net.loss.target_kind == "simplex":
        raw = rng.uniform(0.1, 1.0, (batch, m))
        T = raw / raw.sum(axis=1, keepdims=True)
    elif net.loss.target_kind == "unit":
        T = rng.uniform(0.05, 0.95, (batch, m))
    else:
        T = rng.normal(0.0, 1.0, (batch, m))
    aux = d.masks(batch, seed)
    masks = {f"mask{i}": value["mask"] for i, value in aux.items()}
    return params, X, T, masks, aux


def assert_close(got: dict, want: dict, what: str):
    assert list(got) == list(want), what
    for key, value in want.items():
        assert got[key].shape == value.shape, (what, key)
        assert np.allclose(got[key], value, rtol=1e-8, atol=1e-10), (what, key, got[key], value)


def check_step_gradients(model, params, X, T, masks, want: dict, what: str):
    """step_gradients (twice, one workspace) equals ``want``, and leaves the caller's arrays as they were: its
    in-place passes write only into the workspace."""
    before = [{k: v.copy() for k, v in params.items()}, X.copy(), T.copy(), {k: v.copy() for k, v in masks.items()}]
    ws = model.Workspace(len(X))
    for _ in range(2):
        assert_close(model.step_gradients(params, X, T, masks, None, ws), want, what)
    for was, now in zip(before, (params, X, T, masks)):
        for key in was if isinstance(was, dict) else [None]:
            a, b = (was[key], now[key]) if key is not None else (was, now)
            assert np.array_equal(a, b), (what, key)


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("target", ["numpy", "scalar"])
@pytest.mark.parametrize("name", list(SPECS))
def test_gradients_match_autograd_and_the_engine(models, name, target):
    """Generated gradients against autograd of the forward pass written here, and LayerDerivation.gradients."""
    d = derivation(name)
    model = models[name, target]
    params, X, T, masks, aux = point(d)
    got = model.gradients(params, X, T, masks)
    want = grad(lambda p: oracle_loss(d.network, p, X, T, masks))(params)
    assert_close(got, {k: want[k] for k in params}, "autograd")
    assert_close(got, d.gradients(params, X, T, aux), "engine")
    assert abs(model.loss(params, X, T, masks) - float(oracle_loss(d.network, params, X, T, masks))) < 1e-10
    if target == "numpy":
        check_step_gradients(model, params, X, T, masks, {k: want[k] for k in params}, f"step_gradients {name}")


@pytest.mark.parametrize("target", ["numpy", "scalar"])
@pytest.mark.parametrize("name", ["mixed", "bn_dropout", "batchnorm"])
def test_predict_uses_running_statistics_and_no_dropout(models, name, target):
    """predict against the autograd.numpy network in inference mode with the same running statistics."""
    d = derivation(name)
    model = models[name, target]
    params, X, _, _, _ = point(d, seed=1)
    rng = np.random.default_rng(5)
    running = {key: value + rng.uniform(0.1, 0.5, value.shape) for key, value in model.init_running().items()}
    want = oracle_outputs(d.network, params, X, None, running)
    assert np.allclose(model.predict(params, X, running), want, rtol=1e-12, atol=1e-14)
    assert np.allclose(model.predict(params, X[:1], running), want[:1], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="running statistics"):
        model.predict(params, X)


@pytest.mark.parametrize("name", list(SPECS))
def test_init_params_are_the_engines(models, name):
    """Generated init_params(seed) against LayerDerivation.init_params(seed): names, order and values."""
    d = derivation(name)
    got = models[name, "numpy"].init_params(3)
    assert list(got) == [p.name for p in d.parameters]
    assert_close(got, d.init_params(3), "init")


def test_running_statistics_update_with_the_spec_momentum(models):
    """One training-mode forward: running = 0.8 running + 0.2 batch mean / variance of layer 1's output."""
    d = derivation("bn_dropout")
    for target in ("numpy", "scalar"):
        model = models["bn_dropout", target]
        params, X, _, masks, _ = point(d)
        running = model.init_running()
        model.forward(params, X, masks, running)
        a1 = np.maximum(X @ params["W1"].T + params["b1"], 0)
        assert np.allclose(running["mean2"], 0.2 * a1.mean(axis=0), rtol=1e-12)
        assert np.allclose(running["var2"], 0.8 + 0.2 * a1.var(axis=0), rtol=1e-12)


def test_train_lowers_the_inference_loss(models):
    """train() on the built-in blobs problem: the inference-mode loss falls over the epochs."""
    for target in ("numpy",):
        model = models["mixed", target]
        X, T = model.make_problem(0)
        history = model.train(X, T, epochs=5, seed=0, progress=False, params=model.init_params(0),
                              running=model.init_running())
        assert history[-1] < history[0], history


def test_generated_code_is_ruff_clean_and_has_no_sympy_text(tmp_path):
    """ruff on every generated file, both targets; no SymPy repr (Sum(, Piecewise() anywhere."""
    for name in SPECS:
        d = derivation(name)
        for target in ("numpy", "scalar"):
            folder = tmp_path / f"{name}-{target}"
            folder.mkdir()
            for file, data in graph_outputs(d, target).items():
                text = data.decode()
                assert "Sum(" not in text and "Piecewise(" not in text, (name, target, file)
                (folder / file).write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", str(tmp_path)],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_outputs_dispatch_and_unknown_target_refusal():
    """codegen.code_outputs hands a LayerDerivation to codegen.graph_code (array-api: codegen.graph_xp);
    a target graphs do not have is refused with one line."""
    from symbackprop.codegen.graph_code import check_target
    from symbackprop.codegen.graph_xp import graph_xp_model

    d = derivation("mixed")
    files = codegen.code_outputs(d, Namespace(target="numpy"))
    assert set(files) == {"model.py", "test_model.py"}
    assert b"def batchnorm_backward(" in files["model.py"] and b"for b in range(batch)" not in files["model.py"]
    assert b"for b in range(batch):" in codegen.code_outputs(d, Namespace(target="scalar"))["model.py"]
    assert files["test_model.py"] == graph_test(d).encode()
    xp_files = codegen.code_outputs(d, Namespace(target="array-api"))
    assert set(xp_files) == {"model_xp.py", "test_model_xp.py"} and xp_files["model_xp.py"] == graph_xp_model(d).encode()
    with pytest.raises(SymbackpropError, match="fortran") as info:
        check_target("fortran")
    assert "\n" not in str(info.value)


def test_cli_writes_array_api_code_for_a_graph(tmp_path):
    """derive -o with --target array-api on a graph spec: exit 0, model_xp.py and test_model_xp.py, no model.py."""
    from symbackprop import cli

    spec = tmp_path / "graph.yaml"
    spec.write_text("inputs: 2\nlayers:\n  - {units: 3, activation: relu}\n  - {type: batchnorm}\n"
                    "  - {units: 1, activation: sigmoid}\nloss: binary_cross_entropy\n")
    out = tmp_path / "out"
    assert cli.main(["derive", str(spec), "-o", str(out), "--target", "array-api", "--no-pdf", "--no-verify"]) == 0
    assert (out / "model_xp.py").is_file() and (out / "test_model_xp.py").is_file()
    assert not (out / "model.py").exists()


def test_generated_numpy_code_copies_the_registry_functions():
    """The registry's NumPy functions appear verbatim (inspect.getsource) in model.py."""
    import inspect

    from symbackprop.registry.layers import KINDS

    text = graph_model(derivation("mixed"))
    for kind in ("dense", "batchnorm", "layernorm", "dropout", "residual"):
        for fn in KINDS[kind].code:
            assert inspect.getsource(fn).rstrip() in text, fn.__name__
    assert "g1 = g1 + dx2" in text  # layer 1 feeds layers 2 and 6: both gradients summed


HIDDEN = ("relu", "tanh", "sigmoid", "leaky_relu", "elu", "softplus", "silu", "identity")
OUTPUTS = (("softmax", "categorical_cross_entropy"), ("sigmoid", "binary_cross_entropy"), ("identity", "mse"),
           ("tanh", "half_sse"), ("softmax", "mse"))


def random_spec(seed: int) -> dict:
    """A random graph that mixes every kind: equal widths after the first layer, residuals from any earlier layer."""
    rng = np.random.default_rng(seed)
    inputs, width = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    layers = [dense(width, str(rng.choice(HIDDEN)))]
    for index in range(2, int(rng.integers(4, 8))):
        kinds = ["dense", "batchnorm", "layernorm", "dropout"]
        sources = [k for k in range(0 if inputs == width else 1, index - 1)]
        kinds += ["residual"] * (len(sources) > 0)
        kind = str(rng.choice(kinds))
        if kind == "dense":
            layers.append(dense(width, str(rng.choice(HIDDEN)), bias=bool(rng.integers(0, 4))))
        elif kind == "dropout":
            layers.append({"type": "dropout", "rate": float(rng.choice([0.2, 0.5]))})
        elif kind == "residual":
            layers.append({"type": "residual", "from": int(rng.choice(sources))})
        else:
            layers.append({"type": kind})
    act, loss = OUTPUTS[int(rng.integers(0, len(OUTPUTS)))]
    layers.append(dense(int(rng.integers(1, 4)) if act != "softmax" else 3, act))
    spec = {"name": f"random-{seed}", "inputs": inputs, "layers": layers, "loss": loss}
    if rng.integers(0, 2):
        spec["regularization"] = {"l2": 0.01}
    return spec


@pytest.mark.parametrize("seed", range(30))
def test_random_graphs_match_autograd_and_the_engine(tmp_path, seed):
    """30 random mixed graphs: generated gradients (numpy; scalar for every third) against autograd and the engine."""
    spec = random_spec(seed)
    d = LayerDerivation(load(spec))
    params, X, T, masks, aux = point(d, seed=seed)
    want = grad(lambda p: oracle_loss(d.network, p, X, T, masks))(params)
    for target in ("numpy", "scalar") if seed % 3 == 0 else ("numpy",):
        (tmp_path / f"{target}.py").write_text(graph_model(d, target))
        model = load_module(tmp_path / f"{target}.py", f"random_{seed}_{target}")
        got = model.gradients(params, X, T, masks)
        assert_close(got, {k: want[k] for k in params}, f"autograd {spec}")
        assert_close(got, d.gradients(params, X, T, aux), f"engine {spec}")
        check_step_gradients(model, params, X, T, masks, {k: want[k] for k in params}, f"step_gradients {spec}")


@pytest.mark.slow
def test_generated_tests_pass(tmp_path):
    """The generated test_model.py of every spec (numpy target; scalar for three), run by pytest in a fresh process."""
    for name in SPECS:
        d = derivation(name)
        for target in ("numpy", "scalar") if name in ("mixed", "residual_from_0", "bn_dropout") else ("numpy",):
            folder = tmp_path / f"{name}_{target}"
            folder.mkdir()
            for file, data in graph_outputs(d, target).items():
                (folder / file).write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                             str(tmp_path)], check=False, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    expected = sum((folder / "test_model.py").read_text().count("\ndef test_") for folder in tmp_path.iterdir())
    assert re.search(rf"\b{expected} passed", result.stdout), result.stdout[-2000:]


def test_docstring_names_the_spec_and_describes_its_target_and_the_test_knows_what_is_random():
    """The first line of model.py is the spec's own name (quotes escaped, still valid Python); the docstring
    speaks of loops exactly when the printed code loops over samples (the scalar target); the generated test
    expects training and inference to differ exactly when the spec has a dropout or batch-normalization layer
    (mutation survivors ``graph_context`` 180, 195, 249)."""
    import ast

    spec = dict(SPECS["dropout"], name='toy "dropout" net')
    d = LayerDerivation(load(spec))
    for target in ("numpy", "scalar"):
        code = graph_model(d, target)
        doc = ast.get_docstring(ast.parse(code))
        assert doc.splitlines()[0].startswith('toy "dropout" net ('), doc.splitlines()[0]
        loops = re.search(r"^\s*for b in range\(", code, re.MULTILINE) is not None
        assert loops == (target == "scalar")
        assert ("loops over samples" in " ".join(doc.split())) == loops, doc
    for name in ("dropout", "batchnorm", "layernorm", "residual"):
        random_in_training = any(n.kind.name in ("dropout", "batchnorm") for n in derivation(name).network.nodes)
        assert f"STOCHASTIC = {random_in_training}" in graph_test(derivation(name)), name


def test_gradient_comments_name_variables_of_the_code():
    """Each ``# dE/dW{l} = delta{l}^T x`` comment of the generated backward passes names as x a variable that the
    code computes (a bias-free output layer included; mutation survivor ``fast_backward_lines`` 72)."""
    for name in ("dense_l2", "dropout_first"):
        code = graph_model(derivation(name), "numpy")
        names = set(re.findall(r"\b\w+\b", "\n".join(line.split("#")[0] for line in code.splitlines())))
        found = re.findall(r"dE/dW(\d+) = delta\1\^T ([^,\s]+)", code)
        assert len(found) >= 4, found
        assert all(x in names for _, x in found), found


def test_wide_layers_take_the_row_block_path_and_match_autograd(tmp_path):
    """Layers of 256 units at batch 32: rowwise multiplies by row vectors in blocks of 32 rows (8192 values), the
    path that the small specs above never take; step_gradients still equals autograd's gradients, and rowwise
    equals NumPy's broadcasting for every op, block or not."""
    spec = {"name": "wide", "inputs": 5, "layers": [dense(256, "relu"), {"type": "batchnorm"}, dense(256, "tanh"),
                                                    {"type": "layernorm"}, {"type": "dropout", "rate": 0.5},
                                                    dense(3, "softmax")], "loss": "categorical_cross_entropy"}
    d = LayerDerivation(load(spec))
    (tmp_path / "model.py").write_text(graph_model(d, "numpy"))
    model = load_module(tmp_path / "model.py", "graph_wide")
    params, X, T, masks, _ = point(d, batch=32, seed=3)
    want = grad(lambda p: oracle_loss(d.network, p, X, T, masks))(params)
    check_step_gradients(model, params, X, T, masks, {k: want[k] for k in params}, "wide")
    rng = np.random.default_rng(0)
    tile = np.empty(2 * model.ROW_BLOCK)
    for batch, n, r in ((32, 256, 32), (64, 8192, 0), (30, 256, 0), (7, 3, 0), (64, 100, 0)):  # r: rows per block
        a, v = rng.normal(size=(batch, n)), rng.normal(size=n)
        for op in (np.add, np.subtract, np.multiply):
            tile[:] = np.nan
            out = np.empty_like(a)
            assert model.rowwise(op, a, v, out, tile) is out
            assert np.array_equal(out, op(a, v)), (batch, n, op)
            assert np.array_equal(tile[:r * n], np.tile(v, r)) and np.isnan(tile[r * n:]).all(), (batch, n)
        # ReLU in place as a maximum with a row of zeros equals the registry's relu, NaN, infinities and -0 included
        a.flat[:4] = np.nan, np.inf, -np.inf, -0.0
        want = model.relu(a)
        assert model.rowwise(np.maximum, a, 0, a, tile) is a
        assert np.array_equal(a, want, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(want)), (batch, n)
    assert "a1 = rowwise(np.maximum, z1, 0, z1, ws.tile)" in (tmp_path / "model.py").read_text()


def test_dropout_factor_moved_to_its_dense_reader_and_buffers_reused_match_autograd(tmp_path):
    """step_gradients' cross-layer shortcuts (784-256(bn)-256(bn, dropout)-10 of the benchmark, made small): the
    dropout output is stored as x * m and its dense reader applies 1 / (1 - p) to z and delta; dE/dx of a dense
    layer overwrites its input's buffer; ReLU is a rowwise maximum.  Gradients equal autograd's with the masks and
    without them (masks=None keeps every unit unscaled: autograd's masks of 1 - p), in either order, one workspace."""
    spec = {"name": "bench-small", "inputs": 6, "layers": [
        dense(32, "relu"), {"type": "batchnorm"}, dense(32, "relu"), {"type": "batchnorm"},
        {"type": "dropout", "rate": 0.5}, dense(3, "softmax")], "loss": "categorical_cross_entropy"}
    d = LayerDerivation(load(spec))
    code = graph_model(d, "numpy")
    step = code[code.index("def step_gradients"):code.index("def decay")]
    for line in ("y5 = np.multiply(y4, 1.0 if masks is None else masks[\"mask5\"], out=y4)",
                 "    z6 *= 1 / (1 - RATE5)", "    delta6 *= 1 / (1 - RATE5)",
                 "dx6 = np.matmul(delta6, W6, out=y5)", "dx3 = np.matmul(delta3, W3, out=y2)",
                 "a1 = rowwise(np.maximum, z1, 0, z1, ws.tile)"):
        assert line in step, line
    assert "y5 *= " not in step and "dx5 *= " not in step
    (tmp_path / "model.py").write_text(code)
    model = load_module(tmp_path / "model.py", "graph_bench_small")
    params, X, T, masks, _ = point(d, batch=8, seed=5)
    assert 0 < masks["mask5"].mean() < 1
    ones = {k: np.full_like(v, 0.5) for k, v in masks.items()}  # m / (1 - p) = 1: every unit kept, unscaled
    want = grad(lambda p: oracle_loss(d.network, p, X, T, masks))(params)
    want_none = grad(lambda p: oracle_loss(d.network, p, X, T, ones))(params)
    ws = model.Workspace(len(X))
    for m, w in ((masks, want), (None, want_none), (masks, want)):
        assert_close(model.step_gradients(params, X, T, m, None, ws), {k: w[k] for k in params}, f"masks {m is not None}")


def test_flat_parameters_and_the_transposed_first_layer(tmp_path):
    """init_params' arrays are views of one flat vector, W1 (72 x 64 >= 4096 weights) stored transposed;
    step_gradients in that layout and in plain C-ordered copies agrees with autograd, and the one-subtraction
    SGD step of train_step agrees with the textbook step, also after an array of params was replaced (which
    turns it off)."""
    from symbackprop.codegen.graph_code import TRANSPOSED_MIN_WEIGHTS, transposed_weights

    spec = {"inputs": 72, "layers": [dense(64, "relu"), {"type": "batchnorm"}, {"type": "dropout", "rate": 0.5},
                                     dense(3, "softmax")],
            "loss": "categorical_cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.1}}
    d = LayerDerivation(load(spec))
    assert 72 * 64 >= TRANSPOSED_MIN_WEIGHTS and transposed_weights(d.network) == ["W1"]
    (tmp_path / "model.py").write_text(graph_model(d, "numpy"))
    model = load_module(tmp_path / "model.py", "graph_flat")
    params = model.init_params(2)
    flat = params["W1"].base
    assert flat.ndim == 1 and flat.size == sum(v.size for v in params.values())
    assert all(v.base is flat for v in params.values()) and model.flat_of(params) is flat
    assert params["W1"].shape == (64, 72) and params["W1"].flags.f_contiguous and params["W4"].flags.c_contiguous
    assert model.flat_of({k: v.copy() for k, v in params.items()}) is None
    point_params, X, T, masks, _ = point(d, batch=6, seed=5)
    for key, value in point_params.items():
        np.copyto(params[key], value)
    reference = grad(lambda p: oracle_loss(d.network, p, X, T, masks))(point_params)
    reference = {k: reference[k] for k in params}
    copies = {k: v.copy() for k, v in params.items()}
    for layout, p in (("flat views, W1 transposed", params), ("C-ordered copies", copies)):
        assert_close(model.gradients(p, X, T, masks), reference, layout)
        state_grads = model.init_state(p)["grads"]
        assert state_grads["W1"].flags.f_contiguous == (p is params)
        got = model.step_gradients(p, X, T, masks, None, model.Workspace(6), 1.0, state_grads)
        assert got is state_grads
        assert_close(got, reference, layout)
    for replaced in (False, True):
        params = model.init_params(2)
        for key, value in point_params.items():
            np.copyto(params[key], value)
        state = model.init_state(params)
        assert state["flat"] is not None
        if replaced:  # a new array for b1: the flat step would miss it, so train_step must not take it
            params["b1"] = params["b1"].copy()
        model.train_step(params, X, T, masks, state, model.init_running())
        expected = {k: point_params[k] - 0.1 * reference[k] for k in reference}
        assert_close(params, expected, f"one SGD step (b1 replaced: {replaced})")


def test_train_step_with_float32_data_on_float64_parameters(tmp_path):
    """train_step with float32 X, T and Workspace on float64 parameters (gradients in init_state's float64
    buffers) runs, and its step agrees with the all-float64 step to float32 precision."""
    d = derivation("mixed")
    (tmp_path / "model.py").write_text(graph_model(d, "numpy"))
    model = load_module(tmp_path / "model.py", "graph_mixed_dtypes")
    params, X, T, masks, _ = point(d, batch=8, seed=2)
    steps = {}
    for dtype in (np.float64, np.float32):
        p = model.init_params(0)
        for key, value in params.items():
            np.copyto(p[key], value)
        model.train_step(p, X.astype(dtype), T.astype(dtype), {k: v.astype(dtype) for k, v in masks.items()},
                         model.init_state(p), model.init_running(), 0.1, model.Workspace(8, dtype))
        steps[dtype] = p
    for key, value in steps[np.float64].items():
        assert steps[np.float32][key].dtype == np.float64
        assert np.allclose(steps[np.float32][key], value, rtol=1e-4, atol=1e-5), key
