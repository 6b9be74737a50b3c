"""Derivation documents: the public entry points (build, render, write, compile PDF).

The document is built section by section in :mod:`symbackprop.render.document` (one module per
section, each producing part of a :class:`~symbackprop.render.document.model.Document`); this
module renders it as TeX and Markdown, compiles the PDF and writes ``derivation.*`` (and
``per_weight.*`` for nets whose listing of every parameter is too long for the document).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..engine.derive import Derivation
from ..errors import SymbackpropError
from .document.build import APPENDIX_FILE, build, build_appendix, build_per_weight, context
from .document.context import Context, activation_names
from .document.model import Diagram, Display, Document, Heading, Section, Table, Text, m, para
from .document.render import render_markdown, render_tex
from .notation import profile as notation_profile

Builder = Context  # the document context (kept under its former name)

__all__ = ["Builder", "Context", "Diagram", "Display", "Document", "DocumentError", "Heading", "Section", "Table",
           "Text", "activation_names", "build", "build_per_weight", "check_tex_engine", "compile_pdf",
           "compile_pdf_with_log", "context", "document_names", "document_outputs", "m", "markdown", "markdown_appendix",
           "notation_profile", "para", "render_markdown", "render_tex", "tex"]


class DocumentError(SymbackpropError):
    """A document cannot be produced as asked (e.g. --pdf without a TeX engine)."""


def _graph_documents(d):
    """The document builder of a graph of layers, or None for a dense stack."""
    from ..engine.layergraph import LayerDerivation

    if isinstance(d, LayerDerivation):
        from . import documents_graph

        return documents_graph
    return None


def tex(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> str:
    graph = _graph_documents(d)
    return graph.tex(d, notation) if graph else render_tex(build(d, notation, per_weight))


def markdown(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> str:
    """``derivation.md``: the document without its appendix, which :func:`markdown_appendix` holds."""
    graph = _graph_documents(d)
    if graph:
        return graph.markdown(d, notation)
    return render_markdown(build(d, notation, per_weight, appendix_file=APPENDIX_FILE))


def markdown_appendix(d: Derivation, notation: str | None = None, per_weight: str = "auto") -> str | None:
    """``appendix.md`` beside ``derivation.md`` (notation table, batch form, verification details);
    None for a graph of layers, whose document holds its own."""
    if _graph_documents(d):
        return None
    return render_markdown(build_appendix(d, notation, per_weight))


# ----------------------------------------------------------------------------- PDF

PDFLATEX = "pdflatex"
PER_WEIGHT_NAMES = ("per_weight.tex", "per_weight.md")
COMPANION_NAMES = (APPENDIX_FILE,) + PER_WEIGHT_NAMES
"""Written beside the document when every parameter's chain rule is listed apart (see document.appendix)."""


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
    return ("derivation.tex", "derivation.md") + (("derivation.pdf",) if pdf else ()) + COMPANION_NAMES


def document_outputs(d: Derivation, args) -> dict[str, bytes]:
    """``derive -o DIR`` writer: derivation.tex, derivation.md and (when possible) derivation.pdf."""
    graph = _graph_documents(d)
    if graph:  # a graph of layers has its own document builder
        return graph.document_outputs(d, args)
    notation = getattr(args, "notation", None)
    per_weight = getattr(args, "per_weight", "auto") or "auto"
    want_pdf = getattr(args, "pdf", None)
    check_tex_engine(args)
    source = render_tex(build(d, notation, per_weight))
    files = {"derivation.tex": source.encode(),
             "derivation.md": render_markdown(build(d, notation, per_weight, appendix_file=APPENDIX_FILE)).encode(),
             APPENDIX_FILE: render_markdown(build_appendix(d, notation, per_weight)).encode()}
    listing = build_per_weight(d, notation, per_weight)
    if listing is not None:  # too long for the document: its own files
        files["per_weight.tex"] = render_tex(listing).encode()
        files["per_weight.md"] = render_markdown(listing).encode()
    if want_pdf is not False and tex_engine() is not None:
        progress = getattr(args, "progress", None)
        if progress is not None:
            progress("derivation.pdf (pdflatex)")
        files["derivation.pdf"] = compile_pdf(source)
    elif want_pdf is None:
        print("note: derivation.pdf skipped, pdflatex is not installed (texlive-latex-base, texlive-pictures)",
              file=sys.stderr)
    return files
