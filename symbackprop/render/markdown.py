"""Markdown helpers for derivation documents (math as ``$...$`` and ``$$...$$`` for GitHub and Jupyter)."""

from __future__ import annotations

import re

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|$~])")


def escape_markdown(text: str) -> str:
    """Prose as Markdown text: markup characters escaped, HTML impossible."""
    return _MD_SPECIAL.sub(r"\\\1", text.replace("\n", " "))
