"""Generated Array API code (``--target array-api``) on array-api-strict.

array-api-strict implements the standard and nothing else (no ``out=``, no bool
arithmetic, no mixing of Python scalars where the standard forbids it), so running
``model_xp.py`` on it proves the code uses only the standard.  Truths: central
finite differences of the generated loss (``symbackprop.engine.gradcheck``), the NumPy
target (itself checked against finite differences, the closed form and autograd in
test_codegen.py) to 1e-10 in float64, and textbook optimizer updates written here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from argparse import Namespace

import array_api_strict as xps
import numpy as np
import pytest
import sympy as sp
from test_codegen import EXAMPLES, ROOT, import_file, random_point, write_and_import

from symbackprop import cli
from symbackprop.codegen import array_api as codegen_xp
from symbackprop.codegen import numpy_code as codegen
from symbackprop.engine import gradcheck
from symbackprop.engine.derive import derive
from symbackprop.registry import ops

TOL = 1e-10
"""Agreement with the NumPy target in float64: |xp - numpy| <= TOL * (1 + |numpy|)."""


def write_xp(d, folder):
    """Generate model_xp.py and test_model_xp.py into ``folder``; import model_xp."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in codegen.code_outputs(d, Namespace(target="array-api")).items():
        (folder / name).write_bytes(data)
    return import_file(folder / "model_xp.py", f"gen_model_xp_{abs(hash(str(folder)))}")


def to_strict(params, dtype=xps.float64, device=None):
    return {k: xps.asarray(v, dtype=dtype, device=device) for k, v in params.items()}


def host(tree):
    return {k: np.from_dlpack(v) for k, v in tree.items()}


def assert_agree(got, reference, what):
    assert set(got) == set(reference), what
    for key, ref in reference.items():
        value = np.asarray(got[key], dtype=float)
        assert value.shape == np.shape(ref), (what, key)
        err = np.max(np.abs(value - ref) / (1 + np.abs(ref)), initial=0.0)
        assert err <= TOL, f"{what}: {key} differs from the NumPy target by {err:.2e} (relative to 1 + |value|)"


def compare_with_numpy_target(d, tmp_path, rng):
    """Gradients, outputs and loss on array-api-strict against model.py; gradients against finite differences."""
    numpy_model, _ = write_and_import(d, tmp_path / "numpy")
    xp_model = write_xp(d, tmp_path / "xp")
    params, X, T = random_point(d.network, rng)
    sX, sT = xps.asarray(X), xps.asarray(T)
    grads = xp_model.gradients(to_strict(params), sX, sT)
    assert all(type(g) is type(sX) and g.dtype == xps.float64 for g in grads.values())
    assert_agree(host(grads), numpy_model.gradients({k: v.copy() for k, v in params.items()}, X, T), "gradients")
    Y, _ = xp_model.forward(to_strict(params), sX)
    assert_agree({"Y": np.from_dlpack(Y)}, {"Y": numpy_model.forward(params, X)[0].copy()}, "outputs")
    assert abs(float(xp_model.loss(to_strict(params), sX, sT)) - numpy_model.loss(params, X, T)) <= TOL
    gradcheck.check_gradients(lambda p: float(xp_model.loss(to_strict(p), sX, sT)),
                              {k: v.copy() for k, v in params.items()}, host(grads))


@pytest.fixture(scope="module")
def derivations():
    return {p.name: derive(p, verify=False) for p in EXAMPLES}


@pytest.mark.parametrize("example", [p.name for p in EXAMPLES])
def test_examples_on_array_api_strict(derivations, tmp_path, example):
    compare_with_numpy_target(derivations[example], tmp_path, np.random.default_rng(3))


PAIRS = ops.allowed_pairs()
HIDDEN = ["sigmoid", "tanh", "relu", {"name": "leaky_relu", "alpha": 0.1}, {"name": "elu", "alpha": 0.5},
          "softplus", "silu", "identity", {"expr": "x*sigmoid(x)"}, {"expr": "tanh(log(1 + exp(x)))*x"}]


@pytest.mark.parametrize("output, loss", PAIRS)
def test_every_activation_and_loss_on_array_api_strict(tmp_path, output, loss):
    """Every output/loss pair the registry allows; hidden layers cycle through every activation."""
    hidden = HIDDEN[PAIRS.index((output, loss)) % len(HIDDEN)]
    other = HIDDEN[(PAIRS.index((output, loss)) + 3) % len(HIDDEN)]
    spec = {"inputs": 3, "layers": [{"units": 4, "activation": hidden}, {"units": 3, "activation": other},
                                    {"units": 2, "activation": output, "bias": len(loss) % 2 == 0}], "loss": loss}
    compare_with_numpy_target(derive(spec, verify=False), tmp_path, np.random.default_rng(len(output) + len(loss)))


def test_every_registry_activation_has_array_api_code():
    assert set(codegen_xp.XP_ACTIVATIONS) == set(ops.NUMPY_ACTIVATIONS)
    assert set(codegen_xp.XP_LOSSES_FROM_LOGITS) == set(ops.NUMPY_LOSSES_FROM_LOGITS)
    for code in [*codegen_xp.XP_ACTIVATIONS.values(), *codegen_xp.XP_LOSSES_FROM_LOGITS.values()]:
        assert "np." not in code.source and "out=" not in code.source


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_optimizers_follow_their_update_rules(tmp_path, name):
    """Two functional steps on array-api-strict against the textbook update written here."""
    spec = {"inputs": 2, "layers": [{"units": 2, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
            "loss": "binary_cross_entropy",
            "optimizer": {"name": name, "learning_rate": 0.1, "momentum": 0.8, "beta1": 0.7, "beta2": 0.9}}
    model = write_xp(derive(spec, verify=False), tmp_path)
    X, T = model.make_problem(0, xp=xps)
    start = model.init_params(3, xp=xps)
    frozen = host(start)
    state = model.init_state(start)
    params, state = model.train_step(start, X, T, state)
    params, state = model.train_step(params, X, T, state)
    assert all(np.array_equal(np.from_dlpack(start[k]), frozen[k]) for k in start)  # nothing updated in place

    def grad(p):
        return host(model.gradients(to_strict(p), X, T))

    g1 = grad(frozen)
    if name == "sgd":
        mid = {k: frozen[k] - 0.1 * g1[k] for k in frozen}
        g2 = grad(mid)
        expected = {k: mid[k] - 0.1 * g2[k] for k in frozen}
    elif name == "momentum":
        v1 = {k: -0.1 * g1[k] for k in frozen}
        mid = {k: frozen[k] + v1[k] for k in frozen}
        g2 = grad(mid)
        expected = {k: mid[k] + 0.8 * v1[k] - 0.1 * g2[k] for k in frozen}
    else:
        m1 = {k: 0.3 * g1[k] for k in frozen}
        v1 = {k: 0.1 * g1[k] ** 2 for k in frozen}
        mid = {k: frozen[k] - 0.1 * (m1[k] / 0.3) / (np.sqrt(v1[k] / 0.1) + 1e-8) for k in frozen}
        g2 = grad(mid)
        m2 = {k: 0.7 * m1[k] + 0.3 * g2[k] for k in frozen}
        v2 = {k: 0.9 * v1[k] + 0.1 * g2[k] ** 2 for k in frozen}
        expected = {k: mid[k] - 0.1 * (m2[k] / (1 - 0.7**2)) / (np.sqrt(v2[k] / (1 - 0.9**2)) + 1e-8)
                    for k in frozen}
    got = host(params)
    for k in expected:
        assert np.allclose(got[k], expected[k], rtol=1e-12, atol=1e-14), (name, k, got[k], expected[k])


def test_training_matches_the_numpy_target_and_keeps_dtype_and_device(derivations, tmp_path):
    """Mini-batch training with the same seed: the same losses as model.py; float32 and the device kept."""
    d = derivations["classifier_4_5_3.yaml"]
    numpy_model, _ = write_and_import(d, tmp_path / "numpy")
    model = write_xp(d, tmp_path / "xp")
    X, T = numpy_model.make_problem(0)
    expected = numpy_model.train(X, T, epochs=3, batch_size=50, seed=1, progress=False)
    got = model.train(xps.asarray(X), xps.asarray(T), epochs=3, batch_size=50, seed=1, progress=False)
    assert np.allclose(got, expected, rtol=1e-10, atol=0)
    device = xps.Device("device1")
    X32 = xps.asarray(X, dtype=xps.float32, device=device)
    T32 = xps.asarray(T, dtype=xps.float32, device=device)
    params = model.init_params(0, xps.float32, xps, device)
    start = host(params)
    history = model.train(X32, T32, epochs=2, batch_size=64, progress=False, params=params)
    assert all(np.isfinite(history))
    assert all(v.dtype == xps.float32 and v.device == device for v in params.values())
    assert any(not np.array_equal(host(params)[k], start[k]) for k in start)  # trained: the entries replaced


def test_large_preactivations_are_finite_in_float32(derivations, tmp_path):
    """|z| near 1e4 through every example: no overflow warning, finite loss and gradients, float32 kept."""
    import warnings

    for name, d in derivations.items():
        model = write_xp(d, tmp_path / name.replace(".", "_"))
        params = {k: xps.asarray(np.full(v.shape, 1e4 / v.shape[-1] if k[0] == "W" else 0.0), dtype=xps.float32)
                  for k, v in model.init_params(0, xp=xps).items()}
        X = xps.ones((3, d.network.inputs), dtype=xps.float32)
        T = xps.asarray(np.full((3, d.network.sizes[-1]), 1 / d.network.sizes[-1]), dtype=xps.float32)
        with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
            warnings.simplefilter("error")
            value = float(model.loss(params, X, T))
            grads = model.gradients(params, X, T)
        assert np.isfinite(value), name
        assert all(g.dtype == xps.float32 and np.all(np.isfinite(np.from_dlpack(g))) for g in grads.values()), name


def test_printer_writes_the_standard():
    z, a, s = sp.Symbol("z1"), sp.Symbol("a1"), sp.Symbol("(delta2 @ W2)")
    p = codegen_xp.xp_printer()
    mask = sp.Piecewise((0, z <= 0), (1, True))
    # a 0/1 mask is cast to the float dtype, then multiplied (no bool array times a float)
    assert p.doprint(s * mask) == "(delta2 @ W2) * xp.astype((z1 > 0), z1.dtype)"
    assert p.doprint(s * sp.Piecewise((sp.Rational(1, 10), z <= 0), (1, True))) == \
        "xp.where((z1 <= 0), (1/10)*(delta2 @ W2), (delta2 @ W2))"
    assert p.doprint(sp.atan(z) + sp.Max(z, a)).count("xp.") == 2 and "xp.atan(z1)" in p.doprint(sp.atan(z))
    assert p.doprint(z ** sp.Rational(3, 2)) == "xp.pow(z1, 3/2)"
    assert p.doprint(sp.sqrt(z)) == "xp.sqrt(z1)"
    with pytest.raises(ValueError):
        p.doprint(mask)


def test_generation_is_deterministic_lint_clean_and_imports_little(derivations, tmp_path):
    for name, d in derivations.items():
        first = codegen.code_outputs(d, Namespace(target="array-api"))
        assert first == codegen.code_outputs(derive(ROOT / "examples" / name, verify=False),
                                             Namespace(target="array-api"))
        assert set(first) == {"model_xp.py", "test_model_xp.py"}
        text = first["model_xp.py"].decode()
        assert "out=" not in text and "np.random" in text.split("def init_params")[1].split("def forward")[0]
        assert " -= " not in text and " += " not in text and "[...]" not in text  # no in-place updates
        tree = ast.parse(text)
        imported = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import)
                    for alias in node.names} | {node.module.split(".")[0] for node in tree.body
                                                if isinstance(node, ast.ImportFrom)}
        assert imported <= {"argparse", "importlib", "numpy", "array_api_compat"}, imported
        body = text.split("def forward")[1].split("def init_state")[0]
        assert "np." not in body  # forward, backward and loss: xp only
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        for file, data in first.items():
            (folder / file).write_bytes(data)
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", str(tmp_path)],
                            check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_model_xp_names_and_comments_match_the_document(derivations):
    text = codegen_xp.xp_model(derivations["seed_2_3_1.yaml"])
    for name in ("z1 = ", "a1 = ", "delta2 = ", "delta1 = ", 'grads["W2"] = ', 'grads["b1"] = '):
        assert name in text
    assert text.count("0-based") == 1 and "1-based" in text
    assert "# delta1 = (delta2 W2) * f1'(z1)   [δ⁽¹⁾ⱼ = a⁽¹⁾ⱼ (1 - a⁽¹⁾ⱼ) Σₖ W⁽²⁾ₖⱼ δ⁽²⁾ₖ]" in text
    assert "jax.jit" in text and "array_namespace(X" in text


@pytest.mark.slow
def test_generated_xp_tests_pass(derivations, tmp_path):
    """The generated test_model_xp.py files, run by pytest in a fresh process."""
    paths = []
    for name, d in derivations.items():
        folder = tmp_path / name.replace(".", "_")
        write_xp(d, folder)
        paths.append(str(folder / "test_model_xp.py"))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--import-mode=importlib", "--rootdir", str(tmp_path), *paths],
                            check=False, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"{7 * len(paths)} passed" in result.stdout


def test_cli_target_array_api(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "DERIVE_OUTPUTS", [o for o in cli.DERIVE_OUTPUTS if o.write is codegen.code_outputs])
    spec = str(ROOT / "examples" / "seed_2_3_1.yaml")
    assert cli.main(["derive", spec, "-o", str(tmp_path), "--no-verify", "--target", "array-api"]) == 0
    assert (tmp_path / "model_xp.py").is_file() and (tmp_path / "test_model_xp.py").is_file()
    assert not (tmp_path / "model.py").exists()
    assert "xp = xp if xp is not None else namespace_of(" in (tmp_path / "model_xp.py").read_text()


def test_namespace_of_is_array_namespace_remembered_per_type(derivations, tmp_path):
    """namespace_of gives array_namespace's answer for NumPy, array-api-strict and mixed NumPy/strict
    arguments (a TypeError, also the second time: a failed lookup is not remembered)."""
    from array_api_compat import array_namespace

    model = write_xp(derivations["seed_2_3_1.yaml"], tmp_path)
    a, s = np.ones(3), xps.ones(3)
    for args in ((a,), (a, a), (s,), (s, s)):
        assert model.namespace_of(*args) is array_namespace(*args)
        assert model.namespace_of(*args) is array_namespace(*args)  # remembered
    assert model.namespace_of(a) is not model.namespace_of(s)
    for _ in range(2):
        with pytest.raises(TypeError):
            model.namespace_of(a, s)
