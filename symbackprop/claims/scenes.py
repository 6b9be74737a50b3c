"""The truth for claims about a layer kind: a small concrete instance ("scene") built from the registry.

A scene is one layer at one size (the batch size ``m`` of a batch norm, the width of a layer
norm or a dropout): the kind's SymPy ``forward`` from the registry on a column of symbols
``x_1..x_m`` (one unit of a batch norm; one sample of a layer norm), the upstream gradient
``g_i = \\partial \\ell/\\partial y_i`` free, and ``\\ell = \\sum_i g_i y_i``.  Derivatives of
``\\ell`` with respect to the layer's inputs and parameters are ``sp.diff`` of the registry's
forward.  The intermediate nodes a derivation names (``\\mu_B``, ``\\sigma_B^2``, ``\\hat x_i``)
are the paper's staged forward definitions; the scene checks that they compose to the registry's
forward and that their reverse sweep gives the registry's ``\\partial \\ell/\\partial x_i``, so an
adjoint such as ``\\partial \\ell/\\partial \\sigma_B^2`` (x and ``\\mu_B`` held fixed, as in the
paper's graph) is ``sp.diff`` on a graph that agrees with the registry.

Values are drawn at random points (epsilon and the dropout rate too: the equations hold for
every value, so a dropped epsilon is caught); every value is computed once per point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

from ..registry.layers import KINDS

SIZES = (3, 4)
POINTS = 4
LOSS_NAMES = {"ell", "E", "L", "C", "J", "Loss", "Cost"}

Key = tuple[str, Any]


class SceneError(RuntimeError):
    """The staged graph disagrees with the registry (a bug, never the user's)."""


@dataclass
class Scene:
    """One layer kind at one size: symbols by key, staged definitions, adjoints and random points."""

    kind: str
    size: int
    symbols: dict[Key, sp.Symbol]
    defs: dict[sp.Symbol, sp.Expr]
    composed: dict[sp.Symbol, sp.Expr]
    adjoints: dict[str, dict[Key, sp.Expr]]
    base: list[dict[sp.Symbol, float]]
    _cache: list[dict] = field(default_factory=list)

    @property
    def points(self) -> int:
        return len(self.base)

    def value(self, point: int, key: Key, d: tuple | None = None) -> float:
        """The value of ``key`` (d None), of ``d/dkey`` of the loss (``("adj", "loss")``), or
        of the local partial ``d num/d key`` (``("local", num_key)``) at ``point``."""
        if not self._cache:
            self._cache = [{} for _ in self.base]
        cache = self._cache[point]
        if (key, d) not in cache:
            cache[(key, d)] = _number(self.expr(key, d).xreplace(self.base[point]))
        return cache[(key, d)]

    def expr(self, key: Key, d: tuple | None = None) -> sp.Expr:
        from .layers import CannotRead

        if key not in self.symbols:
            raise CannotRead(f"{key[0]} is not a quantity of this layer")
        sym = self.symbols[key]
        if d is None:
            return self.composed[sym]
        if d[0] == "adj":
            if key not in self.adjoints.get(d[1], {}):
                raise CannotRead(f"the derivative of the loss with respect to {key[0]} is not defined here")
            return self.adjoints[d[1]][key]
        if d[1] not in self.symbols:
            raise CannotRead(f"{d[1][0]} is not a quantity of this layer")
        num = self.symbols[d[1]]
        if num in self.defs and sym in self.defs[num].free_symbols:  # the local partial of the definition
            return sp.diff(self.defs[num], sym).xreplace(self.composed)
        if num in self.defs and sym not in self.defs:  # an input: the total derivative of the composition
            return sp.diff(self.composed[num], sym)
        raise CannotRead(f"{key[0]} is not an argument of the definition of {d[1][0]}")

    def describe(self, point: int) -> dict[str, float]:
        """The random point in words: the base symbols' values."""
        return {str(s): float(f"{v:.6g}") for s, v in self.base[point].items()}


def _number(value) -> float:
    try:
        out = complex(value)
    except (TypeError, ValueError):
        return float("nan")
    return out.real if abs(out.imag) < 1e-12 else float("nan")


def _reverse(stages: list[tuple[sp.Symbol, sp.Expr]], seeds: dict[sp.Symbol, sp.Expr]) -> dict[sp.Symbol, sp.Expr]:
    """Adjoints by a reverse sweep over the staged definitions (each stage uses earlier symbols only)."""
    adj: dict[sp.Symbol, sp.Expr] = dict(seeds)
    for sym, definition in reversed(stages):
        a = adj.get(sym, sp.Integer(0))
        for u in definition.free_symbols:
            adj[u] = adj.get(u, sp.Integer(0)) + a * sp.diff(definition, u)
    return adj


def _compose(stages: list[tuple[sp.Symbol, sp.Expr]]) -> dict[sp.Symbol, sp.Expr]:
    out: dict[sp.Symbol, sp.Expr] = {}
    for sym, definition in stages:
        out[sym] = definition.xreplace(out)
    return out


def _agree(a: sp.Expr, b: sp.Expr, points: list[dict]) -> bool:
    return all(abs(_number(a.xreplace(p)) - _number(b.xreplace(p))) <= 1e-9 * (1 + abs(_number(b.xreplace(p))))
               for p in points)


def _normalization(kind: str, n: int, rng: np.random.Generator) -> Scene:
    """Batch norm (one unit, m = n samples) or layer norm (one sample, n units): the staged graph
    mu -> sigma^2 -> xhat -> y, checked against the registry's forward."""
    x = sp.symbols(f"x_1:{n + 1}")
    g = sp.symbols(f"g_1:{n + 1}")
    eps = sp.Symbol("epsilon", positive=True)
    per_unit = kind == "layernorm"
    gamma = sp.symbols(f"gamma_1:{n + 1}") if per_unit else (sp.Symbol("gamma"),)
    beta = sp.symbols(f"beta_1:{n + 1}") if per_unit else (sp.Symbol("beta"),)
    X = sp.Matrix(1, n, list(x)) if per_unit else sp.Matrix(n, 1, list(x))
    y_reg = KINDS[kind].forward([X], {"gamma": sp.Matrix(list(gamma)), "beta": sp.Matrix(list(beta))},
                                {"epsilon": eps})
    y_reg = list(y_reg)
    mu, var = sp.Symbol("mu_B"), sp.Symbol("sigma2_B")
    xh = sp.symbols(f"xhat_1:{n + 1}")
    ys = sp.symbols(f"y_1:{n + 1}")
    gam = (lambda i: gamma[i]) if per_unit else (lambda i: gamma[0])
    bet = (lambda i: beta[i]) if per_unit else (lambda i: beta[0])
    stages = [(mu, sp.Add(*x) / n), (var, sp.Add(*((xi - mu) ** 2 for xi in x)) / n)]
    stages += [(xh[i], (x[i] - mu) / sp.sqrt(var + eps)) for i in range(n)]
    stages += [(ys[i], gam(i) * xh[i] + bet(i)) for i in range(n)]
    composed = _compose(stages)
    for s in (*x, *g, *gamma, *beta, eps):
        composed[s] = s
    adj = _reverse(stages, {ys[i]: g[i] for i in range(n)})
    loss = sp.Add(*(g[i] * y_reg[i] for i in range(n)))
    base = []
    for _ in range(POINTS):
        p = {s: float(v) for s, v in zip(x, rng.normal(0.3, 1.2, n))}
        p.update({s: float(v) for s, v in zip(g, rng.normal(0, 1, n))})
        p.update({s: float(v) for s, v in zip(gamma, rng.uniform(0.5, 2.0, len(gamma)))})
        p.update({s: float(v) for s, v in zip(beta, rng.normal(0, 1, len(beta)))})
        p[eps] = float(rng.uniform(0.05, 0.5))
        base.append(p)
    for i in range(n):
        if not _agree(composed[ys[i]], y_reg[i], base):
            raise SceneError(f"{kind}: the staged forward disagrees with the registry's at y_{i + 1}")
        if not _agree(adj[x[i]].xreplace(composed), sp.diff(loss, x[i]), base):
            raise SceneError(f"{kind}: the staged backward disagrees with the registry's at x_{i + 1}")
    symbols: dict[Key, sp.Symbol] = {("mu", None): mu, ("var", None): var, ("eps", None): eps}
    std = sp.Symbol("sigma_B")
    symbols[("std", None)] = std
    composed[std] = sp.sqrt(composed[var])
    size = sp.Symbol("m")
    symbols[("size", None)] = size
    composed[size] = sp.Integer(n)
    for i in range(n):
        symbols[("x", i)], symbols[("xhat", i)], symbols[("y", i)] = x[i], xh[i], ys[i]
    truth: dict[Key, sp.Expr] = {}
    for i in range(n):
        truth[("x", i)] = sp.diff(loss, x[i])  # the registry's forward, differentiated
        truth[("xhat", i)] = adj[xh[i]].xreplace(composed)
        truth[("y", i)] = g[i]
    truth[("mu", None)] = adj[mu].xreplace(composed)
    truth[("var", None)] = adj[var].xreplace(composed)
    for name, syms in (("gamma", gamma), ("beta", beta)):
        for i, s in enumerate(syms):
            key = (name, i if per_unit else None)
            symbols[key] = s
            truth[key] = sp.diff(loss, s)
    defs = dict(stages)
    return Scene(kind, n, symbols, defs, composed, {"loss": truth}, base)


def _dropout(n: int, rng: np.random.Generator) -> Scene:
    """Inverted dropout on one sample of n units: y_i = x_i m_i / (1 - p) from the registry."""
    x, g, mask = sp.symbols(f"x_1:{n + 1}"), sp.symbols(f"g_1:{n + 1}"), sp.symbols(f"m_1:{n + 1}")
    p = sp.Symbol("p")
    y_reg = list(KINDS["dropout"].forward([sp.Matrix(1, n, list(x))], {}, {"rate": p},
                                          {"mask": sp.Matrix(1, n, list(mask))}))
    ys = sp.symbols(f"y_1:{n + 1}")
    defs = {ys[i]: y_reg[i] for i in range(n)}
    composed = {**defs, **{s: s for s in (*x, *g, *mask, p)}}
    loss = sp.Add(*(g[i] * y_reg[i] for i in range(n)))
    symbols: dict[Key, sp.Symbol] = {("p", None): p}
    truth: dict[Key, sp.Expr] = {}
    for i in range(n):
        symbols[("x", i)], symbols[("y", i)], symbols[("mask", i)] = x[i], ys[i], mask[i]
        truth[("x", i)], truth[("y", i)] = sp.diff(loss, x[i]), g[i]
    base = []
    for _ in range(POINTS):
        bits = rng.integers(0, 2, n)
        bits[0], bits[1] = 0, 1  # both a dropped and a kept unit at every point
        bits = rng.permutation(bits)
        pt = {s: float(v) for s, v in zip(x, rng.normal(0.3, 1.2, n))}
        pt.update({s: float(v) for s, v in zip(g, rng.normal(0, 1, n))})
        pt.update({s: float(b) for s, b in zip(mask, bits)})
        pt[p] = float(rng.uniform(0.1, 0.6))
        base.append(pt)
    return Scene("dropout", n, symbols, defs, composed, {"loss": truth}, base)


def _decay(n: int, rng: np.random.Generator, l2: float) -> Scene:
    """L2 weight decay on an n x n weight: E = E_0 + lambda/2 sum W^2 (the spec's regularization),
    with the data loss's gradient dE_0/dW free (E_0 stands in as sum D_k W_k)."""
    w = sp.symbols(f"w_1:{n * n + 1}")
    dd = sp.symbols(f"D_1:{n * n + 1}")
    lam, eta = sp.Symbol("lambda"), sp.Symbol("eta")
    data = sp.Add(*(a * b for a, b in zip(dd, w)))
    loss = data + lam / 2 * sp.Add(*(wk ** 2 for wk in w))
    symbols: dict[Key, sp.Symbol] = {("lambda", None): lam, ("eta", None): eta}
    adj: dict[str, dict[Key, sp.Expr]] = {"loss": {}, "data": {}}
    for k, wk in enumerate(w):
        symbols[("w", k)] = wk
        adj["loss"][("w", k)] = sp.diff(loss, wk)
        adj["data"][("w", k)] = sp.diff(data, wk)
    composed = {s: s for s in (*w, *dd, lam, eta)}
    base = []
    for _ in range(POINTS):
        pt = {s: float(v) for s, v in zip(w, rng.normal(0, 1, n * n))}
        pt.update({s: float(v) for s, v in zip(dd, rng.normal(0, 1, n * n))})
        pt[lam] = float(rng.uniform(0.05, 0.5)) if l2 else 0.0
        pt[eta] = float(rng.uniform(0.01, 0.5))
        base.append(pt)
    return Scene("decay", n, symbols, {}, composed, adj, base)


_BUILT: dict[tuple, Scene] = {}


def scenes_for(kind: str, network: Any = None, seed: int = 0) -> list[Scene]:
    """The scenes of ``kind`` at every size in :data:`SIZES` (cached; built from the registry)."""
    out = []
    for n in (SIZES if kind != "decay" else (2, 3)):
        key = (kind, n, seed)
        if key not in _BUILT:
            rng = np.random.default_rng([seed, n, len(kind)])
            if kind in ("batchnorm", "layernorm"):
                _BUILT[key] = _normalization(kind, n, rng)
            elif kind == "dropout":
                _BUILT[key] = _dropout(n, rng)
            else:
                _BUILT[key] = _decay(n, rng, 1.0)
        out.append(_BUILT[key])
    return out
