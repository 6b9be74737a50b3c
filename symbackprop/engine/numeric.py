"""Numeric evaluation of a network and of its derivation, with NumPy.

``NumericNetwork`` evaluates the forward pass and loss straight from the
network definition (the registry's SymPy activation and loss, turned into
NumPy functions); it knows nothing of derivatives, which makes it the reference
for finite differences.  ``evaluate_gradients`` evaluates what the derivation
derived: the per-unit deltas and the per-layer local-derivative templates.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from ..registry import ops
from ..spec import Network
from . import general
from .derive import Derivation

Params = dict[str, np.ndarray]


def _lambdify(args, expr):
    return sp.lambdify(args, expr, modules="numpy", cse=False, docstring_limit=0)


class NumericNetwork:
    """Forward pass and per-sample loss of a network, for one sample at a time."""

    def __init__(self, network: Network):
        self.network = network
        self._acts = [None if layer.activation.vector else _lambdify([ops.X], layer.activation.expr)
                      for layer in network.layers]
        m = network.sizes[-1]
        a = sp.symbols(f"a:{m}", real=True)
        t = sp.symbols(f"t:{m}", real=True)
        self._loss = _lambdify([a, t], network.loss(a, t))

    def shapes(self) -> dict[str, tuple[int, ...]]:
        sizes, out = self.network.sizes, {}
        for l, layer in enumerate(self.network.layers, start=1):
            out[f"W{l}"] = (sizes[l], sizes[l - 1])
            if layer.bias:
                out[f"b{l}"] = (sizes[l],)
        return out

    def forward(self, params: Params, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Pre-activations ``zs[l]`` and activations ``acts[l]`` (``acts[0] = x``)."""
        acts, zs = [np.asarray(x, dtype=float)], [np.empty(0)]
        for l, layer in enumerate(self.network.layers, start=1):
            z = params[f"W{l}"] @ acts[-1]
            if layer.bias:
                z = z + params[f"b{l}"]
            if self._acts[l - 1] is None:
                e = np.exp(z - z.max())
                a = e / e.sum()
            else:
                a = np.broadcast_to(np.asarray(self._acts[l - 1](z), dtype=float), z.shape)
            zs.append(z)
            acts.append(a)
        return zs, acts

    def loss(self, params: Params, x: np.ndarray, t: np.ndarray) -> float:
        _, acts = self.forward(params, x)
        return float(self._loss(list(acts[-1]), list(t)))

    # --------------------------------------------------------------- flat vectors

    def flatten(self, params: Params) -> np.ndarray:
        """Parameters in ``Derivation.parameters`` order (W1 row-major, b1, W2, ...)."""
        return np.concatenate([params[k].ravel() for k in self.shapes()])

    def unflatten(self, vector: np.ndarray) -> Params:
        out, start = {}, 0
        for key, shape in self.shapes().items():
            n = int(np.prod(shape))
            out[key] = vector[start:start + n].reshape(shape)
            start += n
        return out

    def random_point(self, rng: np.random.Generator) -> tuple[Params, np.ndarray, np.ndarray]:
        """Parameters, one input and one target drawn at random (targets fit the loss)."""
        params = {}
        for key, shape in self.shapes().items():
            scale = 1.5 / np.sqrt(shape[1]) if key.startswith("W") else 0.5
            params[key] = rng.normal(0.0, scale, size=shape)
        x = rng.normal(0.0, 1.0, size=self.network.inputs)
        m, kind = self.network.sizes[-1], self.network.loss.target_kind
        if kind == "simplex":
            t = rng.dirichlet(np.ones(m))
        elif kind == "unit":
            t = rng.uniform(0.05, 0.95, size=m)
        else:
            t = rng.normal(0.0, 1.0, size=m)
        return params, x, t


def _padded(values: np.ndarray) -> np.ndarray:
    """Prepend NaN along every axis so that 1-based template indices address the values."""
    return np.pad(np.asarray(values, dtype=float), [(1, 0)] * np.ndim(values), constant_values=np.nan)


class DerivedGradients:
    """Evaluates what a derivation derived, numerically and vectorized over units.

    Deltas come from each layer's index-form template (``Derivation.layer_delta``'s
    source, with its sums kept) evaluated at every unit ``j`` at once; the weight
    and bias gradients from the local-derivative templates times the deltas.
    """

    def __init__(self, derivation: Derivation):
        self.d = derivation
        self.numeric = NumericNetwork(derivation.network)
        self._delta_fns = {}
        for l in range(derivation.L, 0, -1):
            template = derivation.general.layers[l].delta.subs(derivation.sizes)
            bases = sorted({e.base for e in template.atoms(sp.Indexed)}, key=str)
            self._delta_fns[l] = ([str(b.label) for b in bases], _lambdify([*bases, general.J], template))
        self._local_fns = {}
        for l in range(1, derivation.L + 1):
            form = derivation.general.layers[l]
            prev = general.base("a", l - 1)
            self._local_fns[l] = (_lambdify([prev, general.J, general.K], form.dz_dW),
                                  None if form.dz_db is None else _lambdify([general.J], form.dz_db))

    def deltas(self, params: Params, x: np.ndarray, t: np.ndarray) -> tuple[dict[int, np.ndarray], list]:
        zs, acts = self.numeric.forward(params, x)
        arrays = {"x": _padded(x), "t": _padded(t)}
        for l in range(1, self.d.L + 1):
            arrays.update({f"a{l}": _padded(acts[l]), f"z{l}": _padded(zs[l]), f"W{l}": _padded(params[f"W{l}"])})
        deltas: dict[int, np.ndarray] = {}
        for l in range(self.d.L, 0, -1):
            names, fn = self._delta_fns[l]
            units = self.d.network.sizes[l]
            value = fn(*(arrays[name] for name in names), np.arange(1, units + 1))
            deltas[l] = np.broadcast_to(np.asarray(value, dtype=float), (units,)).copy()
            arrays[f"delta{l}"] = _padded(deltas[l])
        return deltas, acts

    def gradients(self, params: Params, x: np.ndarray, t: np.ndarray) -> Params:
        """dE/dp for every parameter, shaped like ``params``."""
        deltas, acts = self.deltas(params, x, t)
        grads: Params = {}
        for l in range(1, self.d.L + 1):
            units, fan_in = self.d.network.sizes[l], self.d.network.sizes[l - 1]
            w_local, b_local = self._local_fns[l]
            jj = np.arange(1, units + 1)[:, None]
            kk = np.arange(1, fan_in + 1)[None, :]
            local = np.broadcast_to(np.asarray(w_local(_padded(acts[l - 1]), jj, kk), dtype=float), (units, fan_in))
            grads[f"W{l}"] = deltas[l][:, None] * local
            if b_local is not None:
                grads[f"b{l}"] = deltas[l] * np.broadcast_to(np.asarray(b_local(jj[:, 0]), dtype=float), (units,))
        return grads
