"""The worked example: one forward pass, the loss, every delta and every updated parameter as
numbers (8 significant digits), from ``engine.worked.worked_example`` when the spec has ``example:``."""

from __future__ import annotations

import sympy as sp

from .context import Context, number
from .model import Section, Table, m, para

DIGITS = 8


def num(x: float) -> str:
    """8 significant digits, minus sign and exponent as TeX."""
    text = f"{float(x):.{DIGITS}g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = rf"{mant} \times 10^{{{int(exp)}}}"
    return text


def vector(values) -> str:
    return r"\left(" + ",\\ ".join(num(v) for v in list(values)) + r"\right)"


def _example(ctx: Context):
    try:
        from ...engine.worked import worked_example
    except ImportError:
        return None
    return worked_example(ctx.d)


def section(ctx: Context) -> Section | None:
    ex = _example(ctx)
    if ex is None:
        return None
    d, pr = ctx.d, ctx.pr
    sec = Section("Worked example")
    sec.blocks.append(para("One training step on one sample, with the numbers of the equations above (",
                           f"{DIGITS} significant digits). The input ", m(pr.stem("x")), " is ", m(vector(ex.x)),
                           " and the target ", m(pr.stem("t")), " is ", m(vector(ex.t)),
                           "; the forward pass, vectors written as rows:"))
    forward = [[para(str(l)), para(m(vector(ex.z[l]))), para(m(vector(ex.a[l])))] for l in range(1, d.L + 1)]
    sec.blocks.append(Table([para("layer ", m("l")), para(m(ctx.vec("z", 1).replace("(1)", "(l)"))),
                             para(m(ctx.vec("a", 1).replace("(1)", "(l)")))], forward, "lll"))
    sec.blocks.append(para(f"The {ctx.prof.words['E']} of this sample is ", m(num(ex.loss)),
                           ". Error terms, output layer first:"))
    deltas = [[para(str(l)), para(m(vector(ex.delta[l])))] for l in range(d.L, 0, -1)]
    sec.blocks.append(Table([para("layer ", m("l")), para(m(ctx.vec("delta", 1).replace("(1)", "(l)")))], deltas))
    sec.blocks.append(para(f"Each parameter after one step with learning rate {number(ex.learning_rate)}:"))
    rows = []
    for name, before in ex.params.items():
        for index, value in _entries(before):
            symbol = _symbol(name, index)
            rows.append([para(m(pr.doprint(symbol))), para(m(num(value))), para(m(num(_at(ex.grads[name], index)))),
                         para(m(num(_at(ex.updated[name], index))))])
    sec.blocks.append(Table([para("parameter"), para("before"), para("gradient"), para("after")], rows))
    return sec


def _entries(array):
    import numpy as np

    arr = np.asarray(array)
    return [(idx, arr[idx]) for idx in np.ndindex(arr.shape)]


def _at(array, index):
    import numpy as np

    return np.asarray(array)[index]


def _symbol(name: str, index) -> sp.Symbol:
    """``W1`` entry (0, 1) -> the graph symbol ``W1_1_2``; ``b1`` entry (0,) -> ``b1_1``."""
    return sp.Symbol(name + "".join(f"_{i + 1}" for i in index))
