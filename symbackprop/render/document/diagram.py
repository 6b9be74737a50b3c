"""The summary paragraph and the network diagram (TikZ in the PDF, a pointer in Markdown)."""

from __future__ import annotations

from .. import tikz
from .context import ORDINAL, Context, number, optimizer_title
from .model import Diagram, Section, Text, para


def summary(ctx: Context) -> Text:
    net, d = ctx.net, ctx.d
    layers = []
    for l, layer in enumerate(net.layers, start=1):
        what = "an output layer" if l == d.L else ("a hidden layer" if d.L == 2 else
                                                   f"a {ORDINAL.get(l, f'{l}th')} hidden layer")
        bias = "" if layer.bias else " without bias"
        layers.append(f"{what} of {layer.units} {layer.activation.title} "
                      f"unit{'s' if layer.units > 1 else ''}{bias}")
    opt = net.optimizer
    text = (f"A {net.architecture} network: {net.inputs} input"
            f"{'s' if net.inputs > 1 else ''}, {', '.join(layers[:-1])}"
            f"{' and ' if len(layers) > 1 else ''}{layers[-1]}; {len(d.parameters)} parameters. "
            f"Loss: {net.loss.title}; "
            f"{optimizer_title(opt.name)} with learning rate {number(opt.learning_rate)}. "
            f"Notation: the {ctx.prof.name} profile (every symbol: appendix).")
    return para(text)


def section(ctx: Context) -> Section:
    net, d = ctx.net, ctx.d

    def caption(l: int) -> str:
        if l == 0:
            return f"input\\\\{net.inputs} unit{'s' if net.inputs > 1 else ''}"
        layer = net.layers[l - 1]
        kind = "output" if l == d.L else f"hidden {l}"
        return f"{kind}\\\\{layer.units} $\\times$ ${ctx.functions[l]}$"
    sec = Section("Results")
    diagram = tikz.diagram(net, ctx.pr, caption)
    note = "Each arrow is a weight"
    note += " (labelled)" if tikz.MAX_LABELLED_EDGES >= sum(
        net.sizes[l] * net.sizes[l - 1] for l in range(1, len(net.sizes))) else ""
    biased = [l for l, layer in enumerate(net.layers, start=1) if layer.bias]
    if len(biased) == 1:
        note += f"; each unit of layer {biased[0]} adds its bias (not drawn)."
    elif biased:
        note += ("; each unit of layers " + ", ".join(map(str, biased[:-1])) + f" and {biased[-1]}"
                 " adds its bias (not drawn).")
    else:
        note += "; no layer has a bias."
    sec.blocks.append(Diagram(diagram, para(note)))
    return sec
