"""Plain-text printing of derivation expressions: no raw SymPy (``Sum(``, ``Piecewise(``) in any output.

:class:`PlainPrinter` is SymPy's ``StrPrinter`` with readable sums (``Σ_k``), cases
(``(0 if z <= 0 else 1)``), derivatives (``∂E/∂W1_1_1``) and Iverson brackets for
Kronecker deltas.  With a notation :class:`~symbackprop.render.notation.Profile` it
prints Unicode math in that profile's symbols (:class:`UnicodePrinter`):
``delta2[j]`` -> ``δ⁽²⁾ⱼ``, ``W2[k, j]`` in the aima profile -> ``w⁽²⁾ⱼ,ₖ``.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from .notation import Profile

_CANONICAL = re.compile(r"^(W|b|z|a|delta|Delta)(\d+)_(\d+)(?:_(\d+))?$")
_STEM = re.compile(r"^(W|b|z|a|delta|Delta|n)(\d+)$")
_IO = re.compile(r"^(x|t)_(\d+)$")

SUB = dict(zip("0123456789aehijklmnoprstuvx+-()", "₀₁₂₃₄₅₆₇₈₉ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ₊₋₍₎"))
SUP = dict(zip("0123456789()lL+-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾ˡᴸ⁺⁻"))

_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "Delta": "Δ", "epsilon": "ϵ", "varepsilon": "ε",
    "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ",
    "sigma": "σ", "tau": "τ", "phi": "ϕ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Theta": "Θ", "Lambda": "Λ", "Xi": "Ξ", "Pi": "Π", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ",
    "Omega": "Ω", "ell": "ℓ",
}
_SCRIPT = {"L": "ℒ", "E": "ℰ", "J": "𝒥", "C": "𝒞"}


def tex_unicode(tex: str) -> str:
    r"""A profile's LaTeX symbol as Unicode: ``\Delta`` -> ``Δ``, ``\mathrm{net}`` -> ``net``, ``\hat{y}`` -> ``ŷ``."""
    text = re.sub(r"\\hat\{(\w)\}", lambda m: m.group(1) + "\u0302", tex)
    text = re.sub(r"\\mathcal\{(\w)\}", lambda m: _SCRIPT.get(m.group(1), m.group(1)), text)
    text = re.sub(r"\\(?:mathrm|mathbf|mathit|boldsymbol)\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\([A-Za-z]+)", lambda m: _GREEK.get(m.group(1), m.group(1)), text)
    return text.replace("{", "").replace("}", "")


def subscript(parts: list[str], comma: bool = False) -> str:
    """Indices as Unicode subscripts (``["j", "k"]`` -> ``ⱼₖ``); ``_{...}`` when a character has none."""
    comma = comma or any(len(p) > 1 for p in parts)
    text = ("," if comma else "").join(parts)
    if all(c in SUB or c == "," for c in text):
        return "".join(SUB.get(c, c) for c in text)
    return f"_{{{text}}}" if len(text) > 1 else f"_{text}"


def superscript(text: str) -> str:
    return "".join(SUP.get(c, c) for c in text) if all(c in SUP for c in text) else f"^({text})"


class PlainPrinter(StrPrinter):
    """``StrPrinter`` without raw SymPy constructs; names stay canonical (``delta1_1``, ``W2[k, j]``).

    A derivative that is a factor of a product is parenthesized: ``(∂E/∂z1_1)*(∂z1_1/∂W1_1_1)``.
    """

    printmethod = "_symbackprop_plain"  # not _sympystr: Indexed would print itself
    _factor_depth = 0

    def _print_Mul(self, expr):
        self._factor_depth += 1
        try:
            return super()._print_Mul(expr)
        finally:
            self._factor_depth -= 1

    def _print_Indexed(self, expr):
        return f"{self._print(expr.base.label)}[{', '.join(self._print(i) for i in expr.indices)}]"

    def _print_Sum(self, expr):
        body = expr.function
        text = self._print(body)
        if precedence(body) < PRECEDENCE["Mul"]:
            text = f"({text})"
        for index, low, high in reversed(expr.limits):
            text = f"{self.sum_symbol(index, low, high)} {text}"
        return text

    def sum_symbol(self, index, low, high) -> str:
        return f"Σ_{{{self._print(index)}={self._print(low)}..{self._print(high)}}}"

    def _print_Piecewise(self, expr):
        parts = []
        for value, cond in expr.args:
            text = self.parenthesize(value, PRECEDENCE["Add"])
            if cond == sp.true:
                parts.append(f"else {text}")
            else:
                parts.append(f"{'else ' if parts else ''}{text} if {self._print(cond)}")
        if expr.args[-1][1] != sp.true:
            parts.append("else undefined")
        return "(" + " ".join(parts) + ")"

    def _print_KroneckerDelta(self, expr):
        i, j = expr.args
        return f"[{self._print(i)} = {self._print(j)}]"

    def _print_Derivative(self, expr):
        variables = expr.variables
        order = len(variables)
        head = "∂" if order == 1 else f"∂{superscript(str(order))}"
        below = "".join(f"∂{self._print(v)}" for v in variables)
        top = self._print(expr.expr)
        if not isinstance(expr.expr, (sp.Symbol, sp.Indexed)):
            top = f"({top})"
        text = f"{head}{top}/{below}"
        return f"({text})" if self._factor_depth else text

    def _print_Subs(self, expr):
        inner, old, new = expr.args
        pairs = ", ".join(f"{self._print(o)} = {self._print(n)}" for o, n in zip(old, new))
        return f"{self._print(inner)} at {pairs}"


class UnicodePrinter(PlainPrinter):
    """Unicode math in a profile's symbols: ``δ⁽²⁾ⱼ = (1 - a⁽²⁾ⱼ²) Σₖ W⁽³⁾ₖⱼ δ⁽³⁾ₖ``.

    Every quantity keeps its layer mark, as the documents' concrete derivations do.
    Products are written by juxtaposition, small integer powers as superscripts.
    """

    def __init__(self, profile: Profile, settings: dict | None = None):
        super().__init__(settings or {})
        self.profile = profile

    def stem(self, kind: str) -> str:
        p = self.profile
        return tex_unicode({"W": p.weight, "b": p.bias, "z": p.preactivation, "a": p.activation_value,
                            "delta": p.gradient_delta, "Delta": p.delta, "x": p.input, "t": p.target,
                            "E": p.loss, "alpha": p.learning_rate}[kind])

    def named(self, kind: str, l: int | None, indices: list[str]) -> str:
        if kind == "a" and l == 0:
            kind, l = "x", None
        if kind == "W" and self.profile.weight_order == "from_to":
            indices = list(reversed(indices))
        mark = superscript(f"({l})") if l is not None else ""
        return f"{self.stem(kind)}{mark}{subscript(indices, self.profile.index_comma and kind == 'W')}"

    def _print_Symbol(self, expr):
        name = expr.name
        m = _CANONICAL.match(name)
        if m:
            kind, l, j, k = m.groups()
            return self.named(kind, int(l), [j] if k is None else [j, k])
        m = _IO.match(name)
        if m:
            return self.named(m.group(1), None, [m.group(2)])
        m = _STEM.match(name)
        if m:
            kind, l = m.group(1), int(m.group(2))
            return f"n{subscript([str(l)])}" if kind == "n" else f"{self.stem(kind)}{superscript(f'({l})')}"
        if name in ("E", "alpha"):
            return self.stem(name)
        return _GREEK.get(name, name)

    def _print_Indexed(self, expr):
        label = str(expr.base.label)
        m = re.match(r"^(W|b|z|a|delta|Delta)(\d+)$", label)
        indices = [self._print(i) for i in expr.indices]
        if m:
            return self.named(m.group(1), int(m.group(2)), indices)
        if label in ("x", "t"):
            return self.named(label, None, indices)
        return f"{label}{subscript(indices)}"

    def sum_symbol(self, index, low, high) -> str:
        return f"Σ{subscript([self._print(index)])}"

    def _print_Relational(self, expr):
        op = {"<=": "≤", ">=": "≥", "!=": "≠", "==": "="}.get(expr.rel_op, expr.rel_op)
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.as_base_exp()
        if exp.is_Integer and 1 < exp < 10:
            text = self.parenthesize(base, PRECEDENCE["Pow"], strict=True)
            return text + superscript(str(int(exp)))
        return super()._print_Pow(expr, rational).replace("**", "^")

    def _print_Mul(self, expr):
        """Juxtaposed factors in textbook order (a (1 - a) Σ ..., cases before sums), one fraction bar."""
        if expr.could_extract_minus_sign():
            return "-" + self.parenthesize(-expr, PRECEDENCE["Mul"], strict=True)
        num, den = [], []
        for f in expr.as_ordered_factors():
            if f.is_Pow and f.exp.is_Rational and f.exp.is_negative:
                den.append(f.base ** -f.exp)
            elif f.is_Rational and f.q != 1:
                num += [sp.Integer(f.p)] if f.p != 1 else []
                den.append(sp.Integer(f.q))
            else:
                num.append(f)
        self._factor_depth += 1
        try:
            top = " ".join(self.parenthesize(f, PRECEDENCE["Mul"]) for f in sorted(num, key=self._rank)) or "1"
            bottom = " ".join(self.parenthesize(f, PRECEDENCE["Mul"]) for f in den)
        finally:
            self._factor_depth -= 1
        if not den:
            return top
        return f"{top}/{bottom if len(den) == 1 and not den[0].is_Mul else f'({bottom})'}"

    @staticmethod
    def _rank(f) -> int:
        if f.is_Number:
            return 0
        if isinstance(f, sp.Sum):
            return 4
        if isinstance(f, sp.Piecewise):
            return 3
        if isinstance(f, sp.Add) or (isinstance(f, sp.Pow) and not f.exp.is_negative):
            return 2
        return 1


def plain(expr) -> str:
    """``expr`` as readable text with canonical names (gradients.json)."""
    return PlainPrinter().doprint(expr)


def unicode_math(expr, profile: Profile) -> str:
    """``expr`` as Unicode math in ``profile``'s symbols (gradients.txt, code comments)."""
    return UnicodePrinter(profile).doprint(expr)
