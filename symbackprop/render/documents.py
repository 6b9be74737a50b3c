"""Derivation documents: build a document model from a Derivation, render TeX and Markdown, compile PDF.

Everything shown is read from the :class:`~symbackprop.engine.derive.Derivation`
(steps, deltas, general form, verification) and printed by
:class:`~symbackprop.render.latex.NotationPrinter`; the templates in ``templates/``
hold only the skeleton.  The model is a list of sections of blocks:

* ``Text``: a paragraph of prose and inline-math segments (escaped per format);
* ``Display``: rows of an ``align*`` (LaTeX), each with an optional rule label;
* ``Table``: a header and rows of ``Text`` cells;
* ``Heading``: a run-in subsection title;
* ``Diagram``: TikZ source (PDF only).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import sympy as sp

from ..engine import general, matrixform
from ..engine.derive import PER_WEIGHT_LIMIT, Derivation, E, Step
from ..engine.general import J, K
from ..errors import SymbackpropError
from ..registry.stable import stability_note
from . import tikz
from .latex import ActivationFn, ActivationPrime, NotationPrinter, aligned, rhs_lines
from .notation import Profile
from .notation import profile as notation_profile

"""Above this many parameters, ``--per-weight auto`` shows one representative unit per layer."""


class DocumentError(SymbackpropError):
    """A document cannot be produced as asked (e.g. --pdf without a TeX engine)."""


# ----------------------------------------------------------------------------- model


@dataclass
class Text:
    parts: list[tuple[str, str]]  # ("text", prose) or ("math", latex)
    kind: str = "text"


@dataclass
class Display:
    rows: list[str]
    labels: list[str]
    kind: str = "display"


@dataclass
class Table:
    header: list[Text]
    rows: list[list[Text]]
    kind: str = "table"


@dataclass
class Heading:
    text: Text
    kind: str = "heading"


@dataclass
class Diagram:
    tikz: str
    caption: Text
    kind: str = "diagram"


@dataclass
class Section:
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class Document:
    title: str
    profile: Profile
    summary: Text
    sections: list[Section]


def para(*parts) -> Text:
    """``para("text ", ("math", "x"), " more")``: strings are prose, tuples are math."""
    return Text([p if isinstance(p, tuple) else ("text", p) for p in parts])


def m(tex: str) -> tuple[str, str]:
    return ("math", tex)


# ----------------------------------------------------------------------------- helpers

ORDINAL = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def _idx(name: str) -> sp.Symbol:
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


class Builder:
    """Builds the :class:`Document` of one derivation in one notation profile."""

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
            lines = rhs_lines(rhs, printer, _width(label)) if not isinstance(rhs, str) else [rhs]
            new = aligned(left, lines, relation if left else "=")
            rows.extend(new)
            labels.extend([label] + [""] * (len(new) - 1))
        return Display(rows, labels)

    def vec(self, kind: str, l: int) -> str:
        return self.pr.named_vector(kind, l)

    # ------------------------------------------------------------------ document

    def build(self) -> Document:
        net = self.net
        sections = [self.diagram_section(), self.notation_section(), self.forward_section(),
                    self.loss_section(), self.chain_section(), self.recursion_section(),
                    self.update_section(), self.verification_section()]
        title = f"Backpropagation for {net.name}"
        return Document(title, self.prof, self.summary(), sections)

    def summary(self) -> Text:
        net, d = self.net, self.d
        layers = []
        for l, layer in enumerate(net.layers, start=1):
            what = "an output layer" if l == d.L else f"a {ORDINAL.get(l, f'{l}th')} hidden layer"
            bias = "" if layer.bias else " without bias"
            layers.append(f"{what} of {layer.units} {layer.activation.title} "
                          f"unit{'s' if layer.units > 1 else ''}{bias}")
        opt = net.optimizer
        text = (f"A {net.architecture} feed-forward network: {net.inputs} input"
                f"{'s' if net.inputs > 1 else ''}, {', '.join(layers[:-1])}"
                f"{' and ' if len(layers) > 1 else ''}{layers[-1]}; {len(d.parameters)} parameters "
                f"(weights and biases). The loss is {net.loss.title}; training uses "
                f"{_optimizer_title(opt.name)} with learning rate {number(opt.learning_rate)}. "
                f"Every formula below was derived by SymPy from the forward definition of the network "
                f"and verified (appendix). Notation: the {self.prof.name} profile.")
        return para(text)

    # ------------------------------------------------------------------ 2. diagram

    def diagram_section(self) -> Section:
        def caption(l: int) -> str:
            if l == 0:
                return f"input\\\\{self.net.inputs} unit{'s' if self.net.inputs > 1 else ''}"
            layer = self.net.layers[l - 1]
            kind = "output" if l == self.d.L else f"hidden {l}"
            return f"{kind}\\\\{layer.units} $\\times$ ${self.functions[l]}$"
        sec = Section("The network")
        diagram = tikz.diagram(self.net, self.pr, caption)
        note = "Each arrow carries a weight"
        note += " (labelled with its symbol)" if tikz.MAX_LABELLED_EDGES >= sum(
            self.net.sizes[l] * self.net.sizes[l - 1] for l in range(1, len(self.net.sizes))) else ""
        biased = [l for l, layer in enumerate(self.net.layers, start=1) if layer.bias]
        if biased:
            note += "; every unit of layers " + ", ".join(map(str, biased)) + " also adds its bias, not drawn."
        else:
            note += "; no layer has a bias."
        sec.blocks.append(Diagram(diagram, para(note)))
        return sec

    # ------------------------------------------------------------------ 3. notation

    def notation_section(self) -> Section:
        p, w, d = self.prof, self.prof.words, self.d
        L = d.L
        sizes = ", ".join(f"n_{{{l}}} = {n}" for l, n in enumerate(self.net.sizes))
        g = self.gpr
        W_entry = g.named("W", "l", ["j", "k"])
        names = set(self.functions.values())
        uniform = names.pop() if len(names) == 1 else "f^{(l)}"
        rows = [
            ([m(g.stem("x"))], [f"input vector ({w['a']}s of layer 0: ", m(g.named("a", 0, ["k"])), ")"],
             [m(r"n_{0} \times 1")]),
            ([m(self.vec("W", 1).replace("(1)", "(l)"))],
             ["weights of layer ", m("l"), "; ", m(W_entry), " connects unit ", m("k"), " of layer ", m("l-1"),
              " to unit ", m("j"), " of layer ", m("l"),
              *(["; as a matrix, row ", m("j"), " holds the weights into unit ", m("j")]
                if p.weight_order == "from_to" else [])],
             [m(r"n_{l} \times n_{l-1}")]),
            ([m(self.vec("b", 1).replace("(1)", "(l)"))], ["biases of layer ", m("l")], [m(r"n_{l} \times 1")]),
            ([m(self.vec("z", 1).replace("(1)", "(l)"))],
             [f"{w['z']}s of layer ", m("l"), ", ", m(g.named("z", "l", ["j"]) + r" = \sum_{k} "
                                                    + g.named("W", "l", ["j", "k"]) + " "
                                                    + g.named("a", "l-1", ["k"]) + " + " + g.named("b", "l", ["j"]))],
             [m(r"n_{l} \times 1")]),
            ([m(self.vec("a", 1).replace("(1)", "(l)"))],
             [f"{w['a']}s of layer ", m("l"), ", ", m(g.named("a", "l", ["j"]) + f" = {uniform}("
                                                    + g.named("z", "l", ["j"]) + ")")],
             [m(r"n_{l} \times 1")]),
            ([m(g.stem("t"))], ["target vector"], [m(rf"n_{{{L}}} \times 1")]),
            ([m(p.loss)], [f"per-sample {w['E']}"], ["scalar"]),
            ([m(self.vec("delta", 1).replace("(1)", "(l)"))],
             [f"{w['delta'] if p.descent_sign == 'minus' else 'error term'}s, ",
              m(g.named("delta", "l", ["j"]) + r" = \partial " + p.loss + r"/\partial " + g.named("z", "l", ["j"]))],
             [m(r"n_{l} \times 1")]),
        ]
        if p.descent_sign == "plus":
            rows.append(([m(p.delta)], ["the modified error of the update rules, ",
                                        m(g.named("Delta", "l", ["j"]) + " = -" + g.named("delta", "l", ["j"]))],
                         [m(r"n_{l} \times 1")]))
        for name in dict.fromkeys(self.functions.values()):
            layers = [l for l, f in self.functions.items() if f == name]
            act = self.net.layers[layers[0] - 1].activation
            which = f"layer{'s' if len(layers) > 1 else ''} {', '.join(map(str, layers))}"
            rows.append(([m(name)], [f"activation function of {which}: {act.title}"],
                         ["element-wise" if not act.vector else "vector"]))
        elementwise = [n for l, n in self.functions.items() if not self.net.layers[l - 1].activation.vector]
        if elementwise:
            f = elementwise[0]
            rows.append(([m(f"{f}'")], ["its derivative; ", m(f"{f}'(z^{{(l)}})"), " applies it to every entry"],
                         ["element-wise"]))
        if p.output_value:
            rows.append(([m(p.output_value)], ["the network's output, ", m(f"{p.output_value} = "
                                                                         + self.vec("a", L))],
                         [m(rf"n_{{{L}}} \times 1")]))
        rows.append(([m(p.learning_rate)], ["learning rate, here ", m(number(self.net.optimizer.learning_rate))],
                     ["scalar"]))
        rows.append(([m(self.pr.batch_name("X")), ", ", m(self.pr.batch_name("A1").replace("(1)", "(l)"))],
                     ["batch form: the samples of a batch of ", m("B"), " stacked as rows"],
                     [m(r"B \times n_{l}")]))
        rows.append(([m(r"n_{l}")], ["number of units of layer ", m("l"), ": ", m(sizes)], ["integer"]))
        rows.append(([m(r"\odot")], ["element-wise (Hadamard) product"], [""]))
        # de-duplicate identical rows (profiles may share names), keep order
        seen, unique = set(), []
        for r in rows:
            key = repr(r[0])
            if key not in seen:
                seen.add(key)
                unique.append(r)
        if self.functions and len({a for a in self.functions.values()}) < len(self.functions):
            pass
        table = Table([para("symbol"), para("meaning"), para("shape")],
                      [[para(*c) for c in r] for r in unique])
        sec = Section("Notation")
        intro = para("Indices are 1-based: unit ", m("j"), " of layer ", m("l"), " receives from unit ", m("k"),
                     " of layer ", m("l-1"), ". Layer 0 is the input, layer ", m(str(L)), " the output.")
        sec.blocks += [intro, table]
        if not p.layer_superscript:
            sec.blocks.append(para("The general rules below drop the layer mark, as the profile does: the letter "
                                   "of an index says which layer its unit is in. The concrete derivations keep "
                                   "the mark (for example ", m(self.tex(sp.Symbol("W1_1_1"))), ")."))
        return sec

    # ------------------------------------------------------------------ 4. forward pass

    def forward_section(self) -> Section:
        d, sec = self.d, Section("Forward pass")
        sec.blocks.append(para("Each layer forms weighted sums of the previous layer's values and applies its "
                               "activation function, first per unit (scalar form) and then for the whole layer "
                               "(matrix form)."))
        for l in range(1, d.L + 1):
            form, act = d.general.layers[l], self.net.layers[l - 1].activation
            z, a = general.base("z", l), general.base("a", l)
            n = general.size(l)
            sec.blocks.append(Heading(para(f"Layer {l} ({layer_word(d, l)}), ", m(f"j = 1, \\dots, {self.net.sizes[l]}"))))
            if act.vector:
                a_rhs = sp.exp(z[J]) / sp.Sum(sp.exp(z[K]), (K, 1, n))
            else:
                a_rhs = ActivationFn(l, z[J])
            scalar = [(z[J], form.z, ""), (a[J], a_rhs, "")]
            Wm = matrixform.vector(f"W{l}", n, general.size(l - 1))
            prev = matrixform.vector(f"a{l - 1}", general.size(l - 1))
            zm = sp.MatMul(Wm, prev)
            if self.net.layers[l - 1].bias:
                zm = sp.MatAdd(zm, matrixform.vector(f"b{l}", n))
            a_m = (rf"\operatorname{{softmax}}\bigl({self.vec('z', l)}\bigr)" if act.vector
                   else rf"{self.functions[l]}\bigl({self.vec('z', l)}\bigr)")
            label = "" if act.vector else "element-wise"
            sec.blocks.append(self.display(scalar + [(self.vec("z", l), zm, "matrix form"),
                                                     (self.vec("a", l), a_m, label)]))
        u = sp.Symbol("u", real=True)
        defs = []
        for l, layer in enumerate(self.net.layers, start=1):
            act = layer.activation
            if act.vector or any(self.functions[l] == self.functions[k] for k in range(1, l)):
                continue
            defs.append((rf"{self.functions[l]}(u)", act.expr.subs(_registry_x(), u), act.title))
        if defs:
            sec.blocks.append(para("The activation functions:"))
            sec.blocks.append(self.display(defs))
        note = stability_note(self.net)
        if note:
            sec.blocks.append(para(f"Numerical note: {note}."))
        if self.prof.output_value:
            sec.blocks.append(para("The network's output is ", m(f"{self.prof.output_value} = {self.vec('a', d.L)}"),
                                   "."))
        return sec

    # ------------------------------------------------------------------ 5. loss

    def loss_section(self) -> Section:
        d, sec = self.d, Section("Loss")
        L = d.L
        general_loss = self.net.loss.indexed(general.base("a", L), general.base("t"), K, general.size(L))
        sec.blocks.append(para(f"The per-sample {self.prof.words['E']} is {self.net.loss.title}:"))
        rows = [(E, general_loss, "")]
        if len(d.targets) <= 4:
            rows.append((E, d.graph.loss_def, f"here, {self.net.sizes[L]} output{'s' if self.net.sizes[L] > 1 else ''}"))
        sec.blocks.append(self.display(rows))
        if d.target_constraint:
            sec.blocks.append(para(f"The derivation assumes that {d.target_constraint}: ",
                                   m(rf"\sum_{{k}} {self.prof.target}_{{k}} = 1"), "."))
        return sec

    # ------------------------------------------------------------------ 6. chain rule per parameter

    def units_shown(self) -> dict[int, list[int]]:
        everything = self.per_weight == "all" or len(self.d.parameters) <= PER_WEIGHT_LIMIT
        return {l: list(range(1, self.net.sizes[l] + 1)) if everything else [1] for l in range(1, self.d.L + 1)}

    def chain_section(self) -> Section:
        d, p = self.d, self.prof
        sec = Section("The chain rule for each parameter")
        shown = self.units_shown()
        everything = all(len(v) == self.net.sizes[l] for l, v in shown.items())
        intro = ("Each derivation starts from the chain rule and names the rule used in each step. "
                 f"The error term of a unit, {_delta_name(p)}, is derived once and then used by every "
                 "parameter of that unit. Layers are taken from the output backwards, as backpropagation does.")
        if not everything:
            intro += (f" The network has {len(d.parameters)} parameters (more than {PER_WEIGHT_LIMIT}), so one "
                      "representative unit per layer is shown; every other parameter follows the same steps with "
                      "its own indices (see the general form in the next section; --per-weight all shows all).")
        sec.blocks.append(para(intro))
        for l in range(d.L, 0, -1):
            for j in shown[l]:
                sec.blocks.append(Heading(para(f"Unit {j} of layer {l}: error term ",
                                               m(self.tex(d.delta_symbol(l, j))))))
                delta_steps = d.delta_steps(l, j)
                sec.blocks.extend(self.step_blocks(delta_steps, l))
                params = [q for q in d.parameters if d.graph.layer_of(q)[:2] == (l, j)]
                if not everything:
                    params = params[:1] + [q for q in params if q.name.startswith("b")][:1]
                for q in params:
                    steps = [s for s in d.steps(q) if s not in delta_steps]
                    sec.blocks.append(para("Parameter ", m(self.tex(q)), ":"))
                    sec.blocks.append(self.chain_block(steps))
        return sec

    def chain_block(self, steps: list[Step]) -> Display:
        """One chain of equalities: each step rewrites a factor of the running expression."""
        first, rows, labels = steps[0], [], []
        current = first.rhs

        def add(lhs: str, expr, label: str) -> None:
            new = aligned(lhs, rhs_lines(expr, self.pr, _width(label)))
            rows.extend(new)
            labels.extend([label] + [""] * (len(new) - 1))

        add(self.pr.doprint(first.lhs), current, _rule_label(first))
        for s in steps[1:]:
            if s.rule == "result":
                if sp.expand(current - s.rhs) != 0:
                    add("", s.rhs, "result")
                continue
            if current.has(s.lhs):
                current = current.xreplace({s.lhs: s.rhs})
                add("", current, _rule_label(s))
            else:
                add(self.pr.doprint(s.lhs), s.rhs, _rule_label(s))
        return Display(rows, labels)

    def step_blocks(self, steps: list[Step], l: int) -> list:
        """Rows of a step list: a step continues the previous one when it rewrites its lhs or rhs."""
        pr, rows, labels, notes = self.pr, [], [], []
        prev: Step | None = None
        act = self.net.layers[l - 1].activation
        for s in steps:
            label = _rule_label(s)
            if act.vector and s.rule == "derivative of the loss":
                label += ", $k = 1$"
            elif act.vector and s.rule == "derivative of the activation":
                label = "softmax derivative, $k = j$"
            lines = rhs_lines(s.rhs, pr, _width(label))
            if prev is not None and (s.lhs == prev.lhs or s.lhs == prev.rhs) and s.rule != "result":
                if (s.rule == prev.rule == "derivative of the activation" and act.uses_output
                        and s.lhs == prev.lhs):
                    zj = s.lhs.variables[0]
                    middle = act.derivative_at(zj, ActivationFn(l, zj))
                    rows.append(rf"&= {pr.doprint(middle)}")
                    labels.append(f"written with {act.title}")
                    label = "written with the output"
                new = aligned("", lines)
            else:
                new = aligned(pr.doprint(s.lhs), lines)
            rows.extend(new)
            labels.extend([label] + [""] * (len(new) - 1))
            if "convention" in s.note:
                notes.append(para("Convention: " + s.note.split("convention: ", 1)[1] + "."))
            if s.rule == "simplification" and self.d.simplifies_to_error:
                text = "The error term simplifies to "
                if "cross_entropy" in self.net.loss.name:
                    text = "Cross-entropy meets its matching output activation, so the error term simplifies to "
                notes.append(para(text, m(rf"{self.vec('a', self.d.L)} - {self.prof.target}"),
                                  f", using that {self.d.target_constraint}." if self.d.target_constraint else "."))
            dummies = [a for a in s.rhs.free_symbols if isinstance(a, sp.Dummy)]
            if dummies and isinstance(s.lhs, sp.Derivative):
                S = sp.Sum(sp.exp(general.base("z", self.d.L)[K]), (K, 1, self.net.sizes[self.d.L]))
                notes.append(para("Here ", m(rf"S = {pr.doprint(S)}"), " is the softmax denominator."))
                out, z = s.lhs.expr, s.lhs.variables[0]
                rewritten = _no_leading_minus(sp.factor(s.rhs.subs(sp.exp(z), out * dummies[0])))
                if not rewritten.has(dummies[0]):
                    rows.append(rf"&= {pr.doprint(rewritten)}")
                    labels.append(f"with ${pr.doprint(sp.exp(z))} = {pr.doprint(out)} S$")
            prev = s
        return [Display(rows, labels), *notes]

    # ------------------------------------------------------------------ 7. delta recursion

    def recursion_section(self) -> Section:
        d, p = self.d, self.prof
        sec = Section(f"The {_delta_word(p)} recursion")
        L = d.L
        sec.blocks.append(Heading(para("Index form")))
        sec.blocks.append(para("With symbolic layer sizes, SymPy differentiates the sums of the forward pass once "
                               "per layer; these results hold for every unit ", m("j"), " and every width."))
        pairs = []
        for l in range(L, 0, -1):
            form = d.general.layers[l]
            dl = general.base("delta", l)[J]
            named = self.named_delta(l)
            if named is not None and named != form.delta:
                pairs.append((dl, named, "chain rule"))
                pairs.append(("", form.delta, _fprime_word(self.net.layers[l - 1].activation)))
            else:
                pairs.append((dl, form.delta, "chain rule" if l < L else "derived"))
        disp = self._merge(pairs)
        sec.blocks.append(disp)
        grads = []
        for l in range(L, 0, -1):
            form = d.general.layers[l]
            dl = general.base("delta", l)[J]
            Wjk = general.base("W", l)[J, K]
            row = (sp.Derivative(E, Wjk), dl * form.dz_dW, "")
            if p.weight_order == "from_to":  # w_{ij}: from unit i to unit j, as those texts write it
                row = (row[0].xreplace({K: _idx("i")}), row[1].xreplace({K: _idx("i")}), "")
            grads.append(row)
            if form.dz_db is not None:
                grads.append((sp.Derivative(E, general.base("b", l)[J]), dl * form.dz_db, ""))
        sec.blocks.append(para("and for the parameters:"))
        sec.blocks.append(self.display(grads))
        if p.descent_sign == "plus":
            sec.blocks.extend(self.monash_blocks())
        sec.blocks.append(Heading(para("Matrix form (one sample)")))
        sec.blocks.extend(self.matrix_blocks())
        sec.blocks.append(Heading(para("Batch form")))
        sec.blocks.extend(self.batch_blocks())
        return sec

    def _merge(self, pairs) -> Display:
        rows, labels = [], []
        for lhs, rhs, label in pairs:
            left = lhs if isinstance(lhs, str) else self.pr.doprint(lhs)
            new = aligned(left, rhs_lines(rhs, self.pr, _width(label)))
            rows.extend(new)
            labels.extend([label] + [""] * (len(new) - 1))
        return Display(rows, labels)

    def named_delta(self, l: int) -> sp.Expr | None:
        """delta{l}[j] with f'(z{l}[j]) kept as a name: the general result divided by f'."""
        form = self.d.general.layers[l]
        if form.fprime is None:
            return None
        rest = _without(form.delta, form.fprime)
        if l == self.d.L:
            return sp.Mul(sp.Derivative(E, general.base("a", l)[J]), ActivationPrime(l, general.base("z", l)[J]),
                          evaluate=False)
        return sp.Mul(ActivationPrime(l, general.base("z", l)[J]), rest, evaluate=False)

    def output_error_derivative(self) -> sp.Expr:
        """dE/da{L}[j] in index form: the general output delta divided by f'(z{L}[j])."""
        form = self.d.general.layers[self.d.L]
        return sp.factor(_without(form.delta, form.fprime))

    def monash_blocks(self) -> list:
        """The aima (Monash) form: Delta = -delta, and the update w <- w + alpha a Delta."""
        d, p, L = self.d, self.prof, self.d.L
        blocks = [Heading(para(f"The update-rule form ({p.name} profile)"))]
        w = self.gpr.doprint(_rn(general.base("W", L)[J, K], {J: _idx("k"), K: _idx("j")}))
        blocks.append(para("Write ", m(rf"{p.delta}_{{j}} = -\delta_{{j}}"), " for each unit ", m("j"),
                           ". Gradient descent ",
                           m(rf"{w} \leftarrow {w} - {p.learning_rate}\, \partial {p.loss}/\partial {w}"),
                           " then becomes an addition. Substituting ", m(rf"\delta_{{j}} = -{p.delta}_{{j}}"),
                           " into the results above gives, for a unit ", m("k"), " of the output layer and a unit ",
                           m("j"), " of the layer before it:"))
        alpha = sp.Symbol("alpha")
        rename_out = {J: _idx("k"), K: _idx("j")}
        outform = d.general.layers[L]
        Dk = general.base("Delta", L)
        dk = general.base("delta", L)
        rows = []
        if outform.fprime is not None:
            dE_da = self.output_error_derivative()
            prime = ActivationPrime(L, general.base("z", L)[J])
            minus = sp.Mul(-1, sp.Derivative(E, general.base("a", L)[J]), prime, evaluate=False)
            rows.append((Dk[J], minus, "definition, chain rule"))
            rows.append(("", sp.Mul(-dE_da, prime, evaluate=False), "derivative of the loss"))
        else:
            rows.append((Dk[J], -outform.delta, rf"${p.delta} = -\delta$"))
        generic_a = {general.base("a", L - 1): sp.IndexedBase("a", real=True)}
        rename_out = {**rename_out, **generic_a}
        rows = [(_rn(a, rename_out), _rn(b, rename_out), c) for a, b, c in rows]
        blocks.append(self.display(rows, general_form=True))
        Wout = general.base("W", L)[J, K]
        a_prev = general.base("a", L - 1)[K]
        w_rows = [(Wout, sp.Add(Wout, sp.Mul(-1, alpha, dk[J] * outform.dz_dW, evaluate=False), evaluate=False),
                   "gradient descent")]
        plus = (Wout - alpha * dk[J] * outform.dz_dW).xreplace({dk[J]: -Dk[J]})
        w_rows.append(("", plus, rf"${p.delta} = -\delta$"))
        w_rows = [(_rn(a, rename_out), _rn(b, rename_out), c) for a, b, c in w_rows]
        blocks.append(self.display(w_rows, general_form=True, relation=r"\leftarrow"))
        assert plus.has(a_prev)
        if L >= 2:
            l = L - 1
            form = d.general.layers[l]
            Dj, Dn = general.base("Delta", l), general.base("Delta", l + 1)
            dn, dj = general.base("delta", l + 1), general.base("delta", l)
            rename = {J: _idx("j"), K: _idx("k")}
            rename_w = {J: _idx("j"), K: _idx("i"), general.base("a", l - 1): sp.IndexedBase("a", real=True)}
            hidden = -self.named_delta(l).xreplace({dn[K]: -Dn[K]})
            hidden = sp.Mul(*[sp.factor_terms(f) for f in sp.Mul.make_args(sp.factor_terms(hidden))],
                            evaluate=False)
            blocks.append(para("For a unit ", m("j"), " of a hidden layer, its inputs ", m("i"),
                               " and the units ", m("k"), " it feeds:"))
            blocks.append(self.display([(_rn(Dj[J], rename), _rn(hidden, rename), rf"${p.delta} = -\delta$")],
                                       general_form=True))
            Wh = general.base("W", l)[J, K]
            upd = (Wh - alpha * dj[J] * form.dz_dW).xreplace({dj[J]: -Dj[J]})
            blocks.append(self.display([(_rn(Wh, rename_w), _rn(upd, rename_w),
                                         rf"gradient descent, $\delta = -{p.delta}$")],
                                       general_form=True, relation=r"\leftarrow"))
            if l == 1:
                blocks.append(para("The inputs of the first hidden layer are the network inputs, ",
                                   m(f"a_{{i}} = {p.input}_{{i}}"), "."))
        return blocks

    def matrix_blocks(self) -> list:
        """The per-sample matrix form of :attr:`Derivation.matrix`, with f' and dE/da written out."""
        form = self.d.matrix
        blocks = [para("Stacking the units of a layer into column vectors (", m(r"\odot"),
                       " is the element-wise product), the same results read:")]
        expansions = self.expanded_factors()
        rows = []
        for eq in form.backward():
            if str(eq.lhs).startswith(("dW", "db")):
                continue
            rows.append((eq.lhs, eq.rhs, eq.rule))
            layer = int(str(eq.lhs)[len("delta"):])
            rows += [r for r in expansions if r[3] == layer]
        rows = [r[:3] for r in rows]
        blocks.append(self.display(rows))
        blocks.append(para("The gradients of each layer's parameters are outer products:"))
        blocks.append(self.display([(eq.lhs, eq.rhs, eq.rule) for eq in form.backward()
                                    if str(eq.lhs).startswith(("dW", "db"))]))
        return blocks

    def expanded_factors(self) -> list:
        """``dE/da{L}`` and each ``f'(z{l})`` as vectors, from the general index form."""
        d, L, rows = self.d, self.d.L, []
        out = d.general.layers[L]
        if out.fprime is not None and not d.simplifies_to_error:
            try:
                rows.append((matrixform.vector("gradE", general.size(L)),
                             matrixform.to_matrix(self.output_error_derivative(), L, general.size(L)), "", L))
            except matrixform.NotElementwise:
                pass
        for l in range(L, 0, -1):
            form = d.general.layers[l]
            if form.fprime is None or (l == L and d.simplifies_to_error):
                continue
            fp = matrixform.vector(f"fprime{l}", general.size(l))
            try:
                rows.append((fp, matrixform.to_matrix(form.fprime, L, general.size(l)), "", l))
            except matrixform.NotElementwise:
                u = sp.Symbol("u", real=True)
                act = self.net.layers[l - 1].activation
                rows.append((fp, r"\text{element-wise, with } " + self.pr.doprint(ActivationPrime(l, u)) + " = "
                             + self.pr.doprint(act.derivative.subs(_registry_x(), u)), "", l))
        return rows

    def batch_blocks(self) -> list:
        text = para("For a batch of ", m("B"), " samples stored as rows (", m(self.pr.batch_name("X")), " is ",
                    m(r"B \times n_0"), "; bold letters are the per-sample vectors stacked as rows, ",
                    m(r"\mathbf{1}"), " is a column of ones) and the batch loss the mean of the per-sample "
                    "losses:")
        eqs = self.d.matrix.batch()
        return [text, self.display([(eq.lhs, eq.rhs, eq.rule) for eq in eqs])]

    # ------------------------------------------------------------------ 8. updates

    def update_section(self) -> Section:
        p, opt = self.prof, self.net.optimizer
        sec = Section("Update rules")
        settings = {"sgd": "", "momentum": f", momentum $\\mu = {number(opt.momentum)}$",
                    "adam": (f", $\\beta_1 = {number(opt.beta1)}$, $\\beta_2 = {number(opt.beta2)}$, "
                             f"$\\epsilon = {_sci_exact(opt.epsilon) if opt.epsilon < 1e-3 else number(opt.epsilon)}$")
                    }[opt.name]
        tail = ("; each parameter moves against its gradient from the previous section"
                + (" (the moments start at zero; the step counter is " if opt.name == "adam" else
                   " (the velocity starts at zero):" if opt.name == "momentum" else ":"))
        parts = [f"{_optimizer_title(opt.name)} with learning rate ",
                 m(f"{p.learning_rate} = {number(opt.learning_rate)}"), *_dollar_parts(settings), tail]
        if opt.name == "adam":
            parts += [m(r"\tau"), "):"]
        sec.blocks.append(para(*parts))
        rows = [(eq.lhs, eq.rhs, eq.rule) for eq in reversed_layers(self.d.matrix.updates())]
        sec.blocks.append(self.display(rows, relation=r"\leftarrow"))
        if opt.name == "adam":
            sec.blocks.append(para("Square, square root and division of matrices act element by element."))
        if p.descent_sign == "plus" and opt.name == "sgd":
            w = self.gpr.doprint(_rn(general.base("W", self.d.L)[J, K], {J: _idx("k"), K: _idx("j")}))
            sec.blocks.append(para("Per weight, with ", m(rf"{p.delta}_{{k}} = -\delta_{{k}}"),
                                   ", these are the rules ",
                                   m(rf"{w} \leftarrow {w} + {p.learning_rate}\, a_{{j}}\, {p.delta}_{{k}}"),
                                   " derived above."))
        return sec

    # ------------------------------------------------------------------ 9. verification

    def verification_section(self) -> Section:
        v = self.d.verification
        sec = Section("Appendix: verification")
        if v is None:
            sec.blocks.append(para("Verification was skipped (--no-verify); the results above are unchecked."))
            return sec
        info = v.as_dict()
        verdict = "passed" if info["passed"] else "FAILED"
        sec.blocks.append(para(f"Verification {verdict} (--verify {v.mode}). Each result was checked "
                               "independently of how it was derived, in tiers chosen by their cost:"))
        rows = []
        for tier in v.tiers:
            how = tier.how.split("; rule ")[0] if tier.how else ""
            what = "; ".join(filter(None, [how, tier.covered and f"covered: {tier.covered}",
                                           tier.not_covered and f"not checked: {tier.not_covered}"]))
            if tier.name == "numeric":
                rows.append([para(tier.name), para(what + "; rule ", m(_rule_tex(info["rule"]))),
                             para(f"{tier.result}; max abs. error ", m(_sci(info["max_abs_error"])), ", relative ",
                                  m(_sci(info["max_rel_error"])))])
            else:
                rows.append([para(tier.name), para(what), para(tier.result)])
        sec.blocks.append(Table([para("check"), para("how"), para("result")], rows))
        if info.get("failures"):
            sec.blocks.append(para("Failures: " + "; ".join(info["failures"][:10])))
        return sec


# ----------------------------------------------------------------------------- small text helpers


def reversed_layers(eqs):
    """Update equations from the output layer backwards, as backpropagation visits them."""
    import re

    def layer(eq):
        found = re.search(r"(\d+)$", str(eq.lhs))
        return -int(found.group(1)) if found else 0
    return sorted(eqs, key=layer)


def _dollar_parts(text: str) -> list:
    pieces = text.split("$")
    return [t if i % 2 == 0 else m(t) for i, t in enumerate(pieces) if t]


def _registry_x() -> sp.Symbol:
    from ..registry.ops import X

    return X


def _rn(expr, mapping):
    return expr if isinstance(expr, str) else expr.xreplace(mapping)


def _delta_name(p: Profile) -> str:
    return "the derivative of the loss with respect to its pre-activation"


def _delta_word(p: Profile) -> str:
    return "error-term"


def _fprime_word(act) -> str:
    if act.uses_output:
        return f"{act.title} derivative, written with the output"
    return f"{act.title} derivative"


def _width(label: str) -> int:
    """Width budget of a right-hand side beside a rule label of this length."""
    from .latex import MAX_LINE

    return max(30, MAX_LINE - len(label) // 2)


def _no_leading_minus(expr: sp.Expr) -> sp.Expr:
    """``-a (a - 1)`` as ``a (1 - a)``: absorb a factor -1 into the one sum factor."""
    coeff, factors = expr.as_coeff_mul()
    sums = [f for f in factors if isinstance(f, sp.Add)]
    if coeff == -1 and len(sums) == 1:
        return sp.Mul(*[(-f if f is sums[0] else f) for f in factors], evaluate=False)
    return expr


def _without(product: sp.Expr, factor: sp.Expr) -> sp.Expr:
    """``product / factor``, removing the factor's own factors where they appear literally."""
    args, inner = list(sp.Mul.make_args(product)), sp.Mul.make_args(factor)
    if all(f in args for f in inner):
        for f in inner:
            args.remove(f)
        return sp.Mul(*args)
    return sp.cancel(product / factor)


def _optimizer_title(name: str) -> str:
    return {"sgd": "SGD", "momentum": "momentum", "adam": "Adam"}[name]


def _rule_label(s: Step) -> str:
    if s.rule == "derivative of the activation" and "convenient" in s.note:
        return "written with the output"
    if s.rule == "product rule" and s.note:
        return "product rule"
    return s.rule


def _sci(x: float) -> str:
    """One significant digit: stable across machines, enough to read the size of an error."""
    if x == 0:
        return "0"
    mant, exp = f"{x:.0e}".split("e")
    return rf"{mant} \times 10^{{{int(exp)}}}"


def _sci_exact(x: float) -> str:
    """A hyper-parameter in scientific notation with the digits of ``{x:g}`` (1e-08: 1 \\times 10^{-8})."""
    mant, exp = f"{x:.5e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return rf"{mant} \times 10^{{{int(exp)}}}"


def _rule_tex(rule: str) -> str:
    # "|derived - finite difference| <= 1e-08 + 1e-06 * |finite difference|"
    import re

    numbers = re.findall(r"[0-9.]+e-?[0-9]+", rule)
    if len(numbers) == 2:
        return (rf"\lvert\text{{derived}} - \text{{fd}}\rvert \le {_sci(float(numbers[0]))} + "
                rf"{_sci(float(numbers[1]))}\, \lvert\text{{fd}}\rvert")
    return rf"\text{{{rule}}}"


# ----------------------------------------------------------------------------- rendering


def build(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> Document:
    """The document model of ``d`` in the profile ``notation`` (default: the spec's, else seed)."""
    prof = notation_profile(notation, d.network.notation)
    return Builder(d, prof, per_weight).build()


def render_tex(doc: Document) -> str:
    from .. import _templates
    from .latex import escape_tex

    return _templates.render("derivation.tex.j2", doc=_formatted(doc, escape_tex))


def render_markdown(doc: Document) -> str:
    from .. import _templates
    from .markdown import escape_markdown

    return _templates.render("derivation.md.j2", doc=_formatted(doc, escape_markdown))


def _formatted(doc: Document, escape) -> dict:
    """The model with every Text turned into a string of the target format."""
    def text(t: Text) -> str:
        return "".join(escape(s) if kind == "text" else f"${s}$" for kind, s in t.parts)

    def label(x: str) -> str:
        """Labels are prose with optional $math$ segments."""
        pieces = x.split("$")
        return "".join(escape(t) if i % 2 == 0 else f"${t}$" for i, t in enumerate(pieces))

    def block(b) -> dict:
        if isinstance(b, Text):
            return {"kind": "text", "text": text(b)}
        if isinstance(b, Heading):
            return {"kind": "heading", "text": text(b.text)}
        if isinstance(b, Display):
            return {"kind": "display", "rows": list(zip(b.rows, [label(x) for x in b.labels]))}
        if isinstance(b, Table):
            return {"kind": "table", "header": [text(c) for c in b.header],
                    "rows": [[text(c) for c in r] for r in b.rows]}
        if isinstance(b, Diagram):
            return {"kind": "diagram", "tikz": b.tikz, "caption": text(b.caption)}
        raise TypeError(type(b).__name__)

    return {"title": escape(doc.title), "profile": doc.profile.name, "summary": text(doc.summary),
            "sections": [{"title": escape(s.title), "blocks": [block(b) for b in s.blocks]} for s in doc.sections]}


def tex(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> str:
    if not isinstance(d, Derivation):  # a graph of layers (LayerDerivation) has its own documents
        from . import documents_graph
        return documents_graph.tex(d, notation)
    return render_tex(build(d, notation, per_weight))


def markdown(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> str:
    if not isinstance(d, Derivation):  # a graph of layers (LayerDerivation) has its own documents
        from . import documents_graph
        return documents_graph.markdown(d, notation)
    return render_markdown(build(d, notation, per_weight))


# ----------------------------------------------------------------------------- PDF

PDFLATEX = "pdflatex"


def tex_engine() -> str | None:
    return shutil.which(PDFLATEX)


def compile_pdf(source: str, timeout: float = 120) -> bytes:
    """Compile LaTeX ``source`` with pdflatex (no shell escape) into reproducible PDF bytes."""
    return compile_pdf_with_log(source, timeout)[0]


def compile_pdf_with_log(source: str, timeout: float = 120) -> tuple[bytes, str]:
    """The PDF bytes and pdflatex's log (for overfull-box checks)."""
    engine = tex_engine()
    if engine is None:
        raise DocumentError("no TeX engine: pdflatex is not on PATH; install texlive-latex-base and "
                            "texlive-pictures, or pass --no-pdf")
    env = dict(os.environ, SOURCE_DATE_EPOCH="0", FORCE_SOURCE_DATE="1", TEXMFOUTPUT="")
    with tempfile.TemporaryDirectory(prefix="symbackprop-tex-") as tmp:
        path = Path(tmp) / "derivation.tex"
        path.write_text(source, encoding="utf-8")
        cmd = [engine, "-no-shell-escape", "-halt-on-error", "-interaction=nonstopmode", "derivation.tex"]
        try:
            run = subprocess.run(cmd, check=False, cwd=tmp, env=env, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DocumentError(f"pdflatex took more than {timeout:.0f} s; pass --no-pdf to skip the PDF") from None
        pdf = Path(tmp) / "derivation.pdf"
        if run.returncode != 0 or not pdf.is_file():
            log = (Path(tmp) / "derivation.log")
            lines = log.read_text(errors="replace").splitlines() if log.is_file() else []
            first = next((ln for ln in lines if ln.startswith("!")), "see the .log")
            raise DocumentError(f"pdflatex failed on derivation.tex ({first.lstrip('! ')}); "
                                "pass --no-pdf to skip the PDF and report this as a bug")
        return pdf.read_bytes(), (Path(tmp) / "derivation.log").read_text(errors="replace")


def check_tex_engine(args) -> None:
    """``--pdf`` without a TeX engine is refused before any work."""
    if getattr(args, "pdf", None) and tex_engine() is None:
        raise DocumentError("--pdf needs pdflatex, which is not on PATH; install texlive-latex-base and "
                            "texlive-pictures (or drop --pdf)")


def document_names(args) -> tuple[str, ...]:
    """The files :func:`document_outputs` writes with these options."""
    want_pdf = getattr(args, "pdf", None)
    pdf = want_pdf is not False and tex_engine() is not None
    return ("derivation.tex", "derivation.md") + (("derivation.pdf",) if pdf else ())


def document_outputs(d: Derivation, args) -> dict[str, bytes]:
    """``derive -o DIR`` writer: derivation.tex, derivation.md and (when possible) derivation.pdf."""
    from ..engine.layergraph import LayerDerivation

    if isinstance(d, LayerDerivation):  # a graph of layers has its own document builder
        from . import documents_graph

        return documents_graph.document_outputs(d, args)
    notation = getattr(args, "notation", None)
    per_weight = getattr(args, "per_weight", "auto") or "auto"
    want_pdf = getattr(args, "pdf", None)
    check_tex_engine(args)
    doc = build(d, notation, per_weight)
    source = render_tex(doc)
    files = {"derivation.tex": source.encode(), "derivation.md": render_markdown(doc).encode()}
    if want_pdf is not False and tex_engine() is not None:
        progress = getattr(args, "progress", None)
        if progress is not None:
            progress("derivation.pdf (pdflatex)")
        files["derivation.pdf"] = compile_pdf(source)
    elif want_pdf is None:
        print("note: derivation.pdf skipped, pdflatex is not installed (texlive-latex-base, texlive-pictures)",
              file=sys.stderr)
    return files
