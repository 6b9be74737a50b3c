"""The concrete symbolic forward graph, one SymPy symbol per neuron.

Canonical names (1-based, relied on by other tools)::

    x_1..x_n      inputs             t_1..t_m   targets
    W{l}_{j}_{k}  weight, unit k of layer l-1 -> unit j of layer l (layer 0 = inputs)
    b{l}_{j}      bias               z{l}_{j}, a{l}_{j}  pre-activation, activation

``z{l}_{j} = sum_k W{l}_{j}_{k} a{l-1}_{k} + b{l}_{j}``, ``a{l}_{j} = f_l(z{l}_{j})``
and ``E = loss(a{L}, t)``.  The closed form (E in inputs, targets and
parameters only) is built lazily: it is only practical for small nets.
"""

from __future__ import annotations

from functools import cached_property

import sympy as sp

from ..spec import Network


def symbol(name: str) -> sp.Symbol:
    """A graph symbol by canonical name (all graph symbols are real)."""
    return sp.Symbol(name, real=True)


def weight_name(l: int, j: int, k: int) -> str:
    return f"W{l}_{j}_{k}"


def bias_name(l: int, j: int) -> str:
    return f"b{l}_{j}"


def softmax_at(zs: list[sp.Expr], j: int) -> sp.Expr:
    """softmax_j(z) = exp(z_j) / sum_k exp(z_k)."""
    return sp.exp(zs[j]) / sp.Add(*(sp.exp(z) for z in zs))


class ForwardGraph:
    """Symbols and per-neuron definitions of one network.

    Lists are indexed by layer ``l = 0..L`` (index 0 of ``z``, ``W`` and ``b`` is
    unused) and then 0-based by unit: ``z[l][j-1]`` is the symbol ``z{l}_{j}``.
    """

    def __init__(self, network: Network):
        self.network = network
        sizes = network.sizes
        self.L = network.depth
        self.x = [symbol(f"x_{k}") for k in range(1, sizes[0] + 1)]
        self.t = [symbol(f"t_{k}") for k in range(1, sizes[-1] + 1)]
        self.W: list[list[list[sp.Symbol]]] = [[]]
        self.b: list[list[sp.Symbol] | None] = [None]
        self.z: list[list[sp.Symbol]] = [[]]
        self.a: list[list[sp.Symbol]] = [self.x]
        self.a_def: list[list[sp.Expr]] = [[]]
        self.parameters: list[sp.Symbol] = []
        for l in range(1, self.L + 1):
            self._add_layer(l, sizes[l - 1], sizes[l])
        self.loss_def: sp.Expr = network.loss(self.a[self.L], self.t)

    def _add_layer(self, l: int, fan_in: int, units: int) -> None:
        layer = self.network.layers[l - 1]
        W = [[symbol(weight_name(l, j, k)) for k in range(1, fan_in + 1)] for j in range(1, units + 1)]
        b = [symbol(bias_name(l, j)) for j in range(1, units + 1)] if layer.bias else None
        z = [symbol(f"z{l}_{j}") for j in range(1, units + 1)]
        act = layer.activation
        if act.vector:
            a_def = [softmax_at(z, j) for j in range(units)]
        else:
            a_def = [act.at(zj) for zj in z]
        self.W.append(W)
        self.b.append(b)
        self.z.append(z)
        self.a.append([symbol(f"a{l}_{j}") for j in range(1, units + 1)])
        self.a_def.append(a_def)
        for row in W:
            self.parameters.extend(row)
        if b is not None:
            self.parameters.extend(b)

    @cached_property
    def z_def(self) -> list[list[sp.Expr]]:
        """``z{l}_{j} = sum_k W{l}_{j}_{k} a{l-1}_{k} + b{l}_{j}`` (built on first use)."""
        out: list[list[sp.Expr]] = [[]]
        for l in range(1, self.L + 1):
            b, prev = self.b[l], self.a[l - 1]
            out.append([sp.Add(*(w * a for w, a in zip(row, prev)), *([b[j]] if b else []))
                        for j, row in enumerate(self.W[l])])
        return out

    # ------------------------------------------------------------------ helpers

    def layer_of(self, p: sp.Symbol) -> tuple[int, int, int | None]:
        """``(l, j, k)`` of a parameter (1-based ``j``, ``k``; ``k`` is None for a bias)."""
        parts = p.name[1:].split("_")
        return (int(parts[0]), int(parts[1]), int(parts[2]) if p.name[0] == "W" else None)

    # ------------------------------------------------------------------ closed form

    @cached_property
    def closed_activations(self) -> list[list[sp.Expr]]:
        """a^{(l)} as expressions in inputs and parameters only."""
        closed = [list(self.x)]
        for l in range(1, self.L + 1):
            sub = dict(zip(self.a[l - 1], closed[l - 1]))
            zc = [zd.xreplace(sub) for zd in self.z_def[l]]
            closed.append([ad.xreplace(dict(zip(self.z[l], zc))) for ad in self.a_def[l]])
        return closed

    @cached_property
    def closed_loss(self) -> sp.Expr:
        """E in inputs, targets and parameters only."""
        return self.loss_def.xreplace(dict(zip(self.a[self.L], self.closed_activations[self.L])))

    def closed_substitution(self) -> dict[sp.Symbol, sp.Expr]:
        """Every z and a symbol mapped to its closed form."""
        sub: dict[sp.Symbol, sp.Expr] = {}
        for l in range(1, self.L + 1):
            prev = dict(zip(self.a[l - 1], self.closed_activations[l - 1])) if l > 1 else {}
            for zs, zd in zip(self.z[l], self.z_def[l]):
                sub[zs] = zd.xreplace(prev)
            sub.update(zip(self.a[l], self.closed_activations[l]))
        return sub
