"""The notation table: every symbol the document uses, with its meaning and shape."""

from __future__ import annotations

import sympy as sp

from .context import Context, number
from .model import Section, Table, m, para


def section(ctx: Context) -> Section:
    p, w, d = ctx.prof, ctx.prof.words, ctx.d
    L = d.L
    sizes = ", ".join(f"n_{{{l}}} = {n}" for l, n in enumerate(ctx.net.sizes))
    g = ctx.gpr

    def gen(kind: str) -> str:  # the layer-l vector, as the profile writes it
        return ctx.vec(kind, 1).replace("(1)", "(l)")

    W_entry = g.named("W", "l", ["j", "k"])
    names = set(ctx.functions.values())
    uniform = names.pop() if len(names) == 1 else "f^{(l)}"
    rows = [
        ([m(g.stem("x"))], [f"input vector ({w['a']}s of layer 0: ", m(g.named("a", 0, ["k"])), ")"],
         [m(r"n_{0} \times 1")]),
        ([m(gen("W"))],
         ["weights of layer ", m("l"), "; ", m(W_entry), " connects unit ", m("k"), " of layer ", m("l-1"),
          " to unit ", m("j"), " of layer ", m("l"),
          *(["; as a matrix, row ", m("j"), " holds the weights into unit ", m("j")]
            if p.weight_order == "from_to" else [])],
         [m(r"n_{l} \times n_{l-1}")]),
        ([m(gen("b"))], ["biases of layer ", m("l")], [m(r"n_{l} \times 1")]),
        ([m(gen("z"))],
         [f"{w['z']}s of layer ", m("l"), ", ", m(g.named("z", "l", ["j"]) + r" = \sum_{k} "
                                                + g.named("W", "l", ["j", "k"]) + " "
                                                + g.named("a", "l-1", ["k"]) + " + " + g.named("b", "l", ["j"]))],
         [m(r"n_{l} \times 1")]),
        ([m(gen("a"))],
         [f"{w['a']}s of layer ", m("l"), ", ", m(g.named("a", "l", ["j"]) + f" = {uniform}("
                                                + g.named("z", "l", ["j"]) + ")")],
         [m(r"n_{l} \times 1")]),
        ([m(g.stem("t"))], ["target vector"], [m(rf"n_{{{L}}} \times 1")]),
        ([m(p.loss)], [f"per-sample {w['E']}"], ["scalar"]),
        ([m(gen("delta"))],
         [f"{w['delta'] if p.descent_sign == 'minus' else 'error term'}s, ",
          m(g.named("delta", "l", ["j"]) + r" = \partial " + p.loss + r"/\partial " + g.named("z", "l", ["j"]))],
         [m(r"n_{l} \times 1")]),
    ]
    if p.descent_sign == "plus":
        rows.append(([m(p.delta)], ["the modified error of the update rules, ",
                                    m(g.named("Delta", "l", ["j"]) + " = -" + g.named("delta", "l", ["j"]))],
                     [m(r"n_{l} \times 1")]))
    for name in dict.fromkeys(ctx.functions.values()):
        layers = [l for l, f in ctx.functions.items() if f == name]
        act = ctx.net.layers[layers[0] - 1].activation
        which = f"layer{'s' if len(layers) > 1 else ''} {', '.join(map(str, layers))}"
        rows.append(([m(name)], [f"activation function of {which}: {act.title}"],
                     ["element-wise" if not act.vector else "vector"]))
    elementwise = [(l, n) for l, n in ctx.functions.items() if not ctx.net.layers[l - 1].activation.vector]
    if elementwise:
        primes = list(dict.fromkeys(f"{n}'" for _, n in elementwise))
        l0, f0 = elementwise[0]
        symbols = [part for p in primes for part in (", ", m(p))][1:]  # one math segment each: the cell can wrap
        rows.append((symbols,
                     ["derivative" + ("s" if len(primes) > 1 else "") + "; ",
                      m(rf"{f0}'\bigl({ctx.vec('z', l0)}\bigr)"), " applies it to every entry"],
                     ["element-wise"]))
    if p.output_value:
        rows.append(([m(p.output_value)], ["the network's output, ", m(f"{p.output_value} = " + ctx.vec("a", L))],
                     [m(rf"n_{{{L}}} \times 1")]))
    rows.append(([m(p.learning_rate)], ["learning rate, here ", m(number(ctx.net.optimizer.learning_rate))],
                 ["scalar"]))
    rows.append(([m(ctx.pr.batch_name("X")), ", ", m(ctx.pr.batch_name("A1").replace("(1)", "(l)"))],
                 ["batch form: the samples of a batch of ", m("B"), " stacked as rows"],
                 [m(r"B \times n_{l}")]))
    rows.append(([m(r"n_{l}")], ["number of units of layer ", m("l"), ": ", m(sizes)], ["integer"]))
    rows.append(([m(r"\odot")], ["element-wise (Hadamard) product"], [""]))
    if ctx.net.optimizer.name == "adam":
        rows.append(([m(r"\oslash")], ["element-wise division"], [""]))
    seen, unique = set(), []
    for r in rows:  # de-duplicate identical rows (profiles may share names), keep order
        key = repr(r[0])
        if key not in seen:
            seen.add(key)
            unique.append(r)
    table = Table([para("symbol"), para("meaning"), para("shape")], [[para(*c) for c in r] for r in unique])
    sec = Section("Appendix: notation")
    intro = para("Indices are 1-based: unit ", m("j"), " of layer ", m("l"), " receives from unit ", m("k"),
                 " of layer ", m("l-1"), ". Layer 0 is the input, layer ", m(str(L)), " the output.")
    sec.blocks += [intro, table]
    if not p.layer_superscript:
        sec.blocks.append(para("The general rules drop the layer mark, as the profile does: the letter "
                               "of an index says which layer its unit is in. The concrete derivations keep "
                               "the mark (for example ", m(ctx.tex(sp.Symbol("W1_1_1"))), ")."))
    return sec
