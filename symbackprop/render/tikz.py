"""TikZ diagram of a network: one column per layer, labelled units, weights on small nets.

Layers wider than :data:`MAX_SHOWN` units show their first and last units with
a vertical ellipsis between them.  Edge labels (the weight symbols) are drawn
only when the whole net has at most :data:`MAX_LABELLED_EDGES` weights.
"""

from __future__ import annotations

import sympy as sp

from ..spec import Network
from .latex import NotationPrinter

MAX_SHOWN = 6
MAX_LABELLED_EDGES = 12
COLUMN = 4.2  # cm between layers
ROW = 1.25    # cm between units
WIDTH = 14.0  # cm from the first column to the last, at most (the text is 16.6 cm wide)


def shown_units(n: int) -> list[int | None]:
    """Unit numbers to draw (1-based); None marks the ellipsis."""
    if n <= MAX_SHOWN:
        return list(range(1, n + 1))
    return [1, 2, 3, None, n - 1, n]


def unit_symbol(l: int, j: int) -> sp.Symbol:
    return sp.Symbol(f"x_{j}" if l == 0 else f"a{l}_{j}")


def diagram(network: Network, printer: NotationPrinter, caption_of) -> str:
    """The ``tikzpicture`` source; ``caption_of(l)`` gives the text-mode caption of layer l."""
    sizes = network.sizes
    labelled = sum(sizes[l] * sizes[l - 1] for l in range(1, len(sizes))) <= MAX_LABELLED_EDGES
    lines = [r"\begin{tikzpicture}[x=1cm,y=1cm,>=stealth,",
             r"  unit/.style={circle,draw,thick,minimum size=9mm,inner sep=0pt,font=\small},",
             r"  weight/.style={font=\scriptsize,fill=white,inner sep=1pt}]"]
    height = max(len(shown_units(n)) for n in sizes)
    row_gap = ROW * (1.3 if labelled else 1.0)
    column = min(COLUMN * (1.2 if labelled else 1.0), WIDTH / max(len(sizes) - 1, 1))
    for l, n in enumerate(sizes):
        units = shown_units(n)
        top = (len(units) - 1) * row_gap / 2
        x = l * column
        for row, j in enumerate(units):
            y = top - row * row_gap
            if j is None:
                lines.append(rf"  \node at ({x:.2f},{y:.2f}) {{$\vdots$}};")
            else:
                tex = printer.doprint(unit_symbol(l, j))
                lines.append(rf"  \node[unit] (u{l}-{j}) at ({x:.2f},{y:.2f}) {{${tex}$}};")
        bottom = -(height - 1) * row_gap / 2 - 0.9
        lines.append(rf"  \node[align=center,font=\footnotesize] at ({x:.2f},{bottom:.2f}) {{{caption_of(l)}}};")
    for l in range(1, len(sizes)):
        for j in (u for u in shown_units(sizes[l]) if u is not None):
            sources = [u for u in shown_units(sizes[l - 1]) if u is not None]
            for row, k in enumerate(sources):
                # stagger the labels: the first source's near the target, the last one's near the source
                pos = 0.8 - 0.45 * row / max(len(sources) - 1, 1)
                edge = rf"  \draw[->] (u{l - 1}-{k}) -- (u{l}-{j})"
                if labelled:
                    w = printer.doprint(sp.Symbol(f"W{l}_{j}_{k}"))
                    edge += rf" node[weight,sloped,pos={pos:.2f}] {{${w}$}}"
                lines.append(edge + ";")
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines)
