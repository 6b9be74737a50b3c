"""Printing the document model as LaTeX and Markdown (through templates/derivation.*.j2)."""

from __future__ import annotations

from .model import Diagram, Display, Document, Heading, Table, Text


def render_tex(doc: Document) -> str:
    from ... import _templates
    from ..latex import escape_tex

    return _templates.render("derivation.tex.j2", doc=formatted(doc, escape_tex, r"\textbf{%s}"))


def render_markdown(doc: Document) -> str:
    from ... import _templates
    from ..markdown import escape_markdown

    return _templates.render("derivation.md.j2", doc=formatted(doc, escape_markdown, "**%s**"))


def formatted(doc: Document, escape, strong: str = "%s") -> dict:
    """The model with every Text turned into a string of the target format (``strong``: how a run-in
    title is marked, ``%s`` its escaped text)."""
    def part(kind: str, s: str) -> str:
        return escape(s) if kind == "text" else strong % escape(s) if kind == "strong" else f"${s}$"

    def text(t: Text) -> str:
        return "".join(part(kind, s) for kind, s in t.parts)

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
            return {"kind": "display", "rows": list(zip(b.rows, [label(x) for x in b.labels])), "tags": b.tags}
        if isinstance(b, Table):
            return {"kind": "table", "header": [text(c) for c in b.header],
                    "rows": [[text(c) for c in r] for r in b.rows], "columns": len(b.header), "layout": b.layout}
        if isinstance(b, Diagram):
            return {"kind": "diagram", "tikz": b.tikz, "caption": text(b.caption)}
        raise TypeError(type(b).__name__)

    return {"title": escape(doc.title), "profile": doc.profile.name, "summary": text(doc.summary),
            "sections": [{"title": escape(s.title), "newpage": s.newpage, "blocks": [block(b) for b in s.blocks]}
                         for s in doc.sections]}
