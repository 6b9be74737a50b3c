"""Derivation documents of a layer graph (:class:`~symbackprop.engine.layergraph.LayerDerivation`).

Results first: the network diagram and its parameters, the notation, the forward
pass of every layer, the backpropagation equations (the upstream gradient
through every layer, summed where a layer feeds two others, each parameter's
gradient with its weight-decay term) with shapes, the update rule, and the
verification line.  Then the derivations: the output layer with its loss, and
one section per layer kind from the registry's document texts
(:mod:`symbackprop.documents_graph_kinds`), batch normalization with the
paper's per-path equations, the compact form and the algebra between them.

The model is the one of :mod:`symbackprop.documents`; the templates are
``templates/graph_derivation.tex.j2`` and ``.md.j2``.
"""

from __future__ import annotations

import sys

import sympy as sp

from ..spec.graph import Node
from . import documents, documents_graph_worked, tikz_graph
from .document.render import formatted
from .documents import Diagram, Display, Document, Section, Table, Text, m, para
from .documents_graph_kinds import display, filler, kind_section, paired
from .documents_graph_symbols import Symbols, symbols
from .latex import escape_tex

CANONICAL = {("softmax", "categorical_cross_entropy"), ("sigmoid", "binary_cross_entropy"),
             ("identity", "half_sse")}
"""Output activation and loss pairs whose output delta is (a - t) / B."""


def _n(v: float) -> str:
    """A number for math mode: ``0.1``, or ``1 \\times 10^{-5}`` where ``{v:g}`` has an exponent."""
    text = f"{v:g}"
    if "e" not in text:
        return text
    mant, exp = text.split("e")
    return rf"{mant} \times 10^{{{int(exp)}}}"


def shape(*dims) -> str:
    return "$" + r" \times ".join(str(d) for d in dims) + "$"


class GraphBuilder:
    """Builds the :class:`~symbackprop.documents.Document` of a layer derivation in one profile."""

    def __init__(self, d, sym: Symbols):
        self.d, self.sym, self.net = d, sym, sym.net

    # ------------------------------------------------------------------ whole document

    def build(self) -> Document:
        sections = [self.network_section(), self.notation_section(), self.forward_section(),
                    self.backward_section(), self.update_section(), self.verification_section(),
                    self.output_section()]
        seen: dict[str, list[int]] = {}
        for node in self.net.nodes:
            seen.setdefault(node.kind.name, []).append(node.index)
        for layers in seen.values():
            sections.append(kind_section(self.sym, self.net.nodes[layers[0] - 1], layers))
        worked = documents_graph_worked.section(self.d, self.sym)
        if worked is not None:
            sections.append(worked)
        return Document(f"Backpropagation for {self.net.name}", self.sym.prof, self.summary(), sections)

    def summary(self) -> Text:
        net, sym = self.net, self.sym
        opt = net.optimizer
        decay = ([", with L2 weight decay ", m(rf"\lambda = {_n(net.l2)}"), " on the weights"]
                 if net.l2 > 0 else [])
        return para(f"A {net.architecture} network of {net.depth} layers on {net.inputs} input"
                    f"{'s' if net.inputs > 1 else ''}, with {net.parameter_count} parameters. The loss is "
                    f"{net.loss.title}, averaged over a batch of ", m(f"{sym.B} = {net.batch_size}"),
                    " samples", *decay, f"; training uses {_opt_title(opt.name)} with learning rate ",
                    m(f"{sym.prof.learning_rate} = {_n(opt.learning_rate)}"),
                    ". The results come first (forward pass, backpropagation, updates); each is derived in the "
                    f"sections after them. Notation: the {sym.prof.name} profile. " + self.verification_line())

    # ------------------------------------------------------------------ 1. network

    def layer_box(self, node: Node) -> str:
        o, name = node.opts, node.kind.name
        if name == "dense":
            act = o["activation"]
            return rf"{node.index}: dense\\{node.units} {escape_tex(act.name.replace('_', ' '))}"
        if name == "dropout":
            return rf"{node.index}: dropout\\$p = {_n(o['rate'])}$"
        if name == "residual":
            return rf"{node.index}: residual\\$+$ layer {o['from']}"
        return rf"{node.index}: {tikz_graph.SHORT[name]}\\{node.units} unit{'s' if node.units > 1 else ''}"

    def network_section(self) -> Section:
        sym, net = self.sym, self.net
        boxes = [rf"input\\{net.inputs} value{'s' if net.inputs > 1 else ''}"]
        boxes += [self.layer_box(n) for n in net.nodes]
        below = [f"${sym.out(0)}$"] + [
            f"${sym.out(n.index)}$" + ("\\\\" + ", ".join(n.param_name(p) for p in n.params) if n.params else "")
            for n in net.nodes]
        plain = [b.replace("\\\\", " ").replace("$", "").replace("\\_", "_") for b in boxes]
        tikz = tikz_graph.diagram(net, boxes, below)
        caption = para("Each box is a layer, with its output symbol and parameters underneath; arrows carry "
                       "a batch of outputs forward. "
                       + ("A skip arc adds an earlier layer's output to a later one, so that layer's output "
                          "feeds two layers." if any(len(n.inputs) > 1 for n in net.nodes) else ""))
        sec = Section("The network")
        sec.blocks.append(GraphDiagram(tikz, caption, tikz_graph.ascii_chain(net, plain)))
        rows = []
        for node in net.nodes:
            entries = [(name, p, shp) for name, nd, p, shp in net.parameter_shapes() if nd is node]
            if not entries:
                continue
            names, shapes, meaning = [], [], []
            for name, p, shp in entries:
                names += [f"{name} = ", m(sym.param(node, p.stem, None)), ", "]
                shapes += [m(r" \times ".join(map(str, shp))), ", "]
                meaning.append(p.title + (" (decayed)" if p.decay and net.l2 > 0 else ""))
            rows.append([para(str(node.index)), para(*names[:-1]), para(*shapes[:-1]), para(", ".join(meaning))])
        sec.blocks.append(para("Parameters, as named in the generated code and in gradients.json:"))
        sec.blocks.append(Table([para("layer"), para("name = symbol"), para("shapes"), para("meaning")], rows))
        return sec

    # ------------------------------------------------------------------ 2. notation

    def notation_section(self) -> Section:
        sym, net, p = self.sym, self.net, self.sym.prof
        L = net.depth
        widths = ", ".join(f"n_{{{i}}} = {w}" for i, w in enumerate(net.sizes))
        rows = [
            [m(f"{sym.out(0)}_{{ik}}"), "input ", m("k"), " of sample ", m("i"), "; a batch is ", m(sym.B), " rows",
             shape(sym.B, sym.n(0))],
            [m(f"{sym.target}_{{ij}}"), "target ", m("j"), " of sample ", m("i"), shape(sym.B, sym.n(L))],
            [m(f"{sym.out(1).replace('(1)', '(l)')}_{{ij}}"), "output of layer ", m("l"), " for sample ",
             m("i"), ", unit ", m("j"), shape(sym.B, "n_{l}")],
        ]
        dense = [n for n in net.nodes if n.kind.name == "dense"]
        if dense:
            rows.append([m(f"{sym.pre(1).replace('(1)', '(l)')}_{{ij}}"), f"{p.words['z']} of dense layer ", m("l"),
                         shape(sym.B, "n_{l}")])
            rows.append([m(sym.delta(1).replace("(1)", "(l)") + "_{ij}"), "error term of dense layer ", m("l"), ", ",
                         m(rf"\partial {sym.E} / \partial {sym.pre(1).replace('(1)', '(l)')}_{{ij}}"),
                         shape(sym.B, "n_{l}")])
        rows.append([m(f"{sym.g(1).replace('(1)', '(l)')}_{{ij}}"), "upstream gradient, ",
                     m(rf"\partial {sym.E} / \partial {sym.out(1).replace('(1)', '(l)')}_{{ij}}"),
                     shape(sym.B, "n_{l}")])
        if any(len(net.consumers(n.index)) > 1 for n in net.nodes):
            rows.append([m(sym.g(1, 2).replace(r"1 \leftarrow 2", r"l \leftarrow r") + "_{ij}"),
                         "the part of it that arrives through layer ", m("r"), " (layer ", m("l"),
                         " feeds more than one layer)", shape(sym.B, "n_{l}")])
        for f in dict.fromkeys(sym.f(n.index) for n in dense):
            users = [n for n in dense if sym.f(n.index) == f]
            acts = ", ".join(dict.fromkeys(n.opts["activation"].title for n in users))
            which = ", ".join(str(n.index) for n in users)
            rows.append([m(f), f"activation function of layer{'s' if len(users) > 1 else ''} {which}: {acts}",
                         "element-wise" if not users[0].opts["activation"].vector else "per sample"])
        rows.append([m(r"\ell_{i}"), f"per-sample {p.words['E']} of sample ", m("i"), "scalar"])
        rows.append([m(sym.E), f"the {p.words['E']} minimized: the batch mean of ", m(r"\ell_i"),
                     *([" plus the weight decay"] if net.l2 > 0 else []), "scalar"])
        if net.l2 > 0:
            rows.append([m(r"\lambda"), "weight-decay coefficient, here ", m(_n(net.l2)), "scalar"])
        rows.append([m(sym.B), "batch size, here ", m(str(net.batch_size)), "integer"])
        rows.append([m("n_{l}"), "number of units of layer ", m("l"), ": ", m(widths), "integer"])
        kinds = {n.kind.name for n in net.nodes}
        if kinds & {"batchnorm", "layernorm"}:
            rows.append([m(r"\hat{x}, \hat{\sigma}"), "normalized input and ",
                         m(r"\sqrt{\sigma^2 + \epsilon}"), " of the normalization layer at hand", ""])
            rows.append([m(r"\gamma^{(l)}_{j}, \beta^{(l)}_{j}"), "scale and shift of unit ", m("j"),
                         " of normalization layer ", m("l"), shape("n_{l}")])
            eps = ", ".join(dict.fromkeys(_n(n.opts['epsilon']) for n in net.nodes if "epsilon" in n.opts))
            rows.append([m(r"\epsilon"), "small constant added to the variance, here ", m(eps), "scalar"])
        if "batchnorm" in kinds:
            rows.append([m(r"\mu_{B,j}, \sigma^2_{B,j}"), "batch mean and variance of unit ", m("j"),
                         " (over the samples)", shape("n_{l}")])
        if "layernorm" in kinds:
            rows.append([m(r"\mu_{i}, \sigma^2_{i}"), "mean and variance of sample ", m("i"), " (over the units)",
                         shape(sym.B)])
        if "dropout" in kinds:
            rows.append([m("m_{ij}, p"), "dropout mask (1 keeps the unit, 0 drops it) and drop rate",
                         shape(sym.B, "n_{l}")])
        rows.append([m(p.learning_rate), "learning rate, here ", m(_n(net.optimizer.learning_rate)), "scalar"])
        rows.append([m("i, b"), "sample indices (", m("b"), " in sums over the batch); ", m("j, k"),
                     " unit indices", ""])
        table_rows = [[para(r[0]), para(*r[1:-1]), para(*_cell(r[-1]))] for r in rows]
        sec = Section("Notation")
        sec.blocks.append(para("Rows are samples and columns are units: every quantity of a layer is a ",
                               m(sym.B), "-row matrix, and a parameter is shared by all rows."))
        sec.blocks.append(Table([para("symbol"), para("meaning"), para("shape")], table_rows))
        return sec

    # ------------------------------------------------------------------ 3. forward

    def dense_forward(self, node: Node) -> list[str]:
        sym, l = self.sym, node.index
        x = sym.out(node.inputs[0])
        z = rf"{sym.pre(l)}_{{ij}} = \sum_{{k}} {sym.weight(l)} \, {x}_{{ik}}"
        if node.opts.get("bias", True):
            z += f" + {sym.param(node, 'b')}"
        if node.opts["activation"].vector:
            a = rf"{sym.out(l)}_{{ij}} = \frac{{e^{{{sym.pre(l)}_{{ij}}}}}}{{\sum_{{k}} e^{{{sym.pre(l)}_{{ik}}}}}}"
        else:
            a = rf"{sym.out(l)}_{{ij}} = {sym.f(l)}\left({sym.pre(l)}_{{ij}}\right)"
        return [z, a]

    def forward_section(self) -> Section:
        sec, sym, net = Section("Forward pass"), self.sym, self.net
        sec.blocks.append(para("Layer by layer, for sample ", m("i"), " and unit ", m("j"),
                               "; the label names the layer and the shape of its output:"))
        texts, labels = [], []
        for node in net.nodes:
            fill = filler(sym, node)
            rows = self.dense_forward(node) if node.kind.name == "dense" else [fill(t) for t in node.kind.doc.forward]
            rows = paired(rows) if len(rows) > 2 else rows
            texts += rows
            labels += [f"layer {node.index}: {sym.layer_title(node)}"] + [""] * (len(rows) - 1)
            labels[-1] = (labels[-1] + ", " if labels[-1] else "") + shape(sym.B, node.units)
        sec.blocks.append(display(texts, labels))
        sec.blocks.append(para("The loss: the per-sample loss, averaged over the batch"
                               + (", plus the weight decay of every weight matrix:" if net.l2 > 0 else ":")))
        sec.blocks.append(display(self.loss_rows(), ["per sample", "scalar"]))
        return sec

    def loss_rows(self) -> list[str]:
        sym, net = self.sym, self.net
        L = net.depth
        a, t, n = sp.Symbol("aa"), sp.Symbol("tt"), sp.Symbol("nn")
        names = {a: f"{sym.out(L)}_{{ij}}", t: f"{sym.target}_{{ij}}", n: sym.n(L)}
        scale = net.loss.scale(n)
        expr = net.loss.term(a, t)
        term = sp.latex(expr, symbol_names=names)
        if isinstance(expr, sp.Add) or expr.could_extract_minus_sign():
            term = rf"\left({term}\right)"
        lead = "" if scale == 1 else sp.latex(scale, symbol_names=names) + " "
        ell = rf"\ell_{{i}} = {lead}\sum_{{j=1}}^{{{sym.n(L)}}} {term}"
        E = rf"{sym.E} = \frac{{1}}{{{sym.B}}} \sum_{{i=1}}^{{{sym.B}}} \ell_{{i}}"
        if net.l2 > 0:
            layers = ",".join(str(nd.index) for nd in net.nodes if nd.kind.name == "dense")
            E += (rf" + \frac{{\lambda}}{{2}} \sum_{{l \in \{{{layers}\}}}} \sum_{{j,k}} "
                  rf"\left({sym.weight('l')}\right)^{{2}}")
        return [ell, E]

    # ------------------------------------------------------------------ 4. backward

    def canonical(self) -> bool:
        return (self.net.output.opts["activation"].name, self.net.loss.name) in CANONICAL

    def output_gradient(self) -> str:
        """``g^{(L)}_{ij} = dE/da^{(L)}_{ij}`` from the loss, by SymPy."""
        sym, net = self.sym, self.net
        L = net.depth
        a, t, n = sp.Symbol("aa"), sp.Symbol("tt"), sp.Symbol("nn")
        names = {a: f"{sym.out(L)}_{{ij}}", t: f"{sym.target}_{{ij}}", n: sym.n(L)}
        d = sp.factor(sp.diff(net.loss.scale(n) * net.loss.term(a, t), a))
        body = sp.latex(d, symbol_names=names)
        body = rf"\left({body}\right)" if isinstance(d, sp.Add) else body
        return rf"{sym.g(L)}_{{ij}} = \frac{{1}}{{{sym.B}}} \, {body}"

    def sends(self, node: Node, src: int) -> str:
        """The symbol of what ``node`` sends back to layer ``src``."""
        via = node.index if len(self.net.consumers(src)) > 1 else None
        return f"{self.sym.g(src, via)}_{{ij}}"

    def backward_rows(self, node: Node) -> tuple[list[str], list[str]]:
        sym, net, l = self.sym, self.net, node.index
        name, p = node.kind.name, node.inputs[0]
        rows, labels = [], []

        def add(tex, label=""):
            rows.append(tex)
            labels.append(label)

        readers = net.consumers(l)
        if len(readers) > 1:
            add(f"{sym.g(l)}_{{ij}} = " + " + ".join(f"{sym.g(l, r.index)}_{{ij}}" for r in readers),
                "chain rule: the paths add")
        if name == "dense":
            if l == net.depth and self.canonical():
                add(rf"{sym.delta(l)}_{{ij}} = \frac{{1}}{{{sym.B}}} \left({sym.out(l)}_{{ij}} - "
                    rf"{sym.target}_{{ij}}\right)", shape(sym.B, node.units))
            else:
                if l == net.depth:
                    add(self.output_gradient(), shape(sym.B, node.units))
                act = node.opts["activation"]
                if act.vector:
                    add(rf"{sym.delta(l)}_{{ij}} = {sym.out(l)}_{{ij}} \left({sym.g(l)}_{{ij}} - \sum_{{k}} "
                        rf"{sym.g(l)}_{{ik}} {sym.out(l)}_{{ik}}\right)", shape(sym.B, node.units))
                else:
                    add(rf"{sym.delta(l)}_{{ij}} = {sym.g(l)}_{{ij}} \, {sym.fprime(l)}", shape(sym.B, node.units))
                    add(rf"{sym.fprime(l)} = {sym.fprime_value(l)}")
            x = sym.out(p)
            decay = rf" + \lambda \, {sym.weight(l)}" if net.l2 > 0 else ""
            add(rf"\frac{{\partial {sym.E}}}{{\partial {sym.weight(l)}}} = \sum_{{b=1}}^{{{sym.B}}} "
                rf"{sym.delta(l)}_{{bj}} \, {x}_{{bk}}{decay}", shape(node.units, net.width(p)))
            if node.opts.get("bias", True):
                add(rf"\frac{{\partial {sym.E}}}{{\partial {sym.param(node, 'b')}}} = \sum_{{b=1}}^{{{sym.B}}} "
                    rf"{sym.delta(l)}_{{bj}}", shape(node.units))
            if p > 0:
                add(self.sends(node, p).replace("_{ij}", "_{ik}") + rf" = \sum_{{j}} {sym.delta(l)}_{{ij}} "
                    + sym.weight(l), shape(sym.B, net.width(p)))
            return rows, labels
        fill = filler(sym, node)
        doc = node.kind.doc
        dx = rf"\frac{{\partial {sym.E}}}{{\partial {sym.out(p)}_{{ij}}}}"
        if name == "residual":
            for src in node.inputs:
                if src > 0:
                    add(f"{self.sends(node, src)} = {sym.g(l)}_{{ij}}", shape(sym.B, node.units))
            return rows, labels
        texts = {"batchnorm": doc.backward[-1:], "layernorm": doc.backward, "dropout": doc.backward}[name]
        for t in texts:
            tex = fill(t)
            if p > 0:
                tex = tex.replace(dx, self.sends(node, p))
            if p > 0 or dx not in tex:
                add(tex, shape(sym.B, node.units) if self.sends(node, p) in tex else "")
        for t in paired([fill(t) for t in doc.params]):
            add(t, shape(node.units) + " each")
        return rows, labels

    def backward_section(self) -> Section:
        sec, sym = Section("Backpropagation"), self.sym
        sec.blocks.append(para("From the output back to the input. Each layer receives the gradient of ",
                               m(sym.E), " with respect to its output, ", m(f"{sym.g(1).replace('(1)', '(l)')}_{{ij}}"),
                               ", gives its parameters' gradients, and sends the gradient with respect to its "
                               "input back to the layer it reads; where a layer feeds two layers the two "
                               "contributions add."))
        for node in reversed(self.net.nodes):
            rows, labels = self.backward_rows(node)
            sec.blocks.append(para(f"Layer {node.index} ({sym.layer_title(node)}):"))
            sec.blocks.append(display(rows, labels))
        return sec

    # ------------------------------------------------------------------ 5. updates

    def update_section(self) -> Section:
        sym, net, opt = self.sym, self.net, self.net.optimizer
        a = sym.prof.learning_rate
        theta = r"\theta"
        dE = rf"\frac{{\partial {sym.E}}}{{\partial {theta}}}"
        sec = Section("Updates")
        names = ", ".join(name for name, *_ in net.parameter_shapes())
        if opt.name == "sgd":
            rows = [rf"{theta} &\leftarrow {theta} - {a} \, {dE}"]
            text = [f"{_opt_title(opt.name, True)} with ", m(f"{a} = {_n(opt.learning_rate)}"), ":"]
        elif opt.name == "momentum":
            rows = [rf"v_{{{theta}}} &\leftarrow \rho \, v_{{{theta}}} - {a} \, {dE}",
                    rf"{theta} &\leftarrow {theta} + v_{{{theta}}}"]
            text = [f"{_opt_title(opt.name, True)} with ", m(f"{a} = {_n(opt.learning_rate)}"), " and momentum ",
                    m(rf"\rho = {_n(opt.momentum)}"), " (the velocity ", m(rf"v_{{{theta}}}"), " starts at zero):"]
        else:
            rows = [rf"m_{{{theta}}} &\leftarrow \beta_1 m_{{{theta}}} + (1 - \beta_1) \, {dE}",
                    rf"v_{{{theta}}} &\leftarrow \beta_2 v_{{{theta}}} + (1 - \beta_2) \left({dE}\right)^{{2}}",
                    (rf"{theta} &\leftarrow {theta} - {a} \, \frac{{m_{{{theta}}} / (1 - \beta_1^{{\tau}})}}"
                    rf"{{\sqrt{{v_{{{theta}}} / (1 - \beta_2^{{\tau}})}} + \varepsilon}}")]
            text = [f"{_opt_title(opt.name, True)} with ", m(f"{a} = {_n(opt.learning_rate)}"), ", ",
                    m(rf"\beta_1 = {_n(opt.beta1)}, \beta_2 = {_n(opt.beta2)}, \varepsilon = {_n(opt.epsilon)}"),
                    "; the moments ", m(rf"m_{{{theta}}}, v_{{{theta}}}"), " start at zero and ", m(r"\tau"),
                    " counts the steps (element-wise):"]
        sec.blocks.append(para(*text))
        sec.blocks.append(Display(rows, [""] * len(rows)))
        sec.blocks.append(para("for every parameter ", m(theta), f" ({names}), with the gradients of the "
                               "previous section."))
        if net.l2 > 0 and opt.name == "sgd":
            dense = next(n for n in net.nodes if n.kind.name == "dense")
            w, x = sym.weight(dense.index), sym.out(dense.inputs[0])
            sec.blocks.append(para("For a weight the decay term shrinks it before the step, for example:"))
            sec.blocks.append(Display([(rf"{w} &\leftarrow (1 - {a} \lambda) \, {w} - {a} \sum_{{b=1}}^{{{sym.B}}} "
                                       rf"{sym.delta(dense.index)}_{{bj}} \, {x}_{{bk}}")], ["weight decay"]))
        return sec

    # ------------------------------------------------------------------ 6. verification

    def verification_line(self) -> str:
        v = getattr(self.d, "verification", None)
        return v.headline() if v is not None else "Not verified: this document was built without verification."

    def verification_section(self) -> Section:
        return Section("Verification", [para(self.verification_line())])

    # ------------------------------------------------------------------ 7. output layer

    def output_section(self) -> Section:
        sym, net = self.sym, self.net
        L, node = net.depth, net.output
        sec = Section("Derivation: the output layer and the loss")
        act, loss = node.opts["activation"].name, net.loss.name
        a, t, z, d = (f"{sym.out(L)}_{{ik}}", f"{sym.target}_{{ik}}", f"{sym.pre(L)}_{{ij}}", sym.delta(L))
        E, B = sym.E, sym.B
        if (act, loss) == ("softmax", "categorical_cross_entropy"):
            sec.blocks.append(para("Softmax with cross-entropy. Every output ", m(a), " depends on every ", m(z),
                                   ", so the chain rule sums over ", m("k"), "; ", m("[j = k]"),
                                   " is 1 when ", m("j = k"), " and 0 otherwise:"))
            rows = [rf"\frac{{\partial {E}}}{{\partial {a}}} &= -\frac{{{t}}}{{{B} \, {a}}}",
                    rf"\frac{{\partial {a}}}{{\partial {z}}} &= {a} \left([j = k] - {sym.out(L)}_{{ij}}\right)",
                    (rf"{d}_{{ij}} = \frac{{\partial {E}}}{{\partial {z}}} &= \sum_{{k}} "
                    rf"\frac{{\partial {E}}}{{\partial {a}}} \frac{{\partial {a}}}{{\partial {z}}}"),
                    rf"&= -\frac{{1}}{{{B}}} \sum_{{k}} {t} \left([j = k] - {sym.out(L)}_{{ij}}\right)",
                    rf"&= \frac{{1}}{{{B}}} \left(-{sym.target}_{{ij}} + {sym.out(L)}_{{ij}} \sum_{{k}} {t}\right)",
                    rf"&= \frac{{1}}{{{B}}} \left({sym.out(L)}_{{ij}} - {sym.target}_{{ij}}\right)"]
            labels = [f"derivative of $-{t} \\log {a}$, with the $1/{B}$ of the batch mean",
                      "softmax Jacobian (cases $j = k$ and $j \\ne k$)", "chain rule over every output $k$",
                      "the two lines above", "only $k = j$ keeps $[j = k]$",
                      f"targets sum to one: $\\sum_{{k}} {t} = 1$"]
        elif (act, loss) == ("sigmoid", "binary_cross_entropy"):
            a, z = f"{sym.out(L)}_{{ij}}", f"{sym.pre(L)}_{{ij}}"
            t = f"{sym.target}_{{ij}}"
            sec.blocks.append(para("Sigmoid with binary cross-entropy:"))
            rows = [(rf"\frac{{\partial {E}}}{{\partial {a}}} &= \frac{{1}}{{{B}}} \left(-\frac{{{t}}}{{{a}}} + "
                    rf"\frac{{1 - {t}}}{{1 - {a}}}\right) = \frac{{{a} - {t}}}{{{B} \, {a} \left(1 - {a}\right)}}"),
                    rf"\frac{{\partial {a}}}{{\partial {z}}} &= {a} \left(1 - {a}\right)",
                    rf"{d}_{{ij}} &= \frac{{1}}{{{B}}} \left({a} - {t}\right)"]
            labels = ["derivative of the loss; common denominator", "$\\sigma' = \\sigma (1 - \\sigma)$",
                      "chain rule: the product cancels"]
        elif (act, loss) == ("identity", "half_sse"):
            a, t = f"{sym.out(L)}_{{ij}}", f"{sym.target}_{{ij}}"
            sec.blocks.append(para("Identity output with half the squared error:"))
            rows = [rf"{d}_{{ij}} = \frac{{\partial {E}}}{{\partial {a}}} &= \frac{{1}}{{{B}}} \left({a} - {t}\right)"]
            labels = ["derivative of $\\frac{1}{2}(a - t)^2$; the identity's derivative is 1"]
        else:
            sec.blocks.append(para("The loss gives the upstream gradient of the output layer; the dense layer's "
                                   "rule (below) turns it into the error term:"))
            rows = [r.replace(" = ", " &= ", 1) for r in [self.output_gradient()]]
            labels = ["derivative of the per-sample loss, with the $1/B$ of the batch mean"]
        sec.blocks.append(Display(rows, labels))
        return sec


class GraphDiagram(Diagram):
    """A diagram with a plain-text version for Markdown."""

    def __init__(self, tikz: str, caption: Text, ascii: str):
        super().__init__(tikz, caption)
        self.ascii = ascii


def _cell(value: str) -> list:
    return [m(value[1:-1])] if value.startswith("$") and value.endswith("$") else [value]


def _opt_title(name: str, capital: bool = False) -> str:
    title = {"sgd": "gradient descent", "momentum": "gradient descent with momentum", "adam": "Adam"}[name]
    return title[0].upper() + title[1:] if capital else title


# ----------------------------------------------------------------------------- rendering


def build(d, notation: str | None = None) -> Document:
    """The document model of a layer derivation in the profile ``notation`` (default: the spec's, else seed)."""
    return GraphBuilder(d, symbols(d.network, notation)).build()


def _formatted(doc: Document, escape) -> dict:
    out = formatted(doc, escape)
    for section, model in zip(out["sections"], doc.sections):
        for block, b in zip(section["blocks"], model.blocks):
            if isinstance(b, GraphDiagram):
                block["ascii"] = b.ascii
            if block["kind"] == "table":
                block["numbers"] = isinstance(b, documents_graph_worked.NumbersTable)
    return out


def render_tex(doc: Document) -> str:
    from .. import _templates
    from .latex import escape_tex

    return _templates.render("graph_derivation.tex.j2", doc=_formatted(doc, escape_tex))


def render_markdown(doc: Document) -> str:
    from .. import _templates
    from .markdown import escape_markdown

    return _templates.render("graph_derivation.md.j2", doc=_formatted(doc, escape_markdown))


def tex(d, notation: str | None = None) -> str:
    return render_tex(build(d, notation))


def markdown(d, notation: str | None = None) -> str:
    return render_markdown(build(d, notation))


def document_outputs(d, args) -> dict[str, bytes]:
    """``derive -o DIR`` for a layer graph: derivation.tex, derivation.md and (when possible) derivation.pdf."""
    notation = getattr(args, "notation", None)
    want_pdf = getattr(args, "pdf", None)
    documents.check_tex_engine(args)
    doc = build(d, notation)
    source = render_tex(doc)
    files = {"derivation.tex": source.encode(), "derivation.md": render_markdown(doc).encode()}
    if want_pdf is not False and documents.tex_engine() is not None:
        progress = getattr(args, "progress", None)
        if progress is not None:
            progress("derivation.pdf (pdflatex)")
        files["derivation.pdf"] = documents.compile_pdf(source)
    elif want_pdf is None:
        print("note: derivation.pdf skipped, pdflatex is not installed (texlive-latex-base, texlive-pictures)",
              file=sys.stderr)
    return files


__all__ = ["GraphBuilder", "build", "document_outputs", "markdown", "render_markdown", "render_tex", "tex"]
