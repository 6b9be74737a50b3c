"""The layer graph against independent truths (issue 11, item 5).

* Random mixed graphs (dense, batchnorm, layernorm, dropout, residual, L2):
  ``LayerDerivation.gradients`` against HIPS autograd on a forward pass written
  here from the math, never from the registry.  Pass rule:
  ``|ours - autograd| <= 1e-8 |autograd| + 1e-11`` for every parameter entry.
* A few graphs against PyTorch's ``batch_norm``/``layer_norm`` (training mode; skipped unless
  torch is installed, e.g. by the ``torch`` extra),
  which pins the conventions (population variance, epsilon inside the root).
* Each registry kind at B=3, width 2: its SymPy ``forward`` against its NumPy
  ``numpy_forward``, its SymPy ``backward`` against ``sp.diff`` of the forward
  (the vector-Jacobian product with a symbolic upstream ``g``), and batchnorm's
  ``per_path`` against both, at random rational points to 25 digits.
"""

from __future__ import annotations

import json

import autograd.numpy as anp
import mpmath
import numpy as np
import pytest
import sympy as sp
from autograd import grad

from symbackprop.engine.layergraph import LayerDerivation
from symbackprop.registry import ops
from symbackprop.registry.layers import KINDS
from symbackprop.registry.layers import batchnorm as bn_module
from symbackprop.spec import load

FAST_GRAPHS = 40
SLOW_GRAPHS = 160

# ----------------------------------------------------------------------------- the random graphs

HIDDEN_ACTS = ("sigmoid", "tanh", "relu", "identity", "softplus", "leaky_relu", "elu", "silu")
OUTPUTS = (("softmax", "categorical_cross_entropy"), ("sigmoid", "binary_cross_entropy"),
           ("identity", "mse"), ("identity", "half_sse"), ("identity", "sse"))


def _activation(rng):
    if rng.random() < 0.08:
        return {"expr": "x*tanh(x)"}  # a custom activation, differentiated by SymPy
    name = str(rng.choice(HIDDEN_ACTS))
    if name in ("leaky_relu", "elu") and rng.random() < 0.5:
        return {"name": name, "alpha": float(rng.choice([0.05, 0.2, 0.5]))}
    return name


def random_graph_spec(seed: int) -> dict:
    """A deterministic random mixed spec: 2-7 layers, the last one dense with a loss-compatible output."""
    rng = np.random.default_rng(seed)
    inputs = int(rng.integers(2, 5))
    depth = int(rng.integers(2, 8))
    widths = [inputs]  # widths[i] = width of layer i's output (0 = the inputs)
    layers: list[dict] = []
    for index in range(1, depth):
        prev = index - 1
        froms = [s for s in range(prev) if widths[s] == widths[prev]]
        kinds = ["dense", "dense", "batchnorm", "layernorm", "dropout"] + (["residual"] * 2 if froms else [])
        kind = str(rng.choice(kinds))
        if kind == "dense":
            layer = {"units": int(rng.integers(2, 5)), "activation": _activation(rng)}
            if rng.random() < 0.4:
                layer["bias"] = bool(rng.integers(2))
            if rng.random() < 0.2:
                layer["type"] = "dense"
            widths.append(layer["units"])
        else:
            layer = {"type": kind}
            if kind in ("batchnorm", "layernorm"):
                layer["epsilon"] = float(rng.choice([1e-5, 1e-3, 0.1]))
                if kind == "batchnorm" and rng.random() < 0.3:
                    layer["momentum"] = 0.8
            elif kind == "dropout":
                layer["rate"] = float(rng.choice([0.0, 0.1, 0.25, 0.5, 0.75]))
            else:
                layer["from"] = int(rng.choice(froms))
            widths.append(widths[prev])
        layers.append(layer)
    if all("type" not in item or item["type"] == "dense" for item in layers):
        # no residual here, so a width-keeping layer can go anywhere without breaking a `from`
        pos = int(rng.integers(0, len(layers) + 1))
        layers.insert(pos, {"type": str(rng.choice(["batchnorm", "layernorm"])), "epsilon": 1e-3})
    out_act, loss = OUTPUTS[int(rng.integers(len(OUTPUTS)))]
    units = int(rng.integers(2, 5)) if out_act == "softmax" else int(rng.integers(1, 4))
    layers.append({"units": units, "activation": out_act, "bias": bool(rng.random() < 0.8)})
    spec = {"name": f"random{seed}", "inputs": inputs, "layers": layers, "loss": loss}
    if rng.random() < 0.7:
        spec["regularization"] = {"l2": float(rng.choice([0.0, 1e-3, 0.05, 0.3]))}
    if rng.random() < 0.3:
        spec["batch_size"] = int(rng.integers(2, 64))
    return spec


# ----------------------------------------------------------------------------- the oracle, from the math

def _act(spec_act, z):
    if isinstance(spec_act, dict) and "expr" in spec_act:
        assert spec_act["expr"] == "x*tanh(x)"
        return z * anp.tanh(z)
    name, alpha = (spec_act, None) if isinstance(spec_act, str) else (spec_act["name"], spec_act.get("alpha"))
    if name == "identity":
        return z
    if name == "sigmoid":
        return 1 / (1 + anp.exp(-z))
    if name == "tanh":
        return anp.tanh(z)
    if name == "relu":
        return anp.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return anp.where(z > 0, z, (0.01 if alpha is None else alpha) * z)
    if name == "elu":
        return anp.where(z > 0, z, (1.0 if alpha is None else alpha) * (anp.exp(z) - 1))
    if name == "softplus":
        return anp.log(1 + anp.exp(z))
    if name == "silu":
        return z / (1 + anp.exp(-z))
    if name == "softmax":
        e = anp.exp(z)
        return e / anp.sum(e, axis=1, keepdims=True)
    raise AssertionError(name)


def _per_sample_loss(name, a, t):
    if name == "mse":
        return anp.mean((a - t) ** 2, axis=1)
    if name == "sse":
        return anp.sum((a - t) ** 2, axis=1)
    if name == "half_sse":
        return 0.5 * anp.sum((a - t) ** 2, axis=1)
    if name == "binary_cross_entropy":
        return -anp.sum(t * anp.log(a) + (1 - t) * anp.log(1 - a), axis=1)
    if name == "categorical_cross_entropy":
        return -anp.sum(t * anp.log(a), axis=1)
    raise AssertionError(name)


def expected_parameters(spec) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes written out from the issue's rules: W{l} (units, fan_in), b{l}, gamma{l}, beta{l}."""
    out, width = [], spec["inputs"]
    for l, layer in enumerate(spec["layers"], start=1):
        kind = layer.get("type", "dense")
        if kind == "dense":
            out.append((f"W{l}", (layer["units"], width)))
            if layer.get("bias", True):
                out.append((f"b{l}", (layer["units"],)))
            width = layer["units"]
        elif kind in ("batchnorm", "layernorm"):
            out += [(f"gamma{l}", (width,)), (f"beta{l}", (width,))]
    return out


def oracle_loss(spec, framework="autograd"):
    """E(params, X, T, masks) written from the math with autograd.numpy (or torch)."""
    lam = spec.get("regularization", {}).get("l2", 0.0)

    def E(params, X, T, masks):
        outs = [X]
        for l, layer in enumerate(spec["layers"], start=1):
            x = outs[-1]
            kind = layer.get("type", "dense")
            if kind == "dense":
                z = anp.dot(x, params[f"W{l}"].T)
                if layer.get("bias", True):
                    z = z + params[f"b{l}"]
                y = _act(layer["activation"], z)
            elif kind == "batchnorm":
                mu = anp.mean(x, axis=0)
                var = anp.mean((x - mu) ** 2, axis=0)  # population variance (/B)
                y = params[f"gamma{l}"] * (x - mu) / anp.sqrt(var + layer.get("epsilon", 1e-5)) + params[f"beta{l}"]
            elif kind == "layernorm":
                mu = anp.mean(x, axis=1, keepdims=True)
                var = anp.mean((x - mu) ** 2, axis=1, keepdims=True)
                y = params[f"gamma{l}"] * (x - mu) / anp.sqrt(var + layer.get("epsilon", 1e-5)) + params[f"beta{l}"]
            elif kind == "dropout":
                y = x * masks[l] / (1 - layer["rate"])
            elif kind == "residual":
                y = x + outs[layer["from"]]
            else:
                raise AssertionError(kind)
            outs.append(y)
        data = anp.mean(_per_sample_loss(spec["loss"], outs[-1], T))
        decay = sum(anp.sum(params[name] ** 2) for name in params if name.startswith("W"))
        return data + 0.5 * lam * decay

    return E


def random_point(spec, seed: int):
    """Spread parameters, a batch of B = 3..5, targets in the loss's range, fixed 0/1 masks."""
    rng = np.random.default_rng(10_000 + seed)
    params = {}
    for name, shape in expected_parameters(spec):
        if name.startswith("W"):
            params[name] = rng.normal(0, 1.2 / np.sqrt(shape[1]), shape)
        elif name.startswith("gamma"):
            params[name] = rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)
        else:
            params[name] = rng.uniform(-0.5, 0.5, shape)
    B = int(rng.integers(3, 6))
    X = rng.normal(0, 1, (B, spec["inputs"]))
    out = spec["layers"][-1]
    m = out["units"]
    if spec["loss"] == "categorical_cross_entropy":
        T = rng.dirichlet(np.ones(m), B)
    elif spec["loss"] == "binary_cross_entropy":
        T = rng.uniform(0.05, 0.95, (B, m))
    else:
        T = rng.normal(0, 1, (B, m))
    masks, width = {}, spec["inputs"]
    for l, layer in enumerate(spec["layers"], start=1):
        if layer.get("type", "dense") == "dense":
            width = layer["units"]
        elif layer["type"] == "dropout":
            mask = (rng.random((B, width)) >= layer["rate"]).astype(float)
            mask[rng.integers(B), :] = 1.0  # not every unit dropped
            masks[l] = mask
    return params, X, T, masks


def check_graph(seed: int) -> None:
    spec = random_graph_spec(seed)
    d = LayerDerivation(load(spec))
    assert [(p.name, tuple(p.shape)) for p in d.parameters] == expected_parameters(spec), spec
    params, X, T, masks = random_point(spec, seed)
    aux = {l: {"mask": m} for l, m in masks.items()}
    ours = d.gradients(params, X, T, aux)
    E = oracle_loss(spec)
    ref = grad(E)(params, X, T, masks)
    assert set(ours) == set(ref)
    for name in ref:
        np.testing.assert_allclose(ours[name], ref[name], rtol=1e-8, atol=1e-11, err_msg=f"{name} of {spec}")
    assert d.loss_value(params, X, T, aux) == pytest.approx(float(E(params, X, T, masks)), rel=1e-12, abs=1e-14)


def test_generator_is_deterministic_and_mixes_every_kind():
    specs = [random_graph_spec(s) for s in range(FAST_GRAPHS)]
    assert specs == [random_graph_spec(s) for s in range(FAST_GRAPHS)]
    kinds = {layer.get("type", "dense") for spec in specs for layer in spec["layers"]}
    assert kinds == {"dense", "batchnorm", "layernorm", "dropout", "residual"}
    assert {spec["loss"] for spec in specs} == {loss for _, loss in OUTPUTS}
    assert any(layer.get("from") == 0 for spec in specs for layer in spec["layers"])
    assert {len(spec["layers"]) for spec in specs} >= {2, 7}
    assert any(spec.get("regularization", {}).get("l2", 0) > 0 for spec in specs)
    assert all(any(layer.get("type", "dense") != "dense" for layer in spec["layers"]) for spec in specs)
    acts = [json.dumps(layer["activation"]) for spec in specs for layer in spec["layers"] if "activation" in layer]
    assert {json.dumps(a) for a in (*HIDDEN_ACTS, "softmax", {"expr": "x*tanh(x)"})} <= set(acts)
    assert any(layer.get("bias") is False for spec in specs for layer in spec["layers"])


@pytest.mark.parametrize("seed", range(FAST_GRAPHS))
def test_random_mixed_graph_matches_autograd(seed):
    check_graph(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(FAST_GRAPHS, FAST_GRAPHS + SLOW_GRAPHS))
def test_more_random_mixed_graphs_match_autograd(seed):
    check_graph(seed)


@pytest.mark.parametrize("seed", range(6))
def test_engine_own_init_and_masks_match_autograd(seed):
    """The engine's ``init_params(spread=True)`` and ``masks(B)`` feed ``gradients`` as the oracle reads them."""
    spec = random_graph_spec(seed)
    d = LayerDerivation(load(spec))
    params = d.init_params(seed, spread=True)
    aux = d.masks(4, seed)
    _, X, T, _ = random_point(spec, seed)
    X, T = np.resize(X, (4, X.shape[1])), np.resize(T, (4, T.shape[1]))
    ours = d.gradients(params, X, T, aux)
    ref = grad(oracle_loss(spec))(params, X, T, {l: a["mask"] for l, a in aux.items()})
    for name in ref:
        np.testing.assert_allclose(ours[name], ref[name], rtol=1e-8, atol=1e-11, err_msg=f"{name} of {spec}")


def test_the_oracle_can_fail():
    """A wrong convention (sample variance, /(B-1)) in the oracle is caught: the comparison has teeth."""
    spec = {"inputs": 3, "layers": [{"type": "batchnorm", "epsilon": 1e-3}, {"units": 2, "activation": "identity"}],
            "loss": "half_sse"}
    d = LayerDerivation(load(spec))
    params, X, T, _ = random_point(spec, 1)
    B = X.shape[0]

    def wrong(params):
        x = X
        mu = anp.mean(x, axis=0)
        var = anp.sum((x - mu) ** 2, axis=0) / (B - 1)
        y = params["gamma1"] * (x - mu) / anp.sqrt(var + 1e-3) + params["beta1"]
        return anp.mean(0.5 * anp.sum((anp.dot(y, params["W2"].T) + params["b2"] - T) ** 2, axis=1))

    ours = d.gradients(params, X, T, {})
    ref = grad(wrong)(params)
    assert not np.allclose(ours["gamma1"], ref["gamma1"], rtol=1e-8, atol=1e-11)


# ----------------------------------------------------------------------------- PyTorch, optional

TORCH_SEEDS = [s for s in range(FAST_GRAPHS)
               if {"batchnorm", "layernorm"} <= {layer.get("type") for layer in random_graph_spec(s)["layers"]}][:4]


def torch_gradients(spec, params, X, T, masks):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    tp = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    acts = {"identity": lambda z: z, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu,
            "softplus": F.softplus, "silu": F.silu, "softmax": lambda z: F.softmax(z, dim=1)}
    outs = [torch.tensor(X, dtype=torch.float64)]
    for l, layer in enumerate(spec["layers"], start=1):
        x, kind = outs[-1], layer.get("type", "dense")
        if kind == "dense":
            z = F.linear(x, tp[f"W{l}"], tp.get(f"b{l}"))
            a = layer["activation"]
            if isinstance(a, dict) and "expr" in a:
                outs.append(z * torch.tanh(z))
                continue
            name, alpha = (a, None) if isinstance(a, str) else (a["name"], a.get("alpha"))
            if name == "leaky_relu":
                y = F.leaky_relu(z, 0.01 if alpha is None else alpha)
            elif name == "elu":
                y = F.elu(z, 1.0 if alpha is None else alpha)
            else:
                y = acts[name](z)
        elif kind == "batchnorm":
            y = F.batch_norm(x, None, None, tp[f"gamma{l}"], tp[f"beta{l}"], training=True,
                             eps=layer.get("epsilon", 1e-5))
        elif kind == "layernorm":
            y = F.layer_norm(x, (x.shape[1],), tp[f"gamma{l}"], tp[f"beta{l}"], eps=layer.get("epsilon", 1e-5))
        elif kind == "dropout":
            y = x * torch.tensor(masks[l]) / (1 - layer["rate"])
        else:
            y = x + outs[layer["from"]]
        outs.append(y)
    a, t = outs[-1], torch.tensor(T, dtype=torch.float64)
    per_sample = {"mse": lambda: ((a - t) ** 2).mean(dim=1), "sse": lambda: ((a - t) ** 2).sum(dim=1),
                  "half_sse": lambda: 0.5 * ((a - t) ** 2).sum(dim=1),
                  "binary_cross_entropy": lambda: F.binary_cross_entropy(a, t, reduction="none").sum(dim=1),
                  "categorical_cross_entropy": lambda: -(t * torch.log(a)).sum(dim=1)}[spec["loss"]]()
    lam = spec.get("regularization", {}).get("l2", 0.0)
    E = per_sample.mean() + 0.5 * lam * sum((w ** 2).sum() for k, w in tp.items() if k.startswith("W"))
    E.backward()
    return {k: v.grad.numpy() for k, v in tp.items()}


@pytest.mark.parametrize("seed", TORCH_SEEDS)
def test_random_mixed_graph_matches_pytorch(seed):
    spec = random_graph_spec(seed)
    params, X, T, masks = random_point(spec, seed)
    ref = torch_gradients(spec, params, X, T, masks)
    ours = LayerDerivation(load(spec)).gradients(params, X, T, {l: {"mask": m} for l, m in masks.items()})
    for name in ref:
        np.testing.assert_allclose(ours[name], ref[name], rtol=1e-8, atol=1e-11, err_msg=f"{name} of {spec}")


def test_torch_seeds_cover_both_norms():
    assert len(TORCH_SEEDS) == 4


# ----------------------------------------------------------------------------- each registry kind, exactly

B, N = 3, 2
DIGITS = 25


def _matrix(stem, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{stem}_{i}_{j}", real=True))


def _row(stem, n):
    return sp.Matrix(1, n, lambda i, j: sp.Symbol(f"{stem}_{j}", real=True))


def _rational(rng, lo=-2.0, hi=2.0):
    return sp.Rational(int(rng.integers(int(lo * 1000), int(hi * 1000))), 1000) + sp.Rational(1, 7919)


def _value(expr, at) -> mpmath.mpf:
    """``expr`` at the rational point ``at``, to DIGITS + 10 digits (mpmath, no float64 anywhere)."""
    return mpmath.mpf(str(sp.sympify(expr).evalf(DIGITS + 10, subs=at)))


def _close(a, b, where, at=None):
    mpmath.mp.dps = DIGITS + 10
    a, b = (_value(a, at or {}), _value(b, at or {}))
    assert abs(a - b) <= mpmath.mpf(10) ** -DIGITS * max(1, abs(b)), f"{where}: {a} != {b}"


def kind_cases():
    """(case id, kind name, opts, param stems and shapes, number of inputs, aux symbols)."""
    eps = sp.Rational(1, 1000)
    cases = []
    for act in ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softplus", "elu", "silu", "softmax"):
        for bias in (True, False) if act in ("identity", "relu", "softmax") else (True,):
            params = {"W": (N, N)} | ({"b": (N,)} if bias else {})
            cases.append((f"dense-{act}-{'b' if bias else 'nob'}", "dense",
                          {"units": N, "activation": ops.activation(act), "bias": bias}, params, 1))
    cases.append(("batchnorm", "batchnorm", {"epsilon": eps, "momentum": 0.9}, {"gamma": (N,), "beta": (N,)}, 1))
    cases.append(("layernorm", "layernorm", {"epsilon": eps}, {"gamma": (N,), "beta": (N,)}, 1))
    cases.append(("dropout", "dropout", {"rate": sp.Rational(1, 3)}, {}, 1))
    cases.append(("residual", "residual", {"from": 0}, {}, 2))
    return cases


CASES = kind_cases()


def _instantiate(kind_name, opts, shapes, n_inputs):
    kind = KINDS[kind_name]
    inputs = [_matrix(f"x{i}", B, N) for i in range(n_inputs)]
    params = {s: (_matrix(s, *shape) if len(shape) == 2 else _row(s, shape[0])) for s, shape in shapes.items()}
    aux = {"mask": _matrix("m", B, N)} if "mask" in kind.aux else None
    return kind, inputs, params, aux


def _point(rng, *matrices):
    return {s: _rational(rng) for M in matrices for s in M.free_symbols}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_kind_sympy_forward_matches_its_numpy_forward(case):
    _, kind_name, opts, shapes, n_inputs = case
    kind, inputs, params, aux = _instantiate(kind_name, opts, shapes, n_inputs)
    Y = kind.forward(inputs, params, opts, aux)
    rng = np.random.default_rng(5)
    at = _point(rng, *inputs, *params.values(), *(aux.values() if aux else ()))
    np_inputs = [np.array(M.subs(at), dtype=float) for M in inputs]
    np_params = {s: np.array(M.subs(at), dtype=float).reshape(shapes[s]) for s, M in params.items()}
    np_opts = {k: (float(v) if isinstance(v, sp.Rational) else v) for k, v in opts.items()}
    np_aux = {"mask": np.array(aux["mask"].subs(at), dtype=float)} if aux else None
    y, _ = kind.numpy_forward(np_inputs, np_params, np_opts, np_aux)
    exact = np.array(Y.subs(at).evalf(30), dtype=float)
    np.testing.assert_allclose(y, exact, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_kind_backward_is_the_vjp_of_its_forward(case):
    """backward(g) = d/dθ sum(g * forward) for every input and parameter, at two rational points, to 25 digits."""
    _, kind_name, opts, shapes, n_inputs = case
    kind, inputs, params, aux = _instantiate(kind_name, opts, shapes, n_inputs)
    g = _matrix("g", B, N)
    Y = kind.forward(inputs, params, opts, aux)
    vjp = sp.Add(*(g[i, j] * Y[i, j] for i in range(B) for j in range(N)))
    dins, dparams = kind.backward(g, inputs, params, opts, aux)
    assert len(dins) == n_inputs and set(dparams) == set(params)
    pairs = []
    for X, dX in zip(inputs, dins):
        pairs += [(X[i, j], dX[i, j]) for i in range(B) for j in range(N)]
    for s, M in params.items():
        pairs += [(M[k], dparams[s][k]) for k in range(len(M))]
        assert len(dparams[s]) == len(M)
    truth = [sp.diff(vjp, var) for var, _ in pairs]
    rng = np.random.default_rng(11)
    for _ in range(2):
        at = _point(rng, g, *inputs, *params.values(), *(aux.values() if aux else ()))
        for (var, ours), ref in zip(pairs, truth):
            _close(ours, ref, f"{case[0]} d/d{var}", at)


def test_batchnorm_per_path_matches_compact_form_and_sympy():
    """The paper's per-path equations: dxhat, dvar, dmu from their definitions, dx equal to both other forms."""
    eps = sp.Rational(1, 1000)
    opts = {"epsilon": eps}
    kind, (x,), params, _ = _instantiate("batchnorm", opts, {"gamma": (N,), "beta": (N,)}, 1)
    g = _matrix("g", B, N)
    dxhat, dvar, dmu, dx = bn_module.per_path(g, [x], params, opts)
    (dx_compact,), _ = kind.backward(g, [x], params, opts)
    Y = kind.forward([x], params, opts)
    vjp = sp.Add(*(g[i, j] * Y[i, j] for i in range(B) for j in range(N)))
    # E as a function of x, a free mean m and a free variance v (per unit), for the paper's partials
    m = [sp.Symbol(f"mu_{j}", real=True) for j in range(N)]
    v = [sp.Symbol(f"var_{j}", real=True) for j in range(N)]
    gamma, beta = params["gamma"], params["beta"]
    xh = sp.Matrix(B, N, lambda i, j: sp.Symbol(f"xhat_{i}_{j}", real=True))
    e_of_xhat = sp.Add(*(g[i, j] * (gamma[j] * xh[i, j] + beta[j]) for i in range(B) for j in range(N)))
    xhat_of = {xh[i, j]: (x[i, j] - m[j]) / sp.sqrt(v[j] + eps) for i in range(B) for j in range(N)}
    e_free = e_of_xhat.subs(xhat_of)
    mean = [sp.Add(*x[:, j]) / B for j in range(N)]
    var_of_m = [sp.Add(*((x[i, j] - m[j]) ** 2 for i in range(B))) / B for j in range(N)]
    batch = {**{m[j]: mean[j] for j in range(N)}}
    rng = np.random.default_rng(3)
    for _ in range(2):
        at = _point(rng, g, x, gamma, beta)
        for j in range(N):
            stats = {m[j]: mean[j].subs(at), v[j]: var_of_m[j].subs(batch).subs(at)}
            _close(dvar[j], sp.diff(e_free, v[j]).subs(at).subs(stats), f"dvar_{j}", at)
            dmu_ref = sp.diff(e_free.subs(v[j], var_of_m[j]), m[j]).subs(at).subs({m[j]: stats[m[j]]})
            _close(dmu[j], dmu_ref, f"dmu_{j}", at)
            for i in range(B):
                _close(dxhat[i, j], sp.diff(e_of_xhat, xh[i, j]), f"dxhat_{i}_{j}", at)
                _close(dx[i, j], dx_compact[i, j], f"per-path vs compact dx_{i}_{j}", at)
                _close(dx[i, j], sp.diff(vjp, x[i, j]), f"per-path vs sp.diff dx_{i}_{j}", at)


def test_vjp_comparison_has_teeth():
    """The paper's dvar with the -1/2 dropped is told apart from the true one at these precisions."""
    eps = sp.Rational(1, 1000)
    _, (x,), params, _ = _instantiate("batchnorm", {"epsilon": eps}, {"gamma": (N,), "beta": (N,)}, 1)
    g = _matrix("g", B, N)
    _, dvar, _, _ = bn_module.per_path(g, [x], params, {"epsilon": eps})
    at = _point(np.random.default_rng(4), g, x, params["gamma"])
    with pytest.raises(AssertionError):
        _close(dvar[0].subs(at), (-2 * dvar[0]).subs(at), "dvar_0")
