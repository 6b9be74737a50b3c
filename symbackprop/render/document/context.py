"""What every section needs: the derivation, the notation profile, the printers and small helpers."""

from __future__ import annotations

import re

import sympy as sp

from ...engine import general
from ...engine.derive import PER_WEIGHT_LIMIT, Derivation, E
from ...engine.general import J
from ..latex import ActivationPrime, NotationPrinter, _visible_length, aligned, rhs_lines
from ..notation import Profile
from ..notation import profile as notation_profile
from .model import Display

PAIR_WIDTH = 72
"""Visible characters (latex._visible_length) of the widest index form and the widest matrix form of a
display, printed side by side."""

ORDINAL = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def idx(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True, positive=True)


def activation_names(d: Derivation, prof: Profile) -> dict[int, str]:
    """LaTeX name of each layer's activation function in this profile."""
    acts = [layer.activation for layer in d.network.layers]
    default_symbol = notation_profile(prof.name).activation == prof.activation
    if prof.name == "seed" and default_symbol:
        return {l: act.latex for l, act in enumerate(acts, start=1)}
    if len({act.describe() for act in acts}) == 1:
        return {l: prof.activation for l in range(1, len(acts) + 1)}
    return {l: f"{prof.activation}_{{{l}}}" for l in range(1, len(acts) + 1)}


def layer_word(d: Derivation, l: int) -> str:
    if l == 0:
        return "input layer"
    return "output layer" if l == d.L else f"hidden layer {l}"


def number(value: float) -> str:
    return f"{value:g}"


def units_range(n: int, letter: str = "j") -> str:
    """``j = 1, \\dots, 3``; a one-unit layer reads ``j = 1`` (one unit)."""
    return f"{letter} = 1" if n == 1 else f"{letter} = 1, \\dots, {n}"


class Context:
    """One derivation in one notation profile, with its printers; the sections read it."""

    def __init__(self, d: Derivation, prof: Profile, per_weight: str = "auto"):
        self.d, self.prof, self.per_weight = d, prof, per_weight
        self.net = d.network
        self.functions = activation_names(d, prof)
        self.pr = NotationPrinter(prof, self.functions, layer_marks=True)
        # general rules of profiles without layer marks (aima) are written without them
        self.gpr = NotationPrinter(prof, self.functions, layer_marks=prof.layer_superscript)

    # ------------------------------------------------------------------ small printers

    def tex(self, expr, general_form: bool = False) -> str:
        return (self.gpr if general_form else self.pr).doprint(expr)

    def display(self, pairs, general_form: bool = False, relation: str = "=") -> Display:
        """A display of ``(lhs, rhs, label)`` rows, long right-hand sides broken."""
        rows, labels = [], []
        printer = self.gpr if general_form else self.pr
        for lhs, rhs, label in pairs:
            left = lhs if isinstance(lhs, str) else printer.doprint(lhs)
            lines = rhs_lines(rhs, printer, width(label)) if not isinstance(rhs, str) else [rhs]
            new = aligned(left, lines, relation if left else "=")
            rows.extend(new)
            labels.extend([label] + [""] * (len(new) - 1))
        return Display(rows, labels)

    def display_pairs(self, pairs, relation: str = "=") -> Display:
        """Rows of ``(index, matrix, label)``: the index form and the matrix form of one equation side by
        side (``lhs &= rhs, & lhs &= rhs``, a lone matrix form in the second column) when the widest of
        each fit the page together, else every form on a row of its own; either may be None.  ``index``
        and ``matrix`` are ``(lhs, rhs)`` pairs as in :meth:`display`.  Side by side, the labels are tags
        (at the right margin, below the row when it is full) so that they never widen the display."""
        sides = [[self._side(eq, relation) if eq is not None else None for eq in (index, matrix)]
                 for index, matrix, _ in pairs]
        widest = [max((_visible_length(s[c][0]) + _visible_length(s[c][1][0]) for s in sides if s[c] is not None),
                      default=0) for c in (0, 1)]
        one_line = all(len(s[1]) == 1 for row in sides for s in row if s is not None)
        rows, labels = [], []
        if one_line and sum(widest) <= PAIR_WIDTH:
            for (index, matrix), (_, _, label) in zip(sides, pairs):
                left = f"{index[0]} &{relation} {index[1][0]}" if index else "&"
                right = f"{matrix[0]} &{relation} {matrix[1][0]}" if matrix else "&"
                rows.append(f"{left}{',' if index and matrix else ''} & {right}")
                labels.append(label)
            return Display(rows, labels, tags=True)
        for row, (_, _, label) in zip(sides, pairs):
            present = [s for s in row if s is not None]
            for n, (lhs, lines) in enumerate(present):
                new = aligned(lhs, lines, relation if lhs else "=")
                rows.extend(new)
                labels.extend([label if n == len(present) - 1 else ""] + [""] * (len(new) - 1))
        return Display(rows, labels)

    def _side(self, eq, relation: str):
        lhs, rhs = eq
        left = lhs if isinstance(lhs, str) else self.pr.doprint(lhs)
        lines = [rhs] if isinstance(rhs, str) else rhs_lines(rhs, self.pr)
        return left, lines

    def vec(self, kind: str, l: int) -> str:
        return self.pr.named_vector(kind, l)

    def shape(self, l: int, cols: int | None = None) -> str:
        """``$3 \\times 1$``: the shape of a layer-``l`` vector (or matrix with ``cols`` columns)."""
        return rf"${self.net.sizes[l]} \times {1 if cols is None else cols}$"

    # ------------------------------------------------------------------ shared pieces of the derivation

    def every_parameter(self) -> bool:
        return self.per_weight == "all" or len(self.d.parameters) <= PER_WEIGHT_LIMIT

    def named_delta(self, l: int) -> sp.Expr | None:
        """delta{l}[j] with f'(z{l}[j]) kept as a name: the general result divided by f'."""
        form = self.d.general.layers[l]
        if form.fprime is None:
            return None
        rest = without(form.delta, form.fprime)
        if l == self.d.L:
            return sp.Mul(sp.Derivative(E, general.base("a", l)[J]), ActivationPrime(l, general.base("z", l)[J]),
                          evaluate=False)
        return sp.Mul(ActivationPrime(l, general.base("z", l)[J]), rest, evaluate=False)

    def output_error_derivative(self) -> sp.Expr:
        """dE/da{L}[j] in index form: the general output delta divided by f'(z{L}[j])."""
        form = self.d.general.layers[self.d.L]
        return sp.factor(without(form.delta, form.fprime))


# ----------------------------------------------------------------------------- small helpers


def reversed_layers(eqs):
    """Update equations from the output layer backwards, as backpropagation visits them."""
    def layer(eq):
        found = re.search(r"(\d+)$", str(eq.lhs))
        return -int(found.group(1)) if found else 0
    return sorted(eqs, key=layer)


def dollar_parts(text: str) -> list:
    pieces = text.split("$")
    return [t if i % 2 == 0 else ("math", t) for i, t in enumerate(pieces) if t]


def registry_x() -> sp.Symbol:
    from ...registry.ops import X

    return X


def rn(expr, mapping):
    return expr if isinstance(expr, str) else expr.xreplace(mapping)


def width(label: str) -> int:
    """Width budget of a right-hand side beside a rule label of this length."""
    from ..latex import MAX_LINE

    return max(30, MAX_LINE - len(label) // 2)


def put_in(expr: sp.Expr, mapping: dict) -> sp.Expr:
    """``expr`` with ``mapping`` put in, a product's factors kept in their printed order."""
    if isinstance(expr, sp.Mul):
        factors = [f.xreplace(mapping) for f in expr.args]
        return sp.Mul(*factors, evaluate=any(isinstance(f, sp.Number) for f in factors))
    return expr.xreplace(mapping)


def in_order(expr: sp.Expr, printer) -> str | None:
    """A product of symbols and derivatives printed factor by factor in its own order (``delta dz/dW``,
    not the printer's ``dz/dW delta``); None for anything else."""
    if not isinstance(expr, sp.Mul) or any(isinstance(f, (sp.Add, sp.Number)) for f in expr.args):
        return None
    return " ".join(printer.doprint(f) for f in expr.args)


def no_leading_minus(expr: sp.Expr) -> sp.Expr:
    """``-a (a - 1)`` as ``a (1 - a)``: absorb a factor -1 into the one sum factor."""
    coeff, factors = expr.as_coeff_mul()
    sums = [f for f in factors if isinstance(f, sp.Add)]
    if coeff == -1 and len(sums) == 1:
        return sp.Mul(*[(-f if f is sums[0] else f) for f in factors], evaluate=False)
    return expr


def without(product: sp.Expr, factor: sp.Expr) -> sp.Expr:
    """``product / factor``, removing the factor's own factors where they appear literally."""
    args, inner = list(sp.Mul.make_args(product)), sp.Mul.make_args(factor)
    if all(f in args for f in inner):
        for f in inner:
            args.remove(f)
        return sp.Mul(*args)
    return sp.cancel(product / factor)


def optimizer_title(name: str) -> str:
    return {"sgd": "SGD", "momentum": "momentum", "adam": "Adam"}[name]


def sci(x: float) -> str:
    """One significant digit: stable across machines, enough to read the size of an error."""
    if x == 0:
        return "0"
    mant, exp = f"{x:.0e}".split("e")
    return rf"{mant} \times 10^{{{int(exp)}}}"


def sci_exact(x: float) -> str:
    """A hyper-parameter in scientific notation with the digits of ``{x:g}`` (1e-08: 1 \\times 10^{-8})."""
    mant, exp = f"{x:.5e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return rf"{mant} \times 10^{{{int(exp)}}}"


def label_math(tex: str) -> str | None:
    """``$g_1$`` for a rule label: labels are read back by the checker, whose remarks hold no braces
    (``g_{1}`` -> ``g_1``); None when braces remain (``\\operatorname{ReLU}``)."""
    tex = re.sub(r"_\{(\w)\}", r"_\1", tex)
    return None if "{" in tex else f"${tex}$"


def fprime_word(act, name: str | None = None) -> str:
    """The label of the row where f' is put in: ``$\\sigma'$ written with the output``."""
    symbol = label_math(name + "'") if name else None
    what = symbol or f"{act.name} derivative"
    return f"{what} written with the output" if act.uses_output else f"{what} put in"
