"""The backpropagation equations, stated before they are derived: output delta, delta recursion,
weight and bias gradients, each in index form and in matrix form with the shape of every result."""

from __future__ import annotations

import sympy as sp

from ...engine import general, matrixform
from ...engine.derive import E
from ...engine.general import J, K
from ..latex import ActivationPrime
from .context import Context, fprime_word, idx, registry_x
from .model import Heading, Section, m, para, strong


def section(ctx: Context) -> Section:
    p = ctx.prof
    sec = Section("The backpropagation equations")
    sec.blocks.append(para("The results, derived in the next sections. ", m(_delta_def(ctx)),
                           " is the error term of unit ", m("j"), " of layer ", m("l"),
                           "; backpropagation computes it from the output layer backwards, then every gradient "
                           "from it."))
    sec.blocks.append(Heading(para("Index form")))
    sec.blocks.extend(index_blocks(ctx))
    if p.descent_sign == "plus":
        from .updates import monash_blocks

        sec.blocks.extend(monash_blocks(ctx))
    sec.blocks.append(Heading(para("Matrix form (one sample)")))
    sec.blocks.extend(matrix_blocks(ctx))
    return sec


def batch_section(ctx: Context) -> Section:
    """The same equations for a batch of samples (appendix)."""
    return Section("Appendix: batch form", batch_blocks(ctx))


def _delta_def(ctx: Context) -> str:
    g = ctx.gpr
    return g.named("delta", "l", ["j"]) + r" = \partial " + ctx.prof.loss + r"/\partial " + g.named("z", "l", ["j"])


def index_blocks(ctx: Context) -> list:
    """delta of each layer (output first) and the gradients, per unit, for every width."""
    d, p, L = ctx.d, ctx.prof, ctx.d.L
    pairs = []
    for l in range(L, 0, -1):
        form = d.general.layers[l]
        dl = general.base("delta", l)[J]
        named = ctx.named_delta(l)
        if named is not None and named != form.delta:
            pairs.append((dl, named, "chain rule"))
            word = fprime_word(ctx.net.layers[l - 1].activation, ctx.functions[l])
            if l == L and d.simplifies_to_error:  # f' cancels against dE/da: say so, not only "derivative"
                word = "derivatives of loss and activation, simplified"
            pairs.append(("", form.delta, word))
        else:
            pairs.append((dl, form.delta, "chain rule" if l < L else "derived"))
    grads = []
    for l in range(L, 0, -1):
        form = d.general.layers[l]
        dl = general.base("delta", l)[J]
        Wjk = general.base("W", l)[J, K]
        row = (sp.Derivative(E, Wjk), dl * form.dz_dW, f"weight gradient, layer {l}")
        if p.weight_order == "from_to":  # w_{ij}: from unit i to unit j, as those texts write it
            row = (row[0].xreplace({K: idx("i")}), row[1].xreplace({K: idx("i")}), row[2])
        grads.append(row)
        if form.dz_db is not None:
            grads.append((sp.Derivative(E, general.base("b", l)[J]), dl * form.dz_db, f"bias gradient, layer {l}"))
    return [ctx.display(pairs), para("and for the parameters:"), ctx.display(grads)]


def expanded_factors(ctx: Context) -> list:
    """``dE/da{L}`` and each ``f'(z{l})`` as vectors, from the general index form."""
    d, L, rows = ctx.d, ctx.d.L, []
    out = d.general.layers[L]
    if out.fprime is not None and not d.simplifies_to_error:
        try:
            rows.append((matrixform.vector("gradE", general.size(L)),
                         matrixform.to_matrix(ctx.output_error_derivative(), L, general.size(L)), ctx.shape(L), L))
        except matrixform.NotElementwise:
            pass
    for l in range(L, 0, -1):
        form = d.general.layers[l]
        if form.fprime is None or (l == L and d.simplifies_to_error):
            continue
        fp = matrixform.vector(f"fprime{l}", general.size(l))
        try:
            rows.append((fp, matrixform.to_matrix(form.fprime, L, general.size(l)), ctx.shape(l), l))
        except matrixform.NotElementwise:
            u = sp.Symbol("u", real=True)
            act = ctx.net.layers[l - 1].activation
            rows.append((fp, r"\text{element-wise, with } " + ctx.pr.doprint(ActivationPrime(l, u)) + " = "
                         + ctx.pr.doprint(act.derivative.subs(registry_x(), u)), "", l))
    return rows


def _with_shape(rule: str, shape: str) -> str:
    return f"{rule}, {shape}" if rule else shape


def matrix_blocks(ctx: Context) -> list:
    """The per-sample matrix form of :attr:`Derivation.matrix`, with f' and dE/da written out."""
    form = ctx.d.matrix
    blocks = [para("Stacking the units of a layer into column vectors (", m(r"\odot"),
                   " is the element-wise product), the same results read:")]
    expansions = expanded_factors(ctx)
    rows = []
    for eq in form.backward():
        if str(eq.lhs).startswith(("dW", "db")):
            continue
        layer = int(str(eq.lhs)[len("delta"):])
        rows.append((eq.lhs, eq.rhs, _with_shape(eq.rule, ctx.shape(layer))))
        rows += [r[:3] for r in expansions if r[3] == layer]
    blocks.append(ctx.display(rows))
    blocks.append(para("The gradients of each layer's parameters are outer products:"))
    grads = []
    for eq in form.backward():
        name = str(eq.lhs)
        if name.startswith("dW"):
            l = int(name[2:])
            grads.append((eq.lhs, eq.rhs, _with_shape(eq.rule, ctx.shape(l, ctx.net.sizes[l - 1]))))
        elif name.startswith("db"):
            grads.append((eq.lhs, eq.rhs, _with_shape(eq.rule, ctx.shape(int(name[2:])))))
    blocks.append(ctx.display(grads))
    return blocks


def batch_blocks(ctx: Context) -> list:
    text = para("For a batch of ", m("B"), " samples stored as rows (", m(ctx.pr.batch_name("X")), " is ",
                m(r"B \times n_0"), "; bold letters are the per-sample vectors stacked as rows, ",
                m(r"\mathbf{1}"), " is a column of ones) and the batch loss the mean of the per-sample "
                "losses:")
    eqs = ctx.d.matrix.batch()
    return [text, ctx.display([(eq.lhs, eq.rhs, eq.rule) for eq in eqs])]


def results_blocks(ctx: Context) -> list:
    """The backpropagation equations, each once: per layer from the output backwards, the index form
    of delta and then its matrix form (with the shape and the written-out factors), then each
    parameter's gradient in index form and in matrix form."""
    d = ctx.d
    index_rows = _index_rows(ctx)
    expansions = expanded_factors(ctx)
    pairs = []
    for eq in d.matrix.backward():
        name = str(eq.lhs)
        if name.startswith("delta"):
            l = int(name[len("delta"):])
            pairs += _delta_pairs(ctx, l, index_rows[("delta", l)], eq, [r for r in expansions if r[3] == l])
        elif name.startswith(("dW", "db")):
            kind, l = name[1], int(name[2:])
            (lhs, rhs, _), = index_rows[(kind, l)]
            pairs.append(((lhs, rhs), (eq.lhs, eq.rhs),
                          ctx.shape(l, ctx.net.sizes[l - 1] if kind == "W" else None)))
    return [para(strong("Backpropagation."), " Error terms ", m(_delta_def(ctx)), " from the output layer back (",
                 m(r"\odot"), ": element-wise product), gradients:"),
            ctx.display_pairs(pairs)]


def _delta_pairs(ctx: Context, l: int, index: list, eq, expansions: list) -> list:
    """delta of layer ``l``: its general form (chain rule) in index and matrix form, then both written out
    (f' and dE/da put in); factors that have no matrix form are stated on rows of their own."""
    shape = ctx.shape(l)
    put = {lhs: rhs for lhs, rhs, _, _ in expansions if not isinstance(rhs, str)}
    apart = [(None, (lhs, rhs), label) for lhs, rhs, label, _ in expansions if isinstance(rhs, str)]
    written = eq.rhs.xreplace(put) if put else None
    if len(index) == 1:  # the index form is already written out
        (lhs, rhs, where), = index
        if written is None or written == eq.rhs:
            return [((lhs, rhs), (eq.lhs, eq.rhs), "; ".join(filter(None, [where, shape])))] + apart
        return [((lhs, rhs), (eq.lhs, eq.rhs), "; ".join(filter(None, [where, shape]))), (None, (eq.lhs, written), "")] + apart
    (lhs, general_rhs, where), (_, rhs, word) = index
    if eq.rule == "simplification":  # delta = a - t: the chain rule's matrix form beside its index form first
        m = ctx.d.matrix
        chain = sp.HadamardProduct(m.grad_a, m.fprime[l]) if not ctx.net.layers[l - 1].activation.vector else None
        return [((lhs, general_rhs), chain and (eq.lhs, chain), "; ".join(filter(None, [where, shape]))),
                ((lhs, rhs), (eq.lhs, eq.rhs), word)] + apart
    if written is None or written == eq.rhs:
        return [((lhs, general_rhs), (eq.lhs, eq.rhs), "; ".join(filter(None, [where, shape]))), ((lhs, rhs), None, word)] + apart
    return [((lhs, general_rhs), (eq.lhs, eq.rhs), "; ".join(filter(None, [where, shape]))),
            ((lhs, rhs), (eq.lhs, written), word)] + apart


def _index_rows(ctx: Context) -> dict:
    """The index-form rows of :func:`index_blocks`, by ("delta" | "W" | "b", layer)."""
    d, p, L = ctx.d, ctx.prof, ctx.d.L
    out: dict = {}
    for l in range(L, 0, -1):
        form = d.general.layers[l]
        dl = general.base("delta", l)[J]
        named = ctx.named_delta(l)
        where = "output layer" if l == L else ""
        if named is not None and named != form.delta:
            word = fprime_word(ctx.net.layers[l - 1].activation, ctx.functions[l])
            if l == L and d.simplifies_to_error:
                word = "derivatives of loss and activation, simplified"
            out[("delta", l)] = [(dl, named, ", ".join(filter(None, ["chain rule", where]))), (dl, form.delta, word)]
        else:
            out[("delta", l)] = [(dl, form.delta, where)]
        Wjk = general.base("W", l)[J, K]
        row = (sp.Derivative(E, Wjk), dl * form.dz_dW, "")
        if p.weight_order == "from_to":
            row = (row[0].xreplace({K: idx("i")}), row[1].xreplace({K: idx("i")}), "")
        out[("W", l)] = [row]
        if form.dz_db is not None:
            out[("b", l)] = [(sp.Derivative(E, general.base("b", l)[J]), dl * form.dz_db, "")]
    return out
