"""The forward pass (per unit and per layer) and the loss."""

from __future__ import annotations

import sympy as sp

from ...engine import general, matrixform
from ...engine.derive import E
from ...engine.general import J, K
from ...registry.stable import stability_note
from ..latex import ActivationFn
from .context import Context, layer_word, registry_x, units_range
from .model import m, para, strong


def layer_rows(ctx: Context, l: int) -> list:
    """Layer ``l``: z and a per unit (the first row labelled with the layer and its units), then as vectors."""
    d = ctx.d
    form, act = d.general.layers[l], ctx.net.layers[l - 1].activation
    z, a = general.base("z", l), general.base("a", l)
    n = general.size(l)
    a_rhs = sp.exp(z[J]) / sp.Sum(sp.exp(z[K]), (K, 1, n)) if act.vector else ActivationFn(l, z[J])
    first = f"{layer_word(d, l)}, ${units_range(ctx.net.sizes[l])}$"
    scalar = [(z[J], form.z, first), (a[J], a_rhs, "")]
    Wm = matrixform.vector(f"W{l}", n, general.size(l - 1))
    prev = matrixform.vector(f"a{l - 1}", general.size(l - 1))
    zm = sp.MatMul(Wm, prev)
    if ctx.net.layers[l - 1].bias:
        zm = sp.MatAdd(zm, matrixform.vector(f"b{l}", n))
    a_m = (rf"\operatorname{{softmax}}\bigl({ctx.vec('z', l)}\bigr)" if act.vector
           else rf"{ctx.functions[l]}\bigl({ctx.vec('z', l)}\bigr)")
    label = "" if act.vector else "element-wise"
    return scalar + [(ctx.vec("z", l), zm, "matrix form, " + ctx.shape(l)), (ctx.vec("a", l), a_m, label)]


def layer_display(ctx: Context, l: int):
    return ctx.display(layer_rows(ctx, l))


def results_blocks(ctx: Context) -> list:
    """The forward pass of the results: per layer its index and matrix rows, the activation functions
    (those that need a definition), the network's output and the loss, in one display."""
    d = ctx.d
    pairs, after = [], []
    for l in range(1, d.L + 1):
        (zj, zr, where), (aj, ar, _), (z, zm, _), (a, am, _) = layer_rows(ctx, l)
        pairs.append(((zj, zr), (z, zm), f"{where}; {ctx.shape(l)}"))
        pairs.append(((aj, ar), (a, am), ""))
    L = d.L
    loss = (E, ctx.net.loss.indexed(general.base("a", L), general.base("t"), K, general.size(L)))
    acts = activation_rows(ctx)
    if acts:  # the last activation function beside the loss: one row less
        after += [((f, rhs), None, title) for f, rhs, title in acts[:-1]]
        f, rhs, title = acts[-1]
        after.append(((f, rhs), loss, f"{title}; the {ctx.prof.words['E']}"))
    else:
        after.append((loss, None, ""))
    if 1 < len(d.targets) <= 4:
        after.append(((E, d.graph.loss_def), None, f"here, {ctx.net.sizes[L]} outputs"))
    parts = [strong("Forward pass."), " Per unit ", m("j"), " and per layer (with its shape)"]
    if ctx.prof.output_value:
        parts += [", the output ", m(f"{ctx.prof.output_value} = {ctx.vec('a', d.L)}")]
    parts += [f", the {ctx.prof.words['E']}:"]
    blocks = [para(*parts), ctx.display_pairs(pairs), ctx.display_pairs(after)]
    note = stability_note(ctx.net)
    if note:
        blocks.append(para(f"Numerical note: {note}."))
    if d.target_constraint:
        blocks.append(para(f"The derivation assumes that {d.target_constraint}: ",
                           m(rf"\sum_{{k}} {ctx.prof.target}_{{k}} = 1"), "."))
    return blocks


def activation_rows(ctx: Context) -> list:
    """``f(u) = ...`` for each activation function that is not a standard function of its own name."""
    u = sp.Symbol("u", real=True)
    rows = []
    for l, layer in enumerate(ctx.net.layers, start=1):
        act = layer.activation
        if act.vector or any(ctx.functions[l] == ctx.functions[k] for k in range(1, l)):
            continue
        expr = act.expr.subs(registry_x(), u)
        if ctx.pr.doprint(expr).startswith(ctx.functions[l] + "{"):
            continue  # tanh(u) = tanh(u) defines nothing
        rows.append((rf"{ctx.functions[l]}(u)", expr, act.title))
    return rows
