"""Backpropagation through a graph of layers, over a batch.

The network is a directed acyclic graph of registry layers (:mod:`symbackprop.registry.layers`).
The loss is the batch mean ``E = 1/B sum_b loss(a_b, t_b)`` plus the weight decay
``lambda/2 sum W^2``.  Backpropagation visits the layers in reverse order and
hands each one ``G = dE/dY``, the sum of what every layer that reads it sends
back: the chain rule summed over every path, so a residual connection is just
a second reader.  Each layer's local step is its registry entry's compact
backward, which :mod:`symbackprop.engine.layerverify` proves equal to SymPy's
derivative of the entry's forward definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import sympy as sp

from ..spec.graph import GraphNetwork, Node


@dataclass(frozen=True)
class ParamInfo:
    """One parameter tensor: ``name`` (``W1``, ``gamma2``), its layer, registry entry and shape."""

    name: str
    node: Node
    param: object
    shape: tuple[int, ...]


class BackwardPass(NamedTuple):
    """One forward and backward visit: ``outs[l]`` (0 is X), ``caches[l]``, ``G[l] = dE/dY^{(l)}``, ``grads``;
    ``sent[(l, r)]`` is the part of ``G[l]`` that layer ``r`` sends back (``G[l]`` is their sum)."""

    outs: list
    caches: list
    G: dict
    grads: dict
    sent: dict


def loss_functions(net: GraphNetwork):
    """NumPy ``(loss(A, T) per sample, dloss/dA)`` printed from the registry loss by SymPy."""
    m = net.output.units
    a = sp.symbols(f"a_1:{m + 1}", real=True)
    t = sp.symbols(f"t_1:{m + 1}", real=True)
    per_sample = net.loss(list(a), list(t))
    f = sp.lambdify([a, t], per_sample, "numpy")
    grads = [sp.lambdify([a, t], sp.diff(per_sample, ak), "numpy") for ak in a]

    def loss(A, T):
        return np.broadcast_to(f(A.T, T.T), (A.shape[0],)).astype(float)

    def dloss(A, T):
        return np.stack([np.broadcast_to(g(A.T, T.T), (A.shape[0],)) for g in grads], axis=1).astype(float)

    return loss, dloss


class LayerDerivation:
    """Backpropagation of a :class:`GraphNetwork`: gradients of every parameter over a batch."""

    def __init__(self, network: GraphNetwork):
        self.network = network
        self.verification = None

    @cached_property
    def parameters(self) -> list[ParamInfo]:
        """W1, b1, gamma2, beta2, ... in layer order."""
        return [ParamInfo(name, node, p, shape) for name, node, p, shape in self.network.parameter_shapes()]

    @cached_property
    def _loss(self):
        return loss_functions(self.network)

    # ------------------------------------------------------------------ values

    def init_params(self, seed: int = 0, spread: bool = False) -> dict[str, np.ndarray]:
        """Initial values (Glorot weights, ones for scales, zeros for shifts); ``spread`` draws every one at random."""
        rng = np.random.default_rng(seed)
        out = {}
        for p in self.parameters:
            if spread:
                base = {"ones": 1.0}.get(p.param.init, 0.0)
                out[p.name] = base + rng.uniform(-0.5, 0.5, p.shape) if p.param.init != "glorot" else \
                    rng.normal(0, 1 / np.sqrt(p.shape[-1]), p.shape)
            elif p.param.init == "glorot":
                fan_out, fan_in = p.shape
                out[p.name] = rng.normal(0, np.sqrt(2 / (fan_in + fan_out)), p.shape)
            else:
                out[p.name] = np.full(p.shape, 1.0 if p.param.init == "ones" else 0.0)
        return out

    def masks(self, batch: int, seed: int = 0) -> dict[int, dict[str, np.ndarray]]:
        """A fixed 0/1 dropout mask per dropout layer (at least one unit kept per sample)."""
        rng = np.random.default_rng(seed + 7)
        out = {}
        for n in self.network.nodes:
            if "mask" in n.kind.aux:
                m = (rng.random((batch, n.units)) >= n.opts["rate"]).astype(float)
                m[:, 0] = 1.0
                out[n.index] = {"mask": m}
        return out

    def _node_params(self, node: Node, params) -> dict[str, np.ndarray]:
        return {p.stem: params[node.param_name(p)] for p in node.params}

    def forward(self, params, X, aux=None):
        """Every layer's output (index 0 is X) and the caches its backward step needs."""
        aux = aux or {}
        outs, caches = [np.asarray(X, dtype=float)], [None]
        for node in self.network.nodes:
            y, cache = node.kind.numpy_forward([outs[i] for i in node.inputs], self._node_params(node, params),
                                               node.opts, aux.get(node.index))
            outs.append(y)
            caches.append(cache)
        return outs, caches

    def loss_value(self, params, X, T, aux=None) -> float:
        """E = batch mean of the per-sample loss + lambda/2 sum of squared weights."""
        outs, _ = self.forward(params, X, aux)
        E = float(np.mean(self._loss[0](outs[-1], np.asarray(T, dtype=float))))
        return E + self.decay_value(params)

    def decay_value(self, params) -> float:
        lam = self.network.l2
        return 0.5 * lam * sum(float(np.sum(params[p.name] ** 2)) for p in self.parameters if p.param.decay)

    def backward_pass(self, params, X, T, aux=None) -> BackwardPass:
        """The reverse visit: every layer's output and cache, its upstream gradient G = dE/dY (the
        sum of what every layer that reads it sends back) and dE/dθ for every parameter."""
        outs, caches = self.forward(params, X, aux)
        B = outs[0].shape[0]
        upstream = {self.network.depth: self._loss[1](outs[-1], np.asarray(T, dtype=float)) / B}
        G: dict[int, np.ndarray] = {}
        sent: dict[tuple[int, int], np.ndarray] = {}
        grads: dict[str, np.ndarray] = {}
        for node in reversed(self.network.nodes):
            g = G[node.index] = upstream.pop(node.index)
            ins, pg = node.kind.numpy_backward(g, caches[node.index], self._node_params(node, params), node.opts)
            for src, gi in zip(node.inputs, ins):
                sent[(src, node.index)] = gi
                upstream[src] = upstream[src] + gi if src in upstream else gi
            for p in node.params:
                name = node.param_name(p)
                grads[name] = pg[p.stem] + (self.network.l2 * params[name] if p.decay else 0.0)
        return BackwardPass(outs, caches, G, {p.name: grads[p.name] for p in self.parameters}, sent)

    def gradients(self, params, X, T, aux=None) -> dict[str, np.ndarray]:
        """dE/dθ for every parameter: reverse visit, the upstream gradients of every reader summed."""
        return self.backward_pass(params, X, T, aux).grads

    # ------------------------------------------------------------------ symbols

    def parameter_symbols(self, name: str) -> list[sp.Symbol]:
        """Canonical scalar names of one tensor, row-major: ``W1_j_k``, ``gamma2_j`` (1-based)."""
        info = next(p for p in self.parameters if p.name == name)
        idx = np.ndindex(*info.shape)
        return [sp.Symbol(f"{name}_" + "_".join(str(i + 1) for i in ix), real=True) for ix in idx]

    def __repr__(self) -> str:
        v = "" if self.verification is None else f", {self.verification.headline()}"
        return f"<LayerDerivation {self.network.name} {self.network.architecture}{v}>"
