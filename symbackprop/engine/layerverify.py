"""Verification of a layer-graph derivation: three independent truths, as for dense nets.

* **local** (symbolic, per layer): the layer's registry ``forward`` is
  instantiated on symbols (a batch of B = 3, widths 2 and 3), ``sympy.diff`` of
  ``sum G * Y`` (an arbitrary upstream gradient G) gives the exact vector-Jacobian
  product, and the registry's compact ``backward`` must equal it; for batch
  normalization the paper's per-path form must equal both.  The comparison
  evaluates both expressions exactly at random rational points to 50 digits;
  the NumPy functions copied into generated code must agree with them to 1e-12.
* **closed form** (small nets): E over a batch of 2 samples is built in SymPy
  from every layer's forward definition, ``sympy.diff`` gives every dE/dθ, and
  the derivation's gradients must match them at a random point.
* **numeric** (any size): central finite differences of the forward pass (which
  knows nothing of derivatives) against the derivation's gradients, per
  parameter for a sample of entries, on a batch of 3 with fixed dropout masks.
"""

from __future__ import annotations

import random
import time

import numpy as np
import sympy as sp

from ..spec.graph import Node
from .layergraph import LayerDerivation
from .verify import Tier, Verification

BATCH = 3
LOCAL_WIDTHS = (2, 3)
DIGITS = 50
CLOSED_PARAMETER_LIMIT = 40
FD_SAMPLE = 96
STEP = 1e-6
MODES = ("auto", "full", "numeric", "none")


def _symbols(stem: str, rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda r, c: sp.Symbol(f"{stem}_{r + 1}_{c + 1}", real=True))


def _point(symbols, rng: random.Random, positive=()) -> dict:
    """Random rationals in [-3/2, 3/2] (in [1/2, 3/2] for ``positive`` ones); masks get 0 or 1."""
    out = {}
    for s in symbols:
        if s.name.startswith("m_"):  # a dropout mask: mostly kept units, the first always kept
            out[s] = sp.Integer(1 if s.name == "m_1_1" or rng.random() < 0.7 else 0)
        elif s in positive:
            out[s] = sp.Float(sp.Rational(rng.randint(50, 150), 100), DIGITS + 10)
        else:
            out[s] = sp.Float(sp.Rational(rng.randint(-150, 150), 100), DIGITS + 10)
    return out


def local_problem(node: Node, fan_ins: tuple[int, ...], units: int, batch: int = BATCH):
    """Symbols of one layer: inputs, parameters, upstream gradient, aux; and the forward output."""
    opts = dict(node.opts)
    if "epsilon" in opts:
        opts["epsilon"] = sp.Rational(1, 100)  # any positive value: the identities hold for all
    if "rate" in opts:
        opts["rate"] = sp.Rational(1, 4)
    inputs = [_symbols(f"x{i}", batch, n) for i, n in enumerate(fan_ins)]
    params = {}
    for p in node.kind.params(opts):
        shape = p.shape(fan_ins[0], units)
        params[p.stem] = _symbols(p.stem, *shape) if len(shape) == 2 else _symbols(p.stem, 1, shape[0])
    aux = {name: _symbols("m", batch, units) for name in node.kind.aux}
    Y = node.kind.forward(inputs, params, opts, aux)
    G = _symbols("g", batch, Y.cols)
    return opts, inputs, params, aux, Y, G


def check_local(node: Node, fan_in: int, units: int, rng: random.Random) -> list[str]:
    """Compact backward vs sympy.diff of the forward, at random rational points; problems as text."""
    problems: list[str] = []
    fan_ins = (fan_in,) * node.kind.inputs
    batch = BATCH if node.kind.batch_coupled else 2
    opts, inputs, params, aux, Y, G = local_problem(node, fan_ins, units, batch)
    L = sp.Add(*(G[i] * Y[i] for i in range(len(Y))))
    (dxs, dps) = node.kind.backward(G, inputs, params, opts, aux)
    pairs = []
    for X, dX in zip(inputs, dxs):
        pairs += [(sp.diff(L, X[i]), dX[i], f"dE/d{X[i]}") for i in range(len(X))]
    for stem, P in params.items():
        pairs += [(sp.diff(L, P[i]), dps[stem][i], f"dE/d{P[i]}") for i in range(len(P))]
    if node.kind.name == "batchnorm":
        from ..registry.layers.batchnorm import per_path

        dx_paths = per_path(G, inputs, params, opts)[3]
        pairs += [(dxs[0][i], dx_paths[i], f"per-path dE/d{inputs[0][i]}") for i in range(len(dx_paths))]
    free = set().union(*(a.free_symbols | b.free_symbols for a, b, _ in pairs))
    gammas = {s for s in free if s.name.startswith("gamma")}
    for _ in range(2):
        point = _point(sorted(free, key=lambda s: s.name), rng, positive=gammas)
        for a, b, what in pairs:
            diff = (a - b).xreplace(point).evalf(DIGITS)
            if not diff.is_number or abs(diff) > sp.Float(10) ** (-(DIGITS - 10)):
                problems.append(f"layer {node.index} ({node.kind.name}): {what} differs from SymPy's derivative")
                return problems
    problems += _check_numpy(node, opts, inputs, params, aux, Y, G, dxs, dps, rng)
    return problems


def _check_numpy(node, opts, inputs, params, aux, Y, G, dxs, dps, rng) -> list[str]:
    """The NumPy functions (copied into generated code) against the SymPy forward and backward."""
    symbols = set(G) | set().union(*(set(X) for X in inputs), *(set(P) for P in params.values()),
                                   *(set(M) for M in aux.values()))
    point = _point(sorted(symbols, key=lambda s: s.name), rng,
                   positive={s for s in symbols if s.name.startswith("gamma")})

    def num(M):
        return np.array(M.xreplace(point).evalf(), dtype=float)

    nopts = dict(node.opts)
    if "epsilon" in nopts:
        nopts["epsilon"] = 0.01
    if "rate" in nopts:
        nopts["rate"] = 0.25
    p_np = {k: (num(v) if v.rows > 1 else num(v).ravel()) for k, v in params.items()}
    if node.kind.name == "dense":
        p_np["W"] = num(params["W"])
    aux_np = {k: num(v) for k, v in aux.items()} or None
    y, cache = node.kind.numpy_forward([num(X) for X in inputs], p_np, nopts, aux_np)
    (gx, gp) = node.kind.numpy_backward(num(G), cache, p_np, nopts)
    out = []
    if not np.allclose(y, num(Y), rtol=1e-12, atol=1e-12):
        out.append(f"layer {node.index} ({node.kind.name}): the NumPy forward differs from the SymPy definition")
    for a, b in zip(gx, dxs):
        if not np.allclose(a, num(b), rtol=1e-10, atol=1e-12):
            out.append(f"layer {node.index} ({node.kind.name}): the NumPy backward differs from the compact form")
    for stem, b in dps.items():
        if not np.allclose(np.ravel(gp[stem]), np.ravel(num(b)), rtol=1e-10, atol=1e-12):
            out.append(f"layer {node.index} ({node.kind.name}): the NumPy d{stem} differs from the compact form")
    return out


def _local_configs(net) -> list[tuple[Node, int, int]]:
    """One (node, fan-in, units) per distinct layer configuration and width pair."""
    seen, out = set(), []
    for node in net.nodes:
        key = (node.kind.name, tuple((k, repr(v)) for k, v in node.options if k != "units"))
        if key in seen:
            continue
        seen.add(key)
        # columns of batch norm, dropout and residual never interact: one width shows every case
        widths = LOCAL_WIDTHS if node.kind.name in ("dense", "layernorm") else LOCAL_WIDTHS[:1]
        for w in widths:
            out.append((node, 2 if node.kind.name == "dense" else w, w))
    return out


def closed_form_gradients(d: LayerDerivation, params, X, T, aux) -> dict[str, np.ndarray]:
    """Every dE/dθ by sympy.diff of E built in SymPy from the layers' forward definitions."""
    net = d.network
    B = X.shape[0]
    sym = {p.name: d.parameter_symbols(p.name) for p in d.parameters}
    outs = [sp.Matrix(X.tolist()).applyfunc(sp.Float)]
    for node in net.nodes:
        ps = {}
        for p in node.params:
            name = node.param_name(p)
            shape = next(q.shape for q in d.parameters if q.name == name)
            ps[p.stem] = sp.Matrix(*shape, sym[name]) if len(shape) == 2 else sp.Matrix(1, shape[0], sym[name])
        node_aux = {k: sp.Matrix(v.tolist()) for k, v in (aux.get(node.index) or {}).items()}
        outs.append(node.kind.forward([outs[i] for i in node.inputs], ps, node.opts, node_aux))
    A = outs[-1]
    E = sp.Add(*(net.loss(list(A[b, :]), [sp.Float(v) for v in T[b]]) for b in range(B))) / B
    if net.l2:
        E += sp.Float(net.l2) / 2 * sp.Add(*(s ** 2 for p in d.parameters if p.param.decay for s in sym[p.name]))
    values = {s: sp.Float(float(v)) for p in d.parameters for s, v in zip(sym[p.name], params[p.name].ravel())}
    return {p.name: np.array([float(sp.diff(E, s).xreplace(values).evalf(30)) for s in sym[p.name]]).reshape(p.shape)
            for p in d.parameters}


def verify(d: LayerDerivation, seed: int = 0, mode: str = "auto", progress=None) -> Verification:
    """Run the tiers of ``mode`` and return the report (deterministic for a spec and seed)."""
    start = time.perf_counter()
    net = d.network
    report = Verification(parameters=net.parameter_count, mode=mode)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    params = d.init_params(seed, spread=True)
    if mode in ("auto", "full"):
        if progress:
            progress("local")
        configs = _local_configs(net)
        problems = []
        for node, fan_in, units in configs:
            problems += check_local(node, fan_in, units, rng)
        kinds = sorted({n.kind.name for n in net.nodes})
        report.tiers.append(Tier(
            "local", "sympy.diff of each layer's forward definition vs its compact backward "
            "(and the NumPy code), at random rational points to 50 digits",
            covered=f"{len(configs)} layer configurations ({', '.join(kinds)}) at widths 2 and 3, "
            f"on a batch of {BATCH} where samples interact (else 2)"
            + ("; batch normalization's per-path form too" if "batchnorm" in kinds else ""),
            checked=len(configs), equal=len(configs) - len({p.split(':')[0] for p in problems})))
        report.failures += problems
        if progress:
            progress("closed form")
        small = net.parameter_count <= CLOSED_PARAMETER_LIMIT
        if small or mode == "full":
            Xc = nrng.normal(size=(2, net.inputs))
            Tc = _targets(net, 2, nrng)
            auxc = d.masks(2, seed)
            closed = closed_form_gradients(d, params, Xc, Tc, auxc)
            derived = d.gradients(params, Xc, Tc, auxc)
            bad = [k for k in closed if not np.allclose(derived[k], closed[k], rtol=1e-9, atol=1e-11)]
            report.failures += [f"{k}: differs from sympy.diff of the closed-form E" for k in bad]
            report.tiers.append(Tier("closed form", "sympy.diff of E built from every layer's definition, "
                                     "at a random point on a batch of 2",
                                     covered=f"all {len(closed)} tensors ({net.parameter_count} parameters)",
                                     checked=len(closed), equal=len(closed) - len(bad)))
        else:
            report.tiers.append(Tier("closed form", "sympy.diff of the closed-form E", run=False,
                                     not_covered=f"the net has {net.parameter_count} parameters, more than "
                                     f"{CLOSED_PARAMETER_LIMIT} (--verify full forces it)"))
    if progress:
        progress("numeric")
    X = nrng.normal(size=(BATCH, net.inputs))
    T = _targets(net, BATCH, nrng)
    aux = d.masks(BATCH, seed)
    grads = d.gradients(params, X, T, aux)
    checked = equal = 0
    for p in d.parameters:
        flat = list(np.ndindex(*p.shape))
        take = flat if len(flat) <= 8 else [flat[i] for i in nrng.choice(len(flat), 8, replace=False)]
        for ix in take[: max(2, FD_SAMPLE // len(d.parameters))]:
            hi = {k: v.copy() for k, v in params.items()}
            lo = {k: v.copy() for k, v in params.items()}
            hi[p.name][ix] += STEP
            lo[p.name][ix] -= STEP
            fd = (d.loss_value(hi, X, T, aux) - d.loss_value(lo, X, T, aux)) / (2 * STEP)
            g = grads[p.name][ix]
            err = abs(g - fd)
            checked += 1
            ok = bool(err <= 1e-7 + 1e-5 * abs(fd) and np.isfinite(g))
            equal += ok
            report.max_abs_error = max(report.max_abs_error, float(err))
            if not ok:
                report.failures.append(f"{p.name}{list(ix)}: derived {g:.6g}, finite difference {fd:.6g}")
    report.numeric_points = 1
    report.numeric_per_parameter = checked
    report.rule = "|derived - finite difference| <= 1e-07 + 1e-05 * |finite difference| (central, step 1e-6)"
    report.tiers.append(Tier("numeric", "central finite differences of the forward pass",
                             covered=f"{checked} parameter entries of all {len(d.parameters)} tensors, "
                             f"batch {BATCH}" + (", fixed dropout masks" if aux else ""),
                             checked=checked, equal=equal))
    report.seconds = time.perf_counter() - start
    return report


def _targets(net, batch: int, rng) -> np.ndarray:
    kind = net.loss.target_kind
    m = net.output.units
    if kind == "simplex":
        return np.eye(m)[rng.integers(0, m, batch)]
    if kind == "unit":
        return rng.uniform(0.05, 0.95, (batch, m))
    return rng.normal(size=(batch, m))
