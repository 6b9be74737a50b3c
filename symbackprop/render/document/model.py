"""The document model: sections of blocks that the .tex and .md renderers print.

* ``Text``: a paragraph of prose and inline-math segments (escaped per format);
* ``Display``: rows of an ``align*`` (LaTeX), each with an optional rule label;
* ``Table``: a header and rows of ``Text`` cells;
* ``Heading``: a run-in subsection title;
* ``Diagram``: TikZ source (PDF only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..notation import Profile


@dataclass
class Text:
    parts: list[tuple[str, str]]  # ("text", prose), ("math", latex) or ("strong", a run-in title)
    kind: str = "text"


@dataclass
class Display:
    rows: list[str]
    labels: list[str]
    tags: bool = False  # LaTeX: the labels as \tag* (the rows use the full width)
    kind: str = "display"


@dataclass
class Table:
    header: list[Text]
    rows: list[list[Text]]
    layout: str = ""  # LaTeX column layout ("lll"); default: wrapped text columns for three, else "l"s
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
    newpage: bool = False  # start on a new page (PDF): the appendix


@dataclass
class Document:
    title: str
    profile: Profile
    summary: Text
    sections: list[Section]


def para(*parts) -> Text:
    """``para("text ", ("math", "x"), " more")``: strings are prose, tuples are math."""
    return Text([p if isinstance(p, tuple) else ("text", p) for p in parts])


def strong(text: str) -> tuple[str, str]:
    """A run-in title at the start of a paragraph (bold)."""
    return ("strong", text)


def m(tex: str) -> tuple[str, str]:
    """An inline-math segment of :func:`para`."""
    return ("math", tex)
