"""The symbols of a layer-graph document in one notation profile.

One place decides how every quantity of a :class:`~symbackprop.spec_graph.GraphNetwork`
is written, so the results, the per-kind derivations and the notation table agree:
layer ``l``'s output is the profile's activation letter with the layer mark
(``a^{(l)}``; layer 0 is the input ``x``), a dense layer's pre-activation is the
profile's pre-activation letter, the upstream gradient ``dE/da^{(l)}`` is ``g^{(l)}``
(``u^{(l)}`` in aima, where ``g`` is the activation function), ``dE/dz^{(l)}`` is the
profile's ``delta``.  Rows are samples (index ``i``, summed as ``b``), columns units
(``j``; ``k`` for the units of a layer's input).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..registry import ops
from ..spec.graph import GraphNetwork, Node
from .notation import Profile
from .notation import profile as notation_profile

BATCH = "B"
"""The batch-size symbol (the batch-normalization paper writes m)."""


@dataclass(frozen=True)
class Symbols:
    """LaTeX of each quantity of ``net`` in profile ``prof``."""

    net: GraphNetwork
    prof: Profile

    # ------------------------------------------------------------------ layer values

    @property
    def gsym(self) -> str:
        """The letter of an upstream gradient: ``g``, or ``u`` where ``g`` is the activation (aima)."""
        return "u" if self.prof.activation == "g" else "g"

    @property
    def E(self) -> str:
        return self.prof.loss

    @property
    def B(self) -> str:
        return BATCH

    def out(self, l: int) -> str:
        """Output of layer ``l`` (layer 0: the input)."""
        return self.prof.input if l == 0 else f"{self.prof.activation_value}^{{({l})}}"

    def pre(self, l: int) -> str:
        return f"{self.prof.preactivation}^{{({l})}}"

    def g(self, l: int, via: int | None = None) -> str:
        """``dE/d out(l)``; with ``via``, the part of it that arrives through layer ``via``."""
        mark = f"{l}" if via is None else rf"{l} \leftarrow {via}"
        return f"{self.gsym}^{{({mark})}}"

    def delta(self, l: int) -> str:
        return f"{self.prof.gradient_delta}^{{({l})}}"

    def n(self, l: int) -> str:
        return f"n_{{{l}}}"

    @property
    def target(self) -> str:
        return self.prof.target

    def batch(self, kind: str, l: int) -> str:
        """A whole batch as a matrix, in bold (rows are samples): ``\\mathbf{a}^{(l)}``, ``\\mathbf{X}``."""
        if kind == "a" and l == 0:
            stem = self.prof.input
            return rf"\mathbf{{{stem.upper() if len(stem) == 1 else stem}}}"
        stem = {"a": self.prof.activation_value, "z": self.prof.preactivation, "g": self.gsym,
                "delta": self.prof.gradient_delta}[kind]
        bold = rf"\boldsymbol{{{stem}}}" if stem.startswith("\\") else rf"\mathbf{{{stem}}}"
        return f"{bold}^{{({l})}}"

    # ------------------------------------------------------------------ parameters

    def weight(self, l: int, j: str = "j", k: str = "k") -> str:
        """One weight of dense layer ``l`` from unit ``k`` of its input to unit ``j``, profile-ordered."""
        p = self.prof
        first, second = (j, k) if p.weight_order == "to_from" else (k, j)
        sub = f"{first},{second}" if p.index_comma else f"{first}{second}"
        return f"{p.weight}^{{({l})}}_{{{sub}}}"

    def weight_matrix(self, l: int) -> str:
        return f"{self.prof.weight.upper()}^{{({l})}}"

    def param(self, node: Node, stem: str, j: str | None = "j") -> str:
        """``b^{(l)}_j``, ``\\gamma^{(l)}_j``; ``W`` gives the matrix (use :meth:`weight` for an entry)."""
        l = node.index
        if stem == "W":
            return self.weight_matrix(l) if j is None else self.weight(l, j)
        base = {"b": self.prof.bias, "gamma": r"\gamma", "beta": r"\beta"}.get(stem, stem)
        return f"{base}^{{({l})}}" + (f"_{{{j}}}" if j else "")

    # ------------------------------------------------------------------ activations

    def f(self, l: int) -> str:
        """The activation function of dense layer ``l``: its own name (seed) or the profile's letter."""
        dense = [n for n in self.net.nodes if n.kind.name == "dense"]
        act = self.net.nodes[l - 1].opts["activation"]
        default = notation_profile(self.prof.name).activation == self.prof.activation
        if self.prof.name == "seed" and default:
            return act.latex
        if len({n.opts["activation"].describe() for n in dense}) == 1:
            return self.prof.activation
        return f"{self.prof.activation}_{{{l}}}"

    def fprime(self, l: int, i: str = "i", j: str = "j") -> str:
        return rf"{self.f(l)}'\left({self.pre(l)}_{{{i}{j}}}\right)"

    def fprime_value(self, l: int, i: str = "i", j: str = "j") -> str | None:
        """The convenient form of ``f'`` in the layer's own symbols (None for softmax)."""
        act = self.net.nodes[l - 1].opts["activation"]
        if act.vector:
            return None
        form = act.convenient if act.convenient is not None else act.derivative
        z, a = sp.Symbol("zz"), sp.Symbol("aa")
        expr = form.subs({ops.X: z, ops.Y: a})
        names = {z: f"{self.pre(l)}_{{{i}{j}}}", a: f"{self.out(l)}_{{{i}{j}}}"}
        if isinstance(expr, sp.Piecewise) and len(expr.args) == 2 and expr.args[1][1] == sp.true:
            (low, cond), (high, _) = expr.args
            if cond == (z <= 0):
                return (rf"\begin{{cases}} {sp.latex(high)} & {names[z]} > 0 \\ "
                        rf"{sp.latex(low, symbol_names=names)} & {names[z]} \le 0 \end{{cases}}")
        return sp.latex(expr, symbol_names=names)

    # ------------------------------------------------------------------ layer words

    def layer_title(self, node: Node) -> str:
        """``dense, 5 units, ReLU``; ``batch normalization``; ``residual from layer 1``."""
        o = node.opts
        if node.kind.name == "dense":
            units = f"{node.units} unit{'s' if node.units > 1 else ''}"
            return f"dense, {units}, {o['activation'].title}" + ("" if o.get("bias", True) else ", no bias")
        if node.kind.name == "residual":
            return f"residual connection, adds layer {o['from']}" if o["from"] else \
                "residual connection, adds the inputs"
        if node.kind.name == "dropout":
            return f"inverted dropout, rate {o['rate']:g}"
        return node.kind.title


def symbols(net: GraphNetwork, notation: str | None = None) -> Symbols:
    """The symbols of ``net`` in the profile ``notation`` (default: the spec's, else seed)."""
    return Symbols(net, notation_profile(notation, net.notation))
