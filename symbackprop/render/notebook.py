"""The notebook display of a :class:`~symbackprop.engine.derive.Derivation`.

The engine imports no renderer, so the two Jupyter methods are attached to the class from
here: importing :mod:`symbackprop` imports this module, which sets ``Derivation._repr_markdown_``
and ``Derivation._repr_latex_``.  The documents are built on first display only.
"""

from __future__ import annotations

from ..engine.derive import Derivation


def jupyter_markdown(d: Derivation) -> str:
    """A short notebook display: the diagram, the forward pass and backpropagation in matrix form, the
    updates and the verification line, with a pointer to the full document."""
    from . import svg
    from .document import equations, forward, updates
    from .document.build import context
    from .documents import Display, Document, Section, para, render_markdown
    from .markdown import escape_markdown
    from .textreport import headline

    ctx = context(d)
    prof = ctx.prof
    labels = ["input"] + [f"{'output' if l == d.L else f'hidden {l}'}: {layer.units} {layer.activation.name}"
                          for l, layer in enumerate(d.network.layers, start=1)]
    picture = svg.diagram(d.network, labels)
    layer_displays = [forward.layer_display(ctx, l) for l in range(1, d.L + 1)]
    rows = [(row, label) for b in layer_displays for row, label in list(zip(b.rows, b.labels))[2:]]
    forward_pass = Section("Forward pass, matrix form", [Display([r for r, _ in rows], [lb for _, lb in rows])])
    matrix = Section("Backpropagation, matrix form", equations.matrix_blocks(ctx))
    update = updates.section(ctx)
    doc = Document(f"Backpropagation for {d.network.name}", prof, para(headline(d) + "."),
                   [forward_pass, matrix, update])
    body = render_markdown(doc).split("\n", 1)[1]  # without the generator comment
    status = d.verification.headline() if d.verification is not None else "Not verified."
    pointer = ("The full step-by-step derivation: `symbackprop.render.documents.markdown(d)`, or "
               "`symbackprop derive SPEC -o DIR` for derivation.md, derivation.tex and derivation.pdf.")
    head, _, rest = body.partition("\n\n")
    return "\n\n".join([head, f"![The network]({svg.data_uri(picture)})", rest.rstrip(),
                         escape_markdown(status), pointer]) + "\n"


def jupyter_latex(d: Derivation) -> str:
    """The general results as one display, for ``_repr_latex_``."""
    from .document import equations
    from .document.build import context
    from .documents import Display

    rec = equations.section(context(d))
    def label(text: str) -> str:  # prose in \text, $math$ as math
        pieces = text.split("$")
        return "".join(rf"\text{{{t}}}" if i % 2 == 0 else t for i, t in enumerate(pieces) if t)

    rows = [f"{r} && {label(lbl)}" if lbl else r
            for b in rec.blocks if isinstance(b, Display) for r, lbl in zip(b.rows, b.labels)][:40]
    return "$$\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$"


def _repr_markdown_(self: Derivation) -> str:
    """Jupyter: the derivation document as Markdown with math."""
    return jupyter_markdown(self)


def _repr_latex_(self: Derivation) -> str:
    """Jupyter: the general delta recursion and gradients as one display."""
    return jupyter_latex(self)


Derivation._repr_markdown_ = _repr_markdown_
Derivation._repr_latex_ = _repr_latex_
