"""Comments of generated code in the document's notation: readable equations and a table of names.

The code keeps its canonical names (``W1``, ``z1``, ``a1``, ``delta1``: the same in every
profile, so tests and callers never depend on the notation); the module docstring maps
each code name to the document's symbol (:meth:`Comments.header`), and each block's
comment prints the equation it implements in Unicode math with the document's symbols
(:meth:`Comments.equation`), never raw SymPy.
"""

from __future__ import annotations

import sympy as sp

from ..engine import general
from ..engine.derive import Derivation
from ..render.notation import Profile, profile
from ..render.plain import UnicodePrinter


class Comments:
    """Equations and the name table of one derivation in one notation profile."""

    def __init__(self, d: Derivation, notation: str | None = None):
        self.d = d
        self.profile: Profile = profile(notation, d.network.notation)
        self.printer = UnicodePrinter(self.profile)

    def math(self, expr: sp.Expr) -> str:
        return self.printer.doprint(expr)

    def symbol(self, kind: str, l, indices: list[str]) -> str:
        return self.printer.named(kind, l, indices)

    @property
    def loss(self) -> str:
        return self.math(sp.Symbol("E"))

    def equation(self, kind: str, l: int) -> str:
        """The index-form equation of layer ``l`` that a block implements: kind z, a, delta, W or b."""
        form, j, k = self.d.general.layers[l], ["j"], ["j", "k"]
        delta = general.base("delta", l)[general.J]
        if kind == "z":
            return f"{self.symbol('z', l, j)} = {self.math(form.z)}"
        if kind == "a":
            act = self.d.network.layers[l - 1].activation
            if act.vector:
                return f"{self.symbol('a', l, j)} = {act.name}({self.symbol('z', l, [])})ⱼ"
            return f"{self.symbol('a', l, j)} = {act.name}({self.symbol('z', l, j)})"
        if kind == "delta":
            return f"{self.symbol('delta', l, j)} = {self.math(form.delta.subs(self.d.sizes))}"
        if kind == "W":
            return f"∂{self.loss}/∂{self.symbol('W', l, k)} = {self.math(delta * form.dz_dW)}"
        return f"∂{self.loss}/∂{self.symbol('b', l, j)} = {self.math(delta * form.dz_db)}"

    def header(self) -> list[str]:
        """Docstring lines: each code name and the document symbol it stands for."""
        p, words = self.profile, self.profile.words
        l, jk = "l", ["j+1", "k+1"]
        order = "from unit k+1 of layer l-1 to unit j+1 of layer l"
        rows = [
            ("W{l}[j, k]", self.symbol("W", l, jk), f"weight {order}"),
            ("b{l}[j]", self.symbol("b", l, ["j+1"]), "bias"),
            ("z{l}[:, j]", self.symbol("z", l, ["j+1"]), words["z"]),
            ("a{l}[:, j]", self.symbol("a", l, ["j+1"]), words["a"]),
            ("delta{l}[:, j]", f"{self.symbol('delta', l, ['j+1'])} = ∂{self.loss}/∂{self.symbol('z', l, ['j+1'])}",
             "error term, times scale / batch in backward()"),
            ("X[:, k], T[:, j]", f"{self.symbol('x', None, ['k+1'])}, {self.symbol('t', None, ['j+1'])}",
             "input, target"),
        ]
        width = max(len(r[0]) for r in rows)
        symbol_width = max(len(r[1]) for r in rows)
        lines = [f"Names: code name -> symbol of the derivation document ({p.name} notation); code indices",
                 "are 0-based, the document's 1-based:"]
        lines += [f"    {code.ljust(width)}  {sym.ljust(symbol_width)}  {meaning}".rstrip() for code, sym, meaning in rows]
        if self.loss != "E":
            lines.append(f"The per-sample loss E of this code is the document's {self.loss}.")
        if p.delta != p.gradient_delta:
            Delta = self.printer.stem("Delta")
            lines.append(f"The document's {Delta}{'ⱼ'} is -{self.symbol('delta', None, ['j'])} (the {words['delta']}, "
                         f"updated with +); the code keeps delta = ∂{self.loss}/∂z.")
        if p.preactivation == "a" and p.activation_value == "z":
            lines.append("Mind the letters: the document's a is the code's z (pre-activation) and its z the code's a.")
        return lines


def name_header(d: Derivation, notation: str | None = None) -> str:
    """The name table as one docstring paragraph."""
    return "\n".join(Comments(d, notation).header())
