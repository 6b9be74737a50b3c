"""Array API code for graphs of layers (symbackprop.codegen.graph_xp, ``--target array-api``).

array-api-strict implements the standard and nothing else, so running ``model_xp.py`` on it
proves the code uses only the standard.  Truths: the NumPy graph target ``model.py`` (itself
checked against HIPS autograd in test_graph_code.py), ``LayerDerivation.gradients`` (the
engine), autograd of the forward pass written in test_graph_code.py, and central finite
differences (``symbackprop.engine.gradcheck``); gradients agree to 1e-10 in float64.
PyTorch CPU, JAX CPU (and ``jax.jit`` of ``train_step``) and Dask run under importorskip.
"""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import array_api_strict as xps
import numpy as np
import pytest
from autograd import grad
from test_graph_code import SPECS, load_module, oracle_loss, point, random_spec

from symbackprop import cli, codegen
from symbackprop.codegen.graph_code import graph_model
from symbackprop.codegen.graph_xp import graph_xp_model, graph_xp_outputs, graph_xp_test
from symbackprop.engine import gradcheck
from symbackprop.engine.layergraph import LayerDerivation
from symbackprop.registry.layers import KINDS
from symbackprop.spec import load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("batchnorm", "dropout", "layernorm", "mixed_layers", "residual", "weight_decay")
TOL = 1e-10
"""Agreement in float64: |xp - reference| <= TOL * (1 + |reference|)."""


def example(name) -> LayerDerivation:
    return LayerDerivation(load(ROOT / "examples" / f"{name}.yaml"))


def pair(d, folder: Path, tag: str):
    """(model.py, model_xp.py) of ``d``, written into ``folder`` and imported."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(graph_model(d))
    (folder / "model_xp.py").write_text(graph_xp_model(d))
    return (load_module(folder / "model.py", f"graph_np_{tag}"), load_module(folder / "model_xp.py", f"graph_xp_{tag}"))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{example: (derivation, model.py, model_xp.py)}."""
    out = {}
    for name in EXAMPLES:
        d = example(name)
        out[name] = (d, *pair(d, tmp_path_factory.mktemp(name), name))
    return out


def strict(tree, dtype=xps.float64, device=None):
    return {k: xps.asarray(v, dtype=dtype, device=device) for k, v in tree.items()}


def host(tree):
    return {k: np.asarray(np.from_dlpack(v)) for k, v in tree.items()}


def assert_agree(got, reference, what, tol=TOL, ordered=True):
    """Same keys (in the same order unless ``ordered`` is False: jax.jit returns dicts sorted), shapes and values."""
    assert (list(got) == list(reference)) if ordered else (sorted(got) == sorted(reference)), what
    for key, ref in reference.items():
        value = np.asarray(got[key], dtype=float)
        assert value.shape == np.shape(ref), (what, key)
        err = np.max(np.abs(value - ref) / (1 + np.abs(ref)), initial=0.0)
        assert err <= tol, f"{what}: {key} differs by {err:.2e} (relative to 1 + |value|)"


def compare_on_strict(d, numpy_model, model, seed=0, fd=True):
    """Gradients, loss, outputs and running statistics on array-api-strict against model.py and the engine."""
    params, X, T, masks, aux = point(d, seed=seed)
    sp_, sX, sT, sm = strict(params), xps.asarray(X), xps.asarray(T), strict(masks)
    grads = model.gradients(sp_, sX, sT, sm)
    assert all(type(g) is type(sX) and g.dtype == xps.float64 for g in grads.values())
    assert_agree(host(grads), numpy_model.gradients({k: v.copy() for k, v in params.items()}, X, T, masks), "model.py")
    assert_agree(host(grads), d.gradients(params, X, T, aux), "LayerDerivation.gradients")
    assert abs(float(model.loss(sp_, sX, sT, sm)) - numpy_model.loss(params, X, T, masks)) <= TOL
    running = numpy_model.init_running()
    out, _ = numpy_model.forward(params, X, masks, running)  # model.py updates running in place
    start = model.init_running(xp=xps)
    got, _, new_running = model.forward(sp_, sX, sm, start)
    assert_agree({"y": np.from_dlpack(got)}, {"y": out}, "forward")
    assert_agree(host(new_running), running, "running statistics")
    assert_agree(host(start), numpy_model.init_running(), "the given running statistics, unchanged")
    if running:
        assert_agree({"y": np.from_dlpack(model.predict(sp_, sX, new_running))},
                     {"y": numpy_model.predict(params, X, running)}, "predict")
    else:
        assert_agree({"y": np.from_dlpack(model.predict(sp_, sX))}, {"y": numpy_model.predict(params, X)}, "predict")
    if fd:
        gradcheck.check_gradients(lambda p: float(model.loss(strict(p), sX, sT, sm)),
                                  {k: v.copy() for k, v in params.items()}, host(grads), rtol=1e-6, atol=1e-9,
                                  step=1e-5)
    return params, X, T, masks


# ----------------------------------------------------------------------------- array-api-strict


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_on_array_api_strict(models, name):
    """Every graph example: model_xp.py on array-api-strict against model.py, the engine and finite differences."""
    d, numpy_model, model = models[name]
    compare_on_strict(d, numpy_model, model)


@pytest.mark.parametrize("name", list(SPECS))
def test_graph_specs_on_array_api_strict(tmp_path, name):
    """test_graph_code's specs (every kind, activation, loss family, no bias, L2, momentum, adam) against autograd."""
    d = LayerDerivation(load(SPECS[name]))
    numpy_model, model = pair(d, tmp_path, f"spec_{name}")
    params, X, T, masks = compare_on_strict(d, numpy_model, model, seed=1, fd=False)
    want = grad(lambda p: oracle_loss(d.network, p, X, T, masks))(params)
    got = host(model.gradients(strict(params), xps.asarray(X), xps.asarray(T), strict(masks)))
    assert_agree(got, {k: want[k] for k in params}, "autograd")


@pytest.mark.parametrize("seed", range(8))
def test_random_graphs_on_array_api_strict(tmp_path, seed):
    """Random graphs mixing every kind (test_graph_code.random_spec): against model.py, the engine and autograd."""
    spec = random_spec(100 + seed)
    d = LayerDerivation(load(spec))
    numpy_model, model = pair(d, tmp_path, f"random_{seed}")
    params, X, T, masks = compare_on_strict(d, numpy_model, model, seed=seed, fd=False)
    want = grad(lambda p: oracle_loss(d.network, p, X, T, masks))(params)
    got = host(model.gradients(strict(params), xps.asarray(X), xps.asarray(T), strict(masks)))
    assert_agree(got, {k: want[k] for k in params}, f"autograd {spec}")


def test_registry_array_api_functions_match_the_numpy_ones():
    """Each kind's code_xp on array-api-strict against its NumPy code, on random arrays; standard functions only."""
    rng = np.random.default_rng(0)
    x, g, skip = (rng.normal(size=(5, 4)) for _ in range(3))
    W, b, gamma, beta = rng.normal(size=(3, 4)), rng.normal(size=3), rng.uniform(0.5, 2, 4), rng.normal(size=4)
    mask = (rng.random((5, 4)) > 0.3).astype(float)
    delta = rng.normal(size=(5, 3))
    calls = [("dense", 0, (x, W, b)), ("dense", 0, (x, W, None)), ("dense", 1, (delta, x, W)),
             ("batchnorm", 0, (x, gamma, beta, 1e-5)), ("layernorm", 0, (x, gamma, beta, 1e-3)),
             ("dropout", 0, (x, mask, 0.3)), ("dropout", 1, (g, mask, 0.3)), ("residual", 0, (x, skip))]
    for kind, entry in KINDS.items():
        assert len(entry.code_xp) == len(entry.code), kind
        for fn in entry.code_xp:
            source = inspect.getsource(fn)
            assert "np." not in source and "out=" not in source and "+=" not in source and ".astype" not in source
            assert list(inspect.signature(fn).parameters)[-1] == "xp", fn.__name__
    for kind, k, args in calls:
        fn_np, fn_xp = KINDS[kind].code[k], KINDS[kind].code_xp[k]
        want = fn_np(*args)
        got = fn_xp(*[xps.asarray(a) if isinstance(a, np.ndarray) else a for a in args], xps)
        want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
        for w, v in zip(want, got, strict=True):
            assert np.allclose(np.from_dlpack(v), w, rtol=1e-13, atol=1e-15), (kind, fn_xp.__name__)
    # backward of the normalizations, from their forward caches
    for kind, eps in (("batchnorm", 1e-5), ("layernorm", 1e-3)):
        fwd, bwd = KINDS[kind].code
        _, xhat, sigma, *_ = fwd(x, gamma, beta, eps)
        want = bwd(g, gamma, xhat, sigma)
        got = KINDS[kind].code_xp[1](*(xps.asarray(a) for a in (g, gamma, xhat, sigma)), xps)
        for w, v in zip(want, got, strict=True):
            assert np.allclose(np.from_dlpack(v), w, rtol=1e-12, atol=1e-14), kind


def test_training_matches_the_numpy_target_and_keeps_dtype_and_device(models):
    """train() with the same seed on array-api-strict: model.py's loss history (same shuffles and masks);
    float32 and a non-default device kept; the given dicts' entries replaced, no array changed."""
    _, numpy_model, model = models["mixed_layers"]
    X, T = numpy_model.make_problem(0)
    X, T = X[:60], T[:60]
    expected = numpy_model.train(X, T, epochs=3, batch_size=16, seed=1, progress=False,
                                 params=numpy_model.init_params(2), running=numpy_model.init_running())
    params, running = model.init_params(2, xp=xps), model.init_running(xp=xps)
    first = params["W1"]
    got = model.train(xps.asarray(X), xps.asarray(T), epochs=3, batch_size=16, seed=1, progress=False,
                      params=params, running=running)
    assert np.allclose(got, expected, rtol=1e-10, atol=0), (got, expected)
    assert params["W1"] is not first and np.array_equal(np.from_dlpack(first), np.from_dlpack(
        model.init_params(2, xp=xps)["W1"]))
    device = xps.Device("device1")
    X32, T32 = (xps.asarray(a, dtype=xps.float32, device=device) for a in (X, T))
    p32, r32 = model.init_params(0, xps.float32, xps, device), model.init_running(xps.float32, xps, device)
    history = model.train(X32, T32, epochs=2, batch_size=16, progress=False, params=p32, running=r32)
    assert all(np.isfinite(history))
    assert all(v.dtype == xps.float32 and v.device == device for v in [*p32.values(), *r32.values()])
    assert model.predict(p32, X32[:3, ...], r32).device == device


@pytest.mark.parametrize("name", ["bn_dropout", "dense_l2", "mixed"])
def test_train_step_matches_the_numpy_step(tmp_path, name):
    """Three functional steps (adam, momentum, sgd with L2) against model.py's in-place train_step."""
    d = LayerDerivation(load(SPECS[name]))
    numpy_model, model = pair(d, tmp_path, f"step_{name}")
    params, X, T, masks, _ = point(d, seed=2)
    np_params = {k: v.copy() for k, v in params.items()}
    np_state, np_running = numpy_model.init_state(np_params), numpy_model.init_running()
    sp_, sX, sT, sm = strict(params), xps.asarray(X), xps.asarray(T), strict(masks)
    state, running = model.init_state(sp_), model.init_running(xp=xps)
    for _ in range(3):
        numpy_model.train_step(np_params, X, T, masks, np_state, np_running)
        sp_, state, running = model.train_step(sp_, sX, sT, sm, state, running)
    # Adam divides each entry's moment by its own root-mean-square: an entry whose gradient is rounding noise
    # (a bias before batch normalization) takes a step of up to the learning rate from that noise alone.
    tol = 1e-6 if d.network.optimizer.name == "adam" else TOL
    assert_agree(host(sp_), np_params, f"{d.network.optimizer.name} parameters", tol)
    assert_agree(host(running), np_running, "running statistics")


def test_masks_come_from_the_callers_generator(models):
    """draw_masks: the same generator state gives model.py's masks; the rates hold; a seed works too."""
    _, numpy_model, model = models["mixed_layers"]
    want = numpy_model.draw_masks(np.random.default_rng(7), 200)
    got = host(model.draw_masks(np.random.default_rng(7), 200, xp=xps))
    assert_agree(got, want, "masks")
    assert abs(got["mask3"].mean() - 0.5) < 0.05 and set(np.unique(got["mask3"])) <= {0.0, 1.0}
    assert_agree(host(model.draw_masks(7, 200, xp=xps)), want, "masks from a seed")


# ----------------------------------------------------------------------------- generation


def test_generation_is_deterministic_lint_clean_and_functional(tmp_path):
    """Every example and spec: deterministic, ruff clean, no out=/in-place/np.random/.astype in the model."""
    derivations = {name: example(name) for name in EXAMPLES}
    derivations.update({f"spec_{k}": LayerDerivation(load(v)) for k, v in SPECS.items()})
    for name, d in derivations.items():
        files = graph_xp_outputs(d)
        assert set(files) == {"model_xp.py", "test_model_xp.py"}
        assert files == codegen.code_outputs(d, Namespace(target="array-api"))
        text = files["model_xp.py"].decode()
        assert "Sum(" not in text and "Piecewise(" not in text and "out=" not in text, name
        assert not re.search(r" [-+*/@]= ", text), name  # no augmented assignment
        assert not re.search(r"(?<!xp)\.astype\(", text) and "np.random." not in text.replace("np.random.Generator", "") \
            .replace("np.random.default_rng", ""), name
        body = text.split("\ndef forward")[1].split("\ndef init_state")[0]
        assert "np." not in body, name  # forward, backward, loss, predict: xp only
        tree = ast.parse(text)
        imported = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import)
                    for alias in node.names} | {node.module.split(".")[0] for node in tree.body
                                                if isinstance(node, ast.ImportFrom)}
        assert imported <= {"argparse", "importlib", "numpy", "array_api_compat"}, imported
        folder = tmp_path / name
        folder.mkdir()
        for file, data in files.items():
            (folder / file).write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", str(tmp_path)],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_model_xp_copies_the_registry_functions_and_matches_the_document(tmp_path):
    """The registry's Array API functions appear verbatim; names and comments as in model.py and the document."""
    d = example("mixed_layers")
    text = graph_xp_model(d)
    for kind in ("dense", "batchnorm", "layernorm", "dropout", "residual"):
        for fn in KINDS[kind].code_xp:
            assert inspect.getsource(fn).rstrip() in text, fn.__name__
    assert "g1 = g1 + dx2" in text  # layer 1 feeds layers 2 and 6: both gradients summed
    assert "# layer 2, batch normalization over the batch" in text and "# layer 6, residual: y6 = y5 + a1" in text
    (tmp_path / "model_xp.py").write_text(text)
    assert list(load_module(tmp_path / "model_xp.py", "graph_xp_names").init_params(0)) == [p.name for p in d.parameters]
    assert "jax.jit" in text and "array_namespace(X" in text and "categorical_cross_entropy_from_logits" in text


def test_code_outputs_and_cli_write_model_xp_for_a_graph(tmp_path, monkeypatch):
    """derive -o --target array-api on a graph spec writes model_xp.py and test_model_xp.py (no model.py)."""
    monkeypatch.setattr(cli, "DERIVE_OUTPUTS", [o for o in cli.DERIVE_OUTPUTS if o.write is codegen.code_outputs])
    spec = ROOT / "examples" / "batchnorm.yaml"
    assert cli.main(["derive", str(spec), "-o", str(tmp_path), "--no-verify", "--target", "array-api"]) == 0
    assert (tmp_path / "model_xp.py").read_bytes() == graph_xp_model(example("batchnorm")).encode()
    assert (tmp_path / "test_model_xp.py").read_bytes() == graph_xp_test(example("batchnorm")).encode()
    assert not (tmp_path / "model.py").exists()


@pytest.mark.slow
def test_generated_xp_tests_pass(tmp_path):
    """The generated test_model_xp.py of every example and three specs, run by pytest in a fresh process."""
    derivations = {name: example(name) for name in EXAMPLES}
    derivations.update({f"spec_{k}": LayerDerivation(load(SPECS[k])) for k in ("bn_dropout", "activations",
                                                                               "dropout_first")})
    for name, d in derivations.items():
        folder = tmp_path / name
        folder.mkdir()
        for file, data in graph_xp_outputs(d).items():
            (folder / file).write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                             str(tmp_path)], check=False, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    expected = sum((folder / "test_model_xp.py").read_text().count("\ndef test_") for folder in tmp_path.iterdir())
    assert re.search(rf"\b{expected} passed", result.stdout), result.stdout[-2000:]


# ----------------------------------------------------------------------------- other namespaces


def reference(models, name, seed=5):
    d, numpy_model, model = models[name]
    params, X, T, masks, _ = point(d, seed=seed)
    want = numpy_model.gradients({k: v.copy() for k, v in params.items()}, X, T, masks)
    return params, X, T, masks, want, numpy_model, model


@pytest.mark.parametrize("name", EXAMPLES)
def test_torch_cpu(models, name):
    torch = pytest.importorskip("torch")
    params, X, T, masks, want, numpy_model, model = reference(models, name)
    tp = {k: torch.asarray(v) for k, v in params.items()}
    tX, tT, tm = torch.asarray(X), torch.asarray(T), {k: torch.asarray(v) for k, v in masks.items()}
    grads = model.gradients(tp, tX, tT, tm)
    assert all(isinstance(g, torch.Tensor) and g.dtype == torch.float64 for g in grads.values())
    assert_agree({k: g.numpy() for k, g in grads.items()}, want, "torch gradients")
    running = model.init_running(torch.float64, model.namespace("torch"))
    new, _, new_running = model.train_step(tp, tX, tT, tm, model.init_state(tp), running)
    assert all(torch.equal(tp[k], torch.asarray(params[k])) for k in params)  # nothing in place
    np_params, np_running = {k: v.copy() for k, v in params.items()}, numpy_model.init_running()
    numpy_model.train_step(np_params, X, T, masks, numpy_model.init_state(np_params), np_running)
    assert_agree({k: v.numpy() for k, v in new.items()}, np_params, "torch train_step")
    assert_agree({k: v.numpy() for k, v in new_running.items()}, np_running, "torch running statistics")
    xp = model.namespace("torch")
    X32, T32 = numpy_model.make_problem(0, np.float32)
    p32, r32 = model.init_params(0, torch.float32, xp, "cpu"), model.init_running(torch.float32, xp, "cpu")
    history = model.train(torch.asarray(X32[:40]), torch.asarray(T32[:40]), epochs=2, batch_size=8, progress=False,
                          params=p32, running=r32)
    assert np.all(np.isfinite(history))
    assert all(v.dtype == torch.float32 and v.device.type == "cpu" for v in [*p32.values(), *r32.values()])


@pytest.fixture()
def jax_x64():
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        yield jax


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_jax_cpu_and_jit(models, name, jax_x64):
    jax = jax_x64
    import jax.numpy as jnp

    params, X, T, masks, want, numpy_model, model = reference(models, name)
    jp = {k: jnp.asarray(v) for k, v in params.items()}
    jX, jT, jm = jnp.asarray(X), jnp.asarray(T), {k: jnp.asarray(v) for k, v in masks.items()}
    grads = model.gradients(jp, jX, jT, jm)
    assert all(g.dtype == jnp.float64 for g in grads.values())
    assert_agree({k: np.asarray(g) for k, g in grads.items()}, want, "jax gradients")
    running = model.init_running(jnp.float64, jnp)
    state = model.init_state(jp)
    step = jax.jit(model.train_step)
    eager = model.train_step(jp, jX, jT, jm, state, running)
    eager = model.train_step(eager[0], jX, jT, jm, eager[1], eager[2])
    jitted = step(jp, jX, jT, jm, state, running)
    jitted = step(jitted[0], jX, jT, jm, jitted[1], jitted[2])
    assert_agree({k: np.asarray(v) for k, v in jitted[0].items()}, {k: np.asarray(v) for k, v in eager[0].items()},
                 "jax.jit(train_step) parameters", ordered=False)
    assert_agree({k: np.asarray(v) for k, v in jitted[2].items()}, {k: np.asarray(v) for k, v in eager[2].items()},
                 "jax.jit(train_step) running statistics", ordered=False)
    np_params, np_running = {k: v.copy() for k, v in params.items()}, numpy_model.init_running()
    np_state = numpy_model.init_state(np_params)
    for _ in range(2):
        numpy_model.train_step(np_params, X, T, masks, np_state, np_running)
    assert_agree({k: np.asarray(v) for k, v in jitted[0].items()}, np_params, "jax.jit against model.py",
                 ordered=False)


@pytest.mark.parametrize("name", ["batchnorm", "layernorm", "residual", "weight_decay"])
def test_dask_row_chunks(models, name):
    """Row-chunked dask arrays: gradients (batch sums and batch-normalization statistics across chunks) and
    full-batch training against model.py (examples without dropout: the same steps, any row order)."""
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    d, numpy_model, model = models[name]
    params, X, T, _, _ = point(d, batch=12, seed=6)
    want = numpy_model.gradients({k: v.copy() for k, v in params.items()}, X, T)
    dX, dT = da.from_array(X, chunks=(5, -1)), da.from_array(T, chunks=(5, -1))  # 3 row chunks
    dparams = {k: da.from_array(v) for k, v in params.items()}
    grads = model.gradients(dparams, dX, dT)
    assert all(isinstance(g, da.Array) for g in grads.values())
    assert_agree(dict(zip(grads, dask.compute(*grads.values()), strict=True)), want, "dask gradients")
    trained, running = dict(dparams), model.init_running(xp=model.namespace("dask"))
    history = model.train(dX, dT, epochs=3, batch_size=None, learning_rate=0.05, progress=False, params=trained,
                          running=running, after_step=lambda p, s, r: dask.persist(p, s, r))
    host_history = numpy_model.train(X, T, epochs=3, batch_size=12, learning_rate=0.05, progress=False,
                                     params={k: v.copy() for k, v in params.items()})
    assert np.allclose(history, host_history, rtol=1e-10, atol=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bn_dropout", "dense_l2"])
def test_jax_jit_of_the_adam_and_momentum_steps(tmp_path, name, jax_x64):
    """jax.jit(train_step) with Adam (its step count traced) and momentum: two steps against model.py's."""
    jax = jax_x64
    import jax.numpy as jnp

    d = LayerDerivation(load(SPECS[name]))
    numpy_model, model = pair(d, tmp_path, f"jit_{name}")
    params, X, T, masks, _ = point(d, seed=3)
    jp, jm = {k: jnp.asarray(v) for k, v in params.items()}, {k: jnp.asarray(v) for k, v in masks.items()}
    step = jax.jit(model.train_step)
    out = (jp, model.init_state(jp), model.init_running(jnp.float64, jnp))
    np_params = {k: v.copy() for k, v in params.items()}
    np_state, np_running = numpy_model.init_state(np_params), numpy_model.init_running()
    for _ in range(2):
        out = step(out[0], jnp.asarray(X), jnp.asarray(T), jm, out[1], out[2])
        numpy_model.train_step(np_params, X, T, masks, np_state, np_running)
    tol = 1e-6 if d.network.optimizer.name == "adam" else TOL  # see test_train_step_matches_the_numpy_step
    assert_agree({k: np.asarray(v) for k, v in out[0].items()}, np_params, f"jit {name}", tol, ordered=False)
    assert int(out[1]["step"]) == np_state["step"]
