"""Generated NumPy code (both targets) against three references.

* central finite differences of the generated loss (``symbackprop.engine.gradcheck``):
  independent of the derivation, but it differentiates the generated forward pass;
* ``Derivation.gradient`` (the closed form) evaluated numerically by a small
  memoizing evaluator written here (the per-unit chain of the same expressions
  where the closed form is too slow to build, see ``closed_form_gradients``):
  the project's own derivation, so this checks the code printer against the
  derivation, not the mathematics;
* HIPS autograd on a NumPy forward pass written here from the definitions:
  independent of both the derivation and the generated code.

Agreement rule, float64: ``|generated - reference| <= 1e-7 * |reference| + ATOL``,
with ``ATOL = 1e-11`` for the exact references (near zero the absolute term
governs) and the gradcheck rule (``1e-7`` relative, ``1e-10`` absolute) for finite
differences.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import subprocess
import sys
import warnings
from argparse import Namespace
from pathlib import Path

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import sympy as sp

from symbackprop import cli
from symbackprop.codegen import numpy_code as codegen
from symbackprop.engine import gradcheck
from symbackprop.engine.derive import derive
from symbackprop.registry import ops
from symbackprop.spec import load
from symbackprop.spec.graph import GraphNetwork

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.suffix in (".yaml", ".toml", ".json")
                  and not isinstance(load(p), GraphNetwork))  # graphs of layers: tests/codegen/test_graph_code.py
RTOL, ATOL = 1e-7, 1e-11


# ----------------------------------------------------------------------------- helpers (shared)


def write_and_import(d, folder: Path, target: str = "numpy", tests: bool = False):
    """Generate model.py (and test_model.py) into ``folder`` and import them in-process."""
    folder.mkdir(parents=True, exist_ok=True)
    files = codegen.code_outputs(d, Namespace(target=target))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    model = import_file(folder / "model.py", f"gen_model_{abs(hash(str(folder)))}")
    test = import_file(folder / "test_model.py", f"gen_test_{abs(hash(str(folder)))}") if tests else None
    return model, test


def import_file(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_AUTOGRAD_ACTIVATIONS = {
    "identity": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + anp.exp(-z)),
    "tanh": anp.tanh,
    "relu": lambda z: anp.where(z > 0, z, 0.0),
    "softplus": lambda z: anp.log(1 + anp.exp(z)),
    "silu": lambda z: z / (1 + anp.exp(-z)),
}


def autograd_activation(act: ops.Activation):
    """The activation as autograd code, written from its definition (not from codegen)."""
    params = dict(act.params)
    if act.name == "leaky_relu":
        alpha = float(params["alpha"])
        return lambda z: anp.where(z > 0, z, alpha * z)
    if act.name == "elu":
        alpha = float(params["alpha"])
        return lambda z: anp.where(z > 0, z, alpha * (anp.exp(anp.minimum(z, 0.0)) - 1))
    if act.name == "softmax":
        return lambda z: anp.exp(z) / anp.sum(anp.exp(z), axis=1, keepdims=True)
    if act.name == "custom":
        return sp.lambdify(ops.X, act.expr, modules=anp)
    return _AUTOGRAD_ACTIVATIONS[act.name]


def autograd_loss(name: str, a, t):
    m = a.shape[1]
    per_sample = {
        "half_sse": lambda: 0.5 * anp.sum((a - t) ** 2, axis=1),
        "sse": lambda: anp.sum((a - t) ** 2, axis=1),
        "mse": lambda: anp.sum((a - t) ** 2, axis=1) / m,
        "binary_cross_entropy": lambda: -anp.sum(t * anp.log(a) + (1 - t) * anp.log(1 - a), axis=1),
        "categorical_cross_entropy": lambda: -anp.sum(t * anp.log(a), axis=1),
    }[name]()
    return anp.mean(per_sample)


def independent_forward(network, params, X, lib=anp):
    """Pre-activations of every layer and the output, from the network definition."""
    a, zs = X, []
    for l, layer in enumerate(network.layers, start=1):
        z = lib.dot(a, params[f"W{l}"].T)
        if layer.bias:
            z = z + params[f"b{l}"]
        zs.append(z)
        a = autograd_activation(layer.activation)(z)
    return zs, a


def autograd_gradients(network, params, X, T):
    keys = sorted(params)

    def loss(values):
        _, a = independent_forward(network, dict(zip(keys, values)), X)
        return autograd_loss(network.loss.name, a, T)

    grads = autograd.grad(loss)([params[k] for k in keys])
    return dict(zip(keys, grads))


def evaluate(expr, values, memo):
    """Float value of a SymPy expression; shared subtrees are evaluated once."""
    hit = memo.get(expr)
    if hit is not None:
        return hit
    if expr.is_Symbol:
        out = values[expr]
    elif expr.is_Number:
        out = float(expr)
    elif expr.is_Add:
        out = math.fsum(evaluate(arg, values, memo) for arg in expr.args)
    elif expr.is_Mul:
        out = 1.0
        for arg in expr.args:
            out *= evaluate(arg, values, memo)
    elif expr.is_Pow:
        out = evaluate(expr.base, values, memo) ** evaluate(expr.exp, values, memo)
    elif isinstance(expr, (sp.exp, sp.log, sp.tanh)):
        out = getattr(math, type(expr).__name__)(evaluate(expr.args[0], values, memo))
    elif isinstance(expr, sp.Piecewise):
        out = next(evaluate(value, values, memo) for value, cond in expr.args
                   if cond == sp.true or evaluate(cond, values, memo))
    elif isinstance(expr, sp.ITE):
        cond, yes, no = expr.args
        out = evaluate(yes if evaluate(cond, values, memo) else no, values, memo)
    elif isinstance(expr, (sp.And, sp.Or, sp.Not)):
        parts = [evaluate(arg, values, memo) for arg in expr.args]
        out = all(parts) if isinstance(expr, sp.And) else any(parts) if isinstance(expr, sp.Or) else not parts[0]
    elif isinstance(expr, sp.core.relational.Relational):
        out = bool(expr.func(sp.Float(evaluate(expr.lhs, values, memo)), sp.Float(evaluate(expr.rhs, values, memo))))
    else:
        raise TypeError(f"cannot evaluate {type(expr).__name__}")
    memo[expr] = out
    return out


def closed_form_gradients(d, params, X, T):
    """Batch mean of the derivation's SymPy gradients evaluated at each sample.

    ``Derivation.gradient(p)`` (the closed form) where SymPy can build it quickly:
    with kinked activations in two or more layers its nested Piecewise take
    minutes, and the same expressions are evaluated as the chain ``z``, ``a``
    (graph definitions), ``Derivation.delta`` and ``Derivation.compact_gradient``
    that ``gradient`` substitutes into each other.
    """
    g = d.graph
    kinked = sum(1 for layer in d.network.layers if layer.activation.kink)
    closed = {p: d.gradient(p) for p in d.parameters} if kinked <= 1 else None
    out = {key: np.zeros_like(value) for key, value in params.items()}
    for x, t in zip(X, T):
        values = dict(zip(d.inputs, x)) | dict(zip(d.targets, t))
        for p in d.parameters:
            l, j, k = g.layer_of(p)
            values[p] = params[f"{p.name[0]}{l}"][(j - 1, k - 1) if k else j - 1]
        memo = {}
        if closed is None:
            for l in range(1, d.L + 1):
                values.update({z: evaluate(zd, values, memo) for z, zd in zip(g.z[l], g.z_def[l])})
                values.update({a: evaluate(ad, values, memo) for a, ad in zip(g.a[l], g.a_def[l])})
            for l in range(d.L, 0, -1):
                values.update({d.delta_symbol(l, j): evaluate(d.delta(l, j), values, memo)
                               for j in range(1, d.network.sizes[l] + 1)})
        for p in d.parameters:
            l, j, k = g.layer_of(p)
            expr = closed[p] if closed is not None else d.compact_gradient(p)
            out[f"{p.name[0]}{l}"][(j - 1, k - 1) if k else j - 1] += evaluate(expr, values, memo) / len(X)
    return out


def random_point(network, rng, batch=3, margin=0.1):
    """Parameters, inputs and targets, away from every kink by ``margin``."""
    sizes = network.sizes
    for _ in range(500):
        params = {}
        for l, layer in enumerate(network.layers, start=1):
            params[f"W{l}"] = rng.normal(0, 1.2 / np.sqrt(sizes[l - 1]), size=(sizes[l], sizes[l - 1]))
            if layer.bias:
                params[f"b{l}"] = rng.normal(0, 0.5, size=sizes[l])
        X = rng.normal(0, 1, size=(batch, sizes[0]))
        kind, m = network.loss.target_kind, sizes[-1]
        T = (rng.dirichlet(np.ones(m), size=batch) if kind == "simplex" else
             rng.uniform(0.05, 0.95, size=(batch, m)) if kind == "unit" else rng.normal(0, 1, size=(batch, m)))
        zs, _ = independent_forward(network, params, X, lib=np)
        kinked = [z for z, layer in zip(zs, network.layers) if layer.activation.kink]
        if all(np.min(np.abs(z)) > margin for z in kinked):
            return params, X, T
    raise AssertionError("no point away from the kinks")


def assert_close(got: dict, reference: dict, what: str, rtol=RTOL, atol=ATOL):
    assert set(got) == set(reference), what
    for key, ref in reference.items():
        value = np.asarray(got[key], dtype=float)
        assert value.shape == np.shape(ref), (what, key)
        bad = ~(np.abs(value - ref) <= atol + rtol * np.abs(ref))
        assert not bad.any(), f"{what}: {key} differs at {np.argwhere(bad).tolist()}: {value[bad]} vs {ref[bad]}"


def check_all(d, model, rng):
    """The generated gradients against finite differences, the closed form and autograd."""
    params, X, T = random_point(d.network, rng)
    grads = model.gradients({k: v.copy() for k, v in params.items()}, X, T)
    assert all(g.dtype == np.float64 for g in grads.values())
    gradcheck.check_gradients(lambda p: model.loss(p, X, T), {k: v.copy() for k, v in params.items()}, grads)
    assert_close(grads, autograd_gradients(d.network, params, X, T), "autograd")
    assert_close(grads, closed_form_gradients(d, params, X, T), "Derivation.gradient")
    assert abs(model.loss(params, X, T) - float(autograd_loss(d.network.loss.name,
                                                             independent_forward(d.network, params, X, np)[1], T))) \
        <= 1e-12 * (1 + abs(model.loss(params, X, T)))


def large_z_is_stable(d, model):
    """Forward, loss and gradients with |z| up to 1e4 in float32 and float64: no warning, finite."""
    rng = np.random.default_rng(1)
    scales = codegen._stability_scales(d)
    for dtype in (np.float32, np.float64):
        params = {}
        for key, value in model.init_params(0, dtype).items():
            signs = rng.choice([-1.0, 1.0], size=value.shape[:1]).reshape((-1,) + (1,) * (value.ndim - 1))
            params[key] = (np.ones_like(value) * signs * (scales[int(key[1:]) - 1] if key[0] == "W" else 0.0))
            params[key] = params[key].astype(dtype)
        X = np.ones((3, d.network.inputs), dtype=dtype)
        _, T = random_point(d.network, np.random.default_rng(0), batch=3, margin=0.0)[1:]
        T = T.astype(dtype)
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
            warnings.simplefilter("error")
            value = model.loss(params, X, T)
            grads = model.gradients(params, X, T)
        assert np.isfinite(value)
        assert all(g.dtype == dtype and np.all(np.isfinite(g)) for g in grads.values())


# ----------------------------------------------------------------------------- example specs


@pytest.fixture(scope="module")
def derivations():
    return {p.name: derive(p, verify=False) for p in EXAMPLES}


@pytest.mark.parametrize("target", ["numpy", "scalar"])
@pytest.mark.parametrize("example", [p.name for p in EXAMPLES])
def test_examples_agree_with_three_references(derivations, tmp_path, example, target):
    d = derivations[example]
    model, _ = write_and_import(d, tmp_path, target)
    check_all(d, model, np.random.default_rng(11))
    large_z_is_stable(d, model)


@pytest.mark.parametrize("example", [p.name for p in EXAMPLES])
def test_generation_is_deterministic_and_needs_only_numpy(derivations, example):
    d = derivations[example]
    for target in ("numpy", "scalar"):
        first = codegen.code_outputs(d, Namespace(target=target))
        again = codegen.code_outputs(derive(EXAMPLES[[p.name for p in EXAMPLES].index(example)], verify=False),
                                     Namespace(target=target))
        assert first == again
        for name in ("model.py", "test_model.py"):
            tree = ast.parse(first[name].decode())  # module-level imports (matplotlib is optional, in main)
            imported = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import)
                        for alias in node.names}
            imported |= {node.module.split(".")[0] for node in tree.body
                         if isinstance(node, ast.ImportFrom) and node.module}
            allowed = {"argparse", "math", "numpy", "operator"} | ({"importlib", "warnings", "pathlib", "pytest"}
                                                if name == "test_model.py" else set())
            assert b"symbackprop" not in first[name].split(b'"""', 2)[-1], name
            assert imported <= allowed, (name, imported)


def test_model_names_and_comments_match_the_document(derivations):
    text = codegen.numpy_model(derivations["seed_2_3_1.yaml"])
    for name in ("z1 = ", "a1 = ", "delta2 = ", "delta1 = ", "dW2 = ", "db1 = "):
        assert name in text
    assert text.count("0-based") == 1 and "1-based" in text
    # every backward statement block carries one comment naming its equation, in the document's symbols:
    # the seed's delta^{(1)}_j = sigma'(z) sum_k W^{(2)}_{kj} delta^{(2)}_k with sigma' = a (1 - a)
    assert "# delta1 = (delta2 W2) * f1'(z1)   [δ⁽¹⁾ⱼ = a⁽¹⁾ⱼ (1 - a⁽¹⁾ⱼ) Σₖ W⁽²⁾ₖⱼ δ⁽²⁾ₖ]" in text
    assert "    delta{l}[:, j]    δ⁽ˡ⁾ⱼ₊₁ = ∂L/∂z⁽ˡ⁾ⱼ₊₁" in text  # the name table


def test_generated_code_passes_ruff(derivations, tmp_path):
    for name, d in derivations.items():
        for target in ("numpy", "scalar"):
            folder = tmp_path / f"{name}-{target}"
            folder.mkdir()
            for file, data in codegen.code_outputs(d, Namespace(target=target)).items():
                (folder / file).write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", str(tmp_path)],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_tests_pass(derivations, tmp_path):
    """The generated test_model.py files, run by pytest in a fresh process."""
    paths = []
    for name, d in derivations.items():
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        for file, data in codegen.code_outputs(d, Namespace(target="numpy")).items():
            (folder / file).write_bytes(data)
        paths.append(str(folder / "test_model.py"))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--import-mode=importlib", "--rootdir", str(tmp_path), *paths],
                            check=False, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{5 * len(paths)} passed" in result.stdout


def test_xor_example_learns_xor(tmp_path):
    """examples/xor.yaml: 1000 epochs, full batch, seed 0 put all four outputs on the right side of 0.5."""
    d = derive(ROOT / "examples" / "xor.yaml", verify=False)
    model, _ = write_and_import(d, tmp_path)
    X, T = model.make_problem(seed=0)
    params = model.init_params(seed=0)
    history = model.train(X, T, epochs=1000, batch_size=4, seed=0, progress=False, params=params)
    assert len(history) == 1000
    Y = model.predict(params, X)
    assert np.array_equal(Y > 0.5, T > 0.5), Y


def test_optimizers_follow_their_update_rules(tmp_path):
    """One step of each optimizer against the textbook update written here."""
    for name in ("sgd", "momentum", "adam"):
        spec = {"inputs": 2, "layers": [{"units": 2, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
                "loss": "binary_cross_entropy",
                "optimizer": {"name": name, "learning_rate": 0.1, "momentum": 0.8, "beta1": 0.7, "beta2": 0.9}}
        model, _ = write_and_import(derive(spec, verify=False), tmp_path / name)
        X, T = model.make_problem(0)
        params = model.init_params(3)
        start = {k: v.copy() for k, v in params.items()}
        state = model.init_state(params)
        model.train_step(params, X, T, state)
        model.train_step(params, X, T, state)
        g1 = model.gradients(start, X, T)
        if name == "sgd":
            mid = {k: start[k] - 0.1 * g1[k] for k in start}
            g2 = model.gradients(mid, X, T)
            expected = {k: mid[k] - 0.1 * g2[k] for k in start}
        elif name == "momentum":
            v1 = {k: -0.1 * g1[k] for k in start}
            mid = {k: start[k] + v1[k] for k in start}
            g2 = model.gradients(mid, X, T)
            expected = {k: mid[k] + 0.8 * v1[k] - 0.1 * g2[k] for k in start}
        else:
            m1 = {k: 0.3 * g1[k] for k in start}
            v1 = {k: 0.1 * g1[k] ** 2 for k in start}
            mid = {k: start[k] - 0.1 * (m1[k] / 0.3) / (np.sqrt(v1[k] / 0.1) + 1e-8) for k in start}
            g2 = model.gradients(mid, X, T)
            m2 = {k: 0.7 * m1[k] + 0.3 * g2[k] for k in start}
            v2 = {k: 0.9 * v1[k] + 0.1 * g2[k] ** 2 for k in start}
            expected = {k: mid[k] - 0.1 * (m2[k] / (1 - 0.7**2)) / (np.sqrt(v2[k] / (1 - 0.9**2)) + 1e-8)
                        for k in start}
        assert_close(params, expected, name, rtol=1e-12, atol=1e-14)


def test_scalar_formulas_work_on_floats_and_batches(tmp_path):
    d = derive(ROOT / "examples" / "seed_2_3_1.yaml", verify=False)
    model, _ = write_and_import(d, tmp_path, "scalar")
    params, X, T = random_point(d.network, np.random.default_rng(5), batch=4)
    batch = model.gradients(params, X, T)
    singles = [model.gradients(params, x, t) for x, t in zip(X, T)]  # one sample: X[..., k] are floats
    assert_close(batch, {k: np.mean([s[k] for s in singles], axis=0) for k in batch}, "per-sample mean")
    assert "= sigmoid(z1_1)" in (tmp_path / "model.py").read_text()


def test_cli_writes_model_and_test_for_the_target(tmp_path, monkeypatch, capsys):
    assert codegen.code_outputs in [o.write for o in cli.DERIVE_OUTPUTS]
    monkeypatch.setattr(cli, "DERIVE_OUTPUTS", [o for o in cli.DERIVE_OUTPUTS if o.write is codegen.code_outputs])
    spec = str(ROOT / "examples" / "seed_2_3_1.yaml")
    assert cli.main(["derive", spec, "-o", str(tmp_path / "n"), "--no-verify"]) == 0
    assert cli.main(["derive", spec, "-o", str(tmp_path / "s"), "--no-verify", "--target", "scalar"]) == 0
    numpy_text = (tmp_path / "n" / "model.py").read_text()
    scalar_text = (tmp_path / "s" / "model.py").read_text()
    assert "np.dot(" in numpy_text and "dW1_1_1 = " not in numpy_text
    assert "dW1_1_1 = " in scalar_text
    assert (tmp_path / "n" / "test_model.py").is_file()


def test_scalar_target_refuses_huge_networks():
    spec = {"inputs": 60, "layers": [{"units": 40, "activation": "tanh"}, {"units": 2, "activation": "identity"}],
            "loss": "mse"}
    with pytest.raises(Exception, match="--target numpy") as info:
        codegen.scalar_model(derive(spec, verify=False))
    assert str(info.value).startswith("layers: ")  # the field of the spec to change


def test_scalar_target_with_shared_subexpressions(tmp_path):
    """A softmax output under half SSE: the scalar deltas share subexpressions (cse names u2_0, ...);
    the generated code against finite differences and autograd (independent of the derivation)."""
    d = derive({"inputs": 2, "layers": [{"units": 2, "activation": "tanh"}, {"units": 3, "activation": "softmax"}],
                "loss": "half_sse"}, verify=False)
    model, _ = write_and_import(d, tmp_path, "scalar")
    assert "u2_0 = " in (tmp_path / "model.py").read_text()
    params, X, T = random_point(d.network, np.random.default_rng(3))
    grads = model.gradients({k: v.copy() for k, v in params.items()}, X, T)
    gradcheck.check_gradients(lambda p: model.loss(p, X, T), {k: v.copy() for k, v in params.items()}, grads)
    assert_close(grads, autograd_gradients(d.network, params, X, T), "autograd")


def test_equation_comments_follow_the_spec():
    """The comment above each block names its equation: bias terms exactly where the spec has them, the loss."""
    d = derive({"inputs": 2, "layers": [{"units": 2, "activation": "tanh", "bias": True},
                                        {"units": 1, "activation": "sigmoid", "bias": False}],
                "loss": "half_sse"}, verify=False)
    text = codegen.numpy_model(d)
    z1 = next(ln.strip() for ln in text.splitlines() if ln.strip().startswith("# z1 = "))
    z2 = next(ln.strip() for ln in text.splitlines() if ln.strip().startswith("# z2 = "))
    assert z1 == "# z1 = X W1ᵀ + b1   [z⁽¹⁾ⱼ = b⁽¹⁾ⱼ + Σₖ W⁽¹⁾ⱼₖ xₖ]"
    assert z2 == "# z2 = a1 W2ᵀ   [z⁽²⁾ⱼ = Σₖ W⁽²⁾ⱼₖ a⁽¹⁾ₖ]"
    assert "# E: half the sum of squared errors" in text
    assert "Vectorized matrix form" in text


@pytest.mark.parametrize("example", [p.name for p in EXAMPLES])
def test_stability_scales_make_every_layer_reach_the_limit(derivations, example):
    """The generated stability test's claim: all-ones inputs and weights of the given scale drive |z| of every
    layer to the stability limit (a forward pass written here from the definitions)."""
    from symbackprop.engine.numeric import NumericNetwork

    d = derivations[example]
    scales = codegen._stability_scales(d)
    limit = codegen.stability_limit(d.network)
    assert len(scales) == d.L
    net = NumericNetwork(d.network)
    params = {key: np.full(shape, scales[int(key[1:]) - 1] if key[0] == "W" else 0.0)
              for key, shape in net.shapes().items()}
    with np.errstate(all="ignore"):
        zs, _ = net.forward(params, np.ones(d.network.inputs))
    for l in range(1, d.L + 1):
        assert np.max(np.abs(zs[l])) == pytest.approx(limit, rel=1e-2), (example, l)


WIDE = {"inputs": 6, "layers": [{"units": 512, "activation": "relu"}, {"units": 520, "activation": "tanh"},
                                 {"units": 10, "activation": "softmax"}],
        "loss": "categorical_cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.1}}
"""Two hidden layers of 512 units or more: feature-major z, a and delta; W2 and W3 stored transposed."""


@pytest.mark.parametrize("spec, transposed, feature_major", [
    ({"inputs": 72, "layers": [{"units": 64, "activation": "relu"}, {"units": 5, "activation": "tanh"},
                               {"units": 3, "activation": "softmax"}],
      "loss": "categorical_cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.1}}, ["W1"], []),
    ({"inputs": 6, "layers": [{"units": 512, "activation": "sigmoid"}, {"units": 9, "activation": "softmax"}],
      "loss": "categorical_cross_entropy", "optimizer": {"name": "sgd", "learning_rate": 0.1}}, ["W2"], [1]),
    (WIDE, ["W2", "W3"], [1, 2]),
], ids=["transposed-W1", "one-feature-major-layer", "two-feature-major-layers"])
def test_flat_parameters_and_the_layouts_of_large_layers(tmp_path, spec, transposed, feature_major):
    """init_params' arrays are views of one flat vector (W1 stored transposed when it is large and layer 1
    row-major; the weights after a feature-major layer stored transposed; the z, a and delta of layers of
    512 units or more feature-major); gradients in that layout and in plain C-ordered copies agree with
    autograd, and the one-subtraction SGD step agrees with the textbook step, also after an array of
    params was replaced (which turns it off)."""
    d = derive(spec, verify=False)
    assert codegen.transposed_weights(d) == transposed and codegen.feature_major_layers(d) == feature_major
    (tmp_path / "model.py").write_text(codegen.numpy_model(d))  # model.py alone: test_model.py takes seconds here
    model = import_file(tmp_path / "model.py", f"gen_layouts_{abs(hash(str(tmp_path)))}")
    params = model.init_params(2)
    flat = params["W1"].base
    assert flat.ndim == 1 and flat.size == sum(v.size for v in params.values())
    assert all(v.base is flat for v in params.values()) and model.flat_of(params) is flat
    sizes = d.network.sizes
    for l in range(1, d.L + 1):
        W = params[f"W{l}"]
        assert W.shape == (sizes[l], sizes[l - 1])
        assert (W.flags.f_contiguous, W.flags.c_contiguous) == ((True, False) if f"W{l}" in transposed else (False, True))
    assert model.flat_of({k: v.copy() for k, v in params.items()}) is None
    rng = np.random.default_rng(4)
    point, X, T = random_point(d.network, rng, batch=6, margin=1e-6)  # autograd, not finite differences
    for key, value in point.items():
        np.copyto(params[key], value)
    ws = model.Workspace(6, np.float64)
    _, cache = model.forward(params, X, ws)
    for l in range(1, d.L + 1):
        assert ws.__dict__[f"z{l}"].flags.f_contiguous == (l in feature_major) and ws.__dict__[f"z{l}"].shape == (6, sizes[l])
        if l < d.L:  # a hidden layer's a: its own buffer or, computed over z, z's
            assert cache[f"a{l}"].flags.f_contiguous == (l in feature_major) and cache[f"a{l}"].shape == (6, sizes[l])
        assert ws.__dict__[f"delta{l}"].flags.f_contiguous == (l in feature_major)
    reference = autograd_gradients(d.network, point, X, T)
    assert_close(model.gradients(params, X, T, ws=ws), reference, "flat views, the layouts above")
    assert_close(model.gradients({k: v.copy() for k, v in params.items()}, X, T), reference, "C-ordered copies")
    for replaced in (False, True):
        params = model.init_params(2)
        for key, value in point.items():
            np.copyto(params[key], value)
        state = model.init_state(params)
        assert state["flat"] is not None
        if replaced:  # a new array for b2: the flat step would miss it, so train_step must not take it
            params["b2"] = params["b2"].copy()
        model.train_step(params, X, T, state)
        expected = {k: point[k] - 0.1 * reference[k] for k in point}
        assert_close(params, expected, f"one SGD step (b2 replaced: {replaced})", rtol=1e-12, atol=1e-14)


def test_reference_of_a_large_parameter_samples_its_entries_and_matches_finite_differences():
    """A weight matrix of 8 x 7 = 56 > 40 entries: the generated test's REFERENCE holds a sample of 38 to 40 distinct entries,
    both corners included, each equal to the central finite difference of the batch loss at the fixed point
    (mutation survivor ``generated_test_context`` 3)."""
    spec = {"inputs": 7, "layers": [{"units": 8, "activation": "tanh"}, {"units": 2, "activation": "identity"}],
            "loss": "half_sse"}
    d = derive(spec, verify=False)
    ctx = codegen.generated_test_context(d)
    entries = [tuple(i) for i, _ in ctx["reference"]["W1"]]
    assert len(set(entries)) == len(entries) >= codegen.REFERENCE_ENTRIES - 2  # corners may also be drawn
    assert (0, 0) in entries and (7, 6) in entries
    assert all(0 <= r < 8 and 0 <= c < 7 for r, c in entries)
    (params, X, T), _ = codegen.reference_point(d)

    def loss(p):
        a = X.T
        for l in (1, 2):
            z = p[f"W{l}"] @ a + p[f"b{l}"][:, None]
            a = np.tanh(z) if l == 1 else z
        return float(np.mean(0.5 * np.sum((a - T.T) ** 2, axis=0)))

    for (r, c), value in ctx["reference"]["W1"][:8]:
        hi = {k: v.copy() for k, v in params.items()}
        lo = {k: v.copy() for k, v in params.items()}
        hi["W1"][r, c] += 1e-6
        lo["W1"][r, c] -= 1e-6
        assert float(value) == pytest.approx((loss(hi) - loss(lo)) / 2e-6, rel=1e-5, abs=1e-8)


def test_name_table_maps_code_indices_to_the_document_indices_plus_one(derivations):
    """The docstring's name table: the code's 0-based W{l}[j, k] is the document's 1-based weight from unit k+1 of
    layer l-1 to unit j+1 of layer l, W^(l)_{j+1,k+1} in the seed notation (mutation survivor
    ``Comments.header`` 8)."""
    text = codegen.numpy_model(derivations["seed_2_3_1.yaml"])
    row = next(line for line in text.splitlines() if line.strip().startswith("W{l}[j, k]"))
    assert "W⁽ˡ⁾ⱼ₊₁,ₖ₊₁" in row and "from unit k+1 of layer l-1 to unit j+1 of layer l" in row, row


def test_aima_code_says_its_delta_is_minus_the_documents(derivations):
    """AIMA writes Delta_j = -dE/dz_j and updates with +: the generated code keeps delta = dE/dz and its docstring
    says so, naming the profile's word for Delta (mutation survivor ``Comments.header`` 149)."""
    from symbackprop.render.notation import profile

    text = " ".join(codegen.numpy_model(derivations["seed_2_3_1.yaml"], "aima").split())
    assert f"(the {profile('aima').words['delta']}, updated with +); the code keeps delta = ∂" in text, text[:1500]


def test_custom_activation_printed_with_the_sigmoid_helper_runs(tmp_path):
    """A custom SiLU, x/(1+exp(-x)), is printed with the stable sigmoid: model.py defines the helper it calls, and
    its forward pass gives z/(1+exp(-z)) computed here in NumPy (written for mutation survivor ``_activation_code``
    27, which it does not kill: the backward pass's derivative also calls the sigmoid and brings in the helper)."""
    spec = {"inputs": 2, "layers": [{"units": 3, "activation": {"expr": "x/(1+exp(-x))"}},
                                    {"units": 1, "activation": "identity"}], "loss": "half_sse"}
    (tmp_path / "model.py").write_text(codegen.numpy_model(derive(spec, verify=False)))
    spec_ = importlib.util.spec_from_file_location("custom_silu_model", tmp_path / "model.py")
    model = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(model)
    rng = np.random.default_rng(3)
    params = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=3), "W2": rng.normal(size=(1, 3)),
              "b2": rng.normal(size=1)}
    X = rng.normal(size=(4, 2))
    z1 = X @ params["W1"].T + params["b1"]
    want = (z1 / (1 + np.exp(-z1))) @ params["W2"].T + params["b2"]
    got = model.predict(params, X)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("hidden, over_z", [("relu", True), ("sigmoid", True), ("tanh", True), ("softplus", False),
                                            ("silu", False), ("leaky_relu", False), ("elu", False)])
def test_hidden_layers_compute_a_over_z_where_the_backward_pass_reads_only_a(tmp_path, hidden, over_z):
    """ReLU (mask read from a: a > 0 exactly where z > 0), sigmoid and tanh (f' written with a) compute a
    over z's buffer and leave z out of the cache; the others keep both.  Either way the cache's a and the
    gradients match this file's own forward pass and autograd."""
    spec = {"name": "over-z", "inputs": 3, "layers": [{"units": 5, "activation": hidden},
                                                      {"units": 4, "activation": hidden},
                                                      {"units": 2, "activation": "softmax"}],
            "loss": "categorical_cross_entropy"}
    d = derive(spec, verify=False)
    assert codegen.in_place_layers(d) == ([1, 2] if over_z else [])
    model, _ = write_and_import(d, tmp_path)
    point, X, T = random_point(d.network, np.random.default_rng(7), batch=4, margin=1e-6)
    zs, _ = independent_forward(d.network, point, X, lib=np)
    ws = model.Workspace(4, np.float64)
    _, cache = model.forward({k: v.copy() for k, v in point.items()}, X, ws)
    for l in (1, 2):
        assert (f"z{l}" in cache) == (not over_z)
        assert (cache[f"a{l}"] is ws.__dict__[f"z{l}"]) == over_z
        np.testing.assert_allclose(cache[f"a{l}"], autograd_activation(d.network.layers[l - 1].activation)(zs[l - 1]),
                                   rtol=1e-12, atol=1e-15)
    assert_close(model.gradients(point, X, T), autograd_gradients(d.network, point, X, T), hidden)


def test_relu_mask_read_from_a_is_the_kink_convention_at_exactly_zero(tmp_path):
    """At z = 0 exactly ReLU's derivative is 0 (the registry's convention, z <= 0): the mask that backward
    reads from a = max(z, 0) gives it there too, and 1 at the smallest positive z.  Reference: the
    delta recursion written out here with NumPy, the mask taken from z."""
    spec = {"name": "kink", "inputs": 3, "layers": [{"units": 4, "activation": "relu"},
                                                    {"units": 2, "activation": "softmax"}],
            "loss": "categorical_cross_entropy"}
    d = derive(spec, verify=False)
    model, _ = write_and_import(d, tmp_path)
    rng = np.random.default_rng(3)
    X = np.abs(rng.normal(size=(5, 3))) + 0.5
    T = np.eye(2)[rng.integers(0, 2, size=5)]
    params = {"W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=4), "W2": rng.normal(size=(2, 4)),
              "b2": rng.normal(size=2)}
    params["W1"][0], params["b1"][0] = 0.0, 0.0  # z1[:, 0] == 0 exactly
    params["W1"][1], params["b1"][1] = 0.0, np.nextafter(0.0, 1.0)  # z1[:, 1]: the smallest positive float
    params["W1"][2], params["b1"][2] = -1.0, 0.0  # z1[:, 2] < 0
    z1 = X @ params["W1"].T + params["b1"]
    a1 = np.maximum(z1, 0)
    z2 = a1 @ params["W2"].T + params["b2"]
    y = np.exp(z2 - z2.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    delta2 = (y - T) / len(X)
    delta1 = (delta2 @ params["W2"]) * (z1 > 0)
    reference = {"W2": delta2.T @ a1, "b2": delta2.sum(axis=0), "W1": delta1.T @ X, "b1": delta1.sum(axis=0)}
    grads = model.gradients({k: v.copy() for k, v in params.items()}, X, T)
    assert np.all(grads["W1"][0] == 0) and grads["b1"][0] == 0 and np.all(grads["W1"][2] == 0)
    assert grads["b1"][1] == reference["b1"][1] != 0
    assert_close(grads, reference, "ReLU at its kink")
