"""Diagram of a layer graph: a chain of layer boxes, each residual edge a skip arc above the chain.

:func:`diagram` gives TikZ source for the PDF, :func:`ascii_chain` a plain-text
version for Markdown.  Box texts come from the caller (already LaTeX-safe).
"""

from __future__ import annotations

from ..spec.graph import GraphNetwork

WIDTH = 14.4  # cm from the first box centre to the last, at most
STEP = 2.1   # cm between box centres, at most
SHORT = {"dense": "dense", "batchnorm": "batch norm", "layernorm": "layer norm",
         "dropout": "dropout", "residual": "residual"}


def diagram(net: GraphNetwork, boxes: list[str], below: list[str]) -> str:
    """TikZ source: box ``l`` shows ``boxes[l]`` (0 = input), ``below[l]`` under it (its parameters)."""
    step = min(STEP, WIDTH / max(net.depth, 1))
    lines = [r"\begin{tikzpicture}[x=1cm,y=1cm,>=stealth,",
             (rf"  layer/.style={{draw,thick,rounded corners=2pt,align=center,font=\scriptsize,"
             rf"minimum height=13mm,text width={step - 0.45:.2f}cm,inner sep=2pt}},"),
             r"  skip/.style={->,thick,rounded corners=4pt}]"]
    for l, text in enumerate(boxes):
        fill = ",fill=black!6" if l == 0 else ""
        lines.append(rf"  \node[layer{fill}] (n{l}) at ({l * step:.2f},0) {{{text}}};")
        if below[l]:
            lines.append(rf"  \node[font=\scriptsize,anchor=north,align=center] at ({l * step:.2f},-0.75) {{{below[l]}}};")
    for node in net.nodes:
        lines.append(rf"  \draw[->,thick] (n{node.inputs[0]}) -- (n{node.index});")
    arcs = [n for n in net.nodes if len(n.inputs) > 1]
    for level, node in enumerate(arcs):
        src = node.inputs[1]
        height = 1.05 + 0.35 * level
        lines.append(rf"  \draw[skip] (n{src}.north) -- ++(0,{height - 0.65:.2f}) -| "
                     rf"node[pos=0.25,above,font=\scriptsize] {{skip: layer {src} to layer {node.index}}} "
                     rf"(n{node.index}.north);")
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines)


def ascii_chain(net: GraphNetwork, boxes: list[str]) -> str:
    """``input 4 values`` then ``  -> 1: dense 5 relu`` per layer (a residual's box names the layer it adds)."""
    return "\n".join([boxes[0], *(f"  -> {boxes[node.index]}" for node in net.nodes)])
