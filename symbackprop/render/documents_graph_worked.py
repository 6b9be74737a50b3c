"""The worked example of a layer-graph document: one training step on the spec's example batch.

Four tables of numbers (8 significant digits, matrices with one sample a row): the batch and
the starting parameters, the forward pass layer by layer with the loss, the backward pass
output layer first (each layer's upstream gradient ``G``, a dense layer's error term, every
parameter gradient), and the parameters after one step (with batch normalization's running
statistics).  The numbers are :func:`~symbackprop.engine.worked_graph.graph_worked_example`'s.
"""

from __future__ import annotations

import numpy as np

from ..engine.worked_graph import GraphWorkedExample, graph_worked_example
from .document.worked import DIGITS, num
from .documents import Section, Table, m, para
from .documents_graph_symbols import Symbols

WIDE = 64
"""Characters of a matrix's widest row above which it is set small (scriptsize) to fit its column."""


class NumbersTable(Table):
    """A table of numbers: symbol, matrix, layer and shape (the .tex gives the matrix most of the width)."""


def matrix(values) -> str:
    """A vector as a one-row matrix, a matrix with its rows: ``\\begin{pmatrix} .. \\end{pmatrix}``.

    A matrix too wide for its column at text size (long numbers, many columns) is a
    ``smallmatrix`` in parentheses."""
    arr = np.atleast_2d(np.asarray(values, dtype=np.float64))
    cells = [[num(v + 0.0) for v in row] for row in arr]  # + 0.0: no "-0"
    body = r" \\ ".join(" & ".join(row) for row in cells)
    width = sum(max(len(c.replace(r" \times 10^", "e").replace("{", "").replace("}", "")) + 3 for c in col)
                for col in zip(*cells))
    if width > WIDE:
        return rf"\left(\begin{{smallmatrix}} {body} \end{{smallmatrix}}\right)"
    return rf"\begin{{pmatrix}} {body} \end{{pmatrix}}"


def _bold(stem: str) -> str:
    return rf"\boldsymbol{{{stem}}}" if stem.startswith("\\") else rf"\mathbf{{{stem}}}"


def _dims(values) -> str:
    return r" \times ".join(str(s) for s in np.shape(values))


def _row(symbol: str, values, where: str, note: str | None = None, via: str = "") -> list:
    """A table row: the symbol (``via``: prose after it), the numbers, and where they belong with
    their shape (or ``note``)."""
    last = para(f"{where}, ", m(_dims(values))) if note is None else para(f"{where}, {note}")
    return [para(m(symbol), *([via] if via else [])), para(m(matrix(values))), last]


def _header() -> list:
    return [para("quantity"), para("value"), para("layer, shape")]


def _grad(sym: Symbols, node, name: str) -> str:
    stem = name[: -len(str(node.index))]
    return rf"\partial {sym.E} / \partial {sym.param(node, stem, None)}"


def _forward_rows(sym: Symbols, ex: GraphWorkedExample) -> list:
    rows = []
    for numbers in ex.layers:
        l = numbers.node.index
        for name, values in numbers.forward:
            symbol = {"z": sym.batch("z", l), "a": sym.batch("a", l), "y": sym.batch("a", l),
                      "mu": rf"\mu_{{B}}^{{({l})}}", "var": rf"\sigma^{{2\,({l})}}_{{B}}",
                      "xhat": rf"\hat{{\mathbf{{x}}}}^{{({l})}}", "sigma": rf"\hat{{\sigma}}^{{({l})}}"}[name]
            if name == "sigma":
                values = np.reshape(values, (1, -1))
            rows.append(_row(symbol, values, str(l), "one per sample" if name == "sigma" else None))
    return rows


def _backward_rows(sym: Symbols, ex: GraphWorkedExample) -> list:
    rows = []
    for numbers in reversed(ex.layers):
        node, l = numbers.node, numbers.node.index
        for reader, part in numbers.parts:
            # "via r" rather than the notation's g^{(l <- r)}: an arrow would read as an update to `check`
            rows.append(_row(sym.batch("g", l), part, str(l), via=f" via {reader}"))
        rows.append(_row(sym.batch("g", l), numbers.G, str(l), via=" (sum)" if numbers.parts else ""))
        if numbers.delta is not None:
            rows.append(_row(sym.batch("delta", l), numbers.delta, str(l)))
        for name, values in numbers.grads:
            rows.append(_row(_grad(sym, node, name), values, str(l)))
    return rows


def _param_rows(sym: Symbols, ex: GraphWorkedExample, params) -> list:
    rows = []
    for numbers in ex.layers:
        for name, _ in numbers.grads:
            node = numbers.node
            stem = name[: -len(str(node.index))]
            rows.append(_row(sym.param(node, stem, None), params[name], str(node.index)))
    return rows


def _sources(ex: GraphWorkedExample) -> str:
    text = (f" The starting parameters are those model.py's init_params({ex.seed}) returns"
            if ex.params_drawn else " The starting parameters are the spec's")
    if ex.masks:
        many = len(ex.masks) > 1
        which = (f"the dropout mask{'s' if many else ''} of layer{'s' if many else ''} "
                 + ", ".join(str(i) for i in ex.masks) + (" are" if many else " is"))
        source = (f"{'those' if many else 'the one'} model.py's draw_masks(np.random.default_rng({ex.seed}), "
                  f"{ex.batch}) draws" if ex.masks_drawn else "the spec's")
        text += f"; {which} {source} (1 keeps a unit, 0 drops it)"
    return text + "."


def section(d, sym: Symbols) -> Section | None:
    """The "Worked example" section of ``d``'s document, or None without an ``example:`` block."""
    ex = graph_worked_example(d)
    if ex is None:
        return None
    net, E = d.network, sym.E
    samples = f"a batch of {ex.batch} samples" if ex.batch > 1 else "one sample"
    sec = Section("Worked example")
    sec.blocks.append(para(f"One training step on {samples}, with the numbers of the equations above "
                           f"({DIGITS} significant digits; in a matrix each row is a sample).", _sources(ex)))
    target = sym.target.upper() if len(sym.target) == 1 else sym.target
    start = [_row(sym.batch("a", 0), ex.X, "input"),
             _row(_bold(target), ex.T, "target")]
    start += [_row(rf"\mathbf{{m}}^{{({i})}}", mask, str(i)) for i, mask in ex.masks.items()]
    sec.blocks.append(NumbersTable(_header(), start + _param_rows(sym, ex, ex.params)))
    sec.blocks.append(para("The forward pass, layer by layer:"))
    sec.blocks.append(NumbersTable(_header(), _forward_rows(sym, ex)))
    # numbers are written beside their symbols, not as equations, so that `check` skips them
    losses = r",\ ".join(num(v + 0.0) for v in ex.per_sample)
    if ex.batch > 1:
        tail = [f"The per-sample {sym.prof.words['E']} ", m(r"\ell_{i}"), " of the rows is ",
                m(rf"\left({losses}\right)"), ", their mean ", m(num(ex.data_loss))]
    else:
        tail = [f"The {sym.prof.words['E']} of the sample is ", m(num(ex.data_loss))]
    if net.l2 > 0:
        tail += [", the weight decay ", m(r"\frac{\lambda}{2} \sum W^{2}"), " is ", m(num(ex.decay))]
    tail += [", so ", m(E), " is ", m(num(ex.loss)), ". Backpropagation, output layer first:"]
    sec.blocks.append(para(*tail))
    sec.blocks.append(NumbersTable(_header(), _backward_rows(sym, ex)))
    from .documents_graph import _opt_title

    sec.blocks.append(para(f"The parameters after one step of {_opt_title(net.optimizer.name)}, learning rate ",
                           m(f"{sym.prof.learning_rate} = {num(ex.learning_rate)}"),
                           *([" (from a zero optimizer state)"] if net.optimizer.name != "sgd" else []), ":"))
    after = _param_rows(sym, ex, ex.updated)
    for key, values in ex.running.items():
        l = key.lstrip("meanvr")
        symbol = rf"\mu^{{({l})}}_{{\text{{run}}}}" if key.startswith("mean") else rf"\sigma^{{2\,({l})}}_{{\text{{run}}}}"
        after.append(_row(symbol, values, l, "running"))
    sec.blocks.append(NumbersTable(_header(), after))
    if ex.running:
        sec.blocks.append(para("The running statistics start at mean 0 and variance 1 and move once toward the "
                               "batch's: running = momentum running + (1 - momentum) batch, as model.py's "
                               "forward does when given them."))
    return sec
