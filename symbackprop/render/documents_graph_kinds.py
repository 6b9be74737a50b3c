"""The registry's document texts of each layer kind, filled in with one layer's symbols.

A :class:`~symbackprop.registry.layers.Doc` writes its equations with
placeholders (``{x}``, ``{y}``, ``{g}``, ``{E}``, ``{B}``, ``{l}``, ...).
:func:`filler` returns the function that fills them for one layer in one
notation profile; it also gives the scale and shift their layer mark
(``\\gamma^{(2)}_j``) and writes a dense layer's weights and biases in the
profile's order (``w^{(1)}_{kj}`` in wikipedia).  :func:`kind_section` builds
the derivation section of a kind, and the batch-normalization section adds the
paper's per-path equations, the compact form and the algebra between them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..spec.graph import Node
from . import documents_graph_bn as bn_algebra
from .documents import Display, Heading, Section, m, para
from .documents_graph_symbols import Symbols

_PARAM_MARK = re.compile(r"\\(gamma|beta)_(j|\{[a-z]\})")


def filler(sym: Symbols, node: Node) -> Callable[[str], str]:
    """``fill(text)``: a Doc text with ``node``'s symbols; prose placeholders become ``$math$``."""
    l, p = node.index, node.inputs[0]
    values = {"x": sym.out(p), "y": sym.out(l), "g": sym.g(l), "E": sym.E, "B": sym.B, "l": str(l),
              "p": str(p), "n": sym.n(l), "gx": sym.g(p)}
    if node.kind.name == "dense":
        values.update(z=sym.pre(l), f=sym.f(l), delta=sym.delta(l), fprime=sym.fprime(l))
    if node.kind.name == "residual":
        src = node.opts["from"]
        values.update(s=str(src), skip=sym.out(src))

    def fill(text: str) -> str:
        out = text.format(**values)
        out = _PARAM_MARK.sub(lambda mt: rf"\{mt.group(1)}^{{({l})}}_{mt.group(2)}", out)
        if node.kind.name == "dense":
            out = out.replace(f"W^{{({l})}}_{{jk}}", sym.weight(l, "j", "k"))
            out = out.replace(f"b^{{({l})}}_j", sym.param(node, "b"))
        return out

    return fill


def prose(text: str, sym: Symbols, node: Node):
    """A Doc summary as a paragraph: its placeholders are math, the rest prose."""
    fill = filler(sym, node)
    wrapped = re.sub(r"\{(x|y|g|E|B|n|f|skip)\}", r"${\1}$", text)
    wrapped = re.sub(r"\$(\{[a-z]+\})\$_\{\{([a-z]+)\}\}", r"$\1_{{\2}}$", wrapped)
    pieces = fill(wrapped).split("$")
    return para(*[(m(t) if i % 2 else t) for i, t in enumerate(pieces) if t])


def align_row(tex: str) -> list[str]:
    """One Doc equation as ``align*`` rows: ``, \\quad``-joined parts split, aligned at the first ``=``."""
    rows = []
    for part in tex.split(r", \quad "):
        if part.startswith("="):
            rows.append("&" + part)
        elif " = " in part:
            left, right = part.split(" = ", 1)
            rows.append(f"{left} &= {right}")
        elif r"\mathrel{+}=" in part:
            left, right = part.split(r"\mathrel{+}=", 1)
            rows.append(rf"{left} &\mathrel{{+}}= {right}")
        else:
            rows.append("&" + part)
    return rows


def paired(texts: list[str]) -> list[str]:
    """Short equations two to a row."""
    return [r",\qquad ".join(texts[i:i + 2]) for i in range(0, len(texts), 2)]


def display(texts, labels=None) -> Display:
    rows, out_labels = [], []
    for n, tex in enumerate(texts):
        new = align_row(tex)
        rows += new
        out_labels += [(labels[n] if labels else "")] + [""] * (len(new) - 1)
    return Display(rows, out_labels)


def kind_section(sym: Symbols, node: Node, same_kind: list[int]) -> Section:
    """The derivation of ``node``'s kind, written for ``node`` (the first layer of that kind)."""
    doc, fill = node.kind.doc, filler(sym, node)
    others = [i for i in same_kind if i != node.index]
    where = f"layer {node.index}" + (f" (layer{'s' if len(others) > 1 else ''} "
                                     f"{', '.join(map(str, others))} alike)" if others else "")
    sec = Section(f"Derivation: {doc.title.lower()}")
    sec.blocks.append(prose(doc.summary, sym, node))
    sec.blocks.append(para(f"Written for {where}. Forward definition:"))
    forward = list(doc.forward)
    if node.kind.name == "dense" and node.opts["activation"].vector:
        forward[-1] = (r"{y}_{{ij}} = \frac{{e^{{{z}_{{ij}}}}}}{{\sum_{{k}} e^{{{z}_{{ik}}}}}}")
    sec.blocks.append(display([fill(t) for t in forward]))
    sec.blocks.append(Heading(para("Local derivatives")))
    sec.blocks.append(para("Each follows from one line of the forward definition (SymPy differentiates it):"))
    sec.blocks.append(display(paired([fill(t) for t in doc.local])))
    if node.kind.name == "batchnorm":
        sec.blocks += batchnorm_blocks(sym, node)
    else:
        sec.blocks.append(Heading(para("Backward")))
        sec.blocks.append(para("The chain rule through the local derivatives above, from the upstream gradient ",
                               m(f"{sym.g(node.index)}_{{ij}} = \\partial {sym.E}/\\partial "
                                 f"{sym.out(node.index)}_{{ij}}"), ":"))
        backward = list(doc.backward)
        if node.kind.name == "dense" and node.opts["activation"].vector:
            backward[0] = (r"{delta}_{{ij}} = \sum_{{k}} {g}_{{ik}} \frac{{\partial {y}_{{ik}}}}{{\partial {z}_{{ij}}}}"
                           r" = {y}_{{ij}} \left({g}_{{ij}} - \sum_{{k}} {g}_{{ik}} {y}_{{ik}}\right)")
        sec.blocks.append(display([fill(t) for t in backward]))
        if any(r"\mathrel{{+}}=" in t for t in doc.backward):
            sec.blocks.append(para("Here ", m(r"\mathrel{+}="), " adds the contribution to whatever else reaches "
                                   "that output: a layer read by two layers receives the sum of both."))
    if doc.params:
        sec.blocks.append(Heading(para("Parameter gradients")))
        sec.blocks.append(para("Every sample of the batch uses the same parameters, so their gradients sum over ",
                               m("b"), ":"))
        decayed = node.kind.name == "dense" and sym.net.l2 > 0  # the weight's row comes with its decay below
        sec.blocks.append(display(paired([fill(t) for t in doc.params[1 if decayed else 0:]])))
        if decayed:
            w = sym.weight(node.index)
            sec.blocks.append(para("The weight decay ", m(r"\frac{\lambda}{2} \sum " + rf"\left({w}\right)^{{2}}"),
                                   " in the loss adds its own derivative to each weight's gradient:"))
            sec.blocks.append(display([fill(doc.params[0]) + rf" + \lambda \, {w}"],
                                      [f"$\\partial/\\partial {w}$ of the decay: $\\lambda {w}$"]))
    if node.kind.name == "dense":
        sec.blocks += dense_matrix_blocks(sym, node)
    for heading, eqs in doc.extra:
        sec.blocks += [Heading(para(heading)), display([fill(t) for t in eqs])]
    return sec


def batchnorm_blocks(sym: Symbols, node: Node) -> list:
    """The paper's per-path equations, the compact form, and the algebra that shows them equal."""
    doc, fill = node.kind.doc, filler(sym, node)
    x, g, E, B = sym.out(node.inputs[0]), sym.g(node.index), sym.E, sym.B
    paths = ["through $\\hat{x}_{ij}$", "through $\\sigma^2_{B,j}$", "through $\\mu_{B,j}$",
             "sum of the three paths"]
    blocks = [Heading(para("Backward: the per-path equations of the paper")),
              para("Ioffe and Szegedy (2015, section 3) follow ", m(f"{x}_{{ij}}"), " along its three paths to ",
                   m(E), ": through its own normalized value ", m(r"\hat{x}_{ij}"), ", through the batch variance ",
                   m(r"\sigma^2_{B,j}"), " and through the batch mean ", m(r"\mu_{B,j}"),
                   ". As printed there, with ", m(B), " for their batch size ", m("m"), ":")]
    own = rf"\frac{{\partial {E}}}{{\partial {x}_{{ij}}}}"
    part = own  # the input has other readers: only this layer's part of the gradient, g^{(l <- this)}
    if len(sym.net.consumers(node.inputs[0])) > 1:
        part = f"{sym.g(node.inputs[0], node.index)}_{{ij}}"

        def fill(t, _fill=fill):
            return _fill(t).replace(own, part)
    blocks.append(display([fill(t) for t in doc.backward[:4]], paths))
    blocks.append(Heading(para("Backward: the compact form")))
    blocks.append(para("With ", m(r"\hat{\sigma}_j = \sqrt{\sigma^2_{B,j} + \epsilon}"),
                       " the three paths fold into one line:"))
    blocks.append(display([fill(doc.backward[4])]))
    blocks.append(Heading(para("The two forms are equal")))
    blocks.append(para("Substitute the paper's ", m(rf"\partial {E}/\partial \mu_{{B,j}}"), " and ",
                       m(rf"\partial {E}/\partial \sigma^2_{{B,j}}"), " into its ",
                       m(rf"\partial {E}/\partial {x}_{{ij}}"), ". Each row below equals the one above it; "
                       "symbackprop's tests check every row with SymPy on batches of 3 and 4 samples."))
    for heading, steps in bn_algebra.PARTS:
        blocks.append(para(heading + ":"))
        rows, labels = [], []
        for step in steps:
            lhs = bn_algebra.fill(step.lhs, x, g, E, B)
            rhs = bn_algebra.fill(step.rhs, x, g, E, B)
            rows.append(fill_marks(f"{lhs} &= {rhs}", node).replace(own, part))
            labels.append(fill_marks(bn_algebra.fill(step.label, x, g, E, B), node))
        blocks.append(Display(rows, labels))
    blocks.append(para("The last row is the compact form: the paper's per-path equations and the compact form "
                       "give the same gradient."))
    return blocks


def fill_marks(text: str, node: Node) -> str:
    """``\\gamma_j`` and ``\\beta_j`` with the layer mark of ``node``."""
    return _PARAM_MARK.sub(lambda mt: rf"\{mt.group(1)}^{{({node.index})}}_{mt.group(2)}", text)


def dense_matrix_blocks(sym: Symbols, node: Node) -> list:
    """The dense layer's equations for the whole batch at once, with shapes."""
    l, p = node.index, node.inputs[0]
    n, fan_in, B = node.units, sym.net.width(p), sym.B
    W, X = sym.weight_matrix(l), sym.batch("a", p)
    Z, G, D = sym.batch("z", l), sym.batch("g", l), sym.batch("delta", l)
    bias = node.opts.get("bias", True)
    rows = [rf"{Z} = {X} \, {_t(W)}" + (rf" + \mathbf{{1}} \, {_t(sym.param(node, 'b', None))}" if bias else "")]
    labels = [f"${B} \\times {n}$"]
    if not node.opts["activation"].vector:
        rows.append(rf"{D} = {G} \odot {sym.f(l)}'\left({Z}\right)")
        labels.append(f"${B} \\times {n}$")
    decay = rf" + \lambda \, {W}" if sym.net.l2 > 0 else ""
    rows.append(rf"\frac{{\partial {sym.E}}}{{\partial {W}}} = {_t(D)} \, {X}{decay}")
    labels.append(f"${n} \\times {fan_in}$")
    if bias:
        rows.append(rf"\frac{{\partial {sym.E}}}{{\partial {sym.param(node, 'b', None)}}} = {_t(D)} \, \mathbf{{1}}")
        labels.append(f"${n}$")
    rows.append(rf"\frac{{\partial {sym.E}}}{{\partial {X}}} = {D} \, {W}")
    labels.append(f"${B} \\times {fan_in}$")
    return [Heading(para("Matrix form")),
            para("The same equations for the whole batch at once: bold letters are ", m(B), "-row matrices "
                 "(one row per sample), ", m(r"\mathbf{1}"), " is the column of ", m(B), " ones and ",
                 m(r"\odot"), " the element-wise product. The rows of ", m(W), " are the units of layer ",
                 m(str(l)), ":"),
            display(rows, labels)]


def _t(tex: str) -> str:
    """The transpose, inside an existing superscript: ``W^{(1)}`` -> ``W^{(1)\\top}``."""
    if tex.endswith("}") and "^{" in tex:
        return tex[:-1] + r"\top}"
    return tex + r"^{\top}"
