"""SVG diagram of a network, for Markdown and notebooks (the PDF draws it with TikZ).

The same layout as :mod:`symbackprop.render.tikz`: one column per layer, wide layers
elided with a vertical ellipsis, one arrow per drawn weight.
"""

from __future__ import annotations

import base64
from html import escape

from ..spec import Network
from .tikz import shown_units

COLUMN, ROW, RADIUS, MARGIN = 130, 44, 15, 30


def diagram(network: Network, labels: list[str]) -> str:
    """The ``<svg>`` source; ``labels[l]`` is the caption under layer l (plain text)."""
    sizes = network.sizes
    rows = max(len(shown_units(n)) for n in sizes)
    width = 2 * MARGIN + COLUMN * (len(sizes) - 1)
    height = 2 * MARGIN + ROW * (rows - 1) + 30
    centre = MARGIN + ROW * (rows - 1) / 2
    places: dict[tuple[int, int], tuple[float, float]] = {}
    nodes, edges = [], []
    for l, n in enumerate(sizes):
        units = shown_units(n)
        x = MARGIN + COLUMN * l
        for row, j in enumerate(units):
            y = centre + (row - (len(units) - 1) / 2) * ROW
            if j is None:
                nodes.append(f'<text x="{x:.0f}" y="{y + 5:.0f}" text-anchor="middle">&#8942;</text>')
                continue
            places[(l, j)] = (x, y)
            nodes.append(f'<circle cx="{x:.0f}" cy="{y:.0f}" r="{RADIUS}" fill="white" stroke="black"/>')
        nodes.append(f'<text x="{x:.0f}" y="{height - 8}" text-anchor="middle" font-size="11">'
                     f'{escape(labels[l])}</text>')
    for (l, j), (x2, y2) in places.items():
        for (l0, _), (x1, y1) in places.items():
            if l0 == l - 1:
                edges.append(f'<line x1="{x1 + RADIUS:.0f}" y1="{y1:.0f}" x2="{x2 - RADIUS:.0f}" y2="{y2:.0f}" '
                             'stroke="#888" stroke-width="1"/>')
    body = "".join(edges + nodes)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif">{body}</svg>')


def data_uri(svg: str) -> str:
    """The SVG as a ``data:`` URI, for an inline Markdown image."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
