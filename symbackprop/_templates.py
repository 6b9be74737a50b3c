"""The one Jinja2 environment for document and code templates.

Templates live in the top-level ``templates/`` folder of the repository; an
installed wheel ships them as package data in ``symbackprop/templates`` (see
``[tool.setuptools.package-dir]`` in pyproject.toml).  Templates hold only
skeletons and loops: every expression is printed by a printer before it gets here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

_HERE = Path(__file__).resolve().parent
SEARCH_PATH = (_HERE / "templates", _HERE.parent / "templates")
"""Installed wheel first, then the repository checkout."""


def template_dirs() -> list[str]:
    """The template folders that exist, in search order."""
    return [str(p) for p in SEARCH_PATH if p.is_dir()]


@cache
def environment() -> jinja2.Environment:
    """Jinja2 environment: strict undefined, trailing newline kept, no autoescape."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dirs()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **context) -> str:
    """Render template ``name`` from ``templates/``."""
    return environment().get_template(name).render(**context)
